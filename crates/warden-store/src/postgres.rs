//! The replica backend: PostgreSQL, shared by any number of stateless
//! `warden serve` processes.

use std::str::FromStr as _;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::StoreError;
use crate::{Store, impl_key_store};

/// PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects to `url` with every table in `schema` (created when
    /// absent): isolated tests, or several deployments in one database.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Corrupt(format!(
                "schema name `{schema}` must be [A-Za-z0-9_]+"
            )));
        }
        let options = PgConnectOptions::from_str(url)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        // INVARIANT: `schema` was checked to be [A-Za-z0-9_]+ above.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
            .execute(&admin)
            .await?;
        admin.close().await;
        Self::connect_with(options.options([("search_path", schema)])).await
    }

    async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
}

impl_key_store!(
    PgStore,
    insert = "INSERT INTO signing_keys (kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    list = "SELECT kid, generation, alg, created_at, activates_at, retired_at, public_jwk, sealed_private \
            FROM signing_keys ORDER BY activates_at, generation",
    retire = "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
    bind_insert =
        "INSERT INTO settings (name, value) VALUES ('master_key_fingerprint', $1) ON CONFLICT (name) DO NOTHING",
    bind_select = "SELECT value FROM settings WHERE name = 'master_key_fingerprint'",
);
