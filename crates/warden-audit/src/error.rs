//! The one error type of `warden-audit`.
//!
//! Messages name the rule that failed and, for a log export, the first entry
//! or checkpoint that broke it. They never contain event bodies, salts or key
//! material: at most a key name, an index or a size.

use std::fmt;

/// Errors from hashing, proofs, notes, checkpoints, events and log
/// verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A leaf index at or past the end of the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size it was asked in.
        size: u64,
    },
    /// A consistency proof asked from a larger tree to a smaller one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder {
        /// The claimed old size.
        old: u64,
        /// The claimed new size.
        new: u64,
    },
    /// An inclusion proof that does not lead to the given root.
    #[error("inclusion proof does not verify: {0}")]
    InclusionProof(&'static str),
    /// A consistency proof that does not join the two given roots.
    #[error("consistency proof does not verify: {0}")]
    ConsistencyProof(&'static str),
    /// A [`NodeSource`](crate::NodeSource) without a subtree a proof needs.
    #[error("no subtree hash at level {level}, index {index}")]
    MissingNode {
        /// Height of the subtree (0 for a leaf).
        level: u32,
        /// Position of the subtree among those of its height.
        index: u64,
    },
    /// Serialised frontier bytes that do not decode.
    #[error("malformed frontier: {0}")]
    MalformedFrontier(&'static str),
    /// A tree larger than this crate handles (2^63 leaves).
    #[error("tree size {0} is too large")]
    TreeTooLarge(u64),
    /// An event body that cannot be put in RFC 8785 canonical form.
    #[error("event cannot be canonicalised: {0}")]
    Canonicalization(String),
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
    /// A key name that is empty or contains a space or `+`.
    #[error("key name `{0}` is empty or contains a space or `+`")]
    InvalidKeyName(String),
    /// A verifier key string that does not parse.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A signed note that does not follow the C2SP format.
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    /// A signature line that names the trusted key but does not verify.
    #[error("signature by key `{key}` does not verify")]
    InvalidSignature {
        /// The key name and hex key ID, `name+1234abcd`.
        key: String,
    },
    /// A note with no signature at all by the trusted key.
    #[error("note has no signature by key `{key}`")]
    NotSignedByKey {
        /// The key name and hex key ID, `name+1234abcd`.
        key: String,
    },
    /// A note text that is not a C2SP tlog checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// One record of a log export is wrong.
    #[error("log entry {index}: {problem}")]
    Entry {
        /// The first index found to be wrong.
        index: u64,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// A checkpoint of a log export failed its signature or format check.
    #[error("checkpoint #{position} rejected: {source}")]
    CheckpointRejected {
        /// Position of the checkpoint in the list given (from 0).
        position: usize,
        /// Why it was rejected.
        source: Box<AuditError>,
    },
    /// A validly signed checkpoint disagrees with the log.
    #[error("checkpoint #{position} (size {size}): {problem}")]
    Checkpoint {
        /// Position of the checkpoint in the list given (from 0).
        position: usize,
        /// The tree size it signs.
        size: u64,
        /// What disagrees.
        problem: CheckpointProblem,
    },
}

/// What is wrong with one record of a log export.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryProblem {
    /// The stored body and salt do not hash to the stored leaf hash: the
    /// body, the salt or the leaf hash was changed.
    Tampered,
    /// Records must carry indices 0, 1, 2, … in order; this position holds
    /// another index (a deleted, inserted or reordered row).
    UnexpectedIndex {
        /// The index the record at this position carries.
        found: u64,
    },
    /// The export ends here, but a signed checkpoint covers this index
    /// (rows were cut from the tail).
    Missing {
        /// Size of the checkpoint that covers it.
        checkpoint_size: u64,
    },
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryProblem::Tampered => f.write_str("body and salt do not hash to the stored leaf hash"),
            EntryProblem::UnexpectedIndex { found } => {
                write!(
                    f,
                    "expected this index next, found index {found} (row deleted, inserted or moved)"
                )
            }
            EntryProblem::Missing { checkpoint_size } => {
                write!(
                    f,
                    "missing from the export, but a checkpoint of size {checkpoint_size} covers it"
                )
            }
        }
    }
}

/// How a validly signed checkpoint disagrees with the log it is checked
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// The checkpoint names another log.
    WrongOrigin {
        /// The origin line of the checkpoint.
        found: String,
    },
    /// Checkpoints must be given in order of size.
    OutOfOrder {
        /// Size of the checkpoint before it.
        previous: u64,
    },
    /// The rebuilt tree has another root at this size: some entry in
    /// `[verified_up_to, size)` differs from what was signed.
    RootMismatch {
        /// Size of the last checkpoint that matched (0 if none).
        verified_up_to: u64,
    },
    /// No valid consistency proof joins it to the previous checkpoint.
    Inconsistent {
        /// Size of the previous checkpoint.
        previous: u64,
    },
}

impl fmt::Display for CheckpointProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointProblem::WrongOrigin { found } => write!(f, "signs another log, `{found}`"),
            CheckpointProblem::OutOfOrder { previous } => {
                write!(f, "is smaller than the checkpoint before it (size {previous})")
            }
            CheckpointProblem::RootMismatch { verified_up_to } => write!(
                f,
                "root differs from the rebuilt tree: an entry at or after index {verified_up_to} was changed"
            ),
            CheckpointProblem::Inconsistent { previous } => {
                write!(f, "is not consistent with the checkpoint of size {previous}")
            }
        }
    }
}
