//! What the server needs to know, filled in by the binary from its
//! validated configuration. No parsing here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use warden_jose::{Algorithm, AlgorithmSet};
use warden_keys::RotationPolicy;

/// Everything `warden serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The issuer identifier (`iss` of every token, the metadata's `issuer`).
    pub issuer: String,
    /// Lifetime of access tokens when none is asked for.
    pub default_ttl: u64,
    /// Longest access-token lifetime.
    pub max_ttl: u64,
    /// Verification leeway.
    pub leeway: u64,
    /// Token size cap.
    pub max_token_bytes: usize,
    /// Algorithms accepted for Warden's own tokens.
    pub algorithms: AlgorithmSet,
    /// Algorithm of keys rotated in automatically.
    pub key_algorithm: Algorithm,
    /// Rotation rules.
    pub rotation: RotationPolicy,
    /// Rotate the signing key when it is this old (0 = never).
    pub rotate_every: u64,
    /// Token-service rules.
    pub oauth: OAuthOptions,
    /// Audit-log settings.
    pub audit: AuditOptions,
    /// Trusted external issuers for token exchange.
    pub federation: Vec<FederatedIssuer>,
    /// Directory of Cedar policies (`schema.cedarschema` and `*.cedar`);
    /// `None` = the built-in default set.
    pub policy_dir: Option<PathBuf>,
    /// Model id → stage (`production`, …), for policies on `resource.stage`
    /// until the governance registry provides it.
    pub model_stages: BTreeMap<String, String>,
    /// Gateway routes (`[[route]]`); none = no gateway.
    pub routes: Vec<crate::gateway::RouteConfig>,
    /// Redis (`redis://HOST:PORT/DB`): rate limits shared by replicas.
    /// `None` = every process limits on its own.
    pub redis_url: Option<String>,
    /// `[rate_limit]`.
    pub rate_limit: RateLimitOptions,
    /// `[registry]`: four-eyes promotion settings.
    pub registry: RegistryOptions,
    /// Proxies (load balancers) whose `X-Forwarded-For` is believed: the
    /// client is the rightmost address not in these networks.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Prometheus metrics (`[metrics]`).
    pub metrics: MetricsOptions,
}

/// `[metrics]`: whether and where `GET /metrics` is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Record metrics and serve `/metrics` (default true). When false,
    /// nothing is recorded and `/metrics` is not served anywhere.
    pub enabled: bool,
    /// Serve `/metrics` on this address (e.g. `127.0.0.1:9090`) instead of
    /// the main listener, which then does not serve it.
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            enabled: true,
            listen: None,
        }
    }
}

/// `[registry]`: how model promotion to production is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Distinct approvals a promotion needs (at least 1; the requester
    /// never counts, so 1 is already four eyes).
    pub required_approvals: u32,
    /// How long an approval counts, in seconds.
    pub approval_ttl: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            required_approvals: 2,
            approval_ttl: 7 * 24 * 3600,
        }
    }
}

/// `[rate_limit]`: what the Redis-backed limiter does when Redis fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitOptions {
    /// While Redis is unreachable: local limits, or refuse (503).
    pub redis_fallback: crate::gateway::redis_limit::RedisFallback,
    /// Replicas sharing the limits; a local fallback allows each process
    /// 1/`replicas` of every limit.
    pub replicas: u32,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        RateLimitOptions {
            redis_fallback: crate::gateway::redis_limit::RedisFallback::Local,
            replicas: 1,
        }
    }
}

/// `[oauth]`.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// Refresh-token idle lifetime.
    pub refresh_idle_ttl: u64,
    /// Refresh-family absolute lifetime.
    pub refresh_absolute_ttl: u64,
    /// Grace for retrying the previous refresh token once (0 = none).
    pub refresh_grace: u64,
    /// Longest delegation chain.
    pub max_delegation_depth: u32,
    /// Body cap of the token endpoints.
    pub max_body_bytes: usize,
    /// Failed client authentications allowed per minute per client id and per address.
    pub auth_failures_per_minute: u32,
    /// Longest lifetime of a client assertion.
    pub assertion_max_ttl: u64,
    /// Scope that lets a bearer call the introspection endpoint.
    pub introspection_scope: String,
}

/// `[audit]`.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Checkpoint origin.
    pub origin: String,
    /// Whether the origin was configured; if not, an existing log keeps its own.
    pub origin_explicit: bool,
    /// Seconds between checkpoints.
    pub checkpoint_interval: u64,
}

/// Where an external issuer's keys come from.
#[derive(Debug, Clone)]
pub enum JwksLocation {
    /// Fetched over HTTP(S).
    Url(String),
    /// A local file.
    File(PathBuf),
}

/// A trusted external issuer (a corporate IdP).
#[derive(Debug, Clone)]
pub struct FederatedIssuer {
    /// Its `iss`.
    pub issuer: String,
    /// Its keys.
    pub jwks: JwksLocation,
    /// Accepted algorithms.
    pub algorithms: AlgorithmSet,
    /// Required audience.
    pub audience: String,
    /// Accepted `typ` values.
    pub typ: Vec<String>,
    /// Claim with its groups or roles.
    pub role_claim: String,
    /// External group or role → Warden role. Unmapped values are dropped.
    pub roles: BTreeMap<String, String>,
    /// Claim with its scopes.
    pub scope_claim: String,
    /// Subject namespace: `user`, `svc` or `agent`.
    pub subject_kind: String,
}

/// Scopes with meaning to Warden itself.
pub mod scopes {
    /// Administers clients through the admin API.
    pub const ADMIN: &str = "warden.admin";
    /// Reads the audit log.
    pub const AUDIT_READ: &str = "audit.read";
}

/// Roles with meaning to Warden itself.
pub mod roles {
    /// May administer clients.
    pub const ADMIN: &str = "admin";
    /// May read the audit log.
    pub const AUDITOR: &str = "auditor";
}
