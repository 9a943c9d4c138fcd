//! Warden's HTTP server: the OAuth 2.0 token service (RFC 6749, 7009,
//! 7523, 7662, 8414, 8693, 9068), the gateway in front of AI APIs, the
//! governance registry API, the admin and audit APIs and the compliance
//! dashboard, on axum.
//!
//! # Layout
//! A room per concern; rooms lower in this list never import rooms above.
//! - The core: [`state`] (what every room shares: store, options, keys,
//!   revocations, audit sink, metrics, notices to other replicas),
//!   [`options`], [`error`] (every error's HTTP answer), [`keys`], [`dpop`]
//!   (DPoP nonces, replay cache and answers),
//!   [`revocation`], [`secret`] (opaque secrets and their stored hash), [`refusals`], [`audit_sink`], [`metrics`], [`notice`], [`redis`]
//!   (the one way into Redis), [`http`] (bodies, client addresses,
//!   request ids).
//! - [`access`]: who is calling and what they may do — one
//!   `authenticate` for own and federated tokens, the extractors of
//!   Warden's APIs, Cedar, registry attributes.
//! - [`login`]: people signing in through their company's identity
//!   provider (OpenID Connect relying party); says who someone is.
//! - [`approvals`]: people approving agents' actions (a policy's
//!   `@approval`): requests, answers, the single use of an approval.
//! - [`oauth`]: the token service and its clients.
//! - [`gateway`]: routes to upstream AI APIs, the router's fallback.
//! - [`registry`]: the governance registry API.
//! - [`admin`]: the client admin and audit APIs.
//! - [`dashboard`]: the compliance dashboard under `/ui`.
//! - [`replicas`]: fan-out, reconciliation and leases between replicas.
//! - [`health`], [`demo`] (the built-in demo upstream of `--demo`).
//! - The assembly: this file (routers), `open.rs` ([`App::new`]),
//!   `serve.rs` ([`App::serve`]) and `background.rs` (periodic work).
//!
//! # What it must not touch
//! Token parsing and signature rules (warden-jose), storage SQL
//! (warden-store), Merkle hashing (warden-audit). Secrets never reach logs,
//! audit events or error bodies.

pub mod access;
pub mod admin;
pub mod approvals;
pub mod audit_sequencer;
pub mod audit_sink;
mod background;
pub mod dashboard;
pub mod demo;
pub mod dpop;
pub mod error;
pub mod gateway;
pub mod health;
pub mod http;
pub mod keys;
pub mod login;
pub mod metrics;
pub mod notice;
pub mod oauth;
mod open;
pub mod options;
pub mod redis;
pub mod refusals;
pub mod registry;
pub mod replicas;
pub mod revocation;
pub mod secret;
mod serve;
pub mod state;
pub mod time;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use warden_store::{AuditSigner, OAuthStore, StoreError};

