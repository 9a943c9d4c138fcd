//! The browser carries a sign-in in progress (the provider, `state`,
//! `nonce`, the PKCE verifier and where to return) in a cookie sealed with
//! AES-256-GCM under a key derived from the master key: every replica can
//! open it, nobody else can read or forge it, and no server keeps a row
//! per half-finished sign-in. Pure apart from the random nonce.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a sealed value could not be made or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not sealed by this deployment, altered, or not base64url.
    #[error("the sign-in state is not valid")]
    Invalid,
    /// No randomness or a serialisation failure.
    #[error("the sign-in state could not be sealed")]
    Internal,
}

/// Seals and opens values for one purpose.
pub struct Sealer(LessSafeKey);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Bound into every seal, so a value sealed for another purpose with the
/// same key could never be opened here.
const AAD: &[u8] = b"warden sign-in state v1";

impl Sealer {
    /// The sealer of a deployment with `master`.
    pub fn from_master(master: &warden_keys::MasterKey) -> Result<Self, SealError> {
        let key = master.derive("sign-in state");
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_slice()).map_err(|_| SealError::Internal)?;
        Ok(Sealer(LessSafeKey::new(unbound)))
    }

    /// `value` as JSON, sealed, base64url: random nonce ‖ ciphertext ‖ tag.
    pub fn seal<T: Serialize>(&self, value: &T) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Internal)?;
        let mut data = serde_json::to_vec(value).map_err(|_| SealError::Internal)?;
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut data)
            .map_err(|_| SealError::Internal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(warden_jose::base64url::encode(&out))
    }

    /// The value sealed in `text`.
    pub fn open<T: DeserializeOwned>(&self, text: &str) -> Result<T, SealError> {
        let bytes = warden_jose::base64url::decode(text).ok_or(SealError::Invalid)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Invalid);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Invalid)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(AAD), &mut sealed)
            .map_err(|_| SealError::Invalid)?;
        serde_json::from_slice(plain).map_err(|_| SealError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::from_master(&warden_keys::MasterKey::from_bytes([byte; 32])).unwrap()
    }

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let s = sealer(1);
        let sealed = s.seal(&("state", 42u64)).unwrap();
        assert_eq!(s.open::<(String, u64)>(&sealed).unwrap(), ("state".to_owned(), 42));
        assert_ne!(sealed, s.seal(&("state", 42u64)).unwrap(), "a fresh nonce each time");
        assert_eq!(
            sealer(2).open::<(String, u64)>(&sealed),
            Err(SealError::Invalid),
            "another deployment"
        );
        let mut bytes = warden_jose::base64url::decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = warden_jose::base64url::encode(&bytes);
        assert_eq!(s.open::<(String, u64)>(&altered), Err(SealError::Invalid));
        assert_eq!(s.open::<(String, u64)>("short"), Err(SealError::Invalid));
        assert_eq!(s.open::<(String, u64)>("not base64!"), Err(SealError::Invalid));
    }
}
