//! The audit-log storage suite, run against every backend: SQLite in a
//! temp dir and PostgreSQL in a fresh schema per test
//! (`WARDEN_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). A PostgreSQL that cannot be
//! reached fails the suite; it is never skipped.
//!
//! Every root and proof the store serves is checked against
//! `warden_audit::merkle` over the raw leaf hashes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;
use std::time::Duration;

use aws_lc_rs::signature::Ed25519KeyPair;
use warden_audit::{
    AuditEvent, Checkpoint, Decision, EventKind, Hash, NoteSigner, Subtree, merkle, verify_consistency,
    verify_inclusion, verify_log,
};
use warden_store::audit::MAX_ACTIVITY_BUCKETS;
use warden_store::postgres::PgStore;
use warden_store::sqlite::SqliteStore;
use warden_store::{ActivityCount, AuditStore, AuditWriter, EventQuery, PreparedEvent, StoreError, WriterOptions};
use warden_test_support::db::TestDb;
use warden_test_support::store::Harness;

fn key_event(time: u64, kid: &str) -> AuditEvent {
    AuditEvent::new(
        time,
        EventKind::KeyCreated {
            kid: kid.into(),
            alg: "EdDSA".into(),
        },
    )
}

fn access(time: u64, principal: &str, resource: &str) -> AuditEvent {
    decision(time, principal, resource, Decision::Allow)
}

fn decision(time: u64, principal: &str, resource: &str, decision: Decision) -> AuditEvent {
    AuditEvent::new(
        time,
        EventKind::AccessDecision {
            principal: principal.into(),
            actor_chain: vec![],
            client_id: "cli".into(),
            jti: format!("j-{time}"),
            action: "inference.invoke".into(),
            resource: resource.into(),
            decision,
            policy_ids: vec!["policy0".into()],
            request_id: format!("r-{time}"),
            route: "/v1/chat".into(),
            source_ip: IpAddr::from([192, 0, 2, 1]),
            upstream_status: Some(200),
            purpose: None,
        },
    )
}

fn prepare(events: &[AuditEvent]) -> Vec<PreparedEvent> {
    events.iter().map(|e| PreparedEvent::seal(e).unwrap()).collect()
}

/// Appends `n` key events in one batch; returns their leaf hashes.
async fn append_keys<S: AuditStore>(store: &S, first: u64, n: u64) -> Vec<Hash> {
    let events: Vec<AuditEvent> = (first..first + n)
        .map(|i| key_event(1000 + i, &format!("k{i}")))
        .collect();
    let prepared = prepare(&events);
    let range = store.append_batch(&prepared).await.unwrap();
    assert_eq!(range, first..first + n);
    prepared.iter().map(|p| *p.leaf_hash()).collect()
}

/// Every leaf hash in the store, checked against `expected` when given.
async fn all_leaves<S: AuditStore>(store: &S) -> Vec<Hash> {
    let size = store.size().await.unwrap();
    let leaves = store.leaf_hashes(0..size).await.unwrap();
    assert_eq!(leaves.len() as u64, size);
    leaves
}

