//! Bearer tokens on gateway routes: Warden access tokens for the route's
//! audience (the issuer by default), verified with the published keys,
//! cached per audience, and checked against the revocation list on every
//! request.
//!
//! The caches are built from a [`KeySnapshot`] and rebuilt when the server
//! swaps the snapshot (a key was published or retired), so a cache never
//! answers for keys that are gone. The issuer audience reuses the
//! snapshot's own cache, which revocation also invalidates.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warden_jose::{JoseError, VerifiedToken, VerifiedTokenCache};

use crate::keys::KeySnapshot;
use crate::options::ServerOptions;

/// Capacity of each audience's verified-token cache.
const CACHE_CAPACITY: usize = 100_000;

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token.
    #[error("a Bearer access token is required")]
    Missing,
    /// It failed verification.
    #[error("the access token is invalid: {0}")]
    Invalid(JoseError),
    /// It was revoked.
    #[error("the access token is revoked")]
    Revoked,
    /// It has no `sub`, `jti` or `client_id`.
    #[error("the access token has no `{0}`")]
    MissingClaim(&'static str),
    /// A trusted external issuer's token failed verification.
    #[error("{0}")]
    External(String),
}

#[derive(Debug)]
struct Built {
    snapshot: Arc<KeySnapshot>,
    caches: HashMap<String, Arc<VerifiedTokenCache>>,
}

/// Verified-token caches for the audiences of the routes.
#[derive(Debug)]
pub struct AudienceVerifiers {
    issuer: String,
    audiences: Vec<String>,
    built: RwLock<Option<Built>>,
}

impl AudienceVerifiers {
    /// Caches for `audiences` (the issuer's is the key snapshot's own).
    pub fn new(issuer: &str, audiences: impl IntoIterator<Item = String>) -> Self {
        let mut audiences: Vec<String> = audiences.into_iter().filter(|a| a != issuer).collect();
        audiences.sort();
        audiences.dedup();
        AudienceVerifiers {
            issuer: issuer.to_owned(),
            audiences,
            built: RwLock::new(None),
        }
    }

    /// Verifies `token` for `audience` (`None`: the issuer) with the keys
    /// of `snapshot`.
    pub fn verify(
        &self,
        snapshot: &Arc<KeySnapshot>,
        options: &ServerOptions,
        audience: Option<&str>,
        token: &str,
        now: u64,
    ) -> Result<Arc<VerifiedToken>, AuthError> {
        self.verify_traced(snapshot, options, audience, token, now).0
    }

    /// As [`verify`](Self::verify), and whether the verified-token cache
    /// answered (for the hit-ratio metric).
    pub fn verify_traced(
        &self,
        snapshot: &Arc<KeySnapshot>,
        options: &ServerOptions,
        audience: Option<&str>,
        token: &str,
        now: u64,
    ) -> (Result<Arc<VerifiedToken>, AuthError>, bool) {
        let audience = audience.unwrap_or(&self.issuer);
        let (result, hit) = if audience == self.issuer {
            snapshot.api.verify_traced(token, now)
        } else {
            match self.cache(snapshot, options, audience) {
                Ok(cache) => cache.verify_traced(token, now),
                Err(e) => return (Err(e), false),
            }
        };
        (result.map_err(AuthError::Invalid), hit)
    }

    fn cache(
        &self,
        snapshot: &Arc<KeySnapshot>,
        options: &ServerOptions,
        audience: &str,
    ) -> Result<Arc<VerifiedTokenCache>, AuthError> {
        if let Ok(built) = self.built.read()
            && let Some(b) = built.as_ref()
            && Arc::ptr_eq(&b.snapshot, snapshot)
            && let Some(cache) = b.caches.get(audience)
        {
            return Ok(Arc::clone(cache));
        }
        let mut caches = HashMap::with_capacity(self.audiences.len());
        for aud in self.audiences.iter().map(String::as_str).chain([audience]) {
            let verifier = snapshot.verifier_for(options, aud).map_err(AuthError::Invalid)?;
            caches.insert(
                aud.to_owned(),
                Arc::new(VerifiedTokenCache::new(verifier, CACHE_CAPACITY)),
            );
        }
        let cache = caches.get(audience).cloned().ok_or(AuthError::MissingClaim("aud"))?;
        let mut slot = self.built.write().unwrap_or_else(|p| p.into_inner());
        // Another request may have rebuilt for this snapshot meanwhile: keep
        // its caches (they may hold entries) and use them.
        if let Some(b) = slot.as_ref()
            && Arc::ptr_eq(&b.snapshot, snapshot)
            && let Some(existing) = b.caches.get(audience)
        {
            return Ok(Arc::clone(existing));
        }
        *slot = Some(Built {
            snapshot: Arc::clone(snapshot),
            caches,
        });
        Ok(cache)
    }
}
