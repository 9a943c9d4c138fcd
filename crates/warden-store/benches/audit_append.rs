//! Audit-log storage benchmarks, per backend:
//!
//! - `audit_append/<backend>/<P>`: durable appends through one
//!   [`AuditWriter`] (group commit into the audit queue, default options)
//!   from P concurrent producers, each waiting for its event's commit
//!   before sending the next; each producer seals its own events
//!   (canonical JSON, salt, hashes) as a caller would. This is what a
//!   request waits for. Throughput is events per second.
//! - `audit_integrate/<backend>`: the sequencer's side, timed once (not by
//!   criterion: integration consumes the queue): the whole queue the
//!   append runs left, integrated in batches of 4096 (indices, leaves,
//!   subtrees, query columns), in events per second.
//! - `audit_sustained/<backend>`: producers (1024) and one sequencer at
//!   once for 10 s, as a server runs them: events queued and integrated
//!   per second, and the largest integration lag seen (sampled every
//!   50 ms), against the 1 s default bound.
//! - `audit_proof/<backend>/inclusion|consistency`: one proof from the
//!   store at the size the runs left (a few hundred thousand).
//!
//! SQLite runs in a temp dir (WAL, `synchronous = FULL`). PostgreSQL runs
//! in a fresh schema twice: `postgres` over TCP at `WARDEN_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`), and `postgres-unix`
//! over the Unix socket at `WARDEN_BENCH_POSTGRES_UNIX_URL` (default
//! `postgres:///test?host=/var/run/postgresql&user=postgres`); each is
//! skipped, with a note, when it cannot be reached. They used to differ
//! widely because sqlx 0.9.0 leaves Nagle's algorithm on for TCP (sqlx
//! issue #4335): a statement larger than one write waited ~40 ms for a
//! delayed ACK. The PostgreSQL store now keeps audit statements small
//! (`postgres.rs`, `STATEMENT_BYTES`), which closes most of the gap.
//!
//! Run: `cargo bench -p warden-store --bench audit_append`

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tokio::runtime::Runtime;
use warden_audit::{AuditEvent, Decision, EventKind};
use warden_store::audit_queue::MAX_INTEGRATION_BATCH;
use warden_store::postgres::PgStore;
use warden_store::sqlite::SqliteStore;
use warden_store::{AuditStore, AuditWriter, WriterOptions};

type BenchResult<T> = Result<T, String>;

const PRODUCERS: [u64; 2] = [64, 1024];
/// How long the sustained run produces.
const SUSTAINED: Duration = Duration::from_secs(10);
/// Its producers.
const SUSTAINED_PRODUCERS: u64 = 1024;

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
            decision: Decision::Allow,
            policy_ids: vec!["policy0".into()],
            request_id: format!("req-{i}"),
            route: "/v1/chat".into(),
            source_ip: std::net::IpAddr::from([192, 0, 2, 7]),
            upstream_status: Some(200),
            purpose: None,
        },
    )
}

/// Appends `total` events from `producers` tasks; returns the wall time.
async fn append_concurrently(writer: &AuditWriter, producers: u64, total: u64, failures: &Arc<AtomicU64>) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let writer = writer.clone();
            let failures = Arc::clone(failures);
            tokio::spawn(async move {
                for i in (p..total).step_by(producers as usize) {
                    if writer.append(&event(i)).await.is_err() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        if task.await.is_err() {
            failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    start.elapsed()
}

fn bench_backend<S: AuditStore + Clone + 'static>(
    c: &mut Criterion,
    rt: &Runtime,
    backend: &str,
    store: &S,
) -> BenchResult<()> {
    let writer = {
        let _guard = rt.enter();
        AuditWriter::spawn(store.clone(), WriterOptions::default())
    };
    let failures = Arc::new(AtomicU64::new(0));
    let appended = Arc::new(AtomicU64::new(0));
    let mut g = c.benchmark_group(format!("audit_append/{backend}"));
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(8));
    for producers in PRODUCERS {
        g.bench_function(producers.to_string(), |b| {
            b.iter_custom(|iters| {
                appended.fetch_add(iters, Ordering::Relaxed);
                rt.block_on(append_concurrently(&writer, producers, iters, &failures))
            })
        });
    }
    g.finish();
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{backend}: {failed} appends failed"));
    }
    // The sequencer's side: integrate everything the runs queued (the
    // queue's own count stops at a million).
    let queued = appended.load(Ordering::Relaxed);
    let started = Instant::now();
    let integrated = rt.block_on(integrate_all(store))?;
    let took = started.elapsed();
    if queued > 0 {
        eprintln!(
            "audit_integrate/{backend}: {integrated} events in {:.2} s = {:.0} events/s",
            took.as_secs_f64(),
            integrated as f64 / took.as_secs_f64()
        );
    }
    if integrated != queued {
        return Err(format!("{backend}: {queued} queued, {integrated} integrated"));
    }
    if queued > 0 {
        rt.block_on(sustained(backend, store, &writer, &failures, &appended))?;
    }
    rt.block_on(writer.close());
    let size = rt.block_on(store.size()).map_err(|e| e.to_string())?;
    if size != appended.load(Ordering::Relaxed) {
        return Err(format!(
            "{backend}: log holds {size} events, {} were acknowledged",
            appended.load(Ordering::Relaxed)
        ));
    }
    eprintln!("{backend}: log size after the append runs: {size}");
    if size == 0 {
        // The append benchmarks were filtered out: nothing to prove.
        return Ok(());
    }

    let mut index = 0u64;
    c.bench_function(&format!("audit_proof/{backend}/inclusion"), |b| {
        b.iter(|| {
            index = (index + 7_919) % size;
            black_box(rt.block_on(store.inclusion_proof(index, size)))
        })
    });
    let old = size / 3 + 1;
    c.bench_function(&format!("audit_proof/{backend}/consistency"), |b| {
        b.iter(|| black_box(rt.block_on(store.consistency_proof(old, size))))
    });
    // One checked proof, so a broken store cannot report fast failures.
    let proof = rt
        .block_on(store.inclusion_proof(size / 2, size))
        .map_err(|e| e.to_string())?;
    let leaf = rt
        .block_on(store.leaf_hashes(size / 2..size / 2 + 1))
        .map_err(|e| e.to_string())?;
    let root = rt.block_on(store.tree_head()).map_err(|e| e.to_string())?.root;
    let leaf = leaf.first().ok_or("no leaf")?;
    warden_audit::verify_inclusion(leaf, size / 2, size, &proof, &root).map_err(|e| e.to_string())?;
    Ok(())
}

