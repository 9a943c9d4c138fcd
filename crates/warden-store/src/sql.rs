//! What every backend shares, and what each must supply.
//!
//! [`SqlStore`] is the store over one sqlx backend: its writer and reader
//! pools. Each storage concern (`keys`, `settings`, `oauth`, `audit`,
//! `registry`, `sessions`) implements its trait once, for `SqlStore<DB>` generic over
//! the backend, in its own module; the backend supplies a [`Dialect`]: one
//! SQL table per concern (a struct of statements, declared by the concern
//! with each statement's parameters) and the few operations whose code,
//! not just text, differs (the audit log's multi-row inserts and subtree
//! lookups, the parameter form of a lineage frontier). `sqlite.rs` and
//! `postgres.rs` hold all of a backend's SQL, concern by concern.
//!
//! # Why each generic impl repeats a short `where` clause
//! sqlx states what a backend can do as bounds on *other* types (`i64:
//! Encode<DB>`, `&mut DB::Connection: Executor`), and Rust does not carry
//! such bounds from a trait to its users (only `Self` bounds are implied),
//! so no trait here can stand for "a backend Warden can run on". Each
//! generic impl therefore lists what its bodies use: [`Param`] and
//! [`Value`] keep those lists to one line per Rust type. (Other sqlx users
//! hit the same wall and chose enum dispatch or one backend per build;
//! here the bounds stay short enough to keep one body per concern.)
//!
//! # What it must not touch
//! No SQL text (that is the backends') and no storage rules (the
//! concerns').

use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use sqlx::{Connection as _, Database, Decode, Encode, IntoArguments, Pool, Type};
use warden_audit::{Hash, Subtree};

use crate::approvals::ApprovalSql;
use crate::audit::{AuditSql, PreparedEvent};
use crate::authorization::AuthorizationSql;
use crate::error::StoreError;
use crate::keys::KeySql;
use crate::oauth::OAuthSql;
use crate::registry::RegistrySql;
use crate::sessions::SessionSql;
use crate::settings::SettingsSql;

/// Warden's store over the sqlx backend `DB`: every storage trait is
/// implemented for it. Use it through [`SqliteStore`](crate::sqlite::SqliteStore)
/// or [`PgStore`](crate::postgres::PgStore).
pub struct SqlStore<DB: Database> {
    writer: Pool<DB>,
    reader: Pool<DB>,
    audit_health: Arc<AuditHealth>,
}

/// Whether the audit log could be written the last time this store tried
/// (an append, a change committed with its events, or a probe); shared by
/// every clone of the store.
#[derive(Debug, Default)]
pub(crate) struct AuditHealth {
    failure: Mutex<Option<String>>,
}

impl AuditHealth {
    /// Records the outcome of a write of the audit log.
    pub(crate) fn record<T>(&self, result: &Result<T, StoreError>) {
        let mut failure = self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(_) => *failure = None,
            Err(e) => *failure = Some(e.to_string()),
        }
    }

    /// The error of the last write, when it failed.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The pools' `after_release` check: a connection given back while still
/// inside a transaction is closed, never reused, and the pool opens a fresh
/// one. That happens when a `COMMIT` fails and the rollback queued by the
/// dropped transaction fails too (SQLite ends a transaction by itself on
/// some errors, `SQLITE_FULL` among them, and then refuses the `ROLLBACK`):
/// sqlx still counts the transaction as open, and every later `BEGIN` on
/// that connection would fail until a restart. The ping first runs what
/// the dropped transaction queued, so the depth read after it is settled.
pub(crate) fn discard_if_in_transaction<DB: Database>(
    conn: &mut DB::Connection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        conn.ping().await?;
        let clean = !conn.is_in_transaction();
        if !clean {
            tracing::warn!("a database connection was left inside a failed transaction; it is closed and replaced");
        }
        Ok(clean)
    })
}

impl<DB: Database> SqlStore<DB> {
    /// A store writing through `writer` and reading through `reader`
    /// (PostgreSQL passes one pool twice).
    pub(crate) fn new(writer: Pool<DB>, reader: Pool<DB>) -> Self {
        Self {
            writer,
            reader,
            audit_health: Arc::default(),
        }
    }

    /// What the last write of the audit log through this store did.
    pub(crate) fn audit_health(&self) -> &AuditHealth {
        &self.audit_health
    }

