//! Prometheus metrics: their names, the recorder each [`crate::App`] owns,
//! and `GET /metrics` (text exposition format).
//!
//! # One recorder per App, nothing global
//! [`Metrics::new`] builds a `metrics-exporter-prometheus` recorder with
//! `PrometheusBuilder::build_recorder` and keeps it; nothing is installed
//! as the process's global `metrics` recorder. Each recording site enters
//! the App's recorder for one synchronous call
//! (`metrics::with_local_recorder`), and the audit writer of
//! `warden-store` is handed the same recorder
//! (`AuditWriter::spawn_with_recorder`). So several Apps in one process
//! (the integration tests start many) never fight over a global, and each
//! `/metrics` shows exactly its own App's traffic. `warden serve` runs one
//! App, so this is also the process's view.
//!
//! The recorder is drained by every scrape and by an upkeep task
//! ([`spawn`], every 5 s), so unscraped histograms do not grow.
//!
//! # Labels
//! Bounded by construction: `route` is a configured route name (or
//! `(none)` when no route matched), `decision` is `allow` or `deny`,
//! `status` an HTTP status code, `grant` one of the supported grant types
//! (or `unsupported`), `error` an RFC 6749 error code, `result` `hit` or
//! `miss`. Never a raw path, subject, client id or token.
//!
//! # Where `/metrics` is served
//! With `metrics.enabled` (the default) and no `metrics.listen`, on the
//! main listener, beside the token service (it then shadows a gateway
//! route under `/metrics`). With `metrics.listen` set, only on that
//! address (e.g. `127.0.0.1:9090`, reachable by the scraper alone). With
//! `metrics.enabled = false`, nowhere, and nothing is recorded.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::net::TcpListener;

use crate::options::MetricsOptions;

/// Metric names (labels in brackets).
pub mod names {
    /// Counter: gateway requests {route, decision, status}.
    pub const GATEWAY_REQUESTS: &str = "warden_gateway_requests_total";
    /// Histogram: seconds from request to response headers {route}.
    pub const GATEWAY_REQUEST_SECONDS: &str = "warden_gateway_request_duration_seconds";
    /// Histogram: seconds to verify the bearer token.
    pub const GATEWAY_VERIFY_SECONDS: &str = "warden_gateway_verify_duration_seconds";
    /// Histogram: seconds to authorize (the Cedar decision).
    pub const GATEWAY_AUTHORIZE_SECONDS: &str = "warden_gateway_authorize_duration_seconds";
    /// Histogram: seconds from forwarding to the upstream's response headers {route}.
    pub const GATEWAY_UPSTREAM_SECONDS: &str = "warden_gateway_upstream_duration_seconds";
    /// Counter: gateway requests refused by the rate limit {route}.
    pub const GATEWAY_RATE_LIMITED: &str = "warden_gateway_rate_limited_total";
    /// Counter: verified-token cache lookups of the gateway {result = hit | miss}.
    pub const TOKEN_CACHE_LOOKUPS: &str = "warden_token_cache_lookups_total";
    /// Counter: tokens issued by `/oauth/token` {grant}.
    pub const TOKENS_ISSUED: &str = "warden_token_issued_total";
    /// Counter: `/oauth/token` requests refused {grant, error}.
    pub const TOKEN_FAILURES: &str = "warden_token_failures_total";
    /// Gauge: 1 while the fan-out subscription is up.
    pub const FANOUT_SUBSCRIBED: &str = "warden_fanout_subscribed";
    /// Gauge: client connections open now.
    pub const CONNECTIONS_OPEN: &str = "warden_connections_open";
    /// Counter: client connections Warden closed {reason = header_timeout | idle_timeout | write_stalled | drain_deadline}.
    pub const CONNECTIONS_CLOSED: &str = "warden_connections_closed_total";
    /// Counter: registry API decisions, by action and decision.
    pub const REGISTRY_DECISIONS: &str = "warden_registry_decisions_total";
    /// Histogram: events per audit group commit.
    pub const AUDIT_BATCH_SIZE: &str = warden_store::audit::BATCH_SIZE_METRIC;
    /// Histogram: seconds per audit group commit.
    pub const AUDIT_COMMIT_SECONDS: &str = warden_store::audit::COMMIT_SECONDS_METRIC;
    /// Counter: failed audit group commits.
    pub const AUDIT_COMMIT_FAILURES: &str = warden_store::audit::COMMIT_FAILURES_METRIC;
    /// Gauge: audit events queued and not yet in the Merkle log.
    pub const AUDIT_QUEUE_DEPTH: &str = "warden_audit_queue_depth";
    /// Gauge: how long the oldest queued audit event has waited.
    pub const AUDIT_INTEGRATION_LAG: &str = "warden_audit_integration_lag_seconds";
    /// Counter: audit events this replica integrated into the log.
    pub const AUDIT_INTEGRATED: &str = "warden_audit_integrated_total";
}

/// The `route` label of a request that matched no route.
pub const NO_ROUTE: &str = "(none)";

