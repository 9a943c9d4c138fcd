//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The scopes of a dashboard session unless `--scope` says otherwise:
/// every page's read, and voting on promotions. Roles still decide.
pub const UI_LINK_SCOPES: &str =
    "audit.read dataset.read model.read lineage.read policy.read key.read client.read model.approve model.promote";

/// Warden: an AI governance gateway built on JSON Web Tokens.
#[derive(Parser)]
#[command(name = "warden", version, about, propagate_version = true, after_help = examples::ROOT)]
pub struct Cli {
    /// Data directory (embedded database and master key).
    #[arg(long, global = true, env = "WARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default: in the data dir) or postgres://...
    #[arg(
        long,
        global = true,
        env = "WARDEN_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Config file (default: ./warden.toml when present).
    #[arg(long, global = true, env = "WARDEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage signing keys: list, rotate, retire, sweep, print the JWKS.
    #[command(subcommand, after_help = examples::KEYS)]
    Keys(KeysCommand),
    /// Issue, verify and inspect tokens.
    #[command(subcommand, after_help = examples::TOKEN)]
    Token(TokenCommand),
    /// Check the configuration.
    #[command(subcommand, after_help = examples::CONFIG)]
    Config(ConfigCommand),
    /// Audit log: verifier key, checkpoints, queries, export, verification, erasure.
    #[command(subcommand, after_help = examples::AUDIT)]
    Audit(AuditCommand),
    /// Run the server: token service, gateway, registry, admin and audit
    /// APIs, dashboard (`--demo` for a built-in demo).
    #[command(after_help = examples::SERVE)]
    Serve(ServeArgs),
    /// Manage OAuth clients (services and agents).
    #[command(subcommand, after_help = examples::CLIENT)]
    Client(ClientCommand),
    /// Cedar policies: validate a policy set, run policy tests.
    #[command(subcommand, after_help = examples::POLICY)]
    Policy(PolicyCommand),
    /// Governance registry: datasets and their versions (through a running server).
    #[command(after_help = examples::DATASET)]
    Dataset(DatasetArgs),
    /// Governance registry: models, versions, stages, four-eyes promotion (through a running server).
    #[command(after_help = examples::MODEL)]
    Model(ModelArgs),
    /// Governance registry: lineage walks and erasure impact (through a running server).
    #[command(after_help = examples::LINEAGE)]
    Lineage(LineageArgs),
    /// Compliance dashboard: make login links for people.
    #[command(subcommand, after_help = examples::UI)]
    Ui(UiCommand),
    /// Sign in to a server as yourself (device code, or --browser), for
    /// the registry commands and `warden token print`.
    #[command(after_help = examples::LOGIN)]
    Login(LoginArgs),
    /// Sign out of a server: revoke the sign-in and forget it.
    #[command(after_help = examples::LOGOUT)]
    Logout(LogoutArgs),
    /// People's open sessions (dashboard sessions and sign-ins such as
    /// `warden login`): list them, end one or all of a person's.
    #[command(subcommand, after_help = examples::SESSION)]
    Session(SessionCommand),
    /// People's approvals of agents' calls: list what waits for you,
    /// approve or deny it (through a running server, signed in).
    #[command(after_help = examples::APPROVALS)]
    Approvals(ApprovalsArgs),
}

/// `warden approvals …`.
#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// Server, token, output.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

/// `warden approvals …` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The requests you may see, newest first (pending by default).
    #[command(after_help = examples::APPROVALS_LIST)]
    List {
        /// pending, approved, denied, issued, used, expired, or all.
        #[arg(long, default_value = "pending", value_name = "STATUS")]
        status: String,
    },
    /// One request: what is asked, for whom, by which agent, who may answer.
    #[command(after_help = examples::APPROVALS_SHOW)]
    Show {
        /// Its id (`apr_…`).
        id: String,
    },
    /// Approve a request: the agent may make exactly that call, once.
    #[command(after_help = examples::APPROVALS_APPROVE)]
    Approve {
        /// Its id (`apr_…`).
        id: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Deny a request.
    #[command(after_help = examples::APPROVALS_DENY)]
    Deny {
        /// Its id (`apr_…`).
        id: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
}

/// `warden session …`.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List open sessions, newest first.
    #[command(after_help = examples::SESSION_LIST)]
    List {
        /// Only this person's (user:NAME).
        #[arg(long, value_name = "SUBJECT")]
        subject: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// End sessions: their tokens are revoked on every replica.
    #[command(after_help = examples::SESSION_REVOKE)]
    Revoke(SessionRevokeArgs),
}

/// `warden session revoke`.
#[derive(Debug, Args)]
pub struct SessionRevokeArgs {
    /// One session: its id as `warden session list` shows it.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Every open session of this person (user:NAME).
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
}

/// `warden login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's base URL (default: the configured issuer).
    #[arg(long, env = "WARDEN_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The public client to sign in through.
    #[arg(long, default_value = crate::command::login::DEFAULT_CLIENT, value_name = "CLIENT_ID")]
    pub client: String,
    /// Space-separated scopes to ask for (default: all the client may have).
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// Sign in through a browser on this machine (authorization code with
    /// PKCE, redirected to 127.0.0.1) instead of a device code.
    #[arg(long)]
    pub browser: bool,
}

/// `warden logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The server's base URL (default: the configured issuer).
    #[arg(long, env = "WARDEN_SERVER", value_name = "URL")]
    pub server: Option<String>,
}

/// `warden token print`.
#[derive(Debug, Args)]
pub struct TokenPrintArgs {
    /// The server's base URL (default: the configured issuer).
    #[arg(long, env = "WARDEN_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Audience the token is for (repeatable; default: every audience of the sign-in).
    #[arg(long = "aud", value_name = "AUD")]
    pub aud: Vec<String>,
    /// Narrower space-separated scopes (default: all of the sign-in's).
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
}

