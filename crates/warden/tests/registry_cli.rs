//! The governance registry through the `warden` CLI only, against the real
//! `warden serve`, on every backend: SQLite in a temp data dir, and
//! PostgreSQL in a fresh schema (`WARDEN_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; unreachable means failure).
//!
//! One story, as docs/registry.md § Walk-through tells it: five people
//! sign in with `warden login` through the test identity provider
//! (`peers::people`; their groups give their roles), an ML engineer
//! registers a pii dataset, a derived dataset and a model trained on it,
//! stages the model and asks for its promotion; the four-eyes rule refuses
//! the requester and a second vote by the same approver, and two distinct
//! approvers put it in production; the erasure impact of the pii dataset
//! names the derived dataset and the model; a data scientist reads the pii
//! dataset only for an allowed purpose; an auditor changes nothing. Then
//! the server stops and its audit log verifies and holds the changes and
//! the two approvals. Every `warden` command of that section must
//! be one this test ran, with the same arguments.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use peers::people::{self, CLI_SCOPES, Setup};
use serde_json::Value;
use warden_test_support::db::Backend;

/// The README's digests of the derived dataset and of the model.
const FEATURES_DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const MODEL_DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
/// The README's `transactions.csv`.
const TRANSACTIONS_CSV: &str = "id,amount\n1,9.99\n2,120.00\n";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A `warden serve` in a temp dir signing people in through the test
/// identity provider, and every CLI command run against it.
struct Registry {
    s: Setup,
    /// Each command run, with the values of `vars` put back as their names.
    ran: Vec<Vec<String>>,
    /// (value, `$NAME`) as the README names them.
    vars: Vec<(String, String)>,
}

impl Registry {
    /// `None` when the identity provider cannot run here (node missing,
    /// and not required).
    fn start(backend: Backend) -> Option<Self> {
        let s = people::setup(backend)?;
        let mut r = Registry {
            s,
            vars: Vec::new(),
            ran: Vec::new(),
        };
        r.record(&["serve"]);
        Some(r)
    }

    /// The temp dir the commands run in.
    fn dir(&self) -> &Path {
        self.s.warden.dir()
    }

    /// `warden ARGS` in the temp dir with only this test's environment,
    /// and `credentials` (a person's sign-in) as WARDEN_CREDENTIALS.
    fn command(&self, credentials: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = self.s.warden.command(args);
        if let Some(c) = credentials {
            cmd.env("WARDEN_CREDENTIALS", c);
        }
        cmd
    }

    fn record(&mut self, args: &[&str]) {
        let named = args
            .iter()
            .map(|a| {
                self.vars
                    .iter()
                    .find(|(value, _)| value == a)
                    .map_or_else(|| (*a).to_owned(), |(_, name)| name.clone())
            })
            .collect();
        self.ran.push(named);
    }

    fn run(&mut self, credentials: Option<&Path>, args: &[&str]) -> Output {
        self.record(args);
        self.command(credentials, args).output().unwrap()
    }

