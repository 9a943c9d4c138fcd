//! Scale-out with the real binary: three `warden serve` replicas on one
//! PostgreSQL schema and one Redis, with one issuer and one master key,
//! each on its own loopback port. The tests talk to each replica directly,
//! as a load balancer would, and check that the cluster keeps what one
//! process guarantees: a token issued by one replica verifies on the
//! others; a revocation reaches the others through the fan-out (the
//! periodic catch-up is set to a minute, past every test's wait); a key rotated
//! to sign at once verifies everywhere on the first request; a refresh
//! token sent to two replicas at once is redeemed once and the reuse
//! revokes its family; a rate limit is one limit across replicas; the
//! audit log stays one tree holding an event for every acknowledged
//! request, even when a replica is SIGKILLed under load.
//!
//! PostgreSQL: `WARDEN_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), a fresh schema per test,
//! dropped at the end. Redis: `WARDEN_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`); when it does not answer the tests are
//! skipped, or fail when `WARDEN_TEST_REQUIRE_REDIS` is set and not `0`
//! (as `scripts/test` sets it). Route names are unique per test, so are their Redis keys.
//!
//! The tests of this file run one at a time (they take a lock file),
//! whatever the harness's parallelism: each starts three servers, and the
//! revocation delay and the admitted rate are timing figures that a
//! machine running twelve replicas at once would blur. The figures are
//! printed; see them with `cargo nextest run -p warden --test cluster
//! --no-capture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use warden_test_support::binary::{Server, Warden};
use warden_test_support::db::{Backend, unique};
use warden_test_support::services;

/// Replicas per cluster.
const REPLICAS: usize = 3;
/// The shared limit of the rate-limited route.
const RATE: f64 = 50.0;
/// Its burst.
const BURST: u32 = 5;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}

