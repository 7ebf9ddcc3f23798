//! The remembered idempotency keys in the image: each entry's request and outcome.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::values::{AmountW, CostW, Invalid, at, time};
use crate::idempotency::HoldEnd;
use crate::ids::HoldId;
use crate::ledger::idempotency::{Entry, Outcome, Request};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EntryW {
    at: i64,
    request: RequestW,
    outcome: OutcomeW,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum RequestW {
    Reserve(String, CostW, u64),
    ReserveUpTo(String, AmountW, AmountW, u64),
    Commit(u64, CostW),
    Release(u64),
    Credit(String, AmountW),
    Debit(String, AmountW),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum HoldEndW {
    Committed,
    Released,
    Expired,
    Unrecorded,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum OutcomeW {
    Reserved {
        hold: u64,
        held: CostW,
        over_soft_limit: Option<String>,
        expires_at: i64,
        ended: Option<HoldEndW>,
    },
    Committed {
        spent: CostW,
        returned: CostW,
        overage: CostW,
        expired: bool,
    },
    OverageRejected {
        node: String,
        held: AmountW,
        actual: AmountW,
        debt: AmountW,
    },
    Released(bool),
    Funded,
}

pub(super) fn entry_image(entry: &Entry) -> EntryW {
    EntryW {
        at: time(entry.at),
        request: match &entry.request {
            Request::Reserve {
                node,
                cost,
                ttl_nanos,
            } => RequestW::Reserve(node.to_string(), cost.into(), *ttl_nanos),
            Request::ReserveUpTo {
                node,
                min,
                max,
                ttl_nanos,
            } => RequestW::ReserveUpTo(node.to_string(), (*min).into(), (*max).into(), *ttl_nanos),
            Request::Commit { hold, actual } => RequestW::Commit(hold.into_raw(), actual.into()),
            Request::Release { hold } => RequestW::Release(hold.into_raw()),
            Request::Credit { node, amount } => {
                RequestW::Credit(node.to_string(), (*amount).into())
            }
            Request::Debit { node, amount } => RequestW::Debit(node.to_string(), (*amount).into()),
        },
        outcome: match &entry.outcome {
            Outcome::Reserved {
                hold,
                held,
                over_soft_limit,
                expires_at,
                ended,
            } => OutcomeW::Reserved {
                hold: hold.into_raw(),
                held: held.into(),
                over_soft_limit: over_soft_limit.as_deref().map(str::to_owned),
                expires_at: time(*expires_at),
                ended: ended.map(|how| match how {
                    HoldEnd::Committed => HoldEndW::Committed,
                    HoldEnd::Released => HoldEndW::Released,
                    HoldEnd::Expired => HoldEndW::Expired,
                    _ => HoldEndW::Unrecorded,
                }),
            },
            Outcome::Committed {
                spent,
                returned,
                overage,
                expired,
            } => OutcomeW::Committed {
                spent: spent.into(),
                returned: returned.into(),
                overage: overage.into(),
                expired: *expired,
            },
            Outcome::OverageRejected {
                node,
                held,
                actual,
                debt,
            } => OutcomeW::OverageRejected {
                node: node.to_string(),
                held: (*held).into(),
                actual: (*actual).into(),
                debt: (*debt).into(),
            },
            Outcome::Released(released) => OutcomeW::Released(*released),
            Outcome::Funded => OutcomeW::Funded,
        },
    }
}

pub(super) fn entry_from_image(entry: EntryW) -> Result<Entry, Invalid> {
    let request = match entry.request {
        RequestW::Reserve(node, cost, ttl_nanos) => Request::Reserve {
            node: Arc::from(node),
            cost: cost.into_cost()?,
            ttl_nanos,
        },
        RequestW::ReserveUpTo(node, min, max, ttl_nanos) => Request::ReserveUpTo {
            node: Arc::from(node),
            min: min.into_amount()?,
            max: max.into_amount()?,
            ttl_nanos,
        },
        RequestW::Commit(hold, actual) => Request::Commit {
            hold: HoldId::from_raw(hold),
            actual: actual.into_cost()?,
        },
        RequestW::Release(hold) => Request::Release {
            hold: HoldId::from_raw(hold),
        },
        RequestW::Credit(node, amount) => Request::Credit {
            node: Arc::from(node),
            amount: amount.into_amount()?,
        },
        RequestW::Debit(node, amount) => Request::Debit {
            node: Arc::from(node),
            amount: amount.into_amount()?,
        },
    };
    let outcome = match entry.outcome {
        OutcomeW::Reserved {
            hold,
            held,
            over_soft_limit,
            expires_at,
            ended,
        } => Outcome::Reserved {
            hold: HoldId::from_raw(hold),
            held: held.into_cost()?,
            over_soft_limit: over_soft_limit.map(Arc::from),
            expires_at: at(expires_at),
            ended: ended.map(|how| match how {
                HoldEndW::Committed => HoldEnd::Committed,
                HoldEndW::Released => HoldEnd::Released,
                HoldEndW::Expired => HoldEnd::Expired,
                HoldEndW::Unrecorded => HoldEnd::Unrecorded,
            }),
        },
        OutcomeW::Committed {
            spent,
            returned,
            overage,
            expired,
        } => Outcome::Committed {
            spent: spent.into_cost()?,
            returned: returned.into_cost()?,
            overage: overage.into_cost()?,
            expired,
        },
        OutcomeW::OverageRejected {
            node,
            held,
            actual,
            debt,
        } => Outcome::OverageRejected {
            node: Arc::from(node),
            held: held.into_amount()?,
            actual: actual.into_amount()?,
            debt: debt.into_amount()?,
        },
        OutcomeW::Released(released) => Outcome::Released(released),
        OutcomeW::Funded => Outcome::Funded,
    };
    Ok(Entry {
        at: at(entry.at),
        request,
        outcome,
    })
}
