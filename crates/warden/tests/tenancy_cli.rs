//! Tenants through the real binary (SQLite in a temp dir): `warden client
//! create --tenant` stores the tenant (`client show`, `client list`), the
//! running `warden serve` puts it in the client's tokens, and under
//! `WARDEN_TENANCY=strict` a client of no tenant reads only datasets of no
//! tenant, another tenant's dataset answering exactly as a missing one
//! while the audit log records the `tenant.strict` denial.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;

const SCOPES: &str = "dataset.read dataset.create";

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&warden_jose::base64url::decode(part).unwrap()).unwrap()
}

async fn token(http: &reqwest::Client, issuer: &str, id: &str, secret: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = http
            .post(format!("{issuer}/oauth/token"))
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await;
        if let Ok(r) = r {
            let status = r.status().as_u16();
            let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            assert_eq!(status, 200, "{body}");
            return body["access_token"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "warden serve never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tenants_and_strict_tenancy_through_the_binary() {
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite)
        .env("WARDEN_LOG", "warn")
        .env("WARDEN_TENANCY", "strict");
    w.ok(&["keys", "rotate"]);
    let config = w.ok(&["config", "check"]);
    assert!(config.contains("tenancy = \"strict\""), "{config}");
    let create = |name: &str, tenant: Option<&str>| {
        let mut args = vec![
            "--name",
            name,
            "--kind",
            "service",
            "--scope",
            SCOPES,
            "--role",
            "ml-engineer",
        ];
        if let Some(t) = tenant {
            args.extend(["--tenant", t]);
        }
        w.create_client(&args)
    };
    let acme_secret = create("acme-etl", Some("acme"));
    let global_secret = create("global-etl", None);
    let shown: Value = serde_json::from_str(&w.ok(&["client", "show", "acme-etl"])).unwrap();
    assert_eq!(shown["tenant"], "acme");
    let list = w.ok(&["client", "list"]);
    let row = |id: &str| {
        list.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{list}"))
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        (row("acme-etl"), row("global-etl")),
        ("acme".to_owned(), "-".to_owned()),
        "{list}"
    );
    let bad = w.run(&[
        "client", "create", "--name", "bad", "--kind", "service", "--tenant", "a b",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));

    let mut server = w.start(&["serve"]);
    let issuer = server.base();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let acme = token(&http, &issuer, "acme-etl", &acme_secret).await;
    let global = token(&http, &issuer, "global-etl", &global_secret).await;
    assert_eq!(payload(&acme)["tenant"], "acme");
    assert!(payload(&global).get("tenant").is_none());

    let datasets = format!("{issuer}/api/v1/datasets");
    for (t, name) in [(&acme, "acme-data"), (&global, "common")] {
        let body = json!({"name": name, "classification": "internal"});
        let (status, body) = call(&http, reqwest::Method::POST, &datasets, t, Some(body)).await;
        assert_eq!(status, 201, "{body}");
    }
    let get = |t: &str, name: &str| {
        let (http, url, t) = (&http, format!("{datasets}/{name}"), t.to_owned());
        async move { call(http, reqwest::Method::GET, &url, &t, None).await }
    };
    let (status, body) = get(&acme, "acme-data").await;
    assert_eq!((status, &body["tenant"]), (200, &json!("acme")), "{body}");
    assert_eq!(get(&acme, "common").await.0, 200);
    assert_eq!(get(&global, "common").await.0, 200);
    let hidden = get(&global, "acme-data").await;
    let missing = get(&global, "acme-datx").await;
    assert_eq!(hidden.0, 404, "{}", hidden.1);
    assert_eq!(
        hidden.1.to_string(),
        missing.1.to_string().replace("acme-datx", "acme-data"),
        "exactly as a missing dataset"
    );
    let status = server.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    let denied: Vec<Value> = w
        .audit_events("access_decision")
        .into_iter()
        .filter(|e| e["principal"] == "svc:global-etl" && e["resource"] == "Dataset::\"acme-data\"")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(
        (&denied[0]["decision"], &denied[0]["policy_ids"]),
        (&json!("deny"), &json!(["tenant.strict"]))
    );
}