/// Holds a lock file for the life of a test, so this file's tests run one
/// at a time across processes (nextest) and threads (cargo test): `flock`
/// locks belong to the open file, so two opens in one process exclude each
/// other too.
fn one_at_a_time() -> std::fs::File {
    let path = std::env::temp_dir().join("warden-cluster-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    file.lock().unwrap();
    file
}

/// The upstream of every route: answers any request with the request id
/// Warden forwarded, so that each acknowledged gateway call names its
/// `access_decision` event.
async fn spawn_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        let id = req
            .headers()
            .get("x-warden-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        serde_json::json!({ "request_id": id }).to_string()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// `warden.toml` shared by the replicas and the CLI (which get the
/// PostgreSQL schema from the installation's environment): Redis, three
/// replicas sharing the limits, a checkpoint every second (so the replicas
/// compete to sign them), and two routes: `/v1/models` without a limit and
/// `/v1/limited` at [`RATE`] per second.
fn config(issuer: &str, redis: &str, tag: &str, upstream: SocketAddr) -> String {
    format!(
        r#"issuer = "{issuer}"
redis_url = "{redis}"

[rate_limit]
replicas = {REPLICAS}
redis_fallback = "local"

[audit]
checkpoint_interval = 1

# The periodic catch-up from the store at its slowest: within these tests,
# what one replica applies from another came through the Redis fan-out.
[replicas]
sync_interval = 60

[[route]]
name = "{tag}-open"
methods = ["GET"]
path_prefix = "/v1/models"
upstream = "http://{upstream}/v1/models"
action = "inference.invoke"
resource = {{ type = "Endpoint", id = {{ literal = "models" }} }}
scopes = ["inference.invoke"]
kind = "openai"

[[route]]
name = "{tag}-limited"
methods = ["GET"]
path_prefix = "/v1/limited"
upstream = "http://{upstream}/v1/limited"
action = "inference.invoke"
resource = {{ type = "Endpoint", id = {{ literal = "models" }} }}
scopes = ["inference.invoke"]
rate_limit = {{ per_second = {RATE:.1}, burst = {BURST} }}
kind = "openai"
"#
    )
}

/// One `warden serve` process.
struct Replica {
    name: String,
    base: String,
    server: Server,
}

impl Replica {
    fn log_text(&self) -> String {
        self.server.log_text()
    }

    fn signal(&self, signal: &str) {
        self.server.signal(signal);
    }

    /// SIGTERM (drain, flush the audit log, sign a last checkpoint), then
    /// SIGKILL if it has not exited within 20 s.
    async fn stop(&mut self) {
        if self.server.pid().is_some() && self.server.stop_within(Duration::from_secs(20)).is_none() {
            eprintln!("{} did not stop within 20 s of SIGTERM; killed", self.name);
        }
    }
}

/// Three replicas on one schema, one Redis, one master key, one issuer;
/// each with a data dir of its own. Dropping it kills the replicas and
/// drops the schema.
struct Cluster {
    replicas: Vec<Replica>,
    w: Warden,
    issuer: String,
    upstream: tokio::task::JoinHandle<()>,
    _serial: std::fs::File,
}

impl Cluster {
    /// Creates the first signing key once (so the replicas do not race to
    /// make it), then starts the replicas; `None` when Redis is down and
    /// not required.
    async fn start() -> Option<Cluster> {
        let serial = one_at_a_time();
        let redis = services::redis()?;
        let (upstream_addr, upstream) = spawn_upstream().await;
        let tag = unique("cl-");
        // The issuer every replica shares (in production, the load
        // balancer's URL); one per test, as it also names the deployment's
        // Redis fan-out channel.
        let issuer = format!("http://{tag}.warden.test");
        let master_key = base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>());
        let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Postgres)
            .env("WARDEN_MASTER_KEY", master_key)
            .env("WARDEN_LOG", "warn");
        w.write_config(&config(&issuer, &redis, &tag, upstream_addr));
        let mut cluster = Cluster {
            replicas: Vec::new(),
            w,
            issuer,
            upstream,
            _serial: serial,
        };
        cluster.cli_ok(&["keys", "rotate"]);
        for i in 0..REPLICAS {
            let name = format!("replica-{}", ["A", "B", "C", "D", "E"].get(i).copied().unwrap_or("X"));
            let data = cluster.w.path(&name).display().to_string();
            let server = cluster
                .w
                .launch(&["serve"])
                .named(&name)
                .env("WARDEN_DATA_DIR", data)
                .start();
            cluster.replicas.push(Replica {
                base: server.base(),
                name,
                server,
            });
        }
        Some(cluster)
    }

    /// Runs a CLI command against the shared database.
    fn cli(&self, args: &[&str]) -> Output {
        self.w.run(args)
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "warden {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Registers a service client that may call the routes; returns its secret.
    fn client(&self, name: &str, grants: &[&str]) -> String {
        let mut args = vec![
            "--name",
            name,
            "--kind",
            "service",
            "--scope",
            "inference.invoke",
            "--role",
            "ml-engineer",
        ];
        for g in grants {
            args.extend(["--grant", g]);
        }
        self.w.create_client(&args)
    }

    /// The bodies of every audit event of type `kind`.
    fn events(&self, kind: &str) -> Vec<Value> {
        self.w.audit_events(kind)
    }

    /// Stops every replica still running (SIGTERM, as an orchestrator would).
    async fn stop_all(&mut self) {
        for r in &mut self.replicas {
            r.stop().await;
        }
    }

    /// `warden audit verify` on the shared database must exit 0.
    fn assert_audit_verifies(&self) {
        let out = self.cli(&["audit", "verify"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "warden audit verify exited {:?}:\n{text}\n{}",
            out.status.code(),
            self.logs()
        );
        eprintln!("{}", text.trim_end());
    }

    /// Every replica's log, for failure messages.
    fn logs(&self) -> String {
        self.replicas
            .iter()
            .map(|r| format!("--- {} ({}) ---\n{}", r.name, r.base, r.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The replicas go first, then the schema (with the installation).
        self.replicas.clear();
        self.upstream.abort();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A JWT segment (0: header, 1: claims) as JSON.
fn segment(token: &str, n: usize) -> Value {
    let part = token.split('.').nth(n).unwrap();
    serde_json::from_slice(&warden_jose::base64url::decode(part).unwrap()).unwrap()
}

fn jti(token: &str) -> String {
    segment(token, 1)["jti"].as_str().unwrap().to_owned()
}

fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().unwrap().to_owned()
}

/// Percent-encodes a form value (tokens are base64url, but say so anyway).
fn form_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs a form to `path` as client `client`; the status and the JSON body
/// (`Err` when the request did not complete, e.g. a killed replica).
async fn post_form(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    client: &str,
    secret: &str,
    form: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let r = http
        .post(format!("{base}{path}"))
        .basic_auth(client, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await?;
    let status = r.status().as_u16();
    let bytes = r.bytes().await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// A client_credentials token from `base` (must succeed).
async fn token(http: &reqwest::Client, base: &str, client: &str, secret: &str) -> Value {
    let (status, body) = post_form(
        http,
        base,
        "/oauth/token",
        client,
        secret,
        "grant_type=client_credentials",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{base}/oauth/token: {body}");
    body
}

async fn access_token(http: &reqwest::Client, base: &str, client: &str, secret: &str) -> String {
    token(http, base, client, secret).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A gateway call: the status and the body.
async fn gateway(http: &reqwest::Client, base: &str, path: &str, token: &str) -> Result<(u16, String), reqwest::Error> {
    let r = http.get(format!("{base}{path}")).bearer_auth(token).send().await?;
    let status = r.status().as_u16();
    let body = String::from_utf8_lossy(&r.bytes().await?).into_owned();
    Ok((status, body))
}

async fn refresh(http: &reqwest::Client, base: &str, client: &str, secret: &str, refresh_token: &str) -> (u16, Value) {
    let form = format!("grant_type=refresh_token&refresh_token={}", form_value(refresh_token));
    post_form(http, base, "/oauth/token", client, secret, &form)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_by_one_replica_verifies_on_the_others() {
    let Some(c) = Cluster::start().await else { return };
    let secret = c.client("app", &[]);
    let http = http();
    let (a, others) = c.replicas.split_first().unwrap();
    let token = access_token(&http, &a.base, "app", &secret).await;
    for r in others {
        let (status, body) = gateway(&http, &r.base, "/v1/models", &token).await.unwrap();
        assert_eq!(
            status,
            200,
            "a token from {} on {}'s gateway: {body}\n{}",
            a.name,
            r.name,
            c.logs()
        );
        let form = format!("token={token}");
        let (status, v) = post_form(&http, &r.base, "/oauth/introspect", "app", &secret, &form)
            .await
            .unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["active"], true, "introspection on {}: {v}", r.name);
        assert_eq!(v["sub"], "svc:app");
        assert_eq!(v["iss"], c.issuer.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_is_enforced_on_the_others_through_the_fanout() {
    let Some(c) = Cluster::start().await else { return };
    let secret = c.client("app", &[]);
    let http = http();
    let (a, others) = c.replicas.split_first().unwrap();
    let token = access_token(&http, &a.base, "app", &secret).await;
    // Each replica has verified (and cached) the token before it is revoked.
    for r in &c.replicas {
        let (status, body) = gateway(&http, &r.base, "/v1/models", &token).await.unwrap();
        assert_eq!(status, 200, "{}: {body}", r.name);
    }

    let start = Instant::now();
    let (status, body) = post_form(
        &http,
        &a.base,
        "/oauth/revoke",
        "app",
        &secret,
        &format!("token={token}"),
    )
    .await
    .unwrap();
    let answered = start.elapsed();
    assert_eq!(status, 200, "revoke: {body}");
    let (status, body) = gateway(&http, &a.base, "/v1/models", &token).await.unwrap();
    assert_eq!(status, 401, "the revoking replica itself: {body}");

    // Poll the others every 50 ms for up to 2 s, from when the revocation
    // was sent.
    let mut seen: Vec<Option<Duration>> = vec![None; others.len()];
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while start.elapsed() < Duration::from_secs(2) && seen.iter().any(Option::is_none) {
        tick.tick().await;
        let calls = others.iter().map(|r| gateway(&http, &r.base, "/v1/models", &token));
        let results = futures_util::future::join_all(calls).await;
        let now = start.elapsed();
        for ((slot, r), result) in seen.iter_mut().zip(others).zip(results) {
            let (status, body) = result.unwrap();
            match status {
                401 => {
                    slot.get_or_insert(now);
                }
                200 => {}
                _ => panic!("{} answered {status}: {body}", r.name),
            }
        }
    }
    let figures: Vec<String> = others
        .iter()
        .zip(&seen)
        .map(|(r, t)| match t {
            Some(t) => format!("{} {} ms", r.name, t.as_millis()),
            None => format!("{} not within 2 s", r.name),
        })
        .collect();
    eprintln!(
        "revocation propagation (from the revoke request; {} answered it in {} ms): {}",
        a.name,
        answered.as_millis(),
        figures.join(", ")
    );
    // Within the 2 s window, far inside the 60 s catch-up from the store:
    // only the fan-out can have delivered it.
    for (r, t) in others.iter().zip(&seen) {
        assert!(
            t.is_some(),
            "{} did not enforce the revocation within 2 s; {}",
            r.name,
            figures.join(", ")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_to_sign_at_once_verifies_on_every_replica_at_once() {
    let Some(c) = Cluster::start().await else { return };
    let secret = c.client("app", &[]);
    let http = http();
    let (a, others) = c.replicas.split_first().unwrap();
    let before = access_token(&http, &a.base, "app", &secret).await;
    for r in &c.replicas {
        let (status, body) = gateway(&http, &r.base, "/v1/models", &before).await.unwrap();
        assert_eq!(status, 200, "{}: {body}", r.name);
    }
    let old_kid = kid(&before);

    let new_kid = c.cli_ok(&["keys", "rotate", "--immediately"]).trim().to_owned();
    assert_ne!(new_kid, old_kid);
    let mut failures = Vec::new();

    // A token signed with the new key the moment it exists (by the CLI, on
    // the shared database): no replica has reloaded its keys yet.
    let fresh = c
        .cli_ok(&[
            "token",
            "issue",
            "--sub",
            "svc:rotation",
            "--aud",
            &c.issuer,
            "--scope",
            "inference.invoke",
            "--role",
            "ml-engineer",
        ])
        .trim()
        .to_owned();
    assert_eq!(kid(&fresh), new_kid);
    for r in others {
        let (status, body) = gateway(&http, &r.base, "/v1/models", &fresh).await.unwrap();
        if status != 200 {
            failures.push(format!(
                "{}: first request with a token of the new key (issued by the CLI right after the rotation) answered {status}: {body}",
                r.name
            ));
        }
    }

    // Replica A signs with the new key once it has picked it up; its token
    // verifies on the others at the first request.
    let start = Instant::now();
    let from_a = loop {
        let t = access_token(&http, &a.base, "app", &secret).await;
        if kid(&t) == new_kid {
            break Some(t);
        }
        if start.elapsed() > Duration::from_secs(10) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let switched = start.elapsed();
    match from_a {
        None => failures.push(format!(
            "{} still signed with the old key 10 s after the rotation",
            a.name
        )),
        Some(t) => {
            eprintln!(
                "{} signed with the new key {} ms after the rotation command returned",
                a.name,
                switched.as_millis()
            );
            for r in others {
                let (status, body) = gateway(&http, &r.base, "/v1/models", &t).await.unwrap();
                if status != 200 {
                    failures.push(format!(
                        "{}: first request with {}'s token of the new key answered {status}: {body}",
                        r.name, a.name
                    ));
                }
            }
        }
    }
    // Tokens of the old key still verify everywhere (it stays published).
    for r in &c.replicas {
        let (status, body) = gateway(&http, &r.base, "/v1/models", &before).await.unwrap();
        if status != 200 {
            failures.push(format!("{}: the old key's token answered {status}: {body}", r.name));
        }
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), c.logs());
}

/// What went wrong in the refresh race, counted over all rounds.
#[derive(Debug, Default)]
struct RaceTally {
    both_succeeded: usize,
    neither_succeeded: usize,
    successor_accepted: usize,
    access_still_active: usize,
    samples: Vec<String>,
}

impl RaceTally {
    fn sample(&mut self, s: String) {
        if self.samples.len() < 10 {
            self.samples.push(s);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_token_sent_to_two_replicas_at_once_is_redeemed_once() {
    const ROUNDS: usize = 1000;
    const WORKERS: usize = 4;
    let Some(c) = Cluster::start().await else { return };
    let secret = c.client("rt", &["client_credentials", "refresh_token"]);
    let http = http();
    let bases: Arc<Vec<String>> = Arc::new(c.replicas.iter().map(|r| r.base.clone()).collect());
    let tally = Arc::new(Mutex::new(RaceTally::default()));
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (http, secret, bases, tally) = (http.clone(), secret.clone(), Arc::clone(&bases), Arc::clone(&tally));
        workers.push(tokio::spawn(async move {
            for round in (w..ROUNDS).step_by(WORKERS) {
                let (x, y, z) = (
                    &bases[round % REPLICAS],
                    &bases[(round + 1) % REPLICAS],
                    &bases[(round + 2) % REPLICAS],
                );
                let issued = token(&http, z, "rt", &secret).await;
                let rt0 = issued["refresh_token"].as_str().unwrap().to_owned();
                let (rx, ry) = tokio::join!(
                    refresh(&http, x, "rt", &secret, &rt0),
                    refresh(&http, y, "rt", &secret, &rt0)
                );
                let (winner, loser_base, loser) = match (rx.0, ry.0) {
                    (200, 200) => {
                        let mut t = tally.lock().unwrap();
                        t.both_succeeded += 1;
                        t.sample(format!("round {round}: both succeeded"));
                        continue;
                    }
                    (200, _) => (rx.1, y, ry),
                    (_, 200) => (ry.1, x, rx),
                    _ => {
                        let mut t = tally.lock().unwrap();
                        t.neither_succeeded += 1;
                        t.sample(format!("round {round}: neither succeeded: {rx:?} {ry:?}"));
                        continue;
                    }
                };
                assert_eq!(loser.0, 400, "round {round}: {loser:?}");
                assert_eq!(loser.1["error"], "invalid_grant", "round {round}: {loser:?}");
                // The reuse revoked the family: the winner's successor fails too...
                let rt1 = winner["refresh_token"].as_str().unwrap();
                let (status, body) = refresh(&http, z, "rt", &secret, rt1).await;
                if status != 400 || body["error"] != "invalid_grant" {
                    let mut t = tally.lock().unwrap();
                    t.successor_accepted += 1;
                    t.sample(format!(
                        "round {round}: the winner's successor answered {status}: {body}"
                    ));
                }
                // ...and so does the access token issued with it, on the
                // replica that detected the reuse.
                let access = winner["access_token"].as_str().unwrap();
                let (_, v) = post_form(
                    &http,
                    loser_base,
                    "/oauth/introspect",
                    "rt",
                    &secret,
                    &format!("token={access}"),
                )
                .await
                .unwrap();
                if v["active"] != false {
                    let mut t = tally.lock().unwrap();
                    t.access_still_active += 1;
                    t.sample(format!("round {round}: the winner's access token is still active: {v}"));
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = start.elapsed();
    let tally = tally.lock().unwrap();
    eprintln!(
        "refresh race: {ROUNDS} rounds in {:.1} s ({WORKERS} concurrent workers): {tally:?}",
        elapsed.as_secs_f64()
    );
    assert_eq!(
        (
            tally.both_succeeded,
            tally.neither_succeeded,
            tally.successor_accepted,
            tally.access_still_active
        ),
        (0, 0, 0, 0),
        "{tally:#?}"
    );
    // One redemption and one detected reuse per round, in the shared log.
    assert_eq!(c.events("token_refreshed").len(), ROUNDS);
    assert_eq!(c.events("refresh_token_reuse_detected").len(), ROUNDS);
}

/// What one round of rate-limited load saw.
struct Offered {
    /// Requests sent.
    sent: usize,
    /// For how long.
    secs: f64,
    /// Requests answered 200, per replica.
    admitted: [usize; REPLICAS],
    /// Requests answered 429.
    limited: usize,
}

impl Offered {
    fn total(&self) -> usize {
        self.admitted.iter().sum()
    }

    /// Admitted requests per second.
    fn rate(&self) -> f64 {
        self.total() as f64 / self.secs
    }
}

/// 200 requests/s (four times the limit) for 3 s to `/v1/limited`, sent
/// round-robin to the replicas `targets` (indexes into `c.replicas`).
async fn offer_limited_load(c: &Cluster, http: &reqwest::Client, token: &str, targets: &[usize]) -> Offered {
    const LOAD: Duration = Duration::from_secs(3);
    const EVERY: Duration = Duration::from_millis(5);
    let start = Instant::now();
    let mut tick = tokio::time::interval(EVERY);
    let mut calls = Vec::new();
    let mut i = 0;
    while start.elapsed() < LOAD {
        tick.tick().await;
        let target = targets[i % targets.len()];
        let (http, base, token) = (http.clone(), c.replicas[target].base.clone(), token.to_owned());
        calls.push((
            target,
            tokio::spawn(async move { gateway(&http, &base, "/v1/limited", &token).await.unwrap() }),
        ));
        i += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut offered = Offered {
        sent: i,
        secs,
        admitted: [0; REPLICAS],
        limited: 0,
    };
    for (n, (target, call)) in calls.into_iter().enumerate() {
        let (status, body) = call.await.unwrap();
        match status {
            200 => offered.admitted[target] += 1,
            429 => offered.limited += 1,
            _ => panic!("request {n} answered {status}: {body}\n{}", c.logs()),
        }
    }
    offered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_rate_limit_admits_its_rate_across_three_replicas() {
    let Some(c) = Cluster::start().await else { return };
    let secret = c.client("rl", &[]);
    let http = http();
    let readyz = |base: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{base}/readyz")).send().await.unwrap();
            serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()
        }
    };
    for r in &c.replicas {
        let ready = readyz(r.base.clone()).await;
        assert_eq!(ready["rate_limit"]["backend"], "redis", "{}: {ready}", r.name);
    }
    let token = access_token(&http, &c.replicas[0].base, "rl", &secret).await;

    // All the load on one replica: it admits the shared limit, where a
    // replica applying only its local share would admit a third of it
    // (load spread evenly over three shares admits as much as one shared
    // limit, so this is the round that tells them apart).
    let one = offer_limited_load(&c, &http, &token, &[0]).await;
    // The load round-robin over the three: together they still admit the
    // shared limit, where three separate limits would admit three times it.
    let all = offer_limited_load(&c, &http, &token, &[0, 1, 2]).await;
    for (what, o) in [("all to replica A", &one), ("round-robin", &all)] {
        eprintln!(
            "shared rate limit {RATE}/s (burst {BURST}), {what}: {} requests in {:.2} s, admitted {} {:?}, \
             limited {}: {:.1}/s admitted",
            o.sent,
            o.secs,
            o.total(),
            o.admitted,
            o.limited,
            o.rate()
        );
    }
    for r in &c.replicas {
        let ready = readyz(r.base.clone()).await;
        assert_eq!(
            ready["rate_limit"]["degraded"], false,
            "{} fell back to local limits: {ready}",
            r.name
        );
    }
    assert!(
        (one.rate() - RATE).abs() <= RATE * 0.1,
        "replica A alone admitted {:.1}/s; the shared limit is {RATE}/s ± 10 % (its local share would be {:.1}/s)",
        one.rate(),
        RATE / REPLICAS as f64
    );
    assert!(
        (all.rate() - RATE).abs() <= RATE * 0.1,
        "the three replicas admitted {:.1}/s together; the shared limit is {RATE}/s ± 10 %",
        all.rate()
    );
    assert!(
        all.admitted.iter().all(|&n| n > 0),
        "every replica admitted some: {:?}",
        all.admitted
    );
}

/// What the audit load saw acknowledged (HTTP 200).
#[derive(Debug, Default)]
struct Acknowledged {
    /// `jti`s of issued tokens.
    issued: HashSet<String>,
    /// Request ids of forwarded gateway calls.
    forwarded: HashSet<String>,
    /// Answers other than 200 (request, status, body).
    refused: Vec<String>,
    /// Requests that did not complete (connection refused or reset).
    failed: usize,
}

/// Concurrent load on every replica: each of `workers` tasks issues a
/// token on one replica and calls the gateway with it on the next,
/// `iterations` times. With `kill`, replica `kill` is SIGKILLed once
/// `kill_after` tokens have been acknowledged; the load goes on.
async fn audit_load(
    c: &Cluster,
    secret: &str,
    workers: usize,
    iterations: usize,
    kill: Option<(usize, usize)>,
) -> (Acknowledged, Option<usize>) {
    let http = http();
    let bases: Arc<Vec<String>> = Arc::new(c.replicas.iter().map(|r| r.base.clone()).collect());
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let issued = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, secret, bases, acked, issued) = (
            http.clone(),
            secret.to_owned(),
            Arc::clone(&bases),
            Arc::clone(&acked),
            Arc::clone(&issued),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..iterations {
                let (x, y) = (&bases[(w + i) % REPLICAS], &bases[(w + i + 1) % REPLICAS]);
                let token = match post_form(
                    &http,
                    x,
                    "/oauth/token",
                    "load",
                    &secret,
                    "grant_type=client_credentials",
                )
                .await
                {
                    Ok((200, v)) => {
                        let t = v["access_token"].as_str().unwrap().to_owned();
                        acked.lock().unwrap().issued.insert(jti(&t));
                        issued.fetch_add(1, Ordering::SeqCst);
                        t
                    }
                    Ok((status, v)) => {
                        acked
                            .lock()
                            .unwrap()
                            .refused
                            .push(format!("{x}/oauth/token {status}: {v}"));
                        continue;
                    }
                    Err(_) => {
                        acked.lock().unwrap().failed += 1;
                        continue;
                    }
                };
                match gateway(&http, y, "/v1/models", &token).await {
                    Ok((200, body)) => {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        let id = v["request_id"].as_str().unwrap().to_owned();
                        assert!(!id.is_empty(), "no request id forwarded: {body}");
                        acked.lock().unwrap().forwarded.insert(id);
                    }
                    Ok((status, body)) => acked
                        .lock()
                        .unwrap()
                        .refused
                        .push(format!("{y}/v1/models {status}: {body}")),
                    Err(_) => acked.lock().unwrap().failed += 1,
                }
            }
        }));
    }
    let mut killed_at = None;
    if let Some((victim, after)) = kill {
        let deadline = Instant::now() + Duration::from_secs(60);
        while issued.load(Ordering::SeqCst) < after && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        c.replicas[victim].signal("-KILL");
        killed_at = Some(issued.load(Ordering::SeqCst));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (acked, killed_at)
}

/// The `jti`s of `token_issued` events and the request ids of
/// `access_decision` events, with their event counts.
fn logged(c: &Cluster) -> ((HashSet<String>, usize), (HashSet<String>, usize)) {
    let issued = c.events("token_issued");
    let decisions = c.events("access_decision");
    let jtis: HashSet<String> = issued.iter().map(|b| b["jti"].as_str().unwrap().to_owned()).collect();
    let ids: HashSet<String> = decisions
        .iter()
        .map(|b| b["request_id"].as_str().unwrap().to_owned())
        .collect();
    ((jtis, issued.len()), (ids, decisions.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_of_three_replicas_under_load_verifies_and_counts_every_acknowledged_request() {
    let Some(mut c) = Cluster::start().await else { return };
    let secret = c.client("load", &[]);
    let start = Instant::now();
    let (acked, _) = audit_load(&c, &secret, 6, 50, None).await;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "audit load: {} tokens and {} gateway calls acknowledged in {secs:.1} s",
        acked.issued.len(),
        acked.forwarded.len()
    );
    assert!(
        acked.refused.is_empty() && acked.failed == 0,
        "{} refused ({:?}…), {} failed\n{}",
        acked.refused.len(),
        acked.refused.first(),
        acked.failed,
        c.logs()
    );
    assert_eq!((acked.issued.len(), acked.forwarded.len()), (300, 300));
    c.stop_all().await;

    let ((jtis, issued_events), (ids, decision_events)) = logged(&c);
    assert_eq!(
        issued_events,
        acked.issued.len(),
        "token_issued events vs acknowledged issuances"
    );
    assert_eq!(jtis, acked.issued);
    assert_eq!(
        decision_events,
        acked.forwarded.len(),
        "access_decision events vs acknowledged gateway calls"
    );
    assert_eq!(ids, acked.forwarded);
    c.assert_audit_verifies();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_loses_no_acknowledged_audit_event() {
    const WORKERS: usize = 6;
    let Some(mut c) = Cluster::start().await else { return };
    let secret = c.client("load", &[]);
    let start = Instant::now();
    let (acked, killed_at) = audit_load(&c, &secret, WORKERS, 60, Some((1, 100))).await;
    let killed_at = killed_at.unwrap();
    eprintln!(
        "audit load with {} SIGKILLed after {killed_at} tokens: {} tokens and {} gateway calls acknowledged, \
         {} requests failed, {} refused, in {:.1} s",
        c.replicas[1].name,
        acked.issued.len(),
        acked.forwarded.len(),
        acked.failed,
        acked.refused.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(acked.failed > 0, "the killed replica failed no request");
    assert!(
        acked.issued.len() > killed_at,
        "the surviving replicas went on issuing after the kill"
    );
    c.stop_all().await;

    let ((jtis, issued_events), (ids, decision_events)) = logged(&c);
    let lost_issued: Vec<_> = acked.issued.difference(&jtis).collect();
    let lost_forwarded: Vec<_> = acked.forwarded.difference(&ids).collect();
    assert!(
        lost_issued.is_empty() && lost_forwarded.is_empty(),
        "acknowledged but not in the log: {} issuances {lost_issued:?}, {} gateway calls {lost_forwarded:?}",
        lost_issued.len(),
        lost_forwarded.len()
    );
    // Logged but unacknowledged: only what the killed replica committed
    // without answering, at most one request per worker.
    let extra = (issued_events - acked.issued.len()) + (decision_events - acked.forwarded.len());
    eprintln!("events committed but never acknowledged (in flight at the kill): {extra}");
    assert_eq!(issued_events, jtis.len(), "one token_issued event per token");
    assert_eq!(decision_events, ids.len(), "one access_decision event per request");
    assert!(extra <= WORKERS, "{extra} events without an acknowledged request");
    c.assert_audit_verifies();
}
