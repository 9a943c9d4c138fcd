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

use std::future::Future;

use crate::error::StoreError;

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

/// Implements [`SettingsStore`] for a backend from its SQL.
macro_rules! impl_settings_store {
    ($store:ty, get = $get:expr, insert_if_absent = $insert:expr, lease = $lease:expr $(,)?) => {
        impl $crate::settings::SettingsStore for $store {
            async fn get_setting(&self, name: &str) -> Result<Option<String>, $crate::StoreError> {
                // From the writer: a value inserted just before is seen.
                let row: Option<(String,)> = sqlx::query_as($get)
                    .bind(name)
                    .fetch_optional(self.writer())
                    .await?;
                Ok(row.map(|(value,)| value))
            }

            async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query($insert)
                    .bind(name)
                    .bind(value)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn try_lease(
                &self,
                name: &str,
                holder: &str,
                now: u64,
                ttl: u64,
            ) -> Result<bool, $crate::StoreError> {
                let done = sqlx::query($lease)
                    .bind(name)
                    .bind(holder)
                    .bind($crate::to_i64(now)?)
                    .bind($crate::to_i64(now.saturating_add(ttl))?)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_settings_store;