/// `warden ui ...`
#[derive(Debug, Subcommand)]
pub enum UiCommand {
    /// Print a login link for the dashboard: a short-lived access token for a
    /// person, in the link's fragment (never sent to a server log).
    #[command(after_help = examples::UI_LINK)]
    Link(UiLinkArgs),
}

/// `warden ui link`.
#[derive(Debug, Args)]
pub struct UiLinkArgs {
    /// The person: user:NAME.
    #[arg(long)]
    pub sub: String,
    /// Role (repeatable): what the policies let the person see and do.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Space-separated scopes (default: every dashboard read, and voting on promotions).
    #[arg(long, default_value = UI_LINK_SCOPES)]
    pub scope: String,
    /// Session length in seconds (default 3600; at most tokens.max_ttl).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub ttl: u64,
    /// Tenant claim.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The dashboard's base URL as the person's browser reaches it (default: `dashboard.url`, else
    /// `http://` + `dashboard.listen` when set, else the issuer).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// `warden policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse the schema and policies and validate them strictly; print
    /// counts, or every problem with file, line and column (exit 1).
    #[command(after_help = examples::POLICY_VALIDATE)]
    Validate {
        /// Policy directory: schema.cedarschema and *.cedar files (default: the built-in set).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run a policy test file (TOML, `[[case]]`s of claims, action,
    /// resource, context and expected decision); exit 1 if any case fails.
    #[command(after_help = examples::POLICY_TEST)]
    Test {
        /// The test file.
        file: PathBuf,
        /// Policy directory (default: the built-in set).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `warden serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `listen` from the config,
    /// 127.0.0.1:8080). Only this process sees it: to change the port for
    /// every `warden` command (and the issuer they sign for), set `listen`
    /// or `issuer` in the config file or environment instead.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// Also start the built-in demo: an OpenAI-compatible upstream and an MCP
    /// server on a loopback port, routes to them, and the clients `demo-app`
    /// and `demo-agent` (their secrets are renewed and printed on every start).
    #[arg(long)]
    pub demo: bool,
}

/// `warden client ...`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for secret auth, its secret (shown once).
    #[command(after_help = examples::CLIENT_CREATE)]
    Create(Box<ClientCreateArgs>),
    /// List clients.
    #[command(after_help = examples::CLIENT_LIST)]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    #[command(after_help = examples::CLIENT_SHOW)]
    Show {
        /// The client id.
        client_id: String,
    },
    /// Disable a client: it can no longer authenticate (running servers
    /// notice within 5 seconds).
    #[command(after_help = examples::CLIENT_DISABLE)]
    Disable {
        /// The client id.
        client_id: String,
    },
    /// Enable a disabled client.
    #[command(after_help = examples::CLIENT_ENABLE)]
    Enable {
        /// The client id.
        client_id: String,
    },
    /// Replace a client's secret and print the new one. The old one stops
    /// working within 5 seconds (a running server keeps a client record it
    /// read for up to 5 s).
    #[command(after_help = examples::CLIENT_ROTATE_SECRET)]
    RotateSecret {
        /// The client id.
        client_id: String,
    },
}

/// `warden client create`.
#[derive(Debug, Args)]
pub struct ClientCreateArgs {
    /// Client id: [a-z0-9][a-z0-9._-]*; its tokens' subject is svc:NAME or agent:NAME.
    #[arg(long)]
    pub name: String,
    /// What the client is: a service, an agent, or a public client people
    /// sign in through (a CLI, a notebook: no secret).
    #[arg(long, value_parser = ["service", "agent", "public"])]
    pub kind: String,
    /// Where the authorization-code flow may return (public clients;
    /// repeatable): https, http://127.0.0.1/… (any port) or a
    /// reverse-domain private-use scheme.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Grant it may use (repeatable): client_credentials (default), refresh_token, token_exchange.
    /// With refresh_token, its other grants also return refresh tokens.
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<String>,
    /// Scopes it may be granted (space-separated; repeatable).
    #[arg(long = "scope", value_name = "SCOPES")]
    pub scopes: Vec<String>,
    /// Role put in its tokens (repeatable).
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Audience it may ask for (repeatable; the first is the default; none = the issuer).
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,
    /// How it authenticates.
    #[arg(long, default_value = "secret", value_parser = ["secret", "private_key_jwt"])]
    pub auth: String,
    /// Its public JWKS file, for --auth private_key_jwt.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// The tenant its tokens carry (letters, digits, `.`, `_`, `-`): the
    /// policies keep the client inside that tenant's resources. None: a
    /// client of no tenant (which `tenancy = "strict"` keeps to resources
    /// of no tenant).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Require a DPoP proof (RFC 9449) at the token endpoint: every access
    /// token it gets is bound to its DPoP key, useless without that key.
    /// Without it, a proof is optional and binds the token when sent.
    #[arg(long)]
    pub require_dpop: bool,
    /// Print JSON (with the secret as `client_secret`).
    #[arg(long)]
    pub json: bool,
}

/// `warden keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List every key with its state (pending, active, overlap, expired, retired).
    #[command(after_help = examples::KEYS_LIST)]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a new signing key. It is published at once and signs after
    /// keys.publish_lead seconds (at once when it is the first key).
    /// Prints its key id. Creates the master key when there is none.
    #[command(after_help = examples::KEYS_ROTATE)]
    Rotate {
        /// Algorithm of the new key (default: keys.algorithm).
        #[arg(long, value_name = "ALG", value_parser = ["EdDSA", "ES256", "ES384", "RS256", "PS256"])]
        alg: Option<String>,
        /// Start signing with it at once, skipping the publication lead
        /// (for a compromised key: relying parties that cached the JWKS
        /// reject new tokens until they refetch).
        #[arg(long)]
        immediately: bool,
    },
    /// Withdraw a key from the JWKS.
    #[command(after_help = examples::KEYS_RETIRE)]
    Retire {
        /// The key id (a JWK thumbprint, which may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Retire even though tokens it signed may still be valid (they stop verifying).
        #[arg(long)]
        force: bool,
    },
    /// Retire every key whose tokens have all expired.
    #[command(after_help = examples::KEYS_SWEEP)]
    Sweep,
    /// Print the public JWKS (RFC 7517) as JSON. Export it again after
    /// every rotation or retirement: a copy is a snapshot.
    #[command(after_help = examples::KEYS_JWKS)]
    Jwks,
}

