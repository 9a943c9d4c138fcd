//! JWT claims (RFC 7519 §4) with the types Warden requires, and the
//! time rules applied to them.
//!
//! Every NumericDate must be a JSON integer between 0 and 253402300799
//! (9999-12-31T23:59:59Z). Strings, fractions (even `1.0`), exponents,
//! booleans, negative and larger values are refused: RFC 7519 allows
//! fractional dates, but no Warden token needs one, and a date that two
//! libraries read differently is how type-confusion bugs such as
//! CVE-2026-25537 start.

use serde_json::{Map, Value};

use crate::error::JoseError;

/// Largest NumericDate accepted: 9999-12-31T23:59:59Z.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Claims of a token whose signature and rules have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    aud: Vec<String>,
    exp: u64,
    nbf: Option<u64>,
    iat: Option<u64>,
    roles: Vec<String>,
    // INVARIANT: `iss` is a string, and `sub`, `jti`, `client_id` and
    // `scope` are strings when present (checked in `from_object`), so the
    // accessors read them from here without copies.
    raw: Map<String, Value>,
}

fn numeric_date(map: &Map<String, Value>, claim: &'static str) -> Result<Option<u64>, JoseError> {
    match map.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= MAX_NUMERIC_DATE => Ok(Some(v)),
            Some(_) => Err(JoseError::InvalidClaim {
                claim,
                reason: "date is out of range",
            }),
            None if n.is_i64() => Err(JoseError::InvalidClaim {
                claim,
                reason: "date is negative",
            }),
            None => Err(JoseError::InvalidClaim {
                claim,
                reason: "date must be an integer",
            }),
        },
        Some(_) => Err(JoseError::InvalidClaim {
            claim,
            reason: "date must be a JSON number",
        }),
    }
}

fn string_claim<'m>(map: &'m Map<String, Value>, claim: &'static str) -> Result<Option<&'m str>, JoseError> {
    match map.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::InvalidClaim {
            claim,
            reason: "must be a string",
        }),
    }
}

fn string_list(map: &Map<String, Value>, claim: &'static str, single_allowed: bool) -> Result<Vec<String>, JoseError> {
    match map.get(claim) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if single_allowed => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or(JoseError::InvalidClaim {
                    claim,
                    reason: "must hold only strings",
                })
            })
            .collect(),
        Some(_) => Err(JoseError::InvalidClaim {
            claim,
            reason: if single_allowed {
                "must be a string or an array of strings"
            } else {
                "must be an array of strings"
            },
        }),
    }
}

impl Claims {
    /// Reads and type-checks the registered claims and the Warden claims
    /// (`client_id`, `scope`, `roles`). `iss`, `aud` and `exp` are required.
    pub fn from_object(raw: Map<String, Value>) -> Result<Self, JoseError> {
        string_claim(&raw, "iss")?.ok_or(JoseError::MissingClaim("iss"))?;
        for claim in ["sub", "jti", "client_id", "scope"] {
            string_claim(&raw, claim)?;
        }
        let aud = string_list(&raw, "aud", true)?;
        if !raw.contains_key("aud") {
            return Err(JoseError::MissingClaim("aud"));
        }
        if aud.is_empty() {
            return Err(JoseError::InvalidClaim {
                claim: "aud",
                reason: "must not be empty",
            });
        }
        let exp = numeric_date(&raw, "exp")?.ok_or(JoseError::MissingClaim("exp"))?;
        if let Some(act) = raw.get("act")
            && !act.is_object()
        {
            return Err(JoseError::InvalidClaim {
                claim: "act",
                reason: "must be an object",
            });
        }
        // RFC 7800 `cnf`: an object; its RFC 9449 `jkt`, when present, a
        // non-empty string. A token bound in a way that cannot be read is
        // refused rather than taken as unbound.
        if let Some(cnf) = raw.get("cnf") {
            let Some(cnf) = cnf.as_object() else {
                return Err(JoseError::InvalidClaim {
                    claim: "cnf",
                    reason: "must be an object",
                });
            };
            if cnf.get("jkt").is_some_and(|jkt| jkt.as_str().is_none_or(str::is_empty)) {
                return Err(JoseError::InvalidClaim {
                    claim: "cnf",
                    reason: "`jkt` must be a non-empty string",
                });
            }
        }
        Ok(Claims {
            aud,
            exp,
            nbf: numeric_date(&raw, "nbf")?,
            iat: numeric_date(&raw, "iat")?,
            roles: string_list(&raw, "roles", false)?,
            raw,
        })
    }

