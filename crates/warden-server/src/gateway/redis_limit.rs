//! Rate limits shared by replicas: GCRA in Redis, as a Lua script that
//! reads the Redis server's clock (`TIME`), so replicas whose clocks
//! disagree still apply one limit.
//!
//! # Keys
//! `warden:rl:<route>:<client>:<subject>` (the prefix is configurable for
//! tests), holding the theoretical arrival time (TAT) in microseconds of
//! the Redis clock, with a TTL that ends when the state is back to fresh.
//! `:` and `%` in the route and client are percent-encoded (a client id
//! from an external issuer may be a URL), so a subject (`user:alice`) can
//! never be confused with another split of the same text.
//!
//! # When Redis fails
//! A call that errors or takes longer than [`CALL_TIMEOUT`] marks the
//! limiter *degraded*, logged once per transition. While degraded, requests
//! never wait on Redis: [`RedisFallback::Local`] applies a local GCRA with
//! each route's rate and burst divided by `rate_limit.replicas`;
//! [`RedisFallback::Deny`] refuses requests on limited routes (503). A
//! background task retries Redis with a bounded exponential backoff
//! ([`RETRY_MIN`] to [`RETRY_MAX`]) and clears the state when a probe
//! succeeds. `/readyz` shows the state ([`RateLimiter::status`]).

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::GatewayBuildError;
use super::limit::{CheckFuture, LimiterStatus, LocalRateLimiter, RateKey, RateLimiter, Refusal};
use super::route::RouteTable;
use crate::options::RedisFallback;
use crate::redis::Redis;

/// Prefix of every key.
pub const DEFAULT_KEY_PREFIX: &str = "warden:rl";
/// Longest wait for one limit check; past it the limiter degrades.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// First retry of Redis after it failed.
pub const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest pause between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// A failure within this long of a recovery keeps the backoff reached, so
/// a flapping Redis is not hammered (nor the log flooded).
const FLAP_WINDOW: Duration = Duration::from_secs(30);

/// GCRA on the Redis clock. `KEYS[1]`: the key; `ARGV[1]`: the emission
/// interval in microseconds; `ARGV[2]`: the burst. Returns `{1, 0}` when
/// the request conforms (and counts it), else `{0, microseconds until one
/// would}`.
pub const GCRA_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local allow_at = tat - interval * (burst - 1)
if allow_at > now then
  return {0, allow_at - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
";

/// A route's limit, in the script's terms.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval_us: u64,
    burst: u32,
}

/// GCRA state in Redis, shared by every replica that uses the same Redis.
pub struct RedisRateLimiter {
    shared: Arc<Shared>,
    probe: JoinHandle<()>,
}

struct Shared {
    limits: HashMap<String, Gcra>,
    prefix: String,
    script: Script,
    conn: ConnectionManager,
    fallback: RedisFallback,
    replicas: u32,
    /// The fallback of [`RedisFallback::Local`].
    local: LocalRateLimiter,
    degraded: AtomicBool,
    /// Times the limiter turned degraded.
    degradations: AtomicU64,
    /// Wakes the probe task when the limiter degrades.
    wake: Notify,
    /// The URL without its password, for logs.
    target: String,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("redis", &self.shared.target)
            .field("routes", &self.shared.limits.keys().collect::<Vec<_>>())
            .field("fallback", &self.shared.fallback)
            .field("degraded", &self.degraded())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisRateLimiter {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

/// Why a call to Redis failed.
enum CallError {
    Redis(redis::RedisError),
    Timeout,
}

impl Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Redis(e) => write!(f, "{e}"),
            CallError::Timeout => write!(f, "no answer within {} ms", CALL_TIMEOUT.as_millis()),
        }
    }
}

