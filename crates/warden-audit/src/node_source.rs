//! Where proofs get their hashes: the [`NodeSource`] trait, owned here and
//! implemented by the store, plus in-memory implementations.
//!
//! A proof over a log of n leaves needs O(log n) subtree roots. A store that
//! keeps the root of every perfect subtree (n - 1 interior hashes beside the
//! n leaf hashes) answers each by key, so serving a proof never rehashes the
//! log. A store that cannot answer synchronously first asks
//! [`inclusion_nodes`] or [`consistency_nodes`] which subtrees it needs,
//! fetches them in one query into a `HashMap<Subtree, Hash>` (itself a
//! source), and then builds the proof from that map.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::AuditError;
use crate::merkle::{self, Hash};

/// A perfect subtree: the `2^level` leaves `[index * 2^level, (index + 1) * 2^level)`.
///
/// Level 0 is a single leaf, whose hash is its leaf hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subtree {
    /// Height: the subtree holds `2^level` leaves.
    pub level: u32,
    /// Position among the subtrees of the same height, from the left.
    pub index: u64,
}

impl Subtree {
    /// The subtree of height `level` at position `index`.
    pub fn new(level: u32, index: u64) -> Self {
        Self { level, index }
    }

    /// Index of its first leaf.
    pub fn start(&self) -> u64 {
        self.index << self.level
    }

    /// Index one past its last leaf.
    pub fn end(&self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// Answers the root hash of a perfect subtree of a log.
///
/// The core owns this trait; the store implements it over the subtree hashes
/// it persists. Proof functions ([`inclusion_proof`](crate::inclusion_proof),
/// [`consistency_proof`](crate::consistency_proof), [`root_at`](crate::root_at))
/// ask only for complete subtrees below the tree size they are given.
pub trait NodeSource {
    /// The source's own error; proof functions also report theirs in it.
    type Error: From<AuditError>;

    /// The root hash of `node`: its leaf hash at level 0.
    fn subtree(&self, node: Subtree) -> Result<Hash, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    type Error = S::Error;

    fn subtree(&self, node: Subtree) -> Result<Hash, Self::Error> {
        (**self).subtree(node)
    }
}

/// Leaf hashes in a slice: each subtree is rehashed on demand, so a proof
/// costs O(n). For tests and small trees.
impl NodeSource for [Hash] {
    type Error = AuditError;

    fn subtree(&self, node: Subtree) -> Result<Hash, AuditError> {
        let missing = AuditError::MissingNode {
            level: node.level,
            index: node.index,
        };
        let start = usize::try_from(node.start()).map_err(|_| missing.clone())?;
        let end = usize::try_from(node.end()).map_err(|_| missing.clone())?;
        let leaves = self.get(start..end).ok_or(missing)?;
        Ok(merkle::root(leaves))
    }
}

/// Subtree hashes fetched ahead of time (see [`inclusion_nodes`]).
impl<S: std::hash::BuildHasher> NodeSource for HashMap<Subtree, Hash, S> {
    type Error = AuditError;

    fn subtree(&self, node: Subtree) -> Result<Hash, AuditError> {
        self.get(&node).copied().ok_or(AuditError::MissingNode {
            level: node.level,
            index: node.index,
        })
    }
}

/// Every perfect subtree hash of a growing log, in memory: O(1) amortised
/// append, O(log n) proofs at any size up to [`len`](Self::len). Uses
/// 2n hashes (64 bytes a leaf). The model of what a store persists.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is the root of `Subtree::new(l, i)`; only complete
    /// subtrees are present.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding these leaf hashes.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Appends a leaf hash and the roots of the subtrees it completes.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut hash = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else { return };
            row.push(hash);
            // A row of even length just completed a pair: its parent is new.
            if row.len() % 2 != 0 {
                return;
            }
            let (Some(right), Some(left)) = (row.last(), row.iter().rev().nth(1)) else {
                return;
            };
            hash = merkle::node_hash(left, right);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |row| row.len() as u64)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        // The source holds every subtree below len(), so this cannot miss.
        merkle::root_at(self, self.len()).unwrap_or_else(|_| merkle::empty_root())
    }
}

