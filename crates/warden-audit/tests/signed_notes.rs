//! C2SP signed notes and tlog checkpoints.
//!
//! Known answers come from Go's reference implementation
//! (`golang.org/x/mod/sumdb/note`, `note_test.go`): the PeterNeumann key pair,
//! its note and signature, the EnochRoot key and signature, and its table of
//! malformed notes. Ed25519 is deterministic, so signing the same text with
//! the same seed must reproduce Go's note byte for byte. Then: tampering
//! with text, signature, dash, blank line or key is refused, and
//! checkpoints round-trip through signed notes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use warden_audit::note::{self, key_id};
use warden_audit::{AuditError, Checkpoint, NoteSigner, NoteVerifier};

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
/// Go's signer key: `PRIVATE+KEY+PeterNeumann+c74f20a3+` then base64(0x01 || seed).
const PETER_SEED_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str =
    "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> NoteVerifier {
    NoteVerifier::from_vkey(PETER_VKEY).unwrap()
}

fn peter_signer() -> NoteSigner {
    let blob = STANDARD.decode(PETER_SEED_B64).unwrap();
    assert_eq!(blob[0], 0x01);
    NoteSigner::new("PeterNeumann", Ed25519KeyPair::from_seed_unchecked(&blob[1..]).unwrap()).unwrap()
}

fn note_with(sigs: &str) -> String {
    format!("{TEXT}\n{sigs}")
}

#[test]
fn go_verifier_key_parses_and_round_trips() {
    let v = peter();
    assert_eq!(v.name(), "PeterNeumann");
    assert_eq!(v.key_id(), 0xc74f20a3);
    assert_eq!(key_id("PeterNeumann", v.public_key()), 0xc74f20a3);
    assert_eq!(v.vkey(), PETER_VKEY);
    assert_eq!(NoteVerifier::from_vkey(ENOCH_VKEY).unwrap().key_id(), 0xaf0cfe78);
}

#[test]
fn go_signature_is_reproduced_byte_for_byte() {
    let signer = peter_signer();
    assert_eq!(signer.verifier().unwrap().vkey(), PETER_VKEY);
    assert_eq!(signer.sign(TEXT).unwrap(), note_with(PETER_SIG));
}

#[test]
fn go_note_opens() {
    assert_eq!(note::open(&note_with(PETER_SIG), &peter()).unwrap(), TEXT);
    // A signature by another key is skipped, in either order.
    assert_eq!(
        note::open(&note_with(&format!("{PETER_SIG}{ENOCH_SIG}")), &peter()).unwrap(),
        TEXT
    );
    assert_eq!(
        note::open(&note_with(&format!("{ENOCH_SIG}{PETER_SIG}")), &peter()).unwrap(),
        TEXT
    );
    let enoch = NoteVerifier::from_vkey(ENOCH_VKEY).unwrap();
    assert_eq!(
        note::open(&note_with(&format!("{PETER_SIG}{ENOCH_SIG}")), &enoch).unwrap(),
        TEXT
    );
    // Repeated signatures are fine.
    assert_eq!(
        note::open(&note_with(&format!("{PETER_SIG}{PETER_SIG}")), &peter()).unwrap(),
        TEXT
    );
}

