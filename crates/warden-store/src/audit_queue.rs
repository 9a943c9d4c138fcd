//! The audit queue: where an acknowledged action's event waits, durable,
//! until the sequencer gives it a place in the Merkle log.
//!
//! Appending to the tree orders every appender on one state row and writes
//! the event's query indexes and the subtrees it completes; doing that in
//! each request's commit made the log the gateway's ceiling, and every
//! added replica slowed the rest (they all waited on that row). Following
//! Trillian's split of *queueing* and *integration* (the design
//! certificate-transparency logs and Rekor run):
//! - the request path only inserts the sealed event into `audit_queue`, a
//!   narrow table with no secondary index and no shared row (SQLite: the
//!   single writer, group-committed; PostgreSQL: plain inserts from every
//!   replica side by side). A change and its events commit in one
//!   transaction (the outbox: no change without its record, no record
//!   without its change);
//! - one sequencer at a time ([`AuditStore::integrate`]) takes the oldest
//!   queued events in a batch and appends them to the log as
//!   [`AuditStore::append_batch`] does (indices, leaves, subtrees, frontier,
//!   query columns) and deletes them from the queue in the same
//!   transaction, so an event is queued or integrated, never both, never
//!   neither. Only the leaf hashes leave the database (to plan the
//!   subtrees); the rows move by `INSERT … SELECT`, so an event's body
//!   crosses the wire once, when it is queued. Two sequencers at once (a lease that lapsed under a paused
//!   process) stay correct: each batch locks the log's state row first and
//!   takes only rows still queued.
//!
//! The queue's `seq` is a receipt, not a log index: on PostgreSQL a lower
//! `seq` can commit after a higher one has been integrated, and is
//! integrated in a later batch. The log's order is the order of
//! integration.

use std::ops::Range;

use warden_audit::Salt;

use crate::error::StoreError;

/// Most events one integration batch moves into the log.
pub const MAX_INTEGRATION_BATCH: usize = 4096;

/// Queued events counted at most by [`AuditStore::queue_status`](crate::AuditStore::queue_status);
/// a deeper queue reports this many.
pub const MAX_COUNTED_DEPTH: u64 = 1_000_000;

/// The queue at one moment: how many events wait and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStatus {
    /// Events queued and not yet integrated (at most
    /// [`MAX_COUNTED_DEPTH`]).
    pub depth: u64,
    /// When the oldest queued event was queued, milliseconds since the Unix
    /// epoch; `None` for an empty queue.
    pub oldest_queued_at_ms: Option<u64>,
}

impl QueuedEvent {
    /// Whether this event passes `query`'s filters (its `from`, `before`
    /// and `limit` are about log indices, which a queued event has not).
    pub fn matches(&self, query: &crate::EventQuery) -> bool {
        let is = |filter: &Option<String>, column: &Option<String>| {
            filter.as_ref().is_none_or(|f| column.as_ref() == Some(f))
        };
        query.kind.as_ref().is_none_or(|k| *k == self.kind)
            && is(&query.subject, &self.subject)
            && is(&query.resource, &self.resource)
            && is(&query.outcome, &self.outcome)
            && is(&query.actor, &self.actor)
            && query.since.is_none_or(|t| self.time >= t)
            && query.until.is_none_or(|t| self.time < t)
    }
}

impl QueueStatus {
    /// How long the oldest queued event has waited at `now_ms`: the
    /// integration lag (0 for an empty queue).
    pub fn lag_ms(&self, now_ms: u64) -> u64 {
        self.oldest_queued_at_ms.map_or(0, |t| now_ms.saturating_sub(t))
    }
}

