//! `warden.toml` and `WARDEN_*` overrides: one typed [`Config`], validated
//! once, with errors that name the key or variable at fault.
//!
//! Precedence, highest first: command-line flag, environment variable,
//! config file, built-in default. Every file key `a.b` has the variable
//! `WARDEN_A_B`. Unknown file keys and unknown `WARDEN_*` variables are
//! errors, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use warden_jose::{Algorithm, AlgorithmSet, MAX_LEEWAY};

/// Hard cap on access-token lifetime (DESIGN.md § Tokens).
pub const TOKEN_TTL_CAP: u64 = 3600;

/// Environment variables that are not config keys.
const RESERVED_ENV: [&str; 3] = ["WARDEN_MASTER_KEY", "WARDEN_CONFIG", "WARDEN_LOG"];
/// Prefix left to test harnesses.
const TEST_ENV_PREFIX: &str = "WARDEN_TEST_";

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Int,
    List,
    Bool,
}

/// Every config key with its type, for environment overrides.
const KEYS: &[(&str, Kind)] = &[
    ("data_dir", Kind::Str),
    ("listen", Kind::Str),
    ("policy_dir", Kind::Str),
    ("database_url", Kind::Str),
    ("database_schema", Kind::Str),
    ("issuer", Kind::Str),
    ("tokens.default_ttl", Kind::Int),
    ("tokens.max_ttl", Kind::Int),
    ("tokens.leeway", Kind::Int),
    ("tokens.max_bytes", Kind::Int),
    ("tokens.algorithms", Kind::List),
    ("keys.algorithm", Kind::Str),
    ("keys.publish_lead", Kind::Int),
    ("keys.rotate_every", Kind::Int),
    ("audit.origin", Kind::Str),
    ("audit.checkpoint_interval", Kind::Int),
    ("audit.retention_days", Kind::Int),
    ("oauth.refresh_idle_ttl", Kind::Int),
    ("oauth.refresh_absolute_ttl", Kind::Int),
    ("oauth.refresh_grace", Kind::Int),
    ("oauth.max_delegation_depth", Kind::Int),
    ("oauth.max_body_bytes", Kind::Int),
    ("oauth.auth_failures_per_minute", Kind::Int),
    ("oauth.assertion_max_ttl", Kind::Int),
    ("oauth.introspection_scope", Kind::Str),
    ("redis_url", Kind::Str),
    ("trusted_proxies", Kind::List),
    ("rate_limit.redis_fallback", Kind::Str),
    ("rate_limit.replicas", Kind::Int),
    ("registry.required_approvals", Kind::Int),
    ("registry.approval_ttl", Kind::Int),
    ("log.format", Kind::Str),
    ("metrics.enabled", Kind::Bool),
    ("metrics.listen", Kind::Str),
];

