//! [`CommitError`]: a failed commit, with the guard back when the hold is still live.

use std::fmt;

use super::Guard;
use crate::error::Error;

/// A failed [`Guard::commit`]: the [`Error`], and the guard itself when the hold is still live
/// (bad input), so the caller can retry. Converts into [`Error`] with `?`.
#[derive(Debug)]
pub struct CommitError {
    pub(super) error: Error,
    pub(super) guard: Option<Box<Guard<'static>>>,
}

impl CommitError {
    /// The error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, dropping the guard (which releases a still-live hold).
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The guard, if its hold is still live and a corrected commit may be retried.
    pub fn into_guard(self) -> Option<Guard<'static>> {
        self.guard.map(|guard| *guard)
    }
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.guard {
            Some(_) => write!(f, "commit refused, hold still live: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for CommitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<CommitError> for Error {
    fn from(error: CommitError) -> Self {
        error.error
    }
}
