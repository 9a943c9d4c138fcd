//! People approving an agent's call, end to end with the real binary:
//! `warden serve` with an MCP route and a policy that asks a data lead
//! (`@approval("data-leads")`), approvers told by a Slack-shaped webhook
//! (a receiver in this test) and by e-mail through a real SMTP server
//! (Python `aiosmtpd` from PyPI, pinned in
//! `tests/interop/python/requirements-approvals.txt`), the lead answering
//! with `warden approvals`, the agent's CIBA poll and its one approved
//! call. When python3 or pip is missing, or the install fails, the test
//! fails if `WARDEN_TEST_REQUIRE_INTEROP` is set and otherwise skips with
//! a loud message.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use serde_json::{Value, json};
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::http::client_credentials;
use warden_test_support::net::free_port;
use warden_test_support::services::{self, REQUIRE_INTEROP};

const CIBA: &str = "urn:openid:params:grant-type:ciba";

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The MCP upstream: answers every call with its arguments.
async fn mcp_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
        let call: Value = serde_json::from_slice(&body).unwrap();
        axum::Json(json!({"jsonrpc": "2.0", "id": call["id"], "result": {"content": [
            {"type": "text", "text": call["params"]["arguments"].to_string()}
        ]}}))
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A webhook receiver keeping every JSON body it gets.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/approvals", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Arc<Mutex<Vec<Value>>>>, body: axum::body::Bytes| async move {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            },
        )
        .with_state(Arc::clone(&seen));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// `aiosmtpd` printing every message it receives to `out`, on `port`.
