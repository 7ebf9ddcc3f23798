//! One node's figures in one unit (`Account`): its caps, room and threshold arithmetic.

use std::sync::Arc;

use super::period;
use crate::amount::{Amount, Unit};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::policy::{Limit, LimitKind, Limits};
use crate::threshold::{Alarm, Crossings, ThresholdCrossing};

/// One node's figures in one unit, in minor units.
///
/// The account's own limit is the unit's first cap (it governs overage policy, debt, credits
/// and threshold levels). Further caps of the same unit with other periods (daily *and* weekly
/// *and* monthly) live in the account's `Rules`, each an `Account` of its own with its own
/// spent-this-period; `reserved` is mirrored into each, `debt` stays here.
///
/// Layout (issue 16): the figures the reserve and commit walks read and write are inline; a
/// plain limit (`Limit::hard(amount)` or `Limit::soft(amount)`, nothing else) is kept as its
/// kind alone, its amount being the cap; anything more (a richer limit, a period and its extra,
/// further caps) lives behind one optional box, so a node with one plain limit allocates
/// nothing for it.
#[derive(Clone, Debug)]
pub(super) struct Account {
    pub(super) spent: i64,
    pub(super) reserved: i64,
    pub(super) debt: i64,
    /// The limit as plain integers for the reserve walk: the hard cap (`i64::MAX` without one)
    /// and the soft cap (likewise). Change only through [`Account::set_limit`] and
    /// [`Account::refresh_caps`], which keep them in step with the limit.
    pub(super) hard_cap: i64,
    pub(super) soft_cap: i64,
    /// Which threshold levels of the limit are crossed, and when to look again.
    pub(super) alarm: Alarm,
    unit: Unit,
    /// The limit when it is plain and `rules` is `None`: `Limit::hard(hard_cap)` or
    /// `Limit::soft(soft_cap)` in `unit`.
    plain: Option<LimitKind>,
    /// Everything beyond a plain limit; `None` keeps the usual account free of allocations.
    rules: Option<Box<Rules>>,
}

/// What an account keeps beyond its inline figures (see [`Account`]).
#[derive(Clone, Debug)]
struct Rules {
    /// The unit's first cap, if any (`Account::plain` is `None` while boxed).
    limit: Option<Limit>,
    /// What the current period allows beyond the allocation (`limit.amount()`): carried in by a
    /// rollover, plus credits, minus debits, this period. Zero without a period; part of the caps.
    extra: i64,
    /// When the current period ends: `Timestamp::MAX` without a period, `period::NOT_STARTED`
    /// before the first `now` reached the account.
    period_end: Timestamp,
    /// The unit's further caps (other periods), if any.
    more: Option<Box<[Account]>>,
}

/// The kind of `limit` if it is plain: exactly `Limit::hard(amount)` or `Limit::soft(amount)`.
fn plain_kind(limit: &Limit) -> Option<LimitKind> {
    let kind = limit.kind();
    let plain = match kind {
        LimitKind::Hard => Limit::hard(limit.amount()),
        LimitKind::Soft => Limit::soft(limit.amount()),
    };
    (plain == *limit).then_some(kind)
}

/// What an operation does about threshold levels on the accounts it changes. Levels re-arm only
/// where spend can fall back below them (period resets, credits, new limits: see
/// [`Account::rearm`]), never on a reserve, release or commit.
pub(crate) enum Scan<'a> {
    /// Nothing: spend did not rise (a release), or it rose where the caller cannot report it
    /// and the next reporting operation does.
    Skip,
    /// Report the levels reached since they were last armed into the given list.
    Collect(&'a mut Crossings),
}

impl Account {
    /// An account of `unit` with no limit and no figures.
    pub(super) const fn unused(unit: Unit) -> Self {
        Account {
            spent: 0,
            reserved: 0,
            debt: 0,
            hard_cap: i64::MAX,
            soft_cap: i64::MAX,
            alarm: Alarm::IDLE,
            unit,
            plain: None,
            rules: None,
        }
    }

    /// The unit of the account's figures.
    #[inline]
    pub(super) fn unit(&self) -> Unit {
        self.unit
    }

    /// The unit's first cap, if any.
    #[inline]
    pub(super) fn limit(&self) -> Option<Limit> {
        if let Some(rules) = self.rules.as_deref() {
            return rules.limit;
        }
        self.plain.map(|kind| match kind {
            LimitKind::Hard => Limit::hard(Amount::from_minor(self.hard_cap, self.unit)),
            LimitKind::Soft => Limit::soft(Amount::from_minor(self.soft_cap, self.unit)),
        })
    }

