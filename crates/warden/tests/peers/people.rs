//! People in the sign-in tests: a [`Setup`] of the test identity provider
//! (`oidc.rs`) and a `warden serve` that signs people in through it
//! (`[[login]]` `corp`), a [`Browser`] played over plain HTTP (cookies
//! carried by hand, redirects read, not followed), the sign-in dance, and
//! the helpers around `warden login`. Shared by `tests/sign_in.rs` and
//! `tests/registry_cli.rs`.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;

use serde_json::json;
use warden_test_support::binary::{Server, Warden};
use warden_test_support::db::Backend;
use warden_test_support::services::{self, REQUIRE_INTEROP as REQUIRE_VAR};

use super::oidc::{self, OidcProvider};

/// The scopes of the public client `warden-cli` (docs/registry.md's
/// walk-through registers it with these).
pub const CLI_SCOPES: &str = "dataset.read dataset.create dataset.write dataset.classify model.read model.register model.promote model.approve model.rollback lineage.read";

/// Warden's client at the provider.
pub const CLIENT_ID: &str = "warden-dashboard";
/// Its secret (never to be found in Warden's logs).
pub const CLIENT_SECRET: &str = "a-provider-secret-never-logged-7f3a";

/// A browser: its cookies, by name.
#[derive(Default)]
pub struct Browser {
    pub cookies: Vec<(String, String)>,
    pub http: Option<reqwest::Client>,
}

/// One answer: status, `Location`, body.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Browser {
    pub fn client(&mut self) -> reqwest::Client {
        self.http
            .get_or_insert_with(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .unwrap()
            })
            .clone()
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let request = self.client().get(url);
        self.send(request).await
    }

    pub async fn post(&mut self, url: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self
            .client()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(oidc::form_encode(fields));
        self.send(request).await
    }

    pub async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Answer {
        let header: String = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !header.is_empty() {
            request = request.header("cookie", header);
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !set.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        Answer {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            body: response.text().await.unwrap(),
        }
    }
}

pub struct Setup {
    pub _logs: tempfile::TempDir,
    pub idp: OidcProvider,
    pub warden: Warden,
    pub server: Server,
}

impl Setup {
    pub fn base(&self) -> String {
        self.server.base()
    }
}

/// The provider with Warden's client, and Warden with the provider as
/// `[[login]]` `corp` (groups → roles, example.com only), or `None` when
/// node is missing here.
pub fn setup(backend: Backend) -> Option<Setup> {
    let logs = tempfile::Builder::new().prefix("warden-sign-in-").tempdir().unwrap();
    if let Err(why) = oidc::install(logs.path()) {
        services::unavailable(REQUIRE_VAR, "test OpenID Connect identity provider", &why);
        return None;
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", warden_test_support::net::free_port())
        .parse()
        .unwrap();
    let idp = OidcProvider::start(
        logs.path(),
        &json!([{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [format!("http://{addr}/ui/login/corp/callback")],
        }]),
    )
    .unwrap_or_else(|e| panic!("starting the provider: {e}"));
    let mut warden = Warden::new(env!("CARGO_BIN_EXE_warden"), backend);
    let secret = warden.path("corp-secret");
    std::fs::write(&secret, CLIENT_SECRET).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    warden.write_config(&format!(
        r#"
[[login]]
name = "corp"
display_name = "Example Corp"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "{secret}"
scopes = ["openid", "email", "profile", "groups"]
groups_claim = "groups"
roles = {{ "ml-engineers" = "ml-engineer", "auditors" = "auditor", "ml-leads" = "approver", "data-science" = "data-scientist" }}
allowed_domains = ["example.com"]
"#,
        issuer = idp.issuer(),
        secret = secret.display(),
    ));
    let server = warden.launch(&["serve"]).on(addr).start();
    Some(Setup {
        _logs: logs,
        idp,
        warden,
        server,
    })
}

/// Opens `page` without a session and follows Warden's redirects to the
/// provider; returns the provider's authorization URL.
pub async fn to_provider(s: &Setup, browser: &mut Browser, page: &str) -> String {
    let base = s.base();
    let first = browser.get(&format!("{base}{page}")).await;
    assert_eq!(first.status, 303, "{page} without a session: {}", first.body);
    let login = first.location.unwrap();
    assert!(login.starts_with("/ui/login?return_to="), "{login}");
    // One provider: the sign-in page sends the browser straight on.
    let second = browser.get(&format!("{base}{login}")).await;
    assert_eq!(second.status, 303, "{login}: {}", second.body);
    let start = second.location.unwrap();
    assert!(start.starts_with("/ui/login/corp?return_to="), "{start}");
    let third = browser.get(&format!("{base}{start}")).await;
    assert_eq!(third.status, 303, "{start}: {}", third.body);
    assert!(
        browser.cookie("warden_signin").is_some(),
        "the sign-in in progress rides in a cookie"
    );
    let to = third.location.unwrap();
    assert!(to.starts_with(s.idp.issuer()), "{to}");
    assert!(
        to.contains("code_challenge_method=S256") && to.contains("nonce="),
        "{to}"
    );
    to
}

/// Signs `user` in through the provider; returns the callback URL.
pub fn at_provider(s: &Setup, authorize: &str, user: &str) -> String {
    let back = s
        .idp
        .sign_in_http(authorize, user, &format!("password-{user}"))
        .unwrap_or_else(|e| panic!("signing {user} in at the provider: {e}\n{}", s.idp.log_text()));
    assert!(back.contains("/ui/login/corp/callback?"), "{back}");
    back
}

/// Registers the public client `warden-cli` (device code, authorization
/// code to 127.0.0.1 on any port, refresh).
pub fn register_cli(s: &Setup) {
    s.warden.ok(&[
        "client",
        "create",
        "--name",
        "warden-cli",
        "--kind",
        "public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--scope",
        CLI_SCOPES,
    ]);
}

/// Signs `user` in to the dashboard by asking for `page`; returns once
/// the session is open.
pub async fn sign_in_for(s: &Setup, browser: &mut Browser, page: &str, user: &str) {
    let authorize = to_provider(s, browser, page).await;
    let back = browser.get(&at_provider(s, &authorize, user)).await;
    assert_eq!(back.status, 200, "{user} signs in: {}", back.body);
}

/// The value of the hidden input `name` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    unescape(&html[start..end])
}

