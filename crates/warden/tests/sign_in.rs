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

use std::os::unix::fs::PermissionsExt as _;

use peers::oidc;
use peers::people::*;
use serde_json::json;
use warden_test_support::binary::Warden;
use warden_test_support::db::Backend;
use warden_test_support::services;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_login_with_a_device_code_then_the_registry_commands_use_it() {
    let Some(mut s) = setup(Backend::Sqlite) else { return };
    let base = s.base();
    register_cli(&s);
    let creds = s.warden.path("home/credentials");
    s.warden.set_env("WARDEN_CREDENTIALS", creds.display().to_string());

    // `warden login` shows where to approve, then waits.
    let mut login = s
        .warden
        .command(&["login", "--server", &base])
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
    let page = url.strip_prefix(&base).unwrap();

    // Alice opens it: signs in at the provider, sees what is asked, approves.
    let mut alice = Browser::default();
    sign_in_for(&s, &mut alice, page, "alice").await;
    let ask = alice.get(&format!("{base}{page}")).await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(
        ask.body.contains("warden-cli") && ask.body.contains(&user_code),
        "{}",
        ask.body
    );
    let csrf = hidden(&ask.body, "csrf");
    let done = alice
        .post(
            &format!("{base}/ui/device"),
            &[("csrf", &csrf), ("user_code", &user_code), ("decision", "allow")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Approved"), "{}", done.body);
    // Answered once.
    let again = alice
        .post(
            &format!("{base}/ui/device"),
            &[("csrf", &csrf), ("user_code", &user_code), ("decision", "deny")],
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.body);

    let status = wait(&mut login);
    assert!(status.success(), "warden login failed: {status}");
    #[cfg(unix)]
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600,
        "the credentials are private"
    );
    let saved = std::fs::read_to_string(&creds).unwrap();
    assert!(saved.contains("wrt_"), "the refresh token is kept");

    // Scripts get fresh tokens; they carry Alice's roles from her groups.
    let token = s.warden.ok(&["token", "print", "--server", &base]);
    let c = claims(token.trim());
    assert_eq!(c["sub"], "user:alice@example.com", "{c}");
    assert_eq!(c["roles"], json!(["ml-engineer"]), "{c}");
    assert_eq!(c["client_id"], "warden-cli", "{c}");
    assert!(
        !s.warden
            .ok(&["token", "print", "--server", &base, "--scope", "model.read"])
            .trim()
            .is_empty()
    );

    // The registry commands use the sign-in: no token given.
    let listed = s.warden.run(&["dataset", "list", "--server", &base]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));

    // Signing out revokes and forgets.
    s.warden.ok(&["logout", "--server", &base]);
    let after = s.warden.run(&["token", "print", "--server", &base]);
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("warden login"));
    let revoked = s.warden.audit_events("token_revoked");
    assert!(
        revoked
            .iter()
            .any(|e| e["client_id"] == "warden-cli" && e["reason"] == "client_request"),
        "{revoked:#?}"
    );
    let decisions = s.warden.audit_events("grant_decision");
    assert!(
        decisions.iter().any(|e| e["subject"] == "user:alice@example.com"
            && e["flow"] == "device_code"
            && e["decision"] == "allow"),
        "{decisions:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_refuses_fast_polling_and_unknown_codes() {
    let Some(s) = setup(Backend::Sqlite) else { return };
    let base = s.base();
    register_cli(&s);
    let (status, body) = oidc::http_post_form(
        &format!("{base}/oauth/device_authorization"),
        None,
        &[("client_id", "warden-cli")],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let device_code = v["device_code"].as_str().unwrap();
    assert_eq!(v["interval"], 5);
    let poll = |code: &str| {
        oidc::http_post_form(
            &format!("{base}/oauth/token"),
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", code),
                ("client_id", "warden-cli"),
            ],
        )
        .unwrap()
    };
    let (status, body) = poll(device_code);
    assert_eq!(status, 400);
    assert!(body.contains("authorization_pending"), "{body}");
    let (status, body) = poll(device_code);
    assert_eq!(status, 400);
    assert!(body.contains("slow_down"), "{body}");
    let (status, body) = poll("wdc_not-a-code");
    assert_eq!(status, 400);
    assert!(body.contains("invalid_grant"), "{body}");
    // An unknown client, and a client that is not a public one.
    let (status, body) = oidc::http_post_form(
        &format!("{base}/oauth/device_authorization"),
        None,
        &[("client_id", "nobody")],
    )
    .unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_client"), "{body}");
    // A break-glass session (a login link) cannot approve an app.
    let link = s
        .warden
        .ok(&["ui", "link", "--sub", "user:alice@example.com", "--role", "ml-engineer"]);
    let token = link.trim().split("#token=").nth(1).unwrap().to_owned();
    let mut glass = Browser::default();
    let form = glass.get(&format!("{base}/ui/login")).await;
    let signed = glass
        .post(
            &format!("{base}/ui/login"),
            &[("csrf", &hidden(&form.body, "csrf")), ("token", &token)],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let refused = glass.get(&format!("{base}/ui/device")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("identity provider"), "{}", refused.body);

    // Metadata advertises the flows.
    let (_, meta) = oidc::http_get(&format!("{base}/.well-known/oauth-authorization-server")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{base}/oauth/device_authorization")
    );
    assert_eq!(meta["authorization_endpoint"], format!("{base}/oauth/authorize"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_code_flow_with_pkce_and_its_refusals() {
    let Some(s) = setup(Backend::Sqlite) else { return };
    let base = s.base();
    register_cli(&s);
    let redirect = "http://127.0.0.1:45999/callback";
    let verifier = "a-verifier-of-enough-length-0123456789-abcdefghijkl";
    let challenge = warden_server::oauth::pkce::s256(verifier);
    let authorize = |extra: &[(&str, &str)], skip: &[&str]| {
        let mut fields: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", "warden-cli"),
            ("redirect_uri", redirect),
            ("state", "st-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("scope", "model.read dataset.read"),
        ];
        fields.retain(|(k, _)| !skip.contains(k));
        for (k, v) in extra {
            fields.retain(|(f, _)| f != k);
            fields.push((k, v));
        }
        format!("{base}/oauth/authorize?{}", oidc::form_encode(&fields))
    };

    // Bob signs in to the dashboard, then follows the client's request.
    let mut bob = Browser::default();
    sign_in_for(&s, &mut bob, "/ui/audit", "bob").await;
    let to_ui = bob.get(&authorize(&[], &[])).await;
    assert_eq!(to_ui.status, 303);
    let consent_url = to_ui.location.unwrap();
    let consent = bob.get(&consent_url).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("model.read dataset.read"), "{}", consent.body);
    let answer = |decision: &'static str, page: &str| (hidden(page, "csrf"), hidden(page, "request"), decision);
    let (csrf, request, decision) = answer("allow", &consent.body);
    let back = bob
        .post(
            &format!("{base}/ui/authorize"),
            &[("csrf", &csrf), ("request", &request), ("decision", decision)],
        )
        .await;
    // A page that moves on by itself (the dashboard's CSP keeps form
    // posts from redirecting to another origin).
    let to = moved_to(&back);
    assert!(to.starts_with(redirect), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("st-1"));
    assert_eq!(query_param(&to, "iss").as_deref(), Some(base.as_str()), "RFC 9207");
    let code = query_param(&to, "code").unwrap();

    let token = |code: &str, verifier: &str, redirect: &str| {
        oidc::http_post_form(
            &format!("{base}/oauth/token"),
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
                ("client_id", "warden-cli"),
            ],
        )
        .unwrap()
    };
    let (status, body) = token(&code, verifier, redirect);
    assert_eq!(status, 200, "{body}");
    let tokens: serde_json::Value = serde_json::from_str(&body).unwrap();
    let c = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "user:bob@example.com");
    assert_eq!(c["roles"], json!(["auditor"]));
    assert_eq!(c["scope"], "model.read dataset.read");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // The code again: refused, and what it gave is revoked.
    let (status, body) = token(&code, verifier, redirect);
    assert_eq!(status, 400);
    assert!(body.contains("invalid_grant"), "{body}");
    let (status, body) = oidc::http_post_form(
        &format!("{base}/oauth/token"),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "warden-cli"),
        ],
    )
    .unwrap();
    assert_eq!(status, 400, "the family of a replayed code is revoked: {body}");

    // A code with the wrong verifier or redirect URI is spent for nothing.
    for (verifier_used, redirect_used) in [
        ("the-wrong-verifier-of-enough-length-0123456789-abcdef", redirect),
        (verifier, "http://127.0.0.1:45999/other"),
    ] {
        let consent = bob.get(&consent_url).await;
        let (csrf, request, decision) = answer("allow", &consent.body);
        let back = bob
            .post(
                &format!("{base}/ui/authorize"),
                &[("csrf", &csrf), ("request", &request), ("decision", decision)],
            )
            .await;
        let code = query_param(&moved_to(&back), "code").unwrap();
        let (status, body) = token(&code, verifier_used, redirect_used);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("invalid_grant"), "{body}");
    }

    // Refusing: the client hears access_denied.
    let consent = bob.get(&consent_url).await;
    let (csrf, request, _) = answer("deny", &consent.body);
    let back = bob
        .post(
            &format!("{base}/ui/authorize"),
            &[("csrf", &csrf), ("request", &request), ("decision", "deny")],
        )
        .await;
    assert_eq!(query_param(&moved_to(&back), "error").as_deref(), Some("access_denied"));

    // Malformed requests: to the client when its redirect URI is good,
    // shown to the person when it is not.
    for (extra, skip, error) in [
        (vec![("code_challenge_method", "plain")], vec![], "invalid_request"),
        (vec![], vec!["code_challenge"], "invalid_request"),
        (vec![], vec!["state"], "invalid_request"),
        (vec![("response_type", "token")], vec![], "unsupported_response_type"),
        (vec![("scope", "warden.admin")], vec![], "invalid_scope"),
        (
            vec![("resource", "https://elsewhere.example")],
            vec![],
            "invalid_target",
        ),
    ] {
        let hop = bob.get(&authorize(&extra, &skip)).await.location.unwrap();
        let answer = bob.get(&hop).await;
        assert_eq!(answer.status, 303, "{extra:?} {skip:?}: {}", answer.body);
        let to = answer.location.unwrap();
        assert!(to.starts_with(redirect), "{to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some(error),
            "{extra:?} {skip:?}: {to}"
        );
    }
    for (extra, skip) in [
        (vec![("redirect_uri", "https://evil.example/callback")], vec![]),
        (vec![("client_id", "nobody")], vec![]),
        (vec![], vec!["redirect_uri"]),
    ] {
        let hop = bob.get(&authorize(&extra, &skip)).await.location.unwrap();
        let answer = bob.get(&hop).await;
        assert_eq!(
            answer.status, 400,
            "{extra:?} {skip:?}: never sent on: {:?}",
            answer.location
        );
        assert!(answer.location.is_none());
    }

    // A sign-in Bob approved is listed on his Sessions page, and ending it
    // there revokes its refresh token.
    let consent = bob.get(&consent_url).await;
    let (csrf, request, decision) = answer("allow", &consent.body);
    let back = bob
        .post(
            &format!("{base}/ui/authorize"),
            &[("csrf", &csrf), ("request", &request), ("decision", decision)],
        )
        .await;
    let code = query_param(&moved_to(&back), "code").unwrap();
    let (status, body) = token(&code, verifier, redirect);
    assert_eq!(status, 200, "{body}");
    let tokens: serde_json::Value = serde_json::from_str(&body).unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let sessions = bob.get(&format!("{base}/ui/sessions")).await;
    assert_eq!(sessions.status, 200);
    let mine = &sessions.body[sessions.body.find("id=\"my-sign-ins\"").unwrap()..];
    assert!(mine.contains("warden-cli"), "{}", sessions.body);
    let id = hidden(mine, "id");
    let ended = bob
        .post(
            &format!("{base}/ui/sessions/end-sign-in"),
            &[("csrf", &hidden(&sessions.body, "csrf")), ("id", &id)],
        )
        .await;
    assert_eq!(ended.status, 303, "{}", ended.body);
    let (status, body) = oidc::http_post_form(
        &format!("{base}/oauth/token"),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "warden-cli"),
        ],
    )
    .unwrap();
    assert_eq!(status, 400, "an ended sign-in cannot refresh: {body}");
    let again = bob
        .post(
            &format!("{base}/ui/sessions/end-sign-in"),
            &[("csrf", &hidden(&sessions.body, "csrf")), ("id", &id)],
        )
        .await;
    assert_eq!(again.status, 404, "ended once");

    // Without a session, the person signs in first and comes back to the
    // question.
    let mut carol_less = Browser::default();
    let hop = carol_less.get(&authorize(&[], &[])).await.location.unwrap();
    let first = carol_less.get(&hop).await;
    assert_eq!(first.status, 303);
    assert!(
        first
            .location
            .unwrap()
            .starts_with("/ui/login?return_to=%2Fui%2Fauthorize")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_login_in_a_browser_on_this_machine() {
    let Some(mut s) = setup(Backend::Sqlite) else { return };
    let base = s.base();
    register_cli(&s);
    let creds = s.warden.path("credentials");
    s.warden.set_env("WARDEN_CREDENTIALS", creds.display().to_string());
    let mut login = s
        .warden
        .command(&["login", "--browser", "--server", &base, "--scope", "model.read"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = stderr_line(&mut login, "/oauth/authorize?");
    assert!(url.contains("code_challenge_method=S256") && url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"));
    let mut alice = Browser::default();
    sign_in_for(&s, &mut alice, "/ui/models", "alice").await;
    let hop = alice.get(url.trim()).await.location.unwrap();
    let consent = alice.get(&hop).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let back = alice
        .post(
            &format!("{base}/ui/authorize"),
            &[
                ("csrf", &hidden(&consent.body, "csrf")),
                ("request", &hidden(&consent.body, "request")),
                ("decision", "allow"),
            ],
        )
        .await;
    let loopback = moved_to(&back);
    assert!(loopback.starts_with("http://127.0.0.1:"), "{loopback}");
    // The browser follows the redirect to the command's listener.
    let landed = alice.get(&loopback).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert!(wait(&mut login).success());
    let c = claims(s.warden.ok(&["token", "print", "--server", &base]).trim());
    assert_eq!(c["sub"], "user:alice@example.com");
    assert_eq!(c["scope"], "model.read");

    // An administrator sees Alice's sessions and ends them all.
    let listed = s
        .warden
        .ok(&["session", "list", "--subject", "user:alice@example.com", "--json"]);
    let kinds: Vec<(String, String)> = listed
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["kind"].as_str().unwrap().to_owned(),
                v["client_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(kinds.contains(&("sign-in".into(), "warden-cli".into())), "{listed}");
    assert!(kinds.contains(&("dashboard".into(), "warden-sso".into())), "{listed}");
    let ended = s
        .warden
        .ok(&["session", "revoke", "--subject", "user:alice@example.com"]);
    assert!(ended.contains("ended 2 session(s)"), "{ended}");
    // (A token for another audience than the cached one needs the
    // refresh token, which is revoked.)
    let after = s.warden.run(&["token", "print", "--server", &base, "--aud", &base]);
    assert!(!after.status.success());
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("ended"),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    // Within a second every replica refuses her dashboard session too.
    let mut refused = false;
    for _ in 0..40 {
        if alice.get(&format!("{base}/ui/models")).await.status == 303 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "the dashboard session outlived its revocation");
    assert!(
        s.warden
            .ok(&["session", "list", "--subject", "user:alice@example.com", "--json"])
            .trim()
            .is_empty(),
        "nothing left open"
    );
    let nothing = s
        .warden
        .run(&["session", "revoke", "--subject", "user:alice@example.com"]);
    assert!(!nothing.status.success(), "nothing to end is an error");
}

/// In Chromium: Bob opens the audit log, signs in at the provider and
/// lands on it as himself; Alice approves `warden login`'s device code in
/// her browser, and the command gets her tokens.
#[test]
fn people_sign_in_in_a_real_browser() {
    let Some(mut s) = setup(Backend::Sqlite) else { return };
    let logs = s.warden.path("browser-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let modules = match peers::browser_tools(&logs) {
        Ok(m) => m,
        Err(why) => {
            services::unavailable(services::REQUIRE_BROWSER, "headless Chromium with Playwright", &why);
            return;
        }
    };
    let base = s.base();
    register_cli(&s);
    let creds = s.warden.path("credentials");
    s.warden.set_env("WARDEN_CREDENTIALS", creds.display().to_string());
    let mut login = s
        .warden
        .command(&["login", "--server", &base])
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

    // And `warden login --browser` for Bob, with a sign-in file of his own.
    let bob_creds = s.warden.path("bob-credentials");
    let mut bob_login = s
        .warden
        .command(&["login", "--browser", "--server", &base])
        .env("WARDEN_CREDENTIALS", &bob_creds)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let authorize_url = stderr_line(&mut bob_login, "/oauth/authorize?").trim().to_owned();

    let run_dir = s.warden.path("browser");
    std::fs::create_dir_all(&run_dir).unwrap();
    for file in ["sign_in.mjs", "package.json"] {
        std::fs::copy(peers::browser_dir().join(file), run_dir.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(&modules, run_dir.join("node_modules")).unwrap();
    let artifacts = peers::target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut cmd = std::process::Command::new("node");
    cmd.arg("sign_in.mjs")
        .current_dir(&run_dir)
        .env("CHROMIUM", peers::chromium())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("SIGNIN_BASE", &base)
        .env("SIGNIN_DEVICE_URL", &url)
        .env("SIGNIN_USER_CODE", &user_code)
        .env("SIGNIN_AUTHORIZE_URL", &authorize_url)
        .env("SIGNIN_ARTIFACTS", &artifacts);
    let out = peers::run_bounded(cmd, &logs, "sign-in", std::time::Duration::from_secs(150)).unwrap();
    assert!(
        out.success(),
        "the browser scenario failed:\n{}\n--- server log\n{}\n--- provider log\n{}",
        out.describe(),
        s.server.log_text(),
        s.idp.log_text()
    );
    assert!(wait(&mut login).success(), "warden login did not finish");
    assert!(wait(&mut bob_login).success(), "warden login --browser did not finish");
    let bob = s
        .warden
        .command(&["token", "print", "--server", &base])
        .env("WARDEN_CREDENTIALS", &bob_creds)
        .output()
        .unwrap();
    assert_eq!(
        claims(String::from_utf8_lossy(&bob.stdout).trim())["sub"],
        "user:bob@example.com"
    );
    let c = claims(s.warden.ok(&["token", "print", "--server", &base]).trim());
    assert_eq!(c["sub"], "user:alice@example.com");
    assert_eq!(c["roles"], json!(["ml-engineer"]));
    let signed_in: Vec<String> = s
        .warden
        .audit_events("sign_in")
        .iter()
        .filter(|e| e["decision"] == "allow")
        .map(|e| e["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(signed_in, ["user:bob@example.com", "user:alice@example.com"]);
}
