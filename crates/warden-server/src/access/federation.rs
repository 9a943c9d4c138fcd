//! Trusted external issuers (a corporate IdP) whose tokens may be
//! exchanged for Warden tokens.
//!
//! Each issuer's JWKS is cached. A token signed with an unknown `kid`
//! triggers at most one refetch per issuer per minute; a failed fetch keeps
//! the last good set. Verification is the same strict pipeline as for
//! Warden's own tokens, with the issuer's algorithms, audience and `typ`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use warden_jose::{JoseError, JwkSet, KeySet, TokenVerifier, TrustedIssuer, Validation, VerifiedToken};

use crate::options::{FederatedIssuer, JwksLocation};

/// Least time between two fetches of one issuer's JWKS while keys are
/// cached (an unknown `kid` asks for a refetch), and the longest wait
/// between retries while none could be fetched yet.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// First wait before retrying an issuer whose keys could not be fetched
/// and none are cached; doubled at every failure up to [`REFETCH_INTERVAL`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Time allowed for one JWKS fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// What an external token says about its subject, mapped to Warden terms.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    /// `<subject_kind>:<sub>`.
    pub subject: String,
    /// Warden roles mapped from the role claim.
    pub roles: Vec<String>,
    /// Scopes from the scope claim.
    pub scopes: Vec<String>,
    /// The token's `exp`.
    pub exp: u64,
    /// The issuer.
    pub issuer: String,
    /// `may_act`, if present.
    pub may_act: Option<Value>,
    /// The OAuth client the IdP issued it to (`client_id` or `azp`), if named.
    pub client_id: Option<String>,
    /// Its `jti`, if any.
    pub jti: Option<String>,
    /// The audience it was verified for (the issuer's configured one).
    pub audience: String,
}

#[derive(Debug)]
struct External {
    config: FederatedIssuer,
    verifier: RwLock<Option<Arc<TokenVerifier>>>,
    /// When the last fetch was tried, and how long to wait after it.
    last_fetch: Mutex<Option<(Instant, Duration)>>,
}

/// Every trusted external issuer, by `iss`.
#[derive(Debug, Default)]
pub struct Federation {
    issuers: HashMap<String, External>,
    http: Option<reqwest::Client>,
}

/// Why an external token was refused.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// Not from a trusted external issuer.
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    /// The issuer's keys could not be loaded and none were cached.
    #[error("the issuer's keys are unavailable: {0}")]
    NoKeys(String),
    /// The token failed verification.
    #[error("the token is invalid: {0}")]
    Invalid(#[from] JoseError),
    /// The token lacks a usable `sub`.
    #[error("the token has no usable `sub`")]
    NoSubject,
}

/// The unverified `iss` of a compact JWS, only to pick which issuer's keys
/// verify it (the verifier then checks `iss` exactly).
pub fn peek_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = warden_jose::base64url::decode(payload)?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

