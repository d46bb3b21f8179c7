//! What segment evaluation reads by: the processed events of a name in a time window, with
//! their profile in the index so the database need not visit the rows (`performed "Order
//! Completed" count >= 2 within 30 days` over millions of events). Partial on processed events:
//! accepting an event does not pay for it; the processing, which rewrites the row anyway, does.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_segment_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX events_name_time ON events (tenant_id, name, occurred_at, profile_id) \
                 WHERE profile_id IS NOT NULL",
            )
            .await?;
        Ok(())
    }
}
