//! People approving agents' calls (`docs/approvals.md`), over real HTTP
//! with the real policies: an MCP tool call whose policy says
//! `@approval("data-leads")` is answered with the approval error; a person
//! of that group approves through `/api/v1/approvals`; the agent's CIBA
//! poll gets a single-use token for exactly that call, which the gateway
//! accepts once. Every refusal on the way is checked and audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use support::browser::Browser;
use support::{Auth, Server, claims};
use warden_jose::issue::{AccessTokenClaims, encode, new_jti};
use warden_server::oauth::clients::{self, ClientSpec};
use warden_server::options::{IdSource, ResourceSpec, RouteConfig, RouteKind};
use warden_store::Store;
use warden_store::oauth::ClientKind;

const CIBA: &str = "urn:openid:params:grant-type:ciba";
const TOOLS: &str = "tool:delete_dataset tool:search tool:export_report";

const APPROVAL_POLICIES: &str = r#"
@id("tools.delete-needs-lead")
@approval("data-leads")
@approval_ttl("120")
permit (principal, action == Warden::Action::"tool.call", resource)
when { resource.name == "delete_dataset" };

@id("tools.export-needs-self")
@approval("self")
permit (principal, action == Warden::Action::"tool.call", resource)
when { resource.name == "export_report" };
"#;

