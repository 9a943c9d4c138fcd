//! The compliance dashboard under `/ui`: server-rendered pages (askama
//! templates compiled into the binary, htmx for partial updates, every
//! asset embedded, no CDN) for auditors and operators.
//!
//! Every page and action is an ordinary Warden request: the session is a
//! Warden access token (`session.rs`) that becomes the same
//! [`Caller`](crate::access::Caller) a bearer token does on the API, each
//! page is authorized by the Cedar policies, and denials and changes land
//! in the audit log like the API's. Registry pages call the registry API's
//! own handlers, so the dashboard can never allow what the API refuses.
//!
//! # Layout
//! - `session.rs`: sign-in sessions, CSRF tokens, the same-origin check.
//! - `page.rs`: the page chrome, HTML responses, security headers
//!   (a strict Content-Security-Policy), error pages, embedded assets.
//! - `login.rs`: sign-in and sign-out; `form.rs`: reading posted forms.
//! - One module per page: `audit.rs`, `lineage.rs`, `models.rs`,
//!   `access.rs`, `keys.rs`, `sessions.rs` (a person's sign-in sessions,
//!   recorded in the store, and ending them), `approvals.rs` (agents'
//!   calls waiting for a person's approval, and answering them).
//! - Pure drawing: `graph.rs` (lineage layout), `chart.rs` (bar chart).

pub mod access;
pub mod approvals;
pub mod approve;
pub mod audit;
pub mod chart;
pub mod form;
pub mod graph;
pub mod keys;
pub mod lineage;
pub mod login;
pub mod models;
pub mod page;
pub mod session;
pub mod sessions;
pub mod sso;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn;
use axum::response::Redirect;
use axum::routing::{get, post};
use warden_store::Store;

pub use session::CsrfKey;

use crate::access::{Access, Context};
use crate::http::request_id;
use crate::registry::RegistryState;
use crate::state::AppState;

/// What the dashboard needs: the core, the access layer, the registry API
/// (whose handlers its registry pages call) and its own keys and jobs.
#[derive(Debug)]
pub struct DashboardState<S> {
    /// The shared core.
    pub app: Arc<AppState<S>>,
    /// Who may do what.
    pub access: Arc<Access>,
    /// The registry API's state.
    pub registry: Arc<RegistryState<S>>,
    /// The dashboard's own keys and jobs.
    pub ui: UiState,
}

impl<S: Store> DashboardState<S> {
    /// The dashboard over the registry API's state.
    pub fn new(registry: Arc<RegistryState<S>>, ui: UiState) -> Self {
        DashboardState {
            app: Arc::clone(&registry.app),
            access: Arc::clone(&registry.access),
            registry,
            ui,
        }
    }
}

impl<S: Store> Context for DashboardState<S> {
    type Store = S;
    fn app(&self) -> &AppState<S> {
        &self.app
    }
    fn access(&self) -> &Access {
        &self.access
    }
}

/// What the dashboard keeps per process: the CSRF key, the audit log's
/// verifier and its text form, and the running log verifications.
#[derive(Debug)]
pub struct UiState {
    /// CSRF tags.
    pub csrf: CsrfKey,
    /// The audit log's checkpoint verifier.
    pub verifier: warden_audit::NoteVerifier,
    /// The same, as `warden audit vkey` prints it.
    pub vkey: String,
    /// "Verify the whole log" jobs.
    pub jobs: audit::VerifyJobs,
    /// The identity providers people sign in through.
    pub providers: crate::login::Providers,
    /// Seals the sign-in in progress into its cookie.
    pub sealer: crate::login::Sealer,
}

impl UiState {
    /// The dashboard state of a server with `master`, the log `signer`
    /// and the identity providers `login`.
    pub fn new(
        master: &warden_keys::MasterKey,
        signer: &warden_store::AuditSigner,
        login: Vec<crate::options::LoginProvider>,
    ) -> Result<Self, crate::login::ProviderError> {
        Ok(UiState {
            csrf: CsrfKey::from_master(master),
            verifier: signer.verifier(),
            vkey: signer.vkey(),
            jobs: audit::VerifyJobs::default(),
            providers: crate::login::Providers::new(login)?,
            sealer: crate::login::Sealer::from_master(master)
                .map_err(|e| crate::login::ProviderError::Unavailable(e.to_string()))?,
        })
    }
}

/// What the main listener answers under `/ui` when the dashboard is
/// served on a listener of its own (`dashboard.listen`): 404, and never
/// the gateway (a browser sends the dashboard's cookies, which ignore
/// ports, to any `/ui` path of the host).
pub fn elsewhere() -> Router {
    let gone = || async { crate::error::ApiError::not_found("the dashboard is not served on this listener") };
    Router::new()
        .route("/ui", axum::routing::any(gone))
        .route("/ui/", axum::routing::any(gone))
        .route("/ui/{*rest}", axum::routing::any(gone))
}

/// The dashboard's routes, under `/ui`.
pub fn routes<S: Store>(state: Arc<DashboardState<S>>) -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/audit") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/audit") }))
        .route("/ui/login", get(login::form::<S>).post(login::sign_in::<S>))
        .route("/ui/logout", post(login::sign_out::<S>))
        .route("/ui/login/{provider}", get(sso::start::<S>))
        .route("/ui/login/{provider}/callback", get(sso::callback::<S>))
        .route(
            "/ui/authorize",
            get(approve::authorize_form::<S>).post(approve::authorize_answer::<S>),
        )
        .route(
            "/ui/device",
            get(approve::device_form::<S>).post(approve::device_answer::<S>),
        )
        .route("/ui/approvals", get(approvals::page::<S>))
        .route("/ui/approvals/{id}", get(approvals::approval::<S>))
        .route("/ui/approvals/{id}/approve", post(approvals::approve::<S>))
        .route("/ui/approvals/{id}/deny", post(approvals::deny::<S>))
        .route("/ui/audit", get(audit::page::<S>))
        .route("/ui/audit/events/{index}", get(audit::event::<S>))
        .route("/ui/audit/verify", post(audit::start_verify::<S>))
        .route("/ui/audit/verify/{job}", get(audit::verify_status::<S>))
        .route("/ui/lineage", get(lineage::page::<S>))
        .route("/ui/lineage/impact", get(lineage::impact::<S>))
        .route("/ui/models", get(models::page::<S>))
        .route("/ui/models/{name}", get(models::model::<S>))
        .route("/ui/promotions/{id}/{vote}", post(models::vote::<S>))
        .route("/ui/access", get(access::page::<S>))
        .route("/ui/keys", get(keys::page::<S>))
        .route("/ui/sessions", get(sessions::page::<S>))
        .route("/ui/sessions/end", post(sessions::end::<S>))
        .route("/ui/sessions/end-sign-in", post(sessions::end_sign_in::<S>))
        // Every other /ui path is the dashboard's too: never the gateway's
        // (the session cookie must never reach an upstream).
        .route("/ui/{*rest}", axum::routing::any(page::not_found))
        .layer(from_fn(request_id::tag))
        .route("/ui/assets/{file}", get(page::asset))
        .layer(from_fn(page::security_headers))
        .with_state(state)
}
