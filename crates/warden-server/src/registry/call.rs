//! One registry API call: who is calling (a verified Warden token), the
//! Cedar decision on what they ask, and the audit events it leaves.
//!
//! Every decision is audited, allowed or denied, with the deciding policy
//! ids and the stated purpose. An allowed call proceeds only once its
//! decision is durable in the log (a log that cannot be written answers
//! 503: fail closed); a denial is answered 403 whatever the log says.
//! Changes are audited a second time, after they are made, as
//! `registry_change` or `approval` events carrying the new state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use warden_audit::{AuditEvent, Decision, EventKind};
use warden_policy::Resource;
use warden_registry::RegistryError;
use warden_store::{Store, StoreError};

use super::entities;
use crate::error::ApiError;
use crate::gateway::Caller;
use crate::gateway::authz::{AccessRequest, ResourceRef};
use crate::state::{AppState, now};
use crate::{bearer, purpose, request_id};

/// The route name registry decisions are audited under.
pub const ROUTE: &str = "registry";

/// An authenticated registry call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Who is calling.
    pub caller: Caller,
    /// This request's id (also in `X-Warden-Request-Id`).
    pub request_id: String,
    /// The client's address.
    pub source_ip: IpAddr,
    /// Now, Unix seconds.
    pub now: u64,
}

impl<S: Store> FromRequestParts<Arc<AppState<S>>> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState<S>>) -> Result<Self, ApiError> {
        let token = bearer::bearer(&parts.headers).ok_or_else(ApiError::missing_token)?;
        Call::from_token(state, token, parts).await
    }
}

impl Call {
    /// The call of a request presenting `token` (its bearer token, or the
    /// dashboard session's): verified strictly, re-reading the keys once
    /// when it names a key rotated elsewhere a moment ago.
    pub async fn from_token<S: Store>(state: &AppState<S>, token: &str, parts: &Parts) -> Result<Call, ApiError> {
        let now = now();
        let seen = state.keys.get();
        let token = match bearer::verify(state, token, now) {
            Err(e) if bearer::unknown_kid_in(&seen, token, now) => {
                if state
                    .keys
                    .reload_for_unknown_kid(&seen, &state.manager, &state.options, now)
                    .await
                {
                    bearer::verify(state, token, now)?
                } else {
                    return Err(e);
                }
            }
            other => other?,
        };
        let mut caller = Caller::from_warden(&token)
            .map_err(|e| ApiError::invalid_token(format!("the access token is invalid: {e}")))?;
        caller.purpose =
            purpose::stated(&parts.headers, Some(token.claims().raw())).map_err(ApiError::invalid_request)?;
        let request_id = parts
            .extensions
            .get::<request_id::RequestId>()
            .map_or_else(request_id::new, |r| r.0.clone());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(a)| a.ip());
        let source_ip = crate::client_ip::client_ip(peer, &parts.headers, &state.options.trusted_proxies);
        Ok(Call {
            caller,
            request_id,
            source_ip,
            now,
        })
    }
}

impl Call {
    /// The caller's subject.
    pub fn principal(&self) -> &str {
        &self.caller.principal
    }

    fn access(&self, action: &str, resource: &Resource) -> AccessRequest {
        let c = &self.caller;
        AccessRequest {
            principal: c.principal.clone(),
            roles: c.roles.clone(),
            scopes: c.scopes.clone(),
            client_id: c.client_id.clone(),
            actor_chain: c.actor_chain.clone(),
            tenant: c.tenant.clone(),
            action: action.to_owned(),
            resource: ResourceRef {
                type_name: resource.type_name.clone(),
                id: resource.id.clone(),
            },
            required_scopes: Vec::new(),
            route: ROUTE.to_owned(),
            source_ip: self.source_ip,
            request_id: self.request_id.clone(),
            purpose: c.purpose.clone(),
        }
    }

    /// Whether the policies allow `action` on `resource` (no audit event:
    /// for filtering what a listing shows).
    pub fn may<S: Store>(&self, state: &AppState<S>, action: &str, resource: &Resource) -> bool {
        state.policies.decide(&self.access(action, resource), resource).allowed
    }

