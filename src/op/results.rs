//! Public constructors for every result an [`Applied`](super::Applied) or
//! [`Answer`](super::Answer) carries, so that a store outside this crate (a remote backend) can
//! produce each of them. The result types are `#[non_exhaustive]` (fields may be added), so
//! they are built with `new` plus `with_*` setters instead of struct literals; a field added
//! later gets a neutral default here.
//!
//! The constructors check nothing: they describe what the store decided. A store is trusted to
//! report figures in the result's unit.

use std::sync::Arc;

use crate::amount::{Amount, Unit};
use crate::approval::ApprovalRequest;
use crate::balance::{AccountSnapshot, Balance, CapSnapshot, HoldSnapshot, NodeInfo, NodeSnapshot};
use crate::burn::{BurnRate, BurnWindow};
use crate::check::{Check, LimitStatus, Verdict};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::error::Exceeded;
use crate::expiry::ExpiredHold;
use crate::ids::HoldId;
use crate::node_state::NodeState;
use crate::period::Period;
use crate::policy::Limit;
use crate::rate::RateLimit;
use crate::store::{Committed, Reservation};
use crate::threshold::{Crossings, ThresholdCrossing};
use crate::top_up::{TopUp, TopUpApplied, TopUpCapped, TopUpReason, TopUpSnapshot};

