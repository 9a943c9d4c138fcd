//! Signing-key operations over any [`Store`]: the rules come from
//! [`warden_keys::Keyring`], the records from the store.

use warden_jose::{Algorithm, JwkSet, SigningKey, VerifyingKey};
use warden_keys::{KeyRecord, KeyState, Keyring, MasterKey, RotationPolicy};

use crate::Store;
use crate::error::StoreError;

/// Rotation, retirement, signing and publication of keys.
#[derive(Debug, Clone)]
pub struct KeyManager<S> {
    store: S,
    master: MasterKey,
    policy: RotationPolicy,
}

impl<S: Store> KeyManager<S> {
    /// Binds `master` to the store (first use records its fingerprint;
    /// later uses must present the same key) and returns the manager.
    pub async fn open(store: S, master: MasterKey, policy: RotationPolicy) -> Result<Self, StoreError> {
        let actual = master.fingerprint();
        let expected = store.bind_master_key(&actual).await?;
        if expected != actual {
            return Err(StoreError::MasterKeyMismatch { expected, actual });
        }
        Ok(KeyManager { store, master, policy })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Every key with the rotation rules applied.
    pub async fn keyring(&self) -> Result<Keyring, StoreError> {
        Ok(Keyring::new(self.store.list_keys().await?, self.policy))
    }

    /// Every key and its state at `now`.
    pub async fn list(&self, now: u64) -> Result<Vec<(KeyRecord, KeyState)>, StoreError> {
        let ring = self.keyring().await?;
        Ok(ring.states(now).into_iter().map(|(r, s)| (r.clone(), s)).collect())
    }

    /// Makes a new key for `alg`. It is published at once and signs after
    /// the publication lead (at once for the first key or `immediately`).
    pub async fn rotate(&self, alg: Algorithm, now: u64, immediately: bool) -> Result<KeyRecord, StoreError> {
        let schedule = self.keyring().await?.schedule_new_key(now, immediately)?;
        let record = KeyRecord::generate(&self.master, alg, schedule)?;
        self.store.insert_key(&record).await?;
        Ok(record)
    }

    /// Withdraws `kid` from publication, under the rotation rules.
    pub async fn retire(&self, kid: &str, now: u64, force: bool) -> Result<(), StoreError> {
        self.keyring().await?.check_retire(kid, now, force)?;
        if !self.store.retire_key(kid, now).await? {
            return Err(warden_keys::KeyError::RetiredConcurrently(kid.to_owned()).into());
        }
        Ok(())
    }

    /// Retires every key whose tokens have all expired; returns their kids.
    pub async fn sweep(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let expired = self.keyring().await?.sweep(now);
        for kid in &expired {
            self.store.retire_key(kid, now).await?;
        }
        Ok(expired)
    }

    /// The key that signs at `now`, decrypted.
    pub async fn signing_key(&self, now: u64) -> Result<SigningKey, StoreError> {
        let ring = self.keyring().await?;
        Ok(ring.signing(now)?.open(&self.master)?)
    }

    /// The public keys to publish at `now`.
    pub async fn jwks(&self, now: u64) -> Result<JwkSet, StoreError> {
        Ok(JwkSet::from_keys(published_keys(&self.store, self.policy, now).await?))
    }
}

/// The public keys published at `now` (pending, active and in overlap).
/// Needs no master key: only public halves are read.
pub async fn published_keys<S: Store>(
    store: &S,
    policy: RotationPolicy,
    now: u64,
) -> Result<Vec<VerifyingKey>, StoreError> {
    let ring = Keyring::new(store.list_keys().await?, policy);
    Ok(ring
        .published(now)
        .into_iter()
        .map(KeyRecord::verifying_key)
        .collect::<Result<Vec<_>, _>>()?)
}
