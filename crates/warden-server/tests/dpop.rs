//! DPoP (RFC 9449) over real HTTP, Warden on a random loopback port on
//! SQLite in front of an echo upstream, with proofs signed by
//! `warden_jose::dpop::sign_proof` (the binary's tests use independent
//! libraries): binding at the token endpoint (client credentials, refresh,
//! a client that must send a proof), and bound tokens on the gateway, the
//! registry API and introspection, with each refusal answered as RFC 9449
//! says and audited as `dpop_refused`; nonces on demand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use support::{Auth, Reply, Server, claims};
use warden_jose::dpop::{key_thumbprint, sign_proof};
use warden_jose::issue::new_jti;
use warden_jose::{Algorithm, SigningKey};
use warden_server::gateway::{Gateway, GatewaySettings, ScopeOnlyAuthorizer};
use warden_server::oauth::clients::{self, ClientSpec};
use warden_server::options::{IdSource, ResourceSpec, RouteConfig, RouteKind};
use warden_server::state::now;
use warden_store::oauth::ClientKind;
use warden_store::sqlite::SqliteStore;

/// An upstream answering every request with the headers it received.
async fn echo_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(|req: Request| async move {
        let names: Vec<String> = req.headers().keys().map(|k| k.as_str().to_owned()).collect();
        axum::Json(json!({"path": req.uri().path(), "headers": names})).into_response()
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn start(require_nonce: bool) -> Server<SqliteStore> {
    let upstream = echo_upstream().await;
    let route = RouteConfig {
        name: "models".into(),
        methods: Vec::new(),
        path_prefix: "/v1/models".into(),
        upstream: format!("{upstream}/v1/models"),
        audience: None,
        action: "invoke".into(),
        resource: ResourceSpec {
            type_name: "Endpoint".into(),
            id: IdSource::Literal("models".into()),
        },
        scopes: vec!["inference.invoke".into()],
        rate_limit: None,
        forward_authorization: false,
        approval_wait: 0,
        kind: RouteKind::Http,
    };
    support::start_sqlite_with(
        |o| {
            o.routes = vec![route];
            o.dpop.require_nonce = require_nonce;
        },
        |app, opts| {
            let gateway = Gateway::new(opts.routes.clone(), &opts.issuer, GatewaySettings::default())
                .unwrap()
                .with_authorizer(Arc::new(ScopeOnlyAuthorizer));
            app.with_gateway(gateway)
        },
    )
    .await
}

fn key() -> SigningKey {
    SigningKey::generate(Algorithm::ES256).unwrap().0
}

/// A fresh proof by `key` for `method` `url`.
fn proof(key: &SigningKey, method: &str, url: &str, token: Option<&str>) -> String {
    sign_proof(key, method, url, now(), &new_jti().unwrap(), token, None).unwrap()
}

async fn parse(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

/// `POST /oauth/token` with HTTP Basic and, when given, a `DPoP` header.
async fn token_request(
    srv: &Server<SqliteStore>,
    id: &str,
    secret: &str,
    dpop: Option<&str>,
    form: &[(&str, &str)],
) -> Reply {
    let mut req = srv
        .http
        .post(format!("{}/oauth/token", srv.base))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(support::form(form));
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    parse(req.send().await.unwrap()).await
}

/// A request with `Authorization: SCHEME token` and, when given, a proof.
async fn call(
    srv: &Server<SqliteStore>,
    method: &str,
    path: &str,
    scheme: &str,
    token: &str,
    dpop: Option<&str>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = srv
        .http
        .request(method, format!("{}{path}", srv.base))
        .header("authorization", format!("{scheme} {token}"));
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    parse(req.send().await.unwrap()).await
}

fn challenge(r: &Reply) -> String {
    r.headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The refusal of a protected resource: 401, the code in the body and
/// in a `DPoP` challenge.
fn refused(r: &Reply, code: &str, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    assert_eq!(r.error(), code, "{what}: {}", r.body);
    let c = challenge(r);
    assert!(
        c.starts_with("DPoP ") && c.contains(&format!("error=\"{code}\"")),
        "{what}: {c}"
    );
}

#[tokio::test]
async fn bound_tokens_need_their_proof_everywhere() {
    let srv = start(false).await;
    let secret = srv
        .client(
            "trainer",
            ClientKind::Service,
            &["client_credentials", "refresh_token"],
            "inference.invoke warden.introspect",
            &[],
        )
        .await;
    let token_url = format!("{}/oauth/token", srv.base);
    let k = key();
    let jkt = key_thumbprint(&k).unwrap();

    // A proof binds the token: token_type DPoP, cnf.jkt the key's thumbprint.
    let form = [("grant_type", "client_credentials")];
    let r = token_request(
        &srv,
        "trainer",
        &secret,
        Some(&proof(&k, "POST", &token_url, None)),
        &form,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "DPoP");
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["cnf"], json!({"jkt": jkt}));
    // Without one, the same client gets a bearer token as before.
    let r = token_request(&srv, "trainer", &secret, None, &form).await;
    assert_eq!(r.body["token_type"], "Bearer");
    let bearer = r.body["access_token"].as_str().unwrap().to_owned();
    assert!(claims(&bearer).get("cnf").is_none());

    // The gateway: with the DPoP scheme and a proof for this request.
    let url = format!("{}/v1/models", srv.base);
    let ok = call(
        &srv,
        "GET",
        "/v1/models",
        "DPoP",
        &token,
        Some(&proof(&k, "GET", &url, Some(&token))),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let upstream_saw: Vec<&str> = ok.body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !upstream_saw.contains(&"dpop"),
        "the proof went upstream: {upstream_saw:?}"
    );
    // Bearer tokens keep working unchanged.
    assert_eq!(
        call(&srv, "GET", "/v1/models", "Bearer", &bearer, None).await.status,
        200
    );

    // Every refusal of RFC 9449 §7.
    let used = proof(&k, "GET", &url, Some(&token));
    assert_eq!(
        call(&srv, "GET", "/v1/models", "DPoP", &token, Some(&used))
            .await
            .status,
        200
    );
    let other = key();
    let stale = sign_proof(&k, "GET", &url, now() - 400, "stale-1", Some(&token), None).unwrap();
    let cases: Vec<(&str, &str, Option<String>, &str)> = vec![
        (
            "bound token as a bearer token",
            "Bearer",
            Some(proof(&k, "GET", &url, Some(&token))),
            "invalid_token",
        ),
        ("no proof", "DPoP", None, "invalid_dpop_proof"),
        ("replayed proof", "DPoP", Some(used), "invalid_dpop_proof"),
        (
            "wrong method",
            "DPoP",
            Some(proof(&k, "POST", &url, Some(&token))),
            "invalid_dpop_proof",
        ),
        (
            "wrong URL",
            "DPoP",
            Some(proof(&k, "GET", &format!("{}/v1/other", srv.base), Some(&token))),
            "invalid_dpop_proof",
        ),
        ("stale iat", "DPoP", Some(stale), "invalid_dpop_proof"),
        (
            "missing ath",
            "DPoP",
            Some(proof(&k, "GET", &url, None)),
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            "DPoP",
            Some(proof(&k, "GET", &url, Some(&bearer))),
            "invalid_dpop_proof",
        ),
        (
            "another key",
            "DPoP",
            Some(proof(&other, "GET", &url, Some(&token))),
            "invalid_dpop_proof",
        ),
        ("not a JWT", "DPoP", Some("x.y.z".into()), "invalid_dpop_proof"),
    ];
    for (what, scheme, p, code) in &cases {
        let r = call(&srv, "GET", "/v1/models", scheme, &token, p.as_deref()).await;
        refused(&r, code, what);
    }
    // A token that is no valid token, sent with the DPoP scheme: the
    // challenge is DPoP's too.
    let r = call(
        &srv,
        "GET",
        "/v1/models",
        "DPoP",
        "not.a.token",
        Some(&proof(&k, "GET", &url, None)),
    )
    .await;
    refused(&r, "invalid_token", "an invalid token with the DPoP scheme");
    // An unbound token with the DPoP scheme.
    let r = call(
        &srv,
        "GET",
        "/v1/models",
        "DPoP",
        &bearer,
        Some(&proof(&k, "GET", &url, Some(&bearer))),
    )
    .await;
    refused(&r, "invalid_token", "unbound token as DPoP");

    // The registry API, through the same authentication.
    let datasets = format!("{}/api/v1/datasets", srv.base);
    let r = call(
        &srv,
        "GET",
        "/api/v1/datasets",
        "DPoP",
        &token,
        Some(&proof(&k, "GET", &datasets, Some(&token))),
    )
    .await;
    assert_ne!(r.status, 401, "{}", r.body);
    let r = call(&srv, "GET", "/api/v1/datasets", "Bearer", &token, None).await;
    refused(&r, "invalid_token", "registry: bound as bearer");
    let r = call(
        &srv,
        "GET",
        "/api/v1/datasets",
        "DPoP",
        &token,
        Some(&proof(&k, "GET", &url, Some(&token))),
    )
    .await;
    refused(&r, "invalid_dpop_proof", "registry: proof for the gateway URL");

    // Introspection: a bound caller with its proof; the answer names the binding.
    let introspect = format!("{}/oauth/introspect", srv.base);
    let r = parse(
        srv.http
            .post(&introspect)
            .header("authorization", format!("DPoP {token}"))
            .header("DPoP", proof(&k, "POST", &introspect, Some(&token)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(support::form(&[("token", &token)]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["token_type"], "DPoP");
    assert_eq!(r.body["cnf"]["jkt"], jkt);
    let r = srv
        .post_form("/oauth/introspect", Auth::Bearer(&token), &[("token", &bearer)])
        .await;
    refused(&r, "invalid_token", "introspection: bound as bearer");

    // Each refusal is on record, without the proof or the token.
    let events = srv.stored_events("dpop_refused").await;
    assert_eq!(events.len(), cases.len() + 4, "{events:#?}");
    for e in &events {
        assert_eq!(e["principal"], "svc:trainer");
        assert_eq!(e["client_id"], "trainer");
        let text = e.to_string();
        assert!(!text.contains(&token) && !text.contains("eyJ"), "{text}");
    }
    assert!(events.iter().any(|e| e["reason"] == "the DPoP proof was already used"));
    srv.stop().await;
}

#[tokio::test]
async fn clients_that_must_use_dpop_and_bound_refresh_tokens() {
    let srv = start(false).await;
    let spec = ClientSpec {
        name: "agent".into(),
        kind: ClientKind::Agent,
        grants: vec!["client_credentials".into(), "refresh_token".into()],
        scopes: vec!["inference.invoke".into()],
        roles: vec![],
        audiences: vec![],
        auth: "secret".into(),
        jwks: None,
        tenant: None,
        redirect_uris: Vec::new(),
        require_dpop: true,
    };
    let (record, secret) = clients::create(&srv.state.store, &srv.clients.hasher, &spec, now())
        .await
        .unwrap();
    assert!(record.require_dpop);
    let secret = secret.unwrap().0.to_string();
    let token_url = format!("{}/oauth/token", srv.base);
    let form = [("grant_type", "client_credentials")];

    let r = token_request(&srv, "agent", &secret, None, &form).await;
    assert_eq!((r.status, r.error()), (400, "invalid_dpop_proof"), "{}", r.body);
    assert!(r.body.get("access_token").is_none());
    let r = token_request(&srv, "agent", &secret, Some("not-a-proof"), &form).await;
    assert_eq!((r.status, r.error()), (400, "invalid_dpop_proof"), "{}", r.body);
    let k = key();
    let r = token_request(&srv, "agent", &secret, Some(&proof(&k, "GET", &token_url, None)), &form).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_dpop_proof"),
        "wrong method: {}",
        r.body
    );

    let r = token_request(
        &srv,
        "agent",
        &secret,
        Some(&proof(&k, "POST", &token_url, None)),
        &form,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "DPoP");
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();

    // The refresh token is bound too: another key, or none, is refused and
    // leaves it usable; the same key rotates it.
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let other = key();
    let r = token_request(
        &srv,
        "agent",
        &secret,
        Some(&proof(&other, "POST", &token_url, None)),
        &refresh_form,
    )
    .await;
    assert_eq!((r.status, r.error()), (400, "invalid_dpop_proof"), "{}", r.body);
    let r = token_request(
        &srv,
        "agent",
        &secret,
        Some(&proof(&k, "POST", &token_url, None)),
        &refresh_form,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "DPoP");
    let token = r.body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["cnf"]["jkt"], key_thumbprint(&k).unwrap());

    let events = srv.stored_events("dpop_refused").await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons.contains(&"a DPoP proof is required"), "{reasons:?}");
    assert!(
        reasons.contains(&"the DPoP proof is signed by another key than the one the token is bound to"),
        "{reasons:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["endpoint"] == "POST /oauth/token" && e["principal"] == "agent:agent")
    );
    srv.stop().await;
}

#[tokio::test]
async fn nonces_on_demand() {
    let srv = start(true).await;
    let secret = srv
        .client(
            "trainer",
            ClientKind::Service,
            &["client_credentials"],
            "inference.invoke",
            &[],
        )
        .await;
    let token_url = format!("{}/oauth/token", srv.base);
    let form = [("grant_type", "client_credentials")];
    let k = key();
    let r = token_request(
        &srv,
        "trainer",
        &secret,
        Some(&proof(&k, "POST", &token_url, None)),
        &form,
    )
    .await;
    assert_eq!((r.status, r.error()), (400, "use_dpop_nonce"), "{}", r.body);
    let nonce = r.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let with = sign_proof(&k, "POST", &token_url, now(), "n-1", None, Some(&nonce)).unwrap();
    let r = token_request(&srv, "trainer", &secret, Some(&with), &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["access_token"].as_str().unwrap().to_owned();

    let url = format!("{}/v1/models", srv.base);
    let r = call(
        &srv,
        "GET",
        "/v1/models",
        "DPoP",
        &token,
        Some(&proof(&k, "GET", &url, Some(&token))),
    )
    .await;
    refused(&r, "use_dpop_nonce", "resource without a nonce");
    assert_eq!(r.headers["dpop-nonce"].to_str().unwrap(), nonce);
    let with = sign_proof(&k, "GET", &url, now(), "n-2", Some(&token), Some(&nonce)).unwrap();
    assert_eq!(
        call(&srv, "GET", "/v1/models", "DPoP", &token, Some(&with))
            .await
            .status,
        200
    );
    let wrong = sign_proof(&k, "GET", &url, now(), "n-3", Some(&token), Some("made-up")).unwrap();
    refused(
        &call(&srv, "GET", "/v1/models", "DPoP", &token, Some(&wrong)).await,
        "use_dpop_nonce",
        "a made-up nonce",
    );
    srv.stop().await;
}

#[tokio::test]
async fn metadata_names_the_proof_algorithms() {
    let srv = start(false).await;
    let r = srv.get("/.well-known/oauth-authorization-server", None).await;
    let algs = r.body["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(
        algs.contains(&json!("ES256")) && algs.contains(&json!("EdDSA")),
        "{algs:?}"
    );
    assert!(!algs.contains(&json!("HS256")));
    srv.stop().await;
}

#[tokio::test]
async fn the_admin_api_registers_clients_that_must_use_dpop() {
    let srv = start(false).await;
    let admin = srv.admin_token();
    let spec = json!({"name": "etl", "kind": "service", "scopes": ["inference.invoke"], "require_dpop": true});
    let r = srv.post_json("/api/v1/admin/clients", Some(&admin), &spec).await;
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    assert_eq!(r.body["require_dpop"], true, "{}", r.body);
    let shown = srv.get("/api/v1/admin/clients/etl", Some(&admin)).await;
    assert_eq!(shown.body["require_dpop"], true, "{}", shown.body);
    let secret = r.body["client_secret"].as_str().unwrap();
    let r = token_request(&srv, "etl", secret, None, &[("grant_type", "client_credentials")]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_dpop_proof"), "{}", r.body);
    srv.stop().await;
}
