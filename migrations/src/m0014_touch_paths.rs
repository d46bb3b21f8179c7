//! The touches a report reads, readable from the index alone.
//!
//! `events_touches` indexed touch events by time, but a report needs six more columns of each,
//! and fetching them from the table meant visiting a random page of the events heap (bodies
//! included: 1.8 GB for 10M events) per touch; PostgreSQL rightly preferred scanning the whole
//! table. The new index carries those columns (`INCLUDE` on PostgreSQL, trailing key columns on
//! SQLite, which has no `INCLUDE`), so the touches of a period are one range of the index: an
//! index-only scan wherever the table is vacuumed (autovacuum does it after inserts), half the
//! database time of the report's largest read in BENCHMARKS.md.
//!
//! Building it locks writes to `events` for as long as it takes (seconds per ten million
//! events); migrations run in a transaction, which `CREATE INDEX CONCURRENTLY` cannot.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0014_touch_paths"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let create = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "CREATE INDEX events_touch_paths ON events (tenant_id, occurred_at) INCLUDE (profile_id, \
                 channel, utm_source, utm_medium, utm_campaign, referrer_host, device) WHERE touch"
            }
            _ => {
                "CREATE INDEX events_touch_paths ON events (tenant_id, occurred_at, profile_id, channel, \
                 utm_source, utm_medium, utm_campaign, referrer_host, device) WHERE touch"
            }
        };
        db.execute_unprepared(create).await?;
        db.execute_unprepared("DROP INDEX IF EXISTS events_touches").await?;
        Ok(())
    }
}