fn smtp_server(packages: &Path, port: u16, out: &Path) -> Killed {
    let log = std::fs::File::create(out).unwrap();
    let child = Command::new("python3")
        .args(["-u", "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Debugging", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .env("PYTHONPATH", packages)
        .env("PYTHONNOUSERSITE", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "aiosmtpd did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Killed(child)
}

/// Waits (at most 20 s) until `ready` says yes.
async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(20), "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(upstream: &str, policies: &Path, hook: &str, smtp_port: u16) -> String {
    format!(
        r#"policy_dir = "{policies}"

[[route]]
name = "tools"
path_prefix = "/mcp"
upstream = "{upstream}/mcp"
kind = "mcp"
action = "tool.call"
resource = {{ type = "Tool", id = "mcp_tool_name" }}

[[approvals.notify]]
group = "data-leads"
webhook = "{hook}"
format = "slack"
email = ["Data leads <leads@example.test>"]

[approvals.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Warden <warden@example.test>"
"#,
        policies = policies.display()
    )
}

/// The built-in schema and policies and one that asks a data lead.
fn policy_dir(dir: &Path) {
    let policies = peers::repo_root().join("crates/warden-policy/policies");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(policies.join("schema.cedarschema"), dir.join("schema.cedarschema")).unwrap();
    for entry in std::fs::read_dir(policies.join("default")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        dir.join("approvals.cedar"),
        r#"@id("tools.delete-needs-lead")
@approval("data-leads")
permit (principal, action == Warden::Action::"tool.call", resource)
when { resource.name == "delete_dataset" };
"#,
    )
    .unwrap();
}

async fn call(http: &reqwest::Client, base: &str, bearer: &str, arguments: &Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "delete_dataset", "arguments": arguments}});
    let r = http
        .post(format!("{base}/mcp"))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_told_by_mail_and_webhook_approves_with_the_cli() {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite).env("WARDEN_LOG", "error");
    let logs = w.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let packages = match peers::pip_install_cached(
        &peers::repo_root().join("tests/interop/python/requirements-approvals.txt"),
        "python-approvals",
        8,
        "the SMTP server receiving approval mail",
        &logs,
        Duration::from_secs(300),
    ) {
        Ok(p) => p,
        Err(why) => return services::unavailable(REQUIRE_INTEROP, "aiosmtpd approval mail", &why),
    };
    let smtp_port = free_port();
    let mail = w.path("mail.txt");
    let _smtp = smtp_server(&packages, smtp_port, &mail);
    let (hook, hooked) = webhook().await;
    let upstream = mcp_upstream().await;
    let policies = w.path("policies");
    policy_dir(&policies);
    w.write_config(&config(&upstream, &policies, &hook, smtp_port));
    let secret = w.create_client(&[
        "--name",
        "report-bot",
        "--kind",
        "agent",
        "--grant",
        "client_credentials",
        "--grant",
        "ciba",
        "--scope",
        "tool:delete_dataset",
    ]);
    let server = w.start(&["serve"]);
    let base = server.base();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // The agent's call waits for a lead.
    let agent = client_credentials(&http, &base, "report-bot", &secret).await;
    let args = json!({"name": "payroll"});
    let (status, body) = call(&http, &base, &agent, &args).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (200, Some(-32003)), "{body}");
    let approval = &body["error"]["data"]["approval"];
    let id = approval["id"].as_str().unwrap().to_owned();
    let auth_req_id = approval["auth_req_id"].as_str().unwrap().to_owned();

    // The leads are told: Slack-shaped webhook, and mail with the link.
    eventually("the webhook", || !hooked.lock().unwrap().is_empty()).await;
    let slack = hooked.lock().unwrap()[0].clone();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("agent:report-bot asks to call the tool `delete_dataset`"),
        "{slack}"
    );
    assert!(text.contains(&format!("/ui/approvals/{id}")), "{slack}");
    eventually("the mail", || {
        std::fs::read_to_string(&mail).is_ok_and(|m| m.contains("END MESSAGE"))
    })
    .await;
    // Quoted-printable soft line breaks and folded headers undone.
    let message = std::fs::read_to_string(&mail)
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("\r\n ", " ")
        .replace("\n ", " ");
    assert!(
        message.contains("Subject: Approval needed: agent:report-bot asks to call the tool"),
        "{message}"
    );
    assert!(message.contains(&format!("{base}/ui/approvals/{id}")), "{message}");
    assert!(!message.contains(&auth_req_id), "no secret in the mail");

    // The lead answers on the command line.
    let lead = w.ok(&[
        "token",
        "issue",
        "--sub",
        "user:lee",
        "--aud",
        &base,
        "--role",
        "data-leads",
    ]);
    let approvals = |args: &[&str]| {
        let mut all = vec!["approvals", "--server", base.as_str()];
        all.extend_from_slice(args);
        let out = w.command(&all).env("WARDEN_TOKEN", lead.trim()).output().unwrap();
        assert!(
            out.status.success(),
            "warden {all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(approvals(&["list"]).contains(&id));
    assert!(approvals(&["show", &id]).contains("tools.delete-needs-lead"));
    let answered = approvals(&["approve", &id, "--reason", "ticket 9", "--json"]);
    let answered: Value = serde_json::from_str(&answered).unwrap();
    assert_eq!(answered["status"], "approved");

    // The agent's poll gets the token; its call passes once.
    let r = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("report-bot", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type={}&auth_req_id={auth_req_id}",
            CIBA.replace(':', "%3A")
        ))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let token: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(status, 200, "{token}");
    let approved = token["access_token"].as_str().unwrap();
    assert_eq!(call(&http, &base, approved, &args).await.0, 200);
    assert_eq!(call(&http, &base, approved, &args).await.0, 403);

    // Each step, the notifications included, is in the audit log.
    let steps: Vec<(String, Option<String>)> = w
        .audit_events("action_approval")
        .iter()
        .filter(|e| e["approval_id"] == id.as_str())
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_owned(),
                e["channel"].as_str().map(str::to_owned),
            )
        })
        .collect();
    for expected in [
        ("requested", None),
        ("notified", Some("webhook:data-leads")),
        ("notified", Some("email:data-leads")),
        ("approved", None),
        ("token_issued", None),
        ("used", None),
        ("refused", None),
    ] {
        let expected = (expected.0.to_owned(), expected.1.map(str::to_owned));
        assert!(steps.contains(&expected), "{expected:?} not in {steps:?}");
    }
}
