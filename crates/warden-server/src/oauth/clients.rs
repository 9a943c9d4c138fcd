//! Clients: registration (validation, secret generation and hashing — the
//! operations the CLI and the admin API share) and [`Clients`], the
//! registered clients as the token service reads them.
//!
//! Secrets are server-generated (256 random bits), shown once, and stored
//! as HMAC-SHA-256 under a pepper derived from the master key: a stolen
//! database alone does not let anyone test guesses, and a check costs one
//! HMAC (argon2 would cap issuance near 60/s; a 256-bit random secret needs
//! no stretching). Comparison is constant-time (`hmac::verify`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use warden_jose::JwkSet;
use warden_store::StoreError;
use warden_store::oauth::{ClientAuth, ClientKind, ClientRecord, OAuthStore};
use zeroize::Zeroizing;

pub use crate::error::ClientError;
use crate::oauth::scope;

/// How long a client record read from the store is trusted: a change made
/// on another replica or by the CLI takes effect within this (at once with
/// the Redis fan-out, and at once for a new secret: a secret that does not
/// match the cached record is checked against the store before it fails).
const CLIENT_TTL: Duration = Duration::from_secs(5);
/// Clients cached at most; past it the cache starts over.
const MAX_CACHED: usize = 10_000;

/// The registered clients as the token service reads them: a short-lived
/// cache over the store, the secret hasher, and when each was last used.
#[derive(Debug)]
pub struct Clients {
    /// Client-secret hashing.
    pub hasher: SecretHasher,
    cache: Mutex<HashMap<String, (ClientRecord, Instant)>>,
    /// Client ids whose last use was recorded recently, and when.
    touched: Mutex<HashMap<String, u64>>,
}

