//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Warden: an AI governance gateway built on JSON Web Tokens.
#[derive(Parser)]
#[command(name = "warden", version, about, propagate_version = true)]
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
    /// Manage signing keys: list, rotate, retire, publish.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Issue, verify and inspect tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Audit log: verifier key, checkpoints, queries, export, verification, erasure.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the server: token service, admin and audit APIs, gateway (`--demo` for a built-in demo).
    Serve(ServeArgs),
    /// Manage OAuth clients (services and agents).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Cedar policies: validate a policy set, run policy tests.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Governance registry: datasets and their versions (through a running server).
    Dataset(DatasetArgs),
    /// Governance registry: models, versions, stages, four-eyes promotion (through a running server).
    Model(ModelArgs),
    /// Governance registry: lineage walks and erasure impact (through a running server).
    Lineage(LineageArgs),
    /// Compliance dashboard: make login links for people.
    #[command(subcommand)]
    Ui(UiCommand),
}

/// `warden ui ...`
#[derive(Debug, Subcommand)]
pub enum UiCommand {
    /// Print a login link for the dashboard: a short-lived access token for a
    /// person, in the link's fragment (never sent to a server log).
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
    #[arg(long, default_value = crate::command::ui::DEFAULT_SCOPES)]
    pub scope: String,
    /// Session length in seconds (default 3600; at most tokens.max_ttl).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub ttl: u64,
    /// Tenant claim.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The dashboard's base URL as the person's browser reaches it (default: the issuer).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// `warden policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse the schema and policies and validate them strictly; print
    /// counts, or every problem with file, line and column (exit 1).
    Validate {
        /// Policy directory: schema.cedarschema and *.cedar files (default: the built-in set).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run a policy test file (TOML, `[[case]]`s of claims, action,
    /// resource, context and expected decision); exit 1 if any case fails.
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
    /// Address to listen on (default: `listen` from the config, 127.0.0.1:8080).
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
    Create(ClientCreateArgs),
    /// List clients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        /// The client id.
        client_id: String,
    },
    /// Disable a client: it can no longer authenticate.
    Disable {
        /// The client id.
        client_id: String,
    },
    /// Enable a disabled client.
    Enable {
        /// The client id.
        client_id: String,
    },
    /// Replace a client's secret; the old one stops working at once. Prints the new one.
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
    /// What the client is.
    #[arg(long, value_parser = ["service", "agent"])]
    pub kind: String,
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
    /// Print JSON (with the secret as `client_secret`).
    #[arg(long)]
    pub json: bool,
}

/// `warden keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List every key with its state (pending, active, overlap, expired, retired).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a new signing key. It is published at once and signs after
    /// keys.publish_lead seconds (at once when it is the first key).
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
    Retire {
        /// The key id (a JWK thumbprint, which may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Retire even though tokens it signed may still be valid (they stop verifying).
        #[arg(long)]
        force: bool,
    },
    /// Retire every key whose tokens have all expired.
    Sweep,
    /// Print the public JWKS (RFC 7517) as JSON.
    Jwks,
}

/// `warden token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an access token (RFC 9068 `at+jwt`) signed with the active key.
    Issue(IssueArgs),
    /// Verify a token; exit 0 with its claims, 1 with the reason it was rejected.
    Verify(VerifyArgs),
    /// Show a token's header and claims WITHOUT verifying anything.
    Inspect {
        /// The token, or `-` to read it from stdin.
        token: String,
    },
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
    Check,
}

/// `warden audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the log's verifier key, `<origin>+<key ID>+<base64 key>`
    /// (creates the log key on first use).
    Vkey,
    /// Sign a checkpoint of the log now, if it grew, and print the latest one.
    Checkpoint,
    /// Print the last events.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
        lines: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the events matching every filter given, in log order.
    Query(AuditQueryArgs),
    /// Write the whole log (events with bodies, salts and leaf hashes, and
    /// signed checkpoints) for offline verification.
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
    Create(DatasetCreateArgs),
    /// List the datasets you may read.
    List,
    /// Show a dataset and its versions.
    Show {
        /// The dataset's name.
        name: String,
    },
    /// Change a dataset's owner, classification, allowed purposes or description.
    Update(DatasetUpdateArgs),
    /// Delete a dataset (soft: its versions and lineage stay, its name stays taken).
    Delete {
        /// The dataset's name.
        name: String,
        /// Why (recorded in the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Dataset versions: add, list, show.
    #[command(subcommand)]
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
    Add(DatasetVersionAddArgs),
    /// List a dataset's versions.
    List {
        /// The dataset's name.
        name: String,
    },
    /// Show one version.
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
    Create(ModelCreateArgs),
    /// List the models you may read, with their stage.
    List,
    /// Show a model, its stage and its versions.
    Show {
        /// The model's name.
        name: String,
    },
    /// Model versions: add, show.
    #[command(subcommand)]
    Version(ModelVersionCommand),
    /// Move a version between development and staging, or to archived
    /// (production is reached only by `promote` and approvals).
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
    Promote {
        /// The version: NAME@VERSION or model:NAME@VERSION.
        #[arg(value_name = "NAME@VERSION")]
        target: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Approve a promotion request (never your own; each approver counts once).
    Approve {
        /// The request's id (pr-…).
        id: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Reject a promotion request, closing it (the requester may withdraw their own).
    Reject {
        /// The request's id (pr-…).
        id: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Archive the production version and return the one before it to production.
    Rollback {
        /// The model's name.
        name: String,
        /// Why.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Every stage change of a model's versions, oldest first.
    History {
        /// The model's name.
        name: String,
    },
    /// Promotion requests, newest first; or one, with its ballots.
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
    Add(ModelVersionAddArgs),
    /// Show one version.
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
    Upstream {
        /// The version, dataset:NAME@VERSION or model:NAME@VERSION.
        node: String,
        /// Edges to walk, 1 to 100 (default 10).
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
    },
    /// What was made from a version: dataset:NAME@V or model:NAME@V.
    Downstream {
        /// The version, dataset:NAME@VERSION or model:NAME@VERSION.
        node: String,
        /// Edges to walk, 1 to 100 (default 10).
        #[arg(long, value_name = "N")]
        depth: Option<u32>,
    },
    /// Every dataset and model version derived from a dataset version, at
    /// any depth: what an erasure request for it touches.
    Impact {
        /// The dataset version, NAME@VERSION or dataset:NAME@VERSION.
        node: String,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

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
