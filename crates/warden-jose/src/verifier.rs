//! The token verifier: every rule of docs/tokens-and-keys.md § What verification checks, in order, in order, and
//! the only place a [`VerifiedToken`] is made.
//!
//! Order: size cap → three strict base64url segments → header (`alg` not
//! none and allow-listed, no `crit`, no embedded keys, `typ`) → payload is a
//! strict JSON object → issuer trusted → key by (issuer, `kid`), bound to the
//! header's `alg` → signature → claims (`iss` exact, `aud` contains ours,
//! `exp`/`nbf`/`iat` with bounded leeway, required claims present).
//! Revocation and policy are the caller's next steps.

use std::collections::HashMap;

use crate::alg::AlgorithmSet;
use crate::claims::Claims;
use crate::compact::{self, UnverifiedToken};
use crate::error::JoseError;
use crate::header::Header;
use crate::key_set::KeySet;
use crate::validation::Validation;

/// An issuer whose tokens are trusted, with its keys and algorithms.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    issuer: String,
    keys: KeySet,
    algorithms: AlgorithmSet,
}

impl TrustedIssuer {
    /// Trusts `issuer` (matched exactly) with `keys`, for the algorithms in
    /// `algorithms` only.
    pub fn new(issuer: impl Into<String>, keys: KeySet, algorithms: AlgorithmSet) -> Self {
        TrustedIssuer {
            issuer: issuer.into(),
            keys,
            algorithms,
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer's keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }
}

/// Verifies tokens from a fixed set of trusted issuers under one
/// [`Validation`].
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    pub(crate) issuers: HashMap<String, TrustedIssuer>,
    validation: Validation,
}

/// A token that passed every check. Only [`TokenVerifier`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    header: Header,
    claims: Claims,
}

impl VerifiedToken {
    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The checked claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

impl TokenVerifier {
    /// A verifier for `issuers` under `validation`. Issuers are keyed by
    /// their identifier: list each once (a repeated issuer keeps its last
    /// entry).
    pub fn new(issuers: impl IntoIterator<Item = TrustedIssuer>, validation: Validation) -> Self {
        TokenVerifier {
            issuers: issuers.into_iter().map(|i| (i.issuer.clone(), i)).collect(),
            validation,
        }
    }

    /// The rules this verifier applies.
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedToken, JoseError> {
        let v = &self.validation;
        let parsed = compact::parse(token, v.max_token_bytes, v.algorithms)?;
        v.check_typ(parsed.header.typ())?;
        let payload = parsed.payload_object()?;
        self.verify_decoded(&parsed, payload, now)
    }

    /// Verifies a token already split and decoded (to read its issuer) at
    /// `now`: every rule of [`verify`](Self::verify), the size cap and this
    /// verifier's algorithm allow-list included, without decoding it again.
    pub fn verify_unverified(&self, token: &UnverifiedToken<'_>, now: u64) -> Result<VerifiedToken, JoseError> {
        let v = &self.validation;
        if token.token.len() > v.max_token_bytes {
            return Err(JoseError::TokenTooLarge {
                len: token.token.len(),
                max: v.max_token_bytes,
            });
        }
        let parsed = &token.parsed;
        if !v.algorithms.contains(parsed.header.alg()) {
            return Err(JoseError::AlgNotAllowed(parsed.header.alg()));
        }
        v.check_typ(parsed.header.typ())?;
        self.verify_decoded(parsed, token.payload.clone(), now)
    }

    /// The checks after decoding: issuer, key, signature, claims.
    fn verify_decoded(
        &self,
        parsed: &compact::Parsed<'_>,
        payload: serde_json::Map<String, serde_json::Value>,
        now: u64,
    ) -> Result<VerifiedToken, JoseError> {
        let v = &self.validation;
        let issuer = match payload.get("iss") {
            Some(serde_json::Value::String(iss)) => self.issuers.get(iss).ok_or(JoseError::UntrustedIssuer)?,
            Some(_) => {
                return Err(JoseError::InvalidClaim {
                    claim: "iss",
                    reason: "must be a string",
                });
            }
            None => return Err(JoseError::MissingClaim("iss")),
        };
        if !issuer.algorithms.contains(parsed.header.alg()) {
            return Err(JoseError::AlgNotAllowed(parsed.header.alg()));
        }
        parsed.verify_signature(&issuer.keys)?;

        let claims = Claims::from_object(payload)?;
        if claims.iss() != issuer.issuer {
            return Err(JoseError::IssuerMismatch);
        }
        let audience_ok = if v.any_audience {
            !claims.aud().is_empty()
        } else {
            claims.aud().contains(&v.audience)
        };
        if !audience_ok {
            return Err(JoseError::AudienceMismatch);
        }
        claims.check_times(now, v.leeway)?;
        if v.require_jti && claims.jti().is_none_or(str::is_empty) {
            return Err(JoseError::MissingClaim("jti"));
        }
        if v.require_sub && claims.sub().is_none_or(str::is_empty) {
            return Err(JoseError::MissingClaim("sub"));
        }
        if v.require_iat && claims.iat().is_none() {
            return Err(JoseError::MissingClaim("iat"));
        }
        Ok(VerifiedToken {
            header: parsed.header.clone(),
            claims,
        })
    }
}
