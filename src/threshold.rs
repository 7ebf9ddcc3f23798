//! Threshold levels on a limit (50 / 80 / 95 %), and the crossings the ledger reports when a
//! node's spend passes one.
//!
//! Levels live on the [`Limit`](crate::Limit) of a node and unit, so every store keeps them with
//! its books and detects crossings **inside** its atomic operation. By default a level fires
//! exactly once when **committed spend** reaches it ([`ThresholdBasis::Spent`]): a reserve whose
//! estimate is returned unused never fires or re-arms anything. With
//! [`ThresholdBasis::SpentAndHeld`] (an early warning, opted into with
//! [`Limit::with_threshold_basis`](crate::Limit::with_threshold_basis)) a level fires once when
//! spend plus live holds reach it. Either way a level re-arms only when **spend itself** falls
//! back below it: a period reset, a credit or a raised limit; never a release or a commit that
//! returns part of its hold. The store returns the crossings with the operation's outcome
//! ([`Reservation::events`](crate::Reservation::events),
//! [`Committed::events`](crate::Committed::events)); the [`Budget`](crate::Budget) layer turns
//! them into [`Event`](crate::Event)s and delivers them after the store call has returned.
//!
//! Spend recorded by [`Guard::record`](crate::Guard::record) is evaluated by the next operation
//! that reports crossings (the hold's commit at the latest).

use std::fmt;
use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::error::Error;
use crate::policy::{Limit, LimitKind};

/// The most levels one limit can carry.
pub const MAX_LEVELS: usize = 8;

/// The highest level accepted, in percent (levels above 100 only make sense on soft limits).
pub const MAX_LEVEL_PERCENT: u16 = 1_000;

/// What a limit's threshold levels are compared against.
///
/// ```
/// use budget_guard::{Amount, Budget, Limit, ThresholdBasis};
/// # fn main() -> budget_guard::Result<()> {
/// let early = Limit::hard(Amount::usd("10")?)
///     .with_thresholds([80])
///     .with_threshold_basis(ThresholdBasis::SpentAndHeld);
/// let budget = Budget::builder("team", early).build()?;
/// let guard = budget.reserve(Amount::usd("8.50")?)?; // spend + holds at 85 %: warned now
/// assert_eq!(guard.crossings().len(), 1);
/// guard.commit(Amount::usd("2")?)?; // the rest returns; the level stays fired
/// assert!(budget.reserve(Amount::usd("7")?)?.crossings().is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ThresholdBasis {
    /// Committed spend (the default): a level fires once when spend reaches it.
    #[default]
    Spent,
    /// Spend plus live holds, as an early warning: a level fires once when a reserve (or spend)
    /// takes `spent + reserved` to it. It still re-arms only when spend falls back below it.
    SpentAndHeld,
}

/// The threshold levels of one limit, in percent of the limit, ascending, stored inline.
///
/// Build them with [`Limit::with_thresholds`](crate::Limit::with_thresholds). A soft limit always
/// carries the level 100 (passing the soft limit is itself a threshold event).
///
/// ```
/// use budget_guard::{Amount, Limit};
/// # fn main() -> budget_guard::Result<()> {
/// let limit = Limit::hard(Amount::usd("10")?).with_thresholds([95, 50, 80]);
/// assert_eq!(limit.thresholds().levels(), &[50, 80, 95]);
/// assert_eq!(Limit::soft(Amount::usd("10")?).thresholds().levels(), &[100]);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Thresholds {
    levels: [u16; MAX_LEVELS],
    len: u8,
    /// The first unusable level given (0, above [`MAX_LEVEL_PERCENT`]), or the count given when
    /// it was more than [`MAX_LEVELS`]; reported by validation, never silently dropped.
    problem: Option<(u32, &'static str)>,
    /// What the levels are compared against.
    basis: ThresholdBasis,
}

impl Thresholds {
    /// No levels.
    pub const NONE: Thresholds = Thresholds {
        levels: [0; MAX_LEVELS],
        len: 0,
        problem: None,
        basis: ThresholdBasis::Spent,
    };

