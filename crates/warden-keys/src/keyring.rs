//! Signing-key records and the rotation rules over them.
//!
//! Every state is derived from timestamps, so any replica reading the same
//! records at the same time agrees on which key signs and which are
//! published:
//!
//! - **Pending**: created, published in the JWKS, not yet signing. A new key
//!   waits `publish_lead` seconds so that relying parties that cache the
//!   JWKS have it before the first token signed with it arrives.
//! - **Active**: the newest key whose activation time has passed; it signs.
//! - **Overlap**: superseded, still published until every token it signed
//!   has expired: its successor's activation + the maximum token lifetime +
//!   the maximum leeway.
//! - **Expired**: past that point; no valid token can carry it. A sweep
//!   retires it.
//! - **Retired**: withdrawn from the JWKS for good.

use std::fmt;

use warden_jose::{Algorithm, Jwk, SigningKey};

use crate::envelope;
use crate::error::KeyError;
use crate::master_key::MasterKey;

/// A stored signing key: public JWK in clear, private key sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// Position in creation order, unique per key store: orders keys that
    /// activate in the same second, and makes two concurrent rotations
    /// collide instead of both succeeding.
    pub generation: u64,
    /// The one algorithm the key signs with.
    pub alg: Algorithm,
    /// When the key was made (seconds since the epoch).
    pub created_at: u64,
    /// When the key may start signing.
    pub activates_at: u64,
    /// When the key was withdrawn, if it was.
    pub retired_at: Option<u64>,
    /// The public JWK (JSON).
    pub public_jwk: String,
    /// The private key sealed by [`envelope::seal`].
    pub sealed_private: Vec<u8>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .field(
                "sealed_private",
                &format_args!("<{} sealed bytes>", self.sealed_private.len()),
            )
            .finish()
    }
}

/// The associated data that binds a sealed key to its record.
fn seal_context(kid: &str, alg: Algorithm) -> Vec<u8> {
    format!("warden signing key v1|{kid}|{alg}").into_bytes()
}

impl KeyRecord {
    /// Generates a key for `alg`, sealed under `master`.
    pub fn generate(master: &MasterKey, alg: Algorithm, schedule: KeySchedule) -> Result<Self, KeyError> {
        let (key, pkcs8) = SigningKey::generate(alg)?;
        Self::seal(master, &key, &pkcs8, schedule)
    }

    /// Seals an existing key (`pkcs8` must be `key`'s PKCS#8 encoding).
    pub fn seal(master: &MasterKey, key: &SigningKey, pkcs8: &[u8], schedule: KeySchedule) -> Result<Self, KeyError> {
        let public_jwk = Jwk::from_verifying_key(key.verifying_key())?.to_json().to_string();
        let sealed_private = envelope::seal(master, &seal_context(key.kid(), key.alg()), pkcs8)?;
        Ok(KeyRecord {
            kid: key.kid().to_owned(),
            generation: schedule.generation,
            alg: key.alg(),
            created_at: schedule.created_at,
            activates_at: schedule.activates_at,
            retired_at: None,
            public_jwk,
            sealed_private,
        })
    }

    /// Opens the private key. Fails with a clear error under the wrong
    /// master key, or when the record was tampered with.
    pub fn open(&self, master: &MasterKey) -> Result<SigningKey, KeyError> {
        let pkcs8 = envelope::open(
            master,
            &seal_context(&self.kid, self.alg),
            &self.sealed_private,
            &self.kid,
        )?;
        let key = SigningKey::from_pkcs8(self.alg, &pkcs8)?;
        if key.kid() != self.kid {
            return Err(KeyError::Tampered(self.kid.clone()));
        }
        Ok(key)
    }

    /// The public key, bound to the record's algorithm.
    pub fn verifying_key(&self) -> Result<warden_jose::VerifyingKey, KeyError> {
        Ok(Jwk::parse(self.public_jwk.as_bytes())?.to_verifying_key(Some(self.alg))?)
    }
}

/// When a new key is made and starts signing, and its place in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySchedule {
    /// One more than the highest generation so far.
    pub generation: u64,
    /// Creation time.
    pub created_at: u64,
    /// When it may start signing.
    pub activates_at: u64,
}

