//! The worst case of a chat request before it is sent: a prompt-token bound without a
//! tokenizer, the output cap the hold pays for, and the request rewritten to agree with it.

use std::io;

use async_openai::types::chat::CreateChatCompletionRequest;
use rust_decimal::prelude::ToPrimitive;

use super::error::OpenAiError;
use crate::amount::{Amount, Unit};
use crate::price::{ModelPrice, PriceTable, PricingError};

/// Template tokens a chat format adds around the messages (role markers, the reply's priming),
/// beyond what the JSON of the messages already counts: every message's JSON has more bytes of
/// braces and field names than the format has tokens per message, so a small constant for the
/// reply's priming is all that is left.
const PRIMING_TOKENS: u64 = 8;

/// A safe upper bound on the prompt tokens of `request`, without a tokenizer: the UTF-8 bytes of
/// its messages, tools and response format as JSON, plus 8 tokens for the reply's priming.
///
/// Every token of the byte-level BPE encodings the common models use (`cl100k_base`,
/// `o200k_base`, and the Llama/Mistral/Qwen families) is at least one byte of text, so the text
/// has at most as many tokens as bytes, and JSON only adds bytes (quotes, escapes, field names).
/// Image and audio parts are the exception: they are billed by size, not by the bytes of their
/// URL, and this bound does not cover them (such a call may commit above its hold, under the
/// node's overage policy).
///
/// ```
/// use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequest};
/// use budget_guard::openai::prompt_token_bound;
///
/// let request = CreateChatCompletionRequest {
///     model: "gpt-4o-mini".to_owned(),
///     messages: vec![ChatCompletionRequestUserMessage::from("hello").into()],
///     ..Default::default()
/// };
/// // [{"role":"user","content":"hello"}] is 35 bytes; no tools and no response format
/// // (`null`, `null`) 8 more; and 8 for the reply's priming.
/// assert_eq!(prompt_token_bound(&request), 51);
/// ```
pub fn prompt_token_bound(request: &CreateChatCompletionRequest) -> u64 {
    json_bytes(&[&request.messages, &request.tools, &request.response_format])
        .saturating_add(PRIMING_TOKENS)
}

/// The bytes of `parts` as JSON, counted without keeping them.
pub(crate) fn json_bytes(parts: &[&dyn erased::Json]) -> u64 {
    let mut bytes = ByteCount(0);
    for part in parts {
        // Serializing these plain types cannot fail; if it ever did, the count would come out
        // short, so the bound becomes one no prompt reaches instead.
        if part.write_to(&mut bytes).is_err() {
            return u64::MAX / 4;
        }
    }
    bytes.0
}

/// `&dyn Serialize` is not object safe; this is the one method the byte count needs.
mod erased {
    pub(crate) trait Json {
        fn write_to(&self, out: &mut super::ByteCount) -> serde_json::Result<()>;
    }

    impl<T: serde::Serialize> Json for T {
        fn write_to(&self, out: &mut super::ByteCount) -> serde_json::Result<()> {
            serde_json::to_writer(out, self)
        }
    }
}

/// Counts what serde writes without keeping it.
pub(crate) struct ByteCount(u64);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One request's pricing: the model's price, its prompt bound and its output cap.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) model: String,
    pub(crate) price: ModelPrice,
    pub(crate) prompt_tokens: u64,
    /// The output cap per choice (`max_completion_tokens` / `max_tokens`).
    pub(crate) cap: u32,
    /// `n`: the provider bills every choice, each up to the cap.
    pub(crate) choices: u32,
}

impl Plan {
    /// Prices `request` from `prices`, with `default_cap` when the request sets no output cap.
    // `max_tokens` is deprecated in favour of `max_completion_tokens`, but compatible servers
    // still read it: a cap in either field is a cap the hold must cover.
    #[allow(deprecated)]
    pub(crate) fn new(
        request: &CreateChatCompletionRequest,
        prices: &PriceTable,
        default_cap: u32,
        prompt_tokens: u64,
    ) -> Result<Plan, OpenAiError> {
        let price = *prices.get(&request.model)?;
        // When both fields are set the provider may honour either; the hold covers the larger.
        let cap = match (request.max_completion_tokens, request.max_tokens) {
            (Some(a), Some(b)) => a.max(b),
            (Some(cap), None) | (None, Some(cap)) => cap,
            (None, None) => default_cap,
        };
        let choices = u32::from(request.n.unwrap_or(1));
        if cap == 0 || choices == 0 {
            return Err(OpenAiError::InvalidRequest {
                reason: format!(
                    "output cap {cap} × {choices} choices: both must be at least 1 to price a call"
                ),
            });
        }
        Ok(Plan {
            model: request.model.clone(),
            price,
            prompt_tokens,
            cap,
            choices,
        })
    }

    /// All output tokens `cap` per choice can produce.
    pub(crate) fn output_tokens(&self, cap: u32) -> u64 {
        u64::from(cap) * u64::from(self.choices)
    }

    /// The most the call can cost with `cap` output tokens per choice.
    pub(crate) fn worst_case(&self, cap: u32) -> Result<Amount, PricingError> {
        self.price
            .worst_case(self.prompt_tokens, self.output_tokens(cap))
    }

    /// The largest cap per choice (at most the request's) whose worst case `held` pays for, or
    /// `None` if not even one token fits.
    pub(crate) fn cap_covered_by(&self, held: Amount) -> Result<Option<u32>, PricingError> {
        let prompt = self.price.worst_case(self.prompt_tokens, 0)?;
        if held.minor_units() < prompt.minor_units() {
            return Ok(None);
        }
        let rate = self.price.output().max(self.price.reasoning());
        if rate.is_zero() {
            return Ok(Some(self.cap));
        }
        let room = held.to_decimal() - prompt.to_decimal();
        let tokens = (room / rate).floor().to_u64().unwrap_or(u64::MAX);
        let per_choice = tokens / u64::from(self.choices);
        let mut cap = u32::try_from(per_choice).unwrap_or(u32::MAX).min(self.cap);
        // The worst case rounds each call up to the nano-dollar: step down until it fits.
        while cap > 0 && self.worst_case(cap)?.minor_units() > held.minor_units() {
            cap -= 1;
        }
        Ok((cap > 0).then_some(cap))
    }

    /// Writes `cap` into the request so the provider stops where the hold stops: into the
    /// fields the caller set, or `max_completion_tokens` when neither was set.
    #[allow(deprecated)]
    pub(crate) fn apply_cap(request: &mut CreateChatCompletionRequest, cap: u32) {
        if request.max_tokens.is_some() {
            request.max_tokens = Some(cap);
        }
        if request.max_completion_tokens.is_some() || request.max_tokens.is_none() {
            request.max_completion_tokens = Some(cap);
        }
    }
}

/// The dollars of a held cost (zero if it holds none).
pub(crate) fn usd(cost: &crate::cost::Cost) -> Amount {
    cost.get(Unit::Usd).unwrap_or(Amount::zero(Unit::Usd))
}
