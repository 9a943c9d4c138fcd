//! Verification of a whole audit log, for `warden audit verify` and the
//! dashboard.
//!
//! [`warden_audit::verify_log`] does the cryptography (leaves from bodies,
//! the tree, every checkpoint's signature, root and consistency). Around
//! it, this module checks what only a whole log can show: that the `time`
//! and `type` stored beside each body are the body's, that every erased
//! body is accounted for by an `erasure` event (a body removed by hand
//! looks like an erasure otherwise), and that the log has as many events
//! as its stored state (or an export's header) says, with the same root.
//!
//! [`verify_store_log`] verifies a store's log: records are streamed, a
//! page at a time, to a blocking thread that hashes them while the next
//! page is read, and progress is reported through [`VerifyProgress`].
//! [`verify_entries`] is the synchronous core over any stream of
//! [`Entry`], which the CLI also feeds from an export file.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use warden_audit::leaf::event_leaf_hash;
use warden_audit::{
    AuditError, AuditEvent, EntryProblem, EventKind, Hash, NoteVerifier, Record, VerifyReport, verify_log,
};

use crate::audit::{AuditStore, EventQuery, MAX_PAGE, StoredEvent};
use crate::error::StoreError;

/// Records between two progress updates.
const PROGRESS_STEP: u64 = 4096;

/// Where a verification reports its progress. Called from the
/// verification thread.
pub trait VerifyProgress: Send + Sync {
    /// The number of events to check, once known.
    fn total(&self, events: u64);
    /// Events checked so far: every few thousand events, and once at the
    /// end (the total when the whole log verified).
    fn checked(&self, events: u64);
}

/// A [`VerifyProgress`] that keeps the latest counts, to be polled.
#[derive(Debug, Default)]
pub struct ProgressCounter {
    total: AtomicU64,
    checked: AtomicU64,
}

