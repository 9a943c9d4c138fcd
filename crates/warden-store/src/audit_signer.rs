//! The audit log's signing key and checkpoint signing.
//!
//! One Ed25519 key per log, named by the log's origin (C2SP checkpoints
//! are signed under the origin as key name). Its private half is sealed
//! under the master key by [`warden_keys::envelope`], bound as associated
//! data to its purpose and its name, and kept in the `settings` table as
//! [`AUDIT_KEY_SETTING`]:
//!
//! ```json
//! {"version":1,"vkey":"<name>+<key ID>+<base64(0x01 || public key)>","sealed":"<hex of the envelope>"}
//! ```
//!
//! The key is created once (replicas racing to create it insert if absent
//! and re-read, so all end with the first) and never changes: a log whose
//! key changed could not be checked against the verifier key auditors
//! hold. Nothing here logs or prints key material; the `Debug` output of
//! [`AuditSigner`] shows the name and key ID only.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};
use warden_audit::note::check_key_name;
use warden_audit::{Checkpoint, NoteSigner, NoteVerifier, verify_consistency};
use warden_keys::{KeyError, MasterKey, envelope};

use crate::audit::{AuditStore, StoredCheckpoint};
use crate::error::StoreError;
use crate::{SettingsStore, Store};

/// Name of the setting that holds the sealed audit-log key.
pub const AUDIT_KEY_SETTING: &str = "audit_log_key";

/// Version of the stored form.
const FORMAT_VERSION: u32 = 1;

/// The associated data binding a sealed log key to its purpose and name:
/// the envelope of a signing key (bound to `kid|alg`) cannot be passed
/// off as this one, nor this one moved to another log name.
fn seal_context(name: &str) -> Vec<u8> {
    let mut context = b"warden audit-log|Ed25519|".to_vec();
    context.extend_from_slice(name.as_bytes());
    context
}

/// The stored form of the log key.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    version: u32,
    /// The verifier key: name, key ID and public key, in clear.
    vkey: String,
    /// Hex of the envelope of the Ed25519 PKCS#8 document.
    sealed: String,
}

/// The audit log's signing key: signs checkpoints under the log's origin.
#[derive(Debug)]
pub struct AuditSigner {
    signer: NoteSigner,
    verifier: NoteVerifier,
    origin: String,
}

impl AuditSigner {
    /// Opens the log key stored in `store`, or, with `create`, makes it
    /// when there is none.
    ///
    /// `master` must be the store's master key (it is bound to the store on
    /// first use, as [`KeyManager::open`](crate::KeyManager::open) does).
    /// Refuses with [`StoreError::AuditOriginMismatch`] when the stored key
    /// names another origin than `origin`, and with
    /// [`StoreError::NoAuditKey`] when there is no key and `create` is
    /// false.
    pub async fn load_or_create<S: Store>(
        store: &S,
        master: &MasterKey,
        origin: &str,
        create: bool,
    ) -> Result<AuditSigner, StoreError> {
        if check_key_name(origin).is_err() {
            return Err(StoreError::InvalidAuditOrigin(origin.chars().take(128).collect()));
        }
        let actual = master.fingerprint();
        let expected = store.bind_master_key(&actual).await?;
        if expected != actual {
            return Err(StoreError::MasterKeyMismatch { expected, actual });
        }
        let stored = match store.get_setting(AUDIT_KEY_SETTING).await? {
            Some(stored) => stored,
            None if create => {
                store
                    .insert_setting_if_absent(AUDIT_KEY_SETTING, &generate(master, origin)?)
                    .await?;
                // Another replica may have won the race: use what is stored.
                store
                    .get_setting(AUDIT_KEY_SETTING)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("the audit log key vanished after it was stored".into()))?
            }
            None => return Err(StoreError::NoAuditKey),
        };
        open(&stored, master, origin)
    }

    /// The origin (key name) of the log key stored in `store`, if there is
    /// one, read without the master key. It is not authenticated: use it to
    /// pick or show an origin, never to trust a signature.
    pub async fn stored_origin<S: SettingsStore>(store: &S) -> Result<Option<String>, StoreError> {
        let Some(stored) = store.get_setting(AUDIT_KEY_SETTING).await? else {
            return Ok(None);
        };
        let stored: StoredKey = serde_json::from_str(&stored)
            .map_err(|_| StoreError::Corrupt("the stored audit log key does not parse".into()))?;
        let verifier = NoteVerifier::from_vkey(&stored.vkey)
            .map_err(|_| StoreError::Corrupt("the stored audit log key has a malformed verifier key".into()))?;
        Ok(Some(verifier.name().to_owned()))
    }

    /// The log's origin, which is also the key name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier for this key's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        self.verifier.clone()
    }

    /// The verifier key, `<name>+<hex key ID>+<base64(0x01 || public key)>`.
    pub fn vkey(&self) -> String {
        self.verifier.vkey()
    }

    /// The signed checkpoint note of the tree of `size` leaves with `root`.
    pub fn sign(&self, size: u64, root: warden_audit::Hash) -> Result<String, StoreError> {
        Ok(Checkpoint::new(self.origin.clone(), size, root).sign(&self.signer)?)
    }
}

