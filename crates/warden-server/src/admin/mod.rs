//! Warden's own APIs for its operators: the client admin API under
//! `/api/v1/admin/clients` (the `admin` role or the `warden.admin` scope)
//! and the read-only audit API under `/api/v1/audit` (the `auditor` role
//! or the `audit.read` scope). Both are for principals acting themselves:
//! a delegated token is refused ([`Admin`], [`Auditor`]).
//!
//! # Layout
//! - `clients.rs`: list, show, create, disable, enable, rotate secrets.
//! - `revocations.rs`: revoking any token (a session, a CLI-issued token).
//! - `metrics.rs`: `GET /metrics` on the main listener, for a token.
//! - `audit.rs`: events, the latest signed checkpoint, proofs.
//! - `approvals.rs`: people's approvals of agents' actions, listed and
//!   answered (for a person acting themselves).

pub mod approvals;
pub mod audit;
pub mod clients;
pub mod metrics;
pub mod revocations;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn;
use axum::routing::{get, post};
use warden_store::Store;

use crate::access::{Access, Context};
#[cfg(doc)]
use crate::access::{Admin, Auditor};
use crate::http::request_id;
use crate::oauth::clients::Clients;
use crate::state::AppState;

/// What the admin and audit APIs need.
#[derive(Debug)]
pub struct AdminState<S> {
    /// The shared core.
    pub app: Arc<AppState<S>>,
    /// Who may do what.
    pub access: Arc<Access>,
    /// Registered clients (changes forget their cached records).
    pub clients: Arc<Clients>,
}

impl<S: Store> Context for AdminState<S> {
    type Store = S;
    fn app(&self) -> &AppState<S> {
        &self.app
    }
    fn access(&self) -> &Access {
        &self.access
    }
}

/// The admin and audit routes; `metrics_here`: `GET /metrics` too (the
/// metrics are recorded and have no listener of their own).
pub fn routes<S: Store>(state: Arc<AdminState<S>>, metrics_here: bool) -> Router {
    let router = if metrics_here {
        Router::new().route("/metrics", get(metrics::scrape::<S>))
    } else {
        Router::new()
    };
    router
        .route(
            "/api/v1/admin/clients",
            get(clients::list::<S>).post(clients::create::<S>),
        )
        .route("/api/v1/admin/clients/{id}", get(clients::show::<S>))
        .route("/api/v1/admin/clients/{id}/disable", post(clients::disable::<S>))
        .route("/api/v1/admin/clients/{id}/enable", post(clients::enable::<S>))
        .route(
            "/api/v1/admin/clients/{id}/rotate-secret",
            post(clients::rotate_secret::<S>),
        )
        .route("/api/v1/admin/revocations", post(revocations::revoke::<S>))
        .route("/api/v1/approvals", get(approvals::list::<S>))
        .route("/api/v1/approvals/{id}", get(approvals::show::<S>))
        .route("/api/v1/approvals/{id}/approve", post(approvals::approve::<S>))
        .route("/api/v1/approvals/{id}/deny", post(approvals::deny::<S>))
        .route("/api/v1/audit/events", get(audit::events::<S>))
        .route("/api/v1/audit/pending", get(audit::pending::<S>))
        .route("/api/v1/audit/checkpoint", get(audit::checkpoint::<S>))
        .route("/api/v1/audit/proof/inclusion", get(audit::inclusion::<S>))
        .route("/api/v1/audit/proof/consistency", get(audit::consistency::<S>))
        .layer(from_fn(request_id::tag))
        .with_state(state)
}
