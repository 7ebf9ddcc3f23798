//! [`Ladder`]: tiers of work from best to cheapest (premium → standard → economy model), and the
//! choice of the best tier the budget can still pay for.

use std::borrow::Cow;
use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::balance::NodeInfo;
use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::{Error, Exceeded, Result};
use crate::guard::Guard;
use crate::policy::LimitKind;

/// One tier of a [`Ladder`]: a name, the estimate held per call, an optional rule, and
/// optionally the node it draws from ([`drawing_from`](Tier::drawing_from)).
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
    node: Option<Arc<str>>,
}

impl Tier {
    /// A tier named `name` that holds `estimate` per call.
    pub fn new(name: &str, estimate: impl Into<Cost>) -> Self {
        Tier {
            name: name.into(),
            estimate: estimate.into(),
            usage_below: None,
            node: None,
        }
    }

    /// Makes the tier reserve on the node at `relative` below the budget the ladder is used
    /// with (`"premium"` for `chatbot/premium` when the ladder runs on `chatbot`), instead of on
    /// that budget itself. Its usage rule then reads that node's path. Without it a tier draws
    /// from the budget the ladder is given.
    ///
    /// ```
    /// use budget_guard::{Budget, Limit, Tier, usd};
    /// # fn main() -> budget_guard::Result<()> {
    /// let tier = Tier::new("premium", usd!("0.50")).drawing_from("premium");
    /// assert_eq!(tier.node(), Some("premium"));
    /// # Ok(()) }
    /// ```
    pub fn drawing_from(mut self, relative: &str) -> Self {
        self.node = Some(relative.trim_matches('/').into());
        self
    }

    /// The node the tier draws from, relative to the ladder's budget (`None`: that budget).
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The budget this tier reserves on when the ladder runs on `budget`.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] when the tier names a node that does not exist below `budget`.
    pub(crate) fn target<'b>(&self, budget: &'b Budget) -> Result<Cow<'b, Budget>> {
        match &self.node {
            None => Ok(Cow::Borrowed(budget)),
            Some(relative) => budget.at(relative).map(Cow::Owned),
        }
    }

    /// Reserves this tier's estimate on its node (see [`target`](Tier::target)).
    pub(crate) fn reserve_on<'b>(&self, budget: &'b Budget) -> Result<Guard<'b>> {
        match self.target(budget)? {
            Cow::Borrowed(target) => target.reserve(self.estimate),
            Cow::Owned(target) => target.reserve_owned(self.estimate),
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
///
/// Tiers may draw from different sub-budgets ([`Tier::drawing_from`]): premium answers from
/// `chatbot/premium` until it is spent, then economy answers from `chatbot/tools`, then the
/// denial of the last tier, naming the node that ran out:
///
/// ```
/// use budget_guard::{Budget, Ladder, Limit, Tier, usd};
/// # fn main() -> budget_guard::Result<()> {
/// let chatbot = Budget::builder("chatbot", Limit::hard(usd!("100")))
///     .child("premium", Limit::hard(usd!("60")))
///     .child("tools", Limit::hard(usd!("40")))
///     .build()?;
/// let ladder = Ladder::new()
///     .with(Tier::new("premium", usd!("30")).drawing_from("premium"))
///     .with(Tier::new("economy", usd!("20")).drawing_from("tools"));
/// let mut served = Vec::new();
/// let denial = loop {
///     match ladder.reserve(&chatbot) {
///         Ok((tier, guard)) => {
///             served.push(tier.name());
///             guard.commit(tier.estimate())?;
///         }
///         Err(denial) => break denial,
///     }
/// };
/// assert_eq!(served, ["premium", "premium", "economy", "economy"]);
/// assert_eq!(denial.exceeded().unwrap().node.as_ref(), "chatbot/tools");
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

    /// The best tier `budget` (or the node a tier draws from) can pay for now, by a dry check of the balances on the path (no
    /// hold is taken, so another caller may take the room before you reserve; use
    /// [`reserve`](Ladder::reserve) to choose and hold in one step).
    ///
    /// # Errors
    /// The denial of the last tier that was checked ([`Error::BudgetExceeded`] naming the
    /// limiting node, [`Error::InDebt`]), or [`Error::NoTierAllowed`] when every tier's rule
    /// excludes it; [`Error::UnknownNode`] as `reserve` would (also for a tier whose
    /// [`drawing_from`](Tier::drawing_from) node does not exist).
    pub fn select(&self, budget: &Budget) -> Result<&Tier> {
        let own_path = PathView::read(budget)?;
        let mut denial = None;
        for tier in &self.tiers {
            let target = tier.target(budget)?;
            let drawn_path;
            let path = if tier.node.is_some() {
                drawn_path = PathView::read(&target)?;
                &drawn_path
            } else {
                &own_path
            };
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
    /// rule excludes them and moving on when a reserve is denied. Returns the tier and its guard
    /// (on the tier's own node when it [draws from one](Tier::drawing_from)).
    ///
    /// Each reserve is the store's atomic reserve, so two callers racing for the last room both
    /// get a tier that fits (or a denial); neither passes a hard limit. The usage rules are read
    /// from the balances just before the reserve.
    ///
    /// # Errors
    /// As [`select`](Ladder::select); a non-denial error of a reserve (bad input, a store
    /// failure) is returned at once.
    pub fn reserve<'b>(&self, budget: &'b Budget) -> Result<(&Tier, Guard<'b>)> {
        let mut denial = None;
        for tier in &self.tiers {
            if tier.usage_below.is_some() && !PathView::read(&*tier.target(budget)?)?.allows(tier) {
                continue;
            }
            match tier.reserve_on(budget) {
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
