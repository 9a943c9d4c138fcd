//! The governance-registry storage suite, run against every backend:
//! SQLite in a temp dir and PostgreSQL in a fresh schema per test
//! (`WARDEN_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). A PostgreSQL that cannot be
//! reached fails the suite; it is never skipped.
//!
//! The four-eyes rule itself is tested in `warden-registry`; here it is
//! checked through the store, where it must hold under concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::json;
use warden_audit::{AuditEvent, EventKind};
use warden_registry::{
    Classification, Dataset, DatasetPatch, DatasetSpec, DatasetVersion, DatasetVersionSpec, Direction, Edge, Model,
    ModelSpec, ModelVersion, ModelVersionSpec, NodeRef, PromotionRequest, RegistryError, RequestStatus, Stage, Vote,
    VoteOutcome, Voter,
};
use warden_store::oauth::{Family, NewRefresh, Redeemed};
use warden_store::{AuditStore, EventQuery, OAuthStore, RegistryStore, Rollback, StageChange, StoreError};
use warden_test_support::db::TestDb;
use warden_test_support::store::Harness;

const T0: u64 = 1_700_000_000;
const TTL: u64 = 3600;

fn dataset(name: &str) -> Dataset {
    DatasetSpec {
        name: name.into(),
        owner: None,
        classification: Classification::Pii,
        allowed_purposes: vec!["fraud".into(), "audit".into()],
        tenant: Some("acme".into()),
        description: Some(format!("the {name} data")),
    }
    .validate("user:alice", T0)
    .unwrap()
}

fn model(name: &str) -> Model {
    ModelSpec {
        name: name.into(),
        owner: Some("team:ml".into()),
        tenant: None,
        description: None,
    }
    .validate("user:alice", T0)
    .unwrap()
}

fn digest(n: u64) -> String {
    format!("sha256:{n:064x}")
}

fn dv_spec(parents: &[NodeRef]) -> DatasetVersionSpec {
    DatasetVersionSpec {
        digest: digest(1),
        size: 1234,
        uri: "s3://bucket/data".into(),
        parents: parents.to_vec(),
    }
}

fn mv_spec(trained_from: &[NodeRef]) -> ModelVersionSpec {
    ModelVersionSpec {
        digest: digest(2),
        uri: "s3://models/m".into(),
        framework: Some("pytorch".into()),
        metrics: json!({"auc": 0.91, "notes": {"k": [1, 2]}}),
        trained_from: trained_from.to_vec(),
        training_run: Some("run-7".into()),
    }
}

/// Creates the dataset if needed and adds a version; returns its node.
async fn add_dv<S: RegistryStore>(store: &S, name: &str, parents: &[NodeRef]) -> NodeRef {
    store.create_dataset(&dataset(name), Vec::new).await.unwrap();
    let spec = dv_spec(parents);
    let d = spec.validate().unwrap();
    store
        .add_dataset_version(name, &spec, &d, "user:alice", T0 + 1, |_| Vec::new())
        .await
        .unwrap()
        .node()
}

/// Creates the model if needed and adds a version; returns its node.
async fn add_mv<S: RegistryStore>(store: &S, name: &str, trained_from: &[NodeRef]) -> NodeRef {
    store.create_model(&model(name), Vec::new).await.unwrap();
    let spec = mv_spec(trained_from);
    let d = spec.validate().unwrap();
    store
        .add_model_version(name, &spec, &d, "user:alice", T0 + 1, |_| Vec::new())
        .await
        .unwrap()
        .node()
}

fn change(model: &str, version: u32, from: Stage, to: Stage, at: u64) -> StageChange {
    StageChange {
        model: model.into(),
        version,
        from,
        to,
        by: "user:alice".into(),
        reason: format!("{} to {}", from.as_str(), to.as_str()),
        request_id: None,
        at,
    }
}

async fn to_staging<S: RegistryStore>(store: &S, model: &str, version: u32) {
    store
        .set_stage(
            &change(model, version, Stage::Development, Stage::Staging, T0 + 2),
            Vec::new,
        )
        .await
        .unwrap();
}

fn request(id: &str, model: &str, version: u32, required: u32, at: u64) -> PromotionRequest {
    PromotionRequest {
        id: id.into(),
        model: model.into(),
        version,
        requested_by: "user:alice".into(),
        requester_actors: vec![],
        reason: format!("ship {model}@{version}"),
        status: RequestStatus::Open,
        required,
        approval_ttl: TTL,
        created_at: at,
        closed_at: None,
    }
}

fn direct(subject: &str) -> Voter<'_> {
    Voter { subject, actors: &[] }
}

/// Registers version `n` of `model`, moves it to staging and promotes it
/// with one approval (`required` = 1).
async fn promote<S: RegistryStore>(store: &S, model: &str, at: u64) -> u32 {
    let version = add_mv(store, model, &[]).await.version;
    to_staging(store, model, version).await;
    let id = format!("p-{model}-{version}");
    store
        .open_promotion(&request(&id, model, version, 1, at), Vec::new)
        .await
        .unwrap();
    let done = store
        .vote(&id, direct("user:bob"), Vote::Approve, "lgtm", at + 1, |_| Vec::new())
        .await
        .unwrap();
    assert!(matches!(done.outcome, VoteOutcome::Completed { .. }), "{done:?}");
    version
}

async fn stage_of<S: RegistryStore>(store: &S, model: &str, version: u32) -> Stage {
    store.get_model_version(model, version).await.unwrap().unwrap().stage
}

fn four_eyes(e: StoreError) -> String {
    match e {
        StoreError::Registry(RegistryError::FourEyes(m)) => m.to_owned(),
        other => panic!("expected a four-eyes refusal, got {other:?}"),
    }
}

// --- datasets and models -------------------------------------------------

