//! Audit-log benchmarks at one million leaves.
//!
//! - `frontier/push_1e6`: append 1,000,000 leaf hashes to a `Frontier`
//!   (the appender's per-event tree cost), and `frontier/root` at that size;
//! - `memory_tree/push_1e6`: the same into a `MemoryTree`, which also keeps
//!   every subtree hash (what a store persists for proofs);
//! - `inclusion/prove` and `inclusion/verify`, `consistency/prove` and
//!   `consistency/verify` at n = 1,000,000 over the in-memory `NodeSource`;
//! - `event/body` (RFC 8785 body of an access decision; beside it plain
//!   `serde_json::to_vec` for scale), `leaf/salt_and_hash` (fresh salt and
//!   both hashes) and `leaf/seal` (the two together);
//! - `verify_log/1e6`: `verify_log` over an export of 1,000,000 sealed
//!   access decisions with a signed checkpoint every 100,000 leaves (goal:
//!   well under 5 s).
//!
//! Run: `cargo bench -p warden-audit --bench merkle -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use criterion::{BatchSize, Criterion, Throughput};
use warden_audit::merkle::leaf_hash;
use warden_audit::{
    AuditEvent, Checkpoint, Decision, EventKind, EventLeaf, Frontier, Hash, MemoryTree, NoteSigner, Record, Salt,
    consistency_proof, inclusion_proof, root_at, verify_consistency, verify_inclusion, verify_log,
};

const N: u64 = 1_000_000;
const ORIGIN: &str = "warden.example/audit";

type BenchResult<T> = Result<T, String>;

fn event(i: u64) -> AuditEvent {
    AuditEvent::new(
        1_800_000_000 + i / 1000,
        EventKind::AccessDecision {
            principal: format!("user:u{}", i % 997),
            actor_chain: vec![],
            client_id: "cli".into(),
            jti: format!("j-{i}"),
            action: "inference.invoke".into(),
            resource: "Endpoint::\"chat\"".into(),
            decision: if i.is_multiple_of(7) {
                Decision::Deny
            } else {
                Decision::Allow
            },
            policy_ids: vec!["policy0".into()],
            request_id: format!("req-{i}"),
            route: "/v1/chat".into(),
            source_ip: std::net::IpAddr::from([192, 0, 2, (i % 250) as u8]),
            upstream_status: Some(200),
            purpose: None,
        },
    )
}

