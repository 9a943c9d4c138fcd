//! The compliance dashboard in a real browser: headless Chromium (Debian's
//! `/usr/bin/chromium`, or `$CHROMIUM`) driven by Playwright
//! (`playwright-core`, pinned in `tests/browser/package.json`) through
//! `tests/browser/dashboard.mjs`, against the real `warden serve` on a
//! random loopback port with a temporary SQLite data dir and a signed
//! checkpoint every second.
//!
//! The test seeds the registry over HTTP (a pii dataset, a dataset derived
//! from it, a model trained on that, staged, with a promotion request),
//! registers a client, provokes some denials, mints login links with
//! `warden ui link` for an auditor and two approvers, and runs the
//! scenario: sign in (login link, and a pasted token), search the audit
//! log, open an event and see its inclusion proof verified, verify the
//! whole log, open a lineage graph and re-centre it from the keyboard, see
//! an erasure impact, approve a promotion as an approver and be refused as
//! an auditor, read the access matrix and the keys and clients; no console
//! error and no CSP violation anywhere, and no horizontal overflow at
//! 390 px.
//!
//! Screenshots go to `<target dir>/ui-screenshots/`; with
//! `WARDEN_UPDATE_SCREENSHOTS=1` the README's go to `docs/screenshots/`
//! too. `playwright-core` is installed with `npm ci` into
//! `<target dir>/interop-cache/` on the first run; no browser is ever
//! downloaded. When node, npm or Chromium is missing the test fails if
//! `WARDEN_TEST_REQUIRE_BROWSER` is set (`scripts/test` sets it) and
//! otherwise skips loudly.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::services::{self, REQUIRE_BROWSER as REQUIRE_VAR};

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The ML engineer who registers everything and asks for the promotion.
const ENGINEER_SCOPES: &str =
    "dataset.create dataset.write dataset.read model.register model.promote model.read lineage.read";
/// A data scientist whose registrations are denied.
const SCIENTIST: &str = "user:sam";
const SCIENTIST_SCOPES: &str = "dataset.create dataset.read model.register model.read lineage.read";
/// The client the Keys and clients page must list.
const CLIENT: &str = "notebook";

/// The README's screenshots (`docs/screenshots/NAME.png`), one per page.
const DOCS_SHOTS: [&str; 7] = [
    "audit",
    "audit-event",
    "lineage",
    "erasure-impact",
    "models",
    "access",
    "keys",
];
/// Narrow-screen artifacts that must exist too.
const MOBILE_SHOTS: [&str; 2] = ["audit-mobile", "models-mobile"];

use peers::{browser_dir, browser_tools, chromium};

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// What this test asks of the installation, once its server runs.
trait Accounts {
    /// An access token for `sub` with `role` and `scope`, for the issuer.
    fn token(&self, sub: &str, role: &str, scope: &str) -> String;
    /// A dashboard login link for `sub` with `role`.
    fn login_link(&self, sub: &str, role: &str) -> String;
}

impl Accounts for Warden {
    fn token(&self, sub: &str, role: &str, scope: &str) -> String {
        let issuer = issuer(self);
        self.ok(&[
            "token", "issue", "--sub", sub, "--role", role, "--aud", &issuer, "--scope", scope, "--ttl", "900",
        ])
        .trim()
        .to_owned()
    }

    fn login_link(&self, sub: &str, role: &str) -> String {
        let link = self
            .ok(&["ui", "link", "--sub", sub, "--role", role, "--ttl", "900"])
            .trim()
            .to_owned();
        let prefix = format!("{}/ui/login#token=", issuer(self));
        assert!(
            link.starts_with(&prefix) && link.len() > prefix.len() + 20 && !link.contains('\n'),
            "`warden ui link` printed {link:?}, not {prefix}…"
        );
        link
    }
}

/// `http://<listen>`: the issuer of the running server.
fn issuer(w: &Warden) -> String {
    format!("http://{}", w.listen().expect("the server is started"))
}

