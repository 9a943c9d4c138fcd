//! A test OpenID Connect identity provider for the sign-in tests: the
//! certified Node `oidc-provider` package (MIT licence), pinned in
//! `tests/interop/oidc-provider/package.json` and run by `provider.mjs`
//! there on a free loopback port, with four fixed people:
//!
//! | user    | sub          | email                 | email_verified | groups                   |
//! |---------|--------------|-----------------------|----------------|--------------------------|
//! | `alice` | `a1b2-alice` | `alice@example.com`   | true           | ml-engineers, everyone   |
//! | `bob`   | `b2c3-bob`   | `bob@example.com`     | true           | auditors, everyone       |
//! | `carol` | `c3d4-carol` | `carol@other.example` | true           | ml-engineers             |
//! | `dave`  | `d4e5-dave`  | `dave@example.com`    | false          | (none)                   |
//!
//! Each one's password is `password-<user>`. Scopes `openid email profile
//! groups`; `email`, `email_verified`, `name` and `groups` are in the ID
//! token itself. Authorization code with PKCE (S256, required of every
//! client) and `nonce`; RS256 ID tokens by default, ES256 for a client
//! registered with `"id_token_signed_response_alg": "ES256"`;
//! client_secret_basic by default, client_secret_post when the client says
//! `"token_endpoint_auth_method": "client_secret_post"`.
//!
//! A test registers the relying party's clients, points Warden at
//! [`OidcProvider::issuer`], and signs someone in either over plain HTTP
//! with [`OidcProvider::sign_in_http`] (which stops at the redirect back to
//! the relying party, so the test calls Warden's callback itself), or in a
//! browser by filling the provider's form (`input[name=login]`,
//! `input[name=password]`, `#submit`). One form post signs in and consents.
//!
//! ```ignore
//! let logs = ...; // a directory for the install and provider logs
//! if let Err(why) = peers::oidc::install(&logs) {
//!     services::unavailable(REQUIRE_INTEROP, "OIDC sign-in", &why);
//!     return;
//! }
//! let idp = OidcProvider::start(&logs, &json!([{
//!     "client_id": "warden", "client_secret": "s3cret",
//!     "redirect_uris": [format!("{warden}/auth/callback")],
//! }])).unwrap();
//! // ... Warden answers /login with a redirect to idp's /auth ...
//! let back = idp.sign_in_http(&authorize_url, "alice", "password-alice").unwrap();
//! // `back` is `{warden}/auth/callback?code=...&state=...&iss=...`.
//! ```
//!
//! [`install`] only installs (cached, like the other peers): its error
//! means "unavailable here" (skip or fail per `WARDEN_TEST_REQUIRE_INTEROP`),
//! while an error from [`OidcProvider::start`] after it succeeded is a
//! real failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::{Value, json};

/// How long the first `npm ci` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the provider may take to print `READY`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request to the provider may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);
/// The most redirects [`OidcProvider::sign_in_http`] follows.
const MAX_REDIRECTS: usize = 20;
/// Attempts at a free port (another process may take the one picked).
const PORT_ATTEMPTS: usize = 3;

/// `tests/interop/oidc-provider` at the repository root.
pub fn provider_dir() -> PathBuf {
    super::repo_root().join("tests/interop/oidc-provider")
}

/// `node_modules` with the pinned `oidc-provider`, installed with `npm ci`
/// into the interop cache on first use; `Err` says why it is unavailable
/// (no node 20 or later, no npm, a failed install).
pub fn install(logs: &Path) -> Result<PathBuf, String> {
    let major = super::node_major()?;
    if major < 20 {
        return Err(format!(
            "node {major} is too old: oidc-provider 9 needs node 20.19 or later"
        ));
    }
    super::npm_ci_cached(&provider_dir(), "oidc-provider", logs, INSTALL_TIMEOUT)
}