    /// The level set of a fresh soft limit: 100 %.
    pub(crate) const SOFT: Thresholds = Thresholds {
        levels: [100, 0, 0, 0, 0, 0, 0, 0],
        len: 1,
        problem: None,
        basis: ThresholdBasis::Spent,
    };

    /// Levels from percents, sorted and deduplicated. Unusable input is kept as a problem that
    /// [`Limit`] validation reports as [`Error::InvalidThreshold`].
    pub(crate) fn from_levels(levels: impl IntoIterator<Item = u16>) -> Thresholds {
        let mut out = Thresholds::NONE;
        let mut count = 0u32;
        for level in levels {
            count += 1;
            if level == 0 || level > MAX_LEVEL_PERCENT {
                out.problem
                    .get_or_insert((u32::from(level), "levels are percents from 1 to 1000"));
                continue;
            }
            out.insert(level);
        }
        if count as usize > MAX_LEVELS && out.problem.is_none() && out.len as usize == MAX_LEVELS {
            out.problem = Some((count, "a limit carries at most 8 threshold levels"));
        }
        out
    }

    /// Adds `level` in order, ignoring duplicates and levels past the capacity (the capacity
    /// overflow is reported by `from_levels`).
    pub(crate) fn insert(&mut self, level: u16) {
        let len = self.len as usize;
        if self.levels[..len].contains(&level) {
            return;
        }
        if len == MAX_LEVELS {
            self.problem
                .get_or_insert((len as u32 + 1, "a limit carries at most 8 threshold levels"));
            return;
        }
        let at = self.levels[..len].partition_point(|existing| *existing < level);
        self.levels.copy_within(at..len, at + 1);
        self.levels[at] = level;
        self.len += 1;
    }

    /// The levels, ascending, in percent.
    pub fn levels(&self) -> &[u16] {
        &self.levels[..self.len as usize]
    }

    /// What the levels are compared against ([`ThresholdBasis::Spent`] unless the limit opted
    /// into the early warning).
    pub const fn basis(&self) -> ThresholdBasis {
        self.basis
    }

    pub(crate) const fn with_basis(mut self, basis: ThresholdBasis) -> Self {
        self.basis = basis;
        self
    }

    /// `true` without levels.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        match self.problem {
            Some((level, reason)) => Err(Error::InvalidThreshold { level, reason }),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Thresholds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.levels()).finish()
    }
}

/// The serde form: a plain list of levels for the default basis (the form written before the
/// basis existed), `{ "levels": [...], "basis": "spent_and_held" }` otherwise.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum ThresholdsRepr {
    Levels(Vec<u16>),
    WithBasis {
        levels: Vec<u16>,
        basis: ThresholdBasis,
    },
}

#[cfg(feature = "serde")]
impl serde::Serialize for Thresholds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let levels = self.levels().to_vec();
        match self.basis {
            ThresholdBasis::Spent => ThresholdsRepr::Levels(levels),
            basis => ThresholdsRepr::WithBasis { levels, basis },
        }
        .serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Thresholds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (levels, basis) = match ThresholdsRepr::deserialize(deserializer)? {
            ThresholdsRepr::Levels(levels) => (levels, ThresholdBasis::Spent),
            ThresholdsRepr::WithBasis { levels, basis } => (levels, basis),
        };
        let thresholds = Thresholds::from_levels(levels).with_basis(basis);
        thresholds.validate().map_err(serde::de::Error::custom)?;
        Ok(thresholds)
    }
}

/// The watched value (minor units) at which `percent` of `limit` is reached: the smallest `used`
/// with `used * 100 >= percent * limit`.
fn level_minor(limit: i64, percent: u16) -> i64 {
    let product = i128::from(limit) * i128::from(percent);
    let ceil = (product + 99).div_euclid(100);
    i64::try_from(ceil).unwrap_or(i64::MAX)
}

