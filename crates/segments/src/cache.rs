//! Cached answers (previews, a profile's segments) in Redis, or in process on the embedded
//! default. Each answer's key carries two version stamps — the workspace's profile data
//! (changed by profiles on every commit) and its segments (changed here by every definition or
//! membership change) — so an answer is never read after either changed: the next reader
//! misses and computes afresh. The cache is an accelerator only: when it fails, answers are
//! computed and the failure logged.

use kernel::WorkspaceId;
use platform::Cache;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct SegmentsCache {
    cache: Cache,
    stats: std::sync::Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Hits and misses since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// The stamps an answer is valid for, read before computing it.
pub(crate) struct Stamps(String);

impl SegmentsCache {
    pub fn new(cache: Cache) -> Self {
        Self { cache, stats: Default::default() }
    }

    fn segments_version_key(workspace: WorkspaceId) -> String {
        format!("segments-defs:{{{workspace}}}")
    }

    /// The current stamps, or `None` when the cache cannot answer (then nothing is cached).
    pub async fn stamps(&self, workspace: WorkspaceId) -> Option<Stamps> {
        let data = self.cache.version(&profiles::Profiles::data_version_key(workspace)).await;
        let segments = self.cache.version(&Self::segments_version_key(workspace)).await;
        match (data, segments) {
            (Ok(data), Ok(segments)) => Some(Stamps(format!("{data}.{segments}"))),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(error = %error, "segment cache unavailable; computing");
                None
            }
        }
    }

    fn key(workspace: WorkspaceId, stamps: &Stamps, kind: &str, request: &impl Serialize) -> String {
        let request = serde_json::to_vec(request).unwrap_or_default();
        let digest = hex::encode(Sha256::digest(&request));
        format!("segments:{{{workspace}}}:{kind}:{}:{digest}", stamps.0)
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
                tracing::warn!(error = %error, "segment cache read failed");
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
        ttl: Duration,
    ) {
        let Ok(bytes) = serde_json::to_vec(value) else { return };
        if let Err(error) = self.cache.set(&Self::key(workspace, stamps, kind, request), &bytes, ttl).await {
            tracing::warn!(error = %error, "segment cache write failed");
        }
    }

    /// After a change to the workspace's segments (definitions or membership), committed.
    pub async fn segments_changed(&self, workspace: WorkspaceId) {
        if let Err(error) = self.cache.bump_version(&Self::segments_version_key(workspace)).await {
            tracing::error!(error = %error, "could not invalidate cached segment answers");
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.stats.hits.load(Ordering::Relaxed),
            misses: self.stats.misses.load(Ordering::Relaxed),
        }
    }
}