impl Federation {
    /// Sets up the issuers; keys load lazily on first use.
    pub fn new(issuers: Vec<FederatedIssuer>) -> Result<Self, FederationError> {
        let needs_http = issuers.iter().any(|i| matches!(i.jwks, JwksLocation::Url(_)));
        let http = if needs_http {
            Some(
                reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| FederationError::NoKeys(e.to_string()))?,
            )
        } else {
            None
        };
        let issuers = issuers
            .into_iter()
            .map(|config| {
                (
                    config.issuer.clone(),
                    External {
                        config,
                        verifier: RwLock::new(None),
                        last_fetch: Mutex::new(None),
                    },
                )
            })
            .collect();
        Ok(Federation { issuers, http })
    }

    /// Whether `iss` is a trusted external issuer.
    pub fn trusts(&self, iss: &str) -> bool {
        self.issuers.contains_key(iss)
    }

    /// Verifies an external token and maps its identity.
    pub async fn verify(&self, token: &str, now: u64) -> Result<ExternalIdentity, FederationError> {
        let iss = peek_issuer(token).ok_or(FederationError::UnknownIssuer)?;
        let ext = self.issuers.get(&iss).ok_or(FederationError::UnknownIssuer)?;
        let current = ext.verifier.read().ok().and_then(|v| v.clone());
        let verifier = match current {
            Some(v) => v,
            None => self.refresh(ext).await?,
        };
        let verified = match verifier.verify(token, now) {
            Err(JoseError::UnknownKid | JoseError::MissingKid) => {
                let fresh = self.refresh(ext).await?;
                fresh.verify(token, now)?
            }
            other => other?,
        };
        map_identity(&ext.config, &verified)
    }

    /// Fetches the issuer's JWKS, unless one was tried too recently: with
    /// keys cached, at most once a minute (an unknown `kid`); with none, a
    /// failure is retried after 1 s, then 2 s, 4 s … up to a minute, so an
    /// IdP that was down at first use is not locked out for a minute, and
    /// a down IdP is asked once per wait, never once per request. A failure
    /// keeps the last good set.
    async fn refresh(&self, ext: &External) -> Result<Arc<TokenVerifier>, FederationError> {
        let cached = ext.verifier.read().ok().and_then(|v| v.clone());
        let previous_wait = {
            let Ok(mut last) = ext.last_fetch.lock() else {
                return cached.ok_or_else(|| FederationError::NoKeys("lock poisoned".into()));
            };
            if let Some((at, wait)) = *last
                && at.elapsed() < wait
            {
                return cached.ok_or_else(|| {
                    FederationError::NoKeys(format!("the keys could not be fetched; retrying in at most {wait:?}"))
                });
            }
            let previous = last.map(|(_, wait)| wait);
            // Counted from now, so that concurrent requests share this fetch.
            *last = Some((Instant::now(), REFETCH_INTERVAL));
            previous
        };
        let outcome = self.load(&ext.config).await;
        let next_wait = match (&outcome, &cached) {
            (Ok(_), _) | (Err(_), Some(_)) => REFETCH_INTERVAL,
            (Err(_), None) => previous_wait.map_or(FIRST_RETRY, |w| (w * 2).clamp(FIRST_RETRY, REFETCH_INTERVAL)),
        };
        if let Ok(mut last) = ext.last_fetch.lock() {
            *last = Some((Instant::now(), next_wait));
        }
        match outcome {
            Ok(verifier) => {
                let verifier = Arc::new(verifier);
                if let Ok(mut slot) = ext.verifier.write() {
                    *slot = Some(Arc::clone(&verifier));
                }
                Ok(verifier)
            }
            Err(e) => {
                tracing::warn!(issuer = %ext.config.issuer, error = %e, retry_in = ?next_wait,
                    "JWKS fetch failed; keeping the last good set");
                cached.ok_or(FederationError::NoKeys(e))
            }
        }
    }

    async fn load(&self, c: &FederatedIssuer) -> Result<TokenVerifier, String> {
        let bytes = match &c.jwks {
            JwksLocation::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?,
            JwksLocation::Url(url) => {
                let http = self.http.as_ref().ok_or("no HTTP client")?;
                let mut response = http.get(url).send().await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("{url} answered {}", response.status()));
                }
                let too_large = || format!("{url}: JWKS larger than {MAX_JWKS_BYTES} bytes");
                if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
                    return Err(too_large());
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                body
            }
        };
        let set = JwkSet::parse(&bytes).map_err(|e| e.to_string())?;
        let keys = KeySet::new(set.into_keys()).map_err(|e| e.to_string())?;
        let validation = Validation::access_token(c.audience.clone())
            .with_typ(Some(c.typ.clone()))
            .with_algorithms(c.algorithms)
            .with_required(false, true, false);
        Ok(TokenVerifier::new(
            [TrustedIssuer::new(c.issuer.clone(), keys, c.algorithms)],
            validation,
        ))
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split(' ').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn map_identity(c: &FederatedIssuer, token: &VerifiedToken) -> Result<ExternalIdentity, FederationError> {
    let claims = token.claims();
    let sub = claims
        .sub()
        .filter(|s| !s.is_empty() && !s.contains(char::is_control))
        .ok_or(FederationError::NoSubject)?;
    let raw = claims.raw();
    let mut roles: Vec<String> = Vec::new();
    for external in strings(raw.get(&c.role_claim)) {
        if let Some(role) = c.roles.get(&external)
            && !roles.contains(role)
        {
            roles.push(role.clone());
        }
    }
    Ok(ExternalIdentity {
        subject: format!("{}:{sub}", c.subject_kind),
        roles,
        scopes: strings(raw.get(&c.scope_claim)),
        exp: claims.exp(),
        issuer: c.issuer.clone(),
        may_act: raw.get("may_act").cloned(),
        client_id: ["client_id", "azp"]
            .iter()
            .find_map(|c| raw.get(*c).and_then(Value::as_str))
            .map(str::to_owned),
        jti: claims.jti().map(str::to_owned),
        audience: c.audience.clone(),
    })
}
