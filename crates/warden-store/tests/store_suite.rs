//! One storage suite, run against every backend: SQLite in a temp dir and
//! PostgreSQL in a fresh schema per test (`WARDEN_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`). A PostgreSQL that
//! cannot be reached fails the suite; it is never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use warden_jose::{Algorithm, SigningKey};
use warden_keys::{KeyRecord, KeySchedule, KeyState, MasterKey, RotationPolicy};
use warden_store::{KeyManager, KeyStore, StoreError};
use warden_test_support::db::TestDb;
use warden_test_support::store::{Harness, SqliteHarness};

const POLICY: RotationPolicy = RotationPolicy {
    publish_lead: 100,
    max_token_ttl: 1000,
    leeway: 60,
};

/// Every byte a backend persisted, for the secrecy check: the SQLite
/// dir's files, or the signing-key rows of the PostgreSQL schema.
trait PersistedBytes {
    async fn persisted_bytes(&self) -> Vec<u8>;
}

impl<H: Harness> PersistedBytes for H {
    async fn persisted_bytes(&self) -> Vec<u8> {
        match self.db() {
            TestDb::Sqlite { dir, .. } => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(dir.path()).unwrap() {
                    all.extend(std::fs::read(entry.unwrap().path()).unwrap());
                }
                all
            }
            TestDb::Postgres(schema) => {
                let pool = sqlx::PgPool::connect(schema.url()).await.unwrap();
                let q = format!(
                    "SELECT kid, public_jwk, sealed_private FROM \"{}\".signing_keys",
                    schema.name()
                );
                let rows: Vec<(String, String, Vec<u8>)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows.into_iter()
                    .flat_map(|(k, j, s)| [k.into_bytes(), j.into_bytes(), s].concat())
                    .collect()
            }
        }
    }
}

async fn keys_round_trip<H: Harness>() {
    let h = H::start().await;
    let master = MasterKey::generate().unwrap();
    let rec = KeyRecord::generate(
        &master,
        Algorithm::ES256,
        KeySchedule {
            generation: 1,
            created_at: 10,
            activates_at: 10,
        },
    )
    .unwrap();
    h.store().insert_key(&rec).await.unwrap();
    let listed = h.store().list_keys().await.unwrap();
    assert_eq!(listed, vec![rec.clone()]);
    assert!(h.store().retire_key(&rec.kid, 20).await.unwrap());
    assert!(!h.store().retire_key(&rec.kid, 30).await.unwrap(), "retiring twice");
    assert!(!h.store().retire_key("nope", 30).await.unwrap());
    assert_eq!(h.store().list_keys().await.unwrap()[0].retired_at, Some(20));
    // A duplicate kid, or a second key of the same generation (two
    // concurrent rotations), is refused by the database.
    assert!(h.store().insert_key(&rec).await.is_err());
    let twin = KeyRecord::generate(
        &master,
        Algorithm::ES256,
        KeySchedule {
            generation: 1,
            created_at: 11,
            activates_at: 11,
        },
    )
    .unwrap();
    assert!(h.store().insert_key(&twin).await.is_err());
    h.finish().await;
}

async fn master_key_binding<H: Harness>() {
    let h = H::start().await;
    let master = MasterKey::generate().unwrap();
    KeyManager::open(h.store().clone(), master.clone(), POLICY)
        .await
        .unwrap();
    KeyManager::open(h.store().clone(), master, POLICY).await.unwrap();
    let other = MasterKey::generate().unwrap();
    let err = KeyManager::open(h.store().clone(), other, POLICY).await.unwrap_err();
    assert!(matches!(err, StoreError::MasterKeyMismatch { .. }), "{err}");
    h.finish().await;
}