/// Undoes HTML escaping (named and numeric character references).
pub fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&warden_jose::base64url::decode(payload).unwrap()).unwrap()
}

/// Reads `child`'s stderr (in a thread) until a line contains `needle`;
/// returns that line, and everything read so far on failure.
pub fn stderr_line(child: &mut std::process::Child, needle: &str) -> String {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end, so the command never writes to a closed pipe.
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no line with {needle} on stderr: {seen:#?}")
}

/// Waits (bounded) for `child` to exit; its status.
pub fn wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "the command did not finish");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `warden login` (the configured issuer: this server) as `user`, keeping the sign-in in
/// `credentials`: the command shows its device code, `user` signs in at
/// the provider in a browser of their own and approves it, the command
/// finishes. Panics when any step fails.
pub fn login_as(s: &Setup, user: &str, credentials: &std::path::Path) {
    let base = s.base();
    let mut login = s
        .warden
        .command(&["login"])
        .env("WARDEN_CREDENTIALS", credentials)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = stderr_line(&mut login, "/ui/device?user_code=");
    let url = line
        .split_whitespace()
        .find(|w| w.contains("/ui/device?"))
        .unwrap()
        .to_owned();
    let user_code = query_param(&url, "user_code").unwrap();
    let page = url.strip_prefix(&base).unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut browser = Browser::default();
        sign_in_for(s, &mut browser, &page, user).await;
        let ask = browser.get(&format!("{base}{page}")).await;
        assert_eq!(ask.status, 200, "{}", ask.body);
        let done = browser
            .post(
                &format!("{base}/ui/device"),
                &[
                    ("csrf", &hidden(&ask.body, "csrf")),
                    ("user_code", &user_code),
                    ("decision", "allow"),
                ],
            )
            .await;
        assert_eq!(done.status, 200, "{user} approves: {}", done.body);
    });
    let status = wait(&mut login);
    assert!(status.success(), "warden login as {user} failed: {status}");
}

/// Where a page that moves on by itself (Warden's answer to a consent)
/// leads: its `#continue` link.
pub fn moved_to(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let marker = "id=\"continue\" href=\"";
    let start = answer
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no continue link in {}", answer.body))
        + marker.len();
    let end = answer.body[start..].find('"').unwrap() + start;
    unescape(&answer.body[start..end])
}
