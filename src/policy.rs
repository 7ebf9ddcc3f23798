//! Limits and what happens when work costs more than it reserved.

use crate::amount::{Amount, Unit};
use crate::error::Error;
use crate::period::{Period, Rollover};
use crate::threshold::{ThresholdBasis, Thresholds};

/// Whether a limit stops work or only reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum LimitKind {
    /// A reserve that would take `spent + reserved` above the limit is refused with
    /// [`Error::BudgetExceeded`](crate::Error::BudgetExceeded). Never exceeded, under any
    /// interleaving.
    Hard,
    /// Reserves pass even above the limit; the guard reports it
    /// ([`Guard::over_soft_limit`](crate::Guard::over_soft_limit)) and a `tracing` warning is
    /// emitted. For budgets you want to watch rather than enforce.
    Soft,
}

/// What a commit does when the actual cost is above the amount held.
///
/// The policy of the node the guard was reserved on (the *reserving node*) governs the commit.
/// In every case the money is **recorded**, because spent money must not vanish from the books:
///
/// * on each **ancestor**, the excess is taken from the room it has (`limit - spent - reserved`)
///   and whatever does not fit becomes that ancestor's `debt`;
/// * on the **reserving node**, the policy decides, as below.
///
/// `spent + reserved` therefore never passes a hard limit: an overrun shows up as `debt`, and a
/// node in debt refuses new reserves with [`Error::InDebt`](crate::Error::InDebt) until
/// [`Budget::credit`](crate::Budget::credit) repays it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum OveragePolicy {
    /// The estimate was a promise. Any excess is an error,
    /// [`Error::OverageRejected`](crate::Error::OverageRejected); the reserving node records the
    /// held amount as spent and the **whole excess as debt** (never silently taken from its room),
    /// so the overrunning task stops until someone settles it. Its siblings keep working unless an
    /// ancestor itself had no room.
    #[default]
    Reject,
    /// The excess is taken from the room of the reserving node and its ancestors if **every** one
    /// of them has room for it, and the commit succeeds. Otherwise it is recorded as under
    /// `Reject` and the commit returns [`Error::OverageRejected`](crate::Error::OverageRejected).
    AllowIfAvailable,
    /// The excess is taken from the reserving node's room and what does not fit becomes its debt,
    /// like the ancestors. The commit succeeds while no node on the path ends up with more than
    /// `limit` of debt; past that the spend is still recorded and the commit returns
    /// [`Error::OverageRejected`](crate::Error::OverageRejected).
    AllowWithOverdraft {
        /// The most debt a node on the path may carry after this commit.
        limit: Amount,
    },
}

/// One limit on a node: an amount of one unit, hard or soft, and an overage policy.
///
/// ```
/// use budget_guard::{Amount, Limit, LimitKind, OveragePolicy};
/// # fn main() -> budget_guard::Result<()> {
/// let hard = Limit::hard(Amount::usd("10")?);
/// let soft = Limit::soft(Amount::tokens(100_000));
/// let lenient = Limit::hard(Amount::usd("5")?)
///     .with_overage(OveragePolicy::AllowWithOverdraft { limit: Amount::usd("0.50")? });
/// assert_eq!(hard.kind(), LimitKind::Hard);
/// assert_eq!(soft.amount(), Amount::tokens(100_000));
/// assert!(matches!(lenient.overage(), OveragePolicy::AllowWithOverdraft { .. }));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Limit {
    amount: Amount,
    kind: LimitKind,
    overage: OveragePolicy,
    #[cfg_attr(feature = "serde", serde(default))]
    thresholds: Thresholds,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    period: Option<Period>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Rollover::is_none")
    )]
    rollover: Rollover,
}

impl Limit {
    /// A hard limit with the default [`OveragePolicy::Reject`].
    pub const fn hard(amount: Amount) -> Self {
        Limit {
            amount,
            kind: LimitKind::Hard,
            overage: OveragePolicy::Reject,
            thresholds: Thresholds::NONE,
            period: None,
            rollover: Rollover::None,
        }
    }

    /// A soft limit (reported, not enforced).
    pub const fn soft(amount: Amount) -> Self {
        Limit {
            amount,
            kind: LimitKind::Soft,
            overage: OveragePolicy::Reject,
            thresholds: Thresholds::SOFT,
            period: None,
            rollover: Rollover::None,
        }
    }

    /// The same limit with another overage policy.
    pub const fn with_overage(mut self, overage: OveragePolicy) -> Self {
        self.overage = overage;
        self
    }