impl Clients {
    /// Clients whose secrets `hasher` checks.
    pub fn new(hasher: SecretHasher) -> Self {
        Clients {
            hasher,
            cache: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// A client by id, from the cache when it was read within [`CLIENT_TTL`].
    pub async fn get<S: OAuthStore>(&self, store: &S, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((record, at)) = cache.get(client_id)
            && at.elapsed() < CLIENT_TTL
        {
            return Ok(Some(record.clone()));
        }
        self.read(store, client_id).await
    }

    /// A client by id, read from the store now (and cached).
    pub async fn read<S: OAuthStore>(&self, store: &S, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let record = store.get_client(client_id).await?;
        if let Ok(mut cache) = self.cache.lock() {
            match &record {
                Some(r) => {
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                    cache.insert(client_id.to_owned(), (r.clone(), Instant::now()));
                }
                None => {
                    cache.remove(client_id);
                }
            }
        }
        Ok(record)
    }

    /// Forgets a cached client after a change (here, or announced by
    /// another replica).
    pub fn forget(&self, client_id: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(client_id);
        }
    }

    /// Records a client's use, at most once a minute per client.
    pub async fn touch<S: OAuthStore>(&self, store: &S, client_id: &str, now: u64) {
        let due = match self.touched.lock() {
            Ok(mut touched) => {
                let due = touched.get(client_id).is_none_or(|t| now >= t + 60);
                if due {
                    if touched.len() >= MAX_CACHED {
                        touched.clear();
                    }
                    touched.insert(client_id.to_owned(), now);
                }
                due
            }
            Err(_) => false,
        };
        if due && let Err(e) = store.touch_client(client_id, now).await {
            tracing::warn!(error = %e, client_id, "could not record client use");
        }
    }
}

/// The grant types Warden implements.
pub mod grant {
    /// RFC 6749 §4.4.
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    /// RFC 6749 §6.
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// RFC 8693.
    pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    /// RFC 6749 §4.1 with PKCE: a person approves in the browser.
    pub const AUTHORIZATION_CODE: &str = "authorization_code";
    /// RFC 8628: a person approves a device's user code.
    pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
    /// OpenID CIBA: a person approves an agent's action on another device
    /// (`docs/approvals.md`).
    pub const CIBA: &str = "urn:openid:params:grant-type:ciba";
    /// Every one of them.
    pub const ALL: [&str; 6] = [
        CLIENT_CREDENTIALS,
        REFRESH_TOKEN,
        TOKEN_EXCHANGE,
        AUTHORIZATION_CODE,
        DEVICE_CODE,
        CIBA,
    ];
    /// The grants of a public client: only those a person approves, and
    /// refreshing what they approved.
    pub const PUBLIC: [&str; 3] = [AUTHORIZATION_CODE, DEVICE_CODE, REFRESH_TOKEN];
}

/// Client ids Warden's own tokens name (dashboard sessions: login links
/// and pasted tokens, and sign-ins through an identity provider): never
/// registered, so no token of a client can pass for a session's.
pub const RESERVED_CLIENT_IDS: [&str; 2] = ["warden-ui", "warden-sso"];

/// Prefix of generated secrets, so they are recognisable in secret scanners.
const SECRET_PREFIX: &str = "wsec_";

/// What a new client should be.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Its id (`[a-z0-9][a-z0-9._-]*`, at most 64): the name in its subject.
    pub name: String,
    /// `service`, `agent` or `public` (a CLI or notebook people sign in
    /// through: no secret, tokens only for people).
    pub kind: ClientKind,
    /// Grant types (`client_credentials`, `refresh_token`, `token_exchange`
    /// or the RFC 8693 URN). Default: client_credentials.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Scopes it may be granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Roles put in its tokens.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Audiences it may ask for; the first is the default.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `secret` (default) or `private_key_jwt`.
    #[serde(default = "default_auth")]
    pub auth: String,
    /// For private_key_jwt: its public JWKS.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// The tenant its tokens carry (a registry name: letters, digits, `.`,
    /// `_`, `-`); none: a client of no tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Public clients: where the authorization-code flow may return
    /// (https, loopback http with any port, or a private-use scheme).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Whether the token endpoint requires a DPoP proof (RFC 9449) from it:
    /// without one it gets `invalid_dpop_proof`, and all its access tokens
    /// are bound to its DPoP key.
    #[serde(default)]
    pub require_dpop: bool,
}

fn default_auth() -> String {
    "secret".into()
}

/// A secret shown once; wiped on drop.
pub struct IssuedSecret(pub Zeroizing<String>);

impl std::fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedSecret(<redacted>)")
    }
}

/// Hashes and checks client secrets under the pepper.
#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher(<pepper>)")
    }
}

impl SecretHasher {
    /// The hasher of the master key's pepper.
    pub fn from_master(master: &warden_keys::MasterKey) -> Self {
        let pepper = master.derive("client secret pepper");
        SecretHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper.as_slice()),
        }
    }

    /// HMAC-SHA-256(pepper, secret).
    pub fn hash(&self, secret: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        let mut out = [0u8; 32];
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
        out
    }

    /// Whether `secret` matches `stored`, in constant time.
    pub fn matches(&self, secret: &str, stored: &[u8; 32]) -> bool {
        hmac::verify(&self.key, secret.as_bytes(), stored).is_ok()
    }

    /// A fresh secret and its hash.
    pub fn generate(&self) -> Result<(IssuedSecret, [u8; 32]), ClientError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut_slice())
            .map_err(|_| ClientError::Random)?;
        let mut secret = Zeroizing::new(String::from(SECRET_PREFIX));
        secret.push_str(&warden_jose::base64url::encode(bytes.as_slice()));
        let hash = self.hash(&secret);
        Ok((IssuedSecret(secret), hash))
    }
}

/// Whether `id` is a valid client id.
pub fn valid_client_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && id.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