/// The ledger's per-account threshold state: which levels have fired, and the value at which
/// the next one fires. The hot path compares the watched value (spend, or spend plus holds for
/// [`ThresholdBasis::SpentAndHeld`]) against `up`; only operations that can lower spend or
/// raise the levels (a period reset, a credit, a new limit) re-arm, in [`Alarm::rearm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Alarm {
    /// Bit `i` set: level `i` of the limit's thresholds has fired and is not re-armed.
    crossed: u8,
    /// Whether the watched value includes holds ([`ThresholdBasis::SpentAndHeld`]).
    holds: bool,
    /// Watched value at or above which the lowest armed level fires (`i64::MAX`: none).
    up: i64,
}

impl Default for Alarm {
    fn default() -> Self {
        Alarm::IDLE
    }
}

impl Alarm {
    pub(crate) const IDLE: Alarm = Alarm {
        crossed: 0,
        holds: false,
        up: i64::MAX,
    };

    /// `(crossed, holds, up)`: the alarm as plain values, for the budget file's ledger image.
    pub(crate) const fn to_parts(self) -> (u8, bool, i64) {
        (self.crossed, self.holds, self.up)
    }

    /// The inverse of [`Alarm::to_parts`] (any values are a valid alarm).
    pub(crate) const fn from_parts(crossed: u8, holds: bool, up: i64) -> Alarm {
        Alarm { crossed, holds, up }
    }

    /// The value the levels are compared against, given the account's figures.
    #[inline]
    pub(crate) fn watched(&self, spent: i64, reserved: i64) -> i64 {
        if self.holds {
            spent.saturating_add(reserved)
        } else {
            spent
        }
    }

    /// `true` if `watched` may fire a level (the one check on the hot path).
    #[inline]
    pub(crate) fn due(&self, watched: i64) -> bool {
        watched >= self.up
    }

    /// Forgets which levels fired (the level set changed): levels already passed fire at the
    /// next operation that reports crossings.
    pub(crate) fn reset(&mut self, limit: Option<&Limit>) {
        self.crossed = 0;
        self.recompute(limit);
    }

    /// Marks every level the watched value has reached as fired, silently (after a restore, so
    /// that a restored store does not repeat events it already delivered).
    pub(crate) fn settle(&mut self, limit: Option<&Limit>, spent: i64, reserved: i64) {
        self.crossed = 0;
        self.recompute(limit);
        let watched = self.watched(spent, reserved);
        self.fire(limit, watched, |_, _| {});
    }

    /// Re-arms the fired levels that `spent` is below (spend fell or the levels rose). Cold:
    /// only period resets, funds and new limits call it.
    pub(crate) fn rearm(&mut self, limit: Option<&Limit>, spent: i64) {
        if let Some(limit) = limit {
            let amount = limit.amount().minor_units();
            for (bit, percent) in limit.thresholds().levels().iter().enumerate() {
                if spent < level_minor(amount, *percent) {
                    self.crossed &= !(1u8 << bit);
                }
            }
        }
        self.recompute(limit);
    }

    /// Fires the armed levels `watched` has reached: marks them and calls `crossed(bit,
    /// percent)` for each, ascending. Never re-arms (only [`Alarm::rearm`] does).
    pub(crate) fn fire(
        &mut self,
        limit: Option<&Limit>,
        watched: i64,
        mut crossed: impl FnMut(u8, u16),
    ) {
        let Some(limit) = limit else {
            *self = Alarm::IDLE;
            return;
        };
        let amount = limit.amount().minor_units();
        for (bit, percent) in limit.thresholds().levels().iter().enumerate() {
            let bit = bit as u8;
            let mask = 1u8 << bit;
            if self.crossed & mask == 0 && watched >= level_minor(amount, *percent) {
                self.crossed |= mask;
                crossed(bit, *percent);
            }
        }
        self.recompute(Some(limit));
    }

