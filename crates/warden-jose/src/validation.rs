//! What a verifier demands of one kind of token: accepted `typ` values,
//! the audience, leeway, size cap, allow-listed algorithms and required
//! claims.

use crate::alg::AlgorithmSet;
use crate::compact::DEFAULT_MAX_TOKEN_BYTES;
use crate::error::JoseError;

/// Default clock-skew leeway in seconds.
pub const DEFAULT_LEEWAY: u64 = 30;
/// Hard cap on leeway in seconds.
pub const MAX_LEEWAY: u64 = 60;

/// The `typ` values an RFC 9068 access token may carry.
pub const ACCESS_TOKEN_TYPES: [&str; 2] = ["at+jwt", "application/at+jwt"];

/// The rules for one token kind.
#[derive(Debug, Clone)]
pub struct Validation {
    pub(crate) audience: String,
    pub(crate) any_audience: bool,
    pub(crate) typ: Option<Vec<String>>,
    pub(crate) leeway: u64,
    pub(crate) max_token_bytes: usize,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) require_jti: bool,
    pub(crate) require_sub: bool,
    pub(crate) require_iat: bool,
}

impl Validation {
    /// RFC 9068 access tokens for `audience`: `typ` `at+jwt` (or
    /// `application/at+jwt`), `jti`, `sub` and `iat` required, 30 s leeway,
    /// 8 KiB cap, every asymmetric algorithm.
    pub fn access_token(audience: impl Into<String>) -> Self {
        Validation {
            audience: audience.into(),
            any_audience: false,
            typ: Some(ACCESS_TOKEN_TYPES.iter().map(|s| (*s).to_owned()).collect()),
            leeway: DEFAULT_LEEWAY,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            algorithms: AlgorithmSet::asymmetric(),
            require_jti: true,
            require_sub: true,
            require_iat: true,
        }
    }

    /// Sets the accepted `typ` values for another token kind (for example
    /// `JWT` for an external IdP's ID tokens). `None` accepts any or none;
    /// use it only where the token kind is fixed by other means.
    pub fn with_typ(mut self, typ: Option<Vec<String>>) -> Self {
        self.typ = typ;
        self
    }

    /// Sets the leeway; more than 60 s is refused.
    pub fn with_leeway(mut self, seconds: u64) -> Result<Self, JoseError> {
        if seconds > MAX_LEEWAY {
            return Err(JoseError::LeewayTooLarge(seconds));
        }
        self.leeway = seconds;
        Ok(self)
    }

    /// Sets the size cap.
    pub fn with_max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Sets the algorithm allow-list.
    pub fn with_algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Sets which of `jti`, `sub` and `iat` are required.
    pub fn with_required(mut self, jti: bool, sub: bool, iat: bool) -> Self {
        self.require_jti = jti;
        self.require_sub = sub;
        self.require_iat = iat;
        self
    }

    /// Accepts any audience (an empty `aud` is still refused). Only for
    /// tokens whose audience is checked by the caller afterwards or does not
    /// matter for their use: the token service reading its own tokens as a
    /// token-exchange `subject_token`, RFC 7523 client assertions (whose
    /// `aud` may be the issuer or the token endpoint), introspection.
    pub fn with_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// The audience this verifier accepts.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The leeway in seconds.
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    pub(crate) fn check_typ(&self, typ: Option<&str>) -> Result<(), JoseError> {
        let Some(accepted) = &self.typ else {
            return Ok(());
        };
        let expected = || accepted.first().cloned().unwrap_or_default();
        match typ {
            None => Err(JoseError::MissingTyp { expected: expected() }),
            // Media types compare case-insensitively (RFC 7515 §4.1.9, RFC 2045).
            Some(t) if accepted.iter().any(|a| a.eq_ignore_ascii_case(t)) => Ok(()),
            Some(t) => Err(JoseError::WrongTyp {
                expected: expected(),
                found: crate::error::bounded(t),
            }),
        }
    }
}
