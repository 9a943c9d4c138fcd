//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writes go through a pool of exactly one connection, so SQLite never
//! sees two writers and never answers `SQLITE_BUSY` to a write; reads use a
//! separate pool and run beside the writer, as WAL allows. `synchronous =
//! FULL` makes every commit durable before it returns, because Warden
//! acknowledges actions only after recording them.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::error::StoreError;
use crate::{Store, create_private_file, impl_key_store};

/// SQLite-backed store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating with mode 0600 when absent) the database at `url`
    /// (`sqlite://PATH`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let file = options.get_filename();
        if file != Path::new(":memory:") {
            create_private_file(file)?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { writer, reader })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

impl_key_store!(
    SqliteStore,
    insert = "INSERT INTO signing_keys (kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private) \
              VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    list = "SELECT kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private \
            FROM signing_keys ORDER BY activates_at, generation",
    retire = "UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL",
    bind_insert =
        "INSERT INTO settings (name, value) VALUES ('master_key_fingerprint', ?) ON CONFLICT (name) DO NOTHING",
    bind_select = "SELECT value FROM settings WHERE name = 'master_key_fingerprint'",
);

/// The file an `sqlite:` URL names (`None` for in-memory databases).
pub fn database_path(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?;
    let file = options.get_filename();
    Ok((file != Path::new(":memory:")).then(|| file.to_path_buf()))
}
