//! A small key-value cache with expiry: Redis when configured, in-process otherwise.
//! Keys are namespaced by the configured prefix; callers that store tenant data put the tenant
//! in a `{hash tag}` so the keys also work on Redis Cluster.

use crate::PlatformError;
use redis::{AsyncCommands, aio::ConnectionManager};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Above this many in-process entries, expired ones are swept before inserting; it bounds the
/// memory an attacker can make us spend with keys derived from their input.
const MEMORY_SWEEP_THRESHOLD: usize = 100_000;

/// How long a Redis command or connection may take before it counts as failed.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a version stamp lives without a change; far longer than anything cached under it.
const VERSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone)]
pub struct Cache {
    prefix: Arc<str>,
    inner: CacheBackend,
}

#[derive(Clone)]
enum CacheBackend {
    Memory(Arc<Mutex<MemoryStore>>),
    Redis(ConnectionManager),
}

#[derive(Default)]
pub(crate) struct MemoryStore {
    pub(crate) entries: HashMap<String, (Vec<u8>, Option<Instant>)>,
}

impl MemoryStore {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut (Vec<u8>, Option<Instant>)> {
        let expired = matches!(self.entries.get(key), Some((_, Some(at))) if *at <= now);
        if expired {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn insert(&mut self, key: String, value: Vec<u8>, expires: Option<Instant>, now: Instant) {
        if self.entries.len() >= MEMORY_SWEEP_THRESHOLD {
            self.entries.retain(|_, (_, at)| at.is_none_or(|at| at > now));
        }
        self.entries.insert(key, (value, expires));
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("backend", &self.backend_name()).finish()
    }
}

impl Cache {
    pub fn in_process(prefix: &str) -> Self {
        Self { prefix: prefix.into(), inner: CacheBackend::Memory(Arc::default()) }
    }

    pub async fn redis(url: &str, prefix: &str) -> Result<Self, PlatformError> {
        let client = redis::Client::open(url)?;
        // redis answers a command that took over 500 ms (its default) with an error; on a
        // busy node a task can wait that long just to be polled, and a login or a rate-limit
        // check would fail with INTERNAL. Seconds still fail a Redis that is really gone.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(REDIS_RESPONSE_TIMEOUT));
        let manager = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { prefix: prefix.into(), inner: CacheBackend::Redis(manager) })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.inner {
            CacheBackend::Memory(_) => "in-process",
            CacheBackend::Redis(_) => "redis",
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    pub(crate) fn memory_store(&self) -> Option<&Arc<Mutex<MemoryStore>>> {
        match &self.inner {
            CacheBackend::Memory(store) => Some(store),
            CacheBackend::Redis(_) => None,
        }
    }

    pub(crate) fn redis_connection(&self) -> Option<ConnectionManager> {
        match &self.inner {
            CacheBackend::Redis(conn) => Some(conn.clone()),
            CacheBackend::Memory(_) => None,
        }
    }

    pub(crate) fn prefixed(&self, key: &str) -> String {
        self.key(key)
    }

    #[tracing::instrument(name = "cache.get", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        let key = self.key(key);
        match &self.inner {
            CacheBackend::Memory(store) => {
                Ok(lock(store).live(&key, Instant::now()).map(|(value, _)| value.clone()))
            }
            CacheBackend::Redis(conn) => Ok(conn.clone().get(key).await?),
        }
    }

    /// Several keys in one round trip (`MGET` on Redis), in the order asked.
    #[tracing::instrument(name = "cache.get_many", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, PlatformError> {
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.inner {
            CacheBackend::Memory(store) => {
                let now = Instant::now();
                let mut store = lock(store);
                Ok(keys.iter().map(|k| store.live(k, now).map(|(value, _)| value.clone())).collect())
            }
            CacheBackend::Redis(conn) => {
                Ok(redis::cmd("MGET").arg(&keys).query_async(&mut conn.clone()).await?)
            }
        }
    }

    #[tracing::instrument(name = "cache.set", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), PlatformError> {
        let key = self.key(key);
        match &self.inner {
            CacheBackend::Memory(store) => {
                let now = Instant::now();
                lock(store).insert(key, value.to_vec(), Some(now + ttl), now);
                Ok(())
            }
            CacheBackend::Redis(conn) => {
                let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let _: () = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(())
            }
        }
    }

