//! A real `warden-server` on a random loopback port, over SQLite in a temp
//! dir or a fresh PostgreSQL schema (the databases and their clean-up are
//! `warden_test_support`'s), and a small HTTP client for it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

pub mod browser;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;
use warden_jose::issue::{AccessTokenClaims, encode, new_jti};
use warden_keys::MasterKey;
use warden_server::access::Access;
use warden_server::oauth::clients::{self, ClientSpec, Clients};
use warden_server::options::{AuditOptions, scopes};
use warden_server::state::AppState;
use warden_server::{App, ServerOptions};
use warden_store::Store;
use warden_store::oauth::ClientKind;
use warden_store::postgres::PgStore;
use warden_store::sqlite::SqliteStore;
// For the suites that share a schema between replicas (each suite uses
// what it needs of this module).
#[allow(unused_imports)]
pub use warden_test_support::db::fresh_schema;
use warden_test_support::db::{PgSchema, TestDb};
use warden_test_support::services::pg_url;
use warden_test_support::store::{Harness, PgHarness, SqliteHarness};

pub fn options(issuer: &str) -> ServerOptions {
    ServerOptions {
        issuer: issuer.to_owned(),
        audit: AuditOptions {
            origin: "warden.test/audit".into(),
            origin_explicit: true,
            checkpoint_interval: 1,
            ..AuditOptions::for_issuer(issuer)
        },
        ..ServerOptions::default()
    }
}

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Server<S: Store> {
    pub base: String,
    pub state: Arc<AppState<S>>,
    pub clients: Arc<Clients>,
    pub access: Arc<Access>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The database this server owns (none for a shared schema).
    db: Option<TestDb>,
}

pub async fn start_sqlite(tweak: impl FnOnce(&mut ServerOptions)) -> Server<SqliteStore> {
    start_sqlite_with(tweak, |app, _| app).await
}

/// As [`start_sqlite`], with `wrap` applied to the assembled [`App`] (to
/// serve a gateway with another authorizer or settings); it gets the final
/// options, whose issuer is the server's base URL.
pub async fn start_sqlite_with(
    tweak: impl FnOnce(&mut ServerOptions),
    wrap: impl FnOnce(App<SqliteStore>, &ServerOptions) -> App<SqliteStore>,
) -> Server<SqliteStore> {
    let (store, db) = SqliteHarness::start().await.into_parts();
    start(store, tweak, wrap, Some(db)).await
}

pub async fn start_pg(tweak: impl FnOnce(&mut ServerOptions)) -> Server<PgStore> {
    let (store, db) = PgHarness::start().await.into_parts();
    start(store, tweak, |app, _| app, Some(db)).await
}

/// A server on an existing PostgreSQL schema it does not own (several
/// replicas share it; the caller drops it).
pub async fn start_pg_shared(schema: &str, tweak: impl FnOnce(&mut ServerOptions)) -> Server<PgStore> {
    let store = PgStore::connect_in_schema(&pg_url(), schema).await.unwrap();
    start(store, tweak, |app, _| app, None).await
}

/// Drops a schema made with [`fresh_schema`].
pub async fn drop_schema(schema: &str) {
    PgSchema::named(&pg_url(), schema).drop_now().await;
}

async fn start<S: Store>(
    store: S,
    tweak: impl FnOnce(&mut ServerOptions),
    wrap: impl FnOnce(App<S>, &ServerOptions) -> App<S>,
    db: Option<TestDb>,
) -> Server<S> {
    let listener = warden_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut opts = options(&base);
    tweak(&mut opts);
    let app = App::new(store, MasterKey::from_bytes([42; 32]), opts.clone())
        .await
        .unwrap();
    let app = wrap(app, &opts);
    let state = Arc::clone(app.state());
    let clients = Arc::clone(app.clients());
    let access = Arc::clone(app.access());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.serve(listener, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        base,
        state,
        clients,
        access,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        stop: Some(tx),
        task: Some(task),
        db,
    }
}

/// A response: status, headers and JSON body (Null when empty).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply { status, headers, body }
}

/// Client authentication for a request.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Bearer(&'a str),
    None,
}

