//! `GET /metrics` on the main listener: the Prometheus text format, for a
//! token with the `metrics.read` scope or the `admin` role (a scraper gets
//! one with client credentials). On its own listener (`metrics.listen`,
//! meant for a private network) `/metrics` needs no token.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use warden_store::Store;

use super::AdminState;
use crate::access::Caller;
use crate::error::ApiError;
use crate::options::{roles, scopes};

/// `GET /metrics`.
pub async fn scrape<S: Store>(State(state): State<Arc<AdminState<S>>>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(roles::ADMIN, scopes::METRICS_READ)?;
    Ok(state.app.metrics.response())
}
