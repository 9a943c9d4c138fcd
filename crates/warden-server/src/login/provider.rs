//! Talking to the identity providers: OpenID Connect discovery, their
//! signing keys, the authorization request, and the code exchange whose ID
//! token is verified with the same strict core as Warden's own tokens
//! (issuer, audience, expiry, asymmetric algorithms bound to the key) plus
//! the OpenID checks: `nonce`, `azp` with several audiences, `at_hash`
//! where present.
//!
//! Discovery and keys are fetched on first use and kept; an unknown `kid`
//! refetches at most once a minute, and a failed fetch keeps the last good
//! set. Responses are read up to a size cap; redirects are not followed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use warden_jose::{
    Algorithm, AlgorithmSet, JoseError, JwkSet, KeySet, TokenVerifier, TrustedIssuer, Validation, VerifiedToken,
};

use crate::options::{LoginProvider, ProviderAuth};

/// Time allowed for one request to a provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document, key set or token response read.
const MAX_BODY: usize = 256 * 1024;
/// Least time between two refetches (an unknown `kid`, or a failure).
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long discovery and keys are kept before they are read again.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// Why talking to a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No provider of that name is configured.
    #[error("no identity provider is called `{0}`")]
    Unknown(String),
    /// Discovery or keys could not be read.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider answered the code exchange with an error.
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token failed verification.
    #[error("the ID token is invalid: {0}")]
    InvalidToken(String),
}

impl From<JoseError> for ProviderError {
    fn from(e: JoseError) -> Self {
        ProviderError::InvalidToken(e.to_string())
    }
}

/// What discovery says, with the verifier built from the keys.
#[derive(Debug)]
struct Discovered {
    authorization_endpoint: String,
    token_endpoint: String,
    verifier: TokenVerifier,
    fetched: Instant,
}

#[derive(Debug)]
struct Provider {
    config: LoginProvider,
    discovered: RwLock<Option<Arc<Discovered>>>,
    last_fetch: Mutex<Option<Instant>>,
}

/// Every configured provider, by name.
#[derive(Debug)]
pub struct Providers {
    by_name: BTreeMap<String, Provider>,
    http: reqwest::Client,
}

/// The discovery document's members Warden uses.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The person's claims from a verified ID token.
#[derive(Debug, Clone)]
pub struct IdClaims(pub Map<String, Value>);

