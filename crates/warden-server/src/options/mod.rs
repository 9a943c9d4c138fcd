//! Everything the server is configured with, resolved: the binary reads
//! `warden.toml` and `WARDEN_*` once and turns them into a
//! [`ServerOptions`] (`warden::config::Config::resolve`); tests and
//! embedders start from [`ServerOptions::default`] and change what they
//! need. No parsing or I/O here: plain values with their defaults.
//!
//! Sections whose file form is already their resolved form (`[oauth]`,
//! `[registry]`, `[rate_limit]`) are deserialised straight into the types
//! below; the others are checked and converted by the binary.

pub mod approvals;
pub mod login;
pub mod route;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_jose::{Algorithm, AlgorithmSet};
use warden_keys::RotationPolicy;

pub use self::approvals::{ApprovalOptions, NotifyTarget, SmtpOptions, SmtpTls, WebhookFormat};
pub use self::login::{ClientSecret, LoginProvider, ProviderAuth, SubjectForm};
pub use self::route::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteKind};

/// Hard cap on an access token's lifetime, in seconds: key retirement
/// waits for it, whatever `tokens.max_ttl` says.
pub const TOKEN_TTL_CAP: u64 = 3600;

/// The listen address when none is configured.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Everything `warden serve` (and the CLI around it) is configured with.
#[derive(Clone)]
pub struct ServerOptions {
    /// The issuer identifier (`iss` of every token, the metadata's
    /// `issuer`, the public URL). Default: `http://` + [`Self::listen`].
    pub issuer: String,
    /// Where `warden serve` listens.
    pub listen: SocketAddr,
    /// `[server]`: limits on client connections.
    pub server: ConnectionLimits,
    /// Where Warden keeps its data.
    pub storage: StorageOptions,
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
    /// `[dpop]`: DPoP proofs (RFC 9449).
    pub dpop: DpopOptions,
    /// Audit-log settings.
    pub audit: AuditOptions,
    /// Trusted external issuers for token exchange and gateway routes.
    pub federation: Vec<FederatedIssuer>,
    /// Identity providers people sign in through (`[[login]]`).
    pub login: Vec<LoginProvider>,
    /// Who hears about requests for a person's approval.
    pub approvals: ApprovalOptions,
    /// Directory of Cedar policies (`schema.cedarschema` and `*.cedar`);
    /// `None` = the built-in default set.
    pub policy_dir: Option<PathBuf>,
    /// How tenants are kept apart: `shared` (default; a principal without
    /// a tenant reaches every tenant's resources) or `strict` (it reaches
    /// only resources without a tenant). Given to the policies as the
    /// context attribute `tenancy`.
    pub tenancy: warden_policy::Tenancy,
    /// Model id → stage (`production`, …), for policies on `resource.stage`
    /// of models the governance registry does not know.
    pub model_stages: BTreeMap<String, String>,
    /// Gateway routes (`[[route]]`); none = no gateway.
    pub routes: Vec<RouteConfig>,
    /// Redis (`redis://HOST:PORT/DB`): rate limits, failure counts and
    /// fan-out shared by replicas. `None` = every process on its own.
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
    /// Where the dashboard is served (`[dashboard]`).
    pub dashboard: DashboardOptions,
    /// `[replicas]`: catching up with changes made elsewhere.
    pub replicas: ReplicaOptions,
    /// How log lines are written.
    pub log_format: LogFormat,
}

impl Default for ServerOptions {
    /// A single process on `127.0.0.1:8080` with SQLite under
    /// `./warden-data`, EdDSA keys, the built-in policies and no routes.
    fn default() -> Self {
        ServerOptions {
            issuer: format!("http://{DEFAULT_LISTEN}"),
            listen: DEFAULT_LISTEN,
            server: ConnectionLimits::default(),
            storage: StorageOptions::default(),
            default_ttl: 300,
            max_ttl: TOKEN_TTL_CAP,
            leeway: warden_jose::DEFAULT_LEEWAY,
            max_token_bytes: warden_jose::DEFAULT_MAX_TOKEN_BYTES,
            algorithms: AlgorithmSet::asymmetric(),
            key_algorithm: Algorithm::EdDSA,
            rotation: RotationPolicy {
                publish_lead: 300,
                max_token_ttl: TOKEN_TTL_CAP,
                leeway: warden_jose::MAX_LEEWAY,
            },
            rotate_every: 0,
            oauth: OAuthOptions::default(),
            dpop: DpopOptions::default(),
            audit: AuditOptions::for_issuer(&format!("http://{DEFAULT_LISTEN}")),
            federation: Vec::new(),
            login: Vec::new(),
            approvals: ApprovalOptions::default(),
            policy_dir: None,
            tenancy: warden_policy::Tenancy::Shared,
            model_stages: BTreeMap::new(),
            routes: Vec::new(),
            redis_url: None,
            rate_limit: RateLimitOptions::default(),
            registry: RegistryOptions::default(),
            trusted_proxies: Vec::new(),
            metrics: MetricsOptions::default(),
            dashboard: DashboardOptions::default(),
            replicas: ReplicaOptions::default(),
            log_format: LogFormat::Text,
        }
    }
}

