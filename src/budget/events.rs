//! Events: subscriptions and delivery.

use std::sync::Arc;

use crate::amount::Unit;
use crate::cost::Cost;
use crate::error::Error;
use crate::event::{DenialReason, DeniedEvent, Event, ThresholdEvent};
use crate::hub::SubscriptionId;
use crate::store::Store;
use crate::threshold::Crossings;

use super::Budget;

impl Budget {
    /// Calls `callback` for every [`Event`] of this node **and every node below it**, in the
    /// thread that caused the event, after the store operation has finished. Callbacks run in
    /// subscription order. A callback may use the budget (reserve, commit, subscribe) without
    /// deadlock; a panicking callback is caught, reported through `tracing` at error level, and
    /// changes nothing. Keep callbacks short: they run inside the reserve or commit that caused
    /// the event.
    ///
    /// The subscription lasts until [`unsubscribe`](Budget::unsubscribe) and is shared by every
    /// handle of this tree derived from the same root (clones, [`at`](Budget::at), ...).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use budget_guard::{Amount, Budget, Event, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?).with_thresholds([50, 80]))
    ///     .build()?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// org.on_event(move |event| {
    ///     if let Event::ThresholdCrossed(crossed) = event {
    ///         log.lock().unwrap().push(crossed.level);
    ///     }
    /// });
    /// org.reserve(Amount::usd("6")?)?.commit(Amount::usd("6")?)?;  // 60 %: level 50
    /// org.reserve(Amount::usd("1")?)?.commit(Amount::usd("1")?)?;  // 70 %: nothing new
    /// org.reserve(Amount::usd("2")?)?.commit(Amount::usd("2")?)?;  // 90 %: level 80
    /// assert_eq!(*seen.lock().unwrap(), [50, 80]);
    /// # Ok(()) }
    /// ```
    pub fn on_event(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        self.shared.on_event(self.node, self.path.clone(), callback)
    }

    /// Calls `callback` whenever this node or a node below it is **refused**: a reserve, or a
    /// [`Guard::record`](crate::Guard::record) that would grow its hold, is denied by a hard
    /// limit, by debt, or by a frozen or closed node ([`Event::ReserveDenied`]), or the overage
    /// policy rejects a commit above its hold ([`Event::OverageRejected`]). An overage the policy
    /// allowed ([`Event::OverageAllowed`]) is not a kill and does not call it. Delivered like
    /// every event (after the store operation, in the caller's thread, panics caught); it is
    /// [`on_event`](Budget::on_event) with that filter, so [`unsubscribe`](Budget::unsubscribe)
    /// ends it.
    ///
    /// The "kill the sandbox and keep its log" pattern:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use budget_guard::{Amount, Budget, Event, Limit, NodeState};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("sandbox-1", Limit::hard(Amount::usd("0.05")?))
    ///     .build()?;
    /// let killed = Arc::new(Mutex::new(Vec::new()));
    /// let (log, control) = (killed.clone(), org.clone());
    /// org.on_exceeded(move |event| {
    ///     // Stop the sandbox (freeze its budget: running guards see `is_cancelled()`), keep
    ///     // its log for the post-mortem.
    ///     let _ = control.store().resolve(event.node())
    ///         .and_then(|id| control.store().set_state(id, NodeState::Frozen));
    ///     log.lock().unwrap().push(event.node().to_owned());
    /// });
    /// let sandbox = org.at("sandbox-1")?;
    /// let meter = sandbox.reserve(Amount::usd("0.01")?)?;
    /// meter.record(Amount::usd("0.03")?)?; // seconds of sandbox time
    /// assert!(meter.record(Amount::usd("0.03")?).is_err()); // would pass $0.05: cut off
    /// assert_eq!(*killed.lock().unwrap(), ["org/sandbox-1"]);
    /// assert!(meter.is_cancelled());
    /// meter.commit(Amount::usd("0.03")?)?; // what ran is still booked
    /// # Ok(()) }
    /// ```
    pub fn on_exceeded(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        self.on_event(move |event| {
            if matches!(event, Event::ReserveDenied(_) | Event::OverageRejected(_)) {
                callback(event);
            }
        })
    }

    /// Like [`on_event`](Budget::on_event), for threshold crossings only.
    pub fn on_threshold(
        &self,
        callback: impl Fn(&ThresholdEvent) + Send + Sync + 'static,
    ) -> SubscriptionId {
        self.on_event(move |event| {
            if let Event::ThresholdCrossed(crossed) = event {
                callback(crossed);
            }
        })
    }

