//! A streamed chat completion through the budget: the hold is committed when the usage chunk
//! arrives, and settled by the lost-reply policy when the stream breaks, ends without usage,
//! or is dropped first.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_openai::config::Config;
use async_openai::types::chat::{
    ChatCompletionResponseStream, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    CreateChatCompletionStreamResponse,
};
use futures_core::Stream;

use super::BudgetedChat;
use super::call::{Failure, classify, fail, refuse_stream_flag, usage_of};
use super::error::{LostReason, OpenAiError};
use super::estimate::Plan;
use super::policy::InFlight;
use crate::amount::Amount;
use crate::budget::Budget;
use crate::usage::Usage;

impl<C: Config> BudgetedChat<C> {
    /// Reserves the worst case of `request` like [`chat`](BudgetedChat::chat) and starts it as
    /// a stream, with `stream_options.include_usage` turned on so the provider sends a final
    /// usage chunk (other stream options are kept).
    ///
    /// The returned [`BudgetedStream`] yields the provider's chunks unchanged and commits the
    /// usage chunk's cost as it passes. If the stream breaks or ends without a usage chunk, it
    /// yields one [`OpenAiError::LostReply`] saying what the [`LostReplyPolicy`] charged, then
    /// ends. Dropped before its usage arrived, it is settled by the same policy
    /// (the default charges the hold: the provider bills what it generated).
    ///
    /// # Errors
    /// As [`chat`](BudgetedChat::chat), for the part before the stream starts.
    ///
    /// [`LostReplyPolicy`]: super::LostReplyPolicy
    pub async fn chat_stream(
        &self,
        budget: &Budget,
        mut request: CreateChatCompletionRequest,
    ) -> Result<BudgetedStream, OpenAiError> {
        refuse_stream_flag(&request, true)?;
        let plan = self.plan(&request)?;
        let (guard, cap) = self.reserve(budget, &plan)?;
        Plan::apply_cap(&mut request, cap);
        request.stream = Some(true);
        let options = request
            .stream_options
            .get_or_insert_with(ChatCompletionStreamOptions::default);
        options.include_usage = Some(true);
        let mut flight = InFlight::new(guard, plan, cap, self.lost_reply);
        let held = flight.held_usd();
        match self.send(self.client.chat().create_stream(request)).await {
            Ok(inner) => Ok(BudgetedStream {
                inner,
                flight,
                held,
                max_tokens: cap,
                usage: None,
                charged: None,
                done: false,
            }),
            Err(failure) => Err(fail(&mut flight, failure)),
        }
    }
}

/// A chat-completion stream whose hold is settled by what the stream delivers; see
/// [`BudgetedChat::chat_stream`]. Yields `Result<chunk, OpenAiError>` (a
/// [`futures_core::Stream`]); use `StreamExt::next` from `futures` or `tokio-stream`.
pub struct BudgetedStream {
    inner: ChatCompletionResponseStream,
    flight: InFlight,
    held: Amount,
    max_tokens: u32,
    usage: Option<Usage>,
    charged: Option<Amount>,
    done: bool,
}

impl BudgetedStream {
    /// What was held for the stream, in dollars.
    pub fn held(&self) -> Amount {
        self.held
    }

    /// The output cap per choice the request was sent with.
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }

    /// The usage chunk's usage, once it arrived.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// What the stream was charged, once settled (from usage, or by the lost-reply policy).
    pub fn charged(&self) -> Option<Amount> {
        self.charged
    }

    /// Settles a lost stream and ends it with the error that says so.
    fn lose(&mut self, reason: LostReason) -> Poll<Option<<Self as Stream>::Item>> {
        self.done = true;
        if self.flight.is_settled() {
            return Poll::Ready(None);
        }
        let error = self.flight.lose(reason);
        self.charged = Some(error.charged());
        Poll::Ready(Some(Err(error)))
    }

    fn on_chunk(&mut self, chunk: &CreateChatCompletionStreamResponse) -> Result<(), OpenAiError> {
        if chunk.usage.is_none() || self.flight.is_settled() {
            return Ok(());
        }
        let usage = match usage_of(chunk.usage.as_ref()) {
            Ok(usage) => usage,
            Err(reason) => return Err(self.flight.lose(reason)),
        };
        self.usage = Some(usage);
        self.charged = Some(self.flight.commit_usage(&usage)?);
        Ok(())
    }
}

impl Stream for BudgetedStream {
    type Item = Result<CreateChatCompletionStreamResponse, OpenAiError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.inner.as_mut().poll_next(cx)) {
            Some(Ok(chunk)) => match this.on_chunk(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(error) => {
                    this.done = true;
                    this.charged = Some(error.charged());
                    Poll::Ready(Some(Err(error)))
                }
            },
            Some(Err(error)) => match classify(error) {
                Failure::Lost(reason) => this.lose(reason),
                Failure::NotSent(detail) | Failure::Invalid(detail) => {
                    this.lose(LostReason::Interrupted { detail })
                }
                Failure::Provider { status, message } => this.lose(LostReason::Interrupted {
                    detail: format!("provider error {status} mid-stream: {message}"),
                }),
            },
            None => this.lose(LostReason::NoUsage),
        }
    }
}

impl fmt::Debug for BudgetedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetedStream")
            .field("held", &self.held)
            .field("max_tokens", &self.max_tokens)
            .field("usage", &self.usage)
            .field("charged", &self.charged)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