#[test]
fn mangled_verifier_keys_are_refused() {
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let k = std::str::from_utf8(&b[i..j]).unwrap();
                assert!(NoteVerifier::from_vkey(k).is_err(), "substring {k:?} accepted");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let k = String::from_utf8(m).unwrap();
        assert!(NoteVerifier::from_vkey(&k).is_err(), "mangled {k:?} accepted");
    }
    // Wrong key length and unknown algorithm, each with a key ID adjusted to match (from Go's suite).
    assert!(
        NoteVerifier::from_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==").is_err()
    );
    assert!(NoteVerifier::from_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
    // Uppercase hex is not how key IDs are written.
    assert!(NoteVerifier::from_vkey("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
}

#[test]
fn small_order_verifier_keys_are_refused() {
    // The identity point: a key that "verifies" signatures nobody made.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(NoteVerifier::new("weak", &identity).is_err());
}

#[test]
fn go_malformed_notes_are_refused() {
    let bad = [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        note_with(&PETER_SIG.repeat(101)),
    ];
    for msg in bad {
        assert!(
            matches!(note::open(&msg, &peter()), Err(AuditError::MalformedNote(_))),
            "accepted {msg:?}"
        );
    }
}

#[test]
fn tampering_is_refused() {
    let v = peter();
    let good = note_with(PETER_SIG);
    // Altered text.
    let altered = good.replace("cryptography", "cryptographY");
    assert!(matches!(
        note::open(&altered, &v),
        Err(AuditError::InvalidSignature { .. })
    ));
    // Altered signature (Go's case: four base64 characters inserted).
    let sig = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(matches!(
        note::open(&note_with(&sig), &v),
        Err(AuditError::InvalidSignature { .. })
    ));
    // A good signature does not save a bad one by the same key.
    let both = note_with(&format!("{PETER_SIG}{sig}"));
    assert!(matches!(
        note::open(&both, &v),
        Err(AuditError::InvalidSignature { .. })
    ));
    // Every single-character change of the signature line is refused.
    let prefix = "\u{2014} PeterNeumann ".len();
    for i in prefix..PETER_SIG.len() - 1 {
        let mut bytes = PETER_SIG.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let line = String::from_utf8(bytes).unwrap();
        assert!(
            note::open(&note_with(&line), &v).is_err(),
            "changed character {i} accepted"
        );
    }
    // Hyphen, en dash, or no space instead of "em dash, space".
    for dash in ["- ", "\u{2013} ", "\u{2014}", "\u{2014}  "] {
        let line = PETER_SIG.replacen("\u{2014} ", dash, 1);
        assert!(
            matches!(note::open(&note_with(&line), &v), Err(AuditError::MalformedNote(_))),
            "{dash:?}"
        );
    }
    // No blank line between text and signatures.
    assert!(note::open(&format!("{TEXT}{PETER_SIG}"), &v).is_err());
    // Only unknown keys: not signed by ours.
    assert!(matches!(
        note::open(&note_with(ENOCH_SIG), &v),
        Err(AuditError::NotSignedByKey { .. })
    ));
    // Another key under the same name: a different key ID, so unknown.
    let impostor = NoteSigner::new("PeterNeumann", support::key_pair()).unwrap();
    let forged = impostor.sign(TEXT).unwrap();
    assert!(matches!(
        note::open(&forged, &v),
        Err(AuditError::NotSignedByKey { .. })
    ));
    // The right name and key ID with another key's signature.
    let blob = STANDARD.decode(forged.trim_end().rsplit(' ').next().unwrap()).unwrap();
    let mut relabelled = 0xc74f20a3u32.to_be_bytes().to_vec();
    relabelled.extend_from_slice(&blob[4..]);
    let forged_id = note_with(&format!("\u{2014} PeterNeumann {}\n", STANDARD.encode(relabelled)));
    assert!(matches!(
        note::open(&forged_id, &v),
        Err(AuditError::InvalidSignature { .. })
    ));
    // CR before the newline is a control character.
    assert!(note::open(&good.replace(",\n", ",\r\n"), &v).is_err());
}

#[test]
fn checkpoints_round_trip_through_signed_notes() {
    let signer = NoteSigner::new(support::ORIGIN, support::key_pair()).unwrap();
    let verifier = NoteVerifier::from_vkey(&signer.verifier().unwrap().vkey()).unwrap();
    let cp = Checkpoint::new(support::ORIGIN, 20_852_163, [0xab; 32]);
    let note_text = cp.sign(&signer).unwrap();
    assert!(note_text.starts_with(&format!(
        "{}\n20852163\n{}\n\n\u{2014} {} ",
        support::ORIGIN,
        STANDARD.encode([0xab; 32]),
        support::ORIGIN
    )));
    assert_eq!(Checkpoint::open(&note_text, &verifier).unwrap(), cp);
    let grown = note_text.replace("20852163", "20852164");
    assert!(matches!(
        Checkpoint::open(&grown, &verifier),
        Err(AuditError::InvalidSignature { .. })
    ));
    let other = NoteSigner::new(support::ORIGIN, support::key_pair()).unwrap();
    assert!(Checkpoint::open(&note_text, &other.verifier().unwrap()).is_err());
    // A signed note whose text is not a checkpoint.
    assert!(matches!(
        Checkpoint::open(&signer.sign("hello\n").unwrap(), &verifier),
        Err(AuditError::MalformedCheckpoint(_))
    ));
}
