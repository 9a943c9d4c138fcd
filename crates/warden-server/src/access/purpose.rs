//! The purpose a caller states for using data: the token's `purpose`
//! claim (which binds), else the `X-Warden-Purpose` request header. Policies compare it
//! with a dataset's `allowed_purposes` (reading `pii` data needs one of
//! them), and the audit event records it.
//!
//! A purpose is a name (`a-z A-Z 0-9 . _ -`, at most 128 characters). A
//! header that is present but malformed is an error, never silently
//! dropped: the caller meant to state something.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The request header stating a purpose.
pub const HEADER: &str = "x-warden-purpose";
/// The token claim stating a purpose.
pub const CLAIM: &str = "purpose";

/// The stated purpose. A token that carries a `purpose` claim was issued
/// for that purpose only: a header may repeat it but never change it (a
/// different one is an error). Without a claim, the header states it.
/// `Err` names what is malformed or contradictory.
pub fn stated(headers: &HeaderMap, claims: Option<&Map<String, Value>>) -> Result<Option<String>, String> {
    let header = match headers.get(HEADER) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| format!("`{HEADER}` must be a purpose name"))?;
            warden_registry::check_name("purpose", text).map_err(|e| format!("`{HEADER}`: {e}"))?;
            Some(text.to_owned())
        }
    };
    let claim = match claims.and_then(|c| c.get(CLAIM)) {
        None => None,
        Some(Value::String(text)) if warden_registry::check_name("purpose", text).is_ok() => Some(text.clone()),
        Some(_) => return Err(format!("the token's `{CLAIM}` claim must be a purpose name")),
    };
    match (header, claim) {
        (Some(h), Some(c)) if h != c => Err(format!("`{HEADER}` differs from the purpose the token was issued for")),
        (h, c) => Ok(c.or(h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_claim_binds_and_a_header_may_only_repeat_it() {
        let mut h = HeaderMap::new();
        let mut claims = Map::new();
        claims.insert(CLAIM.into(), Value::String("research".into()));
        assert_eq!(stated(&h, Some(&claims)).unwrap().as_deref(), Some("research"));
        h.insert(HEADER, HeaderValue::from_static("research"));
        assert_eq!(stated(&h, Some(&claims)).unwrap().as_deref(), Some("research"));
        h.insert(HEADER, HeaderValue::from_static("fraud-detection"));
        assert!(stated(&h, Some(&claims)).unwrap_err().contains("differs"));
        assert_eq!(stated(&h, None).unwrap().as_deref(), Some("fraud-detection"));
        assert_eq!(stated(&HeaderMap::new(), None).unwrap(), None);
    }

    #[test]
    fn malformed_purposes_are_errors() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_static("a b"));
        assert!(stated(&h, None).is_err());
        let mut claims = Map::new();
        claims.insert(CLAIM.into(), Value::Bool(true));
        assert!(stated(&HeaderMap::new(), Some(&claims)).is_err());
    }
}
