//! [`Ladder`]: tiers of work from best to cheapest (premium → standard → economy model), and the
//! choice of the best tier the budget can still pay for.

use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::balance::NodeInfo;
use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::{Error, Exceeded, Result};
use crate::guard::Guard;
use crate::policy::LimitKind;

/// One tier of a [`Ladder`]: a name, the estimate held per call, and an optional rule.
///
/// ```
/// use budget_guard::{Amount, Tier};
/// # fn main() -> budget_guard::Result<()> {
/// let premium = Tier::new("premium", Amount::usd("0.20")?).while_usage_below(80);
/// assert_eq!(premium.name(), "premium");
/// assert_eq!(premium.usage_below(), Some(80));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    name: Arc<str>,
    estimate: Cost,
    usage_below: Option<u32>,
}

impl Tier {
    /// A tier named `name` that holds `estimate` per call.
    pub fn new(name: &str, estimate: impl Into<Cost>) -> Self {
        Tier {
            name: name.into(),
            estimate: estimate.into(),
            usage_below: None,
        }
    }

    /// Allows the tier only while usage (`spent + reserved`, in percent of the limit) is below
    /// `percent` on every node of the path that limits one of the estimate's units.
    pub fn while_usage_below(mut self, percent: u32) -> Self {
        self.usage_below = Some(percent);
        self
    }

    /// The tier's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// What a call on this tier holds.
    pub fn estimate(&self) -> Cost {
        self.estimate
    }

    /// The usage rule, if any: allowed only below this percent.
    pub fn usage_below(&self) -> Option<u32> {
        self.usage_below
    }
}

/// Tiers from best to cheapest. [`select`](Ladder::select) names the best tier the budget can
/// pay for now; [`reserve`](Ladder::reserve) holds it, falling to the next tier when a reserve
/// is denied, so the choice and the hold are one step with no race in between.
///
/// ```
/// use budget_guard::{Amount, Budget, Ladder, Limit, Tier};
/// # fn main() -> budget_guard::Result<()> {
/// let ladder = Ladder::new()
///     .with(Tier::new("premium", Amount::usd("0.50")?).while_usage_below(80))
///     .with(Tier::new("standard", Amount::usd("0.10")?))
///     .with(Tier::new("economy", Amount::usd("0.01")?));
/// let agent = Budget::builder("agent", Limit::hard(Amount::usd("1")?)).build()?;
///
/// assert_eq!(ladder.select(&agent)?.name(), "premium");
/// agent.reserve(Amount::usd("0.85")?)?.commit(Amount::usd("0.85")?)?; // 85 % used
/// assert_eq!(ladder.select(&agent)?.name(), "standard");
/// let (tier, guard) = ladder.reserve(&agent)?;
/// assert_eq!(tier.name(), "standard");
/// guard.commit(Amount::usd("0.10")?)?; // $0.05 left
/// assert_eq!(ladder.select(&agent)?.name(), "economy");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ladder {
    tiers: Vec<Tier>,
}

impl Ladder {
    /// An empty ladder.
    pub fn new() -> Self {
        Ladder::default()
    }

    /// The ladder with `tier` added below the existing ones (cheaper tiers last).
    pub fn with(mut self, tier: Tier) -> Self {
        self.tiers.push(tier);
        self
    }

    /// Shorthand for `with(Tier::new(name, estimate))`.
    pub fn tier(self, name: &str, estimate: impl Into<Cost>) -> Self {
        self.with(Tier::new(name, estimate))
    }

