//! Lineage query benchmarks, per backend, on a graph of 100,000 edges:
//!
//! - 20 datasets `l00`…`l19` (layers) of 2,000 versions each; version `i`
//!   of layer `l ≥ 1` derives from 2 or 3 (alternately) versions of layer
//!   `l − 1` picked at random within ±20 of `i`: 95,000 edges, full of
//!   diamonds, where what one version touches widens by about 20 versions
//!   per layer.
//! - 100 models `m000`…`m099` of 10 versions each, every version trained
//!   on 5 versions of the last layer near its own position: 5,000 edges.
//!
//! Queries:
//! - `lineage/<backend>/upstream_model`: everything `model:m050@5` was
//!   built from, at depth 100 (its whole ancestry, 20 levels).
//! - `lineage/<backend>/downstream_depth10`: 10 levels below
//!   `dataset:l00@1000`.
//! - `lineage/<backend>/impact`: every version derived from
//!   `dataset:l00@1000`, at any depth.
//!
//! The graph is written with plain SQL in one transaction (registering
//! 41,000 versions through the API would take longer than the benchmark),
//! rows for every dataset, model and version it names included, since a
//! walk checks that its root exists. Neither backend is `ANALYZE`d after
//! the load: the queries must not depend on fresh planner statistics.
//!
//! SQLite runs in a temp dir; PostgreSQL in a fresh schema at
//! `WARDEN_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), skipped with a note when it
//! cannot be reached.
//!
//! Run: `cargo bench -p warden-store --bench lineage`

use std::hint::black_box;
use std::process::ExitCode;
use std::str::FromStr as _;
use std::time::Duration;

use criterion::Criterion;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::runtime::Runtime;
use warden_registry::{Direction, NodeRef};
use warden_store::RegistryStore;
use warden_store::postgres::PgStore;
use warden_store::sqlite::SqliteStore;

type BenchResult<T> = Result<T, String>;

const LAYERS: u32 = 20;
const WIDTH: u32 = 2_000;
const WINDOW: u32 = 20;
const MODELS: u32 = 100;
const MODEL_VERSIONS: u32 = 10;
const TRAINED_FROM: u32 = 5;

/// The generated graph, as the rows the store keeps.
struct Shape {
    /// (from_node, to_node).
    edges: Vec<(String, String)>,
}

/// SplitMix64: deterministic, so every run benches the same graph.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `n` distinct values in `[center − WINDOW, center + WINDOW]`,
    /// clamped to `[0, WIDTH)`.
    fn near(&mut self, center: u32, n: u32) -> Vec<u32> {
        let lo = center.saturating_sub(WINDOW);
        let hi = (center + WINDOW).min(WIDTH - 1);
        let span = u64::from(hi - lo + 1);
        let mut out: Vec<u32> = Vec::new();
        while out.len() < n as usize {
            let pick = lo + u32::try_from(self.next() % span).unwrap_or(0);
            if !out.contains(&pick) {
                out.push(pick);
            }
        }
        out
    }
}

fn layer(l: u32) -> String {
    format!("l{l:02}")
}

fn model(m: u32) -> String {
    format!("m{m:03}")
}

fn shape() -> Shape {
    let mut rng = Rng(42);
    let mut edges = Vec::with_capacity(100_000);
    for l in 1..LAYERS {
        for i in 0..WIDTH {
            let to = NodeRef::dataset(&layer(l), i + 1).to_string();
            for p in rng.near(i, 2 + i % 2) {
                edges.push((NodeRef::dataset(&layer(l - 1), p + 1).to_string(), to.clone()));
            }
        }
    }
    for m in 0..MODELS {
        for v in 0..MODEL_VERSIONS {
            let to = NodeRef::model(&model(m), v + 1).to_string();
            let center = (m * MODEL_VERSIONS + v) * WIDTH / (MODELS * MODEL_VERSIONS);
            for p in rng.near(center, TRAINED_FROM) {
                edges.push((NodeRef::dataset(&layer(LAYERS - 1), p + 1).to_string(), to.clone()));
            }
        }
    }
    Shape { edges }
}

