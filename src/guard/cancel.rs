//! Whether a guard's hold should stop: cancellation by state, spend, debt or expiry.

use std::sync::atomic::Ordering;

use super::Guard;
use crate::cancel::Cancellation;

impl<'a> Guard<'a> {
    /// `true` if the work under this guard should stop; see [`cancellation`](Guard::cancellation)
    /// for exactly what counts. Cheap enough to call in a loop: while nothing on the store
    /// changed that could cancel a hold, it is one atomic load (the store's cancel epoch, see
    /// [`Store::cancel_epoch`](crate::Store::cancel_epoch)); only after such a change does it
    /// ask the store (one short lock).
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, NodeState};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("sandbox", Limit::hard(Amount::usd("1")?))
    ///     .build()?;
    /// let sandbox = org.at("sandbox")?;
    /// let run = sandbox.reserve(Amount::usd("0.50")?)?;
    /// assert!(!run.is_cancelled());
    /// org.set_state(NodeState::Frozen)?; // the operator's kill switch
    /// assert!(run.is_cancelled()); // the worker loop notices and stops...
    /// run.commit(Amount::usd("0.20")?)?; // ...and still books what it spent
    /// # Ok(()) }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.cancellation().is_some()
    }

    /// Why the work under this guard should stop, or `None` if it may go on:
    ///
    /// * [`Cancellation::Frozen`] / [`Cancellation::Closed`]: the guard's node or an ancestor is
    ///   frozen or closed (the nearest one is named). Lifting the state lifts the cancellation.
    /// * [`Cancellation::Expired`]: the hold passed its deadline and was reclaimed.
    /// * [`Cancellation::Exhausted`]: a node on the path has a *hard* limit in one of the
    ///   hold's units that real spend has used up (`spent + debt ≥ limit`; reservations do not
    ///   count, so a hold that reserved the last of a budget is not cancelled by it), or is in
    ///   debt.
    /// * [`Cancellation::Ended`]: the hold ended behind the guard's back (through the store
    ///   directly, or a restore), or the store failed to answer (reported through `tracing`).
    ///
    /// A hold past its deadline that was not reclaimed yet is not cancelled. Cost as
    /// [`is_cancelled`](Guard::is_cancelled).
    pub fn cancellation(&self) -> Option<Cancellation> {
        let store = self.budget.store();
        let epoch = store.cancel_epoch();
        if epoch.is_some_and(|epoch| epoch == self.clear_at.load(Ordering::Relaxed)) {
            return None;
        }
        match store.cancellation(self.id()) {
            Ok(None) => {
                if let Some(epoch) = epoch {
                    self.clear_at.store(epoch, Ordering::Relaxed);
                }
                None
            }
            Ok(Some(reason)) => Some(reason),
            Err(error) => {
                tracing::warn!(
                    target: "budget_guard",
                    hold = %self.id(),
                    %error,
                    "the store cannot say whether a hold is cancelled; treating it as ended"
                );
                Some(Cancellation::Ended)
            }
        }
    }

    /// Completes when the work under this guard should stop (feature `tokio`), with the
    /// [`Cancellation`]: for `select!` next to the work itself. Changes made through handles of
    /// this guard's tree ([`Budget::set_state`](crate::Budget::set_state), expiries and sweeps,
    /// denials, overages, limit changes) wake it at once; anything else (another process, the
    /// [`Store`](crate::Store) used directly, spend reaching a limit exactly) is noticed within
    /// [`CANCEL_POLL`](crate::expiry::CANCEL_POLL).
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Cancellation, Limit, NodeState};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?)).build()?;
    /// let run = org.reserve_owned(Amount::usd("1")?)?;
    /// let operator = org.clone();
    /// tokio::spawn(async move { operator.set_state(NodeState::Closed) });
    /// let reason = run.cancelled().await; // in real code: select! against the work
    /// assert_eq!(reason, Cancellation::Closed { node: "org".into() });
    /// run.commit(Amount::usd("0.10")?)?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn cancelled(&self) -> Cancellation {
        let wake = self.budget.shared().cancel_wakeup();
        loop {
            let mut notified = std::pin::pin!(wake.notified());
            notified.as_mut().enable();
            if let Some(reason) = self.cancellation() {
                return reason;
            }
            let _ = tokio::time::timeout(crate::expiry::CANCEL_POLL, notified).await;
        }
    }
}