impl ProgressCounter {
    /// Zero of zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// `(checked, total)` so far; the total is 0 until known.
    pub fn get(&self) -> (u64, u64) {
        (self.checked.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

impl VerifyProgress for ProgressCounter {
    fn total(&self, events: u64) {
        self.total.store(events, Ordering::Relaxed);
    }

    fn checked(&self, events: u64) {
        self.checked.store(events, Ordering::Relaxed);
    }
}

/// The verdict on a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Every check passed.
    Verified(VerifyReport),
    /// The first problem found, naming the log entry (`log entry N: …`) or
    /// the checkpoint.
    Failed(String),
}

impl VerifyOutcome {
    /// The outcome of [`verify_entries`]' result; `Err` when the records
    /// could not be read.
    pub fn from_verdict<E>(verdict: Result<VerifyReport, Stop<E>>) -> Result<Self, E> {
        match verdict {
            Ok(report) => Ok(VerifyOutcome::Verified(report)),
            Err(Stop::Bad(message)) => Ok(VerifyOutcome::Failed(message)),
            Err(Stop::Failed(error)) => Err(error),
        }
    }
}

/// Why a store's log could not be verified (as opposed to failing
/// verification, a [`VerifyOutcome::Failed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading the checkpoints or the tree head failed; or, for
    /// [`verify_keyless_store_log`], a checkpoint is stored
    /// ([`StoreError::NoAuditKey`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the events failed part-way.
    #[error("reading the audit log")]
    Read(#[source] StoreError),
    /// The verification thread panicked or was cancelled.
    #[error("the verification task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// One record to verify, with the columns stored beside its body.
#[derive(Debug)]
pub struct Entry {
    /// Index, leaf hash and (unless erased) body and salt.
    pub record: Record,
    /// The time stored beside the body.
    pub time: u64,
    /// The type stored beside the body.
    pub kind: String,
}

impl From<StoredEvent> for Entry {
    fn from(event: StoredEvent) -> Self {
        Entry {
            time: event.time,
            kind: event.kind.clone(),
            record: event.into_record(),
        }
    }
}

/// Why a verification stopped before [`verify_log`] could finish.
#[derive(Debug)]
pub enum Stop<E> {
    /// The log (or export) is wrong: this message names the first problem.
    Bad(String),
    /// The records could not be read.
    Failed(E),
}

/// The members of a body that are checked against its columns.
#[derive(Deserialize)]
struct BodyHead<'a> {
    time: u64,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// Wraps the record stream given to [`verify_log`]: checks each record's
/// columns against its body, notes erasures and the erasure events that
/// account for them, reports progress, and stops the stream at the first
/// problem it finds itself (remembered in `stop`).
struct Audited<'p, I, E> {
    inner: I,
    stop: Option<Stop<E>>,
    erased: Vec<u64>,
    accounted: HashSet<u64>,
    seen: u64,
    progress: &'p dyn VerifyProgress,
}

impl<'p, I, E> Audited<'p, I, E>
where
    I: Iterator<Item = Result<Entry, Stop<E>>>,
{
    fn new(inner: I, progress: &'p dyn VerifyProgress) -> Self {
        Audited {
            inner,
            stop: None,
            erased: Vec::new(),
            accounted: HashSet::new(),
            seen: 0,
            progress,
        }
    }

    /// Checks one entry; the message names its index.
    fn check(&mut self, entry: &Entry) -> Result<(), String> {
        let index = entry.record.index;
        let Some((body, salt)) = &entry.record.content else {
            self.erased.push(index);
            return Ok(());
        };
        // A changed body is reported as such, whatever else is wrong with it.
        let tampered = || {
            (event_leaf_hash(salt, body) != entry.record.leaf_hash)
                .then_some(AuditError::Entry {
                    index,
                    problem: EntryProblem::Tampered,
                })
                .map(|e| e.to_string())
        };
        let Ok(head) = serde_json::from_slice::<BodyHead<'_>>(body) else {
            return Err(tampered().unwrap_or_else(|| format!("log entry {index}: the body is not an event")));
        };
        if head.time != entry.time || head.kind != entry.kind {
            return Err(tampered().unwrap_or_else(|| {
                format!("log entry {index}: the time or type stored beside the body differs from the body's")
            }));
        }
        if head.kind == "erasure" {
            match AuditEvent::from_body(body) {
                Ok(AuditEvent {
                    kind: EventKind::Erasure { index: erased, .. },
                    ..
                }) => {
                    self.accounted.insert(erased);
                }
                _ => {
                    return Err(tampered().unwrap_or_else(|| format!("log entry {index}: malformed erasure event")));
                }
            }
        }
        Ok(())
    }

    /// The verdict, once `verify_log` has returned `result` over this stream.
    /// `expected` is the size and root the log's state (or the export's
    /// header) claims.
    fn conclude(
        mut self,
        result: Result<VerifyReport, AuditError>,
        checkpoint_sizes: &[u64],
        expected: Option<(u64, Hash)>,
        claimed_by: &str,
    ) -> Result<VerifyReport, Stop<E>> {
        self.progress.checked(self.seen);
        // A stream stopped by this wrapper ends early: `verify_log` can then
        // only have found the end missing, which the stop explains.
        if let Some(stop) = self.stop.take() {
            return Err(stop);
        }
        let report = result.map_err(|e| match &e {
            // A note that does not open says nothing trustworthy about its
            // size: name the size it is stored under.
            AuditError::CheckpointRejected { position, .. } => match checkpoint_sizes.get(*position) {
                Some(size) => Stop::Bad(format!("{e} (the checkpoint stored for size {size})")),
                None => Stop::Bad(e.to_string()),
            },
            _ => Stop::Bad(e.to_string()),
        })?;
        if let Some(index) = self.erased.iter().find(|i| !self.accounted.contains(i)) {
            return Err(Stop::Bad(format!(
                "log entry {index}: the body was removed, but no erasure event records it"
            )));
        }
        if let Some((size, root)) = expected {
            if report.leaves < size {
                return Err(Stop::Bad(format!(
                    "log entry {}: missing; {claimed_by} records {size} events",
                    report.leaves
                )));
            }
            if report.leaves > size {
                return Err(Stop::Bad(format!(
                    "log entry {size}: {claimed_by} records {size} events, but there are {}",
                    report.leaves
                )));
            }
            if report.root != root {
                return Err(Stop::Bad(format!(
                    "the root of the {size} events differs from the one {claimed_by} records"
                )));
            }
        }
        Ok(report)
    }
}

impl<I, E> Iterator for Audited<'_, I, E>
where
    I: Iterator<Item = Result<Entry, Stop<E>>>,
{
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.stop.is_some() {
            return None;
        }
        let entry = match self.inner.next()? {
            Ok(entry) => entry,
            Err(stop) => {
                self.stop = Some(stop);
                return None;
            }
        };
        if let Err(message) = self.check(&entry) {
            self.stop = Some(Stop::Bad(message));
            return None;
        }
        self.seen += 1;
        if self.seen.is_multiple_of(PROGRESS_STEP) {
            self.progress.checked(self.seen);
        }
        Some(entry.record)
    }
}

