//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519.
//!
//! ```text
//! <text, ending in a newline>
//! <blank line>
//! — <key name> <base64(key ID (4 bytes, big-endian) || signature)>
//! ```
//!
//! The signature line starts with U+2014 EM DASH and a space; the signature
//! covers the text including its final newline. An Ed25519 key ID is the
//! first four bytes of `SHA-256(name || 0x0A || 0x01 || public key)`, and a
//! verifier key is written `<name>+<key ID, 8 hex digits>+<base64(0x01 ||
//! public key)>`, as Go's `golang.org/x/mod/sumdb/note` writes them.
//!
//! [`open`] is strict: the note must be UTF-8 without control characters
//! other than newline, the text must be followed by one blank line and only
//! well-formed signature lines, each `base64` strict and canonical.
//! Signatures by other keys (same name or same ID, not both) are skipped as
//! the spec requires; a signature by the trusted key that fails rejects the
//! note; at least one signature by the trusted key must verify. Ed25519 is
//! checked by `warden-jose`'s strict rules (no small-order or non-canonical
//! keys or `R`), so a verifier key that could "sign" many texts is refused
//! at parse time.

use std::fmt;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use warden_jose::{Algorithm, VerifyingKey};

use crate::error::AuditError;
use crate::merkle;

/// Signature type byte of Ed25519 in key IDs and verifier keys.
pub const ED25519_TYPE: u8 = 0x01;

/// Most signature lines accepted in one note (the spec asks for at least 16;
/// Go's implementation stops at 100).
pub const MAX_SIGNATURES: usize = 100;

/// What starts every signature line: EM DASH, space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Checks a key name: non-empty, no Unicode space, no `+`.
pub fn check_key_name(name: &str) -> Result<(), AuditError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(AuditError::InvalidKeyName(name.chars().take(64).collect()));
    }
    Ok(())
}

/// The key ID of an Ed25519 key: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, big-endian.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let hash = merkle::sha256(&[name.as_bytes(), b"\n", &[ED25519_TYPE], public_key]);
    hash.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b))
}

/// A trusted Ed25519 note key: name, key ID and public key.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    public_key: [u8; 32],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `name` and a 32-byte Ed25519 public key.
    pub fn new(name: &str, public_key: &[u8]) -> Result<Self, AuditError> {
        check_key_name(name)?;
        let public_key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| AuditError::MalformedVerifierKey("Ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::ed25519(name, &public_key)
            .map_err(|_| AuditError::MalformedVerifierKey("not an acceptable Ed25519 public key"))?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
            key,
        })
    }

    /// Parses a verifier key string, `<name>+<hex key ID>+<base64(0x01 || key)>`.
    pub fn from_vkey(vkey: &str) -> Result<Self, AuditError> {
        // The name has no `+`, the base64 may: split twice from the left.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AuditError::MalformedVerifierKey("expected `name+keyid+key`"));
        };
        check_key_name(name)?;
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(AuditError::MalformedVerifierKey("key ID is not 8 lowercase hex digits"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| AuditError::MalformedVerifierKey("key ID is not hex"))?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| AuditError::MalformedVerifierKey("key is not base64"))?;
        let Some((&kind, public_key)) = key.split_first() else {
            return Err(AuditError::MalformedVerifierKey("key is empty"));
        };
        if kind != ED25519_TYPE {
            return Err(AuditError::MalformedVerifierKey(
                "key is not an Ed25519 key (type 0x01)",
            ));
        }
        let verifier = Self::new(name, public_key)?;
        if verifier.key_id != id {
            return Err(AuditError::MalformedVerifierKey(
                "key ID does not match the name and key",
            ));
        }
        Ok(verifier)
    }

    /// The verifier key string, `<name>+<hex key ID>+<base64(0x01 || key)>`.
    pub fn vkey(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ED25519_TYPE);
        key.extend_from_slice(&self.public_key);
        format!("{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(key))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.vkey())
    }
}

/// Signs notes with an Ed25519 key pair under a key name.
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: Ed25519KeyPair,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer for `name` (for checkpoints, the log's origin) with `key`.
    pub fn new(name: &str, key: Ed25519KeyPair) -> Result<Self, AuditError> {
        check_key_name(name)?;
        let public_key = public_key_of(&key)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            key,
        })
    }

    /// The verifier for this signer's notes.
    pub fn verifier(&self) -> Result<NoteVerifier, AuditError> {
        NoteVerifier::new(&self.name, &public_key_of(&self.key)?)
    }

    /// The signed note: `text`, a blank line and one signature line.
    ///
    /// `text` must be non-empty, end in a newline and hold no control
    /// characters other than newline.
    pub fn sign(&self, text: &str) -> Result<String, AuditError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + signature.as_ref().len());
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(signature.as_ref());
        Ok(format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        ))
    }
}

