//! A bounded cache of verified tokens, so that a client reusing its token
//! for the token's lifetime pays for the signature check once.
//!
//! Rules (docs/tokens-and-keys.md): entries are keyed by SHA-256 of the *whole*
//! token, never by the signature alone (a signature can be valid for
//! several encodings of header and payload); an entry holds the verified
//! claims and expires at the token's `exp`; revocation removes entries
//! explicitly. Policy is still evaluated on every request by the caller.
//!
//! A cache owns its [`TokenVerifier`], so a token verified for one audience
//! or issuer can never be answered from the cache of another. To change
//! keys or rules, build a new cache.
//!
//! Revocation is by `jti` ([`VerifiedTokenCache::invalidate_jti`]): ECDSA
//! signatures are malleable, so one token can have several valid
//! encodings, and only the `jti` names them all. An invalidation that runs
//! while a token is being verified also stops that token from being cached
//! (an epoch counter checked under the shard lock).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::digest;

use crate::compact::UnverifiedToken;
use crate::error::JoseError;
use crate::verifier::{TokenVerifier, VerifiedToken};

const SHARDS: usize = 16;

type TokenHash = [u8; 32];

/// A [`TokenVerifier`] with a bounded, sharded cache of the tokens it
/// verified.
#[derive(Debug)]
pub struct VerifiedTokenCache {
    verifier: TokenVerifier,
    shards: Vec<Mutex<HashMap<TokenHash, Arc<VerifiedToken>>>>,
    per_shard: usize,
    /// Incremented by every invalidation.
    epoch: AtomicU64,
}

