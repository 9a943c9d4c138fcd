//! Exit statuses: 0 success, 1 a negative answer (a token was rejected, a
//! rule refused an action, an operation failed), 2 a usage or
//! configuration error.

use std::fmt;
use std::process::ExitCode;

/// A token was checked and rejected; the message is the one-line reason.
#[derive(Debug)]
pub struct Rejected(pub String);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token rejected: {}", self.0)
    }
}

impl std::error::Error for Rejected {}

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
    eprintln!("error: {err:#}");
    if err.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}
