//! Known answers from the RFC 6962 reference test data (as used by the
//! Certificate Transparency and transparency-dev/trillian test suites):
//! the eight reference leaves, the root of every prefix, and published
//! inclusion and consistency proofs. Each published proof must be what we
//! generate, must verify, and must stop verifying under every mutation the
//! reference suite tries (wrong index, size, leaf or root; a changed,
//! added, dropped or prepended proof element).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use support::{h, reference_leaves};
use warden_audit::merkle::{empty_root, leaf_hash};
use warden_audit::{Hash, MemoryTree, consistency_proof, inclusion_proof, root, verify_consistency, verify_inclusion};

/// Roots of the first 0..=8 reference leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, audit path), leaf index from 0.
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, consistency proof).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn leaf_hashes() -> Vec<Hash> {
    reference_leaves().iter().map(|l| leaf_hash(l)).collect()
}

fn hashes(hex: &[&str]) -> Vec<Hash> {
    hex.iter().map(|s| h(s)).collect()
}

#[test]
fn roots_of_every_prefix() {
    let leaves = leaf_hashes();
    assert_eq!(empty_root(), h(ROOTS[0]));
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..size]), h(want), "MTH(D[{size}])");
        assert_eq!(
            warden_audit::root_at(&tree, size as u64).unwrap(),
            h(want),
            "root_at({size})"
        );
    }
}

#[test]
fn published_inclusion_proofs_are_generated_and_verify() {
    let leaves = leaf_hashes();
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    for &(index, size, path) in INCLUSION {
        let want = hashes(path);
        assert_eq!(
            inclusion_proof(&leaves[..], index, size).unwrap(),
            want,
            "slice PATH({index}, D[{size}])"
        );
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap(),
            want,
            "tree PATH({index}, D[{size}])"
        );
        let root = h(ROOTS[size as usize]);
        let leaf = leaves[index as usize];
        verify_inclusion(&leaf, index, size, &want, &root).unwrap();
        assert_inclusion_mutations_fail(&leaf, index, size, &want, &root);
    }
}

fn assert_inclusion_mutations_fail(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) {
    let bad = |i: u64, s: u64, p: &[Hash], l: &Hash, r: &Hash| verify_inclusion(l, i, s, p, r).is_err();
    let ctx = format!("index {index}, size {size}");
    if index > 0 {
        assert!(bad(index - 1, size, proof, leaf, root), "{ctx}: index - 1");
    }
    assert!(bad(index + 1, size, proof, leaf, root), "{ctx}: index + 1");
    assert!(bad(index ^ 2, size, proof, leaf, root), "{ctx}: index ^ 2");
    assert!(bad(index, size * 2, proof, leaf, root), "{ctx}: size * 2");
    assert!(bad(index, size / 2, proof, leaf, root), "{ctx}: size / 2");
    assert!(
        bad(index, size, proof, &leaf_hash(b"WrongLeaf"), root),
        "{ctx}: wrong leaf"
    );
    assert!(bad(index, size, proof, leaf, &empty_root()), "{ctx}: wrong root");
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i] = empty_root();
        assert!(bad(index, size, &p, leaf, root), "{ctx}: element {i} changed");
    }
    let with = |front: Option<Hash>, back: Option<Hash>| {
        front
            .into_iter()
            .chain(proof.iter().copied())
            .chain(back)
            .collect::<Vec<_>>()
    };
    assert!(
        bad(index, size, &with(None, Some([0; 32])), leaf, root),
        "{ctx}: trailing garbage"
    );
    assert!(
        bad(index, size, &with(None, Some(*root)), leaf, root),
        "{ctx}: trailing root"
    );
    assert!(
        bad(index, size, &with(Some([0; 32]), None), leaf, root),
        "{ctx}: leading garbage"
    );
    assert!(
        bad(index, size, &with(Some(*root), None), leaf, root),
        "{ctx}: leading root"
    );
    if !proof.is_empty() {
        assert!(
            bad(index, size, &proof[..proof.len() - 1], leaf, root),
            "{ctx}: truncated"
        );
    }
}

#[test]
fn invalid_inclusion_requests_fail() {
    let leaf = leaf_hash(&[1]);
    for (index, size) in [(0, 0), (1, 0), (1, 1), (2, 1)] {
        assert!(
            verify_inclusion(&leaf, index, size, &[], &empty_root()).is_err(),
            "({index}, {size})"
        );
        assert!(verify_inclusion(&leaf, index, size, &[], &leaf).is_err() || (index, size) == (0, 1));
    }
    assert!(inclusion_proof(&leaf_hashes()[..], 8, 8).is_err());
}

