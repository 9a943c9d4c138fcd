//! Rate limits shared through Redis, with the real binary: two `warden
//! serve` processes on one PostgreSQL schema and one Redis apply one limit
//! to requests spread over both; with Redis unreachable, a process falls
//! back to its share of the limit (`rate_limit.redis_fallback = "local"`)
//! or refuses with 503 (`"deny"`), shows it in `/readyz`, and logs it once.
//!
//! Redis: `WARDEN_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). When
//! it does not answer, the shared-limit test is skipped, or fails if
//! `WARDEN_TEST_REQUIRE_REDIS=1` (as `scripts/test` sets). Every test uses
//! a route name of its own, so its Redis keys are its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn redis_url() -> String {
    std::env::var("WARDEN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether Redis answers PING (a password-less Redis, as on the test
/// machines); skips or fails as the module says.
fn redis_up() -> bool {
    let url = redis_url();
    let authority = url.trim_start_matches("redis://").split('/').next().unwrap_or_default();
    let addr = authority.rsplit('@').next().unwrap_or_default();
    let pong = (|| {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(addr).ok()?.next()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"PING\r\n").ok()?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).ok()?;
        Some(&buf == b"+PONG\r\n")
    })()
    .unwrap_or(false);
    if !pong {
        assert!(
            std::env::var("WARDEN_TEST_REQUIRE_REDIS").as_deref() != Ok("1"),
            "Redis does not answer at {url} and WARDEN_TEST_REQUIRE_REDIS=1"
        );
        eprintln!("skipped: Redis does not answer at {url}");
    }
    pong
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where the processes keep their data, and the environment they share.
struct Setup {
    data: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
}

impl Setup {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WARDEN_DATA_DIR", &self.data)
            .env("WARDEN_CONFIG", &self.config)
            .env("WARDEN_LOG", "warn");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Registers a client that may call the route; returns its secret.
    fn client(&self, name: &str) -> String {
        let out = self
            .command(&[
                "client",
                "create",
                "--name",
                name,
                "--kind",
                "service",
                "--scope",
                "inference.invoke",
                "--role",
                "ml-engineer",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("client_secret: "))
            .unwrap()
            .to_owned()
    }

    /// Starts `warden serve` with `extra` environment and waits for `/readyz`.
    async fn serve(&self, extra: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log = self.data.join(format!("serve-{port}.log"));
        let mut cmd = self.command(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await
                && r.status() == 200
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = server.child.kill();
        panic!("warden serve did not become ready:\n{}", server.log_text());
    }
}

/// A running `warden serve`, killed on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn readyz(&self) -> Value {
        let r = reqwest::get(format!("{}/readyz", self.base)).await.unwrap();
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
    }