/// An MCP server that answers every call with the arguments it got.
async fn mcp_upstream() -> String {
    async fn answer(request: Request) -> Response {
        let bytes = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap();
        let call: Value = serde_json::from_slice(&bytes).unwrap();
        axum::Json(json!({
            "jsonrpc": "2.0",
            "id": call["id"],
            "result": {"content": [{"type": "text", "text": call["params"]["arguments"].to_string()}]},
        }))
        .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(answer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// The built-in schema and policies with [`APPROVAL_POLICIES`] beside them.
fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/../warden-policy/policies");
    std::fs::copy(
        format!("{policies}/schema.cedarschema"),
        dir.path().join("schema.cedarschema"),
    )
    .unwrap();
    for entry in std::fs::read_dir(format!("{policies}/default")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("approvals.cedar"), APPROVAL_POLICIES).unwrap();
    dir
}

fn tools_route(upstream: &str) -> RouteConfig {
    RouteConfig {
        name: "tools".into(),
        methods: Vec::new(),
        path_prefix: "/mcp".into(),
        upstream: format!("{upstream}/mcp"),
        audience: None,
        action: "tool.call".into(),
        resource: ResourceSpec {
            type_name: "Tool".into(),
            id: IdSource::McpToolName,
        },
        scopes: Vec::new(),
        rate_limit: None,
        forward_authorization: false,
        approval_wait: 0,
        kind: RouteKind::Mcp,
    }
}

/// A token of `sub` (with `roles`) from client `client_id`, acting through
/// `agent` when given.
fn token<S: Store>(s: &Server<S>, sub: &str, roles: &[&str], client_id: &str, agent: Option<&str>) -> String {
    let keys = s.state.keys.get();
    let now = warden_server::state::now();
    let issuer = &s.state.options.issuer;
    let claims = AccessTokenClaims {
        iss: issuer.clone(),
        sub: sub.into(),
        aud: vec![issuer.clone()],
        exp: now + 300,
        iat: now,
        nbf: now,
        jti: new_jti().unwrap(),
        client_id: client_id.into(),
        scope: TOOLS.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        tenant: None,
        act: agent.map(|a| json!({"sub": a})),
        cnf: None,
        authorization_details: None,
    };
    encode(keys.signing.as_ref().unwrap(), "at+jwt", &claims).unwrap()
}

fn person<S: Store>(s: &Server<S>, sub: &str, roles: &[&str]) -> String {
    token(s, sub, roles, "warden-cli", None)
}

/// Calls `tool` with `arguments` through the gateway; (HTTP status, body).
async fn call<S: Store>(s: &Server<S>, bearer: &str, tool: &str, arguments: Value) -> (u16, Value) {
    let body =
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
    let r = s
        .http
        .post(format!("{}/mcp", s.base))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn answer<S: Store>(s: &Server<S>, bearer: &str, id: &str, verb: &str, reason: &str) -> support::Reply {
    s.post_json(
        &format!("/api/v1/approvals/{id}/{verb}"),
        Some(bearer),
        &json!({"reason": reason}),
    )
    .await
}

async fn poll<S: Store>(s: &Server<S>, secret: &str, auth_req_id: &str) -> support::Reply {
    s.post_form(
        "/oauth/token",
        Auth::Basic("report-bot", secret),
        &[("grant_type", CIBA), ("auth_req_id", auth_req_id)],
    )
    .await
}

async fn start() -> (Server<warden_store::sqlite::SqliteStore>, String, tempfile::TempDir) {
    let upstream = mcp_upstream().await;
    let dir = policy_dir();
    let path = dir.path().to_owned();
    let s = support::start_sqlite(move |o| {
        o.routes = vec![tools_route(&upstream)];
        o.policy_dir = Some(path);
    })
    .await;
    let secret = register_agent(&s).await;
    (s, secret, dir)
}

/// Registers the agent's client `report-bot` (client credentials and
/// CIBA, the tool scopes); returns its secret.
async fn register_agent<S: Store>(s: &Server<S>) -> String {
    let spec = ClientSpec {
        name: "report-bot".into(),
        kind: ClientKind::Agent,
        grants: vec!["client_credentials".into(), "ciba".into(), "token_exchange".into()],
        scopes: TOOLS.split(' ').map(str::to_owned).collect(),
        roles: Vec::new(),
        audiences: Vec::new(),
        auth: "secret".into(),
        jwks: None,
        tenant: None,
        redirect_uris: Vec::new(),
        require_dpop: false,
    };
    let now = warden_server::state::now();
    let (_, secret) = clients::create(&s.state.store, &s.clients.hasher, &spec, now)
        .await
        .unwrap();
    secret.unwrap().0.to_string()
}

/// The `action_approval` steps recorded for approval `id`, in order.
async fn steps<S: Store>(s: &Server<S>, id: &str) -> Vec<String> {
    s.stored_events("action_approval")
        .await
        .into_iter()
        .filter(|e| e["approval_id"] == id)
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_call_needs_a_leads_approval_and_passes_once() {
    let (s, secret, _dir) = start().await;
    let agent = token(
        &s,
        "user:ada",
        &["data-scientist"],
        "report-bot",
        Some("agent:report-bot"),
    );

    // A call no policy asks approval for goes through.
    let (status, body) = call(&s, &agent, "search", json!({"q": "fraud"})).await;
    assert_eq!((status, body["result"].is_object()), (200, true), "{body}");

    // The one that needs approval is asked for, not forwarded.
    let args = json!({"name": "payroll", "hard": true});
    let (status, body) = call(&s, &agent, "delete_dataset", args.clone()).await;
    assert_eq!(status, 200, "a JSON-RPC error, not a transport failure: {body}");
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["code"], -32003, "{body}");
    assert_eq!(body["error"]["message"], "approval_required");
    let approval = &body["error"]["data"]["approval"];
    let id = approval["id"].as_str().unwrap().to_owned();
    let auth_req_id = approval["auth_req_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("apr_") && auth_req_id.starts_with("wcb_"), "{approval}");
    assert_eq!(approval["approvers"], json!(["data-leads"]));
    assert_eq!(approval["acting_for"], "user:ada");
    assert_eq!(approval["grant_type"], CIBA);
    assert!(
        approval["approve_at"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/ui/approvals/{id}"))
    );
    let detail = &approval["authorization_details"][0];
    assert_eq!(
        (
            detail["type"].as_str(),
            detail["route"].as_str(),
            detail["tool"].as_str()
        ),
        (Some("tool_call"), Some("tools"), Some("delete_dataset"))
    );
    assert_eq!(detail["arguments_sha256"].as_str().unwrap().len(), 43);

    // Polling: pending, then too fast.
    let r = poll(&s, &secret, &auth_req_id).await;
    assert_eq!((r.status, r.error()), (400, "authorization_pending"), "{}", r.body);
    let r = poll(&s, &secret, &auth_req_id).await;
    assert_eq!((r.status, r.error()), (400, "slow_down"), "{}", r.body);
    let r = poll(&s, &secret, "wcb_nonsense").await;
    assert_eq!(r.error(), "invalid_grant");

    // Who may not answer: the agent, the person it acts for, someone
    // without the role, an agent acting for a lead.
    let lead = person(&s, "user:lee", &["data-leads"]);
    let r = answer(
        &s,
        &person(&s, "agent:report-bot", &["data-leads"]),
        &id,
        "approve",
        "me",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = answer(&s, &person(&s, "user:ada", &["data-leads"]), &id, "approve", "mine").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body["error_description"].as_str().unwrap().contains("own subject"),
        "{}",
        r.body
    );
    let r = answer(&s, &person(&s, "user:bob", &["data-scientist"]), &id, "approve", "sure").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let delegated_lead = token(&s, "user:lee", &["data-leads"], "report-bot", Some("agent:other"));
    let r = answer(&s, &delegated_lead, &id, "approve", "by proxy").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = answer(&s, &lead, &id, "approve", "  ").await;
    assert_eq!(r.status, 400, "a reason is needed: {}", r.body);
    // The subject in another spelling is still the subject; a lead's
    // token held by the asking client is not the lead answering.
    let r = answer(&s, &person(&s, "user:ADA", &["data-leads"]), &id, "approve", "mine").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let held_by_agent = token(&s, "user:lee", &["data-leads"], "report-bot", None);
    let r = answer(&s, &held_by_agent, &id, "approve", "via the agent").await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Who sees it.
    let listed = s.get("/api/v1/approvals?status=pending", Some(&lead)).await;
    assert_eq!(listed.body["approvals"][0]["id"], id.as_str(), "{}", listed.body);
    let listed = s
        .get("/api/v1/approvals", Some(&person(&s, "user:bob", &["data-scientist"])))
        .await;
    assert_eq!(listed.body["approvals"], json!([]));
    let shown = s
        .get(&format!("/api/v1/approvals/{id}"), Some(&person(&s, "user:bob", &[])))
        .await;
    assert_eq!(shown.status, 404);
    assert_eq!(s.get("/api/v1/approvals?status=maybe", Some(&lead)).await.status, 400);

    // A lead approves, once.
    let r = answer(&s, &lead, &id, "approve", "ticket 42").await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("approved")),
        "{}",
        r.body
    );
    assert_eq!(r.body["decided_by"], "user:lee");
    let r = answer(&s, &lead, &id, "deny", "changed my mind").await;
    assert_eq!(r.status, 409, "{}", r.body);

    // The agent's next poll gets the token.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let r = poll(&s, &secret, &auth_req_id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let approved = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(r.body["authorization_details"][0]["approval_id"], id.as_str());
    assert!(r.body.get("refresh_token").is_none());
    let c = claims(&approved);
    assert_eq!(
        (c["sub"].as_str(), c["act"]["sub"].as_str()),
        (Some("user:ada"), Some("agent:report-bot"))
    );
    assert_eq!(c["authorization_details"][0]["tool"], "delete_dataset");
    assert!(c["exp"].as_u64().unwrap() <= c["iat"].as_u64().unwrap() + 120);
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let r = poll(&s, &secret, &auth_req_id).await;
    assert_eq!(r.error(), "invalid_grant", "handed out once: {}", r.body);

    // The token is good for nothing but that call: not another tool, not
    // other arguments, not Warden's own APIs.
    let (status, body) = call(&s, &approved, "search", json!({"q": "fraud"})).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (403, Some(-32001)), "{body}");
    let (status, _) = call(
        &s,
        &approved,
        "delete_dataset",
        json!({"name": "customers", "hard": true}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(s.get("/api/v1/approvals", Some(&approved)).await.status, 401);
    let exchanged = s
        .post_form(
            "/oauth/token",
            Auth::Basic("report-bot", &secret),
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", &approved),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ],
        )
        .await;
    assert_eq!(
        (exchanged.status, exchanged.error()),
        (400, "invalid_request"),
        "{}",
        exchanged.body
    );

    // The call approved passes (key order does not matter), once.
    let (status, body) = call(
        &s,
        &approved,
        "delete_dataset",
        json!({"hard": true, "name": "payroll"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(echoed, args, "the upstream got the call as sent");
    let (status, body) = call(&s, &approved, "delete_dataset", args.clone()).await;
    assert_eq!(status, 403, "used once: {body}");
    assert!(
        body["error"]["data"]["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );

    // Everything is in the audit log, linked by the id.
    s.integrate_audit().await;
    assert_eq!(
        steps(&s, &id).await,
        [
            "requested",
            "refused",
            "refused",
            "refused",
            "refused",
            "refused",
            "refused",
            "approved",
            "token_issued",
            "refused",
            "refused",
            "used",
            "refused"
        ]
    );
    let events = s.stored_events("action_approval").await;
    let approved_event = events.iter().find(|e| e["step"] == "approved").unwrap();
    assert_eq!(
        (approved_event["by"].as_str(), approved_event["reason"].as_str()),
        (Some("user:lee"), Some("ticket 42"))
    );
    assert_eq!(approved_event["policy_ids"], json!(["tools.delete-needs-lead"]));
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains(&auth_req_id) && !text.contains(&approved),
        "no secret in the log"
    );
    assert!(!text.contains("payroll"), "no argument in the log");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_and_expired_requests_end_the_poll() {
    let (s, secret, _dir) = start().await;
    let agent = token(&s, "user:ada", &[], "report-bot", Some("agent:report-bot"));
    let lead = person(&s, "user:lee", &["data-leads"]);
    let ask = |args: Value| {
        let s = &s;
        let agent = agent.clone();
        async move {
            let (_, body) = call(s, &agent, "delete_dataset", args).await;
            let approval = body["error"]["data"]["approval"].clone();
            (
                approval["id"].as_str().unwrap().to_owned(),
                approval["auth_req_id"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (denied, denied_req) = ask(json!({"name": "a"})).await;
    let (late, late_req) = ask(json!({"name": "b"})).await;
    let r = answer(&s, &lead, &denied, "deny", "not this quarter").await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("denied")),
        "{}",
        r.body
    );
    let r = poll(&s, &secret, &denied_req).await;
    assert_eq!((r.status, r.error()), (400, "access_denied"), "{}", r.body);

    // Nobody answers the other one in time: the sweep expires it, once.
    let later = warden_server::state::now() + warden_server::approvals::REQUEST_TTL + 1;
    assert_eq!(
        warden_server::approvals::sweep::sweep(&s.state, later).await.unwrap(),
        1
    );
    assert_eq!(
        warden_server::approvals::sweep::sweep(&s.state, later).await.unwrap(),
        0
    );
    let r = poll(&s, &secret, &late_req).await;
    assert_eq!((r.status, r.error()), (400, "expired_token"), "{}", r.body);
    let r = answer(&s, &lead, &late, "approve", "too late").await;
    assert_eq!(r.status, 409, "{}", r.body);
    s.integrate_audit().await;
    assert_eq!(steps(&s, &denied).await, ["requested", "denied"]);
    assert_eq!(steps(&s, &late).await, ["requested", "expired"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_ahead_and_the_person_approves_their_own() {
    let (s, secret, _dir) = start().await;
    let meta = s.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(
        meta.body["backchannel_authentication_endpoint"],
        format!("{}/oauth/bc-authorize", s.base)
    );
    assert_eq!(meta.body["backchannel_token_delivery_modes_supported"], json!(["poll"]));
    assert!(
        meta.body["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(CIBA))
    );

    let args = json!({"quarter": "Q3"});
    let digest = {
        use aws_lc_rs::digest;
        warden_jose::base64url::encode(digest::digest(&digest::SHA256, br#"{"quarter":"Q3"}"#).as_ref())
    };
    let details = json!([{"type": "tool_call", "route": "tools", "tool": "export_report", "arguments_sha256": digest}]);
    let ask = |pairs: Vec<(&'static str, String)>| {
        let s = &s;
        let secret = secret.clone();
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.post_form("/oauth/bc-authorize", Auth::Basic("report-bot", &secret), &pairs)
                .await
        }
    };
    let r = ask(vec![("authorization_details", details.to_string())]).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_request"),
        "a login_hint is needed: {}",
        r.body
    );
    let r = ask(vec![
        ("login_hint", "user:ada".into()),
        ("authorization_details", json!([{"type": "tool_call"}]).to_string()),
    ])
    .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_authorization_details"),
        "{}",
        r.body
    );
    // A call the policies ask a group to approve is not asked ahead: only
    // the person's own approval could show they let the agent act.
    let lead_call =
        json!([{"type": "tool_call", "route": "tools", "tool": "delete_dataset", "arguments_sha256": digest}]);
    let r = ask(vec![
        ("login_hint", "user:ada".into()),
        ("authorization_details", lead_call.to_string()),
    ])
    .await;
    assert_eq!((r.status, r.error()), (403, "access_denied"), "{}", r.body);
    let r = ask(vec![
        ("login_hint", "user:ada".into()),
        ("binding_message", "Export Q3 for the board".into()),
        ("authorization_details", details.to_string()),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let auth_req_id = r.body["auth_req_id"].as_str().unwrap().to_owned();
    let id = r.body["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["interval"], 5);

    // `@approval("self")`: the person the agent acts for answers; a lead may not.
    let r = answer(&s, &person(&s, "user:lee", &["data-leads"]), &id, "approve", "ok").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let shown = s
        .get(&format!("/api/v1/approvals/{id}"), Some(&person(&s, "user:ada", &[])))
        .await;
    assert_eq!(
        shown.body["binding_message"], "Export Q3 for the board",
        "{}",
        shown.body
    );
    let r = answer(&s, &person(&s, "user:ada", &[]), &id, "approve", "yes, mine").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = poll(&s, &secret, &auth_req_id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let approved = r.body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = call(&s, &approved, "export_report", args.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(&s, &approved, "export_report", args).await;
    assert_eq!(status, 403, "once");
    s.stop().await;
}

/// Two replicas on one PostgreSQL database: asked on A, approved on B,
/// the token taken on A and then used on both at once — exactly one call
/// passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_replicas_an_approval_is_used_once() {
    let schema = support::fresh_schema();
    let issuer = format!("http://warden-{schema}.test");
    let upstream = mcp_upstream().await;
    let dir = policy_dir();
    let tweak = |o: &mut warden_server::ServerOptions| {
        o.issuer = issuer.clone();
        o.routes = vec![tools_route(&upstream)];
        o.policy_dir = Some(dir.path().to_owned());
    };
    let a = support::start_pg_shared(&schema, tweak).await;
    let b = support::start_pg_shared(&schema, tweak).await;
    let secret = register_agent(&a).await;
    let agent = token(&a, "user:ada", &[], "report-bot", Some("agent:report-bot"));
    let args = json!({"name": "payroll"});
    let (_, body) = call(&a, &agent, "delete_dataset", args.clone()).await;
    let approval = &body["error"]["data"]["approval"];
    let id = approval["id"].as_str().unwrap().to_owned();
    let auth_req_id = approval["auth_req_id"].as_str().unwrap().to_owned();
    let r = answer(&b, &person(&b, "user:lee", &["data-leads"]), &id, "approve", "ok").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = poll(&a, &secret, &auth_req_id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let approved = r.body["access_token"].as_str().unwrap().to_owned();
    let (on_a, on_b) = tokio::join!(
        call(&a, &approved, "delete_dataset", args.clone()),
        call(&b, &approved, "delete_dataset", args.clone())
    );
    let mut statuses = [on_a.0, on_b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403], "{on_a:?} {on_b:?}");
    a.integrate_audit().await;
    // The use and the refusal are recorded in whichever order the two
    // replicas got there.
    let mut recorded = steps(&a, &id).await;
    recorded[3..].sort();
    assert_eq!(recorded, ["requested", "approved", "token_issued", "refused", "used"]);
    a.stop().await;
    b.stop().await;
    support::drop_schema(&schema).await;
}

/// The dashboard: a lead finds the request on the Approvals page and
/// approves it with a reason; someone outside the group sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_answers_on_the_dashboard() {
    let (s, secret, _dir) = start().await;
    let agent = token(&s, "user:ada", &[], "report-bot", Some("agent:report-bot"));
    let (_, body) = call(&s, &agent, "delete_dataset", json!({"name": "payroll"})).await;
    let approval = &body["error"]["data"]["approval"];
    let id = approval["id"].as_str().unwrap().to_owned();
    let auth_req_id = approval["auth_req_id"].as_str().unwrap().to_owned();

    let mut bob = Browser::new(&s);
    assert_eq!(
        bob.sign_in(&person(&s, "user:bob", &["data-scientist"])).await.status,
        303
    );
    let page = bob.get("/ui/approvals").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(&id), "not his to see");
    assert_eq!(bob.get(&format!("/ui/approvals/{id}")).await.status, 404);

    let mut lee = Browser::new(&s);
    assert_eq!(lee.sign_in(&person(&s, "user:lee", &["data-leads"])).await.status, 303);
    let page = lee.get("/ui/approvals").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("hx-trigger=\"every 5s\""),
        "the list refreshes itself"
    );
    let pending = page.body.split("id=\"recent\"").next().unwrap();
    assert!(pending.contains(&format!("data-approval=\"{id}\"")), "{}", page.body);
    assert!(pending.contains("call the tool `delete_dataset`"));
    let detail = lee.get(&format!("/ui/approvals/{id}")).await;
    assert!(detail.body.contains("data-status=\"pending\""), "{}", detail.body);
    assert!(detail.body.contains("tools.delete-needs-lead") && detail.body.contains("agent:report-bot"));
    let action = format!("/ui/approvals/{id}/approve");
    let r = lee.post(&action, &[("reason", "ticket 7")]).await;
    assert_eq!(r.status, 403, "no CSRF token");
    let r = lee
        .post(&action, &[("csrf", &detail.csrf()), ("reason", "ticket 7")])
        .await;
    assert_eq!(
        (r.status, r.location()),
        (303, format!("/ui/approvals/{id}").as_str()),
        "{}",
        r.body
    );
    let detail = lee.get(&format!("/ui/approvals/{id}")).await;
    assert!(detail.body.contains("data-status=\"approved\""), "{}", detail.body);
    assert!(detail.body.contains("ticket 7") && !detail.body.contains("formaction"));
    let r = poll(&s, &secret, &auth_req_id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.stop().await;
}

/// A webhook that cannot be reached is tried twice and the failure is
/// audited; the request itself is asked all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_is_audited_not_fatal() {
    let upstream = mcp_upstream().await;
    let dir = policy_dir();
    let path = dir.path().to_owned();
    let closed = format!(
        "http://127.0.0.1:{}/hook?token=s3cret",
        warden_test_support::net::free_port()
    );
    let s = support::start_sqlite(move |o| {
        o.routes = vec![tools_route(&upstream)];
        o.policy_dir = Some(path);
        o.approvals.notify = vec![warden_server::options::NotifyTarget {
            group: "data-leads".into(),
            webhook: Some(closed),
            format: warden_server::options::WebhookFormat::Json,
            email: Vec::new(),
        }];
    })
    .await;
    register_agent(&s).await;
    let agent = token(&s, "user:ada", &[], "report-bot", Some("agent:report-bot"));
    let (status, body) = call(&s, &agent, "delete_dataset", json!({"name": "x"})).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (200, Some(-32003)), "{body}");
    let id = body["error"]["data"]["approval"]["id"].as_str().unwrap().to_owned();
    let mut failed = Vec::new();
    for _ in 0..100 {
        failed = s
            .stored_events("action_approval")
            .await
            .into_iter()
            .filter(|e| e["approval_id"] == id.as_str() && e["step"] == "notify_failed")
            .collect();
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed.len(), 1, "one failure recorded after the retry");
    assert_eq!(failed[0]["channel"], "webhook:data-leads");
    assert!(
        !failed[0].to_string().contains("s3cret"),
        "the URL stays out of the log"
    );
    s.stop().await;
}

/// `approval_wait`: the call is held open until a lead answers, then goes
/// on (approved) or is refused (denied), without the agent polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_goes_on_when_approved_and_stops_when_denied() {
    let upstream = mcp_upstream().await;
    let dir = policy_dir();
    let path = dir.path().to_owned();
    let s = support::start_sqlite(move |o| {
        o.routes = vec![RouteConfig {
            approval_wait: 20,
            ..tools_route(&upstream)
        }];
        o.policy_dir = Some(path);
    })
    .await;
    register_agent(&s).await;
    let agent = token(&s, "user:ada", &[], "report-bot", Some("agent:report-bot"));
    let lead = person(&s, "user:lee", &["data-leads"]);
    for (verb, args, expected) in [
        ("approve", json!({"name": "held-1"}), 200),
        ("deny", json!({"name": "held-2"}), 403),
    ] {
        let held = call(&s, &agent, "delete_dataset", args.clone());
        let answering = async {
            // The request appears while the call is held; a lead answers it.
            for _ in 0..100 {
                let listed = s.get("/api/v1/approvals?status=pending", Some(&lead)).await;
                if let Some(id) = listed.body["approvals"][0]["id"].as_str() {
                    let r = answer(&s, &lead, id, verb, "on call").await;
                    assert_eq!(r.status, 200, "{}", r.body);
                    return id.to_owned();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the held call's request never appeared");
        };
        let ((status, body), id) = tokio::join!(held, answering);
        assert_eq!(status, expected, "{verb}: {body}");
        if expected == 200 {
            let echoed: Value = serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
            assert_eq!(echoed, args);
            let shown = s.get(&format!("/api/v1/approvals/{id}"), Some(&lead)).await;
            assert_eq!(shown.body["status"], "used", "spent on the held call");
        } else {
            assert_eq!(body["error"]["code"], -32001, "{body}");
        }
    }
    s.stop().await;
}