    /// Applies the time rules at `now` (seconds since the epoch) with
    /// `leeway` seconds of tolerance for clock skew.
    pub(crate) fn check_times(&self, now: u64, leeway: u64) -> Result<(), JoseError> {
        if now >= self.exp.saturating_add(leeway) {
            return Err(JoseError::Expired);
        }
        if let Some(nbf) = self.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(JoseError::NotYetValid);
        }
        if let Some(iat) = self.iat
            && iat > now.saturating_add(leeway)
        {
            return Err(JoseError::IssuedInFuture);
        }
        Ok(())
    }

    fn str_claim(&self, name: &str) -> Option<&str> {
        self.raw.get(name).and_then(Value::as_str)
    }

    /// `iss`.
    pub fn iss(&self) -> &str {
        self.str_claim("iss").unwrap_or_default()
    }
    /// `sub`, if present.
    pub fn sub(&self) -> Option<&str> {
        self.str_claim("sub")
    }
    /// `aud` as a list (a single string becomes one element).
    pub fn aud(&self) -> &[String] {
        &self.aud
    }
    /// `exp`.
    pub fn exp(&self) -> u64 {
        self.exp
    }
    /// `nbf`, if present.
    pub fn nbf(&self) -> Option<u64> {
        self.nbf
    }
    /// `iat`, if present.
    pub fn iat(&self) -> Option<u64> {
        self.iat
    }
    /// `jti`, if present.
    pub fn jti(&self) -> Option<&str> {
        self.str_claim("jti")
    }
    /// `client_id`, if present.
    pub fn client_id(&self) -> Option<&str> {
        self.str_claim("client_id")
    }
    /// The space-separated `scope` claim split into scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.str_claim("scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }
    /// `roles`.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// The RFC 8693 `act` (delegation chain), if present.
    pub fn act(&self) -> Option<&Map<String, Value>> {
        self.raw.get("act").and_then(Value::as_object)
    }
    /// Whether the token carries a confirmation (`cnf`): it is
    /// sender-constrained, whatever the method.
    pub fn is_bound(&self) -> bool {
        self.raw.contains_key("cnf")
    }
    /// The DPoP key thumbprint the token is bound to (`cnf.jkt`, RFC 9449
    /// §6.1), if any.
    pub fn cnf_jkt(&self) -> Option<&str> {
        self.raw.get("cnf")?.get("jkt")?.as_str()
    }
    /// Every claim as received.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Result<Claims, JoseError> {
        Claims::from_object(v.as_object().unwrap().clone())
    }

    fn with_exp(exp: Value) -> Result<Claims, JoseError> {
        claims(json!({"iss":"i","aud":"a","exp":exp}))
    }

    #[test]
    fn every_malformed_numeric_date_is_refused() {
        let bad = [
            json!("1700000000"),
            json!(1700000000.5),
            json!(1700000000.0),
            json!(1e10),
            json!(true),
            json!(null),
            json!(-1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(MAX_NUMERIC_DATE + 1),
            json!([1700000000]),
            json!({"t":1700000000}),
        ];
        for v in bad {
            assert!(
                matches!(with_exp(v.clone()), Err(JoseError::InvalidClaim { claim: "exp", .. })),
                "{v}"
            );
        }
        let huge: Map<String, Value> = serde_json::from_str(r#"{"iss":"i","aud":"a","exp":1e400}"#).unwrap_or_default();
        assert!(huge.is_empty() || Claims::from_object(huge).is_err());
        assert!(with_exp(json!(MAX_NUMERIC_DATE)).is_ok());
        assert!(with_exp(json!(0)).is_ok());
    }

    #[test]
    fn cnf_is_an_object_whose_jkt_is_a_string() {
        let base = json!({"iss":"i","aud":"a","exp":1});
        let unbound = claims(base.clone()).unwrap();
        assert!(!unbound.is_bound() && unbound.cnf_jkt().is_none());
        let mut bound = base.clone();
        bound["cnf"] = json!({"jkt":"abc"});
        let bound = claims(bound).unwrap();
        assert!(bound.is_bound());
        assert_eq!(bound.cnf_jkt(), Some("abc"));
        let mut other_method = base.clone();
        other_method["cnf"] = json!({"x5t#S256":"abc"});
        let other_method = claims(other_method).unwrap();
        assert!(other_method.is_bound() && other_method.cnf_jkt().is_none());
        for bad in [json!("abc"), json!({"jkt":""}), json!({"jkt":5}), json!(null)] {
            let mut v = base.clone();
            v["cnf"] = bad.clone();
            assert!(
                matches!(claims(v), Err(JoseError::InvalidClaim { claim: "cnf", .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn required_claims() {
        assert_eq!(claims(json!({"aud":"a","exp":1})), Err(JoseError::MissingClaim("iss")));
        assert_eq!(claims(json!({"iss":"i","exp":1})), Err(JoseError::MissingClaim("aud")));
        assert_eq!(
            claims(json!({"iss":"i","aud":"a"})),
            Err(JoseError::MissingClaim("exp"))
        );
        assert!(matches!(
            claims(json!({"iss":"i","aud":[],"exp":1})),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
        assert!(matches!(
            claims(json!({"iss":"i","aud":[1],"exp":1})),
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
        assert!(matches!(
            claims(json!({"iss":1,"aud":"a","exp":1})),
            Err(JoseError::InvalidClaim { claim: "iss", .. })
        ));
        assert!(matches!(
            claims(json!({"iss":"i","aud":"a","exp":1,"roles":"admin"})),
            Err(JoseError::InvalidClaim { claim: "roles", .. })
        ));
        assert!(matches!(
            claims(json!({"iss":"i","aud":"a","exp":1,"act":"x"})),
            Err(JoseError::InvalidClaim { claim: "act", .. })
        ));
    }

    #[test]
    fn time_rules_with_leeway() {
        let c = claims(json!({"iss":"i","aud":"a","exp":1000,"nbf":900,"iat":900})).unwrap();
        assert!(c.check_times(950, 0).is_ok());
        assert_eq!(c.check_times(1000, 0), Err(JoseError::Expired));
        assert!(c.check_times(1029, 30).is_ok());
        assert_eq!(c.check_times(1030, 30), Err(JoseError::Expired));
        assert_eq!(c.check_times(899, 0), Err(JoseError::NotYetValid));
        assert!(c.check_times(871, 30).is_ok());
        assert_eq!(c.check_times(869, 30), Err(JoseError::NotYetValid));
        let future = claims(json!({"iss":"i","aud":"a","exp":5000,"iat":2000})).unwrap();
        assert_eq!(future.check_times(1000, 30), Err(JoseError::IssuedInFuture));
    }

    #[test]
    fn scopes_split_on_spaces() {
        let c = claims(json!({"iss":"i","aud":"a","exp":1,"scope":"a  b c"})).unwrap();
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
