//! The one error type of `warden-store`.
//!
//! Each message states what is wrong, never how to fix it from a
//! particular front end: the same error reaches the CLI, the server's
//! logs and its API answers, and only the CLI knows its own commands (it
//! adds its hints where it prints errors).

use std::path::PathBuf;

/// Errors from storage and the data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL names no supported backend.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A database operation failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key file may be read by other users.
    #[error(
        "refusing to use {path}: it is readable by group or others (mode {mode:04o})",
        path = .path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key operation failed.
    #[error(transparent)]
    Key(#[from] warden_keys::KeyError),
    /// This database belongs to another master key.
    #[error("this database was set up with master key {expected}, but master key {actual} was given")]
    MasterKeyMismatch {
        /// Fingerprint recorded in the database.
        expected: String,
        /// Fingerprint of the key given.
        actual: String,
    },
    /// A value does not fit the database's signed 64-bit integers.
    #[error("value {0} is out of range for the database")]
    OutOfRange(u64),
    /// A PostgreSQL schema name outside `[A-Za-z0-9_]+`.
    #[error("schema name `{0}` must match [A-Za-z0-9_]+")]
    InvalidSchemaName(String),
    /// The master key file does not exist and this command may not create it.
    #[error("no master key at {path} and WARDEN_MASTER_KEY is not set", path = .0.display())]
    NoMasterKey(PathBuf),
    /// The store was bound to a master key but its file is missing; a new
    /// key could open none of the store's keys, so none is made.
    #[error(
        "this store was created with a master key, but there is none at {path} and WARDEN_MASTER_KEY is not set (no new key was written)",
        path = .0.display()
    )]
    MasterKeyLost(PathBuf),
    /// The embedded database does not exist and this command may not create it.
    #[error("no database at {}", .0.display())]
    NoDatabase(PathBuf),
    /// A stored row is not what this version writes.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// An audit-log computation failed: a proof asked with inconsistent
    /// sizes or indices, or a subtree hash that is not stored.
    #[error(transparent)]
    Audit(#[from] warden_audit::AuditError),
    /// A tree size or event index past the end of the audit log.
    #[error("{requested} is beyond the end of the audit log (size {size})")]
    AuditBeyondEnd {
        /// The size or index asked for.
        requested: u64,
        /// The log's size.
        size: u64,
    },
    /// A query's arguments are out of bounds: an empty or reversed time
    /// range, a bucket of zero seconds, too many buckets.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// An event and the leaf given with it do not match.
    #[error("invalid audit event: {0}")]
    InvalidAuditEvent(&'static str),
    /// The audit writer has stopped: nothing was recorded.
    #[error("the audit writer is closed; the event was not recorded")]
    AuditWriterClosed,
    /// The batch holding this append could not be committed: nothing was
    /// recorded, and the action must not be acknowledged.
    #[error("the audit log could not be written: {0}")]
    AuditAppend(std::sync::Arc<StoreError>),
    /// The database has no audit-log signing key and this command may not
    /// create one.
    #[error("this database has no audit log signing key yet")]
    NoAuditKey,
    /// The configured origin cannot name a log key.
    #[error("the audit log origin `{0}` cannot name its key: it must be non-empty, without spaces or `+`")]
    InvalidAuditOrigin(String),
    /// The stored audit-log key signs for another origin than configured.
    #[error(
        "the audit log key in this database signs for origin `{stored}`, but the configured origin is \
         `{configured}`: a log keeps its origin for life (checkpoints already name it)"
    )]
    AuditOriginMismatch {
        /// The origin (key name) stored with the key.
        stored: String,
        /// The configured origin.
        configured: String,
    },
    /// Refusing to sign a checkpoint that would contradict the latest one.
    #[error("refusing to sign a checkpoint of size {size}: {reason}")]
    CheckpointRefused {
        /// The tree size that would have been signed.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A registry object the caller named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The state changed under the caller (a stage that is no longer the
    /// expected one, a request already open); retrying may succeed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A registry rule refused the change.
    #[error(transparent)]
    Registry(#[from] warden_registry::RegistryError),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}