/// The registry API over HTTP, as the seeding person.
struct Api {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    issuer: String,
}

impl Api {
    fn new(issuer: String) -> Api {
        Api {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(HTTP_TIMEOUT)
                .build()
                .unwrap(),
            issuer,
        }
    }

    /// `POST path` with a JSON `body` and `token`: the status and the body.
    fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}{path}", self.issuer);
        self.runtime.block_on(async {
            let r = self
                .http
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {url}: {e}"));
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        })
    }

    /// `POST` that must succeed; returns the body.
    fn created(&self, token: &str, path: &str, body: &Value) -> Value {
        let (status, answer) = self.post(token, path, body);
        assert!(
            (200..300).contains(&status),
            "POST {path} {body}: HTTP {status}: {answer}"
        );
        answer
    }
}

/// The README's registry story up to the promotion request; its id.
fn seed(api: &Api, engineer: &str) -> String {
    api.created(
        engineer,
        "/api/v1/datasets",
        &json!({"name": "transactions", "classification": "pii", "allowed_purposes": ["fraud-detection"], "owner": "team:risk"}),
    );
    api.created(
        engineer,
        "/api/v1/datasets/transactions/versions",
        &json!({"digest": digest(0x11), "size": 2048, "uri": "s3://lake/transactions/2026-01.csv"}),
    );
    api.created(
        engineer,
        "/api/v1/datasets",
        &json!({"name": "features", "classification": "internal"}),
    );
    api.created(
        engineer,
        "/api/v1/datasets/features/versions",
        &json!({"digest": digest(0x22), "size": 4096, "uri": "s3://lake/features/2026-01.parquet", "parents": ["dataset:transactions@1"]}),
    );
    api.created(
        engineer,
        "/api/v1/models",
        &json!({"name": "fraud", "description": "card fraud classifier"}),
    );
    api.created(
        engineer,
        "/api/v1/models/fraud/versions",
        &json!({"digest": digest(0x33), "uri": "s3://models/fraud/1.onnx", "framework": "onnx", "trained_from": ["dataset:features@1"]}),
    );
    api.created(
        engineer,
        "/api/v1/models/fraud/versions/1/stage",
        &json!({"stage": "staging", "reason": "offline evaluation passed"}),
    );
    let request = api.created(
        engineer,
        "/api/v1/models/fraud/versions/1/promotions",
        &json!({"reason": "better recall at the same precision"}),
    );
    request["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in the promotion request {request}"))
        .to_owned()
}

