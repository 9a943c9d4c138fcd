//! `POST /oauth/device_authorization` (RFC 8628 §3.1–3.2): a public client
//! on a device without a browser (a terminal, a notebook kernel) gets a
//! device code to poll the token endpoint with and a user code the person
//! enters at `/ui/device`, signed in, to approve or refuse it.
//!
//! User codes are eight letters from an alphabet without vowels or
//! look-alikes (RFC 8628 §6.1: 20⁸ ≈ 2.6·10¹⁰ codes), shown as `BCDF-GHJK`;
//! only a signed-in person can try one. Device codes are 256 random bits,
//! stored hashed.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_store::Store;
use warden_store::authorization::NewDeviceGrant;

use crate::error::ApiError;
use crate::http::read_body;
use crate::oauth::OAuthState;
use crate::oauth::authorize::{people_audiences, people_scopes};
use crate::oauth::client_auth::authenticate;
use crate::oauth::clients::grant;
use crate::oauth::form::Form;
use crate::oauth::grants::people::code_hash;
use crate::oauth::grants::{check_grant, random_secret};
use crate::oauth::scope;
use crate::state::now;

/// How long a device code lives (seconds).
pub const DEVICE_CODE_TTL: u64 = 600;
/// Least seconds between two polls.
pub const POLL_INTERVAL: u64 = 5;
/// The letters of user codes: no vowels (no words), no look-alikes.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A fresh user code: four letters, a dash, four letters (`BCDF-GHJK`).
fn new_user_code() -> Result<String, ApiError> {
    let rng = SystemRandom::new();
    let mut code = String::with_capacity(9);
    let mut buf = [0u8; 32];
    // Rejection sampling: only bytes below 240 (12 × 20) keep the letters
    // uniform. 32 bytes run out with probability (16/256)^25: retried.
    while code.len() < 9 {
        rng.fill(&mut buf)
            .map_err(|_| ApiError::internal("random generator failed"))?;
        for b in buf.iter().filter(|b| **b < 240) {
            if code.len() == 4 {
                code.push('-');
            }
            if code.len() == 9 {
                break;
            }
            let letter = USER_CODE_ALPHABET
                .get(usize::from(*b) % USER_CODE_ALPHABET.len())
                .copied()
                .unwrap_or(b'B');
            code.push(char::from(letter));
        }
    }
    Ok(code)
}

/// A user code as typed (any case, with or without the dash or spaces)
/// in its stored form, or `None` when it cannot be one.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let letters: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() != 8 || !letters.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)) {
        return None;
    }
    let (a, b) = letters.split_at(4);
    Some(format!("{a}-{b}"))
}

/// `POST /oauth/device_authorization`.
pub async fn device_authorization<S: Store>(
    State(state): State<Arc<OAuthState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let now = now();
    let bytes = read_body(body, state.app.options.oauth.max_body_bytes).await?;
    let form = Form::parse(&headers, &bytes)?;
    let endpoint = format!("{}/oauth/device_authorization", state.app.options.issuer);
    let ip = crate::http::client_ip(peer.ip(), &headers, &state.app.options.trusted_proxies);
    let client = authenticate(&state, &headers, &form, ip, &endpoint, now).await?.client;
    check_grant(&client, grant::DEVICE_CODE)?;
    let scopes = people_scopes(&form, &client)?;
    let audiences = people_audiences(&form, &client, &state.app.options.issuer)?;
    let device_code = random_secret("wdc_")?;
    let audiences_json =
        serde_json::to_string(&audiences).map_err(|_| ApiError::internal("audience serialisation failed"))?;
    // A user code already in use is drawn again; five collisions in a row
    // mean something else is wrong.
    let mut user_code = None;
    for _ in 0..5 {
        let candidate = new_user_code()?;
        let grant = NewDeviceGrant {
            device_hash: code_hash(&device_code),
            user_code: candidate.clone(),
            client_id: client.client_id.clone(),
            scopes: scope::join(&scopes),
            audiences: audiences_json.clone(),
            issued_at: now,
            expires_at: now + DEVICE_CODE_TTL,
            poll_interval: POLL_INTERVAL,
        };
        if state.app.store.insert_device_grant(&grant).await? {
            user_code = Some(candidate);
            break;
        }
    }
    let user_code = user_code.ok_or_else(|| ApiError::unavailable("no free user code; try again"))?;
    let verification = format!("{}/ui/device", state.app.options.dashboard_base().trim_end_matches('/'));
    let complete = format!("{verification}?user_code={user_code}");
    let mut response = Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification,
        "verification_uri_complete": complete,
        "expires_in": DEVICE_CODE_TTL,
        "interval": POLL_INTERVAL,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_letters_of_the_alphabet() {
        for _ in 0..200 {
            let code = new_user_code().unwrap();
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(normalise_user_code("bcdf ghjk").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(normalise_user_code("BCDFGHJK").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(normalise_user_code("BCDF-GHJ"), None);
        assert_eq!(normalise_user_code("ABCD-EFGH"), None, "vowels are never in a code");
        assert_eq!(normalise_user_code("BCDF-GHJK-L"), None);
    }
}