    /// A channel receiving every [`Event`] of this node and the nodes below it, for consumers that
    /// prefer a stream to a callback. The channel is unbounded; the subscription ends when the
    /// receiver is dropped (noticed at the next event) or on
    /// [`unsubscribe`](Budget::unsubscribe).
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Event, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("1")?)).build()?;
    /// let (_id, events) = org.subscribe();
    /// assert!(org.reserve(Amount::usd("2")?).is_err());
    /// assert!(matches!(events.try_recv(), Ok(Event::ReserveDenied(_))));
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> (SubscriptionId, std::sync::mpsc::Receiver<Event>) {
        self.shared.channel(self.node, self.path.clone())
    }

    /// Ends a subscription; `false` if it had already ended.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.shared.unsubscribe(id)
    }

    /// Delivers the threshold crossings a store operation returned.
    #[inline]
    pub(crate) fn deliver_crossings(&self, crossings: &Crossings) {
        if crossings.is_empty() {
            return;
        }
        self.deliver_crossings_slow(crossings);
    }

    #[cold]
    pub(super) fn deliver_crossings_slow(&self, crossings: &Crossings) {
        let at = self.shared.event_time();
        for crossing in crossings {
            tracing::info!(
                target: "budget_guard",
                node = %crossing.node(),
                unit = %crossing.unit(),
                level = crossing.level(),
                spent = %crossing.spent(),
                reserved = %crossing.reserved(),
                limit = %crossing.limit(),
                "threshold crossed"
            );
            if self.shared.listening() {
                let mut event = ThresholdEvent::from_crossing(crossing, at);
                event.top_drivers = self.top_drivers(crossing.node(), crossing.unit());
                self.shared.deliver(&Event::ThresholdCrossed(event));
            }
        }
    }

    /// Delivers a refusal ([`Event::ReserveDenied`]) with the refusing node's figures. Errors
    /// that are not refusals of the budget (bad input, approvals, rate limits) deliver nothing.
    pub(crate) fn deliver_denial(&self, error: &Error, asked: &Cost) {
        let reason = match error {
            Error::BudgetExceeded(_) => DenialReason::Exceeded,
            Error::InDebt { .. } => DenialReason::InDebt,
            Error::Frozen { .. } => DenialReason::Frozen,
            Error::Closed { .. } => DenialReason::Closed,
            _ => return,
        };
        self.shared.wake_cancelled();
        if !self.shared.listening() {
            return;
        }
        let mut event = DeniedEvent {
            node: self.path.clone(),
            limiting_node: self.path.clone(),
            reason,
            requested: *asked,
            unit: None,
            asked: None,
            limit: None,
            spent: None,
            held: None,
            remaining: None,
            debt: None,
            at: self.shared.event_time(),
        };
        match error {
            // The figures the store decided on, inside its operation.
            Error::BudgetExceeded(details) => {
                let unit = details.requested.unit();
                event.limiting_node = details.node.clone();
                event.unit = Some(unit);
                event.asked = Some(details.requested);
                event.limit = Some(details.limit);
                event.spent = Some(details.spent);
                event.held = Some(details.reserved);
                // No debt: a node in debt refuses with `InDebt` before any room is checked.
                event.remaining = Some(details.remaining());
            }
            Error::InDebt { node, debt } => self.fill_denial(&mut event, node, debt.unit()),
            Error::Frozen { node } | Error::Closed { node } => {
                if let Some(unit) = asked.units().next() {
                    self.fill_denial(&mut event, node, unit);
                }
            }
            _ => {}
        }
        self.shared.deliver(&Event::ReserveDenied(event));
    }

    /// Reads the refusing node's balance in `unit` right after a refusal the error carries no
    /// figures for (cold path, only with subscribers).
    #[cold]
    pub(super) fn fill_denial(&self, event: &mut DeniedEvent, node: &Arc<str>, unit: Unit) {
        event.limiting_node = node.clone();
        event.unit = Some(unit);
        event.asked = event.requested.get(unit);
        let store = &self.shared.store;
        let Ok(balance) = store.resolve(node).and_then(|id| store.balance(id, unit)) else {
            return;
        };
        event.limit = balance.allowance;
        event.spent = Some(balance.spent);
        event.held = Some(balance.reserved);
        event.remaining = balance.remaining;
        event.debt = (!balance.debt.is_zero()).then_some(balance.debt);
    }
}
