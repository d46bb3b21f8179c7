use crate::{ProfilesError, sql::Sql};
use kernel::Clock;
use platform::{Backend, Cache, Db, TenantScope};
use sea_orm::DatabaseTransaction;
use std::sync::Arc;
use tenancy::Tenancy;
use tokio::sync::{Mutex, Notify};

pub type Result<T, E = ProfilesError> = std::result::Result<T, E>;

/// The profiles service. Cheap to clone; the gateway and the workers share one per process.
#[derive(Clone)]
pub struct Profiles {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub db: Db,
    /// Where the workspaces' data versions live (see [`Profiles::data_version_key`]).
    pub cache: Cache,
    pub tenancy: Tenancy,
    pub clock: Arc<dyn Clock>,
    /// Wakes the in-process ingestion worker as soon as events are committed.
    pub work_ready: Notify,
    /// Wakes in-process consumers of the change feed once a graph transaction commits.
    pub changes_ready: Notify,
    /// SQLite has one writer; graph changes in this process take turns here so a transaction
    /// never has to upgrade from reader to writer behind another one's back.
    pub sqlite_graph: Mutex<()>,
}

impl Profiles {
    pub fn new(db: Db, cache: Cache, tenancy: Tenancy, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                cache,
                tenancy,
                clock,
                work_ready: Notify::new(),
                changes_ready: Notify::new(),
                sqlite_graph: Mutex::new(()),
            }),
        }
    }

    /// Notified after a transaction that may have changed profiles commits: real-time
    /// consumers of [`crate::changes`] wait on it (and poll, for other replicas' changes).
    pub fn changes_ready(&self) -> &Notify {
        &self.inner.changes_ready
    }

    /// The cache key whose stamp changes whenever a workspace's profile data changes: caches
    /// of answers computed from profiles (segment previews…) put it in their keys.
    pub fn data_version_key(workspace: kernel::WorkspaceId) -> String {
        format!("profiles-data:{{{workspace}}}")
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn tenancy(&self) -> &Tenancy {
        &self.inner.tenancy
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// Opens a transaction that may change the identity graph of one workspace. Changes to
    /// one workspace's graph are serialised (a PostgreSQL advisory lock per tenant, a process
    /// lock on SQLite), so two events creating the same new identity can never produce two
    /// profiles, whichever worker or replica runs them.
    pub(crate) async fn graph_transaction(&self, scope: &TenantScope) -> Result<GraphTransaction<'_>> {
        let guard = match self.db().backend() {
            Backend::Sqlite => Some(self.inner.sqlite_graph.lock().await),
            Backend::Postgres => None,
        };
        let txn = scope.begin_write(self.db()).await?;
        if self.db().backend() == Backend::Postgres {
            let mut lock = Sql::new("SELECT pg_advisory_xact_lock(");
            lock.bind(advisory_key(scope)).push(")");
            lock.fetch_one(&txn).await?;
        }
        Ok(GraphTransaction {
            txn,
            changes_ready: &self.inner.changes_ready,
            cache: &self.inner.cache,
            version_key: Self::data_version_key(scope.tenant_id().into()),
            _guard: guard,
        })
    }
}

pub(crate) struct GraphTransaction<'a> {
    pub txn: DatabaseTransaction,
    changes_ready: &'a Notify,
    cache: &'a Cache,
    version_key: String,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl GraphTransaction<'_> {
    pub async fn commit(self) -> Result<()> {
        self.txn.commit().await?;
        // After the commit: an answer computed meanwhile from the old data was cached under
        // the old stamp, which nobody reads any more.
        if let Err(error) = self.cache.bump_version(&self.version_key).await {
            tracing::error!(error = %error, "could not invalidate cached answers about profiles");
        }
        self.changes_ready.notify_one();
        Ok(())
    }
}

/// The advisory lock key of a tenant's graph: both halves of its id folded together (the first
/// half of a UUIDv7 is mostly its creation time, so workspaces created in the same millisecond
/// would share it), with a namespace bit pattern so it never collides with locks other modules
/// may take on the same tenant.
fn advisory_key(scope: &TenantScope) -> i64 {
    let (high, low) = scope.tenant_id().as_uuid().as_u64_pair();
    (high ^ low ^ 0x7072_6f66_696c_6573) as i64
}
