//! Exit statuses: 0 success; 1 a negative answer (a token was rejected, a
//! key-rotation rule refused the action, the audit log failed verification,
//! or the retention rule refused an erasure); 2 anything that kept the
//! command from answering (bad arguments or configuration, missing files,
//! an unreachable database, a wrong master key). A script that treats
//! non-zero as "no" stays fail-closed either way.

use std::fmt;
use std::process::ExitCode;

use warden_keys::KeyError;
use warden_store::StoreError;

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
    let refused = err.chain().any(|e| {
        e.downcast_ref::<StoreError>()
            .is_some_and(|s| matches!(s, StoreError::Key(k) if k.is_refusal()))
            || e.downcast_ref::<KeyError>().is_some_and(KeyError::is_refusal)
    });
    if refused { ExitCode::from(1) } else { ExitCode::from(2) }
}
