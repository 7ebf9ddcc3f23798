//! [`StoreError`]: a failure inside a store backend, and what a caller may do about it.

/// A failure inside a [`Store`](crate::Store) backend (I/O, a remote server, corruption), with
/// its [`kind`](StoreError::kind): what the caller may do about it.
///
/// # The retry rule
///
/// - [`Transient`](StoreErrorKind::Transient): the operation did not happen; retrying it is
///   safe.
/// - [`OutcomeUnknown`](StoreErrorKind::OutcomeUnknown): the operation may or may not have
///   happened (a timeout after the request was sent, a failed write of its record). Retry only
///   with the *same* [idempotency key](crate::idempotency), so that a retry of an operation that
///   did happen returns its first result instead of applying it twice; without a key, read the
///   books before deciding.
/// - [`Permanent`](StoreErrorKind::Permanent): retrying will fail the same way (corruption, a
///   stopped store, a bug); do not retry.
///
/// ```
/// use budget_guard::{Error, StoreError, StoreErrorKind};
/// let timeout: Error = StoreError::outcome_unknown("redis: timed out after sending").into();
/// assert!(timeout.outcome_unknown());
/// assert!(!timeout.is_transient());
/// let refused: Error = StoreError::transient("redis: connection refused").into();
/// assert!(refused.is_transient());
/// assert_eq!(StoreError::new("corrupt").kind(), StoreErrorKind::Permanent);
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub(super) message: String,
    pub(super) kind: StoreErrorKind,
    #[source]
    pub(super) source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// What a [`StoreError`] means for the operation that failed (see the retry rule on
/// [`StoreError`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The operation did not happen; retrying is safe.
    Transient,
    /// The operation may have happened; retry with the same idempotency key.
    OutcomeUnknown,
    /// Retrying will not help.
    Permanent,
}

impl StoreError {
    /// A [`Permanent`](StoreErrorKind::Permanent) store error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError::of_kind(StoreErrorKind::Permanent, message)
    }

    /// A store error of `kind` with a message.
    pub fn of_kind(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            kind,
            source: None,
        }
    }

    /// A [`Transient`](StoreErrorKind::Transient) store error: the operation did not happen.
    pub fn transient(message: impl Into<String>) -> Self {
        StoreError::of_kind(StoreErrorKind::Transient, message)
    }

    /// An [`OutcomeUnknown`](StoreErrorKind::OutcomeUnknown) store error: the operation may
    /// have happened.
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        StoreError::of_kind(StoreErrorKind::OutcomeUnknown, message)
    }

    /// A [`Permanent`](StoreErrorKind::Permanent) store error: do not retry.
    pub fn permanent(message: impl Into<String>) -> Self {
        StoreError::of_kind(StoreErrorKind::Permanent, message)
    }

    /// A [`Permanent`](StoreErrorKind::Permanent) store error with a message and an underlying
    /// cause (change the kind with [`with_kind`](StoreError::with_kind)).
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            message: message.into(),
            kind: StoreErrorKind::Permanent,
            source: Some(Box::new(source)),
        }
    }

    /// This error with `kind` instead.
    #[must_use]
    pub fn with_kind(mut self, kind: StoreErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// What the failure means for the operation (see the retry rule above).
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }
}
