//! `GET /metrics` over real HTTP: a token issued (and one refused), gateway
//! requests allowed, denied and rate limited in front of a stub upstream,
//! then a scrape checked for every counter and histogram with its labels;
//! and where `/metrics` is served (`metrics.listen`, `metrics.enabled`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::collections::BTreeMap;

use axum::Router;
use support::{Auth, Server};
use warden_server::gateway::{Gateway, GatewaySettings};
use warden_server::metrics::{NO_ROUTE, names};
use warden_server::options::MetricsOptions;
use warden_server::options::{IdSource, RateLimit, ResourceSpec, RouteConfig, RouteKind};
use warden_store::oauth::ClientKind;
use warden_store::sqlite::SqliteStore;
use warden_test_support::net::free_addr;

/// An upstream answering `ok` to everything.
async fn upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn route(name: &str, prefix: &str, upstream: &str, rate_limit: Option<RateLimit>) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        methods: Vec::new(),
        path_prefix: prefix.into(),
        upstream: upstream.into(),
        audience: Some("inference".into()),
        action: "invoke".into(),
        resource: ResourceSpec {
            type_name: "Service".into(),
            id: IdSource::PathSegment(0),
        },
        scopes: vec!["inference.invoke".into()],
        rate_limit,
        forward_authorization: false,
        approval_wait: 0,
        kind: RouteKind::Http,
    }
}

/// A server with the routes `echo` and `limited` (burst 1), decided on
/// scopes alone, with `metrics` as given.
async fn setup(metrics: MetricsOptions) -> Server<SqliteStore> {
    let up = upstream().await;
    let limit = RateLimit {
        per_second: 0.01,
        burst: 1,
    };
    let routes = vec![
        route("echo", "/echo", &up, None),
        route("limited", "/limited", &up, Some(limit)),
    ];
    support::start_sqlite_with(
        |o| {
            o.routes = routes;
            o.metrics = metrics;
        },
        |app, opts| {
            let gateway = Gateway::new(opts.routes.clone(), &opts.issuer, GatewaySettings::default()).unwrap();
            app.with_gateway(gateway)
        },
    )
    .await
}

