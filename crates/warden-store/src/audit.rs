//! Storage of the audit log: events, every perfect-subtree hash, the
//! frontier, and checkpoints; plus [`AuditWriter`], the group-commit
//! front end that appenders share.
//!
//! Here: [`AuditStore`], its SQL table [`AuditSql`] and its one body over
//! every backend; each backend's appends and subtree lookups, whose code
//! differs (multi-row `INSERT`s, arrays), are its `Dialect`'s, in
//! `sqlite.rs` and `postgres.rs`. What an event indexes (its type,
//! subject, resource, actor, outcome) is decided by `warden-audit`, never
//! here.
//!
//! # Tables (both backends, `migrations/*/0002_audit_log.sql`)
//! - `audit_events`: one row per leaf, `idx` from 0 with no gap: time,
//!   type, subject, resource and outcome (copied out of the event for
//!   queries; `outcome` since `0006_audit_outcome.sql`), the canonical body
//!   and its salt (both `NULL` once erased), the leaf hash (kept forever),
//!   and `erased_at`/`erasure_reason`.
//! - `audit_nodes`: the root of every *complete* perfect subtree of level
//!   1 and above, keyed by `(level, idx)` (level 0 is the leaf hash in
//!   `audit_events`). A log of n leaves holds n - popcount(n) of them, and
//!   any proof at any size up to n reads O(log n) of them by key.
//! - `audit_state`: one row, the size and the serialised
//!   [`Frontier`]; it is the append lock and gives
//!   the root in O(log n) without reading the tree.
//! - `audit_checkpoints`: signed notes by tree size.
//!
//! # Appending
//! Two paths lead into the tree; both end in [`AuditStore::append_batch`]'s
//! transaction: it locks the state row (PostgreSQL `SELECT … FOR UPDATE`;
//! SQLite `BEGIN IMMEDIATE` on its single writer connection), numbers the
//! events from the stored size, inserts them with the subtrees they
//! complete, stores the new frontier and commits durably (SQLite
//! `synchronous = FULL`, PostgreSQL commit), so indices stay contiguous
//! whoever appends.
//! - **Queue and integration** (the server's path, `audit_queue.rs`): an
//!   action waits only for its event to be *queued* durably
//!   ([`AuditStore::enqueue_batch`], through [`AuditWriter`]'s group commit,
//!   or inside the change's own transaction for registry changes and
//!   refresh rotations); one sequencer then integrates queued events in
//!   batches ([`AuditStore::integrate`]: the append above plus deleting
//!   them from the queue, in one transaction).
//! - **Direct** ([`AuditStore::append_batch`] alone): command-line tools
//!   that record while no server may be running, and tests.
//!
//! [`AuditWriter`] puts many concurrent appends into each queue transaction
//! (group commit) and answers each caller only once its batch is committed;
//! if the commit fails, every caller of the batch gets the error and must
//! fail closed.
//!
//! # Proofs
//! [`AuditStore::inclusion_proof`], [`AuditStore::consistency_proof`] and
//! [`AuditStore::root_at`] ask `warden-audit` which subtrees they need,
//! fetch them in one query ([`AuditStore::subtrees`]), and run the pure
//! proof code over them. Proofs at an older size work the same: every
//! subtree complete at that size is stored.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use warden_audit::merkle::{self, HASH_LEN, Hash};
use warden_audit::{AuditError, AuditEvent, Decision, EventLeaf, Frontier, Record, Salt, Subtree};

use sqlx::{ColumnIndex, Executor};

use crate::audit_queue::{
    Integrated, MAX_INTEGRATION_BATCH, QUEUE_COLUMNS, QUEUE_STATUS, QueueRow, QueueStatus, QueuedEvent,
    queued_from_row, status_from_row,
};
use crate::error::StoreError;
use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::to_i64;

/// The most rows [`AuditStore::events`] and [`AuditStore::checkpoints`]
/// return at once; a larger limit is reduced to it.
pub const MAX_PAGE: u32 = 10_000;

/// An event ready to append: its canonical body sealed under a salt, and
/// the columns extracted for queries.
///
/// Built by [`PreparedEvent::seal`] (or [`PreparedEvent::from_sealed`]) in
/// the caller's task, so that hashing runs outside the writer.
///
/// The query columns are what the event's kind says it is and indexes
/// ([`EventKind::type_name`](warden_audit::EventKind::type_name),
/// [`EventKind::indexed`](warden_audit::EventKind::indexed)); this type
/// only stores them, with NUL made U+FFFD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedEvent {
    time: i64,
    kind: &'static str,
    subject: Option<String>,
    resource: Option<String>,
    outcome: Option<&'static str>,
    actor: Option<String>,
    body: Vec<u8>,
    salt: Salt,
    leaf_hash: Hash,
}

/// A subject or resource as the query columns keep it: NUL, which
/// PostgreSQL's text cannot hold (a request naming one would fail its
/// whole group commit), becomes U+FFFD. The body keeps the exact value.
fn query_column(value: &str) -> String {
    value.replace('\0', "\u{FFFD}")
}

/// The members of a body that are checked against the event; the others
/// are skipped, not parsed.
#[derive(serde::Deserialize)]
struct BodyHead<'a> {
    time: u64,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

impl PreparedEvent {
    /// Serialises `event` canonically and seals it under a fresh random salt.
    pub fn seal(event: &AuditEvent) -> Result<Self, StoreError> {
        Self::from_sealed(event, event.seal()?)
    }

    /// Uses a leaf already sealed from `event` (`event.seal()`). The sealed
    /// body's time and type must be `event`'s.
    pub fn from_sealed(event: &AuditEvent, leaf: EventLeaf) -> Result<Self, StoreError> {
        let head: BodyHead<'_> = serde_json::from_slice(leaf.body())
            .map_err(|_| StoreError::InvalidAuditEvent("the sealed body is not an event"))?;
        let kind = event.kind.type_name();
        if head.time != event.time || head.kind != kind {
            return Err(StoreError::InvalidAuditEvent("the sealed body is not this event's"));
        }
        let time = to_i64(event.time)?;
        let indexed = event.kind.indexed();
        let (body, salt, leaf_hash) = leaf.into_parts();
        Ok(Self {
            time,
            kind,
            subject: indexed.subject.map(query_column),
            resource: indexed.resource.map(query_column),
            outcome: indexed.outcome.map(Decision::as_str),
            actor: indexed.actor.map(query_column),
            body,
            salt,
            leaf_hash,
        })
    }

    /// The leaf hash this event adds to the tree.
    pub fn leaf_hash(&self) -> &Hash {
        &self.leaf_hash
    }

    /// The event type (`token_issued`, …).
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// Event time, seconds since the Unix epoch, as stored.
    pub(crate) fn time(&self) -> i64 {
        self.time
    }

    /// The subject column.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The resource column.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The outcome column: `allow` or `deny` for an access decision,
    /// `None` for other kinds.
    pub fn outcome(&self) -> Option<&str> {
        self.outcome
    }

    /// The actor column: the outermost actor of a delegation, if any.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// The canonical body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The salt bytes.
    pub(crate) fn salt_bytes(&self) -> &[u8] {
        self.salt.as_bytes()
    }
}

/// Size and root of the log, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of events.
    pub size: u64,
    /// RFC 9162 root of those events.
    pub root: Hash,
}