async fn datasets_round_trip_and_soft_delete<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let tx = dataset("transactions");
    assert!(s.create_dataset(&tx, Vec::new).await.unwrap());
    assert!(!s.create_dataset(&tx, Vec::new).await.unwrap(), "name taken");
    assert!(s.create_dataset(&dataset("accounts"), Vec::new).await.unwrap());
    assert_eq!(s.get_dataset("transactions").await.unwrap().unwrap(), tx);
    assert_eq!(s.get_dataset("nope").await.unwrap(), None);
    let names = |l: Vec<Dataset>| l.into_iter().map(|d| d.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_datasets(false).await.unwrap()),
        ["accounts", "transactions"]
    );

    let patch = DatasetPatch {
        classification: Some(Classification::Internal),
        allowed_purposes: Some(vec!["ops".into()]),
        owner: Some("team:data".into()),
        description: Some("reclassified".into()),
    };
    let patched = tx.patched(patch, T0 + 50).unwrap();
    // An edit made from a stale copy loses, whichever field it touches.
    let concurrent = tx
        .patched(
            DatasetPatch {
                description: Some("typo fix".into()),
                ..Default::default()
            },
            T0 + 50,
        )
        .unwrap();
    assert!(s.update_dataset(&tx, &patched, Vec::new).await.unwrap());
    assert!(
        !s.update_dataset(&tx, &concurrent, Vec::new).await.unwrap(),
        "stale copy"
    );
    assert_eq!(s.get_dataset("transactions").await.unwrap().unwrap(), patched);
    assert!(
        !s.update_dataset(&dataset("nope"), &dataset("nope"), Vec::new)
            .await
            .unwrap()
    );

    add_dv(s, "transactions", &[]).await;
    assert!(s.delete_dataset("transactions", T0 + 100, Vec::new).await.unwrap());
    assert!(
        !s.delete_dataset("transactions", T0 + 101, Vec::new).await.unwrap(),
        "already deleted"
    );
    assert!(!s.delete_dataset("nope", T0 + 101, Vec::new).await.unwrap());
    let deleted = s.get_dataset("transactions").await.unwrap().unwrap();
    assert_eq!(deleted.deleted_at, Some(T0 + 100));
    assert_eq!(names(s.list_datasets(false).await.unwrap()), ["accounts"]);
    assert_eq!(
        names(s.list_datasets(true).await.unwrap()),
        ["accounts", "transactions"]
    );
    assert!(
        !s.update_dataset(&patched, &patched, Vec::new).await.unwrap(),
        "deleted datasets do not change"
    );
    assert!(
        !s.create_dataset(&tx, Vec::new).await.unwrap(),
        "a deleted dataset keeps its name"
    );
    // Versions stay readable; no new ones.
    assert_eq!(s.list_dataset_versions("transactions").await.unwrap().len(), 1);
    let spec = dv_spec(&[]);
    let e = s
        .add_dataset_version("transactions", &spec, &digest(1), "user:alice", T0 + 200, |_| {
            Vec::new()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "dataset `transactions`"),
        "{e:?}"
    );
    let e = s
        .add_dataset_version("nope", &spec, &digest(1), "user:alice", T0, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::NotFound(m) if m == "dataset `nope`"), "{e:?}");
    h.finish().await;
}

async fn models_round_trip<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let m = model("fraud");
    assert!(s.create_model(&m, Vec::new).await.unwrap());
    assert!(!s.create_model(&m, Vec::new).await.unwrap());
    assert!(s.create_model(&model("churn"), Vec::new).await.unwrap());
    assert_eq!(s.get_model("fraud").await.unwrap().unwrap(), m);
    assert_eq!(s.get_model("nope").await.unwrap(), None);
    let names: Vec<String> = s.list_models().await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["churn", "fraud"]);

    let spec = mv_spec(&[]);
    let v = s
        .add_model_version("fraud", &spec, &digest(2), "user:bob", T0 + 5, |_| Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (v.version, v.stage, v.stage_changed_at),
        (1, Stage::Development, T0 + 5)
    );
    assert_eq!(s.get_model_version("fraud", 1).await.unwrap().unwrap(), v);
    assert_eq!(s.list_model_versions("fraud").await.unwrap(), [v]);
    assert_eq!(s.get_model_version("fraud", 2).await.unwrap(), None);
    let e = s
        .add_model_version("nope", &spec, &digest(2), "user:bob", T0, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::NotFound(m) if m == "model `nope`"), "{e:?}");
    h.finish().await;
}

async fn version_numbers_have_no_gaps_or_duplicates<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    s.create_dataset(&dataset("events"), Vec::new).await.unwrap();
    s.create_model(&model("ranker"), Vec::new).await.unwrap();
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let spec = dv_spec(&[]);
                let d = s
                    .add_dataset_version("events", &spec, &digest(i), "user:alice", T0 + i, |_| Vec::new())
                    .await
                    .unwrap();
                let spec = mv_spec(&[]);
                let m = s
                    .add_model_version("ranker", &spec, &digest(i), "user:alice", T0 + i, |_| Vec::new())
                    .await
                    .unwrap();
                (d.version, m.version)
            })
        })
        .collect();
    let (mut ds, mut ms): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for t in tasks {
        let (d, m) = t.await.unwrap();
        ds.push(d);
        ms.push(m);
    }
    ds.sort_unstable();
    ms.sort_unstable();
    let expected: Vec<u32> = (1..=20).collect();
    assert_eq!(ds, expected);
    assert_eq!(ms, expected);
    let stored: Vec<u32> = s
        .list_dataset_versions("events")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(stored, expected);
    let stored: Vec<u32> = s
        .list_model_versions("ranker")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(stored, expected);
    h.finish().await;
}

