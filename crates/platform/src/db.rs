//! The database handle. SQLite (embedded default) or PostgreSQL (production), behind one type.

use crate::PlatformError;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Connections of the pool: open (idle or in use) and the most it may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}

#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
}

impl Db {
    /// Connects with a pool sized for the backend. SQLite gets WAL mode and a busy timeout so
    /// concurrent writers queue instead of failing.
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Self, PlatformError> {
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            // Each statement is a trace span (see `telemetry`) naming its operation; its text is
            // left out: safe (values are bound apart) but a batch insert's runs to 100 KB a span.
            .record_stmt_in_spans(false);
        match backend {
            Backend::Sqlite => {
                if let Some(dir) = sqlite_parent_dir(url) {
                    std::fs::create_dir_all(dir)?;
                }
                options.max_connections(8).min_connections(1);
            }
            Backend::Postgres => {
                options.max_connections(32).min_connections(2);
            }
        }
        let conn = Database::connect(options).await?;
        if backend == Backend::Sqlite {
            conn.execute_unprepared(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                 PRAGMA synchronous = NORMAL;",
            )
            .await?;
        }
        Ok(Self { conn, backend })
    }

    /// The connection pool's state now, for the metrics.
    pub fn pool_status(&self) -> PoolStatus {
        match self.backend {
            Backend::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                PoolStatus {
                    open: pool.size(),
                    idle: pool.num_idle(),
                    max: pool.options().get_max_connections(),
                }
            }
            Backend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                PoolStatus {
                    open: pool.size(),
                    idle: pool.num_idle(),
                    max: pool.options().get_max_connections(),
                }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn db_backend(&self) -> DbBackend {
        match self.backend {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
        }
    }

    /// The raw connection, for code that is not tenant data (control-plane tables, migrations,
    /// health checks). Tenant data goes through [`crate::TenantScope::begin`].
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Opens a transaction that will write. On SQLite it takes the write lock with its first
    /// statement: a transaction that reads first and writes later fails with `SQLITE_BUSY`
    /// (which no busy timeout retries) when another connection committed in between. The
    /// statement is a no-op write on the migrations table, which always exists. PostgreSQL
    /// needs nothing: its writers wait on row locks.
    pub async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
        use sea_orm::TransactionTrait;
        let txn = self.conn.begin().await?;
        self.take_write_lock(&txn).await?;
        Ok(txn)
    }

    pub(crate) async fn take_write_lock(
        &self,
        txn: &sea_orm::DatabaseTransaction,
    ) -> Result<(), sea_orm::DbErr> {
        if self.backend == Backend::Sqlite {
            txn.execute_unprepared("DELETE FROM seaql_migrations WHERE 1 = 0").await?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), PlatformError> {
        self.conn.ping().await?;
        Ok(())
    }

    /// Whether the app role is more than it should be: a superuser or `BYPASSRLS` role (row-level
    /// security does not bind it) or the owner of the tables (it could turn RLS off). Either is
    /// a deployment mistake that weakens the database half of tenant isolation.
    pub async fn role_bypasses_row_security(&self) -> Result<bool, PlatformError> {
        if self.backend != Backend::Postgres {
            return Ok(false);
        }
        let row = self
            .conn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT (rolsuper OR rolbypassrls OR EXISTS (
                     SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user
                 )) AS bypass FROM pg_roles WHERE rolname = current_user",
            ))
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<bool>("", "bypass")?,
            None => false,
        })
    }
}

fn sqlite_parent_dir(url: &str) -> Option<&std::path::Path> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_sqlite_directory() {
        assert_eq!(
            super::sqlite_parent_dir("sqlite://./data/passerelle.db?mode=rwc"),
            Some(std::path::Path::new("./data"))
        );
        assert_eq!(super::sqlite_parent_dir("sqlite::memory:"), None);
    }
}
