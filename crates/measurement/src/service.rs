//! The measurement service: what the gateway calls for reports, conversion definitions, channel
//! rules and spend.
//!
//! Reports read the tables of profiles (events), campaigns (touchpoints, enrollments) and
//! segments (members) directly and read-only, in set-based queries inside the caller's
//! tenant-scoped transaction: a report over millions of events cannot go through per-object
//! service calls. What those tables mean stays owned by their crates.

use crate::cache::ReportCache;
use crate::{MeasurementError, Result};
use chrono::{DateTime, Utc};
use kernel::{Clock, WorkspaceId};
use platform::{Cache, Db, TenantScope};
use std::sync::Arc;
use tenancy::{Actor, Permission, Tenancy};

#[derive(Clone)]
pub struct Measurement {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    tenancy: Tenancy,
    campaigns: campaigns::Campaigns,
    cache: ReportCache,
    clock: Arc<dyn Clock>,
}

impl Measurement {
    pub fn new(
        db: Db,
        cache: Cache,
        tenancy: Tenancy,
        campaigns: campaigns::Campaigns,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { inner: Arc::new(Inner { db, tenancy, campaigns, cache: ReportCache::new(cache), clock }) }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn campaigns(&self) -> &campaigns::Campaigns {
        &self.inner.campaigns
    }

    pub(crate) fn cache(&self) -> &ReportCache {
        &self.inner.cache
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) async fn authorize(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        permission: Permission,
    ) -> Result<TenantScope> {
        Ok(self.inner.tenancy.authorize(actor, workspace, permission).await?)
    }

    /// Report cache hits and misses since the process started.
    pub fn report_cache_stats(&self) -> platform::CacheStats {
        self.inner.cache.stats()
    }

    pub(crate) fn internal(message: impl Into<String>) -> MeasurementError {
        MeasurementError::Internal(message.into().into())
    }
}
