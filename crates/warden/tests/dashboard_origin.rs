//! The dashboard on an origin of its own (`[dashboard] listen`), with the
//! real binary: `/ui` on the main port answers 404 (never the gateway),
//! the dashboard port serves the login-link flow, forms posted from the
//! main port's origin are refused there, the main port still serves the
//! token service and the gateway, and SIGTERM stops both listeners.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::http::client_credentials;
use warden_test_support::net::{free_addr, http_status};

/// An upstream answering every request with 200 and the path it got.
async fn upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(|uri: axum::http::Uri| async move { axum::Json(json!({"upstream_saw": uri.path()})) });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Waits until `addr` answers `GET path` with anything.
fn wait_for(addr: SocketAddr, path: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = http_status(addr, path) {
            return status;
        }
        assert!(Instant::now() < deadline, "nothing answers on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A browser's cookie jar over one origin.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, r: reqwest::Response) -> (u16, String, String) {
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap();
            assert!(attrs.contains("Path=/ui") && attrs.contains("HttpOnly"), "{c}");
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
        (status, location, r.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (u16, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    async fn post(&mut self, path: &str, origin: &str, form: &str) -> (u16, String, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        self.take(r).await
    }
}

fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_on_its_own_listener_and_not_the_main_one() {
    let up = upstream().await;
    let dash = free_addr();
    let mut w = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite)
        .env("WARDEN_LOG", "warn")
        .env("WARDEN_DASHBOARD_LISTEN", dash.to_string());
    w.write_config(&format!(
        r#"[[route]]
name = "everything"
path_prefix = "/"
upstream = "{up}"
action = "inference.invoke"
resource = {{ type = "Model", id = {{ literal = "any" }} }}
scopes = ["inference.invoke"]
"#
    ));
    let check = w.ok(&["config", "check"]);
    assert!(check.contains(&format!("dashboard.listen = \"{dash}\"")), "{check}");
    let secret = w.create_client(&[
        "--name",
        "app",
        "--kind",
        "service",
        "--scope",
        "inference.invoke",
        "--role",
        "ml-engineer",
    ]);
    let mut server = w.start(&["serve"]);
    let base = server.base();
    assert_eq!(wait_for(dash, "/ui/login"), 200, "{}", server.log_text());
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The main port: the token service and the gateway, and no dashboard —
    // a 404 of its own, never the upstream's answer.
    let token = client_credentials(&http, &base, "app", &secret).await;
    let r = http
        .get(format!("{base}/v1/chat"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["upstream_saw"], "/v1/chat");
    for path in ["/ui", "/ui/", "/ui/login", "/ui/audit", "/ui/assets/app.js"] {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on the main port");
        let body = r.text().await.unwrap();
        assert!(!body.contains("upstream_saw"), "{path} reached the gateway: {body}");
    }
    let r = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The login link points at the dashboard's origin, and signs in there.
    let link = w.ok(&["ui", "link", "--sub", "user:ada", "--role", "auditor"]);
    let dash_base = format!("http://{dash}");
    let token = link
        .trim()
        .strip_prefix(&format!("{dash_base}/ui/login#token="))
        .unwrap_or_else(|| panic!("a link to the dashboard's port: {link}"));
    let mut b = Browser {
        http: http.clone(),
        base: dash_base.clone(),
        cookies: HashMap::new(),
    };
    let (status, _, form) = b.get("/ui/login").await;
    assert_eq!(status, 200);
    let fields = format!("csrf={}&token={token}", csrf(&form));
    // A form posted from the main port's origin (where upstream answers
    // are served) is refused.
    let (status, _, _) = b.post("/ui/login", &base, &fields).await;
    assert_eq!(status, 403, "the gateway's origin may not post to the dashboard");
    let (status, location, body) = b.post("/ui/login", &dash_base, &fields).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(location, "/ui/audit");
    let (status, _, body) = b.get("/ui/audit").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = b.get("/ui/sessions").await;
    assert_eq!(status, 200);
    assert!(body.contains("this session"), "{body}");
    // The dashboard's listener serves nothing else.
    let r = http
        .get(format!("{dash_base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(format!("{dash_base}/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // The same session cookie (cookies ignore ports) opens nothing on the
    // main port.
    let r = http
        .get(format!("{base}/ui/audit"))
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // SIGTERM stops both listeners.
    let status = server.stop();
    assert!(status.is_some_and(|s| s.success()), "{}", server.log_text());
    assert_eq!(
        http_status(dash, "/ui/login"),
        None,
        "the dashboard's listener is closed"
    );
}