/// A running `provider.mjs`, killed when dropped.
pub struct OidcProvider {
    child: Child,
    issuer: String,
    stderr_path: PathBuf,
}

impl OidcProvider {
    /// Installs (see [`install`]) and starts the provider on a free
    /// loopback port with the relying-party clients `clients`, a JSON
    /// array of oidc-provider client metadata: `client_id`,
    /// `client_secret`, `redirect_uris`, optionally
    /// `token_endpoint_auth_method` (`client_secret_basic`, the default,
    /// or `client_secret_post`), `id_token_signed_response_alg`,
    /// `post_logout_redirect_uris`, ... Its scratch dir and logs
    /// (`oidc-provider-<port>.{stdout,stderr}`) go under `logs`. Waits
    /// until it answers.
    pub fn start(logs: &Path, clients: &Value) -> Result<OidcProvider, String> {
        if !clients.is_array() {
            return Err(format!("clients must be a JSON array, not {clients}"));
        }
        let modules = install(logs)?;
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = warden_test_support::net::free_port();
            match Self::launch(logs, &modules, clients, port)? {
                Ok(provider) => return Ok(provider),
                // The port was taken between picking and binding: retry.
                Err(why) if why.contains("EADDRINUSE") => last = why,
                Err(why) => return Err(why),
            }
        }
        Err(format!("no free port after {PORT_ATTEMPTS} attempts: {last}"))
    }

    /// One start on `port`: `Ok(Err(why))` when it exited or timed out
    /// before `READY` (the caller may retry on another port), `Err` when
    /// it could not be set up at all.
    fn launch(logs: &Path, modules: &Path, clients: &Value, port: u16) -> Result<Result<OidcProvider, String>, String> {
        let name = format!("oidc-provider-{port}");
        // A scratch dir whose node_modules links to the cached install, so
        // ESM resolution finds the pinned packages.
        let run_dir = logs.join(&name);
        let setup = |e: std::io::Error| format!("setting up {}: {e}", run_dir.display());
        std::fs::create_dir_all(&run_dir).map_err(setup)?;
        for file in ["provider.mjs", "package.json"] {
            std::fs::copy(provider_dir().join(file), run_dir.join(file)).map_err(setup)?;
        }
        let link = run_dir.join("node_modules");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(modules, &link).map_err(setup)?;
        }
        let config = run_dir.join("config.json");
        std::fs::write(&config, json!({ "clients": clients }).to_string()).map_err(setup)?;

        let stdout_path = logs.join(format!("{name}.stdout"));
        let stderr_path = logs.join(format!("{name}.stderr"));
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .arg("--port")
            .arg(port.to_string())
            .arg("--config")
            .arg(&config)
            .current_dir(&run_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).map_err(setup)?)
            .stderr(std::fs::File::create(&stderr_path).map_err(setup)?);
        let child = cmd.spawn().map_err(|e| format!("starting node provider.mjs: {e}"))?;
        let issuer = format!("http://127.0.0.1:{port}");
        let mut provider = OidcProvider {
            child,
            issuer,
            stderr_path,
        };

        let ready = format!("READY {}", provider.issuer);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
            if stdout.lines().any(|l| l.trim() == ready) {
                return Ok(Ok(provider));
            }
            if let Ok(Some(status)) = provider.child.try_wait() {
                return Ok(Err(format!(
                    "the provider exited ({status}) before it was ready:\n{}",
                    provider.log_text()
                )));
            }
            if Instant::now() >= deadline {
                return Ok(Err(format!(
                    "the provider printed no `{ready}` within {READY_TIMEOUT:?}:\n{}",
                    provider.log_text()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:<port>`, the issuer; discovery is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What the provider wrote to stderr so far: one line per request,
    /// and each login accepted or refused.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The discovery document.
    pub fn discovery(&self) -> Result<Value, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let (status, body) = http_get(&url)?;
        if status != 200 {
            return Err(format!("GET {url}: HTTP {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {url}: {e}: {body}"))
    }

    /// Signs `user` in over plain HTTP, as a browser would without
    /// JavaScript: from `authorize_url` (the provider's authorization
    /// endpoint with the relying party's query) it follows the provider's
    /// redirects with a fresh cookie jar, posts `user` and `password` to
    /// the login form, follows on, and returns the first redirect that
    /// leaves the provider, without following it: the relying party's
    /// `redirect_uri` with `code`, `state` and `iss` (or with `error` when
    /// the provider refused the request). A refused password is
    /// `Err("login refused: HTTP 401 ...")`. At most 20 redirects.
    ///
    /// It runs on a thread of its own, so it may be called from inside an
    /// async test too.
    pub fn sign_in_http(&self, authorize_url: &str, user: &str, password: &str) -> Result<String, String> {
        let issuer = Url::parse(&self.issuer).map_err(|e| e.to_string())?;
        let start = Url::parse(authorize_url).map_err(|e| format!("authorize URL {authorize_url}: {e}"))?;
        let (user, password) = (user.to_owned(), password.to_owned());
        on_own_runtime(async move {
            let http = client()?;
            sign_in(&http, &issuer, start, &user, &password).await
        })
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url`: the status and the body.
pub fn http_get(url: &str) -> Result<(u16, String), String> {
    let url = url.to_owned();
    on_own_runtime(async move {
        let r = client()?
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.unwrap_or_default()))
    })
}

/// `POST url` with the form `fields`, authenticated with HTTP Basic as
/// `basic` (client id and secret) when given: the status and the body.
/// For a token request in a test that plays the relying party itself.
pub fn http_post_form(
    url: &str,
    basic: Option<(&str, &str)>,
    fields: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let url = url.to_owned();
    let body = form_encode(fields);
    let basic = basic.map(|(id, secret)| (id.to_owned(), secret.to_owned()));
    on_own_runtime(async move {
        let mut request = client()?
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            // RFC 6749 2.3.1: form-encode the id and secret before Basic.
            request = request.basic_auth(form_component(&id), Some(form_component(&secret)));
        }
        let r = request.send().await.map_err(|e| format!("POST {url}: {e}"))?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.unwrap_or_default()))
    })
}

