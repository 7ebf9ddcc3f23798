//! A budgeted chat-completions client on [`async_openai`] (feature `openai`); it talks to
//! OpenAI or any OpenAI-compatible server through the client's base URL.
//!
//! [`BudgetedChat`] wraps an `async_openai::Client` and a [`PriceTable`]. Each call:
//!
//! 1. **before**: bounds the prompt tokens ([`prompt_token_bound`], no tokenizer needed), takes
//!    the output cap from `max_completion_tokens` / `max_tokens` (or sets
//!    [`DEFAULT_MAX_TOKENS`] when the request has none), and reserves the worst case (prompt
//!    bound at the dearest input rate + cap × `n` at the dearest output rate) on the [`Budget`].
//!    When the budget cannot pay for the cap, the [`CapPolicy`] refuses (the default) or lowers
//!    the cap. The request is sent with the cap the hold pays for, so the provider cannot bill
//!    more output than was held.
//! 2. **after**: commits the reply's `usage`, cached input tokens at the cached rate and
//!    reasoning tokens at the reasoning rate; the rest of the hold returns.
//! 3. **streams** ([`BudgetedChat::chat_stream`]): turns on `stream_options.include_usage` and
//!    commits when the usage chunk arrives.
//! 4. **failures**: a request that never reached the server, or a provider error status, is
//!    released; a reply lost after the request was sent (timeout, reset, body or stream cut, no
//!    usage, a future or stream dropped mid-call) is charged by the [`LostReplyPolicy`] (the
//!    whole hold by default). Every error says what it charged ([`OpenAiError::charged`]).
//!
//! ```no_run
//! use async_openai::Client;
//! use async_openai::config::OpenAIConfig;
//! use async_openai::types::chat::CreateChatCompletionRequestArgs;
//! use budget_guard::openai::BudgetedChat;
//! use budget_guard::{Amount, Budget, Limit, ModelPrice, PriceTable, Unit};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let prices = PriceTable::new().with(
//!     "gpt-4o-mini",
//!     ModelPrice::per_million("0.15".parse()?, "0.60".parse()?)?
//!         .with_cached_input_per_million("0.075".parse()?)?,
//! );
//! let config = OpenAIConfig::new().with_api_base("http://localhost:8080/v1");
//! let chat = BudgetedChat::new(Client::with_config(config), prices);
//! let task = Budget::builder("task", Limit::hard(Amount::usd("0.50")?)).build()?;
//!
//! let request = CreateChatCompletionRequestArgs::default()
//!     .model("gpt-4o-mini")
//!     .messages([async_openai::types::chat::ChatCompletionRequestUserMessage::from("hi").into()])
//!     .max_completion_tokens(256u32)
//!     .build()?;
//! let reply = chat.chat(&task, request).await?;
//! println!("cost {} of a {} hold", reply.cost, reply.held);
//! assert_eq!(task.balance(Unit::Usd)?.reserved, Amount::zero(Unit::Usd));
//! # Ok(()) }
//! ```
//!
//! Ladders and fallback chains: [`BudgetedChat::chat_held`] sends on a hold a
//! [`Ladder::reserve`](crate::Ladder::reserve) chose, and [`BudgetedChat::chat_within`] runs
//! inside [`Ladder::fallback_async`](crate::Ladder::fallback_async) (see
//! `examples/openai_agent.rs`).

mod call;
mod error;
mod estimate;
mod policy;
mod stream;
#[cfg(feature = "openai-tiktoken")]
mod tokenizer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::{Config, OpenAIConfig};
use async_openai::types::chat::CreateChatCompletionRequest;

pub use call::ChatReply;
pub use error::{LostReason, OpenAiError};
pub use estimate::prompt_token_bound;
pub use policy::{CapPolicy, LostReplyPolicy};
pub use stream::BudgetedStream;
#[cfg(feature = "openai-tiktoken")]
pub use tokenizer::tiktoken_prompt_bound;

use crate::amount::Amount;
use crate::budget::Budget;
use crate::guard::Guard;
use crate::price::PriceTable;
use estimate::Plan;

/// The output cap set on a request that has neither `max_completion_tokens` nor `max_tokens`
/// (change it with [`BudgetedChat::with_default_max_tokens`]). A hold needs a cap: without one
/// the worst case is the model's whole output window.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

type PromptCounter = Arc<dyn Fn(&CreateChatCompletionRequest) -> u64 + Send + Sync>;

/// A chat-completions client that reserves each call's worst case on a [`Budget`] before
/// sending it and commits what the reply's usage says it cost. See the [module
/// docs](self) for the whole cycle. Cheap to clone (the price table is shared).
#[derive(Clone)]
pub struct BudgetedChat<C: Config = OpenAIConfig> {
    client: Client<C>,
    prices: Arc<PriceTable>,
    default_cap: u32,
    cap_policy: CapPolicy,
    lost_reply: LostReplyPolicy,
    timeout: Option<Duration>,
    counter: Option<PromptCounter>,
}

impl<C: Config> BudgetedChat<C> {
    /// Wraps `client`, pricing calls from `prices` (models are looked up by the request's
    /// `model`, so alias dated names in the table). Defaults: [`DEFAULT_MAX_TOKENS`],
    /// [`CapPolicy::Refuse`], [`LostReplyPolicy::ChargeHold`], no deadline beyond the HTTP
    /// client's, prompts bounded by [`prompt_token_bound`].
    pub fn new(client: Client<C>, prices: impl Into<Arc<PriceTable>>) -> Self {
        BudgetedChat {
            client,
            prices: prices.into(),
            default_cap: DEFAULT_MAX_TOKENS,
            cap_policy: CapPolicy::default(),
            lost_reply: LostReplyPolicy::default(),
            timeout: None,
            counter: None,
        }
    }