/// Integrates the whole queue; returns how many events.
async fn integrate_all<S: AuditStore>(store: &S) -> BenchResult<u64> {
    let mut total = 0;
    for _ in 0..1_000_000 {
        let done = store
            .integrate(MAX_INTEGRATION_BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if done.count() == 0 {
            return Ok(total);
        }
        total += done.count();
    }
    Err("the queue never emptied".into())
}

/// Producers and a sequencer at once for [`SUSTAINED`]: prints the rates
/// and the largest lag seen.
async fn sustained<S: AuditStore + Clone + 'static>(
    backend: &str,
    store: &S,
    writer: &AuditWriter,
    failures: &Arc<AtomicU64>,
    appended: &Arc<AtomicU64>,
) -> BenchResult<()> {
    let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sequencer = {
        let (store, producing) = (store.clone(), Arc::clone(&producing));
        tokio::spawn(async move {
            let mut total = 0u64;
            for _ in 0..100_000_000u64 {
                let n = store
                    .integrate(MAX_INTEGRATION_BATCH)
                    .await
                    .map_err(|e| e.to_string())?
                    .count();
                total += n;
                if n == 0 {
                    if !producing.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Ok::<u64, String>(total)
        })
    };
    let sampler = {
        let (store, producing) = (store.clone(), Arc::clone(&producing));
        tokio::spawn(async move {
            let mut worst = 0u64;
            while producing.load(Ordering::Relaxed) {
                if let Ok(status) = store.queue_status().await {
                    worst = worst.max(status.lag_ms(now_ms()));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            worst
        })
    };
    let started = Instant::now();
    let count = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..SUSTAINED_PRODUCERS)
        .map(|p| {
            let (writer, failures, count) = (writer.clone(), Arc::clone(failures), Arc::clone(&count));
            tokio::spawn(async move {
                let mut i = p;
                while started.elapsed() < SUSTAINED {
                    if writer.append(&event(i)).await.is_err() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    i += SUSTAINED_PRODUCERS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    let produced_in = started.elapsed();
    producing.store(false, Ordering::Relaxed);
    let integrated = sequencer.await.map_err(|e| e.to_string())??;
    let caught_up = started.elapsed();
    let worst = sampler.await.map_err(|e| e.to_string())?;
    let produced = count.load(Ordering::Relaxed);
    appended.fetch_add(produced, Ordering::Relaxed);
    eprintln!(
        "audit_sustained/{backend}: {produced} events queued in {:.1} s ({:.0}/s) by {SUSTAINED_PRODUCERS} producers; \
         {integrated} integrated meanwhile and after, all done at {:.1} s ({:.0}/s); largest lag seen {worst} ms",
        produced_in.as_secs_f64(),
        produced as f64 / produced_in.as_secs_f64(),
        caught_up.as_secs_f64(),
        integrated as f64 / caught_up.as_secs_f64(),
    );
    if integrated != produced {
        return Err(format!("{backend}: {produced} queued, {integrated} integrated"));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn hex_random() -> String {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return "fallback".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(c: &mut Criterion) -> BenchResult<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = rt.block_on(SqliteStore::connect(&url)).map_err(|e| e.to_string())?;
    bench_backend(c, &rt, "sqlite", &sqlite)?;
    rt.block_on(sqlite.close());

    let tcp =
        std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let unix = std::env::var("WARDEN_BENCH_POSTGRES_UNIX_URL")
        .unwrap_or_else(|_| "postgres:///test?host=/var/run/postgresql&user=postgres".into());
    for (backend, url) in [("postgres", tcp), ("postgres-unix", unix)] {
        bench_postgres(c, &rt, backend, &url)?;
    }
    Ok(())
}

fn bench_postgres(c: &mut Criterion, rt: &Runtime, backend: &str, url: &str) -> BenchResult<()> {
    let schema = format!("bench_{}", hex_random());
    let connect = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), PgStore::connect_in_schema(url, &schema)).await
    });
    let pg = match connect {
        Ok(Ok(pg)) => pg,
        Ok(Err(e)) => {
            eprintln!("{backend}: skipped, cannot connect: {e}");
            return Ok(());
        }
        Err(_) => {
            eprintln!("{backend}: skipped, connecting timed out");
            return Ok(());
        }
    };
    let result = bench_backend(c, rt, backend, &pg);
    rt.block_on(async {
        pg.close().await;
        if let Ok(pool) = sqlx::PgPool::connect(url).await {
            let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
        }
    });
    result
}

fn main() -> ExitCode {
    let mut c = Criterion::default().configure_from_args();
    let result = run(&mut c);
    c.final_summary();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit_append: {e}");
            ExitCode::FAILURE
        }
    }
}