impl ServerOptions {
    /// The audience of dashboard session tokens (`warden ui link`): the
    /// issuer's `/ui`. Such a token opens the dashboard and nothing else.
    pub fn ui_audience(&self) -> String {
        format!("{}/ui", self.issuer)
    }

    /// The origin (`scheme://host[:port]`) a dashboard form may be posted
    /// from besides the request's own `Host`: `dashboard.url` when set;
    /// the issuer when the dashboard shares the main listener; none when
    /// it has a listener of its own and no public URL (the issuer's
    /// origin is then the gateway's, which it must never trust).
    pub fn dashboard_origin(&self) -> Option<&str> {
        match (&self.dashboard.url, self.dashboard.listen) {
            (Some(url), _) => Some(url),
            (None, None) => Some(&self.issuer),
            (None, Some(_)) => None,
        }
    }

    /// Where people open the dashboard (login links, the banner): its
    /// public URL, else `http://` + its own listener, else the issuer.
    pub fn dashboard_base(&self) -> String {
        match (&self.dashboard.url, self.dashboard.listen) {
            (Some(url), _) => url.clone(),
            (None, Some(addr)) => format!("http://{addr}"),
            (None, None) => self.issuer.clone(),
        }
    }

    /// Whether the dashboard's cookies must be `Secure`: its public URL
    /// (or, without one, the issuer) is `https`.
    pub fn dashboard_secure(&self) -> bool {
        self.dashboard
            .url
            .as_deref()
            .unwrap_or(&self.issuer)
            .starts_with("https://")
    }
}

impl std::fmt::Debug for ServerOptions {
    /// Every field, with passwords in database and Redis URLs masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("issuer", &self.issuer)
            .field("listen", &self.listen)
            .field("server", &self.server)
            .field("storage", &self.storage)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("leeway", &self.leeway)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("algorithms", &self.algorithms)
            .field("key_algorithm", &self.key_algorithm)
            .field("rotation", &self.rotation)
            .field("rotate_every", &self.rotate_every)
            .field("oauth", &self.oauth)
            .field("dpop", &self.dpop)
            .field("audit", &self.audit)
            .field("federation", &self.federation)
            .field("login", &self.login)
            .field("approvals", &self.approvals)
            .field("policy_dir", &self.policy_dir)
            .field("tenancy", &self.tenancy)
            .field("model_stages", &self.model_stages)
            .field("routes", &self.routes.len())
            .field("redis_url", &self.redis_url.as_deref().map(warden_store::redact_url))
            .field("rate_limit", &self.rate_limit)
            .field("registry", &self.registry)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics", &self.metrics)
            .field("dashboard", &self.dashboard)
            .field("replicas", &self.replicas)
            .field("log_format", &self.log_format)
            .finish()
    }
}

/// `[server]`: what a client connection may cost. Slow or vanished clients
/// are closed instead of holding the server (see `http/connections.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a complete request head, from the connection's
    /// start or the first byte of the head (default 30 s).
    pub header_read_timeout: Duration,
    /// Longest idle time between requests on a kept-alive connection, and
    /// longest stall writing a response to a client that stopped reading
    /// (default 120 s).
    pub idle_timeout: Duration,
    /// Connections served at once; `None`: derived from the open-file
    /// limit, leaving room for the store and the upstreams.
    pub max_connections: Option<usize>,
    /// On shutdown, how long requests in flight may finish before the
    /// connections still open are closed, the audit log flushed and the
    /// last checkpoint signed (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Where Warden keeps its data.