async fn parents_and_training_data_round_trip<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let raw1 = add_dv(s, "raw", &[]).await;
    let raw2 = add_dv(s, "raw", &[]).await;
    let ext = add_dv(s, "ext", &[]).await;
    // Given out of order; stored and returned sorted.
    let spec = dv_spec(&[raw2.clone(), ext.clone(), raw1.clone()]);
    let clean = s
        .add_dataset_version("clean", &spec, &digest(1), "user:carol", T0 + 9, |_| Vec::new())
        .await;
    assert!(matches!(clean, Err(StoreError::NotFound(_))), "no dataset `clean` yet");
    s.create_dataset(&dataset("clean"), Vec::new).await.unwrap();
    let clean = s
        .add_dataset_version("clean", &spec, &digest(1), "user:carol", T0 + 9, |_| Vec::new())
        .await
        .unwrap();
    let sorted = vec![ext.clone(), raw1.clone(), raw2.clone()];
    assert_eq!(clean.parents, sorted);
    let expected = DatasetVersion {
        dataset: "clean".into(),
        version: 1,
        digest: digest(1),
        size: 1234,
        uri: "s3://bucket/data".into(),
        parents: sorted.clone(),
        created_by: "user:carol".into(),
        created_at: T0 + 9,
    };
    assert_eq!(clean, expected);
    assert_eq!(s.get_dataset_version("clean", 1).await.unwrap().unwrap(), expected);
    assert_eq!(s.list_dataset_versions("clean").await.unwrap(), [expected]);
    assert_eq!(s.get_dataset_version("raw", 1).await.unwrap().unwrap().parents, []);
    assert_eq!(s.get_dataset_version("raw", 3).await.unwrap(), None);

    let clean1 = NodeRef::dataset("clean", 1);
    s.create_model(&model("fraud"), Vec::new).await.unwrap();
    let untrained = s
        .add_model_version("fraud", &mv_spec(&[]), &digest(2), "user:bob", T0 + 10, |_| Vec::new())
        .await
        .unwrap();
    assert_eq!(untrained.trained_from, []);
    let spec = mv_spec(&[raw2.clone(), clean1.clone()]);
    let v = s
        .add_model_version("fraud", &spec, &digest(2), "user:bob", T0 + 10, |_| Vec::new())
        .await
        .unwrap();
    let expected = ModelVersion {
        model: "fraud".into(),
        version: 2,
        digest: digest(2),
        uri: "s3://models/m".into(),
        framework: Some("pytorch".into()),
        metrics: json!({"auc": 0.91, "notes": {"k": [1, 2]}}),
        trained_from: vec![clean1.clone(), raw2.clone()],
        training_run: Some("run-7".into()),
        stage: Stage::Development,
        created_by: "user:bob".into(),
        created_at: T0 + 10,
        stage_changed_at: T0 + 10,
    };
    assert_eq!(v, expected);
    assert_eq!(s.get_model_version("fraud", 2).await.unwrap().unwrap(), expected);
    assert_eq!(s.list_model_versions("fraud").await.unwrap(), [untrained, expected]);
    // The edges carry the training run and who recorded them.
    let g = s.lineage(&v.node(), Direction::Upstream, 1).await.unwrap();
    let edge = |from: &NodeRef, run: Option<&str>, by: &str, at: u64| Edge {
        from: from.clone(),
        to: v.node(),
        training_run: run.map(str::to_owned),
        recorded_by: by.into(),
        created_at: at,
    };
    assert_eq!(
        g.edges,
        [
            edge(&clean1, Some("run-7"), "user:bob", T0 + 10),
            edge(&raw2, Some("run-7"), "user:bob", T0 + 10)
        ]
    );
    h.finish().await;
}

async fn missing_parents_are_not_found_and_nothing_is_written<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let raw1 = add_dv(s, "raw", &[]).await;
    s.create_dataset(&dataset("clean"), Vec::new).await.unwrap();
    let spec = dv_spec(&[raw1.clone(), NodeRef::dataset("raw", 9)]);
    let e = s
        .add_dataset_version("clean", &spec, &digest(1), "user:alice", T0, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "dataset version `dataset:raw@9`"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "dataset version `dataset:raw@9` not found");
    let spec = dv_spec(&[NodeRef::dataset("ghost", 1)]);
    assert!(matches!(
        s.add_dataset_version("clean", &spec, &digest(1), "user:alice", T0, |_| Vec::new())
            .await,
        Err(StoreError::NotFound(_))
    ));
    let spec = dv_spec(&[NodeRef::model("m", 1)]);
    assert!(matches!(
        s.add_dataset_version("clean", &spec, &digest(1), "user:alice", T0, |_| Vec::new())
            .await,
        Err(StoreError::Registry(RegistryError::Invalid { field: "parents", .. }))
    ));

    s.create_model(&model("fraud"), Vec::new).await.unwrap();
    let spec = mv_spec(&[raw1.clone(), NodeRef::dataset("raw", 2)]);
    let e = s
        .add_model_version("fraud", &spec, &digest(2), "user:alice", T0, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "dataset version `dataset:raw@2`"),
        "{e:?}"
    );

    // Nothing of the failed attempts remains: no versions, no edges, and
    // the next versions are still number 1.
    assert_eq!(s.list_dataset_versions("clean").await.unwrap(), []);
    assert_eq!(s.list_model_versions("fraud").await.unwrap(), []);
    assert_eq!(s.impact(&raw1).await.unwrap(), []);
    assert_eq!(s.lineage(&raw1, Direction::Downstream, 5).await.unwrap().edges, []);
    assert_eq!(
        add_dv(s, "clean", std::slice::from_ref(&raw1)).await,
        NodeRef::dataset("clean", 1)
    );
    assert_eq!(
        add_mv(s, "fraud", std::slice::from_ref(&raw1)).await,
        NodeRef::model("fraud", 1)
    );
    assert_eq!(
        s.impact(&raw1).await.unwrap(),
        [NodeRef::dataset("clean", 1), NodeRef::model("fraud", 1)]
    );
    h.finish().await;
}

// --- stages ----------------------------------------------------------------

