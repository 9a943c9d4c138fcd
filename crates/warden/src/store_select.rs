//! Picks the storage backend once, from the database URL, and runs a task
//! generic over [`Store`] on it.

use anyhow::Context as _;
use warden_store::postgres::PgStore;
use warden_store::sqlite::{self, SqliteStore};
use warden_store::{Backend, DataDir, Store, StoreError, redact_url};

use warden_server::options::StorageOptions;

/// Work that needs a store, written once for every backend.
pub trait StoreTask {
    /// What the task returns.
    type Output;
    /// Runs the task.
    fn run<S: Store>(self, store: S) -> impl Future<Output = anyhow::Result<Self::Output>>;
}

/// Opens the configured backend and runs `task` on it. With `create`, the
/// embedded backend's data dir (0700) and database (0600) are created when
/// absent; without it they must exist, so that read-only commands never
/// leave files behind.
pub async fn with_store<T: StoreTask>(storage: &StorageOptions, create: bool, task: T) -> anyhow::Result<T::Output> {
    match Backend::from_url(&storage.database_url)? {
        Backend::Sqlite(url) => {
            if create {
                DataDir::open_or_create(&storage.data_dir)?;
            } else if let Some(path) = sqlite::database_path(&url)?
                && !path.exists()
            {
                return Err(StoreError::NoDatabase(path).into());
            }
            let store = SqliteStore::connect(&url)
                .await
                .with_context(|| format!("opening {}", redact_url(&url)))?;
            let out = task.run(store.clone()).await;
            store.close().await;
            out
        }
        Backend::Postgres(url) => {
            let store = match &storage.database_schema {
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
