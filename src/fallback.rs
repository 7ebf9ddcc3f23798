//! Fallback chains: try the tiers of a [`Ladder`] in order until one serves, charging every
//! attempt what it cost and never passing a cap.

use std::fmt;
use std::sync::Arc;

use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::Error;
use crate::guard::Guard;
use crate::ladder::{Ladder, PathView, Tier};

/// What happened on one tier of a fallback chain.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome<E> {
    /// The tier served the call.
    Served,
    /// The budget refused the tier's reserve; nothing ran and nothing was charged.
    Denied(Error),
    /// The tier's usage rule excluded it; nothing ran.
    Skipped,
    /// The call failed; `retryable` says whether the classifier let the chain move on.
    Failed {
        /// The call's error.
        error: E,
        /// Whether the chain moved on to the next tier.
        retryable: bool,
    },
}

/// One attempt of a fallback chain: the tier, what happened, and what it was charged.
#[derive(Debug)]
#[non_exhaustive]
pub struct Attempt<E> {
    /// The tier's name.
    pub tier: Arc<str>,
    /// What happened.
    pub outcome: Outcome<E>,
    /// What the attempt was charged: the committed actual cost when it served, the spend it
    /// recorded with [`Guard::record`] when it failed, zero when it never ran.
    pub charged: Cost,
}

/// A served fallback chain: the value, the tier that served it and every attempt made.
#[derive(Debug)]
#[non_exhaustive]
pub struct Served<T, E> {
    /// The call's result.
    pub value: T,
    /// The name of the tier that served.
    pub tier: Arc<str>,
    /// Every attempt in order, the serving one last.
    pub attempts: Vec<Attempt<E>>,
}

/// A fallback chain that did not serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum FallbackError<E> {
    /// Every tier was denied, skipped, or failed with a retryable error.
    Exhausted {
        /// Every attempt, in order.
        attempts: Vec<Attempt<E>>,
    },
    /// A tier failed with an error the classifier does not retry (the last attempt holds it).
    Failed {
        /// Every attempt, in order.
        attempts: Vec<Attempt<E>>,
    },
    /// The budget failed in a way that is not a denial (bad input, a store failure, or a commit
    /// rejected by its overage policy; that spend is recorded).
    Budget {
        /// The error.
        error: Error,
        /// Every attempt, in order.
        attempts: Vec<Attempt<E>>,
    },
}

impl<E> FallbackError<E> {
    /// Every attempt made, in order.
    pub fn attempts(&self) -> &[Attempt<E>] {
        match self {
            FallbackError::Exhausted { attempts }
            | FallbackError::Failed { attempts }
            | FallbackError::Budget { attempts, .. } => attempts,
        }
    }

    /// The last call error, if any tier ran and failed.
    pub fn last_error(&self) -> Option<&E> {
        self.attempts()
            .iter()
            .rev()
            .find_map(|attempt| match &attempt.outcome {
                Outcome::Failed { error, .. } => Some(error),
                _ => None,
            })
    }
}