async fn stage_changes_are_compare_and_set<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    add_mv(s, "fraud", &[]).await;
    add_mv(s, "fraud", &[]).await;
    let up = change("fraud", 1, Stage::Development, Stage::Staging, T0 + 10);
    s.set_stage(&up, Vec::new).await.unwrap();
    let v = s.get_model_version("fraud", 1).await.unwrap().unwrap();
    assert_eq!((v.stage, v.stage_changed_at), (Stage::Staging, T0 + 10));

    let e = s.set_stage(&up, Vec::new).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("`staging`")),
        "{e:?}"
    );
    let e = s
        .set_stage(&change("fraud", 1, Stage::Staging, Stage::Production, T0), Vec::new)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Registry(RegistryError::Transition { .. })),
        "{e:?}"
    );
    let e = s
        .set_stage(&change("fraud", 9, Stage::Development, Stage::Staging, T0), Vec::new)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "model version `model:fraud@9`"),
        "{e:?}"
    );
    let e = s
        .set_stage(&change("nope", 1, Stage::Development, Stage::Staging, T0), Vec::new)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");

    s.set_stage(
        &change("fraud", 2, Stage::Development, Stage::Archived, T0 + 11),
        Vec::new,
    )
    .await
    .unwrap();
    assert_eq!(
        s.stage_history("fraud").await.unwrap(),
        [up, change("fraud", 2, Stage::Development, Stage::Archived, T0 + 11)]
    );
    assert_eq!(s.stage_history("nope").await.unwrap(), []);
    add_mv(s, "churn", &[]).await;
    assert_eq!(
        s.model_stages().await.unwrap(),
        [
            ("churn".to_owned(), Stage::Development),
            ("fraud".to_owned(), Stage::Staging),
            ("fraud".to_owned(), Stage::Archived)
        ]
    );
    h.finish().await;
}

// --- promotion requests ------------------------------------------------------

async fn promotion_requests_open_only_from_staging<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    add_mv(s, "fraud", &[]).await;
    let e = s
        .open_promotion(&request("p1", "fraud", 1, 2, T0), Vec::new)
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("staging")), "{e:?}");
    let e = s
        .open_promotion(&request("p1", "fraud", 7, 2, T0), Vec::new)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "model version `model:fraud@7`"),
        "{e:?}"
    );
    let e = s
        .open_promotion(&request("p1", "nope", 1, 2, T0), Vec::new)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    to_staging(s, "fraud", 1).await;
    let e = s
        .open_promotion(&request("p1", "fraud", 1, 0, T0), Vec::new)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Registry(RegistryError::Invalid { field: "required", .. })
        ),
        "{e:?}"
    );
    let p1 = request("p1", "fraud", 1, 2, T0);
    s.open_promotion(&p1, Vec::new).await.unwrap();
    let e = s
        .open_promotion(&request("p2", "fraud", 1, 2, T0 + 1), Vec::new)
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("`p1`")), "{e:?}");
    assert_eq!(s.get_promotion("p1").await.unwrap().unwrap(), (p1.clone(), vec![]));
    assert_eq!(s.get_promotion("p2").await.unwrap(), None);

    // Rejected: closed, and a new request may be opened.
    let r = s
        .vote("p1", direct("user:dave"), Vote::Reject, "not yet", T0 + 5, |_| {
            Vec::new()
        })
        .await
        .unwrap();
    assert_eq!(r.outcome, VoteOutcome::Rejected);
    assert_eq!(
        (r.request.status, r.request.closed_at, r.archived),
        (RequestStatus::Rejected, Some(T0 + 5), None)
    );
    let (stored, ballots) = s.get_promotion("p1").await.unwrap().unwrap();
    assert_eq!(stored, r.request);
    assert_eq!(ballots.len(), 1);
    assert_eq!(
        (ballots[0].voter.as_str(), ballots[0].vote),
        ("user:dave", Vote::Reject)
    );
    let e = s
        .vote("p1", direct("user:bob"), Vote::Approve, "ok", T0 + 6, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Registry(RegistryError::Closed("rejected"))),
        "{e:?}"
    );
    assert_eq!(stage_of(s, "fraud", 1).await, Stage::Staging);
    let p2 = request("p2", "fraud", 1, 2, T0 + 7);
    s.open_promotion(&p2, Vec::new).await.unwrap();
    let e = s
        .vote("nope", direct("user:bob"), Vote::Approve, "ok", T0, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "promotion request `nope`"),
        "{e:?}"
    );

    // Newest first, filtered by model and status.
    add_mv(s, "churn", &[]).await;
    to_staging(s, "churn", 1).await;
    let p3 = request("p3", "churn", 1, 1, T0 + 8);
    s.open_promotion(&p3, Vec::new).await.unwrap();
    let ids = |l: Vec<PromotionRequest>| l.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_promotions(None, None).await.unwrap()), ["p3", "p2", "p1"]);
    assert_eq!(ids(s.list_promotions(Some("fraud"), None).await.unwrap()), ["p2", "p1"]);
    assert_eq!(
        ids(s.list_promotions(None, Some(RequestStatus::Open)).await.unwrap()),
        ["p3", "p2"]
    );
    assert_eq!(
        ids(s
            .list_promotions(Some("fraud"), Some(RequestStatus::Rejected))
            .await
            .unwrap()),
        ["p1"]
    );
    assert_eq!(
        ids(s.list_promotions(Some("nope"), None).await.unwrap()),
        Vec::<String>::new()
    );
    h.finish().await;
}

