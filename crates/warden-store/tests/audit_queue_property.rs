//! Property: whatever the interleaving of queue appends from several
//! replicas and integrations by any of them, the queue integrates into one
//! tree that holds every event exactly once, and every pair of tree heads
//! observed along the way is consistent (RFC 9162 consistency proofs from
//! the store, checked against the reference code), on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use warden_audit::{AuditEvent, EventKind, Hash, merkle, verify_consistency};
use warden_store::{AuditStore, EventQuery, PreparedEvent, StoredEvent, TreeHead};
use warden_test_support::store::{Harness, PgHarness, SqliteHarness};

/// One step of a schedule.
#[derive(Debug, Clone)]
enum Step {
    /// Replica `replica` queues `n` events in one transaction.
    Queue { replica: usize, n: u8 },
    /// Replica `replica` integrates at most `max` events.
    Integrate { replica: usize, max: u8 },
}

const REPLICAS: usize = 3;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..REPLICAS, 1..6u8).prop_map(|(replica, n)| Step::Queue { replica, n }),
        (0..REPLICAS, 1..9u8).prop_map(|(replica, max)| Step::Integrate { replica, max }),
    ]
}

fn event(n: u64) -> AuditEvent {
    AuditEvent::new(
        1_000 + n,
        EventKind::KeyCreated {
            kid: format!("k{n}"),
            alg: "EdDSA".into(),
        },
    )
}

fn kid_of(event: &StoredEvent) -> String {
    match AuditEvent::from_body(&event.content.as_ref().unwrap().0).unwrap().kind {
        EventKind::KeyCreated { kid, .. } => kid,
        other => panic!("not a key event: {other:?}"),
    }
}

async fn run_schedule<H: Harness>(steps: Vec<Step>) {
    let h = H::start().await;
    let mut replicas = vec![h.store().clone()];
    for _ in 1..REPLICAS {
        replicas.push(h.another().await);
    }
    let mut next = 0u64;
    let mut heads: Vec<TreeHead> = vec![replicas[0].tree_head().await.unwrap()];
    for step in steps {
        match step {
            Step::Queue { replica, n } => {
                let events: Vec<PreparedEvent> = (next..next + u64::from(n))
                    .map(|i| PreparedEvent::seal(&event(i)).unwrap())
                    .collect();
                next += u64::from(n);
                replicas[replica].enqueue_batch(&events).await.unwrap();
            }
            Step::Integrate { replica, max } => {
                let done = replicas[replica].integrate(usize::from(max)).await.unwrap();
                assert!(done.count() <= u64::from(max));
                heads.push(replicas[(replica + 1) % REPLICAS].tree_head().await.unwrap());
            }
        }
    }
    // Drain from the last replica, then read everything back.
    for _ in 0..10_000 {
        if replicas[REPLICAS - 1].integrate(8).await.unwrap().count() == 0 {
            break;
        }
    }
    let final_head = replicas[0].tree_head().await.unwrap();
    heads.push(final_head);
    assert_eq!(final_head.size, next, "every queued event is in the tree");
    let stored = replicas[1].events(&EventQuery::page(0, 10_000)).await.unwrap();
    let mut kids: Vec<String> = stored.iter().map(kid_of).collect();
    kids.sort();
    let mut expected: Vec<String> = (0..next).map(|i| format!("k{i}")).collect();
    expected.sort();
    assert_eq!(kids, expected, "each exactly once");
    let leaves: Vec<Hash> = stored.iter().map(|e| e.leaf_hash).collect();
    assert_eq!(final_head.root, merkle::root(&leaves));
    // Every observed head is a prefix of the final tree, and consistent
    // with every other.
    for (i, a) in heads.iter().enumerate() {
        assert_eq!(a.root, merkle::root(&leaves[..a.size as usize]));
        for b in &heads[i..] {
            if a.size == 0 || a.size > b.size {
                continue;
            }
            let proof = replicas[2].consistency_proof(a.size, b.size).await.unwrap();
            verify_consistency(a.size, b.size, &a.root, &b.root, &proof).unwrap();
        }
    }
    for store in &replicas[1..] {
        H::close_store(store).await;
    }
    h.finish().await;
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_queues_integrate_into_one_consistent_tree_sqlite(steps in prop::collection::vec(step(), 1..40)) {
        block_on(run_schedule::<SqliteHarness>(steps));
    }

    #[test]
    fn interleaved_queues_integrate_into_one_consistent_tree_postgres(steps in prop::collection::vec(step(), 1..40)) {
        block_on(run_schedule::<PgHarness>(steps));
    }
}