use crate::access::{Access, CedarAuthorizer};
use crate::admin::AdminState;
pub use crate::audit_sink::{AuditSink, MerkleSink};
use crate::dashboard::DashboardState;
use crate::gateway::{Gateway, GatewayContext};
use crate::health::Health;
use crate::oauth::OAuthState;
use crate::oauth::clients::Clients;
pub use crate::options::ServerOptions;
use crate::registry::RegistryState;
use crate::replicas::{Fanout, Replica};
use crate::state::{AppState, now};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A trusted issuer is misconfigured.
    #[error(transparent)]
    Federation(#[from] access::FederationError),
    /// An identity provider is misconfigured.
    #[error(transparent)]
    Login(#[from] login::ProviderError),
    /// Approval notifications are misconfigured.
    #[error(transparent)]
    Approvals(#[from] approvals::notify::NotifyError),
    /// The policies are invalid.
    #[error(transparent)]
    Policy(#[from] warden_policy::PolicyError),
    /// A gateway route is misconfigured.
    #[error(transparent)]
    Gateway(#[from] gateway::GatewayBuildError),
    /// Redis is misconfigured.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// Binding or serving failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// The assembled server: every room's state, built once by [`App::new`].
pub struct App<S> {
    app: Arc<AppState<S>>,
    access: Arc<Access>,
    clients: Arc<Clients>,
    oauth: Arc<OAuthState<S>>,
    admin: Arc<AdminState<S>>,
    registry: Arc<RegistryState<S>>,
    dashboard: Arc<DashboardState<S>>,
    gateway: Option<Arc<Gateway>>,
    replica: Arc<Replica<S>>,
    fanout: Option<Arc<Fanout>>,
    sink: MerkleSink,
    signer: Arc<AuditSigner>,
}

impl<S> std::fmt::Debug for App<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("issuer", &self.app.options.issuer)
            .finish_non_exhaustive()
    }
}

impl<S: warden_store::Store> App<S> {
    /// The Cedar policies in force (with `reload`).
    pub fn policies(&self) -> Arc<CedarAuthorizer> {
        Arc::clone(&self.access.policies)
    }

    /// Reloads the policies now (SIGHUP); keeps the set in force when the
    /// new one is invalid. Audited. Returns whether they were replaced.
    pub async fn reload_policies(&self, trigger: &str) -> bool {
        self.access.reload_policies(&self.app, trigger).await
    }

    /// Serves `gateway` (built with another authorizer, rate limiter or
    /// settings) instead of the one built from `options.routes`.
    pub fn with_gateway(mut self, gateway: Gateway) -> Self {
        self.gateway = Some(Arc::new(gateway));
        self
    }

    /// The gateway, when routes are configured.
    pub fn gateway(&self) -> Option<&Arc<Gateway>> {
        self.gateway.as_ref()
    }

    /// The shared core (for tests and embedding).
    pub fn state(&self) -> &Arc<AppState<S>> {
        &self.app
    }

    /// The access layer (for tests and embedding).
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// The registered clients as the token service reads them.
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// The audit log's verifier key (`warden audit vkey`).
    pub fn vkey(&self) -> String {
        self.signer.vkey()
    }

    /// The HTTP routes of every room on the main listener (the dashboard's
    /// only when it has no listener of its own: then `/ui` answers 404
    /// here); requests matching none go to the gateway when it has routes,
    /// and are answered 404 otherwise.
    pub fn router(&self) -> Router {
        let options = &self.app.options;
        let health = Arc::new(Health {
            app: Arc::clone(&self.app),
            limiter: self.gateway.as_ref().map(|g| g.limiter()),
            fanout: self.fanout.clone(),
        });
        let router = Router::new()
            .merge(health::routes(health))
            .merge(oauth::routes(Arc::clone(&self.oauth)))
            .merge(gateway::metadata::routes(&options.issuer, self.gateway.clone()))
            .merge(gateway::backchannel::routes(
                Arc::clone(&self.oauth),
                self.gateway.clone(),
            ))
            .merge(admin::routes(
                Arc::clone(&self.admin),
                options.metrics.enabled && options.metrics.listen.is_none(),
            ))
            .merge(registry::routes(Arc::clone(&self.registry)))
            .merge(match options.dashboard.listen {
                None => dashboard::routes(Arc::clone(&self.dashboard)),
                Some(_) => dashboard::elsewhere(),
            });
        let router = match &self.gateway {
            Some(g) => router.fallback_service(gateway::router(GatewayContext {
                app: Arc::clone(&self.app),
                access: Arc::clone(&self.access),
                gateway: Arc::clone(g),
            })),
            None => router.fallback(|| async { error::ApiError::not_found("no such endpoint") }),
        };
        router.layer(axum::middleware::from_fn(http::unread_body::close_after_refusal))
    }

    /// The routes of the dashboard's own listener (`dashboard.listen`):
    /// the dashboard, `/` sending to it, and 404 for anything else.
    pub fn dashboard_router(&self) -> Router {
        dashboard::routes(Arc::clone(&self.dashboard))
            .route(
                "/",
                axum::routing::get(|| async { axum::response::Redirect::to("/ui/") }),
            )
            .fallback(|| async { error::ApiError::not_found("no such endpoint: this listener serves the dashboard") })
            .layer(axum::middleware::from_fn(http::unread_body::close_after_refusal))
    }
}

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    Ok(TcpListener::bind(addr).await?)
}

/// Convenience for tests: the store's revocations since `since`.
pub async fn revocations<S: OAuthStore>(store: &S, since: u64) -> Result<Vec<(String, u64)>, StoreError> {
    store.revocations_since(since, now()).await
}