/// When and why an event's body was erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// Why (e.g. a GDPR request reference).
    pub reason: String,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Log index.
    pub index: u64,
    /// Event time, seconds since the Unix epoch.
    pub time: u64,
    /// Event type (`token_issued`, …).
    pub kind: String,
    /// Subject column (see [`PreparedEvent`]).
    pub subject: Option<String>,
    /// Resource column (see [`PreparedEvent`]).
    pub resource: Option<String>,
    /// Canonical body and its salt; `None` once erased.
    pub content: Option<(Vec<u8>, Salt)>,
    /// The leaf hash, kept after erasure.
    pub leaf_hash: Hash,
    /// Set once the body was erased.
    pub erasure: Option<Erasure>,
}

impl StoredEvent {
    /// The record [`warden_audit::verify_log`] checks.
    pub fn into_record(self) -> Record {
        Record {
            index: self.index,
            leaf_hash: self.leaf_hash,
            content: self.content,
        }
    }
}

/// Which events [`AuditStore::events`] returns: those from index `from`
/// on that match every filter given, in index order, at most `limit`
/// (with `before`: the newest ones below it, newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// First index to consider.
    pub from: u64,
    /// Most events to return (reduced to [`MAX_PAGE`]).
    pub limit: u32,
    /// Only this event type.
    pub kind: Option<String>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this resource.
    pub resource: Option<String>,
    /// Only events at or after this time.
    pub since: Option<u64>,
    /// Only events before this time.
    pub until: Option<u64>,
    /// Only access decisions with this outcome (`allow` or `deny`).
    pub outcome: Option<String>,
    /// Only events whose outermost actor is this one (an agent acting for
    /// the subject; see [`PreparedEvent`]).
    pub actor: Option<String>,
    /// Only events below this index, newest first (for paging back from
    /// the end of the log).
    pub before: Option<u64>,
}

impl EventQuery {
    /// Events from index `from`, at most `limit`, unfiltered.
    pub fn page(from: u64, limit: u32) -> Self {
        Self {
            from,
            limit,
            ..Self::default()
        }
    }
}

/// The most buckets [`AuditStore::audit_activity`] counts in one call.
pub const MAX_ACTIVITY_BUCKETS: u64 = 10_000;

/// How many events of one type, and for access decisions one outcome, fell
/// in one time bucket: a row of [`AuditStore::audit_activity`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActivityCount {
    /// Start of the bucket, seconds since the Unix epoch: `since + k *
    /// bucket_secs` for the `since` and `bucket_secs` asked.
    pub bucket_start: u64,
    /// Event type (`access_decision`, `token_issued`, …).
    pub kind: String,
    /// `allow` or `deny` for access decisions; `None` for other types (and
    /// for access decisions whose body was erased before the outcome was
    /// stored, which migration `0006` could not fill in).
    pub outcome: Option<String>,
    /// Number of events; never 0 (empty groups are left out).
    pub count: u64,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size it signs.
    pub size: u64,
    /// When it was signed, seconds since the Unix epoch.
    pub time: u64,
    /// The signed note.
    pub note: String,
}

/// Persistence of the audit log. Implemented by each backend.
pub trait AuditStore: Send + Sync {
    /// Appends `events` in one durable transaction and returns their
    /// indices. Concurrent callers (other replicas included) serialise on
    /// the log's state, so indices never repeat or skip.
    fn append_batch(&self, events: &[PreparedEvent]) -> impl Future<Output = Result<Range<u64>, StoreError>> + Send;

    /// Queues `events` in one durable transaction and returns their queue
    /// receipts (see [`audit_queue`](crate::audit_queue)): what an action
    /// waits for before it is acknowledged. Nothing is ordered on a shared
    /// row; [`integrate`](Self::integrate) gives them log indices later.
    fn enqueue_batch(&self, events: &[PreparedEvent]) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;

    /// Moves up to `max` of the oldest queued events into the log, in one
    /// durable transaction that also deletes them from the queue; returns
    /// the indices they were given (empty when nothing was queued).
    fn integrate(&self, max: usize) -> impl Future<Output = Result<Integrated, StoreError>> + Send;

    /// How many events are queued and since when.
    fn queue_status(&self) -> impl Future<Output = Result<QueueStatus, StoreError>> + Send;

