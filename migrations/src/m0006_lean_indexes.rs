//! Two indexes that cost an entry on every new profile and identity and served nothing the
//! primary keys do not:
//!
//! - `profiles_live` indexed live profiles by id, which the primary key `(tenant_id, id)` already
//!   orders; listing live profiles filters the few merged ones out as it walks it.
//! - `identities` had a primary key on a surrogate `id` that nothing reads by. Identities are
//!   found by `(tenant_id, value, kind)`, already unique: on PostgreSQL that index becomes the
//!   primary key. SQLite cannot change a table's primary key in place (it would mean copying
//!   the table), and the embedded default does not need the last few percent of write speed,
//!   so there the surrogate key stays.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_lean_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS profiles_live").await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE identities DROP CONSTRAINT identities_pkey, \
                 ADD CONSTRAINT identities_pkey PRIMARY KEY USING INDEX identities_value",
            )
            .await?;
        }
        Ok(())
    }
}
