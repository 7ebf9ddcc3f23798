//! The two documented choices of a budgeted call (what to do with an output cap the budget
//! cannot pay for, what to charge for a lost reply) and the in-flight hold that applies them.

use super::error::{LostReason, OpenAiError};
use super::estimate::{Plan, usd};
use crate::amount::{Amount, Unit};
use crate::cost::Cost;
use crate::error::Error;
use crate::guard::Guard;
use crate::meter::CommitUsageError;
use crate::price::PricingError;
use crate::usage::Usage;

/// What a call is charged when its request was sent but its reply was lost (a timeout, a
/// connection reset, a body or stream cut short, a reply without usage, a stream dropped
/// before its usage arrived): the provider may have billed it, and nobody can tell how much.
///
/// A request that never reached the server (connection refused) is **not** a lost reply: it is
/// released and fails with [`OpenAiError::Transport`]. A provider error status is not one
/// either: it is released and fails with [`OpenAiError::Provider`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReplyPolicy {
    /// Charge the whole hold: the call's worst case. The default, and the right one under a
    /// hard cap: it is the only figure known not to be below what the provider may bill, so
    /// the budget's books never claim less than was spent.
    #[default]
    ChargeHold,
    /// Release the hold and charge nothing: for providers known not to bill interrupted calls,
    /// or budgets that prefer to under-count than to over-count.
    Release,
    /// Charge the prompt bound plus `output_tokens` of output (never more than the call's cap):
    /// a middle ground for callers who know their typical reply length.
    ChargeEstimate {
        /// Output tokens assumed produced, over all choices.
        output_tokens: u32,
    },
}

impl LostReplyPolicy {
    /// The cost to charge on `guard` for a lost reply of `plan` sent with `cap`; `None` to
    /// release.
    pub(crate) fn charge(
        self,
        guard: &Guard<'_>,
        plan: &Plan,
        cap: u32,
    ) -> Result<Option<Cost>, PricingError> {
        match self {
            LostReplyPolicy::ChargeHold => Ok(Some(guard.held())),
            LostReplyPolicy::Release => Ok(None),
            LostReplyPolicy::ChargeEstimate { output_tokens } => {
                let output = u64::from(output_tokens).min(plan.output_tokens(cap));
                let usage = Usage::new(plan.prompt_tokens, output);
                guard.usage_cost(&plan.price, &usage).map(Some)
            }
        }
    }
}

/// What to do when the budget cannot pay for the request's output cap (the request's
/// `max_completion_tokens` / `max_tokens`, or the client's default when it sets neither).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapPolicy {
    /// Refuse the call with the budget's denial ([`OpenAiError::Budget`], nothing held or sent).
    /// The default: a reply the caller asked to allow `N` tokens is never silently truncated,
    /// and an agent loop stops cleanly when the next worst case no longer fits.
    #[default]
    Refuse,
    /// Lower the cap to what the remaining budget pays for, but not below `floor` tokens per
    /// choice (below it, refuse as above). The hold is taken in dollars only
    /// ([`Budget::reserve_up_to`](crate::Budget::reserve_up_to)), so token and request limits on
    /// the path are not held for a lowered call. The reply may end with `finish_reason: length`.
    Lower {
        /// The smallest cap worth sending.
        floor: u32,
    },
}

/// A hold for a call in flight. Settled exactly once: committed from usage, released, or
/// charged by the lost-reply policy; dropped unsettled (a cancelled future, a stream dropped
/// early), it is charged by the lost-reply policy, since the request may have been billed.
#[derive(Debug)]
pub(crate) struct InFlight {
    guard: Option<Guard<'static>>,
    plan: Plan,
    cap: u32,
    lost: LostReplyPolicy,
}

impl InFlight {
    pub(crate) fn new(guard: Guard<'static>, plan: Plan, cap: u32, lost: LostReplyPolicy) -> Self {
        InFlight {
            guard: Some(guard),
            plan,
            cap,
            lost,
        }
    }

    /// The dollars held (zero once settled).
    pub(crate) fn held_usd(&self) -> Amount {
        self.guard
            .as_ref()
            .map_or(Amount::zero(Unit::Usd), |guard| usd(&guard.held()))
    }

    pub(crate) fn is_settled(&self) -> bool {
        self.guard.is_none()
    }

    /// Commits `usage` as the call's cost; returns the dollars charged.
    pub(crate) fn commit_usage(&mut self, usage: &Usage) -> Result<Amount, OpenAiError> {
        let Some(guard) = self.guard.take() else {
            return Ok(Amount::zero(Unit::Usd));
        };
        let cost = match guard.usage_cost(&self.plan.price, usage) {
            Ok(cost) => cost,
            Err(error) => {
                self.guard = Some(guard);
                let detail = format!("usage cannot be priced: {error}");
                return Err(self.lose(LostReason::Unreadable { detail }));
            }
        };
        match guard.commit_usage(&self.plan.price, usage) {
            Ok(committed) => Ok(usd(&committed.spent)),
            Err(CommitUsageError::Commit(error)) => {
                // An overage the policy rejected was still recorded (the excess as debt where
                // it did not fit). The other commit errors are bad input, which the cost built
                // from the guard's own units cannot be; the returned guard then releases.
                let charged = match error.error() {
                    Error::OverageRejected { .. } => usd(&cost),
                    _ => Amount::zero(Unit::Usd),
                };
                Err(OpenAiError::Budget {
                    error: error.into_error(),
                    charged,
                })
            }
            Err(CommitUsageError::Pricing { error, guard }) => {
                self.guard = Some(*guard);
                let detail = format!("usage cannot be priced: {error}");
                Err(self.lose(LostReason::Unreadable { detail }))
            }
        }
    }

    /// Releases the hold: the call cannot have been billed.
    pub(crate) fn release(&mut self) -> Result<(), OpenAiError> {
        match self.guard.take() {
            Some(guard) => guard.release().map_err(OpenAiError::budget),
            None => Ok(()),
        }
    }

    /// Settles a lost reply by the policy and returns the error that says so.
    pub(crate) fn lose(&mut self, reason: LostReason) -> OpenAiError {
        let charged = self.settle_lost();
        OpenAiError::LostReply { reason, charged }
    }

    fn settle_lost(&mut self) -> Amount {
        let Some(guard) = self.guard.take() else {
            return Amount::zero(Unit::Usd);
        };
        let charge = self.lost.charge(&guard, &self.plan, self.cap);
        let outcome = match charge {
            Ok(Some(cost)) => guard
                .commit(cost)
                .map(|c| usd(&c.spent))
                .map_err(Error::from),
            Ok(None) => guard.release().map(|()| Amount::zero(Unit::Usd)),
            // Cannot price the estimate (overflow): the hold is the conservative charge.
            Err(_) => {
                let held = guard.held();
                guard
                    .commit(held)
                    .map(|c| usd(&c.spent))
                    .map_err(Error::from)
            }
        };
        outcome.unwrap_or_else(|error| {
            tracing::warn!(target: "budget_guard", %error, "settling a lost reply failed");
            Amount::zero(Unit::Usd)
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.guard.is_some() {
            self.settle_lost();
        }
    }
}
