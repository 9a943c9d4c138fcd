//! A bounded cache of verified tokens, so that a client reusing its token
//! for the token's lifetime pays for the signature check once.
//!
//! Rules (DESIGN.md § Tokens): entries are keyed by SHA-256 of the *whole*
//! token, never by the signature alone (a signature can be valid for
//! several encodings of header and payload); an entry holds the verified
//! claims and expires at the token's `exp`; revocation removes entries
//! explicitly. Policy is still evaluated on every request by the caller.
//!
//! A cache belongs to one [`TokenVerifier`]: when the verifier's keys or
//! rules change, call [`VerifiedTokenCache::clear`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::digest;

use crate::error::JoseError;
use crate::verifier::{TokenVerifier, VerifiedToken};

const SHARDS: usize = 16;

type TokenHash = [u8; 32];

/// Bounded, sharded cache of verified tokens.
#[derive(Debug)]
pub struct VerifiedTokenCache {
    shards: Vec<Mutex<HashMap<TokenHash, Arc<VerifiedToken>>>>,
    per_shard: usize,
}

fn hash(token: &str) -> TokenHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl VerifiedTokenCache {
    /// A cache holding at most about `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        VerifiedTokenCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &TokenHash) -> Option<MutexGuard<'_, HashMap<TokenHash, Arc<VerifiedToken>>>> {
        let shard = self.shards.get(usize::from(key[0]) % SHARDS)?;
        // A poisoned shard only means another thread panicked mid-insert;
        // the map itself is still consistent.
        Some(shard.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The cached verification of `token`, if present and not expired.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<VerifiedToken>> {
        let key = hash(token);
        let mut shard = self.shard(&key)?;
        let hit = shard.get(&key)?;
        if now < hit.claims().exp() {
            Some(Arc::clone(hit))
        } else {
            shard.remove(&key);
            None
        }
    }

    /// Remembers a verified token until its `exp`.
    pub fn insert(&self, token: &str, verified: Arc<VerifiedToken>, now: u64) {
        if now >= verified.claims().exp() {
            return;
        }
        let key = hash(token);
        let per_shard = self.per_shard;
        let Some(mut shard) = self.shard(&key) else {
            return;
        };
        if shard.len() >= per_shard {
            // Drop expired entries and, if that is not enough, an eighth of
            // the shard, so eviction costs O(1) amortised per insert.
            let mut budget = (per_shard / 8).max(1);
            shard.retain(|_, v| {
                if now >= v.claims().exp() {
                    return false;
                }
                if budget > 0 {
                    budget -= 1;
                    return false;
                }
                true
            });
        }
        shard.insert(key, verified);
    }

    /// Verifies `token`, answering from the cache when it can.
    pub fn verify(&self, verifier: &TokenVerifier, token: &str, now: u64) -> Result<Arc<VerifiedToken>, JoseError> {
        let max = verifier.validation().max_token_bytes;
        if token.len() > max {
            return Err(JoseError::TokenTooLarge { len: token.len(), max });
        }
        if let Some(hit) = self.get(token, now) {
            // The same time rules as a fresh verification, so that a clock
            // stepped backwards cannot revive a token before its `nbf`.
            hit.claims().check_times(now, verifier.validation().leeway)?;
            return Ok(hit);
        }
        let verified = Arc::new(verifier.verify(token, now)?);
        self.insert(token, Arc::clone(&verified), now);
        Ok(verified)
    }

    /// Removes every cached token with this `jti` (on revocation). Returns
    /// how many were removed.
    pub fn invalidate_jti(&self, jti: &str) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|_, v| v.claims().jti() != Some(jti));
            removed += before - shard.len();
        }
        removed
    }

    /// Removes one token.
    pub fn invalidate_token(&self, token: &str) -> bool {
        let key = hash(token);
        self.shard(&key).is_some_and(|mut s| s.remove(&key).is_some())
    }

    /// Empties the cache (after key or rule changes).
    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{AccessTokenClaims, encode};
    use crate::{Algorithm, AlgorithmSet, KeySet, SigningKey, TrustedIssuer, Validation};

    fn setup(nbf: u64, exp: u64) -> (TokenVerifier, String) {
        let (key, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let claims = AccessTokenClaims {
            iss: "https://i".into(),
            sub: "user:a".into(),
            aud: vec!["api".into()],
            exp,
            iat: nbf,
            nbf,
            jti: "j".into(),
            client_id: "c".into(),
            scope: String::new(),
            roles: vec![],
            tenant: None,
            act: None,
        };
        let token = encode(&key, "at+jwt", &claims).unwrap();
        let issuer = TrustedIssuer::new(
            "https://i",
            KeySet::new([key.verifying_key().clone()]).unwrap(),
            AlgorithmSet::asymmetric(),
        );
        (TokenVerifier::new([issuer], Validation::access_token("api")), token)
    }

    #[test]
    fn hits_obey_the_same_time_rules_as_fresh_verification() {
        let (verifier, token) = setup(1000, 2000);
        let cache = VerifiedTokenCache::new(16);
        assert!(cache.verify(&verifier, &token, 1500).is_ok());
        assert_eq!(cache.len(), 1);
        // A clock stepped backwards before nbf - leeway must not revive the token.
        assert_eq!(
            cache.verify(&verifier, &token, 900).unwrap_err(),
            JoseError::NotYetValid
        );
        // Expiry removes the entry.
        assert!(cache.get(&token, 2000).is_none());
        assert!(cache.is_empty());
        assert_eq!(cache.verify(&verifier, &token, 2100).unwrap_err(), JoseError::Expired);
    }

    #[test]
    fn bounded_and_invalidated() {
        let (verifier, token) = setup(1000, 2000);
        let cache = VerifiedTokenCache::new(16);
        let verified = Arc::new(verifier.verify(&token, 1500).unwrap());
        for i in 0..1000 {
            cache.insert(&format!("{token}{i}"), Arc::clone(&verified), 1500);
        }
        assert!(cache.len() <= 16 + SHARDS, "{}", cache.len());
        cache.insert(&token, Arc::clone(&verified), 1500);
        assert!(cache.invalidate_jti("j") >= 1);
        assert!(cache.get(&token, 1500).is_none());
        // Oversize tokens are refused before hashing.
        let huge = "a".repeat(9000);
        assert!(matches!(
            cache.verify(&verifier, &huge, 1500),
            Err(JoseError::TokenTooLarge { .. })
        ));
    }
}
