//! `/healthz` (the process answers) and `/readyz` (it can do its job: the
//! store answers, a key signs, and it is not shutting down). `/readyz` also
//! shows the gateway's rate limiter (`rate_limit`: backend, and whether a
//! shared one fell back because Redis is unreachable); a degraded limiter
//! does not make the server unready, as every replica shares the same Redis.
//! Likewise `fanout`: whether the Redis fan-out is subscribed and how old
//! the replica's last own heartbeat through it is.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use warden_store::Store;

use crate::gateway::RateLimiter;
use crate::state::AppState;

/// Liveness.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness, with the reason when not ready; `limiter` is the gateway's.
pub async fn readyz<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    limiter: Option<Arc<dyn RateLimiter>>,
) -> (StatusCode, Json<Value>) {
    let rate_limit = limiter.map(|l| json!(l.status()));
    let fanout = state.fanout.status(crate::state::now());
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
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(
                json!({"status": "ready", "backend": state.store.backend(), "rate_limit": rate_limit, "fanout": fanout}),
            ),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "problems": problems, "rate_limit": rate_limit, "fanout": fanout})),
        )
    }
}
