//! The audit queue and its sequencer through the real binary.
//!
//! - An integration lag past `audit.max_integration_delay` makes `/readyz`
//!   answer 503 naming it, and the server turns ready by itself once the
//!   queue is integrated (both backends). The lag is made the way it
//!   happens: the sequencer lease is held by a replica that has stopped
//!   working (a row in `leases` for a holder that never renews).
//! - Failover on PostgreSQL: two replicas; the one holding the sequencer
//!   lease is SIGKILLed under load; the other takes the lease over and
//!   integrates everything, so every acknowledged token has its event in
//!   the log, and `warden audit verify` passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;

const LEASE: &str = "audit-sequencer";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs `statement` on the installation's database, outside Warden.
async fn sql(w: &Warden, statement: &str) {
    match w.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&w.database_url()).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = pg_pool(w).await;
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

async fn pg_pool(w: &Warden) -> sqlx::PgPool {
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(&w.database_url())
        .unwrap()
        .options([("search_path", w.schema().unwrap())]);
    sqlx::PgPool::connect_with(options).await.unwrap()
}

/// The sequencer lease's holder, if any.
async fn lease_holder(w: &Warden) -> Option<String> {
    let pool = pg_pool(w).await;
    let row: Option<(String,)> = sqlx::query_as("SELECT holder FROM leases WHERE name = $1")
        .bind(LEASE)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    row.map(|(h,)| h)
}

async fn readyz(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
}

