//! [`Usage`]: the tokens one model call used, split into disjoint buckets that each have one
//! price, and parsers for the usage reports of OpenAI- and Anthropic-style APIs.
//!
//! See [`Usage`] for how provider reports map onto its buckets.

use crate::price::PricingError;

/// Tokens used by one call, in disjoint buckets that each have one price.
///
/// # How providers count, and how `Usage` counts
///
/// Providers report overlapping numbers. **OpenAI** (Chat Completions) reports `prompt_tokens`,
/// of which `prompt_tokens_details.cached_tokens` were cache reads, and `completion_tokens`, of
/// which `completion_tokens_details.reasoning_tokens` were reasoning: cached is a *subset* of
/// prompt, reasoning a *subset* of completion. The Responses API uses `input_tokens` /
/// `output_tokens` with `input_tokens_details` / `output_tokens_details`, with the same subset
/// meaning. **Anthropic** reports `input_tokens` *excluding* the cache:
/// `cache_read_input_tokens` and `cache_creation_input_tokens` come on top of it.
///
/// `Usage` stores **disjoint** buckets so that every token has exactly one price:
///
/// | bucket | OpenAI | Anthropic | priced at |
/// |---|---|---|---|
/// | [`input`](Usage::input) | `prompt_tokens − cached_tokens` | `input_tokens` | input |
/// | [`cached_input`](Usage::cached_input) | `cached_tokens` | `cache_read_input_tokens` | cached input (else input) |
/// | [`cache_write`](Usage::cache_write) | — | `cache_creation_input_tokens` | cache write (else input) |
/// | [`output`](Usage::output) | `completion_tokens − reasoning_tokens` | `output_tokens` | output |
/// | [`reasoning`](Usage::reasoning) | `reasoning_tokens` | — (thinking is inside `output_tokens`) | reasoning (else output) |
///
/// # Example
///
/// ```
/// use budget_guard::Usage;
/// # fn main() -> Result<(), budget_guard::PricingError> {
/// // OpenAI: 1,200 prompt tokens of which 1,000 cached; 300 completion of which 100 reasoning.
/// let openai = Usage::openai(1_200, 300, 1_000, 100)?;
/// assert_eq!((openai.input, openai.cached_input), (200, 1_000));
/// assert_eq!((openai.output, openai.reasoning), (200, 100));
/// assert_eq!(openai.total_tokens(), 1_500);
/// // Anthropic: 200 input tokens plus 1,000 read from the cache; 300 output.
/// let anthropic = Usage::anthropic(200, 300, 1_000, 0);
/// assert_eq!(anthropic.prompt_tokens(), 1_200);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Usage {
    /// Input tokens billed at the full input price (not read from or written to a cache).
    pub input: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input: u64,
    /// Input tokens written to the provider's prompt cache (Anthropic cache creation).
    pub cache_write: u64,
    /// Output tokens other than reasoning tokens.
    pub output: u64,
    /// Reasoning ("thinking") output tokens reported separately.
    pub reasoning: u64,
}

impl Usage {
    /// `input` uncached input tokens and `output` output tokens, nothing else.
    pub const fn new(input: u64, output: u64) -> Self {
        Usage {
            input,
            cached_input: 0,
            cache_write: 0,
            output,
            reasoning: 0,
        }
    }

    /// This usage plus `tokens` cache-read input tokens (in addition to [`input`](Usage::input)).
    #[must_use]
    pub const fn with_cached_input(mut self, tokens: u64) -> Self {
        self.cached_input = tokens;
        self
    }

    /// This usage plus `tokens` cache-write input tokens.
    #[must_use]
    pub const fn with_cache_write(mut self, tokens: u64) -> Self {
        self.cache_write = tokens;
        self
    }

    /// This usage plus `tokens` reasoning tokens (in addition to [`output`](Usage::output)).
    #[must_use]
    pub const fn with_reasoning(mut self, tokens: u64) -> Self {
        self.reasoning = tokens;
        self
    }