impl<E: fmt::Display> fmt::Display for FallbackError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackError::Exhausted { attempts } => {
                write!(f, "no tier served after {} attempts", attempts.len())?;
                if let Some(error) = self.last_error() {
                    write!(f, " (last error: {error})")?;
                }
                Ok(())
            }
            FallbackError::Failed { .. } => match self.last_error() {
                Some(error) => write!(f, "call failed and is not retryable: {error}"),
                None => f.write_str("call failed and is not retryable"),
            },
            FallbackError::Budget { error, .. } => write!(f, "{error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for FallbackError<E> {}

/// The per-tier bookkeeping shared by the blocking and the async chain.
pub(crate) struct Chain<E> {
    pub(crate) attempts: Vec<Attempt<E>>,
    path: Option<PathView>,
}

/// What the chain should do after an attempt.
pub(crate) enum Step<T, E> {
    Next,
    Done(Result<Served<T, E>, FallbackError<E>>),
}

impl<E> Chain<E> {
    pub(crate) fn new(ladder: &Ladder, budget: &Budget) -> Result<Self, FallbackError<E>> {
        let ruled = ladder
            .tiers()
            .iter()
            .any(|tier| tier.usage_below().is_some());
        let mut chain = Chain {
            attempts: Vec::with_capacity(ladder.tiers().len()),
            path: None,
        };
        if ruled {
            chain.path = Some(PathView::read(budget).map_err(|error| chain.budget(error))?);
        }
        Ok(chain)
    }

    fn budget(&mut self, error: Error) -> FallbackError<E> {
        FallbackError::Budget {
            error,
            attempts: std::mem::take(&mut self.attempts),
        }
    }

    fn log(&mut self, tier: &Tier, outcome: Outcome<E>, charged: Cost) {
        self.attempts.push(Attempt {
            tier: tier.name_arc().clone(),
            outcome,
            charged,
        });
    }

    /// Reserves for `tier`, or logs why not. `Err` ends the chain.
    pub(crate) fn reserve<'b, T>(
        &mut self,
        tier: &Tier,
        budget: &'b Budget,
    ) -> Result<Option<Guard<'b>>, Step<T, E>> {
        if !self.admits(tier, budget)? {
            return Ok(None);
        }
        self.take(tier, tier.reserve_on(budget))
    }

    /// `false` (logged as skipped) when `tier`'s usage rule excludes it. A tier that draws from
    /// its own node ([`Tier::drawing_from`]) reads that node's path.
    pub(crate) fn admits<T>(&mut self, tier: &Tier, budget: &Budget) -> Result<bool, Step<T, E>> {
        if tier.usage_below().is_none() {
            return Ok(true);
        }
        let allowed = if tier.node().is_some() {
            let drawn = tier
                .target(budget)
                .and_then(|target| PathView::read(&target));
            match drawn {
                Ok(path) => path.allows(tier),
                Err(error) => return Err(Step::Done(Err(self.budget(error)))),
            }
        } else {
            self.path.as_ref().is_none_or(|path| path.allows(tier))
        };
        if !allowed {
            self.log(tier, Outcome::Skipped, Cost::new());
        }
        Ok(allowed)
    }

    /// Logs the outcome of `tier`'s reserve; `Ok(None)` for a denial, `Err` ends the chain.
    pub(crate) fn take<'b, T>(
        &mut self,
        tier: &Tier,
        reserved: Result<Guard<'b>, Error>,
    ) -> Result<Option<Guard<'b>>, Step<T, E>> {
        match reserved {
            Ok(guard) => Ok(Some(guard)),
            Err(error) if error.is_denial() => {
                self.log(tier, Outcome::Denied(error), Cost::new());
                Ok(None)
            }
            Err(error) => Err(Step::Done(Err(self.budget(error)))),
        }
    }

    /// Ends the attempt's hold by the call's outcome and decides what comes next.
    pub(crate) fn settle<T, C: Into<Cost>>(
        &mut self,
        tier: &Tier,
        guard: Guard<'_>,
        outcome: Result<(T, C), E>,
        retryable: impl Fn(&E) -> bool,
    ) -> Step<T, E> {
        match outcome {
            Ok((value, actual)) => {
                let actual = actual.into();
                match guard.commit(actual) {
                    Ok(committed) => {
                        self.log(tier, Outcome::Served, committed.spent);
                        Step::Done(Ok(Served {
                            value,
                            tier: tier.name_arc().clone(),
                            attempts: std::mem::take(&mut self.attempts),
                        }))
                    }
                    Err(error) => Step::Done(Err(self.budget(error.into_error()))),
                }
            }
            Err(error) => {
                let charged = guard.recorded();
                if let Err(release) = guard.release() {
                    return Step::Done(Err(self.budget(release)));
                }
                let retry = retryable(&error);
                self.log(
                    tier,
                    Outcome::Failed {
                        error,
                        retryable: retry,
                    },
                    charged,
                );
                if retry {
                    Step::Next
                } else {
                    Step::Done(Err(FallbackError::Failed {
                        attempts: std::mem::take(&mut self.attempts),
                    }))
                }
            }
        }
    }

    pub(crate) fn exhausted<T>(&mut self) -> Result<Served<T, E>, FallbackError<E>> {
        Err(FallbackError::Exhausted {
            attempts: std::mem::take(&mut self.attempts),
        })
    }
}

impl Ladder {
    /// Runs `call` on the tiers in order until one serves.
    ///
    /// For each tier: the tier is skipped if its usage rule excludes it; its estimate is
    /// reserved, and a denial moves on to the next tier (nothing ran, nothing charged); then
    /// `call` runs with the tier and the guard. `Ok((value, actual))` commits `actual` and
    /// serves. `Err(error)` releases the hold (spend the call reported with [`Guard::record`]
    /// stays charged) and moves on if `retryable(&error)`, else stops. Every tier reserves
    /// through the store, so the chain can never pass a hard limit, and a failed attempt that
    /// cost money is charged like any other.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Ladder, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let ladder = Ladder::new()
    ///     .tier("primary", Amount::usd("0.10")?)
    ///     .tier("backup", Amount::usd("0.05")?);
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
    ///
    /// let (billed, answer_cost) = (Amount::usd("0.01")?, Amount::usd("0.04")?);
    /// let served = ladder
    ///     .fallback(&task, |error: &&str| error.starts_with("503"), |tier, guard| {
    ///         if tier.name() == "primary" {
    ///             guard.record(billed).map_err(|_| "budget")?; // billed anyway
    ///             return Err("503 overloaded");
    ///         }
    ///         Ok(("an answer", answer_cost))
    ///     })
    ///     .unwrap();
    /// assert_eq!(&*served.tier, "backup");
    /// assert_eq!(served.attempts.len(), 2);
    /// assert_eq!(task.balance(Unit::Usd)?.spent, Amount::usd("0.05")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`FallbackError::Exhausted`] when no tier served, [`FallbackError::Failed`] for an error
    /// the classifier does not retry, [`FallbackError::Budget`] for a budget error that is not a
    /// denial. Each carries the attempt log.
    pub fn fallback<T, E, C>(
        &self,
        budget: &Budget,
        retryable: impl Fn(&E) -> bool,
        mut call: impl FnMut(&Tier, &Guard<'_>) -> Result<(T, C), E>,
    ) -> Result<Served<T, E>, FallbackError<E>>
    where
        C: Into<Cost>,
    {
        let mut chain = Chain::new(self, budget)?;
        for tier in self.tiers() {
            let guard = match chain.reserve(tier, budget) {
                Ok(Some(guard)) => guard,
                Ok(None) => continue,
                Err(Step::Done(result)) => return result,
                Err(Step::Next) => continue,
            };
            let outcome = call(tier, &guard);
            match chain.settle(tier, guard, outcome, &retryable) {
                Step::Next => continue,
                Step::Done(result) => return result,
            }
        }
        chain.exhausted()
    }
}