impl Providers {
    /// The providers of `configs`; nothing is fetched yet.
    pub fn new(configs: Vec<LoginProvider>) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let by_name = configs
            .into_iter()
            .map(|config| {
                (
                    config.name.clone(),
                    Provider {
                        config,
                        discovered: RwLock::new(None),
                        last_fetch: Mutex::new(None),
                    },
                )
            })
            .collect();
        Ok(Providers { by_name, http })
    }

    /// The configured providers, in name order.
    pub fn list(&self) -> impl Iterator<Item = &LoginProvider> {
        self.by_name.values().map(|p| &p.config)
    }

    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Option<&LoginProvider> {
        self.by_name.get(name).map(|p| &p.config)
    }

    /// Whether any provider is configured.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    fn provider(&self, name: &str) -> Result<&Provider, ProviderError> {
        self.by_name
            .get(name)
            .ok_or_else(|| ProviderError::Unknown(name.to_owned()))
    }

    /// Where to send the browser: the provider's authorization endpoint
    /// with a code request for `redirect_uri`, `state`, `nonce` and the
    /// PKCE S256 `challenge`.
    pub async fn authorization_url(
        &self,
        name: &str,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> Result<String, ProviderError> {
        let p = self.provider(name)?;
        let d = self.discovered(p, false).await?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &p.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &p.config.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", d.authorization_endpoint))
    }

    /// Exchanges `code` at the provider's token endpoint and verifies the
    /// ID token it returns for this sign-in's `nonce`.
    pub async fn exchange(
        &self,
        name: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
        now: u64,
    ) -> Result<IdClaims, ProviderError> {
        let p = self.provider(name)?;
        let d = self.discovered(p, false).await?;
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("code_verifier", verifier);
            if p.config.auth == ProviderAuth::Post {
                form.append_pair("client_id", &p.config.client_id)
                    .append_pair("client_secret", &p.config.client_secret.0);
            }
            form.finish()
        };
        let mut request = self
            .http
            .post(&d.token_endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json");
        if p.config.auth == ProviderAuth::Basic {
            // RFC 6749 §2.3.1: both parts form-encoded first.
            let user: String = form_urlencoded::byte_serialize(p.config.client_id.as_bytes()).collect();
            let pass: String = form_urlencoded::byte_serialize(p.config.client_secret.0.as_bytes()).collect();
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body = read_capped(response).await?;
        let answer: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::Unavailable(format!("token endpoint answered {status} without JSON")))?;
        if let Some(error) = answer.error {
            let detail = answer.error_description.unwrap_or_default();
            return Err(ProviderError::Refused(bounded(&format!("{error} {detail}"))));
        }
        if !status.is_success() {
            return Err(ProviderError::Refused(format!("token endpoint answered {status}")));
        }
        let id_token = answer
            .id_token
            .ok_or_else(|| ProviderError::InvalidToken("the token response has no id_token".into()))?;
        let verified = match d.verifier.verify(&id_token, now) {
            Err(JoseError::UnknownKid | JoseError::MissingKid) => {
                let fresh = self.discovered(p, true).await?;
                fresh.verifier.verify(&id_token, now)?
            }
            other => other?,
        };
        check_id_token(&p.config, &verified, nonce, answer.access_token.as_deref())?;
        Ok(IdClaims(verified.claims().raw().clone()))
    }

    /// The provider's discovery and keys: cached, or fetched when there
    /// are none, they are older than [`MAX_AGE`], or `refetch` asks (an
    /// unknown `kid`) and none was tried within [`REFETCH_INTERVAL`].
    async fn discovered(&self, p: &Provider, refetch: bool) -> Result<Arc<Discovered>, ProviderError> {
        let cached = p.discovered.read().ok().and_then(|d| d.clone());
        if let Some(d) = &cached
            && !refetch
            && d.fetched.elapsed() < MAX_AGE
        {
            return Ok(Arc::clone(d));
        }
        {
            let Ok(mut last) = p.last_fetch.lock() else {
                return cached.ok_or_else(|| ProviderError::Unavailable("lock poisoned".into()));
            };
            if let Some(at) = *last
                && at.elapsed() < REFETCH_INTERVAL
                && cached.is_some()
            {
                return cached.ok_or_else(|| ProviderError::Unavailable("no keys".into()));
            }
            *last = Some(Instant::now());
        }
        match self.fetch(&p.config).await {
            Ok(d) => {
                let d = Arc::new(d);
                if let Ok(mut slot) = p.discovered.write() {
                    *slot = Some(Arc::clone(&d));
                }
                Ok(d)
            }
            Err(e) => {
                tracing::warn!(provider = %p.config.name, error = %e, "identity provider discovery failed");
                cached.ok_or(e)
            }
        }
    }

    async fn fetch(&self, c: &LoginProvider) -> Result<Discovered, ProviderError> {
        let url = format!("{}/.well-known/openid-configuration", c.issuer);
        let body = self.fetch_json(&url).await?;
        let meta: Metadata = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Unavailable(format!("{url}: not a discovery document: {e}")))?;
        if meta.issuer != c.issuer {
            return Err(ProviderError::Unavailable(format!(
                "{url} names the issuer `{}`, not `{}`",
                bounded(&meta.issuer),
                c.issuer
            )));
        }
        for (what, endpoint) in [
            ("authorization_endpoint", &meta.authorization_endpoint),
            ("token_endpoint", &meta.token_endpoint),
            ("jwks_uri", &meta.jwks_uri),
        ] {
            if !secure_url(endpoint) {
                return Err(ProviderError::Unavailable(format!(
                    "discovery's `{what}` must be https:// (plain http only on loopback)"
                )));
            }
        }
        let keys = self.fetch_json(&meta.jwks_uri).await?;
        let set = JwkSet::parse(&keys).map_err(|e| ProviderError::Unavailable(format!("jwks_uri: {e}")))?;
        let keys = KeySet::new(set.into_keys()).map_err(|e| ProviderError::Unavailable(format!("jwks_uri: {e}")))?;
        let mut algorithms = AlgorithmSet::EMPTY;
        for name in &meta.id_token_signing_alg_values_supported {
            if let Ok(alg) = Algorithm::parse(name)
                && alg.is_asymmetric()
            {
                algorithms.insert(alg);
            }
        }
        if algorithms.is_empty() {
            // OpenID Connect Discovery: RS256 is always supported.
            algorithms.insert(Algorithm::RS256);
        }
        let validation = Validation::access_token(c.client_id.clone())
            .with_typ(None)
            .with_algorithms(algorithms)
            .with_required(false, true, true);
        Ok(Discovered {
            authorization_endpoint: meta.authorization_endpoint,
            token_endpoint: meta.token_endpoint,
            verifier: TokenVerifier::new([TrustedIssuer::new(c.issuer.clone(), keys, algorithms)], validation),
            fetched: Instant::now(),
        })
    }

    async fn fetch_json(&self, url: &str) -> Result<Vec<u8>, ProviderError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!(
                "{url} answered {}",
                response.status()
            )));
        }
        read_capped(response).await
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let too_large = || ProviderError::Unavailable(format!("a response larger than {MAX_BODY} bytes"));
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ProviderError::Unavailable(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether `url` is `https://`, or `http://` on a loopback host
/// (`127.0.0.1`, `[::1]`, `localhost`, with any port) — and not a host that
/// merely begins like one (`127.0.0.1.example`).
pub fn secure_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if authority.starts_with("[::1]") {
        "[::1]"
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let port_ok = authority.get(host.len()..).is_some_and(|p| {
        p.is_empty() || (p.len() > 1 && p.starts_with(':') && p[1..].bytes().all(|b| b.is_ascii_digit()))
    });
    matches!(host, "127.0.0.1" | "[::1]" | "localhost") && port_ok
}

/// At most 200 characters of what a provider said, without control
/// characters.
pub(crate) fn bounded(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The OpenID Connect Core §3.1.3.7 checks the strict core does not make:
/// not an access token, `nonce` equal to this sign-in's, `azp` when there
/// are several audiences, `at_hash` when present.
fn check_id_token(
    c: &LoginProvider,
    token: &VerifiedToken,
    nonce: &str,
    access_token: Option<&str>,
) -> Result<(), ProviderError> {
    let invalid = |why: &str| Err(ProviderError::InvalidToken(why.to_owned()));
    if token
        .header()
        .typ()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"))
    {
        return invalid("an access token is not an ID token");
    }
    let raw = token.claims().raw();
    match raw.get("nonce").and_then(Value::as_str) {
        Some(n) if constant_time_eq(n.as_bytes(), nonce.as_bytes()) => {}
        Some(_) => return invalid("the nonce does not match this sign-in"),
        None => return invalid("the ID token has no nonce"),
    }
    let aud = token.claims().aud();
    let azp = raw.get("azp").and_then(Value::as_str);
    if (aud.len() > 1 || azp.is_some()) && azp != Some(c.client_id.as_str()) {
        return invalid("the ID token was issued to another client (azp)");
    }
    if let (Some(at_hash), Some(access)) = (raw.get("at_hash").and_then(Value::as_str), access_token) {
        let expected = at_hash_of(token.header().alg(), access);
        if !constant_time_eq(at_hash.as_bytes(), expected.as_bytes()) {
            return invalid("at_hash does not match the access token");
        }
    }
    Ok(())
}

/// OpenID Connect `at_hash`: the left half of the access token's hash with
/// the hash of the ID token's algorithm, base64url.
pub fn at_hash_of(alg: Algorithm, access_token: &str) -> String {
    let algorithm = match alg {
        Algorithm::ES384 => &digest::SHA384,
        Algorithm::EdDSA => &digest::SHA512,
        _ => &digest::SHA256,
    };
    let d = digest::digest(algorithm, access_token.as_bytes());
    let bytes = d.as_ref();
    warden_jose::base64url::encode(bytes.get(..bytes.len() / 2).unwrap_or(bytes))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_openid_example() {
        // OpenID Connect Core, A.3 (RS256): access token and its at_hash.
        assert_eq!(
            at_hash_of(Algorithm::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    use crate::options::{ClientSecret, SubjectForm};
    use serde_json::json;
    use warden_jose::SigningKey;

    fn corp() -> LoginProvider {
        LoginProvider {
            name: "corp".into(),
            display_name: "Corp".into(),
            issuer: "https://idp.example".into(),
            client_id: "warden".into(),
            client_secret: ClientSecret(zeroize::Zeroizing::new("s".into())),
            auth: ProviderAuth::Basic,
            scopes: vec!["openid".into()],
            groups_claim: "groups".into(),
            roles: BTreeMap::new(),
            default_roles: Vec::new(),
            allowed_domains: Vec::new(),
            subject: SubjectForm::Sub,
        }
    }

    /// An ID token signed by a fresh key of the provider's, with `extra`
    /// claims over valid ones and header `typ`, verified as Warden does.
    fn verified(extra: Value, typ: &str) -> Result<VerifiedToken, JoseError> {
        let (key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut claims = json!({
            "iss": "https://idp.example", "sub": "u1", "aud": "warden",
            "iat": 1000, "exp": 2000, "nonce": "n-1",
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let token = warden_jose::issue::encode_map(&key, typ, claims.as_object().unwrap()).unwrap();
        let keys = KeySet::new([key.verifying_key().clone()]).unwrap();
        let mut algorithms = AlgorithmSet::EMPTY;
        algorithms.insert(Algorithm::ES256);
        let validation = Validation::access_token("warden")
            .with_typ(None)
            .with_algorithms(algorithms)
            .with_required(false, true, true);
        TokenVerifier::new(
            [TrustedIssuer::new("https://idp.example", keys, algorithms)],
            validation,
        )
        .verify(&token, 1500)
    }

    #[test]
    fn id_tokens_must_carry_this_sign_ins_nonce_and_be_for_warden() {
        let c = corp();
        let ok = verified(json!({}), "JWT").unwrap();
        assert!(check_id_token(&c, &ok, "n-1", None).is_ok());
        let err = |t: &VerifiedToken, nonce: &str, access: Option<&str>| {
            check_id_token(&c, t, nonce, access).unwrap_err().to_string()
        };
        assert!(err(&ok, "n-2", None).contains("nonce"), "another sign-in's nonce");
        let no_nonce = verified(json!({"nonce": null}), "JWT").unwrap();
        assert!(err(&no_nonce, "n-1", None).contains("nonce"));
        let several = verified(json!({"aud": ["warden", "other"]}), "JWT").unwrap();
        assert!(err(&several, "n-1", None).contains("azp"), "several audiences need azp");
        let azp = verified(json!({"aud": ["warden", "other"], "azp": "warden"}), "JWT").unwrap();
        assert!(check_id_token(&c, &azp, "n-1", None).is_ok());
        let foreign_azp = verified(json!({"azp": "other"}), "JWT").unwrap();
        assert!(err(&foreign_azp, "n-1", None).contains("azp"));
        let access = "an-access-token";
        let hashed = verified(json!({"at_hash": at_hash_of(Algorithm::ES256, access)}), "JWT").unwrap();
        assert!(check_id_token(&c, &hashed, "n-1", Some(access)).is_ok());
        assert!(err(&hashed, "n-1", Some("another-token")).contains("at_hash"));
        let at = verified(json!({}), "at+jwt").unwrap();
        assert!(err(&at, "n-1", None).contains("access token"));
        // The strict core refuses the rest before these checks.
        assert!(verified(json!({"aud": "other"}), "JWT").is_err(), "another audience");
        assert!(
            verified(json!({"iss": "https://evil.example"}), "JWT").is_err(),
            "another issuer"
        );
        assert!(verified(json!({"exp": 1400}), "JWT").is_err(), "expired");
    }

    #[test]
    fn only_secure_endpoints() {
        assert!(secure_url("https://idp.example/token"));
        assert!(secure_url("http://127.0.0.1:9000/token"));
        assert!(!secure_url("http://idp.example/token"));
        assert!(secure_url("http://[::1]:9000/token"));
        assert!(secure_url("http://localhost/token"));
        assert!(!secure_url("http://127.0.0.1.evil.example/token"));
        assert!(!secure_url("http://127.0.0.1@evil.example/token"));
        assert!(!secure_url("http://localhost.evil.example:80/"));
        assert!(!secure_url("http://127.0.0.1:x/"));
        assert!(!secure_url("ftp://127.0.0.1/"));
    }
}