    /// The rules box, created (holding the current limit) if the account had none.
    fn rules_mut(&mut self) -> &mut Rules {
        if self.rules.is_none() {
            let limit = self.limit();
            self.plain = None;
            self.rules = Some(Box::new(Rules {
                limit,
                extra: 0,
                period_end: Timestamp::MAX,
                more: None,
            }));
        }
        self.rules.as_deref_mut().expect("just created")
    }

    /// What the current period allows beyond the allocation: carried in by a rollover, plus
    /// credits, minus debits, this period. Zero without a period; part of the caps.
    #[inline]
    pub(super) fn extra(&self) -> i64 {
        self.rules.as_deref().map_or(0, |rules| rules.extra)
    }

    /// Sets [`Account::extra`] (the caller refreshes the caps).
    pub(super) fn set_extra(&mut self, extra: i64) {
        if extra != 0 || self.rules.is_some() {
            self.rules_mut().extra = extra;
        }
    }

    /// When the current period ends: `Timestamp::MAX` without a period,
    /// `period::NOT_STARTED` before the first `now` reached the account.
    #[inline]
    pub(super) fn period_end(&self) -> Timestamp {
        self.rules
            .as_deref()
            .map_or(Timestamp::MAX, |rules| rules.period_end)
    }

    /// Sets [`Account::period_end`].
    pub(super) fn set_period_end(&mut self, end: Timestamp) {
        if end != Timestamp::MAX || self.rules.is_some() {
            self.rules_mut().period_end = end;
        }
    }

    /// The unit's further caps (other periods), if any: `None` for the usual one-cap account
    /// (one pointer test on the reserve walk).
    #[inline]
    pub(super) fn more(&self) -> Option<&[Account]> {
        self.rules
            .as_deref()
            .and_then(|rules| rules.more.as_deref())
    }

    /// Takes the further caps out (the account keeps none).
    pub(super) fn take_more(&mut self) -> Option<Box<[Account]>> {
        self.rules
            .as_deref_mut()
            .and_then(|rules| rules.more.take())
    }

    /// Replaces the further caps.
    pub(super) fn set_more(&mut self, more: Option<Box<[Account]>>) {
        if more.is_some() || self.rules.is_some() {
            self.rules_mut().more = more;
        }
    }

    /// The further caps of this unit (other periods); empty for the usual one-cap account.
    pub(super) fn extras(&self) -> &[Account] {
        self.more().unwrap_or(&[])
    }

    pub(super) fn extras_mut(&mut self) -> &mut [Account] {
        self.rules
            .as_deref_mut()
            .and_then(|rules| rules.more.as_deref_mut())
            .unwrap_or(&mut [])
    }

    /// Every cap of the unit: this account's own, then the further ones.
    pub(super) fn caps(&self) -> impl Iterator<Item = &Account> {
        std::iter::once(self).chain(self.extras())
    }

    /// Cap `position` of [`Account::caps`].
    pub(super) fn cap(&self, position: usize) -> &Account {
        match position {
            0 => self,
            _ => &self.extras()[position - 1],
        }
    }

    /// Moves `delta` into (or out of) the holds, on every cap.
    #[inline]
    pub(super) fn add_reserved(&mut self, delta: i64) {
        self.reserved += delta;
        if self.rules.is_some() {
            self.extras_mut()
                .iter_mut()
                .for_each(|cap| cap.reserved += delta);
        }
    }

    /// Records `delta` of spend on every cap (each counts it in its own period).
    #[inline]
    pub(super) fn add_spent(&mut self, delta: i64) {
        self.spent += delta;
        if self.rules.is_some() {
            self.extras_mut()
                .iter_mut()
                .for_each(|cap| cap.spent += delta);
        }
    }

    /// Ends `outstanding` of a hold with `within` of it spent, on every cap, in one pass; returns
    /// whether spend has now reached a hard cap (any period's). What a commit does per node:
    /// [`Account::add_reserved`], [`Account::add_spent`] and [`Account::spent_out`] at once,
    /// testing for further caps once instead of three times.
    #[inline]
    pub(super) fn settle(&mut self, outstanding: i64, within: i64) -> bool {
        self.reserved -= outstanding;
        self.spent += within;
        let mut out = self.spent >= self.hard_cap;
        if self.rules.is_some() {
            for cap in self.extras_mut() {
                cap.reserved -= outstanding;
                cap.spent += within;
                out |= cap.spent >= cap.hard_cap;
            }
        }
        out
    }

    /// Whether spend has reached a hard cap (any period's).
    #[inline]
    pub(super) fn spent_out(&self) -> bool {
        self.spent >= self.hard_cap || self.extras().iter().any(|cap| cap.spent >= cap.hard_cap)
    }

