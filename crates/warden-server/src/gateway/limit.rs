//! Rate limits per (subject, client, route): GCRA, as `[[route]]
//! rate_limit` says.
//!
//! [`RateLimiter`] is the interface; [`LocalRateLimiter`] keeps the state
//! in this process (the `governor` crate). The limiter shared by replicas
//! ([`super::redis_limit::RedisRateLimiter`], a Lua GCRA on the Redis
//! server's clock) implements the same trait.
//!
//! Memory is bounded by the keys active within the last
//! [`RETAIN_INTERVAL`] (plus the burst window): every interval, one
//! request sweeps the keys whose state is indistinguishable from a fresh
//! one (`retain_recent`).

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::route::RouteTable;

/// How often idle keys are dropped.
pub const RETAIN_INTERVAL: Duration = Duration::from_secs(60);

/// Who is limited: one GCRA state per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// The token's subject.
    pub subject: String,
    /// The token's client.
    pub client_id: String,
    /// The route's name.
    pub route: String,
}

/// Why a request may not go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the limit: retry after this many seconds (at least 1) → 429.
    Limited(u64),
    /// The limit cannot be checked (the shared store is unreachable and the
    /// limiter is configured to fail closed) → 503.
    Unavailable,
}

/// A boxed future, so that limiters can be trait objects and remote ones
/// can await.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;

/// What `/readyz` says about the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LimiterStatus {
    /// `local` or `redis`.
    pub backend: &'static str,
    /// Whether the shared store is unreachable and the fallback is in use.
    pub degraded: bool,
    /// What happens while degraded (`local` or `deny`), for shared limiters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<&'static str>,
}

/// Decides whether one more request of `key` conforms to its route's limit.
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// `Ok` to go ahead (and counts the request); otherwise why not.
    /// Routes without a limit always pass.
    fn check<'a>(&'a self, key: &'a RateKey) -> CheckFuture<'a>;

    /// The backend and whether it is degraded (default: a local limiter).
    fn status(&self) -> LimiterStatus {
        LimiterStatus {
            backend: "local",
            degraded: false,
            fallback: None,
        }
    }
}

type Keyed = DefaultKeyedRateLimiter<(String, String)>;

/// GCRA state in this process, one keyed limiter per limited route.
pub struct LocalRateLimiter {
    routes: HashMap<String, Keyed>,
    clock: DefaultClock,
    last_sweep: Mutex<Instant>,
}

impl std::fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRateLimiter")
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl LocalRateLimiter {
    /// Limiters for every route of `table` that has a `rate_limit`.
    pub fn new(table: &RouteTable) -> Self {
        Self::with_share(table, 1)
    }

    /// One process's share of every limit when `replicas` processes split
    /// it (the fallback of a shared limiter): the rate divided by
    /// `replicas`, and the burst too (rounded up, at least 1).
    pub fn with_share(table: &RouteTable, replicas: u32) -> Self {
        let replicas = replicas.max(1);
        let routes = table
            .routes()
            .iter()
            .filter_map(|route| {
                let limit = route.config().rate_limit?;
                // Validated by `RouteTable::new`: a positive period and burst.
                let period = limit.period()?.checked_mul(replicas)?;
                let burst = NonZeroU32::new(limit.burst.div_ceil(replicas).max(1))?;
                let quota = Quota::with_period(period)?.allow_burst(burst);
                Some((route.name().to_owned(), Keyed::dashmap(quota)))
            })
            .collect();
        LocalRateLimiter {
            routes,
            clock: DefaultClock::default(),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Keys held across all routes (an estimate under concurrency).
    pub fn len(&self) -> usize {
        self.routes.values().map(Keyed::len).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops keys whose state is back to fresh, now.
    pub fn sweep(&self) {
        for limiter in self.routes.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn sweep_if_due(&self) {
        let due = match self.last_sweep.try_lock() {
            Ok(mut last) if last.elapsed() >= RETAIN_INTERVAL => {
                *last = Instant::now();
                true
            }
            // Another request is sweeping, or it is not time yet.
            _ => false,
        };
        if due {
            self.sweep();
        }
    }

    /// The synchronous check behind [`RateLimiter::check`].
    pub fn check_now(&self, key: &RateKey) -> Result<(), u64> {
        let Some(limiter) = self.routes.get(&key.route) else {
            return Ok(());
        };
        self.sweep_if_due();
        limiter
            .check_key(&(key.subject.clone(), key.client_id.clone()))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                // Round up: retrying after a truncated wait would fail again.
                (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
            })
    }
}

impl RateLimiter for LocalRateLimiter {
    fn check<'a>(&'a self, key: &'a RateKey) -> CheckFuture<'a> {
        Box::pin(std::future::ready(self.check_now(key).map_err(Refusal::Limited)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteKind};

    fn table(limit: Option<RateLimit>) -> RouteTable {
        RouteTable::new(vec![RouteConfig {
            name: "r".into(),
            methods: Vec::new(),
            path_prefix: "/r".into(),
            upstream: "http://127.0.0.1:9".into(),
            audience: None,
            action: "invoke".into(),
            resource: ResourceSpec {
                type_name: "Model".into(),
                id: IdSource::Literal("m".into()),
            },
            scopes: Vec::new(),
            rate_limit: limit,
            forward_authorization: false,
            approval_wait: 0,
            kind: RouteKind::Http,
        }])
        .unwrap()
    }

    fn key(sub: &str, route: &str) -> RateKey {
        RateKey {
            subject: sub.into(),
            client_id: "c".into(),
            route: route.into(),
        }
    }

    #[test]
    fn burst_then_retry_after_per_key() {
        let l = LocalRateLimiter::new(&table(Some(RateLimit {
            per_second: 0.1,
            burst: 2,
        })));
        assert!(l.check_now(&key("a", "r")).is_ok());
        assert!(l.check_now(&key("a", "r")).is_ok());
        let retry = l.check_now(&key("a", "r")).unwrap_err();
        assert!((1..=10).contains(&retry), "{retry}");
        assert!(l.check_now(&key("b", "r")).is_ok(), "keys are independent");
        assert!(l.check_now(&key("a", "other")).is_ok(), "unlimited routes pass");
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn sweeping_drops_fresh_keys() {
        let l = LocalRateLimiter::new(&table(Some(RateLimit {
            per_second: 1e6,
            burst: 1,
        })));
        assert!(l.check_now(&key("a", "r")).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        l.sweep();
        assert!(l.is_empty());
        assert!(LocalRateLimiter::new(&table(None)).check_now(&key("a", "r")).is_ok());
    }

    #[test]
    fn a_share_divides_rate_and_burst() {
        let t = table(Some(RateLimit {
            per_second: 0.1,
            burst: 5,
        }));
        let l = LocalRateLimiter::with_share(&t, 2);
        let admitted = (0..10).filter(|_| l.check_now(&key("a", "r")).is_ok()).count();
        assert_eq!(admitted, 3, "ceil(5 / 2)");
        let retry = l.check_now(&key("a", "r")).unwrap_err();
        assert!((11..=20).contains(&retry), "one every 20 s: {retry}");
        let l = LocalRateLimiter::with_share(&t, 100);
        assert_eq!((0..10).filter(|_| l.check_now(&key("a", "r")).is_ok()).count(), 1);
    }
}
