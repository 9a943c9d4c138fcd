//! Properties of the Merkle code at every small size and at random large
//! ones:
//!
//! - for every tree size n <= 300 and every leaf, the inclusion proof built
//!   over the stored subtrees equals the one built from the leaves, has the
//!   RFC length, and verifies; for every pair m <= n <= 300 the consistency
//!   proof verifies between the two roots;
//! - any single changed proof element, another index or another leaf is
//!   refused (a proof does not bind the size on its own: RFC 9162 checks
//!   only that the path has the right shape, so that is not a property);
//! - the frontier root equals the recursive root, and survives a round trip
//!   through bytes, at random sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use warden_audit::merkle::{leaf_hash, root};
use warden_audit::{
    Frontier, Hash, MemoryTree, consistency_proof, inclusion_proof, root_at, verify_consistency, verify_inclusion,
};

const MAX: u64 = 300;

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_le_bytes())
}

fn tree(n: u64) -> MemoryTree {
    MemoryTree::from_leaves((0..n).map(leaf))
}

/// Length of `PATH(index, D[size])`: one sibling per level of the path.
fn path_len(index: u64, size: u64) -> usize {
    let (mut len, mut start, mut end) = (0, 0, size);
    while end - start > 1 {
        let k = 1 << (63 - (end - start - 1).leading_zeros());
        if index - start < k {
            end = start + k
        } else {
            start += k
        }
        len += 1;
    }
    len
}

#[test]
fn every_inclusion_proof_up_to_300_leaves() {
    let tree = tree(MAX);
    let leaves: Vec<Hash> = (0..MAX).map(leaf).collect();
    for size in 1..=MAX {
        let root = root_at(&tree, size).unwrap();
        assert_eq!(root, warden_audit::root(&leaves[..size as usize]));
        for index in 0..size {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            assert_eq!(proof.len(), path_len(index, size), "({index}, {size})");
            verify_inclusion(&leaves[index as usize], index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("({index}, {size}): {e}"));
        }
        // The slice source agrees (it rehashes, so check a few only).
        for index in [0, size / 2, size - 1] {
            assert_eq!(
                inclusion_proof(&leaves[..], index, size).unwrap(),
                inclusion_proof(&tree, index, size).unwrap()
            );
        }
    }
}

#[test]
fn every_consistency_proof_up_to_300_leaves() {
    let tree = tree(MAX);
    let roots: Vec<Hash> = (0..=MAX).map(|n| root_at(&tree, n).unwrap()).collect();
    for new in 0..=MAX {
        for old in 0..=new {
            let proof = consistency_proof(&tree, old, new).unwrap();
            verify_consistency(old, new, &roots[old as usize], &roots[new as usize], &proof)
                .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
            if old > 0 && old < new {
                assert!(!proof.is_empty());
                // The proof binds the old root: any other root is refused.
                assert!(verify_consistency(old, new, &roots[old as usize - 1], &roots[new as usize], &proof).is_err());
            }
        }
    }
}

fn arb_case() -> impl Strategy<Value = (u64, u64, usize)> {
    (1..=MAX).prop_flat_map(|size| (0..size, Just(size), 0..64usize))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_refuses_any_changed_element((index, size, pick) in arb_case(), flip in 0..256usize) {
        let t = tree(size);
        let root = t.root();
        let mut proof = inclusion_proof(&t, index, size).unwrap();
        prop_assume!(!proof.is_empty());
        let i = pick % proof.len();
        proof[i][flip % 32] ^= 1 << (flip % 8);
        prop_assert!(verify_inclusion(&leaf(index), index, size, &proof, &root).is_err());
    }

    #[test]
    fn inclusion_refuses_another_index_or_leaf((index, size, _) in arb_case(), other in 0..MAX) {
        prop_assume!(other != index);
        let t = tree(size);
        let root = t.root();
        let proof = inclusion_proof(&t, index, size).unwrap();
        prop_assert!(verify_inclusion(&leaf(index), other, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf(other), index, size, &proof, &root).is_err());
    }

    #[test]
    fn consistency_refuses_any_changed_element(new in 2..=MAX, old_pick in 0..MAX, pick in 0..64usize, flip in 0..256usize) {
        let old = 1 + old_pick % (new - 1);
        let t = tree(new);
        let (r1, r2) = (root_at(&t, old).unwrap(), t.root());
        let mut proof = consistency_proof(&t, old, new).unwrap();
        let i = pick % proof.len();
        proof[i][flip % 32] ^= 1 << (flip % 8);
        prop_assert!(verify_consistency(old, new, &r1, &r2, &proof).is_err());
    }

    #[test]
    fn frontier_matches_recursive_root(size in 0u64..5000) {
        let mut frontier = Frontier::new();
        let leaves: Vec<Hash> = (0..size).map(leaf).collect();
        for l in &leaves {
            frontier.push(*l).unwrap();
        }
        prop_assert_eq!(frontier.root(), root(&leaves));
        let restored = Frontier::from_bytes(&frontier.to_bytes()).unwrap();
        prop_assert_eq!(restored.root(), frontier.root());
        prop_assert_eq!(restored.size(), size);
    }
}
