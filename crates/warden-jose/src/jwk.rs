//! JSON Web Keys (RFC 7517), key sets, and RFC 7638 thumbprints.
//!
//! Import is strict: a JWK whose `kty`, `crv`, `alg`, `use` and `key_ops`
//! contradict each other is refused, as is one carrying private members
//! where a public key is expected, an RSA key under 2048 bits, an EC point
//! off its curve, and an Ed25519 point of small order. Symmetric (`oct`)
//! keys are refused here and accepted only through [`crate::danger`].

use std::collections::{BTreeMap, HashSet};

use aws_lc_rs::digest;
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::base64url;
use crate::danger::HmacKey;
use crate::error::{JoseError, bounded};
use crate::strict_json::{self, StrictJsonError};
use crate::verifying_key::{PublicMaterial, VerifyingKey};

/// Members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Key members (`x`, `y`, `n`, `e`) with their decoded bytes.
type Members = Vec<(&'static str, Vec<u8>)>;

/// A parsed, not yet trusted, JWK.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    kty: String,
    crv: Option<String>,
    alg: Option<String>,
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    kid: Option<String>,
    members: BTreeMap<&'static str, Vec<u8>>,
    private_member: Option<&'static str>,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn invalid(reason: impl Into<String>) -> JoseError {
    JoseError::InvalidJwk(reason.into())
}

fn string_member(map: &Map<String, Value>, name: &str) -> Result<Option<String>, JoseError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("`{name}` must be a string"))),
    }
}

impl Jwk {
    /// Parses one JWK from JSON text under the strict JSON rules.
    pub fn parse(json: &[u8]) -> Result<Self, JoseError> {
        let map = strict_json::parse_object(json).map_err(|e| match e {
            StrictJsonError::Duplicate(name) => invalid(format!("repeats the member `{}`", bounded(&name))),
            StrictJsonError::TooDeep => invalid("nests too deeply"),
            StrictJsonError::Syntax(_) => invalid("is not a JSON object"),
        })?;
        Self::from_object(&map)
    }

    /// Reads a JWK from a JSON object. Checks member types and encodings;
    /// consistency is checked when the key is turned into a usable key.
    pub fn from_object(map: &Map<String, Value>) -> Result<Self, JoseError> {
        let kty = string_member(map, "kty")?.ok_or_else(|| invalid("`kty` is required"))?;
        let key_ops = match map.get("key_ops") {
            None => None,
            Some(Value::Array(items)) => {
                let mut ops = Vec::with_capacity(items.len());
                for item in items {
                    let op = item.as_str().ok_or_else(|| invalid("`key_ops` must hold strings"))?;
                    if ops.iter().any(|o: &String| o == op) {
                        return Err(invalid("`key_ops` repeats a value"));
                    }
                    ops.push(op.to_owned());
                }
                Some(ops)
            }
            Some(_) => return Err(invalid("`key_ops` must be an array")),
        };
        let mut members = BTreeMap::new();
        for name in ["x", "y", "n", "e"] {
            if let Some(text) = string_member(map, name)? {
                let bytes =
                    base64url::decode(&text).ok_or_else(|| invalid(format!("`{name}` is not strict base64url")))?;
                members.insert(name, bytes);
            }
        }
        let private_member = PRIVATE_MEMBERS.into_iter().find(|m| map.contains_key(*m));
        let kid = string_member(map, "kid")?;
        if kid.as_deref().is_some_and(str::is_empty) {
            // An empty kid could never be published back as given (emitters
            // drop it) and matches no token header; refuse it outright.
            return Err(invalid("`kid` must not be empty"));
        }
        Ok(Jwk {
            kty,
            crv: string_member(map, "crv")?,
            alg: string_member(map, "alg")?,
            use_: string_member(map, "use")?,
            key_ops,
            kid,
            members,
            private_member,
        })
    }

