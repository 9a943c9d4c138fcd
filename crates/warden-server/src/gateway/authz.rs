//! The authorization interface of the gateway: what is asked
//! ([`AccessRequest`]), what is answered ([`AuthzDecision`]), and who
//! answers ([`Authorizer`]). The Cedar engine implements the trait; until
//! it is plugged in, [`ScopeOnlyAuthorizer`] allows exactly the requests
//! whose token holds the route's scopes.

use std::net::IpAddr;

/// The resource a request acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    /// Cedar entity type (`Model`, `Tool`).
    pub type_name: String,
    /// Entity id (`gpt-4o`, `search`).
    pub id: String,
}

impl std::fmt::Display for ResourceRef {
    /// Cedar's entity syntax: `Model::"gpt-4o"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = serde_json::to_string(&self.id).map_err(|_| std::fmt::Error)?;
        write!(f, "{}::{}", self.type_name, quoted)
    }
}

/// One request to decide, built from the verified token and the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// The token's subject (`user:alice`, `svc:trainer`, `agent:bot`).
    pub principal: String,
    /// The token's roles.
    pub roles: Vec<String>,
    /// The token's scopes.
    pub scopes: Vec<String>,
    /// The token's client.
    pub client_id: String,
    /// Actors acting for the principal, outermost first (RFC 8693 `act`).
    pub actor_chain: Vec<String>,
    /// The token's tenant, if any.
    pub tenant: Option<String>,
    /// The route's action.
    pub action: String,
    /// The resource.
    pub resource: ResourceRef,
    /// Scopes the route requires.
    pub required_scopes: Vec<String>,
    /// The route's name.
    pub route: String,
    /// The client's address.
    pub source_ip: IpAddr,
    /// Warden's id of this request.
    pub request_id: String,
    /// The purpose the caller stated (`X-Warden-Purpose` or the token's
    /// `purpose` claim).
    pub purpose: Option<String>,
}

/// The answer, with the policies that decided it (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Ids of the deciding policies.
    pub policy_ids: Vec<String>,
}

/// Decides access requests. Implementations must be fast and must not
/// block: they run on the request path.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Allows or denies `request`.
    fn authorize(&self, request: &AccessRequest) -> AuthzDecision;
}

/// Allows a request when its token holds every scope the route requires,
/// and denies it otherwise. Not a policy engine: the default until Cedar
/// policies are configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeOnlyAuthorizer;

impl ScopeOnlyAuthorizer {
    /// The policy id recorded for its decisions.
    pub const POLICY_ID: &'static str = "warden.route-scopes";
}

impl Authorizer for ScopeOnlyAuthorizer {
    fn authorize(&self, request: &AccessRequest) -> AuthzDecision {
        AuthzDecision {
            allowed: request.required_scopes.iter().all(|s| request.scopes.contains(s)),
            policy_ids: vec![Self::POLICY_ID.to_owned()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_only() {
        let mut request = AccessRequest {
            principal: "user:a".into(),
            roles: Vec::new(),
            scopes: vec!["a".into(), "b".into()],
            client_id: "c".into(),
            actor_chain: Vec::new(),
            tenant: None,
            action: "invoke".into(),
            resource: ResourceRef {
                type_name: "Model".into(),
                id: "m \"1\"".into(),
            },
            required_scopes: vec!["b".into()],
            route: "r".into(),
            source_ip: IpAddr::from([127, 0, 0, 1]),
            request_id: "q".into(),
            purpose: None,
        };
        assert!(ScopeOnlyAuthorizer.authorize(&request).allowed);
        request.required_scopes.push("c".into());
        assert!(!ScopeOnlyAuthorizer.authorize(&request).allowed);
        assert_eq!(request.resource.to_string(), r#"Model::"m \"1\"""#);
    }
}