/// `fields` as `application/x-www-form-urlencoded`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").unwrap();
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in fields {
            pairs.append_pair(k, v);
        }
    }
    url.query().unwrap_or_default().to_owned()
}

/// One form-encoded value.
fn form_component(s: &str) -> String {
    form_encode(&[("v", s)]).trim_start_matches("v=").to_owned()
}

/// A client that follows no redirects and uses no proxy.
fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// Runs `fut` to completion on a current-thread runtime on a new thread,
/// so the caller may be async or not.
fn on_own_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(fut)
    })
    .join()
    .map_err(|_| "the HTTP thread panicked".to_owned())?
}

/// The redirect walk of [`OidcProvider::sign_in_http`].
async fn sign_in(
    http: &reqwest::Client,
    issuer: &Url,
    start: Url,
    user: &str,
    password: &str,
) -> Result<String, String> {
    if start.origin() != issuer.origin() {
        return Err(format!("{start} is not at the provider {issuer}"));
    }
    let mut jar = Jar::default();
    let mut url = start;
    let mut posted = false;
    let mut trail = Vec::new();
    for _ in 0..=MAX_REDIRECTS {
        if url.origin() != issuer.origin() {
            return Ok(url.to_string());
        }
        trail.push(format!("GET {url}"));
        let r = jar
            .attach(http.get(url.clone()), &url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        jar.store(&url, r.headers());
        let status = r.status().as_u16();
        if let Some(next) = location(&url, &r)? {
            url = next;
            continue;
        }
        let body = r.text().await.unwrap_or_default();
        let action = (status == 200 && body.contains("name=\"login\""))
            .then(|| form_action(&body))
            .flatten();
        let (Some(action), false) = (action, posted) else {
            return Err(format!(
                "GET {url}: HTTP {status}, neither a redirect nor the login form\n{body}\nafter: {trail:?}"
            ));
        };
        posted = true;
        let action = url.join(&action).map_err(|e| format!("form action {action}: {e}"))?;
        trail.push(format!("POST {action}"));
        let r = jar
            .attach(http.post(action.clone()), &action)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&[("login", user), ("password", password)]))
            .send()
            .await
            .map_err(|e| format!("POST {action}: {e}"))?;
        jar.store(&action, r.headers());
        let status = r.status().as_u16();
        match location(&action, &r)? {
            Some(next) => url = next,
            None if status == 401 => return Err(format!("login refused: HTTP 401 for {user:?}")),
            None => {
                let body = r.text().await.unwrap_or_default();
                return Err(format!("POST {action}: HTTP {status}\n{body}\nafter: {trail:?}"));
            }
        }
    }
    Err(format!("more than {MAX_REDIRECTS} redirects: {trail:?}"))
}

