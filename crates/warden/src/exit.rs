//! Exit statuses: 0 success; 1 a negative answer (a token was rejected, a
//! key-rotation rule refused the action, the audit log failed verification,
//! or the retention rule refused an erasure); 2 anything that kept the
//! command from answering (bad arguments or configuration, missing files,
//! an unreachable database, a wrong master key). A script that treats
//! non-zero as "no" stays fail-closed either way.
//!
//! Errors from the storage crate state facts only; the hints that name a
//! `warden` command or a configuration key to fix them are added here,
//! where the CLI prints them, so that the server never shows them.

use std::fmt;
use std::process::ExitCode;

use warden_keys::KeyError;
use warden_store::StoreError;
use warden_store::audit_verify::VerifyError;

/// A token was checked and rejected; the message is the one-line reason.
#[derive(Debug)]
pub struct Rejected(pub String);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token rejected: {}", self.0)
    }
}

impl std::error::Error for Rejected {}

/// Any other negative answer (a tampered audit log, an erasure the
/// retention rule refuses); the message is printed as is.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Arguments or configuration are wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Prints `err` as one line and picks the exit status.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if let Some(rejected) = err.downcast_ref::<Rejected>() {
        eprintln!("{rejected}");
        return ExitCode::from(1);
    }
    if let Some(refused) = err.downcast_ref::<Refused>() {
        eprintln!("{refused}");
        return ExitCode::from(1);
    }
    eprintln!("error: {err:#}");
    if let Some(hint) = hint(err) {
        eprintln!("hint: {hint}");
    }
    let refused = err.chain().any(|e| {
        e.downcast_ref::<StoreError>()
            .is_some_and(|s| matches!(s, StoreError::Key(k) if k.is_refusal()))
            || e.downcast_ref::<KeyError>().is_some_and(KeyError::is_refusal)
    });
    if refused { ExitCode::from(1) } else { ExitCode::from(2) }
}

/// What to do about `err`, for the storage errors a CLI user can fix with
/// a command or a setting.
fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        let store = e
            .downcast_ref::<StoreError>()
            .or_else(|| match e.downcast_ref::<VerifyError>() {
                Some(VerifyError::Store(s) | VerifyError::Read(s)) => Some(s),
                _ => None,
            })?;
        store_hint(store)
    })
}

fn store_hint(err: &StoreError) -> Option<String> {
    Some(match err {
        StoreError::InsecurePermissions { path, .. } => format!("run `chmod 600 {}`", path.display()),
        StoreError::MasterKeyMismatch { .. } => {
            "set WARDEN_MASTER_KEY or the data dir's master.key to the original key".to_owned()
        }
        StoreError::MasterKeyLost(_) => {
            "restore master.key from the backup taken when it was created, or set WARDEN_MASTER_KEY".to_owned()
        }
        StoreError::NoMasterKey(_) | StoreError::NoDatabase(_) => {
            "create the first key with `warden keys rotate`".to_owned()
        }
        StoreError::NoAuditKey => "create it with `warden audit vkey`".to_owned(),
        StoreError::InvalidAuditOrigin(_) => "set audit.origin to a name without spaces or `+`".to_owned(),
        StoreError::AuditOriginMismatch { stored, .. } => format!("set audit.origin = \"{stored}\""),
        StoreError::CheckpointRefused { .. } => "run `warden audit verify`".to_owned(),
        StoreError::AuditAppend(inner) => return store_hint(inner),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use anyhow::Context as _;

    use super::*;

    #[test]
    fn storage_errors_get_their_cli_hint_wherever_they_sit_in_the_chain() {
        let err = anyhow::Error::new(StoreError::InsecurePermissions {
            path: PathBuf::from("/d/master.key"),
            mode: 0o644,
        })
        .context("opening the data dir");
        assert_eq!(hint(&err).as_deref(), Some("run `chmod 600 /d/master.key`"));
        let err = anyhow::Error::new(VerifyError::Store(StoreError::NoAuditKey));
        assert_eq!(hint(&err).as_deref(), Some("create it with `warden audit vkey`"));
        let err: anyhow::Result<()> = Err(StoreError::AuditOriginMismatch {
            stored: "a.example/log".into(),
            configured: "b".into(),
        })
        .context("loading the audit key");
        assert_eq!(
            hint(&err.unwrap_err()).as_deref(),
            Some("set audit.origin = \"a.example/log\"")
        );
        assert_eq!(hint(&anyhow::Error::new(StoreError::OutOfRange(1))), None);
        assert_eq!(hint(&anyhow::anyhow!("something else")), None);
    }
}
