//! Differential test against `ct-merkle`, an independent RFC 6962 tree over
//! RustCrypto's SHA-256 (a dev-dependency only). For every tree size up to
//! 64, and for sampled sizes up to 2,000: the same root, byte-identical
//! inclusion and consistency proofs, and each side's proofs accepted by the
//! other side's verifier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::Sha256;
use warden_audit::{Hash, MemoryTree, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};

type Oracle = MemoryBackedTree<Sha256, Vec<u8>>;

/// Leaves of varied lengths, so that no length coincidence hides a bug.
fn leaf_bytes(i: u64) -> Vec<u8> {
    let mut v = i.to_le_bytes().to_vec();
    v.resize(1 + (i as usize * 7) % 40, i as u8);
    v
}

fn flat(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

fn oracle_root(oracle: &Oracle) -> Hash {
    oracle.root().as_bytes().as_slice().try_into().unwrap()
}

fn ours_root(size: u64, root: &Hash) -> RootHash<Sha256> {
    RootHash::new((*root).into(), size)
}

fn compare_at(oracle: &Oracle, ours: &MemoryTree, size: u64, indices: &[u64], olds: &[u64]) {
    let root = oracle_root(oracle);
    assert_eq!(ours.root(), root, "root at size {size}");
    for &index in indices {
        let theirs = oracle.prove_inclusion(index as usize);
        let mine = inclusion_proof(ours, index, size).unwrap();
        assert_eq!(flat(&mine), theirs.as_bytes(), "inclusion ({index}, {size})");
        let leaf = warden_audit::merkle::leaf_hash(&leaf_bytes(index));
        verify_inclusion(&leaf, index, size, &mine, &root).unwrap();
        ours_root(size, &root)
            .verify_inclusion(
                &leaf_bytes(index),
                index,
                &InclusionProof::<Sha256>::from_bytes(flat(&mine)),
            )
            .unwrap_or_else(|e| panic!("oracle refuses our inclusion proof ({index}, {size}): {e:?}"));
    }
    for &old in olds {
        let theirs = oracle.prove_consistency((size - old) as usize);
        let mine = consistency_proof(ours, old, size).unwrap();
        assert_eq!(flat(&mine), theirs.as_bytes(), "consistency {old} -> {size}");
        let old_root = warden_audit::root_at(ours, old).unwrap();
        verify_consistency(old, size, &old_root, &root, &mine).unwrap();
        ours_root(size, &root)
            .verify_consistency(
                &ours_root(old, &old_root),
                &ConsistencyProof::<Sha256>::try_from_bytes(flat(&mine)).unwrap(),
            )
            .unwrap_or_else(|e| panic!("oracle refuses our consistency proof {old} -> {size}: {e:?}"));
    }
}

#[test]
fn every_proof_up_to_64_leaves_matches_the_oracle() {
    let mut oracle = Oracle::new();
    let mut ours = MemoryTree::new();
    for i in 0..64u64 {
        oracle.push(leaf_bytes(i));
        ours.push(warden_audit::merkle::leaf_hash(&leaf_bytes(i)));
        let size = i + 1;
        let all: Vec<u64> = (0..size).collect();
        let olds: Vec<u64> = (1..=size).collect();
        compare_at(&oracle, &ours, size, &all, &olds);
    }
}

#[test]
fn sampled_proofs_up_to_2000_leaves_match_the_oracle() {
    let mut oracle = Oracle::new();
    let mut ours = MemoryTree::new();
    for i in 0..2000u64 {
        oracle.push(leaf_bytes(i));
        ours.push(warden_audit::merkle::leaf_hash(&leaf_bytes(i)));
        let size = i + 1;
        if size % 97 == 0 || size.is_power_of_two() || size == 2000 {
            let picks = [0, 1, size / 3, size / 2, size.saturating_sub(2), size - 1];
            let indices: Vec<u64> = picks.iter().copied().filter(|&x| x < size).collect();
            let olds: Vec<u64> = [1, 2, size / 3, size / 2, size - 1, size]
                .into_iter()
                .filter(|&x| x >= 1 && x <= size)
                .collect();
            compare_at(&oracle, &ours, size, &indices, &olds);
        }
    }
}