/// The absolute `Location` of a 3xx answer.
fn location(base: &Url, r: &reqwest::Response) -> Result<Option<Url>, String> {
    if !r.status().is_redirection() {
        return Ok(None);
    }
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("{base}: HTTP {} without a Location", r.status()))?;
    base.join(loc)
        .map(Some)
        .map_err(|e| format!("{base}: Location {loc}: {e}"))
}

/// The `action` of the first form in `html`, unescaped.
fn form_action(html: &str) -> Option<String> {
    let form = html.get(html.find("<form")?..)?;
    let rest = form.get(form.find("action=\"")? + "action=\"".len()..)?;
    let raw = rest.get(..rest.find('"')?)?;
    Some(raw.replace("&#47;", "/").replace("&amp;", "&"))
}

/// The provider's cookies: `(path, name)` to value, for one origin.
#[derive(Default)]
struct Jar {
    cookies: BTreeMap<(String, String), String>,
}

impl Jar {
    /// Takes the `Set-Cookie` headers of an answer to `url`.
    fn store(&mut self, url: &Url, headers: &reqwest::header::HeaderMap) {
        for header in headers.get_all("set-cookie") {
            let Ok(line) = header.to_str() else { continue };
            let mut parts = line.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let mut path = default_path(url);
            let mut expired = value.is_empty();
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.to_ascii_lowercase().as_str() {
                    "path" if v.starts_with('/') => path = v.to_owned(),
                    "max-age" => expired |= v.parse::<i64>().is_ok_and(|s| s <= 0),
                    "expires" => expired |= v.contains("1970"),
                    _ => {}
                }
            }
            let key = (path, name.to_owned());
            if expired {
                self.cookies.remove(&key);
            } else {
                self.cookies.insert(key, value.to_owned());
            }
        }
    }

    /// `request` to `url` with the cookies that go there, if any.
    fn attach(&self, request: reqwest::RequestBuilder, url: &Url) -> reqwest::RequestBuilder {
        let path = url.path();
        let cookies = self
            .cookies
            .iter()
            .filter(|((p, _), _)| path_matches(path, p))
            .map(|((_, n), v)| format!("{n}={v}"))
            .collect::<Vec<_>>();
        if cookies.is_empty() {
            request
        } else {
            request.header("cookie", cookies.join("; "))
        }
    }
}

/// RFC 6265 5.1.4: whether `cookie_path` covers `request_path`.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path
        .strip_prefix(cookie_path)
        .is_some_and(|rest| rest.is_empty() || cookie_path.ends_with('/') || rest.starts_with('/'))
}

/// RFC 6265 5.1.4: the default path of a cookie set by `url`.
fn default_path(url: &Url) -> String {
    let path = url.path();
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path.get(..i).unwrap_or("/").to_owned(),
    }
}