/// Generates `with_<field>` setters that replace one public field.
macro_rules! setters {
    ($ty:ty { $( $(#[$doc:meta])* $name:ident : $field:ident : $value:ty ),* $(,)? }) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, $field: $value) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

impl Reservation {
    /// A granted reservation of `held` as hold `hold`, expiring at `expires_at`, with no
    /// events, expiries or top-ups to report and not replayed.
    ///
    /// ```
    /// use budget_guard::{Amount, Cost, HoldId, Reservation, Timestamp};
    /// # fn main() -> budget_guard::Result<()> {
    /// let held = Cost::from(Amount::usd("2")?);
    /// let granted = Reservation::new(HoldId::from_raw(7), held, Timestamp::EPOCH).with_replayed(true);
    /// assert_eq!(granted.held, held);
    /// assert!(granted.replayed);
    /// # Ok(()) }
    /// ```
    pub fn new(hold: HoldId, held: Cost, expires_at: Timestamp) -> Self {
        Reservation {
            hold,
            held,
            over_soft_limit: None,
            events: Crossings::new(),
            expires_at,
            expired: Vec::new(),
            replayed: false,
            top_ups: Vec::new(),
            top_up_caps: Vec::new(),
        }
    }
}

setters!(Reservation {
    /// Sets [`Reservation::over_soft_limit`].
    with_over_soft_limit: over_soft_limit: Option<Arc<str>>,
    /// Sets [`Reservation::events`].
    with_events: events: Crossings,
    /// Sets [`Reservation::expired`].
    with_expired: expired: Vec<ExpiredHold>,
    /// Sets [`Reservation::replayed`].
    with_replayed: replayed: bool,
    /// Sets [`Reservation::top_ups`].
    with_top_ups: top_ups: Vec<TopUpApplied>,
    /// Sets [`Reservation::top_up_caps`].
    with_top_up_caps: top_up_caps: Vec<TopUpCapped>,
});

impl Committed {
    /// A commit that counted `spent`, returned `returned` and allowed `overage`, with no events
    /// or top-ups, not on an expired hold and not replayed.
    pub fn new(spent: Cost, returned: Cost, overage: Cost) -> Self {
        Committed {
            spent,
            returned,
            overage,
            events: Crossings::new(),
            expired: false,
            replayed: false,
            top_ups: Vec::new(),
            top_up_caps: Vec::new(),
        }
    }
}

setters!(Committed {
    /// Sets [`Committed::events`].
    with_events: events: Crossings,
    /// Sets [`Committed::expired`].
    with_expired: expired: bool,
    /// Sets [`Committed::replayed`].
    with_replayed: replayed: bool,
    /// Sets [`Committed::top_ups`].
    with_top_ups: top_ups: Vec<TopUpApplied>,
    /// Sets [`Committed::top_up_caps`].
    with_top_up_caps: top_up_caps: Vec<TopUpCapped>,
});

impl Check {
    /// The dry run of a reserve of `requested` on `node` with `verdict`, naming no limiting
    /// node, reclaiming nothing and needing no approval.
    pub fn new(node: impl Into<Arc<str>>, requested: Cost, verdict: Verdict) -> Self {
        Check {
            node: node.into(),
            requested,
            verdict,
            limiting: Vec::new(),
            over_soft_limit: None,
            expired: Vec::new(),
            approvals: Vec::new(),
            limits: Vec::new(),
        }
    }
}

setters!(Check {
    /// Sets [`Check::limiting`].
    with_limiting: limiting: Vec<Exceeded>,
    /// Sets [`Check::over_soft_limit`].
    with_over_soft_limit: over_soft_limit: Option<Arc<str>>,
    /// Sets [`Check::expired`].
    with_expired: expired: Vec<ExpiredHold>,
    /// Sets [`Check::approvals`].
    with_approvals: approvals: Vec<ApprovalRequest>,
    /// Sets [`Check::limits`].
    with_limits: limits: Vec<LimitStatus>,
});

impl LimitStatus {
    /// The row of one limit: its figures in `balance`, what the request asks of its unit, and
    /// whether that refuses.
    pub fn new(balance: Balance, requested: Amount, refuses: bool) -> Self {
        LimitStatus {
            balance,
            requested,
            refuses,
        }
    }
}

impl Balance {
    /// The balance of `node` in `unit` with nothing spent, reserved or owed and no limit (so
    /// `remaining` and `allowance` are `None`); set the figures with the `with_*` setters.
    ///
    /// ```
    /// use budget_guard::{Amount, Balance, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let limit = Limit::hard(Amount::usd("10")?);
    /// let balance = Balance::new("acme", Unit::Usd)
    ///     .with_limit(Some(limit))
    ///     .with_allowance(Some(Amount::usd("10")?))
    ///     .with_spent(Amount::usd("4")?)
    ///     .with_remaining(Some(Amount::usd("6")?));
    /// assert_eq!(balance.percent_used(), Some(40));
    /// # Ok(()) }
    /// ```
    pub fn new(node: impl Into<Arc<str>>, unit: Unit) -> Self {
        Balance {
            node: node.into(),
            unit,
            limit: None,
            spent: Amount::zero(unit),
            reserved: Amount::zero(unit),
            debt: Amount::zero(unit),
            remaining: None,
            allowance: None,
            resets_at: None,
            burn_rate: None,
            depletes_at: None,
        }
    }
}

setters!(Balance {
    /// Sets [`Balance::limit`].
    with_limit: limit: Option<Limit>,
    /// Sets [`Balance::spent`].
    with_spent: spent: Amount,
    /// Sets [`Balance::reserved`].
    with_reserved: reserved: Amount,
    /// Sets [`Balance::debt`].
    with_debt: debt: Amount,
    /// Sets [`Balance::remaining`].
    with_remaining: remaining: Option<Amount>,
    /// Sets [`Balance::allowance`].
    with_allowance: allowance: Option<Amount>,
    /// Sets [`Balance::resets_at`].
    with_resets_at: resets_at: Option<Timestamp>,
    /// Sets [`Balance::burn_rate`].
    with_burn_rate: burn_rate: Option<BurnRate>,
    /// Sets [`Balance::depletes_at`].
    with_depletes_at: depletes_at: Option<Timestamp>,
});

impl NodeInfo {
    /// The root node `path` in `state`, with no children, balances, holds or rules.
    pub fn new(path: impl Into<Arc<str>>, state: NodeState) -> Self {
        NodeInfo {
            path: path.into(),
            parent: None,
            children: Vec::new(),
            balances: Vec::new(),
            live_holds: 0,
            state,
            rate_limit: None,
            burn_window: None,
            top_up: None,
        }
    }
}

setters!(NodeInfo {
    /// Sets [`NodeInfo::parent`].
    with_parent: parent: Option<Arc<str>>,
    /// Sets [`NodeInfo::children`].
    with_children: children: Vec<Arc<str>>,
    /// Sets [`NodeInfo::balances`].
    with_balances: balances: Vec<Balance>,
    /// Sets [`NodeInfo::live_holds`].
    with_live_holds: live_holds: usize,
    /// Sets [`NodeInfo::rate_limit`].
    with_rate_limit: rate_limit: Option<RateLimit>,
    /// Sets [`NodeInfo::burn_window`].
    with_burn_window: burn_window: Option<BurnWindow>,
    /// Sets [`NodeInfo::top_up`].
    with_top_up: top_up: Option<TopUp>,
});

impl ExpiredHold {
    /// Hold `hold` on `node`, which held `held`, had recorded `recorded` and passed its
    /// deadline `expired_at`.
    pub fn new(
        hold: HoldId,
        node: impl Into<Arc<str>>,
        held: Cost,
        recorded: Cost,
        expired_at: Timestamp,
    ) -> Self {
        ExpiredHold {
            hold,
            node: node.into(),
            held,
            recorded,
            expired_at,
        }
    }
}

impl Exceeded {
    /// The figures of the node `node` whose hard limit `limit`, with `spent` and `reserved`,
    /// has no room for `requested`.
    pub fn new(
        node: impl Into<Arc<str>>,
        limit: Amount,
        spent: Amount,
        reserved: Amount,
        requested: Amount,
    ) -> Self {
        Exceeded {
            node: node.into(),
            limit,
            spent,
            reserved,
            requested,
            period: None,
        }
    }

    /// The same figures for the cap of `period` (a node may have one cap per period in a unit).
    #[must_use]
    pub fn with_period(mut self, period: Option<Period>) -> Self {
        self.period = period;
        self
    }
}

impl ThresholdCrossing {
    /// Level `level` (percent) of `limit` on `node` crossed, with the node's `spent` and
    /// `reserved` right after the operation (in the limit's unit). The basis and kind are the
    /// limit's.
    pub fn from_figures(
        node: impl Into<Arc<str>>,
        limit: &Limit,
        spent: Amount,
        reserved: Amount,
        level: u16,
    ) -> Self {
        // Slot 0/bit 0: the slot only matters to the ledger that fired the crossing, and a
        // crossing built here never goes back into a ledger.
        ThresholdCrossing::new(
            node.into(),
            0,
            limit.unit(),
            limit,
            spent.minor_units(),
            reserved.minor_units(),
            (0, level),
        )
    }

    /// This crossing with the node's burn rate and projected depletion.
    #[must_use]
    pub fn with_burn(mut self, rate: BurnRate, depletes_at: Option<Timestamp>) -> Self {
        self.set_burn(rate, depletes_at);
        self
    }
}

impl From<Vec<ThresholdCrossing>> for Crossings {
    fn from(list: Vec<ThresholdCrossing>) -> Self {
        let mut crossings = Crossings::new();
        for crossing in list {
            crossings.push(crossing);
        }
        crossings
    }
}

impl TopUpApplied {
    /// A top-up of `added` on `node` for `reason` at `applied_at`, leaving `limit` and
    /// `remaining`; the rule's `count`-th in its window.
    pub fn new(
        node: impl Into<Arc<str>>,
        added: Amount,
        limit: Amount,
        remaining: Amount,
        reason: TopUpReason,
        applied_at: Timestamp,
        count: u32,
    ) -> Self {
        TopUpApplied {
            node: node.into(),
            added,
            limit,
            remaining,
            reason,
            applied_at,
            count,
        }
    }
}

impl NodeSnapshot {
    /// Node `path` in a [`Snapshot`](crate::Snapshot): active, no accounts, no rules.
    pub fn new(path: impl Into<Arc<str>>) -> Self {
        NodeSnapshot {
            path: path.into(),
            accounts: Vec::new(),
            state: NodeState::Active,
            rate_limit: None,
            burn_window: None,
            top_up: None,
        }
    }
}

setters!(NodeSnapshot {
    /// Sets [`NodeSnapshot::accounts`].
    with_accounts: accounts: Vec<AccountSnapshot>,
    /// Sets [`NodeSnapshot::state`].
    with_state: state: NodeState,
    /// Sets [`NodeSnapshot::rate_limit`].
    with_rate_limit: rate_limit: Option<RateLimit>,
    /// Sets [`NodeSnapshot::burn_window`].
    with_burn_window: burn_window: Option<BurnWindow>,
    /// Sets [`NodeSnapshot::top_up`].
    with_top_up: top_up: Option<TopUpSnapshot>,
});

impl AccountSnapshot {
    /// An account in `unit` with `limit` (or none) and nothing spent, reserved or owed.
    pub fn new(unit: Unit, limit: Option<Limit>) -> Self {
        AccountSnapshot {
            unit,
            limit,
            spent: Amount::zero(unit),
            reserved: Amount::zero(unit),
            debt: Amount::zero(unit),
            allowance: None,
            resets_at: None,
            further_limits: Vec::new(),
        }
    }
}

setters!(AccountSnapshot {
    /// Sets [`AccountSnapshot::spent`].
    with_spent: spent: Amount,
    /// Sets [`AccountSnapshot::reserved`].
    with_reserved: reserved: Amount,
    /// Sets [`AccountSnapshot::debt`].
    with_debt: debt: Amount,
    /// Sets [`AccountSnapshot::allowance`].
    with_allowance: allowance: Option<Amount>,
    /// Sets [`AccountSnapshot::resets_at`].
    with_resets_at: resets_at: Option<Timestamp>,
    /// Sets [`AccountSnapshot::further_limits`].
    with_further_limits: further_limits: Vec<CapSnapshot>,
});

impl CapSnapshot {
    /// A further cap `limit` (another period than the account's own) with `spent` in its
    /// current period.
    pub fn new(limit: Limit, spent: Amount) -> Self {
        CapSnapshot {
            limit,
            spent,
            allowance: None,
            resets_at: None,
        }
    }
}

setters!(CapSnapshot {
    /// Sets [`CapSnapshot::allowance`].
    with_allowance: allowance: Option<Amount>,
    /// Sets [`CapSnapshot::resets_at`].
    with_resets_at: resets_at: Option<Timestamp>,
});

impl HoldSnapshot {
    /// Hold `id` on `node`, holding `held` with `recorded` already spent, until `expires_at`.
    pub fn new(
        id: HoldId,
        node: impl Into<Arc<str>>,
        held: Cost,
        recorded: Cost,
        expires_at: Timestamp,
    ) -> Self {
        HoldSnapshot {
            id,
            node: node.into(),
            held,
            recorded,
            expires_at,
        }
    }
}
