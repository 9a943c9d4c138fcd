//! The OAuth 2.0 token service: `POST /oauth/token` with its grants
//! (client credentials, rotating refresh tokens, RFC 8693 token exchange,
//! and the grants people approve for public clients: authorization code
//! with PKCE, RFC 8628 device code),
//! revocation (RFC 7009), introspection (RFC 7662), discovery (RFC 8414 and
//! the JWKS), and the clients it serves: registration, secrets,
//! authentication and failed-authentication limits.
//!
//! # Layout
//! - `token.rs`: the token endpoint; `grants/`: one module per grant
//!   (`people.rs`: the two a person approves).
//! - `authorize.rs`: the authorization endpoint and the checks of its
//!   requests (the person answers in the dashboard); `device.rs`: the
//!   device authorization endpoint.
//! - `pkce.rs`, `redirect_uri.rs`: pure rules of PKCE and redirect URIs.
//! - `revoke.rs`, `introspect.rs`, `metadata.rs`: the other endpoints.
//! - `clients.rs`: registration, secrets and the client cache;
//!   `client_auth.rs`: authenticating a client; `failures.rs`: limits on
//!   failed authentications.
//! - `form.rs` (strict form bodies) and `scope.rs` (RFC 6749 scopes): pure.
//!
//! # What it must not touch
//! Routes and forwarding (the gateway's), registry objects, policies: a
//! token says who its holder is; what they may do is decided elsewhere.

pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod device;
pub mod failures;
pub mod form;
pub mod grants;
pub mod introspect;
pub mod metadata;
pub mod pkce;
pub mod redirect_uri;
pub mod revoke;
pub mod scope;
pub mod token;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn;
use axum::routing::{get, post};
use warden_store::Store;

use self::clients::Clients;
use self::failures::FailureLimiter;
use crate::access::{Access, Context};
use crate::http::request_id;
use crate::state::AppState;

/// What the token service needs: the core, the access layer (to verify
/// tokens presented for exchange, introspection and revocation), the
/// clients and the failed-authentication limits.
#[derive(Debug)]
pub struct OAuthState<S> {
    /// The shared core.
    pub app: Arc<AppState<S>>,
    /// Who may do what.
    pub access: Arc<Access>,
    /// Registered clients.
    pub clients: Arc<Clients>,
    /// Failed client authentications.
    pub failures: FailureLimiter,
}

impl<S: Store> Context for OAuthState<S> {
    type Store = S;
    fn app(&self) -> &AppState<S> {
        &self.app
    }
    fn access(&self) -> &Access {
        &self.access
    }
}

/// The token service's routes.
pub fn routes<S: Store>(state: Arc<OAuthState<S>>) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::oauth_server::<S>),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::openid_configuration::<S>),
        )
        .route("/.well-known/jwks.json", get(metadata::jwks::<S>))
        .route("/oauth/token", post(token::token::<S>).layer(from_fn(request_id::tag)))
        .route("/oauth/authorize", get(authorize::authorize::<S>))
        .route(
            "/oauth/device_authorization",
            post(device::device_authorization::<S>).layer(from_fn(request_id::tag)),
        )
        .route(
            "/oauth/revoke",
            post(revoke::revoke::<S>).layer(from_fn(request_id::tag)),
        )
        .route(
            "/oauth/introspect",
            post(introspect::introspect::<S>).layer(from_fn(request_id::tag)),
        )
        .with_state(state)
}