#[derive(Clone)]
pub struct StorageOptions {
    /// The data directory: the embedded database and the master key file.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// The PostgreSQL schema Warden's tables live in, if not `public`.
    pub database_schema: Option<String>,
}

impl StorageOptions {
    /// SQLite in `data_dir`.
    pub fn embedded(data_dir: PathBuf) -> Self {
        let database_url = format!("sqlite://{}", data_dir.join(warden_store::DATABASE_FILE).display());
        StorageOptions {
            data_dir,
            database_url,
            database_schema: None,
        }
    }
}

impl Default for StorageOptions {
    /// SQLite under `./warden-data`.
    fn default() -> Self {
        Self::embedded(PathBuf::from("./warden-data"))
    }
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageOptions")
            .field("data_dir", &self.data_dir)
            .field("database_url", &warden_store::redact_url(&self.database_url))
            .field("database_schema", &self.database_schema)
            .finish()
    }
}

/// How log lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the span fields (`request_id`).
    Json,
}

/// `[metrics]`: whether and where `GET /metrics` is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Record metrics and serve `/metrics` (default true). When false,
    /// nothing is recorded and `/metrics` is not served anywhere.
    pub enabled: bool,
    /// Serve `/metrics` on this address (e.g. `127.0.0.1:9090`) instead of
    /// the main listener, which then does not serve it.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            enabled: true,
            listen: None,
        }
    }
}

/// `[dashboard]`: where the compliance dashboard is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DashboardOptions {
    /// Serve the dashboard (`/ui`) only on this address, on an origin of
    /// its own, and not on the main listener (which then answers 404 under
    /// `/ui`). `None`: on the main listener.
    pub listen: Option<SocketAddr>,
    /// The dashboard's public URL (`scheme://host[:port]`, no path) when
    /// it has its own listener behind a proxy: login links point there,
    /// forms may be posted from there, and `https` makes its cookies
    /// `Secure`.
    pub url: Option<String>,
}

/// `[registry]`: how model promotion to production is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryOptions {
    /// Distinct approvals a promotion needs (1–10; the requester never
    /// counts, so 1 is already four eyes).
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

/// What the Redis rate limiter does while Redis is unreachable
/// (`rate_limit.redis_fallback`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisFallback {
    /// Local limits, each route's rate and burst divided by the replicas.
    #[default]
    Local,
    /// Refuse requests on rate-limited routes with 503 (fail closed).
    Deny,
}

impl RedisFallback {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisFallback::Local => "local",
            RedisFallback::Deny => "deny",
        }
    }
}

/// `[rate_limit]`: what the Redis-backed limiter does when Redis fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitOptions {
    /// While Redis is unreachable: local limits, or refuse (503).
    pub redis_fallback: RedisFallback,
    /// Replicas sharing the limits (1–1000); a local fallback allows each
    /// process 1/`replicas` of every limit.
    pub replicas: u32,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        RateLimitOptions {
            redis_fallback: RedisFallback::Local,
            replicas: 1,
        }
    }
}

/// `[oauth]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthOptions {
    /// A refresh token unused this long (seconds) expires.
    pub refresh_idle_ttl: u64,
    /// A refresh-token family expires this long (seconds) after its first token.
    pub refresh_absolute_ttl: u64,
    /// Seconds in which the immediately previous refresh token may be
    /// retried once (a lost response); 0 disables.
    pub refresh_grace: u64,
    /// Longest `act` chain token exchange may build.
    pub max_delegation_depth: u32,
    /// Largest request body the token endpoints read (bytes).
    pub max_body_bytes: usize,
    /// Failed client authentications allowed per minute, per client id
    /// and per source address.
    pub auth_failures_per_minute: u32,
    /// Longest lifetime of a private_key_jwt client assertion (seconds).
    pub assertion_max_ttl: u64,
    /// Scope that lets a bearer token call `/oauth/introspect`.
    pub introspection_scope: String,
}

impl Default for OAuthOptions {
    fn default() -> Self {
        OAuthOptions {
            refresh_idle_ttl: 86_400,
            refresh_absolute_ttl: 30 * 86_400,
            refresh_grace: 0,
            max_delegation_depth: 2,
            max_body_bytes: 64 * 1024,
            auth_failures_per_minute: 10,
            assertion_max_ttl: 300,
            introspection_scope: "warden.introspect".into(),
        }
    }
}

