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
        /// The key id.
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
