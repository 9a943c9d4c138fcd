//! The storage harness: a [`Store`] on a fresh [`TestDb`], for every
//! backend, so that one generic test body runs on each.
//!
//! A test is an `async fn name<H: Harness>()` that starts a harness, uses
//! its store, and finishes it; [`each_backend!`](crate::each_backend)
//! turns a list of such functions into `sqlite::name` and
//! `postgres::name` tests:
//!
//! ```no_run
//! use warden_store::KeyStore as _;
//! use warden_test_support::store::Harness;
//!
//! async fn starts_empty<H: Harness>() {
//!     let h = H::start().await;
//!     assert!(h.store().list_keys().await.unwrap().is_empty());
//!     h.finish().await;
//! }
//!
//! warden_test_support::each_backend! {
//!     #[tokio::test] starts_empty;
//! }
//! # fn main() {}
//! ```
//!
//! A PostgreSQL that does not answer fails the test; it is never skipped.

use std::future::Future;

use warden_store::Store;
use warden_store::postgres::PgStore;
use warden_store::sqlite::SqliteStore;

use crate::db::{Backend, TestDb};

/// A backend under test: a store on a fresh database, and what keeps the
/// database alive.
pub trait Harness: Sized + Send + Sync {
    /// The store type.
    type S: Store + Send + Sync;
    /// The backend.
    const BACKEND: Backend;

    /// A store on a fresh database.
    fn start() -> impl Future<Output = Self> + Send;

    /// The store.
    fn store(&self) -> &Self::S;

    /// The database it is on.
    fn db(&self) -> &TestDb;

    /// Another, independent store on the same database: a second replica,
    /// or a second process on the same SQLite file.
    fn another(&self) -> impl Future<Output = Self::S> + Send;

    /// Closes the store and opens the database again.
    fn reopen(&mut self) -> impl Future<Output = ()> + Send;

    /// Closes `store`'s connections.
    fn close_store(store: &Self::S) -> impl Future<Output = ()> + Send;

    /// The store and the database, for a caller that keeps them (the
    /// database is removed when dropped, or by [`TestDb::cleanup`]).
    fn into_parts(self) -> (Self::S, TestDb);

    /// Closes the store and removes the database.
    fn finish(self) -> impl Future<Output = ()> + Send {
        async move {
            let (store, db) = self.into_parts();
            Self::close_store(&store).await;
            db.cleanup().await;
        }
    }
}

/// A store type the harness can open on a [`TestDb`]: SQLite's and
/// PostgreSQL's.
pub trait TestStore: Store + Send + Sync {
    /// Its backend.
    const BACKEND: Backend;

    /// Opens a store on `db` (creating its tables); panics, naming the
    /// database, when that fails.
    fn open(db: &TestDb) -> impl Future<Output = Self> + Send;

    /// Closes its connections.
    fn close_connections(&self) -> impl Future<Output = ()> + Send;
}

impl TestStore for SqliteStore {
    const BACKEND: Backend = Backend::Sqlite;

    async fn open(db: &TestDb) -> Self {
        SqliteStore::connect(db.url())
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", db.url()))
    }

    async fn close_connections(&self) {
        self.close().await;
    }
}

impl TestStore for PgStore {
    const BACKEND: Backend = Backend::Postgres;

    async fn open(db: &TestDb) -> Self {
        let (url, schema) = (db.url(), db.schema().unwrap_or("public"));
        PgStore::connect_in_schema(url, schema)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required for this test (schema {schema}): {e}"))
    }

    async fn close_connections(&self) {
        self.close().await;
    }
}

/// A store of type `S` on a fresh database of its backend.
#[derive(Debug)]
pub struct StoreHarness<S> {
    store: S,
    db: TestDb,
}

/// SQLite: `warden.db` in a temp dir.
pub type SqliteHarness = StoreHarness<SqliteStore>;

/// PostgreSQL: a fresh schema at `WARDEN_TEST_POSTGRES_URL`.
pub type PgHarness = StoreHarness<PgStore>;

impl<S: TestStore> Harness for StoreHarness<S> {
    type S = S;
    const BACKEND: Backend = S::BACKEND;

    async fn start() -> Self {
        let db = TestDb::new(S::BACKEND);
        let store = S::open(&db).await;
        StoreHarness { store, db }
    }

    fn store(&self) -> &S {
        &self.store
    }

    fn db(&self) -> &TestDb {
        &self.db
    }

    async fn another(&self) -> S {
        S::open(&self.db).await
    }

    async fn reopen(&mut self) {
        self.store.close_connections().await;
        self.store = S::open(&self.db).await;
    }

    async fn close_store(store: &S) {
        store.close_connections().await;
    }

    fn into_parts(self) -> (S, TestDb) {
        (self.store, self.db)
    }
}

/// Runs generic test functions (`async fn name<H: Harness>()`) on every
/// backend: `sqlite::name` with [`SqliteHarness`] and `postgres::name`
/// with [`PgHarness`] (see the [module](crate::store) for an example).
/// Each group, ended by `;`, names the test attribute its functions run
/// under, e.g. `#[tokio::test] a, b; #[tokio::test(flavor =
/// "multi_thread", worker_threads = 4)] c;`.
///
/// With `with RUNNER;` first, the functions are bodies that `RUNNER`
/// runs: `RUNNER::<H, _, _>(name)`, for a runner such as `async fn
/// two_replicas<H: Harness, F, Fut>(body: F)` that starts the harness and
/// hands the body what it needs.
///
/// With `by_backend;` first, the functions are plain ones taking the
/// [`Backend`] (`fn name(backend: Backend)`), as the tests of the real
/// binary are ([`crate::binary::Warden::new`] takes it): `sqlite::name`
/// calls `name(Backend::Sqlite)`, `postgres::name` `name(Backend::Postgres)`.
#[macro_export]
macro_rules! each_backend {
    (by_backend; $(#[$attr:meta] $($test:ident),+ $(,)? ;)+) => {
        mod sqlite {
            $($(
                #[$attr]
                fn $test() {
                    super::$test($crate::db::Backend::Sqlite)
                }
            )+)+
        }
        mod postgres {
            $($(
                #[$attr]
                fn $test() {
                    super::$test($crate::db::Backend::Postgres)
                }
            )+)+
        }
    };
    (with $runner:ident; $(#[$attr:meta] $($test:ident),+ $(,)? ;)+) => {
        mod sqlite {
            $($crate::each_backend!(@tests $crate::store::SqliteHarness; #[$attr] $($test),+; $runner);)+
        }
        mod postgres {
            $($crate::each_backend!(@tests $crate::store::PgHarness; #[$attr] $($test),+; $runner);)+
        }
    };
    ($(#[$attr:meta] $($test:ident),+ $(,)? ;)+) => {
        mod sqlite {
            $($crate::each_backend!(@tests $crate::store::SqliteHarness; #[$attr] $($test),+);)+
        }
        mod postgres {
            $($crate::each_backend!(@tests $crate::store::PgHarness; #[$attr] $($test),+);)+
        }
    };
    (@tests $harness:ty; #[$attr:meta] $($test:ident),+) => {
        $(
            #[$attr]
            async fn $test() {
                super::$test::<$harness>().await
            }
        )+
    };
    (@tests $harness:ty; #[$attr:meta] $($test:ident),+; $runner:ident) => {
        $(
            #[$attr]
            async fn $test() {
                super::$runner::<$harness, _, _>(super::$test).await
            }
        )+
    };
}