fn normalise_grant(g: &str) -> Result<String, ClientError> {
    let g = match g {
        "token_exchange" | "token-exchange" => grant::TOKEN_EXCHANGE,
        "device_code" | "device-code" => grant::DEVICE_CODE,
        "authorization-code" => grant::AUTHORIZATION_CODE,
        "ciba" => grant::CIBA,
        other => other,
    };
    if grant::ALL.contains(&g) {
        Ok(g.to_owned())
    } else {
        Err(ClientError::Invalid(format!(
            "grant `{g}` is not one of client_credentials, refresh_token, token_exchange, authorization_code, device_code, ciba"
        )))
    }
}

fn check_names(items: &[String], what: &str) -> Result<(), ClientError> {
    for item in items {
        if item.is_empty() || item.len() > 200 || item.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ClientError::Invalid(format!(
                "{what} `{item}` must be non-empty, without spaces"
            )));
        }
    }
    Ok(())
}

impl ClientSpec {
    /// Validates the spec into a record (without credentials yet).
    fn validate(&self, now: u64) -> Result<(ClientRecord, Option<String>), ClientError> {
        if RESERVED_CLIENT_IDS.contains(&self.name.as_str()) {
            return Err(ClientError::Invalid(format!(
                "name `{}` is reserved: dashboard session tokens name it",
                self.name
            )));
        }
        if !valid_client_id(&self.name) {
            return Err(ClientError::Invalid(format!(
                "name `{}` must match [a-z0-9][a-z0-9._-]* and be at most 64 bytes",
                self.name
            )));
        }
        let mut grants = Vec::new();
        for g in &self.grants {
            let g = normalise_grant(g)?;
            if !grants.contains(&g) {
                grants.push(g);
            }
        }
        let public = self.kind == ClientKind::Public;
        if grants.is_empty() {
            if public {
                grants.extend(grant::PUBLIC.iter().map(|g| (*g).to_owned()));
            } else {
                grants.push(grant::CLIENT_CREDENTIALS.to_owned());
            }
        }
        if let Some(bad) = grants
            .iter()
            .find(|g| public != grant::PUBLIC.contains(&g.as_str()) && g.as_str() != grant::REFRESH_TOKEN)
        {
            return Err(ClientError::Invalid(if public {
                format!("a public client obtains tokens only for people: grant `{bad}` is for services and agents")
            } else {
                format!("grant `{bad}` is for public clients (--kind public), which people sign in through")
            }));
        }
        if public {
            if !self.roles.is_empty() {
                return Err(ClientError::Invalid(
                    "a public client's tokens carry the signed-in person's roles: --role is for services and agents"
                        .into(),
                ));
            }
            if self.jwks.is_some() || self.auth != "secret" {
                return Err(ClientError::Invalid(
                    "a public client has no credentials: leave out --auth and --jwks".into(),
                ));
            }
            if self.tenant.is_some() {
                return Err(ClientError::Invalid(
                    "a public client has no tenant of its own: its tokens carry the person's".into(),
                ));
            }
            if grants.iter().any(|g| g == grant::AUTHORIZATION_CODE) && self.redirect_uris.is_empty() {
                return Err(ClientError::Invalid(
                    "the authorization_code grant needs at least one --redirect-uri".into(),
                ));
            }
            for uri in &self.redirect_uris {
                crate::oauth::redirect_uri::check_registrable(uri).map_err(ClientError::Invalid)?;
            }
        } else if !self.redirect_uris.is_empty() {
            return Err(ClientError::Invalid(
                "redirect URIs are for public clients (--kind public)".into(),
            ));
        }
        let mut scopes = Vec::new();
        for s in &self.scopes {
            for token in scope::parse(s)
                .map_err(|bad| ClientError::Invalid(format!("scope `{bad}` is not a valid scope token")))?
            {
                if !scopes.contains(&token) {
                    scopes.push(token);
                }
            }
        }
        check_names(&self.roles, "role")?;
        check_names(&self.audiences, "audience")?;
        if let Some(tenant) = &self.tenant {
            warden_registry::check_name("tenant", tenant).map_err(|e| ClientError::Invalid(e.to_string()))?;
        }
        let jwks = match (self.auth.as_str(), &self.jwks) {
            _ if public => None,
            ("secret", None) => None,
            ("secret", Some(_)) => {
                return Err(ClientError::Invalid("a JWKS is only for --auth private_key_jwt".into()));
            }
            ("private_key_jwt", Some(jwks)) => {
                let text = jwks.to_string();
                let set = JwkSet::parse(text.as_bytes())
                    .map_err(|e| ClientError::Invalid(format!("the client JWKS is invalid: {e}")))?;
                if set.keys().is_empty() {
                    return Err(ClientError::Invalid("the client JWKS has no usable public key".into()));
                }
                if text.contains("\"d\"") {
                    return Err(ClientError::Invalid(
                        "the client JWKS holds a private key: register only the public key".into(),
                    ));
                }
                Some(text)
            }
            ("private_key_jwt", None) => {
                return Err(ClientError::Invalid("--auth private_key_jwt needs --jwks FILE".into()));
            }
            (other, _) => {
                return Err(ClientError::Invalid(format!(
                    "auth `{other}` is not secret or private_key_jwt"
                )));
            }
        };
        let record = ClientRecord {
            client_id: self.name.clone(),
            kind: self.kind,
            grants,
            scopes,
            roles: self.roles.clone(),
            audiences: self.audiences.clone(),
            auth: ClientAuth::Secret { hash: [0; 32] },
            disabled: false,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            redirect_uris: self.redirect_uris.clone(),
            tenant: self.tenant.clone(),
            require_dpop: self.require_dpop,
        };
        Ok((record, jwks))
    }
}

