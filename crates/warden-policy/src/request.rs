//! The parts of a request, built from token claims and the route: plain
//! values, checked against the schema only when [`PolicyEngine::decide`]
//! turns them into Cedar's types.
//!
//! [`PolicyEngine::decide`]: crate::PolicyEngine::decide

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;

/// Prefix of the scopes that grant one MCP tool: `tool:NAME`.
pub const TOOL_SCOPE_PREFIX: &str = "tool:";

/// The entity type of a principal, from its subject's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// `user:NAME`, a person: `Warden::User`.
    User,
    /// `svc:NAME`, a machine client: `Warden::Service`.
    Service,
    /// `agent:NAME`, an AI agent: `Warden::Agent`.
    Agent,
}

impl PrincipalKind {
    /// The schema's entity type name, without namespace.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Service => "Service",
            Self::Agent => "Agent",
        }
    }
}

/// Who asks: a token's subject, its roles (parents of type `Warden::Role`)
/// and its tenant (attribute `tenant`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    kind: PrincipalKind,
    name: String,
    roles: Vec<String>,
    tenant: Option<String>,
}

impl Principal {
    /// The principal of a token with subject `sub` (`user:NAME`,
    /// `svc:NAME` or `agent:NAME`), `roles` and optional `tenant`.
    ///
    /// `user:alice` with role `ml-engineer` becomes `Warden::User::"alice"`,
    /// a member of `Warden::Role::"ml-engineer"`. Empty role names are
    /// dropped.
    pub fn from_claims<I, S>(sub: &str, roles: I, tenant: Option<&str>) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (kind, name) = if let Some(name) = sub.strip_prefix("user:") {
            (PrincipalKind::User, name)
        } else if let Some(name) = sub.strip_prefix("svc:") {
            (PrincipalKind::Service, name)
        } else if let Some(name) = sub.strip_prefix("agent:") {
            (PrincipalKind::Agent, name)
        } else {
            return Err(PolicyError::Subject(sub.to_owned()));
        };
        if name.is_empty() {
            return Err(PolicyError::Subject(sub.to_owned()));
        }
        Ok(Self {
            kind,
            name: name.to_owned(),
            roles: roles.into_iter().map(Into::into).filter(|r| !r.is_empty()).collect(),
            tenant: tenant.map(str::to_owned),
        })
    }

    /// Its entity type.
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// Its entity id: the subject without its namespace.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its roles.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Its tenant.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

/// How tenants are kept apart: the server's `tenancy` setting, given to
/// the policies as the context attribute `tenancy` (present only when
/// strict, so that a schema of one's own without the attribute keeps
/// working in the default mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tenancy {
    /// A principal without a tenant reaches every tenant's resources (the
    /// policy `tenant.isolation` only keeps tenants from each other).
    #[default]
    Shared,
    /// A principal without a tenant reaches only resources without one
    /// (the policy `tenant.strict`).
    Strict,
}

impl Tenancy {
    /// `shared` or `strict`, as configured and as the policies see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Strict => "strict",
        }
    }
}

impl std::fmt::Display for Tenancy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Cedar context of a request: what the token and the connection say
/// beyond the principal. `granted_tools` and `delegation_depth` are derived
/// from `scopes` and `actors` when the request is built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RequestContext {
    /// The token's scopes (its `scope` claim split on spaces).
    pub scopes: Vec<String>,
    /// The token's `client_id`.
    pub client_id: String,
    /// Subjects of the `act` chain (Cedar sees them as a set); empty for a
    /// direct token.
    pub actors: Vec<String>,
    /// Why the data is used, when the caller says (`X-Warden-Purpose` or the
    /// route's configuration).
    pub purpose: Option<String>,
    /// The client's address.
    pub source_ip: Option<String>,
    /// Now, in Unix seconds.
    pub time: i64,
    /// The gateway route's name.
    pub route: Option<String>,
    /// The server's tenancy mode (context attribute `tenancy`, set only
    /// when [`Tenancy::Strict`]).
    pub tenancy: Tenancy,
}

