//! The Cedar engine as the [`Authorizer`] of the gateway, the registry API
//! and the dashboard: builds the Cedar principal, resource and context
//! from an [`AccessRequest`], decides with
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

use warden_policy::{PolicyEngine, PolicyError, Principal, RequestContext, Resource, Tenancy};

use super::attributes::RegistryAttributes;
use super::request::{AccessRequest, Authorizer, AuthzDecision};

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
    tenancy: Tenancy,
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
            tenancy: Tenancy::Shared,
        }
    }

    /// The same, deciding under `tenancy` (the context attribute
    /// `tenancy`; default [`Tenancy::Shared`]).
    #[must_use]
    pub fn with_tenancy(mut self, tenancy: Tenancy) -> Self {
        self.tenancy = tenancy;
        self
    }

    /// The tenancy it decides under.
    pub fn tenancy(&self) -> Tenancy {
        self.tenancy
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
        fresh.check_tenancy(self.tenancy)?;
        let count = fresh.policy_count();
        if let Ok(mut slot) = self.engine.write() {
            *slot = fresh;
        }
        Ok(count)
    }

    /// The resource of a gateway request, with what the registry (or the
    /// `[models]` catalog) knows of it.
    fn known(&self, request: &AccessRequest<'_>) -> Resource {
        let r = request.resource;
        if let Some(known) = self.registry.resource(&r.type_name, &r.id) {
            return known;
        }
        let resource = Resource::new(r.type_name.clone(), r.id.clone());
        match r.type_name.as_str() {
            "Model" => {
                let stage = self.model_stages.get(&r.id).map_or(UNREGISTERED, String::as_str);
                resource.with("stage", stage)
            }
            "Tool" => resource.with("name", r.id.as_str()).with("server", request.route),
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
        approval: None,
    }
}

impl CedarAuthorizer {
    /// Decides `request` on its resource as given, with the attributes the
    /// caller supplies (the registry API passes the object it just read,
    /// not the cache).
    pub fn decide(&self, request: &AccessRequest<'_>) -> AuthzDecision {
        let Some(engine) = self.engine() else {
            return deny("policy lock poisoned");
        };
        let caller = request.caller;
        let principal = match Principal::from_claims(
            &caller.principal,
            caller.roles.iter().cloned(),
            caller.tenant.as_deref(),
        ) {
            Ok(p) => p,
            Err(e) => return deny(&e.to_string()),
        };
        let context = RequestContext {
            scopes: caller.scopes.clone(),
            client_id: caller.client_id.clone(),
            actors: caller.actor_chain.clone(),
            purpose: caller.purpose.clone(),
            source_ip: Some(caller.source_ip.to_string()),
            time: i64::try_from(caller.now).unwrap_or(i64::MAX),
            route: Some(request.route.to_owned()),
            tenancy: self.tenancy,
        };
        match engine.decide(&principal, request.action, request.resource, &context) {
            Ok(d) if d.errors.is_empty() => AuthzDecision {
                allowed: d.allowed,
                policy_ids: d.policy_ids,
                approval: d.approval,
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
                    approval: None,
                }
            }
            Err(e) => deny(&e.to_string()),
        }
    }
}

impl Authorizer for CedarAuthorizer {
    /// Decides a gateway request, its resource's attributes read from the
    /// registry snapshot.
    fn authorize(&self, request: &AccessRequest<'_>) -> AuthzDecision {
        let resource = self.known(request);
        self.decide(&AccessRequest {
            resource: &resource,
            ..*request
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Caller;

    fn decide(a: &CedarAuthorizer, sub: &str, roles: &[&str], action: &str, model: &str) -> AuthzDecision {
        let caller = Caller {
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            scopes: vec!["inference.invoke".into()],
            ..Caller::test(sub)
        };
        let resource = Resource::new("Model", model);
        a.authorize(&AccessRequest {
            caller: &caller,
            action,
            resource: &resource,
            route: "chat",
            required_scopes: &["inference.invoke".to_owned()],
        })
    }

    #[test]
    fn stages_come_from_the_catalog() {
        let stages = [("prod-model".to_owned(), "production".to_owned())]
            .into_iter()
            .collect();
        let a = CedarAuthorizer::new(PolicyEngine::builtin().unwrap(), stages, Arc::default());
        let ds = |m| decide(&a, "user:dana", &["data-scientist"], "inference.invoke", m);
        assert!(ds("prod-model").allowed);
        let denied = ds("experimental");
        assert!(!denied.allowed, "unregistered models are not production");
        let ml = decide(&a, "user:eve", &["ml-engineer"], "inference.invoke", "experimental");
        assert!(ml.allowed);
        assert_eq!(ml.policy_ids, ["ml-engineer.inference"]);
        let no_scope = decide(&a, "user:eve", &["ml-engineer"], "dataset.read", "experimental");
        assert!(!no_scope.allowed);
        let bad = decide(&a, "nobody", &[], "inference.invoke", "x");
        assert_eq!((bad.allowed, bad.policy_ids), (false, vec![ERROR_POLICY_ID.to_owned()]));
    }

    /// The engine remembers decisions; a registry change (a model promoted)
    /// is still seen at the next request, since the resource's attributes
    /// are read from the registry snapshot on every request and are part of
    /// what is remembered.
    #[test]
    fn a_registry_change_is_seen_at_once() {
        use warden_registry::{ModelSpec, Stage};
        let registry = Arc::new(RegistryAttributes::default());
        let a = CedarAuthorizer::new(PolicyEngine::builtin().unwrap(), BTreeMap::new(), Arc::clone(&registry));
        let model = ModelSpec {
            name: "fraud".into(),
            owner: None,
            tenant: None,
            description: None,
        }
        .validate("user:a", 1)
        .unwrap();
        let ds = || decide(&a, "user:dana", &["data-scientist"], "inference.invoke", "fraud");
        registry.set_models([(model.clone(), Stage::Staging)]);
        for _ in 0..2 {
            assert!(!ds().allowed, "a data scientist may not call a staging model");
        }
        registry.set_models([(model.clone(), Stage::Production)]);
        assert!(ds().allowed, "promoted: allowed at once");
        registry.set_models([(model, Stage::Archived)]);
        assert!(!ds().allowed, "archived: denied at once");
    }

    /// A policy reload is seen at the next request: the reloaded engine
    /// remembers nothing the old one decided.
    #[test]
    fn a_policy_reload_is_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("schema.cedarschema"), warden_policy_schema()).unwrap();
        let permit = r#"@id("all") permit (principal, action == Warden::Action::"inference.invoke", resource);"#;
        std::fs::write(dir.path().join("p.cedar"), permit).unwrap();
        let a = CedarAuthorizer::new(
            warden_policy::load(dir.path()).unwrap(),
            BTreeMap::new(),
            Arc::default(),
        );
        let call = || decide(&a, "user:eve", &["anyone"], "inference.invoke", "m");
        assert!(call().allowed);
        assert!(call().allowed);
        let forbid = format!("{permit}\n@id(\"off\") forbid (principal, action, resource);");
        std::fs::write(dir.path().join("p.cedar"), forbid).unwrap();
        assert_eq!(a.reload().unwrap(), 2);
        let after = call();
        assert_eq!((after.allowed, after.policy_ids), (false, vec!["off".to_owned()]));
    }

    /// The built-in schema's text.
    fn warden_policy_schema() -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../warden-policy/policies/schema.cedarschema");
        std::fs::read_to_string(dir).unwrap()
    }
}
