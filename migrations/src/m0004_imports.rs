//! CSV imports of CRM and enrichment records: one job per file, with its column mapping,
//! progress and the first row errors.

use sea_orm_migration::prelude::*;

pub struct Migration;

pub(crate) const TENANT_TABLES: &[&str] = &["import_jobs"];

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_imports"
    }
}

// Counters are cumulative over upload attempts where it matters: `rows_imported` counts rows
// stored in the inbox by any attempt (a retried upload skips them by their message id), and
// the processor adds to `rows_processed`/`rows_unmatched`/`rows_suppressed` as it goes.
const SQL: &str = "
CREATE TABLE import_jobs (
    tenant_id {uuid} NOT NULL REFERENCES workspaces (id),
    id {uuid} NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    status text NOT NULL,
    delimiter text NOT NULL,
    columns {json},
    rows_read bigint NOT NULL DEFAULT 0,
    rows_imported bigint NOT NULL DEFAULT 0,
    rows_already_imported bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    rows_processed bigint NOT NULL DEFAULT 0,
    rows_unmatched bigint NOT NULL DEFAULT 0,
    rows_suppressed bigint NOT NULL DEFAULT 0,
    bytes_read bigint NOT NULL DEFAULT 0,
    errors {json} NOT NULL,
    failure text,
    created_by text NOT NULL,
    created_at {ts} NOT NULL,
    heartbeat_at {ts},
    uploaded_at {ts},
    completed_at {ts},
    PRIMARY KEY (tenant_id, id)
);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_tables(manager, SQL, TENANT_TABLES).await
    }
}