/// Registers a client; for secret clients returns the secret, shown once.
pub async fn create<S: OAuthStore>(
    store: &S,
    hasher: &SecretHasher,
    spec: &ClientSpec,
    now: u64,
) -> Result<(ClientRecord, Option<IssuedSecret>), ClientError> {
    let (mut record, jwks) = spec.validate(now)?;
    let secret = match jwks {
        _ if record.kind == ClientKind::Public => {
            record.auth = ClientAuth::None;
            None
        }
        Some(jwks) => {
            record.auth = ClientAuth::PrivateKeyJwt { jwks };
            None
        }
        None => {
            let (secret, hash) = hasher.generate()?;
            record.auth = ClientAuth::Secret { hash };
            Some(secret)
        }
    };
    if !store.insert_client(&record).await? {
        return Err(ClientError::Exists(record.client_id));
    }
    Ok((record, secret))
}

/// Replaces a secret client's secret; the old one stops working at once.
pub async fn rotate_secret<S: OAuthStore>(
    store: &S,
    hasher: &SecretHasher,
    client_id: &str,
    now: u64,
) -> Result<IssuedSecret, ClientError> {
    match store.get_client(client_id).await? {
        None => return Err(ClientError::NotFound(client_id.to_owned())),
        Some(c) if c.auth == ClientAuth::None => {
            return Err(ClientError::Invalid(format!(
                "client `{client_id}` is a public client: it has no secret"
            )));
        }
        Some(c) if !matches!(c.auth, ClientAuth::Secret { .. }) => {
            return Err(ClientError::Invalid(format!(
                "client `{client_id}` authenticates with private_key_jwt: it has no secret"
            )));
        }
        Some(_) => {}
    }
    let (secret, hash) = hasher.generate()?;
    if !store.set_client_secret(client_id, &hash, now).await? {
        return Err(ClientError::NotFound(client_id.to_owned()));
    }
    Ok(secret)
}

/// Enables or disables a client.
pub async fn set_disabled<S: OAuthStore>(
    store: &S,
    client_id: &str,
    disabled: bool,
    now: u64,
) -> Result<(), ClientError> {
    if store.set_client_disabled(client_id, disabled, now).await? {
        Ok(())
    } else {
        Err(ClientError::NotFound(client_id.to_owned()))
    }
}

