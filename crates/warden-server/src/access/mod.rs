//! Access: who is calling and what they may do — the one way a presented
//! token becomes a [`Caller`] (Warden's own tokens and trusted external
//! issuers', with the unknown-`kid` retry), the axum extractors of
//! Warden's APIs ([`Caller`], [`Admin`], [`Auditor`]), the request to
//! decide ([`AccessRequest`]), the Cedar policies that decide it, the
//! registry attributes they read, and the audit record of each decision.
//! The gateway, the registry API, the admin and audit APIs, the token
//! service and the dashboard all come through here.
//!
//! # Layout
//! - `authenticate.rs`: [`authenticate`], own and federated tokens.
//! - `caller.rs`: [`Caller`] and the extractors.
//! - `decide.rs`: deciding and auditing on Warden's own APIs.
//! - `request.rs`: [`AccessRequest`], [`Authorizer`], [`AuthzDecision`].
//! - `cedar.rs`: the Cedar engine with hot reload.
//! - `attributes.rs`, `entities.rs`: registry objects as Cedar resources.
//! - `audiences.rs`: verified-token caches per route audience.
//! - `federation.rs`: trusted external issuers and their keys.
//! - `delegation.rs`: `act` chains and `may_act` (pure).
//! - `purpose.rs`: the purpose a request states.
//!
//! # What it must not touch
//! Grants, routes, forwarding, registry storage: rooms above decide what
//! to do with a caller; this room only says who it is and what it may do.

mod attributes;
mod audiences;
mod authenticate;
mod caller;
pub mod cedar;
mod decide;
pub mod delegation;
pub mod entities;
pub mod federation;
pub mod purpose;
mod request;

use std::sync::Arc;

use warden_store::{Store, StoreError};

pub use self::attributes::RegistryAttributes;
pub use self::audiences::AudienceVerifiers;
pub use self::authenticate::{Accept, Presented, authenticate};
pub use self::caller::{Admin, Auditor, Caller, Scheme, access_token, bearer};
pub use self::cedar::CedarAuthorizer;
pub use self::decide::WARDEN_API_ROUTE;
pub use self::federation::{Federation, FederationError};
pub use self::request::{AccessRequest, Authorizer, AuthzDecision, ScopeOnlyAuthorizer};
use crate::dpop::Dpop;
use crate::options::ServerOptions;
use crate::state::AppState;

/// What deciding access needs beyond the core: the policies in force (with
/// the registry attributes they read), the trusted external issuers and
/// the verified-token caches of the routes' audiences.
#[derive(Debug)]
pub struct Access {
    /// The Cedar policies.
    pub policies: Arc<CedarAuthorizer>,
    /// Trusted external issuers.
    pub federation: Federation,
    /// Verified-token caches per audience (the routes' and the dashboard's).
    pub audiences: AudienceVerifiers,
    /// DPoP proof checking (RFC 9449): for DPoP-bound tokens here, and at
    /// the token endpoint.
    pub dpop: Dpop,
}

impl Access {
    /// The access layer of a server configured with `options`, deciding
    /// with `policies`, checking DPoP proofs with `dpop`.
    pub fn new(options: &ServerOptions, policies: Arc<CedarAuthorizer>, dpop: Dpop) -> Result<Self, FederationError> {
        let route_audiences = options
            .routes
            .iter()
            .filter_map(|r| r.audience.clone())
            .chain([options.ui_audience()]);
        Ok(Access {
            policies,
            federation: Federation::new(options.federation.clone())?,
            audiences: AudienceVerifiers::new(&options.issuer, route_audiences),
            dpop,
        })
    }

    /// Re-reads the registry attributes the policies see (after a change
    /// here or elsewhere).
    pub async fn refresh_attributes<S: Store>(&self, store: &S) -> Result<(), StoreError> {
        self.policies.registry().refresh(store).await
    }
}

/// A room's state as the access layer needs it: the core and the access
/// layer. Every room whose handlers take a [`Caller`] implements it.
pub trait Context: Send + Sync + 'static {
    /// The storage backend.
    type Store: Store;
    /// The shared core.
    fn app(&self) -> &AppState<Self::Store>;
    /// The access layer.
    fn access(&self) -> &Access;
}

impl<T: Context> Context for Arc<T> {
    type Store = T::Store;
    fn app(&self) -> &AppState<T::Store> {
        T::app(self)
    }
    fn access(&self) -> &Access {
        T::access(self)
    }
}

impl Access {
    /// Reloads the policies now (SIGHUP, a file change); keeps the set in
    /// force when the new one is invalid. A reload is audited and announced
    /// to the other replicas. Returns whether the policies were replaced.
    pub async fn reload_policies<S: Store>(&self, app: &AppState<S>, trigger: &str) -> bool {
        let policies = Arc::clone(&self.policies);
        // Parsing and validating Cedar is CPU work: off the async workers.
        let reloaded = match tokio::task::spawn_blocking(move || policies.reload()).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(trigger, error = %e, "policy reload task failed");
                return false;
            }
        };
        match reloaded {
            Ok(count) => {
                tracing::warn!(count, trigger, "policies reloaded");
                app.notices.publish(crate::notice::Notice::Policies);
                let event = warden_audit::EventKind::AdminAction {
                    principal: "warden".into(),
                    action: "policy.reload".into(),
                    target: format!("{count} policies ({trigger})"),
                };
                let event = warden_audit::AuditEvent::new(crate::state::now(), event);
                if let Err(e) = app.audit.record(event).await {
                    tracing::error!(error = %e, "could not audit the policy reload");
                }
                true
            }
            Err(e) => {
                tracing::error!(trigger, error = %e, "policy reload refused; the previous policies stay in force");
                false
            }
        }
    }
}
