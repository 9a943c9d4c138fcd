//! Trusted external issuers (a corporate IdP) whose tokens may be
//! exchanged for Warden tokens.
//!
//! Each issuer's JWKS is cached. A token signed with an unknown `kid`
//! triggers at most one refetch per issuer per minute; a failed fetch keeps
//! the last good set. Verification is the same strict pipeline as for
//! Warden's own tokens, with the issuer's algorithms, audience and `typ`.
//!
//! Verified tokens are cached as Warden's own are ([`VerifiedTokenCache`]):
//! per issuer (with its one audience and `typ`), keyed by SHA-256 of the
//! whole token, each entry until the token's `exp`, at most
//! [`TOKEN_CACHE_CAPACITY`] tokens per issuer. The cache belongs to one fetched
//! key set: every fetch of the JWKS starts an empty one, so a token is
//! answered from the cache only while the keys that verified it are the
//! ones in force (a key the issuer removed stops answering for its tokens
//! at the fetch that drops it, exactly as without a cache). Revocation is
//! the caller's, on every request, cached or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use warden_jose::{
    DEFAULT_MAX_TOKEN_BYTES, JoseError, JwkSet, KeySet, TokenVerifier, TrustedIssuer, UnverifiedToken, Validation,
    VerifiedToken, VerifiedTokenCache,
};

