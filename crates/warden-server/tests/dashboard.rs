//! The compliance dashboard over real HTTP: sign-in rules, CSRF on every
//! state change, the authorization of every page and action by role, the
//! security headers, and the audit proof and whole-log verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use serde_json::{Value, json};
use support::browser::{Browser, Page};
use support::{Server, claims, start_pg, start_sqlite};
use warden_store::{AuditStore, Store};

const ML: &str = "user:mia";
const ML_SCOPES: &str =
    "dataset.create dataset.write dataset.read model.register model.promote model.read lineage.read";
/// Every read a dashboard session may need, plus voting.
const UI_SCOPES: &str =
    "audit.read dataset.read model.read lineage.read policy.read key.read client.read model.approve model.promote";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn token<S: Store>(s: &Server<S>, sub: &str, scope: &str, roles: &[&str]) -> String {
    s.user_token(sub, &[s.base.as_str()], scope, roles, 600, None)
}

/// Datasets, a model in staging with an open promotion request; its id.
async fn seed<S: Store>(s: &Server<S>) -> String {
    let ml = token(s, ML, ML_SCOPES, &["ml-engineer"]);
    let post = |path: &str, body: Value| {
        let ml = ml.clone();
        let path = path.to_owned();
        async move {
            let r = s.post_json(&path, Some(&ml), &body).await;
            assert!(r.status < 300, "{path}: {} {}", r.status, r.body);
            r.body
        }
    };
    post(
        "/api/v1/datasets",
        json!({"name": "transactions", "classification": "pii", "allowed_purposes": ["fraud-detection"]}),
    )
    .await;
    post(
        "/api/v1/datasets/transactions/versions",
        json!({"digest": digest(1), "size": 1, "uri": "s3://t/1"}),
    )
    .await;
    post(
        "/api/v1/datasets",
        json!({"name": "features", "classification": "internal"}),
    )
    .await;
    post(
        "/api/v1/datasets/features/versions",
        json!({"digest": digest(2), "size": 1, "uri": "s3://f/1", "parents": ["dataset:transactions@1"]}),
    )
    .await;
    post("/api/v1/models", json!({"name": "fraud"})).await;
    post(
        "/api/v1/models/fraud/versions",
        json!({"digest": digest(3), "uri": "s3://m/1", "trained_from": ["dataset:features@1"]}),
    )
    .await;
    post(
        "/api/v1/models/fraud/versions/1/stage",
        json!({"stage": "staging", "reason": "evaluated"}),
    )
    .await;
    let r = post(
        "/api/v1/models/fraud/versions/1/promotions",
        json!({"reason": "better recall"}),
    )
    .await;
    r["id"].as_str().unwrap().to_owned()
}

async fn ballots<S: Store>(s: &Server<S>, id: &str) -> usize {
    s.state.store.get_promotion(id).await.unwrap().unwrap().1.len()
}

/// The pages, and what each role sees: 200 or 403.
const PAGES: [&str; 8] = [
    "/ui/audit",
    "/ui/audit/events/0",
    "/ui/lineage",
    "/ui/lineage?node=dataset%3Afeatures%401&direction=both",
    "/ui/lineage/impact?node=dataset%3Atransactions%401",
    "/ui/models",
    "/ui/access?role=auditor",
    "/ui/keys",
];