    /// Recomputes `up` and the basis from the limit and the fired levels.
    fn recompute(&mut self, limit: Option<&Limit>) {
        let Some(limit) = limit else {
            *self = Alarm::IDLE;
            return;
        };
        let amount = limit.amount().minor_units();
        let mut up = i64::MAX;
        for (bit, percent) in limit.thresholds().levels().iter().enumerate() {
            if self.crossed & (1u8 << bit) == 0 {
                up = up.min(level_minor(amount, *percent));
            }
        }
        self.holds = limit.thresholds().basis() == ThresholdBasis::SpentAndHeld;
        self.up = up;
    }

    /// Clears the fired bit of `bit` (a crossing that could not be reported fires again at the
    /// next operation that reports crossings).
    pub(crate) fn unmark(&mut self, limit: Option<&Limit>, bit: u8) {
        self.crossed &= !(1 << bit);
        self.recompute(limit);
    }
}

/// One threshold level crossed upward by a store operation: which node, unit and level, and the
/// node's figures right after the operation.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ThresholdCrossing {
    node: Arc<str>,
    limit: i64,
    spent: i64,
    reserved: i64,
    /// The ledger's slot of the node and level (only the ledger that fired it reads them; not
    /// part of the serialized form).
    #[cfg_attr(feature = "serde", serde(skip))]
    index: u32,
    level: u16,
    #[cfg_attr(feature = "serde", serde(skip))]
    bit: u8,
    unit: Unit,
    kind: LimitKind,
    basis: ThresholdBasis,
    /// The node's burn rate and projected depletion, when it tracks one (`crate::burn`).
    burn: Option<(crate::burn::BurnRate, Option<crate::clock::Timestamp>)>,
}

impl ThresholdCrossing {
    pub(crate) fn new(
        node: Arc<str>,
        index: u32,
        unit: Unit,
        limit: &Limit,
        spent: i64,
        reserved: i64,
        (bit, level): (u8, u16),
    ) -> Self {
        ThresholdCrossing {
            node,
            limit: limit.amount().minor_units(),
            spent,
            reserved,
            index,
            level,
            bit,
            unit,
            kind: limit.kind(),
            basis: limit.thresholds().basis(),
            burn: None,
        }
    }

    /// The node's burn rate in this unit right after the operation, if the node tracks one
    /// (see [`crate::burn`]).
    pub fn burn_rate(&self) -> Option<crate::burn::BurnRate> {
        self.burn.map(|(rate, _)| rate)
    }

    /// When the node's limit runs out at that burn rate, if it tracks one and spends at all.
    pub fn depletes_at(&self) -> Option<crate::clock::Timestamp> {
        self.burn.and_then(|(_, at)| at)
    }

    pub(crate) fn set_burn(
        &mut self,
        rate: crate::burn::BurnRate,
        depletes_at: Option<crate::clock::Timestamp>,
    ) {
        self.burn = Some((rate, depletes_at));
    }

    /// Full path of the node whose level was crossed.
    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    /// The unit of the limit.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The level crossed, in percent of the limit.
    pub fn level(&self) -> u16 {
        self.level
    }

    /// Whether the limit is hard or soft.
    pub fn limit_kind(&self) -> LimitKind {
        self.kind
    }

    /// The node's limit in this unit.
    pub fn limit(&self) -> Amount {
        Amount::from_minor(self.limit, self.unit)
    }

    /// Spent on the node right after the operation.
    pub fn spent(&self) -> Amount {
        Amount::from_minor(self.spent, self.unit)
    }

    /// Reserved on the node right after the operation.
    pub fn reserved(&self) -> Amount {
        Amount::from_minor(self.reserved, self.unit)
    }

    /// `limit - spent - reserved`, floored at zero.
    pub fn remaining(&self) -> Amount {
        // Saturating: a crossing may come from a remote store or a deserialized event.
        let free = self
            .limit
            .saturating_sub(self.spent)
            .saturating_sub(self.reserved);
        Amount::from_minor(free.max(0), self.unit)
    }

    /// What the level was compared against: spend, or spend plus holds (the early warning).
    pub fn basis(&self) -> ThresholdBasis {
        self.basis
    }

