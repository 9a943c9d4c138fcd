//! HTTP helpers for tests that talk to a running Warden (a [`Server`] of
//! [`crate::binary`], or one in the test's own process).
//!
//! [`Server`]: crate::binary::Server

use serde_json::Value;

/// A `client_credentials` access token from `base`'s `/oauth/token`, the
/// client authenticating with HTTP Basic; the answer must be 200.
pub async fn client_credentials(http: &reqwest::Client, base: &str, client: &str, secret: &str) -> String {
    let r = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(client, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}/oauth/token: {e}"));
    let status = r.status();
    let bytes = r.bytes().await.unwrap_or_default();
    assert_eq!(
        status,
        200,
        "client_credentials for {client} at {base}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let v: Value = serde_json::from_slice(&bytes).expect("a JSON token response");
    v.get("access_token")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no access_token in {v}"))
        .to_owned()
}
