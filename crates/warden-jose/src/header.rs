//! The JOSE header of a compact JWS, checked by the rules every Warden token
//! kind shares (RFC 7515 §4, RFC 8725 §3):
//!
//! - `alg` must be a supported algorithm; `none` in any spelling is refused.
//! - `crit` is refused outright: Warden implements no critical extension.
//! - `jwk`, `jku`, `x5u` and `x5c` are refused: a token never chooses the
//!   key that verifies it, and Warden never fetches a URL a token names.
//! - `b64` other than `true` is refused (RFC 7797 unencoded payloads; JWTs
//!   must not use them, RFC 7797 §7).
//! - `enc`, `zip` and `cty: JWT` are refused: Warden accepts neither JWE nor
//!   nested tokens.
//! - `kid` and `typ`, when present, must be strings.
//!
//! Other members are ignored, as RFC 7515 §4 requires.

use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::{JoseError, bounded};

/// A parsed and rule-checked protected header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
}

const EMBEDDED_KEY_MEMBERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

impl Header {
    /// Checks a header object. Pure: no lookups happen here.
    pub fn from_object(map: &Map<String, Value>) -> Result<Self, JoseError> {
        let alg = match map.get("alg") {
            Some(Value::String(name)) => Algorithm::parse(name)?,
            _ => return Err(JoseError::MissingAlg),
        };
        if let Some(crit) = map.get("crit") {
            let first = crit
                .as_array()
                .and_then(|names| names.first())
                .and_then(Value::as_str)
                .ok_or(JoseError::InvalidHeader("crit"))?;
            return Err(JoseError::UnsupportedCrit(bounded(first)));
        }
        for member in EMBEDDED_KEY_MEMBERS {
            if map.contains_key(member) {
                return Err(JoseError::EmbeddedKey(member));
            }
        }
        match map.get("b64") {
            None | Some(Value::Bool(true)) => {}
            Some(_) => return Err(JoseError::UnencodedPayload),
        }
        if map.contains_key("enc") {
            return Err(JoseError::NestedOrEncrypted("enc"));
        }
        if map.contains_key("zip") {
            return Err(JoseError::NestedOrEncrypted("zip"));
        }
        match map.get("cty") {
            None => {}
            Some(Value::String(cty)) if !cty.eq_ignore_ascii_case("jwt") => {}
            Some(_) => return Err(JoseError::NestedOrEncrypted("cty")),
        }
        Ok(Header {
            alg,
            kid: optional_string(map, "kid")?,
            typ: optional_string(map, "typ")?,
        })
    }

    /// The algorithm the header names.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The media type, if any.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// Serialises the header Warden writes when it signs: `alg`, `kid`, `typ`.
    pub(crate) fn to_json(alg: Algorithm, kid: &str, typ: &str) -> Vec<u8> {
        let mut map = Map::new();
        map.insert("alg".into(), Value::from(alg.as_str()));
        map.insert("kid".into(), Value::from(kid));
        map.insert("typ".into(), Value::from(typ));
        // INVARIANT: a map of strings always serialises.
        serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
    }
}

fn optional_string(map: &Map<String, Value>, name: &'static str) -> Result<Option<String>, JoseError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::InvalidHeader(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(v: Value) -> Result<Header, JoseError> {
        Header::from_object(v.as_object().unwrap())
    }

    #[test]
    fn accepts_the_warden_header() {
        let h = header(json!({"alg":"EdDSA","kid":"k1","typ":"at+jwt"})).unwrap();
        assert_eq!(h.alg(), Algorithm::EdDSA);
        assert_eq!(h.kid(), Some("k1"));
        assert_eq!(h.typ(), Some("at+jwt"));
    }

    #[test]
    fn refuses_dangerous_members() {
        assert_eq!(header(json!({"alg":"none"})), Err(JoseError::AlgNone));
        assert_eq!(header(json!({})), Err(JoseError::MissingAlg));
        assert_eq!(header(json!({"alg":5})), Err(JoseError::MissingAlg));
        assert!(matches!(
            header(json!({"alg":"ES256","crit":["exp"],"exp":1})),
            Err(JoseError::UnsupportedCrit(_))
        ));
        assert_eq!(
            header(json!({"alg":"ES256","crit":[]})),
            Err(JoseError::InvalidHeader("crit"))
        );
        assert_eq!(
            header(json!({"alg":"ES256","crit":"b64"})),
            Err(JoseError::InvalidHeader("crit"))
        );
        for m in EMBEDDED_KEY_MEMBERS {
            let mut v = json!({"alg":"ES256"});
            v[m] = json!("x");
            assert_eq!(header(v), Err(JoseError::EmbeddedKey(m)), "{m}");
        }
        assert_eq!(
            header(json!({"alg":"ES256","b64":false})),
            Err(JoseError::UnencodedPayload)
        );
        assert!(header(json!({"alg":"ES256","b64":true})).is_ok());
        assert_eq!(
            header(json!({"alg":"ES256","enc":"A128GCM"})),
            Err(JoseError::NestedOrEncrypted("enc"))
        );
        assert_eq!(
            header(json!({"alg":"ES256","cty":"JWT"})),
            Err(JoseError::NestedOrEncrypted("cty"))
        );
        assert_eq!(
            header(json!({"alg":"ES256","kid":7})),
            Err(JoseError::InvalidHeader("kid"))
        );
        assert_eq!(
            header(json!({"alg":"ES256","typ":["at+jwt"]})),
            Err(JoseError::InvalidHeader("typ"))
        );
    }
}
