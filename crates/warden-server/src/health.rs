//! `/healthz` (the process answers) and `/readyz` (it can do its job: the
//! store answers, the audit log can be written, a key signs, and it is not
//! shutting down). The audit log counts as unwritable from a failed append
//! (or change committed with its events) until a write succeeds: the next
//! append, or the write `/readyz` itself probes while it is failing. `/readyz` also
//! shows the gateway's rate limiter (`rate_limit`: backend, and whether a
//! shared one fell back because Redis is unreachable); a degraded limiter
//! does not make the server unready, as every replica shares the same Redis.
//! Likewise `fanout`: whether the Redis fan-out is subscribed and how old
//! the replica's last own heartbeat through it is. `audit_queue` shows
//! the events waiting for the sequencer and how long the oldest has
//! waited; past `audit.max_integration_delay` the server is unready.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use warden_store::Store;

use crate::gateway::RateLimiter;
use crate::replicas::Fanout;
use crate::state::{AppState, now, now_ms};

/// What readiness looks at.
#[derive(Debug)]
pub struct Health<S> {
    /// The shared core (readiness, keys, store).
    pub app: Arc<AppState<S>>,
    /// The gateway's rate limiter, when routes are configured.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// The Redis fan-out, when `redis_url` is set.
    pub fanout: Option<Arc<Fanout>>,
}

/// `/healthz` and `/readyz`.
pub fn routes<S: Store>(health: Arc<Health<S>>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<S>))
        .with_state(health)
}

/// Liveness.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness, with the reason when not ready.
pub async fn readyz<S: Store>(State(health): State<Arc<Health<S>>>) -> (StatusCode, Json<Value>) {
    let state = &health.app;
    let rate_limit = health.limiter.as_ref().map(|l| json!(l.status()));
    let fanout = health.fanout.as_ref().map(|f| f.status(now()));
    let mut problems = Vec::new();
    if !state.is_ready() {
        problems.push("shutting down".to_owned());
    }
    if state.keys.get().signing.is_none() {
        problems.push("no active signing key".to_owned());
    }
    if let Err(e) = state.store.size().await {
        tracing::warn!(error = %e, "readiness: store unreachable");
        problems.push("store unreachable".to_owned());
    }
    // The last write of the audit log failed: nothing audited can be done
    // until it can be written again. Only a write tells, so probe one
    // (a readiness check is how an idle server learns it recovered); the
    // next successful append clears it too.
    if let Some(failure) = state.store.audit_failure() {
        if let Err(e) = state.store.probe_audit().await {
            tracing::warn!(last_failure = %failure, error = %e, "readiness: the audit log cannot be written");
            problems.push("audit log cannot be written".to_owned());
        } else {
            tracing::info!("readiness: the audit log can be written again");
        }
    }
    // Acknowledged events wait in the queue for the sequencer; past the
    // bound, the log no longer says what happened soon enough.
    let bound = state.options.audit.max_integration_delay;
    let audit_queue = match state.store.queue_status().await {
        Ok(status) => {
            let lag_ms = status.lag_ms(now_ms());
            if u128::from(lag_ms) > bound.as_millis() {
                tracing::warn!(
                    depth = status.depth,
                    lag_ms,
                    "readiness: audit integration lags behind its bound"
                );
                problems.push(format!(
                    "audit integration lags {lag_ms} ms behind (bound {} ms)",
                    bound.as_millis()
                ));
            }
            Some(json!({"depth": status.depth, "lag_ms": lag_ms, "max_delay_ms": bound.as_millis()}))
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the audit queue cannot be read");
            problems.push("audit queue unreadable".to_owned());
            None
        }
    };
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "backend": state.store.backend(),
                "rate_limit": rate_limit,
                "fanout": fanout,
                "audit_queue": audit_queue,
            })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not ready",
                "problems": problems,
                "rate_limit": rate_limit,
                "fanout": fanout,
                "audit_queue": audit_queue,
            })),
        )
    }
}
