//! Helpers shared by the integration tests: hex decoding independent of the
//! library, the RFC 6962 reference leaves, test signing keys, and a
//! synthetic log with its export and signed checkpoints.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use warden_audit::{AuditEvent, Checkpoint, Decision, EventKind, Frontier, Hash, NoteSigner, Record, Salt};

/// Decodes lowercase or uppercase hex; panics on anything else.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Decodes 64 hex digits into a hash.
pub fn h(s: &str) -> Hash {
    hex(s).try_into().unwrap()
}

/// The eight leaf inputs of the RFC 6962 reference test data.
pub fn reference_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hex(s))
    .collect()
}

/// A fresh Ed25519 key pair.
pub fn key_pair() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

pub const ORIGIN: &str = "warden.example/audit";

/// A deterministic access-decision event for index `i`.
pub fn event(i: u64) -> AuditEvent {
    AuditEvent::new(
        1_800_000_000 + i,
        EventKind::AccessDecision {
            principal: format!("user:u{}", i % 97),
            actor_chain: vec![],
            client_id: "cli".into(),
            jti: format!("j-{i}"),
            action: "inference.invoke".into(),
            resource: "Endpoint::\"chat\"".into(),
            decision: if i.is_multiple_of(5) {
                Decision::Deny
            } else {
                Decision::Allow
            },
            policy_ids: vec!["policy0".into()],
            request_id: format!("req-{i}"),
            route: "/v1/chat".into(),
            source_ip: "192.0.2.1".parse().unwrap(),
            upstream_status: Some(200),
            purpose: None,
        },
    )
}

/// A deterministic salt for index `i` (real logs use random salts).
pub fn salt(i: u64) -> Salt {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&i.to_be_bytes());
    bytes[31] = 0x5a;
    Salt::from_bytes(bytes)
}

/// A log as an exporter would hand it over: every record and signed
/// checkpoints at the given sizes.
pub struct SyntheticLog {
    pub records: Vec<Record>,
    pub checkpoints: Vec<String>,
    pub signer: NoteSigner,
}

impl SyntheticLog {
    pub fn new(size: u64, checkpoint_sizes: &[u64]) -> Self {
        let signer = NoteSigner::new(ORIGIN, key_pair()).unwrap();
        let mut frontier = Frontier::new();
        let mut records = Vec::new();
        let mut checkpoints = Vec::new();
        let mut pending = checkpoint_sizes.iter().peekable();
        let mut sign_due = |frontier: &Frontier, checkpoints: &mut Vec<String>| {
            while pending.peek().is_some_and(|s| **s == frontier.size()) {
                pending.next();
                let cp = Checkpoint::new(ORIGIN, frontier.size(), frontier.root());
                checkpoints.push(cp.sign(&signer).unwrap());
            }
        };
        sign_due(&frontier, &mut checkpoints);
        for i in 0..size {
            let body = event(i).body().unwrap();
            let leaf = warden_audit::EventLeaf::with_salt(body, salt(i));
            let (body, salt, leaf_hash) = leaf.into_parts();
            frontier.push(leaf_hash).unwrap();
            records.push(Record {
                index: i,
                leaf_hash,
                content: Some((body, salt)),
            });
            sign_due(&frontier, &mut checkpoints);
        }
        Self {
            records,
            checkpoints,
            signer,
        }
    }

    pub fn verifier(&self) -> warden_audit::NoteVerifier {
        self.signer.verifier().unwrap()
    }
}