    /// The public JWK of a verifying key. HMAC keys have no public form.
    pub fn from_verifying_key(key: &VerifyingKey) -> Result<Self, JoseError> {
        let (kty, crv, members): (&str, Option<&str>, Members) = match key.material() {
            PublicMaterial::Ed25519 { x, .. } => ("OKP", Some("Ed25519"), vec![("x", x.to_vec())]),
            PublicMaterial::Ec { x, y, .. } => {
                let crv = if key.alg() == Algorithm::ES384 {
                    "P-384"
                } else {
                    "P-256"
                };
                ("EC", Some(crv), vec![("x", x.clone()), ("y", y.clone())])
            }
            PublicMaterial::Rsa { n, e, .. } => ("RSA", None, vec![("n", n.clone()), ("e", e.clone())]),
            PublicMaterial::Hmac(_) => return Err(JoseError::KeyUnsuitable(Algorithm::HS256)),
        };
        Ok(Jwk {
            kty: kty.to_owned(),
            crv: crv.map(str::to_owned),
            alg: Some(key.alg().as_str().to_owned()),
            use_: Some("sig".to_owned()),
            key_ops: None,
            kid: (!key.kid().is_empty()).then(|| key.kid().to_owned()),
            members: members.into_iter().collect(),
            private_member: None,
        })
    }