impl RedisRateLimiter {
    /// A limiter for every route of `table` that has a `rate_limit`, on the
    /// Redis at `url`, with keys under `key_prefix` (normally
    /// [`DEFAULT_KEY_PREFIX`]). Does not wait for Redis: the first probe
    /// runs in the background, and until Redis answers the fallback
    /// applies. Must be called within a Tokio runtime.
    pub fn new(
        url: &str,
        table: &RouteTable,
        fallback: RedisFallback,
        replicas: u32,
        key_prefix: &str,
    ) -> Result<Self, GatewayBuildError> {
        let redis = Redis::open(url).map_err(|e| GatewayBuildError::RateLimiter(e.to_string()))?;
        let target = redis.target().to_owned();
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GatewayBuildError::RateLimiter(
                "the Redis limiter must be built within a Tokio runtime".into(),
            ));
        }
        // One attempt per connection: the probe task does the retrying, so
        // no request waits through a backoff.
        let conn = redis
            .commands(CALL_TIMEOUT)
            .map_err(|e| GatewayBuildError::RateLimiter(e.to_string()))?;
        let limits = table
            .routes()
            .iter()
            .filter_map(|route| {
                let limit = route.config().rate_limit?;
                let interval_us = u64::try_from(limit.period()?.as_micros()).unwrap_or(u64::MAX).max(1);
                Some((
                    route.name().to_owned(),
                    Gcra {
                        interval_us,
                        burst: limit.burst,
                    },
                ))
            })
            .collect();
        let replicas = replicas.max(1);
        let shared = Arc::new(Shared {
            limits,
            prefix: key_prefix.to_owned(),
            script: Script::new(GCRA_SCRIPT),
            conn,
            fallback,
            replicas,
            local: LocalRateLimiter::with_share(table, replicas),
            degraded: AtomicBool::new(false),
            degradations: AtomicU64::new(0),
            wake: Notify::new(),
            target,
        });
        tracing::info!(redis = %shared.target, fallback = fallback.as_str(), replicas,
            "rate limits are shared through Redis");
        let probe = tokio::spawn(probe(Arc::clone(&shared)));
        Ok(RedisRateLimiter { shared, probe })
    }

    /// Whether Redis is failing and the fallback applies.
    pub fn degraded(&self) -> bool {
        self.shared.degraded.load(Ordering::Acquire)
    }

    /// How many times the limiter turned degraded since it was built.
    pub fn degradations(&self) -> u64 {
        self.shared.degradations.load(Ordering::Relaxed)
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: &RateKey) -> String {
        redis_key(&self.shared.prefix, key)
    }
}

/// `<prefix>:<route>:<client>:<subject>`, with `%` and `:` percent-encoded
/// in the route and the client.
pub fn redis_key(prefix: &str, key: &RateKey) -> String {
    let mut out = String::with_capacity(prefix.len() + key.route.len() + key.client_id.len() + key.subject.len() + 3);
    out.push_str(prefix);
    for part in [&key.route, &key.client_id] {
        out.push(':');
        for c in part.chars() {
            match c {
                '%' => out.push_str("%25"),
                ':' => out.push_str("%3A"),
                c => out.push(c),
            }
        }
    }
    out.push(':');
    out.push_str(&key.subject);
    out
}

impl Shared {
    /// Runs the script for `key`.
    async fn call(&self, key: &str, limit: Gcra) -> Result<Result<(), Refusal>, CallError> {
        let mut conn = self.conn.clone();
        let (admitted, wait_us): (i64, i64) = tokio::time::timeout(
            CALL_TIMEOUT,
            self.script
                .key(key)
                .arg(limit.interval_us)
                .arg(limit.burst)
                .invoke_async(&mut conn),
        )
        .await
        .map_err(|_| CallError::Timeout)?
        .map_err(CallError::Redis)?;
        if admitted == 1 {
            return Ok(Ok(()));
        }
        // Round up: retrying after a truncated wait would fail again.
        let wait_us = u64::try_from(wait_us).unwrap_or(0);
        Ok(Err(Refusal::Limited(wait_us.div_ceil(1_000_000).max(1))))
    }

    /// Whether Redis runs the script now (a probe key that expires at once).
    async fn probe_once(&self) -> Result<(), CallError> {
        let key = format!("{}:probe", self.prefix);
        let limit = Gcra {
            interval_us: 1,
            burst: 1,
        };
        self.call(&key, limit).await.map(|_| ())
    }

    fn degrade(&self, error: &CallError) {
        if self.degraded.swap(true, Ordering::AcqRel) {
            return;
        }
        self.degradations.fetch_add(1, Ordering::Relaxed);
        match self.fallback {
            RedisFallback::Local => tracing::warn!(redis = %self.target, error = %error, replicas = self.replicas,
                "Redis is unreachable: rate limits fall back to local limits (each route's rate and burst \
                 divided by rate_limit.replicas) until it answers again"),
            RedisFallback::Deny => tracing::error!(redis = %self.target, error = %error,
                "Redis is unreachable: requests on rate-limited routes are refused with 503 \
                 (rate_limit.redis_fallback = \"deny\") until it answers again"),
        }
        self.wake.notify_one();
    }