async fn rotation_lifecycle<H: Harness>() {
    let h = H::start().await;
    let keys = KeyManager::open(h.store().clone(), MasterKey::generate().unwrap(), POLICY)
        .await
        .unwrap();
    assert!(keys.signing_key(1000).await.is_err(), "no key yet");
    let first = keys.rotate(Algorithm::EdDSA, 1000, false).await.unwrap();
    assert_eq!(first.activates_at, 1000, "first key signs at once");
    assert_eq!(keys.signing_key(1000).await.unwrap().kid(), first.kid);

    let second = keys.rotate(Algorithm::ES256, 2000, false).await.unwrap();
    assert_eq!(second.activates_at, 2100, "published before it signs");
    assert!(
        keys.rotate(Algorithm::ES256, 2001, false).await.is_err(),
        "one pending key at a time"
    );
    let jwks = keys.jwks(2050).await.unwrap();
    assert_eq!(jwks.keys().len(), 2);
    assert_eq!(keys.signing_key(2050).await.unwrap().kid(), first.kid);
    assert_eq!(keys.signing_key(2100).await.unwrap().kid(), second.kid);

    assert!(keys.retire(&second.kid, 2200, true).await.is_err(), "active key");
    assert!(
        keys.retire(&first.kid, 2200, false).await.is_err(),
        "overlap needs force"
    );
    assert_eq!(keys.sweep(2200).await.unwrap(), Vec::<String>::new());
    assert_eq!(keys.sweep(2100 + 1000 + 60).await.unwrap(), vec![first.kid.clone()]);
    let states = keys.list(4000).await.unwrap();
    assert_eq!(states.len(), 2);
    assert!(matches!(states[0].1, KeyState::Retired { at: 3160 }));
    assert_eq!(states[1].1, KeyState::Active);
    assert_eq!(keys.jwks(4000).await.unwrap().keys().len(), 1);
    h.finish().await;
}

async fn private_keys_never_stored_in_clear<H: Harness>() {
    let h = H::start().await;
    let master = MasterKey::generate().unwrap();
    let (key, pkcs8) = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let rec = KeyRecord::seal(
        &master,
        &key,
        &pkcs8,
        KeySchedule {
            generation: 1,
            created_at: 1,
            activates_at: 1,
        },
    )
    .unwrap();
    h.store().insert_key(&rec).await.unwrap();
    let bytes = h.persisted_bytes().await;
    // Ed25519 PKCS#8: a 16-byte prefix, then the 32-byte seed.
    let seed = &pkcs8[16..48];
    assert!(!bytes.windows(seed.len()).any(|w| w == seed), "seed found in clear");
    assert!(!bytes.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()));
    assert!(
        !bytes
            .windows(master.to_base64().len())
            .any(|w| w == master.to_base64().as_bytes())
    );
    h.finish().await;
}

async fn migrations_are_idempotent<H: Harness>() {
    let h = H::start().await;
    // Re-running migrations through a second KeyManager on the same store is a no-op.
    let m = MasterKey::generate().unwrap();
    let k = KeyManager::open(h.store().clone(), m.clone(), POLICY).await.unwrap();
    k.rotate(Algorithm::ES384, 5, false).await.unwrap();
    let again = KeyManager::open(h.store().clone(), m, POLICY).await.unwrap();
    assert_eq!(again.list(5).await.unwrap().len(), 1);
    h.finish().await;
}

async fn leases_have_one_holder_at_a_time<H: Harness>() {
    use warden_store::SettingsStore as _;
    let h = H::start().await;
    let s = h.store();
    assert!(s.try_lease("job", "a", 100, 10).await.unwrap(), "free");
    assert!(!s.try_lease("job", "b", 105, 10).await.unwrap(), "a holds it until 110");
    assert!(s.try_lease("job", "a", 108, 10).await.unwrap(), "a renews until 118");
    assert!(!s.try_lease("job", "b", 115, 10).await.unwrap(), "still a's");
    assert!(s.try_lease("job", "b", 119, 10).await.unwrap(), "lapsed: b takes over");
    assert!(!s.try_lease("job", "a", 120, 10).await.unwrap(), "now b's");
    assert!(s.try_lease("other", "a", 120, 10).await.unwrap(), "leases are per name");
    h.finish().await;
}

warden_test_support::each_backend! {
    #[tokio::test]
    keys_round_trip,
    master_key_binding,
    rotation_lifecycle,
    private_keys_never_stored_in_clear,
    migrations_are_idempotent,
    leases_have_one_holder_at_a_time;
}

#[tokio::test]
async fn sqlite_file_is_private() {
    use std::os::unix::fs::MetadataExt as _;
    let h = SqliteHarness::start().await;
    let mode = std::fs::metadata(h.db().dir().unwrap().join("warden.db"))
        .unwrap()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    h.finish().await;
}
