//! Periodic limits inside the ledger: starting periods, rolling them at their boundaries, and
//! funds that apply to the current period only. Time comes in as an argument; while no period
//! has ended, [`Ledger::roll_periods`] costs one integer compare.
//!
//! The public rules are documented in `crate::period`.

use super::{Account, Ledger};
use crate::amount::Amount;
use crate::balance::Balance;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::period::Period;
use crate::policy::{Limit, LimitKind};

/// `Account::period_end` of a periodic limit that has not seen a `now` yet.
pub(super) const NOT_STARTED: Timestamp = Timestamp::from_unix_nanos(i64::MIN);

/// When `roll_periods` has work: the earliest period end (a lower bound) and how many accounts
/// may wait for their first `now`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Due {
    /// `NOT_STARTED` while `unstarted > 0`, else `next_end`: the one value the hot path reads.
    pub(super) at: Timestamp,
    /// Never later than the end of any started period.
    pub(super) next_end: Timestamp,
    /// Accounts that may still be unstarted (an over-count only costs one full scan).
    pub(super) unstarted: u32,
}

impl Default for Due {
    fn default() -> Self {
        Due {
            at: Timestamp::MAX,
            next_end: Timestamp::MAX,
            unstarted: 0,
        }
    }
}

impl Due {
    fn refresh(&mut self) {
        self.at = if self.unstarted > 0 {
            NOT_STARTED
        } else {
            self.next_end
        };
    }
}

impl Account {
    /// Runs `f` on every cap of the unit: this account's own, then the further ones.
    fn each_cap_mut(&mut self, mut f: impl FnMut(&mut Account)) {
        f(self);
        self.extras_mut().iter_mut().for_each(f);
    }

    /// When the current period ends, for a started periodic limit.
    pub(super) fn resets_at(&self) -> Option<Timestamp> {
        let periodic = self.limit().is_some_and(|limit| limit.period().is_some());
        (periodic && self.period_end() != NOT_STARTED).then_some(self.period_end())
    }

    /// Ends the period that ended at or before `now` (and any whole periods after it, which had
    /// no operation) and starts the one containing `now`.
    fn roll(&mut self, limit: Limit, period: Period, now: Timestamp) {
        let next_end = period.end_after(now);
        if self.period_end() == NOT_STARTED {
            self.set_period_end(next_end);
            return;
        }
        let allocation = i128::from(limit.amount().minor_units());
        let cap = i128::from(limit.rollover().cap_minor(limit.amount().minor_units()));
        // A period never starts with less room than its live holds occupy.
        let floor = (i128::from(self.reserved) - allocation).max(0);
        // Live holds count as unused: they carry their money into the new period.
        let unused = (i128::from(self.allowance()) - i128::from(self.spent)).max(0);
        let carry = unused.min(cap).max(floor);
        // Each later period that ended with no operation on this account carries what it was
        // given (its allocation plus its own carry), period by period with the same floor, so
        // one roll over several idle periods ends exactly where a roll at every boundary would:
        // the account's books never depend on whether other nodes were busy meanwhile.
        let idle = if period.end_after(self.period_end()) <= now {
            // The periods that began at or after the old end and have ended by `now`.
            let (old, _, _) = period.id_at(self.period_end());
            let (current, _, _) = period.id_at(now);
            (i128::from(current) - i128::from(old)).max(0)
        } else {
            0
        };
        let carry = carry_over_idle(carry, allocation, cap, floor, idle);
        let most = i128::from(i64::MAX) - allocation;
        self.set_extra(i64::try_from(carry.min(most)).unwrap_or(i64::MAX));
        self.spent = 0;
        self.set_period_end(next_end);
        self.refresh_caps();
        // Spend fell back to zero: the levels re-arm for the new period.
        self.rearm();
    }
}

/// The carry after `idle` periods without an operation, each carrying `allocation` plus the
/// carry before it, capped at `cap` and never below `floor` (the room the live holds occupy):
/// the fixed point of that step, reached in closed form so that a gap of billions of short
/// periods costs no more than one. `carry` starts within `floor..` (and at most `cap`, unless
/// the floor itself is above the cap, where it stays).
fn carry_over_idle(carry: i128, allocation: i128, cap: i128, floor: i128, idle: i128) -> i128 {
    if idle == 0 {
        return carry;
    }
    // Below the cap the carry grows by one allocation a period; `allocation` is never negative
    // and every figure fits in i64, so `idle × allocation` (idle < 2^64) fits in i128.
    carry
        .saturating_add(idle.saturating_mul(allocation))
        .min(cap)
        .max(floor)
}