    /// The watched value (spend, or spend plus holds for [`ThresholdBasis::SpentAndHeld`]) in
    /// percent of the limit, rounded down (a zero limit counts as 100).
    pub fn percent_used(&self) -> u32 {
        if self.limit == 0 {
            return 100;
        }
        let used = match self.basis {
            ThresholdBasis::Spent => i128::from(self.spent),
            ThresholdBasis::SpentAndHeld => i128::from(self.spent) + i128::from(self.reserved),
        };
        u32::try_from(used * 100 / i128::from(self.limit)).unwrap_or(u32::MAX)
    }

    pub(crate) fn slot(&self) -> (u32, Unit, u8) {
        (self.index, self.unit, self.bit)
    }
}

impl fmt::Debug for ThresholdCrossing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThresholdCrossing")
            .field("node", &self.node)
            .field("unit", &self.unit)
            .field("level", &self.level)
            .field("limit", &self.limit())
            .field("spent", &self.spent())
            .field("reserved", &self.reserved())
            .finish()
    }
}

/// The threshold crossings of one store operation, in the order detected (leaf to root, levels
/// ascending). An empty list does not allocate, so an operation that crosses nothing (nearly all
/// of them) allocates nothing and moves only three words through the store layers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Crossings {
    list: Vec<ThresholdCrossing>,
}

impl Crossings {
    /// No crossings.
    pub const fn new() -> Self {
        Crossings { list: Vec::new() }
    }

    /// `true` if the operation crossed no level.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many levels were crossed.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The crossings, in the order detected.
    pub fn iter(&self) -> impl Iterator<Item = &ThresholdCrossing> + '_ {
        self.list.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ThresholdCrossing> + '_ {
        self.list.iter_mut()
    }

    /// The list itself (the guard drops an empty one without its drop glue).
    #[inline]
    pub(crate) fn into_vec(self) -> Vec<ThresholdCrossing> {
        self.list
    }

    /// Adds a crossing (for store implementations that detect crossings themselves).
    pub fn push(&mut self, crossing: ThresholdCrossing) {
        self.list.push(crossing);
    }
}

impl<'a> IntoIterator for &'a Crossings {
    type Item = &'a ThresholdCrossing;
    type IntoIter = std::slice::Iter<'a, ThresholdCrossing>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_sort_dedupe_and_validate() {
        let levels = Thresholds::from_levels([95, 50, 80, 50]);
        assert_eq!(levels.levels(), &[50, 80, 95]);
        assert!(levels.validate().is_ok());
        assert!(Thresholds::from_levels([0]).validate().is_err());
        assert!(Thresholds::from_levels([1001]).validate().is_err());
        assert!(Thresholds::from_levels(1..=9).validate().is_err());
        assert!(Thresholds::from_levels(1..=8).validate().is_ok());
    }

    #[test]
    fn level_minor_rounds_up() {
        assert_eq!(level_minor(10, 50), 5);
        assert_eq!(level_minor(3, 50), 2);
        assert_eq!(level_minor(1_000, 95), 950);
        assert_eq!(level_minor(i64::MAX, 1_000), i64::MAX);
    }

    #[test]
    fn alarm_fires_once_and_rearms_only_when_spend_falls() {
        let limit = Limit::hard(Amount::tokens(100)).with_thresholds([50, 80]);
        let mut alarm = Alarm::IDLE;
        alarm.reset(Some(&limit));
        let mut fired = Vec::new();
        for spent in [10, 55, 60, 85, 90, 40, 51] {
            let watched = alarm.watched(spent, 1_000);
            if alarm.due(watched) {
                alarm.fire(Some(&limit), watched, |_, level| fired.push((spent, level)));
            }
        }
        // Without a re-arming operation, lower spend re-arms nothing.
        assert_eq!(fired, vec![(55, 50), (85, 80)]);
        alarm.rearm(Some(&limit), 40);
        alarm.fire(Some(&limit), 51, |_, level| fired.push((51, level)));
        assert_eq!(fired, vec![(55, 50), (85, 80), (51, 50)]);
    }
}