async fn pages_and_actions<S: Store>(s: Server<S>) {
    let id = seed(&s).await;
    // Event 0 and the rest of the seed's events are in the log, not only
    // queued, whatever the sequencer's timing.
    s.integrate_audit().await;

    // No session: every page sends to the sign-in form, to come back.
    let mut anon = Browser::new(&s);
    for path in PAGES {
        let p = anon.get(path).await;
        let back: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", path)
            .finish();
        assert_eq!(
            (p.status, p.location()),
            (303, format!("/ui/login?{back}").as_str()),
            "{path}"
        );
    }

    // Role by role: (roles, expected status per page).
    let cases: [(&str, &[&str], [u16; 8]); 4] = [
        ("user:ada", &["auditor"], [200; 8]),
        ("user:carol", &["approver"], [403, 403, 200, 200, 200, 200, 403, 403]),
        (
            "user:dana",
            &["data-scientist"],
            [403, 403, 200, 200, 200, 200, 403, 403],
        ),
        ("user:root", &["admin"], [200; 8]),
    ];
    for (sub, roles, expected) in cases {
        let mut b = Browser::new(&s);
        let signed = b.sign_in(&token(&s, sub, UI_SCOPES, roles)).await;
        // Each lands on the first section it may open.
        let landing = if expected[0] == 200 { "/ui/audit" } else { "/ui/models" };
        assert_eq!(
            (signed.status, signed.location()),
            (303, landing),
            "{sub}: {}",
            signed.body
        );
        for (path, want) in PAGES.iter().zip(expected) {
            let p = b.get(path).await;
            assert_eq!(p.status, want, "{sub} {path}: {}", &p.body[..p.body.len().min(400)]);
            // Strict CSP on every page, and nothing it would block.
            let csp = p.headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
            assert_eq!(p.headers["cache-control"], "no-store");
            assert!(!p.body.contains(" style="), "{path}: inline style");
            assert!(!p.body.contains("<script>"), "{path}: inline script");
        }
    }

    // Verification is the audit log's too; other /ui paths are nobody's.
    let mut carol = Browser::new(&s);
    carol.sign_in(&token(&s, "user:carol", UI_SCOPES, &["approver"])).await;
    let csrf = carol.get("/ui/models").await.csrf();
    assert_eq!(carol.post("/ui/audit/verify", &[("csrf", &csrf)]).await.status, 403);
    assert_eq!(carol.get("/ui/audit/verify/nope").await.status, 403);
    assert_eq!(carol.get("/ui/models/fraud").await.status, 200);
    assert_eq!(carol.get("/ui/nothing/here").await.status, 404);
    assert_eq!(anon.get("/ui/nothing/here").await.status, 404);
    // Sign-ins are audited.
    s.integrate_audit().await;
    let sign_ins = s
        .state
        .store
        .events(&warden_store::EventQuery {
            limit: 1000,
            resource: Some("Dashboard::\"ui\"".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sign_ins.len() >= 5, "{} sign-ins audited", sign_ins.len());

    // Scopes bind too: an auditor whose token lacks audit.read.
    let mut b = Browser::new(&s);
    b.sign_in(&token(&s, "user:ada2", "model.read", &["auditor"])).await;
    assert_eq!(b.get("/ui/audit").await.status, 403);

    // An auditor reads everything and changes nothing: voting is refused
    // (and audited), whatever the form says.
    let mut auditor = Browser::new(&s);
    auditor.sign_in(&token(&s, "user:ada", UI_SCOPES, &["auditor"])).await;
    let models = auditor.get("/ui/models").await;
    assert!(models.body.contains("data-no-vote"), "no vote form for an auditor");
    assert!(!models.body.contains(&format!("/ui/promotions/{id}/approve")));
    let csrf = models.csrf();
    let before = ballots(&s, &id).await;
    let r = auditor
        .post(
            &format!("/ui/promotions/{id}/approve"),
            &[("csrf", &csrf), ("reason", "looks fine")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(ballots(&s, &id).await, before);
    s.integrate_audit().await;
    let denials = s
        .state
        .store
        .events(&warden_store::EventQuery {
            limit: 1000,
            kind: Some("access_decision".into()),
            subject: Some("user:ada".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        denials.iter().any(|e| {
            let v: Value = serde_json::from_slice(&e.content.as_ref().unwrap().0).unwrap();
            v["action"] == "model.approve" && v["decision"] == "deny"
        }),
        "the refused vote is audited"
    );

    // An approver approves with a reason.
    let mut carol = Browser::new(&s);
    carol.sign_in(&token(&s, "user:carol", UI_SCOPES, &["approver"])).await;
    let models = carol.get("/ui/models").await;
    assert!(models.body.contains(&format!("/ui/promotions/{id}/approve")));
    let csrf = models.csrf();
    let r = carol
        .post(
            &format!("/ui/promotions/{id}/approve"),
            &[("csrf", &csrf), ("reason", "metrics reviewed")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/ui/models?voted="), "{}", r.location());
    assert_eq!(ballots(&s, &id).await, before + 1);
    let after = carol.get(r.location()).await;
    assert!(after.body.contains("was recorded"), "{}", after.body);
    // The four-eyes rule still holds: the same approver again is refused.
    let r = carol
        .post(
            &format!("/ui/promotions/{id}/approve"),
            &[("csrf", &csrf), ("reason", "again")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(ballots(&s, &id).await, before + 1);
    // A vote needs a reason.
    let r = carol
        .post(
            &format!("/ui/promotions/{id}/approve"),
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(r.status, 400);

    // Revoking the session's token ends the session at once.
    let jti_token = token(&s, "user:eve", UI_SCOPES, &["auditor"]);
    let mut eve = Browser::new(&s);
    eve.sign_in(&jti_token).await;
    assert_eq!(eve.get("/ui/audit").await.status, 200);
    let payload = jti_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&warden_jose::base64url::decode(payload).unwrap()).unwrap();
    let jti = claims["jti"].as_str().unwrap().to_owned();
    s.state.revocations.insert(jti, warden_server::state::now() + 600);
    let p = eve.get("/ui/audit").await;
    assert_eq!((p.status, p.location()), (303, "/ui/login?return_to=%2Fui%2Faudit"));
}

#[tokio::test]
async fn every_page_and_action_is_authorized_sqlite() {
    pages_and_actions(start_sqlite(|_| {}).await).await;
}

#[tokio::test]
async fn every_page_and_action_is_authorized_postgres() {
    pages_and_actions(start_pg(|_| {}).await).await;
}

#[tokio::test]
async fn sign_in_takes_a_persons_own_token() {
    let s = start_sqlite(|_| {}).await;
    let mut b = Browser::new(&s);
    let cases = [
        ("not a token", 401, "cannot sign in"),
        (&*token(&s, "svc:batch", UI_SCOPES, &["admin"]), 403, "for people"),
        (
            &*s.user_token(
                "user:carol",
                &[s.base.as_str()],
                UI_SCOPES,
                &["admin"],
                600,
                Some(("act", json!({"sub": "agent:bot"}))),
            ),
            403,
            "delegated token",
        ),
        (
            &*s.user_token("user:carol", &["another-audience"], UI_SCOPES, &["admin"], 600, None),
            401,
            "cannot sign in",
        ),
    ];
    for (t, status, says) in cases {
        let p = b.sign_in(t).await;
        if status == 403 {
            s.integrate_audit().await;
            let refused = s
                .state
                .store
                .events(&warden_store::EventQuery {
                    limit: 100,
                    outcome: Some("deny".into()),
                    resource: Some("Dashboard::\"ui\"".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(!refused.is_empty(), "{says}: the refusal is audited");
        }
        assert_eq!(p.status, status, "{says}: {}", p.body);
        assert!(p.body.contains(says), "{says}: {}", p.body);
        assert!(!b.cookies.contains_key("warden_session"));
        assert!(!p.body.contains(t) || t == "not a token", "the token is never echoed");
    }
    // The session cookie lives as long as the token.
    let p = b.sign_in(&token(&s, "user:ada", UI_SCOPES, &["auditor"])).await;
    assert_eq!(p.status, 303);
    let set = p
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("warden_session="))
        .unwrap();
    let max_age: u64 = set
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&max_age), "{set}");
}

#[tokio::test]
async fn every_state_change_needs_a_valid_csrf_token_from_this_origin() {
    let s = start_sqlite(|_| {}).await;
    let id = seed(&s).await;
    let carol_token = token(&s, "user:carol", UI_SCOPES, &["approver"]);

    // Sign-in itself: no token, a forged one, another origin.
    let mut b = Browser::new(&s);
    let form = b.get("/ui/login").await;
    let login_csrf = form.csrf();
    for fields in [
        vec![("token", carol_token.as_str())],
        vec![("csrf", "AAAA"), ("token", carol_token.as_str())],
    ] {
        let p = b.post("/ui/login", &fields).await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(!b.cookies.contains_key("warden_session"));
    }
    b.origin = Some("http://evil.example".into());
    let p = b
        .post("/ui/login", &[("csrf", &login_csrf), ("token", &carol_token)])
        .await;
    assert_eq!(p.status, 403);
    assert!(!b.cookies.contains_key("warden_session"));
    b.origin = Some(s.base.clone());

    let mut carol = Browser::new(&s);
    carol.sign_in(&carol_token).await;
    let csrf = carol.get("/ui/models").await.csrf();
    // Another person's valid CSRF token does not fit this session.
    let mut dan = Browser::new(&s);
    dan.sign_in(&token(&s, "user:dan", UI_SCOPES, &["approver"])).await;
    let dans = dan.get("/ui/models").await.csrf();

    let approve = format!("/ui/promotions/{id}/approve");
    type Forged<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);
    let forged: [Forged<'_>; 4] = [
        ("no token", vec![("reason", "ok")], None),
        ("another session's", vec![("csrf", &dans), ("reason", "ok")], None),
        ("garbage", vec![("csrf", "x!"), ("reason", "ok")], None),
        (
            "cross-site origin",
            vec![("csrf", &csrf), ("reason", "ok")],
            Some("http://evil.example"),
        ),
    ];
    for (what, fields, origin) in forged {
        carol.origin = origin.map(str::to_owned).or(Some(s.base.clone()));
        let p = carol.post(&approve, &fields).await;
        assert_eq!(p.status, 403, "{what}: {}", p.body);
        assert_eq!(ballots(&s, &id).await, 0, "{what}: nothing recorded");
    }
    carol.origin = Some(s.base.clone());
    // The token binds the session too: carol's nonce and CSRF token with
    // dan's session cookie (a swapped session) do not fit.
    let mut swapped = Browser::new(&s);
    swapped.cookies = carol.cookies.clone();
    swapped
        .cookies
        .insert("warden_session".into(), dan.cookies["warden_session"].clone());
    let p = swapped.post(&approve, &[("csrf", &csrf), ("reason", "ok")]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert_eq!(ballots(&s, &id).await, 0);
    // Verification and sign-out are state changes too.
    let mut ada = Browser::new(&s);
    ada.sign_in(&token(&s, "user:ada", UI_SCOPES, &["auditor"])).await;
    assert_eq!(ada.post("/ui/audit/verify", &[]).await.status, 403);
    assert_eq!(carol.post("/ui/logout", &[]).await.status, 403);
    assert!(carol.cookies.contains_key("warden_session"));
    // With the right token, from this origin, each works.
    let p = carol.post(&approve, &[("csrf", &csrf), ("reason", "ok")]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(ballots(&s, &id).await, 1);
    let p = carol.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!((p.status, p.location()), (303, "/ui/login"));
    assert!(!carol.cookies.contains_key("warden_session"));
    assert_eq!(carol.get("/ui/models").await.status, 303);
}

#[tokio::test]
async fn an_event_proof_verifies_against_the_signed_checkpoint_and_the_whole_log_verifies() {
    let s = start_sqlite(|_| {}).await;
    seed(&s).await;
    let mut ada = Browser::new(&s);
    ada.sign_in(&token(&s, "user:ada", UI_SCOPES, &["auditor"])).await;
    // Checkpoints are signed every second in these tests.
    let mut verified = false;
    for _ in 0..50 {
        s.integrate_audit().await;
        let p = ada.get("/ui/audit/events/3").await;
        assert_eq!(p.status, 200);
        if p.body.contains("data-verdict=\"verified\"") {
            assert!(p.body.contains("warden.test/audit"), "the checkpoint note is shown");
            verified = true;
            break;
        }
        assert!(p.body.contains("data-verdict=\"pending\""), "{}", p.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(verified, "the proof verified within 5 s");
    assert_eq!(ada.get("/ui/audit/events/999999").await.status, 404);
    assert_eq!(ada.get("/ui/audit/events/x").await.status, 400);

    // Search: by type and decision, newest first.
    let ds = token(&s, "user:dana", "dataset.create", &["data-scientist"]);
    let r = s
        .post_json(
            "/api/v1/datasets",
            Some(&ds),
            &json!({"name": "x", "classification": "public"}),
        )
        .await;
    assert_eq!(r.status, 403);
    // The page lists the integrated log: integrate what the requests queued.
    s.integrate_audit().await;
    let p = ada.get("/ui/audit?type=access_decision&decision=allow").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("badge allow") && !p.body.contains("badge deny"));
    let p = ada.get("/ui/audit?decision=deny&subject=user%3Adana").await;
    assert!(
        p.body.contains("badge deny") && !p.body.contains("badge allow"),
        "{}",
        p.body
    );
    // By actor: an agent acting for a person.
    let delegated = s.user_token(
        "user:carol",
        &[s.base.as_str()],
        "model.read",
        &["approver"],
        600,
        Some(("act", json!({"sub": "agent:report-bot"}))),
    );
    assert_eq!(s.get("/api/v1/models", Some(&delegated)).await.status, 200);
    s.integrate_audit().await;
    let p = ada.get("/ui/audit?actor=agent%3Areport-bot").await;
    assert!(p.body.contains("1 event shown"), "{}", p.body);
    assert!(
        p.body.contains("<td class=\"hide-narrow\">agent:report-bot</td>"),
        "{}",
        p.body
    );
    let p = ada.get("/ui/audit").await;
    let first = |body: &str| -> u64 {
        let at = body.find("/ui/audit/events/").unwrap() + 17;
        body[at..].split('"').next().unwrap().parse().unwrap()
    };
    let newest = first(&p.body);
    assert!(newest > 10, "newest first: {newest}");
    let older = ada.get(&format!("/ui/audit?before={newest}")).await;
    assert_eq!(first(&older.body), newest - 1, "the next page starts below");
    assert_eq!(ada.get("/ui/audit?decision=maybe").await.status, 400);
    assert_eq!(ada.get("/ui/audit?since=yesterday").await.status, 400);

    // The whole log, with progress, to a verdict.
    let csrf = ada.get("/ui/audit").await.csrf();
    let p = ada.post("/ui/audit/verify", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let job = p
        .body
        .split("/ui/audit/verify/")
        .nth(1)
        .map(|r| r.split('"').next().unwrap().to_owned());
    let mut body = p.body.clone();
    if let Some(job) = job {
        for _ in 0..100 {
            if body.contains("data-verdict") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            body = ada.get(&format!("/ui/audit/verify/{job}")).await.body;
        }
    }
    assert!(body.contains("data-verdict=\"ok\""), "{body}");
    assert!(body.contains("The audit log verifies"), "{body}");
}

/// A login link's token (audience the issuer's `/ui`) opens the dashboard
/// and nothing else; signing out revokes the session's token, so the
/// replayed cookie and the token itself are refused everywhere; an
/// administrator revokes any token through the admin API.
#[tokio::test]
async fn sessions_are_the_dashboards_alone_and_end_when_signed_out() {
    let s = start_sqlite(|_| {}).await;
    let ui = format!("{}/ui", s.base);
    let link = s.user_token("user:ada", &[ui.as_str()], UI_SCOPES, &["auditor"], 600, None);
    // Not a bearer token of any API.
    for path in ["/api/v1/audit/events", "/api/v1/datasets"] {
        assert_eq!(s.get(path, Some(&link)).await.status, 401, "{path}");
    }
    let mut b = Browser::new(&s);
    assert_eq!(b.sign_in(&link).await.status, 303);
    let cookie = b.cookies.get("warden_session").cloned().unwrap();
    assert_eq!(b.get("/ui/audit").await.status, 200);
    // Sign out: the session's token is revoked.
    let page = b.get("/ui/audit").await;
    let out = b.post("/ui/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let mut replay = Browser::new(&s);
    replay.cookies.insert("warden_session".into(), cookie);
    let p = replay.get("/ui/audit").await;
    assert_eq!(p.status, 303, "a replayed cookie is refused after sign-out");
    assert!(p.location().starts_with("/ui/login"), "{}", p.location());
    s.integrate_audit().await;
    let revoked = s
        .state
        .store
        .events(&warden_store::EventQuery {
            limit: 10,
            kind: Some("token_revoked".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        revoked.iter().any(|e| e
            .content
            .as_ref()
            .is_some_and(|(body, _)| { String::from_utf8_lossy(body).contains("\"reason\":\"logout\"") })),
        "the sign-out is audited"
    );

    // An administrator revokes another person's session and a service's
    // token; a non-administrator may not.
    let other = s.user_token("user:bo", &[ui.as_str()], UI_SCOPES, &["auditor"], 600, None);
    let mut bo = Browser::new(&s);
    assert_eq!(bo.sign_in(&other).await.status, 303);
    let admin = token(&s, "user:root", "", &["admin"]);
    let auditor = token(&s, "user:aud", "audit.read", &["auditor"]);
    let by_token = json!({"token": other});
    assert_eq!(
        s.post_json("/api/v1/admin/revocations", Some(&auditor), &by_token)
            .await
            .status,
        403
    );
    let r = s.post_json("/api/v1/admin/revocations", Some(&admin), &by_token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(bo.get("/ui/audit").await.status, 303, "the revoked session is over");
    let api = token(&s, "user:cy", "audit.read", &["auditor"]);
    assert_eq!(s.get("/api/v1/audit/events", Some(&api)).await.status, 200);
    let jti = claims(&api)["jti"].as_str().unwrap().to_owned();
    let r = s
        .post_json("/api/v1/admin/revocations", Some(&admin), &json!({"jti": jti}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get("/api/v1/audit/events", Some(&api)).await.status, 401);
    for bad in [
        json!({}),
        json!({"jti": ""}),
        json!({"token": "x", "jti": "y"}),
        json!({"tokn": "x"}),
    ] {
        let r = s.post_json("/api/v1/admin/revocations", Some(&admin), &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    s.stop().await;
}

/// The `jti`s listed in a table of the Sessions page (`id="…"`).
fn listed(page: &Page, table: &str) -> Vec<String> {
    let Some(at) = page.body.find(&format!("id=\"{table}\"")) else {
        return Vec::new();
    };
    let rest = &page.body[at..];
    let rest = &rest[..rest.find("</table>").unwrap()];
    rest.match_indices("name=\"jti\" value=\"")
        .map(|(i, m)| rest[i + m.len()..].split('"').next().unwrap().to_owned())
        .collect()
}

/// A person signs in twice and lists both sessions (recorded in the
/// store); ending the other one revokes its token, so its cookie no longer
/// opens the dashboard while the current one does, and the end is audited.
/// Another person neither sees nor ends it; an administrator sees and ends
/// everyone's.
async fn sessions_are_listed_and_ended<S: Store>(s: Server<S>) {
    let ui = format!("{}/ui", s.base);
    let link = |sub: &str, roles: &[&str]| s.user_token(sub, &[ui.as_str()], UI_SCOPES, roles, 600, None);
    let jti = |t: &str| claims(t)["jti"].as_str().unwrap().to_owned();
    let (t1, t2) = (link("user:ada", &["auditor"]), link("user:ada", &["auditor"]));
    let (j1, j2) = (jti(&t1), jti(&t2));
    let mut first = Browser::new(&s);
    let mut second = Browser::new(&s);
    assert_eq!(first.sign_in(&t1).await.status, 303);
    let r = second
        .http
        .get(format!("{}/ui/login", s.base))
        .header("user-agent", "SecondBrowser/1.0")
        .send()
        .await
        .unwrap();
    let form = second.take(r).await;
    let r = second
        .http
        .post(format!("{}/ui/login", s.base))
        .header("cookie", second.cookie_header())
        .header("origin", &s.base)
        .header("user-agent", "SecondBrowser/1.0")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(support::form(&[("csrf", &form.csrf()), ("token", &t2)]))
        .send()
        .await
        .unwrap();
    assert_eq!(second.take(r).await.status, 303);

    let page = first.get("/ui/sessions").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut mine = listed(&page, "my-sessions");
    mine.sort();
    let mut both = vec![j1.clone(), j2.clone()];
    both.sort();
    assert_eq!(mine, both, "both sessions are listed");
    assert_eq!(page.body.matches("this session").count(), 1);
    assert!(page.body.contains("SecondBrowser/1.0"), "the other browser is named");
    assert!(page.body.contains("127.0.0.1"), "the address is shown");
    assert!(!page.body.contains("all-sessions"), "not an administrator");
    assert!(page.body.contains("href=\"/ui/sessions\""), "in the navigation");

    // Another person sees only their own, and cannot end ada's.
    let mut bo = Browser::new(&s);
    let tb = link("user:bo", &["auditor"]);
    assert_eq!(bo.sign_in(&tb).await.status, 303);
    let bo_page = bo.get("/ui/sessions").await;
    assert_eq!(listed(&bo_page, "my-sessions"), [jti(&tb)]);
    assert!(!bo_page.body.contains(&j2));
    let r = bo
        .post("/ui/sessions/end", &[("csrf", &bo_page.csrf()), ("jti", &j2)])
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(second.get("/ui/audit").await.status, 200, "still open");

    // Ending needs the CSRF token.
    let r = first.post("/ui/sessions/end", &[("jti", &j2)]).await;
    assert_eq!(r.status, 403);
    let r = first
        .post("/ui/sessions/end", &[("csrf", &page.csrf()), ("jti", &j2)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/ui/sessions?ended="), "{}", r.location());
    let p = second.get("/ui/audit").await;
    assert_eq!(
        p.status, 303,
        "the ended session's cookie no longer opens the dashboard"
    );
    assert!(p.location().starts_with("/ui/login"));
    assert_eq!(first.get("/ui/audit").await.status, 200, "the current one still does");
    let page = first.get("/ui/sessions").await;
    assert_eq!(listed(&page, "my-sessions"), std::slice::from_ref(&j1));
    let again = first
        .post("/ui/sessions/end", &[("csrf", &page.csrf()), ("jti", &j2)])
        .await;
    assert_eq!(again.status, 404, "ended once");
    s.integrate_audit().await;
    let ended = s
        .state
        .store
        .events(&warden_store::EventQuery {
            limit: 20,
            kind: Some("token_revoked".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        ended.iter().any(|e| e.content.as_ref().is_some_and(|(body, _)| {
            let body = String::from_utf8_lossy(body);
            body.contains(&j2) && body.contains("session ended by its owner")
        })),
        "the end is audited"
    );

    // An administrator sees everyone's and ends bo's.
    let mut root = Browser::new(&s);
    assert_eq!(root.sign_in(&link("user:root", &["admin"])).await.status, 303);
    let page = root.get("/ui/sessions").await;
    assert_eq!(page.status, 200);
    let all = listed(&page, "all-sessions");
    assert!(
        all.contains(&j1) && all.contains(&jti(&tb)) && !all.contains(&j2),
        "{all:?}"
    );
    let r = root
        .post("/ui/sessions/end", &[("csrf", &page.csrf()), ("jti", &jti(&tb))])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(bo.get("/ui/audit").await.status, 303, "bo's session is over");

    // Ending the current session signs this browser out.
    let page = first.get("/ui/sessions").await;
    let r = first
        .post("/ui/sessions/end", &[("csrf", &page.csrf()), ("jti", &j1)])
        .await;
    assert_eq!((r.status, r.location()), (303, "/ui/login"));
    assert!(!first.cookies.contains_key("warden_session"));
    assert!(
        listed(&root.get("/ui/sessions").await, "all-sessions")
            .iter()
            .all(|j| *j != j1)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_person_lists_and_ends_their_sessions_sqlite() {
    sessions_are_listed_and_ended(start_sqlite(|_| {}).await).await;
}

#[tokio::test]
async fn a_person_lists_and_ends_their_sessions_postgres() {
    sessions_are_listed_and_ended(start_pg(|_| {}).await).await;
}
