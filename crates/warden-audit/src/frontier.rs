//! Incremental trees: [`Frontier`], the right edge of a growing log, and
//! [`CompactRange`], the same for a range that starts anywhere.
//!
//! A compact range of leaves `[begin, end)` keeps only the roots of the
//! maximal perfect subtrees that cover it (at most two per level). Appending
//! a leaf merges siblings like a binary counter carries, so append is
//! amortised O(1) hashes and the root is O(log n). A frontier is the compact
//! range that starts at 0: one subtree per set bit of the size, largest
//! first, and their right fold is the RFC 9162 root.

use crate::error::AuditError;
use crate::merkle::{self, HASH_LEN, Hash, MAX_TREE_SIZE};
use crate::node_source::{NodeSource, Subtree};

/// The maximal perfect subtrees covering leaves `[begin, end)`, left to
/// right, with their hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactRange {
    begin: u64,
    end: u64,
    // INVARIANT: contiguous, covering [begin, end); no two adjacent nodes are
    // siblings (they would have been merged).
    nodes: Vec<(Subtree, Hash)>,
}

impl CompactRange {
    /// An empty range starting at leaf `begin`.
    pub fn new(begin: u64) -> Self {
        Self {
            begin,
            end: begin,
            nodes: Vec::new(),
        }
    }

    /// First leaf covered.
    pub fn begin(&self) -> u64 {
        self.begin
    }

    /// One past the last leaf covered.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The subtrees covering the range, left to right.
    pub fn nodes(&self) -> &[(Subtree, Hash)] {
        &self.nodes
    }

    /// Appends the leaf hash of leaf `end()`.
    pub fn push(&mut self, leaf_hash: Hash) -> Result<(), AuditError> {
        if self.end >= MAX_TREE_SIZE {
            return Err(AuditError::TreeTooLarge(self.end.saturating_add(1)));
        }
        self.nodes.push((Subtree::new(0, self.end), leaf_hash));
        self.end += 1;
        // Carry: while the last two nodes are a left and a right sibling,
        // replace them by their parent.
        while let [.., (left, lh), (right, rh)] = self.nodes.as_slice() {
            if left.level != right.level || left.index % 2 != 0 {
                break;
            }
            let parent = (Subtree::new(left.level + 1, left.index / 2), merkle::node_hash(lh, rh));
            self.nodes.truncate(self.nodes.len() - 2);
            self.nodes.push(parent);
        }
        Ok(())
    }

    /// `MTH(D[begin:end])` when the range is a tree of its own (`begin` is
    /// 0, or a multiple of a power of two at least the range's length);
    /// otherwise the right fold of its subtrees, which is not a tree root.
    fn fold(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some((_, last)) = nodes.next() else {
            return merkle::empty_root();
        };
        nodes.fold(*last, |acc, (_, left)| merkle::node_hash(left, &acc))
    }

    /// The hash of one of its subtrees, if it is one of them.
    pub(crate) fn find(&self, node: Subtree) -> Option<Hash> {
        self.nodes.iter().find(|(n, _)| *n == node).map(|(_, h)| *h)
    }
}

/// The right edge of a log: enough to append and to compute the root, in
/// at most 64 hashes.
///
/// Persist it with [`to_bytes`](Self::to_bytes) (or as the list of
/// [`entries`](Self::entries)) beside the log, and an appender restarts
/// without reading the log back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    range: CompactRange,
}

impl Default for Frontier {
    fn default() -> Self {
        Self::new()
    }
}

impl Frontier {
    /// The frontier of the empty log.
    pub fn new() -> Self {
        Self {
            range: CompactRange::new(0),
        }
    }

    /// Appends the next leaf hash.
    pub fn push(&mut self, leaf_hash: Hash) -> Result<(), AuditError> {
        self.range.push(leaf_hash)
    }

    /// Number of leaves appended.
    pub fn size(&self) -> u64 {
        self.range.end
    }

    /// The RFC 9162 root of the log so far.
    pub fn root(&self) -> Hash {
        self.range.fold()
    }

    /// The perfect subtrees on the edge, as (level, hash), largest first:
    /// one per set bit of [`size`](Self::size).
    pub fn entries(&self) -> impl Iterator<Item = (u32, Hash)> + '_ {
        self.range.nodes.iter().map(|(node, hash)| (node.level, *hash))
    }

    /// Rebuilds a frontier from its [`entries`](Self::entries). Levels must
    /// strictly decrease.
    pub fn from_entries(entries: impl IntoIterator<Item = (u32, Hash)>) -> Result<Self, AuditError> {
        let mut nodes = Vec::new();
        let mut start: u64 = 0;
        let mut previous: Option<u32> = None;
        for (level, hash) in entries {
            if level >= 63 {
                return Err(AuditError::MalformedFrontier("level out of range"));
            }
            if previous.is_some_and(|p| level >= p) {
                return Err(AuditError::MalformedFrontier("levels do not strictly decrease"));
            }
            previous = Some(level);
            nodes.push((Subtree::new(level, start >> level), hash));
            start += 1 << level;
        }
        Ok(Self {
            range: CompactRange {
                begin: 0,
                end: start,
                nodes,
            },
        })
    }

    /// Serialises as the size (8 bytes, big-endian) followed by the hash of
    /// each edge subtree, largest first (32 bytes each; the size says how
    /// many and of which levels).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + HASH_LEN * self.range.nodes.len());
        out.extend_from_slice(&self.size().to_be_bytes());
        for (_, hash) in &self.range.nodes {
            out.extend_from_slice(hash);
        }
        out
    }

    /// Parses [`to_bytes`](Self::to_bytes) output, rejecting any other
    /// length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        let (size, mut rest) = bytes
            .split_first_chunk::<8>()
            .ok_or(AuditError::MalformedFrontier("shorter than its size field"))?;
        let size = u64::from_be_bytes(*size);
        if size >= MAX_TREE_SIZE {
            return Err(AuditError::MalformedFrontier("size out of range"));
        }
        if rest.len() != HASH_LEN * size.count_ones() as usize {
            return Err(AuditError::MalformedFrontier("length does not match the size"));
        }
        let mut entries = Vec::new();
        for level in (0..64).rev().filter(|l| size >> l & 1 == 1) {
            let Some((hash, tail)) = rest.split_first_chunk::<HASH_LEN>() else {
                return Err(AuditError::MalformedFrontier("length does not match the size"));
            };
            entries.push((level, *hash));
            rest = tail;
        }
        Self::from_entries(entries)
    }

    /// The underlying compact range `[0, size)`.
    pub fn as_range(&self) -> &CompactRange {
        &self.range
    }
}

