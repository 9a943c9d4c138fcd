//! Verified-token caches for the audiences of the gateway's routes:
//! Warden access tokens for a route's audience (the issuer by default),
//! verified with the published keys and cached per audience.
//!
//! The caches are built from a [`KeySnapshot`] and rebuilt when the server
//! swaps the snapshot (a key was published or retired), so a cache never
//! answers for keys that are gone. The issuer audience reuses the
//! snapshot's own cache, which revocation also invalidates.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warden_jose::{JoseError, UnverifiedToken, VerifiedToken, VerifiedTokenCache};

use crate::keys::{KeySnapshot, TOKEN_CACHE_CAPACITY};
use crate::options::ServerOptions;

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
    /// of `snapshot`; also says whether the verified-token cache answered
    /// (for the hit-ratio metric). `decoded` is the same token already
    /// decoded, if it was (to read its issuer): a cache miss verifies it
    /// without decoding it again.
    pub fn verify(
        &self,
        snapshot: &Arc<KeySnapshot>,
        options: &ServerOptions,
        audience: Option<&str>,
        token: &str,
        decoded: Option<&UnverifiedToken<'_>>,
        now: u64,
    ) -> (Result<Arc<VerifiedToken>, JoseError>, bool) {
        let audience = audience.unwrap_or(&self.issuer);
        let verify = |cache: &VerifiedTokenCache| match decoded {
            Some(decoded) if decoded.as_str() == token => cache.verify_unverified_traced(decoded, now),
            _ => cache.verify_traced(token, now),
        };
        if audience == self.issuer {
            return verify(&snapshot.api);
        }
        match self.cache(snapshot, options, audience) {
            Ok(cache) => verify(&cache),
            Err(e) => (Err(e), false),
        }
    }

    /// Whether the verified-token cache of `audience` (`None`: the
    /// issuer) under `snapshot` knows `token` (a hit that passes the time
    /// checks), so that it needs no decoding to tell whose it is.
    pub fn knows(
        &self,
        snapshot: &Arc<KeySnapshot>,
        options: &ServerOptions,
        audience: Option<&str>,
        token: &str,
        now: u64,
    ) -> bool {
        let audience = audience.unwrap_or(&self.issuer);
        let known = |cache: &VerifiedTokenCache| cache.cached(token, now).is_some_and(|r| r.is_ok());
        if audience == self.issuer {
            return known(&snapshot.api);
        }
        self.cache(snapshot, options, audience).is_ok_and(|cache| known(&cache))
    }

    fn cache(
        &self,
        snapshot: &Arc<KeySnapshot>,
        options: &ServerOptions,
        audience: &str,
    ) -> Result<Arc<VerifiedTokenCache>, JoseError> {
        if let Ok(built) = self.built.read()
            && let Some(b) = built.as_ref()
            && Arc::ptr_eq(&b.snapshot, snapshot)
            && let Some(cache) = b.caches.get(audience)
        {
            return Ok(Arc::clone(cache));
        }
        let fresh = |aud: &str| -> Result<Arc<VerifiedTokenCache>, JoseError> {
            let verifier = snapshot.verifier_for(options, aud)?;
            Ok(Arc::new(VerifiedTokenCache::new(verifier, TOKEN_CACHE_CAPACITY)))
        };
        let mut caches = HashMap::with_capacity(self.audiences.len() + 1);
        for aud in &self.audiences {
            caches.insert(aud.clone(), fresh(aud)?);
        }
        let cache = match caches.get(audience) {
            Some(cache) => Arc::clone(cache),
            None => {
                let cache = fresh(audience)?;
                caches.insert(audience.to_owned(), Arc::clone(&cache));
                cache
            }
        };
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
