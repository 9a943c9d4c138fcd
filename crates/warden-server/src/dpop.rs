//! DPoP (RFC 9449) on the server: what the pure proof check in
//! [`warden_jose::dpop`] leaves to it — the one `DPoP` header of a
//! request, the server nonces, the replay cache of proof ids, the HTTP
//! answers to a refused proof and their audit record.
//!
//! - **Replay**: each proof is accepted once. Its key's thumbprint and
//!   `jti`, hashed, are remembered for the proof's acceptable life
//!   (`dpop.max_age` plus `dpop.leeway`): with `redis_url` in Redis
//!   (`SET … NX EX`), so a proof used on one replica is refused on every
//!   other; otherwise in a bounded map in this process. With Redis
//!   configured and not answering, proofs are refused (503): a replay
//!   cache that cannot be asked is no replay cache.
//! - **Nonces** (`dpop.require_nonce`): an HMAC, under a key derived from
//!   the master key, of the current five-minute window; the current and
//!   the previous window's nonce are accepted, so every replica accepts
//!   every other's without sharing state.
//! - **Answers**: at the token endpoint 400 `invalid_dpop_proof` or
//!   `use_dpop_nonce` (RFC 9449 §5, §8); on a protected resource 401 with
//!   a `DPoP` challenge (RFC 9449 §7.1, §9); a nonce to use in
//!   `DPoP-Nonce`.
//!
//! # What it must not touch
//! Proof syntax and signatures (warden-jose), which token is bound (the
//! token service decides, `access` enforces).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::{digest, hmac};
use axum::http::HeaderMap;
use warden_audit::{AuditEvent, EventKind};
use warden_jose::AlgorithmSet;
use warden_jose::dpop::{DpopError, DpopProof, ProofRules, ProofTarget, check_proof};
use warden_store::Store;

use crate::error::ApiError;
use crate::options::DpopOptions;
use crate::redis::Redis;
use crate::state::AppState;

/// The request header carrying a proof.
pub const DPOP_HEADER: &str = "dpop";
/// The response header carrying a nonce to use.
pub const NONCE_HEADER: &str = "dpop-nonce";
/// Seconds a nonce window lasts; a nonce is accepted in its window and
/// the next.
const NONCE_WINDOW: u64 = 300;
/// Longest wait for Redis before a proof is refused.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// Proof ids remembered at most without Redis; past it, a proof is
/// refused until the oldest expire (fail closed rather than forget).
const MAX_LOCAL: usize = 1_000_000;

/// Why a request was refused for DPoP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopRefusal {
    /// No proof where one is required.
    #[error("a DPoP proof is required")]
    Missing,
    /// More than one `DPoP` header.
    #[error("send exactly one DPoP header")]
    Multiple,
    /// The proof failed a rule of RFC 9449 §4.3.
    #[error(transparent)]
    Invalid(#[from] DpopError),
    /// The proof was used before.
    #[error("the DPoP proof was already used")]
    Replayed,
    /// The proof's key is not the one the token or grant is bound to.
    #[error("the DPoP proof is signed by another key than the one the token is bound to")]
    WrongKey,
    /// The proof lacks a current server nonce; the nonce to use.
    #[error("the DPoP proof must carry the server's current nonce")]
    UseNonce(String),
    /// A DPoP-bound token sent as a bearer token.
    #[error("a DPoP-bound access token must be sent with the DPoP scheme and a proof")]
    BoundAsBearer,
    /// The DPoP scheme with a token that is not DPoP-bound.
    #[error("the DPoP scheme is only for DPoP-bound access tokens")]
    NotBound,
    /// The token is bound by a confirmation method Warden does not check.
    #[error("the access token is bound by a confirmation method this server does not support")]
    UnsupportedBinding,
    /// The replay cache cannot be asked (Redis is unreachable).
    #[error("DPoP proofs cannot be checked for reuse now; retry later")]
    Unavailable,
    /// The replay cache is full (no Redis, a flood of proofs).
    #[error("too many DPoP proofs to remember; retry later")]
    Full,
}

