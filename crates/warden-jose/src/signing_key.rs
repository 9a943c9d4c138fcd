//! Private keys that sign tokens, each bound to one algorithm.
//!
//! Private material lives only inside the backend's key objects; the
//! PKCS#8 bytes leave this module only when a key is generated, wrapped in
//! [`Zeroizing`] so the caller can seal them. `Debug` never prints them.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use zeroize::Zeroizing;

use crate::alg::Algorithm;
use crate::danger::HmacKey;
use crate::error::JoseError;
use crate::jwk::Jwk;
use crate::verifying_key::VerifyingKey;

/// A signing key with its key id and the public half.
pub struct SigningKey {
    pair: KeyPair,
    public: VerifyingKey,
}

enum KeyPair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Hmac(Box<HmacKey>),
}

/// PKCS#8 DER of a private key, wiped from memory on drop.
pub type Pkcs8 = Zeroizing<Vec<u8>>;

impl SigningKey {
    /// Generates a fresh key for `alg` (RSA keys are 2048 bits) and returns
    /// it with its PKCS#8 encoding for sealing. The kid is the RFC 7638
    /// thumbprint of the public key.
    pub fn generate(alg: Algorithm) -> Result<(Self, Pkcs8), JoseError> {
        let failed = || JoseError::Crypto("key generation");
        let pkcs8: Pkcs8 = match alg {
            Algorithm::EdDSA => Zeroizing::new(
                Ed25519KeyPair::generate()
                    .and_then(|k| k.to_pkcs8())
                    .map_err(|_| failed())?
                    .as_ref()
                    .to_vec(),
            ),
            Algorithm::ES256 | Algorithm::ES384 => {
                let kp = EcdsaKeyPair::generate(ecdsa_signing(alg)?).map_err(|_| failed())?;
                Zeroizing::new(kp.to_pkcs8v1().map_err(|_| failed())?.as_ref().to_vec())
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed())?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = kp.as_der().map_err(|_| failed())?;
                Zeroizing::new(der.as_ref().to_vec())
            }
            Algorithm::HS256 => return Err(JoseError::KeyUnsuitable(alg)),
        };
        let key = SigningKey::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Loads a PKCS#8 private key for `alg`. The kid is the RFC 7638
    /// thumbprint of the public key.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, JoseError> {
        let rejected = || JoseError::InvalidJwk(format!("private key is not a valid {alg} PKCS#8 key"));
        let (pair, public) = match alg {
            Algorithm::EdDSA => {
                let kp = Ed25519KeyPair::from_pkcs8(der).map_err(|_| rejected())?;
                let public = VerifyingKey::ed25519("", kp.public_key().as_ref())?;
                (KeyPair::Ed25519(kp), public)
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let kp = EcdsaKeyPair::from_pkcs8(ecdsa_signing(alg)?, der).map_err(|_| rejected())?;
                let point = kp.public_key().as_ref();
                let size = (point.len().saturating_sub(1)) / 2;
                let (x, y) = point.get(1..).map(|xy| xy.split_at(size)).ok_or_else(rejected)?;
                let public = VerifyingKey::ec(alg, "", x, y)?;
                (KeyPair::Ecdsa(kp), public)
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let kp = RsaKeyPair::from_pkcs8(der).map_err(|_| rejected())?;
                let pk = kp.public_key();
                let public = VerifyingKey::rsa(
                    alg,
                    "",
                    pk.modulus().big_endian_without_leading_zero(),
                    pk.exponent().big_endian_without_leading_zero(),
                )?;
                (KeyPair::Rsa(kp), public)
            }
            Algorithm::HS256 => return Err(JoseError::KeyUnsuitable(alg)),
        };
        let kid = Jwk::from_verifying_key(&public)?.thumbprint();
        Ok(SigningKey {
            pair,
            public: public.with_kid(kid),
        })
    }

    pub(crate) fn hmac(kid: String, key: HmacKey) -> Self {
        let public = VerifyingKey::hmac(kid, key.clone());
        SigningKey {
            pair: KeyPair::Hmac(Box::new(key)),
            public,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// The one algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.public.alg()
    }

    /// The public half, for verification and JWKS publication.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs `message` with this key's algorithm.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let failed = || JoseError::Crypto("signing");
        match &self.pair {
            KeyPair::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
            KeyPair::Ecdsa(kp) => Ok(kp
                .sign(&SystemRandom::new(), message)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
            KeyPair::Rsa(kp) => {
                let encoding: &'static dyn signature::RsaEncoding = match self.alg() {
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0u8; kp.public_modulus_len()];
                kp.sign(encoding, &SystemRandom::new(), message, &mut out)
                    .map_err(|_| failed())?;
                Ok(out)
            }
            KeyPair::Hmac(key) => Ok(key.sign(message)),
        }
    }
}

fn ecdsa_signing(alg: Algorithm) -> Result<&'static signature::EcdsaSigningAlgorithm, JoseError> {
    match alg {
        Algorithm::ES256 => Ok(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => Ok(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        other => Err(JoseError::KeyUnsuitable(other)),
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("alg", &self.alg())
            .field("private", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base64url;

    /// Debug output of every key kind shows the kid and alg, never private bytes.
    #[test]
    fn debug_never_shows_private_material() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384, Algorithm::RS256] {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let shown = format!("{key:?} {:?}", key.verifying_key());
            assert!(shown.contains(key.kid()) && shown.contains("<redacted>"), "{shown}");
            for window in pkcs8.windows(16).step_by(8) {
                let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
                assert!(
                    !shown.contains(&hex) && !shown.contains(&base64url::encode(window)),
                    "{alg}"
                );
                assert!(!shown.contains(&format!("{:?}", &window[..4])), "{alg}: bytes printed");
            }
        }
        let secret = [7u8; 32];
        let hmac = crate::danger::hs256_signing_key("h", HmacKey::new(&secret).unwrap());
        let shown = format!("{hmac:?} {:?}", hmac.verifying_key());
        assert!(
            !shown.contains("7, 7, 7") && !shown.contains(&base64url::encode(&secret)),
            "{shown}"
        );
    }
}