    /// Sets the key only if it does not exist; `true` when this call set it. A lease: whoever
    /// gets `true` holds it until they delete it or it expires.
    #[tracing::instrument(name = "cache.set_if_absent", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, PlatformError> {
        let key = self.key(key);
        match &self.inner {
            CacheBackend::Memory(store) => {
                let now = Instant::now();
                let mut store = lock(store);
                if store.live(&key, now).is_some() {
                    return Ok(false);
                }
                store.insert(key, value.to_vec(), Some(now + ttl), now);
                Ok(true)
            }
            CacheBackend::Redis(conn) => {
                let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let set: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(set.is_some())
            }
        }
    }

    #[tracing::instrument(name = "cache.delete", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn delete(&self, key: &str) -> Result<(), PlatformError> {
        let key = self.key(key);
        match &self.inner {
            CacheBackend::Memory(store) => {
                lock(store).entries.remove(&key);
                Ok(())
            }
            CacheBackend::Redis(conn) => {
                let _: () = conn.clone().del(key).await?;
                Ok(())
            }
        }
    }

    /// The current stamp of a version key, created if there is none. Cached answers derived
    /// from some data put the stamps of that data in their keys; [`Cache::bump_version`]
    /// after a change makes every such answer unreachable. Stamps are random, never reused,
    /// so an expired or lost version key cannot bring an old answer back.
    #[tracing::instrument(name = "cache.version", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn version(&self, key: &str) -> Result<String, PlatformError> {
        if let Some(stamp) = self.get(key).await? {
            return Ok(String::from_utf8_lossy(&stamp).into_owned());
        }
        let stamp = uuid::Uuid::new_v4().simple().to_string();
        if self.set_if_absent(key, stamp.as_bytes(), VERSION_TTL).await? {
            return Ok(stamp);
        }
        // Someone created it meanwhile: use theirs.
        Ok(self.get(key).await?.map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or(stamp))
    }

    /// Gives a version key a new stamp (see [`Cache::version`]).
    #[tracing::instrument(name = "cache.bump_version", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn bump_version(&self, key: &str) -> Result<(), PlatformError> {
        let stamp = uuid::Uuid::new_v4().simple().to_string();
        self.set(key, stamp.as_bytes(), VERSION_TTL).await
    }

    /// Increments a counter, starting its expiry when it is created; returns the new value.
    #[tracing::instrument(name = "cache.increment", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, PlatformError> {
        let key = self.key(key);
        match &self.inner {
            CacheBackend::Memory(store) => {
                let now = Instant::now();
                let mut store = lock(store);
                let next = match store.live(&key, now) {
                    Some((value, _)) => parse_counter(value) + 1,
                    None => 1,
                };
                let expires = store.live(&key, now).and_then(|(_, at)| *at).unwrap_or(now + ttl);
                store.insert(key, next.to_string().into_bytes(), Some(expires), now);
                Ok(next)
            }
            CacheBackend::Redis(conn) => {
                let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let (value,): (i64,) = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(millis)
                    .arg("NX")
                    .ignore()
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(value)
            }
        }
    }

    #[tracing::instrument(name = "cache.ping", level = "info", skip_all, fields(otel.kind = "client", db.system = self.backend_name()))]
    pub async fn ping(&self) -> Result<(), PlatformError> {
        match &self.inner {
            CacheBackend::Memory(_) => Ok(()),
            CacheBackend::Redis(conn) => {
                let _: String = redis::cmd("PING").query_async(&mut conn.clone()).await?;
                Ok(())
            }
        }
    }
}

fn parse_counter(bytes: &[u8]) -> i64 {
    std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A poisoned lock only means another thread panicked mid-update of a cache entry; the map is
/// still structurally sound, so keep serving rather than propagate the panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_entries_expire_and_counters_count() {
        let cache = Cache::in_process("t");
        cache.set("a", b"1", Duration::from_millis(30)).await.unwrap();
        assert_eq!(cache.get("a").await.unwrap(), Some(b"1".to_vec()));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("a").await.unwrap(), None);
        assert_eq!(cache.increment("n", Duration::from_secs(5)).await.unwrap(), 1);
        assert_eq!(cache.increment("n", Duration::from_secs(5)).await.unwrap(), 2);
        cache.delete("n").await.unwrap();
        assert!(cache.set_if_absent("lease", b"1", Duration::from_secs(5)).await.unwrap());
        assert!(!cache.set_if_absent("lease", b"1", Duration::from_secs(5)).await.unwrap());
        cache.set("b", b"2", Duration::from_secs(5)).await.unwrap();
        assert_eq!(cache.get_many(&["missing", "b"]).await.unwrap(), vec![None, Some(b"2".to_vec())]);
        assert_eq!(cache.increment("n", Duration::from_secs(5)).await.unwrap(), 1);
    }
}
