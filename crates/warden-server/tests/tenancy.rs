//! Tenants over real HTTP, on SQLite and PostgreSQL: a client registered
//! with a tenant (admin API, stored) gets tokens carrying it and is kept
//! out of another tenant's datasets; another tenant's dataset answers
//! every action exactly as a missing one, while the audit log records the
//! tenant denial; a create under another tenant's name is a plain refusal,
//! audited as such; token exchange keeps the subject's tenant and refuses
//! actors of another tenant; and `tenancy = strict` keeps principals
//! without a tenant to resources without one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use serde_json::{Value, json};
use support::{Auth, Reply, Server, claims};
use warden_policy::Tenancy;
use warden_store::{EventQuery, Store};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const SCOPES: &str = "dataset.read dataset.write dataset.create model.read model.register";

async fn send<S: Store>(s: &Server<S>, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut req = s.http.request(method, format!("{}{path}", s.base)).bearer_auth(token);
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

/// Registers a client through the admin API; returns its secret.
async fn register<S: Store>(s: &Server<S>, spec: Value) -> (Value, String) {
    let r = s
        .post_json("/api/v1/admin/clients", Some(&s.admin_token()), &spec)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    (r.body, secret)
}

/// A client_credentials token.
async fn token<S: Store>(s: &Server<S>, id: &str, secret: &str) -> String {
    let r = s
        .post_form(
            "/oauth/token",
            Auth::Basic(id, secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn decisions<S: Store>(s: &Server<S>, resource: &str) -> Vec<Value> {
    s.integrate_audit().await;
    s.state
        .store
        .events(&EventQuery {
            limit: 10_000,
            kind: Some("access_decision".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_slice::<Value>(&e.content.unwrap().0).unwrap())
        .filter(|e| e["resource"] == resource)
        .collect()
}

/// Creates `name` (internal) as the tenantless admin, in `tenant`.
async fn dataset<S: Store>(s: &Server<S>, name: &str, tenant: Option<&str>) {
    let admin = s.user_token(
        "user:root",
        &[&s.base],
        "dataset.create dataset.read",
        &["admin"],
        300,
        None,
    );
    let mut body = json!({"name": name, "classification": "internal"});
    if let Some(t) = tenant {
        body["tenant"] = json!(t);
    }
    let r = s.post_json("/api/v1/datasets", Some(&admin), &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn shared_mode<S: Store>(s: Server<S>) {
    // A client registered with a tenant: stored, shown, and in its tokens.
    let (shown, acme_secret) = register(
        &s,
        json!({"name": "acme-etl", "kind": "service", "scopes": [SCOPES], "roles": ["ml-engineer"], "tenant": "acme"}),
    )
    .await;
    assert_eq!(shown["tenant"], "acme");
    let r = s.get("/api/v1/admin/clients/acme-etl", Some(&s.admin_token())).await;
    assert_eq!(r.body["tenant"], "acme", "read back from the store: {}", r.body);
    let r = s
        .post_json(
            "/api/v1/admin/clients",
            Some(&s.admin_token()),
            &json!({"name": "bad", "kind": "service", "tenant": "a b"}),
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"), "{}", r.body);
    let acme = token(&s, "acme-etl", &acme_secret).await;
    assert_eq!(claims(&acme)["tenant"], "acme");
    let (shown, global_secret) = register(
        &s,
        json!({"name": "global-etl", "kind": "service", "scopes": [SCOPES], "roles": ["ml-engineer"]}),
    )
    .await;
    assert_eq!(shown["tenant"], Value::Null);
    let global = token(&s, "global-etl", &global_secret).await;
    assert!(claims(&global).get("tenant").is_none());

    dataset(&s, "globex-data", Some("globex")).await;
    dataset(&s, "acme-data", Some("acme")).await;
    dataset(&s, "common", None).await;

    // The tenant's client reads its own and the tenantless dataset, never
    // globex's; shared tenancy lets the tenantless client read them all.
    for (name, status) in [("acme-data", 200), ("common", 200), ("globex-data", 404)] {
        let r = send(
            &s,
            reqwest::Method::GET,
            &format!("/api/v1/datasets/{name}"),
            &acme,
            None,
        )
        .await;
        assert_eq!(r.status, status, "acme reads {name}: {}", r.body);
    }
    for name in ["acme-data", "common", "globex-data"] {
        let r = send(
            &s,
            reqwest::Method::GET,
            &format!("/api/v1/datasets/{name}"),
            &global,
            None,
        )
        .await;
        assert_eq!(r.status, 200, "shared tenancy: global reads {name}: {}", r.body);
    }

    // Another tenant's dataset answers exactly as a missing one, whatever
    // the method: status, error and description.
    let patch = json!({"description": "mine now"});
    for (method, body) in [
        (reqwest::Method::GET, None),
        (reqwest::Method::PATCH, Some(patch.clone())),
    ] {
        let hidden = send(&s, method.clone(), "/api/v1/datasets/globex-data", &acme, body.clone()).await;
        let missing = send(&s, method.clone(), "/api/v1/datasets/globex-datb", &acme, body).await;
        assert_eq!(hidden.status, 404, "{method} {}", hidden.body);
        let renamed = serde_json::to_string(&missing.body)
            .unwrap()
            .replace("globex-datb", "globex-data");
        assert_eq!(serde_json::to_string(&hidden.body).unwrap(), renamed, "{method}");
        let versions = send(
            &s,
            method.clone(),
            "/api/v1/datasets/globex-data/versions/1",
            &acme,
            None,
        )
        .await;
        if method == reqwest::Method::GET {
            assert_eq!((versions.status, &versions.body), (hidden.status, &hidden.body));
        }
    }
    // Deriving from another tenant's dataset: as from a missing one.
    let derive = |parent: &str| {
        json!({"digest": format!("sha256:{}", "ab".repeat(32)), "size": 1, "uri": "s3://x/y",
               "parents": [format!("dataset:{parent}@1")]})
    };
    let path = "/api/v1/datasets/acme-data/versions";
    let hidden = send(&s, reqwest::Method::POST, path, &acme, Some(derive("globex-data"))).await;
    let missing = send(&s, reqwest::Method::POST, path, &acme, Some(derive("globex-datb"))).await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    assert_eq!(
        hidden.body.to_string(),
        missing.body.to_string().replace("globex-datb", "globex-data")
    );
    // ... and the audit log records the truth: a tenant isolation denial.
    let denied: Vec<Value> = decisions(&s, "Dataset::\"globex-data\"")
        .await
        .into_iter()
        .filter(|e| e["principal"] == "svc:acme-etl")
        .collect();
    assert!(denied.len() >= 2, "{denied:?}");
    for e in &denied {
        assert_eq!(e["decision"], "deny");
        assert_eq!(e["policy_ids"], json!(["tenant.isolation"]), "{e}");
    }
    assert!(denied.iter().any(|e| e["action"] == "dataset.write"));

    // Creating under another tenant's name: refused as a create the
    // policies do not allow, never "already exists".
    let r = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/datasets",
        &acme,
        Some(json!({"name": "globex-data", "classification": "internal"})),
    )
    .await;
    assert_eq!((r.status, r.error()), (403, "access_denied"), "{}", r.body);
    let text = r.body.to_string();
    assert!(!text.contains("exists") && !text.contains("globex\""), "{text}");
    let refused: Vec<Value> = decisions(&s, "Dataset::\"globex-data\"")
        .await
        .into_iter()
        .filter(|e| e["action"] == "dataset.create" && e["decision"] == "deny")
        .collect();
    assert_eq!(
        refused[0]["policy_ids"],
        json!(["registry.name-taken", "tenant.isolation"]),
        "{refused:?}"
    );
    // A name the caller can see still conflicts plainly.
    let r = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/datasets",
        &acme,
        Some(json!({"name": "acme-data", "classification": "internal"})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);

    // Token exchange: the delegated token keeps the subject's tenant; an
    // actor of a tenant acts only for subjects of that tenant.
    let (_, bot_secret) = register(
        &s,
        json!({"name": "acme-bot", "kind": "agent", "grants": ["token_exchange"], "scopes": ["inference.invoke"],
               "audiences": ["inference"], "tenant": "acme"}),
    )
    .await;
    let (_, free_secret) = register(
        &s,
        json!({"name": "free-bot", "kind": "agent", "grants": ["token_exchange"], "scopes": ["inference.invoke"],
               "audiences": ["inference"]}),
    )
    .await;
    let user = |tenant: Option<&str>| {
        s.user_token(
            "user:alice",
            &["inference"],
            "inference.invoke",
            &["data-scientist"],
            120,
            tenant.map(|t| ("tenant", json!(t))),
        )
    };
    let exchange = |id: &'static str, secret: String, subject: String| {
        let s = &s;
        async move {
            s.post_form(
                "/oauth/token",
                Auth::Basic(id, &secret),
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", AT),
                ],
            )
            .await
        }
    };
    let r = exchange("acme-bot", bot_secret.clone(), user(Some("acme"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let delegated = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(
        (&delegated["tenant"], &delegated["act"]["sub"]),
        (&json!("acme"), &json!("agent:acme-bot"))
    );
    let r = exchange("free-bot", free_secret.clone(), user(Some("globex"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        claims(r.body["access_token"].as_str().unwrap())["tenant"],
        "globex",
        "a tenantless actor gets the subject's tenant"
    );
    for subject in [user(Some("globex")), user(None)] {
        let r = exchange("acme-bot", bot_secret.clone(), subject).await;
        assert_eq!((r.status, r.error()), (400, "invalid_request"), "{}", r.body);
        assert!(r.body["error_description"].as_str().unwrap().contains("tenant"));
    }
    s.stop().await;
}

#[tokio::test]
async fn tenants_in_client_tokens_and_hidden_names_sqlite() {
    shared_mode(support::start_sqlite(|_| {}).await).await;
}

#[tokio::test]
async fn tenants_in_client_tokens_and_hidden_names_postgres() {
    shared_mode(support::start_pg(|_| {}).await).await;
}

#[tokio::test]
async fn strict_tenancy_keeps_tenantless_principals_to_tenantless_resources() {
    let s = support::start_sqlite(|o| o.tenancy = Tenancy::Strict).await;
    let (_, secret) = register(
        &s,
        json!({"name": "global-etl", "kind": "service", "scopes": [SCOPES], "roles": ["ml-engineer"]}),
    )
    .await;
    let global = token(&s, "global-etl", &secret).await;
    let (_, secret) = register(
        &s,
        json!({"name": "acme-etl", "kind": "service", "scopes": [SCOPES], "roles": ["ml-engineer"], "tenant": "acme"}),
    )
    .await;
    let acme = token(&s, "acme-etl", &secret).await;
    // Under strict tenancy even a tenantless admin cannot create inside a
    // tenant: the tenant's own principals do.
    let admin = s.user_token("user:root", &[&s.base], "dataset.create", &["admin"], 300, None);
    let body = json!({"name": "acme-data", "classification": "internal", "tenant": "acme"});
    let r = s.post_json("/api/v1/datasets", Some(&admin), &body).await;
    assert_eq!((r.status, r.error()), (403, "access_denied"), "{}", r.body);
    for (token, name) in [(&acme, "acme-data"), (&global, "common")] {
        let body = json!({"name": name, "classification": "internal"});
        let r = s.post_json("/api/v1/datasets", Some(token), &body).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    let get = |token: &str, name: &str| {
        let path = format!("/api/v1/datasets/{name}");
        let (s, token) = (&s, token.to_owned());
        async move { send(s, reqwest::Method::GET, &path, &token, None).await }
    };
    let hidden = get(&global, "acme-data").await;
    let missing = get(&global, "acme-datb").await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    assert_eq!(
        hidden.body["error_description"],
        missing.body["error_description"]
            .as_str()
            .unwrap()
            .replace("acme-datb", "acme-data")
    );
    assert_eq!(get(&global, "common").await.status, 200);
    assert_eq!(get(&acme, "acme-data").await.status, 200);
    assert_eq!(get(&acme, "common").await.status, 200);
    let listed = send(&s, reqwest::Method::GET, "/api/v1/datasets", &global, None).await;
    let names: Vec<&str> = listed.body["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["common"], "{}", listed.body);
    let denied: Vec<Value> = decisions(&s, "Dataset::\"acme-data\"")
        .await
        .into_iter()
        .filter(|e| e["principal"] == "svc:global-etl")
        .collect();
    assert_eq!(denied[0]["policy_ids"], json!(["tenant.strict"]), "{denied:?}");
    s.stop().await;
}

#[tokio::test]
async fn strict_tenancy_refuses_a_schema_that_cannot_say_it() {
    use warden_test_support::store::{Harness, SqliteHarness};
    // A policy directory of one's own whose schema predates `tenancy`.
    let dir = tempfile::tempdir().unwrap();
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/../warden-policy/policies");
    let schema = std::fs::read_to_string(format!("{policies}/schema.cedarschema")).unwrap();
    let old = schema.replace("tenancy?: String,", "");
    assert_ne!(old, schema);
    std::fs::write(dir.path().join("schema.cedarschema"), old).unwrap();
    std::fs::write(
        dir.path().join("all.cedar"),
        "@id(\"all\") permit (principal, action, resource);\n",
    )
    .unwrap();
    for (tenancy, opens) in [(Tenancy::Shared, true), (Tenancy::Strict, false)] {
        let (store, db) = SqliteHarness::start().await.into_parts();
        let mut options = support::options("http://127.0.0.1:1");
        options.policy_dir = Some(dir.path().to_owned());
        options.tenancy = tenancy;
        let opened = warden_server::App::new(store, warden_keys::MasterKey::from_bytes([42; 32]), options).await;
        match opened {
            Ok(_) => assert!(opens, "{tenancy}: opened"),
            Err(e) => {
                assert!(!opens, "{tenancy}: {e}");
                assert!(e.to_string().contains("tenancy?: String"), "{e}");
            }
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn strict_tenancy_leaves_gateway_routes_and_unregistered_models_reachable() {
    use axum::Router;
    use warden_server::options::{IdSource, ResourceSpec, RouteConfig, RouteKind};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(|| async { axum::Json(json!({"ok": true})) });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let route = RouteConfig {
        name: "openai".into(),
        methods: vec!["POST".into()],
        path_prefix: "/v1".into(),
        upstream,
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
        o.tenancy = Tenancy::Strict;
        o.routes = vec![route];
    })
    .await;
    let scopes = format!("{SCOPES} inference.invoke");
    let mut tokens = Vec::new();
    for (name, tenant) in [("global-app", None), ("acme-app", Some("acme"))] {
        let mut spec = json!({"name": name, "kind": "service", "scopes": [scopes], "roles": ["ml-engineer"]});
        if let Some(t) = tenant {
            spec["tenant"] = json!(t);
        }
        let (_, secret) = register(&s, spec).await;
        tokens.push(token(&s, name, &secret).await);
    }
    let [global, acme] = &tokens[..] else { panic!() };
    let r = s
        .post_json("/api/v1/models", Some(acme), &json!({"name": "acme-llm"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let chat = |model: &str| json!({"model": model, "messages": []});
    let path = "/v1/chat/completions";
    assert_eq!(
        s.post_json(path, Some(global), &chat("gpt-4o")).await.status,
        200,
        "unregistered model"
    );
    assert_eq!(s.post_json(path, Some(acme), &chat("gpt-4o")).await.status, 200);
    assert_eq!(s.post_json(path, Some(acme), &chat("acme-llm")).await.status, 200);
    assert_eq!(
        s.post_json(path, Some(global), &chat("acme-llm")).await.status,
        403,
        "a tenant's model is closed to a principal of no tenant"
    );
    s.stop().await;
}
