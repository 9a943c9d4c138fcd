//! Warden's audit log core: a tamper-evident, append-only log of events
//! whose bodies can be erased without breaking it.
//!
//! # What it owns
//! - [`merkle`]: RFC 9162 §2.1 hashing, roots, inclusion and consistency
//!   proofs (generation and verification).
//! - [`Frontier`]: the right edge of a growing log (O(log n) append and
//!   root), persisted as bytes; [`CompactRange`] for any range.
//! - [`NodeSource`]: the trait through which proofs read perfect-subtree
//!   hashes; the store implements it, [`MemoryTree`] is the in-memory model.
//! - [`leaf`]: an event's leaf, `SHA-256(0x00 || SHA-256(salt || body))`.
//! - [`jcs`]: RFC 8785 canonical JSON for event bodies.
//! - [`AuditEvent`], [`EventKind`] and [`EventType`]: the typed events and
//!   the audit vocabulary (each type's name and indexed identifiers).
//! - [`note`] and [`Checkpoint`]: C2SP signed notes (Ed25519) and tlog
//!   checkpoints.
//! - [`verify_log`]: offline verification of a whole export.
//!
//! # What it must not touch
//! No I/O, no clock, no async: events carry the `time` they are given,
//! records and checkpoints come in as values. Storing leaves, subtree
//! hashes and the frontier, group commit, and serving proofs belong to
//! `warden-store` and `warden-server`. The only side effect is the crypto
//! backend's random generator (salts).
//!
//! # What never goes in an event
//! Tokens, secrets, passwords and key material, even hashed: events hold
//! identifiers (`sub`, `client_id`, `jti`, `kid`, scope, audience) only.
//!
//! # Example
//! ```
//! use aws_lc_rs::signature::Ed25519KeyPair;
//! use warden_audit::{AuditEvent, Checkpoint, EventKind, Frontier, NoteSigner, Record, verify_log};
//!
//! // Append two events.
//! let mut frontier = Frontier::new();
//! let mut export = Vec::new();
//! for (i, kid) in ["k1", "k2"].into_iter().enumerate() {
//!     let event = AuditEvent::new(1_800_000_000, EventKind::KeyCreated { kid: kid.into(), alg: "EdDSA".into() });
//!     let (body, salt, leaf_hash) = event.seal()?.into_parts();
//!     frontier.push(leaf_hash)?;
//!     export.push(Record { index: i as u64, leaf_hash, content: Some((body, salt)) });
//! }
//!
//! // Sign a checkpoint of the log so far.
//! let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
//! let signer = NoteSigner::new("warden.example/audit", Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())?;
//! let note = Checkpoint::new("warden.example/audit", frontier.size(), frontier.root()).sign(&signer)?;
//!
//! // Erase the first body, then verify the export offline.
//! export[0].content = None;
//! let report = verify_log(export, &[note], &signer.verifier()?, "warden.example/audit")?;
//! assert_eq!((report.leaves, report.erased, report.checkpoints), (2, 1, 1));
//! # Ok::<(), warden_audit::AuditError>(())
//! ```
#![deny(missing_docs)]

mod checkpoint;
mod error;
mod event;
mod frontier;
pub mod jcs;
pub mod leaf;
pub mod merkle;
mod node_source;
pub mod note;
mod verify;

pub use checkpoint::Checkpoint;
pub use error::{AuditError, CheckpointProblem, EntryProblem};
pub use event::{AuditEvent, Decision, EventKind, EventType, Indexed};
pub use frontier::{CompactRange, Frontier};
pub use leaf::{EventLeaf, Salt};
pub use merkle::{
    Hash, consistency_proof, empty_root, inclusion_proof, root, root_at, verify_consistency, verify_inclusion,
};
pub use node_source::{MemoryTree, NodeSource, Subtree, consistency_nodes, inclusion_nodes};
pub use note::{NoteSigner, NoteVerifier};
pub use verify::{Record, VerifyReport, verify_log};
