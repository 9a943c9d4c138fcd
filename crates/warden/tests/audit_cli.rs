//! `warden audit …` and the audit events of `warden keys …`, run as a user
//! would, on every backend: SQLite in a temp data dir, and PostgreSQL in a
//! fresh schema per test (`WARDEN_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; unreachable means failure).
//!
//! The tamper tests change the database directly (sqlx), as an attacker
//! with write access to it would, and expect `warden audit verify` to exit
//! 1 naming the first bad index.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::Output;
use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;

/// The origin the default issuer gives.
const ORIGIN: &str = "127.0.0.1:8080/audit";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh installation of this crate's `warden` on `backend`.
fn warden(backend: Backend) -> Warden {
    Warden::new(env!("CARGO_BIN_EXE_warden"), backend)
}

/// A connection to a test's database, for tampering.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// What these tests do beyond running commands: verification that must
/// fail, and direct access to the database, as an attacker would have.
trait Tamper {
    /// Runs `audit verify` (with `extra` flags) and requires exit 1 naming `what`.
    fn verify_fails(&self, extra: &[&str], what: &str) -> String;
    async fn db(&self) -> Db;
    /// Runs one statement with `?` placeholders bound to `args`.
    fn exec(&self, sql: &str, args: &[Arg]);
    /// Body and salt of event `idx`.
    fn content(&self, idx: i64) -> (Vec<u8>, Vec<u8>);
    /// The note stored for checkpoint `size`.
    fn checkpoint_note(&self, size: i64) -> String;
}

impl Tamper for Warden {
    fn verify_fails(&self, extra: &[&str], what: &str) -> String {
        let mut args = vec!["audit", "verify"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "verify {extra:?} should fail with 1: {err}");
        assert!(
            err.contains("FAILED") && err.contains(what),
            "expected `{what}` in: {err}"
        );
        assert!(out.stdout.is_empty(), "nothing on stdout when verification fails");
        err
    }

    async fn db(&self) -> Db {
        match self.backend() {
            Backend::Sqlite => Db::Sqlite(sqlx::SqlitePool::connect(&self.database_url()).await.unwrap()),
            Backend::Postgres => {
                let options = sqlx::postgres::PgConnectOptions::from_str(&self.database_url())
                    .unwrap()
                    .options([("search_path", self.schema().unwrap())]);
                Db::Postgres(sqlx::PgPool::connect_with(options).await.unwrap())
            }
        }
    }

    fn exec(&self, sql: &str, args: &[Arg]) {
        runtime().block_on(async {
            match self.db().await {
                Db::Sqlite(pool) => {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                    for a in args {
                        q = match a {
                            Arg::Bytes(v) => q.bind(v.clone()),
                            Arg::Text(v) => q.bind(v.clone()),
                        };
                    }
                    q.execute(&pool).await.unwrap();
                    pool.close().await;
                }
                Db::Postgres(pool) => {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(numbered(sql)));
                    for a in args {
                        q = match a {
                            Arg::Bytes(v) => q.bind(v.clone()),
                            Arg::Text(v) => q.bind(v.clone()),
                        };
                    }
                    q.execute(&pool).await.unwrap();
                    pool.close().await;
                }
            }
        });
    }

    fn content(&self, idx: i64) -> (Vec<u8>, Vec<u8>) {
        let sql = "SELECT body, salt FROM audit_events WHERE idx = ?";
        runtime().block_on(async {
            match self.db().await {
                Db::Sqlite(pool) => sqlx::query_as(sql).bind(idx).fetch_one(&pool).await.unwrap(),
                Db::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(numbered(sql)))
                    .bind(idx)
                    .fetch_one(&pool)
                    .await
                    .unwrap(),
            }
        })
    }

    fn checkpoint_note(&self, size: i64) -> String {
        let sql = "SELECT note FROM audit_checkpoints WHERE size = ?";
        let (note,): (String,) = runtime().block_on(async {
            match self.db().await {
                Db::Sqlite(pool) => sqlx::query_as(sql).bind(size).fetch_one(&pool).await.unwrap(),
                Db::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(numbered(sql)))
                    .bind(size)
                    .fetch_one(&pool)
                    .await
                    .unwrap(),
            }
        });
        note
    }
}

enum Arg {
    Bytes(Vec<u8>),
    Text(String),
}

