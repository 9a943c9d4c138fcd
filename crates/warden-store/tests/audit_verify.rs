//! `audit_verify::verify_store_log` on an SQLite log in a temp dir: an
//! intact log verifies with its checkpoints and its progress reaches the
//! total; a body changed behind Warden's back fails, naming the entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};

use warden_audit::{AuditEvent, EventKind};
use warden_keys::MasterKey;
use warden_store::audit_verify::{
    ProgressCounter, VerifyError, VerifyOutcome, VerifyProgress, verify_keyless_store_log, verify_store_log,
};
use warden_store::sqlite::SqliteStore;
use warden_store::{AuditSigner, AuditStore, PreparedEvent, StoreError, sign_checkpoint};

const ORIGIN: &str = "warden.example/audit";

/// More than one page of events (`MAX_PAGE`), and more than a progress step.
const EVENTS: u64 = 12_345;

/// A progress sink that remembers every call.
#[derive(Default)]
struct Recorder {
    totals: Mutex<Vec<u64>>,
    checked: Mutex<Vec<u64>>,
}

impl VerifyProgress for Recorder {
    fn total(&self, events: u64) {
        self.totals.lock().unwrap().push(events);
    }

    fn checked(&self, events: u64) {
        self.checked.lock().unwrap().push(events);
    }
}

async fn open() -> (tempfile::TempDir, String, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    (dir, url, store)
}

async fn append(store: &SqliteStore, from: u64, n: u64) {
    let events: Vec<_> = (from..from + n)
        .map(|i| PreparedEvent::seal(&AuditEvent::new(i, EventKind::KeyRetired { kid: format!("k{i}") })).unwrap())
        .collect();
    store.append_batch(&events).await.unwrap();
}

/// A log of `EVENTS` events with checkpoints at 1,000 and at the end.
async fn signed_log(store: &SqliteStore) -> AuditSigner {
    let master = MasterKey::generate().unwrap();
    let signer = AuditSigner::load_or_create(store, &master, ORIGIN, true).await.unwrap();
    append(store, 0, 1_000).await;
    sign_checkpoint(store, &signer, 1).await.unwrap().unwrap();
    let mut from = 1_000;
    while from < EVENTS {
        let n = (EVENTS - from).min(2_000);
        append(store, from, n).await;
        from += n;
    }
    sign_checkpoint(store, &signer, 2).await.unwrap().unwrap();
    signer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_log_verifies_and_its_progress_reaches_the_total() {
    let (_dir, _url, store) = open().await;
    let signer = signed_log(&store).await;
    let progress = Arc::new(Recorder::default());
    let outcome = verify_store_log(store.clone(), signer.verifier(), progress.clone())
        .await
        .unwrap();
    let VerifyOutcome::Verified(report) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!((report.leaves, report.erased, report.checkpoints), (EVENTS, 0, 2));
    assert_eq!(report.root, store.tree_head().await.unwrap().root);
    assert_eq!(*progress.totals.lock().unwrap(), [EVENTS]);
    let checked = progress.checked.lock().unwrap().clone();
    assert_eq!(checked, [4096, 8192, 12_288, EVENTS]);

    // The polling counter ends at the total too.
    let counter = Arc::new(ProgressCounter::new());
    let outcome = verify_store_log(store.clone(), signer.verifier(), counter.clone())
        .await
        .unwrap();
    assert!(matches!(outcome, VerifyOutcome::Verified(_)), "{outcome:?}");
    assert_eq!(counter.get(), (EVENTS, EVENTS));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_changed_by_sql_fails_naming_its_entry() {
    let (_dir, url, store) = open().await;
    let signer = signed_log(&store).await;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let changed = sqlx::query(
        "UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'k10001', 'k10002') AS BLOB) \
         WHERE idx = 10001",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;

    let counter = Arc::new(ProgressCounter::new());
    let outcome = verify_store_log(store.clone(), signer.verifier(), counter.clone())
        .await
        .unwrap();
    let VerifyOutcome::Failed(message) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(message.starts_with("log entry 10001:"), "{message}");
    // Progress stops where the problem is.
    let (checked, total) = counter.get();
    assert!(
        checked > 10_000 && checked < EVENTS && total == EVENTS,
        "{checked}/{total}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_must_verify_with_the_key_given() {
    let (_dir, _url, store) = open().await;
    signed_log(&store).await;
    let other = tempfile::tempdir().unwrap();
    let other_url = format!("sqlite://{}", other.path().join("other.db").display());
    let other_store = SqliteStore::connect(&other_url).await.unwrap();
    let other_signer = AuditSigner::load_or_create(&other_store, &MasterKey::generate().unwrap(), ORIGIN, true)
        .await
        .unwrap();
    let outcome = verify_store_log(store.clone(), other_signer.verifier(), Arc::new(ProgressCounter::new()))
        .await
        .unwrap();
    let VerifyOutcome::Failed(message) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(message.contains("checkpoint"), "{message}");
    other_store.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_log_verifies_until_a_checkpoint_is_stored() {
    let (_dir, _url, store) = open().await;
    append(&store, 0, 10).await;
    // Any verifier of the origin will do: nothing is signed.
    let other = tempfile::tempdir().unwrap();
    let other_url = format!("sqlite://{}", other.path().join("other.db").display());
    let other_store = SqliteStore::connect(&other_url).await.unwrap();
    let placeholder = AuditSigner::load_or_create(&other_store, &MasterKey::generate().unwrap(), ORIGIN, true)
        .await
        .unwrap();
    let outcome = verify_keyless_store_log(store.clone(), placeholder.verifier(), Arc::new(ProgressCounter::new()))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, VerifyOutcome::Verified(r) if r.leaves == 10 && r.checkpoints == 0),
        "{outcome:?}"
    );

    let signer = AuditSigner::load_or_create(&store, &MasterKey::generate().unwrap(), ORIGIN, true)
        .await
        .unwrap();
    sign_checkpoint(&store, &signer, 1).await.unwrap().unwrap();
    let err = verify_keyless_store_log(store.clone(), placeholder.verifier(), Arc::new(ProgressCounter::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::Store(StoreError::NoAuditKey)), "{err}");
    other_store.close().await;
    store.close().await;
}