impl NodeSource for MemoryTree {
    type Error = AuditError;

    fn subtree(&self, node: Subtree) -> Result<Hash, AuditError> {
        usize::try_from(node.level)
            .ok()
            .and_then(|l| self.levels.get(l))
            .and_then(|row| row.get(usize::try_from(node.index).ok()?))
            .copied()
            .ok_or(AuditError::MissingNode {
                level: node.level,
                index: node.index,
            })
    }
}

/// Records which subtrees a proof asks for and answers each with zeros.
struct Recorder(RefCell<Vec<Subtree>>);

impl NodeSource for Recorder {
    type Error = AuditError;

    fn subtree(&self, node: Subtree) -> Result<Hash, AuditError> {
        self.0.borrow_mut().push(node);
        Ok([0; 32])
    }
}

/// The subtrees [`inclusion_proof`](crate::inclusion_proof) of `index` in a
/// tree of `size` leaves reads, in the order it reads them.
pub fn inclusion_nodes(index: u64, size: u64) -> Result<Vec<Subtree>, AuditError> {
    let recorder = Recorder(RefCell::new(Vec::new()));
    merkle::inclusion_proof(&recorder, index, size)?;
    Ok(recorder.0.into_inner())
}

/// The subtrees [`consistency_proof`](crate::consistency_proof) from
/// `old_size` to `new_size` reads, in the order it reads them.
pub fn consistency_nodes(old_size: u64, new_size: u64) -> Result<Vec<Subtree>, AuditError> {
    let recorder = Recorder(RefCell::new(Vec::new()));
    merkle::consistency_proof(&recorder, old_size, new_size)?;
    Ok(recorder.0.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<Hash> {
        (0..n).map(|i| merkle::leaf_hash(&[i])).collect()
    }

    #[test]
    fn memory_tree_stores_every_complete_subtree() {
        let l = leaves(7);
        let tree = MemoryTree::from_leaves(l.iter().copied());
        assert_eq!(tree.len(), 7);
        for level in 0..3 {
            for index in 0..(7u64 >> level) {
                let node = Subtree::new(level, index);
                assert_eq!(tree.subtree(node), l[..].subtree(node), "{node:?}");
            }
        }
        assert!(
            tree.subtree(Subtree::new(2, 1)).is_err(),
            "leaves 4..8 are not complete"
        );
        assert!(tree.subtree(Subtree::new(3, 0)).is_err());
        assert_eq!(tree.root(), merkle::root(&l));
    }

    #[test]
    fn map_source_answers_a_proof_with_only_the_nodes_it_needs() {
        let tree = MemoryTree::from_leaves(leaves(200));
        for (index, size) in [(0, 1), (5, 8), (137, 200), (199, 200)] {
            let needed = inclusion_nodes(index, size).unwrap();
            assert!(needed.len() <= 2 * 64);
            let map: HashMap<Subtree, Hash> = needed.iter().map(|n| (*n, tree.subtree(*n).unwrap())).collect();
            assert_eq!(
                merkle::inclusion_proof(&map, index, size),
                merkle::inclusion_proof(&tree, index, size)
            );
        }
        for (old, new) in [(1, 8), (6, 8), (100, 200), (128, 199)] {
            let needed = consistency_nodes(old, new).unwrap();
            let map: HashMap<Subtree, Hash> = needed.iter().map(|n| (*n, tree.subtree(*n).unwrap())).collect();
            assert_eq!(
                merkle::consistency_proof(&map, old, new),
                merkle::consistency_proof(&tree, old, new)
            );
        }
    }

    #[test]
    fn proofs_touch_logarithmically_many_subtrees() {
        let size = 1_000_000;
        for index in [0, 1, 499_999, 524_288, 999_999] {
            assert!(inclusion_nodes(index, size).unwrap().len() <= 2 * 20, "index {index}");
        }
        for old in [1, 3, 524_288, 777_777, 999_999] {
            assert!(consistency_nodes(old, size).unwrap().len() <= 3 * 20, "old {old}");
        }
    }
}
