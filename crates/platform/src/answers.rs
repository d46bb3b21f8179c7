//! Cached answers computed from tenant data (segment previews, a profile's segments, reports),
//! in the [`Cache`]. Each answer's key carries the stamps of the data it was computed from
//! (see [`Cache::version`]): a change bumps a stamp, and every answer computed before it becomes
//! unreachable, so nothing is ever read after the data it depends on changed. The cache is an
//! accelerator only: when it fails, the caller computes and the failure is logged.

use crate::Cache;
use kernel::WorkspaceId;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Answers of one kind of service (`segments`, `measurement`), which names their keys.
#[derive(Clone)]
pub struct AnswerCache {
    cache: Cache,
    namespace: &'static str,
    stats: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
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
pub struct Stamps(String);

impl AnswerCache {
    pub fn new(cache: Cache, namespace: &'static str) -> Self {
        Self { cache, namespace, stats: Default::default() }
    }

    /// The current stamps of these version keys, or `None` when the cache cannot answer (then
    /// nothing is cached).
    pub async fn stamps(&self, version_keys: &[String]) -> Option<Stamps> {
        let mut stamps = Vec::with_capacity(version_keys.len());
        for key in version_keys {
            match self.cache.version(key).await {
                Ok(stamp) => stamps.push(stamp),
                Err(error) => {
                    tracing::warn!(error = %error, namespace = self.namespace, "answer cache unavailable; computing");
                    return None;
                }
            }
        }
        Some(Stamps(stamps.join(".")))
    }

    fn key(&self, workspace: WorkspaceId, stamps: &Stamps, kind: &str, request: &impl Serialize) -> String {
        let request = serde_json::to_vec(request).unwrap_or_default();
        let digest = hex::encode(Sha256::digest(&request));
        format!("{}:{{{workspace}}}:{kind}:{}:{digest}", self.namespace, stamps.0)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        workspace: WorkspaceId,
        stamps: &Stamps,
        kind: &str,
        request: &impl Serialize,
    ) -> Option<T> {
        let found = match self.cache.get(&self.key(workspace, stamps, kind, request)).await {
            Ok(found) => found.and_then(|bytes| serde_json::from_slice(&bytes).ok()),
            Err(error) => {
                tracing::warn!(error = %error, namespace = self.namespace, "answer cache read failed");
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
        if let Err(error) = self.cache.set(&self.key(workspace, stamps, kind, request), &bytes, ttl).await {
            tracing::warn!(error = %error, namespace = self.namespace, "answer cache write failed");
        }
    }

    /// After a committed change to the data behind `version_key`: every answer stamped with
    /// its old stamp becomes unreachable.
    pub async fn bump(&self, version_key: &str) {
        if let Err(error) = self.cache.bump_version(version_key).await {
            tracing::error!(error = %error, namespace = self.namespace, "could not invalidate cached answers");
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.stats.hits.load(Ordering::Relaxed),
            misses: self.stats.misses.load(Ordering::Relaxed),
        }
    }
}