fn leaves() -> Vec<Hash> {
    (0..N).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn bench_trees(c: &mut Criterion, leaves: &[Hash], tree: &MemoryTree) -> BenchResult<()> {
    let mut g = c.benchmark_group("frontier");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("push_1e6", |b| {
        b.iter(|| {
            let mut f = Frontier::new();
            for l in leaves {
                let _ = f.push(*l);
            }
            black_box(f.size())
        })
    });
    g.finish();

    let mut frontier = Frontier::new();
    for l in leaves {
        frontier.push(*l).map_err(|e| e.to_string())?;
    }
    c.bench_function("frontier/root", |b| b.iter(|| black_box(frontier.root())));

    let mut g = c.benchmark_group("memory_tree");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("push_1e6", |b| {
        b.iter(|| black_box(MemoryTree::from_leaves(leaves.iter().copied()).len()))
    });
    g.finish();

    let root = tree.root();
    let mut index = 0u64;
    c.bench_function("inclusion/prove", |b| {
        b.iter(|| {
            index = (index + 7_919) % N;
            black_box(inclusion_proof(tree, index, N))
        })
    });
    let cases: Vec<(u64, Vec<Hash>)> = (0..64)
        .map(|k| {
            let i = k * 15_601 % N;
            inclusion_proof(tree, i, N).map(|p| (i, p))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut k = 0;
    c.bench_function("inclusion/verify", |b| {
        b.iter(|| {
            k = (k + 1) % cases.len();
            let (i, proof) = cases.get(k).map_or((0, &[][..]), |(i, p)| (*i, p.as_slice()));
            let leaf = leaves.get(i as usize).copied().unwrap_or_default();
            black_box(verify_inclusion(&leaf, i, N, proof, &root))
        })
    });

    let old = 777_777;
    let old_root = root_at(tree, old).map_err(|e| e.to_string())?;
    c.bench_function("consistency/prove", |b| {
        b.iter(|| black_box(consistency_proof(tree, old, N)))
    });
    let proof = consistency_proof(tree, old, N).map_err(|e| e.to_string())?;
    c.bench_function("consistency/verify", |b| {
        b.iter(|| black_box(verify_consistency(old, N, &old_root, &root, &proof)))
    });
    Ok(())
}

fn bench_verify_log(c: &mut Criterion) -> BenchResult<()> {
    let sample = event(42);
    c.bench_function("event/body", |b| b.iter(|| black_box(sample.body())));
    c.bench_function("event/serde_json_to_vec", |b| {
        b.iter(|| black_box(serde_json::to_vec(&sample)))
    });
    let body = sample.body().map_err(|e| e.to_string())?;
    c.bench_function("leaf/salt_and_hash", |b| {
        b.iter(|| black_box(EventLeaf::seal(body.clone())))
    });
    c.bench_function("leaf/seal", |b| b.iter(|| black_box(sample.seal())));

    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed")?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| "key import failed")?;
    let signer = NoteSigner::new(ORIGIN, key).map_err(|e| e.to_string())?;
    let verifier = signer.verifier().map_err(|e| e.to_string())?;

    let mut rows: Vec<(Hash, Vec<u8>, Salt)> = Vec::with_capacity(N as usize);
    let mut frontier = Frontier::new();
    let mut checkpoints = Vec::new();
    for i in 0..N {
        let body = event(i).body().map_err(|e| e.to_string())?;
        let (body, salt, leaf) =
            EventLeaf::with_salt(body, Salt::generate(&rng).map_err(|e| e.to_string())?).into_parts();
        frontier.push(leaf).map_err(|e| e.to_string())?;
        rows.push((leaf, body, salt));
        if frontier.size().is_multiple_of(100_000) {
            let cp = Checkpoint::new(ORIGIN, frontier.size(), frontier.root());
            checkpoints.push(cp.sign(&signer).map_err(|e| e.to_string())?);
        }
    }
    let body_bytes: usize = rows.iter().map(|(_, b, _)| b.len()).sum();
    eprintln!(
        "verify_log: {N} records, {} MB of bodies, {} checkpoints",
        body_bytes / 1_000_000,
        checkpoints.len()
    );

    let mut g = c.benchmark_group("verify_log");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("1e6", |b| {
        b.iter_batched(
            || (),
            |()| {
                let records = rows.iter().enumerate().map(|(i, (leaf, body, salt))| Record {
                    index: i as u64,
                    leaf_hash: *leaf,
                    content: Some((body.as_slice(), *salt)),
                });
                black_box(verify_log(records, &checkpoints, &verifier, ORIGIN))
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    // One checked run, so a broken build cannot report a fast failure.
    let records = rows.iter().enumerate().map(|(i, (leaf, body, salt))| Record {
        index: i as u64,
        leaf_hash: *leaf,
        content: Some((body.as_slice(), *salt)),
    });
    let report = verify_log(records, &checkpoints, &verifier, ORIGIN).map_err(|e| e.to_string())?;
    if report.leaves != N {
        return Err(format!("verified {} leaves, expected {N}", report.leaves));
    }
    Ok(())
}

fn run() -> BenchResult<()> {
    let leaves = leaves();
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    let mut c = Criterion::default().configure_from_args();
    bench_trees(&mut c, &leaves, &tree)?;
    drop(tree);
    bench_verify_log(&mut c)?;
    c.final_summary();
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("merkle bench: {e}");
            ExitCode::FAILURE
        }
    }
}