fn env_name(key: &str) -> String {
    format!("WARDEN_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// The configuration as written (file + environment), before validation.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and master key live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: SQLite in the data dir.
    #[serde(default)]
    pub database_url: Option<String>,
    /// PostgreSQL schema to keep Warden's tables in (default: `public`).
    #[serde(default)]
    pub database_schema: Option<String>,
    /// Address `warden serve` listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The issuer identifier put in and required of tokens (default:
    /// `http://<listen>`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Token rules.
    #[serde(default)]
    pub tokens: TokensConfig,
    /// Signing-key rules.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// OAuth token service.
    #[serde(default)]
    pub oauth: OAuthConfig,
    /// Trusted external issuers (`[[federation]]`), for token exchange.
    #[serde(default)]
    pub federation: Vec<FederationConfig>,
    /// Directory of Cedar policies (`schema.cedarschema`, `*.cedar`);
    /// default: the built-in set.
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// Model catalog: model id → stage, for policies on `resource.stage`
    /// (`[models]` table; the governance registry will supersede it).
    #[serde(default)]
    pub models: BTreeMap<String, String>,
    /// Gateway routes (`[[route]]`; see `warden_server::gateway::route`).
    #[serde(default, skip_serializing)]
    pub route: Vec<warden_server::gateway::RouteConfig>,
    /// Redis (`redis://[:PASSWORD@]HOST:PORT[/DB]`) holding rate-limit
    /// counters shared by every replica; unset: each process limits alone.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Load balancers whose `X-Forwarded-For` names the client: IP
    /// addresses or CIDR networks (`10.0.0.0/8`). Empty: the TCP peer is
    /// the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Shared rate limits.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Model promotion approvals.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `[log]`. The filter is `WARDEN_LOG` (e.g. `info`, `warden_server=debug`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (default) or `json` (one object per line, with the span
    /// fields, such as `request_id`).
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "text".into() }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Record metrics and serve `GET /metrics` (Prometheus text format).
    pub enabled: bool,
    /// Serve `/metrics` on this IP:PORT (e.g. `127.0.0.1:9090`) instead of
    /// the main listener.
    pub listen: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[rate_limit]`: the Redis-backed limiter (with `redis_url`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// While Redis is unreachable: `local` (default; each process allows
    /// its share, the rate and burst divided by `replicas`) or `deny`
    /// (refuse requests on rate-limited routes with 503).
    pub redis_fallback: String,
    /// How many replicas share the limits (default 1).
    pub replicas: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            redis_fallback: "local".into(),
            replicas: 1,
        }
    }
}

/// `[registry]`: four-eyes promotion of models to production.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Distinct approvals a promotion needs (1–10, default 2); the
    /// requester never counts.
    pub required_approvals: u32,
    /// Seconds an approval counts (default 604800, seven days).
    pub approval_ttl: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        let d = warden_server::options::RegistryOptions::default();
        RegistryConfig {
            required_approvals: d.required_approvals,
            approval_ttl: d.approval_ttl,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Checkpoint origin line (default: the issuer without its scheme, plus `/audit`).
    pub origin: Option<String>,
    /// Seconds between signed checkpoints when there are new events.
    pub checkpoint_interval: u64,
    /// Days an event body must be kept before it may be erased.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            origin: None,
            checkpoint_interval: 10,
            retention_days: 180,
        }
    }
}

/// `[oauth]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
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
    /// Failed client authentications allowed per minute, per client id and per source address.
    pub auth_failures_per_minute: u32,
    /// Longest lifetime of a private_key_jwt client assertion (seconds).
    pub assertion_max_ttl: u64,
    /// Scope that lets a bearer token call /oauth/introspect.
    pub introspection_scope: String,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
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

/// One `[[federation]]` entry: an external issuer whose tokens may be
/// exchanged (as `subject_token`) for Warden tokens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The issuer's `iss`, exactly.
    pub issuer: String,
    /// Where its JWKS is fetched from (`https://` or, on loopback, `http://`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Or a local JWKS file.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Algorithms accepted from it.
    #[serde(default = "default_federation_algs")]
    pub algorithms: Vec<String>,
    /// The audience its tokens must carry.
    pub audience: String,
    /// Accepted `typ` values (default: JWT, at+jwt, application/at+jwt).
    #[serde(default)]
    pub typ: Vec<String>,
    /// The claim holding the user's groups or roles (default `groups`).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// External group or role → Warden role.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// The claim holding the user's scopes (default `scope`, space-separated).
    #[serde(default = "default_scope_claim")]
    pub scope_claim: String,
    /// Namespace of its subjects; only `user` (`sub` becomes `user:<sub>`).
    #[serde(default = "default_subject_kind")]
    pub subject_kind: String,
}

fn default_federation_algs() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}
fn default_role_claim() -> String {
    "groups".into()
}
fn default_scope_claim() -> String {
    "scope".into()
}
fn default_subject_kind() -> String {
    "user".into()
}

/// `[tokens]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Lifetime of issued access tokens when none is asked for (seconds).
    pub default_ttl: u64,
    /// Longest lifetime that may be asked for (seconds, at most 3600).
    pub max_ttl: u64,
    /// Clock-skew leeway when verifying (seconds, at most 60).
    pub leeway: u64,
    /// Longest token accepted (bytes).
    pub max_bytes: usize,
    /// Algorithms accepted when verifying.
    pub algorithms: Vec<String>,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            default_ttl: 300,
            max_ttl: TOKEN_TTL_CAP,
            leeway: warden_jose::DEFAULT_LEEWAY,
            max_bytes: warden_jose::DEFAULT_MAX_TOKEN_BYTES,
            algorithms: Algorithm::ASYMMETRIC.iter().map(|a| a.as_str().to_owned()).collect(),
        }
    }
}