/// The store's root and every proof at every size up to its size agree
/// with the reference implementation over `leaves` (all pairs when
/// `every_pair`, else a sample).
async fn check_tree<S: AuditStore>(store: &S, leaves: &[Hash], every_pair: bool) {
    let n = leaves.len() as u64;
    let head = store.tree_head().await.unwrap();
    assert_eq!(head.size, n);
    assert_eq!(head.root, merkle::root(leaves));
    let sizes: Vec<u64> = if every_pair {
        (0..=n).collect()
    } else {
        let mut s: Vec<u64> = [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 128, n / 2, n - 1, n]
            .into_iter()
            .filter(|s| *s <= n)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    for &size in &sizes {
        let root = merkle::root(&leaves[..size as usize]);
        assert_eq!(store.root_at(size).await.unwrap(), root, "root at {size}");
        let indices: Vec<u64> = if every_pair {
            (0..size).collect()
        } else {
            [0, size / 3, size / 2, size.saturating_sub(1)]
                .into_iter()
                .filter(|i| *i < size)
                .collect()
        };
        for index in indices {
            let proof = store.inclusion_proof(index, size).await.unwrap();
            assert_eq!(
                proof,
                merkle::inclusion_proof(leaves, index, size).unwrap(),
                "inclusion {index} in {size}"
            );
            verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
        }
        for &old in sizes.iter().filter(|s| **s <= size) {
            let proof = store.consistency_proof(old, size).await.unwrap();
            assert_eq!(
                proof,
                merkle::consistency_proof(leaves, old, size).unwrap(),
                "consistency {old} -> {size}"
            );
            let old_root = merkle::root(&leaves[..old as usize]);
            verify_consistency(old, size, &old_root, &root, &proof).unwrap();
        }
    }
}

async fn empty_log<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    assert_eq!(s.size().await.unwrap(), 0);
    assert_eq!(s.tree_head().await.unwrap().root, merkle::empty_root());
    assert_eq!(s.root_at(0).await.unwrap(), merkle::empty_root());
    assert_eq!(s.append_batch(&[]).await.unwrap(), 0..0);
    assert_eq!(s.consistency_proof(0, 0).await.unwrap(), Vec::<Hash>::new());
    assert!(s.events(&EventQuery::page(0, 10)).await.unwrap().is_empty());
    assert!(s.leaf_hashes(0..10).await.unwrap().is_empty());
    assert_eq!(s.latest_checkpoint().await.unwrap(), None);
    assert!(matches!(
        s.inclusion_proof(0, 1).await,
        Err(StoreError::AuditBeyondEnd { requested: 1, size: 0 })
    ));
    assert!(matches!(s.inclusion_proof(0, 0).await, Err(StoreError::Audit(_))));
    assert!(matches!(
        s.erase(0, "x", 1).await,
        Err(StoreError::AuditBeyondEnd { requested: 0, size: 0 })
    ));
    h.finish().await;
}

async fn append_and_read_back<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let events = vec![
        key_event(100, "k1"),
        access(101, "user:alice", "Endpoint::\"chat\""),
        {
            // An agent acting for bob.
            let mut e = access(102, "user:bob", "Endpoint::\"chat\"");
            if let EventKind::AccessDecision { actor_chain, .. } = &mut e.kind {
                *actor_chain = vec!["agent:report-bot".into(), "agent:inner".into()];
            }
            e
        },
        decision(103, "user:alice", "Endpoint::\"embed\"", Decision::Deny),
        AuditEvent::new(
            104,
            EventKind::TokenIssued {
                subject: "user:alice".into(),
                client_id: "cli".into(),
                jti: "j".into(),
                kid: "k1".into(),
                scope: "inference.invoke".into(),
                audience: vec!["inference".into()],
                grant: "client_credentials".into(),
                expires_at: 404,
                issued_by: None,
            },
        ),
        key_event(105, "k2"),
    ];
    let prepared = prepare(&events);
    assert_eq!(s.append_batch(&prepared[..2]).await.unwrap(), 0..2);
    assert_eq!(s.append_batch(&prepared[2..]).await.unwrap(), 2..6);
    assert_eq!(s.size().await.unwrap(), 6);

    let stored = s.events(&EventQuery::page(0, 100)).await.unwrap();
    assert_eq!(stored.len(), 6);
    for (i, (got, (event, prep))) in stored.iter().zip(events.iter().zip(&prepared)).enumerate() {
        assert_eq!(got.index, i as u64);
        assert_eq!(got.time, event.time);
        assert_eq!(got.kind, prep.kind());
        assert_eq!(got.subject.as_deref(), prep.subject());
        assert_eq!(got.resource.as_deref(), prep.resource());
        assert_eq!(&got.leaf_hash, prep.leaf_hash());
        assert_eq!(got.erasure, None);
        let (body, salt) = got.content.as_ref().unwrap();
        assert_eq!(body, &event.body().unwrap());
        assert_eq!(&warden_audit::leaf::event_leaf_hash(salt, body), prep.leaf_hash());
        assert_eq!(&AuditEvent::from_body(body).unwrap(), event);
    }
    let leaves: Vec<Hash> = prepared.iter().map(|p| *p.leaf_hash()).collect();
    assert_eq!(s.leaf_hashes(0..6).await.unwrap(), leaves);
    assert_eq!(s.leaf_hashes(2..4).await.unwrap(), leaves[2..4]);
    assert_eq!(s.leaf_hashes(4..100).await.unwrap(), leaves[4..]);
    assert_eq!(s.tree_head().await.unwrap().root, merkle::root(&leaves));

    let find = |q: EventQuery| async move {
        s.events(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.index)
            .collect::<Vec<u64>>()
    };
    let q = || EventQuery::page(0, 100);
    assert_eq!(
        find(EventQuery {
            kind: Some("access_decision".into()),
            ..q()
        })
        .await,
        vec![1, 2, 3]
    );
    assert_eq!(
        find(EventQuery {
            subject: Some("user:alice".into()),
            ..q()
        })
        .await,
        vec![1, 3, 4]
    );
    assert_eq!(
        find(EventQuery {
            resource: Some("Endpoint::\"chat\"".into()),
            ..q()
        })
        .await,
        vec![1, 2]
    );
    assert_eq!(
        find(EventQuery {
            since: Some(102),
            until: Some(105),
            ..q()
        })
        .await,
        vec![2, 3, 4]
    );
    assert_eq!(
        find(EventQuery {
            subject: Some("user:alice".into()),
            kind: Some("access_decision".into()),
            from: 2,
            ..q()
        })
        .await,
        vec![3]
    );
    // Decisions by outcome (a column beside the body).
    assert_eq!(
        find(EventQuery {
            outcome: Some("deny".into()),
            ..q()
        })
        .await,
        vec![3]
    );
    assert_eq!(
        find(EventQuery {
            outcome: Some("allow".into()),
            ..q()
        })
        .await,
        vec![1, 2]
    );
    // By the outermost actor of a delegation.
    assert_eq!(
        find(EventQuery {
            actor: Some("agent:report-bot".into()),
            ..q()
        })
        .await,
        vec![2]
    );
    assert_eq!(
        find(EventQuery {
            actor: Some("agent:inner".into()),
            ..q()
        })
        .await,
        Vec::<u64>::new()
    );
    // Paging back from the end, newest first, with filters.
    assert_eq!(
        find(EventQuery {
            before: Some(6),
            limit: 3,
            ..q()
        })
        .await,
        vec![5, 4, 3]
    );
    assert_eq!(
        find(EventQuery {
            before: Some(3),
            subject: Some("user:alice".into()),
            ..q()
        })
        .await,
        vec![1]
    );
    assert_eq!(find(EventQuery::page(1, 2)).await, vec![1, 2]);
    assert_eq!(find(EventQuery::page(5, 2)).await, vec![5]);
    assert_eq!(find(EventQuery::page(0, 0)).await, Vec::<u64>::new());
    h.finish().await;
}

