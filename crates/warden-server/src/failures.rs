//! Counts failed client authentications per client id and per source
//! address in fixed one-minute windows, and refuses further attempts from
//! a key over its limit until its window ends.
//!
//! Written by hand rather than with `governor`: the limiter must be
//! *checked* on every attempt but *charged* only on failures, which a GCRA
//! limiter's check-and-consume does not express.

use std::collections::HashMap;
use std::sync::Mutex;

/// Length of a window, in seconds.
const WINDOW: u64 = 60;
/// Keys tracked at most; past it, windows that ended are dropped first
/// and, if still full, the map is cleared (fail open on memory, never on
/// correctness of a single decision).
const MAX_KEYS: usize = 100_000;

/// Failure counters.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl FailureLimiter {
    /// A limiter allowing `limit` failures per key per minute.
    pub fn new(limit: u32) -> Self {
        FailureLimiter {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when any of `keys` is over its limit.
    pub fn blocked(&self, keys: &[&str], now: u64) -> Option<u64> {
        let windows = self.windows.lock().ok()?;
        keys.iter()
            .filter_map(|k| windows.get(*k))
            .filter(|(start, count)| now < start + WINDOW && *count >= self.limit)
            .map(|(start, _)| start + WINDOW - now)
            .max()
    }

    /// Charges one failure to each of `keys`.
    pub fn record_failure(&self, keys: &[&str], now: u64) {
        let Ok(mut windows) = self.windows.lock() else { return };
        if windows.len() >= MAX_KEYS {
            windows.retain(|_, (start, _)| now < *start + WINDOW);
            if windows.len() >= MAX_KEYS {
                windows.clear();
            }
        }
        for key in keys {
            let entry = windows.entry((*key).to_owned()).or_insert((now, 0));
            if now >= entry.0 + WINDOW {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let l = FailureLimiter::new(3);
        for _ in 0..3 {
            assert_eq!(l.blocked(&["client:a", "ip:1"], 1000), None);
            l.record_failure(&["client:a", "ip:1"], 1000);
        }
        assert_eq!(l.blocked(&["client:a"], 1010), Some(50));
        assert_eq!(l.blocked(&["ip:1", "client:b"], 1010), Some(50));
        assert_eq!(l.blocked(&["client:b"], 1010), None);
        assert_eq!(l.blocked(&["client:a"], 1060), None);
    }
}
