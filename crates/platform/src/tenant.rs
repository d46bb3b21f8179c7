//! The tenant scope: the only way to reach tenant data (DESIGN §4).

use crate::{Backend, Db};
use kernel::TenantId;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement, TransactionTrait};

/// Proof that the caller was authenticated for one workspace. Only the auth layer (the
/// `tenancy` crate) makes one; `clippy.toml` forbids the constructor everywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// Made by the auth layer from a verified JWT membership or API key, and nowhere else.
    pub fn from_verified_credentials(tenant: TenantId) -> Self {
        Self { tenant }
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// Opens a transaction bound to this tenant. On PostgreSQL the transaction-local
    /// `app.tenant_id` setting drives row-level security, so even a query that forgot its
    /// `tenant_id` filter sees only this tenant's rows; being transaction-local, it never leaks
    /// to the next user of a pooled connection.
    pub async fn begin(&self, db: &Db) -> Result<DatabaseTransaction, DbErr> {
        let txn = db.connection().begin().await?;
        if db.backend() == Backend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT set_config('app.tenant_id', $1, true)",
                [self.tenant.to_string().into()],
            ))
            .await?;
        }
        Ok(txn)
    }

    /// Like [`TenantScope::begin`] for a transaction that will write (see [`Db::begin_write`]).
    pub async fn begin_write(&self, db: &Db) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.begin(db).await?;
        db.take_write_lock(&txn).await?;
        Ok(txn)
    }
}