impl Ledger {
    /// Counts the unstarted periodic accounts of node `index` (after a limit was set).
    pub(super) fn note_unstarted(&mut self, index: u32) {
        let unstarted = self
            .node(index)
            .accounts
            .iter()
            .flat_map(Account::caps)
            .filter(|account| account.period_end() == NOT_STARTED)
            .count() as u32;
        if unstarted > 0 {
            self.periods.unstarted = self.periods.unstarted.saturating_add(unstarted);
            self.periods.refresh();
        }
    }

    /// Rolls every period that ended at or before `now` and starts every period waiting for its
    /// first `now`. Returns `true` if anything changed (a store that logs operations logs a
    /// roll record at `now`, so replay rolls identically). One compare while nothing is due.
    #[inline]
    pub(crate) fn roll_periods(&mut self, now: Timestamp) -> bool {
        if now < self.periods.at {
            return false;
        }
        self.roll_due(now)
    }

    #[cold]
    fn roll_due(&mut self, now: Timestamp) -> bool {
        let mut changed = false;
        let mut next_end = Timestamp::MAX;
        for slot in &mut self.nodes {
            let Some(node) = slot.node.as_mut() else {
                continue;
            };
            for account in node.accounts.iter_mut() {
                account.each_cap_mut(|account| {
                    let Some(limit) = account.limit() else {
                        return;
                    };
                    let Some(period) = limit.period() else {
                        return;
                    };
                    if account.period_end() <= now {
                        account.roll(limit, period, now);
                        changed = true;
                    }
                    next_end = next_end.min(account.period_end());
                });
            }
        }
        self.periods = Due {
            at: next_end,
            next_end,
            unstarted: 0,
        };
        if changed {
            self.bump_epoch();
        }
        changed
    }

    /// Starts the periods of node `id` that wait for their first `now` (right after a limit
    /// with a new period was set on it), without scanning the tree. Returns `true` if any
    /// started.
    pub(crate) fn start_periods(&mut self, id: crate::ids::NodeId, now: Timestamp) -> bool {
        let Ok(index) = self.live(id) else {
            return false;
        };
        let mut started = 0u32;
        let mut next_end = self.periods.next_end;
        for account in self.node_mut(index).accounts.iter_mut() {
            account.each_cap_mut(|account| {
                if account.period_end() != NOT_STARTED {
                    return;
                }
                if let Some(period) = account.limit().and_then(|limit| limit.period()) {
                    account.set_period_end(period.end_after(now));
                    next_end = next_end.min(account.period_end());
                    started += 1;
                }
            });
        }
        self.periods.next_end = next_end;
        self.periods.unstarted = self.periods.unstarted.saturating_sub(started);
        self.periods.refresh();
        started > 0
    }

    /// Whether any account has a periodic limit.
    pub(crate) fn has_periods(&self) -> bool {
        self.nodes
            .iter()
            .filter_map(|slot| slot.node.as_ref())
            .flat_map(|node| node.accounts.iter())
            .flat_map(Account::caps)
            .any(|account| {
                account
                    .limit()
                    .is_some_and(|limit| limit.period().is_some())
            })
    }

    /// After a restore: the due time from the accounts' period ends.
    pub(super) fn recompute_due(&mut self) {
        let mut next_end = Timestamp::MAX;
        let mut unstarted = 0u32;
        for node in self.nodes.iter().filter_map(|slot| slot.node.as_ref()) {
            for account in node.accounts.iter().flat_map(Account::caps) {
                if account
                    .limit()
                    .is_some_and(|limit| limit.period().is_some())
                {
                    if account.period_end() == NOT_STARTED {
                        unstarted += 1;
                    } else {
                        next_end = next_end.min(account.period_end());
                    }
                }
            }
        }
        self.periods = Due {
            at: Timestamp::MAX,
            next_end,
            unstarted,
        };
        self.periods.refresh();
    }