/// `[keys]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Algorithm of new signing keys.
    pub algorithm: String,
    /// Seconds a new key is published before it signs.
    pub publish_lead: u64,
    /// `warden serve` rotates the signing key when it is this old
    /// (seconds; 0 = never, rotate by hand).
    pub rotate_every: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            algorithm: "EdDSA".into(),
            publish_lead: 300,
            rotate_every: 0,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./warden-data")
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// Validated configuration, resolved into ready values. `Debug` hides
/// database passwords.
#[derive(Clone)]
pub struct Settings {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The database URL (defaulted).
    pub database_url: String,
    /// PostgreSQL schema, if set.
    pub database_schema: Option<String>,
    /// Issuer identifier.
    pub issuer: String,
    /// Default token lifetime.
    pub default_ttl: u64,
    /// Largest token lifetime.
    pub max_ttl: u64,
    /// Verification leeway.
    pub leeway: u64,
    /// Token size cap.
    pub max_bytes: usize,
    /// Verification allow-list.
    pub algorithms: AlgorithmSet,
    /// Algorithm of new keys.
    pub key_algorithm: Algorithm,
    /// Publication lead of new keys.
    pub publish_lead: u64,
    /// Automatic rotation age (0 = never).
    pub rotate_every: u64,
    /// Listen address of `warden serve`.
    pub listen: SocketAddr,
    /// Audit-log settings.
    pub audit: AuditSettings,
    /// Token-service settings.
    pub oauth: OAuthConfig,
    /// Trusted external issuers.
    pub federation: Vec<Federation>,
    /// Gateway routes, validated.
    pub routes: Vec<warden_server::gateway::RouteConfig>,
    /// Cedar policy directory, if not the built-in set.
    pub policy_dir: Option<PathBuf>,
    /// Model id → stage.
    pub models: BTreeMap<String, String>,
    /// Redis for shared rate limits, if any.
    pub redis_url: Option<String>,
    /// Trusted proxies.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Redis fallback and replica count.
    pub rate_limit: warden_server::options::RateLimitOptions,
    /// Promotion approvals.
    pub registry: warden_server::options::RegistryOptions,
    /// Log output format.
    pub log_format: LogFormat,
    /// Whether and where `/metrics` is served.
    pub metrics: warden_server::options::MetricsOptions,
}

/// Validated `[audit]`.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Checkpoint origin.
    pub origin: String,
    /// Whether `audit.origin` was set. When it was not, an existing log
    /// keeps the origin it was created with (the default derives from the
    /// issuer, which follows the listen address).
    pub origin_explicit: bool,
    /// Seconds between checkpoints.
    pub checkpoint_interval: u64,
    /// Minimum retention of event bodies, in seconds.
    pub retention_secs: u64,
}

/// Where a trusted issuer's keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// Fetched over HTTP(S).
    Url(String),
    /// Read from a file.
    File(PathBuf),
}