    /// The oldest `limit` queued events (reduced to [`MAX_PAGE`]) whose
    /// receipt is above `after`, in receipt order.
    fn queued_events(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<QueuedEvent>, StoreError>> + Send;

    /// The error of the last write of the log through this store (an
    /// append, a change committed with its events, or a
    /// [`probe_audit`](Self::probe_audit)) when it failed; `None` once one
    /// succeeds. Readiness reports the log unwritable while it is set.
    fn audit_failure(&self) -> Option<String> {
        None
    }

    /// Tries a write of the log's state row in a durable transaction, and
    /// records the outcome as [`audit_failure`](Self::audit_failure) does:
    /// how a server with no traffic learns that the log is writable again.
    fn probe_audit(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }

    /// Number of events.
    fn size(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Size and root, from the stored frontier.
    fn tree_head(&self) -> impl Future<Output = Result<TreeHead, StoreError>> + Send;

    /// Events matching `query`, in index order.
    fn events(&self, query: &EventQuery) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Counts of events per time bucket, type and outcome, for `since <=
    /// time < until`, sorted by bucket start, then type, then outcome
    /// (`None` first). Buckets are `bucket_secs` long and start at `since`
    /// (the last one may be cut short by `until`); buckets and types
    /// without events are left out. Erased events count: the columns read
    /// are kept on erasure, and no body is read.
    ///
    /// [`StoreError::InvalidQuery`] unless `bucket_secs >= 1`, `until >
    /// since`, and the range holds at most [`MAX_ACTIVITY_BUCKETS`]
    /// buckets.
    fn audit_activity(
        &self,
        since: u64,
        until: u64,
        bucket_secs: u64,
    ) -> impl Future<Output = Result<Vec<ActivityCount>, StoreError>> + Send;

    /// The leaf hashes of `range`, in order (shorter if the log ends
    /// first). A missing row inside the log is reported as corruption.
    fn leaf_hashes(&self, range: Range<u64>) -> impl Future<Output = Result<Vec<Hash>, StoreError>> + Send;

    /// The hashes of complete perfect subtrees, in the order asked, in one
    /// query. A subtree that is not stored is an
    /// [`AuditError::MissingNode`].
    fn subtrees(&self, nodes: &[Subtree]) -> impl Future<Output = Result<Vec<Hash>, StoreError>> + Send;

    /// Stores a signed checkpoint of tree size `size`; false when one of
    /// that size is already stored (it is kept).
    fn put_checkpoint(&self, size: u64, time: u64, note: &str)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Checkpoints of size `from_size` and above, by size, at most `limit`
    /// (reduced to [`MAX_PAGE`]).
    fn checkpoints(
        &self,
        from_size: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredCheckpoint>, StoreError>> + Send;

    /// The checkpoint of the largest size, if any.
    fn latest_checkpoint(&self) -> impl Future<Output = Result<Option<StoredCheckpoint>, StoreError>> + Send;

    /// Erases the body and salt of event `index` and records when and why;
    /// the leaf hash stays, so the tree is unchanged. False when it was
    /// already erased. The caller appends an `erasure` event itself.
    fn erase(&self, index: u64, reason: &str, time: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The root of the first `size` events, in one query.
    fn root_at(&self, size: u64) -> impl Future<Output = Result<Hash, StoreError>> + Send {
        async move {
            let source = self.fetch_below(range_nodes(size), size).await?;
            Ok(warden_audit::root_at(&source, size)?)
        }
    }

    /// The inclusion proof of event `index` in the tree of the first `size`
    /// events, in one query.
    fn inclusion_proof(&self, index: u64, size: u64) -> impl Future<Output = Result<Vec<Hash>, StoreError>> + Send {
        async move {
            let nodes = warden_audit::inclusion_nodes(index, size)?;
            let source = self.fetch_below(nodes, size).await?;
            Ok(warden_audit::inclusion_proof(&source, index, size)?)
        }
    }

    /// The consistency proof from the first `old_size` events to the first
    /// `new_size`, in one query.
    fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> impl Future<Output = Result<Vec<Hash>, StoreError>> + Send {
        async move {
            let nodes = warden_audit::consistency_nodes(old_size, new_size)?;
            let source = self.fetch_below(nodes, new_size).await?;
            Ok(warden_audit::consistency_proof(&source, old_size, new_size)?)
        }
    }

    /// [`subtrees`](Self::subtrees) as a [`NodeSource`](warden_audit::NodeSource)
    /// for a proof at tree size `size`, which must not exceed the log's.
    ///
    /// The last leaf below `size` is fetched too: the log is contiguous and
    /// each batch stores its subtrees with its leaves, so when that leaf
    /// exists every subtree complete at `size` does, and a proof can never
    /// be served for a tree the log has not reached (an inclusion proof
    /// does not read the leaf it proves).
    #[doc(hidden)]
    fn fetch_below(
        &self,
        mut nodes: Vec<Subtree>,
        size: u64,
    ) -> impl Future<Output = Result<HashMap<Subtree, Hash>, StoreError>> + Send {
        async move {
            if let Some(last) = size.checked_sub(1) {
                nodes.push(Subtree::new(0, last));
            }
            match self.subtrees(&nodes).await {
                Ok(hashes) => Ok(nodes.into_iter().zip(hashes).collect()),
                Err(StoreError::Audit(missing @ AuditError::MissingNode { .. })) => {
                    check_within(self.size().await?, size)?;
                    Err(StoreError::Audit(missing))
                }
                Err(e) => Err(e),
            }
        }
    }
}

fn check_within(log_size: u64, requested: u64) -> Result<(), StoreError> {
    if requested > log_size {
        return Err(StoreError::AuditBeyondEnd {
            requested,
            size: log_size,
        });
    }
    Ok(())
}

/// The perfect subtrees `[0, size)` splits into, largest first.
fn range_nodes(size: u64) -> Vec<Subtree> {
    let mut nodes = Vec::new();
    let mut start = 0u64;
    for level in (0..u64::BITS).rev().filter(|l| size >> l & 1 == 1) {
        nodes.push(Subtree::new(level, start >> level));
        start += 1 << level;
    }
    nodes
}

/// What one batch writes besides its events: the subtrees it completes
/// and the new frontier.
#[derive(Debug)]
pub(crate) struct BatchPlan {
    /// Index of the batch's first event.
    pub(crate) start: u64,
    /// Every subtree of level 1 and above that the batch completes, as
    /// `(level, index, hash)`, in the order they complete.
    pub(crate) nodes: Vec<(u32, u64, Hash)>,
    /// The frontier after the batch.
    pub(crate) frontier: Frontier,
}

impl BatchPlan {
    /// Plans appending `leaves` to the log whose state row holds `size` and
    /// `frontier`.
    pub(crate) fn new<'a>(
        size: i64,
        frontier: &[u8],
        leaves: impl ExactSizeIterator<Item = &'a Hash>,
    ) -> Result<Self, StoreError> {
        let frontier = load_frontier(size, frontier)?;
        let start = frontier.size();
        // The frontier's subtrees, largest first; pushing a leaf merges the
        // smallest ones like a binary counter carries, and each merge is a
        // subtree that just became complete.
        let mut stack: Vec<(u32, Hash)> = frontier.entries().collect();
        let mut nodes = Vec::with_capacity(leaves.len());
        let mut size = start;
        for leaf in leaves {
            size = size
                .checked_add(1)
                .filter(|s| *s <= i64::MAX as u64)
                .ok_or(StoreError::OutOfRange(size))?;
            let mut level = 0;
            let mut hash = *leaf;
            while let Some(&(top, left)) = stack.last()
                && top == level
            {
                stack.pop();
                hash = merkle::node_hash(&left, &hash);
                level += 1;
                // `size` is a multiple of 2^level here, and at least 2^level.
                nodes.push((level, (size >> level) - 1, hash));
            }
            stack.push((level, hash));
        }
        let frontier = Frontier::from_entries(stack)?;
        Ok(Self { start, nodes, frontier })
    }

    /// The indices of the events planned.
    pub(crate) fn range(&self) -> Range<u64> {
        self.start..self.frontier.size()
    }
}

/// Splits `items` into runs of `max` (a power of two), then the rest into
/// decreasing powers of two, so that a backend that builds one multi-row
/// statement per run prepares at most `log2(max) + 1` distinct statements.
pub(crate) fn runs<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = if rest.len() >= max {
            max
        } else {
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (run, tail) = rest.split_at_checked(take)?;
        rest = tail;
        Some(run)
    })
}

/// A row of `audit_events` as both backends read it.
type EventRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<u8>,
    Option<i64>,
    Option<String>,
);

/// The checked `(since, until, bucket_secs)` of an activity query, as the
/// database takes them. A bucket longer than the range is shortened to it,
/// which changes no bucket start and keeps it in range.
fn activity_params(since: u64, until: u64, bucket_secs: u64) -> Result<(i64, i64, i64), StoreError> {
    if bucket_secs == 0 {
        return Err(StoreError::InvalidQuery(
            "activity buckets must be at least 1 second long".into(),
        ));
    }
    let Some(span) = until.checked_sub(since).filter(|s| *s > 0) else {
        return Err(StoreError::InvalidQuery(format!(
            "the activity range is empty: until ({until}) must be after since ({since})"
        )));
    };
    let buckets = span.div_ceil(bucket_secs);
    if buckets > MAX_ACTIVITY_BUCKETS {
        return Err(StoreError::InvalidQuery(format!(
            "{span} seconds in buckets of {bucket_secs} s is {buckets} buckets, more than {MAX_ACTIVITY_BUCKETS}: \
             use longer buckets or a shorter range"
        )));
    }
    Ok((to_i64(since)?, to_i64(until)?, to_i64(bucket_secs.min(span))?))
}

/// A row of an activity query: bucket start, type, outcome, count.
type ActivityRow = (i64, String, Option<String>, i64);