/// A fresh key for `name`, sealed and serialised for the settings table.
fn generate(master: &MasterKey, name: &str) -> Result<String, StoreError> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| KeyError::Crypto("audit log key generation"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Crypto("audit log key generation"))?;
    let vkey = NoteSigner::new(name, pair)?.verifier()?.vkey();
    let sealed = envelope::seal(master, &seal_context(name), pkcs8.as_ref())?;
    let stored = StoredKey {
        version: FORMAT_VERSION,
        vkey,
        sealed: hex::encode(&sealed),
    };
    serde_json::to_string(&stored).map_err(|e| StoreError::Corrupt(format!("audit log key: {e}")))
}

/// Opens the stored key for `origin`.
fn open(stored: &str, master: &MasterKey, origin: &str) -> Result<AuditSigner, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("the stored audit log key {what}"));
    let stored: StoredKey = serde_json::from_str(stored).map_err(|_| corrupt("does not parse"))?;
    if stored.version != FORMAT_VERSION {
        return Err(corrupt("has an unknown format version"));
    }
    let verifier = NoteVerifier::from_vkey(&stored.vkey).map_err(|_| corrupt("has a malformed verifier key"))?;
    if verifier.name() != origin {
        return Err(StoreError::AuditOriginMismatch {
            stored: verifier.name().to_owned(),
            configured: origin.to_owned(),
        });
    }
    let sealed = hex::decode(&stored.sealed).map_err(|_| corrupt("is not hex"))?;
    let pkcs8 = envelope::open(master, &seal_context(origin), &sealed, "audit-log")?;
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| corrupt("is not an Ed25519 key"))?;
    let signer = NoteSigner::new(origin, pair)?;
    if signer.verifier()?.vkey() != stored.vkey {
        return Err(corrupt("does not match its public key"));
    }
    Ok(AuditSigner {
        signer,
        verifier,
        origin: origin.to_owned(),
    })
}

