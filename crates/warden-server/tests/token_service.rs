//! The token service over real HTTP on a random loopback port, on SQLite
//! and on PostgreSQL: grants, rotation and reuse detection, exchange,
//! revocation, introspection, client authentication, admin and audit APIs,
//! and every error path's RFC error code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use serde_json::{Value, json};
use support::{Auth, Server, claims};
use warden_server::oauth::clients::grant;
use warden_store::Store;
use warden_store::oauth::ClientKind;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Runs a generic test body on both backends.
macro_rules! both {
    ($name:ident) => {
        both!($name, |_| {});
    };
    ($name:ident, $tweak:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let srv = super::support::start_sqlite($tweak).await;
                super::$name(&srv).await;
                srv.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let srv = super::support::start_pg($tweak).await;
                super::$name(&srv).await;
                srv.stop().await;
            }
        }
    };
}

async fn trainer<S: Store>(srv: &Server<S>) -> String {
    srv.client(
        "trainer",
        ClientKind::Service,
        &["client_credentials", "refresh_token"],
        "inference.invoke training.run",
        &["inference", "training"],
    )
    .await
}

async fn client_credentials_and_metadata<S: Store>(srv: &Server<S>) {
    let secret = trainer(srv).await;
    let meta = srv.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["issuer"], srv.base.as_str());
    let oidc = srv.get("/.well-known/openid-configuration", None).await;
    assert_eq!(oidc.body, meta.body);

    for auth in [Auth::Basic("trainer", &secret), Auth::Post("trainer", &secret)] {
        let r = srv
            .post_form(
                "/oauth/token",
                auth,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "inference.invoke admin"),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.headers["cache-control"], "no-store");
        assert_eq!(r.body["token_type"], "Bearer");
        assert_eq!(r.body["scope"], "inference.invoke", "narrowed to what is allowed");
        assert!(r.body["refresh_token"].as_str().unwrap().len() >= 43);
        let token = r.body["access_token"].as_str().unwrap();
        let c = claims(token);
        assert_eq!(c["iss"], meta.body["issuer"]);
        assert_eq!(c["sub"], "svc:trainer");
        assert_eq!(c["aud"], json!(["inference"]));
        assert_eq!(c["client_id"], "trainer");
        assert_eq!(c["roles"], json!(["ml-engineer"]));
        assert!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap() == 300);
        // It verifies against the served JWKS.
        let jwks = srv.get("/.well-known/jwks.json", None).await;
        let set = warden_jose::JwkSet::parse(jwks.body.to_string().as_bytes()).unwrap();
        let verifier = warden_jose::TokenVerifier::new(
            [warden_jose::TrustedIssuer::new(
                srv.base.clone(),
                warden_jose::KeySet::new(set.into_keys()).unwrap(),
                warden_jose::AlgorithmSet::asymmetric(),
            )],
            warden_jose::Validation::access_token("inference"),
        );
        verifier.verify(token, warden_server::state::now()).unwrap();
    }
    let r = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("trainer", &secret),
            &[("grant_type", "client_credentials"), ("resource", "training")],
        )
        .await;
    assert_eq!(
        claims(r.body["access_token"].as_str().unwrap())["aud"],
        json!(["training"])
    );
    // Audited.
    srv.integrate_audit().await;
    let events = srv
        .get("/api/v1/audit/events?type=token_issued", Some(&srv.auditor_token()))
        .await;
    assert_eq!(events.status, 200, "{}", events.body);
    assert_eq!(events.body["events"].as_array().unwrap().len(), 3);
    assert_eq!(events.body["events"][0]["event"]["subject"], "svc:trainer");
}
both!(client_credentials_and_metadata);