/// The rows of an activity query, in [`AuditStore::audit_activity`]'s
/// order. They are sorted here rather than in SQL, so that both backends
/// order types bytewise and `None` first whatever their collation.
fn activity_from_rows(rows: Vec<ActivityRow>) -> Result<Vec<ActivityCount>, StoreError> {
    let mut counts = rows
        .into_iter()
        .map(|(bucket_start, kind, outcome, count)| {
            Ok(ActivityCount {
                bucket_start: non_negative(bucket_start, "activity bucket")?,
                kind,
                outcome,
                count: non_negative(count, "activity count")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    counts.sort_unstable_by(|a, b| (a.bucket_start, &a.kind, &a.outcome).cmp(&(b.bucket_start, &b.kind, &b.outcome)));
    Ok(counts)
}

/// The columns of [`EventRow`], for `SELECT`.
const EVENT_COLUMNS: &str = "idx, time, type, subject, resource, body, salt, leaf_hash, erased_at, erasure_reason";

fn non_negative(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what} in the audit log")))
}

fn to_hash(bytes: &[u8], what: impl FnOnce() -> String) -> Result<Hash, StoreError> {
    <Hash>::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("{} is not {HASH_LEN} bytes", what())))
}

fn event_from_row(row: EventRow) -> Result<StoredEvent, StoreError> {
    let (idx, time, kind, subject, resource, body, salt, leaf_hash, erased_at, erasure_reason) = row;
    let index = non_negative(idx, "event index")?;
    let content = match (body, salt) {
        (Some(body), Some(salt)) => {
            let salt = <[u8; 32]>::try_from(salt.as_slice())
                .map_err(|_| StoreError::Corrupt(format!("salt of audit event {index} is not 32 bytes")))?;
            Some((body, Salt::from_bytes(salt)))
        }
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "audit event {index} has a body without a salt or a salt without a body"
            )));
        }
    };
    let erasure = match (erased_at, erasure_reason) {
        (Some(at), Some(reason)) => Some(Erasure {
            at: non_negative(at, "erasure time")?,
            reason,
        }),
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "erasure record of audit event {index} is partial"
            )));
        }
    };
    Ok(StoredEvent {
        index,
        time: non_negative(time, "event time")?,
        kind,
        subject,
        resource,
        content,
        leaf_hash: to_hash(&leaf_hash, || format!("leaf hash of audit event {index}"))?,
        erasure,
    })
}

fn checkpoint_from_row((size, time, note): (i64, i64, String)) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        size: non_negative(size, "checkpoint size")?,
        time: non_negative(time, "checkpoint time")?,
        note,
    })
}

/// The frontier stored in `audit_state`, checked against the size beside it.
fn load_frontier(size: i64, bytes: &[u8]) -> Result<Frontier, StoreError> {
    let size = non_negative(size, "log size")?;
    let frontier =
        Frontier::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("audit_state frontier: {e}")))?;
    if frontier.size() != size {
        return Err(StoreError::Corrupt(format!(
            "audit_state size {size} disagrees with its frontier of size {}",
            frontier.size()
        )));
    }
    Ok(frontier)
}

fn head_from_row((size, frontier): (i64, Vec<u8>)) -> Result<TreeHead, StoreError> {
    let frontier = load_frontier(size, &frontier)?;
    Ok(TreeHead {
        size: frontier.size(),
        root: frontier.root(),
    })
}

/// Checks that `rows` (index, leaf hash) are `range.start`, `range.start +
/// 1`, … and returns the hashes.
fn leaf_hashes_from_rows(start: u64, rows: Vec<(i64, Vec<u8>)>) -> Result<Vec<Hash>, StoreError> {
    (start..)
        .zip(rows)
        .map(|(expected, (idx, hash))| {
            if non_negative(idx, "event index")? != expected {
                return Err(StoreError::Corrupt(format!("audit event {expected} is missing")));
            }
            to_hash(&hash, || format!("leaf hash of audit event {expected}"))
        })
        .collect()
}

/// Orders the `(level, index, hash)` rows a backend found as `nodes` asked.
pub(crate) fn subtrees_from_rows(
    nodes: &[Subtree],
    rows: impl IntoIterator<Item = (i64, i64, Vec<u8>)>,
) -> Result<Vec<Hash>, StoreError> {
    let mut found = HashMap::with_capacity(nodes.len());
    for (level, index, hash) in rows {
        let (Ok(level), Ok(index)) = (u32::try_from(level), u64::try_from(index)) else {
            return Err(StoreError::Corrupt("negative subtree position in the audit log".into()));
        };
        let hash = to_hash(&hash, || format!("subtree ({level}, {index})"))?;
        found.insert(Subtree::new(level, index), hash);
    }
    nodes
        .iter()
        .map(|node| {
            found
                .get(node)
                .copied()
                .ok_or(StoreError::Audit(AuditError::MissingNode {
                    level: node.level,
                    index: node.index,
                }))
        })
        .collect()
}

/// A backend's SQL for the [`AuditStore`] methods whose text differs
/// between backends (appends and subtree lookups are [`Dialect`] methods).
/// Parameters are positional, in the order each field's comment gives.
pub(crate) struct AuditSql {
    /// (start, end) → (idx, leaf_hash) of `start <= idx < end`, by index.
    pub leaf_hashes: &'static str,
    /// (since, bucket_secs, until) → [`ActivityRow`]s.
    pub activity: &'static str,
    /// (size, time, note); does nothing when that size is stored.
    pub put_checkpoint: &'static str,
    /// (from_size, limit) → (size, time, note) by size.
    pub checkpoints: &'static str,
    /// (erased_at, erasure_reason, idx); only a body not yet erased.
    pub erase: &'static str,
    /// (idx) → (erased_at,) when the event exists.
    pub erased: &'static str,
    /// (value): stores the `audit_write_probe` setting, replacing it.
    pub put_probe: &'static str,
}

impl<DB> AuditStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    for<'a> &'a str: Param<DB>,
{
    async fn append_batch(&self, events: &[PreparedEvent]) -> Result<Range<u64>, StoreError> {
        if events.is_empty() {
            let size = self.size().await?;
            return Ok(size..size);
        }
        let result = async {
            let mut tx = self.writer().begin_with(DB::BEGIN).await?;
            let range = DB::append_events(&mut *tx, events).await?;
            tx.commit().await?;
            Ok(range)
        }
        .await;
        self.audit_health().record(&result);
        result
    }

