//! GCRA rate limiting (the generic cell rate algorithm): one timestamp per key, atomic in Redis
//! through a Lua script, or in-process under a mutex. Several quotas (per IP, per API key…) are
//! checked in one call, one Redis round trip, and a request is charged only when all allow it.

use crate::{Cache, PlatformError, cache::lock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A sustained rate and how many requests may arrive at once above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateQuota {
    pub per_second: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// `limit` is the index of the first quota that refused.
    Limited {
        retry_after: Duration,
        limit: usize,
    },
}

/// KEYS: the buckets; ARGV: now, then (interval, tolerance) per key, all in milliseconds.
/// Each key stores its theoretical arrival time (TAT). Returns `{index+1, retry_ms}` for the
/// first refusing bucket, or `{0, 0}` after charging every bucket.
const GCRA_SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  if now < tat - tolerance then
    return {i, math.ceil(tat - tolerance - now)}
  end
  tats[i] = tat + interval
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tats[i], 'PX', math.ceil(tats[i] - now) + 1)
end
return {0, 0}
"#;

#[derive(Clone, Debug)]
pub struct RateLimiter {
    cache: Cache,
    script: std::sync::Arc<redis::Script>,
}

struct Bucket {
    key: String,
    interval_ms: f64,
    tolerance_ms: f64,
}

impl RateLimiter {
    pub fn new(cache: Cache) -> Self {
        Self { cache, script: std::sync::Arc::new(redis::Script::new(GCRA_SCRIPT)) }
    }

    /// Admits a request only if every `(key, quota)` allows it, charging all of them then.
    #[tracing::instrument(name = "cache.rate_limit", target = "platform::cache", level = "info", skip_all, fields(otel.kind = "client", db.system = self.cache.backend_name()))]
    pub async fn check_all(&self, limits: &[(&str, RateQuota)]) -> Result<RateDecision, PlatformError> {
        if limits.is_empty() {
            return Ok(RateDecision::Allowed);
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
        let buckets: Vec<Bucket> = limits
            .iter()
            .map(|(key, quota)| {
                let interval_ms = 1000.0 / quota.per_second;
                Bucket {
                    key: self.cache.prefixed(&format!("rl:{key}")),
                    interval_ms,
                    tolerance_ms: interval_ms * f64::from(quota.burst.max(1) - 1),
                }
            })
            .collect();
        if let Some(mut conn) = self.cache.redis_connection() {
            let mut invocation = self.script.prepare_invoke();
            invocation.arg(now_ms);
            for bucket in &buckets {
                invocation.key(&bucket.key).arg(bucket.interval_ms).arg(bucket.tolerance_ms);
            }
            let (refused, retry_ms): (i64, i64) = invocation.invoke_async(&mut conn).await?;
            return Ok(match usize::try_from(refused) {
                Ok(0) | Err(_) => RateDecision::Allowed,
                Ok(index) => limited(retry_ms as f64, index - 1),
            });
        }
        let Some(store) = self.cache.memory_store() else {
            return Ok(RateDecision::Allowed);
        };
        let mut store = lock(store);
        let mut new_tats = Vec::with_capacity(buckets.len());
        for (index, bucket) in buckets.iter().enumerate() {
            let tat = store
                .entries
                .get(&bucket.key)
                .and_then(|(v, _)| std::str::from_utf8(v).ok()?.parse::<f64>().ok())
                .unwrap_or(now_ms)
                .max(now_ms);
            if now_ms < tat - bucket.tolerance_ms {
                return Ok(limited(tat - bucket.tolerance_ms - now_ms, index));
            }
            new_tats.push(tat + bucket.interval_ms);
        }
        let instant_now = std::time::Instant::now();
        for (bucket, tat) in buckets.into_iter().zip(new_tats) {
            let ttl = Duration::from_millis((tat - now_ms).ceil() as u64 + 1);
            store.entries.insert(bucket.key, (tat.to_string().into_bytes(), Some(instant_now + ttl)));
        }
        Ok(RateDecision::Allowed)
    }
}

fn limited(retry_ms: f64, limit: usize) -> RateDecision {
    RateDecision::Limited { retry_after: Duration::from_millis(retry_ms.ceil().max(1.0) as u64), limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_the_burst_then_limits_with_a_retry_time() {
        let limiter = RateLimiter::new(Cache::in_process("t"));
        let quota = RateQuota { per_second: 1.0, burst: 3 };
        for _ in 0..3 {
            assert_eq!(limiter.check_all(&[("k", quota)]).await.unwrap(), RateDecision::Allowed);
        }
        match limiter.check_all(&[("k", quota)]).await.unwrap() {
            RateDecision::Limited { retry_after, limit } => {
                assert!(retry_after <= Duration::from_secs(1));
                assert_eq!(limit, 0);
            }
            RateDecision::Allowed => panic!("the fourth request in the same instant must be limited"),
        }
        assert_eq!(limiter.check_all(&[("other", quota)]).await.unwrap(), RateDecision::Allowed);
    }

    #[tokio::test]
    async fn a_refused_request_charges_no_bucket() {
        let limiter = RateLimiter::new(Cache::in_process("t"));
        let wide = RateQuota { per_second: 1.0, burst: 2 };
        let narrow = RateQuota { per_second: 1.0, burst: 1 };
        assert_eq!(limiter.check_all(&[("ip", wide), ("key", narrow)]).await.unwrap(), RateDecision::Allowed);
        assert!(matches!(
            limiter.check_all(&[("ip", wide), ("key", narrow)]).await.unwrap(),
            RateDecision::Limited { limit: 1, .. }
        ));
        // The IP bucket was not charged by the refused request: one more request fits.
        assert_eq!(limiter.check_all(&[("ip", wide)]).await.unwrap(), RateDecision::Allowed);
    }
}
