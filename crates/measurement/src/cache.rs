//! Reports cached in Redis (or in process on the embedded default), keyed by the workspace, the
//! report's parameters and two data versions: the workspace's profile data (stamped by profiles
//! on every commit: new events, hence new conversions, merges, erasures) and its measurement
//! data (stamped here whenever spend, conversion definitions or channel rules change). Either
//! changing makes every cached report unreachable, so a report never outlives new conversions or
//! spend. Campaign touchpoints recorded without any new event reach reports within
//! [`REPORT_TTL`]. The cache is an accelerator only: when it fails, reports are computed.

use kernel::WorkspaceId;
use platform::Cache;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a computed report is kept.
pub(crate) const REPORT_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub(crate) struct ReportCache {
    cache: Cache,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The data versions a report is valid for, read before computing it.
pub(crate) struct Stamps(String);

impl ReportCache {
    pub fn new(cache: Cache) -> Self {
        Self { cache, stats: Default::default() }
    }

    fn measurement_version_key(workspace: WorkspaceId) -> String {
        format!("measurement-data:{{{workspace}}}")
    }

    /// The current stamps, or `None` when the cache cannot answer (then nothing is cached).
    pub async fn stamps(&self, workspace: WorkspaceId) -> Option<Stamps> {
        let profiles = self.cache.version(&profiles_data_version_key(workspace)).await;
        let measurement = self.cache.version(&Self::measurement_version_key(workspace)).await;
        match (profiles, measurement) {
            (Ok(profiles), Ok(measurement)) => Some(Stamps(format!("{profiles}.{measurement}"))),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(error = %error, "report cache unavailable; computing");
                None
            }
        }
    }

    fn key(workspace: WorkspaceId, stamps: &Stamps, kind: &str, request: &impl Serialize) -> String {
        let request = serde_json::to_vec(request).unwrap_or_default();
        let digest = hex::encode(Sha256::digest(&request));
        format!("measurement:{{{workspace}}}:{kind}:{}:{digest}", stamps.0)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        workspace: WorkspaceId,
        stamps: &Stamps,
        kind: &str,
        request: &impl Serialize,
    ) -> Option<T> {
        let found = match self.cache.get(&Self::key(workspace, stamps, kind, request)).await {
            Ok(found) => found.and_then(|bytes| serde_json::from_slice(&bytes).ok()),
            Err(error) => {
                tracing::warn!(error = %error, "report cache read failed");
                None
            }
        };
        let counter = if found.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub async fn put(
        &self,
        workspace: WorkspaceId,
        stamps: &Stamps,
        kind: &str,
        request: &impl Serialize,
        value: &impl Serialize,
    ) {
        let Ok(bytes) = serde_json::to_vec(value) else { return };
        if let Err(error) =
            self.cache.set(&Self::key(workspace, stamps, kind, request), &bytes, REPORT_TTL).await
        {
            tracing::warn!(error = %error, "report cache write failed");
        }
    }

    /// After spend, a conversion definition or the channel rules changed, committed.
    pub async fn measurement_changed(&self, workspace: WorkspaceId) {
        if let Err(error) = self.cache.bump_version(&Self::measurement_version_key(workspace)).await {
            tracing::error!(error = %error, "could not invalidate cached reports");
        }
    }

    /// Hits and misses since the process started.
    pub fn stats(&self) -> (u64, u64) {
        (self.stats.hits.load(Ordering::Relaxed), self.stats.misses.load(Ordering::Relaxed))
    }
}

fn profiles_data_version_key(workspace: WorkspaceId) -> String {
    profiles::Profiles::data_version_key(workspace)
}
