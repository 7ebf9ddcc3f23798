//! Top-ups applied or refused and not reported yet, in the image.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::values::{AmountW, Invalid, at, time};
use crate::top_up::{TopUpApplied, TopUpCap, TopUpCapped, TopUpReason};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ReasonW {
    Below,
    Projected,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TopUpAppliedW {
    node: String,
    added: AmountW,
    limit: AmountW,
    remaining: AmountW,
    reason: ReasonW,
    applied_at: i64,
    count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum TopUpCapW {
    Count(u32),
    Total(AmountW),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TopUpCappedW {
    node: String,
    cap: TopUpCapW,
    reason: ReasonW,
    wanted: AmountW,
    count: u32,
    total: AmountW,
    remaining: AmountW,
    window_ends_at: Option<i64>,
    capped_at: i64,
}

fn reason_image(reason: TopUpReason) -> ReasonW {
    match reason {
        TopUpReason::Below => ReasonW::Below,
        _ => ReasonW::Projected,
    }
}

fn reason(image: ReasonW) -> TopUpReason {
    match image {
        ReasonW::Below => TopUpReason::Below,
        ReasonW::Projected => TopUpReason::Projected,
    }
}

pub(super) fn applied_image(applied: &TopUpApplied) -> TopUpAppliedW {
    TopUpAppliedW {
        node: applied.node.to_string(),
        added: applied.added.into(),
        limit: applied.limit.into(),
        remaining: applied.remaining.into(),
        reason: reason_image(applied.reason),
        applied_at: time(applied.applied_at),
        count: applied.count,
    }
}

pub(super) fn applied_from_image(image: TopUpAppliedW) -> Result<TopUpApplied, Invalid> {
    Ok(TopUpApplied {
        node: Arc::from(image.node),
        added: image.added.into_amount()?,
        limit: image.limit.into_amount()?,
        remaining: image.remaining.into_amount()?,
        reason: reason(image.reason),
        applied_at: at(image.applied_at),
        count: image.count,
    })
}

pub(super) fn capped_image(capped: &TopUpCapped) -> TopUpCappedW {
    TopUpCappedW {
        node: capped.node.to_string(),
        cap: match capped.cap {
            TopUpCap::Count { max } => TopUpCapW::Count(max),
            TopUpCap::Total { max } => TopUpCapW::Total(max.into()),
        },
        reason: reason_image(capped.reason),
        wanted: capped.wanted.into(),
        count: capped.count,
        total: capped.total.into(),
        remaining: capped.remaining.into(),
        window_ends_at: capped.window_ends_at.map(time),
        capped_at: time(capped.capped_at),
    }
}

pub(super) fn capped_from_image(image: TopUpCappedW) -> Result<TopUpCapped, Invalid> {
    Ok(TopUpCapped {
        node: Arc::from(image.node),
        cap: match image.cap {
            TopUpCapW::Count(max) => TopUpCap::Count { max },
            TopUpCapW::Total(max) => TopUpCap::Total {
                max: max.into_amount()?,
            },
        },
        reason: reason(image.reason),
        wanted: image.wanted.into_amount()?,
        count: image.count,
        total: image.total.into_amount()?,
        remaining: image.remaining.into_amount()?,
        window_ends_at: image.window_ends_at.map(at),
        capped_at: at(image.capped_at),
    })
}