use crate::keys::TOKEN_CACHE_CAPACITY;
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
    /// The keys of the last good fetch, with the tokens they verified.
    verifier: RwLock<Option<Arc<VerifiedTokenCache>>>,
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
/// verify it (the verifier then checks `iss` exactly). The gateway decodes
/// a token once instead ([`UnverifiedToken`], [`Federation::verify_decoded`]).
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

    /// Whether no external issuer is trusted.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The identity of a token an issuer's verified-token cache knows,
    /// without decoding it (the same time checks as a verification); `None`
    /// when no issuer's cache knows it.
    pub fn cached(&self, token: &str, now: u64) -> Option<Result<ExternalIdentity, FederationError>> {
        self.issuers.values().find_map(|ext| {
            let cache = ext.verifier.read().ok().and_then(|v| v.clone())?;
            let hit = cache.cached(token, now)?;
            Some(
                hit.map_err(FederationError::from)
                    .and_then(|v| map_identity(&ext.config, &v)),
            )
        })
    }

    /// Verifies an external token and maps its identity.
    pub async fn verify(&self, token: &str, now: u64) -> Result<ExternalIdentity, FederationError> {
        let decoded = UnverifiedToken::parse(token, DEFAULT_MAX_TOKEN_BYTES)?;
        self.verify_decoded(&decoded, now).await.map(|(id, _)| id)
    }

    /// Verifies an external token already decoded (to read its issuer),
    /// from the issuer's verified-token cache when it can, and maps its
    /// identity; also says whether the cache answered.
    pub async fn verify_decoded(
        &self,
        token: &UnverifiedToken<'_>,
        now: u64,
    ) -> Result<(ExternalIdentity, bool), FederationError> {
        let iss = token.issuer().ok_or(FederationError::UnknownIssuer)?;
        let ext = self.issuers.get(iss).ok_or(FederationError::UnknownIssuer)?;
        let current = ext.verifier.read().ok().and_then(|v| v.clone());
        let verifier = match current {
            Some(v) => v,
            None => self.refresh(ext).await?,
        };
        let (verified, hit) = match verifier.verify_unverified_traced(token, now) {
            (Err(JoseError::UnknownKid | JoseError::MissingKid), _) => {
                let fresh = self.refresh(ext).await?;
                fresh.verify_unverified_traced(token, now)
            }
            other => other,
        };
        let verified = verified?;
        Ok((map_identity(&ext.config, &verified)?, hit))
    }

    /// Fetches the issuer's JWKS, unless one was tried too recently: with
    /// keys cached, at most once a minute (an unknown `kid`); with none, a
    /// failure is retried after 1 s, then 2 s, 4 s … up to a minute, so an
    /// IdP that was down at first use is not locked out for a minute, and
    /// a down IdP is asked once per wait, never once per request. A failure
    /// keeps the last good set.
    async fn refresh(&self, ext: &External) -> Result<Arc<VerifiedTokenCache>, FederationError> {
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
                let verifier = Arc::new(VerifiedTokenCache::new(verifier, TOKEN_CACHE_CAPACITY));
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;
    use warden_jose::{Algorithm, AlgorithmSet, Jwk, SigningKey};

    use super::*;

    const ISS: &str = "https://idp.example";
    const NOW: u64 = 1_800_000_000;

    fn key() -> SigningKey {
        SigningKey::generate(Algorithm::ES256).unwrap().0
    }

    fn publish(path: &Path, keys: &[&SigningKey]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| Jwk::from_verifying_key(k.verifying_key()).unwrap().to_json())
            .collect();
        std::fs::write(path, json!({ "keys": keys }).to_string()).unwrap();
    }

    fn federation(jwks: &Path) -> Federation {
        Federation::new(vec![FederatedIssuer {
            issuer: ISS.into(),
            jwks: JwksLocation::File(jwks.to_owned()),
            algorithms: AlgorithmSet::asymmetric(),
            audience: "warden".into(),
            typ: vec!["JWT".into()],
            role_claim: "groups".into(),
            roles: BTreeMap::new(),
            scope_claim: "scope".into(),
            subject_kind: "user".into(),
        }])
        .unwrap()
    }

    fn token(key: &SigningKey, jti: &str, exp: u64) -> String {
        let claims = json!({"iss": ISS, "sub": "alice", "aud": "warden", "exp": exp, "iat": NOW, "jti": jti});
        warden_jose::issue::encode(key, "JWT", &claims).unwrap()
    }

    async fn verify(f: &Federation, token: &str, now: u64) -> Result<(ExternalIdentity, bool), FederationError> {
        let decoded = UnverifiedToken::parse(token, DEFAULT_MAX_TOKEN_BYTES).unwrap();
        f.verify_decoded(&decoded, now).await
    }

    /// Lets the next unknown `kid` fetch the JWKS again at once (instead
    /// of after a minute).
    fn forget_last_fetch(f: &Federation) {
        *f.issuers[ISS].last_fetch.lock().unwrap() = None;
    }

    use std::collections::BTreeMap;

    #[tokio::test]
    async fn repeated_tokens_are_answered_from_the_cache_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let k = key();
        publish(&jwks, &[&k]);
        let f = federation(&jwks);
        let t = token(&k, "a", NOW + 60);
        let (first, hit) = verify(&f, &t, NOW).await.unwrap();
        assert_eq!((first.subject.as_str(), hit), ("user:alice", false));
        let (again, hit) = verify(&f, &t, NOW + 1).await.unwrap();
        assert_eq!((again.jti.as_deref(), hit), (Some("a"), true));
        // Known without decoding it, too (the gateway asks this first).
        let known = f.cached(&t, NOW + 1).unwrap().unwrap();
        assert_eq!(known.subject, "user:alice");
        assert!(f.cached(&token(&k, "unseen", NOW + 60), NOW + 1).is_none());
        // Another token of the same subject is another entry.
        let (_, hit) = verify(&f, &token(&k, "b", NOW + 60), NOW + 1).await.unwrap();
        assert!(!hit);
        // Past `exp` (and any leeway) the cached token is refused.
        let expired = verify(&f, &t, NOW + 60 + warden_jose::MAX_LEEWAY + 1).await;
        assert!(
            matches!(expired, Err(FederationError::Invalid(JoseError::Expired))),
            "{expired:?}"
        );
        // A token signed by a key the issuer never published is refused,
        // cache or not.
        let stranger = token(&key(), "c", NOW + 60);
        assert!(verify(&f, &stranger, NOW).await.is_err());
    }

    #[tokio::test]
    async fn a_key_removed_from_the_jwks_stops_answering_for_its_cached_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let (old, new) = (key(), key());
        publish(&jwks, &[&old]);
        let f = federation(&jwks);
        let t = token(&old, "a", NOW + 600);
        verify(&f, &t, NOW).await.unwrap();
        assert!(verify(&f, &t, NOW).await.unwrap().1, "cached");
        // The issuer rotates: the old key is gone from its JWKS. A token of
        // the new key makes Warden fetch the set again.
        publish(&jwks, &[&new]);
        forget_last_fetch(&f);
        let (_, hit) = verify(&f, &token(&new, "b", NOW + 600), NOW).await.unwrap();
        assert!(!hit);
        // The old key's token, cached a moment ago, is now refused.
        assert!(
            f.cached(&t, NOW + 1).is_none(),
            "the new key set's cache does not know it"
        );
        let refused = verify(&f, &t, NOW + 1).await;
        assert!(
            matches!(refused, Err(FederationError::Invalid(JoseError::UnknownKid))),
            "{refused:?}"
        );
    }
}
