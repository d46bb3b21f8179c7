//! Drops `events_first_profile`: no query reads events by the profile they were first resolved
//! to (undoing a merge finds them by their current profile, through `events_profile`), and the
//! index cost an entry on every accepted event and another on every processed one.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_event_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX IF EXISTS events_first_profile").await?;
        Ok(())
    }
}
