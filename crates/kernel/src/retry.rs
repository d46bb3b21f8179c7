use std::time::Duration;

/// Seconds for `Retry-After` and `retryAfter`: rounded up, at least 1, so a client that waits
/// exactly that long is never early (1.2 s remaining is 2, not 1).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    let rounded = if wait.subsec_nanos() > 0 { whole.saturating_add(1) } else { whole };
    rounded.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_and_never_says_zero() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1990)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