    /// The tiers, best first.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The best tier `budget` can pay for now, by a dry check of the balances on the path (no
    /// hold is taken, so another caller may take the room before you reserve; use
    /// [`reserve`](Ladder::reserve) to choose and hold in one step).
    ///
    /// # Errors
    /// The denial of the last tier that was checked ([`Error::BudgetExceeded`] naming the
    /// limiting node, [`Error::InDebt`]), or [`Error::NoTierAllowed`] when every tier's rule
    /// excludes it; [`Error::UnknownNode`] as `reserve` would.
    pub fn select(&self, budget: &Budget) -> Result<&Tier> {
        let path = PathView::read(budget)?;
        let mut denial = None;
        for tier in &self.tiers {
            if !path.allows(tier) {
                continue;
            }
            match path.fits(&tier.estimate) {
                Ok(()) => return Ok(tier),
                Err(error) if error.is_denial() => denial = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(denial.unwrap_or(Error::NoTierAllowed {
            tiers: self.tiers.len(),
        }))
    }

    /// Reserves the best tier whose reserve **succeeds**: tier by tier, skipping tiers whose
    /// rule excludes them and moving on when a reserve is denied. Returns the tier and its guard.
    ///
    /// Each reserve is the store's atomic reserve, so two callers racing for the last room both
    /// get a tier that fits (or a denial); neither passes a hard limit. The usage rules are read
    /// from the balances just before the reserve.
    ///
    /// # Errors
    /// As [`select`](Ladder::select); a non-denial error of a reserve (bad input, a store
    /// failure) is returned at once.
    pub fn reserve<'b>(&self, budget: &'b Budget) -> Result<(&Tier, Guard<'b>)> {
        let ruled = self.tiers.iter().any(|tier| tier.usage_below.is_some());
        let path = if ruled {
            Some(PathView::read(budget)?)
        } else {
            None
        };
        let mut denial = None;
        for tier in &self.tiers {
            if path.as_ref().is_some_and(|path| !path.allows(tier)) {
                continue;
            }
            match budget.reserve(tier.estimate) {
                Ok(guard) => return Ok((tier, guard)),
                Err(error) if error.is_denial() => denial = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(denial.unwrap_or(Error::NoTierAllowed {
            tiers: self.tiers.len(),
        }))
    }
}

/// The nodes from a budget up to its root, read one node at a time (a dry view).
pub(crate) struct PathView {
    nodes: Vec<NodeInfo>,
}

impl PathView {
    pub(crate) fn read(budget: &Budget) -> Result<PathView> {
        let store = budget.store();
        let path = budget.path();
        let mut nodes = Vec::new();
        let mut end = path.len();
        loop {
            let prefix = &path[..end];
            nodes.push(store.node_info(store.resolve(prefix)?)?);
            match prefix.rfind('/') {
                Some(slash) => end = slash,
                None => break,
            }
        }
        Ok(PathView { nodes })
    }

    /// Highest percent used on the path in any of `cost`'s units.
    fn usage(&self, cost: &Cost) -> u32 {
        self.nodes
            .iter()
            .flat_map(|node| cost.units().filter_map(|unit| node.balance(unit)))
            .filter_map(|balance| balance.percent_used())
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn allows(&self, tier: &Tier) -> bool {
        tier.usage_below
            .is_none_or(|percent| self.usage(&tier.estimate) < percent)
    }

    /// What `budget.reserve(cost)` would say now, from the balances.
    fn fits(&self, cost: &Cost) -> Result<()> {
        cost.validate_reservable()?;
        for node in &self.nodes {
            if let Some(owed) = node.balances.iter().find(|b| !b.debt.is_zero()) {
                return Err(Error::InDebt {
                    node: node.path.clone(),
                    debt: owed.debt,
                });
            }
        }
        for unit in cost.units() {
            let requested = cost.get(unit).unwrap_or(Amount::zero(unit));
            let mut tightest: Option<(i64, &NodeInfo)> = None;
            for node in &self.nodes {
                let Some(balance) = node.balance(unit) else {
                    continue;
                };
                let Some(limit) = balance.limit else {
                    continue;
                };
                if limit.kind() == LimitKind::Hard {
                    // A periodic limit allows its period's allowance (carry and credits included).
                    let allowance = balance.allowance.unwrap_or(limit.amount());
                    let room = allowance.minor_units()
                        - balance.spent.minor_units()
                        - balance.reserved.minor_units();
                    if tightest.is_none_or(|(least, _)| room < least) {
                        tightest = Some((room, node));
                    }
                }
            }
            if let Some((room, node)) = tightest
                && requested.minor_units() > room
            {
                return Err(exceeded(node, unit, requested));
            }
        }
        Ok(())
    }
}

fn exceeded(node: &NodeInfo, unit: Unit, requested: Amount) -> Error {
    let balance = node
        .balance(unit)
        .expect("a node with a hard limit has a balance");
    Error::BudgetExceeded(Box::new(Exceeded {
        node: node.path.clone(),
        limit: balance
            .allowance
            .or(balance.limit.map(|limit| limit.amount()))
            .unwrap_or(Amount::zero(unit)),
        spent: balance.spent,
        reserved: balance.reserved,
        requested,
        period: balance.limit.and_then(|limit| limit.period()),
    }))
}
