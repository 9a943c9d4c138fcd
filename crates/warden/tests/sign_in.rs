//! People sign in to the dashboard through a real OpenID Connect provider
//! (`oidc-provider` from npm, `peers::oidc`), against the real `warden
//! serve` with a `[[login]]` provider: a page that needs a session sends
//! the browser to the provider; back at the callback Warden verifies the
//! ID token and opens a session whose roles come from the person's
//! groups; the sign-in is audited. Refused: a person of a domain not
//! allowed, an unverified email, a callback with a forged `state` or
//! without the browser's sign-in cookie, a replayed callback (the
//! provider's code is single use), an error from the provider.
//!
//! The browser's part is played over plain HTTP (cookies carried by
//! hand, redirects read, not followed); the dashboard's browser test
//! walks the same flow in Chromium.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;

use peers::oidc::{self, OidcProvider};
use serde_json::json;
use warden_test_support::binary::{Server, Warden};
use warden_test_support::db::Backend;
use warden_test_support::services::{self, REQUIRE_INTEROP as REQUIRE_VAR};

const CLIENT_ID: &str = "warden-dashboard";
const CLIENT_SECRET: &str = "a-provider-secret-never-logged-7f3a";

/// A browser: its cookies, by name.
#[derive(Default)]
struct Browser {
    cookies: Vec<(String, String)>,
    http: Option<reqwest::Client>,
}