    async fn enqueue_batch(&self, events: &[PreparedEvent]) -> Result<Vec<u64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let result = async {
            let mut tx = self.writer().begin_with(DB::BEGIN).await?;
            let receipts = DB::enqueue_events(&mut *tx, events).await?;
            tx.commit().await?;
            Ok(receipts)
        }
        .await;
        self.audit_health().record(&result);
        result
    }

    async fn integrate(&self, max: usize) -> Result<Integrated, StoreError> {
        // An empty queue (the common case at each poll) costs one read,
        // not a write transaction and the state row's lock.
        let (any,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM (SELECT 1 FROM audit_queue LIMIT 1) AS q")
            .fetch_one(self.reader())
            .await?;
        if any == 0 {
            let size = self.size().await?;
            return Ok(Integrated { indices: size..size });
        }
        let mut tx = self.writer().begin_with(DB::BEGIN).await?;
        let indices = DB::integrate_queued(&mut *tx, max.clamp(1, MAX_INTEGRATION_BATCH)).await?;
        if indices.is_empty() {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(Integrated { indices })
    }

    async fn queue_status(&self) -> Result<QueueStatus, StoreError> {
        let row: (i64, Option<i64>) = sqlx::query_as(QUEUE_STATUS).fetch_one(self.reader()).await?;
        status_from_row(row)
    }

    async fn queued_events(&self, after: u64, limit: u32) -> Result<Vec<QueuedEvent>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<DB>::new("SELECT ");
        qb.push(QUEUE_COLUMNS);
        qb.push(" FROM audit_queue WHERE seq > ");
        qb.push_bind(to_i64(after)?);
        qb.push(" ORDER BY seq LIMIT ");
        qb.push_bind(i64::from(limit.min(MAX_PAGE)));
        qb.build_query_as::<QueueRow>()
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(queued_from_row)
            .collect()
    }

    fn audit_failure(&self) -> Option<String> {
        self.audit_health().failure()
    }

    async fn probe_audit(&self) -> Result<(), StoreError> {
        let result = async {
            // A write at least as large as a big append: a small one can
            // fit in room a failed append left allocated and pass while
            // appends still fail. Random, so that no compression shrinks it.
            let mut filler = vec![0u8; PROBE_BYTES / 2];
            aws_lc_rs::rand::fill(&mut filler).map_err(|_| StoreError::Corrupt("no randomness".into()))?;
            let filler = hex::encode(filler);
            let mut tx = self.writer().begin_with(DB::BEGIN).await?;
            // The log's own state row, rewritten as it is, and the filler,
            // committed (and so made durable) like an append.
            sqlx::query("UPDATE audit_state SET size = size WHERE id = 0")
                .execute(&mut *tx)
                .await?;
            sqlx::query(DB::AUDIT.put_probe)
                .bind(filler.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            sqlx::query("DELETE FROM settings WHERE name = 'audit_write_probe'")
                .execute(self.writer())
                .await?;
            Ok(())
        }
        .await;
        self.audit_health().record(&result);
        result
    }

    async fn size(&self) -> Result<u64, StoreError> {
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM audit_state WHERE id = 0")
            .fetch_one(self.reader())
            .await?;
        u64::try_from(size).map_err(|_| StoreError::Corrupt("audit_state size is negative".into()))
    }

    async fn tree_head(&self) -> Result<TreeHead, StoreError> {
        let row: (i64, Vec<u8>) = sqlx::query_as("SELECT size, frontier FROM audit_state WHERE id = 0")
            .fetch_one(self.reader())
            .await?;
        head_from_row(row)
    }

    async fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<DB>::new("SELECT ");
        qb.push(EVENT_COLUMNS);
        qb.push(" FROM audit_events WHERE idx >= ");
        qb.push_bind(to_i64(q.from)?);
        if let Some(kind) = &q.kind {
            qb.push(" AND type = ").push_bind(kind.clone());
        }
        if let Some(subject) = &q.subject {
            qb.push(" AND subject = ").push_bind(subject.clone());
        }
        if let Some(resource) = &q.resource {
            qb.push(" AND resource = ").push_bind(resource.clone());
        }
        if let Some(since) = q.since {
            qb.push(" AND time >= ").push_bind(to_i64(since)?);
        }
        if let Some(until) = q.until {
            qb.push(" AND time < ").push_bind(to_i64(until)?);
        }
        if let Some(outcome) = &q.outcome {
            qb.push(" AND outcome = ").push_bind(outcome.clone());
        }
        if let Some(actor) = &q.actor {
            qb.push(" AND actor = ").push_bind(actor.clone());
        }
        match q.before {
            Some(before) => {
                qb.push(" AND idx < ").push_bind(to_i64(before)?);
                qb.push(" ORDER BY idx DESC LIMIT ");
            }
            None => {
                qb.push(" ORDER BY idx LIMIT ");
            }
        }
        qb.push_bind(i64::from(q.limit.min(MAX_PAGE)));
        qb.build_query_as::<EventRow>()
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(event_from_row)
            .collect()
    }

    async fn audit_activity(&self, since: u64, until: u64, bucket_secs: u64) -> Result<Vec<ActivityCount>, StoreError> {
        let (since, until, bucket) = activity_params(since, until, bucket_secs)?;
        let rows: Vec<ActivityRow> = sqlx::query_as(DB::AUDIT.activity)
            .bind(since)
            .bind(bucket)
            .bind(until)
            .fetch_all(self.reader())
            .await?;
        activity_from_rows(rows)
    }

    async fn leaf_hashes(&self, range: Range<u64>) -> Result<Vec<Hash>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(DB::AUDIT.leaf_hashes)
            .bind(to_i64(range.start)?)
            .bind(to_i64(range.end)?)
            .fetch_all(self.reader())
            .await?;
        leaf_hashes_from_rows(range.start, rows)
    }

    async fn subtrees(&self, nodes: &[Subtree]) -> Result<Vec<Hash>, StoreError> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        DB::subtrees(self, nodes).await
    }

    async fn put_checkpoint(&self, size: u64, time: u64, note: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::AUDIT.put_checkpoint)
            .bind(to_i64(size)?)
            .bind(to_i64(time)?)
            .bind(note)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn checkpoints(&self, from_size: u64, limit: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
        sqlx::query_as::<_, (i64, i64, String)>(DB::AUDIT.checkpoints)
            .bind(to_i64(from_size)?)
            .bind(i64::from(limit.min(MAX_PAGE)))
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(checkpoint_from_row)
            .collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT size, time, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(self.reader())
        .await?
        .map(checkpoint_from_row)
        .transpose()
    }

    async fn erase(&self, index: u64, reason: &str, time: u64) -> Result<bool, StoreError> {
        let idx = to_i64(index)?;
        let done = sqlx::query(DB::AUDIT.erase)
            .bind(to_i64(time)?)
            .bind(reason)
            .bind(idx)
            .execute(self.writer())
            .await?;
        if DB::rows_affected(&done) == 1 {
            return Ok(true);
        }
        let row: Option<(Option<i64>,)> = sqlx::query_as(DB::AUDIT.erased)
            .bind(idx)
            .fetch_optional(self.writer())
            .await?;
        match row {
            Some(_) => Ok(false),
            None => {
                let size = self.size().await?;
                if index >= size {
                    Err(StoreError::AuditBeyondEnd { requested: index, size })
                } else {
                    Err(StoreError::Corrupt(format!("audit event {index} is missing")))
                }
            }
        }
    }
}

/// Queues the audit records of a change inside the change's own
/// transaction `tx`, then commits both (the outbox): the change and its
/// events are durable together or not at all (a failed insert or commit
/// leaves neither); the sequencer integrates the events later. Sealing happens before anything is written. The outcome of
/// the append and commit is what [`AuditStore::audit_failure`] reports.
pub(crate) async fn commit_with_events<DB>(
    store: &SqlStore<DB>,
    mut tx: sqlx::Transaction<'_, DB>,
    events: Vec<AuditEvent>,
) -> Result<(), StoreError>
where
    DB: Dialect,
{
    let prepared = events.iter().map(PreparedEvent::seal).collect::<Result<Vec<_>, _>>()?;
    let result = async {
        if !prepared.is_empty() {
            DB::enqueue_events(&mut *tx, &prepared).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    if !prepared.is_empty() {
        store.audit_health().record(&result);
    }
    result
}

/// Bytes [`AuditStore::probe_audit`] writes.
const PROBE_BYTES: usize = 256 * 1024;

/// Tuning of an [`AuditWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// Appends waiting for a batch, beyond which `append` waits for room.
    pub queue: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue: 16 * 1024,
        }
    }
}

type Reply = oneshot::Sender<Result<u64, StoreError>>;

