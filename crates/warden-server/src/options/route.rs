//! `[[route]]`: what a gateway route is configured with, as written in
//! `warden.toml` (the TOML shape and how the gateway matches routes are in
//! `gateway/route.rs`). Plain data: checked by
//! [`RouteTable::new`](crate::gateway::RouteTable::new) at start.

use std::time::Duration;

use serde::Deserialize;

/// One `[[route]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name, recorded in audit events and rate-limit keys.
    pub name: String,
    /// Accepted HTTP methods; empty accepts any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path prefix, matched on a segment boundary.
    pub path_prefix: String,
    /// Upstream base URL (`http` or `https`).
    pub upstream: String,
    /// Token audience required; `None` = the issuer.
    #[serde(default)]
    pub audience: Option<String>,
    /// The Cedar action.
    pub action: String,
    /// The Cedar resource and where its id comes from.
    pub resource: ResourceSpec,
    /// Scopes the token must all hold.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Local GCRA limit per (subject, client, route).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Whether the client's `Authorization` header reaches the upstream.
    #[serde(default)]
    pub forward_authorization: bool,
    /// The protocol spoken, which decides the shape of error bodies.
    #[serde(default)]
    pub kind: RouteKind,
    /// Seconds a call that needs a person's approval is held open for the
    /// answer before the gateway answers `approval_required` (0: answer
    /// at once; at most 300). Approved in time: forwarded, the approval
    /// spent; denied: refused.
    #[serde(default)]
    pub approval_wait: u64,
}

/// The resource of a route's requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// Cedar entity type (`Model`, `Tool`, `Ns::Thing`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Where the entity id comes from.
    pub id: IdSource,
}

/// Where a resource id comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSource {
    /// Always this id.
    Literal(String),
    /// The path segment at this index after the prefix (0 = the first).
    PathSegment(usize),
    /// This query parameter.
    Query(String),
    /// This string field of the JSON body, by dotted path (`"model"`).
    JsonField(String),
    /// MCP JSON-RPC: `tools/call` → `params.name`; other methods → the method.
    McpToolName,
}

/// A GCRA limit: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (fractions allowed: 0.5 = one every 2 s).
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

impl RateLimit {
    /// Time between two requests at the sustained rate, if the rate is valid.
    pub fn period(&self) -> Option<Duration> {
        if !self.per_second.is_finite() || self.per_second <= 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(1.0 / self.per_second)
            .ok()
            .filter(|d| !d.is_zero())
    }
}

/// The protocol of a route, which decides how errors are answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// Plain HTTP: RFC 6750 JSON errors.
    #[default]
    Http,
    /// OpenAI-compatible API: OpenAI's error JSON.
    Openai,
    /// MCP over streamable HTTP: JSON-RPC error objects.
    Mcp,
}
