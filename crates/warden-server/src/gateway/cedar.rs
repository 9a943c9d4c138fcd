//! The Cedar engine as the gateway's [`Authorizer`]: builds the Cedar
//! principal, resource and context from an [`AccessRequest`], decides with
//! the current [`PolicyEngine`], and swaps in a reloaded engine only when
//! it is valid (a broken policy file never replaces a working set).
//!
//! Resource attributes the schema requires come from what the gateway
//! knows: a `Tool` is named by its id on the route's server, an `Endpoint`
//! by its id, and models and datasets by the governance registry
//! ([`RegistryAttributes`]: a `Model`'s stage is its most advanced live
//! version's). A model the registry does not know takes its stage from the
//! `[models]` catalog in the configuration, else `"unregistered"`; a
//! dataset it does not know has no attributes, so policies that need them
//! fail and the request is denied. Any error (an unknown action, a
//! malformed subject, a policy that fails to evaluate) denies.

use std::collections::BTreeMap;
use std::sync::RwLock;

use std::sync::Arc;

use warden_policy::{PolicyEngine, PolicyError, Principal, RequestContext, Resource};

use super::authz::{AccessRequest, Authorizer, AuthzDecision};
use crate::registry::attributes::RegistryAttributes;

/// Policy id recorded when no decision could be made.
pub const ERROR_POLICY_ID: &str = "warden.policy-error";
/// Stage of a model the catalog does not list.
pub const UNREGISTERED: &str = "unregistered";

/// Cedar-backed authorization with hot reload.
#[derive(Debug)]
pub struct CedarAuthorizer {
    engine: RwLock<PolicyEngine>,
    model_stages: BTreeMap<String, String>,
    registry: Arc<RegistryAttributes>,
}

impl CedarAuthorizer {
    /// Decides with `engine`; resource attributes come from `registry`,
    /// then from `model_stages` (model id → stage, the configuration's
    /// catalog).
    pub fn new(
        engine: PolicyEngine,
        model_stages: BTreeMap<String, String>,
        registry: Arc<RegistryAttributes>,
    ) -> Self {
        CedarAuthorizer {
            engine: RwLock::new(engine),
            model_stages,
            registry,
        }
    }

    /// The registry attributes it reads.
    pub fn registry(&self) -> &Arc<RegistryAttributes> {
        &self.registry
    }

    /// The engine in force.
    pub fn engine(&self) -> Option<PolicyEngine> {
        self.engine.read().ok().map(|e| e.clone())
    }

    /// Re-reads the policies from where they came from; swaps them in only
    /// when they are valid. Returns the new policy count.
    pub fn reload(&self) -> Result<usize, PolicyError> {
        let current = self
            .engine()
            .ok_or_else(|| PolicyError::Request("policy lock poisoned".into()))?;
        let fresh = current.reload()?;
        let count = fresh.policy_count();
        if let Ok(mut slot) = self.engine.write() {
            *slot = fresh;
        }
        Ok(count)
    }

    fn resource(&self, request: &AccessRequest) -> Resource {
        let r = &request.resource;
        let resource = Resource::new(r.type_name.clone(), r.id.clone());
        if let Some(known) = self.registry.resource(&r.type_name, &r.id) {
            return known;
        }
        match r.type_name.as_str() {
            "Model" => {
                let stage = self.model_stages.get(&r.id).map_or(UNREGISTERED, String::as_str);
                resource.with("stage", stage)
            }
            "Tool" => resource
                .with("name", r.id.as_str())
                .with("server", request.route.as_str()),
            "Endpoint" => resource.with("name", r.id.as_str()),
            _ => resource,
        }
    }
}

fn deny(reason: &str) -> AuthzDecision {
    tracing::warn!(reason, "authorization failed closed");
    AuthzDecision {
        allowed: false,
        policy_ids: vec![ERROR_POLICY_ID.to_owned()],
    }
}

impl CedarAuthorizer {
    /// Decides `request` on `resource`, whose attributes the caller
    /// supplies (the registry API passes the object it just read, not the
    /// cache).
    pub fn decide(&self, request: &AccessRequest, resource: &Resource) -> AuthzDecision {
        let Some(engine) = self.engine() else {
            return deny("policy lock poisoned");
        };
        let principal = match Principal::from_claims(
            &request.principal,
            request.roles.iter().cloned(),
            request.tenant.as_deref(),
        ) {
            Ok(p) => p,
            Err(e) => return deny(&e.to_string()),
        };
        let context = RequestContext {
            scopes: request.scopes.clone(),
            client_id: request.client_id.clone(),
            actors: request.actor_chain.clone(),
            purpose: request.purpose.clone(),
            source_ip: Some(request.source_ip.to_string()),
            time: i64::try_from(crate::state::now()).unwrap_or(i64::MAX),
            route: Some(request.route.clone()),
        };
        match engine.decide(&principal, &request.action, resource, &context) {
            Ok(d) if d.errors.is_empty() => AuthzDecision {
                allowed: d.allowed,
                policy_ids: d.policy_ids,
            },
            Ok(d) => {
                tracing::warn!(errors = ?d.errors, "policy evaluation errors; denying");
                AuthzDecision {
                    allowed: false,
                    policy_ids: if d.policy_ids.is_empty() {
                        vec![ERROR_POLICY_ID.to_owned()]
                    } else {
                        d.policy_ids
                    },
                }
            }
            Err(e) => deny(&e.to_string()),
        }
    }
}

impl Authorizer for CedarAuthorizer {
    fn authorize(&self, request: &AccessRequest) -> AuthzDecision {
        self.decide(request, &self.resource(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::authz::ResourceRef;

    fn request(sub: &str, roles: &[&str], scopes: &str, model: &str) -> AccessRequest {
        AccessRequest {
            principal: sub.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            scopes: scopes.split(' ').map(str::to_owned).collect(),
            client_id: "c".into(),
            actor_chain: Vec::new(),
            tenant: None,
            action: "inference.invoke".into(),
            resource: ResourceRef {
                type_name: "Model".into(),
                id: model.into(),
            },
            required_scopes: vec!["inference.invoke".into()],
            route: "chat".into(),
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            request_id: "r".into(),
            purpose: None,
        }
    }

    #[test]
    fn stages_come_from_the_catalog() {
        let stages = [("prod-model".to_owned(), "production".to_owned())]
            .into_iter()
            .collect();
        let a = CedarAuthorizer::new(PolicyEngine::builtin().unwrap(), stages, Arc::default());
        let ds = |m| a.authorize(&request("user:dana", &["data-scientist"], "inference.invoke", m));
        assert!(ds("prod-model").allowed);
        let denied = ds("experimental");
        assert!(!denied.allowed, "unregistered models are not production");
        let ml = a.authorize(&request(
            "user:eve",
            &["ml-engineer"],
            "inference.invoke",
            "experimental",
        ));
        assert!(ml.allowed);
        assert_eq!(ml.policy_ids, ["ml-engineer.inference"]);
        let no_scope = a.authorize(&request("user:eve", &["ml-engineer"], "dataset.read", "experimental"));
        assert!(!no_scope.allowed);
        let bad = a.authorize(&request("nobody", &[], "inference.invoke", "x"));
        assert_eq!((bad.allowed, bad.policy_ids), (false, vec![ERROR_POLICY_ID.to_owned()]));
    }
}