    /// Fails with `Overflow` when `spent + reserved + debt + extra` leaves `i64` minor units, so
    /// that recording `extra` more spend cannot overflow any figure of this account.
    pub(super) fn check_room_for_spend(&self, extra: i64) -> Result<(), Error> {
        let fits = |cap: &Account| {
            cap.spent
                .checked_add(cap.reserved)
                .and_then(|total| total.checked_add(self.debt))
                .and_then(|total| total.checked_add(extra))
                .is_some()
        };
        if self.caps().all(fits) {
            return Ok(());
        }
        Err(Error::Overflow {
            operation: "commit beyond i64 minor units",
        })
    }

    /// Sets the limit and the integer caps derived from it. A limit of another period (or none)
    /// drops the current period's extra and starts a new period at the next `now`.
    pub(super) fn set_limit(&mut self, limit: Option<Limit>) {
        let period = limit.and_then(|limit| limit.period());
        let (mut extra, mut period_end) = (self.extra(), self.period_end());
        if period.is_none() || self.limit().and_then(|old| old.period()) != period {
            extra = 0;
            period_end = match period {
                Some(_) => period::NOT_STARTED,
                None => Timestamp::MAX,
            };
        }
        let more = self.take_more();
        self.rules = None;
        self.plain = None;
        match limit.as_ref().and_then(plain_kind) {
            Some(kind) if extra == 0 && period_end == Timestamp::MAX && more.is_none() => {
                // Plain: the kind inline, the amount is the cap.
                let amount = limit.map_or(0, |limit| limit.amount().minor_units());
                self.plain = Some(kind);
                self.hard_cap = if kind == LimitKind::Hard {
                    amount
                } else {
                    i64::MAX
                };
                self.soft_cap = if kind == LimitKind::Soft {
                    amount
                } else {
                    i64::MAX
                };
            }
            _ => {
                if limit.is_some() || extra != 0 || period_end != Timestamp::MAX || more.is_some() {
                    self.rules = Some(Box::new(Rules {
                        limit,
                        extra,
                        period_end,
                        more,
                    }));
                }
                self.refresh_caps();
            }
        }
    }

    /// Recomputes the integer caps from the limit and the period's extra.
    pub(super) fn refresh_caps(&mut self) {
        let allowance = self.allowance();
        let limit = self.limit();
        let cap = |kind| match limit {
            Some(limit) if limit.kind() == kind => allowance,
            _ => i64::MAX,
        };
        self.hard_cap = cap(LimitKind::Hard);
        self.soft_cap = cap(LimitKind::Soft);
    }

    /// What the limit allows in the current period: the allocation plus the period's extra
    /// (never negative; zero without a limit).
    pub(super) fn allowance(&self) -> i64 {
        self.limit().map_or(0, |limit| {
            limit
                .amount()
                .minor_units()
                .saturating_add(self.extra())
                .max(0)
        })
    }

    /// The limit in force this period: `limit` with the allowance as its amount (thresholds are
    /// percents of it).
    pub(super) fn effective(&self) -> Option<Limit> {
        let limit = self.limit()?;
        if self.extra() == 0 {
            return Some(limit);
        }
        Some(limit.with_amount(Amount::from_minor(self.allowance(), limit.unit())))
    }

    /// Room under the allowance: `allowance − spent − reserved`, floored at zero.
    pub(super) fn room(&self) -> i64 {
        (self.allowance() - self.spent - self.reserved).max(0)
    }

    /// The hot-path threshold check after the account changed: one comparison unless a level
    /// is due.
    #[inline]
    pub(super) fn watch(&mut self, path: &Arc<str>, index: u32, unit: Unit, scan: &mut Scan<'_>) {
        if let Scan::Collect(out) = scan
            && self
                .alarm
                .due(self.alarm.watched(self.spent, self.reserved))
        {
            self.fire(path, index, unit, out);
        }
    }

    /// Re-arms the levels spend is now below (after spend fell or the allowance changed).
    pub(super) fn rearm(&mut self) {
        let effective = self.effective();
        self.alarm.rearm(effective.as_ref(), self.spent);
    }

    #[cold]
    pub(super) fn fire(&mut self, path: &Arc<str>, index: u32, unit: Unit, out: &mut Crossings) {
        let (spent, reserved) = (self.spent, self.reserved);
        let watched = self.alarm.watched(spent, reserved);
        match self.effective() {
            Some(limit) => self.alarm.fire(Some(&limit), watched, |bit, level| {
                out.push(ThresholdCrossing::new(
                    path.clone(),
                    index,
                    unit,
                    &limit,
                    spent,
                    reserved,
                    (bit, level),
                ));
            }),
            None => self.alarm = Alarm::IDLE,
        }
    }

    /// Room left under a hard limit; `None` for soft or no limit.
    pub(super) fn hard_room(&self) -> Option<i64> {
        match self.limit() {
            Some(limit) if limit.kind() == LimitKind::Hard => {
                Some(self.allowance() - self.spent - self.reserved)
            }
            _ => None,
        }
    }