/// One answer: status, `Location`, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn client(&mut self) -> reqwest::Client {
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

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    async fn get(&mut self, url: &str) -> Answer {
        let header: String = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut request = self.client().get(url);
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

struct Setup {
    _logs: tempfile::TempDir,
    idp: OidcProvider,
    warden: Warden,
    server: Server,
}

impl Setup {
    fn base(&self) -> String {
        self.server.base()
    }
}

/// The provider with Warden's client, and Warden with the provider as
/// `[[login]]` `corp` (groups → roles, example.com only), or `None` when
/// node is missing here.
fn setup(backend: Backend) -> Option<Setup> {
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
roles = {{ "ml-engineers" = "ml-engineer", "auditors" = "auditor" }}
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
async fn to_provider(s: &Setup, browser: &mut Browser, page: &str) -> String {
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
fn at_provider(s: &Setup, authorize: &str, user: &str) -> String {
    let back = s
        .idp
        .sign_in_http(authorize, user, &format!("password-{user}"))
        .unwrap_or_else(|e| panic!("signing {user} in at the provider: {e}\n{}", s.idp.log_text()));
    assert!(back.contains("/ui/login/corp/callback?"), "{back}");
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_to_the_dashboard_through_their_identity_provider() {
    let Some(s) = setup(Backend::Sqlite) else { return };
    let base = s.base();

    // Bob, an auditor at the provider, asks for the audit log.
    let mut bob = Browser::default();
    let authorize = to_provider(&s, &mut bob, "/ui/audit").await;
    let callback = at_provider(&s, &authorize, "bob");
    let back = bob.get(&callback).await;
    assert_eq!(back.status, 200, "callback: {}\n{}", back.body, s.server.log_text());
    assert!(
        back.body.contains("url=/ui/audit"),
        "moves on to the page asked for: {}",
        back.body
    );
    assert!(bob.cookie("warden_session").is_some(), "a session cookie");
    assert!(bob.cookie("warden_signin").is_none(), "the sign-in cookie is spent");
    let page = bob.get(&format!("{base}/ui/audit")).await;
    assert_eq!(page.status, 200, "the audit log for an auditor: {}", page.body);
    assert!(page.body.contains("user:bob@example.com"), "signed in as bob");
    let sessions = bob.get(&format!("{base}/ui/sessions")).await;
    assert_eq!(sessions.status, 200);
    assert!(
        sessions.body.contains("user:bob@example.com"),
        "listed on the Sessions page"
    );

    // Replaying the callback: the provider's code is spent and the
    // browser's sign-in cookie gone.
    let replay = bob.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);

    // Alice, an ML engineer: a session without the auditor's pages.
    let mut alice = Browser::default();
    let authorize = to_provider(&s, &mut alice, "/ui/models").await;
    let back = alice.get(&at_provider(&s, &authorize, "alice")).await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(alice.get(&format!("{base}/ui/models")).await.status, 200);
    let audit = alice.get(&format!("{base}/ui/audit")).await;
    assert_eq!(audit.status, 403, "an ML engineer cannot read the audit log");

    // Carol's domain is not allowed; Dave's email is not verified.
    for (user, why) in [("carol", "other.example"), ("dave", "email_verified")] {
        let mut browser = Browser::default();
        let authorize = to_provider(&s, &mut browser, "/ui/audit").await;
        let back = browser.get(&at_provider(&s, &authorize, user)).await;
        assert_eq!(back.status, 403, "{user}: {}", back.body);
        assert!(back.body.contains(why), "{user}: the page says why: {}", back.body);
        assert!(browser.cookie("warden_session").is_none(), "{user} has no session");
    }

    // A callback with a forged state, and one from a browser that never
    // started a sign-in: refused before the provider is asked anything.
    let mut eve = Browser::default();
    let authorize = to_provider(&s, &mut eve, "/ui/audit").await;
    let callback = at_provider(&s, &authorize, "alice");
    let forged = callback.replace("state=", "state=x");
    assert_eq!(eve.get(&forged).await.status, 400);
    let mut stranger = Browser::default();
    assert_eq!(stranger.get(&callback).await.status, 400);
    // The provider says no (the person cancelled): refused, audited
    // without a name.
    let mut quitter = Browser::default();
    let authorize = to_provider(&s, &mut quitter, "/ui/audit").await;
    let state = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let cancelled = quitter
        .get(&format!(
            "{base}/ui/login/corp/callback?error=access_denied&error_description=cancelled&state={state}"
        ))
        .await;
    assert_eq!(cancelled.status, 401, "{}", cancelled.body);
    assert!(cancelled.body.contains("access_denied"), "{}", cancelled.body);

    // The audit log: each sign-in and each refusal that names a person.
    let events = s.warden.audit_events("sign_in");
    let of = |subject: &str, decision: &str| {
        events
            .iter()
            .filter(|e| e["subject"] == subject && e["decision"] == decision && e["method"] == "oidc:corp")
            .count()
    };
    assert_eq!(of("user:bob@example.com", "allow"), 1, "{events:#?}");
    assert_eq!(of("user:alice@example.com", "allow"), 1, "{events:#?}");
    assert_eq!(of("user:carol@other.example", "deny"), 1, "{events:#?}");
    assert_eq!(of("user:dave@example.com", "deny"), 1, "{events:#?}");
    assert_eq!(of("", "deny"), 1, "the cancelled sign-in: {events:#?}");
    let bob_signed_in = events.iter().find(|e| e["subject"] == "user:bob@example.com").unwrap();
    assert_eq!(bob_signed_in["roles"], json!(["auditor"]), "{bob_signed_in}");
    let issued = s.warden.audit_events("token_issued");
    assert!(
        issued
            .iter()
            .any(|e| e["grant"] == "sign_in" && e["subject"] == "user:bob@example.com"),
        "{issued:#?}"
    );

    // The provider's secret is nowhere in Warden's log or audit log.
    assert!(!s.server.log_text().contains(CLIENT_SECRET));
    assert!(!format!("{events:?}").contains(CLIENT_SECRET));
}

#[test]
fn a_world_readable_provider_secret_is_refused_at_start() {
    let mut warden = Warden::new(env!("CARGO_BIN_EXE_warden"), Backend::Sqlite);
    let secret = warden.path("secret");
    std::fs::write(&secret, "s").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    warden.write_config(&format!(
        "[[login]]\nname = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"w\"\nclient_secret_file = \"{}\"\n",
        secret.display()
    ));
    let out = warden.run(&["config", "check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("readable by others") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    // An issuer that only looks like loopback.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    warden.write_config(&format!(
        "[[login]]\nname = \"corp\"\nissuer = \"http://127.0.0.1.evil.example\"\nclient_id = \"w\"\nclient_secret_file = \"{}\"\n",
        secret.display()
    ));
    let out = warden.run(&["config", "check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("https://"), "{stderr}");
}
