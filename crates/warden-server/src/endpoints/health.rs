//! `/healthz` (the process answers) and `/readyz` (it can do its job: the
//! store answers, a key signs, and it is not shutting down).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use warden_store::Store;

use crate::state::AppState;

/// Liveness.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness, with the reason when not ready.
pub async fn readyz<S: Store>(State(state): State<Arc<AppState<S>>>) -> (StatusCode, Json<Value>) {
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
            Json(json!({"status": "ready", "backend": state.store.backend()})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "problems": problems})),
        )
    }
}
