//! The governance registry API over real HTTP, with real tokens and the
//! default Cedar policies, on SQLite and on PostgreSQL: a dataset, a
//! derived dataset, a model trained on it, four-eyes promotion (requester,
//! repeated approver, delegated and agent approvers refused), rollback,
//! lineage and erasure impact, the default policies role by role, the
//! gateway deciding on the registry's model stages, and an audit event for
//! every decision and change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use axum::Router;
use serde_json::{Value, json};
use support::{Reply, Server};
use warden_server::options::{IdSource, ResourceSpec, RouteConfig, RouteKind};
use warden_store::{EventQuery, Store};

const ML: &str = "user:eve";
const ML_SCOPES: &str =
    "dataset.create dataset.write dataset.read model.register model.promote model.read model.rollback lineage.read";
const APPROVER_SCOPES: &str = "model.approve model.read lineage.read";
const DS_SCOPES: &str = "dataset.read model.read lineage.read inference.invoke";
const AUDITOR_SCOPES: &str = "dataset.read model.read lineage.read audit.read dataset.create model.register";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

struct Tokens {
    ml: String,
    carol: String,
    dan: String,
    ds: String,
    auditor: String,
    agent_for_carol: String,
    agent: String,
    admin: String,
}

fn tokens<S: Store>(s: &Server<S>) -> Tokens {
    let aud = [s.base.as_str()];
    let t = |sub: &str, scope: &str, roles: &[&str], extra| s.user_token(sub, &aud, scope, roles, 600, extra);
    Tokens {
        ml: t(ML, ML_SCOPES, &["ml-engineer"], None),
        carol: t("user:carol", APPROVER_SCOPES, &["approver"], None),
        dan: t("user:dan", APPROVER_SCOPES, &["approver"], None),
        ds: t("user:dana", DS_SCOPES, &["data-scientist"], None),
        auditor: t("user:ada", AUDITOR_SCOPES, &["auditor"], None),
        agent_for_carol: t(
            "user:carol",
            APPROVER_SCOPES,
            &["approver"],
            Some(("act", json!({"sub": "agent:release-bot"}))),
        ),
        agent: t("agent:release-bot", APPROVER_SCOPES, &["approver"], None),
        admin: t(
            "user:root",
            &format!("{ML_SCOPES} model.approve dataset.delete dataset.classify"),
            &["admin"],
            None,
        ),
    }
}