/// A validated `[[federation]]` entry.
#[derive(Debug, Clone)]
pub struct Federation {
    /// `iss`, exactly.
    pub issuer: String,
    /// Its keys.
    pub jwks: JwksSource,
    /// Accepted algorithms.
    pub algorithms: AlgorithmSet,
    /// Required audience.
    pub audience: String,
    /// Accepted `typ` values.
    pub typ: Vec<String>,
    /// Claim with groups/roles.
    pub role_claim: String,
    /// External → Warden role.
    pub roles: BTreeMap<String, String>,
    /// Claim with scopes.
    pub scope_claim: String,
    /// `user`, `svc` or `agent`.
    pub subject_kind: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("database_url", &warden_store::redact_url(&self.database_url))
            .field("database_schema", &self.database_schema)
            .field("issuer", &self.issuer)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("leeway", &self.leeway)
            .field("max_bytes", &self.max_bytes)
            .field("algorithms", &self.algorithms)
            .field("key_algorithm", &self.key_algorithm)
            .field("publish_lead", &self.publish_lead)
            .field("rotate_every", &self.rotate_every)
            .field("listen", &self.listen)
            .field("audit", &self.audit)
            .field("oauth", &self.oauth)
            .field("federation", &self.federation)
            .field("routes", &self.routes.len())
            .field("policy_dir", &self.policy_dir)
            .field("models", &self.models)
            .field("redis_url", &self.redis_url.as_deref().map(warden_store::redact_url))
            .field("rate_limit", &self.rate_limit)
            .field("registry", &self.registry)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("log_format", &self.log_format)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// Reads `file` (if given, or `./warden.toml` if present) and the
/// environment `env`, and returns the unvalidated config.
pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> anyhow::Result<Config> {
    let mut table = match file {
        Some(path) => read_table(path)?,
        None if Path::new("warden.toml").exists() => read_table(Path::new("warden.toml"))?,
        None => toml::Table::new(),
    };
    apply_env(&mut table, env)?;
    let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        anyhow!("config key `{path}`: {}", e.into_inner().message())
    })?;
    Ok(config)
}

fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| anyhow!("config file {}: {}", path.display(), e.message()))
}

fn apply_env(table: &mut toml::Table, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    for name in env.keys().filter(|n| n.starts_with("WARDEN_")) {
        let known = RESERVED_ENV.contains(&name.as_str())
            || name.starts_with(TEST_ENV_PREFIX)
            || KEYS.iter().any(|(key, _)| env_name(key) == *name);
        if !known {
            bail!("unknown environment variable {name}: it matches no config key");
        }
    }
    for &(key, kind) in KEYS {
        let name = env_name(key);
        let Some(raw) = env.get(&name) else { continue };
        let value = match kind {
            Kind::Str => toml::Value::String(raw.clone()),
            Kind::Int => toml::Value::Integer(
                raw.trim()
                    .parse::<i64>()
                    .map_err(|_| anyhow!("environment variable {name}: expected an integer"))?,
            ),
            Kind::Bool => toml::Value::Boolean(match raw.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => bail!("environment variable {name}: expected true or false"),
            }),
            Kind::List => toml::Value::Array(
                raw.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            ),
        };
        let mut slot = &mut *table;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                slot.insert(part.to_owned(), value);
                break;
            }
            let entry = slot
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            slot = entry
                .as_table_mut()
                .ok_or_else(|| anyhow!("config key `{part}` must be a table"))?;
        }
    }
    Ok(())
}

