//! A fresh database for one test, on either backend, cleaned up after.
//!
//! - [`Backend::Sqlite`]: a `warden.db` file in a temp dir of its own
//!   (removed with the dir).
//! - [`Backend::Postgres`]: a schema of its own, named by [`fresh_schema`],
//!   in the database at [`crate::services::pg_url`]. Whoever connects in it
//!   first creates it (`PgStore::connect_in_schema`, or `warden` with
//!   `WARDEN_DATABASE_SCHEMA`); [`PgSchema`] drops it, with everything in it,
//!   when the test ends: at once with [`TestDb::cleanup`] /
//!   [`PgSchema::drop_now`], or when it is dropped (also when the test
//!   panics).
//!
//! ```no_run
//! # async fn example() {
//! use warden_test_support::db::{Backend, TestDb};
//!
//! for backend in Backend::ALL {
//!     let db = TestDb::new(backend);
//!     println!("{} at {} (schema {:?})", backend.name(), db.url(), db.schema());
//!     db.cleanup().await;
//! }
//! # }
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use sqlx::Connection as _;

use crate::services;

/// How long dropping a schema may wait for a lock or a connection before
/// it gives up (and leaves the schema behind, with a note).
const DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// A storage backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL schema.
    Postgres,
}

impl Backend {
    /// Both backends, SQLite first.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// `sqlite` or `postgres`, for names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// `prefix` followed by 16 random hex digits: a name no other test uses
/// (a schema, a route, a Redis key prefix).
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator");
    bytes.iter().fold(prefix.to_owned(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A PostgreSQL schema name no other test uses: `t_` and 16 hex digits.
pub fn fresh_schema() -> String {
    unique("t_")
}

/// A test's PostgreSQL schema: its name, and the duty to drop it.
#[derive(Debug)]
pub struct PgSchema {
    url: String,
    name: String,
    dropped: bool,
}

impl PgSchema {
    /// A fresh schema name in the database at
    /// [`services::pg_url`]; fails at once, with the URL, when PostgreSQL
    /// does not answer (it is never optional).
    pub fn fresh() -> PgSchema {
        let url = services::pg_url();
        if let Err(why) = services::postgres_answers(&url) {
            panic!("PostgreSQL at {url} is required for this test (WARDEN_TEST_POSTGRES_URL): {why}");
        }
        PgSchema::named(&url, &fresh_schema())
    }

    /// The schema `name` in the database at `url`, dropped like a fresh
    /// one (for a schema a test made some other way).
    pub fn named(url: &str, name: &str) -> PgSchema {
        PgSchema {
            url: url.to_owned(),
            name: name.to_owned(),
            dropped: false,
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the database that holds it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the schema and everything in it now; panics when that fails.
    pub async fn drop_now(mut self) {
        self.dropped = true;
        if let Err(e) = drop_schema(&self.url, &self.name).await {
            panic!("dropping the test schema {}: {e}", self.name);
        }
    }
}

impl Drop for PgSchema {
    /// Drops the schema on a thread of its own (with its own runtime, as
    /// this may run inside the test's), bounded by a lock and connection
    /// timeout; a failure is only noted, as the test is over.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, name) = (self.url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(drop_schema(&url, &name))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("note: the test schema {} was left behind: {e}", self.name),
            Err(_) => eprintln!(
                "note: the test schema {} was left behind (the drop panicked)",
                self.name
            ),
        }
    }
}

/// `DROP SCHEMA IF EXISTS name CASCADE` on a connection of its own,
/// waiting at most [`DROP_TIMEOUT`] to connect and for locks.
async fn drop_schema(url: &str, name: &str) -> Result<(), String> {
    let mut conn = tokio::time::timeout(DROP_TIMEOUT, sqlx::PgConnection::connect(url))
        .await
        .map_err(|_| format!("no connection to {url} within {DROP_TIMEOUT:?}"))?
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    let lock_timeout = format!("SET lock_timeout = '{}ms'", DROP_TIMEOUT.as_millis());
    sqlx::query(sqlx::AssertSqlSafe(lock_timeout))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())
}

/// A fresh database for one test.
#[derive(Debug)]
pub enum TestDb {
    /// `warden.db` in a temp dir of its own.
    Sqlite {
        /// `sqlite://<dir>/warden.db`.
        url: String,
        /// The temp dir, removed when dropped.
        dir: tempfile::TempDir,
    },
    /// A schema of its own.
    Postgres(PgSchema),
}

impl TestDb {
    /// A fresh database on `backend`.
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres(),
        }
    }

    /// An SQLite file in a fresh temp dir.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        TestDb::Sqlite { url, dir }
    }

    /// A fresh PostgreSQL schema: see [`PgSchema::fresh`].
    pub fn postgres() -> TestDb {
        TestDb::Postgres(PgSchema::fresh())
    }

    /// Its backend.
    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Sqlite { .. } => Backend::Sqlite,
            TestDb::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database URL: the SQLite file's, or the PostgreSQL server's
    /// (with [`TestDb::schema`]).
    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } => url,
            TestDb::Postgres(schema) => schema.url(),
        }
    }

    /// The PostgreSQL schema, `None` on SQLite.
    pub fn schema(&self) -> Option<&str> {
        match self {
            TestDb::Sqlite { .. } => None,
            TestDb::Postgres(schema) => Some(schema.name()),
        }
    }

    /// The SQLite file's dir, `None` on PostgreSQL.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            TestDb::Sqlite { dir, .. } => Some(dir.path()),
            TestDb::Postgres(_) => None,
        }
    }

    /// Runs `sql` on the database through a connection of its own, outside
    /// any store (to damage or repair what a test checks). Panics if it
    /// fails.
    pub async fn exec(&self, sql: &str) {
        match self.schema() {
            Some(schema) => {
                let mut conn = sqlx::PgConnection::connect(self.url()).await.expect("connecting");
                let path = format!("SET search_path TO \"{schema}\"");
                sqlx::query(sqlx::AssertSqlSafe(path))
                    .execute(&mut conn)
                    .await
                    .expect("search_path");
                sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
            }
            None => {
                let mut conn = sqlx::SqliteConnection::connect(self.url()).await.expect("connecting");
                sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = conn.close().await;
            }
        }
    }

    /// Removes the database now: drops the schema (panicking if that
    /// fails) or removes the temp dir. Close connections to it first.
    pub async fn cleanup(self) {
        match self {
            TestDb::Sqlite { dir, .. } => drop(dir),
            TestDb::Postgres(schema) => schema.drop_now().await,
        }
    }
}