    /// The least room left under any hard cap of the unit (every period); `None` without one.
    pub(super) fn hard_room_all(&self) -> Option<i64> {
        self.caps().filter_map(Account::hard_room).min()
    }

    /// Room left under a soft limit (may be negative); `None` for hard or no limit.
    pub(super) fn soft_room(&self) -> Option<i64> {
        match self.limit() {
            Some(limit) if limit.kind() == LimitKind::Soft => {
                Some(self.allowance() - self.spent - self.reserved)
            }
            _ => None,
        }
    }

    pub(super) fn is_active(&self) -> bool {
        self.limit().is_some() || self.spent != 0 || self.reserved != 0 || self.debt != 0
    }

    /// Takes `extra` of new spend: what fits under a hard limit is spent, the rest becomes debt.
    pub(super) fn absorb(&mut self, extra: i64) {
        let fits = self
            .hard_room_all()
            .map_or(extra, |room| extra.min(room.max(0)));
        self.add_spent(fits);
        self.debt += extra - fits;
    }

    /// Repays debt out of `funds` newly added to the limit: what is repaid moves from debt to
    /// spent. Debt is never repaid out of room the node already had (under `Reject` that room was
    /// deliberately left alone), only out of new money.
    pub(super) fn repay_debt(&mut self, funds: i64) {
        let repaid = self.debt.min(funds.max(0));
        self.debt -= repaid;
        self.add_spent(repaid);
    }
}

/// Which cap of `account` a new `limit` replaces ([`Account::cap`]): the one with the same
/// period, else the account's own (first) cap.
pub(super) fn cap_for(account: &Account, limit: &Limit) -> usize {
    let period = limit.period();
    if account.limit().is_none_or(|own| own.period() == period) {
        return 0;
    }
    account
        .extras()
        .iter()
        .position(|cap| cap.limit().is_some_and(|other| other.period() == period))
        .map_or(0, |position| position + 1)
}

pub(super) fn accounts_from(path: &str, limits: &Limits) -> Result<[Account; Unit::COUNT], Error> {
    limits.validate(path)?;
    let mut accounts: [Account; Unit::COUNT] = Unit::ALL.map(Account::unused);
    for limit in limits.iter() {
        let account = &mut accounts[limit.unit().index()];
        if account.limit().is_none() {
            account.set_limit(Some(*limit));
            account.alarm.reset(Some(limit));
            continue;
        }
        // A further cap of the unit (another period; `validate` refused a second one of the
        // same period).
        let mut cap = Account::unused(limit.unit());
        cap.set_limit(Some(*limit));
        let mut more = account.take_more().map(Vec::from).unwrap_or_default();
        more.push(cap);
        account.set_more(Some(more.into_boxed_slice()));
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::policy::OveragePolicy;

    fn usd(minor: i64) -> Amount {
        Amount::from_minor(minor, Unit::Usd)
    }

    #[test]
    fn a_plain_limit_is_kept_inline_and_reads_back_exactly() {
        for limit in [Limit::hard(usd(5_000)), Limit::soft(usd(7_000))] {
            let mut account = Account::unused(Unit::Usd);
            account.set_limit(Some(limit));
            assert!(account.rules.is_none(), "{limit:?} needs no box");
            assert_eq!(account.limit(), Some(limit));
            assert_eq!(account.allowance(), limit.amount().minor_units());
        }
    }

    #[test]
    fn a_richer_limit_is_boxed_and_reads_back_exactly_and_a_plain_one_unboxes_it() {
        let overdraft = Limit::hard(usd(5_000))
            .with_overage(OveragePolicy::AllowWithOverdraft { limit: usd(1_000) });
        let daily = Limit::hard(usd(5_000)).per(Period::daily());
        let mut account = Account::unused(Unit::Usd);
        for limit in [overdraft, daily] {
            account.set_limit(Some(limit));
            assert!(account.rules.is_some(), "{limit:?} is boxed");
            assert_eq!(account.limit(), Some(limit));
            assert_eq!(account.hard_cap, 5_000);
        }
        assert_eq!(account.period_end(), period::NOT_STARTED);
        account.set_limit(Some(Limit::hard(usd(9_000))));
        assert!(account.rules.is_none());
        assert_eq!((account.hard_cap, account.extra()), (9_000, 0));
        assert_eq!(account.period_end(), Timestamp::MAX);
        // An extra (a period's credit) boxes a plain limit and keeps it.
        account.set_extra(500);
        account.refresh_caps();
        assert_eq!(account.limit(), Some(Limit::hard(usd(9_000))));
        assert_eq!(account.hard_cap, 9_500);
    }
}