async fn refresh_rotation_and_reuse<S: Store>(srv: &Server<S>) {
    let secret = trainer(srv).await;
    let auth = Auth::Basic("trainer", &secret);
    let first = srv
        .post_form("/oauth/token", auth, &[("grant_type", "client_credentials")])
        .await;
    let r0 = first.body["refresh_token"].as_str().unwrap().to_owned();
    let second = srv
        .post_form(
            "/oauth/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let r1 = second.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r0, r1, "rotated");
    let a1 = second.body["access_token"].as_str().unwrap().to_owned();
    // Widening on refresh is refused (RFC 6749 §6), and spends nothing.
    let wider = srv
        .post_form(
            "/oauth/token",
            auth,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("scope", "training.run admin.everything"),
            ],
        )
        .await;
    assert_eq!((wider.status, wider.error()), (400, "invalid_scope"), "{}", wider.body);
    // Narrowing on refresh.
    let third = srv
        .post_form(
            "/oauth/token",
            auth,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("scope", "training.run"),
            ],
        )
        .await;
    assert_eq!(third.body["scope"], "training.run");
    let r2 = third.body["refresh_token"].as_str().unwrap().to_owned();
    let a2 = third.body["access_token"].as_str().unwrap().to_owned();
    let active = srv.post_form("/oauth/introspect", auth, &[("token", &a2)]).await;
    assert_eq!(active.body["active"], true);
    // Reuse of a spent token revokes the family: the reused and the newest both stop working.
    let reuse = srv
        .post_form(
            "/oauth/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        )
        .await;
    assert_eq!((reuse.status, reuse.error()), (400, "invalid_grant"));
    let newest = srv
        .post_form(
            "/oauth/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
        )
        .await;
    assert_eq!((newest.status, newest.error()), (400, "invalid_grant"));
    // And the access tokens issued from the family.
    for a in [&a1, &a2] {
        let r = srv.post_form("/oauth/introspect", auth, &[("token", a)]).await;
        assert_eq!(r.body, json!({"active": false}));
    }
    srv.integrate_audit().await;
    let events = srv
        .get(
            "/api/v1/audit/events?type=refresh_token_reuse_detected",
            Some(&srv.auditor_token()),
        )
        .await;
    assert_eq!(events.body["events"].as_array().unwrap().len(), 1);
}
both!(refresh_rotation_and_reuse);