    /// The same limit with threshold levels, in percent of the limit (typical: `[50, 80, 95]`).
    ///
    /// Each level fires one [`Event::ThresholdCrossed`](crate::Event::ThresholdCrossed) when
    /// committed **spend** reaches it, and fires again only after spend itself has fallen back
    /// below it (a period reset, a credit or a raised limit). Holds do not count: an estimate
    /// that returns unused neither fires nor re-arms a level. For an early warning on spend plus
    /// holds (still once per level), add
    /// [`with_threshold_basis(ThresholdBasis::SpentAndHeld)`](Limit::with_threshold_basis). A
    /// soft limit keeps its level at 100 %. Levels are percents from 1 to 1000, at most eight
    /// per limit; anything else is [`Error::InvalidThreshold`] when the limit is used.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let limit = Limit::hard(Amount::usd("10")?).with_thresholds([50, 80, 95]);
    /// let budget = Budget::builder("team", limit).build()?;
    /// let guard = budget.reserve(Amount::usd("6")?)?;
    /// assert!(guard.crossings().is_empty()); // held, not spent
    /// let committed = guard.commit(Amount::usd("5.50")?)?;
    /// let crossed: Vec<u16> = committed.events.iter().map(|c| c.level()).collect();
    /// assert_eq!(crossed, [50]); // spend reached $5.50 of $10
    /// # Ok(()) }
    /// ```
    pub fn with_thresholds(mut self, levels: impl IntoIterator<Item = u16>) -> Self {
        let mut thresholds = Thresholds::from_levels(levels).with_basis(self.thresholds.basis());
        if self.kind == LimitKind::Soft {
            thresholds.insert(100);
        }
        self.thresholds = thresholds;
        self
    }

    /// The same limit with its threshold levels compared against `basis`: committed spend
    /// ([`ThresholdBasis::Spent`], the default) or spend plus live holds
    /// ([`ThresholdBasis::SpentAndHeld`], an early warning that fires when a reserve gets
    /// there; still once per level, re-armed only when spend falls back). Keeps the levels.
    ///
    /// ```
    /// use budget_guard::{Amount, Limit, ThresholdBasis};
    /// # fn main() -> budget_guard::Result<()> {
    /// let limit = Limit::hard(Amount::usd("25")?)
    ///     .with_thresholds([50, 80, 95])
    ///     .with_threshold_basis(ThresholdBasis::SpentAndHeld);
    /// assert_eq!(limit.thresholds().basis(), ThresholdBasis::SpentAndHeld);
    /// assert_eq!(limit.thresholds().levels(), &[50, 80, 95]);
    /// # Ok(()) }
    /// ```
    pub const fn with_threshold_basis(mut self, basis: ThresholdBasis) -> Self {
        self.thresholds = self.thresholds.with_basis(basis);
        self
    }

    /// The same limit as an allocation per `period`: spend resets at every boundary (see
    /// [`crate::period`] for what resets, what a live hold does across a boundary, and how
    /// funds behave).
    ///
    /// ```
    /// use budget_guard::period::Period;
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// // $500 a month for the team, $2 per task: every reserve must fit both.
    /// let team = Budget::builder("team", Limit::hard(Amount::usd("500")?).per(Period::monthly()))
    ///     .child("task-1", Limit::hard(Amount::usd("2")?))
    ///     .build()?;
    /// let task = team.at("task-1")?;
    /// assert!(task.reserve(Amount::usd("3")?).is_err()); // the task cap binds first
    /// assert_eq!(team.balance(Unit::Usd)?.limit.unwrap().period(), Some(Period::monthly()));
    /// # Ok(()) }
    /// ```
    pub const fn per(mut self, period: Period) -> Self {
        self.period = Some(period);
        self
    }

    /// The same limit with a [`Rollover`] for the unused rest of each period (the default is
    /// [`Rollover::None`]). Only a periodic limit can roll over: a rollover without
    /// [`per`](Limit::per) is [`Error::InvalidPeriod`] when the limit is used, and a
    /// [`Rollover::CarryForward`] cap in another unit is [`Error::UnitMismatch`].
    pub const fn with_rollover(mut self, rollover: Rollover) -> Self {
        self.rollover = rollover;
        self
    }

    /// The period the amount is allocated per; `None` for a limit over all time.
    pub const fn period(&self) -> Option<Period> {
        self.period
    }

    /// What happens to the unused rest of a period.
    pub const fn rollover(&self) -> Rollover {
        self.rollover
    }

    /// The threshold levels (percent of the limit, ascending).
    pub const fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// The same limit with another amount (same kind and policy).
    pub const fn with_amount(mut self, amount: Amount) -> Self {
        self.amount = amount;
        self
    }

    /// The limit amount.
    pub const fn amount(&self) -> Amount {
        self.amount
    }

    /// The unit limited.
    pub const fn unit(&self) -> Unit {
        self.amount.unit()
    }