impl RequestContext {
    /// The scopes of a `scope` claim (space-separated).
    pub fn with_scope_claim(mut self, scope: &str) -> Self {
        self.scopes = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        self
    }

    /// The tool names granted by `tool:NAME` scopes (a bare `tool:` grants
    /// nothing).
    pub fn granted_tools(&self) -> impl Iterator<Item = &str> {
        self.scopes
            .iter()
            .filter_map(|s| s.strip_prefix(TOOL_SCOPE_PREFIX))
            .filter(|name| !name.is_empty())
    }
}

/// One attribute value of a resource: the JSON values the schema uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// `true` or `false`.
    Bool(bool),
    /// A Cedar `Long`.
    Long(i64),
    /// A `String`.
    String(String),
    /// A `Set<String>`.
    Set(Vec<String>),
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<i64> for AttrValue {
    fn from(n: i64) -> Self {
        Self::Long(n)
    }
}

impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<Vec<String>> for AttrValue {
    fn from(set: Vec<String>) -> Self {
        Self::Set(set)
    }
}

/// What is asked for: an entity of a schema type (`Model`, or in full
/// `Warden::Model`) with an id and the attributes the schema requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The entity type, e.g. `Model`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The entity id, e.g. `gpt-4o`.
    pub id: String,
    /// Its attributes, e.g. `stage = "production"`.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrValue>,
}

impl Resource {
    /// A resource without attributes.
    pub fn new(type_name: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            type_name: type_name.into(),
            id: id.into(),
            attributes: BTreeMap::new(),
        }
    }

    /// The same resource with one more attribute.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

impl std::fmt::Display for Resource {
    /// Cedar's entity syntax, as the audit log names resources:
    /// `DatasetVersion::"transactions@3"` (the id JSON-quoted).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = serde_json::to_string(&self.id).map_err(|_| std::fmt::Error)?;
        write!(f, "{}::{quoted}", self.type_name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn resources_display_as_cedar_entities() {
        let r = super::Resource::new("Model", "m \"1\"");
        assert_eq!(r.to_string(), r#"Model::"m \"1\"""#);
    }

    use super::*;

    #[test]
    fn subjects_map_to_principal_types() {
        let p = Principal::from_claims("user:alice", ["ml-engineer", ""], Some("acme")).unwrap();
        assert_eq!(
            (p.kind(), p.name(), p.roles(), p.tenant()),
            (
                PrincipalKind::User,
                "alice",
                &["ml-engineer".to_owned()][..],
                Some("acme")
            )
        );
        let s = Principal::from_claims("svc:trainer", Vec::<String>::new(), None).unwrap();
        assert_eq!((s.kind(), s.name()), (PrincipalKind::Service, "trainer"));
        let a = Principal::from_claims("agent:report-bot", ["x".to_owned()], None).unwrap();
        assert_eq!((a.kind(), a.name()), (PrincipalKind::Agent, "report-bot"));
    }

    #[test]
    fn subjects_without_namespace_or_name_are_refused() {
        for sub in ["alice", "user:", "admin:root", "User:alice", ""] {
            let err = Principal::from_claims(sub, ["admin"], None).unwrap_err();
            assert!(matches!(err, PolicyError::Subject(ref s) if s == sub), "{sub}: {err}");
        }
    }

    #[test]
    fn tool_scopes_grant_tools() {
        let ctx = RequestContext::default().with_scope_claim("tool.call  tool:search tool: inference.invoke");
        assert_eq!(ctx.scopes, ["tool.call", "tool:search", "tool:", "inference.invoke"]);
        assert_eq!(ctx.granted_tools().collect::<Vec<_>>(), ["search"]);
    }

    #[test]
    fn attribute_values_read_from_plain_json() {
        let r: Resource =
            serde_json::from_str(r#"{"type":"Dataset","id":"d","attributes":{"a":"s","b":3,"c":true,"d":["x","y"]}}"#)
                .unwrap();
        let expected = Resource::new("Dataset", "d")
            .with("a", "s")
            .with("b", 3)
            .with("c", true)
            .with("d", vec!["x".to_owned(), "y".to_owned()]);
        assert_eq!(r, expected);
    }
}