// Appends are nearly every message: boxing the event would cost each an
// allocation to shrink the rare `Close`.
#[allow(clippy::large_enum_variant)]
enum Message {
    Append(PreparedEvent, Reply),
    Close(oneshot::Sender<()>),
}

/// Group commit over an [`AuditStore`]'s queue: a cloneable handle to one
/// task that owns the store and queues appends in batches
/// ([`AuditStore::enqueue_batch`]); the sequencer integrates them later.
///
/// [`append`](Self::append) returns an event's queue receipt only after the
/// transaction holding it has committed durably; when that transaction
/// fails, every append in it gets the error, and the caller must treat the
/// action it records as not done (fail closed). Later appends try again in
/// a new batch. After [`close`](Self::close), or if the task is gone,
/// appends fail at once.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Message>,
    queued: Arc<Notify>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Append(..) => f.write_str("Append"),
            Message::Close(..) => f.write_str("Close"),
        }
    }
}

impl AuditWriter {
    /// Starts the writer task on the current Tokio runtime (call it from
    /// within one: `tokio::spawn` panics outside a runtime).
    pub fn spawn<S: AuditStore + 'static>(store: S, options: WriterOptions) -> Self {
        Self::spawn_with_recorder(store, options, None)
    }

    /// As [`spawn`](Self::spawn), recording each commit's batch size and
    /// latency ([`BATCH_SIZE_METRIC`], [`COMMIT_SECONDS_METRIC`],
    /// [`COMMIT_FAILURES_METRIC`]) into `recorder`, or into the process's
    /// global `metrics` recorder (if one is installed) when `None`.
    pub fn spawn_with_recorder<S: AuditStore + 'static>(
        store: S,
        options: WriterOptions,
        recorder: Option<Arc<dyn metrics::Recorder + Send + Sync>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let queued = Arc::new(Notify::new());
        tokio::spawn(run(store, rx, options.max_batch.max(1), recorder, Arc::clone(&queued)));
        Self { tx, queued }
    }

    /// Seals `event` (in the caller's task) and queues it; returns its
    /// queue receipt once it is durable.
    pub async fn append(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        self.append_prepared(PreparedEvent::seal(event)?).await
    }

    /// Notified after each batch this writer queued: the sequencer in the
    /// same process integrates at once instead of at its next poll.
    pub fn queued_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.queued)
    }

    /// Queues a prepared event; returns its queue receipt once it is
    /// durable.
    pub async fn append_prepared(&self, event: PreparedEvent) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Message::Append(event, reply))
            .await
            .map_err(|_| StoreError::AuditWriterClosed)?;
        answer.await.map_err(|_| StoreError::AuditWriterClosed)?
    }

    /// Stops accepting appends, commits those already queued, and waits for
    /// the task to end. Appends through any clone fail afterwards.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.tx.send(Message::Close(done)).await.is_ok() {
            // An error means the task is already gone: closed either way.
            let _ = finished.await;
        }
    }

    /// Whether the writer no longer accepts appends.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Histogram: events per group commit.
pub const BATCH_SIZE_METRIC: &str = "warden_audit_batch_size";
/// Histogram: seconds per group commit (one durable transaction).
pub const COMMIT_SECONDS_METRIC: &str = "warden_audit_commit_duration_seconds";
/// Counter: group commits that failed (their appenders failed closed).
pub const COMMIT_FAILURES_METRIC: &str = "warden_audit_commit_failures_total";

/// Records one commit of `events` that took `seconds`.
fn record_commit(recorder: Option<&(dyn metrics::Recorder + Send + Sync)>, events: usize, seconds: f64, ok: bool) {
    let record = || {
        metrics::histogram!(BATCH_SIZE_METRIC).record(events as f64);
        metrics::histogram!(COMMIT_SECONDS_METRIC).record(seconds);
        if !ok {
            metrics::counter!(COMMIT_FAILURES_METRIC).increment(1);
        }
    };
    match recorder {
        Some(r) => metrics::with_local_recorder(r, record),
        None => record(),
    }
}

async fn run<S: AuditStore>(
    store: S,
    mut rx: mpsc::Receiver<Message>,
    max_batch: usize,
    recorder: Option<Arc<dyn metrics::Recorder + Send + Sync>>,
    queued: Arc<Notify>,
) {
    let mut inbox = Vec::with_capacity(max_batch);
    let mut closers = Vec::new();
    // Ends when every handle is dropped, or after a close once the queue is
    // drained.
    while rx.recv_many(&mut inbox, max_batch).await > 0 {
        // Appenders woken by the last commit are sending their next events:
        // let them run, and take what they send, until a round brings none.
        while inbox.len() < max_batch {
            tokio::task::yield_now().await;
            let before = inbox.len();
            while inbox.len() < max_batch {
                match rx.try_recv() {
                    Ok(message) => inbox.push(message),
                    Err(_) => break,
                }
            }
            if inbox.len() == before {
                break;
            }
        }
        let mut events = Vec::with_capacity(inbox.len());
        let mut replies = Vec::with_capacity(inbox.len());
        for message in inbox.drain(..) {
            match message {
                Message::Append(event, reply) => {
                    events.push(event);
                    replies.push(reply);
                }
                Message::Close(done) => {
                    rx.close();
                    closers.push(done);
                }
            }
        }
        if events.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let result = store.enqueue_batch(&events).await;
        record_commit(
            recorder.as_deref(),
            events.len(),
            started.elapsed().as_secs_f64(),
            result.is_ok(),
        );
        match result {
            Ok(receipts) if receipts.len() == replies.len() => {
                queued.notify_one();
                for (receipt, reply) in receipts.into_iter().zip(replies) {
                    // A caller that went away no longer needs its answer.
                    let _ = reply.send(Ok(receipt));
                }
            }
            Ok(receipts) => {
                queued.notify_one();
                let error = Arc::new(StoreError::Corrupt(format!(
                    "a batch of {} events was given {} receipts",
                    replies.len(),
                    receipts.len()
                )));
                answer_all(replies, &error);
            }
            Err(error) => answer_all(replies, &Arc::new(error)),
        }
    }
    for done in closers {
        let _ = done.send(());
    }
}