/// Timing rules for rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Seconds a new key is published before it signs.
    pub publish_lead: u64,
    /// The longest lifetime any token signed by a key can have.
    pub max_token_ttl: u64,
    /// The largest leeway any verifier applies.
    pub leeway: u64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            publish_lead: 300,
            max_token_ttl: 3600,
            leeway: warden_jose::MAX_LEEWAY,
        }
    }
}

/// The derived state of a key at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, signs from the given time.
    Pending {
        /// Activation time.
        from: u64,
    },
    /// Signs now.
    Active,
    /// Published, no longer signs, retirable from `until`.
    Overlap {
        /// When the last token it signed is past expiry.
        until: u64,
    },
    /// No valid token can carry it; awaiting the sweep.
    Expired,
    /// Withdrawn.
    Retired {
        /// When.
        at: u64,
    },
}

impl KeyState {
    /// Whether the key belongs in the published JWKS.
    pub fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Pending { .. } | KeyState::Active | KeyState::Overlap { .. }
        )
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Pending { .. } => "pending",
            KeyState::Active => "active",
            KeyState::Overlap { .. } => "overlap",
            KeyState::Expired => "expired",
            KeyState::Retired { .. } => "retired",
        }
    }
}

/// The set of key records and the rotation policy, with the rules.
#[derive(Debug, Clone)]
pub struct Keyring {
    records: Vec<KeyRecord>,
    policy: RotationPolicy,
}

impl Keyring {
    /// Orders records by activation, then generation.
    pub fn new(mut records: Vec<KeyRecord>, policy: RotationPolicy) -> Self {
        records.sort_by(|a, b| (a.activates_at, a.generation, &a.kid).cmp(&(b.activates_at, b.generation, &b.kid)));
        Keyring { records, policy }
    }

    /// The records, oldest activation first.
    pub fn records(&self) -> &[KeyRecord] {
        &self.records
    }