fn token_issued(time: u64) -> AuditEvent {
    AuditEvent::new(
        time,
        EventKind::TokenIssued {
            subject: "svc:trainer".into(),
            client_id: "trainer".into(),
            jti: format!("j-{time}"),
            kid: "k1".into(),
            scope: "inference.invoke".into(),
            audience: vec!["inference".into()],
            grant: "client_credentials".into(),
            expires_at: time + 300,
            issued_by: None,
        },
    )
}

fn auth_failed(time: u64) -> AuditEvent {
    AuditEvent::new(
        time,
        EventKind::ClientAuthFailed {
            client_id: "trainer".into(),
            method: "client_secret_basic".into(),
            reason: "bad secret".into(),
            source_ip: IpAddr::from([192, 0, 2, 9]),
        },
    )
}

/// A mix of event types around [1000, 1300), appended out of time order;
/// the access decision at 1250 is at index 0.
fn activity_events() -> Vec<AuditEvent> {
    let chat = "Endpoint::\"chat\"";
    vec![
        decision(1250, "user:erin", chat, Decision::Allow),
        decision(1000, "user:alice", chat, Decision::Allow),
        // A NUL in a body (`\u0000` in its JSON): the backfill must not choke.
        decision(1005, "user:bob", "Endpoint::\"n\u{0}ul\"", Decision::Deny),
        token_issued(1100),
        decision(1099, "user:alice", chat, Decision::Allow),
        decision(1150, "user:bob", chat, Decision::Deny),
        auth_failed(1199),
        token_issued(1299),
        // Outside [1000, 1300).
        decision(999, "user:alice", chat, Decision::Deny),
        token_issued(1300),
        key_event(1010, "k1"),
    ]
}

fn count(bucket_start: u64, kind: &str, outcome: Option<&str>, count: u64) -> ActivityCount {
    ActivityCount {
        bucket_start,
        kind: kind.into(),
        outcome: outcome.map(Into::into),
        count,
    }
}

