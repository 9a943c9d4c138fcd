//! Test support for Warden's suites: one copy of what the tests need
//! around the code under test, the way rustls keeps `rustls-test` and
//! ripgrep keeps `tests/util.rs`. A dev-dependency only (`publish =
//! false`); nothing in a product crate depends on it.
//!
//! - [`db`]: a fresh database for one test, on either [`db::Backend`]: an
//!   SQLite file in a temp dir, or a PostgreSQL schema of its own, cleaned
//!   up afterwards.
//! - [`store`]: the storage [`store::Harness`] over both backends, and
//!   [`each_backend!`], which runs a generic test once per backend.
//! - [`binary`]: the real `warden` binary run as a user would: a temp data
//!   dir, config and environment ([`binary::Warden`]), CLI commands
//!   against them, and `warden serve` on a free loopback port
//!   ([`binary::Server`]), waited for, its output kept, killed on drop.
//! - [`net`]: free loopback ports and a bare HTTP status probe.
//! - [`http`]: requests a test makes of a running Warden (a
//!   `client_credentials` token).
//! - [`services`]: where PostgreSQL and Redis are, probes for them, and
//!   the one rule for `WARDEN_TEST_REQUIRE_*`.
//!
//! # Using it
//! Add it to a crate's `[dev-dependencies]` (`warden-test-support.workspace
//! = true`) and use it from `tests/*.rs`:
//!
//! ```no_run
//! use warden_test_support::binary::Warden;
//! use warden_test_support::db::Backend;
//!
//! // In crates/warden/tests: `env!("CARGO_BIN_EXE_warden")`.
//! let mut w = Warden::new("path/to/warden", Backend::Postgres);
//! let secret = w.create_client(&["--name", "app", "--kind", "service", "--scope", "x"]);
//! let server = w.start(&["serve"]);
//! println!("{} serves {}; the app's secret is {secret}", server.name(), server.base());
//! ```
//!
//! # The environment
//! - `WARDEN_TEST_POSTGRES_URL`: the PostgreSQL the tests use (default
//!   `postgres://postgres@127.0.0.1:5432/test`); each test gets a schema of
//!   its own there. PostgreSQL is never optional: when it does not answer,
//!   a test that needs it fails.
//! - `WARDEN_TEST_REDIS_URL`: the Redis the tests use (default
//!   `redis://127.0.0.1:6379`).
//! - `WARDEN_TEST_REQUIRE_REDIS`, `WARDEN_TEST_REQUIRE_INTEROP`,
//!   `WARDEN_TEST_REQUIRE_BROWSER`: whether an optional service or tool
//!   must be there. One rule for all three (see [`services::required`]):
//!   set to anything but `0` (and not empty), the service is required and
//!   its absence fails the test; otherwise a test that cannot run skips,
//!   printing why. `scripts/test` sets all three to `1`.
#![allow(clippy::panic, clippy::expect_used)]

pub mod binary;
pub mod db;
pub mod http;
pub mod net;
pub mod services;
pub mod store;
