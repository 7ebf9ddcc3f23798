//! What a reserve and a commit return: [`Reservation`] and [`Committed`].

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::expiry::ExpiredHold;
use crate::ids::HoldId;
use crate::threshold::Crossings;
use crate::top_up::{TopUpApplied, TopUpCapped};

/// A granted reservation, as the store reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Reservation {
    /// The new hold.
    pub hold: HoldId,
    /// What it holds, per unit. Equal to the request for `reserve`; the granted amount for
    /// `reserve_up_to`.
    pub held: Cost,
    /// A node on the path whose *soft* limit this hold passes (the one with the least room left),
    /// if any. Hard limits are never passed; they deny.
    pub over_soft_limit: Option<Arc<str>>,
    /// Threshold levels this reserve reported for the first time since they were last re-armed,
    /// on the node and its ancestors: early warnings on spend plus holds, and levels spend
    /// reached earlier without being reported (see
    /// [`Limit::with_thresholds`](crate::Limit::with_thresholds)). Empty on nearly every call;
    /// delivered as events by [`Budget`](crate::Budget) after the store call.
    pub events: Crossings,
    /// The hold's deadline (see [`crate::expiry`]).
    pub expires_at: Timestamp,
    /// Holds reclaimed by expiry that no earlier operation reported: those this reserve
    /// reclaimed to make room, and those a denied reserve reclaimed before it. Empty on nearly
    /// every call (no allocation); delivered as events by [`Budget`](crate::Budget).
    pub expired: Vec<ExpiredHold>,
    /// `true` if this is the remembered result of an earlier reserve with the same
    /// [idempotency key](crate::idempotency): no new hold was created, `hold` is the first
    /// reserve's, and `events` and `expired` are empty (they were reported the first time).
    pub replayed: bool,
    /// Auto top-ups the store applied that no earlier operation reported: those of this
    /// reserve (before and after its hold) and those of a denied reserve or a `record` before
    /// it (see [`crate::top_up`]). Empty on nearly every call (no allocation); delivered as
    /// [`Event::ToppedUp`](crate::Event::ToppedUp) by [`Budget`](crate::Budget).
    pub top_ups: Vec<TopUpApplied>,
    /// Top-ups a cap refused that no earlier operation reported, reported the same way as
    /// `top_ups` and delivered as [`Event::TopUpCapped`](crate::Event::TopUpCapped).
    pub top_up_caps: Vec<TopUpCapped>,
}

/// What a successful commit recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Committed {
    /// The actual cost now counted as spent (including anything `record` already moved).
    pub spent: Cost,
    /// The unused part of the hold that went back to the budget, per unit (zero if none).
    pub returned: Cost,
    /// The part of the actual cost above the hold that the overage policy allowed, per unit.
    pub overage: Cost,
    /// Threshold levels reached by this commit (an overage raises usage; so may spend recorded
    /// earlier on the hold with [`record`](super::Store::record)).
    pub events: Crossings,
    /// `true` if the hold had been reclaimed by expiry before this commit: the spend above what
    /// was recorded was charged without a hold (see [`crate::expiry`]) and nothing was returned.
    pub expired: bool,
    /// `true` if this is the remembered result of an earlier commit with the same
    /// [idempotency key](crate::idempotency): nothing was recorded this time and `events` is
    /// empty.
    pub replayed: bool,
    /// Auto top-ups not reported before, this commit's included (see
    /// [`Reservation::top_ups`]).
    pub top_ups: Vec<TopUpApplied>,
    /// Top-ups a cap refused, not reported before (see [`Reservation::top_up_caps`]).
    pub top_up_caps: Vec<TopUpCapped>,
}
