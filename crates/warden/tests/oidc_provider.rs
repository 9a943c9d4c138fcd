//! The test OpenID Connect identity provider (`peers::oidc`, the Node
//! `oidc-provider` package run by `tests/interop/oidc-provider/
//! provider.mjs`) does what the sign-in tests rely on: discovery, an
//! authorization-code sign-in with PKCE and a nonce for `alice` through
//! `sign_in_http`, the code exchanged at its token endpoint (as the
//! relying party, with client_secret_basic), an ID token carrying the
//! email and the groups, and a wrong password refused with 401.
//!
//! The ID token's signature is not checked here (that is the job of the
//! relying party under test); its payload is only decoded.
//!
//! `oidc-provider` is installed with `npm ci` into
//! `<target dir>/interop-cache/` on the first run. When node or npm is
//! missing, or the install fails, the test fails if
//! `WARDEN_TEST_REQUIRE_INTEROP` is set (`scripts/test` sets it) and
//! otherwise skips with a loud message.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod peers;

use peers::oidc::{self, OidcProvider};
use serde_json::{Value, json};
use warden_test_support::services::{self, REQUIRE_INTEROP as REQUIRE_VAR};

const CLIENT_ID: &str = "warden-test";
const CLIENT_SECRET: &str = "warden-test-secret";
/// Nothing listens there: the sign-in stops at the redirect to it.
const REDIRECT_URI: &str = "http://127.0.0.1:9/oidc/callback";

/// The decoded payload of a compact JWS.
fn jwt_payload(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {jwt}");
    let bytes = warden_jose::base64url::decode(parts[1]).expect("a base64url payload");
    serde_json::from_slice(&bytes).expect("a JSON payload")
}

/// The value of query parameter `name` in `url`.
fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let mut random = [0u8; 32];
    aws_lc_rs::rand::fill(&mut random).unwrap();
    let verifier = warden_jose::base64url::encode(&random);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, warden_jose::base64url::encode(digest.as_ref()))
}

#[test]
fn the_test_identity_provider_signs_alice_in_with_her_groups_in_the_id_token() {
    let dir = tempfile::Builder::new()
        .prefix("warden-oidc-provider-")
        .tempdir()
        .unwrap();
    let logs = dir.path();
    if let Err(why) = oidc::install(logs) {
        services::unavailable(REQUIRE_VAR, "test OpenID Connect identity provider", &why);
        return;
    }
    let idp = OidcProvider::start(
        logs,
        &json!([{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [REDIRECT_URI],
        }]),
    )
    .unwrap_or_else(|e| panic!("starting the provider: {e}"));
    let issuer = idp.issuer().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");

    // Discovery.
    let disco = idp.discovery().unwrap();
    assert_eq!(disco["issuer"], issuer.as_str(), "{disco}");
    for scope in ["openid", "email", "profile", "groups"] {
        assert!(
            disco["scopes_supported"].as_array().unwrap().contains(&json!(scope)),
            "{scope} missing from {disco}"
        );
    }
    assert!(
        disco["code_challenge_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("S256")),
        "{disco}"
    );
    let methods = disco["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("client_secret_basic")) && methods.contains(&json!("client_secret_post")));
    let authorization_endpoint = disco["authorization_endpoint"].as_str().unwrap();
    let token_endpoint = disco["token_endpoint"].as_str().unwrap();

    // The authorization request a relying party would redirect to.
    let (verifier, challenge) = pkce();
    let state = "state-1234";
    let nonce = "nonce-5678";
    let query = oidc::form_encode(&[
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email profile groups"),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let authorize_url = format!("{authorization_endpoint}?{query}");

    // A wrong password: 401, and no way back to the relying party.
    let refused = idp.sign_in_http(&authorize_url, "alice", "password-bob");
    match &refused {
        Err(e) if e.contains("HTTP 401") => {}
        other => panic!(
            "a wrong password must be refused with 401, got {other:?}\n{}",
            idp.log_text()
        ),
    }
    let unknown = idp.sign_in_http(&authorize_url, "mallory", "password-mallory");
    assert!(
        unknown.as_ref().is_err_and(|e| e.contains("HTTP 401")),
        "an unknown user must be refused with 401, got {unknown:?}"
    );

    // Alice signs in: one form post and back to the relying party.
    let back = idp
        .sign_in_http(&authorize_url, "alice", "password-alice")
        .unwrap_or_else(|e| panic!("signing alice in: {e}\n{}", idp.log_text()));
    assert!(back.starts_with(&format!("{REDIRECT_URI}?")), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some(state), "{back}");
    assert_eq!(query_param(&back, "iss").as_deref(), Some(issuer.as_str()), "{back}");
    assert_eq!(query_param(&back, "error"), None, "{back}");
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));

    // The code without the PKCE verifier is refused.
    let (status, body) = oidc::http_post_form(
        token_endpoint,
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-0"),
        ],
    )
    .unwrap();
    assert_eq!(status, 400, "a wrong code_verifier: {body}");

    // A new sign-in, its code exchanged with the right verifier.
    let back = idp.sign_in_http(&authorize_url, "alice", "password-alice").unwrap();
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let (status, body) = oidc::http_post_form(
        token_endpoint,
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .unwrap();
    assert_eq!(status, 200, "token exchange: {body}\n{}", idp.log_text());
    let tokens: Value = serde_json::from_str(&body).unwrap();
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token in {tokens}"));
    let header: Value =
        serde_json::from_slice(&warden_jose::base64url::decode(id_token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256", "{header}");
    let claims = jwt_payload(id_token);
    assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], CLIENT_ID, "{claims}");
    assert_eq!(claims["nonce"], nonce, "{claims}");
    assert_eq!(claims["sub"], "a1b2-alice", "{claims}");
    assert_eq!(claims["email"], "alice@example.com", "{claims}");
    assert_eq!(claims["email_verified"], true, "{claims}");
    assert_eq!(claims["name"], "Alice Engineer", "{claims}");
    assert_eq!(claims["groups"], json!(["ml-engineers", "everyone"]), "{claims}");
    assert!(
        claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap(),
        "{claims}"
    );

    // The JWKS publishes the key the ID token names.
    let (status, jwks) = oidc::http_get(disco["jwks_uri"].as_str().unwrap()).unwrap();
    assert_eq!(status, 200);
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"]),
        "{} not in {jwks}",
        header["kid"]
    );
}