/// `warden token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an access token (RFC 9068 `at+jwt`) signed with the active key.
    #[command(after_help = examples::TOKEN_ISSUE)]
    Issue(IssueArgs),
    /// Verify a token; exit 0 with its claims, 1 with the reason it was rejected.
    #[command(after_help = examples::TOKEN_VERIFY)]
    Verify(VerifyArgs),
    /// Show a token's header and claims WITHOUT verifying anything.
    #[command(after_help = examples::TOKEN_INSPECT)]
    Inspect {
        /// The token, or `-` to read it from stdin.
        token: String,
    },
    /// Revoke any token (a dashboard session, a token issued here, another
    /// client's): every running server refuses it within a second.
    #[command(after_help = examples::TOKEN_REVOKE)]
    Revoke(RevokeArgs),
    /// Print a fresh access token of your sign-in (`warden login`), for
    /// scripts and SDKs.
    #[command(after_help = examples::TOKEN_PRINT)]
    Print(TokenPrintArgs),
}

/// `warden token revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's id (its `jti`, as the audit log shows it).
    #[arg(long, required_unless_present = "token", conflicts_with = "token")]
    pub jti: Option<String>,
    /// The token itself (an access token, or a refresh token whose whole
    /// family is revoked), or `-` to read it from stdin.
    #[arg(long)]
    pub token: Option<String>,
    /// With --jti: the token's expiry (Unix seconds), when known; the
    /// revocation is kept until then (default: the longest lifetime any
    /// token can have).
    #[arg(long, value_name = "UNIX_SECONDS", requires = "jti")]
    pub until: Option<u64>,
}

/// `warden token issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Subject, namespaced: user:NAME, svc:NAME or agent:NAME.
    #[arg(long)]
    pub sub: String,
    /// Audience (repeatable).
    #[arg(long, required = true)]
    pub aud: Vec<String>,
    /// Space-separated scopes.
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Role (repeatable).
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Lifetime in seconds (default: tokens.default_ttl, at most tokens.max_ttl).
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u64>,
    /// Issuer (default: the configured issuer).
    #[arg(long)]
    pub iss: Option<String>,
    /// client_id claim.
    #[arg(long, default_value = "warden-cli")]
    pub client_id: String,
    /// Tenant claim.
    #[arg(long)]
    pub tenant: Option<String>,
}

/// `warden token verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// JWKS file to verify against (default: the data dir's published keys).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// Expected issuer (exact match).
    #[arg(long)]
    pub iss: String,
    /// Expected audience (must be in the token's `aud`).
    #[arg(long)]
    pub aud: String,
    /// Allowed algorithm (repeatable; default: EdDSA ES256 ES384 RS256 PS256).
    #[arg(long = "alg", value_name = "ALG", value_parser = ["EdDSA", "ES256", "ES384", "RS256", "PS256"])]
    pub algs: Vec<String>,
    /// Clock-skew leeway in seconds (default: tokens.leeway; at most 60).
    #[arg(long, value_name = "SECONDS")]
    pub leeway: Option<u64>,
    /// Accepted `typ` (repeatable; default: at+jwt and application/at+jwt).
    #[arg(long = "typ", value_name = "TYP")]
    pub typs: Vec<String>,
    /// The token, or `-` to read it from stdin.
    pub token: String,
}

/// `warden config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the resolved values.
    #[command(after_help = examples::CONFIG_CHECK)]
    Check,
}

/// `warden audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the log's verifier key, `<origin>+<key ID>+<base64 key>`
    /// (creates the log key on first use).
    #[command(after_help = examples::AUDIT_VKEY)]
    Vkey,
    /// Sign a checkpoint of the log now, if it grew, and print the latest one.
    #[command(after_help = examples::AUDIT_CHECKPOINT)]
    Checkpoint,
    /// Print the last events.
    #[command(after_help = examples::AUDIT_TAIL)]
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
        lines: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the events matching every filter given, in log order.
    #[command(after_help = examples::AUDIT_QUERY)]
    Query(AuditQueryArgs),
    /// Write the whole log (events with bodies, salts and leaf hashes, and
    /// signed checkpoints) for offline verification.
    #[command(after_help = examples::AUDIT_EXPORT)]
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Output file, created with mode 0600 (default: stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Rebuild the tree from every event and check every checkpoint; exit 0
    /// when the log is intact, 1 naming the first bad index.
    #[command(after_help = examples::AUDIT_VERIFY)]
    Verify {
        /// Verify this export file instead of the database.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The verifier key to trust (default: the database's log key,
        /// which needs the master key).
        #[arg(long, value_name = "VKEY")]
        vkey: Option<String>,
    },
    /// Erase an event's body and salt (GDPR); its leaf hash stays and an
    /// erasure event is recorded.
    #[command(after_help = examples::AUDIT_ERASE)]
    Erase {
        /// Log index of the event.
        #[arg(long, value_name = "N")]
        index: u64,
        /// Why (e.g. the request reference); recorded in the log.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Erase even though the event is younger than audit.retention_days
        /// (recorded in the erasure event).
        #[arg(long)]
        override_retention: bool,
    },
}

/// `warden audit query`.
#[derive(Debug, Args)]
pub struct AuditQueryArgs {
    /// Only this event type (e.g. key_rotated, token_issued).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Only this subject (token subject or principal).
    #[arg(long)]
    pub subject: Option<String>,
    /// Only this resource.
    #[arg(long)]
    pub resource: Option<String>,
    /// Only events whose outermost actor is this one (an agent acting for the subject).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only access decisions with this outcome.
    #[arg(long, value_parser = ["allow", "deny"])]
    pub decision: Option<String>,
    /// Only events at or after this time (Unix seconds, or RFC 3339 UTC such as 2026-01-31T12:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// First log index to consider.
    #[arg(long, default_value_t = 0, value_name = "INDEX")]
    pub from: u64,
    /// Most events to print.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: u64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Formats of `warden audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line: a header, the checkpoints, then the events.
    Jsonl,
}

