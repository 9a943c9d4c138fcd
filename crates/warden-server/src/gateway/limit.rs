//! Rate limits per (subject, client, route): GCRA, as `[[route]]
//! rate_limit` says.
//!
//! [`RateLimiter`] is the interface; [`LocalRateLimiter`] keeps the state
//! in this process (the `governor` crate). A limiter shared by replicas
//! (Redis, a Lua GCRA on the server's clock) implements the same trait.
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

/// A boxed future, so that limiters can be trait objects and remote ones
/// can await.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), u64>> + Send + 'a>>;

/// Decides whether one more request of `key` conforms to its route's limit.
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// `Ok` to go ahead (and counts the request); `Err(seconds)` to retry
    /// after that many seconds (at least 1). Routes without a limit always
    /// pass.
    fn check<'a>(&'a self, key: &'a RateKey) -> CheckFuture<'a>;
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
        let routes = table
            .routes()
            .iter()
            .filter_map(|route| {
                let limit = route.config().rate_limit?;
                // Validated by `RouteTable::new`: a positive period and burst.
                let quota = Quota::with_period(limit.period()?)?.allow_burst(NonZeroU32::new(limit.burst)?);
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
        Box::pin(std::future::ready(self.check_now(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::route::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteKind};

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
}
