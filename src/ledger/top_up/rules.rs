//! Evaluating top-up rules after an operation, and replaying the top-ups a log recorded.

use crate::amount::Amount;
use crate::balance::Balance;
use crate::burn::depletes_at;
use crate::clock::Timestamp;
use crate::ids::NodeId;
use crate::ledger::Ledger;
use crate::top_up::{TopUp, TopUpApplied, TopUpCap, TopUpCapped, TopUpReason, TopUpSnapshot};

impl Ledger {
    pub(super) fn evaluate_top_ups(&mut self, leaf: u32, now: Timestamp) {
        if self.timed.top_up_nodes == 0 {
            return;
        }
        let path: Vec<u32> = self
            .path_indices(leaf)
            .filter(|index| self.node(*index).extras().top_up.is_some())
            .collect();
        for index in path {
            self.evaluate_one(index, now);
        }
    }

    /// Why node `index`'s rule should fire at `now`, if it should.
    pub(super) fn condition(
        &self,
        index: u32,
        rule: &TopUp,
        now: Timestamp,
    ) -> Option<TopUpReason> {
        let node = self.node(index);
        let unit = rule.unit();
        let account = &node.accounts[unit.index()];
        account.limit()?;
        let remaining = i128::from(account.allowance())
            - i128::from(account.spent)
            - i128::from(account.reserved);
        if remaining < i128::from(rule.threshold().minor_units()) {
            return Some(TopUpReason::Below);
        }
        let horizon = rule.horizon_nanos()?;
        let tracker = node.extras().burn.as_ref()?;
        let spent = tracker.spent(now.as_unix_nanos(), unit);
        // When `remaining` reaches the threshold at this burn rate, not when it reaches zero:
        // the rule is there to keep the node above the threshold.
        let above_threshold = remaining - i128::from(rule.threshold().minor_units());
        let at = depletes_at(
            i64::try_from(above_threshold).unwrap_or(i64::MAX),
            spent,
            tracker.window.window_nanos(),
            now,
        )?;
        (at.as_unix_nanos() <= now.as_unix_nanos().saturating_add(horizon))
            .then_some(TopUpReason::Projected)
    }

    pub(super) fn evaluate_one(&mut self, index: u32, now: Timestamp) {
        let Some(mut state) = self.node(index).extras().top_up.as_deref().copied() else {
            return;
        };
        let rule = state.rule;
        let id = NodeId::new(index, self.nodes[index as usize].serial);
        let Some(reason) = self.condition(index, &rule, now) else {
            if !state.armed {
                state.armed = true;
                self.put_state(index, state);
                self.timed.unnote_cap(index);
            }
            return;
        };
        if !state.armed {
            return;
        }
        let window = rule.window_at(now);
        if window > state.window {
            state.window = window;
            state.count = 0;
            state.total = Amount::zero(rule.unit());
        }
        if let Some(cap) = refusing_cap(&rule, &state) {
            // Stays armed: fires once a later window allows it.
            self.note_cap(index, &state, cap, reason, now);
            return;
        }
        self.timed.unnote_cap(index);
        let Ok(balance) = self.credit(id, rule.amount()) else {
            return; // the limit was removed or would overflow: nothing to top up
        };
        state.count = state.count.saturating_add(1);
        state.total = Amount::from_minor(
            state
                .total
                .minor_units()
                .saturating_add(rule.amount().minor_units()),
            rule.unit(),
        );
        state.armed = self.condition(index, &rule, now).is_none();
        self.put_state(index, state);
        self.timed
            .unreported
            .push(applied(&balance, rule.amount(), reason, now, state.count));
    }

    /// Reports that `cap` refused node `index`'s top-up at `now`, once per window.
    pub(super) fn note_cap(
        &mut self,
        index: u32,
        state: &TopUpSnapshot,
        cap: TopUpCap,
        reason: TopUpReason,
        now: Timestamp,
    ) {
        let noted = (index, state.window);
        if self.timed.caps_noted.contains(&noted) {
            return;
        }
        self.timed.unnote_cap(index);
        self.timed.caps_noted.push(noted);
        let rule = state.rule;
        let node = self.node(index);
        let account = &node.accounts[rule.unit().index()];
        let remaining = (i128::from(account.allowance())
            - i128::from(account.spent)
            - i128::from(account.reserved))
        .clamp(0, i128::from(i64::MAX)) as i64;
        self.timed.unreported_caps.push(TopUpCapped {
            node: node.path.clone(),
            cap,
            reason,
            wanted: rule.amount(),
            count: state.count,
            total: state.total,
            remaining: Amount::from_minor(remaining, rule.unit()),
            window_ends_at: rule.window_end(now),
            capped_at: now,
        });
    }

    pub(super) fn put_state(&mut self, index: u32, state: TopUpSnapshot) {
        if let Some(slot) = self
            .node_mut(index)
            .extras_if_any()
            .and_then(|extras| extras.top_up.as_deref_mut())
        {
            *slot = state;
        }
    }
}

/// The cap that refuses one more top-up of `state.rule` in the current window, if any.
pub(super) fn refusing_cap(rule: &TopUp, state: &TopUpSnapshot) -> Option<TopUpCap> {
    if let Some(max) = rule.max_count()
        && state.count >= max
    {
        return Some(TopUpCap::Count { max });
    }
    rule.max_total()
        .filter(|max| {
            i128::from(state.total.minor_units()) + i128::from(rule.amount().minor_units())
                > i128::from(max.minor_units())
        })
        .map(|max| TopUpCap::Total { max })
}

pub(super) fn applied(
    balance: &Balance,
    added: Amount,
    reason: TopUpReason,
    at: Timestamp,
    count: u32,
) -> TopUpApplied {
    TopUpApplied {
        node: balance.node.clone(),
        added,
        limit: balance
            .limit
            .map_or(Amount::zero(added.unit()), |limit| limit.amount()),
        remaining: balance.remaining.unwrap_or(Amount::zero(added.unit())),
        reason,
        applied_at: at,
        count,
    }
}