/// Signs and stores a checkpoint of the log as it is now, if it grew since
/// the latest stored checkpoint; returns it, or `None` when there is
/// nothing new (or another replica stored a checkpoint of this size
/// first: both sign the same tree).
///
/// Before signing, the tree is checked to extend the latest checkpoint (an
/// RFC 9162 consistency proof from the store, verified against that
/// checkpoint's signed root), so a log whose stored state was rewritten is
/// never signed over: the error names both sizes.
pub async fn sign_checkpoint<S: AuditStore>(
    store: &S,
    signer: &AuditSigner,
    now: u64,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let head = store.tree_head().await?;
    let latest = store.latest_checkpoint().await?;
    let latest_size = latest.as_ref().map_or(0, |cp| cp.size);
    if head.size <= latest_size {
        return Ok(None);
    }
    if let Some(latest) = latest.filter(|cp| cp.size > 0) {
        let refuse = |reason: String| StoreError::CheckpointRefused {
            size: head.size,
            reason,
        };
        let old = Checkpoint::open(&latest.note, &signer.verifier).map_err(|e| {
            refuse(format!(
                "the latest checkpoint (size {}) does not verify: {e}",
                latest.size
            ))
        })?;
        if old.origin != signer.origin || old.size != latest.size {
            return Err(refuse(format!(
                "the latest checkpoint (size {}) is not this log's",
                latest.size
            )));
        }
        let proof = store.consistency_proof(old.size, head.size).await?;
        verify_consistency(old.size, head.size, &old.root, &head.root, &proof).map_err(|_| {
            refuse(format!(
                "the log is not consistent with the latest checkpoint (size {})",
                old.size
            ))
        })?;
    }
    let note = signer.sign(head.size, head.root)?;
    if !store.put_checkpoint(head.size, now, &note).await? {
        return Ok(None);
    }
    Ok(Some(StoredCheckpoint {
        size: head.size,
        time: now,
        note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::{AuditStore, PreparedEvent};
    use warden_audit::{AuditEvent, EventKind};

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        (dir, SqliteStore::connect(&url).await.unwrap())
    }

    async fn append(store: &SqliteStore, n: u64) {
        let events: Vec<_> = (0..n)
            .map(|i| PreparedEvent::seal(&AuditEvent::new(i, EventKind::KeyRetired { kid: format!("k{i}") })).unwrap())
            .collect();
        store.append_batch(&events).await.unwrap();
    }

    #[tokio::test]
    async fn created_once_reopened_and_bound_to_its_origin() {
        let (_dir, store) = store().await;
        let master = MasterKey::generate().unwrap();
        assert!(matches!(
            AuditSigner::load_or_create(&store, &master, "example.org/audit", false).await,
            Err(StoreError::NoAuditKey)
        ));
        let a = AuditSigner::load_or_create(&store, &master, "example.org/audit", true)
            .await
            .unwrap();
        let b = AuditSigner::load_or_create(&store, &master, "example.org/audit", true)
            .await
            .unwrap();
        assert_eq!(a.vkey(), b.vkey(), "created once");
        assert_eq!(
            AuditSigner::stored_origin(&store).await.unwrap().as_deref(),
            Some("example.org/audit")
        );
        assert!(a.vkey().starts_with("example.org/audit+"));
        assert!(!format!("{a:?}").contains(&a.vkey()[20..]), "Debug shows no key");
        let err = AuditSigner::load_or_create(&store, &master, "other.org/audit", true)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AuditOriginMismatch { .. }), "{err}");
        assert!(err.to_string().contains("example.org/audit"), "{err}");
        assert!(matches!(
            AuditSigner::load_or_create(&store, &master, "bad origin", true).await,
            Err(StoreError::InvalidAuditOrigin(_))
        ));
        let other = MasterKey::generate().unwrap();
        assert!(matches!(
            AuditSigner::load_or_create(&store, &other, "example.org/audit", true).await,
            Err(StoreError::MasterKeyMismatch { .. })
        ));
        // The private key is never stored in clear.
        let stored = store.get_setting(AUDIT_KEY_SETTING).await.unwrap().unwrap();
        assert!(stored.contains("\"sealed\""));
    }

    #[test]
    fn a_renamed_key_does_not_open() {
        let master = MasterKey::generate().unwrap();
        let stored = generate(&master, "a.example/audit").unwrap();
        assert!(open(&stored, &master, "a.example/audit").is_ok());
        // Rewriting the name in the clear part does not move the key to
        // another log: the envelope is bound to the name.
        let pair =
            Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap().as_ref()).unwrap();
        let mut parsed: StoredKey = serde_json::from_str(&stored).unwrap();
        parsed.vkey = NoteSigner::new("b.example/audit", pair)
            .unwrap()
            .verifier()
            .unwrap()
            .vkey();
        let moved = serde_json::to_string(&parsed).unwrap();
        assert!(matches!(
            open(&moved, &master, "b.example/audit"),
            Err(StoreError::Key(KeyError::Tampered(_)))
        ));
        assert!(matches!(
            open("{}", &master, "a.example/audit"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn signs_only_when_the_log_grew() {
        let (_dir, store) = store().await;
        let master = MasterKey::generate().unwrap();
        let signer = AuditSigner::load_or_create(&store, &master, "example.org/audit", true)
            .await
            .unwrap();
        assert_eq!(sign_checkpoint(&store, &signer, 100).await.unwrap(), None, "empty log");
        append(&store, 3).await;
        let first = sign_checkpoint(&store, &signer, 101).await.unwrap().unwrap();
        assert_eq!((first.size, first.time), (3, 101));
        let cp = Checkpoint::open(&first.note, &signer.verifier()).unwrap();
        assert_eq!(cp.root, store.tree_head().await.unwrap().root);
        assert_eq!(cp.origin, "example.org/audit");
        assert_eq!(
            sign_checkpoint(&store, &signer, 102).await.unwrap(),
            None,
            "nothing new"
        );
        append(&store, 2).await;
        let second = sign_checkpoint(&store, &signer, 103).await.unwrap().unwrap();
        assert_eq!(second.size, 5);
        assert_eq!(store.latest_checkpoint().await.unwrap().unwrap(), second);
    }

    #[tokio::test]
    async fn refuses_to_sign_over_a_checkpoint_it_cannot_extend() {
        let (_dir, store) = store().await;
        let master = MasterKey::generate().unwrap();
        let signer = AuditSigner::load_or_create(&store, &master, "example.org/audit", true)
            .await
            .unwrap();
        append(&store, 2).await;
        // A checkpoint of size 2 over another root, validly signed.
        let forged = signer.sign(2, [7; 32]).unwrap();
        assert!(store.put_checkpoint(2, 1, &forged).await.unwrap());
        append(&store, 1).await;
        let err = sign_checkpoint(&store, &signer, 2).await.unwrap_err();
        assert!(matches!(err, StoreError::CheckpointRefused { size: 3, .. }), "{err}");
        assert!(err.to_string().contains("size 2"), "{err}");
    }
}