#[test]
fn published_consistency_proofs_are_generated_and_verify() {
    let leaves = leaf_hashes();
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    for &(old, new, path) in CONSISTENCY {
        let want = hashes(path);
        assert_eq!(
            consistency_proof(&leaves[..], old, new).unwrap(),
            want,
            "slice PROOF({old}, D[{new}])"
        );
        assert_eq!(
            consistency_proof(&tree, old, new).unwrap(),
            want,
            "tree PROOF({old}, D[{new}])"
        );
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        verify_consistency(old, new, &r1, &r2, &want).unwrap();
        if !want.is_empty() {
            assert_consistency_mutations_fail(old, new, &r1, &r2, &want);
        }
    }
}

fn assert_consistency_mutations_fail(old: u64, new: u64, r1: &Hash, r2: &Hash, proof: &[Hash]) {
    let bad = |o: u64, n: u64, a: &Hash, b: &Hash, p: &[Hash]| verify_consistency(o, n, a, b, p).is_err();
    let ctx = format!("{old} -> {new}");
    assert!(bad(old - 1, new, r1, r2, proof), "{ctx}: old - 1");
    assert!(bad(old + 1, new, r1, r2, proof), "{ctx}: old + 1");
    assert!(bad(old ^ 2, new, r1, r2, proof), "{ctx}: old ^ 2");
    assert!(bad(old, new * 2, r1, r2, proof), "{ctx}: new * 2");
    assert!(bad(old, new / 2, r1, r2, proof), "{ctx}: new / 2");
    assert!(
        bad(old, new, &leaf_hash(b"WrongRoot"), r2, proof),
        "{ctx}: wrong old root"
    );
    assert!(
        bad(old, new, r1, &leaf_hash(b"WrongRoot"), proof),
        "{ctx}: wrong new root"
    );
    assert!(bad(old, new, r2, r1, proof), "{ctx}: swapped roots");
    assert!(bad(old, new, r1, r2, &[]), "{ctx}: empty proof");
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i] = empty_root();
        assert!(bad(old, new, r1, r2, &p), "{ctx}: element {i} changed");
    }
    let with = |front: Option<Hash>, back: Option<Hash>| {
        front
            .into_iter()
            .chain(proof.iter().copied())
            .chain(back)
            .collect::<Vec<_>>()
    };
    assert!(
        bad(old, new, r1, r2, &with(None, Some([0; 32]))),
        "{ctx}: trailing garbage"
    );
    assert!(bad(old, new, r1, r2, &with(None, Some(*r1))), "{ctx}: trailing root");
    assert!(
        bad(old, new, r1, r2, &with(Some([0; 32]), None)),
        "{ctx}: leading garbage"
    );
    assert!(
        bad(old, new, r1, r2, &with(Some(proof[0]), None)),
        "{ctx}: repeated first element"
    );
    assert!(bad(old, new, r1, r2, &proof[..proof.len() - 1]), "{ctx}: truncated");
}

#[test]
fn trivial_and_impossible_consistency() {
    let e = empty_root();
    let r = h(ROOTS[1]);
    // Always consistent with an empty proof.
    verify_consistency(0, 0, &e, &e, &[]).unwrap();
    verify_consistency(0, 1, &e, &r, &[]).unwrap();
    verify_consistency(1, 1, &r, &r, &[]).unwrap();
    // Time travel.
    assert!(verify_consistency(1, 0, &r, &e, &[]).is_err());
    assert!(verify_consistency(2, 1, &r, &r, &[]).is_err());
    // A real change needs a proof.
    assert!(verify_consistency(1, 2, &r, &h(ROOTS[2]), &[]).is_err());
    // Equal sizes need equal roots; size 0 has one root.
    assert!(verify_consistency(1, 1, &r, &e, &[]).is_err());
    assert!(verify_consistency(0, 0, &r, &r, &[]).is_err());
    // Trivial cases take no proof.
    for (old, new) in [(0, 0), (0, 1), (1, 1)] {
        assert!(verify_consistency(old, new, &e, &e, &[e]).is_err(), "{old} -> {new}");
    }
    assert!(consistency_proof(&leaf_hashes()[..], 3, 2).is_err());
    assert_eq!(consistency_proof(&leaf_hashes()[..], 0, 8).unwrap(), Vec::<Hash>::new());
}
