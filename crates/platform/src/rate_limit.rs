//! GCRA rate limiting (the generic cell rate algorithm): one timestamp per key, atomic in Redis
//! through a Lua script, or in-process under a mutex.

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
    Limited { retry_after: Duration },
}

/// Returns `{allowed, retry_after_ms}`; the key stores the theoretical arrival time (TAT) in
/// milliseconds since the epoch.
const GCRA_SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1)
return {1, 0}
"#;

#[derive(Clone, Debug)]
pub struct RateLimiter {
    cache: Cache,
    script: std::sync::Arc<redis::Script>,
}

impl RateLimiter {
    pub fn new(cache: Cache) -> Self {
        Self { cache, script: std::sync::Arc::new(redis::Script::new(GCRA_SCRIPT)) }
    }

    #[tracing::instrument(skip_all)]
    pub async fn check(&self, key: &str, quota: RateQuota) -> Result<RateDecision, PlatformError> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
        let interval_ms = 1000.0 / quota.per_second;
        let tolerance_ms = interval_ms * f64::from(quota.burst.max(1) - 1);
        let key = self.cache.prefixed(&format!("rl:{key}"));
        if let Some(mut conn) = self.cache.redis_connection() {
            let (allowed, retry_ms): (i64, i64) = self
                .script
                .key(key)
                .arg(now_ms)
                .arg(interval_ms)
                .arg(tolerance_ms)
                .invoke_async(&mut conn)
                .await?;
            return Ok(decision(allowed == 1, retry_ms as f64));
        }
        let Some(store) = self.cache.memory_store() else {
            return Ok(RateDecision::Allowed);
        };
        let mut store = lock(store);
        let instant_now = std::time::Instant::now();
        let tat = store
            .entries
            .get(&key)
            .and_then(|(v, _)| std::str::from_utf8(v).ok()?.parse::<f64>().ok())
            .unwrap_or(now_ms)
            .max(now_ms);
        let allow_at = tat - tolerance_ms;
        if now_ms < allow_at {
            return Ok(decision(false, allow_at - now_ms));
        }
        let new_tat = tat + interval_ms;
        let ttl = Duration::from_millis((new_tat - now_ms).ceil() as u64 + 1);
        store.entries.insert(key, (new_tat.to_string().into_bytes(), Some(instant_now + ttl)));
        Ok(RateDecision::Allowed)
    }
}

fn decision(allowed: bool, retry_ms: f64) -> RateDecision {
    if allowed {
        RateDecision::Allowed
    } else {
        RateDecision::Limited { retry_after: Duration::from_millis(retry_ms.ceil().max(1.0) as u64) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_the_burst_then_limits_with_a_retry_time() {
        let limiter = RateLimiter::new(Cache::in_process("t"));
        let quota = RateQuota { per_second: 1.0, burst: 3 };
        for _ in 0..3 {
            assert_eq!(limiter.check("k", quota).await.unwrap(), RateDecision::Allowed);
        }
        match limiter.check("k", quota).await.unwrap() {
            RateDecision::Limited { retry_after } => assert!(retry_after <= Duration::from_secs(1)),
            RateDecision::Allowed => panic!("the fourth request in the same instant must be limited"),
        }
        assert_eq!(limiter.check("other", quota).await.unwrap(), RateDecision::Allowed);
    }
}
