//! Replicas: several `warden serve` processes on one PostgreSQL and one
//! Redis act as one server. What one replica (or the CLI) changes, the
//! others apply within milliseconds through the Redis fan-out
//! (`fanout.rs`), and within seconds anyway through reconciliation from
//! the store (`reconcile.rs`); periodic work that must run once for all,
//! such as signing audit checkpoints, is held by a lease (`lease.rs`).
//!
//! # What it must not touch
//! What the changes mean: applying one is a call into the room that owns
//! it (the core's revocations and keys, the access layer's policies and
//! registry attributes, the token service's client cache).

pub mod fanout;
pub mod lease;
pub mod reconcile;

pub use self::fanout::{Fanout, NoticeKey, announce, channel};
pub use self::lease::Lease;
pub use self::reconcile::Replica;