    /// The `kid`, if the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    fn member(&self, name: &'static str) -> Result<&[u8], JoseError> {
        self.members
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| invalid(format!("`{name}` is required for kty `{}`", bounded(&self.kty))))
    }

    fn forbid_members(&self, names: &[&'static str]) -> Result<(), JoseError> {
        match names.iter().find(|n| self.members.contains_key(*n)) {
            Some(n) => Err(invalid(format!("`{n}` contradicts kty `{}`", bounded(&self.kty)))),
            None => Ok(()),
        }
    }

    /// `use` and `key_ops` must allow signature verification, and agree.
    fn check_intended_use(&self) -> Result<(), JoseError> {
        if let Some(u) = &self.use_
            && u != "sig"
        {
            return Err(invalid(format!("`use` is `{}`, not `sig`", bounded(u))));
        }
        if let Some(ops) = &self.key_ops {
            if let Some(op) = ops.iter().find(|op| *op != "sign" && *op != "verify") {
                return Err(invalid(format!(
                    "`key_ops` allows `{}`, which is not a signature operation",
                    bounded(op)
                )));
            }
            if !ops.iter().any(|op| op == "verify") {
                return Err(invalid("`key_ops` does not allow `verify`"));
            }
        }
        Ok(())
    }

    /// The declared `alg`, if any, parsed.
    fn declared_alg(&self) -> Result<Option<Algorithm>, JoseError> {
        match &self.alg {
            None => Ok(None),
            Some(name) => Algorithm::parse(name).map(Some).map_err(|_| {
                invalid(format!(
                    "`alg` `{}` is not a supported signature algorithm",
                    bounded(name)
                ))
            }),
        }
    }

    /// Resolves the one algorithm this key is bound to: the JWK's `alg`,
    /// else the one its curve implies, else `expected`; all that are given
    /// must agree.
    fn bound_alg(&self, implied: Option<Algorithm>, expected: Option<Algorithm>) -> Result<Algorithm, JoseError> {
        let declared = self.declared_alg()?;
        let mut chosen: Option<Algorithm> = None;
        for candidate in [declared, implied, expected].into_iter().flatten() {
            match chosen {
                Some(a) if a != candidate => {
                    return Err(invalid(format!("key is for `{a}`, not `{candidate}`")));
                }
                _ => chosen = Some(candidate),
            }
        }
        chosen.ok_or_else(|| invalid("RSA key has no `alg`; it must name RS256 or PS256"))
    }

    /// Turns the JWK into a verifying key bound to one algorithm.
    ///
    /// `expected` is the algorithm the caller will use the key for, when it
    /// knows one; it is required for RSA keys that carry no `alg`. The key id
    /// is the JWK's `kid`, or its RFC 7638 thumbprint when it has none.
    pub fn to_verifying_key(&self, expected: Option<Algorithm>) -> Result<VerifyingKey, JoseError> {
        if let Some(member) = self.private_member {
            return Err(invalid(format!(
                "holds private member `{member}`; only public keys are accepted"
            )));
        }
        self.check_intended_use()?;
        let kid = self.kid.clone().unwrap_or_else(|| self.thumbprint());
        match self.kty.as_str() {
            "OKP" => {
                match self.crv.as_deref() {
                    Some("Ed25519") => {}
                    Some(other) => {
                        return Err(invalid(format!("OKP curve `{}` is not supported", bounded(other))));
                    }
                    None => return Err(invalid("`crv` is required for kty `OKP`")),
                }
                self.forbid_members(&["y", "n", "e"])?;
                let alg = self.bound_alg(Some(Algorithm::EdDSA), expected)?;
                debug_assert_eq!(alg, Algorithm::EdDSA);
                VerifyingKey::ed25519(kid, self.member("x")?)
            }
            "EC" => {
                let implied = match self.crv.as_deref() {
                    Some("P-256") => Algorithm::ES256,
                    Some("P-384") => Algorithm::ES384,
                    Some(other) => {
                        return Err(invalid(format!("EC curve `{}` is not supported", bounded(other))));
                    }
                    None => return Err(invalid("`crv` is required for kty `EC`")),
                };
                self.forbid_members(&["n", "e"])?;
                let alg = self.bound_alg(Some(implied), expected)?;
                VerifyingKey::ec(alg, kid, self.member("x")?, self.member("y")?)
            }
            "RSA" => {
                if self.crv.is_some() {
                    return Err(invalid("`crv` contradicts kty `RSA`"));
                }
                self.forbid_members(&["x", "y"])?;
                let alg = self.bound_alg(None, expected)?;
                if !matches!(alg, Algorithm::RS256 | Algorithm::PS256) {
                    return Err(invalid(format!("RSA key cannot be bound to `{alg}`")));
                }
                VerifyingKey::rsa(alg, kid, self.member("n")?, self.member("e")?)
            }
            "oct" => Err(invalid(
                "symmetric keys are refused (HS256 needs the explicit `danger` opt-in)",
            )),
            other => Err(invalid(format!("kty `{}` is not supported", bounded(other)))),
        }
    }

    /// RFC 7638 thumbprint: SHA-256 over the required members in
    /// lexicographic order, base64url-encoded.
    pub fn thumbprint(&self) -> String {
        let mut required: BTreeMap<&str, String> = BTreeMap::new();
        required.insert("kty", self.kty.clone());
        if let Some(crv) = &self.crv {
            required.insert("crv", crv.clone());
        }
        let names: &[&'static str] = match self.kty.as_str() {
            "RSA" => &["e", "n"],
            "EC" => &["x", "y"],
            _ => &["x"],
        };
        for name in names {
            if let Some(bytes) = self.members.get(name) {
                required.insert(name, base64url::encode(bytes));
            }
        }
        // INVARIANT: a map of strings always serialises.
        let canonical = serde_json::to_vec(&required).unwrap_or_default();
        base64url::encode(digest::digest(&digest::SHA256, &canonical).as_ref())
    }

    /// The JWK as a JSON object (public members only).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("kty".into(), Value::from(self.kty.as_str()));
        if let Some(crv) = &self.crv {
            map.insert("crv".into(), Value::from(crv.as_str()));
        }
        for (name, bytes) in &self.members {
            map.insert((*name).into(), Value::from(base64url::encode(bytes)));
        }
        if let Some(kid) = &self.kid {
            map.insert("kid".into(), Value::from(kid.as_str()));
        }
        if let Some(alg) = &self.alg {
            map.insert("alg".into(), Value::from(alg.as_str()));
        }
        if let Some(u) = &self.use_ {
            map.insert("use".into(), Value::from(u.as_str()));
        }
        Value::Object(map)
    }
}

/// The result of importing a JWK Set: the usable keys, and why each other
/// key was left out. Left-out keys are never used for anything.
#[derive(Debug, Clone)]
pub struct JwkSet {
    keys: Vec<VerifyingKey>,
    skipped: Vec<SkippedKey>,
}

