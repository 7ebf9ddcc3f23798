//! Burn-rate tracking and auto top-up inside the ledger (the public rules are in `crate::burn`
//! and `crate::top_up`). Time comes in as arguments; while no node tracks a burn rate or has a
//! top-up rule, every hook here is one integer compare.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Ledger;
use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo};
use crate::burn::{BurnRate, BurnWindow, depletes_at};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::ids::{HoldId, NodeId};
use crate::store::Committed;
use crate::threshold::Crossings;
use crate::top_up::{TopUp, TopUpApplied, TopUpCapped, TopUpSnapshot};

/// A node's ring of spend buckets (see `crate::burn`).
#[derive(Clone, Debug)]
pub(super) struct BurnTracker {
    pub(super) window: BurnWindow,
    pub(super) width: i64,
    /// Spend per bucket and unit index; bucket `b` (absolute) lives at `b mod len`.
    pub(super) buckets: Box<[[i64; Unit::COUNT]]>,
    /// The newest bucket written (absolute index), `i64::MIN` before the first spend.
    pub(super) head: i64,
}

impl BurnTracker {
    fn new(window: BurnWindow) -> Self {
        BurnTracker {
            window,
            width: window.width_nanos(),
            buckets: vec![[0; Unit::COUNT]; usize::from(window.buckets())].into_boxed_slice(),
            head: i64::MIN,
        }
    }

    fn len(&self) -> i64 {
        self.buckets.len() as i64
    }

    fn slot(&self, bucket: i64) -> usize {
        bucket.rem_euclid(self.len()) as usize
    }

    /// Adds `amount` of `unit` spent at `now`: O(1) plus clearing the buckets that aged out.
    fn add(&mut self, now: i64, unit: Unit, amount: i64) {
        let bucket = now.div_euclid(self.width);
        if self.head == i64::MIN || bucket - self.head >= self.len() {
            self.buckets.fill([0; Unit::COUNT]);
            self.head = bucket;
        } else if bucket > self.head {
            for stale in self.head + 1..=bucket {
                let slot = self.slot(stale);
                self.buckets[slot] = [0; Unit::COUNT];
            }
            self.head = bucket;
        } else if bucket <= self.head - self.len() {
            return; // older than the ring (a clock that went back)
        }
        let slot = self.slot(bucket);
        let cell = &mut self.buckets[slot][unit.index()];
        *cell = cell.saturating_add(amount);
    }

    /// Spend in `unit` in the buckets overlapping `(now - window, now]`.
    fn spent(&self, now: i64, unit: Unit) -> i64 {
        if self.head == i64::MIN {
            return 0;
        }
        let newest = now.div_euclid(self.width).min(self.head);
        let oldest = (now.div_euclid(self.width) - self.len() + 1).max(self.head - self.len() + 1);
        (oldest..=newest)
            .map(|bucket| self.buckets[self.slot(bucket)][unit.index()])
            .fold(0i64, i64::saturating_add)
    }

    fn rate(&self, now: Timestamp, unit: Unit) -> BurnRate {
        BurnRate::new(
            Amount::from_minor(self.spent(now.as_unix_nanos(), unit), unit),
            self.window.window(),
        )
    }
}

/// A node's top-up rule and counters.
pub(super) type TopUpState = TopUpSnapshot;

/// The ledger's burn-rate and top-up bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Timed {
    /// Live nodes that track a burn rate.
    pub(super) burn_nodes: u32,
    /// Live nodes with a top-up rule.
    pub(super) top_up_nodes: u32,
    /// `burn_nodes + top_up_nodes`, shared with the store, which reads its clock on commit and
    /// record only while it is above zero.
    pub(super) cell: Arc<AtomicU32>,
    /// Top-ups applied and not reported yet.
    pub(super) unreported: Vec<TopUpApplied>,
    /// Top-ups a cap refused and not reported yet.
    pub(super) unreported_caps: Vec<TopUpCapped>,
    /// `(node index, window)` of the rules whose refusal in that window was already noted, so
    /// a rule that stays refused is reported once per window, not at every operation. Not
    /// part of the books (see `crate::top_up`).
    pub(super) caps_noted: Vec<(u32, i64)>,
    /// The latest time an operation brought (for balances returned without a clock read).
    pub(super) last_now: Option<Timestamp>,
}

impl Timed {
    /// Forgets that node `index`'s refusal was noted (its rule fired, re-armed or changed).
    fn unnote_cap(&mut self, index: u32) {
        if !self.caps_noted.is_empty() {
            self.caps_noted.retain(|(noted, _)| *noted != index);
        }
    }