fn public_key_of(key: &Ed25519KeyPair) -> Result<[u8; 32], AuditError> {
    key.public_key()
        .as_ref()
        .try_into()
        .map_err(|_| AuditError::MalformedVerifierKey("Ed25519 key is not 32 bytes"))
}

fn has_forbidden_control(s: &str) -> bool {
    s.chars().any(|c| c < ' ' && c != '\n')
}

fn check_text(text: &str) -> Result<(), AuditError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(AuditError::MalformedNote("text must be non-empty and end in a newline"));
    }
    if has_forbidden_control(text) {
        return Err(AuditError::MalformedNote("text holds a control character"));
    }
    Ok(())
}

/// Verifies a signed note against one trusted key and returns its text
/// (including the final newline).
///
/// Returns the text only if a signature by `verifier` (same name and key
/// ID) verifies and none by it fails; other signatures are skipped.
pub fn open<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, AuditError> {
    if has_forbidden_control(note) {
        return Err(AuditError::MalformedNote("note holds a control character"));
    }
    // The text ends at the last blank line: the text may contain blank
    // lines, the signature block may not.
    let split = note
        .rfind("\n\n")
        .ok_or(AuditError::MalformedNote("no blank line before the signatures"))?;
    let (Some(text), Some(block)) = (note.get(..=split), note.get(split + 2..)) else {
        return Err(AuditError::MalformedNote("no blank line before the signatures"));
    };
    let lines = block
        .strip_suffix('\n')
        .ok_or(AuditError::MalformedNote("signatures must end in a newline"))?;
    if lines.is_empty() {
        return Err(AuditError::MalformedNote("no signature lines"));
    }
    let mut verified = false;
    for (count, line) in lines.split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(AuditError::MalformedNote("too many signatures"));
        }
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(AuditError::MalformedNote(
            "signature line does not start with an em dash and a space",
        ))?;
        let (name, blob) = rest.split_once(' ').ok_or(AuditError::MalformedNote(
            "signature line has no space after the key name",
        ))?;
        check_key_name(name).map_err(|_| AuditError::MalformedNote("signature line has an invalid key name"))?;
        let blob = STANDARD
            .decode(blob)
            .map_err(|_| AuditError::MalformedNote("signature is not base64"))?;
        let Some((id, signature)) = blob.split_first_chunk::<4>() else {
            return Err(AuditError::MalformedNote("signature is shorter than a key ID"));
        };
        if signature.is_empty() {
            return Err(AuditError::MalformedNote("signature is empty"));
        }
        if name != verifier.name || u32::from_be_bytes(*id) != verifier.key_id {
            continue; // another key: not ours to judge
        }
        if verifier
            .key
            .verify(Algorithm::EdDSA, text.as_bytes(), signature)
            .is_err()
        {
            return Err(AuditError::InvalidSignature { key: verifier.label() });
        }
        verified = true;
    }
    if !verified {
        return Err(AuditError::NotSignedByKey { key: verifier.label() });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_refuse_spaces_plus_and_emptiness() {
        assert!(check_key_name("example.com/log42").is_ok());
        for bad in ["", "a b", "a+b", "a\tb", "a\u{a0}b", "a\u{2003}b", "a\nb"] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signer_and_verifier_agree() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let signer = NoteSigner::new("warden.example/audit", key).unwrap();
        let verifier = signer.verifier().unwrap();
        assert_eq!(
            NoteVerifier::from_vkey(&verifier.vkey()).unwrap().key_id(),
            verifier.key_id()
        );
        let note = signer.sign("hello\n").unwrap();
        assert_eq!(open(&note, &verifier).unwrap(), "hello\n");
        assert!(!format!("{signer:?}").contains(&STANDARD.encode(verifier.public_key())));
    }

    #[test]
    fn sign_refuses_bad_texts() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let signer = NoteSigner::new("n", Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()).unwrap();
        for bad in ["", "no newline", "tab\there\n", "nul\0\n"] {
            assert!(signer.sign(bad).is_err(), "{bad:?}");
        }
        assert!(NoteSigner::new("bad name", Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()).is_err());
    }
}