    /// Credit (`add`) or debit of a periodic limit: changes the current period's allowance only.
    /// A credit repays debt first; a debit never leaves less than is spent and held (hard) or
    /// less than zero.
    pub(super) fn fund_period(
        &mut self,
        index: u32,
        amount: Amount,
        add: bool,
    ) -> Result<Balance, Error> {
        let unit = amount.unit();
        let node = self.node(index);
        let account = &node.accounts[unit.index()];
        let delta = amount.minor_units();
        let allowance = account.allowance();
        let hard = account.limit().is_some_and(|l| l.kind() == LimitKind::Hard);
        if add {
            allowance.checked_add(delta).ok_or(Error::Overflow {
                operation: "credit beyond i64 minor units",
            })?;
        } else {
            let lowered = allowance - delta;
            if lowered < 0 || (hard && lowered < account.spent + account.reserved) {
                return Err(Error::LimitBelowUsage {
                    node: node.path.clone(),
                    unit,
                    requested_limit: Amount::from_minor(lowered.max(0), unit),
                    spent: Amount::from_minor(account.spent, unit),
                    reserved: Amount::from_minor(account.reserved, unit),
                });
            }
        }
        self.bump_epoch();
        let account = &mut self.node_mut(index).accounts[unit.index()];
        let extra = account.extra() + if add { delta } else { -delta };
        account.set_extra(extra);
        account.refresh_caps();
        if add {
            account.repay_debt(delta);
        }
        account.rearm();
        Ok(self.balance_at(index, unit))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::amount::Unit;
    use crate::cost::Cost;
    use crate::period::Rollover;
    use crate::policy::Limits;

    const DAY: i64 = 86_400_000_000_000;

    fn usd(minor: i64) -> Amount {
        Amount::from_minor(minor, Unit::Usd)
    }

    fn t(nanos: i64) -> Timestamp {
        Timestamp::from_unix_nanos(nanos)
    }

    #[test]
    fn nothing_is_due_without_periods() {
        let mut ledger = Ledger::new();
        let root = ledger
            .create_node(None, "r", &Limits::from(Limit::hard(usd(10))))
            .unwrap();
        assert!(!ledger.roll_periods(t(5)));
        assert_eq!(ledger.periods.at, Timestamp::MAX);
        assert_eq!(ledger.balance(root, Unit::Usd).unwrap().resets_at, None);
    }

    #[test]
    fn a_roll_resets_spend_keeps_holds_and_debt_and_carries_capped() {
        let limit = Limit::hard(usd(100))
            .per(Period::every(Duration::from_nanos(DAY as u64)).unwrap())
            .with_rollover(Rollover::CarryForward { cap: usd(30) });
        let mut ledger = Ledger::new();
        let root = ledger.create_node(None, "r", &limit.into()).unwrap();
        assert_eq!(ledger.periods.at, NOT_STARTED);
        assert!(ledger.start_periods(root, t(DAY / 2)));
        assert_eq!(ledger.periods.at, t(DAY));
        let spent = ledger.reserve(root, &Cost::from(usd(50))).unwrap();
        ledger.commit(spent.hold, &Cost::from(usd(50))).unwrap();
        let _live = ledger.reserve(root, &Cost::from(usd(20))).unwrap();
        assert!(!ledger.roll_periods(t(DAY - 1)));
        assert!(ledger.roll_periods(t(DAY)));
        let balance = ledger.balance(root, Unit::Usd).unwrap();
        assert_eq!(balance.spent, usd(0));
        assert_eq!(balance.reserved, usd(20));
        // 100 - 50 = 50 unused (the live hold's 20 included), capped at 30.
        assert_eq!(balance.allowance, Some(usd(130)));
        assert_eq!(balance.remaining, Some(usd(110)));
        assert_eq!(balance.resets_at, Some(t(2 * DAY)));
    }

    #[test]
    fn idle_periods_fill_the_carry_and_none_carries_nothing() {
        let period = Period::every(Duration::from_nanos(DAY as u64)).unwrap();
        let mut ledger = Ledger::new();
        let carry = ledger
            .create_node(
                None,
                "carry",
                &Limit::hard(usd(10))
                    .per(period)
                    .with_rollover(Rollover::CapAtAllocation)
                    .into(),
            )
            .unwrap();
        let plain = ledger
            .create_node(None, "plain", &Limit::hard(usd(10)).per(period).into())
            .unwrap();
        ledger.start_periods(carry, t(0));
        ledger.start_periods(plain, t(0));
        let hold = ledger.reserve(carry, &Cost::from(usd(9))).unwrap();
        ledger.commit(hold.hold, &Cost::from(usd(9))).unwrap();
        // Three days later: day 0 left 1, day 1 and day 2 were idle; capped at 10.
        assert!(ledger.roll_periods(t(3 * DAY + 5)));
        let balance = ledger.balance(carry, Unit::Usd).unwrap();
        assert_eq!(balance.allowance, Some(usd(20)));
        assert_eq!(balance.resets_at, Some(t(4 * DAY)));
        assert_eq!(
            ledger.balance(plain, Unit::Usd).unwrap().allowance,
            Some(usd(10))
        );
    }

    /// One roll over idle periods ends where a roll at every boundary ends, also when live
    /// holds keep the carry at its floor (the books of a node must not depend on whether other
    /// nodes had operations in between: a store that rolls lazily, per account, needs it).
    #[test]
    fn a_late_roll_equals_a_roll_at_every_boundary() {
        let period = Period::every(Duration::from_nanos(60)).unwrap();
        let limit = Limit::soft(usd(10))
            .per(period)
            .with_rollover(Rollover::CarryForward { cap: usd(100) });
        let build = || {
            let mut ledger = Ledger::new();
            let node = ledger.create_node(None, "a", &limit.into()).unwrap();
            ledger.start_periods(node, t(0));
            ledger.reserve(node, &Cost::from(usd(50))).unwrap();
            (ledger, node)
        };
        let (mut eager, node) = build();
        assert!(eager.roll_periods(t(90)));
        assert!(eager.roll_periods(t(150)));
        let (mut late, _) = build();
        assert!(late.roll_periods(t(150)));
        let eager = eager.balance(node, Unit::Usd).unwrap();
        let late = late.balance(node, Unit::Usd).unwrap();
        // Day 1 starts at the floor (50 held - 10) = 40 carried; day 2 carries 10 + 40 = 50.
        assert_eq!(eager.allowance, Some(usd(60)));
        assert_eq!(late, eager);
    }

    /// The roll as it was written first: one step per idle period.
    fn carry_by_steps(
        mut carry: i128,
        allocation: i128,
        cap: i128,
        floor: i128,
        idle: u32,
    ) -> i128 {
        for _ in 0..idle {
            carry = (allocation + carry).min(cap).max(floor);
        }
        carry
    }

    proptest::proptest! {
        #[test]
        fn the_closed_form_carry_equals_one_step_per_idle_period(
            allocation in 0i128..1_000,
            cap in 0i128..5_000,
            reserved in 0i128..5_000,
            unused in 0i128..5_000,
            idle in 0u32..40,
        ) {
            let floor = (reserved - allocation).max(0);
            let carry = unused.min(cap).max(floor);
            proptest::prop_assert_eq!(
                carry_over_idle(carry, allocation, cap, floor, i128::from(idle)),
                carry_by_steps(carry, allocation, cap, floor, idle)
            );
        }
    }

    /// A one-nanosecond allocation, a large carry cap and one-microsecond windows idle for a
    /// whole day: 86,400,000,000 idle periods. The roll used to step through them one by one
    /// (under the store's lock) until the carry reached its cap; it is one computation now.
    #[test]
    fn a_day_of_microsecond_windows_rolls_at_once() {
        let period = Period::every(Duration::from_micros(1)).unwrap();
        let limit = Limit::hard(usd(1))
            .per(period)
            .with_rollover(Rollover::CarryForward {
                cap: usd(1_000_000_000_000),
            });
        let mut ledger = Ledger::new();
        let node = ledger.create_node(None, "r", &limit.into()).unwrap();
        ledger.start_periods(node, t(0));
        assert!(ledger.roll_periods(t(DAY)));
        let balance = ledger.balance(node, Unit::Usd).unwrap();
        // The first window left its whole 1 unused, then 86,399,999,999 idle windows add 1 each.
        assert_eq!(balance.allowance, Some(usd(1 + 86_400_000_000)));
        assert_eq!(balance.resets_at, Some(t(DAY + 1_000)));
    }

    #[test]
    fn credits_and_debits_change_the_current_period_only() {
        let limit = Limit::hard(usd(10)).per(Period::every(Duration::from_nanos(100)).unwrap());
        let mut ledger = Ledger::new();
        let root = ledger.create_node(None, "r", &limit.into()).unwrap();
        ledger.start_periods(root, t(0));
        ledger.credit(root, usd(5)).unwrap();
        let hold = ledger.reserve(root, &Cost::from(usd(12))).unwrap();
        assert!(matches!(
            ledger.debit(root, usd(4)),
            Err(Error::LimitBelowUsage { .. })
        ));
        ledger.debit(root, usd(3)).unwrap();
        let balance = ledger.balance(root, Unit::Usd).unwrap();
        assert_eq!(balance.allowance, Some(usd(12)));
        assert_eq!(balance.limit.unwrap().amount(), usd(10));
        ledger.release(hold.hold).unwrap();
        ledger.roll_periods(t(100));
        assert_eq!(
            ledger.balance(root, Unit::Usd).unwrap().allowance,
            Some(usd(10))
        );
    }
}