    /// Hard or soft.
    pub const fn kind(&self) -> LimitKind {
        self.kind
    }

    /// The overage policy.
    pub const fn overage(&self) -> OveragePolicy {
        self.overage
    }

    /// A unit's further cap (not its first) watches no threshold levels: levels belong on the
    /// unit's main cap, which reports them (a soft limit's implicit 100 % is allowed; a soft
    /// cap reports itself through `over_soft_limit`).
    pub(crate) fn validate_as_further_cap(&self) -> Result<(), Error> {
        let implicit = self.kind == LimitKind::Soft && self.thresholds == Thresholds::SOFT;
        match self.thresholds.levels().first() {
            Some(level) if !implicit => Err(Error::InvalidThreshold {
                level: u32::from(*level),
                reason: "threshold levels go on a unit's first limit, not on a further limit of \
                         another period",
            }),
            _ => Ok(()),
        }
    }

    /// Checks that an overdraft is in the limit's own unit.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.thresholds.validate()?;
        if let OveragePolicy::AllowWithOverdraft { limit: overdraft } = self.overage {
            self.amount.same_unit(overdraft, "overdraft limit")?;
        }
        if !self.rollover.is_none() && self.period.is_none() {
            return Err(Error::InvalidPeriod {
                period: "none".to_owned(),
                reason: "a rollover needs a periodic limit (Limit::per)",
            });
        }
        if let Rollover::CarryForward { cap } = self.rollover {
            self.amount.same_unit(cap, "rollover cap")?;
        }
        Ok(())
    }
}

/// The limits of one node: per unit, one limit per period. Build it from a [`Limit`], an array
/// of limits, or [`Limits::none`] for a node that only tracks spend.
///
/// Several limits of one unit cap the same node at once when their periods differ (daily $25
/// *and* weekly $150 *and* monthly $500): every reserve and commit must fit all of them in one
/// atomic step, each counts its own spend per period, and a refusal names the period
/// ([`Exceeded::period`](crate::Exceeded::period)). The first limit of a unit is its *main*
/// cap: its overage policy governs commits above a hold, its threshold levels fire events,
/// debt is kept against it, and [`Budget::credit`](crate::Budget::credit) /
/// [`debit`](crate::Budget::debit) change it. The further caps may not have threshold levels
/// (a soft limit's implicit 100 % aside). An overage must fit every cap to be taken from room
/// (see [`OveragePolicy`]); spend a credit later repays from debt counts in every period, so a
/// further cap can show more spent than its limit until its period ends (refusing meanwhile).
///
/// ```
/// use budget_guard::period::Period;
/// use budget_guard::{Amount, Budget, Limit, Limits};
/// # fn main() -> budget_guard::Result<()> {
/// let agent = Budget::builder(
///     "agent",
///     Limits::from([
///         Limit::hard(Amount::usd("25")?).per(Period::daily()),
///         Limit::hard(Amount::usd("150")?).per(Period::weekly()),
///         Limit::hard(Amount::usd("500")?).per(Period::monthly()),
///     ]),
/// )
/// .build()?;
/// let error = agent.reserve(Amount::usd("30")?).unwrap_err();
/// assert_eq!(error.exceeded().unwrap().period, Some(Period::daily()));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Limits(pub(crate) Vec<Limit>);

impl Limits {
    /// No limits: the node records spend and holds but never refuses on its own account.
    pub fn none() -> Self {
        Limits(Vec::new())
    }

    /// The limits, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Limit> {
        self.0.iter()
    }

    /// Checks each limit and that no unit has two of the same period.
    pub(crate) fn validate(&self, path: &str) -> Result<(), Error> {
        for (position, limit) in self.0.iter().enumerate() {
            limit.validate()?;
            let mut earlier = self.0[..position]
                .iter()
                .filter(|earlier| earlier.unit() == limit.unit());
            let mut is_further = false;
            for earlier in &mut earlier {
                is_further = true;
                if earlier.period() == limit.period() {
                    return Err(Error::DuplicateLimit {
                        node: path.to_owned(),
                        unit: limit.unit(),
                    });
                }
            }
            if is_further {
                limit.validate_as_further_cap()?;
            }
        }
        Ok(())
    }
}

impl From<Limit> for Limits {
    fn from(limit: Limit) -> Self {
        Limits(vec![limit])
    }
}

impl<const N: usize> From<[Limit; N]> for Limits {
    fn from(limits: [Limit; N]) -> Self {
        Limits(limits.to_vec())
    }
}

impl From<Vec<Limit>> for Limits {
    fn from(limits: Vec<Limit>) -> Self {
        Limits(limits)
    }
}