fn answer_all(replies: Vec<Reply>, error: &Arc<StoreError>) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::AuditAppend(Arc::clone(error))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use warden_audit::{EventKind, MemoryTree, NodeSource};

    /// A store that only appends, records its batch sizes, and fails on
    /// demand; each batch takes a few milliseconds, like a durable commit.
    #[derive(Clone, Default)]
    struct FakeStore {
        size: Arc<Mutex<u64>>,
        batches: Arc<Mutex<Vec<usize>>>,
        fail: Arc<AtomicBool>,
    }

    impl AuditStore for FakeStore {
        async fn append_batch(&self, _: &[PreparedEvent]) -> Result<Range<u64>, StoreError> {
            not_used_by_the_writer()
        }
        async fn integrate(&self, _: usize) -> Result<Integrated, StoreError> {
            not_used_by_the_writer()
        }
        async fn queue_status(&self) -> Result<QueueStatus, StoreError> {
            not_used_by_the_writer()
        }
        async fn queued_events(&self, _: u64, _: u32) -> Result<Vec<QueuedEvent>, StoreError> {
            not_used_by_the_writer()
        }
        async fn enqueue_batch(&self, events: &[PreparedEvent]) -> Result<Vec<u64>, StoreError> {
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Corrupt("disk on fire".into()));
            }
            self.batches.lock().unwrap().push(events.len());
            let mut size = self.size.lock().unwrap();
            let start = *size;
            *size += events.len() as u64;
            Ok((start..*size).collect())
        }
        async fn size(&self) -> Result<u64, StoreError> {
            Ok(*self.size.lock().unwrap())
        }
        async fn tree_head(&self) -> Result<TreeHead, StoreError> {
            not_used_by_the_writer()
        }
        async fn events(&self, _: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
            not_used_by_the_writer()
        }
        async fn audit_activity(&self, _: u64, _: u64, _: u64) -> Result<Vec<ActivityCount>, StoreError> {
            not_used_by_the_writer()
        }
        async fn leaf_hashes(&self, _: Range<u64>) -> Result<Vec<Hash>, StoreError> {
            not_used_by_the_writer()
        }
        async fn subtrees(&self, _: &[Subtree]) -> Result<Vec<Hash>, StoreError> {
            not_used_by_the_writer()
        }
        async fn put_checkpoint(&self, _: u64, _: u64, _: &str) -> Result<bool, StoreError> {
            not_used_by_the_writer()
        }
        async fn checkpoints(&self, _: u64, _: u32) -> Result<Vec<StoredCheckpoint>, StoreError> {
            not_used_by_the_writer()
        }
        async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
            not_used_by_the_writer()
        }
        async fn erase(&self, _: u64, _: &str, _: u64) -> Result<bool, StoreError> {
            not_used_by_the_writer()
        }
    }

    /// The writer only appends; a call to any reader is a test failure,
    /// reported as an error rather than a panic inside the writer task.
    fn not_used_by_the_writer<T>() -> Result<T, StoreError> {
        Err(StoreError::Corrupt("FakeStore: the writer called a read method".into()))
    }

    fn key(i: u64) -> AuditEvent {
        AuditEvent::new(i, EventKind::KeyRetired { kid: format!("k{i}") })
    }

    async fn append_all(writer: &AuditWriter, n: u64) -> Vec<Result<u64, StoreError>> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.append(&key(i)).await })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writer_groups_concurrent_appends_within_the_batch_limit() {
        let store = FakeStore::default();
        let options = WriterOptions {
            max_batch: 16,
            queue: 8,
        };
        let writer = AuditWriter::spawn(store.clone(), options);
        let mut indices: Vec<u64> = append_all(&writer, 200).await.into_iter().map(Result::unwrap).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..200).collect::<Vec<_>>());
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 200);
        assert!(batches.iter().all(|b| *b <= 16), "{batches:?}");
        assert!(batches.len() < 50, "appends were not grouped: {batches:?}");
        writer.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_fails_every_waiter_and_the_writer_recovers() {
        let store = FakeStore::default();
        let writer = AuditWriter::spawn(store.clone(), WriterOptions::default());
        store.fail.store(true, Ordering::SeqCst);
        for result in append_all(&writer, 30).await {
            match result {
                Err(StoreError::AuditAppend(e)) => assert!(e.to_string().contains("disk on fire")),
                other => panic!("expected the batch error, got {other:?}"),
            }
        }
        assert_eq!(store.size().await.unwrap(), 0);
        store.fail.store(false, Ordering::SeqCst);
        assert_eq!(writer.append(&key(1)).await.unwrap(), 0);
        writer.close().await;
        assert!(writer.is_closed());
        assert!(matches!(
            writer.append(&key(2)).await,
            Err(StoreError::AuditWriterClosed)
        ));
        writer.close().await;
    }

    /// A recorder keeping every sample as `(name, value)`.
    #[derive(Clone, Default)]
    struct Samples(Arc<Mutex<Vec<(String, f64)>>>);

    struct Sink(String, Samples);

    impl metrics::HistogramFn for Sink {
        fn record(&self, value: f64) {
            self.1.0.lock().unwrap().push((self.0.clone(), value));
        }
    }

    impl metrics::CounterFn for Sink {
        fn increment(&self, value: u64) {
            self.1.0.lock().unwrap().push((self.0.clone(), value as f64));
        }
        fn absolute(&self, value: u64) {
            self.increment(value);
        }
    }

    impl metrics::Recorder for Samples {
        fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
        fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
        fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
        fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
            metrics::Counter::from_arc(Arc::new(Sink(key.name().to_owned(), self.clone())))
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
            metrics::Histogram::from_arc(Arc::new(Sink(key.name().to_owned(), self.clone())))
        }
    }

    impl Samples {
        fn of(&self, name: &str) -> Vec<f64> {
            let all = self.0.lock().unwrap();
            all.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writer_records_batch_sizes_and_commit_times() {
        let store = FakeStore::default();
        let samples = Samples::default();
        let recorder: Arc<dyn metrics::Recorder + Send + Sync> = Arc::new(samples.clone());
        let writer = AuditWriter::spawn_with_recorder(store.clone(), WriterOptions::default(), Some(recorder));
        assert!(append_all(&writer, 50).await.iter().all(Result::is_ok));
        let sizes = samples.of(BATCH_SIZE_METRIC);
        let batches: Vec<f64> = store.batches.lock().unwrap().iter().map(|b| *b as f64).collect();
        assert_eq!(sizes, batches);
        let times = samples.of(COMMIT_SECONDS_METRIC);
        assert_eq!(times.len(), sizes.len());
        assert!(times.iter().all(|t| *t >= 0.003), "{times:?}");
        assert!(samples.of(COMMIT_FAILURES_METRIC).is_empty());
        store.fail.store(true, Ordering::SeqCst);
        assert!(writer.append(&key(99)).await.is_err());
        assert_eq!(samples.of(COMMIT_FAILURES_METRIC), vec![1.0]);
        writer.close().await;
    }

    #[tokio::test]
    async fn close_commits_what_was_queued() {
        let store = FakeStore::default();
        let writer = AuditWriter::spawn(store.clone(), WriterOptions::default());
        let pending: Vec<_> = (0..5)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.append(&key(i)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        writer.close().await;
        for task in pending {
            // Each was either committed before the close or refused by it;
            // none hangs.
            match task.await.unwrap() {
                Ok(index) => assert!(index < 5),
                Err(e) => assert!(matches!(e, StoreError::AuditWriterClosed), "{e}"),
            }
        }
    }

    fn leaf(i: u64) -> Hash {
        merkle::leaf_hash(&i.to_be_bytes())
    }

    #[test]
    fn batch_plans_store_exactly_the_complete_subtrees() {
        let n = 300u64;
        let tree = MemoryTree::from_leaves((0..n).map(leaf));
        for batch in [1usize, 2, 3, 7, 64, 300] {
            let mut frontier = Frontier::new().to_bytes();
            let mut size = 0u64;
            let mut stored = HashMap::new();
            let leaves: Vec<Hash> = (0..n).map(leaf).collect();
            for chunk in leaves.chunks(batch) {
                let plan = BatchPlan::new(size as i64, &frontier, chunk.iter()).unwrap();
                assert_eq!(plan.start, size);
                assert_eq!(plan.range(), size..size + chunk.len() as u64);
                for (level, index, hash) in plan.nodes {
                    assert!(level >= 1);
                    assert!(stored.insert((level, index), hash).is_none(), "stored twice");
                }
                size += chunk.len() as u64;
                assert_eq!(plan.frontier.size(), size);
                assert_eq!(plan.frontier.root(), merkle::root(&leaves[..size as usize]));
                frontier = plan.frontier.to_bytes();
            }
            // Every complete subtree of level >= 1, and nothing else.
            let mut expected = 0;
            for level in 1..10u32 {
                for index in 0..(n >> level) {
                    expected += 1;
                    let hash = stored.get(&(level, index)).copied();
                    assert_eq!(hash, tree.subtree(Subtree::new(level, index)).ok(), "{level}/{index}");
                }
            }
            assert_eq!(stored.len(), expected, "batch {batch}");
            assert_eq!(expected as u64, n - u64::from(n.count_ones()));
        }
    }

    #[test]
    fn batch_plan_rejects_a_state_that_disagrees() {
        let mut f = Frontier::new();
        f.push(leaf(0)).unwrap();
        assert!(matches!(
            BatchPlan::new(2, &f.to_bytes(), [leaf(1)].iter()),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            BatchPlan::new(1, &[1, 2, 3], [leaf(1)].iter()),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            BatchPlan::new(-1, &f.to_bytes(), [leaf(1)].iter()),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn runs_are_powers_of_two_after_the_full_ones() {
        let items: Vec<u32> = (0..1000).collect();
        let sizes: Vec<usize> = runs(&items, 256).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![256, 256, 256, 128, 64, 32, 8]);
        let joined: Vec<u32> = runs(&items, 256).flatten().copied().collect();
        assert_eq!(joined, items);
        assert_eq!(runs(&items[..0], 256).count(), 0);
        assert_eq!(runs(&items[..1], 256).map(<[u32]>::len).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn activity_params_are_checked() {
        assert_eq!(activity_params(100, 200, 10).unwrap(), (100, 200, 10));
        // A bucket longer than the range is shortened to it.
        assert_eq!(activity_params(100, 200, u64::MAX).unwrap(), (100, 200, 100));
        // Exactly MAX_ACTIVITY_BUCKETS buckets, the last one cut short.
        assert_eq!(activity_params(0, 19_999, 2).unwrap(), (0, 19_999, 2));
        for (since, until, bucket) in [(0, 10, 0), (10, 10, 1), (11, 10, 1), (0, 10_001, 1), (0, 20_001, 2)] {
            assert!(
                matches!(activity_params(since, until, bucket), Err(StoreError::InvalidQuery(_))),
                "{since} {until} {bucket}"
            );
        }
        assert!(matches!(
            activity_params(0, u64::MAX, u64::MAX),
            Err(StoreError::OutOfRange(u64::MAX))
        ));
    }

    #[test]
    fn activity_rows_are_sorted_bytewise_with_none_first() {
        let row = |b: i64, k: &str, o: Option<&str>| (b, k.to_owned(), o.map(str::to_owned), 1);
        let counts = activity_from_rows(vec![
            row(10, "token_issued", None),
            row(0, "tokenx", None),
            row(0, "access_decision", Some("deny")),
            row(0, "access_decision", None),
            row(0, "access_decision", Some("allow")),
            row(0, "token_issued", None),
        ])
        .unwrap();
        let order: Vec<(u64, &str, Option<&str>)> = counts
            .iter()
            .map(|c| (c.bucket_start, c.kind.as_str(), c.outcome.as_deref()))
            .collect();
        assert_eq!(
            order,
            vec![
                (0, "access_decision", None),
                (0, "access_decision", Some("allow")),
                (0, "access_decision", Some("deny")),
                (0, "token_issued", None),
                (0, "tokenx", None),
                (10, "token_issued", None),
            ]
        );
        assert!(matches!(
            activity_from_rows(vec![(0, "x".into(), None, -1)]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn range_nodes_cover_the_tree() {
        for size in 0..200u64 {
            let nodes = range_nodes(size);
            let mut pos = 0;
            for node in &nodes {
                assert_eq!(node.start(), pos);
                pos = node.end();
            }
            assert_eq!(pos, size);
        }
    }

    #[test]
    fn prepared_events_carry_their_query_columns() {
        let event = AuditEvent::new(
            1_800_000_000,
            EventKind::Approval {
                approver: "user:carol".into(),
                requester: "user:bob".into(),
                requester_actors: Vec::new(),
                resource: "ModelVersion::\"m/3\"".into(),
                action: "model.promote".into(),
                vote: "approve".into(),
                reason: "reviewed".into(),
                request_id: "pr-1".into(),
                approvals: 1,
                required: 2,
            },
        );
        let prepared = PreparedEvent::seal(&event).unwrap();
        assert_eq!(prepared.kind(), "approval");
        assert_eq!(prepared.subject(), Some("user:carol"));
        assert_eq!(prepared.resource(), Some("ModelVersion::\"m/3\""));
        assert_eq!(prepared.time(), 1_800_000_000);
        assert_eq!(prepared.body(), event.body().unwrap());
        assert_eq!(
            prepared.leaf_hash(),
            &warden_audit::leaf::event_leaf_hash(
                &Salt::from_bytes(prepared.salt_bytes().try_into().unwrap()),
                prepared.body()
            )
        );

        assert_eq!(prepared.outcome(), None);

        let key = AuditEvent::new(5, EventKind::KeyRetired { kid: "k1".into() });
        let prepared = PreparedEvent::seal(&key).unwrap();
        assert_eq!(
            (
                prepared.kind(),
                prepared.subject(),
                prepared.resource(),
                prepared.outcome()
            ),
            ("key_retired", None, None, None)
        );

        for (decision, outcome) in [(Decision::Allow, "allow"), (Decision::Deny, "deny")] {
            let access = AuditEvent::new(
                7,
                EventKind::AccessDecision {
                    principal: "user:alice".into(),
                    actor_chain: Vec::new(),
                    client_id: "cli".into(),
                    jti: "j-1".into(),
                    action: "inference.invoke".into(),
                    resource: "Endpoint::\"chat\"".into(),
                    decision,
                    policy_ids: Vec::new(),
                    request_id: "r-1".into(),
                    route: "/v1/chat".into(),
                    source_ip: std::net::IpAddr::from([192, 0, 2, 1]),
                    upstream_status: None,
                    purpose: None,
                },
            );
            let prepared = PreparedEvent::seal(&access).unwrap();
            assert_eq!(prepared.outcome(), Some(outcome));
            // The column agrees with the body, which migration 0006 reads.
            let body: serde_json::Value = serde_json::from_slice(prepared.body()).unwrap();
            assert_eq!(body["decision"], outcome);
        }

        // A leaf sealed from another event is refused, whether its time or
        // its type differs.
        let other = AuditEvent::new(6, EventKind::KeyRetired { kid: "k1".into() });
        let other_type = AuditEvent::new(
            5,
            EventKind::KeyCreated {
                kid: "k1".into(),
                alg: "EdDSA".into(),
            },
        );
        for other in [other, other_type] {
            assert!(matches!(
                PreparedEvent::from_sealed(&key, other.seal().unwrap()),
                Err(StoreError::InvalidAuditEvent(_))
            ));
        }
        assert!(matches!(
            PreparedEvent::from_sealed(&key, EventLeaf::seal(b"not json".to_vec()).unwrap()),
            Err(StoreError::InvalidAuditEvent(_))
        ));
    }
}
