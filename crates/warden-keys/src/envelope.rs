//! Envelope encryption of private keys (AES-256-GCM).
//!
//! Each private key is encrypted under its own random data key, and the
//! data key under the master key, so that a new master key only has to
//! re-wrap 32-byte data keys. Both encryptions bind the key record
//! (`kid` and `alg`) as associated data: a sealed key moved to another
//! record fails to open.
//!
//! Layout (version 1):
//! `"WKE1" | master fingerprint (8) | wrap nonce (12) | wrapped data key (32 + 16) | data nonce (12) | ciphertext + tag`

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::master_key::MasterKey;

const MAGIC: &[u8; 4] = b"WKE1";
const FP_LEN: usize = 8;
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = 32 + TAG_LEN;
const HEADER_LEN: usize = MAGIC.len() + FP_LEN + NONCE_LEN + WRAPPED_LEN + NONCE_LEN;

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, KeyError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| KeyError::Crypto("AEAD key setup"))
}

fn random<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    rng.fill(&mut out).map_err(|_| KeyError::Crypto("randomness"))?;
    Ok(out)
}

/// Seals `plaintext` under `master`, bound to `context` (the key record).
pub fn seal(master: &MasterKey, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let rng = SystemRandom::new();
    let data_key = Zeroizing::new(random::<32>(&rng)?);
    let wrap_nonce = random::<NONCE_LEN>(&rng)?;
    let data_nonce = random::<NONCE_LEN>(&rng)?;

    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&master.fingerprint_bytes());
    out.extend_from_slice(&wrap_nonce);

    let mut wrapped = data_key.to_vec();
    aead_key(master.bytes())?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(wrap_nonce),
            Aad::from(context),
            &mut wrapped,
        )
        .map_err(|_| KeyError::Crypto("key wrapping"))?;
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(&data_nonce);

    let mut body = plaintext.to_vec();
    aead_key(data_key.as_slice())?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(data_nonce), Aad::from(context), &mut body)
        .map_err(|_| KeyError::Crypto("key sealing"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a sealed key. A wrong master key and a damaged or moved envelope
/// give distinct errors; `label` names the record in the latter.
pub fn open(master: &MasterKey, context: &[u8], sealed: &[u8], label: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let tampered = || KeyError::Tampered(label.to_owned());
    let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or_else(tampered)?;
    let (fp, rest) = rest.split_at_checked(FP_LEN).ok_or_else(tampered)?;
    let expected_fp = master.fingerprint_bytes();
    if fp != expected_fp {
        return Err(KeyError::WrongMasterKey {
            expected: hex::encode(fp),
            actual: master.fingerprint(),
        });
    }
    let (wrap_nonce, rest) = rest.split_at_checked(NONCE_LEN).ok_or_else(tampered)?;
    let (wrapped, rest) = rest.split_at_checked(WRAPPED_LEN).ok_or_else(tampered)?;
    let (data_nonce, body) = rest.split_at_checked(NONCE_LEN).ok_or_else(tampered)?;
    let nonce = |n: &[u8]| Nonce::try_assume_unique_for_key(n).map_err(|_| tampered());

    let mut data_key = Zeroizing::new(wrapped.to_vec());
    let data_key_len = aead_key(master.bytes())?
        .open_in_place(nonce(wrap_nonce)?, Aad::from(context), &mut data_key)
        .map_err(|_| tampered())?
        .len();
    let data_key = data_key.get(..data_key_len).ok_or_else(tampered)?;

    let mut plaintext = Zeroizing::new(body.to_vec());
    let len = aead_key(data_key)?
        .open_in_place(nonce(data_nonce)?, Aad::from(context), &mut plaintext)
        .map_err(|_| tampered())?
        .len();
    plaintext.truncate(len);
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let master = MasterKey::generate().unwrap();
        let sealed = seal(&master, b"kid-1|EdDSA", b"secret pkcs8 bytes").unwrap();
        assert!(!sealed.windows(18).any(|w| w == b"secret pkcs8 bytes"));
        assert_eq!(
            open(&master, b"kid-1|EdDSA", &sealed, "kid-1").unwrap().as_slice(),
            b"secret pkcs8 bytes"
        );
        assert_eq!(
            open(&master, b"kid-2|EdDSA", &sealed, "kid-1"),
            Err(KeyError::Tampered("kid-1".into()))
        );
    }

    #[test]
    fn wrong_master_key_is_named() {
        let sealed = seal(&MasterKey::generate().unwrap(), b"c", b"x").unwrap();
        let other = MasterKey::generate().unwrap();
        assert!(matches!(
            open(&other, b"c", &sealed, "k"),
            Err(KeyError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let master = MasterKey::generate().unwrap();
        let sealed = seal(&master, b"c", b"private").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&master, b"c", &bad, "k").is_err(), "byte {i}");
        }
        assert!(open(&master, b"c", &sealed[..sealed.len() - 1], "k").is_err());
    }

    #[test]
    fn master_key_parsing_and_redaction() {
        let key = MasterKey::generate().unwrap();
        let text = key.to_base64();
        let again = MasterKey::from_base64(&format!("{}\n", text.as_str())).unwrap();
        assert_eq!(key.fingerprint(), again.fingerprint());
        assert!(!format!("{key:?}").contains(text.as_str()));
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").unwrap_err(),
            KeyError::MalformedMasterKey
        );
        assert_eq!(
            MasterKey::from_base64("not base64!").unwrap_err(),
            KeyError::MalformedMasterKey
        );
    }
}