    fn recover(&self) {
        if self.degraded.swap(false, Ordering::AcqRel) {
            tracing::warn!(redis = %self.target, "Redis answers again: rate limits are shared again");
        }
    }

    fn fallback(&self, key: &RateKey) -> Result<(), Refusal> {
        match self.fallback {
            RedisFallback::Local => self.local.check_now(key).map_err(Refusal::Limited),
            RedisFallback::Deny => Err(Refusal::Unavailable),
        }
    }
}

/// Probes Redis at start, then whenever the limiter is degraded, with a
/// bounded exponential backoff, until a probe succeeds.
async fn probe(shared: Arc<Shared>) {
    if let Err(e) = shared.probe_once().await {
        shared.degrade(&e);
    }
    let mut backoff = RETRY_MIN;
    let mut recovered_at: Option<Instant> = None;
    loop {
        if !shared.degraded.load(Ordering::Acquire) {
            shared.wake.notified().await;
            if recovered_at.is_none_or(|t| t.elapsed() > FLAP_WINDOW) {
                backoff = RETRY_MIN;
            }
            continue;
        }
        tokio::time::sleep(backoff).await;
        match shared.probe_once().await {
            Ok(()) => {
                shared.recover();
                recovered_at = Some(Instant::now());
            }
            Err(e) => {
                tracing::debug!(redis = %shared.target, error = %e, retry_in_ms = backoff.as_millis(),
                    "Redis still unreachable");
                backoff = backoff.saturating_mul(2).min(RETRY_MAX);
            }
        }
    }
}

impl RateLimiter for RedisRateLimiter {
    fn check<'a>(&'a self, key: &'a RateKey) -> CheckFuture<'a> {
        Box::pin(async move {
            let shared = &*self.shared;
            let Some(limit) = shared.limits.get(&key.route).copied() else {
                return Ok(());
            };
            if !shared.degraded.load(Ordering::Acquire) {
                match shared.call(&redis_key(&shared.prefix, key), limit).await {
                    Ok(verdict) => return verdict,
                    Err(e) => shared.degrade(&e),
                }
            }
            shared.fallback(key)
        })
    }

    fn status(&self) -> LimiterStatus {
        LimiterStatus {
            backend: "redis",
            degraded: self.degraded(),
            fallback: Some(self.shared.fallback.as_str()),
        }
    }
}

/// The limiter `options` ask for: a [`RedisRateLimiter`] when `redis_url`
/// is set, else `None` (the gateway keeps its local limiter).
pub fn from_options(
    options: &crate::options::ServerOptions,
    table: &RouteTable,
) -> Result<Option<Arc<dyn RateLimiter>>, GatewayBuildError> {
    let Some(url) = options.redis_url.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let limiter = RedisRateLimiter::new(
        url,
        table,
        options.rate_limit.redis_fallback,
        options.rate_limit.replicas,
        DEFAULT_KEY_PREFIX,
    )?;
    Ok(Some(Arc::new(limiter)))
}

#[cfg(test)]
mod tests {
    use redis::Client;