/// Runs [`verify_log`] over `entries` with the extra checks, on this
/// thread (it hashes every body: call it off the async threads).
/// `checkpoints` are `(size stored, note)`, by size; `expected` is the size
/// and root that `claimed_by` (e.g. "the log's stored state") claims.
/// Progress goes to `progress` (its total is the caller's to set).
pub fn verify_entries<E>(
    entries: impl Iterator<Item = Result<Entry, Stop<E>>>,
    checkpoints: &[(u64, String)],
    verifier: &NoteVerifier,
    expected: Option<(u64, Hash)>,
    claimed_by: &str,
    progress: &dyn VerifyProgress,
) -> Result<VerifyReport, Stop<E>> {
    let (sizes, notes): (Vec<u64>, Vec<&str>) = checkpoints.iter().map(|(s, n)| (*s, n.as_str())).unzip();
    let mut audited = Audited::new(entries, progress);
    let result = verify_log(&mut audited, &notes, verifier, verifier.name());
    audited.conclude(result, &sizes, expected, claimed_by)
}

/// Verifies the log in `store`: every event up to the stored tree head,
/// every checkpoint (each must verify with `verifier`), and that the
/// events make the stored size and root. The hashing runs on a blocking
/// thread; `progress` gets the total (the tree size) and then the count
/// of events checked.
///
/// `Ok(VerifyOutcome::Failed)` is a log that fails verification; `Err` is
/// a log that could not be read.
pub async fn verify_store_log<S: AuditStore + Clone + 'static>(
    store: S,
    verifier: NoteVerifier,
    progress: Arc<dyn VerifyProgress>,
) -> Result<VerifyOutcome, VerifyError> {
    verify_store(store, verifier, true, progress).await
}

/// [`verify_store_log`] for a log whose signing key does not exist yet, so
/// that no checkpoint can have been signed: `verifier` is any verifier of
/// the log's origin (no signature is checked with it). A stored
/// checkpoint is refused with [`StoreError::NoAuditKey`].
pub async fn verify_keyless_store_log<S: AuditStore + Clone + 'static>(
    store: S,
    verifier: NoteVerifier,
    progress: Arc<dyn VerifyProgress>,
) -> Result<VerifyOutcome, VerifyError> {
    verify_store(store, verifier, false, progress).await
}