/// What [`activity_events`] gives in buckets of 100 s from 1000 to 1300.
fn activity_by_100s() -> Vec<ActivityCount> {
    vec![
        count(1000, "access_decision", Some("allow"), 2),
        count(1000, "access_decision", Some("deny"), 1),
        count(1000, "key_created", None, 1),
        count(1100, "access_decision", Some("deny"), 1),
        count(1100, "client_auth_failed", None, 1),
        count(1100, "token_issued", None, 1),
        count(1200, "access_decision", Some("allow"), 1),
        count(1200, "token_issued", None, 1),
    ]
}

async fn activity_counts<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    assert_eq!(s.audit_activity(0, 10_000, 60).await.unwrap(), vec![]);
    let events = activity_events();
    let prepared = prepare(&events);
    assert_eq!(prepared[0].outcome(), Some("allow"));
    assert_eq!(prepared[3].outcome(), None);
    // Two batches: the counts do not depend on how events were appended.
    s.append_batch(&prepared[..4]).await.unwrap();
    s.append_batch(&prepared[4..]).await.unwrap();

    assert_eq!(s.audit_activity(1000, 1300, 100).await.unwrap(), activity_by_100s());

    // An erased access decision still counts, with its outcome.
    assert!(s.erase(0, "gdpr-7", 2000).await.unwrap());
    assert_eq!(s.events(&EventQuery::page(0, 1)).await.unwrap()[0].content, None);
    assert_eq!(s.audit_activity(1000, 1300, 100).await.unwrap(), activity_by_100s());

    // Buckets start at `since`, whatever it is; the last is cut by `until`.
    assert_eq!(
        s.audit_activity(1050, 1251, 100).await.unwrap(),
        vec![
            count(1050, "access_decision", Some("allow"), 1),
            count(1050, "token_issued", None, 1),
            count(1150, "access_decision", Some("deny"), 1),
            count(1150, "client_auth_failed", None, 1),
            count(1250, "access_decision", Some("allow"), 1),
        ]
    );
    // One bucket for everything, however long it is asked to be.
    assert_eq!(
        s.audit_activity(0, 5000, u64::MAX).await.unwrap(),
        vec![
            count(0, "access_decision", Some("allow"), 3),
            count(0, "access_decision", Some("deny"), 3),
            count(0, "client_auth_failed", None, 1),
            count(0, "key_created", None, 1),
            count(0, "token_issued", None, 3),
        ]
    );
    // One-second buckets: the bounds are exact.
    assert_eq!(
        s.audit_activity(999, 1001, 1).await.unwrap(),
        vec![
            count(999, "access_decision", Some("deny"), 1),
            count(1000, "access_decision", Some("allow"), 1),
        ]
    );
    assert_eq!(
        s.audit_activity(1300, 1301, 1).await.unwrap(),
        vec![count(1300, "token_issued", None, 1)]
    );

    // The most buckets allowed, and one more.
    assert_eq!(
        s.audit_activity(1000, 1000 + MAX_ACTIVITY_BUCKETS, 1)
            .await
            .unwrap()
            .len(),
        events.len() - 1
    );
    for (since, until, bucket) in [
        (1000, 1300, 0),
        (1000, 1000, 60),
        (1300, 1000, 60),
        (1000, 1001 + MAX_ACTIVITY_BUCKETS, 1),
        (0, 2 * MAX_ACTIVITY_BUCKETS + 1, 2),
    ] {
        let result = s.audit_activity(since, until, bucket).await;
        assert!(
            matches!(result, Err(StoreError::InvalidQuery(_))),
            "{since}..{until} by {bucket}: {result:?}"
        );
    }
    assert!(matches!(
        s.audit_activity(0, u64::MAX, u64::MAX).await,
        Err(StoreError::OutOfRange(_))
    ));
    h.finish().await;
}