    fn publish(&self) {
        self.cell
            .store(self.burn_nodes + self.top_up_nodes, Ordering::Relaxed);
    }
}

impl Ledger {
    /// The counter a store reads to decide whether commits need the time.
    pub(crate) fn timed_cell(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.timed.cell)
    }

    /// Takes over `previous`'s counter (a restore replaced the ledger).
    pub(super) fn adopt_timed(&mut self, previous: &Ledger) {
        self.timed.cell = previous.timed_cell();
        self.timed.publish();
    }

    /// Forgets node `index`'s tracking before the node is removed.
    pub(super) fn forget_timed(&mut self, index: u32) {
        let node = self.node_mut(index);
        let extras = node.extras();
        let (burn, top_up) = (extras.burn.is_some(), extras.top_up.is_some());
        self.timed.unnote_cap(index);
        self.timed.burn_nodes -= u32::from(burn);
        self.timed.top_up_nodes -= u32::from(top_up);
        self.timed.publish();
    }

    // ---- configuration -----------------------------------------------------------------------

    /// Starts or stops burn-rate tracking on a node; returns the previous window.
    pub(crate) fn set_burn_window(
        &mut self,
        id: NodeId,
        window: Option<BurnWindow>,
    ) -> Result<Option<BurnWindow>> {
        let index = self.live(id)?;
        if let Some(window) = window {
            BurnWindow::with_buckets(window.window(), window.buckets())?;
        }
        let node = self.node_mut(index);
        let previous = node.extras_mut().burn.take().map(|tracker| tracker.window);
        node.extras_mut().burn = window.map(|window| Box::new(BurnTracker::new(window)));
        match (previous.is_some(), window.is_some()) {
            (false, true) => self.timed.burn_nodes += 1,
            (true, false) => self.timed.burn_nodes -= 1,
            _ => {}
        }
        self.timed.publish();
        Ok(previous)
    }

    /// Sets or removes a node's top-up rule (fresh counters, armed); returns the previous rule.
    pub(crate) fn set_top_up(&mut self, id: NodeId, rule: Option<TopUp>) -> Result<Option<TopUp>> {
        let index = self.live(id)?;
        if let Some(rule) = rule {
            rule.validate()?;
            let node = self.node(index);
            if node.accounts[rule.unit().index()].limit().is_none() {
                return Err(Error::UnitNotBudgeted {
                    node: node.path.clone(),
                    unit: rule.unit(),
                });
            }
            if rule.horizon().is_some() && node.extras().burn.is_none() {
                return Err(Error::InvalidTopUp {
                    reason: "a predictive rule needs the node to track its burn rate \
                             (set_burn_window first)",
                });
            }
        }
        Ok(self
            .put_top_up(index, rule.map(TopUpSnapshot::new))
            .map(|state| state.rule))
    }

    /// Sets a node's rule state as it is (a restore or a replayed record).
    pub(crate) fn restore_top_up(
        &mut self,
        id: NodeId,
        state: Option<TopUpSnapshot>,
    ) -> Result<()> {
        let index = self.live(id)?;
        if let Some(state) = &state {
            state.rule.validate()?;
            state
                .rule
                .threshold()
                .same_unit(state.total, "a top-up total")?;
        }
        self.put_top_up(index, state);
        Ok(())
    }

    fn put_top_up(&mut self, index: u32, state: Option<TopUpSnapshot>) -> Option<TopUpSnapshot> {
        self.timed.unnote_cap(index);
        let node = self.node_mut(index);
        let previous = node.extras_mut().top_up.take().map(|state| *state);
        node.extras_mut().top_up = state.map(Box::new);
        match (previous.is_some(), state.is_some()) {
            (false, true) => self.timed.top_up_nodes += 1,
            (true, false) => self.timed.top_up_nodes -= 1,
            _ => {}
        }
        self.timed.publish();
        previous
    }

    /// A node's burn window and top-up state (snapshots).
    pub(super) fn timed_config(&self, index: u32) -> (Option<BurnWindow>, Option<TopUpSnapshot>) {
        let node = self.node(index);
        (
            node.extras().burn.as_ref().map(|tracker| tracker.window),
            node.extras().top_up.as_deref().copied(),
        )
    }

    // ---- the operation hooks -----------------------------------------------------------------

    /// Starts an operation on the path of `id` at `now`: evaluates the top-up rules on the
    /// path before the operation's effect.
    #[inline]
    pub(super) fn timed_begin(&mut self, id: NodeId, now: Option<Timestamp>) {
        if self.timed.top_up_nodes == 0 && self.timed.burn_nodes == 0 {
            return;
        }
        self.timed_begin_slow(id, now);
    }

    #[cold]
    fn timed_begin_slow(&mut self, id: NodeId, now: Option<Timestamp>) {
        if let Some(now) = now {
            self.timed.last_now = Some(self.timed.last_now.map_or(now, |last| last.max(now)));
            if let Ok(leaf) = self.live(id) {
                self.evaluate_top_ups(leaf, now);
            }
        }
    }

    /// Ends an operation on the path of `leaf` at `now` that spent `spent` there: adds it to
    /// the burn buckets, evaluates the rules, and annotates `events` with burn rates.
    pub(super) fn timed_end(
        &mut self,
        leaf: u32,
        now: Option<Timestamp>,
        spent: Option<&Cost>,
        events: Option<&mut Crossings>,
    ) {
        if self.timed.top_up_nodes == 0 && self.timed.burn_nodes == 0 {
            return;
        }
        let Some(now) = now else { return };
        if self.nodes[leaf as usize].node.is_none() {
            return;
        }
        if let Some(spent) = spent
            && self.timed.burn_nodes > 0
        {
            let path: Vec<u32> = self.path_indices(leaf).collect();
            for index in path {
                if let Some(tracker) = self
                    .node_mut(index)
                    .extras_if_any()
                    .and_then(|extras| extras.burn.as_mut())
                {
                    for unit in spent.units() {
                        tracker.add(now.as_unix_nanos(), unit, spent.minor(unit));
                    }
                }
            }
        }
        self.evaluate_top_ups(leaf, now);
        if let Some(events) = events
            && self.timed.burn_nodes > 0
        {
            for crossing in events.iter_mut() {
                let (index, unit, _) = crossing.slot();
                if let Some(figures) = self.burn_figures(index, unit, now) {
                    crossing.set_burn(figures.0, figures.1);
                }
            }
        }
    }

    /// Ends a reserve on the path of `id`: evaluates the rules after a granted hold, annotates
    /// its crossings and hands it the unreported top-ups.
    #[inline]
    pub(super) fn timed_reserved(
        &mut self,
        id: NodeId,
        outcome: &mut Result<crate::store::Reservation>,
        now: Option<Timestamp>,
    ) {
        if self.timed_idle() {
            return;
        }
        self.timed_reserved_slow(id, outcome, now);
    }

    /// No burn tracking, no top-up rules and nothing unreported: the timed hooks have nothing
    /// to do.
    #[inline]
    pub(super) fn timed_idle(&self) -> bool {
        self.timed.top_up_nodes == 0
            && self.timed.burn_nodes == 0
            && self.timed.unreported.is_empty()
            && self.timed.unreported_caps.is_empty()
    }

    #[cold]
    fn timed_reserved_slow(
        &mut self,
        id: NodeId,
        outcome: &mut Result<crate::store::Reservation>,
        now: Option<Timestamp>,
    ) {
        if let Ok(granted) = outcome {
            if let Ok(leaf) = self.live(id) {
                self.timed_end(leaf, now, None, Some(&mut granted.events));
            }
            granted.top_ups = self.take_top_ups();
            granted.top_up_caps = self.take_top_up_caps();
        }
    }

    /// Hands the unreported top-ups to an operation's outcome.
    pub(super) fn take_top_ups(&mut self) -> Vec<TopUpApplied> {
        if self.timed.unreported.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut self.timed.unreported)
    }

    /// Hands the unreported refused top-ups to an operation's outcome.
    pub(super) fn take_top_up_caps(&mut self) -> Vec<TopUpCapped> {
        if self.timed.unreported_caps.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut self.timed.unreported_caps)
    }

    // ---- timed operations --------------------------------------------------------------------

    /// [`Ledger::commit`] at `now`: evaluates top-up rules around it and feeds the burn rate.
    pub(crate) fn commit_at(
        &mut self,
        id: HoldId,
        actual: &Cost,
        now: Option<Timestamp>,
    ) -> Result<Committed> {
        if self.timed_idle() {
            // Nothing to evaluate or report around the commit: only `timed_begin`'s reset.
            self.timed_begin(NodeId::new(u32::MAX, 0), None);
            return self.commit(id, actual);
        }
        // Without burn tracking or top-up rules, `timed_begin` and `timed_end` do nothing with
        // the leaf: skip looking the hold up a second time (`commit` reads it).
        let timed = self.timed.top_up_nodes != 0 || self.timed.burn_nodes != 0;
        let (leaf, recorded) = if !timed {
            (None, Cost::new())
        } else {
            match self.hold(id) {
                Ok(hold) => (Some(hold.node), hold.recorded),
                Err(_) => match self.tombstones.get(id) {
                    Some(tombstone) => (self.live(tombstone.node).ok(), tombstone.recorded),
                    None => (None, Cost::new()),
                },
            }
        };
        if let Some(leaf) = leaf {
            let node = NodeId::new(leaf, self.nodes[leaf as usize].serial);
            self.timed_begin(node, now);
        } else {
            self.timed_begin(NodeId::new(u32::MAX, 0), None);
        }
        let mut outcome = self.commit(id, actual);
        let spent_now = matches!(outcome, Ok(_) | Err(Error::OverageRejected { .. }));
        if let Some(leaf) = leaf
            && spent_now
        {
            let mut fresh = Cost::new();
            for unit in actual.units() {
                fresh.set(unit, actual.minor(unit) - recorded.minor(unit));
            }
            let events = outcome.as_mut().ok().map(|committed| &mut committed.events);
            self.timed_end(leaf, now, Some(&fresh), events);
        }
        if let Ok(committed) = &mut outcome {
            committed.top_ups = self.take_top_ups();
            committed.top_up_caps = self.take_top_up_caps();
        }
        outcome
    }

    /// [`Ledger::record`] at `now`: evaluates top-up rules around it and feeds the burn rate.
    pub(crate) fn record_at(
        &mut self,
        id: HoldId,
        partial: &Cost,
        now: Option<Timestamp>,
    ) -> Result<()> {
        let leaf = self.hold(id).ok().map(|hold| hold.node);
        match leaf {
            Some(leaf) => {
                let node = NodeId::new(leaf, self.nodes[leaf as usize].serial);
                self.timed_begin(node, now);
            }
            None => self.timed_begin(NodeId::new(u32::MAX, 0), None),
        }
        self.record(id, partial)?;
        if let Some(leaf) = leaf {
            self.timed_end(leaf, now, Some(partial), None);
        }
        Ok(())
    }

    // ---- inspection --------------------------------------------------------------------------

    /// The burn rate of node `index` in `unit` at `now`, and the projected depletion of its
    /// limit in that unit.
    fn burn_figures(
        &self,
        index: u32,
        unit: Unit,
        now: Timestamp,
    ) -> Option<(BurnRate, Option<Timestamp>)> {
        let node = self.node(index);
        let tracker = node.extras().burn.as_ref()?;
        let rate = tracker.rate(now, unit);
        let account = &node.accounts[unit.index()];
        let depletes = account.limit().and_then(|_| {
            let remaining = account.allowance() - account.spent - account.reserved;
            depletes_at(
                remaining,
                rate.spent().minor_units(),
                tracker.window.window_nanos(),
                now,
            )
        });
        Some((rate, depletes))
    }

    /// Fills a balance's burn fields at `now` (the latest operation's time when `None`).
    pub(super) fn fill_burn(&self, index: u32, balance: &mut Balance, now: Option<Timestamp>) {
        if self.timed.burn_nodes == 0 {
            return;
        }
        let now = now.or(self.timed.last_now).unwrap_or(Timestamp::EPOCH);
        if let Some((rate, depletes)) = self.burn_figures(index, balance.unit, now) {
            balance.burn_rate = Some(rate);
            balance.depletes_at = depletes;
        }
    }

    /// [`Ledger::balance`] with burn figures at `now`.
    pub(crate) fn balance_now(
        &self,
        id: NodeId,
        unit: Unit,
        now: Option<Timestamp>,
    ) -> Result<Balance> {
        let index = self.live(id)?;
        let mut balance = self.balance(id, unit)?;
        self.fill_burn(index, &mut balance, now);
        Ok(balance)
    }

    /// [`Ledger::node_info`] with burn figures at `now`.
    pub(crate) fn node_info_now(&self, id: NodeId, now: Option<Timestamp>) -> Result<NodeInfo> {
        let index = self.live(id)?;
        let mut info = self.node_info(id)?;
        for balance in &mut info.balances {
            self.fill_burn(index, balance, now);
        }
        Ok(info)
    }
}

mod rules;
#[cfg(test)]
mod tests;
