//! `warden.toml` and `WARDEN_*` overrides: one typed [`Config`] as written,
//! resolved once into the server's [`ServerOptions`] with errors that name
//! the key or variable at fault.
//!
//! Precedence, highest first: command-line flag, environment variable,
//! config file, built-in default ([`ServerOptions::default`]). Every file
//! key `a.b` has the variable `WARDEN_A_B`; the list of those keys is
//! derived from [`Config`] itself ([`env_keys`]), so a new key is
//! overridable the moment it exists. Unknown file keys and unknown
//! `WARDEN_*` variables are errors, so a typo never silently falls back to
//! a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_jose::{Algorithm, AlgorithmSet, MAX_LEEWAY};
use warden_keys::RotationPolicy;
use warden_server::ServerOptions;
use warden_server::options::{
    AuditOptions, ConnectionLimits, DashboardOptions, DpopOptions, FederatedIssuer, JwksLocation, LogFormat,
    MetricsOptions, OAuthOptions, RateLimitOptions, RegistryOptions, ReplicaOptions, RouteConfig, StorageOptions,
    TOKEN_TTL_CAP, default_origin,
};

/// Environment variables that are not config keys.
const RESERVED_ENV: [&str; 4] = ["WARDEN_MASTER_KEY", "WARDEN_CONFIG", "WARDEN_LOG", "WARDEN_CREDENTIALS"];
/// Prefix left to test harnesses.
const TEST_ENV_PREFIX: &str = "WARDEN_TEST_";

/// The configuration as written (file + environment), before it is
/// resolved. Sections whose written form is their resolved form are the
/// server's own types.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded database and master key live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// PostgreSQL schema to keep Warden's tables in (default: `public`).
    pub database_schema: Option<String>,
    /// Address `warden serve` listens on.
    pub listen: String,
    /// Limits on client connections.
    pub server: ServerConfig,
    /// The issuer identifier put in and required of tokens (default:
    /// `http://<listen>`).
    pub issuer: Option<String>,
    /// Token rules.
    pub tokens: TokensConfig,
    /// Signing-key rules.
    pub keys: KeysConfig,
    /// Audit log.
    pub audit: AuditConfig,
    /// OAuth token service.
    pub oauth: OAuthOptions,
    /// DPoP proofs (RFC 9449).
    pub dpop: DpopOptions,
    /// Trusted external issuers (`[[federation]]`): arrays of tables are
    /// set in the file only.
    #[serde(skip_serializing)]
    pub federation: Vec<FederationConfig>,
    /// Identity providers people sign in through (`[[login]]`): arrays
    /// of tables are set in the file only.
    #[serde(skip_serializing)]
    pub login: Vec<LoginConfig>,
    /// Who hears about requests for a person's approval (`[approvals]`,
    /// with `[[approvals.notify]]` and `[approvals.smtp]`): set in the
    /// file only.
    #[serde(skip_serializing)]
    pub approvals: ApprovalsConfig,
    /// Directory of Cedar policies (`schema.cedarschema`, `*.cedar`);
    /// default: the built-in set.
    pub policy_dir: Option<PathBuf>,
    /// `shared` (default): a principal without a tenant reaches every
    /// tenant's resources; `strict`: only resources without a tenant.
    pub tenancy: warden_policy::Tenancy,
    /// Model catalog: model id → stage, for policies on `resource.stage`
    /// of models the registry does not know (`[models]`).
    pub models: BTreeMap<String, String>,
    /// Gateway routes (`[[route]]`, see `warden_server::options::route`).
    #[serde(skip_serializing)]
    pub route: Vec<RouteConfig>,
    /// Redis (`redis://[:PASSWORD@]HOST:PORT[/DB]`) shared by every
    /// replica; unset: each process on its own.
    pub redis_url: Option<String>,
    /// Load balancers whose `X-Forwarded-For` names the client: IP
    /// addresses or CIDR networks (`10.0.0.0/8`). Empty: the TCP peer is
    /// the client.
    pub trusted_proxies: Vec<String>,
    /// Shared rate limits.
    pub rate_limit: RateLimitOptions,
    /// Model promotion approvals.
    pub registry: RegistryOptions,
    /// Catching up with other replicas.
    pub replicas: ReplicasConfig,
    /// Logging.
    pub log: LogConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Where the dashboard is served.
    pub dashboard: DashboardConfig,
}

