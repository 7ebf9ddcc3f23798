//! Async helpers (feature `tokio`): [`Budget::run_async`], [`Ladder::fallback_async`] and an
//! async event stream.
//!
//! Guards are `Send` and `Sync`, so they live across `.await` in spawned tasks. Each helper keeps
//! its guard inside the future it returns: when that future is dropped before it finishes (a
//! `tokio::select!` branch that lost, a `tokio::time::timeout` that fired, an aborted task), the
//! guard is dropped with it and the hold is released at once.

use std::borrow::Cow;

use crate::budget::Budget;
use crate::cost::Cost;
use crate::event::Event;
use crate::fallback::{Chain, FallbackError, Served, Step};
use crate::guard::Guard;
use crate::hub::SubscriptionId;
use crate::ladder::{Ladder, Tier};
use crate::run::{RunError, finish};

impl Budget {
    /// The async form of [`Budget::run`]: reserves `estimate` (as
    /// [`reserve_async`](Budget::reserve_async), awaiting async approvers), awaits `work` with
    /// the guard, and commits the actual cost it returns (or releases on error). Dropping the
    /// returned future before it completes releases the hold.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> budget_guard::Result<()> {
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
    /// let reply = task
    ///     .run_async(Amount::usd("0.10")?, async |_guard| {
    ///         // let reply = client.chat(..).await?;
    ///         Ok::<_, std::io::Error>(("hi", Amount::usd("0.02").unwrap()))
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(reply, "hi");
    /// assert_eq!(task.balance(Unit::Usd)?.spent, Amount::usd("0.02")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Budget::run`].
    pub async fn run_async<T, E, C, F>(
        &self,
        estimate: impl Into<Cost>,
        work: F,
    ) -> Result<T, RunError<E>>
    where
        F: AsyncFnOnce(&Guard<'_>) -> Result<(T, C), E>,
        C: Into<Cost>,
    {
        let guard = self.reserve_async(estimate.into()).await?;
        let outcome = work(&guard).await;
        finish(guard, outcome)
    }

    /// A tokio channel receiving every [`Event`] of this node and the nodes below it (see
    /// [`Budget::subscribe`]); await it with `recv()` or wrap it in a stream. The channel is
    /// unbounded; the subscription ends when the receiver is dropped or on
    /// [`unsubscribe`](Budget::unsubscribe).
    pub fn subscribe_async(&self) -> (SubscriptionId, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        self.shared()
            .tokio_channel(self.id(), self.path_arc().clone())
    }
}

impl Ladder {
    /// The async form of [`Ladder::fallback`]: the same order, charges and stopping rules, with
    /// an async call; each tier reserves as [`Budget::reserve_async`] (awaiting async
    /// approvers). Dropping the returned future releases the hold of the attempt in flight.
    ///
    /// # Errors
    /// As [`Ladder::fallback`].
    pub async fn fallback_async<T, E, C, F>(
        &self,
        budget: &Budget,
        retryable: impl Fn(&E) -> bool,
        mut call: F,
    ) -> Result<Served<T, E>, FallbackError<E>>
    where
        F: AsyncFnMut(&Tier, &Guard<'_>) -> Result<(T, C), E>,
        C: Into<Cost>,
    {
        let mut chain = Chain::new(self, budget)?;
        for tier in self.tiers() {
            match chain.admits(tier, budget) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(Step::Next) => continue,
                Err(Step::Done(result)) => return result,
            }
            let reserved = match tier.target(budget) {
                Ok(Cow::Borrowed(target)) => target.reserve_async(tier.estimate()).await,
                Ok(Cow::Owned(target)) => target
                    .reserve_async(tier.estimate())
                    .await
                    .map(Guard::into_owned),
                Err(error) => Err(error),
            };
            let guard = match chain.take(tier, reserved) {
                Ok(Some(guard)) => guard,
                Ok(None) | Err(Step::Next) => continue,
                Err(Step::Done(result)) => return result,
            };
            let outcome = call(tier, &guard).await;
            match chain.settle(tier, guard, outcome, &retryable) {
                Step::Next => continue,
                Step::Done(result) => return result,
            }
        }
        chain.exhausted()
    }
}