async fn four_eyes_holds_through_the_store<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let v1 = promote(s, "fraud", T0).await;
    add_mv(s, "fraud", &[]).await;
    to_staging(s, "fraud", 2).await;
    let mut p = request("p", "fraud", 2, 2, T0 + 100);
    p.requester_actors = vec!["agent:helper".into()];
    s.open_promotion(&p, Vec::new).await.unwrap();
    assert_eq!(s.get_promotion("p").await.unwrap().unwrap().0, p, "actors round trip");

    let e = s
        .vote("p", direct("user:alice"), Vote::Approve, "mine", T0 + 101, |_| {
            Vec::new()
        })
        .await
        .unwrap_err();
    assert!(four_eyes(e).contains("requester"));
    let e = s
        .vote("p", direct("agent:bot"), Vote::Approve, "beep", T0 + 101, |_| {
            Vec::new()
        })
        .await
        .unwrap_err();
    assert!(four_eyes(e).contains("agents"));
    let actors = ["agent:bot".to_owned()];
    let delegated = Voter {
        subject: "user:carol",
        actors: &actors,
    };
    let e = s
        .vote("p", delegated, Vote::Approve, "for carol", T0 + 101, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(four_eyes(e).contains("delegated"));

    let r = s
        .vote("p", direct("user:bob"), Vote::Approve, "ok", T0 + 1000, |_| Vec::new())
        .await
        .unwrap();
    let recorded = |approvals, renewed| VoteOutcome::Recorded {
        approvals,
        required: 2,
        renewed,
    };
    assert_eq!(
        (r.outcome, r.request.status, r.archived),
        (recorded(1, false), RequestStatus::Open, None)
    );
    let e = s
        .vote("p", direct("user:bob"), Vote::Approve, "again", T0 + 1001, |_| {
            Vec::new()
        })
        .await
        .unwrap_err();
    assert!(four_eyes(e).contains("counts once"));

    // Bob's approval (at T0 + 1000) has expired at T0 + 1000 + TTL: Carol's
    // is then the only one that counts.
    let late = T0 + 1000 + TTL;
    let r = s
        .vote("p", direct("user:carol"), Vote::Approve, "ok", late, |_| Vec::new())
        .await
        .unwrap();
    assert_eq!(r.outcome, recorded(1, false));
    let (_, ballots) = s.get_promotion("p").await.unwrap().unwrap();
    let voters: Vec<(&str, u64)> = ballots.iter().map(|b| (b.voter.as_str(), b.cast_at)).collect();
    assert_eq!(voters, [("user:bob", T0 + 1000), ("user:carol", late)]);
    assert_eq!(
        stage_of(s, "fraud", 2).await,
        Stage::Staging,
        "refused votes changed nothing"
    );

    // Bob renews: his ballot is replaced and the request completes.
    let r = s
        .vote("p", direct("user:bob"), Vote::Approve, "still ok", late + 1, |_| {
            Vec::new()
        })
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        VoteOutcome::Completed {
            approvals: 2,
            renewed: true
        }
    );
    assert_eq!(
        (r.request.status, r.request.closed_at, r.archived),
        (RequestStatus::Approved, Some(late + 1), Some(v1))
    );
    let (stored, ballots) = s.get_promotion("p").await.unwrap().unwrap();
    assert_eq!(stored, r.request);
    let voters: Vec<(&str, u64, &str)> = ballots
        .iter()
        .map(|b| (b.voter.as_str(), b.cast_at, b.reason.as_str()))
        .collect();
    assert_eq!(voters, [("user:carol", late, "ok"), ("user:bob", late + 1, "still ok")]);
    assert_eq!(stage_of(s, "fraud", 2).await, Stage::Production);
    assert_eq!(stage_of(s, "fraud", v1).await, Stage::Archived);
    let history = s.stage_history("fraud").await.unwrap();
    let last: Vec<_> = history.iter().rev().take(2).rev().cloned().collect();
    let by_request = |version, from, to| StageChange {
        model: "fraud".into(),
        version,
        from,
        to,
        by: "user:bob".into(),
        reason: p.reason.clone(),
        request_id: Some("p".into()),
        at: late + 1,
    };
    assert_eq!(
        last,
        [
            by_request(v1, Stage::Production, Stage::Archived),
            by_request(2, Stage::Staging, Stage::Production)
        ]
    );
    h.finish().await;
}

async fn a_request_cannot_complete_once_its_version_left_staging<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let v1 = promote(s, "fraud", T0).await;
    add_mv(s, "fraud", &[]).await;
    to_staging(s, "fraud", 2).await;
    s.open_promotion(&request("p", "fraud", 2, 1, T0 + 10), Vec::new)
        .await
        .unwrap();
    s.set_stage(
        &change("fraud", 2, Stage::Staging, Stage::Development, T0 + 11),
        Vec::new,
    )
    .await
    .unwrap();
    let e = s
        .vote("p", direct("user:bob"), Vote::Approve, "ok", T0 + 12, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("staging")), "{e:?}");
    // The whole vote rolled back: no ballot, request open, v1 untouched.
    let (req, ballots) = s.get_promotion("p").await.unwrap().unwrap();
    assert_eq!((req.status, ballots.len()), (RequestStatus::Open, 0));
    assert_eq!(stage_of(s, "fraud", v1).await, Stage::Production);
    assert_eq!(stage_of(s, "fraud", 2).await, Stage::Development);
    h.finish().await;
}

async fn concurrent_approvals_record_exactly_the_required_number<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let v1 = promote(s, "fraud", T0).await;
    add_mv(s, "fraud", &[]).await;
    to_staging(s, "fraud", 2).await;
    s.open_promotion(&request("race", "fraud", 2, 2, T0 + 100), Vec::new)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let voter = format!("user:approver{i}");
                s.vote("race", direct(&voter), Vote::Approve, "ok", T0 + 200, |_| Vec::new())
                    .await
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut closed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => ok.push(r),
            Err(StoreError::Registry(RegistryError::Closed("approved"))) => closed += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((ok.len(), closed), (2, 8));
    let completed: Vec<_> = ok
        .iter()
        .filter(|r| matches!(r.outcome, VoteOutcome::Completed { approvals: 2, .. }))
        .collect();
    assert_eq!(completed.len(), 1, "{ok:?}");
    assert_eq!(completed[0].archived, Some(v1));
    let (req, ballots) = s.get_promotion("race").await.unwrap().unwrap();
    assert_eq!(req.status, RequestStatus::Approved);
    assert_eq!(ballots.iter().filter(|b| b.vote == Vote::Approve).count(), 2);
    assert_eq!(ballots.len(), 2);
    assert_eq!(stage_of(s, "fraud", 2).await, Stage::Production);
    assert_eq!(stage_of(s, "fraud", v1).await, Stage::Archived);
    h.finish().await;
}

