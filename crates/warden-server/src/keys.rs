//! The server's view of its signing keys: the key that signs now and the
//! verifiers built from the published set, reloaded from the store every
//! few seconds so that a rotation made by the CLI or another replica is
//! picked up without a restart. A key is published before it signs
//! (the keyring's publication lead), so every replica that reloads within
//! the lead verifies tokens signed with a new key at once.

use std::sync::{Arc, RwLock};

use warden_jose::{
    JwkSet, KeySet, SigningKey, TokenVerifier, TrustedIssuer, Validation, VerifiedTokenCache, VerifyingKey,
};
use warden_keys::KeyState;
use warden_store::{KeyManager, Store, StoreError};

use crate::options::ServerOptions;

/// Most tokens each verified-token cache holds (Warden's own tokens for
/// the APIs, each gateway audience, each federated issuer). An entry is
/// the token's claims, about 1 KiB; past the cap the oldest are evicted
/// and verified again when they come back (tens of microseconds). Sized so
/// that a server with a few caches stays within its memory budget under a
/// flood of distinct tokens.
pub const TOKEN_CACHE_CAPACITY: usize = 20_000;

/// One consistent set of keys and the verifiers built from them.
#[derive(Debug)]
pub struct KeySnapshot {
    /// The key that signs now, if any.
    pub signing: Option<Arc<SigningKey>>,
    /// Verifies Warden tokens meant for Warden's own APIs (`aud` = issuer), cached.
    pub api: VerifiedTokenCache,
    /// Verifies Warden tokens of any audience (token exchange, introspection, revocation).
    pub any_audience: TokenVerifier,
    /// The public JWKS.
    pub jwks: serde_json::Value,
    /// Warden as a trusted issuer of the published keys (for verifiers of
    /// other audiences: [`KeySnapshot::verifier_for`]).
    issuer: TrustedIssuer,
    kids: Vec<String>,
}

/// The current [`KeySnapshot`], swapped whole on reload.
#[derive(Debug)]
pub struct KeyCache {
    current: RwLock<Arc<KeySnapshot>>,
    /// When a token's unknown `kid` last made it re-read the store (Unix
    /// seconds): at most once a second, so garbage kids cannot hammer it.
    last_unknown_kid_reload: std::sync::atomic::AtomicU64,
    /// One unknown-kid reload at a time; the others wait and share it.
    unknown_kid_lock: tokio::sync::Mutex<()>,
}

fn validation(options: &ServerOptions, audience: &str) -> Result<Validation, warden_jose::JoseError> {
    Ok(Validation::access_token(audience)
        .with_leeway(options.leeway)?
        .with_max_token_bytes(options.max_token_bytes)
        .with_algorithms(options.algorithms))
}

fn build(
    options: &ServerOptions,
    published: Vec<VerifyingKey>,
    signing: Option<Arc<SigningKey>>,
) -> Result<KeySnapshot, StoreError> {
    let kids = published.iter().map(|k| k.kid().to_owned()).collect();
    let jwks = JwkSet::from_keys(published.clone()).to_json();
    let keys = KeySet::new(published).map_err(|e| StoreError::Corrupt(format!("published keys: {e}")))?;
    let issuer = TrustedIssuer::new(options.issuer.clone(), keys, options.algorithms);
    let v = validation(options, &options.issuer).map_err(|e| StoreError::Corrupt(format!("validation: {e}")))?;
    let api = TokenVerifier::new([issuer.clone()], v.clone());
    let any = TokenVerifier::new([issuer.clone()], v.with_any_audience());
    Ok(KeySnapshot {
        signing,
        api: VerifiedTokenCache::new(api, TOKEN_CACHE_CAPACITY),
        any_audience: any,
        jwks,
        issuer,
        kids,
    })
}

