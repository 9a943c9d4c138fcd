//! One module per subcommand group; each exposes `run`.

pub mod audit;
pub mod client;
pub mod config;
pub mod dataset;
pub mod keys;
pub mod lineage;
pub mod model;
pub mod policy;
pub mod registry_client;
pub mod serve;
pub mod token;
pub mod ui;

use std::time::{SystemTime, UNIX_EPOCH};

use warden_keys::{MasterKey, RotationPolicy};
use warden_store::{DataDir, KeyManager, MasterKeySource, Store};

use zeroize::Zeroizing;

use crate::config::{Settings, TOKEN_TTL_CAP};

/// What every command gets: validated settings and the master key text
/// from the environment, if any.
pub struct Context {
    /// Validated settings.
    pub settings: Settings,
    /// `WARDEN_MASTER_KEY`, if set (wiped on drop).
    pub master_key_env: Option<Zeroizing<String>>,
}

impl Context {
    /// The rotation policy. Retirement waits for the hard lifetime cap, not
    /// the configured `tokens.max_ttl`, so that lowering the setting can
    /// never withdraw a key while tokens it signed under the old setting
    /// are still valid.
    pub fn rotation_policy(&self) -> RotationPolicy {
        RotationPolicy {
            publish_lead: self.settings.publish_lead,
            max_token_ttl: TOKEN_TTL_CAP,
            leeway: warden_jose::MAX_LEEWAY,
        }
    }

    /// Loads the master key; only `create` may make the key file.
    pub fn master_key(&self, create: bool) -> anyhow::Result<MasterKey> {
        let dir = DataDir::open_or_create(&self.settings.data_dir)?;
        let (key, source) = dir.master_key(self.master_key_env.as_ref().map(|k| k.as_str()), create)?;
        if let MasterKeySource::Created(path) = source {
            eprintln!(
                "created master key {} (mode 0600): back it up; without it no key can be opened",
                path.display()
            );
        }
        Ok(key)
    }

    /// A key manager over `store`, bound to the master key.
    pub async fn key_manager<S: Store>(&self, store: S, create: bool) -> anyhow::Result<KeyManager<S>> {
        Ok(KeyManager::open(store, self.master_key(create)?, self.rotation_policy()).await?)
    }

    /// Tells running replicas (over `redis_url`, when configured) what
    /// this command changed, so they apply it at once instead of at their
    /// next periodic reload. Best effort: a failure is a warning.
    pub async fn announce(&self, notice: warden_server::fanout::Notice) {
        let Some(url) = self.settings.redis_url.as_deref() else {
            return;
        };
        let key = match self.master_key(false) {
            Ok(master) => warden_server::fanout::NoticeKey::from_master(&master),
            Err(_) => return,
        };
        if let Err(e) = warden_server::fanout::announce(url, &self.settings.issuer, &key, notice).await {
            eprintln!("warning: could not tell the running replicas ({e}); they pick the change up within seconds");
        }
    }

    /// The public keys published now.
    pub async fn published_keys<S: Store>(&self, store: &S) -> anyhow::Result<Vec<warden_jose::VerifyingKey>> {
        Ok(warden_store::published_keys(store, self.rotation_policy(), now()).await?)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An RFC 3339 rendering of a Unix time, for people.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm), for the proleptic Gregorian calendar.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_values() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