/// `[dpop]`: how DPoP proofs (RFC 9449) are checked, at the token
/// endpoint and wherever a DPoP-bound token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopOptions {
    /// Seconds a proof's `iat` may be ahead of the server's clock.
    pub leeway: u64,
    /// Seconds after its `iat` a proof is still accepted (each proof once:
    /// its `jti` is remembered this long, plus the leeway).
    pub max_age: u64,
    /// Require a server nonce in every proof (RFC 9449 §8, §9): a proof
    /// without a current one is answered `use_dpop_nonce` with a fresh
    /// nonce in `DPoP-Nonce`. Nonces are derived from the master key and
    /// the time, so every replica accepts every other's.
    pub require_nonce: bool,
}

impl Default for DpopOptions {
    fn default() -> Self {
        DpopOptions {
            leeway: warden_jose::dpop::DEFAULT_PROOF_LEEWAY,
            max_age: warden_jose::dpop::DEFAULT_PROOF_MAX_AGE,
            require_nonce: false,
        }
    }
}

/// `[audit]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Checkpoint origin (the signed note's first line and key name).
    pub origin: String,
    /// Whether the origin was configured; if not, an existing log keeps
    /// its own (the default follows the issuer, which follows `listen`).
    pub origin_explicit: bool,
    /// Seconds between checkpoints.
    pub checkpoint_interval: u64,
    /// Seconds an event body must be kept before it may be erased.
    pub retention: u64,
    /// How long a queued event may wait for the sequencer before
    /// `/readyz` reports the server unready.
    pub max_integration_delay: Duration,
}

impl AuditOptions {
    /// The defaults for a server whose issuer is `issuer`: the origin is
    /// the issuer without its scheme, plus `/audit`.
    pub fn for_issuer(issuer: &str) -> Self {
        AuditOptions {
            origin: default_origin(issuer),
            origin_explicit: false,
            checkpoint_interval: 10,
            retention: 180 * 86_400,
            max_integration_delay: Duration::from_secs(1),
        }
    }
}

/// The checkpoint origin Warden derives from its issuer.
pub fn default_origin(issuer: &str) -> String {
    let bare = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    format!("{}/audit", bare.trim_end_matches('/'))
}

/// `[replicas]`: how a replica catches up with changes made elsewhere
/// (another replica or the CLI) besides the Redis fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaOptions {
    /// How often revocations recorded elsewhere are read from the store
    /// (all of them every 30 periods). Keys and registry attributes are
    /// re-read every 5 periods.
    pub sync_interval: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            sync_interval: Duration::from_secs(1),
        }
    }
}

/// Where an external issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Subject namespace: `user`.
    pub subject_kind: String,
}

/// Scopes with meaning to Warden itself.
pub mod scopes {
    /// Administers clients through the admin API.
    pub const ADMIN: &str = "warden.admin";
    /// Reads the audit log.
    pub const AUDIT_READ: &str = "audit.read";
    /// Scrapes `GET /metrics` on the main listener.
    pub const METRICS_READ: &str = "metrics.read";
}

/// Roles with meaning to Warden itself.
pub mod roles {
    /// May administer clients.
    pub const ADMIN: &str = "admin";
    /// May read the audit log.
    pub const AUDITOR: &str = "auditor";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_agree_with_each_other() {
        let o = ServerOptions::default();
        assert_eq!(o.issuer, "http://127.0.0.1:8080");
        assert_eq!(o.audit.origin, "127.0.0.1:8080/audit");
        assert!(o.default_ttl <= o.max_ttl && o.max_ttl <= TOKEN_TTL_CAP);
        assert!(o.algorithms.contains(o.key_algorithm));
        assert!(o.storage.database_url.ends_with("warden-data/warden.db"));
    }

    #[test]
    fn urls_with_passwords_are_masked() {
        let o = ServerOptions {
            redis_url: Some("redis://:hunter2@127.0.0.1:6379".into()),
            storage: StorageOptions {
                database_url: "postgres://w:s3cret@db/warden".into(),
                ..StorageOptions::default()
            },
            ..ServerOptions::default()
        };
        let text = format!("{o:?}");
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
    }
}