fn hex_digest() -> String {
    format!("sha256:{}", "ab".repeat(32))
}

fn json<T: serde::Serialize>(rows: &T) -> BenchResult<String> {
    serde_json::to_string(rows).map_err(|e| e.to_string())
}

async fn seed_sqlite(url: &str, shape: &Shape) -> BenchResult<()> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .map_err(|e| e.to_string())?;
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let layers: Vec<String> = (0..LAYERS).map(layer).collect();
    let models: Vec<String> = (0..MODELS).map(model).collect();
    let versions = |names: &[String], n: u32| -> Vec<(String, u32)> {
        names
            .iter()
            .flat_map(|name| (1..=n).map(move |v| (name.clone(), v)))
            .collect()
    };
    let statements: [(&'static str, String); 5] = [
        (
            "INSERT INTO datasets (name, owner, classification, allowed_purposes, created_by, created_at, updated_at) \
             SELECT value, 'team:data', 'internal', '[]', 'svc:bench', 0, 0 FROM json_each(?1)",
            json(&layers)?,
        ),
        (
            "INSERT INTO dataset_versions (dataset, version, digest, size, uri, created_by, created_at) \
             SELECT value ->> 0, value ->> 1, ?2, 1, 's3://bench/data', 'svc:bench', 0 FROM json_each(?1)",
            json(&versions(&layers, WIDTH))?,
        ),
        (
            "INSERT INTO models (name, owner, created_by, created_at) \
             SELECT value, 'team:ml', 'svc:bench', 0 FROM json_each(?1)",
            json(&models)?,
        ),
        (
            "INSERT INTO model_versions (model, version, digest, uri, metrics, stage, created_by, created_at, stage_changed_at) \
             SELECT value ->> 0, value ->> 1, ?2, 's3://bench/model', '{}', 'development', 'svc:bench', 0, 0 \
             FROM json_each(?1)",
            json(&versions(&models, MODEL_VERSIONS))?,
        ),
        (
            "INSERT INTO lineage_edges (from_node, to_node, recorded_by, created_at) \
             SELECT value ->> 0, value ->> 1, 'svc:bench', 0 FROM json_each(?1)",
            json(&shape.edges)?,
        ),
    ];
    for (sql, rows) in statements {
        sqlx::query(sql)
            .bind(rows)
            .bind(hex_digest())
            .execute(&mut *tx)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    pool.close().await;
    Ok(())
}

async fn seed_postgres(url: &str, schema: &str, shape: &Shape) -> BenchResult<()> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| e.to_string())?
        .options([("search_path", schema)]);
    let pool = sqlx::PgPool::connect_with(options).await.map_err(|e| e.to_string())?;
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let layers: Vec<String> = (0..LAYERS).map(layer).collect();
    let models: Vec<String> = (0..MODELS).map(model).collect();
    let (from, to): (Vec<&str>, Vec<&str>) = shape.edges.iter().map(|(a, b)| (a.as_str(), b.as_str())).unzip();
    let statements: [(&'static str, &[&str], &[&str]); 5] = [
        (
            "INSERT INTO datasets (name, owner, classification, allowed_purposes, created_by, created_at, updated_at) \
             SELECT n, 'team:data', 'internal', '[]', 'svc:bench', 0, 0 FROM UNNEST($1::text[]) AS n",
            &[],
            &[],
        ),
        (
            "INSERT INTO dataset_versions (dataset, version, digest, size, uri, created_by, created_at) \
             SELECT n, v, $3, 1, 's3://bench/data', 'svc:bench', 0 FROM UNNEST($1::text[]) AS n, generate_series(1, $4) AS v",
            &[],
            &[],
        ),
        (
            "INSERT INTO models (name, owner, created_by, created_at) \
             SELECT n, 'team:ml', 'svc:bench', 0 FROM UNNEST($2::text[]) AS n",
            &[],
            &[],
        ),
        (
            "INSERT INTO model_versions (model, version, digest, uri, metrics, stage, created_by, created_at, stage_changed_at) \
             SELECT n, v, $3, 's3://bench/model', '{}', 'development', 'svc:bench', 0, 0 \
             FROM UNNEST($2::text[]) AS n, generate_series(1, $5) AS v",
            &[],
            &[],
        ),
        (
            "INSERT INTO lineage_edges (from_node, to_node, recorded_by, created_at) \
             SELECT f, t, 'svc:bench', 0 FROM UNNEST($6::text[], $7::text[]) AS e(f, t)",
            &from,
            &to,
        ),
    ];
    for (sql, from, to) in statements {
        sqlx::query(sql)
            .bind(&layers)
            .bind(&models)
            .bind(hex_digest())
            .bind(i64::from(WIDTH))
            .bind(i64::from(MODEL_VERSIONS))
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    pool.close().await;
    Ok(())
}

fn bench_backend<S: RegistryStore>(c: &mut Criterion, rt: &Runtime, backend: &str, store: &S) -> BenchResult<()> {
    let model_root = NodeRef::model(&model(MODELS / 2), MODEL_VERSIONS / 2);
    let data_root = NodeRef::dataset(&layer(0), WIDTH / 2);
    // Check the answers once, and show their size.
    let up = rt
        .block_on(store.lineage(&model_root, Direction::Upstream, 100))
        .map_err(|e| e.to_string())?;
    let down = rt
        .block_on(store.lineage(&data_root, Direction::Downstream, 10))
        .map_err(|e| e.to_string())?;
    let impact = rt.block_on(store.impact(&data_root)).map_err(|e| e.to_string())?;
    eprintln!(
        "{backend}: upstream of {model_root}: {} nodes, {} edges; downstream (depth 10) of {data_root}: \
         {} nodes, {} edges; impact of {data_root}: {} nodes",
        up.nodes.len(),
        up.edges.len(),
        down.nodes.len(),
        down.edges.len(),
        impact.len()
    );
    if up.nodes.len() < 1000 || down.nodes.len() < 500 || impact.len() < 1000 {
        return Err(format!(
            "{backend}: the walks reached less of the graph than it was built for"
        ));
    }
    let mut g = c.benchmark_group(format!("lineage/{backend}"));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("upstream_model", |b| {
        b.iter(|| black_box(rt.block_on(store.lineage(&model_root, Direction::Upstream, 100))))
    });
    g.bench_function("downstream_depth10", |b| {
        b.iter(|| black_box(rt.block_on(store.lineage(&data_root, Direction::Downstream, 10))))
    });
    g.bench_function("impact", |b| {
        b.iter(|| black_box(rt.block_on(store.impact(&data_root))))
    });
    g.finish();
    Ok(())
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
    let shape = shape();
    eprintln!("graph: {} edges", shape.edges.len());

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = rt.block_on(SqliteStore::connect(&url)).map_err(|e| e.to_string())?;
    rt.block_on(seed_sqlite(&url, &shape))?;
    bench_backend(c, &rt, "sqlite", &sqlite)?;
    rt.block_on(sqlite.close());

    let url =
        std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bench_{}", hex_random());
    let connect = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), PgStore::connect_in_schema(&url, &schema)).await
    });
    let pg = match connect {
        Ok(Ok(pg)) => pg,
        Ok(Err(e)) => {
            eprintln!("postgres: skipped, cannot connect: {e}");
            return Ok(());
        }
        Err(_) => {
            eprintln!("postgres: skipped, connecting timed out");
            return Ok(());
        }
    };
    let result = rt
        .block_on(seed_postgres(&url, &schema, &shape))
        .and_then(|()| bench_backend(c, &rt, "postgres", &pg));
    rt.block_on(async {
        pg.close().await;
        if let Ok(pool) = sqlx::PgPool::connect(&url).await {
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
            eprintln!("lineage: {e}");
            ExitCode::FAILURE
        }
    }
}