async fn proofs_match_reference_for_every_pair<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    // 37 leaves in batches of varying size, a checkpoint after each.
    let mut leaves = Vec::new();
    for batch in [1u64, 2, 3, 1, 8, 5, 16, 1] {
        leaves.extend(append_keys(s, leaves.len() as u64, batch).await);
        let head = s.tree_head().await.unwrap();
        assert_eq!(head.root, merkle::root(&leaves), "root at size {}", leaves.len());
        assert!(s.put_checkpoint(head.size, head.size, "note").await.unwrap());
    }
    assert_eq!(leaves.len(), 37);
    for cp in s.checkpoints(0, 100).await.unwrap() {
        assert_eq!(
            s.root_at(cp.size).await.unwrap(),
            merkle::root(&leaves[..cp.size as usize])
        );
    }
    check_tree(s, &leaves, true).await;
    assert!(matches!(
        s.inclusion_proof(37, 38).await,
        Err(StoreError::AuditBeyondEnd {
            requested: 38,
            size: 37
        })
    ));
    assert!(matches!(
        s.consistency_proof(5, 38).await,
        Err(StoreError::AuditBeyondEnd { .. })
    ));
    assert!(matches!(s.consistency_proof(6, 5).await, Err(StoreError::Audit(_))));
    assert!(matches!(s.root_at(38).await, Err(StoreError::AuditBeyondEnd { .. })));
    // A subtree that is not complete is not stored.
    assert!(matches!(
        s.subtrees(&[Subtree::new(1, 0), Subtree::new(3, 4)]).await,
        Err(StoreError::Audit(warden_audit::AuditError::MissingNode {
            level: 3,
            index: 4
        }))
    ));
    assert_eq!(
        s.subtrees(&[Subtree::new(5, 0), Subtree::new(0, 36), Subtree::new(2, 8)])
            .await
            .unwrap(),
        vec![merkle::root(&leaves[..32]), leaves[36], merkle::root(&leaves[32..36])]
    );
    h.finish().await;
}

/// Integrates everything queued in `store`, batches of at most `max`.
async fn integrate_all<S: AuditStore>(store: &S, max: usize) -> u64 {
    let mut total = 0;
    for _ in 0..10_000 {
        let done = store.integrate(max).await.unwrap();
        if done.count() == 0 {
            return total;
        }
        total += done.count();
    }
    panic!("the queue never emptied");
}

/// The `kid` of a stored key event.
fn kid_of(event: &warden_store::StoredEvent) -> String {
    let body = AuditEvent::from_body(&event.content.as_ref().unwrap().0).unwrap();
    match body.kind {
        EventKind::KeyCreated { kid, .. } => kid,
        other => panic!("not a key event: {other:?}"),
    }
}

async fn queued_events_are_pending_until_integrated<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let events: Vec<AuditEvent> = (0..3).map(|i| key_event(100 + i, &format!("q{i}"))).collect();
    let prepared = prepare(&events);
    let receipts = s.enqueue_batch(&prepared).await.unwrap();
    assert_eq!(receipts.len(), 3);
    assert!(receipts.windows(2).all(|w| w[0] < w[1]), "{receipts:?}");
    // Queued: durable and readable as pending, but not in the tree.
    assert_eq!(s.size().await.unwrap(), 0);
    let status = s.queue_status().await.unwrap();
    assert_eq!(status.depth, 3);
    assert!(status.oldest_queued_at_ms.is_some());
    let pending = s.queued_events(0, 10).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), receipts);
    for (queued, sealed) in pending.iter().zip(&prepared) {
        assert_eq!(&queued.leaf_hash, sealed.leaf_hash());
        assert_eq!(queued.body, sealed.body());
        assert_eq!(queued.kind, "key_created");
    }
    assert_eq!(s.queued_events(receipts[1], 10).await.unwrap().len(), 1);
    // Integration moves the oldest first, and never one twice.
    assert_eq!(s.integrate(2).await.unwrap().indices, 0..2);
    assert_eq!(s.queue_status().await.unwrap().depth, 1);
    assert_eq!(s.integrate(2).await.unwrap().indices, 2..3);
    assert_eq!(s.integrate(2).await.unwrap().indices, 3..3);
    assert_eq!(s.queue_status().await.unwrap(), warden_store::QueueStatus::default());
    let stored = s.events(&EventQuery::page(0, 10)).await.unwrap();
    assert_eq!(stored.iter().map(kid_of).collect::<Vec<_>>(), ["q0", "q1", "q2"]);
    // The columns made it across: a search by subject-less type finds them.
    let leaves = all_leaves(s).await;
    assert_eq!(leaves, prepared.iter().map(|p| *p.leaf_hash()).collect::<Vec<_>>());
    check_tree(s, &leaves, true).await;
    // An event appended directly (the command line) and queued ones share
    // one tree.
    append_keys(s, 3, 1).await;
    s.enqueue_batch(&prepare(&[access(200, "user:ann", "Model::\"m\"")]))
        .await
        .unwrap();
    assert_eq!(s.integrate(10).await.unwrap().indices, 4..5);
    let found = s
        .events(&EventQuery {
            subject: Some("user:ann".into()),
            outcome: Some("allow".into()),
            limit: 10,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|e| e.index).collect::<Vec<_>>(),
        [4],
        "query columns are integrated"
    );
    h.finish().await;
}