async fn rollback_returns_to_the_version_the_promotion_replaced_once<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    add_mv(s, "fraud", &[]).await;
    let e = s
        .rollback("fraud", "user:ops", "bad", T0, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m == "model `fraud` has no production version"),
        "{e:?}"
    );
    let e = s
        .rollback("nope", "user:ops", "bad", T0, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    s.set_stage(&change("fraud", 1, Stage::Development, Stage::Archived, T0), Vec::new)
        .await
        .unwrap();
    let v2 = promote(s, "fraud", T0 + 10).await;
    let e = s
        .rollback("fraud", "user:ops", "bad", T0 + 20, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("nothing to roll back to")),
        "{e:?}"
    );
    let v3 = promote(s, "fraud", T0 + 30).await;
    // Each promotion archived the one before: the most recent earlier
    // production version is v4, not v2 or v3.
    let v4 = promote(s, "fraud", T0 + 40).await;
    let v5 = promote(s, "fraud", T0 + 50).await;
    assert_eq!(stage_of(s, "fraud", v4).await, Stage::Archived);

    let r = s
        .rollback("fraud", "user:ops", "latency regression", T0 + 60, |_| Vec::new())
        .await
        .unwrap();
    assert_eq!(r, Rollback { from: v5, to: v4 });
    assert_eq!(stage_of(s, "fraud", v5).await, Stage::Archived);
    assert_eq!(stage_of(s, "fraud", v4).await, Stage::Production);
    let history = s.stage_history("fraud").await.unwrap();
    let ops = |version, from, to| StageChange {
        model: "fraud".into(),
        version,
        from,
        to,
        by: "user:ops".into(),
        reason: "latency regression".into(),
        request_id: None,
        at: T0 + 60,
    };
    assert_eq!(
        history[history.len() - 2..],
        [
            ops(v5, Stage::Production, Stage::Archived),
            ops(v4, Stage::Archived, Stage::Production)
        ]
    );
    // A rollback is not itself rolled back: v5 was withdrawn for cause and
    // returns only through a new promotion; v4 stays.
    let e = s
        .rollback("fraud", "user:ops", "fixed", T0 + 70, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("nothing to roll back to")),
        "{e:?}"
    );
    assert_eq!(stage_of(s, "fraud", v4).await, Stage::Production);
    assert_eq!(
        (
            stage_of(s, "fraud", v2).await,
            stage_of(s, "fraud", v3).await,
            stage_of(s, "fraud", v5).await
        ),
        (Stage::Archived, Stage::Archived, Stage::Archived)
    );
    // Nor does a version archived by hand come back: archive v4, promote
    // v6 (which replaces nothing), and there is nothing to roll back to.
    s.set_stage(
        &change("fraud", v4, Stage::Production, Stage::Archived, T0 + 80),
        Vec::new,
    )
    .await
    .unwrap();
    promote(s, "fraud", T0 + 90).await;
    let e = s
        .rollback("fraud", "user:ops", "again", T0 + 100, |_| Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("nothing to roll back to")),
        "{e:?}"
    );
    h.finish().await;
}

// --- lineage -------------------------------------------------------------------

/// ```text
/// raw@1 ──> clean@1 ──> joined@1 ──> model:fraud@1
///   │          │           ^             ^   ^
///   └──> feat@1 ───────────┘             │   │
///              clean@1 ──────────────────┘   │
///                               ext@1 ───────┘
/// ```
/// Two diamonds: raw → {clean, feat} → joined, and clean → {joined → fraud, fraud}.
struct Dag {
    raw: NodeRef,
    clean: NodeRef,
    feat: NodeRef,
    joined: NodeRef,
    ext: NodeRef,
    fraud: NodeRef,
}

async fn dag<S: RegistryStore>(s: &S) -> Dag {
    let raw = add_dv(s, "raw", &[]).await;
    let clean = add_dv(s, "clean", std::slice::from_ref(&raw)).await;
    let feat = add_dv(s, "feat", std::slice::from_ref(&raw)).await;
    let joined = add_dv(s, "joined", &[clean.clone(), feat.clone()]).await;
    let ext = add_dv(s, "ext", &[]).await;
    let fraud = add_mv(s, "fraud", &[joined.clone(), clean.clone(), ext.clone()]).await;
    Dag {
        raw,
        clean,
        feat,
        joined,
        ext,
        fraud,
    }
}

fn sorted(nodes: &[&NodeRef]) -> Vec<NodeRef> {
    let mut v: Vec<NodeRef> = nodes.iter().map(|n| (*n).clone()).collect();
    v.sort();
    v
}

fn pairs(g: &warden_registry::Graph) -> Vec<(NodeRef, NodeRef)> {
    g.edges.iter().map(|e| (e.from.clone(), e.to.clone())).collect()
}

fn edges(list: &[(&NodeRef, &NodeRef)]) -> Vec<(NodeRef, NodeRef)> {
    let mut v: Vec<_> = list.iter().map(|(a, b)| ((*a).clone(), (*b).clone())).collect();
    v.sort();
    v
}