impl DpopRefusal {
    /// The short reason recorded in the audit log.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// Whether the server, not the proof, is at fault.
    fn unavailable(&self) -> bool {
        matches!(self, DpopRefusal::Unavailable | DpopRefusal::Full)
    }

    /// The RFC 9449 / RFC 6750 error code.
    pub fn code(&self) -> &'static str {
        match self {
            DpopRefusal::UseNonce(_) => "use_dpop_nonce",
            DpopRefusal::BoundAsBearer | DpopRefusal::NotBound | DpopRefusal::UnsupportedBinding => "invalid_token",
            _ => "invalid_dpop_proof",
        }
    }

    /// The token endpoint's answer (RFC 9449 §5, §8): 400 with the code,
    /// the nonce to use in `DPoP-Nonce`.
    pub fn token_endpoint_error(&self) -> ApiError {
        if self.unavailable() {
            return ApiError::unavailable(self.to_string());
        }
        let mut e = ApiError::bad_request(self.code(), self.to_string());
        if let DpopRefusal::UseNonce(nonce) = self {
            e.dpop_nonce = Some(nonce.clone());
        }
        e
    }

    /// A protected resource's answer (RFC 9449 §7.1, §9): 401 with a
    /// `DPoP` challenge naming the accepted algorithms, the nonce to use
    /// in `DPoP-Nonce`.
    pub fn resource_error(&self, algorithms: AlgorithmSet) -> ApiError {
        if self.unavailable() {
            return ApiError::unavailable(self.to_string());
        }
        let algs: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
        let mut e = ApiError::dpop_challenge(self.code(), self.to_string(), &algs.join(" "));
        if let DpopRefusal::UseNonce(nonce) = self {
            e.dpop_nonce = Some(nonce.clone());
        }
        e
    }
}

/// The one `DPoP` header of a request: `None` without one, `Multiple`
/// with more, `Invalid` when it is not text.
pub fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, DpopRefusal> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(DpopRefusal::Multiple);
    }
    first
        .to_str()
        .map(|v| Some(v.trim()))
        .map_err(|_| DpopRefusal::Invalid(DpopError::Malformed(warden_jose::JoseError::Malformed("not text"))))
}

/// Who a refusal concerns, for its audit record.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    /// The token's subject or the client's (`svc:…`).
    pub principal: &'a str,
    /// The OAuth client.
    pub client_id: &'a str,
    /// The method of the request.
    pub method: &'a str,
    /// The path of the request.
    pub path: &'a str,
    /// The caller's address.
    pub source_ip: IpAddr,
}

/// Records a refusal as `dpop_refused`. A failure to record is logged:
/// the request is refused either way.
pub async fn audit_refusal<S: Store>(app: &AppState<S>, refusal: &DpopRefusal, who: Refused<'_>, now: u64) {
    tracing::info!(client_id = who.client_id, principal = who.principal, reason = %refusal, "DPoP refused");
    let event = EventKind::DpopRefused {
        principal: who.principal.to_owned(),
        client_id: who.client_id.to_owned(),
        reason: refusal.reason(),
        endpoint: format!("{} {}", who.method, who.path),
        source_ip: who.source_ip,
    };
    if let Err(e) = app.audit.record(AuditEvent::new(now, event)).await {
        tracing::error!(error = %e, "could not record a DPoP refusal in the audit log");
    }
}

/// DPoP proof checking with this server's rules, nonces and replay cache.
pub struct Dpop {
    rules: ProofRules,
    require_nonce: bool,
    nonce_key: hmac::Key,
    replay: Replay,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("rules", &self.rules)
            .field("require_nonce", &self.require_nonce)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

/// Proof ids remembered in this process: id hash → expiry, and the ids in
/// arrival order (which is expiry order: every entry lives equally long).
#[derive(Default)]
struct Seen {
    expiry: HashMap<[u8; 16], u64>,
    order: VecDeque<([u8; 16], u64)>,
}

/// Where proof ids are remembered.
enum Replay {
    /// In this process.
    Local(Mutex<Seen>),
    /// In Redis, shared by every replica.
    Shared {
        connection: redis::aio::ConnectionManager,
        prefix: String,
    },
    /// Redis is configured but no connection could be set up: refuse.
    Broken,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Replay::Local(_) => "Local",
            Replay::Shared { .. } => "Shared",
            Replay::Broken => "Broken",
        })
    }
}