/// Removes the PNGs a previous run left in `dir`.
fn clear_pngs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "png") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Whether `dir/NAME.png` exists and looks like a PNG.
fn png_ok(dir: &Path, name: &str) -> bool {
    std::fs::read(dir.join(format!("{name}.png"))).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[test]
fn the_dashboard_in_headless_chromium() {
    // Checkpoints every second, so an event's inclusion proof verifies
    // moments after it is logged.
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite).env("WARDEN_LOG", "info");
    w.write_config("[audit]\ncheckpoint_interval = 1\n");
    let logs = w.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let modules = match browser_tools(&logs) {
        Ok(m) => m,
        Err(why) => {
            services::unavailable(REQUIRE_VAR, "dashboard browser (headless Chromium)", &why);
            return;
        }
    };

    // A client for the Keys and clients page, registered before the
    // server starts (the CLI writes the store directly).
    let client = w.ok(&[
        "client",
        "create",
        "--json",
        "--name",
        CLIENT,
        "--kind",
        "service",
        "--scope",
        "dataset.read model.read lineage.read",
        "--role",
        "data-scientist",
        "--audience",
        "inference",
        "--grant",
        "client_credentials",
    ]);
    let client: Value =
        serde_json::from_str(&client).unwrap_or_else(|e| panic!("client create --json ({e}): {client}"));
    assert_eq!(client["client_id"], CLIENT, "{client}");

    let mut server = w.start(&["serve"]);
    let issuer = issuer(&w);
    eprintln!("dashboard: warden serve ready at {issuer}");

    // The registry, and denials for the chart and the search.
    let api = Api::new(issuer.clone());
    let engineer = w.token("user:eve", "ml-engineer", ENGINEER_SCOPES);
    let promotion = seed(&api, &engineer);
    let scientist = w.token(SCIENTIST, "data-scientist", SCIENTIST_SCOPES);
    for (path, body) in [
        (
            "/api/v1/datasets",
            json!({"name": "shadow", "classification": "internal"}),
        ),
        (
            "/api/v1/datasets",
            json!({"name": "shadow-2", "classification": "public"}),
        ),
        ("/api/v1/models", json!({"name": "shadow-model"})),
    ] {
        let (status, answer) = api.post(&scientist, path, &body);
        assert_eq!(status, 403, "a data scientist must be refused POST {path}: {answer}");
    }

    let auditor = w.login_link("user:audrey", "auditor");
    let approver = w.login_link("user:carol", "approver");
    let approver2 = w.login_link("user:dan", "approver");

    // Artifacts under the target dir; the README's screenshots on request.
    let artifacts = peers::target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&artifacts).unwrap();
    clear_pngs(&artifacts);
    let update_docs = std::env::var("WARDEN_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
    let root = peers::repo_root();
    let docs = std::fs::canonicalize(&root).unwrap_or(root).join("docs/screenshots");
    if update_docs {
        std::fs::create_dir_all(&docs).unwrap();
    }

    // The script runs from a scratch dir whose node_modules links to the
    // cached install, so ESM resolution finds the pinned playwright-core.
    let run_dir = w.path("browser");
    std::fs::create_dir_all(&run_dir).unwrap();
    for file in ["dashboard.mjs", "package.json"] {
        std::fs::copy(browser_dir().join(file), run_dir.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(&modules, run_dir.join("node_modules")).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg("dashboard.mjs")
        .current_dir(&run_dir)
        .env("CHROMIUM", chromium())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("DASHBOARD_BASE", &issuer)
        .env("DASHBOARD_LINK_AUDITOR", &auditor)
        .env("DASHBOARD_LINK_APPROVER", &approver)
        .env("DASHBOARD_LINK_APPROVER2", &approver2)
        .env("DASHBOARD_PROMOTION_ID", &promotion)
        .env("DASHBOARD_CLIENT_ID", CLIENT)
        .env("DASHBOARD_DENIED_SUBJECT", SCIENTIST)
        .env("DASHBOARD_ARTIFACTS", &artifacts)
        .env_remove("DASHBOARD_DOCS_DIR");
    if update_docs {
        cmd.env("DASHBOARD_DOCS_DIR", &docs);
    }
    let out = peers::run_bounded(cmd, &logs, "dashboard", SCENARIO_TIMEOUT).unwrap();
    eprintln!("{}{}", out.stdout, out.stderr);
    eprintln!("dashboard: screenshots in {}", artifacts.display());
    if update_docs {
        eprintln!("dashboard: README screenshots written to {}", docs.display());
    }

    let stopped = server.stop().is_some_and(|s| s.success());
    let log = server.log_text();
    let summary: Option<Value> = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok());
    assert!(
        out.success() && summary.as_ref().is_some_and(|s| s["ok"] == true),
        "the browser scenario failed: {}\n--- warden serve log (tail)\n{}",
        out.describe(),
        tail(&log, 60)
    );
    for name in DOCS_SHOTS.iter().chain(MOBILE_SHOTS.iter()) {
        assert!(
            png_ok(&artifacts, name),
            "no screenshot {name}.png in {}",
            artifacts.display()
        );
    }
    if update_docs {
        for name in DOCS_SHOTS {
            assert!(png_ok(&docs, name), "no screenshot {name}.png in {}", docs.display());
        }
    }
    assert!(
        stopped,
        "warden serve did not stop cleanly on SIGTERM:\n{}",
        tail(&log, 60)
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