/// A key of a JWK Set that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

impl JwkSet {
    /// Parses a JWK Set (`{"keys":[...]}`) under the strict JSON rules.
    ///
    /// The whole set is refused when it is malformed, repeats a `kid`, or
    /// mixes symmetric and asymmetric keys (an ambiguous set invites key
    /// confusion). A single unusable key (an encryption key, an unknown
    /// `kty`, a weak or contradictory key) is left out and reported.
    pub fn parse(json: &[u8]) -> Result<Self, JoseError> {
        let map = strict_json::parse_object(json).map_err(|e| match e {
            StrictJsonError::Duplicate(name) => {
                JoseError::AmbiguousKeySet(format!("repeats the member `{}`", bounded(&name)))
            }
            StrictJsonError::TooDeep => invalid("key set nests too deeply"),
            StrictJsonError::Syntax(_) => invalid("key set is not a JSON object"),
        })?;
        let entries = match map.get("keys") {
            Some(Value::Array(entries)) => entries,
            _ => return Err(invalid("key set has no `keys` array")),
        };
        let mut kids = HashSet::new();
        let (mut symmetric, mut asymmetric) = (false, false);
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let object = entry.as_object().ok_or_else(|| invalid("`keys` holds a non-object"))?;
            let jwk = match Jwk::from_object(object) {
                Ok(jwk) => jwk,
                Err(e) => {
                    // Malformed members: unusable, but no reason to refuse its neighbours.
                    let kid = object.get("kid").and_then(Value::as_str).map(bounded);
                    skipped.push(SkippedKey {
                        kid,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if let Some(kid) = jwk.kid()
                && !kids.insert(kid.to_owned())
            {
                return Err(JoseError::AmbiguousKeySet(format!(
                    "`kid` `{}` appears twice",
                    bounded(kid)
                )));
            }
            if jwk.kty == "oct" {
                symmetric = true;
            } else {
                asymmetric = true;
            }
            match jwk.to_verifying_key(None) {
                Ok(key) => keys.push(key),
                Err(e) => skipped.push(SkippedKey {
                    kid: jwk.kid.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        if symmetric && asymmetric {
            return Err(JoseError::AmbiguousKeySet("mixes symmetric and asymmetric keys".into()));
        }
        // Keys without a kid got their thumbprint as kid; those may collide too.
        let mut all = HashSet::new();
        if let Some(dup) = keys.iter().find(|k| !all.insert(k.kid().to_owned())) {
            return Err(JoseError::AmbiguousKeySet(format!(
                "`kid` `{}` appears twice",
                bounded(dup.kid())
            )));
        }
        Ok(JwkSet { keys, skipped })
    }

    /// Builds a set from keys already trusted.
    pub fn from_keys(keys: Vec<VerifyingKey>) -> Self {
        JwkSet {
            keys,
            skipped: Vec::new(),
        }
    }

    /// The usable keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Consumes the set, returning the usable keys.
    pub fn into_keys(self) -> Vec<VerifyingKey> {
        self.keys
    }

    /// The keys that were left out, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The public JWK Set document. HMAC keys are never published.
    pub fn to_json(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter_map(|k| Jwk::from_verifying_key(k).ok())
            .map(|jwk| jwk.to_json())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

pub(crate) fn hmac_from_object(map: &Map<String, Value>) -> Result<VerifyingKey, JoseError> {
    let jwk = Jwk::from_object(map)?;
    if jwk.kty != "oct" {
        return Err(invalid("HS256 needs a kty `oct` key"));
    }
    jwk.check_intended_use()?;
    jwk.bound_alg(Some(Algorithm::HS256), None)?;
    let k = match map.get("k") {
        Some(Value::String(k)) => base64url::decode(k).ok_or_else(|| invalid("`k` is not strict base64url"))?,
        _ => return Err(invalid("`k` is required for kty `oct`")),
    };
    let kid = jwk.kid.clone().unwrap_or_default();
    Ok(crate::danger::hs256_verifying_key(kid, HmacKey::new(&k)?))
}
