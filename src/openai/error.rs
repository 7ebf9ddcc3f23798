//! What a budgeted call can end in, each with what it charged.

use std::fmt;

use crate::amount::{Amount, Unit};
use crate::error::Error;
use crate::price::PricingError;

/// Why a reply counts as lost: the request reached the provider (who may have billed it), but
/// the reply's usage never arrived intact. [`LostReplyPolicy`](super::LostReplyPolicy) decides
/// what such a call is charged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// The wrapper's deadline ([`BudgetedChat::with_timeout`](super::BudgetedChat::with_timeout))
    /// or the HTTP client's own timeout passed while waiting for the reply.
    Timeout,
    /// The connection broke after the request was sent: reset, or a body (or stream) cut short.
    Interrupted {
        /// The transport's message.
        detail: String,
    },
    /// A reply arrived but could not be read: not the expected JSON, or a usage report that
    /// contradicts itself (more cached tokens than prompt tokens).
    Unreadable {
        /// What was wrong.
        detail: String,
    },
    /// The reply (or the stream, which ended cleanly) carried no usage report.
    NoUsage,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Timeout => f.write_str("timed out waiting for the reply"),
            LostReason::Interrupted { detail } => write!(f, "connection broke mid-reply: {detail}"),
            LostReason::Unreadable { detail } => write!(f, "unreadable reply: {detail}"),
            LostReason::NoUsage => f.write_str("the reply carried no usage report"),
        }
    }
}

/// A failed budgeted call: what happened and what it charged the budget.
///
/// Every variant answers [`charged`](OpenAiError::charged): zero when nothing can have been
/// billed (a refusal, a request that never reached the server, a provider error), the amount
/// the [`LostReplyPolicy`](super::LostReplyPolicy) chose for a lost reply. No variant leaves a
/// hold behind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAiError {
    /// The budget refused the hold (see [`Error::is_denial`]) or failed; nothing was sent. Also
    /// a commit the overage policy rejected after the call, with what that commit recorded.
    #[error("budget: {error} (charged {charged})")]
    Budget {
        /// The budget's error.
        error: Error,
        /// What was charged: zero for a refused hold.
        charged: Amount,
    },
    /// The model is not in the price table, or the counts overflow; nothing was held or sent.
    #[error("pricing: {0}")]
    Pricing(#[from] PricingError),
    /// The request cannot be sent as it is; nothing was held or sent.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The hold given to [`BudgetedChat::chat_held`](super::BudgetedChat::chat_held) or
    /// [`chat_within`](super::BudgetedChat::chat_within) cannot pay for the request's output cap
    /// (or, under [`CapPolicy::Lower`](super::CapPolicy::Lower), for its floor); nothing was sent.
    #[error("the hold of {held} cannot pay for this request's cap; it needs {needed}")]
    HoldTooSmall {
        /// What the hold holds, in dollars.
        held: Amount,
        /// The worst case of the smallest cap allowed.
        needed: Amount,
    },
    /// The provider answered with an error status. Error replies carry no usage, so nothing is
    /// charged.
    #[error("provider error {status}: {message} (charged {charged})")]
    Provider {
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
        /// What was charged (zero).
        charged: Amount,
    },
    /// The request never reached the server (connection refused, DNS failure); the hold was
    /// released.
    #[error("transport: {detail} (charged {charged})")]
    Transport {
        /// The transport's message.
        detail: String,
        /// What was charged (zero).
        charged: Amount,
    },
    /// The request was sent but its reply was lost; charged by the lost-reply policy.
    #[error("lost reply: {reason} (charged {charged})")]
    LostReply {
        /// What went wrong.
        reason: LostReason,
        /// What the policy charged.
        charged: Amount,
    },
}

impl OpenAiError {
    /// What the failed call charged the budget, in dollars.
    pub fn charged(&self) -> Amount {
        match self {
            OpenAiError::Budget { charged, .. }
            | OpenAiError::Provider { charged, .. }
            | OpenAiError::Transport { charged, .. }
            | OpenAiError::LostReply { charged, .. } => *charged,
            OpenAiError::Pricing(_)
            | OpenAiError::InvalidRequest { .. }
            | OpenAiError::HoldTooSmall { .. } => Amount::zero(Unit::Usd),
        }
    }

    /// `true` when the budget said no before anything was sent (a refused hold, or a hold too
    /// small for the request): the signal for a ladder or an agent loop to stop or step down.
    pub fn is_denial(&self) -> bool {
        match self {
            OpenAiError::Budget { error, .. } => error.is_denial(),
            OpenAiError::Pricing(error) => error.is_denial(),
            OpenAiError::HoldTooSmall { .. } => true,
            _ => false,
        }
    }

    /// `true` for failures another model or a later retry may not share: provider errors with a
    /// 429 or 5xx status, transport errors and lost replies. A fallback chain's classifier.
    pub fn is_retryable(&self) -> bool {
        match self {
            OpenAiError::Provider { status, .. } => *status == 429 || *status >= 500,
            OpenAiError::Transport { .. } | OpenAiError::LostReply { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn budget(error: Error) -> Self {
        OpenAiError::Budget {
            error,
            charged: Amount::zero(Unit::Usd),
        }
    }
}