/// `?` placeholders as PostgreSQL's `$1`, `$2`, ….
fn numbered(sql: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Eight events (four keys, each created and rotated to) and checkpoints
/// of sizes 2 and 6.
fn with_events(b: Backend) -> Warden {
    let w = warden(b);
    w.ok(&["keys", "rotate"]); // 0 key_created, 1 key_rotated
    w.ok(&["audit", "checkpoint"]); // size 2
    w.ok(&["keys", "rotate", "--immediately"]); // 2, 3
    w.ok(&["keys", "rotate", "--immediately"]); // 4, 5
    w.ok(&["audit", "checkpoint"]); // size 6
    w.ok(&["keys", "rotate", "--immediately"]); // 6, 7
    let out = w.ok(&["audit", "verify"]);
    assert!(
        out.contains("audit log OK") && out.contains("8 events, 0 erased, 2 checkpoints"),
        "{out}"
    );
    w
}

// --- the feature tests, each run on both backends ---

fn key_commands_are_recorded(b: Backend) {
    let w = warden(b);
    let first = w.ok(&["keys", "rotate"]).trim().to_owned();
    let second = w.ok(&["keys", "rotate"]).trim().to_owned(); // pending: created, not yet rotated to
    w.ok(&["keys", "retire", &second]);
    let events = json_lines(&w.ok(&["audit", "tail", "--json"]));
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
            (
                e["type"].as_str().unwrap().to_owned(),
                body["kid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |t: &str, k: &str| (t.to_owned(), k.to_owned());
    assert_eq!(
        summary,
        vec![
            expect("key_created", &first),
            expect("key_rotated", &first),
            expect("key_created", &second),
            expect("key_retired", &second),
        ]
    );
    let rotated: Value = serde_json::from_str(events[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(rotated["previous_kid"], Value::Null);
    assert_eq!(rotated["alg"], "EdDSA");
    let third = w.ok(&["keys", "rotate", "--immediately"]).trim().to_owned();
    let last = json_lines(&w.ok(&["audit", "tail", "-n", "1", "--json"]));
    assert_eq!(last.len(), 1);
    let body: Value = serde_json::from_str(last[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (body["kid"].as_str().unwrap(), body["previous_kid"].as_str().unwrap()),
        (third.as_str(), first.as_str())
    );
    assert_eq!(last[0]["index"], 5);
    // Queries filter by type and index; the table has a header row.
    let rotations = json_lines(&w.ok(&["audit", "query", "--type", "key_rotated", "--json"]));
    assert_eq!(
        rotations
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 5]
    );
    let page = json_lines(&w.ok(&["audit", "query", "--from", "2", "--limit", "2", "--json"]));
    assert_eq!(
        page.iter().map(|e| e["index"].as_u64().unwrap()).collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(
        json_lines(&w.ok(&[
            "audit",
            "query",
            "--since",
            "2000-01-01",
            "--until",
            "2000-01-02",
            "--json"
        ]))
        .is_empty()
    );
    let table = w.ok(&["audit", "query", "--type", "key_retired"]);
    assert!(table.starts_with("INDEX"), "{table}");
    assert!(table.contains("key_retired") && table.contains(&second), "{table}");
    assert_eq!(code(&w.run(&["audit", "query", "--since", "last tuesday"])), 2);
}

fn vkey_and_checkpoints(b: Backend) {
    let w = warden(b);
    // Nothing to open before the first key: no master key, no database.
    let out = w.run(&["audit", "vkey"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    w.ok(&["keys", "rotate"]);
    let vkey = w.ok(&["audit", "vkey"]).trim().to_owned();
    assert_eq!(w.ok(&["audit", "vkey"]).trim(), vkey, "the key is made once");
    // <name>+<8 hex key ID>+<base64(0x01 || 32-byte Ed25519 key)>
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert_eq!(parts[0], ORIGIN);
    assert_eq!(parts[1].len(), 8);
    assert!(
        parts[1]
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    );
    let key = STANDARD.decode(parts[2]).unwrap();
    assert_eq!((key.len(), key[0]), (33, 1));
    let mut hashed = ORIGIN.as_bytes().to_vec();
    hashed.push(b'\n');
    hashed.extend_from_slice(&key);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &hashed);
    let id: String = digest.as_ref()[..4].iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(parts[1], id, "key ID = SHA-256(name || \\n || 0x01 || key)[:4]");

    // A checkpoint is a C2SP signed note over the tree head.
    let note = w.ok(&["audit", "checkpoint"]);
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[0], ORIGIN);
    assert_eq!(lines[1], "2");
    assert_eq!(STANDARD.decode(lines[2]).unwrap().len(), 32);
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with(&format!("\u{2014} {ORIGIN} ")), "{note}");
    let sig = STANDARD.decode(lines[4].rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(sig.len(), 4 + 64);
    assert_eq!(sig[..4].iter().map(|x| format!("{x:02x}")).collect::<String>(), id);
    let opened = warden_audit::Checkpoint::open(&note, &warden_audit::NoteVerifier::from_vkey(&vkey).unwrap()).unwrap();
    assert_eq!(opened.size, 2);
    // Nothing new: the same checkpoint stands.
    let again = w.run(&["audit", "checkpoint"]);
    assert_eq!(code(&again), 0);
    assert_eq!(String::from_utf8_lossy(&again.stdout), note);
    assert!(stderr(&again).contains("no new events"), "{}", stderr(&again));
    // A log's origin never changes: a derived one (the issuer follows the
    // listen address) yields to the stored one, a configured one must match.
    let out = w
        .command(&["audit", "vkey"])
        .env("WARDEN_LISTEN", "127.0.0.1:9000")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), vkey);
    let out = w
        .command(&["audit", "vkey"])
        .env("WARDEN_AUDIT_ORIGIN", "elsewhere.example/audit")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(ORIGIN) && stderr(&out).contains("origin"),
        "{}",
        stderr(&out)
    );
    // The master key never shows.
    let master = std::fs::read_to_string(w.data_dir().join("master.key")).unwrap();
    assert!(!vkey.contains(master.trim()) && !note.contains(master.trim()));
}

fn tampered_body_is_named(b: Backend) {
    let w = with_events(b);
    let (mut body, _) = w.content(3);
    let at = body.len() - 5;
    body[at] ^= 0x01;
    w.exec("UPDATE audit_events SET body = ? WHERE idx = 3", &[Arg::Bytes(body)]);
    w.verify_fails(&[], "log entry 3:");
}

fn deleted_row_is_named(b: Backend) {
    let w = with_events(b);
    w.exec("DELETE FROM audit_events WHERE idx = 4", &[]);
    w.verify_fails(&[], "log entry 4:");
}

fn swapped_rows_are_named(b: Backend) {
    let w = with_events(b);
    let (body1, salt1) = w.content(1);
    let (body5, salt5) = w.content(5);
    w.exec(
        "UPDATE audit_events SET body = ?, salt = ? WHERE idx = 1",
        &[Arg::Bytes(body5.clone()), Arg::Bytes(salt5)],
    );
    w.exec(
        "UPDATE audit_events SET body = ?, salt = ? WHERE idx = 5",
        &[Arg::Bytes(body1), Arg::Bytes(salt1)],
    );
    w.verify_fails(&[], "log entry 1:");
    // Swapping bodies alone (salts left in place) is caught the same way.
    let w = with_events(b);
    let (body2, _) = w.content(2);
    let (body4, _) = w.content(4);
    w.exec("UPDATE audit_events SET body = ? WHERE idx = 2", &[Arg::Bytes(body4)]);
    w.exec("UPDATE audit_events SET body = ? WHERE idx = 4", &[Arg::Bytes(body2)]);
    w.verify_fails(&[], "log entry 2:");
}

fn truncated_tail_is_named(b: Backend) {
    // Cut under a checkpoint (size 6): the checkpoint names what is missing.
    let w = with_events(b);
    w.exec("DELETE FROM audit_events WHERE idx >= 5", &[]);
    w.verify_fails(&[], "log entry 5:");
    // Cut after the last checkpoint: the log's state still counts 8 events.
    let w = with_events(b);
    w.exec("DELETE FROM audit_events WHERE idx >= 7", &[]);
    w.verify_fails(&[], "log entry 7:");
}

fn replaced_checkpoint_is_named(b: Backend) {
    let w = with_events(b);
    let note = w.checkpoint_note(6);
    let text = &note[..note.find("\n\n").unwrap() + 1];
    let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let other = warden_audit::NoteSigner::new(
        ORIGIN,
        aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
    )
    .unwrap();
    let forged = other.sign(text).unwrap();
    assert_ne!(forged, note);
    w.exec(
        "UPDATE audit_checkpoints SET note = ? WHERE size = 6",
        &[Arg::Text(forged)],
    );
    let err = w.verify_fails(&[], "checkpoint");
    assert!(err.contains("size 6"), "{err}");
    // And signing over it is refused rather than papered over.
    w.ok(&["keys", "rotate", "--immediately"]);
    let out = w.run(&["audit", "checkpoint"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("refusing to sign"), "{}", stderr(&out));
}

fn erasure_is_reported_not_tampering(b: Backend) {
    let w = with_events(b);
    // Within retention (default 180 days): refused without the override.
    let out = w.run(&["audit", "erase", "--index", "2", "--reason", "gdpr-2026-17"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("retention") && stderr(&out).contains("--override-retention"),
        "{}",
        stderr(&out)
    );
    w.ok(&[
        "audit",
        "erase",
        "--index",
        "2",
        "--reason",
        "gdpr-2026-17",
        "--override-retention",
    ]);
    let out = w.ok(&["audit", "verify"]);
    assert!(out.contains("9 events, 1 erased, 2 checkpoints"), "{out}");
    // The erased event keeps its leaf hash; the erasure event records the override.
    let events = json_lines(&w.ok(&["audit", "query", "--from", "2", "--limit", "1", "--json"]));
    assert_eq!(events[0]["erased"], true);
    assert_eq!(events[0]["body"], Value::Null);
    assert_eq!(events[0]["erasure_reason"], "gdpr-2026-17");
    assert_eq!(events[0]["leaf_hash"].as_str().unwrap().len(), 64);
    let last = json_lines(&w.ok(&["audit", "tail", "-n", "1", "--json"]));
    let body: Value = serde_json::from_str(last[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "erasure");
    assert_eq!(
        (body["index"].as_u64(), body["retention_overridden"].as_bool()),
        (Some(2), Some(true))
    );
    // Erasing again, or erasing an erasure event, is refused.
    assert_eq!(
        code(&w.run(&["audit", "erase", "--index", "2", "--reason", "again"])),
        1
    );
    let out = w.run(&[
        "audit",
        "erase",
        "--index",
        "8",
        "--reason",
        "x",
        "--override-retention",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    // Past retention no override is needed.
    let out = w
        .command(&["audit", "erase", "--index", "3", "--reason", "gdpr-2026-18"])
        .env("WARDEN_AUDIT_RETENTION_DAYS", "0")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = w.ok(&["audit", "checkpoint"]);
    assert!(out.starts_with(&format!("{ORIGIN}\n10\n")), "{out}");
    let out = w.ok(&["audit", "verify"]);
    assert!(out.contains("10 events, 2 erased, 3 checkpoints"), "{out}");
    // A body removed by hand, without an erasure event, is tampering.
    w.exec(
        "UPDATE audit_events SET body = NULL, salt = NULL, erased_at = 1, erasure_reason = 'x' WHERE idx = 5",
        &[],
    );
    w.verify_fails(&[], "log entry 5:");
    // An index past the end cannot be erased.
    assert_eq!(code(&w.run(&["audit", "erase", "--index", "99", "--reason", "x"])), 2);
}

fn export_verifies_offline(b: Backend) {
    let w = with_events(b);
    w.ok(&[
        "audit",
        "erase",
        "--index",
        "1",
        "--reason",
        "gdpr-1",
        "--override-retention",
    ]);
    let vkey = w.ok(&["audit", "vkey"]).trim().to_owned();
    let file = w.path("audit.jsonl");
    w.ok(&["audit", "export", "--format", "jsonl", "--out", file.to_str().unwrap()]);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines = json_lines(&text);
    assert_eq!(lines[0]["kind"], "header");
    assert_eq!(lines[0]["size"], 9);
    assert_eq!(lines.iter().filter(|l| l["kind"] == "checkpoint").count(), 2);
    assert_eq!(lines.iter().filter(|l| l["kind"] == "event").count(), 9);
    let erased = lines.iter().find(|l| l["index"] == 1).unwrap();
    assert_eq!(
        (erased["erased"].as_bool(), &erased["salt"]),
        (Some(true), &Value::Null)
    );
    // Stdout gives the same events.
    let stdout = w.ok(&["audit", "export", "--format", "jsonl"]);
    assert_eq!(json_lines(&stdout)[1..], lines[1..]);

    // An auditor with only the file and the vkey: no data dir, no database.
    let auditor = warden(Backend::Sqlite);
    let f = file.to_str().unwrap();
    let out = auditor.ok(&["audit", "verify", "--export", f, "--vkey", &vkey]);
    assert!(out.contains("9 events, 1 erased, 2 checkpoints"), "{out}");
    // Without --vkey and without the database, the auditor is refused.
    let out = auditor.run(&["audit", "verify", "--export", f]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--vkey"), "{}", stderr(&out));
    // Beside the database, its key is used.
    let out = w.ok(&["audit", "verify", "--export", f]);
    assert!(out.contains("9 events"), "{out}");
    // Another log's key does not verify the checkpoints.
    let stranger = warden(Backend::Sqlite);
    stranger.ok(&["keys", "rotate"]);
    let other_vkey = stranger.ok(&["audit", "vkey"]).trim().to_owned();
    auditor.verify_fails(&["--export", f, "--vkey", &other_vkey], "checkpoint");
    assert_eq!(
        code(&auditor.run(&["audit", "verify", "--export", f, "--vkey", "garbage"])),
        2
    );

    // Tampering inside the export file is named by index.
    let tamper = |name: &str, edit: &dyn Fn(Vec<String>) -> Vec<String>| -> String {
        let edited = edit(text.lines().map(str::to_owned).collect()).join("\n") + "\n";
        let path = w.path(name);
        std::fs::write(&path, edited).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let position = |index: u64| {
        text.lines()
            .position(|l| l.starts_with("{\"kind\":\"event\"") && l.contains(&format!("\"index\":{index},")))
            .unwrap()
    };
    let changed = tamper("changed.jsonl", &|mut l| {
        let i = position(3);
        l[i] = l[i].replacen("\\\"kid\\\":\\\"", "\\\"kid\\\":\\\"x", 1);
        l
    });
    auditor.verify_fails(&["--export", &changed, "--vkey", &vkey], "log entry 3:");
    let dropped = tamper("dropped.jsonl", &|mut l| {
        l.remove(position(4));
        l
    });
    auditor.verify_fails(&["--export", &dropped, "--vkey", &vkey], "log entry 4:");
    let cut = tamper("cut.jsonl", &|mut l| {
        l.truncate(position(5));
        l
    });
    auditor.verify_fails(&["--export", &cut, "--vkey", &vkey], "log entry 5:");
    let unerased = tamper("forged-erasure.jsonl", &|mut l| {
        let i = position(6);
        let mut v: Value = serde_json::from_str(&l[i]).unwrap();
        v["body"] = Value::Null;
        v["salt"] = Value::Null;
        v["erased"] = Value::Bool(true);
        l[i] = v.to_string();
        l
    });
    auditor.verify_fails(&["--export", &unerased, "--vkey", &vkey], "log entry 6:");
}

fn command_line_tokens_are_recorded_or_not_issued(b: Backend) {
    let w = warden(b);
    w.ok(&["keys", "rotate"]);
    let token = w.ok(&[
        "token",
        "issue",
        "--sub",
        "user:Mallory",
        "--aud",
        "x",
        "--role",
        "admin",
    ]);
    let inspected = w.ok(&["token", "inspect", token.trim()]);
    let issued = w.audit_events("token_issued");
    assert_eq!(issued.len(), 1, "{issued:?}");
    let event = &issued[0];
    assert_eq!(
        (&event["grant"], &event["subject"], &event["jti"]),
        (&Value::from("cli"), &Value::from("user:Mallory"), &event["jti"])
    );
    assert!(inspected.contains(event["jti"].as_str().unwrap()), "{inspected}");
    let by = event["issued_by"].as_str().unwrap();
    assert!(by.contains('@') && !by.starts_with('@'), "{by}");
    // With the log unwritable (its state no longer matches its leaves), no
    // token is printed; once it is repaired, the log verifies.
    w.exec("UPDATE audit_state SET size = size + 1000", &[]);
    let out = w.run(&["token", "issue", "--sub", "user:a", "--aud", "x"]);
    assert_ne!(code(&out), 0);
    assert!(
        out.stdout.is_empty(),
        "a token was printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr(&out).contains("the token was not issued"), "{}", stderr(&out));
    w.exec("UPDATE audit_state SET size = size - 1000", &[]);
    assert!(w.ok(&["audit", "verify"]).contains("audit log OK"));
    assert_eq!(w.audit_events("token_issued").len(), 1);
}

warden_test_support::each_backend! {
    by_backend;
    #[test]
    key_commands_are_recorded,
    command_line_tokens_are_recorded_or_not_issued,
    vkey_and_checkpoints,
    tampered_body_is_named,
    deleted_row_is_named,
    swapped_rows_are_named,
    truncated_tail_is_named,
    replaced_checkpoint_is_named,
    erasure_is_reported_not_tampering,
    export_verifies_offline;
}

// --- backend-independent ---

#[test]
fn verify_of_a_log_without_checkpoints_or_log_key() {
    let w = warden(Backend::Sqlite);
    w.ok(&["keys", "rotate"]);
    let out = w.ok(&["audit", "verify"]);
    assert!(out.contains("2 events, 0 erased, 0 checkpoints"), "{out}");
}

#[test]
fn audit_help() {
    let w = warden(Backend::Sqlite);
    for sub in ["vkey", "checkpoint", "tail", "query", "export", "verify", "erase"] {
        let out = w.run(&["audit", sub, "--help"]);
        assert_eq!(code(&out), 0, "{sub}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{sub}");
    }
}

/// `warden audit verify` on a log of 1,000,000 events (goal: under 5 s),
/// from the database and from an export; prints the times. A benchmark,
/// not run by default: `cargo test --release -p warden --test audit_cli --
/// --ignored --nocapture verify_a_million_events` (`WARDEN_BENCH_EVENTS`
/// changes the count).
#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn verify_a_million_events() {
    use std::time::Instant;
    use warden_store::AuditStore as _;
    let total: u64 = std::env::var("WARDEN_BENCH_EVENTS").map_or(1_000_000, |v| v.parse().unwrap());
    let w = warden(Backend::Sqlite);
    w.ok(&["keys", "rotate"]);
    let url = w.database_url();
    let event = |i: u64| {
        warden_audit::AuditEvent::new(
            1_800_000_000 + i / 1000,
            warden_audit::EventKind::AccessDecision {
                principal: format!("user:u{}", i % 997),
                actor_chain: vec![],
                client_id: "cli".into(),
                jti: format!("j-{i}"),
                action: "inference.invoke".into(),
                resource: "Endpoint::\"chat\"".into(),
                decision: warden_audit::Decision::Allow,
                policy_ids: vec!["policy0".into()],
                request_id: format!("req-{i}"),
                route: "/v1/chat".into(),
                source_ip: std::net::IpAddr::from([192, 0, 2, 7]),
                upstream_status: Some(200),
                purpose: None,
            },
        )
    };
    let started = Instant::now();
    // Four rounds, each followed by a checkpoint, as `warden serve` signs them.
    for round in 1..=4u64 {
        let end = total * round / 4;
        runtime().block_on(async {
            let store = warden_store::sqlite::SqliteStore::connect(&url).await.unwrap();
            let mut size = store.size().await.unwrap();
            while size < end {
                let batch: Vec<_> = (size..end.min(size + 10_000))
                    .map(|i| warden_store::PreparedEvent::seal(&event(i)).unwrap())
                    .collect();
                size = store.append_batch(&batch).await.unwrap().end;
            }
            store.close().await;
        });
        w.ok(&["audit", "checkpoint"]);
    }
    eprintln!("appended {total} events in {:.2?}", started.elapsed());
    let timed = |args: &[&str]| {
        let started = Instant::now();
        let out = w.ok(args);
        eprintln!("warden {}: {:.2?}", args.join(" "), started.elapsed());
        out
    };
    let out = timed(&["audit", "verify"]);
    assert!(
        out.contains(&format!("{total} events, 0 erased, 4 checkpoints")),
        "{out}"
    );
    let file = w.path("audit.jsonl");
    let f = file.to_str().unwrap();
    timed(&["audit", "export", "--format", "jsonl", "--out", f]);
    let vkey = w.ok(&["audit", "vkey"]).trim().to_owned();
    let out = timed(&["audit", "verify", "--export", f, "--vkey", &vkey]);
    assert!(out.contains("4 checkpoints"), "{out}");
}