impl Default for Config {
    /// Every default, taken from [`ServerOptions::default`].
    fn default() -> Self {
        let o = ServerOptions::default();
        Config {
            data_dir: o.storage.data_dir,
            database_url: None,
            database_schema: None,
            listen: o.listen.to_string(),
            server: ServerConfig {
                header_read_timeout: o.server.header_read_timeout.as_secs(),
                idle_timeout: o.server.idle_timeout.as_secs(),
                max_connections: o.server.max_connections.unwrap_or(0),
                shutdown_grace: o.server.shutdown_grace.as_secs(),
            },
            issuer: None,
            tokens: TokensConfig {
                default_ttl: o.default_ttl,
                max_ttl: o.max_ttl,
                leeway: o.leeway,
                max_bytes: o.max_token_bytes,
                algorithms: o.algorithms.iter().map(|a| a.as_str().to_owned()).collect(),
            },
            keys: KeysConfig {
                algorithm: o.key_algorithm.as_str().to_owned(),
                publish_lead: o.rotation.publish_lead,
                rotate_every: o.rotate_every,
            },
            audit: AuditConfig {
                origin: None,
                checkpoint_interval: o.audit.checkpoint_interval,
                retention_days: o.audit.retention / 86_400,
                max_integration_delay: o.audit.max_integration_delay.as_secs(),
            },
            oauth: o.oauth,
            dpop: o.dpop,
            federation: Vec::new(),
            login: Vec::new(),
            approvals: ApprovalsConfig::default(),
            policy_dir: None,
            tenancy: o.tenancy,
            models: BTreeMap::new(),
            route: Vec::new(),
            redis_url: None,
            trusted_proxies: Vec::new(),
            rate_limit: o.rate_limit,
            registry: o.registry,
            replicas: ReplicasConfig {
                sync_interval: o.replicas.sync_interval.as_secs(),
            },
            log: LogConfig { format: o.log_format },
            metrics: MetricsConfig {
                enabled: o.metrics.enabled,
                listen: None,
            },
            dashboard: DashboardConfig {
                listen: None,
                url: None,
            },
        }
    }
}

/// `[server]`: what a client connection may cost.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Seconds a client has to send a complete request head (1–3600).
    pub header_read_timeout: u64,
    /// Seconds a kept-alive connection may idle between requests, and a
    /// response may wait on a client that stopped reading (1–86400).
    pub idle_timeout: u64,
    /// Connections served at once; 0: derived from the open-file limit.
    pub max_connections: usize,
    /// Seconds a shutdown waits for requests in flight (0–3600).
    pub shutdown_grace: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Config::default().server
    }
}

/// `[log]`. The filter is `WARDEN_LOG` (e.g. `info`, `warden_server=debug`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (default) or `json` (one object per line, with the span
    /// fields, such as `request_id`).
    pub format: LogFormat,
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
        Config::default().metrics
    }
}

/// `[dashboard]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Serve the dashboard only on this IP:PORT (its own origin), not on
    /// the main listener.
    pub listen: Option<String>,
    /// Its public URL (`https://host[:port]`, no path) behind a proxy.
    pub url: Option<String>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Config::default().dashboard
    }
}

/// `[replicas]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicasConfig {
    /// Seconds between reads of revocations made elsewhere (1–60; keys
    /// and registry attributes every 5 of these). The Redis fan-out
    /// applies changes at once; this is the catch-up when it misses one.
    pub sync_interval: u64,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        Config::default().replicas
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
    /// Seconds a queued event may wait for its place in the log before
    /// `/readyz` reports the server unready.
    pub max_integration_delay: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Config::default().audit
    }
}

/// One `[[federation]]` entry: an external issuer whose tokens may be
/// exchanged (as `subject_token`) or used on gateway routes of its audience.
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

/// `[approvals]`: `[[approvals.notify]]` (the server's own type) and
/// `[approvals.smtp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// Where each approver group hears about requests.
    pub notify: Vec<warden_server::options::NotifyTarget>,
    /// The mail server for `email` targets.
    pub smtp: Option<SmtpConfig>,
}

/// `[approvals.smtp]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or address of the mail server.
    pub host: String,
    /// Its port (default 587).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The sender (`Warden <warden@example.com>`).
    pub from: String,
    /// `starttls` (default), `tls`, or `none` (a relay on this machine).
    #[serde(default)]
    pub tls: warden_server::options::SmtpTls,
    /// User name, with `password_file`.
    pub username: Option<String>,
    /// A file holding the password (mode 0600).
    pub password_file: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    587
}

