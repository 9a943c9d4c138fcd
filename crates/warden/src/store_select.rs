//! Picks the storage backend once, from the database URL, and runs a task
//! generic over [`Store`] on it.

use anyhow::Context as _;
use warden_store::postgres::PgStore;
use warden_store::sqlite::SqliteStore;
use warden_store::{Backend, DataDir, Store, redact_url};

use crate::config::Settings;

/// Work that needs a store, written once for every backend.
pub trait StoreTask {
    /// What the task returns.
    type Output;
    /// Runs the task.
    fn run<S: Store>(self, store: S) -> impl Future<Output = anyhow::Result<Self::Output>>;
}

/// Opens the configured backend and runs `task` on it. For the embedded
/// backend the data dir is created (0700) when `create` is set, and must
/// exist otherwise.
pub async fn with_store<T: StoreTask>(settings: &Settings, create: bool, task: T) -> anyhow::Result<T::Output> {
    match Backend::from_url(&settings.database_url)? {
        Backend::Sqlite(url) => {
            if !create && !settings.data_dir.exists() {
                anyhow::bail!(
                    "data dir {} does not exist: create a key first with `warden keys rotate`",
                    settings.data_dir.display()
                );
            }
            DataDir::open_or_create(&settings.data_dir)?;
            let store = SqliteStore::connect(&url)
                .await
                .with_context(|| format!("opening {}", redact_url(&url)))?;
            let out = task.run(store.clone()).await;
            store.close().await;
            out
        }
        Backend::Postgres(url) => {
            let store = match &settings.database_schema {
                Some(schema) => PgStore::connect_in_schema(&url, schema).await,
                None => PgStore::connect(&url).await,
            }
            .with_context(|| format!("connecting to {}", redact_url(&url)))?;
            let out = task.run(store.clone()).await;
            store.close().await;
            out
        }
    }
}