impl Config {
    /// Checks every value and resolves defaults.
    pub fn validate(self) -> anyhow::Result<Settings> {
        let t = &self.tokens;
        if t.leeway > MAX_LEEWAY {
            bail!(
                "config key `tokens.leeway`: {} s exceeds the {MAX_LEEWAY} s maximum",
                t.leeway
            );
        }
        if t.max_ttl == 0 || t.max_ttl > TOKEN_TTL_CAP {
            bail!("config key `tokens.max_ttl`: must be between 1 and {TOKEN_TTL_CAP} seconds");
        }
        if t.default_ttl == 0 || t.default_ttl > t.max_ttl {
            bail!(
                "config key `tokens.default_ttl`: must be between 1 and tokens.max_ttl ({})",
                t.max_ttl
            );
        }
        if !(1024..=65536).contains(&t.max_bytes) {
            bail!("config key `tokens.max_bytes`: must be between 1024 and 65536");
        }
        let mut algorithms = AlgorithmSet::EMPTY;
        for name in &t.algorithms {
            let alg = Algorithm::parse(name).map_err(|e| anyhow!("config key `tokens.algorithms`: {e}"))?;
            if !alg.is_asymmetric() {
                bail!("config key `tokens.algorithms`: HS256 is never accepted for Warden tokens");
            }
            algorithms.insert(alg);
        }
        if algorithms.is_empty() {
            bail!("config key `tokens.algorithms`: at least one algorithm is required");
        }
        let key_algorithm =
            Algorithm::parse(&self.keys.algorithm).map_err(|e| anyhow!("config key `keys.algorithm`: {e}"))?;
        if !key_algorithm.is_asymmetric() {
            bail!("config key `keys.algorithm`: signing keys must be asymmetric (EdDSA, ES256, ES384, RS256, PS256)");
        }
        if !algorithms.contains(key_algorithm) {
            bail!("config key `keys.algorithm`: `{key_algorithm}` is not in tokens.algorithms");
        }
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| anyhow!("config key `listen`: expected IP:PORT, got `{}`", self.listen))?;
        let issuer = match self.issuer {
            Some(issuer) if !issuer.is_empty() => issuer,
            _ => format!("http://{listen}"),
        };
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            bail!("config key `issuer`: must be an http(s) URL, got `{issuer}`");
        }
        if issuer.ends_with('/') {
            bail!("config key `issuer`: must not end with `/` (tokens carry it byte for byte), got `{issuer}`");
        }
        let audit = validate_audit(&self.audit, &issuer)?;
        let oauth = validate_oauth(self.oauth)?;
        let federation = self
            .federation
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                validate_federation(f, &issuer).map_err(|e| anyhow!("config `[[federation]]` #{}: {e}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        warden_server::gateway::RouteTable::new(self.route.clone()).map_err(|e| anyhow!("config `[[route]]`: {e}"))?;
        if self.keys.rotate_every != 0 && self.keys.rotate_every < 2 * TOKEN_TTL_CAP {
            bail!(
                "config key `keys.rotate_every`: 0 (never) or at least {} seconds, so that each key outlives the tokens it signed",
                2 * TOKEN_TTL_CAP
            );
        }
        if self.keys.publish_lead > 86_400 {
            bail!("config key `keys.publish_lead`: at most 86400 seconds");
        }
        let database_url = match self.database_url {
            Some(url) if !url.is_empty() => url,
            _ => format!("sqlite://{}", self.data_dir.join(warden_store::DATABASE_FILE).display()),
        };
        warden_store::Backend::from_url(&database_url).map_err(|e| anyhow!("config key `database_url`: {e}"))?;
        let (redis_url, rate_limit) = validate_rate_limit(self.redis_url, &self.rate_limit)?;
        let log_format = match self.log.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("config key `log.format`: expected `text` or `json`, got `{other}`"),
        };
        let metrics = validate_metrics(&self.metrics, listen)?;
        if !(1..=10).contains(&self.registry.required_approvals) {
            bail!("config key `registry.required_approvals`: must be between 1 and 10");
        }
        if !(60..=90 * 86_400).contains(&self.registry.approval_ttl) {
            bail!("config key `registry.approval_ttl`: must be between 60 seconds and 90 days");
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow!("config key `trusted_proxies`: `{text}` is not an IP address or a CIDR network")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let registry = warden_server::options::RegistryOptions {
            required_approvals: self.registry.required_approvals,
            approval_ttl: self.registry.approval_ttl,
        };
        Ok(Settings {
            data_dir: self.data_dir,
            database_url,
            database_schema: self.database_schema.filter(|s| !s.is_empty()),
            issuer,
            default_ttl: t.default_ttl,
            max_ttl: t.max_ttl,
            leeway: t.leeway,
            max_bytes: t.max_bytes,
            algorithms,
            key_algorithm,
            publish_lead: self.keys.publish_lead,
            rotate_every: self.keys.rotate_every,
            listen,
            audit,
            oauth,
            federation,
            routes: self.route,
            policy_dir: self.policy_dir.filter(|p| !p.as_os_str().is_empty()),
            models: self.models,
            redis_url,
            rate_limit,
            registry,
            trusted_proxies,
            log_format,
            metrics,
        })
    }
}

fn validate_metrics(m: &MetricsConfig, listen: SocketAddr) -> anyhow::Result<warden_server::options::MetricsOptions> {
    let metrics_listen = match m.listen.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            let addr: SocketAddr = raw
                .parse()
                .map_err(|_| anyhow!("config key `metrics.listen`: expected IP:PORT, got `{raw}`"))?;
            if addr == listen {
                bail!(
                    "config key `metrics.listen`: must differ from `listen` ({listen}); leave it unset to serve /metrics there"
                );
            }
            Some(addr)
        }
    };
    Ok(warden_server::options::MetricsOptions {
        enabled: m.enabled,
        listen: metrics_listen,
    })
}