impl KeyCache {
    /// Loads the keys for the first time.
    pub async fn load<S: Store>(
        manager: &KeyManager<S>,
        options: &ServerOptions,
        now: u64,
    ) -> Result<Self, StoreError> {
        let snapshot = Self::read(manager, options, now, None).await?;
        Ok(KeyCache {
            current: RwLock::new(Arc::new(snapshot)),
            last_unknown_kid_reload: std::sync::atomic::AtomicU64::new(0),
            unknown_kid_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<KeySnapshot> {
        match self.current.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Re-reads the keys because a token verified against `seen` named a
    /// `kid` this replica does not know (another replica or the CLI may
    /// have just rotated). True when the keys in force are newer than
    /// `seen`, so the token is worth verifying again. Concurrent callers
    /// share one reload; the store is read at most once a second.
    pub async fn reload_for_unknown_kid<S: Store>(
        &self,
        seen: &Arc<KeySnapshot>,
        manager: &KeyManager<S>,
        options: &ServerOptions,
        now: u64,
    ) -> bool {
        use std::sync::atomic::Ordering;
        if !Arc::ptr_eq(&self.get(), seen) {
            return true;
        }
        let _one_at_a_time = self.unknown_kid_lock.lock().await;
        if !Arc::ptr_eq(&self.get(), seen) {
            return true;
        }
        let last = self.last_unknown_kid_reload.load(Ordering::Relaxed);
        if now <= last {
            return false;
        }
        self.last_unknown_kid_reload.store(now, Ordering::Relaxed);
        match self.reload(manager, options, now).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = %e, "key reload for an unknown kid failed");
                false
            }
        }
    }

    /// Reloads from the store; rebuilds only when the published set or the
    /// signing key changed (so the verified-token cache survives). Returns
    /// whether anything changed.
    pub async fn reload<S: Store>(
        &self,
        manager: &KeyManager<S>,
        options: &ServerOptions,
        now: u64,
    ) -> Result<bool, StoreError> {
        let old = self.get();
        let fresh = Self::read(manager, options, now, Some(&old)).await?;
        let Some(fresh) = fresh.changed(&old) else {
            return Ok(false);
        };
        if let Ok(mut slot) = self.current.write() {
            *slot = Arc::new(fresh);
        }
        Ok(true)
    }

    async fn read<S: Store>(
        manager: &KeyManager<S>,
        options: &ServerOptions,
        now: u64,
        old: Option<&KeySnapshot>,
    ) -> Result<KeySnapshot, StoreError> {
        let ring = manager.keyring().await?;
        let published = ring
            .published(now)
            .into_iter()
            .map(warden_keys::KeyRecord::verifying_key)
            .collect::<Result<Vec<_>, _>>()?;
        let active_kid = ring
            .states(now)
            .into_iter()
            .find(|(_, s)| *s == KeyState::Active)
            .map(|(r, _)| r.kid.clone());
        let signing = match (active_kid, old.and_then(|o| o.signing.clone())) {
            (Some(kid), Some(current)) if current.kid() == kid => Some(current),
            (Some(_), _) => Some(Arc::new(manager.signing_key(now).await?)),
            (None, _) => None,
        };
        build(options, published, signing)
    }
}

impl KeySnapshot {
    /// Verifies Warden access tokens whose `aud` holds `audience` (the
    /// gateway's routes), with the same rules as [`KeySnapshot::api`].
    pub fn verifier_for(
        &self,
        options: &ServerOptions,
        audience: &str,
    ) -> Result<TokenVerifier, warden_jose::JoseError> {
        Ok(TokenVerifier::new(
            [self.issuer.clone()],
            validation(options, audience)?,
        ))
    }

    fn changed(self, old: &KeySnapshot) -> Option<KeySnapshot> {
        let same_signing = match (&self.signing, &old.signing) {
            (Some(a), Some(b)) => a.kid() == b.kid(),
            (None, None) => true,
            _ => false,
        };
        if same_signing && self.kids == old.kids {
            None
        } else {
            Some(self)
        }
    }
}