async fn concurrent_refresh_has_one_winner<S: Store>(srv: &Server<S>) {
    let secret = trainer(srv).await;
    let first = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("trainer", &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let r0 = first.body["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let http = srv.http.clone();
        let url = format!("{}/oauth/token", srv.base);
        let body = support::form(&[("grant_type", "refresh_token"), ("refresh_token", &r0)]);
        let secret = secret.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth("trainer", Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one redemption wins");
}
both!(concurrent_refresh_has_one_winner);

async fn grace_allows_one_retry<S: Store>(srv: &Server<S>) {
    let secret = trainer(srv).await;
    let auth = Auth::Basic("trainer", &secret);
    let first = srv
        .post_form("/oauth/token", auth, &[("grant_type", "client_credentials")])
        .await;
    let r0 = first.body["refresh_token"].as_str().unwrap().to_owned();
    let lost = srv
        .post_form(
            "/oauth/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        )
        .await;
    assert_eq!(lost.status, 200);
    let retry = srv
        .post_form(
            "/oauth/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        )
        .await;
    assert_eq!(retry.status, 200, "one retry within the grace period: {}", retry.body);
    let again = srv
        .post_form(
            "/oauth/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        )
        .await;
    assert_eq!(again.error(), "invalid_grant", "only once");
}
both!(grace_allows_one_retry, |o| o.oauth.refresh_grace = 30);

async fn agent<S: Store>(srv: &Server<S>, name: &str) -> String {
    srv.client(
        name,
        ClientKind::Agent,
        &[EXCHANGE],
        "inference.invoke dataset.read",
        &["inference"],
    )
    .await
}

async fn exchange<S: Store>(
    srv: &Server<S>,
    id: &str,
    secret: &str,
    subject: &str,
    extra: &[(&str, &str)],
) -> support::Reply {
    let mut pairs = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", AT),
    ];
    pairs.extend_from_slice(extra);
    srv.post_form("/oauth/token", Auth::Basic(id, secret), &pairs).await
}

async fn token_exchange_delegation<S: Store>(srv: &Server<S>) {
    let bot = agent(srv, "report-bot").await;
    let sub_bot = agent(srv, "sub-bot").await;
    let user = srv.user_token(
        "user:alice",
        &["inference"],
        "inference.invoke dataset.read training.run",
        &["data-scientist"],
        120,
        None,
    );
    let r = exchange(
        srv,
        "report-bot",
        &bot,
        &user,
        &[("scope", "inference.invoke training.run")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["issued_token_type"], AT);
    assert_eq!(r.body["scope"], "inference.invoke", "requested ∩ subject ∩ client");
    let t1 = r.body["access_token"].as_str().unwrap().to_owned();
    let c1 = claims(&t1);
    assert_eq!(c1["sub"], "user:alice");
    assert_eq!(c1["act"], json!({"sub": "agent:report-bot"}));
    assert_eq!(c1["roles"], json!(["data-scientist"]));
    let user_exp = claims(&user)["exp"].as_u64().unwrap();
    assert!(
        c1["exp"].as_u64().unwrap() <= user_exp,
        "lifetime capped by the subject token"
    );
    // A second hop nests the chain.
    let r2 = exchange(srv, "sub-bot", &sub_bot, &t1, &[]).await;
    assert_eq!(r2.status, 200, "{}", r2.body);
    let t2 = r2.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&t2)["act"],
        json!({"sub": "agent:sub-bot", "act": {"sub": "agent:report-bot"}})
    );
    // A third exceeds the depth limit (2).
    let third_bot = agent(srv, "third-bot").await;
    let r3 = exchange(srv, "third-bot", &third_bot, &t2, &[]).await;
    assert_eq!((r3.status, r3.error()), (400, "invalid_request"));
    assert!(r3.body["error_description"].as_str().unwrap().contains("deep"));
    // An agent already in the chain cannot act again (no re-delegation to
    // itself), however short the chain.
    let again = exchange(srv, "report-bot", &bot, &t1, &[]).await;
    assert_eq!((again.status, again.error()), (400, "invalid_request"));
    assert!(
        again.body["error_description"]
            .as_str()
            .unwrap()
            .contains("already acts"),
        "{}",
        again.body
    );
    // A token meant for someone else cannot be re-targeted: a service's
    // own token for Warden, a dashboard session's.
    for aud in [srv.base.clone(), format!("{}/ui", srv.base)] {
        let foreign = srv.user_token("user:alice", &[&aud], "inference.invoke", &[], 120, None);
        let r = exchange(srv, "report-bot", &bot, &foreign, &[]).await;
        assert_eq!((r.status, r.error()), (400, "invalid_request"), "{aud}: {}", r.body);
    }
    // A client subject reaches through delegation only what it could
    // reach itself: a service registered for Warden alone, whose token
    // names the agent, gives no token for `inference`.
    srv.client(
        "app-only",
        ClientKind::Service,
        &["client_credentials"],
        "inference.invoke",
        &[&srv.base],
    )
    .await;
    let app = srv.user_token("svc:app-only", &["report-bot"], "inference.invoke", &[], 120, None);
    let r = exchange(srv, "report-bot", &bot, &app, &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_target"), "{}", r.body);
    // may_act names someone else.
    let guarded = srv.user_token(
        "user:bob",
        &["inference"],
        "inference.invoke",
        &[],
        120,
        Some(("may_act", json!({"sub": "agent:other"}))),
    );
    let r4 = exchange(srv, "report-bot", &bot, &guarded, &[]).await;
    assert_eq!((r4.status, r4.error()), (400, "invalid_request"));
    let allowed = srv.user_token(
        "user:bob",
        &["inference"],
        "inference.invoke",
        &[],
        120,
        Some(("may_act", json!({"sub": "agent:report-bot"}))),
    );
    assert_eq!(exchange(srv, "report-bot", &bot, &allowed, &[]).await.status, 200);
    // A client without the grant.
    let svc = trainer(srv).await;
    let r5 = exchange(srv, "trainer", &svc, &user, &[]).await;
    assert_eq!((r5.status, r5.error()), (400, "unauthorized_client"));
    // No shared scope.
    let other = srv.user_token("user:carol", &["inference"], "billing.read", &[], 120, None);
    assert_eq!(
        exchange(srv, "report-bot", &bot, &other, &[]).await.error(),
        "invalid_scope"
    );
    // Actor token of another client.
    let actor = srv.user_token("agent:sub-bot", &["inference"], "", &[], 120, None);
    let r6 = exchange(
        srv,
        "report-bot",
        &bot,
        &user,
        &[("actor_token", &actor), ("actor_token_type", AT)],
    )
    .await;
    assert_eq!(r6.error(), "invalid_request");
    // Warden's own roles never travel through an exchange, and a delegated
    // token cannot reach Warden's APIs.
    let root = srv.user_token(
        "user:root",
        &["inference", &srv.base],
        "inference.invoke",
        &["admin", "auditor", "ml-engineer"],
        120,
        None,
    );
    let r7 = exchange(srv, "report-bot", &bot, &root, &[]).await;
    assert_eq!(r7.status, 200, "{}", r7.body);
    let t7 = r7.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&t7)["roles"], json!(["ml-engineer"]));
    assert_eq!(claims(&t7)["aud"], json!(["inference"]));
    let r8 = exchange(srv, "report-bot", &bot, &root, &[("audience", &srv.base)]).await;
    assert_eq!(r8.error(), "invalid_target");
    let nowhere = srv
        .client("nowhere-bot", ClientKind::Agent, &[EXCHANGE], "inference.invoke", &[])
        .await;
    assert_eq!(
        exchange(srv, "nowhere-bot", &nowhere, &root, &[]).await.error(),
        "invalid_target"
    );
    // A token the agent holds for somebody else is not an actor token.
    let r9 = exchange(
        srv,
        "report-bot",
        &bot,
        &allowed,
        &[("actor_token", &t1), ("actor_token_type", AT)],
    )
    .await;
    assert_eq!(r9.error(), "invalid_request");
    // Its own token is, and caps the lifetime.
    let both = srv
        .client(
            "both-bot",
            ClientKind::Agent,
            &["client_credentials", EXCHANGE],
            "inference.invoke",
            &["inference"],
        )
        .await;
    let own = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("both-bot", &both),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let own = own.body["access_token"].as_str().unwrap().to_owned();
    let r10 = exchange(
        srv,
        "both-bot",
        &both,
        &user,
        &[("actor_token", &own), ("actor_token_type", AT)],
    )
    .await;
    assert_eq!(r10.status, 200, "{}", r10.body);
    assert_eq!(
        claims(r10.body["access_token"].as_str().unwrap())["act"],
        json!({"sub": "agent:both-bot"})
    );
    srv.integrate_audit().await;
    let events = srv
        .get("/api/v1/audit/events?type=token_exchanged", Some(&srv.auditor_token()))
        .await;
    let first = &events.body["events"][1]["event"];
    assert_eq!(first["actor_chain"], json!(["agent:sub-bot", "agent:report-bot"]));
}
both!(token_exchange_delegation);

async fn revocation_and_introspection<S: Store>(srv: &Server<S>) {
    let secret = trainer(srv).await;
    let auth = Auth::Basic("trainer", &secret);
    let r = srv
        .post_form("/oauth/token", auth, &[("grant_type", "client_credentials")])
        .await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    let i = srv.post_form("/oauth/introspect", auth, &[("token", &access)]).await;
    assert_eq!(i.body["active"], true);
    assert_eq!(i.body["sub"], "svc:trainer");
    let ri = srv
        .post_form(
            "/oauth/introspect",
            auth,
            &[("token", &refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(ri.body["active"], true);
    assert_eq!(ri.body["token_type"], "refresh_token");
    // Another client sees the refresh token as foreign.
    let other = srv.client("other", ClientKind::Service, &[], "x", &[]).await;
    let foreign = srv
        .post_form(
            "/oauth/introspect",
            Auth::Basic("other", &other),
            &[("token", &refresh)],
        )
        .await;
    assert_eq!(foreign.body, json!({"active": false}));
    let stranger = srv
        .post_form("/oauth/introspect", Auth::Basic("other", &other), &[("token", &access)])
        .await;
    assert_eq!(
        stranger.body,
        json!({"active": false}),
        "another client's access token is foreign"
    );
    // A resource server (a client named like the token's audience) may introspect it.
    let rs_secret = srv.client("inference", ClientKind::Service, &[], "x", &[]).await;
    let by_audience = srv
        .post_form(
            "/oauth/introspect",
            Auth::Basic("inference", &rs_secret),
            &[("token", &access)],
        )
        .await;
    assert_eq!(by_audience.body["active"], true);
    // Revocation through the endpoint is seen by Warden's own verifier at once.
    let gw = srv
        .client("gw", ClientKind::Service, &[], "warden.introspect", &[])
        .await;
    let gw_token = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("gw", &gw),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let gw_token = gw_token.body["access_token"].as_str().unwrap().to_owned();
    let probe = srv
        .post_form("/oauth/introspect", Auth::Bearer(&gw_token), &[("token", &access)])
        .await;
    assert_eq!((probe.status, probe.body["active"].as_bool()), (200, Some(true)));
    assert_eq!(
        srv.post_form("/oauth/revoke", Auth::Basic("gw", &gw), &[("token", &gw_token)])
            .await
            .status,
        200
    );
    let after = srv
        .post_form("/oauth/introspect", Auth::Bearer(&gw_token), &[("token", &access)])
        .await;
    assert_eq!((after.status, after.error()), (401, "invalid_token"));
    // Revoke the access token: at once inactive and refused by Warden's APIs.
    let admin_like = srv.admin_token();
    let rv = srv.post_form("/oauth/revoke", auth, &[("token", &access)]).await;
    assert_eq!(rv.status, 200);
    let i = srv.post_form("/oauth/introspect", auth, &[("token", &access)]).await;
    assert_eq!(i.body, json!({"active": false}));
    // Unknown and garbage tokens: 200 on revoke, inactive on introspect.
    assert_eq!(
        srv.post_form("/oauth/revoke", auth, &[("token", "nope")]).await.status,
        200
    );
    assert_eq!(
        srv.post_form("/oauth/introspect", auth, &[("token", "nope")])
            .await
            .body,
        json!({"active": false})
    );
    // Expired.
    let expired = srv.user_token("user:old", &["inference"], "", &[], 0, None);
    assert_eq!(
        srv.post_form("/oauth/introspect", auth, &[("token", &expired)])
            .await
            .body,
        json!({"active": false})
    );
    // Revoking the refresh token revokes its family.
    assert_eq!(
        srv.post_form("/oauth/revoke", auth, &[("token", &refresh)])
            .await
            .status,
        200
    );
    let used = srv
        .post_form(
            "/oauth/token",
            auth,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(used.error(), "invalid_grant");
    // Bearer introspection needs the scope.
    let no_scope = srv.user_token("user:x", &[&srv.base], "", &[], 60, None);
    let denied = srv
        .post_form("/oauth/introspect", Auth::Bearer(&no_scope), &[("token", "x")])
        .await;
    assert_eq!((denied.status, denied.error()), (403, "insufficient_scope"));
    let rs = srv.user_token("svc:gateway", &[&srv.base], "warden.introspect", &[], 60, None);
    assert_eq!(
        srv.post_form("/oauth/introspect", Auth::Bearer(&rs), &[("token", &access)])
            .await
            .body,
        json!({"active": false})
    );
    // A revoked admin token is refused by the admin API.
    let jti = claims(&admin_like)["jti"].as_str().unwrap().to_owned();
    srv.state.revocations.insert(jti, u64::MAX);
    let refused = srv.get("/api/v1/admin/clients", Some(&admin_like)).await;
    assert_eq!(refused.status, 401);
}
both!(revocation_and_introspection);

async fn admin_api<S: Store>(srv: &Server<S>) {
    let admin = srv.admin_token();
    let none = srv.get("/api/v1/admin/clients", None).await;
    assert_eq!(none.status, 401);
    assert!(none.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let auditor = srv.get("/api/v1/admin/clients", Some(&srv.auditor_token())).await;
    assert_eq!((auditor.status, auditor.error()), (403, "insufficient_scope"));
    let spec = json!({"name": "etl", "kind": "service", "scopes": ["dataset.read"], "audiences": ["registry"]});
    let created = srv.post_json("/api/v1/admin/clients", Some(&admin), &spec).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        srv.post_json("/api/v1/admin/clients", Some(&admin), &spec).await.status,
        409
    );
    let bad = srv
        .post_json(
            "/api/v1/admin/clients",
            Some(&admin),
            &json!({"name": "Bad Name", "kind": "service"}),
        )
        .await;
    assert_eq!((bad.status, bad.error()), (400, "invalid_request"));
    let ok = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("etl", &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(ok.status, 200);
    let rotated = srv
        .post_json("/api/v1/admin/clients/etl/rotate-secret", Some(&admin), &json!({}))
        .await;
    let new_secret = rotated.body["client_secret"].as_str().unwrap().to_owned();
    let old = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("etl", &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(old.error(), "invalid_client");
    let disabled = srv
        .post_json("/api/v1/admin/clients/etl/disable", Some(&admin), &json!({}))
        .await;
    assert_eq!(disabled.status, 200);
    let off = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("etl", &new_secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(off.error(), "invalid_client");
    let shown = srv.get("/api/v1/admin/clients/etl", Some(&admin)).await;
    assert_eq!(shown.body["disabled"], true);
    assert!(shown.body.get("secret_hash").is_none() && !shown.body.to_string().contains(&new_secret));
    srv.integrate_audit().await;
    let events = srv
        .get("/api/v1/audit/events?type=admin_action", Some(&srv.auditor_token()))
        .await;
    let actions: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["client.create", "client.rotate_secret", "client.disable"]);
}
both!(admin_api);

async fn audit_api_and_checkpoints<S: Store>(srv: &Server<S>) {
    let secret = trainer(srv).await;
    for _ in 0..5 {
        srv.post_form(
            "/oauth/token",
            Auth::Basic("trainer", &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    }
    let auditor = srv.auditor_token();
    let mut checkpoint = Value::Null;
    for _ in 0..50 {
        let r = srv.get("/api/v1/audit/checkpoint", Some(&auditor)).await;
        if r.status == 200 && r.body["size"].as_u64().unwrap() >= 6 {
            checkpoint = r.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let size = checkpoint["size"].as_u64().expect("a checkpoint within 5 s");
    assert!(
        checkpoint["note"]
            .as_str()
            .unwrap()
            .contains("\n\u{2014} warden.test/audit ")
    );
    srv.integrate_audit().await;
    let page = srv.get("/api/v1/audit/events?from=1&limit=2", Some(&auditor)).await;
    assert_eq!(page.body["events"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["next_from"], 3);
    let proof = srv
        .get(
            &format!("/api/v1/audit/proof/inclusion?index=2&size={size}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(proof.status, 200, "{}", proof.body);
    let consistency = srv
        .get(
            &format!("/api/v1/audit/proof/consistency?from=2&to={size}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(consistency.status, 200);
    let beyond = srv
        .get("/api/v1/audit/proof/inclusion?index=2&size=999999", Some(&auditor))
        .await;
    assert_eq!((beyond.status, beyond.error()), (400, "invalid_request"));
    let bad_query = srv.get("/api/v1/audit/events?colour=red", Some(&auditor)).await;
    assert_eq!(bad_query.status, 400);
    let svc = srv.user_token("svc:x", &[&srv.base], "dataset.read", &[], 60, None);
    assert_eq!(srv.get("/api/v1/audit/events", Some(&svc)).await.status, 403);
}
both!(audit_api_and_checkpoints);

/// (name, client auth, form, expected status, expected error code).
type Case<'a> = (&'a str, Auth<'a>, Vec<(&'a str, &'a str)>, u16, &'a str);
/// (name, form, expected error code), all 400.
type ExchangeCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// Every error path answers its RFC error code and status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_table() {
    let srv = support::start_sqlite(|o| o.oauth.auth_failures_per_minute = 1000).await;
    let secret = trainer(&srv).await;
    let basic = Auth::Basic("trainer", &secret);
    let cc = ("grant_type", "client_credentials");
    let long = "x".repeat(70_000);
    let cases: Vec<Case<'_>> = vec![
        ("no grant_type", basic, vec![], 400, "invalid_request"),
        (
            "unknown grant",
            basic,
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        ("no client auth", Auth::None, vec![cc], 401, "invalid_client"),
        (
            "wrong secret",
            Auth::Basic("trainer", "wsec_wrong"),
            vec![cc],
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            Auth::Basic("ghost", "x"),
            vec![cc],
            401,
            "invalid_client",
        ),
        (
            "two auth methods",
            basic,
            vec![cc, ("client_id", "trainer"), ("client_secret", "x")],
            400,
            "invalid_request",
        ),
        (
            "repeated parameter",
            basic,
            vec![cc, ("scope", "a"), ("scope", "b")],
            400,
            "invalid_request",
        ),
        (
            "scope not allowed",
            basic,
            vec![cc, ("scope", "admin")],
            400,
            "invalid_scope",
        ),
        (
            "bad scope token",
            basic,
            vec![cc, ("scope", "a\"b")],
            400,
            "invalid_scope",
        ),
        (
            "audience not allowed",
            basic,
            vec![cc, ("audience", "billing")],
            400,
            "invalid_target",
        ),
        (
            "grant not allowed",
            basic,
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", "x"),
                ("subject_token_type", AT),
            ],
            400,
            "unauthorized_client",
        ),
        (
            "refresh missing",
            basic,
            vec![("grant_type", "refresh_token")],
            400,
            "invalid_request",
        ),
        (
            "refresh unknown",
            basic,
            vec![("grant_type", "refresh_token"), ("refresh_token", "wrt_nope")],
            400,
            "invalid_grant",
        ),
        (
            "assertion type wrong",
            Auth::None,
            vec![cc, ("client_assertion", "a.b.c"), ("client_assertion_type", "jwt")],
            400,
            "invalid_request",
        ),
        (
            "body too large",
            basic,
            vec![cc, ("pad", &long)],
            413,
            "invalid_request",
        ),
    ];
    for (name, auth, pairs, status, code) in cases {
        let r = srv.post_form("/oauth/token", auth, &pairs).await;
        assert_eq!((r.status, r.error()), (status, code), "{name}: {}", r.body);
        assert!(r.body["error_description"].is_string(), "{name}");
        if status == 401 {
            assert!(r.headers.contains_key("www-authenticate"), "{name}");
        }
        assert!(!r.body.to_string().contains(&secret), "{name}: the secret leaked");
    }
    let bot = agent(&srv, "bot").await;
    let exchange_cases: Vec<ExchangeCase<'_>> = vec![
        (
            "no subject_token",
            vec![("grant_type", EXCHANGE), ("subject_token_type", AT)],
            "invalid_request",
        ),
        (
            "bad subject type",
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", "x"),
                ("subject_token_type", "urn:x"),
            ],
            "invalid_request",
        ),
        (
            "garbage subject",
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", "x.y.z"),
                ("subject_token_type", AT),
            ],
            "invalid_request",
        ),
        (
            "requested type",
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", "x"),
                ("subject_token_type", AT),
                ("requested_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            ],
            "invalid_request",
        ),
    ];
    for (name, pairs, code) in exchange_cases {
        let r = srv.post_form("/oauth/token", Auth::Basic("bot", &bot), &pairs).await;
        assert_eq!((r.status, r.error()), (400, code), "{name}: {}", r.body);
    }
    let user = srv.user_token("user:alice", &["inference"], "inference.invoke", &[], 120, None);
    let r = exchange(&srv, "bot", &bot, &user, &[("audience", "billing")]).await;
    assert_eq!(r.error(), "invalid_target");
    let wrong_ct = srv
        .http
        .post(format!("{}/oauth/token", srv.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_ct.status(), 400);
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let r = srv.post_form(path, basic, &[]).await;
        assert_eq!((r.status, r.error()), (400, "invalid_request"), "{path} without token");
        let r = srv.post_form(path, Auth::None, &[("token", "x")]).await;
        assert_eq!(
            (r.status, r.error()),
            (401, "invalid_client"),
            "{path} without client auth"
        );
        assert!(r.headers.contains_key("www-authenticate"));
    }
    let r = srv
        .post_form("/oauth/introspect", Auth::Bearer("not.a.token"), &[("token", "x")])
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid_token"));
    let missing = srv.get("/nope", None).await;
    assert_eq!((missing.status, missing.error()), (404, "not_found"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_and_audited() {
    let srv = support::start_sqlite(|o| o.oauth.auth_failures_per_minute = 3).await;
    let secret = trainer(&srv).await;
    for _ in 0..3 {
        let r = srv
            .post_form(
                "/oauth/token",
                Auth::Basic("trainer", "wsec_guess"),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let blocked = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("trainer", "wsec_guess"),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(blocked.status, 429, "a fourth failure within the minute");
    assert!(blocked.headers.contains_key("retry-after"));
    let right = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("trainer", &secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        right.status, 200,
        "failures in a client's name never lock the client out"
    );
    // Unreadable credentials count too (per source address).
    let garbage = srv
        .http
        .post(format!("{}/oauth/token", srv.base))
        .header("authorization", "Basic !!!")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 429, "the address is over its limit");
    srv.integrate_audit().await;
    let events = srv
        .get(
            "/api/v1/audit/events?type=client_auth_failed",
            Some(&srv.auditor_token()),
        )
        .await;
    let list = events.body["events"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["event"]["reason"], "wrong secret");
    assert!(!events.body.to_string().contains("wsec_guess"));
    // The refusals beyond the limit are tallied, one event per client and
    // address, written when the window ends or (here) at shutdown.
    let mut srv = srv;
    assert!(srv.stored_events("requests_refused").await.is_empty());
    srv.shut_down().await;
    let mut refused = srv.stored_events("requests_refused").await;
    refused.sort_by_key(|e| e["principal"].to_string());
    let summary: Vec<_> = refused
        .iter()
        .map(|e| (e["limit"].as_str(), e["principal"].as_str(), e["count"].as_u64()))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("failure_limit"), Some(""), Some(1)),
            (Some("failure_limit"), Some("trainer"), Some(1))
        ],
        "{refused:?}"
    );
    assert!(refused.iter().all(|e| e["source_ip"] == "127.0.0.1"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt() {
    use warden_jose::{Algorithm, Jwk, SigningKey};
    let srv = support::start_sqlite(|_| {}).await;
    let (key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
    let jwk = Jwk::from_verifying_key(key.verifying_key()).unwrap().to_json();
    let spec = warden_server::oauth::clients::ClientSpec {
        name: "signer".into(),
        kind: ClientKind::Service,
        grants: vec![grant::CLIENT_CREDENTIALS.into()],
        scopes: vec!["inference.invoke".into()],
        roles: vec![],
        audiences: vec!["inference".into()],
        auth: "private_key_jwt".into(),
        jwks: Some(json!({"keys": [jwk]})),
        tenant: None,
        redirect_uris: Vec::new(),
        require_dpop: false,
    };
    warden_server::oauth::clients::create(
        &srv.state.store,
        &srv.clients.hasher,
        &spec,
        warden_server::state::now(),
    )
    .await
    .unwrap();
    let assertion = |aud: &str, jti: &str, ttl: u64| {
        let now = warden_server::state::now();
        let claims = json!({"iss": "signer", "sub": "signer", "aud": aud, "jti": jti, "iat": now, "exp": now + ttl});
        warden_jose::issue::encode(&key, "JWT", &claims).unwrap()
    };
    let post = |a: String| {
        let srv = &srv;
        async move {
            srv.post_form(
                "/oauth/token",
                Auth::None,
                &[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &a),
                ],
            )
            .await
        }
    };
    let token_endpoint = format!("{}/oauth/token", srv.base);
    let ok = post(assertion(&token_endpoint, "a1", 60)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(claims(ok.body["access_token"].as_str().unwrap())["sub"], "svc:signer");
    assert_eq!(
        post(assertion(&srv.base, "a2", 60)).await.status,
        200,
        "issuer as audience"
    );
    let replay = post(assertion(&token_endpoint, "a1", 60)).await;
    assert_eq!(replay.error(), "invalid_client", "jti is single-use");
    assert_eq!(
        post(assertion("https://elsewhere", "a3", 60)).await.error(),
        "invalid_client"
    );
    assert_eq!(
        post(assertion(&token_endpoint, "a4", 3600)).await.error(),
        "invalid_client",
        "too long-lived"
    );
    let (other, _) = SigningKey::generate(Algorithm::ES256).unwrap();
    let now = warden_server::state::now();
    let forged = warden_jose::issue::encode(
        &other,
        "JWT",
        &json!({"iss": "signer", "sub": "signer", "aud": token_endpoint, "jti": "a5", "iat": now, "exp": now + 60}),
    )
    .unwrap();
    assert_eq!(post(forged).await.error(), "invalid_client");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_subject_tokens() {
    use warden_jose::{Algorithm, Jwk, SigningKey};
    let (idp_key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
    let jwks = json!({"keys": [Jwk::from_verifying_key(idp_key.verifying_key()).unwrap().to_json()]});
    // The IdP's JWKS served over HTTP on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let served = jwks.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().route("/jwks", axum::routing::get(move || async move { axum::Json(served) }));
        axum::serve(listener, app).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let srv = support::start_sqlite(|o| {
        for (issuer, location) in [
            (
                "https://idp.example",
                warden_server::options::JwksLocation::Url(jwks_url.clone()),
            ),
            (
                "https://file-idp.example",
                warden_server::options::JwksLocation::File(file.clone()),
            ),
        ] {
            o.federation.push(warden_server::options::FederatedIssuer {
                issuer: issuer.into(),
                jwks: location,
                algorithms: warden_jose::AlgorithmSet::asymmetric(),
                audience: "warden".into(),
                typ: vec!["JWT".into()],
                role_claim: "groups".into(),
                roles: [("ds-team".to_owned(), "data-scientist".to_owned())]
                    .into_iter()
                    .collect(),
                scope_claim: "scope".into(),
                subject_kind: "user".into(),
            });
        }
    })
    .await;
    let bot = agent(&srv, "bot").await;
    for issuer in ["https://idp.example", "https://file-idp.example"] {
        let now = warden_server::state::now();
        let idp_token = warden_jose::issue::encode(
            &idp_key,
            "JWT",
            &json!({"iss": issuer, "sub": "alice", "aud": "warden", "exp": now + 120, "iat": now,
                    "groups": ["ds-team", "unmapped"], "scope": "dataset.read other"}),
        )
        .unwrap();
        let r = exchange(
            &srv,
            "bot",
            &bot,
            &idp_token,
            &[("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")],
        )
        .await;
        // subject_token_type given twice is refused; send it once.
        assert_eq!(r.error(), "invalid_request");
        let r = srv
            .post_form(
                "/oauth/token",
                Auth::Basic("bot", &bot),
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &idp_token),
                    ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{issuer}: {}", r.body);
        let c = claims(r.body["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], "user:alice");
        assert_eq!(c["roles"], json!(["data-scientist"]));
        assert_eq!(c["scope"], "dataset.read");
        assert_eq!(c["act"], json!({"sub": "agent:bot"}));
        // Wrong audience at the IdP is refused.
        let wrong = warden_jose::issue::encode(
            &idp_key,
            "JWT",
            &json!({"iss": issuer, "sub": "alice", "aud": "other", "exp": now + 120, "iat": now}),
        )
        .unwrap();
        let r = srv
            .post_form(
                "/oauth/token",
                Auth::Basic("bot", &bot),
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &wrong),
                    ("subject_token_type", AT),
                ],
            )
            .await;
        assert_eq!(r.error(), "invalid_request");
    }
    // An untrusted issuer.
    let now = warden_server::state::now();
    let rogue = warden_jose::issue::encode(
        &idp_key,
        "JWT",
        &json!({"iss": "https://rogue.example", "sub": "alice", "aud": "warden", "exp": now + 120, "iat": now}),
    )
    .unwrap();
    let r = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("bot", &bot),
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &rogue),
                ("subject_token_type", AT),
            ],
        )
        .await;
    assert_eq!(r.error(), "invalid_request");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let srv = support::start_sqlite(|_| {}).await;
    assert_eq!(srv.get("/healthz", None).await.status, 200);
    let ready = srv.get("/readyz", None).await;
    assert_eq!((ready.status, ready.body["status"].as_str()), (200, Some("ready")));
    srv.stop().await;
}