impl Dpop {
    /// Checking under `options` with proofs of `algorithms`, nonces keyed
    /// by `nonce_key` (derive it from the master key), and proof ids kept
    /// in `redis` when given (must be called within a Tokio runtime),
    /// else in this process. Redis keys are named per `issuer`.
    pub fn new(
        options: &DpopOptions,
        algorithms: AlgorithmSet,
        nonce_key: &[u8],
        redis: Option<&Redis>,
        issuer: &str,
    ) -> Self {
        let replay = match redis {
            None => Replay::Local(Mutex::new(Seen::default())),
            Some(redis) => match redis.commands(REDIS_TIMEOUT) {
                Ok(connection) => Replay::Shared {
                    connection,
                    prefix: format!("warden:dpop:{issuer}:"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "DPoP replay cache: no Redis connection; DPoP proofs will be refused");
                    Replay::Broken
                }
            },
        };
        Dpop {
            rules: ProofRules {
                leeway: options.leeway,
                max_age: options.max_age,
                algorithms,
            },
            require_nonce: options.require_nonce,
            nonce_key: hmac::Key::new(hmac::HMAC_SHA256, nonce_key),
            replay,
        }
    }

    /// In-process checking with the default rules and a fixed nonce key
    /// (tests and embedders without a master key at hand).
    pub fn local(options: &DpopOptions) -> Self {
        Self::new(options, AlgorithmSet::asymmetric(), b"warden dpop nonce", None, "")
    }

    /// The algorithms proofs may use.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.rules.algorithms
    }

    /// Checks `proof` for a request of `method` to `url` (with
    /// `access_token` when one is presented), by the key `bound_to` names
    /// when the token or grant is bound: the proof's rules, its key, the
    /// nonce when required, then that it was not used before (and
    /// remembers it).
    pub async fn check(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        bound_to: Option<&str>,
        now: u64,
    ) -> Result<DpopProof, DpopRefusal> {
        let target = ProofTarget {
            method,
            url,
            access_token,
        };
        let checked = check_proof(proof, &target, &self.rules, now)?;
        if bound_to.is_some_and(|jkt| jkt != checked.jkt()) {
            return Err(DpopRefusal::WrongKey);
        }
        if self.require_nonce && !checked.nonce().is_some_and(|n| self.nonce_ok(n, now)) {
            return Err(DpopRefusal::UseNonce(self.nonce(now)));
        }
        self.remember(&checked, now).await?;
        Ok(checked)
    }

    /// The nonce to hand out at `now`.
    pub fn nonce(&self, now: u64) -> String {
        self.nonce_of(now / NONCE_WINDOW)
    }

    fn nonce_of(&self, window: u64) -> String {
        let mut input = b"dpop-nonce:".to_vec();
        input.extend_from_slice(&window.to_be_bytes());
        let tag = hmac::sign(&self.nonce_key, &input);
        warden_jose::base64url::encode(tag.as_ref().get(..18).unwrap_or_default())
    }

    fn nonce_ok(&self, nonce: &str, now: u64) -> bool {
        let window = now / NONCE_WINDOW;
        [window, window.saturating_sub(1)].into_iter().any(|w| {
            aws_lc_rs::constant_time::verify_slices_are_equal(self.nonce_of(w).as_bytes(), nonce.as_bytes()).is_ok()
        })
    }

    /// Records the proof's id; `Replayed` when it was seen before.
    async fn remember(&self, proof: &DpopProof, now: u64) -> Result<(), DpopRefusal> {
        let id = proof_id(proof.jkt(), proof.jti());
        let ttl = self.rules.max_age + self.rules.leeway + 1;
        match &self.replay {
            Replay::Broken => Err(DpopRefusal::Unavailable),
            Replay::Local(seen) => {
                let Ok(mut guard) = seen.lock() else {
                    return Err(DpopRefusal::Unavailable);
                };
                let Seen { expiry: map, order } = &mut *guard;
                while let Some((old, expires)) = order.front().copied() {
                    if expires > now {
                        break;
                    }
                    order.pop_front();
                    if map.get(&old) == Some(&expires) {
                        map.remove(&old);
                    }
                }
                if map.get(&id).is_some_and(|expires| *expires > now) {
                    return Err(DpopRefusal::Replayed);
                }
                if map.len() >= MAX_LOCAL {
                    tracing::warn!("DPoP replay cache full; refusing proofs until the oldest expire");
                    return Err(DpopRefusal::Full);
                }
                map.insert(id, now + ttl);
                order.push_back((id, now + ttl));
                Ok(())
            }
            Replay::Shared { connection, prefix } => {
                let key = format!("{prefix}{}", warden_jose::base64url::encode(&id));
                let mut conn = connection.clone();
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(1).arg("NX").arg("EX").arg(ttl);
                let set = cmd.query_async::<Option<String>>(&mut conn);
                match tokio::time::timeout(REDIS_TIMEOUT, set).await {
                    Ok(Ok(Some(_))) => Ok(()),
                    Ok(Ok(None)) => Err(DpopRefusal::Replayed),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "DPoP replay cache: Redis failed; refusing the proof");
                        Err(DpopRefusal::Unavailable)
                    }
                    Err(_) => {
                        tracing::warn!("DPoP replay cache: Redis did not answer; refusing the proof");
                        Err(DpopRefusal::Unavailable)
                    }
                }
            }
        }
    }
}