/// One `[[login]]` entry: an OpenID Connect provider people sign in
/// through (docs/sign-in.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// Its name in URLs (`/ui/login/<name>`): letters, digits, `-`, `_`.
    pub name: String,
    /// What the sign-in button says (default: the name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The provider's issuer identifier (discovery is read from it).
    pub issuer: String,
    /// Warden's client id at the provider.
    pub client_id: String,
    /// A file holding Warden's client secret (mode 0600 or stricter).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Or the environment variable holding it.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default = "default_login_auth")]
    pub token_endpoint_auth: String,
    /// Scopes asked for; `openid` is always added.
    #[serde(default = "default_login_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim with the person's groups (default `groups`).
    #[serde(default = "default_role_claim")]
    pub groups_claim: String,
    /// Provider group → Warden role.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Roles everyone signing in through it gets.
    #[serde(default)]
    pub default_roles: Vec<String>,
    /// Email domains allowed to sign in (empty: any).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// `email` (default: `user:<email>`, needs a verified email) or `sub`
    /// (`user:<sub>`).
    #[serde(default = "default_login_subject")]
    pub subject: String,
}

fn default_login_auth() -> String {
    "client_secret_basic".into()
}
fn default_login_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_login_subject() -> String {
    "email".into()
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
        Config::default().tokens
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
        Config::default().keys
    }
}

/// The type of a config key's value, as an environment variable spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    List,
    Bool,
}

/// Every key that a `WARDEN_*` variable may set, with its type: the
/// leaves of [`Config::default`] as written. Arrays of tables
/// (`[[route]]`, `[[federation]]`) and maps of free keys (`[models]`) are
/// file-only.
fn env_keys() -> Vec<(String, Kind)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Kind)>) {
        let Value::Object(fields) = value else { return };
        for (name, v) in fields {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let kind = match v {
                Value::Object(inner) if inner.is_empty() => continue,
                Value::Object(_) => {
                    walk(&key, v, out);
                    continue;
                }
                Value::Bool(_) => Kind::Bool,
                Value::Number(_) => Kind::Int,
                Value::Array(_) => Kind::List,
                Value::String(_) | Value::Null => Kind::Str,
            };
            out.push((key, kind));
        }
    }
    let mut out = Vec::new();
    if let Ok(defaults) = serde_json::to_value(Config::default()) {
        walk("", &defaults, &mut out);
    }
    out
}

/// Whether `name` is one of the variables Kubernetes sets for a Service
/// whose name starts with `warden` (`WARDEN_PORT`, `WARDEN_PORT_8080_TCP`,
/// `WARDEN_SERVICE_HOST`, …): not Warden's, and never a config key.
pub fn is_service_link(name: &str) -> bool {
    name.ends_with("_PORT") || name.contains("_PORT_") || name.contains("_SERVICE_")
}

/// The `WARDEN_*` variables of `env` that are ignored as Kubernetes
/// service links (for a debug line once logging is set up).
pub fn ignored_env(env: &BTreeMap<String, String>) -> Vec<&str> {
    let keys = env_keys();
    env.keys()
        .filter(|n| n.starts_with("WARDEN_") && is_service_link(n))
        .filter(|n| !keys.iter().any(|(key, _)| env_name(key) == **n))
        .map(String::as_str)
        .collect()
}