/// Upper bounds of the latency buckets, in seconds: 10 µs to 60 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Upper bounds of the audit batch-size buckets (the writer's default
/// largest batch is 1024).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Content type of the Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Inner {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

/// An App's metrics: a handle to its own recorder, or nothing when
/// disabled (every call is then a no-op; also the `Default`). Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl Metrics {
    /// A fresh recorder when `options.enabled`, else [`Metrics::disabled`].
    pub fn new(options: &MetricsOptions) -> Self {
        if !options.enabled {
            return Self::disabled();
        }
        let recorder = Arc::new(build_recorder());
        let handle = recorder.handle();
        let metrics = Metrics {
            inner: Some(Arc::new(Inner { recorder, handle })),
        };
        metrics.record(describe);
        metrics
    }

    /// Records nothing and renders nothing.
    pub fn disabled() -> Self {
        Metrics { inner: None }
    }

    /// Whether metrics are recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The recorder, for recording sites outside this crate (the audit
    /// writer).
    pub fn recorder(&self) -> Option<Arc<dyn metrics::Recorder + Send + Sync>> {
        self.inner
            .as_ref()
            .map(|i| Arc::clone(&i.recorder) as Arc<dyn metrics::Recorder + Send + Sync>)
    }

    /// Everything recorded so far, in the Prometheus text format; `None`
    /// when disabled.
    pub fn render(&self) -> Option<String> {
        self.inner.as_ref().map(|i| i.handle.render())
    }

    /// Drains histogram samples into their buckets (also done by every
    /// render).
    pub fn upkeep(&self) {
        if let Some(i) = &self.inner {
            i.handle.run_upkeep();
        }
    }

    /// Runs `f` with this App's recorder as the current one.
    fn record(&self, f: impl FnOnce()) {
        if let Some(i) = &self.inner {
            metrics::with_local_recorder(&*i.recorder, f);
        }
    }

    /// A gateway request answered with `status` after `total`; `allowed`
    /// when it was authorized and forwarded (its status is then the
    /// upstream's, or 502/504 when the upstream failed).
    pub fn gateway_request(&self, route: &str, allowed: bool, status: StatusCode, total: Duration) {
        self.record(|| {
            let decision = if allowed { "allow" } else { "deny" };
            counter!(names::GATEWAY_REQUESTS, "route" => route.to_owned(), "decision" => decision,
                "status" => status.as_str().to_owned())
            .increment(1);
            histogram!(names::GATEWAY_REQUEST_SECONDS, "route" => route.to_owned()).record(total.as_secs_f64());
        });
    }

    /// Counts one verified-token cache lookup.
    pub fn token_cache(&self, hit: bool) {
        self.record(|| {
            let result = if hit { "hit" } else { "miss" };
            counter!(names::TOKEN_CACHE_LOOKUPS, "result" => result).increment(1);
        });
    }

    /// The bearer token took `took` to verify (cache hit or not).
    pub fn verify_time(&self, took: Duration) {
        self.record(|| histogram!(names::GATEWAY_VERIFY_SECONDS).record(took.as_secs_f64()));
    }

    /// The authorizer took `took` to decide.
    pub fn authorize_time(&self, took: Duration) {
        self.record(|| histogram!(names::GATEWAY_AUTHORIZE_SECONDS).record(took.as_secs_f64()));
    }

    /// The upstream of `route` answered (or failed) after `took`.
    pub fn upstream_time(&self, route: &str, took: Duration) {
        self.record(|| {
            histogram!(names::GATEWAY_UPSTREAM_SECONDS, "route" => route.to_owned()).record(took.as_secs_f64());
        });
    }

    /// A request on `route` was refused by the rate limit.
    pub fn rate_limited(&self, route: &str) {
        self.record(|| counter!(names::GATEWAY_RATE_LIMITED, "route" => route.to_owned()).increment(1));
    }

    /// `/oauth/token` issued a token by `grant`.
    pub fn token_issued(&self, grant: &'static str) {
        self.record(|| counter!(names::TOKENS_ISSUED, "grant" => grant).increment(1));
    }

    /// `/oauth/token` refused a request for `grant` with `error`.
    pub fn token_failed(&self, grant: &'static str, error: &'static str) {
        self.record(|| counter!(names::TOKEN_FAILURES, "grant" => grant, "error" => error).increment(1));
    }

    /// The audit queue holds `depth` events, the oldest waiting `lag_ms`.
    pub fn audit_queue(&self, depth: u64, lag_ms: u64) {
        self.record(|| {
            metrics::gauge!(names::AUDIT_QUEUE_DEPTH).set(depth as f64);
            metrics::gauge!(names::AUDIT_INTEGRATION_LAG).set(lag_ms as f64 / 1000.0);
        });
    }

    /// This replica integrated `events` queued audit events.
    pub fn audit_integrated(&self, events: u64) {
        self.record(|| counter!(names::AUDIT_INTEGRATED).increment(events));
    }

    /// The fan-out subscription went up or down.
    pub fn fanout_subscribed(&self, up: bool) {
        self.record(|| metrics::gauge!(names::FANOUT_SUBSCRIBED).set(if up { 1.0 } else { 0.0 }));
    }

    /// Client connections open now.
    pub fn connections_open(&self, open: usize) {
        self.record(|| metrics::gauge!(names::CONNECTIONS_OPEN).set(open as f64));
    }

    /// Warden closed a client connection for `reason`.
    pub fn connection_closed(&self, reason: &'static str) {
        self.record(|| counter!(names::CONNECTIONS_CLOSED, "reason" => reason).increment(1));
    }

    /// The registry API decided `action`.
    pub fn registry_decision(&self, action: &str, allowed: bool) {
        self.record(|| {
            let decision = if allowed { "allow" } else { "deny" };
            counter!(names::REGISTRY_DECISIONS, "action" => action.to_owned(), "decision" => decision).increment(1);
        });
    }

    /// `GET /metrics`: the text format, or 404 when disabled.
    pub fn response(&self) -> Response {
        match self.render() {
            Some(text) => {
                let mut response = text.into_response();
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            None => crate::error::ApiError::not_found("metrics are disabled").into_response(),
        }
    }
}