async fn lineage_walks_diamonds_within_depth<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let Dag {
        raw,
        clean,
        feat,
        joined,
        ext,
        fraud,
    } = dag(s).await;

    let down = |depth| s.lineage(&raw, Direction::Downstream, depth);
    let g = down(0).await.unwrap();
    assert_eq!((g.nodes, g.edges, g.depth), (vec![raw.clone()], vec![], 0));
    let g = down(1).await.unwrap();
    assert_eq!((&g.root, g.direction), (&raw, Direction::Downstream));
    assert_eq!(g.nodes, sorted(&[&raw, &clean, &feat]));
    assert_eq!(pairs(&g), edges(&[(&raw, &clean), (&raw, &feat)]));
    let g = down(2).await.unwrap();
    assert_eq!(g.nodes, sorted(&[&raw, &clean, &feat, &joined, &fraud]), "joined once");
    assert_eq!(
        pairs(&g),
        edges(&[
            (&raw, &clean),
            (&raw, &feat),
            (&clean, &joined),
            (&feat, &joined),
            (&clean, &fraud)
        ])
    );
    let g3 = down(3).await.unwrap();
    assert_eq!(g3.nodes, g.nodes);
    assert_eq!(
        pairs(&g3),
        edges(&[
            (&raw, &clean),
            (&raw, &feat),
            (&clean, &joined),
            (&feat, &joined),
            (&clean, &fraud),
            (&joined, &fraud)
        ])
    );
    assert_eq!(g3.edges, down(100).await.unwrap().edges);

    let up = |depth| s.lineage(&fraud, Direction::Upstream, depth);
    let g = up(1).await.unwrap();
    assert_eq!(g.nodes, sorted(&[&fraud, &joined, &clean, &ext]));
    assert_eq!(pairs(&g), edges(&[(&joined, &fraud), (&clean, &fraud), (&ext, &fraud)]));
    assert!(g.edges.iter().all(|e| e.training_run.as_deref() == Some("run-7")));
    let g = up(2).await.unwrap();
    assert_eq!(
        g.nodes,
        sorted(&[&fraud, &joined, &clean, &ext, &feat, &raw]),
        "raw once"
    );
    assert_eq!(
        pairs(&g),
        edges(&[
            (&joined, &fraud),
            (&clean, &fraud),
            (&ext, &fraud),
            (&clean, &joined),
            (&feat, &joined),
            (&raw, &clean)
        ])
    );
    let g = up(3).await.unwrap();
    assert_eq!(pairs(&g).len(), 7, "every edge once");
    assert!(
        g.edges
            .windows(2)
            .all(|w| (&w[0].from, &w[0].to) < (&w[1].from, &w[1].to))
    );

    let g = s.lineage(&joined, Direction::Upstream, 10).await.unwrap();
    assert_eq!(g.nodes, sorted(&[&joined, &clean, &feat, &raw]));
    let e = s
        .lineage(&NodeRef::dataset("raw", 2), Direction::Upstream, 3)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "dataset version `dataset:raw@2`"),
        "{e:?}"
    );
    let e = s
        .lineage(&NodeRef::model("fraud", 2), Direction::Upstream, 3)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m == "model version `model:fraud@2`"),
        "{e:?}"
    );
    h.finish().await;
}

async fn impact_is_everything_downstream<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let Dag {
        raw,
        clean,
        feat,
        joined,
        ext,
        fraud,
    } = dag(s).await;
    assert_eq!(s.impact(&raw).await.unwrap(), sorted(&[&clean, &feat, &joined, &fraud]));
    assert_eq!(s.impact(&clean).await.unwrap(), sorted(&[&joined, &fraud]));
    assert_eq!(s.impact(&ext).await.unwrap(), vec![fraud.clone()]);
    assert_eq!(s.impact(&fraud).await.unwrap(), []);
    // Versions sort by number, not as text: 2 before 10.
    for _ in 0..10 {
        add_dv(s, "daily", std::slice::from_ref(&raw)).await;
    }
    let daily: Vec<u32> = s
        .impact(&raw)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.name == "daily")
        .map(|n| n.version)
        .collect();
    assert_eq!(daily, (1..=10).collect::<Vec<_>>());
    assert!(matches!(
        s.impact(&NodeRef::dataset("nope", 1)).await,
        Err(StoreError::NotFound(_))
    ));
    h.finish().await;
}

/// A `registry_change` event for `resource`, as the server builds one.
fn change_event(resource: &str, operation: &str) -> AuditEvent {
    AuditEvent::new(
        T0,
        EventKind::RegistryChange {
            principal: "user:alice".into(),
            resource: resource.into(),
            operation: operation.into(),
            digest: None,
            actor_chain: Vec::new(),
            reason: None,
            changes: Vec::new(),
        },
    )
}

/// Makes every insert into the audit queue fail, or heals it: a check no
/// new row passes (PostgreSQL), a trigger that aborts (SQLite).
async fn break_audit_log(db: &TestDb, broken: bool) {
    let sql = match (db.schema().is_some(), broken) {
        (true, true) => "ALTER TABLE audit_queue ADD CONSTRAINT test_broken CHECK (seq < 0) NOT VALID",
        (true, false) => "ALTER TABLE audit_queue DROP CONSTRAINT test_broken",
        (false, true) => {
            "CREATE TRIGGER test_broken BEFORE INSERT ON audit_queue BEGIN SELECT RAISE(ABORT, 'broken'); END"
        }
        (false, false) => "DROP TRIGGER test_broken",
    };
    db.exec(sql).await;
}

/// Events queued and not yet integrated.
async fn queued<S: AuditStore>(s: &S) -> u64 {
    s.queue_status().await.unwrap().depth
}

