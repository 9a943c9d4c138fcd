//! Signing-key lifecycle for Warden: keys sealed at rest under a master
//! key, and rotation with overlap.
//!
//! # What it owns
//! - [`MasterKey`]: the 256-bit key-encryption key.
//! - [`envelope`]: AES-256-GCM envelope sealing of private keys.
//! - [`KeyRecord`], [`Keyring`], [`KeyState`], [`RotationPolicy`]: which key
//!   signs, which are published, which may be retired, all derived from
//!   timestamps.
//!
//! # What it must not touch
//! No files, database or clock: records come in and out as values, `now`
//! is a parameter. The store and the CLI persist records and read the
//! master key file.
//!
//! # Secrets
//! Private key bytes exist in clear only inside [`envelope::open`]'s
//! zeroized buffer and the backend's key objects. No `Debug` output, error
//! or record shows them.
#![deny(missing_docs)]

pub mod envelope;
mod error;
mod keyring;
mod master_key;

pub use error::KeyError;
pub use keyring::{KeyRecord, KeySchedule, KeyState, Keyring, RotationPolicy};
pub use master_key::MasterKey;