    /// Runs and requires exit 0; returns stdout.
    fn ok(&mut self, credentials: Option<&Path>, args: &[&str]) -> String {
        let out = self.run(credentials, args);
        assert!(
            out.status.success(),
            "warden {args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs and requires exit 1 (the server said no); returns stderr.
    fn refused(&mut self, credentials: Option<&Path>, args: &[&str]) -> String {
        let out = self.run(credentials, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "warden {args:?} should be refused: {err}");
        assert!(
            err.starts_with("error: ") && err.contains("HTTP 4"),
            "one line naming the status: {err}"
        );
        assert!(out.stdout.is_empty(), "nothing on stdout when refused");
        err
    }

    /// `warden login` as `user` (through the provider, approving the
    /// device code in a browser of their own); the sign-in's file.
    fn login(&mut self, user: &str) -> PathBuf {
        let credentials = self.dir().join(format!("{user}.json"));
        people::login_as(&self.s, user, &credentials);
        self.record(&["login"]);
        credentials
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(&mut self) {
        let status = self.s.server.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "warden serve did not exit cleanly on SIGTERM ({status:?}): {}",
            self.s.server.log_text()
        );
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The bodies of `warden audit query --json` lines.
fn bodies(lines: &str) -> Vec<Value> {
    lines.lines().map(|l| json(json(l)["body"].as_str().unwrap())).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn the_story(backend: Backend) {
    let Some(mut w) = Registry::start(backend) else { return };

    // The command line as a public client, and five people signing in
    // with it (README: eve, cora, dan, sam, audrey).
    w.ok(
        None,
        &[
            "client",
            "create",
            "--name",
            "warden-cli",
            "--kind",
            "public",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--scope",
            CLI_SCOPES,
        ],
    );
    let signed_in: Vec<PathBuf> = ["eve", "cora", "dan", "sam", "audrey"]
        .into_iter()
        .map(|user| w.login(user))
        .collect();
    let [eve, cora, dan, sam, audrey] = [0, 1, 2, 3, 4].map(|i| Some(signed_in[i].as_path()));

    // A pii dataset and its first version, digested from a local file.
    let created = w.ok(
        eve,
        &[
            "dataset",
            "create",
            "transactions",
            "--classification",
            "pii",
            "--allowed-purpose",
            "fraud-detection",
            "--owner",
            "team:risk",
        ],
    );
    assert!(
        created.contains("name: transactions\n") && created.contains("classification: pii\n"),
        "{created}"
    );
    assert!(created.contains("allowed_purposes: fraud-detection\n"), "{created}");
    std::fs::write(w.dir().join("transactions.csv"), TRANSACTIONS_CSV).unwrap();
    let added = w.ok(
        eve,
        &[
            "dataset",
            "version",
            "add",
            "transactions",
            "--file",
            "transactions.csv",
            "--uri",
            "s3://lake/transactions/2026-01.csv",
        ],
    );
    let digest = format!("digest: sha256:{}\n", sha256_hex(TRANSACTIONS_CSV.as_bytes()));
    assert!(added.contains("version: 1\n") && added.contains(&digest), "{added}");
    assert!(
        added.contains(&format!("size: {}\n", TRANSACTIONS_CSV.len())),
        "{added}"
    );

    // A derived dataset whose version names its parent.
    w.ok(eve, &["dataset", "create", "features", "--classification", "internal"]);
    let added = w.ok(
        eve,
        &[
            "dataset",
            "version",
            "add",
            "features",
            "--digest",
            FEATURES_DIGEST,
            "--size",
            "2048",
            "--uri",
            "s3://lake/features/2026-01.parquet",
            "--parent",
            "transactions@1",
        ],
    );
    assert!(added.contains("parents: dataset:transactions@1\n"), "{added}");
    // A pii dataset is listed only for a purpose it allows.
    let listed = json(&w.ok(eve, &["dataset", "list", "--json"]));
    let names: Vec<&str> = listed["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["features"]);
    let listed = w.ok(eve, &["dataset", "list", "--purpose", "fraud-detection"]);
    assert!(
        listed.contains("name: transactions\n") && listed.contains("name: features\n"),
        "{listed}"
    );

    // A model version trained on the derived dataset, moved to staging.
    w.ok(
        eve,
        &["model", "create", "fraud", "--description", "card fraud classifier"],
    );
    let version = w.ok(
        eve,
        &[
            "model",
            "version",
            "add",
            "fraud",
            "--digest",
            MODEL_DIGEST,
            "--uri",
            "s3://models/fraud/1.onnx",
            "--framework",
            "onnx",
            "--metrics",
            r#"{"auc":0.91}"#,
            "--trained-from",
            "features@1",
            "--training-run",
            "run-42",
        ],
    );
    assert!(
        version.contains("stage: development\n") && version.contains("trained_from: dataset:features@1\n"),
        "{version}"
    );
    let staged = w.ok(
        eve,
        &[
            "model",
            "stage",
            "fraud@1",
            "staging",
            "--reason",
            "offline evaluation passed",
        ],
    );
    assert!(staged.contains("stage: staging\n"), "{staged}");
    // Production is not a stage one moves to by hand.
    let out = w.run(eve, &["model", "stage", "fraud@1", "production", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid value"), "{}", stderr(&out));

    // The promotion request: its id alone on stdout.
    let id = w
        .ok(
            eve,
            &["model", "promote", "fraud@1", "--reason", "auc 0.91 on the holdout set"],
        )
        .trim()
        .to_owned();
    assert!(id.starts_with("pr-") && !id.contains(char::is_whitespace), "{id}");
    w.vars.push((id.clone(), "$ID".into()));

    // Four eyes: never the requester (an approver too), each approver once.
    let err = w.refused(eve, &["model", "approve", &id, "--reason", "looks good to me"]);
    assert!(
        err.contains("requester") && err.contains("(access_denied, HTTP 403)"),
        "{err}"
    );
    let first = w.ok(cora, &["model", "approve", &id, "--reason", "metrics reviewed"]);
    assert!(
        first.contains("outcome: recorded\n") && first.contains("approvals: 1\n") && first.contains("required: 2\n"),
        "{first}"
    );
    let err = w.refused(cora, &["model", "approve", &id, "--reason", "metrics reviewed"]);
    assert!(err.contains("counts once"), "{err}");
    let second = w.ok(dan, &["model", "approve", &id, "--reason", "bias report reviewed"]);
    assert!(
        second.contains("outcome: completed\n") && second.contains("status: approved\n"),
        "{second}"
    );
    let shown = json(&w.ok(eve, &["model", "show", "fraud", "--json"]));
    assert_eq!(shown["stage"], "production");
    assert_eq!(shown["versions"][0]["stage"], "production");
    let shown = w.ok(eve, &["model", "show", "fraud"]);
    assert!(shown.contains("stage: production\n"), "{shown}");
    let history = w.ok(eve, &["model", "history", "fraud"]);
    assert!(
        history.contains("from: staging\nto: production\nby: user:dan@example.com\n"),
        "{history}"
    );
    let request = w.ok(eve, &["model", "promotions", &id]);
    assert!(
        request.contains("voter: user:cora@example.com\nvote: approve\n")
            && request.contains("voter: user:dan@example.com\n"),
        "{request}"
    );
    let request = json(&w.ok(eve, &["model", "promotions", &id, "--json"]));
    assert_eq!(request["status"], "approved");
    assert_eq!(request["ballots"].as_array().unwrap().len(), 2);
    let open = w.run(eve, &["model", "promotions", "--status", "open"]);
    assert!(open.status.success() && open.stdout.is_empty(), "{}", stderr(&open));

    // Lineage, and what an erasure of the pii version touches.
    let upstream = w.ok(eve, &["lineage", "upstream", "model:fraud@1"]);
    assert!(
        upstream.contains("from: dataset:features@1\nto: model:fraud@1\ntraining_run: run-42\n")
            && upstream.contains("from: dataset:transactions@1\nto: dataset:features@1\n"),
        "{upstream}"
    );
    let impact = w.ok(eve, &["lineage", "impact", "dataset:transactions@1"]);
    assert!(
        impact.contains("datasets: dataset:features@1\n") && impact.contains("models: model:fraud@1\n"),
        "{impact}"
    );
    let impact = json(&w.ok(eve, &["lineage", "impact", "transactions@1", "--json"]));
    assert_eq!(impact["datasets"], serde_json::json!(["dataset:features@1"]));
    assert_eq!(impact["models"], serde_json::json!(["model:fraud@1"]));
    assert_eq!(impact["hidden"], 0);

    // A data scientist reads the pii dataset only for an allowed purpose.
    let err = w.refused(sam, &["dataset", "show", "transactions"]);
    assert!(
        err.contains("dataset.read") && err.contains("(access_denied, HTTP 403)"),
        "{err}"
    );
    let shown = w.ok(
        sam,
        &["dataset", "show", "transactions", "--purpose", "fraud-detection"],
    );
    assert!(
        shown.contains("name: transactions\n") && shown.contains("version: 1\n"),
        "{shown}"
    );
    w.refused(sam, &["dataset", "show", "transactions", "--purpose", "marketing"]);

    // An auditor changes nothing, whatever the token's scopes.
    let err = w.refused(
        audrey,
        &["dataset", "create", "transactions-copy", "--classification", "internal"],
    );
    assert!(err.contains("dataset.create"), "{err}");
    let err = w.refused(audrey, &["model", "show", "nothing-here"]);
    assert!(err.contains("(not_found, HTTP 404)"), "{err}");

    // Usage errors and an unreachable server are "could not run" (2); no token is ever printed.
    let out = w.run(None, &["dataset", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no access token"), "{}", stderr(&out));

    w.stop();
    let out = w.run(eve, &["dataset", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not reach the server"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrt_") && !stderr(&out).contains("eyJ"));

    // The audit log verifies, and holds the changes and the approvals.
    let verified = w.ok(None, &["audit", "verify"]);
    assert!(verified.contains("audit log OK"), "{verified}");
    let changes = w.ok(None, &["audit", "query", "--type", "registry_change"]);
    assert!(changes.contains("registry_change"), "{changes}");
    let changes = bodies(&w.ok(None, &["audit", "query", "--type", "registry_change", "--json"]));
    let operations: Vec<&str> = changes.iter().map(|c| c["operation"].as_str().unwrap()).collect();
    for op in [
        "dataset.create",
        "dataset.version.add",
        "model.create",
        "model.version.add",
        "model.stage:development->staging",
        "model.stage:staging->production",
    ] {
        assert!(operations.contains(&op), "{op} in {operations:?}");
    }
    assert!(
        operations.iter().any(|o| o.starts_with("model.promotion.request:pr-")),
        "{operations:?}"
    );
    let approvals = w.ok(None, &["audit", "query", "--type", "approval"]);
    assert!(approvals.contains("approver=user:cora@example.com"), "{approvals}");
    let approvals = bodies(&w.ok(None, &["audit", "query", "--type", "approval", "--json"]));
    let approvers: Vec<(&str, u64)> = approvals
        .iter()
        .map(|a| (a["approver"].as_str().unwrap(), a["approvals"].as_u64().unwrap()))
        .collect();
    assert_eq!(approvers, [("user:cora@example.com", 1), ("user:dan@example.com", 2)]);
    assert!(
        approvals
            .iter()
            .all(|a| a["requester"] == "user:eve@example.com" && a["request_id"] == id)
    );
    // The refused votes are audited as denials by the four-eyes rule.
    let eve_decisions = bodies(&w.ok(
        None,
        &[
            "audit",
            "query",
            "--type",
            "access_decision",
            "--subject",
            "user:eve@example.com",
            "--json",
        ],
    ));
    assert!(
        eve_decisions
            .iter()
            .any(|d| d["decision"] == "deny" && d["policy_ids"] == serde_json::json!(["warden.four-eyes"])),
        "{eve_decisions:?}"
    );
    // The data scientist's denial, and the allowed read with its purpose.
    let sam_decisions = w.ok(
        None,
        &[
            "audit",
            "query",
            "--type",
            "access_decision",
            "--subject",
            "user:sam@example.com",
        ],
    );
    assert!(sam_decisions.contains("purpose=fraud-detection"), "{sam_decisions}");
    let sam_decisions = bodies(&w.ok(
        None,
        &[
            "audit",
            "query",
            "--type",
            "access_decision",
            "--subject",
            "user:sam@example.com",
            "--json",
        ],
    ));
    assert!(sam_decisions.iter().any(|d| d["decision"] == "deny"));
    assert!(
        sam_decisions
            .iter()
            .any(|d| d["decision"] == "allow" && d["purpose"] == "fraud-detection")
    );

    the_readme_is_what_ran(&w.ran);
}

/// Every `warden` command of docs/registry.md § Walk-through, as argument
/// lists (variables such as `$ID` left as written).
fn readme_commands() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/registry.md")).unwrap();
    let start = text
        .find("\n## Walk-through")
        .expect("docs/registry.md has a Walk-through section");
    let section = &text[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut commands = Vec::new();
    let (mut in_block, mut is_sh, mut line) = (false, false, String::new());
    for raw in section.lines() {
        if raw.trim_start().starts_with("```") {
            is_sh = !in_block && raw.trim() == "```sh";
            in_block = !in_block;
            continue;
        }
        if !(in_block && is_sh) {
            continue;
        }
        match raw.strip_suffix('\\') {
            Some(part) => {
                line.push_str(part);
                continue;
            }
            None => line.push_str(raw),
        }
        let words = shell_words(&std::mem::take(&mut line));
        if let Some(at) = words.iter().position(|w| w == "warden" || w.ends_with("$(warden")) {
            let mut args = Vec::new();
            for w in &words[at + 1..] {
                if matches!(w.as_str(), "|" | ";" | "&&" | "||" | ">") {
                    break;
                }
                if let Some(last) = w.strip_suffix(')').filter(|_| words[at].ends_with("$(warden")) {
                    args.push(last.to_owned());
                    break;
                }
                args.push(w.clone());
            }
            commands.push(args);
        }
    }
    commands
}

/// Splits a shell line into words: single and double quotes, and a `#`
/// that starts a word begins a comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    w.push(q);
                }
            }
            '#' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn the_readme_is_what_ran(ran: &[Vec<String>]) {
    let commands = readme_commands();
    assert!(
        commands.len() >= 25,
        "the README section shows the whole story: {commands:?}"
    );
    for c in &commands {
        assert!(
            ran.contains(c),
            "README command `warden {}` is not one the test ran",
            c.join(" ")
        );
    }
}

#[test]
fn shell_words_split_like_a_shell() {
    assert_eq!(
        shell_words(r#"X=$(warden a --s "b c" '{"d":1}') # e"#),
        ["X=$(warden", "a", "--s", "b c", r#"{"d":1})"#]
    );
}

#[test]
fn sqlite() {
    the_story(Backend::Sqlite);
}

#[test]
fn postgres() {
    the_story(Backend::Postgres);
}
