//! [`Budget::run`]: reserve an estimate, do the work in a closure, commit what it really cost.

use std::fmt;

use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::Error;
use crate::guard::Guard;

/// Why [`Budget::run`] (or `run_async`) failed: the budget, or the operation itself.
#[derive(Debug)]
pub enum RunError<E> {
    /// The budget refused the reserve (nothing ran), or the commit failed.
    Budget(Error),
    /// The operation returned an error; its hold was released (spend it recorded stays spent).
    Operation(E),
}

impl<E> RunError<E> {
    /// The budget error, if this is one.
    pub fn budget(&self) -> Option<&Error> {
        match self {
            RunError::Budget(error) => Some(error),
            RunError::Operation(_) => None,
        }
    }

    /// The operation's error, if this is one.
    pub fn operation(&self) -> Option<&E> {
        match self {
            RunError::Operation(error) => Some(error),
            RunError::Budget(_) => None,
        }
    }

    /// `true` if the budget said no (see [`Error::is_denial`]).
    pub fn is_denial(&self) -> bool {
        self.budget().is_some_and(Error::is_denial)
    }
}

impl<E: fmt::Display> fmt::Display for RunError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Budget(error) => write!(f, "{error}"),
            RunError::Operation(error) => write!(f, "operation failed: {error}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RunError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Budget(error) => Some(error),
            RunError::Operation(error) => Some(error),
        }
    }
}

impl<E> From<Error> for RunError<E> {
    fn from(error: Error) -> Self {
        RunError::Budget(error)
    }
}

impl Budget {
    /// Reserves `estimate`, runs `work` with the guard, and ends the hold by what `work` returned:
    ///
    /// * `Ok((value, actual))` commits `actual` (the unused rest returns) and gives `value`;
    /// * `Err(error)` releases the hold and gives [`RunError::Operation`]. A failed call that
    ///   still cost money reports it with [`Guard::record`] before returning the error: recorded
    ///   spend stays spent, the rest of the hold returns;
    /// * a panic inside `work` releases the hold (the guard is dropped while unwinding) and keeps
    ///   unwinding.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// type BoxError = Box<dyn std::error::Error + Send + Sync>;
    /// # fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
    ///
    /// let reply = task.run(Amount::usd("0.10")?, |_guard| {
    ///     Ok::<_, BoxError>(("hello".to_owned(), Amount::usd("0.03")?))
    /// });
    /// assert_eq!(reply.unwrap(), "hello");
    ///
    /// // A call that failed after the provider had already charged $0.01:
    /// let failed = task.run(Amount::usd("0.10")?, |guard| -> Result<((), Amount), BoxError> {
    ///     guard.record(Amount::usd("0.01")?)?;
    ///     Err("provider timed out".into())
    /// });
    /// assert!(failed.unwrap_err().operation().is_some());
    /// assert_eq!(task.balance(Unit::Usd)?.spent, Amount::usd("0.04")?);
    /// assert_eq!(task.balance(Unit::Usd)?.reserved, Amount::usd("0")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`RunError::Budget`] when the reserve is refused (as [`Budget::reserve`]; `work` does not
    /// run) or the commit fails (as [`Guard::commit`]; the value is dropped, and for
    /// [`Error::OverageRejected`] the spend is recorded); [`RunError::Operation`] with the
    /// closure's error.
    pub fn run<T, E, C>(
        &self,
        estimate: impl Into<Cost>,
        work: impl FnOnce(&Guard<'_>) -> Result<(T, C), E>,
    ) -> Result<T, RunError<E>>
    where
        C: Into<Cost>,
    {
        let guard = self.reserve(estimate)?;
        let outcome = work(&guard);
        finish(guard, outcome)
    }
}

/// Ends the guard by the outcome of its work.
pub(crate) fn finish<T, E, C: Into<Cost>>(
    guard: Guard<'_>,
    outcome: Result<(T, C), E>,
) -> Result<T, RunError<E>> {
    match outcome {
        Ok((value, actual)) => {
            guard
                .commit(actual)
                .map_err(|error| RunError::Budget(error.into_error()))?;
            Ok(value)
        }
        Err(error) => {
            if let Err(release) = guard.release() {
                tracing::warn!(
                    target: "budget_guard",
                    error = %release,
                    "could not release the hold of a failed run"
                );
            }
            Err(RunError::Operation(error))
        }
    }
}
