//! One chat completion through the budget: send, read the usage, settle the hold.

use std::future::Future;

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    CompletionUsage, CreateChatCompletionRequest, CreateChatCompletionResponse,
};

use super::BudgetedChat;
use super::error::{LostReason, OpenAiError};
use super::estimate::{Plan, usd};
use super::policy::InFlight;
use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::cost::Cost;
use crate::guard::Guard;
use crate::usage::Usage;

/// A served call: the provider's reply and what it cost.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChatReply {
    /// The provider's reply, unchanged.
    pub response: CreateChatCompletionResponse,
    /// The reply's usage as the crate prices it (cached input apart from fresh input).
    pub usage: Usage,
    /// What the call was charged, in dollars.
    pub cost: Amount,
    /// What was held for it, in dollars (its worst case).
    pub held: Amount,
    /// The output cap per choice the request was sent with.
    pub max_tokens: u32,
}

/// How a send failed, before the hold is settled.
pub(crate) enum Failure {
    /// Nothing reached the server.
    NotSent(String),
    /// The client refused the request before sending it.
    Invalid(String),
    /// The provider answered with an error status.
    Provider { status: u16, message: String },
    /// Sent, reply lost.
    Lost(LostReason),
}

/// Sorts an `async_openai` error by whether the provider can have billed the call.
pub(crate) fn classify(error: OpenAIError) -> Failure {
    match error {
        OpenAIError::Reqwest(error) if error.is_connect() => Failure::NotSent(error.to_string()),
        OpenAIError::Reqwest(error) if error.is_builder() => Failure::Invalid(error.to_string()),
        OpenAIError::Reqwest(error) if error.is_timeout() => Failure::Lost(LostReason::Timeout),
        OpenAIError::Reqwest(error) => Failure::Lost(LostReason::Interrupted {
            detail: error.to_string(),
        }),
        OpenAIError::ApiError(reply) => Failure::Provider {
            status: reply.status_code.as_u16(),
            message: reply.api_error.message,
        },
        OpenAIError::JSONDeserialize(error, _) => Failure::Lost(LostReason::Unreadable {
            detail: error.to_string(),
        }),
        OpenAIError::InvalidArgument(reason) => Failure::Invalid(reason),
        other => Failure::Lost(LostReason::Interrupted {
            detail: other.to_string(),
        }),
    }
}

/// The reply's usage in the crate's terms, or why it cannot be used.
pub(crate) fn usage_of(usage: Option<&CompletionUsage>) -> Result<Usage, LostReason> {
    let usage = usage.ok_or(LostReason::NoUsage)?;
    let cached = usage
        .prompt_tokens_details
        .as_ref()
        .and_then(|details| details.cached_tokens)
        .unwrap_or(0);
    let reasoning = usage
        .completion_tokens_details
        .as_ref()
        .and_then(|details| details.reasoning_tokens)
        .unwrap_or(0);
    Usage::openai(
        u64::from(usage.prompt_tokens),
        u64::from(usage.completion_tokens),
        u64::from(cached),
        u64::from(reasoning),
    )
    .map_err(|error| LostReason::Unreadable {
        detail: error.to_string(),
    })
}

/// Settles `flight` for a failed send and returns the error that says what it charged.
pub(crate) fn fail(flight: &mut InFlight, failure: Failure) -> OpenAiError {
    if let Failure::Lost(reason) = failure {
        return flight.lose(reason);
    }
    if let Err(error) = flight.release() {
        return error;
    }
    not_billed(failure)
}

/// The error of a failure that charged nothing.
fn not_billed(failure: Failure) -> OpenAiError {
    let charged = Amount::zero(Unit::Usd);
    match failure {
        Failure::NotSent(detail) => OpenAiError::Transport { detail, charged },
        Failure::Provider { status, message } => OpenAiError::Provider {
            status,
            message,
            charged,
        },
        Failure::Invalid(reason) => OpenAiError::InvalidRequest { reason },
        Failure::Lost(reason) => OpenAiError::LostReply { reason, charged },
    }
}

impl<C: Config> BudgetedChat<C> {
    /// Runs `call` under the deadline, sorting its error.
    pub(crate) async fn send<T>(
        &self,
        call: impl Future<Output = Result<T, OpenAIError>>,
    ) -> Result<T, Failure> {
        let outcome = match self.timeout {
            Some(deadline) => tokio::time::timeout(deadline, call)
                .await
                .map_err(|_| Failure::Lost(LostReason::Timeout))?,
            None => call.await,
        };
        outcome.map_err(classify)
    }

