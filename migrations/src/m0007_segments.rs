//! Segments: versioned definitions, current membership, and every entry and exit as an
//! internal event (`segment_changes`, in id order) that journeys can trigger on.

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] =
    &["segments", "segment_versions", "segment_members", "segment_changes"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_segments"
    }
}

const SQL: &str = "
CREATE TABLE segments (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    version integer NOT NULL,
    definition {json} NOT NULL,
    time_relative {bool} NOT NULL,
    size bigint NOT NULL DEFAULT 0,
    evaluated_at {ts},
    created_by text NOT NULL,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX segments_name ON segments (tenant_id, name);
CREATE TABLE segment_versions (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    segment_id {uuid} NOT NULL,
    version integer NOT NULL,
    definition {json} NOT NULL,
    created_by text NOT NULL,
    created_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, version)
);
CREATE TABLE segment_members (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    segment_id {uuid} NOT NULL,
    profile_id {uuid} NOT NULL,
    entered_at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, profile_id)
);
CREATE INDEX segment_members_profile ON segment_members (tenant_id, profile_id);
CREATE TABLE segment_changes (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    segment_id {uuid} NOT NULL,
    version integer NOT NULL,
    profile_id {uuid} NOT NULL,
    entered {bool} NOT NULL,
    at {ts} NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX segment_changes_segment ON segment_changes (tenant_id, segment_id, id);
CREATE INDEX segment_changes_profile ON segment_changes (tenant_id, profile_id, id);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