    /// The output cap for requests that set none (at least 1).
    #[must_use]
    pub fn with_default_max_tokens(mut self, tokens: u32) -> Self {
        self.default_cap = tokens.max(1);
        self
    }

    /// What to do when the budget cannot pay for a request's output cap.
    #[must_use]
    pub fn with_cap_policy(mut self, policy: CapPolicy) -> Self {
        self.cap_policy = policy;
        self
    }

    /// What a call whose reply was lost is charged.
    #[must_use]
    pub fn with_lost_reply(mut self, policy: LostReplyPolicy) -> Self {
        self.lost_reply = policy;
        self
    }

    /// A deadline for each call's reply (for a stream: until the response starts). When it
    /// passes, the call counts as a lost reply: the request may have been sent and billed.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Replaces the byte bound with `counter`, for a tighter hold: for example a tokenizer's
    /// count plus the chat format's per-message overhead. It must never return less than the
    /// provider will bill, or commits pass their holds (under the node's overage policy).
    #[must_use]
    pub fn with_prompt_counter(
        mut self,
        counter: impl Fn(&CreateChatCompletionRequest) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.counter = Some(Arc::new(counter));
        self
    }

    /// The wrapped client, for calls that need no budget.
    pub fn client(&self) -> &Client<C> {
        &self.client
    }

    /// The price table.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// The worst case `request` would hold as sent (before any [`CapPolicy::Lower`]).
    ///
    /// ```
    /// use async_openai::Client;
    /// use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequest};
    /// use budget_guard::openai::BudgetedChat;
    /// use budget_guard::{Amount, ModelPrice, PriceTable};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let prices = PriceTable::new()
    ///     .with("gpt-4o", ModelPrice::per_million("2.50".parse()?, "10".parse()?)?);
    /// let chat = BudgetedChat::new(Client::new(), prices).with_default_max_tokens(500);
    /// let request = CreateChatCompletionRequest {
    ///     model: "gpt-4o".to_owned(),
    ///     messages: vec![ChatCompletionRequestUserMessage::from("hello").into()],
    ///     n: Some(2),
    ///     ..Default::default()
    /// };
    /// // A prompt bound of 51 tokens at $2.50/M, and 500 tokens for each of 2 choices at $10/M:
    /// // 0.0001275 + 0.01
    /// assert_eq!(chat.worst_case(&request)?, Amount::usd("0.0101275")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`OpenAiError::Pricing`] for a model missing from the table or absurd counts;
    /// [`OpenAiError::InvalidRequest`] for a zero cap or `n`.
    pub fn worst_case(&self, request: &CreateChatCompletionRequest) -> Result<Amount, OpenAiError> {
        let plan = self.plan(request)?;
        Ok(plan.worst_case(plan.cap)?)
    }

    fn plan(&self, request: &CreateChatCompletionRequest) -> Result<Plan, OpenAiError> {
        let prompt = match &self.counter {
            Some(counter) => counter(request),
            None => prompt_token_bound(request),
        };
        Plan::new(request, &self.prices, self.default_cap, prompt)
    }

    /// Reserves `plan` on `budget`; returns the hold and the cap it pays for.
    fn reserve(&self, budget: &Budget, plan: &Plan) -> Result<(Guard<'static>, u32), OpenAiError> {
        let refused = |error: crate::price::PricingError| match error {
            crate::price::PricingError::Budget(error) => OpenAiError::budget(error),
            other => OpenAiError::Pricing(other),
        };
        let full = || {
            budget
                .reserve_for(
                    &self.prices,
                    &plan.model,
                    plan.prompt_tokens,
                    plan.output_tokens(plan.cap),
                )
                .map(|guard| (guard.into_owned(), plan.cap))
                .map_err(refused)
        };
        let CapPolicy::Lower { floor } = self.cap_policy else {
            return full();
        };
        let floor = floor.clamp(1, plan.cap);
        let (min, max) = (plan.worst_case(floor)?, plan.worst_case(plan.cap)?);
        if floor == plan.cap || min.is_zero() {
            return full();
        }
        let guard = budget
            .reserve_up_to(min, max)
            .map_err(OpenAiError::budget)?;
        let cap = self.cap_for_hold(plan, &guard)?;
        Ok((guard.into_owned(), cap))
    }

    /// The cap a given hold pays for, under the cap policy.
    fn cap_for_hold(&self, plan: &Plan, guard: &Guard<'_>) -> Result<u32, OpenAiError> {
        let held = estimate::usd(&guard.held());
        let floor = match self.cap_policy {
            CapPolicy::Refuse => plan.cap,
            CapPolicy::Lower { floor } => floor.clamp(1, plan.cap),
        };
        match plan.cap_covered_by(held)? {
            Some(cap) if cap >= floor => Ok(cap),
            _ => Err(OpenAiError::HoldTooSmall {
                held,
                needed: plan.worst_case(floor)?,
            }),
        }
    }
}

impl<C: Config> fmt::Debug for BudgetedChat<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetedChat")
            .field("models", &self.prices.len())
            .field("default_max_tokens", &self.default_cap)
            .field("cap_policy", &self.cap_policy)
            .field("lost_reply", &self.lost_reply)
            .field("timeout", &self.timeout)
            .field("prompt_counter", &self.counter.is_some())
            .finish_non_exhaustive()
    }
}