/// 128 bits of SHA-256 over the key's thumbprint and the proof's `jti`:
/// what the replay cache keeps (bounded, whatever the `jti`).
fn proof_id(jkt: &str, jti: &str) -> [u8; 16] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(jkt.as_bytes());
    ctx.update(&[0]);
    ctx.update(jti.as_bytes());
    let d = ctx.finish();
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use warden_jose::dpop::sign_proof;
    use warden_jose::{Algorithm, SigningKey};

    const URL: &str = "http://warden.test/v1/models";
    const NOW: u64 = 1_800_000_000;

    fn key() -> SigningKey {
        SigningKey::generate(Algorithm::ES256).unwrap().0
    }

    #[tokio::test]
    async fn a_proof_is_accepted_once() {
        let d = Dpop::local(&DpopOptions::default());
        let k = key();
        let proof = sign_proof(&k, "GET", URL, NOW, "j1", Some("tok"), None).unwrap();
        let p = d.check(&proof, "GET", URL, Some("tok"), None, NOW).await.unwrap();
        assert_eq!(p.jti(), "j1");
        assert_eq!(
            d.check(&proof, "GET", URL, Some("tok"), None, NOW + 1).await,
            Err(DpopRefusal::Replayed)
        );
        // A proof by another key than the binding names is refused before
        // it is remembered.
        let k2 = key();
        let by_k2 = sign_proof(&k2, "GET", URL, NOW, "j9", Some("tok"), None).unwrap();
        let jkt = warden_jose::dpop::key_thumbprint(&k).unwrap();
        assert_eq!(
            d.check(&by_k2, "GET", URL, Some("tok"), Some(&jkt), NOW).await,
            Err(DpopRefusal::WrongKey)
        );
        let jkt2 = warden_jose::dpop::key_thumbprint(&k2).unwrap();
        assert!(d.check(&by_k2, "GET", URL, Some("tok"), Some(&jkt2), NOW).await.is_ok());
        // The same jti from another key is another proof.
        let other = sign_proof(&key(), "GET", URL, NOW, "j1", Some("tok"), None).unwrap();
        assert!(d.check(&other, "GET", URL, Some("tok"), None, NOW).await.is_ok());
        // Expired entries are forgotten, and such proofs are stale anyway.
        let late = NOW + 400;
        let fresh = sign_proof(&k, "GET", URL, late, "j2", Some("tok"), None).unwrap();
        assert!(d.check(&fresh, "GET", URL, Some("tok"), None, late).await.is_ok());
        assert!(matches!(
            d.check(&proof, "GET", URL, Some("tok"), None, late).await,
            Err(DpopRefusal::Invalid(DpopError::Stale))
        ));
        let Replay::Local(seen) = &d.replay else { panic!() };
        assert_eq!(seen.lock().unwrap().expiry.len(), 1, "the old entries were dropped");
        let _ = k2;
    }

    #[tokio::test]
    async fn nonces_are_demanded_when_required_and_shared_by_key() {
        let options = DpopOptions {
            require_nonce: true,
            ..DpopOptions::default()
        };
        let d = Dpop::new(&options, AlgorithmSet::asymmetric(), b"k1", None, "i");
        let replica = Dpop::new(&options, AlgorithmSet::asymmetric(), b"k1", None, "i");
        let stranger = Dpop::new(&options, AlgorithmSet::asymmetric(), b"k2", None, "i");
        let k = key();
        let bare = sign_proof(&k, "POST", URL, NOW, "a", None, None).unwrap();
        let Err(DpopRefusal::UseNonce(nonce)) = d.check(&bare, "POST", URL, None, None, NOW).await else {
            panic!("no nonce demanded")
        };
        assert_eq!(nonce, replica.nonce(NOW));
        assert_ne!(nonce, stranger.nonce(NOW));
        let with = sign_proof(&k, "POST", URL, NOW, "b", None, Some(&nonce)).unwrap();
        assert!(replica.check(&with, "POST", URL, None, None, NOW).await.is_ok());
        let with = sign_proof(&k, "POST", URL, NOW, "c", None, Some(&nonce)).unwrap();
        assert!(matches!(
            stranger.check(&with, "POST", URL, None, None, NOW).await,
            Err(DpopRefusal::UseNonce(_))
        ));
        // Accepted in its window and the next, not after.
        let later = NOW + NONCE_WINDOW;
        let with = sign_proof(&k, "POST", URL, later, "d", None, Some(&nonce)).unwrap();
        assert!(d.check(&with, "POST", URL, None, None, later).await.is_ok());
        let much_later = NOW + 2 * NONCE_WINDOW + NONCE_WINDOW;
        let with = sign_proof(&k, "POST", URL, much_later, "e", None, Some(&nonce)).unwrap();
        assert!(matches!(
            d.check(&with, "POST", URL, None, None, much_later).await,
            Err(DpopRefusal::UseNonce(_))
        ));
    }

    #[test]
    fn one_header_and_rfc_answers() {
        let mut h = HeaderMap::new();
        assert_eq!(proof_header(&h), Ok(None));
        h.append(DPOP_HEADER, HeaderValue::from_static(" a.b.c "));
        assert_eq!(proof_header(&h), Ok(Some("a.b.c")));
        h.append(DPOP_HEADER, HeaderValue::from_static("d.e.f"));
        assert_eq!(proof_header(&h), Err(DpopRefusal::Multiple));

        let e = DpopRefusal::UseNonce("n1".into()).token_endpoint_error();
        assert_eq!((e.status.as_u16(), e.code), (400, "use_dpop_nonce"));
        assert_eq!(e.dpop_nonce.as_deref(), Some("n1"));
        let e = DpopRefusal::Replayed.token_endpoint_error();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_dpop_proof"));
        let e = DpopRefusal::Replayed.resource_error(AlgorithmSet::asymmetric());
        assert_eq!((e.status.as_u16(), e.code), (401, "invalid_dpop_proof"));
        let challenge = e.challenge.unwrap();
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
            "{challenge}"
        );
        assert!(challenge.contains("algs=\"EdDSA ES256"), "{challenge}");
        let e = DpopRefusal::BoundAsBearer.resource_error(AlgorithmSet::asymmetric());
        assert_eq!((e.status.as_u16(), e.code), (401, "invalid_token"));
        let e = DpopRefusal::Unavailable.resource_error(AlgorithmSet::asymmetric());
        assert_eq!(e.status.as_u16(), 503);
    }
}