    /// Decides `action` on `resource` and audits the decision. Denied: 403.
    /// Allowed but the log cannot be written: 503.
    pub async fn authorize<S: Store>(
        &self,
        state: &AppState<S>,
        action: &str,
        resource: &Resource,
    ) -> Result<(), ApiError> {
        let decision = state.policies.decide(&self.access(action, resource), resource);
        let outcome = if decision.allowed {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let event = self.decision_event(
            action,
            &entities::display(resource),
            outcome,
            decision.policy_ids.clone(),
        );
        let recorded = state.audit.record(event).await;
        state.metrics.registry_decision(action, decision.allowed);
        if !decision.allowed {
            if let Err(e) = recorded {
                tracing::error!(error = %e, "a registry denial could not be audited");
            }
            return Err(denial(action, resource, &decision.policy_ids));
        }
        recorded.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit log unavailable; refusing the registry call");
            ApiError::unavailable("the audit log is unavailable; nothing was done")
        })
    }

    /// Audits a denial decided outside the policies (the four-eyes rule).
    /// The caller is refused whatever the log says.
    pub async fn record_denial<S: Store>(&self, state: &AppState<S>, action: &str, resource: &str, policy_id: &str) {
        let event = self.decision_event(action, resource, Decision::Deny, vec![policy_id.to_owned()]);
        state.metrics.registry_decision(action, false);
        if let Err(e) = state.audit.record(event).await {
            tracing::error!(error = %e, "a registry denial could not be audited");
        }
    }

    /// Audits an allowed listing (one event for the whole list).
    pub async fn audit_listing<S: Store>(&self, state: &AppState<S>, action: &str, what: &str) -> Result<(), ApiError> {
        let event = self.decision_event(action, what, Decision::Allow, Vec::new());
        state
            .audit
            .record(event)
            .await
            .map(|_| ())
            .map_err(|_| ApiError::unavailable("the audit log is unavailable; nothing was done"))
    }

    fn decision_event(&self, action: &str, resource: &str, decision: Decision, policy_ids: Vec<String>) -> AuditEvent {
        let c = &self.caller;
        AuditEvent::new(
            self.now,
            EventKind::AccessDecision {
                principal: c.principal.clone(),
                actor_chain: c.actor_chain.clone(),
                client_id: c.client_id.clone(),
                jti: c.jti.clone(),
                action: action.to_owned(),
                resource: resource.to_owned(),
                decision,
                policy_ids,
                request_id: self.request_id.clone(),
                route: ROUTE.to_owned(),
                source_ip: self.source_ip,
                upstream_status: None,
                purpose: c.purpose.clone(),
            },
        )
    }

    /// Audits a change that was made. It is already in the store, so a
    /// log failure is answered 503 (the caller retries or checks) and
    /// logged loudly.
    pub async fn audit_change<S: Store>(
        &self,
        state: &AppState<S>,
        resource: &str,
        operation: &str,
        digest: Option<String>,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        self.audit_edit(state, resource, operation, digest, reason, Vec::new())
            .await
    }

    /// As [`Call::audit_change`], with the changed fields' old and new values.
    pub async fn audit_edit<S: Store>(
        &self,
        state: &AppState<S>,
        resource: &str,
        operation: &str,
        digest: Option<String>,
        reason: Option<String>,
        changes: Vec<String>,
    ) -> Result<(), ApiError> {
        let event = EventKind::RegistryChange {
            principal: self.caller.principal.clone(),
            resource: resource.to_owned(),
            operation: operation.to_owned(),
            digest,
            actor_chain: self.caller.actor_chain.clone(),
            reason,
            changes,
        };
        self.record(state, event).await
    }

    /// Records `event` at this call's time; 503 when the log fails.
    pub async fn record<S: Store>(&self, state: &AppState<S>, event: EventKind) -> Result<(), ApiError> {
        state.audit.record(AuditEvent::new(self.now, event)).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, request_id = %self.request_id, "a registry change was made but could not be audited");
            ApiError::unavailable("the change was made but the audit log is unavailable")
        })
    }
}

/// The 403 for a denial: `insufficient_scope` (RFC 6750, with a
/// challenge) when the token lacks the action's scope, else
/// `access_denied`, with a hint when a purpose would help. The deciding
/// policy ids go to the audit log, not the body.
fn denial(action: &str, resource: &Resource, policy_ids: &[String]) -> ApiError {
    if policy_ids.iter().any(|p| p.strip_prefix("scope.") == Some(action)) {
        return ApiError::insufficient_scope(&format!("the `{action}` scope"));
    }
    // Another tenant's dataset or model does not exist for this caller: a
    // 403 would confirm the name. (The denial is audited all the same.)
    if action.ends_with(".read") && policy_ids.iter().any(|p| p == "tenant.isolation") {
        return ApiError::not_found(format!("{} not found", entities::display(resource)));
    }
    let mut text = format!(
        "the policies do not allow `{action}` on {}",
        entities::display(resource)
    );
    if policy_ids
        .iter()
        .any(|p| p == "dataset.purpose" || p == "dataset.pii-purpose")
    {
        text.push_str(&format!(
            "; state one of the dataset's allowed purposes in `{}`",
            crate::purpose::HEADER
        ));
    }
    ApiError::access_denied(text)
}

/// The API error for a registry store error: 404, 409, 400 or 403 for
/// what the caller can act on; 503 for the store itself.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
        StoreError::Conflict(m) => ApiError::conflict(m),
        StoreError::Registry(r) => rule_error(r),
        other => other.into(),
    }
}

/// The API error for a registry rule.
pub fn rule_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Invalid { .. } | RegistryError::Transition { .. } => ApiError::invalid_request(e.to_string()),
        RegistryError::FourEyes(_) => ApiError::access_denied(e.to_string()),
        RegistryError::Closed(_) => ApiError::conflict(e.to_string()),
    }
}
