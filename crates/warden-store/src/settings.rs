//! Named settings shared by every replica: small text values in the
//! `settings` table (`migrations/*/0001_signing_keys.sql`), such as the
//! master key fingerprint and the sealed audit-log key.
//!
//! Leases (`leases`, `migrations/*/0005_leases.sql`) let one replica at a
//! time do a named job.
//!
//! A setting is written once and never changed: replicas racing to create
//! one each call [`SettingsStore::insert_setting_if_absent`], then
//! [`SettingsStore::get_setting`], and all end up with the first value
//! written.
//!
//! Here: the trait, its SQL table [`SettingsSql`] and its one body over
//! every backend. What a setting means belongs to its user (the master key
//! binding to `keys`, the audit key to `audit_signer`).

use std::future::Future;

use sqlx::{ColumnIndex, Executor};

use crate::error::StoreError;
use crate::sql::{Dialect, Param, SqlStore, Value};
use crate::to_i64;

/// Persistence of write-once named settings. Implemented by each backend.
pub trait SettingsStore: Send + Sync {
    /// The value of setting `name`, if it was ever written.
    fn get_setting(&self, name: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Writes `value` under `name` unless the setting exists; true when
    /// this call wrote it. An existing value is kept.
    fn insert_setting_if_absent(
        &self,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes or renews the lease `name` for `holder` until `now + ttl`:
    /// true when `holder` holds it now (it was free, lapsed, or already
    /// its own), false while another holder's lease runs. One replica at a
    /// time does the job the lease names.
    fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: u64,
        ttl: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A backend's SQL for [`SettingsStore`]. Parameters are positional, in
/// the order each field's comment gives.
pub(crate) struct SettingsSql {
    /// (name) → (value,).
    pub get: &'static str,
    /// (name, value); does nothing when the setting exists.
    pub insert_if_absent: &'static str,
    /// (name, holder, now, until): takes the lease when it is free, lapsed
    /// (`until < now`) or already `holder`'s, and changes nothing otherwise.
    pub lease: &'static str,
}

impl<DB> SettingsStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    i64: Param<DB>,
    String: Value<DB>,
    for<'a> &'a str: Param<DB>,
{
    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        // From the writer: a value inserted just before is seen.
        let row: Option<(String,)> = sqlx::query_as(DB::SETTINGS.get)
            .bind(name)
            .fetch_optional(self.writer())
            .await?;
        Ok(row.map(|(value,)| value))
    }

    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::SETTINGS.insert_if_absent)
            .bind(name)
            .bind(value)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn try_lease(&self, name: &str, holder: &str, now: u64, ttl: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::SETTINGS.lease)
            .bind(name)
            .bind(holder)
            .bind(to_i64(now)?)
            .bind(to_i64(now.saturating_add(ttl))?)
            .execute(self.writer())
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }
}