// --- the governance registry (`dataset`, `model`, `lineage`) ---

/// Where and as whom `warden dataset | model | lineage` call the server.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The server's base URL (default: the configured issuer, http://127.0.0.1:8080).
    #[arg(long, global = true, env = "WARDEN_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// A Warden access token whose audience includes the issuer (prefer
    /// WARDEN_TOKEN or --token-file: command lines are visible to other
    /// local users).
    #[arg(
        long,
        global = true,
        env = "WARDEN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<SecretArg>,
    /// Read the access token from FILE (`-`: standard input); overrides --token.
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The purpose of the call, sent as X-Warden-Purpose and audited
    /// (reading a `pii` dataset needs one of its allowed purposes).
    #[arg(long, global = true, value_name = "NAME")]
    pub purpose: Option<String>,
    /// Print the server's JSON instead of a table or `key: value` text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A secret given on the command line or in the environment: never shown
/// by `Debug`, wiped on drop.
#[derive(Clone)]
pub struct SecretArg(pub zeroize::Zeroizing<String>);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(zeroize::Zeroizing::new(s.to_owned())))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(..)")
    }
}

/// `warden dataset ...`
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Server, token, purpose, output.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: DatasetCommand,
}

/// Dataset classifications, as the API names them.
pub const CLASSIFICATIONS: [&str; 4] = ["public", "internal", "confidential", "pii"];

/// `warden dataset ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Register a dataset (needs `dataset.create`).
    #[command(after_help = examples::DATASET_CREATE)]
    Create(DatasetCreateArgs),
    /// List the datasets you may read.
    #[command(after_help = examples::DATASET_LIST)]
    List,
    /// Show a dataset and its versions.
    #[command(after_help = examples::DATASET_SHOW)]
    Show {
        /// The dataset's name.
        name: String,
    },
    /// Change a dataset's owner, classification, allowed purposes or description.
    #[command(after_help = examples::DATASET_UPDATE)]
    Update(DatasetUpdateArgs),
    /// Delete a dataset (soft: its versions and lineage stay, its name stays taken).
    #[command(after_help = examples::DATASET_DELETE)]
    Delete {
        /// The dataset's name.
        name: String,
        /// Why (recorded in the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Dataset versions: add, list, show.
    #[command(subcommand, after_help = examples::DATASET_VERSION)]
    Version(DatasetVersionCommand),
}