/// An event still in the queue, as readers see it: pending, with no log
/// index yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Its receipt in the queue.
    pub seq: u64,
    /// When it was queued, milliseconds since the Unix epoch.
    pub queued_at_ms: u64,
    /// Event time, seconds since the Unix epoch.
    pub time: u64,
    /// Event type.
    pub kind: String,
    /// Subject column.
    pub subject: Option<String>,
    /// Resource column.
    pub resource: Option<String>,
    /// Outcome column (`allow`/`deny` for access decisions).
    pub outcome: Option<String>,
    /// Actor column (the outermost actor of a delegation).
    pub actor: Option<String>,
    /// Canonical body.
    pub body: Vec<u8>,
    /// Its salt.
    pub salt: Salt,
    /// The leaf hash it will add to the tree.
    pub leaf_hash: warden_audit::Hash,
}

/// A row of `audit_queue` as both backends read it: seq, queued_at, time,
/// type, subject, resource, outcome, actor, body, salt, leaf_hash.
pub(crate) type QueueRow = (
    i64,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
);

/// The columns of [`QueueRow`], for `SELECT` and `RETURNING`.
pub(crate) const QUEUE_COLUMNS: &str =
    "seq, queued_at, time, type, subject, resource, outcome, actor, body, salt, leaf_hash";

/// Depth (capped) and the oldest entry's queue time; the same text on both
/// backends. The oldest is the lowest `seq`, found through the primary key.
pub(crate) const QUEUE_STATUS: &str = "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM audit_queue LIMIT 1000000) AS q), \
     (SELECT queued_at FROM audit_queue ORDER BY seq LIMIT 1)";

/// The leaf hashes of `(seq, leaf_hash)` rows, in their order: what the
/// sequencer plans a batch's subtrees from (the rows themselves move into
/// the log inside the database).
pub(crate) fn leaf_hashes_of(rows: &[(i64, Vec<u8>)]) -> Result<Vec<warden_audit::Hash>, StoreError> {
    rows.iter()
        .map(|(seq, hash)| {
            <warden_audit::Hash>::try_from(hash.as_slice())
                .map_err(|_| StoreError::Corrupt(format!("queued audit event {seq}: the leaf hash is not 32 bytes")))
        })
        .collect()
}

/// A queued event for readers.
pub(crate) fn queued_from_row(row: QueueRow) -> Result<QueuedEvent, StoreError> {
    let (seq, queued_at, time, kind, subject, resource, outcome, actor, body, salt, leaf_hash) = row;
    let corrupt = |what: &str| StoreError::Corrupt(format!("queued audit event {seq}: {what}"));
    let salt = <[u8; 32]>::try_from(salt.as_slice()).map_err(|_| corrupt("the salt is not 32 bytes"))?;
    Ok(QueuedEvent {
        seq: u64::try_from(seq).map_err(|_| corrupt("negative sequence number"))?,
        queued_at_ms: u64::try_from(queued_at).map_err(|_| corrupt("negative queue time"))?,
        time: u64::try_from(time).map_err(|_| corrupt("negative event time"))?,
        kind,
        subject,
        resource,
        outcome,
        actor,
        body,
        salt: Salt::from_bytes(salt),
        leaf_hash: <warden_audit::Hash>::try_from(leaf_hash.as_slice())
            .map_err(|_| corrupt("the leaf hash is not 32 bytes"))?,
    })
}

/// The queue status from its row.
pub(crate) fn status_from_row((depth, oldest): (i64, Option<i64>)) -> Result<QueueStatus, StoreError> {
    let corrupt = || StoreError::Corrupt("negative audit queue depth or time".into());
    Ok(QueueStatus {
        depth: u64::try_from(depth).map_err(|_| corrupt())?,
        oldest_queued_at_ms: oldest.map(u64::try_from).transpose().map_err(|_| corrupt())?,
    })
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What one integration did: the log indices it gave (empty when the queue
/// was empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrated {
    /// Indices of the events moved into the log.
    pub indices: Range<u64>,
}

impl Integrated {
    /// How many events were integrated.
    pub fn count(&self) -> u64 {
        self.indices.end - self.indices.start
    }
}
