//! Warden's storage: one set of traits, two implementations.
//!
//! # Layout
//! One module per concern, each holding its trait, the SQL table a backend
//! fills for it, and its one body, generic over the backend:
//! - [`keys`]: [`KeyStore`], signing keys and the master key binding.
//! - [`settings`]: [`SettingsStore`], write-once settings and leases.
//! - [`oauth`]: [`OAuthStore`], clients, refresh-token families,
//!   revocations, client-assertion ids.
//! - [`audit`]: [`AuditStore`], the audit log and its group-commit writer;
//!   [`AuditSigner`] and [`sign_checkpoint`] its sealed Ed25519 key (a
//!   setting) and signed checkpoints; [`audit_verify`] the whole-log check.
//! - [`registry`]: [`RegistryStore`], datasets, models, versions, lineage
//!   and four-eyes promotion requests, applying the rules of
//!   `warden-registry` inside transactions.
//! - [`sessions`]: [`SessionStore`], the dashboard's sign-in sessions.
//! - [`authorization`]: [`AuthorizationStore`], the grants people approve:
//!   single-use authorization codes and device grants.
//! - [`approvals`]: [`ApprovalStore`], people's approvals of agent
//!   actions (CIBA requests): decided, handed out and used once.
//!
//! And the backends:
//! - [`SqlStore`] (`sql`): the store over one sqlx backend, and the
//!   `Dialect` each backend supplies: its SQL table per concern and the
//!   few operations whose code differs.
//! - [`sqlite::SqliteStore`]: the embedded default, one file in WAL mode
//!   with a single writer connection. All its SQL is in `sqlite.rs`.
//! - [`postgres::PgStore`]: for stateless replicas sharing one database.
//!   All its SQL is in `postgres.rs`.
//! - Each backend has its own `migrations/<backend>` folder, applied at
//!   connect time.
//!
//! [`Store`] bundles the traits. [`DataDir`] is the data directory and its
//! 0600 master key file; [`KeyManager`] rotation, retirement and JWKS over
//! any [`Store`].
//!
//! The backend is chosen once, at the edge, from the database URL
//! ([`Backend::from_url`]); code above this crate is generic over [`Store`].
//!
//! # What it must not touch
//! HTTP, CLI parsing and token rules. Secrets pass through only sealed.
//! Error texts state facts and name no command of any front end.
#![deny(missing_docs)]

pub mod approvals;
pub mod audit;
pub mod audit_queue;
mod audit_signer;
pub mod audit_verify;
pub mod authorization;
mod data_dir;
mod error;
mod key_manager;
pub mod keys;
pub mod oauth;
pub mod postgres;
pub mod registry;
pub mod sessions;
pub mod settings;
mod sql;
pub mod sqlite;

pub use approvals::ApprovalStore;
pub use audit::{
    ActivityCount, AuditStore, AuditWriter, EventQuery, PreparedEvent, StoredCheckpoint, StoredEvent, TreeHead,
    WriterOptions,
};
pub use audit_queue::{Integrated, QueueStatus, QueuedEvent};
pub use audit_signer::{AUDIT_KEY_SETTING, AuditSigner, sign_checkpoint};
pub use authorization::AuthorizationStore;
pub use data_dir::{
    DATABASE_FILE, DataDir, MASTER_KEY_FILE, MasterKeySource, check_private, create_private_file, read_key_file,
};
pub use error::StoreError;
pub use key_manager::{KeyManager, published_keys};
pub use keys::KeyStore;
pub use oauth::OAuthStore;
pub use registry::{RegistryStore, Rollback, StageChange, VoteResult};
pub use sessions::{SessionRecord, SessionStore};
pub use settings::SettingsStore;
pub use sql::SqlStore;

/// Everything Warden stores. Implemented by each backend.
pub trait Store:
    KeyStore
    + AuditStore
    + OAuthStore
    + RegistryStore
    + SettingsStore
    + SessionStore
    + AuthorizationStore
    + ApprovalStore
    + Clone
    + std::fmt::Debug
    + 'static
{
    /// A short backend name for logs (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
}

/// The backend a database URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH` (or `sqlite:PATH`).
    Sqlite(String),
    /// `postgres://...` or `postgresql://...`.
    Postgres(String),
}

impl Backend {
    /// Picks the backend from the URL scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(url.to_owned()))
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// Removes passwords from a database URL for messages: the userinfo
/// password and any `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = base.get(scheme_end + 3..at).unwrap_or_default();
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    let scheme = base.get(..scheme_end + 3).unwrap_or_default();
                    format!("{scheme}{user}:***{}", base.get(at..).unwrap_or_default())
                }
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") => {
                        format!("{k}=***")
                    }
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").unwrap(),
            Backend::Sqlite("sqlite://x.db".into())
        );
        assert!(matches!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres(_)
        ));
        assert!(matches!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres(_)
        ));
        let err = Backend::from_url("mysql://root:hunter2@h/db").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=hunter2"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
    }
}