async fn send<S: Store>(
    s: &Server<S>,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    purpose: Option<&str>,
) -> Reply {
    let mut req = s.http.request(method, format!("{}{path}", s.base)).bearer_auth(token);
    if let Some(p) = purpose {
        req = req.header("x-warden-purpose", p);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

async fn post<S: Store>(s: &Server<S>, path: &str, token: &str, body: Value) -> Reply {
    send(s, reqwest::Method::POST, path, token, Some(body), None).await
}

async fn get<S: Store>(s: &Server<S>, path: &str, token: &str) -> Reply {
    send(s, reqwest::Method::GET, path, token, None, None).await
}

fn expect(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
}

async fn events<S: Store>(s: &Server<S>, kind: &str) -> Vec<Value> {
    s.integrate_audit().await;
    s.state
        .store
        .events(&EventQuery {
            from: 0,
            limit: 10_000,
            kind: Some(kind.into()),
            subject: None,
            resource: None,
            since: None,
            until: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_slice(&e.content.unwrap().0).unwrap())
        .collect()
}

/// Registers `transactions` (pii) v1, `features` v1 derived from it, model
/// `fraud` v1 trained on `features@1`, and moves `fraud@1` to staging.
async fn seed<S: Store>(s: &Server<S>, t: &Tokens) {
    let r = post(
        s,
        "/api/v1/datasets",
        &t.ml,
        json!({"name": "transactions", "classification": "pii", "allowed_purposes": ["fraud-detection"],
               "description": "card transactions"}),
    )
    .await;
    expect(&r, 201, "create transactions");
    assert_eq!(r.body["owner"], ML);
    let r = post(
        s,
        "/api/v1/datasets/transactions/versions",
        &t.ml,
        json!({"digest": digest(1), "size": 1024, "uri": "s3://lake/transactions/2026-11"}),
    )
    .await;
    expect(&r, 201, "transactions v1");
    assert_eq!(r.body["version"], 1);
    let r = post(
        s,
        "/api/v1/datasets",
        &t.ml,
        json!({"name": "features", "classification": "internal"}),
    )
    .await;
    expect(&r, 201, "create features");
    let r = post(
        s,
        "/api/v1/datasets/features/versions",
        &t.ml,
        json!({"digest": digest(2), "size": 10, "uri": "s3://lake/features/1", "parents": ["dataset:transactions@1"]}),
    )
    .await;
    expect(&r, 201, "features v1");
    assert_eq!(r.body["parents"], json!(["dataset:transactions@1"]));
    let r = post(s, "/api/v1/models", &t.ml, json!({"name": "fraud"})).await;
    expect(&r, 201, "create model");
    let r = post(
        s,
        "/api/v1/models/fraud/versions",
        &t.ml,
        json!({"digest": digest(3), "uri": "s3://models/fraud/1", "framework": "pytorch",
               "metrics": {"auc": 0.91}, "trained_from": ["dataset:features@1"], "training_run": "run-1"}),
    )
    .await;
    expect(&r, 201, "fraud v1");
    assert_eq!(r.body["stage"], "development");
    let r = post(
        s,
        "/api/v1/models/fraud/versions/1/stage",
        &t.ml,
        json!({"stage": "staging", "reason": "offline evaluation passed"}),
    )
    .await;
    expect(&r, 200, "to staging");
    assert_eq!(r.body["stage"], "staging");
}

async fn promote<S: Store>(s: &Server<S>, t: &Tokens, version: u32) -> String {
    let r = post(
        s,
        &format!("/api/v1/models/fraud/versions/{version}/promotions"),
        &t.ml,
        json!({"reason": "beats production on recall"}),
    )
    .await;
    expect(&r, 201, "promotion request");
    assert_eq!(
        (r.body["status"].as_str(), r.body["required"].as_u64()),
        (Some("open"), Some(2))
    );
    r.body["id"].as_str().unwrap().to_owned()
}

async fn four_eyes_walkthrough<S: Store>(s: Server<S>) {
    let t = tokens(&s);
    seed(&s, &t).await;
    let id = promote(&s, &t, 1).await;
    let approve = |token: &str| {
        let path = format!("/api/v1/promotions/{id}/approve");
        let token = token.to_owned();
        let s = &s;
        async move { post(s, &path, &token, json!({"reason": "reviewed the evaluation"})).await }
    };

    // The requester cannot approve (the policies allow ml-engineers no
    // model.approve; with an approver role too, the four-eyes rule says no).
    let r = approve(&t.ml).await;
    expect(&r, 403, "requester");
    let both = s.user_token(
        ML,
        &[&s.base],
        &format!("{ML_SCOPES} model.approve"),
        &["ml-engineer", "approver"],
        600,
        None,
    );
    let r = approve(&both).await;
    expect(&r, 403, "requester with the approver role");
    assert!(
        r.body["error_description"].as_str().unwrap().contains("requester"),
        "{}",
        r.body
    );

    // Agents, services and agents acting for an approver never vote.
    expect(&approve(&t.agent).await, 403, "agent");
    let service = s.user_token(
        "svc:release-pipeline",
        &[&s.base],
        APPROVER_SCOPES,
        &["approver"],
        600,
        None,
    );
    let r = approve(&service).await;
    expect(&r, 403, "service");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("never a service")
    );
    expect(&approve(&t.agent_for_carol).await, 403, "agent acting for carol");

    // A reason is required.
    let r = post(
        &s,
        &format!("/api/v1/promotions/{id}/approve"),
        &t.carol,
        json!({"reason": " "}),
    )
    .await;
    expect(&r, 400, "empty reason");

    let r = approve(&t.carol).await;
    expect(&r, 200, "carol approves");
    assert_eq!(
        (r.body["outcome"].as_str(), r.body["approvals"].as_u64()),
        (Some("recorded"), Some(1))
    );
    let r = approve(&t.carol).await;
    expect(&r, 403, "carol again");
    assert!(r.body["error_description"].as_str().unwrap().contains("counts once"));
    let r = get(&s, "/api/v1/models/fraud", &t.ml).await;
    assert_eq!(r.body["stage"], "staging", "one approval is not enough");

    let r = approve(&t.dan).await;
    expect(&r, 200, "dan approves");
    assert_eq!(r.body["outcome"], "completed");
    assert_eq!(r.body["status"], "approved");
    let r = get(&s, "/api/v1/models/fraud", &t.ml).await;
    assert_eq!(r.body["stage"], "production");
    expect(&approve(&t.admin).await, 409, "closed request");

    // A second version replaces the first; rollback brings the first back.
    let r = post(
        &s,
        "/api/v1/models/fraud/versions",
        &t.ml,
        json!({"digest": digest(4), "uri": "s3://models/fraud/2", "trained_from": ["dataset:features@1"]}),
    )
    .await;
    expect(&r, 201, "fraud v2");
    let r = post(
        &s,
        "/api/v1/models/fraud/versions/2/promotions",
        &t.ml,
        json!({"reason": "not in staging yet"}),
    )
    .await;
    expect(&r, 409, "promotion from development");
    let r = post(
        &s,
        "/api/v1/models/fraud/versions/2/stage",
        &t.ml,
        json!({"stage": "production", "reason": "skip the queue"}),
    )
    .await;
    expect(&r, 400, "direct move to production");
    post(
        &s,
        "/api/v1/models/fraud/versions/2/stage",
        &t.ml,
        json!({"stage": "staging", "reason": "evaluation passed"}),
    )
    .await;
    let id2 = promote(&s, &t, 2).await;
    for tok in [&t.carol, &t.dan] {
        let r = post(
            &s,
            &format!("/api/v1/promotions/{id2}/approve"),
            tok,
            json!({"reason": "ok"}),
        )
        .await;
        expect(&r, 200, "approve v2");
    }
    let v1 = get(&s, "/api/v1/models/fraud/versions/1", &t.ml).await;
    assert_eq!(v1.body["stage"], "archived");
    let r = post(
        &s,
        "/api/v1/models/fraud/rollback",
        &t.ml,
        json!({"reason": "v2 drifts"}),
    )
    .await;
    expect(&r, 200, "rollback");
    assert_eq!((r.body["from"].as_u64(), r.body["to"].as_u64()), (Some(2), Some(1)));
    let r = get(&s, "/api/v1/models/fraud/history", &t.auditor).await;
    expect(&r, 200, "history");
    assert!(r.body["changes"].as_array().unwrap().len() >= 6, "{}", r.body);

    // A rejection closes a request.
    post(
        &s,
        "/api/v1/models/fraud/versions",
        &t.ml,
        json!({"digest": digest(5), "uri": "s3://models/fraud/3"}),
    )
    .await;
    post(
        &s,
        "/api/v1/models/fraud/versions/3/stage",
        &t.ml,
        json!({"stage": "staging", "reason": "candidate"}),
    )
    .await;
    let id3 = promote(&s, &t, 3).await;
    let r = post(
        &s,
        "/api/v1/models/fraud/versions/3/stage",
        &t.ml,
        json!({"stage": "development", "reason": "more work"}),
    )
    .await;
    expect(&r, 409, "a version under review stays in staging");
    let r = post(
        &s,
        &format!("/api/v1/promotions/{id3}/reject"),
        &t.carol,
        json!({"reason": "no lineage for v3"}),
    )
    .await;
    expect(&r, 200, "reject");
    assert_eq!(
        (r.body["outcome"].as_str(), r.body["status"].as_str()),
        (Some("rejected"), Some("rejected"))
    );
    let r = post(
        &s,
        &format!("/api/v1/promotions/{id3}/approve"),
        &t.dan,
        json!({"reason": "late"}),
    )
    .await;
    expect(&r, 409, "approve after rejection");
    assert_eq!(
        get(&s, "/api/v1/models/fraud/versions/3", &t.ml).await.body["stage"],
        "staging"
    );
    // The requester withdraws their own request with the right to make it.
    let id4 = promote(&s, &t, 3).await;
    let r = post(
        &s,
        &format!("/api/v1/promotions/{id4}/reject"),
        &t.ml,
        json!({"reason": "withdrawn"}),
    )
    .await;
    expect(&r, 200, "withdrawal");
    assert_eq!(r.body["status"], "rejected");
    let r = get(&s, "/api/v1/promotions?model=fraud&status=approved", &t.auditor).await;
    expect(&r, 200, "list promotions");
    assert_eq!(r.body["promotions"].as_array().unwrap().len(), 2);

    // Lineage and erasure impact.
    let r = get(&s, "/api/v1/datasets/transactions/versions/1/impact", &t.auditor).await;
    expect(&r, 200, "impact");
    assert_eq!(r.body["datasets"], json!(["dataset:features@1"]));
    assert_eq!(r.body["models"], json!(["model:fraud@1", "model:fraud@2"]));
    assert_eq!(r.body["hidden"], 0);
    // Deleting a derived dataset hides nothing from an erasure request.
    let r = send(
        &s,
        reqwest::Method::DELETE,
        "/api/v1/datasets/features?reason=superseded",
        &t.admin,
        None,
        None,
    )
    .await;
    expect(&r, 200, "delete features");
    let r = get(&s, "/api/v1/datasets/transactions/versions/1/impact", &t.auditor).await;
    assert_eq!(r.body["datasets"], json!(["dataset:features@1"]), "{}", r.body);
    let r = get(&s, "/api/v1/lineage/model/fraud@1/upstream?depth=5", &t.ds).await;
    expect(&r, 200, "upstream");
    let nodes: Vec<&str> = r.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["dataset:features@1", "dataset:transactions@1", "model:fraud@1"]);
    assert_eq!(r.body["edges"].as_array().unwrap().len(), 2);
    let r = get(&s, "/api/v1/lineage/model/fraud@1/upstream?depth=1", &t.ds).await;
    assert_eq!(r.body["nodes"].as_array().unwrap().len(), 2, "{}", r.body);
    expect(
        &get(&s, "/api/v1/lineage/model/fraud@9/upstream", &t.ds).await,
        404,
        "unknown node",
    );
    expect(
        &get(&s, "/api/v1/lineage/table/x@1/upstream", &t.ds).await,
        400,
        "bad kind",
    );
    expect(
        &get(&s, "/api/v1/lineage/model/fraud@1/sideways", &t.ds).await,
        400,
        "bad direction",
    );
    expect(
        &get(&s, "/api/v1/lineage/model/fraud@1/upstream?depth=0", &t.ds).await,
        400,
        "bad depth",
    );

    // Every change and vote is in the audit log.
    let approvals = events(&s, "approval").await;
    assert_eq!(approvals.len(), 6, "{approvals:?}");
    assert!(
        approvals
            .iter()
            .all(|e| e["reason"].is_string() && e["request_id"].is_string())
    );
    let changes = events(&s, "registry_change").await;
    let ops: Vec<&str> = changes.iter().map(|e| e["operation"].as_str().unwrap()).collect();
    for op in [
        "dataset.create",
        "dataset.version.add",
        "model.create",
        "model.version.add",
        "model.stage:development->staging",
        "model.stage:staging->production",
        "model.stage:production->archived",
        "model.rollback:2->1",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    assert!(ops.iter().any(|o| o.starts_with("model.promotion.request:")));
    let denials: Vec<Value> = events(&s, "access_decision")
        .await
        .into_iter()
        .filter(|e| e["decision"] == "deny")
        .collect();
    assert!(
        denials.iter().any(|e| e["policy_ids"] == json!(["warden.four-eyes"])),
        "four-eyes refusals are audited: {denials:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn four_eyes_promotion_lineage_and_audit_sqlite() {
    four_eyes_walkthrough(support::start_sqlite(|_| {}).await).await;
}

#[tokio::test]
async fn four_eyes_promotion_lineage_and_audit_postgres() {
    four_eyes_walkthrough(support::start_pg(|_| {}).await).await;
}

async fn default_policies<S: Store>(s: Server<S>) {
    let t = tokens(&s);
    seed(&s, &t).await;
    let r = post(
        &s,
        "/api/v1/datasets",
        &t.ml,
        json!({"name": "board", "classification": "confidential"}),
    )
    .await;
    expect(&r, 201, "confidential dataset");

    // data-scientist.read-datasets and the pii purpose guard.
    expect(
        &get(&s, "/api/v1/datasets/features", &t.ds).await,
        200,
        "ds reads internal",
    );
    let r = get(&s, "/api/v1/datasets/transactions", &t.ds).await;
    expect(&r, 403, "ds reads pii without purpose");
    assert_eq!(r.body["error"], "access_denied");
    assert!(
        !r.body.to_string().contains("pii-purpose"),
        "the deciding policy is in the audit log, not the body"
    );
    let path = "/api/v1/datasets/transactions";
    let r = send(&s, reqwest::Method::GET, path, &t.ds, None, Some("marketing")).await;
    expect(&r, 403, "ds reads pii for another purpose");
    let r = send(&s, reqwest::Method::GET, path, &t.ds, None, Some("fraud-detection")).await;
    expect(&r, 200, "ds reads pii for its purpose");
    assert_eq!(r.body["versions"].as_array().unwrap().len(), 1);
    let claimed = s.user_token(
        "user:dana",
        &[&s.base],
        DS_SCOPES,
        &["data-scientist"],
        600,
        Some(("purpose", json!("fraud-detection"))),
    );
    expect(&get(&s, path, &claimed).await, 200, "purpose from the token claim");
    let r = send(&s, reqwest::Method::GET, path, &claimed, None, Some("marketing")).await;
    expect(&r, 400, "a header may not change the purpose the token was issued for");
    let research = s.user_token(
        "user:dana",
        &[&s.base],
        DS_SCOPES,
        &["data-scientist"],
        600,
        Some(("purpose", json!("research"))),
    );
    let r = send(&s, reqwest::Method::GET, path, &research, None, Some("fraud-detection")).await;
    expect(&r, 400, "nor widen it");
    let r = get(&s, path, &research).await;
    expect(&r, 403, "the claimed purpose is not allowed");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("x-warden-purpose"),
        "{}",
        r.body
    );
    let r = send(&s, reqwest::Method::GET, path, &t.ds, None, Some("not a name")).await;
    expect(&r, 400, "malformed purpose");
    let reads: Vec<Value> = events(&s, "access_decision")
        .await
        .into_iter()
        .filter(|e| e["resource"] == "Dataset::\"transactions\"" && e["decision"] == "allow")
        .collect();
    assert!(reads.iter().any(|e| e["purpose"] == "fraud-detection"), "{reads:?}");
    let denied: Vec<Value> = events(&s, "access_decision")
        .await
        .into_iter()
        .filter(|e| e["resource"] == "Dataset::\"transactions\"" && e["decision"] == "deny")
        .collect();
    assert!(denied.iter().any(|e| {
        e["policy_ids"]
            .as_array()
            .unwrap()
            .contains(&json!("dataset.pii-purpose"))
    }));
    expect(
        &get(&s, "/api/v1/datasets/board", &t.ds).await,
        403,
        "ds reads confidential",
    );
    let r = get(&s, "/api/v1/datasets", &t.ds).await;
    let names: Vec<&str> = r.body["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["features"], "a listing shows only what the caller may read");
    let r = post(
        &s,
        "/api/v1/datasets",
        &t.ds,
        json!({"name": "mine", "classification": "public"}),
    )
    .await;
    expect(&r, 403, "ds creates a dataset");

    // auditor.read and auditor.read-only.
    expect(
        &get(&s, "/api/v1/datasets/board", &t.auditor).await,
        200,
        "auditor reads confidential",
    );
    expect(
        &get(&s, "/api/v1/models/fraud", &t.auditor).await,
        200,
        "auditor reads models",
    );
    let r = post(
        &s,
        "/api/v1/datasets",
        &t.auditor,
        json!({"name": "x", "classification": "public"}),
    )
    .await;
    expect(&r, 403, "auditor creates");
    let r = post(&s, "/api/v1/models", &t.auditor, json!({"name": "x"})).await;
    expect(&r, 403, "auditor registers");

    // ml-engineer: no confidential reads, no approvals, no deletes.
    expect(
        &get(&s, "/api/v1/datasets/board", &t.ml).await,
        403,
        "ml reads confidential",
    );
    let r = send(
        &s,
        reqwest::Method::DELETE,
        "/api/v1/datasets/features?reason=x",
        &t.ml,
        None,
        None,
    )
    .await;
    expect(&r, 403, "ml deletes");

    // admin.all: deletes (soft), audited with the reason.
    let r = send(
        &s,
        reqwest::Method::DELETE,
        "/api/v1/datasets/board?reason=duplicate",
        &t.admin,
        None,
        None,
    )
    .await;
    expect(&r, 200, "admin deletes");
    expect(&get(&s, "/api/v1/datasets/board", &t.admin).await, 404, "deleted");
    let deletes: Vec<Value> = events(&s, "registry_change")
        .await
        .into_iter()
        .filter(|e| e["operation"] == "dataset.delete")
        .collect();
    assert_eq!(deletes[0]["reason"], "duplicate");

    // Metadata updates are checked against the new attributes too.
    let patch = |token: &str, body: Value| {
        let token = token.to_owned();
        let s = &s;
        async move {
            send(
                s,
                reqwest::Method::PATCH,
                "/api/v1/datasets/features",
                &token,
                Some(body),
                None,
            )
            .await
        }
    };
    let r = patch(&t.ml, json!({"description": "v2 features"})).await;
    expect(&r, 200, "ml edits the description");
    let r = patch(&t.ml, json!({"allowed_purposes": ["anything"]})).await;
    expect(&r, 403, "ml may not widen who reads the data");
    let r = patch(&t.ml, json!({"classification": "public"})).await;
    expect(&r, 403, "ml may not reclassify");
    let r = patch(&t.admin, json!({"allowed_purposes": ["fraud-detection"]})).await;
    expect(&r, 200, "admin restricts the purposes");
    assert_eq!(r.body["allowed_purposes"], json!(["fraud-detection"]));
    let edits: Vec<Value> = events(&s, "registry_change")
        .await
        .into_iter()
        .filter(|e| e["operation"] == "dataset.update")
        .collect();
    assert_eq!(
        edits.last().unwrap()["changes"],
        json!(["allowed_purposes: [] -> [\"fraud-detection\"]"])
    );
    let r = send(
        &s,
        reqwest::Method::PATCH,
        "/api/v1/datasets/features",
        &t.ml,
        Some(json!({"tenant": "x"})),
        None,
    )
    .await;
    expect(&r, 400, "tenant never changes");

    // Scopes bind every role: an admin token without `model.approve`.
    let r = get(&s, "/api/v1/promotions", &t.admin).await;
    expect(&r, 200, "admin lists");
    let unscoped = s.user_token("user:root", &[&s.base], "model.read", &["admin"], 600, None);
    let r = post(&s, "/api/v1/models", &unscoped, json!({"name": "y"})).await;
    expect(&r, 403, "admin without the scope");
    assert_eq!(r.error(), "insufficient_scope", "{}", r.body);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // Tenants never see each other's data.
    let acme = s.user_token(
        "user:eve",
        &[&s.base],
        ML_SCOPES,
        &["ml-engineer"],
        600,
        Some(("tenant", json!("acme"))),
    );
    let r = post(
        &s,
        "/api/v1/datasets",
        &acme,
        json!({"name": "globex-data", "classification": "internal", "tenant": "globex"}),
    )
    .await;
    expect(&r, 403, "create in another tenant");
    let r = post(
        &s,
        "/api/v1/datasets",
        &acme,
        json!({"name": "acme-data", "classification": "internal", "tenant": "acme"}),
    )
    .await;
    expect(&r, 201, "create in own tenant");
    let r = post(
        &s,
        "/api/v1/datasets",
        &acme,
        json!({"name": "acme-2", "classification": "internal"}),
    )
    .await;
    expect(&r, 201, "a tenant's principal creates inside its tenant");
    assert_eq!(r.body["tenant"], "acme");
    let globex = s.user_token(
        "user:gus",
        &[&s.base],
        DS_SCOPES,
        &["data-scientist"],
        600,
        Some(("tenant", json!("globex"))),
    );
    let r = get(&s, "/api/v1/datasets/acme-data", &globex).await;
    expect(&r, 404, "another tenant's dataset does not exist for the caller");
    let missing = get(&s, "/api/v1/datasets/no-such-data", &globex).await;
    assert_eq!(
        (r.error(), missing.error()),
        ("not_found", "not_found"),
        "indistinguishable from a missing one"
    );

    // Bad input: clear errors, nothing written.
    let r = post(
        &s,
        "/api/v1/datasets",
        &t.ml,
        json!({"name": "a b", "classification": "public"}),
    )
    .await;
    expect(&r, 400, "bad name");
    assert!(r.body["error_description"].as_str().unwrap().contains("`name`"));
    let r = post(
        &s,
        "/api/v1/datasets",
        &t.ml,
        json!({"name": "z", "classification": "secret"}),
    )
    .await;
    expect(&r, 400, "bad classification");
    let r = post(
        &s,
        "/api/v1/datasets/features/versions",
        &t.ml,
        json!({"digest": "md5:abc", "size": 1, "uri": "s3://x/y"}),
    )
    .await;
    expect(&r, 400, "bad digest");
    let r = post(
        &s,
        "/api/v1/datasets/features/versions",
        &t.ml,
        json!({"digest": digest(9), "size": 1, "uri": "s3://x/y", "parents": ["dataset:nope@1"]}),
    )
    .await;
    expect(&r, 404, "missing parent");
    // `features` now lists an allowed purpose: reading it needs one.
    let versions = "/api/v1/datasets/features/versions";
    expect(&get(&s, versions, &t.ml).await, 403, "no purpose");
    let r = send(&s, reqwest::Method::GET, versions, &t.ml, None, Some("fraud-detection")).await;
    assert_eq!(
        r.body["versions"].as_array().unwrap().len(),
        1,
        "nothing was written: {}",
        r.body
    );
    expect(
        &get(&s, "/api/v1/datasets/features/versions/01", &t.ml).await,
        400,
        "bad version",
    );
    let r = post(
        &s,
        "/api/v1/datasets",
        &t.ml,
        json!({"name": "features", "classification": "public"}),
    )
    .await;
    expect(&r, 409, "duplicate");
    let r = s.get("/api/v1/datasets", None).await;
    expect(&r, 401, "no token");
    assert!(r.headers.contains_key("www-authenticate"));
    let foreign = s.user_token(
        ML,
        &["https://elsewhere.example"],
        ML_SCOPES,
        &["ml-engineer"],
        600,
        None,
    );
    expect(&get(&s, "/api/v1/datasets", &foreign).await, 401, "wrong audience");
    s.stop().await;
}

#[tokio::test]
async fn default_policies_over_http_sqlite() {
    default_policies(support::start_sqlite(|_| {}).await).await;
}

#[tokio::test]
async fn default_policies_over_http_postgres() {
    default_policies(support::start_pg(|_| {}).await).await;
}

/// A stub upstream answering 200 `{"ok": true}` to anything.
async fn upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(|| async { axum::Json(json!({"ok": true})) });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn gateway_policies_see_registry_stages() {
    let up = upstream().await;
    let route = RouteConfig {
        name: "openai".into(),
        methods: vec!["POST".into()],
        path_prefix: "/v1".into(),
        upstream: up,
        audience: None,
        action: "inference.invoke".into(),
        resource: ResourceSpec {
            type_name: "Model".into(),
            id: IdSource::JsonField("model".into()),
        },
        scopes: vec!["inference.invoke".into()],
        rate_limit: None,
        forward_authorization: false,
        approval_wait: 0,
        kind: RouteKind::Openai,
    };
    let s = support::start_sqlite(|o| {
        o.routes = vec![route];
        o.model_stages.insert("gpt-4o".into(), "production".into());
    })
    .await;
    let t = tokens(&s);
    let r = post(&s, "/api/v1/models", &t.ml, json!({"name": "gpt-4o"})).await;
    expect(&r, 409, "a catalog model is the operator's");
    seed(&s, &t).await;
    let path = "/v1/chat/completions";
    let body = json!({"model": "fraud", "messages": []});
    expect(
        &s.post_json(path, Some(&t.ds), &body).await,
        403,
        "a staging model is closed to data scientists",
    );
    let id = promote(&s, &t, 1).await;
    for tok in [&t.carol, &t.dan] {
        post(
            &s,
            &format!("/api/v1/promotions/{id}/approve"),
            tok,
            json!({"reason": "ok"}),
        )
        .await;
    }
    expect(
        &s.post_json(path, Some(&t.ds), &body).await,
        200,
        "a production model is open to data scientists at once",
    );
    post(
        &s,
        "/api/v1/models/fraud/versions/1/stage",
        &t.ml,
        json!({"stage": "archived", "reason": "withdrawn"}),
    )
    .await;
    expect(
        &s.post_json(path, Some(&t.ds), &body).await,
        403,
        "an archived model is closed to everyone",
    );
    s.stop().await;
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let s = support::start_sqlite(|_| {}).await;
    let r = s.get("/api/v1/openapi.json", None).await;
    expect(&r, 200, "openapi");
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/datasets",
        "/api/v1/datasets/{name}/versions/{version}/impact",
        "/api/v1/models/{name}/versions/{version}/promotions",
        "/api/v1/promotions/{id}/approve",
        "/api/v1/lineage/{kind}/{id}/{direction}",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(r.body["components"]["schemas"]["DatasetSpec"].is_object());
    s.stop().await;
}

/// Eight approvers vote at once on a request that needs three: exactly
/// three ballots are recorded and one of them completes the request. On a
/// multi-threaded runtime, so the server handles the votes in parallel, and
/// on both backends.
async fn concurrent_approvals_over_http<S: Store>(s: Server<S>) {
    let t = tokens(&s);
    seed(&s, &t).await;
    let r = post(
        &s,
        "/api/v1/models/fraud/versions/1/promotions",
        &t.ml,
        json!({"reason": "ship it"}),
    )
    .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let approvers: Vec<String> = (0..8)
        .map(|i| {
            s.user_token(
                &format!("user:a{i}"),
                &[&s.base],
                APPROVER_SCOPES,
                &["approver"],
                600,
                None,
            )
        })
        .collect();
    let path = format!("/api/v1/promotions/{id}/approve");
    let replies = futures_util::future::join_all(
        approvers
            .iter()
            .map(|tok| post(&s, &path, tok, json!({"reason": "reviewed"}))),
    )
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let completed = replies.iter().filter(|r| r.body["outcome"] == "completed").count();
    assert_eq!(
        (ok, completed),
        (3, 1),
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert!(replies.iter().filter(|r| r.status != 200).all(|r| r.status == 409));
    let r = get(&s, &format!("/api/v1/promotions/{id}"), &t.auditor).await;
    assert_eq!(r.body["ballots"].as_array().unwrap().len(), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_over_http_record_exactly_the_required_number_sqlite() {
    concurrent_approvals_over_http(support::start_sqlite(|o| o.registry.required_approvals = 3).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_over_http_record_exactly_the_required_number_postgres() {
    concurrent_approvals_over_http(support::start_pg(|o| o.registry.required_approvals = 3).await).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_audited() {
    for (trusted, expected) in [(true, "203.0.113.9"), (false, "127.0.0.1")] {
        let s = support::start_sqlite(|o| {
            if trusted {
                o.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            }
        })
        .await;
        let t = tokens(&s);
        let r = s
            .http
            .get(format!("{}/api/v1/models", s.base))
            .bearer_auth(&t.auditor)
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let listed: Vec<Value> = events(&s, "access_decision").await;
        assert_eq!(listed.last().unwrap()["source_ip"], expected, "trusted: {trusted}");
        s.stop().await;
    }
}