    async fn token(&self, client: &str, secret: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/oauth/token", self.base))
            .basic_auth(client, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `warden.toml` with one route, burst 5 and 1/s, to `upstream`'s `/v1/models`.
fn write_config(dir: &Path, route: &str, upstream: std::net::SocketAddr) -> PathBuf {
    let path = dir.join("warden.toml");
    let text = format!(
        r#"issuer = "http://warden.test"

[[route]]
name = "{route}"
methods = ["GET"]
path_prefix = "/v1/models"
upstream = "http://{upstream}/v1/models"
action = "inference.invoke"
resource = {{ type = "Endpoint", id = {{ literal = "models" }} }}
scopes = ["inference.invoke"]
rate_limit = {{ per_second = 1.0, burst = 5 }}
kind = "openai"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Sends one request; returns the status and, for a 429, `Retry-After`.
async fn call(http: &reqwest::Client, server: &Server, token: &str) -> (u16, Option<String>, String) {
    let r = http
        .get(format!("{}/v1/models", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
    (status, retry, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_limit_through_redis() {
    if !redis_up() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (upstream, upstream_task) = warden_server::demo::spawn_demo_upstream().await.unwrap();
    let route = format!("rl-{}", random_hex());
    let config = write_config(dir.path(), &route, upstream);
    let pg =
        std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("t_{}", random_hex());
    // One PostgreSQL schema and one Redis; the data dir only holds the
    // master key both processes open.
    let setup = Setup {
        data,
        config,
        env: vec![
            ("WARDEN_DATABASE_URL".into(), pg.clone()),
            ("WARDEN_DATABASE_SCHEMA".into(), schema.clone()),
            ("WARDEN_REDIS_URL".into(), redis_url()),
            ("WARDEN_RATE_LIMIT_REPLICAS".into(), "2".into()),
        ],
    };
    let secret = setup.client("rl-app");
    let a = setup.serve(&[]).await;
    let b = setup.serve(&[]).await;
    for s in [&a, &b] {
        let ready = s.readyz().await;
        assert_eq!(
            ready["rate_limit"],
            serde_json::json!({"backend": "redis", "degraded": false, "fallback": "local"}),
            "{ready}"
        );
    }
    let token = a.token("rl-app", &secret).await;

    // Burst: requests alternate between the two processes.
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut admitted = [0usize; 2];
    for i in 0..16 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, retry, body) = call(&http, server, &token).await;
        match status {
            200 => admitted[i % 2] += 1,
            429 => assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1), "{body}"),
            _ => panic!(
                "unexpected {status}: {body}\nA:\n{}\nB:\n{}",
                a.log_text(),
                b.log_text()
            ),
        }
    }
    let elapsed = start.elapsed();
    let total = admitted[0] + admitted[1];
    assert!(
        elapsed < Duration::from_secs(3),
        "too slow to tell the limits apart: {elapsed:?}"
    );
    // One shared limit admits the burst (5), plus one per second elapsed;
    // two separate limits would admit 10.
    let bound = 5 + 1 + elapsed.as_secs() as usize;
    assert!((5..=bound).contains(&total), "admitted {admitted:?} in {elapsed:?}");
    assert!(
        admitted[0] >= 1 && admitted[1] >= 1,
        "both processes admitted: {admitted:?}"
    );

    // Steady rate: one request every 100 ms for 3 s more, alternating. In
    // all, one shared limit admits 5 + 1 per second since the start.
    let mut total = total;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(4) {
        let server = if i % 2 == 0 { &a } else { &b };
        if call(&http, server, &token).await.0 == 200 {
            total += 1;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let expected = 5.0 + secs.floor();
    assert!(
        (total as f64 - expected).abs() <= 1.0,
        "admitted {total} in {secs:.2} s; one shared limit allows about {expected}"
    );
    for s in [&a, &b] {
        assert_eq!(s.readyz().await["rate_limit"]["degraded"], false);
        assert!(!s.log_text().contains("Redis is unreachable"), "{}", s.log_text());
    }

    drop((a, b));
    upstream_task.abort();
    let pool = sqlx::PgPool::connect(&pg).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&pool)
        .await
        .unwrap();
}

/// One process on SQLite whose Redis is a closed port.
async fn unreachable_redis(fallback: &str) -> (tempfile::TempDir, Server, String, tokio::task::JoinHandle<()>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (upstream, upstream_task) = warden_server::demo::spawn_demo_upstream().await.unwrap();
    let config = write_config(dir.path(), &format!("rl-{}", random_hex()), upstream);
    let setup = Setup {
        data,
        config,
        env: vec![
            ("WARDEN_REDIS_URL".into(), format!("redis://127.0.0.1:{}", free_port())),
            ("WARDEN_RATE_LIMIT_REPLICAS".into(), "2".into()),
            ("WARDEN_RATE_LIMIT_REDIS_FALLBACK".into(), fallback.into()),
        ],
    };
    let secret = setup.client("rl-app");
    let server = setup.serve(&[]).await;
    let token = server.token("rl-app", &secret).await;
    (dir, server, token, upstream_task)
}

async fn wait_degraded(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = server.readyz().await;
        if ready["rate_limit"]["degraded"] == true {
            return ready;
        }
        assert!(Instant::now() < deadline, "never degraded: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_falls_back_to_local_share_and_logs_once() {
    let (_dir, server, token, upstream) = unreachable_redis("local").await;
    let ready = wait_degraded(&server).await;
    assert_eq!(
        ready["status"], "ready",
        "a degraded limiter does not make the server unready"
    );
    assert_eq!(ready["rate_limit"]["fallback"], "local");
    let http = reqwest::Client::new();
    let mut admitted = 0;
    for _ in 0..10 {
        let (status, _, body) = call(&http, &server, &token).await;
        match status {
            200 => admitted += 1,
            429 => {}
            _ => panic!("unexpected {status}: {body}"),
        }
    }
    // This process's share: burst ceil(5 / 2) = 3 (and 1 per 2 s).
    assert!((3..=4).contains(&admitted), "admitted {admitted}");
    let log = server.log_text();
    assert_eq!(log.matches("Redis is unreachable").count(), 1, "logged once:\n{log}");
    upstream.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_in_deny_mode_answers_503() {
    let (_dir, server, token, upstream) = unreachable_redis("deny").await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let (status, retry, body) = call(&http, &server, &token).await;
        assert_eq!(status, 503, "{body}");
        assert!(retry.is_some());
        let v: Value = serde_json::from_str(&body).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("rate limits cannot be checked"), "{body}");
    }
    let ready = wait_degraded(&server).await;
    assert_eq!(ready["rate_limit"]["fallback"], "deny");
    let log = server.log_text();
    assert_eq!(log.matches("Redis is unreachable").count(), 1, "logged once:\n{log}");
    upstream.abort();
}