/// A queueing transaction that rolled back leaves a hole in the receipts
/// (SQLite's AUTOINCREMENT, PostgreSQL's sequence); the log's indices
/// have none.
async fn a_hole_in_the_receipts_leaves_none_in_the_log<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let events: Vec<AuditEvent> = (0..5).map(|i| key_event(300 + i, &format!("h{i}"))).collect();
    let receipts = s.enqueue_batch(&prepare(&events)).await.unwrap();
    h.db()
        .exec(&format!("DELETE FROM audit_queue WHERE seq = {}", receipts[2]))
        .await;
    assert_eq!(s.integrate(10).await.unwrap().indices, 0..4);
    let stored = s.events(&EventQuery::page(0, 10)).await.unwrap();
    assert_eq!(stored.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(stored.iter().map(kid_of).collect::<Vec<_>>(), ["h0", "h1", "h3", "h4"]);
    check_tree(s, &all_leaves(s).await, true).await;
    h.finish().await;
}

async fn writer_queues_and_integration_gives_contiguous_indices<H: Harness>() {
    let h = H::start().await;
    let writer = AuditWriter::spawn(h.store().clone(), WriterOptions::default());
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..50u64 {
                let kid = format!("t{t}-{i}");
                let receipt = writer.append(&key_event(t * 1000 + i, &kid)).await.unwrap();
                got.push((receipt, kid));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let mut receipts: Vec<u64> = all.iter().map(|(r, _)| *r).collect();
    receipts.dedup();
    assert_eq!(receipts.len(), 400, "every receipt is distinct");
    assert_eq!(h.store().queue_status().await.unwrap().depth, 400);
    assert_eq!(integrate_all(h.store(), 64).await, 400);
    // Integrated in receipt order (one writer: commit order), indices from 0.
    let stored = h.store().events(&EventQuery::page(0, 1000)).await.unwrap();
    assert_eq!(stored.len(), 400);
    for ((_, kid), (expected, event)) in all.iter().zip(stored.iter().enumerate()) {
        assert_eq!(event.index, expected as u64);
        assert_eq!(&kid_of(event), kid);
    }
    let leaves = all_leaves(h.store()).await;
    check_tree(h.store(), &leaves, false).await;
    writer.close().await;
    h.finish().await;
}

/// Two instances (replicas) queue at once while both integrate at once (two
/// sequencers, as when a paused holder's lease lapsed): one tree, every
/// event exactly once.
async fn two_instances_queue_and_integrate_concurrently<H: Harness>() {
    let h = H::start().await;
    let second = h.another().await;
    let writers = [
        AuditWriter::spawn(h.store().clone(), WriterOptions::default()),
        AuditWriter::spawn(second.clone(), WriterOptions::default()),
    ];
    let producing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut sequencers = Vec::new();
    for store in [h.store().clone(), second.clone()] {
        let producing = std::sync::Arc::clone(&producing);
        sequencers.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..100_000 {
                let done = store.integrate(7).await.unwrap().count();
                n += done;
                if done == 0 {
                    if !producing.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            n
        }));
    }
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let writer = writers[(t % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50u64 {
                writer
                    .append(&key_event(t * 1000 + i, &format!("t{t}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    producing.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut integrated = 0;
    for s in sequencers {
        integrated += s.await.unwrap();
    }
    integrated += integrate_all(h.store(), 64).await;
    assert_eq!(integrated, 400);
    let stored = h.store().events(&EventQuery::page(0, 1000)).await.unwrap();
    let mut kids: Vec<String> = stored.iter().map(kid_of).collect();
    kids.sort();
    let mut expected: Vec<String> = (0..8u64)
        .flat_map(|t| (0..50u64).map(move |i| format!("t{t}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(kids, expected, "every queued event integrated exactly once");
    let leaves = all_leaves(h.store()).await;
    assert_eq!(second.tree_head().await.unwrap().root, merkle::root(&leaves));
    check_tree(h.store(), &leaves, false).await;
    check_tree(&second, &leaves, false).await;
    for w in &writers {
        w.close().await;
    }
    H::close_store(&second).await;
    h.finish().await;
}

async fn erase_keeps_the_leaf<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    let events: Vec<AuditEvent> = (0..5).map(|i| access(10 + i, "user:erin", "Dataset::\"d\"")).collect();
    let prepared = prepare(&events);
    s.append_batch(&prepared).await.unwrap();
    let before = s.tree_head().await.unwrap();

    assert!(s.erase(2, "gdpr-1", 99).await.unwrap());
    assert!(!s.erase(2, "again", 100).await.unwrap(), "already erased");
    assert!(matches!(
        s.erase(5, "x", 1).await,
        Err(StoreError::AuditBeyondEnd { requested: 5, size: 5 })
    ));
    let erased = &s.events(&EventQuery::page(2, 1)).await.unwrap()[0];
    assert_eq!(erased.content, None);
    assert_eq!(
        erased.erasure,
        Some(warden_store::audit::Erasure {
            at: 99,
            reason: "gdpr-1".into()
        })
    );
    assert_eq!(&erased.leaf_hash, prepared[2].leaf_hash());
    assert_eq!(erased.subject.as_deref(), Some("user:erin"), "query columns stay");
    assert_eq!(s.tree_head().await.unwrap(), before);
    let leaves: Vec<Hash> = prepared.iter().map(|p| *p.leaf_hash()).collect();
    check_tree(s, &leaves, true).await;

    // An auditor's offline check of the stored log reports the erasure.
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let signer = NoteSigner::new("warden.test/audit", Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()).unwrap();
    let note = Checkpoint::new("warden.test/audit", before.size, before.root)
        .sign(&signer)
        .unwrap();
    s.put_checkpoint(before.size, 100, &note).await.unwrap();
    let records = s
        .events(&EventQuery::page(0, 100))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.into_record());
    let notes: Vec<String> = s
        .checkpoints(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.note)
        .collect();
    let report = verify_log(records, &notes, &signer.verifier().unwrap(), "warden.test/audit").unwrap();
    assert_eq!((report.leaves, report.erased, report.checkpoints), (5, 1, 1));
    h.finish().await;
}

async fn checkpoints_round_trip<H: Harness>() {
    let h = H::start().await;
    let s = h.store();
    append_keys(s, 0, 5).await;
    assert!(s.put_checkpoint(1, 10, "one\n").await.unwrap());
    assert!(s.put_checkpoint(5, 30, "five\n").await.unwrap());
    assert!(s.put_checkpoint(3, 20, "three\n").await.unwrap());
    assert!(!s.put_checkpoint(3, 40, "other\n").await.unwrap(), "first one kept");
    let all = s.checkpoints(0, 100).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|c| (c.size, c.time, c.note.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, 10, "one\n"), (3, 20, "three\n"), (5, 30, "five\n")]
    );
    assert_eq!(s.checkpoints(2, 1).await.unwrap(), all[1..2]);
    assert_eq!(s.latest_checkpoint().await.unwrap().as_ref(), all.last());
    h.finish().await;
}

async fn reopened_store_continues_the_tree<H: Harness>() {
    let mut h = H::start().await;
    let mut leaves = append_keys(h.store(), 0, 5).await;
    h.reopen().await;
    assert_eq!(h.store().size().await.unwrap(), 5);
    leaves.extend(append_keys(h.store(), 5, 6).await);
    h.reopen().await;
    leaves.extend(append_keys(h.store(), 11, 1).await);
    check_tree(h.store(), &leaves, true).await;
    h.finish().await;
}

async fn writer_fails_closed<H: Harness>() {
    let h = H::start().await;
    let limit = Duration::from_secs(30);
    // A closed writer refuses at once, through every clone.
    let writer = AuditWriter::spawn(h.store().clone(), WriterOptions::default());
    let clone = writer.clone();
    assert!(
        writer.append(&key_event(1, "a")).await.unwrap() >= 1,
        "receipts start at 1"
    );
    writer.close().await;
    assert!(clone.is_closed());
    let refused = tokio::time::timeout(limit, clone.append(&key_event(2, "b")))
        .await
        .unwrap();
    assert!(matches!(refused, Err(StoreError::AuditWriterClosed)), "{refused:?}");
    writer.close().await;

    // A store that cannot be written fails every waiter, and keeps failing.
    let broken = h.another().await;
    let writer = AuditWriter::spawn(broken.clone(), WriterOptions::default());
    H::close_store(&broken).await;
    let mut waiters = Vec::new();
    for i in 0..20 {
        let writer = writer.clone();
        waiters.push(tokio::spawn(async move {
            tokio::time::timeout(limit, writer.append(&key_event(i, "c"))).await
        }));
    }
    for waiter in waiters {
        let result = waiter.await.unwrap().expect("an append hung");
        assert!(matches!(result, Err(StoreError::AuditAppend(_))), "{result:?}");
    }
    writer.close().await;
    assert_eq!(
        h.store().queue_status().await.unwrap().depth,
        1,
        "nothing else was recorded"
    );
    h.finish().await;
}

/// A row of `audit_events` as a store before migration 0006 wrote it.
type LegacyRow = (
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

/// [`activity_events`] as rows without an outcome; the first (an access
/// decision) was erased before the migration, so its outcome is lost.
fn legacy_rows() -> Vec<LegacyRow> {
    prepare(&activity_events())
        .iter()
        .zip(activity_events())
        .enumerate()
        .map(|(i, (p, event))| {
            let erased = i == 0;
            (
                i as i64,
                event.time as i64,
                p.kind().to_owned(),
                p.subject().map(Into::into),
                p.resource().map(Into::into),
                (!erased).then(|| p.body().to_vec()),
                (!erased).then(|| vec![7u8; 32]),
                p.leaf_hash().to_vec(),
                erased.then_some(1500),
                erased.then(|| "gdpr-1".to_owned()),
            )
        })
        .collect()
}

/// What migration 0006 makes of [`legacy_rows`].
fn legacy_activity_by_100s() -> Vec<ActivityCount> {
    let mut expected = activity_by_100s();
    let erased = expected
        .iter_mut()
        .find(|c| c.bucket_start == 1200 && c.kind == "access_decision")
        .unwrap();
    erased.outcome = None;
    expected
}

const LEGACY_INSERT: &str = "INSERT INTO audit_events \
    (idx, time, type, subject, resource, body, salt, leaf_hash, erased_at, erasure_reason) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The query inserting a [`LegacyRow`], on either backend.
macro_rules! legacy_insert {
    ($row:expr) => {{
        let (idx, time, kind, subject, resource, body, salt, leaf_hash, erased_at, reason): LegacyRow = $row;
        sqlx::query(LEGACY_INSERT)
            .bind(idx)
            .bind(time)
            .bind(kind)
            .bind(subject)
            .bind(resource)
            .bind(body)
            .bind(salt)
            .bind(leaf_hash)
            .bind(erased_at)
            .bind(reason)
    }};
}

/// Migration 0006 fills the outcome of access decisions in from their
/// bodies; one erased before it keeps none, and still counts.
#[tokio::test]
async fn sqlite_migration_fills_in_outcomes() {
    use std::str::FromStr as _;
    let db = TestDb::sqlite();
    let url = db.url();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate!("./migrations/sqlite").run_to(5, &pool).await.unwrap();
    for row in legacy_rows() {
        legacy_insert!(row).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let store = SqliteStore::connect(url).await.unwrap();
    assert_eq!(
        store.audit_activity(1000, 1300, 100).await.unwrap(),
        legacy_activity_by_100s()
    );
    store.close().await;
    db.cleanup().await;
}

/// As [`sqlite_migration_fills_in_outcomes`], on PostgreSQL.
#[tokio::test]
async fn postgres_migration_fills_in_outcomes() {
    use std::str::FromStr as _;
    let db = TestDb::postgres();
    let (url, schema) = (db.url(), db.schema().unwrap());
    let admin = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema)]);
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    sqlx::migrate!("./migrations/postgres").run_to(5, &pool).await.unwrap();
    for row in legacy_rows() {
        legacy_insert!(row).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let store = PgStore::connect_in_schema(url, schema).await.unwrap();
    assert_eq!(
        store.audit_activity(1000, 1300, 100).await.unwrap(),
        legacy_activity_by_100s()
    );
    store.close().await;
    db.cleanup().await;
}

warden_test_support::each_backend! {
    #[tokio::test]
    empty_log,
    append_and_read_back,
    proofs_match_reference_for_every_pair,
    erase_keeps_the_leaf,
    activity_counts,
    checkpoints_round_trip,
    reopened_store_continues_the_tree,
    queued_events_are_pending_until_integrated,
    a_hole_in_the_receipts_leaves_none_in_the_log;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    writer_queues_and_integration_gives_contiguous_indices,
    two_instances_queue_and_integrate_concurrently;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    writer_fails_closed;
}
