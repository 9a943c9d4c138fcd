//! Public keys, each bound to exactly one algorithm (RFC 8725 §3.1).
//!
//! A [`VerifyingKey`] is only built through constructors that validate the
//! key for its algorithm: RSA moduli of at least 2048 bits with a standard
//! public exponent, EC points on their curve, and Ed25519 points that are
//! canonical and not of small order. See [`crate::ed25519_policy`] for the
//! Ed25519 rules and why.

use std::fmt;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};

use crate::alg::Algorithm;
use crate::danger::HmacKey;
use crate::ed25519_policy;
use crate::error::JoseError;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (the backend's verification limit).
pub const MAX_RSA_BITS: usize = 8192;

/// A public key (or, behind [`crate::danger`], an HMAC key) bound to one
/// algorithm and one key id.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    alg: Algorithm,
    material: PublicMaterial,
}

#[derive(Clone)]
pub(crate) enum PublicMaterial {
    Ed25519 {
        x: [u8; 32],
        parsed: ParsedPublicKey,
    },
    Ec {
        x: Vec<u8>,
        y: Vec<u8>,
        parsed: ParsedPublicKey,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        parsed: ParsedPublicKey,
    },
    Hmac(Box<HmacKey>),
}

impl VerifyingKey {
    /// An Ed25519 key from its 32-byte encoding (alg `EdDSA`).
    pub fn ed25519(kid: impl Into<String>, x: &[u8]) -> Result<Self, JoseError> {
        let x: [u8; 32] = x
            .try_into()
            .map_err(|_| JoseError::InvalidJwk("Ed25519 `x` must be 32 bytes".into()))?;
        ed25519_policy::check_point(&x).map_err(|why| JoseError::InvalidJwk(format!("Ed25519 public key {why}")))?;
        let parsed = ParsedPublicKey::new(&signature::ED25519, x)
            .map_err(|_| JoseError::InvalidJwk("Ed25519 public key is not a curve point".into()))?;
        Ok(VerifyingKey {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            material: PublicMaterial::Ed25519 { x, parsed },
        })
    }

    /// An EC key from its affine coordinates; `alg` must be ES256 or ES384.
    /// The point is checked to lie on the curve.
    pub fn ec(alg: Algorithm, kid: impl Into<String>, x: &[u8], y: &[u8]) -> Result<Self, JoseError> {
        let (size, verify_alg): (usize, &'static signature::EcdsaVerificationAlgorithm) = match alg {
            Algorithm::ES256 => (32, &signature::ECDSA_P256_SHA256_FIXED),
            Algorithm::ES384 => (48, &signature::ECDSA_P384_SHA384_FIXED),
            other => return Err(JoseError::KeyUnsuitable(other)),
        };
        if x.len() != size || y.len() != size {
            return Err(JoseError::InvalidJwk(format!(
                "EC coordinates must be {size} bytes each"
            )));
        }
        let mut point = Vec::with_capacity(1 + 2 * size);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let parsed = ParsedPublicKey::new(verify_alg, &point)
            .map_err(|_| JoseError::InvalidJwk("EC point is not on the curve".into()))?;
        Ok(VerifyingKey {
            kid: kid.into(),
            alg,
            material: PublicMaterial::Ec {
                x: x.to_vec(),
                y: y.to_vec(),
                parsed,
            },
        })
    }

