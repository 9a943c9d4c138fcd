//! The audit-log key and checkpoint signing on every backend, with two
//! stores on one database standing for two replicas: SQLite in a temp dir
//! and PostgreSQL in a fresh schema per test (`WARDEN_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`; unreachable fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use warden_audit::{AuditEvent, Checkpoint, EventKind, verify_log};
use warden_keys::MasterKey;
use warden_store::{
    AUDIT_KEY_SETTING, AuditSigner, AuditStore, EventQuery, PreparedEvent, Store, StoreError, sign_checkpoint,
};
use warden_test_support::store::Harness;

const ORIGIN: &str = "warden.example/audit";

async fn append(store: &impl AuditStore, n: u64) {
    let events: Vec<_> = (0..n)
        .map(|i| PreparedEvent::seal(&AuditEvent::new(i, EventKind::KeyRetired { kid: format!("k{i}") })).unwrap())
        .collect();
    store.append_batch(&events).await.unwrap();
}

async fn settings_are_write_once<S: Store>(a: S, _b: S) {
    assert_eq!(a.get_setting("x").await.unwrap(), None);
    assert!(a.insert_setting_if_absent("x", "first").await.unwrap());
    assert!(!a.insert_setting_if_absent("x", "second").await.unwrap());
    assert_eq!(a.get_setting("x").await.unwrap().as_deref(), Some("first"));
}

async fn replicas_racing_end_with_one_key<S: Store>(a: S, b: S) {
    let master = MasterKey::generate().unwrap();
    let (ka, kb) = tokio::join!(
        AuditSigner::load_or_create(&a, &master, ORIGIN, true),
        AuditSigner::load_or_create(&b, &master, ORIGIN, true)
    );
    let (ka, kb) = (ka.unwrap(), kb.unwrap());
    assert_eq!(ka.vkey(), kb.vkey());
    assert_eq!(ka.origin(), ORIGIN);
    assert!(a.get_setting(AUDIT_KEY_SETTING).await.unwrap().is_some());
    // Reopened later, without creating, it is the same key.
    let again = AuditSigner::load_or_create(&b, &master, ORIGIN, false).await.unwrap();
    assert_eq!(again.vkey(), ka.vkey());
    // Another origin is refused, naming the stored one.
    let err = AuditSigner::load_or_create(&a, &master, "other.example/audit", true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::AuditOriginMismatch { stored, .. } if stored == ORIGIN),
        "{err}"
    );
}

async fn replicas_signing_at_once_store_one_checkpoint<S: Store>(a: S, b: S) {
    let master = MasterKey::generate().unwrap();
    let signer = AuditSigner::load_or_create(&a, &master, ORIGIN, true).await.unwrap();
    append(&a, 5).await;
    let (x, y) = tokio::join!(sign_checkpoint(&a, &signer, 10), sign_checkpoint(&b, &signer, 11));
    let signed: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert!(!signed.is_empty() && signed.iter().all(|cp| cp.size == 5), "{signed:?}");
    let stored = a.checkpoints(0, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    append(&b, 3).await;
    let next = sign_checkpoint(&b, &signer, 12).await.unwrap().unwrap();
    assert_eq!(next.size, 8);
    // The whole log and both checkpoints verify with the published key.
    let records = a
        .events(&EventQuery::page(0, 100))
        .await
        .unwrap()
        .into_iter()
        .map(warden_store::StoredEvent::into_record);
    let notes: Vec<String> = a
        .checkpoints(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.note)
        .collect();
    let report = verify_log(records, &notes, &signer.verifier(), ORIGIN).unwrap();
    assert_eq!((report.leaves, report.checkpoints), (8, 2));
    assert_eq!(Checkpoint::open(&next.note, &signer.verifier()).unwrap().size, 8);
}

/// Runs `body` with two stores on one fresh database, standing for two
/// replicas.
async fn two_replicas<H: Harness, F, Fut>(body: F)
where
    F: FnOnce(H::S, H::S) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let h = H::start().await;
    let b = h.another().await;
    body(h.store().clone(), b.clone()).await;
    H::close_store(&b).await;
    h.finish().await;
}

warden_test_support::each_backend! {
    with two_replicas;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    settings_are_write_once,
    replicas_racing_end_with_one_key,
    replicas_signing_at_once_store_one_checkpoint;
}