/// One sample of the text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of the Prometheus text format (label values
/// here never hold `"` or `,`).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (head, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').unwrap();
                    let labels = inner
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (k, v) = p.split_once('=').unwrap();
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (head.to_owned(), BTreeMap::new()),
            };
            Sample {
                name,
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> (reqwest::header::HeaderMap, String) {
    let mut request = http.get(url);
    if let Some(t) = bearer {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    (headers, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_tokens_gateway_requests_and_audit_commits() {
    let srv = setup(MetricsOptions::default()).await;
    let secret = srv
        .client(
            "trainer",
            ClientKind::Service,
            &["client_credentials"],
            "inference.invoke",
            &["inference"],
        )
        .await;
    let grant = [("grant_type", "client_credentials")];
    let issued = srv
        .post_form("/oauth/token", Auth::Basic("trainer", &secret), &grant)
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    // The token endpoints answer a request id too.
    let id = issued.headers["x-warden-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32);
    let refused = srv
        .post_form("/oauth/token", Auth::Basic("trainer", "wrong"), &grant)
        .await;
    assert_eq!(refused.status, 401);
    let unsupported = srv
        .post_form(
            "/oauth/token",
            Auth::Basic("trainer", &secret),
            &[("grant_type", "password")],
        )
        .await;
    assert_eq!(unsupported.error(), "unsupported_grant_type");
    let token = issued.body["access_token"].as_str().unwrap().to_owned();

    let get = |path: &str, bearer: Option<&str>| {
        let mut req = srv.http.get(format!("{}{path}", srv.base));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // The same token twice: a cache miss, then a hit.
    assert_eq!(get("/echo/svc-a/x", Some(&token)).await, 200);
    assert_eq!(get("/echo/svc-b", Some(&token)).await, 200);
    assert_eq!(get("/echo/svc-a", None).await, 401);
    let unscoped = srv.user_token("user:bob", &["inference"], "", &["ml-engineer"], 300, None);
    assert_eq!(get("/echo/svc-a", Some(&unscoped)).await, 403);
    assert_eq!(get("/limited/a", Some(&token)).await, 200);
    assert_eq!(get("/limited/a", Some(&token)).await, 429);
    assert_eq!(get("/nowhere/at/all", Some(&token)).await, 404);

    // On the main listener, a token with `metrics.read` (or the admin
    // role) scrapes; nothing else does.
    let url = format!("{}/metrics", srv.base);
    assert_eq!(srv.get("/metrics", None).await.status, 401);
    let reader = srv.user_token("svc:prometheus", &[&srv.base], "", &[], 300, None);
    assert_eq!(srv.get("/metrics", Some(&reader)).await.status, 403);
    let scraper = srv.user_token("svc:prometheus", &[&srv.base], "metrics.read", &[], 300, None);
    let (headers, text) = scrape(&srv.http, &url, Some(&scraper)).await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let s = parse(&text);
    let v = |name: &str, labels: &[(&str, &str)]| value(&s, name, labels);

    // Gateway requests by route, decision and status.
    let requests = names::GATEWAY_REQUESTS;
    assert_eq!(
        v(requests, &[("route", "echo"), ("decision", "allow"), ("status", "200")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        v(requests, &[("route", "echo"), ("decision", "deny"), ("status", "401")]),
        1.0
    );
    assert_eq!(
        v(requests, &[("route", "echo"), ("decision", "deny"), ("status", "403")]),
        1.0
    );
    assert_eq!(
        v(
            requests,
            &[("route", "limited"), ("decision", "allow"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        v(
            requests,
            &[("route", "limited"), ("decision", "deny"), ("status", "429")]
        ),
        1.0
    );
    assert_eq!(
        v(
            requests,
            &[("route", NO_ROUTE), ("decision", "deny"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(v(names::GATEWAY_RATE_LIMITED, &[("route", "limited")]), 1.0);
    assert_eq!(v(names::GATEWAY_RATE_LIMITED, &[("route", "echo")]), 0.0);

    // Latency histograms, with buckets.
    let count = |name: &str, labels: &[(&str, &str)]| v(&format!("{name}_count"), labels);
    assert_eq!(count(names::GATEWAY_REQUEST_SECONDS, &[("route", "echo")]), 4.0);
    assert_eq!(count(names::GATEWAY_REQUEST_SECONDS, &[("route", NO_ROUTE)]), 1.0);
    assert_eq!(count(names::GATEWAY_UPSTREAM_SECONDS, &[("route", "echo")]), 2.0);
    assert_eq!(count(names::GATEWAY_UPSTREAM_SECONDS, &[("route", "limited")]), 1.0);
    // Verified: every request with a route (6); authorized: those with the
    // route's scopes (4).
    assert_eq!(count(names::GATEWAY_VERIFY_SECONDS, &[]), 6.0);
    assert_eq!(count(names::GATEWAY_AUTHORIZE_SECONDS, &[]), 4.0);
    for name in [
        names::GATEWAY_REQUEST_SECONDS,
        names::GATEWAY_UPSTREAM_SECONDS,
        names::GATEWAY_VERIFY_SECONDS,
        names::GATEWAY_AUTHORIZE_SECONDS,
        names::AUDIT_COMMIT_SECONDS,
    ] {
        let bucket = format!("{name}_bucket");
        assert!(
            s.iter().any(|x| x.name == bucket && x.labels["le"] == "+Inf"),
            "{name}: {text}"
        );
        assert!(v(&format!("{name}_sum"), &[]) > 0.0, "{name}");
    }

    // Verified-token cache (one per audience): the issued token missed
    // once, then hit thrice; the unscoped one missed.
    assert_eq!(v(names::TOKEN_CACHE_LOOKUPS, &[("result", "miss")]), 2.0);
    assert_eq!(v(names::TOKEN_CACHE_LOOKUPS, &[("result", "hit")]), 3.0);

    // Token endpoint by grant and error code.
    assert_eq!(v(names::TOKENS_ISSUED, &[("grant", "client_credentials")]), 1.0);
    let failures = names::TOKEN_FAILURES;
    assert_eq!(
        v(
            failures,
            &[("grant", "client_credentials"), ("error", "invalid_client")]
        ),
        1.0
    );
    assert_eq!(
        v(failures, &[("grant", "unknown"), ("error", "unsupported_grant_type")]),
        1.0
    );

    // Audit group commits: at least the token issuance and the four
    // decisions (three allowed, one denied), in batches.
    let events = v(&format!("{}_sum", names::AUDIT_BATCH_SIZE), &[]);
    assert!(events >= 5.0, "{text}");
    assert!(count(names::AUDIT_BATCH_SIZE, &[]) >= 1.0);
    assert!(count(names::AUDIT_COMMIT_SECONDS, &[]) >= 1.0);
    assert_eq!(v(names::AUDIT_COMMIT_FAILURES, &[]), 0.0);

    // Bounded labels: no paths, subjects or clients.
    for raw in ["svc-a", "/echo", "/nowhere", "svc:trainer", "user:bob", "trainer"] {
        assert!(!text.contains(raw), "{raw} leaked into the metrics");
    }
    // HELP lines.
    assert!(text.contains(&format!("# HELP {} ", names::GATEWAY_REQUESTS)), "{text}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_metrics_listener_takes_metrics_off_the_main_one() {
    let addr = free_addr();
    let srv = setup(MetricsOptions {
        enabled: true,
        listen: Some(addr),
    })
    .await;
    let token = srv.user_token("user:al", &["inference"], "inference.invoke", &[], 300, None);
    let r = srv
        .http
        .get(format!("{}/echo/x", srv.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The main listener: /metrics is no endpoint there (it falls through
    // to the gateway, which has no such route).
    assert_eq!(srv.get("/metrics", None).await.status, 404);
    let (_, text) = scrape(&srv.http, &format!("http://{addr}/metrics"), None).await;
    let s = parse(&text);
    let labels = [("route", "echo"), ("decision", "allow"), ("status", "200")];
    assert_eq!(value(&s, names::GATEWAY_REQUESTS, &labels), 1.0, "{text}");
    // Only /metrics there.
    let other = srv.http.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_metrics_are_served_nowhere() {
    let addr = free_addr();
    let srv = setup(MetricsOptions {
        enabled: false,
        listen: Some(addr),
    })
    .await;
    assert!(!srv.state.metrics.is_enabled());
    assert_eq!(srv.get("/metrics", None).await.status, 404);
    assert!(srv.http.get(format!("http://{addr}/metrics")).send().await.is_err());
    srv.stop().await;
}

/// Apps in one process keep separate counts (no global recorder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_app_counts_only_its_own_requests() {
    let (a, b) = (
        setup(MetricsOptions::default()).await,
        setup(MetricsOptions::default()).await,
    );
    assert_eq!(a.get("/nowhere", None).await.status, 404);
    let count = |srv: &Server<SqliteStore>| {
        let text = srv.state.metrics.render().unwrap();
        value(&parse(&text), names::GATEWAY_REQUESTS, &[("route", NO_ROUTE)])
    };
    assert_eq!(count(&a), 1.0);
    assert_eq!(count(&b), 0.0);
    a.stop().await;
    b.stop().await;
}