fn env_name(key: &str) -> String {
    format!("WARDEN_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Reads `file` (if given, or `./warden.toml` if present) and the
/// environment `env`, and returns the unresolved config.
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
    let keys = env_keys();
    for name in env.keys().filter(|n| n.starts_with("WARDEN_")) {
        let known = RESERVED_ENV.contains(&name.as_str())
            || name.starts_with(TEST_ENV_PREFIX)
            || keys.iter().any(|(key, _)| env_name(key) == *name)
            || is_service_link(name);
        if !known {
            bail!("unknown environment variable {name}: it matches no config key");
        }
    }
    for (key, kind) in &keys {
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
    /// Checks every value and resolves defaults into the server's options.
    pub fn resolve(self) -> anyhow::Result<ServerOptions> {
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
        let audit = resolve_audit(&self.audit, &issuer)?;
        check_oauth(&self.oauth)?;
        check_dpop(&self.dpop)?;
        let federation = self
            .federation
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                resolve_federation(f, &issuer).map_err(|e| anyhow!("config `[[federation]]` #{}: {e}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut login = Vec::new();
        for (i, l) in self.login.into_iter().enumerate() {
            let provider = resolve_login(l).map_err(|e| anyhow!("config `[[login]]` #{}: {e}", i + 1))?;
            if login
                .iter()
                .any(|p: &warden_server::options::LoginProvider| p.name == provider.name)
            {
                bail!(
                    "config `[[login]]` #{}: the name `{}` is used twice",
                    i + 1,
                    provider.name
                );
            }
            login.push(provider);
        }
        check_login_subjects(&login)?;
        let approvals = resolve_approvals(self.approvals)?;
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
        let mut storage = StorageOptions::embedded(self.data_dir);
        if let Some(url) = self.database_url.filter(|u| !u.is_empty()) {
            storage.database_url = url;
        }
        storage.database_schema = self.database_schema.filter(|s| !s.is_empty());
        warden_store::Backend::from_url(&storage.database_url)
            .map_err(|e| anyhow!("config key `database_url`: {e}"))?;
        let redis_url = self.redis_url.filter(|u| !u.is_empty());
        if let Some(url) = &redis_url {
            warden_server::redis::check_url(url).map_err(|e| anyhow!("config key `redis_url`: {e}"))?;
        }
        if !(1..=1000).contains(&self.rate_limit.replicas) {
            bail!("config key `rate_limit.replicas`: must be between 1 and 1000");
        }
        let metrics = resolve_metrics(&self.metrics, listen)?;
        let dashboard = resolve_dashboard(&self.dashboard, listen, &metrics)?;
        if !(1..=10).contains(&self.registry.required_approvals) {
            bail!("config key `registry.required_approvals`: must be between 1 and 10");
        }
        if !(60..=90 * 86_400).contains(&self.registry.approval_ttl) {
            bail!("config key `registry.approval_ttl`: must be between 60 seconds and 90 days");
        }
        if !(1..=60).contains(&self.replicas.sync_interval) {
            bail!("config key `replicas.sync_interval`: must be between 1 and 60 seconds");
        }
        let server = resolve_server(&self.server)?;
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
        Ok(ServerOptions {
            issuer,
            listen,
            server,
            storage,
            default_ttl: t.default_ttl,
            max_ttl: t.max_ttl,
            leeway: t.leeway,
            max_token_bytes: t.max_bytes,
            algorithms,
            key_algorithm,
            // Retirement waits for the hard lifetime cap, not the
            // configured `tokens.max_ttl`, so that lowering the setting
            // can never withdraw a key while tokens it signed under the old
            // setting are still valid.
            rotation: RotationPolicy {
                publish_lead: self.keys.publish_lead,
                max_token_ttl: TOKEN_TTL_CAP,
                leeway: MAX_LEEWAY,
            },
            rotate_every: self.keys.rotate_every,
            oauth: self.oauth,
            dpop: self.dpop,
            audit,
            federation,
            login,
            approvals,
            policy_dir: self.policy_dir.filter(|p| !p.as_os_str().is_empty()),
            tenancy: self.tenancy,
            model_stages: self.models,
            routes: self.route,
            redis_url,
            rate_limit: self.rate_limit,
            registry: self.registry,
            trusted_proxies,
            metrics,
            dashboard,
            replicas: ReplicaOptions {
                sync_interval: Duration::from_secs(self.replicas.sync_interval),
            },
            log_format: self.log.format,
        })
    }
}

fn resolve_server(c: &ServerConfig) -> anyhow::Result<ConnectionLimits> {
    if !(1..=3600).contains(&c.header_read_timeout) {
        bail!("config key `server.header_read_timeout`: must be between 1 and 3600 seconds");
    }
    if !(1..=86_400).contains(&c.idle_timeout) {
        bail!("config key `server.idle_timeout`: must be between 1 and 86400 seconds");
    }
    if c.shutdown_grace > 3600 {
        bail!("config key `server.shutdown_grace`: at most 3600 seconds");
    }
    Ok(ConnectionLimits {
        header_read_timeout: Duration::from_secs(c.header_read_timeout),
        idle_timeout: Duration::from_secs(c.idle_timeout),
        max_connections: (c.max_connections > 0).then_some(c.max_connections),
        shutdown_grace: Duration::from_secs(c.shutdown_grace),
    })
}

fn resolve_metrics(m: &MetricsConfig, listen: SocketAddr) -> anyhow::Result<MetricsOptions> {
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
    Ok(MetricsOptions {
        enabled: m.enabled,
        listen: metrics_listen,
    })
}

fn resolve_dashboard(
    d: &DashboardConfig,
    listen: SocketAddr,
    metrics: &MetricsOptions,
) -> anyhow::Result<DashboardOptions> {
    let own = match d.listen.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            let addr: SocketAddr = raw
                .parse()
                .map_err(|_| anyhow!("config key `dashboard.listen`: expected IP:PORT, got `{raw}`"))?;
            if addr == listen {
                bail!(
                    "config key `dashboard.listen`: must differ from `listen` ({listen}); leave it unset to serve the dashboard there"
                );
            }
            if metrics.enabled && metrics.listen == Some(addr) {
                bail!("config key `dashboard.listen`: must differ from `metrics.listen` ({addr})");
            }
            Some(addr)
        }
    };
    let url = match d.url.as_deref() {
        None | Some("") => None,
        Some(_) if own.is_none() => {
            bail!(
                "config key `dashboard.url`: only with `dashboard.listen` (on the main listener the dashboard is at the issuer)"
            )
        }
        Some(url) => {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .ok_or_else(|| anyhow!("config key `dashboard.url`: must be an http(s) URL, got `{url}`"))?;
            if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) || url.chars().any(char::is_control) {
                bail!(
                    "config key `dashboard.url`: scheme, host and port only (`https://ui.example:8443`), got `{url}`"
                );
            }
            Some(url.to_owned())
        }
    };
    Ok(DashboardOptions { listen: own, url })
}

fn resolve_audit(a: &AuditConfig, issuer: &str) -> anyhow::Result<AuditOptions> {
    let origin = match &a.origin {
        Some(o) if !o.is_empty() => o.clone(),
        _ => default_origin(issuer),
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
    if !(1..=3600).contains(&a.max_integration_delay) {
        bail!("config key `audit.max_integration_delay`: must be between 1 and 3600 seconds");
    }
    Ok(AuditOptions {
        origin_explicit: a.origin.as_ref().is_some_and(|o| !o.is_empty()),
        origin,
        checkpoint_interval: a.checkpoint_interval,
        retention: a.retention_days * 86_400,
        max_integration_delay: std::time::Duration::from_secs(a.max_integration_delay),
    })
}

fn check_dpop(d: &DpopOptions) -> anyhow::Result<()> {
    if d.leeway > 300 {
        bail!("config key `dpop.leeway`: at most 300 seconds");
    }
    if !(1..=warden_jose::dpop::MAX_PROOF_MAX_AGE).contains(&d.max_age) {
        bail!(
            "config key `dpop.max_age`: must be between 1 and {} seconds",
            warden_jose::dpop::MAX_PROOF_MAX_AGE
        );
    }
    Ok(())
}

fn check_oauth(o: &OAuthOptions) -> anyhow::Result<()> {
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
    Ok(())
}

fn resolve_login(l: LoginConfig) -> anyhow::Result<warden_server::options::LoginProvider> {
    use warden_server::options::{ClientSecret, LoginProvider, ProviderAuth, SubjectForm};
    let name_ok = !l.name.is_empty()
        && l.name.len() <= 64
        && l.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        bail!("`name` must be 1 to 64 letters, digits, `-` or `_`, got `{}`", l.name);
    }
    check_remote_url("issuer", &l.issuer)?;
    if l.issuer.ends_with('/') {
        bail!("`issuer` must not end with `/` (ID tokens carry it byte for byte)");
    }
    if l.client_id.is_empty() {
        bail!("`client_id` is required");
    }
    let secret = match (&l.client_secret_file, &l.client_secret_env) {
        (Some(path), None) => read_secret_file(path)?,
        (None, Some(var)) if var.starts_with("WARDEN_") => {
            bail!("`client_secret_env`: `{var}` is in WARDEN_*, where every name is a config key; choose another name")
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ => bail!("`client_secret_env`: the environment variable `{var}` is not set"),
        },
        _ => bail!("exactly one of `client_secret_file` and `client_secret_env` is required"),
    };
    let auth = match l.token_endpoint_auth.as_str() {
        "client_secret_basic" => ProviderAuth::Basic,
        "client_secret_post" => ProviderAuth::Post,
        other => bail!("`token_endpoint_auth`: `client_secret_basic` or `client_secret_post`, got `{other}`"),
    };
    let subject = match l.subject.as_str() {
        "email" => SubjectForm::Email,
        "sub" => SubjectForm::Sub,
        other => bail!("`subject`: `email` or `sub`, got `{other}`"),
    };
    let mut scopes = vec!["openid".to_owned()];
    for s in l.scopes {
        if s.is_empty() || s.contains(' ') {
            bail!("`scopes`: `{s}` is not one scope");
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    if l.groups_claim.is_empty() {
        bail!("`groups_claim` must not be empty");
    }
    Ok(LoginProvider {
        display_name: l
            .display_name
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| l.name.clone()),
        name: l.name,
        issuer: l.issuer,
        client_id: l.client_id,
        client_secret: ClientSecret(zeroize::Zeroizing::new(secret)),
        auth,
        scopes,
        groups_claim: l.groups_claim,
        roles: l.roles,
        default_roles: l.default_roles,
        allowed_domains: l.allowed_domains.into_iter().map(|d| d.to_ascii_lowercase()).collect(),
        subject,
    })
}

/// With several providers, no two may ever name the same person: each
/// must name people by email (`subject = "email"`) from domains of its
/// own (`allowed_domains`, no domain shared). A `sub` is unique only
/// within its issuer, and an email domain open to two providers lets
/// either vouch for anyone in it.
fn check_login_subjects(providers: &[warden_server::options::LoginProvider]) -> anyhow::Result<()> {
    use warden_server::options::SubjectForm;
    if providers.len() < 2 {
        return Ok(());
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for p in providers {
        if p.subject != SubjectForm::Email || p.allowed_domains.is_empty() {
            bail!(
                "config `[[login]]` `{}`: with several providers, each needs subject = \"email\" and allowed_domains of its own, so that no two can sign in the same person",
                p.name
            );
        }
        for d in &p.allowed_domains {
            if let Some(other) = owner.insert(d, &p.name) {
                bail!(
                    "config `[[login]]`: the domain `{d}` is allowed by both `{other}` and `{}`; either could sign in anyone of it",
                    p.name
                );
            }
        }
    }
    Ok(())
}

/// `https://`, or `http://` on a loopback address only.
fn check_remote_url(key: &str, url: &str) -> anyhow::Result<()> {
    if !warden_server::login::secure_url(url) {
        bail!("`{key}` must be https:// (plain http only on loopback), got `{url}`");
    }
    Ok(())
}

/// A secret from a file that only its owner may read.
fn read_secret_file(path: &std::path::Path) -> anyhow::Result<String> {
    read_secret(path, "client_secret_file")
}

/// The secret in `path` (named `key` in errors), refused when others may
/// read the file or it is empty.
fn read_secret(path: &std::path::Path, key: &str) -> anyhow::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|e| anyhow!("`{key}` {}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            bail!(
                "`{key}` {} is readable by others; run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("`{key}` {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        bail!("`{key}` {} is empty", path.display());
    }
    Ok(secret.to_owned())
}

/// `[approvals]`: the notify entries as written, the SMTP password read
/// from its file, everything checked as the server will use it.
fn resolve_approvals(a: ApprovalsConfig) -> anyhow::Result<warden_server::options::ApprovalOptions> {
    let smtp = match a.smtp {
        None => None,
        Some(s) => {
            if s.host.trim().is_empty() {
                bail!("config `[approvals.smtp]`: `host` is required");
            }
            let credentials = match (s.username, s.password_file) {
                (None, None) => None,
                (Some(user), Some(path)) => Some((
                    user,
                    warden_server::options::ClientSecret(zeroize::Zeroizing::new(
                        read_secret(&path, "approvals.smtp.password_file")
                            .map_err(|e| anyhow!("config `[approvals.smtp]`: {e}"))?,
                    )),
                )),
                _ => bail!("config `[approvals.smtp]`: give both `username` and `password_file`, or neither"),
            };
            Some(warden_server::options::SmtpOptions {
                host: s.host,
                port: s.port,
                from: s.from,
                tls: s.tls,
                credentials,
            })
        }
    };
    let options = warden_server::options::ApprovalOptions { notify: a.notify, smtp };
    warden_server::approvals::notify::Notifier::new(&options).map_err(|e| anyhow!("config {e}"))?;
    Ok(options)
}

fn resolve_federation(f: FederationConfig, own_issuer: &str) -> anyhow::Result<FederatedIssuer> {
    if f.issuer.is_empty() || f.issuer == own_issuer {
        bail!("`issuer` must be set and differ from Warden's own issuer");
    }
    let jwks = match (f.jwks_url, f.jwks_file) {
        (Some(url), None) => {
            check_remote_url("jwks_url", &url)?;
            JwksLocation::Url(url)
        }
        (None, Some(file)) => JwksLocation::File(file),
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
    Ok(FederatedIssuer {
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
    use warden_server::options::RedisFallback;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn from_toml(text: &str, vars: &[(&str, &str)]) -> anyhow::Result<ServerOptions> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, text).unwrap();
        load(Some(&path), &env(vars))?.resolve()
    }

    #[test]
    fn defaults_are_valid_and_the_servers() {
        let s = from_toml("", &[]).unwrap();
        let d = ServerOptions::default();
        assert_eq!(s.default_ttl, 300);
        assert_eq!(s.leeway, 30);
        assert!(s.storage.database_url.ends_with("warden-data/warden.db"));
        assert!(!s.algorithms.contains(Algorithm::HS256));
        assert_eq!(
            (s.issuer, s.listen, s.max_ttl, s.rotation, s.audit, s.oauth),
            (d.issuer, d.listen, d.max_ttl, d.rotation, d.audit, d.oauth)
        );
    }

    #[test]
    fn every_scalar_key_has_a_variable() {
        let keys: Vec<String> = env_keys().into_iter().map(|(k, _)| k).collect();
        for key in [
            "data_dir",
            "database_url",
            "issuer",
            "tokens.leeway",
            "tokens.algorithms",
            "keys.rotate_every",
            "audit.origin",
            "oauth.introspection_scope",
            "dpop.require_nonce",
            "dpop.max_age",
            "redis_url",
            "trusted_proxies",
            "rate_limit.redis_fallback",
            "registry.approval_ttl",
            "replicas.sync_interval",
            "log.format",
            "metrics.enabled",
            "metrics.listen",
            "dashboard.listen",
            "dashboard.url",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
        }
        for table in ["route", "federation", "login", "models"] {
            assert!(!keys.iter().any(|k| k.starts_with(table)), "{table} is file-only");
        }
        let s = from_toml("", &[("WARDEN_REPLICAS_SYNC_INTERVAL", "7")]).unwrap();
        assert_eq!(s.replicas.sync_interval, Duration::from_secs(7));
    }

    #[test]
    fn tenancy_is_shared_unless_set_strict() {
        use warden_policy::Tenancy;
        assert_eq!(from_toml("", &[]).unwrap().tenancy, Tenancy::Shared);
        assert_eq!(
            from_toml("tenancy = \"strict\"\n", &[]).unwrap().tenancy,
            Tenancy::Strict
        );
        let s = from_toml("tenancy = \"shared\"\n", &[("WARDEN_TENANCY", "strict")]).unwrap();
        assert_eq!(s.tenancy, Tenancy::Strict, "the variable wins");
        let e = from_toml("tenancy = \"loose\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("tenancy") && e.contains("strict"), "{e}");
    }

    #[test]
    fn server_limits() {
        let s = from_toml("", &[]).unwrap();
        assert_eq!(s.server, ConnectionLimits::default());
        let s = from_toml(
            "[server]\nheader_read_timeout = 5\nmax_connections = 200\n",
            &[
                ("WARDEN_SERVER_SHUTDOWN_GRACE", "3"),
                ("WARDEN_SERVER_IDLE_TIMEOUT", "9"),
            ],
        )
        .unwrap();
        assert_eq!(s.server.header_read_timeout, Duration::from_secs(5));
        assert_eq!(s.server.idle_timeout, Duration::from_secs(9));
        assert_eq!(s.server.max_connections, Some(200));
        assert_eq!(s.server.shutdown_grace, Duration::from_secs(3));
        for (text, key) in [
            ("[server]\nheader_read_timeout = 0\n", "server.header_read_timeout"),
            ("[server]\nidle_timeout = 0\n", "server.idle_timeout"),
            ("[server]\nshutdown_grace = 4000\n", "server.shutdown_grace"),
            ("[server]\nread_timeout = 5\n", "read_timeout"),
        ] {
            let e = from_toml(text, &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn kubernetes_service_links_are_not_config_keys() {
        let vars = [
            ("WARDEN_PORT", "tcp://10.0.0.1:8080"),
            ("WARDEN_PORT_8080_TCP_ADDR", "10.0.0.1"),
            ("WARDEN_SERVICE_HOST", "10.0.0.1"),
            ("WARDEN_SERVICE_PORT_HTTP", "8080"),
        ];
        let s = from_toml("", &vars).unwrap();
        assert_eq!(s.listen, ServerOptions::default().listen);
        assert_eq!(ignored_env(&env(&vars)).len(), 4);
        let e = from_toml("", &[("WARDEN_LISTNE", "127.0.0.1:1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("WARDEN_LISTNE"), "misspelt keys are still refused: {e}");
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
        let e = from_toml("[replicas]\nsync_interval = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("replicas.sync_interval"), "{e}");
    }

    #[test]
    fn dpop_keys() {
        let s = from_toml("", &[]).unwrap();
        assert_eq!((s.dpop.leeway, s.dpop.max_age, s.dpop.require_nonce), (60, 300, false));
        let s = from_toml(
            "[dpop]\nrequire_nonce = true\nmax_age = 120\n",
            &[("WARDEN_DPOP_LEEWAY", "5")],
        )
        .unwrap();
        assert_eq!((s.dpop.leeway, s.dpop.max_age, s.dpop.require_nonce), (5, 120, true));
        for (text, key) in [
            ("[dpop]\nmax_age = 0\n", "dpop.max_age"),
            ("[dpop]\nmax_age = 3601\n", "dpop.max_age"),
            ("[dpop]\nleeway = 301\n", "dpop.leeway"),
            ("[dpop]\nnonce = true\n", "nonce"),
        ] {
            let e = from_toml(text, &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn redis_and_rate_limit_keys() {
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
    fn dashboard_keys() {
        let s = from_toml("", &[]).unwrap();
        assert_eq!(s.dashboard, DashboardOptions::default());
        assert_eq!(s.dashboard_origin(), Some(s.issuer.as_str()));
        let s = from_toml("[dashboard]\nlisten = \"127.0.0.1:8081\"\n", &[]).unwrap();
        assert_eq!(s.dashboard.listen, Some("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(s.dashboard_origin(), None, "not the gateway's origin");
        assert_eq!(s.dashboard_base(), "http://127.0.0.1:8081");
        let s = from_toml(
            "issuer = \"https://warden.example\"\n",
            &[
                ("WARDEN_DASHBOARD_LISTEN", "0.0.0.0:8081"),
                ("WARDEN_DASHBOARD_URL", "https://ui.warden.example"),
            ],
        )
        .unwrap();
        assert_eq!(s.dashboard.listen, Some("0.0.0.0:8081".parse().unwrap()));
        assert_eq!(s.dashboard_origin(), Some("https://ui.warden.example"));
        assert_eq!(s.dashboard_base(), "https://ui.warden.example");
        assert!(s.dashboard_secure());
        for (text, vars, key) in [
            ("[dashboard]\nlisten = \"eight\"\n", &[][..], "dashboard.listen"),
            (
                "[dashboard]\nlisten = \"127.0.0.1:8080\"\n",
                &[][..],
                "dashboard.listen",
            ),
            (
                "[metrics]\nlisten = \"127.0.0.1:9\"\n[dashboard]\nlisten = \"127.0.0.1:9\"\n",
                &[][..],
                "dashboard.listen",
            ),
            ("[dashboard]\nurl = \"https://ui.example\"\n", &[][..], "dashboard.url"),
            (
                "[dashboard]\nlisten = \"127.0.0.1:8081\"\nurl = \"https://ui.example/ui\"\n",
                &[][..],
                "dashboard.url",
            ),
            (
                "",
                &[
                    ("WARDEN_DASHBOARD_LISTEN", "127.0.0.1:8081"),
                    ("WARDEN_DASHBOARD_URL", "ftp://x"),
                ][..],
                "dashboard.url",
            ),
            ("[dashboard]\nport = 1\n", &[][..], "port"),
        ] {
            let e = from_toml(text, vars).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
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