fn hash(token: &str) -> TokenHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl VerifiedTokenCache {
    /// Wraps `verifier` with a cache of at most about `capacity` tokens.
    pub fn new(verifier: TokenVerifier, capacity: usize) -> Self {
        VerifiedTokenCache {
            verifier,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            epoch: AtomicU64::new(0),
        }
    }

    /// The verifier behind the cache.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
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

    /// Remembers a verified token until its `exp`, unless an invalidation
    /// happened since `epoch` was read.
    fn insert(&self, token: &str, verified: Arc<VerifiedToken>, now: u64, epoch: u64) {
        if now >= verified.claims().exp() {
            return;
        }
        let key = hash(token);
        let per_shard = self.per_shard;
        let Some(mut shard) = self.shard(&key) else {
            return;
        };
        // Checked under the shard lock: an invalidation either sees this
        // entry when it scans the shard, or has already moved the epoch.
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
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

    /// The cached verification of `token` under the same rules as
    /// [`verify`](Self::verify) gives a hit (size cap, time checks), or
    /// `None` when the cache does not know it: never a verification.
    pub fn cached(&self, token: &str, now: u64) -> Option<Result<Arc<VerifiedToken>, JoseError>> {
        let validation = self.verifier.validation();
        if token.len() > validation.max_token_bytes {
            return None;
        }
        let hit = self.get(token, now)?;
        Some(hit.claims().check_times(now, validation.leeway).map(|()| hit))
    }

    /// Verifies `token`, answering from the cache when it can.
    pub fn verify(&self, token: &str, now: u64) -> Result<Arc<VerifiedToken>, JoseError> {
        self.verify_traced(token, now).0
    }

    /// As [`verify`](Self::verify), and whether the cache answered (a hit,
    /// whatever the time checks then said) rather than the verifier (for
    /// hit-ratio metrics).
    pub fn verify_traced(&self, token: &str, now: u64) -> (Result<Arc<VerifiedToken>, JoseError>, bool) {
        self.answer(token, now, |verifier| verifier.verify(token, now))
    }

    /// As [`verify_traced`](Self::verify_traced) for a token already split
    /// and decoded (to read its issuer): a miss verifies it without
    /// decoding it again.
    pub fn verify_unverified_traced(
        &self,
        token: &UnverifiedToken<'_>,
        now: u64,
    ) -> (Result<Arc<VerifiedToken>, JoseError>, bool) {
        self.answer(token.as_str(), now, |verifier| verifier.verify_unverified(token, now))
    }

    /// The cached verification of `token`, or `verify`'s, remembered.
    fn answer(
        &self,
        token: &str,
        now: u64,
        verify: impl FnOnce(&TokenVerifier) -> Result<VerifiedToken, JoseError>,
    ) -> (Result<Arc<VerifiedToken>, JoseError>, bool) {
        let validation = self.verifier.validation();
        let max = validation.max_token_bytes;
        if token.len() > max {
            return (Err(JoseError::TokenTooLarge { len: token.len(), max }), false);
        }
        if let Some(hit) = self.get(token, now) {
            // The same time rules as a fresh verification, so that a clock
            // stepped backwards cannot revive a token before its `nbf`.
            let checked = hit.claims().check_times(now, validation.leeway).map(|()| hit);
            return (checked, true);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let verified = match verify(&self.verifier) {
            Ok(v) => Arc::new(v),
            Err(e) => return (Err(e), false),
        };
        self.insert(token, Arc::clone(&verified), now, epoch);
        (Ok(verified), false)
    }

    /// Removes every cached token with this `jti` (on revocation). Returns
    /// how many were removed.
    pub fn invalidate_jti(&self, jti: &str) -> usize {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|_, v| v.claims().jti() != Some(jti));
            removed += before - shard.len();
        }
        removed
    }

    /// Empties the cache.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
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
            cnf: None,
            authorization_details: None,
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
        let cache = VerifiedTokenCache::new(verifier, 16);
        assert!(cache.verify(&token, 1500).is_ok());
        assert_eq!(cache.len(), 1);
        // A clock stepped backwards before nbf - leeway must not revive the token.
        assert_eq!(cache.verify(&token, 900).unwrap_err(), JoseError::NotYetValid);
        // Expiry removes the entry.
        assert!(cache.get(&token, 2000).is_none());
        assert!(cache.is_empty());
        assert_eq!(cache.verify(&token, 2100).unwrap_err(), JoseError::Expired);
    }

    #[test]
    fn traced_verification_says_whether_the_cache_answered() {
        let (verifier, token) = setup(1000, 2000);
        let cache = VerifiedTokenCache::new(verifier, 16);
        let (first, hit) = cache.verify_traced(&token, 1500);
        assert!(first.is_ok() && !hit);
        let (second, hit) = cache.verify_traced(&token, 1501);
        assert!(second.is_ok() && hit);
        let (bad, hit) = cache.verify_traced("a.b.c", 1501);
        assert!(bad.is_err() && !hit);
    }

    #[test]
    fn bounded_and_invalidated() {
        let (verifier, token) = setup(1000, 2000);
        let verified = Arc::new(verifier.verify(&token, 1500).unwrap());
        let cache = VerifiedTokenCache::new(verifier, 16);
        for i in 0..1000 {
            cache.insert(&format!("{token}{i}"), Arc::clone(&verified), 1500, 0);
        }
        assert!(cache.len() <= 16 + SHARDS, "{}", cache.len());
        cache.insert(&token, Arc::clone(&verified), 1500, 0);
        assert!(cache.invalidate_jti("j") >= 1);
        // An insert that started before the invalidation is dropped.
        cache.insert(&token, Arc::clone(&verified), 1500, 0);
        assert!(cache.get(&token, 1500).is_none());
        assert!(cache.get(&token, 1500).is_none());
        // Oversize tokens are refused before hashing.
        let huge = "a".repeat(9000);
        assert!(matches!(
            cache.verify(&huge, 1500),
            Err(JoseError::TokenTooLarge { .. })
        ));
    }

    #[test]
    fn a_token_decoded_once_is_verified_by_every_rule() {
        let (verifier, token) = setup(1000, 2000);
        let once = crate::UnverifiedToken::parse(&token, 8192).unwrap();
        assert_eq!(once.issuer(), Some("https://i"));
        assert_eq!(
            verifier.verify_unverified(&once, 1500).unwrap(),
            verifier.verify(&token, 1500).unwrap()
        );
        assert_eq!(verifier.verify_unverified(&once, 2100).unwrap_err(), JoseError::Expired);
        // The verifier's own size cap and algorithms, not the parse's.
        let issuers: Vec<TrustedIssuer> = verifier.issuers.values().cloned().collect();
        let small = TokenVerifier::new(
            issuers.clone(),
            Validation::access_token("api").with_max_token_bytes(10),
        );
        assert!(matches!(
            small.verify_unverified(&once, 1500),
            Err(JoseError::TokenTooLarge { .. })
        ));
        let mut es256 = AlgorithmSet::EMPTY;
        es256.insert(Algorithm::ES256);
        let other = TokenVerifier::new(issuers.clone(), Validation::access_token("api").with_algorithms(es256));
        assert_eq!(
            other.verify_unverified(&once, 1500).unwrap_err(),
            JoseError::AlgNotAllowed(Algorithm::EdDSA)
        );
        let wrong_audience = TokenVerifier::new(issuers, Validation::access_token("other"));
        assert_eq!(
            wrong_audience.verify_unverified(&once, 1500).unwrap_err(),
            JoseError::AudienceMismatch
        );
        // A payload changed after signing parses, and fails the signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = crate::base64url::encode(
            br#"{"iss":"https://i","sub":"user:root","aud":"api","exp":2000,"iat":1000,"nbf":1000,"jti":"j","client_id":"c"}"#,
        );
        parts[1] = &forged_payload;
        let forged = parts.join(".");
        let forged = crate::UnverifiedToken::parse(&forged, 8192).unwrap();
        assert_eq!(forged.issuer(), Some("https://i"));
        assert_eq!(
            verifier.verify_unverified(&forged, 1500).unwrap_err(),
            JoseError::InvalidSignature
        );
        // The cache answers a decoded token and its raw form alike.
        let cache = VerifiedTokenCache::new(verifier, 16);
        let (first, hit) = cache.verify_unverified_traced(&once, 1500);
        assert!(first.is_ok() && !hit);
        let (again, hit) = cache.verify_traced(&token, 1501);
        assert!(again.is_ok() && hit);
        let (forged, hit) = cache.verify_unverified_traced(&forged, 1501);
        assert!(forged.is_err() && !hit);
    }
}
