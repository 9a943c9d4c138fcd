//! What is asked ([`AccessRequest`]: a caller, an action, a resource),
//! what is answered ([`AuthzDecision`]), who answers ([`Authorizer`]), and
//! the audit event that records it. The gateway, the registry API and the
//! dashboard all decide through these types, so a decision reads the same
//! in the audit log wherever it was made.
//!
//! The Cedar engine (`cedar.rs`) implements [`Authorizer`];
//! [`ScopeOnlyAuthorizer`] allows exactly the requests whose token holds
//! the route's scopes (a gateway built without policies).

use warden_audit::{AuditEvent, Decision, EventKind};
use warden_policy::Resource;

use super::caller::Caller;

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Who asks, in which request.
    pub caller: &'a Caller,
    /// The action (`inference.invoke`, `dataset.read`).
    pub action: &'a str,
    /// The resource. The gateway names only its type and id (the
    /// authorizer adds what the registry knows of it); the registry API
    /// passes the object it just read, with every attribute.
    pub resource: &'a Resource,
    /// Where the request came in: a gateway route's name, or `registry`.
    pub route: &'a str,
    /// Scopes the route requires (none on Warden's own APIs).
    pub required_scopes: &'a [String],
}

impl AccessRequest<'_> {
    /// The `access_decision` event recording `decision` on this request.
    pub fn event(&self, decision: Decision, policy_ids: Vec<String>) -> AuditEvent {
        self.caller.decision_event(
            self.action,
            &self.resource.to_string(),
            self.route,
            decision,
            policy_ids,
        )
    }
}

impl Caller {
    /// The `access_decision` event of `action` on `resource` (its audit
    /// name, `Type::"id"`, or a listing's `Type::*`) through `route`.
    pub fn decision_event(
        &self,
        action: &str,
        resource: &str,
        route: &str,
        decision: Decision,
        policy_ids: Vec<String>,
    ) -> AuditEvent {
        AuditEvent::new(
            self.now,
            EventKind::AccessDecision {
                principal: self.principal.clone(),
                actor_chain: self.actor_chain.clone(),
                client_id: self.client_id.clone(),
                jti: self.jti.clone(),
                action: action.to_owned(),
                resource: resource.to_owned(),
                decision,
                policy_ids,
                request_id: self.request_id.clone(),
                route: route.to_owned(),
                source_ip: self.source_ip,
                upstream_status: None,
                purpose: self.purpose.clone(),
            },
        )
    }
}

/// The answer, with the policies that decided it (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Ids of the deciding policies.
    pub policy_ids: Vec<String>,
    /// For an allow: the person's approval the deciding policies ask for
    /// (`@approval`) before the request may proceed.
    pub approval: Option<warden_policy::ApprovalNeed>,
}

impl AuthzDecision {
    /// The audit log's word for it.
    pub fn outcome(&self) -> Decision {
        if self.allowed { Decision::Allow } else { Decision::Deny }
    }
}

/// Decides access requests. Implementations must be fast and must not
/// block: they run on the request path.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Allows or denies `request`.
    fn authorize(&self, request: &AccessRequest<'_>) -> AuthzDecision;
}

/// Allows a request when its token holds every scope the route requires,
/// and denies it otherwise. Not a policy engine: the default of a gateway
/// built without the Cedar policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeOnlyAuthorizer;

impl ScopeOnlyAuthorizer {
    /// The policy id recorded for its decisions.
    pub const POLICY_ID: &'static str = "warden.route-scopes";
}

impl Authorizer for ScopeOnlyAuthorizer {
    fn authorize(&self, request: &AccessRequest<'_>) -> AuthzDecision {
        let scopes = &request.caller.scopes;
        AuthzDecision {
            allowed: request.required_scopes.iter().all(|s| scopes.contains(s)),
            policy_ids: vec![Self::POLICY_ID.to_owned()],
            approval: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_only() {
        let caller = Caller {
            scopes: vec!["a".into(), "b".into()],
            ..Caller::test("user:a")
        };
        let resource = Resource::new("Model", "m \"1\"");
        let mut required = vec!["b".to_owned()];
        let request = |required: &[String]| {
            ScopeOnlyAuthorizer.authorize(&AccessRequest {
                caller: &caller,
                action: "invoke",
                resource: &resource,
                route: "r",
                required_scopes: required,
            })
        };
        assert!(request(&required).allowed);
        required.push("c".into());
        assert!(!request(&required).allowed);
    }

    #[test]
    fn decisions_are_recorded_with_the_resource_in_cedar_syntax() {
        let caller = Caller::test("user:a");
        let resource = Resource::new("Model", "gpt-4o");
        let request = AccessRequest {
            caller: &caller,
            action: "inference.invoke",
            resource: &resource,
            route: "chat",
            required_scopes: &[],
        };
        let event = request.event(Decision::Deny, vec!["p".into()]);
        let EventKind::AccessDecision {
            resource,
            route,
            decision,
            ..
        } = event.kind
        else {
            panic!("not a decision")
        };
        assert_eq!(
            (resource.as_str(), route.as_str(), decision),
            ("Model::\"gpt-4o\"", "chat", Decision::Deny)
        );
    }
}