    /// An RSA key from its big-endian modulus and exponent; `alg` must be
    /// RS256 or PS256. The modulus must have 2048 to 8192 bits and no leading
    /// zero octet; the exponent must be odd, at least 65537 and below 2^32
    /// (NIST SP 800-89 §5.3.3 bounds; tiny exponents are refused). Moduli with
    /// the ROCA fingerprint (CVE-2017-15361) are refused.
    pub fn rsa(alg: Algorithm, kid: impl Into<String>, n: &[u8], e: &[u8]) -> Result<Self, JoseError> {
        let params: &'static signature::RsaParameters = match alg {
            Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            other => return Err(JoseError::KeyUnsuitable(other)),
        };
        match n.first() {
            None | Some(0) => {
                return Err(JoseError::InvalidJwk(
                    "RSA modulus is empty or has a leading zero octet".into(),
                ));
            }
            Some(first) => {
                let bits = n.len() * 8 - first.leading_zeros() as usize;
                if bits < MIN_RSA_BITS {
                    return Err(JoseError::WeakRsaKey(bits));
                }
                if bits > MAX_RSA_BITS {
                    return Err(JoseError::InvalidJwk(format!(
                        "RSA modulus of {bits} bits is too large"
                    )));
                }
                if n.last().is_some_and(|b| b & 1 == 0) {
                    return Err(JoseError::InvalidJwk("RSA modulus is even".into()));
                }
            }
        }
        if crate::roca::has_fingerprint(n) {
            return Err(JoseError::InvalidJwk(
                "RSA modulus has the ROCA weakness (CVE-2017-15361): its private key can be recovered".into(),
            ));
        }
        let exponent = match e {
            [] | [0, ..] => None,
            bytes if bytes.len() <= 4 => Some(bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b))),
            _ => None,
        };
        match exponent {
            Some(v) if v >= 65537 && v % 2 == 1 => {}
            _ => {
                return Err(JoseError::InvalidJwk(
                    "RSA exponent must be odd, at least 65537 and below 2^32".into(),
                ));
            }
        }
        let parsed = RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(params)
            .map_err(|_| JoseError::InvalidJwk("RSA key is malformed".into()))?;
        Ok(VerifyingKey {
            kid: kid.into(),
            alg,
            material: PublicMaterial::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
                parsed,
            },
        })
    }

    pub(crate) fn hmac(kid: impl Into<String>, key: HmacKey) -> Self {
        VerifyingKey {
            kid: kid.into(),
            alg: Algorithm::HS256,
            material: PublicMaterial::Hmac(Box::new(key)),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub(crate) fn material(&self) -> &PublicMaterial {
        &self.material
    }

    /// Replaces the key id (used when a JWK carries none and the thumbprint
    /// becomes the id).
    pub(crate) fn with_kid(mut self, kid: String) -> Self {
        self.kid = kid;
        self
    }

    /// Checks `signature` over `message` with algorithm `alg`, which must be
    /// the algorithm this key is bound to.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        if alg != self.alg {
            return Err(JoseError::KeyAlgMismatch {
                key: self.alg,
                token: alg,
            });
        }
        let ok = match &self.material {
            PublicMaterial::Ed25519 { parsed, .. } => {
                ed25519_policy::check_signature(signature).is_ok() && parsed.verify_sig(message, signature).is_ok()
            }
            PublicMaterial::Ec { parsed, .. } | PublicMaterial::Rsa { parsed, .. } => {
                parsed.verify_sig(message, signature).is_ok()
            }
            PublicMaterial::Hmac(key) => key.verify(message, signature),
        };
        if ok { Ok(()) } else { Err(JoseError::InvalidSignature) }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An HMAC key is secret; public keys are not, but one format keeps it simple.
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid
            && self.alg == other.alg
            && match (&self.material, &other.material) {
                (PublicMaterial::Ed25519 { x: a, .. }, PublicMaterial::Ed25519 { x: b, .. }) => a == b,
                (PublicMaterial::Ec { x: ax, y: ay, .. }, PublicMaterial::Ec { x: bx, y: by, .. }) => {
                    ax == bx && ay == by
                }
                (PublicMaterial::Rsa { n: an, e: ae, .. }, PublicMaterial::Rsa { n: bn, e: be, .. }) => {
                    an == bn && ae == be
                }
                (PublicMaterial::Hmac(a), PublicMaterial::Hmac(b)) => a.same_secret(b),
                _ => false,
            }
    }
}
