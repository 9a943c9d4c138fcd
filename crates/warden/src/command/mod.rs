//! One module per subcommand group; each exposes `run`.

pub mod approvals;
pub mod audit;
pub mod client;
pub mod config;
pub mod credentials;
pub mod dataset;
pub mod keys;
pub mod lineage;
pub mod login;
pub mod model;
pub mod policy;
pub mod registry_client;
pub mod serve;
pub mod session;
pub mod token;
pub mod ui;

use std::time::{SystemTime, UNIX_EPOCH};

use warden_keys::MasterKey;
use warden_server::ServerOptions;
use warden_server::notice::Notice;
use warden_server::redis::Redis;
use warden_server::replicas::{NoticeKey, announce};
use warden_store::{DataDir, KeyManager, MASTER_KEY_FILE, MasterKeySource, Store, StoreError};
use zeroize::Zeroizing;

/// What every command gets: the resolved configuration and the master key
/// text from the environment, if any.
pub struct Context {
    /// The resolved configuration.
    pub options: ServerOptions,
    /// `WARDEN_MASTER_KEY`, if set (wiped on drop).
    pub master_key_env: Option<Zeroizing<String>>,
}

impl Context {
    /// Loads the master key; only `create` may make the key file.
    pub fn master_key(&self, create: bool) -> anyhow::Result<MasterKey> {
        let dir = DataDir::open_or_create(&self.options.storage.data_dir)?;
        let (key, source) = dir.master_key(self.master_key_env.as_ref().map(|k| k.as_str()), create)?;
        if let MasterKeySource::Created(path) = source {
            eprintln!(
                "created master key {} (mode 0600): back it up; without it no key can be opened",
                path.display()
            );
        }
        Ok(key)
    }

    /// The master key of `store`. The key file is made only when
    /// `may_create` and the store was never bound to a key: a store that
    /// was needs its own key back, and a new file would only stand in the
    /// way of restoring it.
    pub async fn store_master_key<S: Store>(&self, store: &S, may_create: bool) -> anyhow::Result<MasterKey> {
        let fresh = store.master_key_fingerprint().await?.is_none();
        match self.master_key(may_create && fresh) {
            Err(e) if !fresh && matches!(e.downcast_ref(), Some(StoreError::NoMasterKey(_))) => {
                let path = self.options.storage.data_dir.join(MASTER_KEY_FILE);
                Err(StoreError::MasterKeyLost(path).into())
            }
            other => other,
        }
    }

    /// A key manager over `store`, bound to the master key.
    pub async fn key_manager<S: Store>(&self, store: S, create: bool) -> anyhow::Result<KeyManager<S>> {
        let master = self.store_master_key(&store, create).await?;
        Ok(KeyManager::open(store, master, self.options.rotation).await?)
    }

    /// Tells running replicas (over `redis_url`, when configured) what
    /// this command changed, so they apply it at once instead of at their
    /// next periodic reload. Best effort: a failure is a warning.
    pub async fn announce(&self, notice: Notice) {
        let Some(url) = self.options.redis_url.as_deref() else {
            return;
        };
        let key = match self.master_key(false) {
            Ok(master) => NoticeKey::from_master(&master),
            Err(_) => return,
        };
        let announced = match Redis::open(url) {
            Ok(redis) => announce(&redis, &self.options.issuer, &key, notice).await,
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = announced {
            eprintln!("warning: could not tell the running replicas ({e}); they pick the change up within seconds");
        }
    }

    /// The public keys published now.
    pub async fn published_keys<S: Store>(&self, store: &S) -> anyhow::Result<Vec<warden_jose::VerifyingKey>> {
        Ok(warden_store::published_keys(store, self.options.rotation, now()).await?)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub use warden_server::time::rfc3339;

/// Who runs this command, for the audit log: `user@host` from the
/// environment and the kernel's host name (`unknown` where either is
/// missing).
pub fn operator() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let clean = |s: String| -> String { s.chars().filter(|c| !c.is_control()).take(64).collect() };
    format!("{}@{}", clean(user), clean(host))
}