/// The hashes a consistency proof from `old` to `old.end() + new.len()`
/// reads: each is an edge subtree of the old tree or a subtree of the
/// compact range of the leaves added since. Lets a verifier that streams a
/// log prove consistency without keeping it.
pub(crate) struct SpanSource<'a> {
    pub(crate) old: &'a CompactRange,
    pub(crate) new: &'a CompactRange,
}

impl NodeSource for SpanSource<'_> {
    type Error = AuditError;

    fn subtree(&self, node: Subtree) -> Result<Hash, AuditError> {
        self.old
            .find(node)
            .or_else(|| self.new.find(node))
            .ok_or(AuditError::MissingNode {
                level: node.level,
                index: node.index,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_source::MemoryTree;

    fn leaf(i: u64) -> Hash {
        merkle::leaf_hash(&i.to_be_bytes())
    }

    #[test]
    fn frontier_root_matches_recursive_root_at_every_size() {
        let mut frontier = Frontier::new();
        let mut leaves = Vec::new();
        assert_eq!(frontier.root(), merkle::empty_root());
        for i in 0..300 {
            frontier.push(leaf(i)).unwrap();
            leaves.push(leaf(i));
            assert_eq!(frontier.size(), i + 1);
            assert_eq!(frontier.root(), merkle::root(&leaves), "size {}", i + 1);
            assert_eq!(frontier.entries().count() as u32, frontier.size().count_ones());
        }
    }

    #[test]
    fn frontier_round_trips_through_bytes_and_entries() {
        let mut frontier = Frontier::new();
        for i in 0..1000 {
            let bytes = frontier.to_bytes();
            assert_eq!(bytes.len(), 8 + 32 * frontier.size().count_ones() as usize);
            assert_eq!(Frontier::from_bytes(&bytes).unwrap(), frontier);
            assert_eq!(Frontier::from_entries(frontier.entries()).unwrap(), frontier);
            frontier.push(leaf(i)).unwrap();
        }
        // A restored frontier keeps growing like the original.
        let mut restored = Frontier::from_bytes(&frontier.to_bytes()).unwrap();
        restored.push(leaf(1000)).unwrap();
        frontier.push(leaf(1000)).unwrap();
        assert_eq!(restored.root(), frontier.root());
    }

    #[test]
    fn frontier_bytes_are_parsed_strictly() {
        let mut frontier = Frontier::new();
        for i in 0..5 {
            frontier.push(leaf(i)).unwrap();
        }
        let bytes = frontier.to_bytes();
        assert!(Frontier::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(Frontier::from_bytes(&long).is_err());
        assert!(Frontier::from_bytes(&bytes[..7]).is_err());
        assert!(Frontier::from_bytes(&u64::MAX.to_be_bytes()).is_err());
        assert!(Frontier::from_entries([(1, [0; 32]), (1, [0; 32])]).is_err());
        assert!(Frontier::from_entries([(0, [0; 32]), (1, [0; 32])]).is_err());
        assert!(Frontier::from_entries([(63, [0; 32])]).is_err());
    }

    /// What `verify_log` relies on: the old frontier and the leaves added
    /// since hold every hash a consistency proof reads.
    #[test]
    fn span_source_answers_every_consistency_proof() {
        let n_max = 100;
        let tree = MemoryTree::from_leaves((0..n_max).map(leaf));
        for old in 0..=n_max {
            let mut frontier = Frontier::new();
            (0..old).for_each(|i| frontier.push(leaf(i)).unwrap());
            let mut added = CompactRange::new(old);
            for new in old..=n_max {
                let span = SpanSource {
                    old: frontier.as_range(),
                    new: &added,
                };
                assert_eq!(
                    crate::merkle::consistency_proof(&span, old, new),
                    crate::merkle::consistency_proof(&tree, old, new),
                    "{old} -> {new}"
                );
                added.push(leaf(new)).unwrap();
            }
        }
    }

    #[test]
    fn compact_range_nodes_are_tree_nodes() {
        let tree = MemoryTree::from_leaves((0..200).map(leaf));
        for begin in [0, 1, 5, 64, 99] {
            let mut range = CompactRange::new(begin);
            for i in begin..200 {
                range.push(leaf(i)).unwrap();
                let mut pos = begin;
                for (node, hash) in range.nodes() {
                    assert_eq!(node.start(), pos);
                    pos = node.end();
                    assert_eq!(Ok(*hash), tree.subtree(*node));
                }
                assert_eq!(pos, i + 1);
            }
        }
    }
}