    /// The pool that writes, and reads what must see the latest write.
    pub(crate) fn writer(&self) -> &Pool<DB> {
        &self.writer
    }

    /// The pool for reads that may run beside the writer.
    pub(crate) fn reader(&self) -> &Pool<DB> {
        &self.reader
    }
}

// By hand: a derive would ask `DB: Clone`, which sqlx's backend markers
// are not.
impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            audit_health: Arc::clone(&self.audit_health),
        }
    }
}

impl<DB: Database> std::fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &DB::NAME)
            .field("writer", &self.writer)
            .field("reader", &self.reader)
            .finish()
    }
}

/// A Rust type the backend binds as a query parameter.
pub(crate) trait Param<DB: Database>: for<'q> Encode<'q, DB> + Type<DB> {}

impl<DB: Database, T: for<'q> Encode<'q, DB> + Type<DB>> Param<DB> for T {}

/// A Rust type the backend binds and also reads back from a column.
pub(crate) trait Value<DB: Database>: Param<DB> + for<'r> Decode<'r, DB> {}

impl<DB: Database, T: Param<DB> + for<'r> Decode<'r, DB>> Value<DB> for T {}

/// What a backend supplies besides sqlx's driver: its SQL for every
/// concern, and the operations whose code differs between backends.
pub(crate) trait Dialect: Database<Arguments: IntoArguments<Self>> {
    /// The short backend name for logs ([`Store::backend`](crate::Store::backend)).
    const BACKEND: &'static str;
    /// Starts a transaction that will write. SQLite: `BEGIN IMMEDIATE`, so
    /// the write lock is taken before anything is read and a transaction
    /// never fails to upgrade its lock half-way.
    const BEGIN: &'static str;

    /// Signing keys and the master key binding.
    const KEYS: KeySql;
    /// Write-once settings and leases.
    const SETTINGS: SettingsSql;
    /// The token service.
    const OAUTH: OAuthSql;
    /// The audit log, except appends and subtree lookups.
    const AUDIT: AuditSql;
    /// The governance registry.
    const REGISTRY: RegistrySql;
    /// Dashboard sessions.
    const SESSIONS: SessionSql;
    /// Authorization codes and device grants.
    const AUTHORIZATION: AuthorizationSql;
    /// SQL of [`ApprovalStore`](crate::approvals::ApprovalStore).
    const APPROVALS: ApprovalSql;

    /// Rows a statement changed (sqlx has no generic accessor).
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// A lineage frontier (node strings) as the one parameter that
    /// [`RegistrySql::edges_from`] and [`RegistrySql::edges_to`] take.
    type NodeList<'a>: Param<Self> + Send;

    /// `nodes` as a [`NodeList`](Self::NodeList).
    fn node_list(nodes: &[String]) -> Result<Self::NodeList<'_>, StoreError>;

    /// Appends a non-empty batch inside the caller's write transaction
    /// `conn` (begun with [`BEGIN`](Self::BEGIN)), serialising with every
    /// other appender on the log's state row; the caller commits.
    fn append_events(
        conn: &mut Self::Connection,
        events: &[PreparedEvent],
    ) -> impl Future<Output = Result<Range<u64>, StoreError>> + Send;

    /// Inserts a non-empty batch into the audit queue inside the caller's
    /// write transaction `conn`; returns the receipts in `events` order.
    /// Takes no lock beyond the inserted rows'.
    fn enqueue_events(
        conn: &mut Self::Connection,
        events: &[PreparedEvent],
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;

    /// Inside the caller's write transaction `conn`: locks the log's state
    /// row, then moves up to `max` of the oldest queued events into the
    /// log (indices, subtrees, state) and deletes them from the queue;
    /// returns their indices (empty when nothing was queued).
    fn integrate_queued(
        conn: &mut Self::Connection,
        max: usize,
    ) -> impl Future<Output = Result<Range<u64>, StoreError>> + Send;

    /// [`AuditStore::subtrees`](crate::AuditStore::subtrees) for a
    /// non-empty list, in one query.
    fn subtrees(
        store: &SqlStore<Self>,
        nodes: &[Subtree],
    ) -> impl Future<Output = Result<Vec<Hash>, StoreError>> + Send;
}
