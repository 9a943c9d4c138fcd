//! Offline verification of a whole log export: [`verify_log`].

use crate::checkpoint::Checkpoint;
use crate::error::{AuditError, CheckpointProblem, EntryProblem};
use crate::frontier::{CompactRange, Frontier, SpanSource};
use crate::leaf::{Salt, event_leaf_hash};
use crate::merkle::{self, Hash};
use crate::note::NoteVerifier;

/// One row of a log export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<B = Vec<u8>> {
    /// The row's log index.
    pub index: u64,
    /// The stored leaf hash.
    pub leaf_hash: Hash,
    /// Body and salt, or `None` once erased.
    pub content: Option<(B, Salt)>,
}

/// What [`verify_log`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of leaves in the export.
    pub leaves: u64,
    /// How many of them had their body erased (checked by leaf hash only).
    pub erased: u64,
    /// Number of checkpoints verified.
    pub checkpoints: usize,
    /// Root of the whole export.
    pub root: Hash,
}

/// Verifies a log export: records in index order and signed checkpoints in
/// order of size.
///
/// It streams the records once, in O(n) hashing and O(log n)
/// memory:
///
/// 1. Every checkpoint is opened with the trusted key, must name the
///    expected origin, and checkpoints must come in order of size.
/// 2. Records must carry indices 0, 1, 2, … with no gap or repeat.
/// 3. A record with its body and salt must hash to its stored leaf hash
///    (else it was tampered with); a record without them was erased and
///    counts as such, its stored leaf hash taken as is.
/// 4. Leaf hashes are appended to a [`Frontier`]; when it reaches a
///    checkpoint's size, its root must equal the checkpoint's.
/// 5. Each checkpoint must be consistent with the one before: the RFC 9162
///    consistency proof is built from the old checkpoint's frontier and the
///    compact range of the leaves added since, and checked with the same
///    verifier a monitor uses. Once step 4 holds both roots come from the
///    same leaves, so this can only fail on a bug in the proof code; it runs
///    so that every export exercises the path a monitor depends on.
/// 6. A checkpoint larger than the export means rows were cut from the tail.
///
/// The first failure is returned, naming the index or checkpoint. The CLI
/// wraps the record iterator to drive a progress bar.
pub fn verify_log<I, B, C>(
    records: I,
    checkpoints: &[C],
    verifier: &NoteVerifier,
    origin: &str,
) -> Result<VerifyReport, AuditError>
where
    I: IntoIterator<Item = Record<B>>,
    B: AsRef<[u8]>,
    C: AsRef<str>,
{
    let opened = open_checkpoints(checkpoints, verifier, origin)?;
    let mut state = Replay {
        checkpoints: &opened,
        next: 0,
        previous: None,
    };
    let mut frontier = Frontier::new();
    let mut added = CompactRange::new(0);
    let mut erased = 0;
    state.check_due(&frontier, &mut added)?;
    for record in records {
        let index = frontier.size();
        if record.index != index {
            return Err(AuditError::Entry {
                index,
                problem: EntryProblem::UnexpectedIndex { found: record.index },
            });
        }
        match &record.content {
            Some((body, salt)) => {
                if event_leaf_hash(salt, body.as_ref()) != record.leaf_hash {
                    return Err(AuditError::Entry {
                        index,
                        problem: EntryProblem::Tampered,
                    });
                }
            }
            None => erased += 1,
        }
        frontier.push(record.leaf_hash)?;
        added.push(record.leaf_hash)?;
        state.check_due(&frontier, &mut added)?;
    }
    if let Some(cp) = opened.get(state.next) {
        return Err(AuditError::Entry {
            index: frontier.size(),
            problem: EntryProblem::Missing {
                checkpoint_size: cp.size,
            },
        });
    }
    Ok(VerifyReport {
        leaves: frontier.size(),
        erased,
        checkpoints: opened.len(),
        root: frontier.root(),
    })
}

fn open_checkpoints<C: AsRef<str>>(
    notes: &[C],
    verifier: &NoteVerifier,
    origin: &str,
) -> Result<Vec<Checkpoint>, AuditError> {
    let mut opened: Vec<Checkpoint> = Vec::with_capacity(notes.len());
    for (position, note) in notes.iter().enumerate() {
        let cp = Checkpoint::open(note.as_ref(), verifier).map_err(|e| AuditError::CheckpointRejected {
            position,
            source: Box::new(e),
        })?;
        let problem = if cp.origin != origin {
            Some(CheckpointProblem::WrongOrigin {
                found: cp.origin.chars().take(128).collect(),
            })
        } else {
            opened
                .last()
                .filter(|prev| prev.size > cp.size)
                .map(|prev| CheckpointProblem::OutOfOrder { previous: prev.size })
        };
        if let Some(problem) = problem {
            return Err(AuditError::Checkpoint {
                position,
                size: cp.size,
                problem,
            });
        }
        opened.push(cp);
    }
    Ok(opened)
}

/// Checkpoints met so far while replaying the log.
struct Replay<'a> {
    checkpoints: &'a [Checkpoint],
    /// Position of the next checkpoint to reach.
    next: usize,
    /// The last checkpoint verified, with the frontier at its size.
    previous: Option<(u64, Hash, Frontier)>,
}

impl Replay<'_> {
    /// Checks every checkpoint whose size the frontier has reached.
    /// `added` holds the leaves since the previous checkpoint.
    fn check_due(&mut self, frontier: &Frontier, added: &mut CompactRange) -> Result<(), AuditError> {
        while let Some(cp) = self.checkpoints.get(self.next).filter(|cp| cp.size == frontier.size()) {
            let position = self.next;
            let mismatch = |problem| AuditError::Checkpoint {
                position,
                size: cp.size,
                problem,
            };
            let root = frontier.root();
            let verified_up_to = self.previous.as_ref().map_or(0, |(size, _, _)| *size);
            if root != cp.root {
                return Err(mismatch(CheckpointProblem::RootMismatch { verified_up_to }));
            }
            if let Some((old_size, old_root, old_frontier)) = &self.previous {
                let span = SpanSource {
                    old: old_frontier.as_range(),
                    new: added,
                };
                let consistent = merkle::consistency_proof(&span, *old_size, cp.size)
                    .and_then(|proof| merkle::verify_consistency(*old_size, cp.size, old_root, &cp.root, &proof));
                if consistent.is_err() {
                    return Err(mismatch(CheckpointProblem::Inconsistent { previous: *old_size }));
                }
            }
            self.previous = Some((cp.size, cp.root, frontier.clone()));
            *added = CompactRange::new(cp.size);
            self.next += 1;
        }
        Ok(())
    }
}
