//! C2SP tlog checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed
//! tree head of the audit log.
//!
//! ```text
//! <origin>
//! <tree size, decimal, no leading zeros>
//! <root hash, standard base64>
//! [extension lines, each non-empty]
//! ```
//!
//! A checkpoint is the text of a [signed note](crate::note). Warden signs
//! with the origin as the key name, as the spec recommends. Extension lines
//! are kept when parsed and never written by Warden (the spec advises
//! against them: monitors cannot audit them).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::AuditError;
use crate::merkle::{HASH_LEN, Hash};
use crate::note::{self, NoteSigner, NoteVerifier};

/// A tree head: which log, how many leaves, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `warden.example/audit`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root of the first `size` leaves.
    pub root: Hash,
    /// Extension lines after the root, if any (without newlines).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: origin, size, root and extensions, each line ending
    /// in a newline.
    pub fn to_text(&self) -> Result<String, AuditError> {
        // The origin must be a single non-empty line; Warden also keeps it a
        // valid key name, since it signs under it.
        note::check_key_name(&self.origin)
            .map_err(|_| AuditError::MalformedCheckpoint("origin must be non-empty, without spaces or `+`"))?;
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            if line.is_empty() || line.contains('\n') {
                return Err(AuditError::MalformedCheckpoint(
                    "extension lines must be single non-empty lines",
                ));
            }
            text.push_str(line);
            text.push('\n');
        }
        Ok(text)
    }

    /// Parses a checkpoint note text (already verified).
    pub fn from_text(text: &str) -> Result<Self, AuditError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(AuditError::MalformedCheckpoint("text does not end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(AuditError::MalformedCheckpoint("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(AuditError::MalformedCheckpoint("origin is empty"));
        }
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(AuditError::MalformedCheckpoint("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The signed note of this checkpoint.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, AuditError> {
        signer.sign(&self.to_text()?)
    }

    /// Verifies a signed checkpoint note with `verifier` and parses it.
    pub fn open(note_text: &str, verifier: &NoteVerifier) -> Result<Self, AuditError> {
        Self::from_text(note::open(note_text, verifier)?)
    }
}

fn parse_size(line: &str) -> Result<u64, AuditError> {
    let canonical =
        !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(AuditError::MalformedCheckpoint(
            "size is not a decimal number without leading zeros",
        ));
    }
    line.parse()
        .map_err(|_| AuditError::MalformedCheckpoint("size does not fit in 64 bits"))
}

fn parse_root(line: &str) -> Result<Hash, AuditError> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| AuditError::MalformedCheckpoint("root is not base64"))?;
    <[u8; HASH_LEN]>::try_from(bytes.as_slice()).map_err(|_| AuditError::MalformedCheckpoint("root is not 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    #[test]
    fn parses_the_spec_example_body() {
        let text = format!("example.com/behind-the-sofa\n20852163\n{ROOT_B64}\n");
        let cp = Checkpoint::from_text(&text).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20_852_163);
        assert_eq!(STANDARD.encode(cp.root), ROOT_B64);
        assert!(cp.extensions.is_empty());
        assert_eq!(cp.to_text().unwrap(), text);
    }

    #[test]
    fn keeps_extension_lines() {
        let text = format!("o\n0\n{ROOT_B64}\next one\next two\n");
        let cp = Checkpoint::from_text(&text).unwrap();
        assert_eq!(cp.extensions, ["ext one", "ext two"]);
        assert_eq!(cp.to_text().unwrap(), text);
    }

    #[test]
    fn refuses_malformed_texts() {
        let bad = [
            format!("o\n1\n{ROOT_B64}"),                      // no final newline
            "o\n1\n".to_owned(),                              // no root
            format!("\n1\n{ROOT_B64}\n"),                     // empty origin
            format!("o\n01\n{ROOT_B64}\n"),                   // leading zero
            format!("o\n+1\n{ROOT_B64}\n"),                   // sign
            format!("o\n-1\n{ROOT_B64}\n"),                   // negative
            format!("o\n 1\n{ROOT_B64}\n"),                   // space
            format!("o\n18446744073709551616\n{ROOT_B64}\n"), // 2^64
            "o\n1\nAAAA\n".to_owned(),                        // short root
            format!("o\n1\n{}\n", &ROOT_B64[..43]),           // unpadded
            format!("o\n1\n{ROOT_B64}\n\next\n"),             // empty extension line
        ];
        for text in bad {
            assert!(Checkpoint::from_text(&text).is_err(), "{text:?}");
        }
        assert!(Checkpoint::new("has space", 1, [0; 32]).to_text().is_err());
        assert!(
            Checkpoint {
                extensions: vec![String::new()],
                ..Checkpoint::new("o", 1, [0; 32])
            }
            .to_text()
            .is_err()
        );
    }
}