fn build_recorder() -> PrometheusRecorder {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(names::AUDIT_BATCH_SIZE.into()), BATCH_BUCKETS));
    match builder {
        Ok(b) => b.build_recorder(),
        // Only empty bucket lists are refused, and these are not empty;
        // summaries would still serve.
        Err(_) => PrometheusBuilder::new().build_recorder(),
    }
}

/// HELP lines for every metric.
fn describe() {
    use names::*;
    describe_counter!(
        GATEWAY_REQUESTS,
        "Gateway requests by route, decision (allow: forwarded) and status."
    );
    describe_histogram!(
        GATEWAY_REQUEST_SECONDS,
        Unit::Seconds,
        "Gateway time to response headers, by route."
    );
    describe_histogram!(
        GATEWAY_VERIFY_SECONDS,
        Unit::Seconds,
        "Gateway bearer-token verification time."
    );
    describe_histogram!(
        GATEWAY_AUTHORIZE_SECONDS,
        Unit::Seconds,
        "Gateway authorization (policy) time."
    );
    describe_histogram!(
        GATEWAY_UPSTREAM_SECONDS,
        Unit::Seconds,
        "Upstream time to response headers, by route."
    );
    describe_counter!(
        GATEWAY_RATE_LIMITED,
        "Gateway requests refused by the rate limit, by route."
    );
    describe_counter!(
        TOKEN_CACHE_LOOKUPS,
        "Gateway verified-token cache lookups, by result (hit, miss)."
    );
    describe_counter!(TOKENS_ISSUED, "Tokens issued by /oauth/token, by grant.");
    describe_counter!(
        TOKEN_FAILURES,
        "Requests refused by /oauth/token, by grant and error code."
    );
    metrics::describe_gauge!(
        FANOUT_SUBSCRIBED,
        "1 while this replica is subscribed to the Redis fan-out, 0 when not (it then reconciles from the store)."
    );
    describe_counter!(
        REGISTRY_DECISIONS,
        "Registry API policy decisions, by action and decision (allow, deny)."
    );
    metrics::describe_gauge!(CONNECTIONS_OPEN, "Client connections open now.");
    describe_counter!(
        CONNECTIONS_CLOSED,
        "Client connections Warden closed, by reason (header_timeout, idle_timeout, write_stalled, drain_deadline)."
    );
    describe_histogram!(AUDIT_BATCH_SIZE, Unit::Count, "Audit events per group commit.");
    describe_histogram!(AUDIT_COMMIT_SECONDS, Unit::Seconds, "Audit group-commit time.");
    describe_counter!(AUDIT_COMMIT_FAILURES, "Failed audit group commits.");
    metrics::describe_gauge!(AUDIT_QUEUE_DEPTH, "Audit events queued and not yet in the Merkle log.");
    metrics::describe_gauge!(
        AUDIT_INTEGRATION_LAG,
        Unit::Seconds,
        "How long the oldest queued audit event has waited for the sequencer."
    );
    describe_counter!(
        AUDIT_INTEGRATED,
        "Audit events this replica integrated into the Merkle log."
    );
}

/// `GET /metrics` for any router.
pub fn route<St: Clone + Send + Sync + 'static>(metrics: Metrics) -> MethodRouter<St> {
    get(move || {
        let metrics = metrics.clone();
        async move { metrics.response() }
    })
}

/// Runs the upkeep every 5 s and, when `listener` is given, serves
/// `GET /metrics` (and nothing else) on it; runs until aborted.
pub fn spawn(metrics: Metrics, listener: Option<TcpListener>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let upkeep = {
            let metrics = metrics.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    metrics.upkeep();
                }
            }
        };
        match listener {
            None => upkeep.await,
            Some(listener) => {
                let router: Router = Router::new().route("/metrics", route(metrics));
                tokio::select! {
                    () = upkeep => {}
                    served = axum::serve(listener, router) => {
                        if let Err(e) = served {
                            tracing::error!(error = %e, "the metrics listener failed");
                        }
                    }
                }
            }
        }
    })
}
