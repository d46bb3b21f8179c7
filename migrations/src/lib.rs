//! Database migrations, one SQL text per step written once for both backends.
//!
//! Types differ between PostgreSQL and SQLite, so each step's SQL uses placeholders
//! (`{uuid}`, `{ts}`, `{json}`, `{bool}`) that [`sql_for`] fills per backend. Every tenant table
//! is listed in [`TENANT_TABLES`] and gets row-level security on PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

mod m0001_foundation;
mod m0002_profiles;
mod m0003_merge_suggestions;
mod m0004_imports;
mod m0005_event_indexes;
mod m0006_lean_indexes;
mod m0007_segments;
mod m0008_profile_changes;
mod m0009_segment_indexes;
mod m0010_campaigns;
mod m0011_journey_events;
mod m0012_suppressions_schedules;
mod m0013_measurement;
mod m0014_touch_paths;

pub use sea_orm_migration;

/// Every table holding tenant data. RLS is enabled and forced on each of them by the step that
/// creates it (each step lists its own; a test checks this list is their union).
pub const TENANT_TABLES: &[&str] = &[
    "api_keys",
    "profile_settings",
    "identity_rules",
    "profiles",
    "identities",
    "events",
    "profile_merges",
    "merge_blocks",
    "consents",
    "suppressions",
    "merge_suggestions",
    "import_jobs",
    "segments",
    "segment_versions",
    "segment_members",
    "segment_changes",
    "profile_changes",
    "change_feed_subscriptions",
    "channels",
    "content_blocks",
    "contents",
    "journeys",
    "journey_versions",
    "journey_enrollments",
    "outbox",
    "touchpoints",
    "send_blocks",
    "campaign_settings",
    "frequency_caps",
    "journey_event_cursors",
    "offers",
    "address_suppressions",
    "measurement_settings",
    "conversion_definitions",
    "spend",
];

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_profiles::Migration),
            Box::new(m0003_merge_suggestions::Migration),
            Box::new(m0004_imports::Migration),
            Box::new(m0005_event_indexes::Migration),
            Box::new(m0006_lean_indexes::Migration),
            Box::new(m0007_segments::Migration),
            Box::new(m0008_profile_changes::Migration),
            Box::new(m0009_segment_indexes::Migration),
            Box::new(m0010_campaigns::Migration),
            Box::new(m0011_journey_events::Migration),
            Box::new(m0012_suppressions_schedules::Migration),
            Box::new(m0013_measurement::Migration),
            Box::new(m0014_touch_paths::Migration),
        ]
    }
}

/// Runs one step's SQL and secures the tenant tables it creates: what every step's `up` does.
pub(crate) async fn create_tables(
    manager: &SchemaManager<'_>,
    sql: &str,
    tenant_tables: &[&str],
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    db.execute_unprepared(&sql_for(backend, sql)).await?;
    if backend == DbBackend::Postgres {
        for table in tenant_tables {
            db.execute_unprepared(&row_level_security(table)).await?;
        }
    }
    Ok(())
}

/// Fills the backend-specific type placeholders of a migration's SQL.
pub(crate) fn sql_for(backend: DbBackend, sql: &str) -> String {
    let (uuid, ts, json, boolean) = match backend {
        DbBackend::Postgres => ("uuid", "timestamptz", "jsonb", "boolean"),
        _ => ("blob", "text", "text", "integer"),
    };
    sql.replace("{uuid}", uuid).replace("{ts}", ts).replace("{json}", json).replace("{bool}", boolean)
}

/// Row-level security for one tenant table: rows are visible and writable only when the
/// transaction's `app.tenant_id` names their tenant. `FORCE` applies it to the owner too.
pub(crate) fn row_level_security(table: &str) -> String {
    format!(
        "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
         DROP POLICY IF EXISTS tenant_isolation ON {table};
         CREATE POLICY tenant_isolation ON {table}
           USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
           WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);"
    )
}

/// Gives the application role (the user of `DATABASE_URL`) what it needs and nothing more:
/// data access on the tables, no ownership, so RLS binds it. A no-op when the app connects
/// as the owner itself or on SQLite.
pub async fn grant_app_role<C: ConnectionTrait>(owner: &C, app_role: &str) -> Result<(), DbErr> {
    if owner.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    if app_role.is_empty() || !app_role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbErr::Custom("the app role name must be letters, digits and underscores".into()));
    }
    owner
        .execute_unprepared(&format!(
            "GRANT USAGE ON SCHEMA public TO {app_role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app_role};
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app_role};
             REVOKE ALL ON seaql_migrations FROM {app_role};"
        ))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_step_secures_the_tenant_tables_it_creates() {
        let steps: Vec<&str> = [
            super::m0001_foundation::TENANT_TABLES,
            super::m0002_profiles::TENANT_TABLES,
            super::m0003_merge_suggestions::TENANT_TABLES,
            super::m0004_imports::TENANT_TABLES,
            super::m0007_segments::TENANT_TABLES,
            super::m0008_profile_changes::TENANT_TABLES,
            super::m0010_campaigns::TENANT_TABLES,
            super::m0011_journey_events::TENANT_TABLES,
            super::m0012_suppressions_schedules::TENANT_TABLES,
            super::m0013_measurement::TENANT_TABLES,
        ]
        .concat();
        assert_eq!(steps, super::TENANT_TABLES);
    }
}