fn validate_rate_limit(
    redis_url: Option<String>,
    r: &RateLimitConfig,
) -> anyhow::Result<(Option<String>, warden_server::options::RateLimitOptions)> {
    use warden_server::gateway::redis_limit::{RedisFallback, check_url};
    let redis_url = redis_url.filter(|u| !u.is_empty());
    if let Some(url) = &redis_url {
        check_url(url).map_err(|e| anyhow!("config key `redis_url`: {e}"))?;
    }
    let redis_fallback = RedisFallback::parse(&r.redis_fallback).ok_or_else(|| {
        anyhow!(
            "config key `rate_limit.redis_fallback`: expected `local` or `deny`, got `{}`",
            r.redis_fallback
        )
    })?;
    if !(1..=1000).contains(&r.replicas) {
        bail!("config key `rate_limit.replicas`: must be between 1 and 1000");
    }
    Ok((
        redis_url,
        warden_server::options::RateLimitOptions {
            redis_fallback,
            replicas: r.replicas,
        },
    ))
}

fn validate_audit(a: &AuditConfig, issuer: &str) -> anyhow::Result<AuditSettings> {
    let origin = match &a.origin {
        Some(o) if !o.is_empty() => o.clone(),
        _ => {
            let bare = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
            format!("{}/audit", bare.trim_end_matches('/'))
        }
    };
    if origin.contains(['\n', ' ']) || origin.chars().any(char::is_control) {
        bail!("config key `audit.origin`: must be one line without spaces, got `{origin}`");
    }
    if a.checkpoint_interval == 0 || a.checkpoint_interval > 86_400 {
        bail!("config key `audit.checkpoint_interval`: must be between 1 and 86400 seconds");
    }
    if a.retention_days > 36_500 {
        bail!("config key `audit.retention_days`: at most 36500 days");
    }
    Ok(AuditSettings {
        origin_explicit: a.origin.as_ref().is_some_and(|o| !o.is_empty()),
        origin,
        checkpoint_interval: a.checkpoint_interval,
        retention_secs: a.retention_days * 86_400,
    })
}

fn validate_oauth(o: OAuthConfig) -> anyhow::Result<OAuthConfig> {
    if o.refresh_idle_ttl == 0 || o.refresh_idle_ttl > o.refresh_absolute_ttl {
        bail!("config key `oauth.refresh_idle_ttl`: must be between 1 and oauth.refresh_absolute_ttl");
    }
    if o.refresh_absolute_ttl > 365 * 86_400 {
        bail!("config key `oauth.refresh_absolute_ttl`: at most 365 days");
    }
    if o.refresh_grace > 60 {
        bail!("config key `oauth.refresh_grace`: at most 60 seconds");
    }
    if o.max_delegation_depth == 0 || o.max_delegation_depth > 8 {
        bail!("config key `oauth.max_delegation_depth`: must be between 1 and 8");
    }
    if !(1024..=1024 * 1024).contains(&o.max_body_bytes) {
        bail!("config key `oauth.max_body_bytes`: must be between 1024 and 1048576");
    }
    if o.auth_failures_per_minute == 0 {
        bail!("config key `oauth.auth_failures_per_minute`: must be at least 1");
    }
    if o.assertion_max_ttl == 0 || o.assertion_max_ttl > 3600 {
        bail!("config key `oauth.assertion_max_ttl`: must be between 1 and 3600 seconds");
    }
    if o.introspection_scope.is_empty() || o.introspection_scope.contains(' ') {
        bail!("config key `oauth.introspection_scope`: one scope token");
    }
    Ok(o)
}

