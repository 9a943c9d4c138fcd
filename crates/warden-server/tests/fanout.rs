//! Two replicas on one PostgreSQL schema and one Redis, in this process:
//! what one changes, the other applies at once through the Redis fan-out
//! (a revocation, a registry change) or by re-reading the store when a
//! token names a key it has not seen (a rotation elsewhere). Redis is
//! required when `WARDEN_TEST_REQUIRE_REDIS` is set (and not `0`; CI sets
//! it); otherwise a missing Redis skips the test with a note.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Auth, Server};
use warden_store::oauth::ClientKind;
use warden_store::postgres::PgStore;
use warden_test_support::services::{self, redis_url};

/// Whether Redis answers; when it does not, the test is skipped with a
/// note, or fails where `WARDEN_TEST_REQUIRE_REDIS` requires Redis.
async fn redis_up() -> bool {
    services::redis().is_some()
}

/// Two replicas on one schema and the Redis fan-out, with the periodic
/// catch-up from the store off (once an hour): what one applies from the
/// other within these tests came through Redis.
async fn replicas(schema: &str, issuer: &str) -> (Server<PgStore>, Server<PgStore>) {
    let tweak = |o: &mut warden_server::ServerOptions| {
        o.issuer = issuer.to_owned();
        o.redis_url = Some(redis_url());
        o.replicas.sync_interval = Duration::from_secs(3600);
    };
    let a = support::start_pg_shared(schema, tweak).await;
    let b = support::start_pg_shared(schema, tweak).await;
    (a, b)
}