    /// Reserves the worst case of `request` on `budget`, sends it with the output cap the hold
    /// pays for, and commits the reply's usage.
    ///
    /// Dropping the returned future before it finishes settles the hold by the
    /// [`LostReplyPolicy`](super::LostReplyPolicy) (the request may have been sent).
    ///
    /// # Errors
    /// See [`OpenAiError`]: [`Budget`](OpenAiError::Budget) when the hold is refused (nothing
    /// sent), [`Transport`](OpenAiError::Transport) and [`Provider`](OpenAiError::Provider)
    /// (released, nothing charged), [`LostReply`](OpenAiError::LostReply) (charged by the
    /// policy); [`Pricing`](OpenAiError::Pricing) and
    /// [`InvalidRequest`](OpenAiError::InvalidRequest) before anything is held.
    pub async fn chat(
        &self,
        budget: &Budget,
        request: CreateChatCompletionRequest,
    ) -> Result<ChatReply, OpenAiError> {
        refuse_stream_flag(&request, false)?;
        let plan = self.plan(&request)?;
        let (guard, cap) = self.reserve(budget, &plan)?;
        self.send_held(guard, plan, cap, request).await
    }

    /// As [`chat`](BudgetedChat::chat), on a hold the caller already took (for example the
    /// tier [`Ladder::reserve`](crate::Ladder::reserve) chose). The output cap becomes what
    /// the hold pays for: the request's cap if it fits, else as the
    /// [`CapPolicy`](super::CapPolicy) says ([`OpenAiError::HoldTooSmall`] under `Refuse`).
    ///
    /// # Errors
    /// As [`chat`](BudgetedChat::chat), plus [`OpenAiError::HoldTooSmall`] (the hold is
    /// released).
    pub async fn chat_held(
        &self,
        guard: Guard<'_>,
        request: CreateChatCompletionRequest,
    ) -> Result<ChatReply, OpenAiError> {
        refuse_stream_flag(&request, false)?;
        let plan = self.plan(&request)?;
        let cap = self.cap_for_hold(&plan, &guard)?;
        self.send_held(guard.into_owned(), plan, cap, request).await
    }

    async fn send_held(
        &self,
        guard: Guard<'static>,
        plan: Plan,
        cap: u32,
        mut request: CreateChatCompletionRequest,
    ) -> Result<ChatReply, OpenAiError> {
        Plan::apply_cap(&mut request, cap);
        let mut flight = InFlight::new(guard, plan, cap, self.lost_reply);
        let held = flight.held_usd();
        let response = match self.send(self.client.chat().create(request)).await {
            Ok(response) => response,
            Err(failure) => return Err(fail(&mut flight, failure)),
        };
        let usage = usage_of(response.usage.as_ref()).map_err(|reason| flight.lose(reason))?;
        let cost = flight.commit_usage(&usage)?;
        Ok(ChatReply {
            response,
            usage,
            cost,
            held,
            max_tokens: cap,
        })
    }

    /// Sends `request` on a hold it does not own, for
    /// [`Ladder::fallback_async`](crate::Ladder::fallback_async): returns the reply and its cost
    /// for the chain to commit. A lost reply records the policy's charge on the guard
    /// ([`Guard::record`]), which stays spent when the chain releases the hold and moves on.
    /// The output cap is fitted to the hold as in [`chat_held`](BudgetedChat::chat_held).
    ///
    /// # Errors
    /// As [`chat_held`](BudgetedChat::chat_held); nothing is committed or released here.
    pub async fn chat_within(
        &self,
        guard: &Guard<'_>,
        mut request: CreateChatCompletionRequest,
    ) -> Result<(ChatReply, Cost), OpenAiError> {
        refuse_stream_flag(&request, false)?;
        let plan = self.plan(&request)?;
        let cap = self.cap_for_hold(&plan, guard)?;
        Plan::apply_cap(&mut request, cap);
        let held = usd(&guard.held());
        let zero = Amount::zero(Unit::Usd);
        let outcome = self.send(self.client.chat().create(request)).await;
        let lost = |reason: LostReason| {
            let charge = self
                .lost_reply
                .charge(guard, &plan, cap)
                .unwrap_or(Some(guard.held()));
            let charged = match charge {
                Some(cost) => guard.record(cost).map_or(zero, |()| usd(&cost)),
                None => zero,
            };
            OpenAiError::LostReply { reason, charged }
        };
        let response = match outcome {
            Ok(response) => response,
            Err(Failure::Lost(reason)) => return Err(lost(reason)),
            Err(failure) => return Err(not_billed(failure)),
        };
        let usage = usage_of(response.usage.as_ref()).map_err(lost)?;
        let cost = guard.usage_cost(&plan.price, &usage)?;
        let reply = ChatReply {
            response,
            usage,
            cost: usd(&cost),
            held,
            max_tokens: cap,
        };
        Ok((reply, cost))
    }
}

/// `chat` sends one reply, `chat_stream` a stream: a request asking for the other is refused
/// before anything is held.
pub(crate) fn refuse_stream_flag(
    request: &CreateChatCompletionRequest,
    streaming: bool,
) -> Result<(), OpenAiError> {
    match request.stream {
        Some(flag) if flag != streaming => Err(OpenAiError::InvalidRequest {
            reason: format!(
                "stream is {flag}: use {}",
                if flag { "chat_stream" } else { "chat" }
            ),
        }),
        _ => Ok(()),
    }
}