fn validate_federation(f: FederationConfig, own_issuer: &str) -> anyhow::Result<Federation> {
    if f.issuer.is_empty() || f.issuer == own_issuer {
        bail!("`issuer` must be set and differ from Warden's own issuer");
    }
    let jwks = match (f.jwks_url, f.jwks_file) {
        (Some(url), None) => {
            let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
                .iter()
                .any(|p| url.starts_with(p));
            if !url.starts_with("https://") && !loopback {
                bail!("`jwks_url` must be https:// (plain http only on loopback), got `{url}`");
            }
            JwksSource::Url(url)
        }
        (None, Some(file)) => JwksSource::File(file),
        _ => bail!("exactly one of `jwks_url` and `jwks_file` is required"),
    };
    let mut algorithms = AlgorithmSet::EMPTY;
    for name in &f.algorithms {
        let alg = Algorithm::parse(name).map_err(|e| anyhow!("`algorithms`: {e}"))?;
        if !alg.is_asymmetric() {
            bail!("`algorithms`: HS256 is never accepted from an external issuer");
        }
        algorithms.insert(alg);
    }
    if algorithms.is_empty() {
        bail!("`algorithms`: at least one algorithm is required");
    }
    if f.audience.is_empty() {
        bail!("`audience` is required");
    }
    // svc: and agent: are Warden's own clients; an IdP's subjects must never
    // be mistaken for them.
    if f.subject_kind != "user" {
        bail!("`subject_kind` must be `user`: svc: and agent: subjects are Warden clients");
    }
    let typ = if f.typ.is_empty() {
        vec!["JWT".into(), "at+jwt".into(), "application/at+jwt".into()]
    } else {
        f.typ
    };
    Ok(Federation {
        issuer: f.issuer,
        jwks,
        algorithms,
        audience: f.audience,
        typ,
        role_claim: f.role_claim,
        roles: f.roles,
        scope_claim: f.scope_claim,
        subject_kind: f.subject_kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn from_toml(text: &str, vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, text).unwrap();
        load(Some(&path), &env(vars))?.validate()
    }

    #[test]
    fn defaults_are_valid() {
        let s = from_toml("", &[]).unwrap();
        assert_eq!(s.default_ttl, 300);
        assert_eq!(s.leeway, 30);
        assert!(s.database_url.ends_with("warden-data/warden.db"));
        assert!(!s.algorithms.contains(Algorithm::HS256));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = from_toml("[tokens]\nleway = 5\n", &[]).unwrap_err().to_string();
        assert!(e.contains("leway"), "{e}");
        let e = from_toml("colour = 1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let e = from_toml("", &[("WARDEN_TOKENS_LEEWAYY", "5")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("WARDEN_TOKENS_LEEWAYY"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = from_toml("[tokens]\nleeway = 61\n", &[]).unwrap_err().to_string();
        assert!(e.contains("tokens.leeway"), "{e}");
        let e = from_toml("[tokens]\nleeway = \"x\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("tokens.leeway"), "{e}");
        let e = from_toml("[tokens]\nalgorithms = [\"HS256\"]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HS256"), "{e}");
        let e = from_toml("[tokens]\nmax_ttl = 7200\n", &[]).unwrap_err().to_string();
        assert!(e.contains("tokens.max_ttl"), "{e}");
        let e = from_toml("", &[("WARDEN_TOKENS_LEEWAY", "soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("WARDEN_TOKENS_LEEWAY"), "{e}");
        let e = from_toml("database_url = \"mysql://x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("database_url"), "{e}");
        let e = from_toml(
            "[keys]\nalgorithm = \"ES256\"\n[tokens]\nalgorithms = [\"EdDSA\"]\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("keys.algorithm"));
    }

    #[test]
    fn redis_and_rate_limit_keys() {
        use warden_server::gateway::redis_limit::RedisFallback;
        let s = from_toml("", &[]).unwrap();
        assert_eq!(s.redis_url, None);
        assert_eq!(s.rate_limit.redis_fallback, RedisFallback::Local);
        assert_eq!(s.rate_limit.replicas, 1);

        let s = from_toml(
            "redis_url = \"redis://127.0.0.1:6379/2\"\n[rate_limit]\nredis_fallback = \"deny\"\nreplicas = 3\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.redis_url.as_deref(), Some("redis://127.0.0.1:6379/2"));
        assert_eq!(s.rate_limit.redis_fallback, RedisFallback::Deny);
        assert_eq!(s.rate_limit.replicas, 3);

        let s = from_toml(
            "",
            &[
                ("WARDEN_REDIS_URL", "redis://:pw@127.0.0.1:6379"),
                ("WARDEN_RATE_LIMIT_REDIS_FALLBACK", "deny"),
                ("WARDEN_RATE_LIMIT_REPLICAS", "2"),
            ],
        )
        .unwrap();
        assert_eq!(s.rate_limit.redis_fallback, RedisFallback::Deny);
        assert_eq!(s.rate_limit.replicas, 2);
        let debug = format!("{s:?}");
        assert!(debug.contains("redis://:***@127.0.0.1:6379"), "{debug}");
        assert!(!debug.contains("pw@"), "{debug}");

        for (text, vars, key) in [
            ("redis_url = \"http://127.0.0.1:6379\"\n", &[][..], "redis_url"),
            ("", &[("WARDEN_REDIS_URL", "rediss://h:6380")][..], "redis_url"),
            ("[rate_limit]\nredis_fallback = \"x\"\n", &[][..], "redis_fallback"),
            ("[rate_limit]\nreplicas = 0\n", &[][..], "rate_limit.replicas"),
            ("", &[("WARDEN_RATE_LIMIT_REPLICAS", "x")][..], "RATE_LIMIT_REPLICAS"),
            ("[rate_limit]\nreplica = 2\n", &[][..], "replica"),
        ] {
            let e = from_toml(text, vars).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn trusted_proxies_and_registry_keys() {
        let s = from_toml("", &[]).unwrap();
        assert!(s.trusted_proxies.is_empty());
        assert_eq!((s.registry.required_approvals, s.registry.approval_ttl), (2, 604_800));
        let s = from_toml(
            "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"::1\"]\n[registry]\nrequired_approvals = 3\n",
            &[],
        )
        .unwrap();
        let nets: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        assert_eq!(s.registry.required_approvals, 3);
        for (text, key) in [
            ("trusted_proxies = [\"lb.internal\"]\n", "trusted_proxies"),
            ("trusted_proxies = [\"10.0.0.0/33\"]\n", "trusted_proxies"),
            ("[registry]\nrequired_approvals = 0\n", "registry.required_approvals"),
            ("[registry]\napproval_ttl = 5\n", "registry.approval_ttl"),
        ] {
            let e = from_toml(text, &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn environment_overrides_file() {
        let s = from_toml(
            "issuer = \"https://a.example\"\n[tokens]\nleeway = 10\n",
            &[
                ("WARDEN_TOKENS_LEEWAY", "20"),
                ("WARDEN_TOKENS_ALGORITHMS", "EdDSA,ES256"),
                ("WARDEN_ISSUER", "https://b.example"),
            ],
        )
        .unwrap();
        assert_eq!(s.leeway, 20);
        assert_eq!(s.issuer, "https://b.example");
        assert!(s.algorithms.contains(Algorithm::ES256) && !s.algorithms.contains(Algorithm::RS256));
    }

    #[test]
    fn log_and_metrics_keys() {
        let s = from_toml("", &[]).unwrap();
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(s.metrics.enabled && s.metrics.listen.is_none());

        let s = from_toml(
            "[log]\nformat = \"json\"\n[metrics]\nlisten = \"127.0.0.1:9090\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics.listen, Some("127.0.0.1:9090".parse().unwrap()));

        let s = from_toml(
            "",
            &[("WARDEN_LOG_FORMAT", "json"), ("WARDEN_METRICS_ENABLED", "false")],
        )
        .unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(!s.metrics.enabled);

        for (text, vars, key) in [
            ("[log]\nformat = \"xml\"\n", &[][..], "log.format"),
            ("[metrics]\nlisten = \"nine\"\n", &[][..], "metrics.listen"),
            ("[metrics]\nlisten = \"127.0.0.1:8080\"\n", &[][..], "metrics.listen"),
            ("", &[("WARDEN_METRICS_ENABLED", "maybe")][..], "WARDEN_METRICS_ENABLED"),
            ("[metrics]\nenabled = \"yes\"\n", &[][..], "metrics.enabled"),
        ] {
            let e = from_toml(text, vars).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