/// Polls `/readyz` (every 100 ms, at most `within`) until `done` holds.
async fn wait_ready(http: &reqwest::Client, base: &str, within: Duration, done: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = readyz(http, base).await;
        if done(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "readiness never got there: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let v: Value = serde_json::from_slice(&warden_jose::base64url::decode(payload).unwrap()).unwrap();
    v["jti"].as_str().unwrap().to_owned()
}

/// Issues a client-credentials token; its `jti` when acknowledged.
async fn issue(http: &reqwest::Client, base: &str, secret: &str) -> Option<String> {
    let response = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("svc", Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let v: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    Some(jti(v["access_token"].as_str()?))
}

/// The `token_issued` events in the log (integrated: `warden audit query`
/// prints pending ones too, but only integrated ones have an index).
fn integrated_jtis(w: &Warden) -> HashSet<String> {
    w.ok(&[
        "audit",
        "query",
        "--type",
        "token_issued",
        "--limit",
        "100000000",
        "--json",
    ])
    .lines()
    .map(|line| serde_json::from_str::<Value>(line).unwrap())
    .filter(|line| line["kind"] == "event")
    .map(|line| {
        let body: Value = serde_json::from_str(line["body"].as_str().unwrap()).unwrap();
        body["jti"].as_str().unwrap().to_owned()
    })
    .collect()
}

async fn lag_past_the_bound_is_unready_until_integrated(backend: Backend) {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), backend)
        .env("WARDEN_LOG", "error")
        .env("WARDEN_AUDIT_MAX_INTEGRATION_DELAY", "1");
    let secret = w.create_client(&["--name", "svc", "--kind", "service", "--scope", "x"]);
    let server = w.start(&["serve"]);
    let (http, base) = (reqwest::Client::new(), server.base());
    let body = wait_ready(&http, &base, Duration::from_secs(10), |s, _| s == 200).await;
    assert_eq!(body["audit_queue"]["max_delay_ms"], 1000, "{body}");

    // Another replica takes the lease and stops working for 7 s.
    let until = now() + 7;
    sql(
        &w,
        &format!(
            "INSERT INTO leases (name, holder, until) VALUES ('{LEASE}', 'frozen-replica', {until}) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until"
        ),
    )
    .await;
    // This server learns it lost the lease at its next renewal (every
    // second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Requests are still acknowledged (their events are queued durably)...
    let issued = issue(&http, &base, &secret)
        .await
        .expect("a token while the sequencer is away");
    // ...but once the oldest has waited past the bound, the server says so.
    let body = wait_ready(&http, &base, Duration::from_secs(4), |s, _| s == 503).await;
    let problems = body["problems"].to_string();
    assert!(problems.contains("audit integration lags"), "{body}");
    assert!(body["audit_queue"]["depth"].as_u64().unwrap() >= 1, "{body}");
    assert!(
        !integrated_jtis(&w).contains(&issued),
        "integrated while another replica held the lease"
    );
    // The queued event is readable as pending meanwhile.
    let pending = w.ok(&["audit", "query", "--type", "token_issued", "--json"]);
    assert!(
        pending.contains("\"kind\":\"pending\"") && pending.contains(&issued),
        "{pending}"
    );

    // The lease lapses, this server takes it and integrates: ready again.
    let body = wait_ready(&http, &base, Duration::from_secs(15), |s, b| {
        s == 200 && b["audit_queue"]["depth"] == 0
    })
    .await;
    assert_eq!(body["status"], "ready");
    assert!(integrated_jtis(&w).contains(&issued));
    let verify = w.ok(&["audit", "verify"]);
    assert!(
        verify.contains("audit log OK") && verify.contains("queue: empty"),
        "{verify}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lag_past_the_bound_is_unready_until_integrated() {
    lag_past_the_bound_is_unready_until_integrated(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lag_past_the_bound_is_unready_until_integrated() {
    lag_past_the_bound_is_unready_until_integrated(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequencer_fails_over_when_its_replica_is_killed() {
    let mut master = [0u8; 32];
    aws_lc_rs::rand::fill(&mut master).unwrap();
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Postgres)
        .env("WARDEN_LOG", "error")
        .env("WARDEN_ISSUER", "http://sequencer-failover.warden.test")
        .env(
            "WARDEN_MASTER_KEY",
            base64::engine::general_purpose::STANDARD.encode(master),
        );
    let secret = w.create_client(&["--name", "svc", "--kind", "service", "--scope", "x"]);
    let http = reqwest::Client::new();

    // Replica A first, until it holds the sequencer lease; then B.
    let data_a = w.path("replica-a").display().to_string();
    let mut a = w
        .launch(&["serve"])
        .named("replica-a")
        .env("WARDEN_DATA_DIR", data_a)
        .start();
    let deadline = Instant::now() + Duration::from_secs(10);
    let first_holder = loop {
        if let Some(holder) = lease_holder(&w).await {
            break holder;
        }
        assert!(Instant::now() < deadline, "replica A never took the sequencer lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let data_b = w.path("replica-b").display().to_string();
    let b = w
        .launch(&["serve"])
        .named("replica-b")
        .env("WARDEN_DATA_DIR", data_b)
        .start();
    let bases = [a.base(), b.base()];

    // Load on both replicas; A is killed without warning part-way.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let mut workers = Vec::new();
    for n in 0..8 {
        let (http, secret, acked) = (http.clone(), secret.clone(), Arc::clone(&acknowledged));
        let base = bases[n % 2].clone();
        workers.push(tokio::spawn(async move {
            let mut failures = 0;
            for _ in 0..400 {
                match issue(&http, &base, &secret).await {
                    Some(jti) => {
                        acked.lock().unwrap().insert(jti);
                    }
                    None => {
                        failures += 1;
                        if failures > 3 {
                            break;
                        }
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill();
    for worker in workers {
        worker.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 400, "only {} tokens acknowledged", acked.len());

    // B takes the lease over once A's lapses and integrates everything.
    wait_ready(&http, &b.base(), Duration::from_secs(20), |s, body| {
        s == 200 && body["audit_queue"]["depth"] == 0
    })
    .await;
    let holder = lease_holder(&w).await.unwrap();
    assert_ne!(holder, first_holder, "the lease never moved to replica B");
    let logged = integrated_jtis(&w);
    let missing: Vec<_> = acked.difference(&logged).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged tokens missing from the log (of {})",
        missing.len(),
        acked.len()
    );
    let verify = w.ok(&["audit", "verify"]);
    assert!(verify.contains("audit log OK"), "{verify}");
    drop(b);
}
