//! Counts failed client authentications per client id and per source
//! address in fixed one-minute windows, and refuses further attempts from
//! a key over its limit until its window ends.
//!
//! Written by hand rather than with `governor`: the limiter must be
//! *checked* on every attempt but *charged* only on failures, which a GCRA
//! limiter's check-and-consume does not express.
//!
//! With `redis_url`, failures are also counted in Redis (one counter per
//! key and clock-aligned minute, `INCR` + `EXPIRE`), so the limit holds
//! across replicas instead of each replica allowing its own; the local
//! counters stay, and decide alone while Redis does not answer within
//! 500 ms. Only failures touch Redis: a valid client never waits on it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::redis::Redis;

/// Length of a window, in seconds.
const WINDOW: u64 = 60;
/// Keys tracked at most; past it, windows that ended are dropped first
/// and, if still full, the map is cleared (fail open on memory, never on
/// correctness of a single decision).
const MAX_KEYS: usize = 100_000;

/// Longest wait for Redis before deciding on local counts alone.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Failure counters.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    windows: Mutex<HashMap<String, (u64, u32)>>,
    shared: Option<Shared>,
}

/// The Redis side: a self-reconnecting connection and the key prefix.
struct Shared {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl FailureLimiter {
    /// A limiter allowing `limit` failures per key per minute.
    pub fn new(limit: u32) -> Self {
        FailureLimiter {
            limit,
            windows: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// The same, with counts shared through `redis` by every replica of
    /// the deployment of `issuer` (must be called within a Tokio runtime;
    /// a connection that cannot be set up keeps the counts local).
    pub fn shared(limit: u32, redis: &Redis, issuer: &str) -> Self {
        let mut l = Self::new(limit);
        match redis.commands(REDIS_TIMEOUT) {
            Ok(connection) => {
                l.shared = Some(Shared {
                    connection,
                    prefix: format!("warden:authfail:{issuer}:"),
                });
            }
            Err(e) => tracing::warn!(error = %e, "failure counts stay local"),
        }
        l
    }

    /// Records a failure of `keys` and answers `Some(seconds to wait)` when
    /// any of them was already over its limit (here or, with Redis, on any
    /// replica).
    pub async fn fail(&self, keys: &[&str], now: u64) -> Option<u64> {
        let local = self.blocked(keys, now);
        if local.is_none() {
            self.record_failure(keys, now);
        }
        let shared = match &self.shared {
            Some(shared) => tokio::time::timeout(REDIS_TIMEOUT, self.fail_shared(shared, keys, now))
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!("failure counts: Redis did not answer; counting locally");
                    None
                }),
            None => None,
        };
        local.max(shared)
    }

    async fn fail_shared(&self, shared: &Shared, keys: &[&str], now: u64) -> Option<u64> {
        let mut conn = shared.connection.clone();
        let window = now / WINDOW;
        let mut pipe = redis::pipe();
        for key in keys {
            let name = format!("{}{key}:{window}", shared.prefix);
            pipe.cmd("INCR")
                .arg(&name)
                .cmd("EXPIRE")
                .arg(&name)
                .arg(2 * WINDOW)
                .ignore();
        }
        match pipe.query_async::<Vec<u64>>(&mut conn).await {
            // The count includes this failure: over the limit means it was
            // already at the limit before.
            Ok(counts) if counts.iter().any(|c| *c > u64::from(self.limit)) => Some((window + 1) * WINDOW - now),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "failure counts: Redis failed; counting locally");
                None
            }
        }
    }

    /// `Some(seconds to wait)` when any of `keys` is over its local limit.
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