/// `warden dataset create`.
#[derive(Debug, Args)]
pub struct DatasetCreateArgs {
    /// Unique name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// How sensitive it is; `pii` is read only for one of its allowed purposes.
    #[arg(long, value_parser = CLASSIFICATIONS)]
    pub classification: String,
    /// Who answers for it: user:NAME, svc:NAME or team:NAME (default: you).
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// A purpose it may be used for (repeatable).
    #[arg(long = "allowed-purpose", value_name = "NAME")]
    pub allowed_purposes: Vec<String>,
    /// The tenant it belongs to.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Free text.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

/// `warden dataset update`: the fields given replace the current ones.
#[derive(Debug, Args)]
pub struct DatasetUpdateArgs {
    /// The dataset's name.
    pub name: String,
    /// New owner.
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// New classification.
    #[arg(long, value_parser = CLASSIFICATIONS)]
    pub classification: Option<String>,
    /// New allowed purposes, replacing the old ones (repeatable).
    #[arg(long = "allowed-purpose", value_name = "NAME")]
    pub allowed_purposes: Vec<String>,
    /// Remove every allowed purpose (a `pii` dataset then cannot be read at all).
    #[arg(long, conflicts_with = "allowed_purposes")]
    pub clear_allowed_purposes: bool,
    /// New description.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

/// `warden dataset version ...`
#[derive(Debug, Subcommand)]
pub enum DatasetVersionCommand {
    /// Register a new version: its content digest, size and location, and
    /// the dataset versions it derives from (lineage).
    #[command(after_help = examples::DATASET_VERSION_ADD)]
    Add(DatasetVersionAddArgs),
    /// List a dataset's versions.
    #[command(after_help = examples::DATASET_VERSION_LIST)]
    List {
        /// The dataset's name.
        name: String,
    },
    /// Show one version.
    #[command(after_help = examples::DATASET_VERSION_SHOW)]
    Show {
        /// The version: NAME@VERSION or dataset:NAME@VERSION.
        #[arg(value_name = "NAME@VERSION")]
        target: String,
    },
}

/// The content of a version: its digest given, or computed from a file.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ContentArgs {
    /// The content's digest, sha256:<64 hex digits>.
    #[arg(long, value_name = "sha256:HEX")]
    pub digest: Option<String>,
    /// Compute the digest (and a dataset version's size) from this local
    /// file; only the digest and size are sent, never the content.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

/// `warden dataset version add`.
#[derive(Debug, Args)]
pub struct DatasetVersionAddArgs {
    /// The dataset's name.
    pub name: String,
    /// Digest or file.
    #[command(flatten)]
    pub content: ContentArgs,
    /// Size in bytes (with --digest).
    #[arg(
        long,
        value_name = "BYTES",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub size: Option<u64>,
    /// Where the content lives (s3://…, file://…); Warden never fetches it.
    #[arg(long)]
    pub uri: String,
    /// A dataset version it derives from, NAME@VERSION or dataset:NAME@VERSION (repeatable).
    #[arg(long = "parent", value_name = "NAME@VERSION")]
    pub parents: Vec<String>,
}

/// `warden model ...`
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Server, token, purpose, output.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ModelCommand,
}

/// `warden model ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Register a model (needs `model.register`).
    #[command(after_help = examples::MODEL_CREATE)]
    Create(ModelCreateArgs),
    /// List the models you may read, with their stage.
    #[command(after_help = examples::MODEL_LIST)]
    List,
    /// Show a model, its stage and its versions.
    #[command(after_help = examples::MODEL_SHOW)]
    Show {
        /// The model's name.
        name: String,
    },
    /// Model versions: add, show.
    #[command(subcommand, after_help = examples::MODEL_VERSION)]
    Version(ModelVersionCommand),
    /// Move a version between development and staging, or to archived
    /// (production is reached only by `promote` and approvals).
    #[command(after_help = examples::MODEL_STAGE)]
    Stage {
        /// The version: NAME@VERSION or model:NAME@VERSION.
        #[arg(value_name = "NAME@VERSION")]
        target: String,
        /// The stage to move it to.
        #[arg(value_parser = ["development", "staging", "archived"])]
        stage: String,
        /// Why (recorded in the stage history and the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Ask for a version in staging to go to production; prints the
    /// request's id. It goes once enough other principals approve.
    #[command(after_help = examples::MODEL_PROMOTE)]
    Promote {
        /// The version: NAME@VERSION or model:NAME@VERSION.
        #[arg(value_name = "NAME@VERSION")]
        target: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Approve a promotion request (never your own; each approver counts once).
    #[command(after_help = examples::MODEL_APPROVE)]
    Approve {
        /// The request's id (pr-…).
        id: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Reject a promotion request, closing it (the requester may withdraw their own).
    #[command(after_help = examples::MODEL_REJECT)]
    Reject {
        /// The request's id (pr-…).
        id: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Archive the production version and return the one before it to production.
    #[command(after_help = examples::MODEL_ROLLBACK)]
    Rollback {
        /// The model's name.
        name: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Every stage change of a model's versions, oldest first.
    #[command(after_help = examples::MODEL_HISTORY)]
    History {
        /// The model's name.
        name: String,
    },
    /// Promotion requests, newest first; or one, with its ballots.
    #[command(after_help = examples::MODEL_PROMOTIONS)]
    Promotions {
        /// Show this request only.
        #[arg(conflicts_with_all = ["model", "status"])]
        id: Option<String>,
        /// Only this model's requests.
        #[arg(long)]
        model: Option<String>,
        /// Only requests in this status.
        #[arg(long, value_parser = ["open", "approved", "rejected"])]
        status: Option<String>,
    },
}

/// `warden model create`.
#[derive(Debug, Args)]
pub struct ModelCreateArgs {
    /// Unique name; also the `model` an OpenAI-style request names.
    pub name: String,
    /// Who answers for it: user:NAME, svc:NAME or team:NAME (default: you).
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// The tenant it belongs to.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Free text.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

/// `warden model version ...`
#[derive(Debug, Subcommand)]
pub enum ModelVersionCommand {
    /// Register a version (in development), with the dataset versions it
    /// was trained on as lineage.
    #[command(after_help = examples::MODEL_VERSION_ADD)]
    Add(ModelVersionAddArgs),
    /// Show one version.
    #[command(after_help = examples::MODEL_VERSION_SHOW)]
    Show {
        /// The version: NAME@VERSION or model:NAME@VERSION.
        #[arg(value_name = "NAME@VERSION")]
        target: String,
    },
}

/// `warden model version add`.
#[derive(Debug, Args)]
pub struct ModelVersionAddArgs {
    /// The model's name.
    pub name: String,
    /// Digest or file.
    #[command(flatten)]
    pub content: ContentArgs,
    /// Where the artifact lives (s3://…, file://…).
    #[arg(long)]
    pub uri: String,
    /// E.g. pytorch, onnx.
    #[arg(long)]
    pub framework: Option<String>,
    /// Evaluation metrics, a JSON object (e.g. '{"auc":0.91}').
    #[arg(long, value_name = "JSON")]
    pub metrics: Option<String>,
    /// A dataset version it was trained on, NAME@VERSION or dataset:NAME@VERSION (repeatable).
    #[arg(long = "trained-from", value_name = "NAME@VERSION")]
    pub trained_from: Vec<String>,
    /// The training run that produced it.
    #[arg(long, value_name = "ID")]
    pub training_run: Option<String>,
}

/// `warden lineage ...`
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// Server, token, purpose, output.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: LineageCommand,
}

/// `warden lineage ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// What a version was made from: dataset:NAME@V or model:NAME@V.
    #[command(after_help = examples::LINEAGE_UPSTREAM)]
    Upstream {
        /// The version, dataset:NAME@VERSION or model:NAME@VERSION.
        node: String,
        /// Edges to walk, 1 to 100 (default 10).
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
    },
    /// What was made from a version: dataset:NAME@V or model:NAME@V.
    #[command(after_help = examples::LINEAGE_DOWNSTREAM)]
    Downstream {
        /// The version, dataset:NAME@VERSION or model:NAME@VERSION.
        node: String,
        /// Edges to walk, 1 to 100 (default 10).
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
    },
    /// Every dataset and model version derived from a dataset version, at
    /// any depth: what an erasure request for it touches.
    #[command(after_help = examples::LINEAGE_IMPACT)]
    Impact {
        /// The dataset version, NAME@VERSION or dataset:NAME@VERSION.
        node: String,
    },
}

/// The `Examples:` section of each command's `--help`. Every line that
/// runs `warden` must parse (a unit test checks), and each command's
/// section runs that command.
mod examples {
    pub const ROOT: &str = "\
Examples:
  warden serve --demo                  # a working gateway in front of a built-in demo AI API
  warden keys rotate                   # the master key and a first signing key, without a server
  warden token issue --sub user:alice --aud inference --scope inference.invoke
  warden audit verify                  # check the whole audit log
  warden keys rotate --help            # every command has --help with examples";

    pub const KEYS: &str = "\
Examples:
  warden keys rotate                   # the first key signs at once; later ones after keys.publish_lead
  warden keys list
  warden keys jwks > jwks.json";
    pub const KEYS_LIST: &str = "\
Examples:
  warden keys list
  warden keys list --json";
    pub const KEYS_ROTATE: &str = "\
Examples:
  warden keys rotate                   # EdDSA (keys.algorithm); published now, signs after keys.publish_lead
  warden keys rotate --alg ES256
  warden keys rotate --immediately     # after a compromise: signs at once; export the JWKS again";
    pub const KEYS_RETIRE: &str = "\
Examples:
  FIRST=$(warden keys rotate)              # rotate prints the new key's id (so does `warden keys list`)
  NEXT=$(warden keys rotate --alg ES256)   # pending: signs after keys.publish_lead
  warden keys retire \"$NEXT\"               # withdraw a pending or expired key
  warden keys rotate --immediately         # after a compromise of FIRST: a new key signs at once
  warden keys retire --force \"$FIRST\"      # a key in overlap: tokens it signed stop verifying";
    pub const KEYS_SWEEP: &str = "\
Examples:
  warden keys sweep                    # prints how many expired keys it retired";
    pub const KEYS_JWKS: &str = "\
Examples:
  warden keys jwks > jwks.json
  warden token verify --jwks jwks.json --iss http://127.0.0.1:8080 --aud inference - < token.txt";

    pub const TOKEN: &str = "\
Examples:
  warden token issue --sub user:alice --aud inference --scope inference.invoke > token.txt
  warden token verify --iss http://127.0.0.1:8080 --aud inference - < token.txt
  warden token inspect - < token.txt";
    pub const TOKEN_PRINT: &str = "\
Examples:
  warden login && warden token print
  OPENAI_API_KEY=$(warden token print --aud inference) python my_notebook.py
  warden token print --aud http://127.0.0.1:8080 --scope model.read";
    pub const SESSION: &str = "\
Examples:
  warden session list
  warden session list --subject user:alice@example.com --json
  warden session revoke --subject user:alice@example.com   # someone left: end every session
  warden session revoke --id 3q2-7XcVb1                     # one session";
    pub const SESSION_LIST: &str = "\
Examples:
  warden session list
  warden session list --subject user:alice@example.com --json";
    pub const SESSION_REVOKE: &str = "\
Examples:
  warden session revoke --subject user:alice@example.com
  warden session revoke --id 3q2-7XcVb1";
    pub const LOGOUT: &str = "\
Examples:
  warden logout
  warden logout --server https://warden.example.com";
    pub const LOGIN: &str = "\
Examples:
  warden login                                # shows a URL and a code to approve in any browser
  warden login --browser                      # a browser on this machine, redirected to 127.0.0.1
  warden login --server https://warden.example.com --scope \"model.read dataset.read\"
  warden logout";
    pub const TOKEN_ISSUE: &str = "\
Examples:
  warden token issue --sub user:alice --aud inference --scope \"inference.invoke model.read\" --role ml-engineer > token.txt
  warden token issue --sub user:audrey --aud http://127.0.0.1:8080 --role auditor --ttl 600   # for Warden's own APIs";
    pub const TOKEN_VERIFY: &str = "\
Examples:
  warden token verify --iss http://127.0.0.1:8080 --aud inference - < token.txt
  warden token verify --jwks jwks.json --iss http://127.0.0.1:8080 --aud inference --alg EdDSA - < token.txt";
    pub const TOKEN_INSPECT: &str = "\
Examples:
  warden token inspect - < token.txt   # header and claims, marked UNVERIFIED";

    pub const TOKEN_REVOKE: &str = "\
Examples:
  warden token revoke --jti 5f2c0e9a4b1d7e3f         # e.g. a session found with `warden audit query`
  warden token revoke --token - < token.txt          # an access token, or a refresh token's family";

    pub const CONFIG: &str = "\
Examples:
  warden config check";
    pub const CONFIG_CHECK: &str = "\
Examples:
  warden config check                           # ./warden.toml, or the defaults
  warden --config prod.toml config check
  WARDEN_TOKENS_LEEWAY=90 warden config check   # error: config key `tokens.leeway`: 90 s exceeds the 60 s maximum";

    pub const AUDIT: &str = "\
Examples:
  warden audit tail -n 20
  warden audit query --type access_decision --decision deny
  warden audit verify";
    pub const AUDIT_VKEY: &str = "\
Examples:
  warden audit vkey > audit.vkey       # give it to auditors; it holds no secret";
    pub const AUDIT_CHECKPOINT: &str = "\
Examples:
  warden audit checkpoint";
    pub const AUDIT_TAIL: &str = "\
Examples:
  warden audit tail -n 20
  warden audit tail -n 5 --json";
    pub const AUDIT_QUERY: &str = "\
Examples:
  warden audit query --type key_rotated --since 2026-01-01
  warden audit query --subject user:alice --from 1000 --limit 50 --json
  warden audit query --actor agent:report-bot --decision deny   # what an agent was refused";
    pub const AUDIT_EXPORT: &str = "\
Examples:
  warden audit export --format jsonl --out audit.jsonl";
    pub const AUDIT_VERIFY: &str = "\
Examples:
  warden audit verify                                                  # the database, with its own log key
  warden audit verify --export audit.jsonl --vkey \"$(cat audit.vkey)\"  # an export, offline";
    pub const AUDIT_ERASE: &str = "\
Examples:
  warden audit erase --index 42 --reason \"GDPR request 2026-17\"    # refused within audit.retention_days
  warden audit erase --index 42 --reason \"GDPR request 2026-17\" --override-retention";

    pub const SERVE: &str = "\
Examples:
  warden serve                         # ./warden-data, http://127.0.0.1:8080
  warden serve --demo                  # plus a demo upstream, routes and clients; prints a walk-through
  WARDEN_LISTEN=127.0.0.1:9000 warden serve   # another port: set it the same way for every warden command";

    pub const CLIENT: &str = "\
Examples:
  warden client create --name trainer --kind service --scope inference.invoke
  warden client list
  warden client rotate-secret trainer";
    pub const CLIENT_CREATE: &str = "\
Examples:
  warden client create --name trainer --kind service --grant client_credentials --grant refresh_token \\
      --scope \"inference.invoke training.run\" --role ml-engineer --audience inference
  warden client create --name report-bot --kind agent --grant token_exchange --scope inference.invoke
  warden client create --name signer --kind service --auth private_key_jwt --jwks public.jwks.json
  warden client create --name acme-etl --kind service --tenant acme --scope dataset.read --role ml-engineer
  warden client create --name research-agent --kind agent --require-dpop --scope inference.invoke";
    pub const CLIENT_LIST: &str = "\
Examples:
  warden client list
  warden client list --json";
    pub const CLIENT_SHOW: &str = "\
Examples:
  warden client show trainer";
    pub const CLIENT_DISABLE: &str = "\
Examples:
  warden client disable trainer";
    pub const CLIENT_ENABLE: &str = "\
Examples:
  warden client enable trainer";
    pub const CLIENT_ROTATE_SECRET: &str = "\
Examples:
  warden client rotate-secret trainer  # prints the new secret once";

    pub const POLICY: &str = "\
Examples:
  warden policy validate
  warden policy validate --dir ./policies";
    pub const POLICY_VALIDATE: &str = "\
Examples:
  warden policy validate                 # the built-in set
  warden policy validate --dir ./policies";
    pub const POLICY_TEST: &str = "\
Examples:
  warden policy test crates/warden-policy/policies/default.tests.toml
  warden policy test ./policies/default.tests.toml --dir ./policies";

    pub const DATASET: &str = "\
Examples:
  export WARDEN_TOKEN=$(warden token issue --sub user:eve --role ml-engineer --aud http://127.0.0.1:8080 --scope \"dataset.create dataset.read\")
  warden dataset create transactions --classification pii --allowed-purpose fraud-detection
  warden dataset list --purpose fraud-detection";
    pub const DATASET_CREATE: &str = "\
Examples:
  warden dataset create transactions --classification pii --allowed-purpose fraud-detection --owner team:risk
  warden dataset create features --classification internal --description \"derived features\"";
    pub const DATASET_LIST: &str = "\
Examples:
  warden dataset list
  warden dataset list --purpose fraud-detection   # pii datasets are listed only for an allowed purpose";
    pub const DATASET_SHOW: &str = "\
Examples:
  warden dataset show features
  warden dataset show transactions --purpose fraud-detection --json";
    pub const DATASET_UPDATE: &str = "\
Examples:
  warden dataset update features --owner team:risk --description \"card features, monthly\"
  warden dataset update transactions --allowed-purpose fraud-detection --allowed-purpose audit";
    pub const DATASET_DELETE: &str = "\
Examples:
  warden dataset delete features --reason \"superseded\"";
    pub const DATASET_VERSION: &str = "\
Examples:
  warden dataset version add transactions --file transactions.csv --uri s3://lake/transactions/2026-01.csv
  warden dataset version list transactions";
    pub const DATASET_VERSION_ADD: &str = "\
Examples:
  warden dataset version add transactions --file transactions.csv --uri s3://lake/transactions/2026-01.csv
  warden dataset version add features --digest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 \\
      --size 2048 --uri s3://lake/features/2026-01.parquet --parent transactions@1";
    pub const DATASET_VERSION_LIST: &str = "\
Examples:
  warden dataset version list transactions --purpose fraud-detection";
    pub const DATASET_VERSION_SHOW: &str = "\
Examples:
  warden dataset version show features@1";

    pub const APPROVALS: &str = "\
Examples:
  warden login
  warden approvals list
  warden approvals show apr_3q2Zk0
  warden approvals approve apr_3q2Zk0 --reason \"ticket OPS-42\"
  warden approvals deny apr_3q2Zk0 --reason \"not before the audit\"";
    pub const APPROVALS_LIST: &str = "\
Examples:
  warden approvals list
  warden approvals list --status all --json";
    pub const APPROVALS_SHOW: &str = "\
Examples:
  warden approvals show apr_3q2Zk0";
    pub const APPROVALS_APPROVE: &str = "\
Examples:
  warden approvals approve apr_3q2Zk0 --reason \"ticket OPS-42\"";
    pub const APPROVALS_DENY: &str = "\
Examples:
  warden approvals deny apr_3q2Zk0 --reason \"not before the audit\"";
    pub const MODEL: &str = "\
Examples:
  warden model create fraud --description \"card fraud classifier\"
  warden model list
  warden model promote fraud@1 --reason \"auc 0.91 on the holdout set\"";
    pub const MODEL_CREATE: &str = "\
Examples:
  warden model create fraud --description \"card fraud classifier\" --owner team:risk";
    pub const MODEL_LIST: &str = "\
Examples:
  warden model list
  warden model list --json";
    pub const MODEL_SHOW: &str = "\
Examples:
  warden model show fraud
  warden model show fraud --json";
    pub const MODEL_VERSION: &str = "\
Examples:
  warden model version add fraud --file model.onnx --uri s3://models/fraud/1.onnx --trained-from features@1
  warden model version show fraud@1";
    pub const MODEL_VERSION_ADD: &str = "\
Examples:
  warden model version add fraud --digest sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae \\
      --uri s3://models/fraud/1.onnx --framework onnx --metrics '{\"auc\":0.91}' --trained-from features@1 --training-run run-42
  warden model version add fraud --file model.onnx --uri s3://models/fraud/2.onnx";
    pub const MODEL_VERSION_SHOW: &str = "\
Examples:
  warden model version show fraud@1";
    pub const MODEL_STAGE: &str = "\
Examples:
  warden model stage fraud@1 staging --reason \"offline evaluation passed\"
  warden model stage fraud@1 archived --reason \"replaced by fraud@2\"";
    pub const MODEL_PROMOTE: &str = "\
Examples:
  ID=$(warden model promote fraud@1 --reason \"auc 0.91 on the holdout set\")   # prints the request id, pr-…";
    pub const MODEL_APPROVE: &str = "\
Examples:
  WARDEN_TOKEN=$CAROL warden model approve $ID --reason \"metrics reviewed\"   # ID from `warden model promote`";
    pub const MODEL_REJECT: &str = "\
Examples:
  warden model reject $ID --reason \"bias report missing\"   # ID from `warden model promote` or `promotions`";
    pub const MODEL_ROLLBACK: &str = "\
Examples:
  warden model rollback fraud --reason \"false positives doubled\"";
    pub const MODEL_HISTORY: &str = "\
Examples:
  warden model history fraud";
    pub const MODEL_PROMOTIONS: &str = "\
Examples:
  warden model promotions --model fraud --status open
  warden model promotions $ID          # one request and its ballots";

    pub const LINEAGE: &str = "\
Examples:
  warden lineage upstream model:fraud@1
  warden lineage impact dataset:transactions@1";
    pub const LINEAGE_UPSTREAM: &str = "\
Examples:
  warden lineage upstream model:fraud@1            # what it was trained on, and what that came from
  warden lineage upstream dataset:features@1 --depth 1";
    pub const LINEAGE_DOWNSTREAM: &str = "\
Examples:
  warden lineage downstream dataset:transactions@1 --depth 2";
    pub const LINEAGE_IMPACT: &str = "\
Examples:
  warden lineage impact dataset:transactions@1     # every dataset and model version derived from it";

    pub const UI: &str = "\
Examples:
  warden ui link --sub user:audrey --role auditor";
    pub const UI_LINK: &str = "\
Examples:
  warden ui link --sub user:audrey --role auditor
  warden ui link --sub user:carol --role approver --ttl 1800 --url https://warden.example";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// Every command and subcommand, as (path after `warden`, `--help` text).
    fn every_help(cmd: &clap::Command, path: &[String], out: &mut Vec<(Vec<String>, String)>) {
        out.push((path.to_vec(), cmd.clone().render_long_help().to_string()));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.to_vec();
            p.push(sub.get_name().to_owned());
            every_help(sub, &p, out);
        }
    }

    /// The `warden` invocations of a help text's `Examples:` section, as
    /// argument lists (lines joined at a trailing `\`; quotes removed; up
    /// to a pipe, redirection, `;`, `&&` or comment; `X=$(warden …)` too).
    fn example_invocations(help: &str) -> Vec<Vec<String>> {
        let Some((_, section)) = help.split_once("Examples:\n") else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let mut line = String::new();
        for raw in section.lines() {
            match raw.strip_suffix('\\') {
                Some(part) => line.push_str(part),
                None => {
                    line.push_str(raw);
                    lines.push(std::mem::take(&mut line));
                }
            }
        }
        let mut out = Vec::new();
        for line in lines {
            let words = shell_words(&line);
            let Some(at) = words.iter().position(|w| w == "warden" || w.ends_with("$(warden")) else {
                continue;
            };
            let subshell = words[at].ends_with("$(warden");
            let mut args = Vec::new();
            for w in &words[at + 1..] {
                if matches!(w.as_str(), "|" | ">" | "<" | ";" | "&&" | "||") {
                    break;
                }
                if let Some(last) = w.strip_suffix(')').filter(|_| subshell) {
                    args.push(last.to_owned());
                    break;
                }
                args.push(w.clone());
            }
            out.push(args);
        }
        out
    }

    /// Splits a shell line into words: single and double quotes, and a `#`
    /// that starts a word begins a comment.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' | '"' => {
                    let w = word.get_or_insert_with(String::new);
                    for q in chars.by_ref() {
                        if q == c {
                            break;
                        }
                        w.push(q);
                    }
                }
                '#' if word.is_none() => break,
                c if c.is_whitespace() => words.extend(word.take()),
                c => word.get_or_insert_with(String::new).push(c),
            }
        }
        words.extend(word);
        words
    }

    #[test]
    fn every_help_has_examples_of_its_command_that_parse() {
        use clap::CommandFactory as _;
        let mut root = Cli::command();
        root.build();
        let mut helps = Vec::new();
        every_help(&root, &[], &mut helps);
        assert!(helps.len() > 60, "the whole command tree: {}", helps.len());
        for (path, help) in &helps {
            let name = format!("warden {}", path.join(" "));
            assert!(
                help.contains("\nExamples:\n"),
                "`{name} --help` has no Examples section:\n{help}"
            );
            let invocations = example_invocations(help);
            assert!(
                invocations.iter().any(|args| args.starts_with(path)),
                "`{name} --help` has no example of `{name}`:\n{help}"
            );
            for args in &invocations {
                let argv = std::iter::once("warden").chain(args.iter().map(String::as_str));
                if let Err(e) = Cli::try_parse_from(argv) {
                    assert_eq!(
                        e.kind(),
                        clap::error::ErrorKind::DisplayHelp,
                        "an example in `{name} --help` does not parse: warden {}\n{e}",
                        args.join(" ")
                    );
                }
            }
        }
    }

    #[test]
    fn examples_are_read_like_a_shell() {
        let help = "Usage: x\n\nExamples:\n  ID=$(warden model promote m@1 --reason \"a b\")   # c\n  \
                    warden a \\\n      --b c > f\n  echo nothing\n";
        assert_eq!(
            example_invocations(help),
            [
                vec!["model", "promote", "m@1", "--reason", "a b"],
                vec!["a", "--b", "c"]
            ]
        );
    }

    #[test]
    fn key_ids_may_begin_with_a_hyphen() {
        // A JWK thumbprint is base64url: one in 64 begins with `-`.
        let cli = Cli::try_parse_from(["warden", "keys", "retire", "-TzLCBFIj_SJMo", "--force"]).unwrap();
        match cli.command {
            Command::Keys(KeysCommand::Retire { kid, force }) => {
                assert_eq!((kid.as_str(), force), ("-TzLCBFIj_SJMo", true))
            }
            _ => panic!("parsed as another command"),
        }
    }
}