async fn verify_store<S: AuditStore + Clone + 'static>(
    store: S,
    verifier: NoteVerifier,
    keyed: bool,
    progress: Arc<dyn VerifyProgress>,
) -> Result<VerifyOutcome, VerifyError> {
    // Checkpoints before the tree head: every checkpoint read is then
    // covered by the events read, whatever is appended meanwhile.
    let checkpoints = all_checkpoints(&store).await?;
    if !keyed && !checkpoints.is_empty() {
        return Err(StoreError::NoAuditKey.into());
    }
    let head = store.tree_head().await?;
    progress.total(head.size);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<StoredEvent>, StoreError>>(2);
    let producer = tokio::spawn(read_pages(store, head.size, tx));
    let verdict = tokio::task::spawn_blocking(move || {
        let mut page = Vec::new().into_iter();
        let entries = std::iter::from_fn(move || {
            loop {
                if let Some(event) = page.next() {
                    return Some(Ok(Entry::from(event)));
                }
                match rx.blocking_recv()? {
                    Ok(next) => page = next.into_iter(),
                    Err(e) => return Some(Err(Stop::Failed(e))),
                }
            }
        });
        verify_entries(
            entries,
            &checkpoints,
            &verifier,
            Some((head.size, head.root)),
            "the log's stored state",
            &*progress,
        )
    })
    .await;
    producer.abort();
    VerifyOutcome::from_verdict(verdict.map_err(VerifyError::Task)?).map_err(VerifyError::Read)
}

/// What [`verify_queue`] found in the audit queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueVerdict {
    /// Every queued event's leaf hash is its salted body's, and its stored
    /// time and type are its body's.
    Verified {
        /// Events checked (all that were queued when read).
        queued: u64,
    },
    /// The first queued event that does not hold.
    Failed(String),
}

/// Checks the events still queued for integration (acknowledged, not yet
/// in the tree, so no checkpoint covers them): each one's leaf hash must
/// be that of its salt and body, and the time and type stored beside the
/// body must be the body's. Events integrated while this reads are left
/// to the log's verification.
pub async fn verify_queue<S: AuditStore>(store: &S) -> Result<QueueVerdict, StoreError> {
    let mut after = 0;
    let mut queued = 0u64;
    // Bounded: each page moves `after` past at least one receipt.
    for _ in 0..=(crate::audit_queue::MAX_COUNTED_DEPTH / u64::from(MAX_PAGE) + 1) {
        let page = store.queued_events(after, MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let full = page.len() == MAX_PAGE as usize;
        for event in &page {
            if event_leaf_hash(&event.salt, &event.body) != event.leaf_hash {
                return Ok(QueueVerdict::Failed(format!(
                    "queued event {}: the leaf hash is not that of its body",
                    event.seq
                )));
            }
            match serde_json::from_slice::<BodyHead<'_>>(&event.body) {
                Ok(head) if head.time == event.time && head.kind == event.kind => {}
                _ => {
                    return Ok(QueueVerdict::Failed(format!(
                        "queued event {}: the stored time or type is not its body's",
                        event.seq
                    )));
                }
            }
            queued += 1;
        }
        if !full {
            break;
        }
    }
    Ok(QueueVerdict::Verified { queued })
}

/// Every stored checkpoint, `(size, note)`, by size.
async fn all_checkpoints<S: AuditStore>(store: &S) -> Result<Vec<(u64, String)>, StoreError> {
    let mut all = Vec::new();
    let mut from_size = 0;
    loop {
        let page = store.checkpoints(from_size, MAX_PAGE).await?;
        let full = page.len() == MAX_PAGE as usize;
        let Some(last) = page.last() else { break };
        from_size = last.size + 1;
        all.extend(page.into_iter().map(|cp| (cp.size, cp.note)));
        if !full {
            break;
        }
    }
    Ok(all)
}

/// Sends the events `[0, end)` in pages, in index order, until the end,
/// an error, or the receiver goes away.
async fn read_pages<S: AuditStore>(
    store: S,
    end: u64,
    tx: tokio::sync::mpsc::Sender<Result<Vec<StoredEvent>, StoreError>>,
) {
    let mut from = 0;
    while from < end {
        let limit = u32::try_from(end - from).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let page = match store.events(&EventQuery::page(from, limit)).await {
            Ok(page) => page,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let Some(last) = page.last() else { return };
        from = last.index.saturating_add(1);
        let full = page.len() == limit as usize;
        let page: Vec<StoredEvent> = page.into_iter().filter(|e| e.index < end).collect();
        if page.is_empty() || tx.send(Ok(page)).await.is_err() || !full {
            return;
        }
    }
}
