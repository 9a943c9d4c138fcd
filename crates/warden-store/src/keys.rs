//! Storage of signing keys (`signing_keys`,
//! `migrations/*/0001_signing_keys.sql`) and of the master key binding
//! (the `master_key_fingerprint` setting): [`KeyStore`], its SQL table
//! [`KeySql`], and its one body over every backend.
//!
//! Only records move here; the rotation rules are `warden-keys`'s and
//! their use over a store is [`KeyManager`](crate::KeyManager)'s. Private
//! keys arrive and leave sealed.

use std::future::Future;

use sqlx::{ColumnIndex, Executor};
use warden_jose::Algorithm;
use warden_keys::KeyRecord;

use crate::error::StoreError;
use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::to_i64;

/// Persistence of signing keys and the master key binding.
pub trait KeyStore: Send + Sync {
    /// Stores a new key record.
    fn insert_key(&self, record: &KeyRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every key record, retired ones included.
    fn list_keys(&self) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;
    /// Marks a key retired at `at`; false when no unretired key has that kid.
    fn retire_key(&self, kid: &str, at: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records `fingerprint` as this database's master key on first use and
    /// returns the recorded one.
    fn bind_master_key(&self, fingerprint: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// The master key fingerprint this database recorded, if any: `None`
    /// only for a store no key was ever bound to.
    fn master_key_fingerprint(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// A backend's SQL for [`KeyStore`]. Parameters are positional, in the
/// order each field's comment gives.
pub(crate) struct KeySql {
    /// (kid, generation, alg, created_at, activates_at, retired_at,
    /// public_jwk, sealed_private).
    pub insert: &'static str,
    /// () → [`KeyRow`]s in activation order.
    pub list: &'static str,
    /// (retired_at, kid); only an unretired key.
    pub retire: &'static str,
    /// (fingerprint); does nothing when one is recorded.
    pub bind_master: &'static str,
    /// () → (fingerprint,) as recorded.
    pub master: &'static str,
}

/// A row of `signing_keys`.
type KeyRow = (String, i64, String, i64, i64, Option<i64>, String, Vec<u8>);

fn key_from_row(row: KeyRow) -> Result<KeyRecord, StoreError> {
    let (kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private) = row;
    let time = |v: i64| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative time for key `{kid}`")));
    Ok(KeyRecord {
        generation: time(generation)?,
        alg: Algorithm::parse(&alg).map_err(|_| StoreError::Corrupt(format!("unknown alg for key `{kid}`")))?,
        created_at: time(created_at)?,
        activates_at: time(activates_at)?,
        retired_at: retired_at.map(time).transpose()?,
        public_jwk,
        sealed_private,
        kid,
    })
}

impl<DB> KeyStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Value<DB>,
    String: Value<DB>,
    Vec<u8>: Value<DB>,
    for<'a> &'a str: Param<DB>,
    Option<i64>: Param<DB>,
{
    async fn insert_key(&self, r: &KeyRecord) -> Result<(), StoreError> {
        sqlx::query(DB::KEYS.insert)
            .bind(&r.kid)
            .bind(to_i64(r.generation)?)
            .bind(r.alg.as_str())
            .bind(to_i64(r.created_at)?)
            .bind(to_i64(r.activates_at)?)
            .bind(r.retired_at.map(to_i64).transpose()?)
            .bind(&r.public_jwk)
            .bind(&r.sealed_private)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query_as::<_, KeyRow>(DB::KEYS.list)
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(key_from_row)
            .collect()
    }

    async fn retire_key(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::KEYS.retire)
            .bind(to_i64(at)?)
            .bind(kid)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn bind_master_key(&self, fingerprint: &str) -> Result<String, StoreError> {
        sqlx::query(DB::KEYS.bind_master)
            .bind(fingerprint)
            .execute(self.writer())
            .await?;
        let (value,): (String,) = sqlx::query_as(DB::KEYS.master).fetch_one(self.writer()).await?;
        Ok(value)
    }

    async fn master_key_fingerprint(&self) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(DB::KEYS.master).fetch_optional(self.reader()).await?;
        Ok(row.map(|(value,)| value))
    }
}