impl<S: Store> Server<S> {
    pub async fn post_form(&self, path: &str, auth: Auth<'_>, pairs: &[(&str, &str)]) -> Reply {
        let mut all: Vec<(&str, &str)> = pairs.to_vec();
        let mut req = self.http.post(format!("{}{path}", self.base));
        match auth {
            Auth::Basic(id, secret) => req = req.basic_auth(id, Some(secret)),
            Auth::Post(id, secret) => {
                all.push(("client_id", id));
                all.push(("client_secret", secret));
            }
            Auth::Bearer(t) => req = req.bearer_auth(t),
            Auth::None => {}
        }
        let r = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&all))
            .send()
            .await
            .unwrap();
        reply(r).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        reply(req.send().await.unwrap()).await
    }

    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value) -> Reply {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r = req
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        reply(r).await
    }

    /// Registers a secret client; returns its secret.
    pub async fn client(
        &self,
        name: &str,
        kind: ClientKind,
        grants: &[&str],
        scopes: &str,
        audiences: &[&str],
    ) -> String {
        let spec = ClientSpec {
            name: name.into(),
            kind,
            grants: grants.iter().map(|g| (*g).to_owned()).collect(),
            scopes: vec![scopes.to_owned()],
            roles: vec!["ml-engineer".into()],
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            auth: "secret".into(),
            jwks: None,
            tenant: None,
            redirect_uris: Vec::new(),
            require_dpop: false,
        };
        let (_, secret) = clients::create(
            &self.state.store,
            &self.clients.hasher,
            &spec,
            warden_server::state::now(),
        )
        .await
        .unwrap();
        secret.unwrap().0.to_string()
    }

    /// A Warden access token minted directly (as `warden token issue` does).
    pub fn user_token(
        &self,
        sub: &str,
        aud: &[&str],
        scope: &str,
        roles: &[&str],
        ttl: u64,
        extra: Option<(&str, Value)>,
    ) -> String {
        let keys = self.state.keys.get();
        let key = keys.signing.as_ref().unwrap();
        let now = warden_server::state::now();
        let claims = AccessTokenClaims {
            iss: self.base.clone(),
            sub: sub.into(),
            aud: aud.iter().map(|a| (*a).to_owned()).collect(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: new_jti().unwrap(),
            client_id: "warden-cli".into(),
            scope: scope.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            tenant: None,
            act: None,
            cnf: None,
            authorization_details: None,
        };
        let mut value = serde_json::to_value(&claims).unwrap();
        if let Some((k, v)) = extra {
            value[k] = v;
        }
        encode(key, "at+jwt", &value).unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.user_token("user:root", &[&self.base], scopes::ADMIN, &["admin"], 300, None)
    }

    pub fn auditor_token(&self) -> String {
        self.user_token("user:audrey", &[&self.base], "", &["auditor"], 300, None)
    }

    /// Shuts the server down as SIGTERM does (drain, last audit records,
    /// final checkpoint), keeping its database to inspect.
    pub async fn shut_down(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Integrates every queued audit event now (as the sequencer would
    /// within a poll), so that reads of the log see everything
    /// acknowledged so far. A second integrator beside the server's own
    /// sequencer is safe: each batch locks the log's state.
    pub async fn integrate_audit(&self) {
        for _ in 0..10_000 {
            let done = warden_store::AuditStore::integrate(&self.state.store, 4096)
                .await
                .unwrap();
            if done.count() == 0 {
                return;
            }
        }
        panic!("the audit queue never emptied");
    }

    /// The audit events of type `kind` in the store, oldest first
    /// (everything acknowledged so far: the queue is integrated first).
    pub async fn stored_events(&self, kind: &str) -> Vec<Value> {
        self.integrate_audit().await;
        let query = warden_store::EventQuery {
            kind: Some(kind.to_owned()),
            ..warden_store::EventQuery::page(0, 1000)
        };
        let events = warden_store::AuditStore::events(&self.state.store, &query)
            .await
            .unwrap();
        events
            .iter()
            .filter_map(|e| e.content.as_ref())
            .map(|(body, _)| serde_json::from_slice::<Value>(body).unwrap())
            .map(|body| body.get("event").cloned().unwrap_or(body))
            .collect()
    }

    pub async fn stop(mut self) {
        self.shut_down().await;
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

/// Decodes a JWS payload without verifying (tests only).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&warden_jose::base64url::decode(payload).unwrap()).unwrap()
}

/// Decodes a JWS header without verifying (tests only).
pub fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&warden_jose::base64url::decode(part).unwrap()).unwrap()
}