    /// From OpenAI's counts, where `cached_tokens` is part of `prompt_tokens` and
    /// `reasoning_tokens` part of `completion_tokens`.
    ///
    /// # Errors
    /// [`PricingError::InvalidUsage`] if `cached_tokens > prompt_tokens` or
    /// `reasoning_tokens > completion_tokens`.
    pub fn openai(
        prompt_tokens: u64,
        completion_tokens: u64,
        cached_tokens: u64,
        reasoning_tokens: u64,
    ) -> Result<Self, PricingError> {
        let subset = |part: u64, whole: u64, field: &str, of: &str| {
            whole
                .checked_sub(part)
                .ok_or_else(|| PricingError::InvalidUsage {
                    field: field.to_owned(),
                    reason: format!("{part} is more than the {whole} {of} it is part of"),
                })
        };
        Ok(Usage {
            input: subset(
                cached_tokens,
                prompt_tokens,
                "cached_tokens",
                "prompt_tokens",
            )?,
            cached_input: cached_tokens,
            cache_write: 0,
            output: subset(
                reasoning_tokens,
                completion_tokens,
                "reasoning_tokens",
                "completion_tokens",
            )?,
            reasoning: reasoning_tokens,
        })
    }

    /// From Anthropic's counts, where cache reads and cache writes are *not* part of
    /// `input_tokens`.
    pub const fn anthropic(
        input_tokens: u64,
        output_tokens: u64,
        cache_read_input_tokens: u64,
        cache_creation_input_tokens: u64,
    ) -> Self {
        Usage {
            input: input_tokens,
            cached_input: cache_read_input_tokens,
            cache_write: cache_creation_input_tokens,
            output: output_tokens,
            reasoning: 0,
        }
    }

    /// Every input token: `input + cached_input + cache_write` (OpenAI's `prompt_tokens`).
    pub const fn prompt_tokens(&self) -> u64 {
        self.input
            .saturating_add(self.cached_input)
            .saturating_add(self.cache_write)
    }

    /// Every output token: `output + reasoning` (OpenAI's `completion_tokens`).
    pub const fn completion_tokens(&self) -> u64 {
        self.output.saturating_add(self.reasoning)
    }

    /// Every token of the call, the amount charged to a [`Unit::Tokens`](crate::Unit::Tokens)
    /// limit: `prompt_tokens() + completion_tokens()`.
    pub const fn total_tokens(&self) -> u64 {
        self.prompt_tokens()
            .saturating_add(self.completion_tokens())
    }
}

#[cfg(feature = "serde")]
mod parse {
    use serde_json::{Map, Value};

    use super::Usage;
    use crate::price::PricingError;

    const FORMAT: &str = "usage report";

    fn object(json: &str) -> Result<Map<String, Value>, PricingError> {
        report(json).map(|(map, _)| map)
    }

    /// The usage object of `json` and whether it was nested under `"usage"` (else `json` is
    /// taken as a bare usage object).
    fn report(json: &str) -> Result<(Map<String, Value>, bool), PricingError> {
        let value: Value = serde_json::from_str(json).map_err(|error| PricingError::Malformed {
            format: FORMAT,
            reason: error.to_string(),
        })?;
        let Value::Object(mut map) = value else {
            return Err(PricingError::Malformed {
                format: FORMAT,
                reason: "expected a JSON object".to_owned(),
            });
        };
        // A whole response body: use its `usage` object. `"usage": null` is a body (a stream
        // chunk) that carries no usage yet, which is not the same as a broken report.
        match map.remove("usage") {
            Some(Value::Object(usage)) => Ok((usage, true)),
            Some(Value::Null) => Err(PricingError::NoUsageYet),
            Some(other) => Err(PricingError::InvalidUsage {
                field: "usage".to_owned(),
                reason: format!("{other} is not a usage object"),
            }),
            None => Ok((map, false)),
        }
    }

    /// Whether `map` has any token count a supported report starts with.
    fn has_counts(map: &Map<String, Value>) -> bool {
        [
            "prompt_tokens",
            "input_tokens",
            "completion_tokens",
            "output_tokens",
        ]
        .iter()
        .any(|field| map.contains_key(*field))
    }

