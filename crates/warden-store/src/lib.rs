//! Warden's storage: one set of traits, two implementations.
//!
//! # Layout
//! - [`KeyStore`] (and later traits beside it): what the rest of Warden
//!   needs from storage, as async methods. [`Store`] bundles them.
//! - [`RegistryStore`]: datasets, models, versions, lineage and four-eyes
//!   promotion requests, applying the rules of `warden-registry` inside
//!   transactions.
//! - [`sqlite::SqliteStore`]: the embedded default, one file in WAL mode
//!   with a single writer connection.
//! - [`postgres::PgStore`]: for stateless replicas sharing one database.
//! - Each backend has its own `migrations/<backend>` folder, applied at
//!   connect time.
//! - [`DataDir`]: the data directory and its 0600 master key file.
//! - [`KeyManager`]: rotation, retirement and JWKS over any [`Store`].
//! - [`AuditSigner`] and [`sign_checkpoint`]: the audit log's sealed
//!   Ed25519 key (in [`SettingsStore`]) and its signed checkpoints.
//!
//! The backend is chosen once, at the edge, from the database URL
//! ([`Backend::from_url`]); code above this crate is generic over [`Store`].
//!
//! # What it must not touch
//! HTTP, CLI parsing and token rules. Secrets pass through only sealed.
#![deny(missing_docs)]

pub mod audit;
mod audit_signer;
pub mod audit_verify;
mod data_dir;
mod error;
mod key_manager;
pub mod oauth;
pub mod postgres;
pub mod registry;
mod settings;
pub mod sqlite;

use std::future::Future;

pub use audit::{
    ActivityCount, AuditStore, AuditWriter, EventQuery, PreparedEvent, StoredCheckpoint, StoredEvent, TreeHead,
    WriterOptions,
};
pub use audit_signer::{AUDIT_KEY_SETTING, AuditSigner, sign_checkpoint};
pub use data_dir::{
    DATABASE_FILE, DataDir, MASTER_KEY_FILE, MasterKeySource, check_private, create_private_file, read_key_file,
};
pub use error::StoreError;
pub use key_manager::{KeyManager, published_keys};
pub use oauth::OAuthStore;
pub use registry::{RegistryStore, Rollback, StageChange, VoteResult};
pub use settings::SettingsStore;
use warden_jose::Algorithm;
use warden_keys::KeyRecord;

/// Persistence of signing keys and the master key binding.
pub trait KeyStore: Send + Sync {
    /// Stores a new key record.
    fn insert_key(&self, record: &KeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every key record, retired ones included.
    fn list_keys(&self) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;
    /// Marks a key retired at `at`; false when no unretired key has that kid.
    fn retire_key(&self, kid: &str, at: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records `fingerprint` as this database's master key on first use and
    /// returns the recorded one.
    fn bind_master_key(&self, fingerprint: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// Everything Warden stores. Implemented by each backend.
pub trait Store:
    KeyStore + AuditStore + OAuthStore + RegistryStore + SettingsStore + Clone + std::fmt::Debug + 'static
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

/// A row of `signing_keys` as both backends read it.
pub(crate) type KeyRow = (String, i64, String, i64, i64, Option<i64>, String, Vec<u8>);

pub(crate) fn key_from_row(row: KeyRow) -> Result<KeyRecord, StoreError> {
    let (kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private) = row;
    let time = |v: i64| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative time for key `{kid}`")));
    Ok(KeyRecord {
        generation: time(generation)?,
        alg: Algorithm::parse(&alg).map_err(|_| StoreError::Corrupt(format!("unknown alg for key `{kid}`")))?,
        created_at: time(created_at)?,
        activates_at: time(activates_at)?,
        retired_at: retired_at.map(time).transpose()?,
        public_jwk,
        sealed_private,
        kid,
    })
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(v))
}

/// Implements [`KeyStore`] for a backend from its SQL, so that both
/// backends share one body and differ only in their SQL text.
macro_rules! impl_key_store {
    ($store:ty, insert = $insert:expr, list = $list:expr, retire = $retire:expr,
     bind_insert = $bind_insert:expr, bind_select = $bind_select:expr $(,)?) => {
        impl $crate::KeyStore for $store {
            async fn insert_key(&self, r: &warden_keys::KeyRecord) -> Result<(), $crate::StoreError> {
                sqlx::query($insert)
                    .bind(&r.kid)
                    .bind($crate::to_i64(r.generation)?)
                    .bind(r.alg.as_str())
                    .bind($crate::to_i64(r.created_at)?)
                    .bind($crate::to_i64(r.activates_at)?)
                    .bind(r.retired_at.map($crate::to_i64).transpose()?)
                    .bind(&r.public_jwk)
                    .bind(&r.sealed_private)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn list_keys(&self) -> Result<Vec<warden_keys::KeyRecord>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::KeyRow>($list)
                    .fetch_all(self.reader())
                    .await?
                    .into_iter()
                    .map($crate::key_from_row)
                    .collect()
            }

            async fn retire_key(&self, kid: &str, at: u64) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query($retire)
                    .bind($crate::to_i64(at)?)
                    .bind(kid)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn bind_master_key(&self, fingerprint: &str) -> Result<String, $crate::StoreError> {
                sqlx::query($bind_insert)
                    .bind(fingerprint)
                    .execute(self.writer())
                    .await?;
                let (value,): (String,) = sqlx::query_as($bind_select).fetch_one(self.writer()).await?;
                Ok(value)
            }
        }
    };
}
pub(crate) use impl_key_store;

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
