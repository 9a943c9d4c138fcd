//! The support crate's own promises: a test schema is dropped even when
//! its test never reached its clean-up; an installation's commands see
//! only its environment; a launch waits for the banner and the readiness
//! path, keeps the process's output, and kills it on drop; a launch on a
//! taken address fails with its log. The launcher is exercised with a
//! stand-in for `warden`: a few lines of Python that print the banner and
//! answer `/readyz` (python3 is on every machine `scripts/test` runs on).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;

use sqlx::Connection as _;
use warden_test_support::binary::Warden;
use warden_test_support::db::{Backend, PgSchema, TestDb};
use warden_test_support::net::http_status;

/// A stand-in for `warden serve`: listens on `WARDEN_LISTEN`, prints the
/// banner to stderr and "out" to stdout, answers 200 on `/readyz`.
const FAKE_SERVE: &str = r#"
import http.server, os, sys
host, port = os.environ["WARDEN_LISTEN"].rsplit(":", 1)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer((host, int(port)), Handler)
print("out", flush=True)
print(f"warden listening on http://{host}:{port} (stand-in)", file=sys.stderr, flush=True)
server.serve_forever()
"#;

async fn schema_exists(url: &str, name: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    n == 1
}

#[tokio::test]
async fn a_schema_is_dropped_on_drop_and_on_cleanup() {
    for explicit in [false, true] {
        let db = TestDb::postgres();
        let (url, name) = (db.url().to_owned(), db.schema().unwrap().to_owned());
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE \"{name}\".t (x int)")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert!(schema_exists(&url, &name).await);
        if explicit {
            db.cleanup().await;
        } else {
            drop(db);
        }
        assert!(
            !schema_exists(&url, &name).await,
            "{name} left behind (cleanup: {explicit})"
        );
    }
    // A schema nobody created drops quietly.
    PgSchema::fresh().drop_now().await;
}

#[test]
fn commands_see_only_the_installations_environment() {
    let w = Warden::new("env", Backend::Sqlite).env("WARDEN_LOG", "error");
    let env = w.ok(&[]);
    let mut names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort_unstable();
    assert_eq!(names, ["PATH", "WARDEN_DATA_DIR", "WARDEN_LOG"], "{env}");
    assert!(env.contains(&format!("WARDEN_DATA_DIR={}", w.data_dir().display())));
    assert!(!w.data_dir().exists(), "the data dir is the binary's to create");

    let w = Warden::new("env", Backend::Postgres);
    let env = w.ok(&[]);
    let schema = w.schema().unwrap();
    assert!(env.contains(&format!("WARDEN_DATABASE_SCHEMA={schema}\n")), "{env}");
    assert!(
        env.contains(&format!("WARDEN_DATABASE_URL={}\n", w.database_url())),
        "{env}"
    );
}

#[test]
fn a_launch_waits_for_readiness_keeps_output_and_kills_on_drop() {
    let mut w = Warden::new("python3", Backend::Sqlite);
    let server = w.launch(&["-c", FAKE_SERVE]).named("stand-in").start();
    let addr = server.addr();
    assert_eq!(http_status(addr, "/readyz"), Some(200));
    assert_eq!(w.listen(), Some(addr), "later commands get the address");
    assert!(server.log_text().contains("(stand-in)"), "{}", server.log_text());
    assert_eq!(server.stdout_text(), "out\n");
    assert!(w.path("stand-in-1.log").exists());
    drop(server);
    assert_eq!(http_status(addr, "/readyz"), None, "the process is gone");

    // Stopped, it exits by itself (on SIGTERM) and says so.
    let mut server = w.launch(&["-c", FAKE_SERVE]).start();
    assert!(server.stop().is_some(), "{}", server.log_text());
    assert_eq!(server.stop(), None, "already stopped");
}

#[test]
#[should_panic(expected = "did not become ready")]
fn a_launch_on_a_taken_address_fails_with_its_log() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut w = Warden::new("python3", Backend::Sqlite);
    let _server = w.launch(&["-c", FAKE_SERVE]).on(taken.local_addr().unwrap()).start();
}