async fn a_change_commits_with_its_audit_events<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    assert_eq!(queued(s).await, 0);
    let created = s
        .create_dataset(&dataset("tx"), || {
            vec![change_event("Dataset::\"tx\"", "dataset.create")]
        })
        .await
        .unwrap();
    assert!(created);
    assert_eq!(queued(s).await, 1, "the change's event is queued with it");
    assert_eq!(s.size().await.unwrap(), 0, "and integrated later");
    let events = s.queued_events(0, 10).await.unwrap();
    assert_eq!(events[0].kind, "registry_change");
    assert_eq!(events[0].resource.as_deref(), Some("Dataset::\"tx\""));
    // A change that is not made appends nothing: a taken name, a stage
    // that is no longer the expected one, a vote the four-eyes rule refuses.
    let again = s
        .create_dataset(&dataset("tx"), || vec![change_event("x", "dataset.create")])
        .await
        .unwrap();
    assert!(!again);
    let node = add_mv(s, "fraud", &[]).await;
    let before = queued(s).await;
    let wrong = s
        .set_stage(
            &change("fraud", node.version, Stage::Staging, Stage::Archived, T0 + 3),
            || vec![change_event("x", "model.stage")],
        )
        .await;
    assert!(matches!(wrong, Err(StoreError::Conflict(_))), "{wrong:?}");
    to_staging(s, "fraud", node.version).await;
    s.open_promotion(&request("p1", "fraud", node.version, 1, T0 + 3), Vec::new)
        .await
        .unwrap();
    let own = s
        .vote("p1", direct("user:alice"), Vote::Approve, "mine", T0 + 4, |_| {
            vec![change_event("x", "approval")]
        })
        .await;
    assert!(
        matches!(own, Err(StoreError::Registry(RegistryError::FourEyes(_)))),
        "{own:?}"
    );
    assert_eq!(queued(s).await, before, "a refused change queued an event");
    // A completing vote appends every event it is given, with the change.
    let done = s
        .vote("p1", direct("user:bob"), Vote::Approve, "lgtm", T0 + 5, |r| {
            assert!(matches!(r.outcome, VoteOutcome::Completed { .. }));
            vec![change_event("a", "approval"), change_event("b", "model.stage")]
        })
        .await
        .unwrap();
    assert_eq!(done.request.status, RequestStatus::Approved);
    assert_eq!(queued(s).await, before + 2);
    // Integration carries them into the log, columns and all.
    s.integrate(100).await.unwrap();
    let events = s.events(&EventQuery::page(0, 100)).await.unwrap();
    assert_eq!(events.len() as u64, before + 2);
    assert_eq!(events[0].resource.as_deref(), Some("Dataset::\"tx\""));
    assert_eq!(s.audit_failure(), None);
    h.finish().await;
}

async fn a_failed_audit_append_leaves_no_change<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let node = add_mv(s, "fraud", &[]).await;
    break_audit_log(h.db(), true).await;
    let event = || vec![change_event("Dataset::\"tx\"", "dataset.create")];
    assert!(s.create_dataset(&dataset("tx"), event).await.is_err());
    assert_eq!(
        s.get_dataset("tx").await.unwrap(),
        None,
        "the change outlived its failed record"
    );
    assert!(s.audit_failure().is_some());
    let spec = mv_spec(&[]);
    let digest = spec.validate().unwrap();
    let added = s
        .add_model_version("fraud", &spec, &digest, "user:alice", T0 + 2, |_| event())
        .await;
    assert!(added.is_err(), "{added:?}");
    assert_eq!(s.list_model_versions("fraud").await.unwrap().len(), 1);
    let moved = s
        .set_stage(
            &change("fraud", node.version, Stage::Development, Stage::Staging, T0 + 2),
            event,
        )
        .await;
    assert!(moved.is_err());
    let v = s.get_model_version("fraud", node.version).await.unwrap().unwrap();
    assert_eq!(v.stage, Stage::Development);
    // The same change goes through once the log can be written again,
    // on the same store (no connection was left inside a transaction).
    break_audit_log(h.db(), false).await;
    assert!(s.create_dataset(&dataset("tx"), event).await.unwrap());
    assert_eq!(s.audit_failure(), None);
    h.finish().await;
}

async fn a_refresh_rotation_whose_record_fails_is_not_made<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let family = Family {
        id: "fam".into(),
        client_id: "c".into(),
        subject: "svc:c".into(),
        created_at: T0,
        expires_at: T0 + 86_400,
        revoked_at: None,
    };
    let token = |n: u8| NewRefresh {
        token_hash: [n; 32],
        grant_data: "{}".into(),
        issued_at: T0,
        expires_at: T0 + 3600,
        access_jti: format!("j{n}"),
        access_exp: T0 + 300,
    };
    s.start_family(&family, &token(1)).await.unwrap();
    let audit = |r: &Redeemed| match r {
        Redeemed::Rotated { row } => vec![AuditEvent::new(
            T0 + 10,
            EventKind::TokenRefreshed {
                subject: "svc:c".into(),
                client_id: "c".into(),
                jti: "j2".into(),
                kid: "k".into(),
                family: row.family.id.clone(),
                scope: String::new(),
            },
        )],
        _ => Vec::new(),
    };
    break_audit_log(h.db(), true).await;
    assert!(s.redeem_refresh(&[1; 32], &token(2), T0 + 10, 0, audit).await.is_err());
    break_audit_log(h.db(), false).await;
    // No grace period: had the failed rotation been kept, this retry
    // would be reuse and revoke the family.
    let retried = s.redeem_refresh(&[1; 32], &token(2), T0 + 11, 0, audit).await.unwrap();
    assert!(matches!(retried, Redeemed::Rotated { .. }), "{retried:?}");
    assert_eq!(s.find_refresh(&[1; 32]).await.unwrap().unwrap().family.revoked_at, None);
    let events = s.queued_events(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "token_refreshed");
    h.finish().await;
}

warden_test_support::each_backend! {
    #[tokio::test]
    datasets_round_trip_and_soft_delete,
    models_round_trip,
    parents_and_training_data_round_trip,
    missing_parents_are_not_found_and_nothing_is_written,
    stage_changes_are_compare_and_set,
    promotion_requests_open_only_from_staging,
    four_eyes_holds_through_the_store,
    a_request_cannot_complete_once_its_version_left_staging,
    rollback_returns_to_the_version_the_promotion_replaced_once,
    lineage_walks_diamonds_within_depth,
    impact_is_everything_downstream,
    a_change_commits_with_its_audit_events,
    a_failed_audit_append_leaves_no_change,
    a_refresh_rotation_whose_record_fails_is_not_made;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    version_numbers_have_no_gaps_or_duplicates,
    concurrent_approvals_record_exactly_the_required_number;
}