    use super::*;
    use crate::options::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteKind};
    use crate::redis::check_url;

    /// The Redis of the tests (`WARDEN_TEST_REDIS_URL`, default the local one).
    fn redis_url() -> String {
        std::env::var("WARDEN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    /// Whether Redis answers; when it does not, the test is skipped unless
    /// `WARDEN_TEST_REQUIRE_REDIS=1`, which makes it fail.
    async fn redis_up() -> bool {
        let up = match Client::open(redis_url()) {
            Ok(client) => matches!(
                tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection()).await,
                Ok(Ok(_))
            ),
            Err(_) => false,
        };
        if !up {
            assert!(
                std::env::var("WARDEN_TEST_REQUIRE_REDIS").as_deref() != Ok("1"),
                "Redis is not reachable at {} and WARDEN_TEST_REQUIRE_REDIS=1",
                redis_url()
            );
            eprintln!("skipped: Redis is not reachable at {}", redis_url());
        }
        up
    }

    /// A key prefix no other test uses.
    fn fresh_prefix() -> String {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        format!(
            "warden-test:{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )
    }

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn table(per_second: f64, burst: u32) -> RouteTable {
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
            rate_limit: Some(RateLimit { per_second, burst }),
            forward_authorization: false,
            approval_wait: 0,
            kind: RouteKind::Http,
        }])
        .unwrap()
    }

    fn key(sub: &str) -> RateKey {
        RateKey {
            subject: sub.into(),
            client_id: "c".into(),
            route: "r".into(),
        }
    }

    async fn admitted(l: &RedisRateLimiter, k: &RateKey, n: usize) -> usize {
        let mut ok = 0;
        for _ in 0..n {
            if l.check(k).await.is_ok() {
                ok += 1;
            }
        }
        ok
    }

    #[test]
    fn keys_are_unambiguous() {
        let k = |route: &str, client: &str, subject: &str| {
            redis_key(
                "warden:rl",
                &RateKey {
                    subject: subject.into(),
                    client_id: client.into(),
                    route: route.into(),
                },
            )
        };
        assert_eq!(k("chat", "app", "svc:app"), "warden:rl:chat:app:svc:app");
        assert_ne!(k("a", "b:c", "d"), k("a", "b", "c:d"));
        assert_ne!(k("a:b", "c", "d"), k("a", "b:c", "d"));
        assert_eq!(k("a%3A", "b", "c"), "warden:rl:a%253A:b:c");
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("redis://127.0.0.1:6379/2").is_ok());
        assert!(check_url("rediss://h:6380").unwrap_err().contains("TLS"));
        assert!(check_url("http://h").is_err());
        let e = check_url("redis://:s3cret@[::1").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn burst_then_steady_rate_on_the_redis_clock() {
        if !redis_up().await {
            return;
        }
        // Burst 3, one every 200 ms.
        let l = RedisRateLimiter::new(&redis_url(), &table(5.0, 3), RedisFallback::Deny, 1, &fresh_prefix()).unwrap();
        let a = key("user:a");
        assert_eq!(admitted(&l, &a, 3).await, 3);
        assert_eq!(l.check(&a).await, Err(Refusal::Limited(1)), "retry rounds up to 1 s");
        assert!(l.check(&key("user:b")).await.is_ok(), "keys are independent");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(admitted(&l, &a, 3).await, 1, "one emission interval later, one more");
        assert!(!l.degraded());
        assert_eq!(l.status().backend, "redis");

        // The state carries a TTL no longer than the time to drain it.
        let client = Client::open(redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(l.redis_key(&a))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1..=1000).contains(&ttl), "{ttl}");

        // Unlimited routes are not looked up.
        let other = RateKey {
            route: "other".into(),
            ..key("user:a")
        };
        assert_eq!(admitted(&l, &other, 10).await, 10);
    }

    #[tokio::test]
    async fn two_limiters_on_one_redis_share_the_limit() {
        if !redis_up().await {
            return;
        }
        let prefix = fresh_prefix();
        let t = table(0.5, 5);
        let a = RedisRateLimiter::new(&redis_url(), &t, RedisFallback::Local, 2, &prefix).unwrap();
        let b = RedisRateLimiter::new(&redis_url(), &t, RedisFallback::Local, 2, &prefix).unwrap();
        let k = key("svc:shared");
        let mut ok = 0;
        for i in 0..20 {
            let l = if i % 2 == 0 { &a } else { &b };
            if l.check(&k).await.is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 5, "one burst across both");
        assert!(!a.degraded() && !b.degraded());
        // A limiter under another prefix (another deployment) is separate.
        let c = RedisRateLimiter::new(&redis_url(), &t, RedisFallback::Local, 2, &fresh_prefix()).unwrap();
        assert_eq!(admitted(&c, &k, 10).await, 5);
    }

    #[tokio::test]
    async fn concurrent_checks_admit_exactly_the_burst() {
        if !redis_up().await {
            return;
        }
        let prefix = fresh_prefix();
        let t = table(0.1, 10);
        let limiters: Vec<Arc<RedisRateLimiter>> = (0..3)
            .map(|_| Arc::new(RedisRateLimiter::new(&redis_url(), &t, RedisFallback::Deny, 3, &prefix).unwrap()))
            .collect();
        let mut tasks = Vec::new();
        for i in 0..60 {
            let l = Arc::clone(&limiters[i % 3]);
            tasks.push(tokio::spawn(async move { l.check(&key("svc:race")).await.is_ok() }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap() {
                ok += 1;
            }
        }
        assert_eq!(ok, 10);
    }

    #[tokio::test]
    async fn redis_down_falls_back_to_a_local_share() {
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let l = RedisRateLimiter::new(&url, &table(0.1, 5), RedisFallback::Local, 2, &fresh_prefix()).unwrap();
        let k = key("user:a");
        assert_eq!(admitted(&l, &k, 10).await, 3, "ceil(5 / 2) of the burst");
        assert!(matches!(l.check(&k).await, Err(Refusal::Limited(s)) if s > 1));
        assert!(l.degraded());
        assert_eq!(l.degradations(), 1, "one transition, however many requests");
        let status = serde_json::to_value(l.status()).unwrap();
        assert_eq!(
            status,
            serde_json::json!({"backend": "redis", "degraded": true, "fallback": "local"})
        );
    }

    #[tokio::test]
    async fn redis_down_in_deny_mode_refuses() {
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let l = RedisRateLimiter::new(&url, &table(100.0, 100), RedisFallback::Deny, 1, &fresh_prefix()).unwrap();
        assert_eq!(l.check(&key("user:a")).await, Err(Refusal::Unavailable));
        assert_eq!(l.check(&key("user:b")).await, Err(Refusal::Unavailable));
        assert!(l.degraded());
        assert_eq!(l.degradations(), 1);
        let other = RateKey {
            route: "unlimited".into(),
            ..key("user:a")
        };
        assert!(l.check(&other).await.is_ok(), "routes without a limit still pass");
    }

    #[test]
    fn bad_urls_are_build_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let e = RedisRateLimiter::new("http://x", &table(1.0, 1), RedisFallback::Local, 1, "p").unwrap_err();
            assert!(e.to_string().contains("redis_url"), "{e}");
        });
        let e = RedisRateLimiter::new("redis://127.0.0.1", &table(1.0, 1), RedisFallback::Local, 1, "p").unwrap_err();
        assert!(e.to_string().contains("Tokio"), "{e}");
    }

    /// A Redis of the test's own on a free port, so it can be stopped and
    /// started; `None` (and skipped) without `redis-server`.
    fn spawn_redis(port: u16) -> Option<std::process::Child> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(c) => Some(c),
            Err(e) => {
                assert!(
                    std::env::var("WARDEN_TEST_REQUIRE_REDIS").as_deref() != Ok("1"),
                    "redis-server cannot be started ({e}) and WARDEN_TEST_REQUIRE_REDIS=1"
                );
                eprintln!("skipped: redis-server cannot be started: {e}");
                None
            }
        }
    }

    async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn degrades_and_recovers_without_restart() {
        let port = closed_port();
        let url = format!("redis://127.0.0.1:{port}");
        let l = RedisRateLimiter::new(&url, &table(0.1, 2), RedisFallback::Deny, 1, &fresh_prefix()).unwrap();
        wait_until("the first probe fails", || l.degraded()).await;
        assert_eq!(l.check(&key("user:a")).await, Err(Refusal::Unavailable));

        let Some(mut server) = spawn_redis(port) else { return };
        wait_until("the limiter recovers", || !l.degraded()).await;
        let k = key("user:a");
        assert_eq!(admitted(&l, &k, 5).await, 2, "shared limits apply again");
        assert_eq!(l.degradations(), 1);

        server.kill().unwrap();
        server.wait().unwrap();
        assert_eq!(
            l.check(&k).await,
            Err(Refusal::Unavailable),
            "the first failure degrades"
        );
        assert!(l.degraded());
        assert_eq!(l.degradations(), 2);

        let Some(mut server) = spawn_redis(port) else { return };
        wait_until("the limiter recovers again", || !l.degraded()).await;
        // A fresh Redis (no persistence) has no state: a new burst.
        assert_eq!(admitted(&l, &k, 5).await, 2);
        server.kill().unwrap();
        server.wait().unwrap();
    }
}
