//! A tight prompt-token bound with the model's own encoding (feature `openai-tiktoken`).

use async_openai::types::chat::CreateChatCompletionRequest;
use serde_json::Value;
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use super::BudgetedChat;
use super::estimate::{json_bytes, prompt_token_bound};

/// Tokens the chat format adds per message (role markers and separators): 3 for the current
/// models in OpenAI's own counting guide, 4 for older ones; the larger keeps the bound safe.
const TOKENS_PER_MESSAGE: u64 = 4;
/// The reply's priming (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: u64 = 3;

/// The encoding of an OpenAI model, when `tiktoken-rs` knows it.
fn encoding(model: &str) -> Option<&'static CoreBPE> {
    match get_tokenizer(model)? {
        Tokenizer::O200kBase => Some(tiktoken_rs::o200k_base_singleton()),
        Tokenizer::Cl100kBase => Some(tiktoken_rs::cl100k_base_singleton()),
        _ => None,
    }
}

/// A tight upper bound on the prompt tokens of `request` for OpenAI models whose encoding
/// `tiktoken-rs` ships (`o200k_base`: gpt-4o, gpt-4.1, gpt-5, o-series; `cl100k_base`:
/// gpt-4, gpt-3.5): the message texts counted with that encoding, plus 4 tokens per message
/// and 3 for the reply's priming. What the encoding cannot count exactly is counted by its
/// bytes, which bound it (every token is at least one byte): roles and names, image URLs,
/// tool-call arguments, and the tools and response format, which the provider renders in a
/// format of its own. Other models (another family's tokenizer) get
/// [`prompt_token_bound`].
///
/// ```
/// use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequest};
/// use budget_guard::openai::{prompt_token_bound, tiktoken_prompt_bound};
///
/// let text = "Budgets are reserved before the money is spent. ".repeat(20);
/// let request = CreateChatCompletionRequest {
///     model: "gpt-4o".to_owned(),
///     messages: vec![ChatCompletionRequestUserMessage::from(text).into()],
///     ..Default::default()
/// };
/// // 201 tokens of text (20 × 10, and the trailing space) + "user" (4 bytes) + 4 per message
/// // + 3 for the reply + 8 bytes of `null` tools and response format.
/// assert_eq!(tiktoken_prompt_bound(&request), 220);
/// assert_eq!(prompt_token_bound(&request), 1_006); // 960 bytes of text + JSON + priming
/// ```
pub fn tiktoken_prompt_bound(request: &CreateChatCompletionRequest) -> u64 {
    let Some(bpe) = encoding(&request.model) else {
        return prompt_token_bound(request);
    };
    let mut tokens = REPLY_PRIMING;
    for message in &request.messages {
        let Ok(message) = serde_json::to_value(message) else {
            return prompt_token_bound(request);
        };
        tokens = tokens
            .saturating_add(TOKENS_PER_MESSAGE)
            .saturating_add(count(bpe, None, &message));
    }
    let rest = json_bytes(&[&request.tools, &request.response_format]);
    tokens.saturating_add(rest)
}

/// The tokens of one JSON value of a message: texts (`content`, `text`) by the encoding,
/// every other string and number by its bytes; keys and punctuation are the format's, which
/// [`TOKENS_PER_MESSAGE`] covers.
fn count(bpe: &CoreBPE, key: Option<&str>, value: &Value) -> u64 {
    match value {
        Value::String(text) if matches!(key, Some("content" | "text")) => {
            bpe.encode_with_special_tokens(text).len() as u64
        }
        Value::String(text) => text.len() as u64,
        Value::Number(number) => number.to_string().len() as u64,
        Value::Array(items) => items.iter().map(|item| count(bpe, key, item)).sum(),
        Value::Object(fields) => fields
            .iter()
            .map(|(name, field)| count(bpe, Some(name), field))
            .sum(),
        Value::Bool(_) | Value::Null => 0,
    }
}

impl<C: async_openai::config::Config> BudgetedChat<C> {
    /// Bounds prompts with [`tiktoken_prompt_bound`] instead of the byte bound: holds closer
    /// to the bill for OpenAI models, the byte bound for others.
    #[must_use]
    pub fn with_tiktoken(self) -> Self {
        self.with_prompt_counter(tiktoken_prompt_bound)
    }
}