async fn token(server: &Server<PgStore>, id: &str, secret: &str, issuer: &str) -> String {
    let r = server
        .post_form(
            "/oauth/token",
            Auth::Basic(id, secret),
            &[("grant_type", "client_credentials"), ("resource", issuer)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn active(server: &Server<PgStore>, id: &str, secret: &str, token: &str) -> bool {
    let r = server
        .post_form("/oauth/introspect", Auth::Basic(id, secret), &[("token", token)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["active"] == json!(true)
}

/// Polls `check` every 10 ms for up to 3 s; the time it took.
async fn within<F, Fut>(mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    for _ in 0..300 {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn what_one_replica_changes_the_other_applies_at_once() {
    if !redis_up().await {
        eprintln!("skipped: Redis is not reachable");
        return;
    }
    let schema = support::fresh_schema();
    let issuer = format!("http://warden-{schema}.test");
    let (a, b) = replicas(&schema, &issuer).await;
    // Both replicas listen before anything is published.
    let channel = warden_server::replicas::channel(&issuer);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut listening = false;
    for _ in 0..500 {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        if n >= 2 {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(listening, "the replicas never subscribed");
    let mut ready = b.get("/readyz", None).await;
    for _ in 0..100 {
        if ready.body["fanout"]["subscribed"] == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        ready = b.get("/readyz", None).await;
    }
    assert_eq!(ready.body["fanout"]["subscribed"], json!(true), "{}", ready.body);
    let secret = a
        .client(
            "etl",
            ClientKind::Service,
            &["client_credentials"],
            "dataset.read",
            &[&issuer],
        )
        .await;

    // A token from A verifies on B.
    let t = token(&a, "etl", &secret, &issuer).await;
    assert!(active(&b, "etl", &secret, &t).await, "B knows A's token");

    // A revocation on A reaches B through the fan-out (the periodic sync
    // is off).
    let r = a
        .post_form("/oauth/revoke", Auth::Basic("etl", &secret), &[("token", &t)])
        .await;
    assert_eq!(r.status, 200);
    let took = within(|| async { !active(&b, "etl", &secret, &t).await })
        .await
        .expect("B never saw the revocation");
    eprintln!("revocation reached the other replica in {took:?}");

    // A key that becomes active on A at once (a rotation elsewhere): B
    // verifies A's next token on the first try, re-reading the store for
    // the unknown kid.
    let now = warden_server::state::now();
    a.state
        .manager
        .rotate(warden_jose::Algorithm::EdDSA, now, true)
        .await
        .unwrap();
    a.state
        .keys
        .reload(&a.state.manager, &a.state.options, now)
        .await
        .unwrap();
    let t2 = token(&a, "etl", &secret, &issuer).await;
    let kid = |t: &str| support::header(t)["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid(&t), kid(&t2), "signed with the new key");
    assert!(active(&b, "etl", &secret, &t2).await, "B verifies the new key at once");

    // A registry change on A reaches B's policy attributes at once.
    let admin = {
        let keys = a.state.keys.get();
        let key = keys.signing.as_ref().unwrap();
        let now = warden_server::state::now();
        let claims = json!({"iss": issuer, "sub": "user:root", "aud": [issuer], "exp": now + 300, "iat": now,
            "nbf": now, "jti": warden_jose::issue::new_jti().unwrap(), "client_id": "cli",
            "scope": "dataset.create", "roles": ["admin"]});
        warden_jose::issue::encode(key, "at+jwt", &claims).unwrap()
    };
    let r = a
        .post_json(
            "/api/v1/datasets",
            Some(&admin),
            &json!({"name": "fanout-ds", "classification": "internal"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let registry = b.access.policies.registry().clone();
    let took = within(|| {
        let registry = registry.clone();
        async move { registry.resource("Dataset", "fanout-ds").is_some() }
    })
    .await
    .expect("B never saw the dataset");
    eprintln!("a registry change reached the other replica in {took:?}");

    a.stop().await;
    b.stop().await;
    support::drop_schema(&schema).await;
}

/// Without Redis: twenty concurrent requests on B with a token signed by
/// a key A made active a moment ago all verify (they share one reload of
/// the keys instead of one winner and nineteen refusals).
#[tokio::test]
async fn concurrent_requests_with_a_new_kid_share_one_key_reload() {
    let schema = support::fresh_schema();
    let issuer = format!("http://warden-{schema}.test");
    let tweak = |o: &mut warden_server::ServerOptions| o.issuer = issuer.clone();
    let a = support::start_pg_shared(&schema, tweak).await;
    let b = support::start_pg_shared(&schema, tweak).await;
    let secret = a
        .client(
            "etl",
            ClientKind::Service,
            &["client_credentials"],
            "dataset.read",
            &[&issuer],
        )
        .await;
    let now = warden_server::state::now();
    a.state
        .manager
        .rotate(warden_jose::Algorithm::EdDSA, now, true)
        .await
        .unwrap();
    a.state
        .keys
        .reload(&a.state.manager, &a.state.options, now)
        .await
        .unwrap();
    let t = token(&a, "etl", &secret, &issuer).await;
    let answers = futures_util::future::join_all((0..20).map(|_| active(&b, "etl", &secret, &t))).await;
    assert!(answers.iter().all(|ok| *ok), "{answers:?}");
    a.stop().await;
    b.stop().await;
    support::drop_schema(&schema).await;
}

/// Warden's own APIs (client admin, audit, introspection by bearer) accept
/// a token signed by a key made active on another replica a moment ago:
/// they re-read the keys for the unknown kid like the gateway and the
/// registry do, instead of refusing it until the periodic reload.
#[tokio::test]
async fn admin_and_audit_apis_accept_a_key_rotated_on_another_replica() {
    let schema = support::fresh_schema();
    let issuer = format!("http://warden-{schema}.test");
    let tweak = |o: &mut warden_server::ServerOptions| o.issuer = issuer.clone();
    let a = support::start_pg_shared(&schema, tweak).await;
    let b = support::start_pg_shared(&schema, tweak).await;
    let now = warden_server::state::now();
    a.state
        .manager
        .rotate(warden_jose::Algorithm::EdDSA, now, true)
        .await
        .unwrap();
    a.state
        .keys
        .reload(&a.state.manager, &a.state.options, now)
        .await
        .unwrap();
    let root = {
        let keys = a.state.keys.get();
        let key = keys.signing.as_ref().unwrap();
        let claims = json!({"iss": issuer, "sub": "user:root", "aud": [issuer], "exp": now + 300, "iat": now,
            "nbf": now, "jti": warden_jose::issue::new_jti().unwrap(), "client_id": "cli",
            "scope": "", "roles": ["admin", "auditor"]});
        warden_jose::issue::encode(key, "at+jwt", &claims).unwrap()
    };
    let kid = support::header(&root)["kid"].as_str().unwrap().to_owned();
    assert!(
        !b.state.keys.get().jwks.to_string().contains(&kid),
        "B has not read the new key yet"
    );
    let clients = b.get("/api/v1/admin/clients", Some(&root)).await;
    assert_eq!(clients.status, 200, "{}", clients.body);
    b.integrate_audit().await;
    let events = b.get("/api/v1/audit/events?limit=1", Some(&root)).await;
    assert_eq!(events.status, 200, "{}", events.body);
    let introspected = b
        .post_form("/oauth/introspect", Auth::Bearer(&root), &[("token", &root)])
        .await;
    assert_eq!(introspected.status, 200, "{}", introspected.body);
    assert_eq!(introspected.body["active"], true);
    a.stop().await;
    b.stop().await;
    support::drop_schema(&schema).await;
}

/// Failed client authentications count across replicas through Redis:
/// 6 on A and 5 on B pass a limit of 10 per minute, where each replica
/// alone would have counted at most 6.
#[tokio::test]
async fn failed_authentications_count_across_replicas() {
    if !redis_up().await {
        eprintln!("skipped: Redis is not reachable");
        return;
    }
    // Counters are per clock minute: stay clear of a boundary.
    let second = warden_server::state::now() % 60;
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    let schema = support::fresh_schema();
    let issuer = format!("http://warden-{schema}.test");
    let (a, b) = replicas(&schema, &issuer).await;
    a.client(
        "etl",
        ClientKind::Service,
        &["client_credentials"],
        "dataset.read",
        &[&issuer],
    )
    .await;
    for _ in 0..6 {
        assert_eq!(attempt(&a).await, 401);
    }
    for _ in 0..4 {
        assert_eq!(attempt(&b).await, 401);
    }
    assert_eq!(attempt(&b).await, 429, "the limit of 10 holds across replicas");
    a.stop().await;
    b.stop().await;
    support::drop_schema(&schema).await;
}

async fn attempt(s: &Server<PgStore>) -> u16 {
    s.post_form(
        "/oauth/token",
        Auth::Basic("etl", "wrong-secret"),
        &[("grant_type", "client_credentials")],
    )
    .await
    .status
}
