//! The profiles' change feed: every profile whose data changed (events processed, traits,
//! consent, merges, erasure), once until a consumer — real-time segments — has taken it.
//! `change_id` is renewed by every change, so a consumer deletes only what it has seen.
//! `topics` says what changed (see `profiles::changes::Topics`), so a consumer re-evaluates
//! only what those changes can affect.
//! Changes are recorded only for workspaces with a subscriber (`change_feed_subscriptions`):
//! a workspace without segments does not pay for a feed nobody reads.

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] = &["profile_changes", "change_feed_subscriptions"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_profile_changes"
    }
}

const SQL: &str = "
CREATE TABLE profile_changes (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    profile_id {uuid} NOT NULL,
    change_id {uuid} NOT NULL,
    changed_at {ts} NOT NULL,
    topics text NOT NULL,
    PRIMARY KEY (tenant_id, profile_id)
);
CREATE TABLE change_feed_subscriptions (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    consumer text NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, consumer)
);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