    /// A token count at `path` (`"a.b"` descends into objects). Missing or `null` is `None`.
    fn count(map: &Map<String, Value>, path: &str) -> Result<Option<u64>, PricingError> {
        let mut parts = path.split('.');
        let mut current = parts.next().and_then(|first| map.get(first));
        for part in parts {
            current = match current {
                Some(Value::Object(inner)) => inner.get(part),
                Some(Value::Null) | None => None,
                Some(_) => {
                    return Err(PricingError::InvalidUsage {
                        field: path.to_owned(),
                        reason: "expected an object on the way to this field".to_owned(),
                    });
                }
            };
        }
        match current {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => {
                number
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| PricingError::InvalidUsage {
                        field: path.to_owned(),
                        reason: format!("{number} is not a non-negative whole number of tokens"),
                    })
            }
            Some(other) => Err(PricingError::InvalidUsage {
                field: path.to_owned(),
                reason: format!("{other} is not a token count"),
            }),
        }
    }

    fn required(map: &Map<String, Value>, path: &str) -> Result<u64, PricingError> {
        count(map, path)?.ok_or_else(|| PricingError::InvalidUsage {
            field: path.to_owned(),
            reason: "missing".to_owned(),
        })
    }

    fn optional(map: &Map<String, Value>, path: &str) -> Result<u64, PricingError> {
        Ok(count(map, path)?.unwrap_or(0))
    }

    fn openai_chat(map: &Map<String, Value>) -> Result<Usage, PricingError> {
        Usage::openai(
            required(map, "prompt_tokens")?,
            required(map, "completion_tokens")?,
            optional(map, "prompt_tokens_details.cached_tokens")?,
            optional(map, "completion_tokens_details.reasoning_tokens")?,
        )
        .map_err(|error| detail_path(error, "prompt_tokens_details", "completion_tokens_details"))
    }

    fn openai_responses(map: &Map<String, Value>) -> Result<Usage, PricingError> {
        Usage::openai(
            required(map, "input_tokens")?,
            required(map, "output_tokens")?,
            optional(map, "input_tokens_details.cached_tokens")?,
            optional(map, "output_tokens_details.reasoning_tokens")?,
        )
        .map_err(|error| detail_path(error, "input_tokens_details", "output_tokens_details"))
    }

    /// Names the full path of the subset field in an inconsistency error.
    fn detail_path(error: PricingError, input: &str, output: &str) -> PricingError {
        match error {
            PricingError::InvalidUsage { field, reason } => {
                let parent = if field == "cached_tokens" {
                    input
                } else {
                    output
                };
                PricingError::InvalidUsage {
                    field: format!("{parent}.{field}"),
                    reason,
                }
            }
            other => other,
        }
    }

    fn anthropic(map: &Map<String, Value>) -> Result<Usage, PricingError> {
        Ok(Usage::anthropic(
            required(map, "input_tokens")?,
            required(map, "output_tokens")?,
            optional(map, "cache_read_input_tokens")?,
            optional(map, "cache_creation_input_tokens")?,
        ))
    }

    impl Usage {
        /// Parses an OpenAI Chat Completions usage object (or a whole response containing
        /// `"usage"`): `prompt_tokens`, `completion_tokens`, and the optional
        /// `prompt_tokens_details.cached_tokens` and `completion_tokens_details.reasoning_tokens`
        /// (subsets of the first two). `null` details count as zero.
        ///
        /// ```
        /// use budget_guard::Usage;
        /// # fn main() -> Result<(), budget_guard::PricingError> {
        /// let usage = Usage::from_openai_json(r#"{"prompt_tokens": 1200, "completion_tokens": 300,
        ///     "prompt_tokens_details": {"cached_tokens": 1000},
        ///     "completion_tokens_details": {"reasoning_tokens": 100}}"#)?;
        /// assert_eq!(usage, Usage::new(200, 200).with_cached_input(1_000).with_reasoning(100));
        /// # Ok(()) }
        /// ```
        ///
        /// # Errors
        /// [`PricingError::Malformed`] for text that is not a JSON object;
        /// [`PricingError::NoUsageYet`] for a body whose `"usage"` is `null` (a stream chunk
        /// before the last; see [`from_stream_chunk`](Usage::from_stream_chunk));
        /// [`PricingError::InvalidUsage`] naming the field for a missing required count, a count
        /// that is negative, fractional or not a number, or a subset larger than its whole.
        pub fn from_openai_json(json: &str) -> Result<Usage, PricingError> {
            openai_chat(&object(json)?)
        }

        /// Parses an Anthropic Messages usage object (or a whole response containing
        /// `"usage"`): `input_tokens`, `output_tokens`, and the optional
        /// `cache_read_input_tokens` and `cache_creation_input_tokens` (in addition to
        /// `input_tokens`).
        ///
        /// ```
        /// use budget_guard::Usage;
        /// # fn main() -> Result<(), budget_guard::PricingError> {
        /// let usage = Usage::from_anthropic_json(r#"{"input_tokens": 25, "output_tokens": 400,
        ///     "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 0}"#)?;
        /// assert_eq!(usage, Usage::anthropic(25, 400, 3_000, 0));
        /// assert_eq!(usage.prompt_tokens(), 3_025);
        /// # Ok(()) }
        /// ```
        ///
        /// # Errors
        /// As [`from_openai_json`](Usage::from_openai_json).
        pub fn from_anthropic_json(json: &str) -> Result<Usage, PricingError> {
            anthropic(&object(json)?)
        }

        /// Parses a usage report of any supported shape, told apart by its fields:
        /// `prompt_tokens` → OpenAI Chat Completions; `input_tokens_details` or
        /// `output_tokens_details` → OpenAI Responses (cached and reasoning are subsets);
        /// otherwise `input_tokens` → Anthropic (cache counts on top). A bare
        /// `{input_tokens, output_tokens}` means the same under both readings.
        ///
        /// # Errors
        /// As [`from_openai_json`](Usage::from_openai_json); an object with none of these fields
        /// is [`PricingError::InvalidUsage`] for `prompt_tokens`.
        pub fn from_json(json: &str) -> Result<Usage, PricingError> {
            from_map(object(json)?)
        }

        /// Reads one chunk of a streamed response: `Ok(None)` while the provider has not sent
        /// usage (OpenAI sends `"usage": null` on every chunk but the last when
        /// `stream_options.include_usage` is set, and no `"usage"` at all otherwise),
        /// `Ok(Some(usage))` for a chunk that carries it, in any shape
        /// [`from_json`](Usage::from_json) reads.
        ///
        /// ```
        /// use budget_guard::{PricingError, Usage};
        /// # fn main() -> Result<(), PricingError> {
        /// let delta = r#"{"id": "c1", "object": "chat.completion.chunk",
        ///     "choices": [{"index": 0, "delta": {"content": "Hi"}}], "usage": null}"#;
        /// assert_eq!(Usage::from_stream_chunk(delta)?, None);
        /// let last = r#"{"id": "c1", "object": "chat.completion.chunk", "choices": [],
        ///     "usage": {"prompt_tokens": 120, "completion_tokens": 64, "total_tokens": 184}}"#;
        /// assert_eq!(Usage::from_stream_chunk(last)?, Some(Usage::new(120, 64)));
        /// // A broken report is still an error, not "no usage":
        /// assert!(Usage::from_stream_chunk(r#"{"usage": {"prompt_tokens": -1}}"#).is_err());
        /// assert!(matches!(Usage::from_json(delta), Err(PricingError::NoUsageYet)));
        /// # Ok(()) }
        /// ```
        ///
        /// # Errors
        /// [`PricingError::Malformed`] for text that is not a JSON object;
        /// [`PricingError::InvalidUsage`] for a `"usage"` that is neither `null` nor an object,
        /// or a usage object [`from_json`](Usage::from_json) rejects.
        pub fn from_stream_chunk(json: &str) -> Result<Option<Usage>, PricingError> {
            match report(json) {
                Err(PricingError::NoUsageYet) => Ok(None),
                Err(error) => Err(error),
                // A chunk without a "usage" field and without counts of its own.
                Ok((map, false)) if !has_counts(&map) => Ok(None),
                Ok((map, _)) => from_map(map).map(Some),
            }
        }
    }

    fn from_map(map: Map<String, Value>) -> Result<Usage, PricingError> {
        if map.contains_key("prompt_tokens") {
            openai_chat(&map)
        } else if map.contains_key("input_tokens_details")
            || map.contains_key("output_tokens_details")
        {
            openai_responses(&map)
        } else if map.contains_key("input_tokens") {
            anthropic(&map)
        } else {
            Err(PricingError::InvalidUsage {
                field: "prompt_tokens".to_owned(),
                reason: "missing (no OpenAI or Anthropic token counts found)".to_owned(),
            })
        }
    }
}