/// A client as shown to people and the admin API: no secret hash.
pub fn describe(c: &ClientRecord) -> serde_json::Value {
    let mut v = serde_json::json!({
        "client_id": c.client_id,
        "kind": c.kind.as_str(),
        // A public client has no identity of its own.
        "subject": (c.kind != ClientKind::Public).then(|| format!("{}:{}", c.kind.subject_prefix(), c.client_id)),
        "grants": c.grants,
        "scopes": c.scopes,
        "roles": c.roles,
        "audiences": c.audiences,
        "auth": c.auth.method(),
        "disabled": c.disabled,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "last_used_at": c.last_used_at,
        "tenant": c.tenant,
        "redirect_uris": c.redirect_uris,
        "require_dpop": c.require_dpop,
    });
    if let (ClientAuth::PrivateKeyJwt { jwks }, Some(obj)) = (&c.auth, v.as_object_mut()) {
        obj.insert(
            "jwks".into(),
            serde_json::from_str(jwks).unwrap_or(serde_json::Value::Null),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_client_id("trainer"));
        assert!(valid_client_id("report-bot.v2_x"));
        assert!(!valid_client_id("Trainer"));
        assert!(!valid_client_id("-x"));
        assert!(!valid_client_id(""));
        assert!(!valid_client_id("a:b"));
        assert!(!valid_client_id(&"a".repeat(65)));
    }

    #[test]
    fn secrets_are_256_bit_and_checked() {
        let h = SecretHasher::from_master(&warden_keys::MasterKey::from_bytes([9; 32]));
        let (secret, hash) = h.generate().unwrap();
        assert!(secret.0.starts_with(SECRET_PREFIX));
        assert_eq!(secret.0.len(), SECRET_PREFIX.len() + 43);
        assert!(h.matches(&secret.0, &hash));
        assert!(!h.matches("wsec_wrong", &hash));
        let other = SecretHasher::from_master(&warden_keys::MasterKey::from_bytes([8; 32]));
        assert!(!other.matches(&secret.0, &hash), "pepper matters");
        assert!(!format!("{secret:?}").contains(secret.0.as_str()));
    }

    #[test]
    fn spec_validation() {
        let spec = |grants: &[&str], auth: &str| ClientSpec {
            name: "bot".into(),
            kind: ClientKind::Agent,
            grants: grants.iter().map(|g| (*g).to_owned()).collect(),
            scopes: vec!["a b".into(), "b c".into()],
            roles: vec![],
            audiences: vec!["inference".into()],
            auth: auth.into(),
            jwks: None,
            tenant: None,
            redirect_uris: Vec::new(),
            require_dpop: false,
        };
        let (r, _) = spec(&["token_exchange"], "secret").validate(1).unwrap();
        assert_eq!(r.tenant, None);
        let mut tenanted = spec(&[], "secret");
        tenanted.tenant = Some("acme".into());
        assert_eq!(tenanted.validate(1).unwrap().0.tenant.as_deref(), Some("acme"));
        for bad in ["", "a b", "-x", "a/b"] {
            tenanted.tenant = Some(bad.into());
            let e = tenanted.validate(1).unwrap_err();
            assert!(e.to_string().contains("tenant"), "{bad}: {e}");
        }
        assert_eq!(r.grants, [grant::TOKEN_EXCHANGE]);
        assert_eq!(r.scopes, ["a", "b", "c"]);
        let (r, _) = spec(&[], "secret").validate(1).unwrap();
        assert_eq!(r.grants, [grant::CLIENT_CREDENTIALS]);
        assert!(spec(&["password"], "secret").validate(1).is_err());
        assert!(spec(&[], "private_key_jwt").validate(1).is_err());
        assert!(spec(&[], "mtls").validate(1).is_err());
    }
}