    /// The policy.
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    /// Keys that have ever signed by `now`: activated, and not withdrawn
    /// before activating. Once a key has signed it supersedes its
    /// predecessors for good, even if it is retired later, so that retiring
    /// a key can never bring an older, expired key back.
    fn ever_signed(&self, now: u64) -> impl Iterator<Item = (usize, &KeyRecord)> {
        self.records
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.activates_at <= now && r.retired_at.is_none_or(|at| at > r.activates_at))
    }

    /// The state of the record at `index` at `now`.
    fn state_at(&self, index: usize, now: u64) -> Option<KeyState> {
        let record = self.records.get(index)?;
        if let Some(at) = record.retired_at {
            return Some(KeyState::Retired { at });
        }
        if record.activates_at > now {
            return Some(KeyState::Pending {
                from: record.activates_at,
            });
        }
        let successor = self.ever_signed(now).find(|(i, _)| *i > index);
        Some(match successor {
            None => KeyState::Active,
            Some((_, next)) => {
                let until = next
                    .activates_at
                    .saturating_add(self.policy.max_token_ttl)
                    .saturating_add(self.policy.leeway);
                if now < until {
                    KeyState::Overlap { until }
                } else {
                    KeyState::Expired
                }
            }
        })
    }

    /// Every record with its state at `now`.
    pub fn states(&self, now: u64) -> Vec<(&KeyRecord, KeyState)> {
        (0..self.records.len())
            .filter_map(|i| Some((self.records.get(i)?, self.state_at(i, now)?)))
            .collect()
    }

    /// The state of `kid` at `now`.
    pub fn state(&self, kid: &str, now: u64) -> Result<KeyState, KeyError> {
        let index = self.index(kid)?;
        self.state_at(index, now)
            .ok_or_else(|| KeyError::UnknownKid(kid.to_owned()))
    }

    fn index(&self, kid: &str) -> Result<usize, KeyError> {
        self.records
            .iter()
            .position(|r| r.kid == kid)
            .ok_or_else(|| KeyError::UnknownKid(kid.to_owned()))
    }

    /// The key that signs at `now`.
    pub fn signing(&self, now: u64) -> Result<&KeyRecord, KeyError> {
        self.states(now)
            .into_iter()
            .find(|(_, s)| *s == KeyState::Active)
            .map(|(r, _)| r)
            .ok_or(KeyError::NoSigningKey)
    }

    /// The keys to publish in the JWKS at `now`.
    pub fn published(&self, now: u64) -> Vec<&KeyRecord> {
        self.states(now)
            .into_iter()
            .filter(|(_, s)| s.is_published())
            .map(|(r, _)| r)
            .collect()
    }

    /// Schedules a key made now: it signs at once when nothing signs (first
    /// key) or when `immediately` is asked for, else after the publication
    /// lead. Refuses while another key is still pending.
    pub fn schedule_new_key(&self, now: u64, immediately: bool) -> Result<KeySchedule, KeyError> {
        if let Some((r, KeyState::Pending { from })) = self
            .states(now)
            .into_iter()
            .find(|(_, s)| matches!(s, KeyState::Pending { .. }))
        {
            return Err(KeyError::AlreadyPending {
                kid: r.kid.clone(),
                from,
            });
        }
        let activates_at = if immediately || self.signing(now).is_err() {
            now
        } else {
            now.saturating_add(self.policy.publish_lead)
        };
        let generation = self
            .records
            .iter()
            .map(|r| r.generation)
            .max()
            .map_or(1, |g| g.saturating_add(1));
        Ok(KeySchedule {
            generation,
            created_at: now,
            activates_at,
        })
    }

    /// Checks that `kid` may be retired at `now`. The active key never may;
    /// a key in overlap only with `force` (its tokens stop verifying).
    pub fn check_retire(&self, kid: &str, now: u64, force: bool) -> Result<(), KeyError> {
        match self.state(kid, now)? {
            KeyState::Active => Err(KeyError::ActiveKey(kid.to_owned())),
            KeyState::Retired { .. } => Err(KeyError::AlreadyRetired(kid.to_owned())),
            KeyState::Overlap { until } if !force => Err(KeyError::InOverlap {
                kid: kid.to_owned(),
                until,
            }),
            _ => Ok(()),
        }
    }

    /// Keys whose tokens have all expired and which should be retired.
    pub fn sweep(&self, now: u64) -> Vec<String> {
        self.states(now)
            .into_iter()
            .filter(|(_, s)| *s == KeyState::Expired)
            .map(|(r, _)| r.kid.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kid: &str, activates_at: u64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            generation: activates_at,
            alg: Algorithm::EdDSA,
            created_at: activates_at.saturating_sub(1),
            activates_at,
            retired_at: None,
            public_jwk: String::new(),
            sealed_private: Vec::new(),
        }
    }

    fn policy() -> RotationPolicy {
        RotationPolicy {
            publish_lead: 100,
            max_token_ttl: 1000,
            leeway: 60,
        }
    }

    #[test]
    fn rotation_overlaps_then_expires() {
        let ring = Keyring::new(vec![record("new", 2000), record("old", 1000)], policy());
        assert_eq!(ring.state("old", 1500).unwrap(), KeyState::Active);
        assert_eq!(ring.state("new", 1500).unwrap(), KeyState::Pending { from: 2000 });
        assert_eq!(ring.published(1500).len(), 2);
        assert_eq!(ring.signing(1999).unwrap().kid, "old");
        assert_eq!(ring.signing(2000).unwrap().kid, "new");
        assert_eq!(ring.state("old", 2000).unwrap(), KeyState::Overlap { until: 3060 });
        assert_eq!(ring.state("old", 3059).unwrap(), KeyState::Overlap { until: 3060 });
        assert_eq!(ring.state("old", 3060).unwrap(), KeyState::Expired);
        assert_eq!(ring.published(3060).len(), 1);
        assert_eq!(ring.sweep(3060), vec!["old".to_string()]);
    }

    #[test]
    fn retirement_rules() {
        let ring = Keyring::new(vec![record("old", 1000), record("new", 2000)], policy());
        assert!(ring.check_retire("new", 2500, true).is_err(), "active key");
        assert!(ring.check_retire("old", 2500, false).is_err(), "overlap without force");
        assert!(ring.check_retire("old", 2500, true).is_ok());
        assert!(ring.check_retire("old", 3100, false).is_ok());
        assert!(
            ring.check_retire("new", 1500, false).is_ok(),
            "pending may be cancelled"
        );
        assert!(matches!(
            ring.check_retire("nope", 1, false),
            Err(KeyError::UnknownKid(_))
        ));
    }

    #[test]
    fn first_key_activates_at_once_and_pending_blocks_rotation() {
        let empty = Keyring::new(vec![], policy());
        assert_eq!(
            empty.schedule_new_key(500, false).unwrap(),
            KeySchedule {
                generation: 1,
                created_at: 500,
                activates_at: 500
            }
        );
        assert!(matches!(empty.signing(500), Err(KeyError::NoSigningKey)));
        let ring = Keyring::new(vec![record("a", 100)], policy());
        assert_eq!(ring.schedule_new_key(500, false).unwrap().activates_at, 600);
        assert_eq!(ring.schedule_new_key(500, true).unwrap().activates_at, 500);
        assert_eq!(ring.schedule_new_key(500, true).unwrap().generation, 101);
        let pending = Keyring::new(vec![record("a", 100), record("b", 600)], policy());
        assert!(matches!(
            pending.schedule_new_key(500, false),
            Err(KeyError::AlreadyPending { .. })
        ));
    }

    #[test]
    fn same_second_rotation_is_ordered_by_generation() {
        let mut old = record("zzz-old", 1000);
        old.generation = 1;
        let mut new = record("aaa-new", 1000);
        new.generation = 2;
        let ring = Keyring::new(vec![new, old], policy());
        assert_eq!(ring.signing(1000).unwrap().kid, "aaa-new");
        assert_eq!(ring.state("zzz-old", 1000).unwrap(), KeyState::Overlap { until: 2060 });
    }

    #[test]
    fn retiring_a_key_never_revives_its_predecessor() {
        // A signed until B activated; B is force-retired (compromise): A must
        // not sign again, nothing signs until a new rotation.
        let mut b = record("b", 2000);
        b.retired_at = Some(2100);
        let ring = Keyring::new(vec![record("a", 1000), b.clone()], policy());
        assert!(matches!(ring.signing(2500), Err(KeyError::NoSigningKey)));
        assert_eq!(ring.state("a", 2500).unwrap(), KeyState::Overlap { until: 3060 });
        // A expired, B replaced it, C replaced B; retiring B keeps A expired.
        let mut c = record("c", 5000);
        c.generation = 5000;
        let ring = Keyring::new(vec![record("a", 1000), b, c], policy());
        assert_eq!(ring.state("a", 6000).unwrap(), KeyState::Expired);
        assert!(!ring.published(6000).iter().any(|r| r.kid == "a"));
        assert_eq!(ring.signing(6000).unwrap().kid, "c");
    }

    #[test]
    fn a_pending_key_withdrawn_before_activation_supersedes_nothing() {
        let mut b = record("b", 2000);
        b.retired_at = Some(1500);
        let ring = Keyring::new(vec![record("a", 1000), b], policy());
        assert_eq!(ring.signing(2500).unwrap().kid, "a");
    }

    #[test]
    fn generated_records_open_only_under_their_master_key() {
        let master = MasterKey::generate().unwrap();
        for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384] {
            let rec = KeyRecord::generate(
                &master,
                alg,
                KeySchedule {
                    generation: 1,
                    created_at: 10,
                    activates_at: 10,
                },
            )
            .unwrap();
            let key = rec.open(&master).unwrap();
            assert_eq!(key.kid(), rec.kid);
            assert_eq!(rec.verifying_key().unwrap().alg(), alg);
            let other = MasterKey::generate().unwrap();
            assert!(matches!(rec.open(&other), Err(KeyError::WrongMasterKey { .. })));
            let mut moved = rec.clone();
            moved.kid = "another".into();
            assert!(matches!(moved.open(&master), Err(KeyError::Tampered(_))));
            assert!(!format!("{rec:?}").contains("sealed_private: ["));
        }
    }
}
