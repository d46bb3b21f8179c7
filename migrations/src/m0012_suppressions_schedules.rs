//! Addresses that must not be contacted, and scheduled journeys.
//!
//! `address_suppressions` holds hard bounces, complaints and imported do-not-contact lists as
//! HMAC hashes keyed by the workspace's suppression salt, so the table never holds the
//! addresses themselves. A scheduled journey enrolls its segment's members at `schedule_next_at`,
//! paging through them by `schedule_member_cursor` so a run over a million people survives a
//! restart half-way.

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] = &["address_suppressions"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0012_suppressions_schedules"
    }
}

const SQL: &str = "
CREATE TABLE address_suppressions (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    kind text NOT NULL,
    address_hash text NOT NULL,
    reason text NOT NULL,
    source text NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, kind, address_hash)
);
ALTER TABLE journeys ADD COLUMN schedule_next_at {ts};
ALTER TABLE journeys ADD COLUMN schedule_run_at {ts};
ALTER TABLE journeys ADD COLUMN schedule_member_cursor {uuid};
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
