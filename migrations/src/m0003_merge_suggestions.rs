//! Deduplication suggestions: pairs of profiles that probably are one person, for staff to
//! accept (they merge) or reject (they are kept apart).

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] = &["merge_suggestions"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_merge_suggestions"
    }
}

const SQL: &str = "
CREATE TABLE merge_suggestions (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    profile_a {uuid} NOT NULL,
    profile_b {uuid} NOT NULL,
    probability double precision NOT NULL,
    weight double precision NOT NULL,
    explanation {json} NOT NULL,
    status text NOT NULL,
    created_at {ts} NOT NULL,
    decided_at {ts},
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX merge_suggestions_open ON merge_suggestions (tenant_id, id) WHERE status = 'open';
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
