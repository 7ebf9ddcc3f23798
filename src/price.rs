//! Model prices: what one token of input, cached input, cache writes, output and reasoning costs,
//! as exact decimals, and the [`PriceTable`] that maps model names to them.
//!
//! Prices are `rust_decimal::Decimal` dollars **per token** (constructors also take prices per
//! thousand or per million tokens, as providers publish them). Costs are computed with exact
//! integer arithmetic and rounded up to the nano-dollar once, at the end (see
//! [`ModelPrice::cost`]): each price is turned into an integer form when the [`ModelPrice`] is
//! built (whole nano-dollars per token, or a numerator over a power of ten), so pricing a call
//! does no `Decimal` arithmetic. A model missing from the table is [`PricingError::UnknownModel`],
//! never a silent `$0`.
//!
//! With the `serde` feature, tables load from our own file shape (JSON, or TOML and any other
//! serde format through `Deserialize`) and from the public LiteLLM price map
//! (`model_prices_and_context_window.json`); see [`PriceTable::from_json`] and
//! [`PriceTable::from_litellm_json`].

#[cfg(feature = "serde")]
mod load;
mod rates;
#[cfg(test)]
mod rates_tests;
#[cfg(test)]
mod reference;

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;

use crate::amount::{Amount, Unit};
use crate::error::Error;
use crate::usage::Usage;
use rates::Rates;

#[cfg(feature = "serde")]
pub use load::{LiteLlmImport, SkipReason, SkippedModel};

/// Why a price, a usage report or a metered call could not be priced or charged.
///
/// Pricing errors are kept apart from the ledger's [`Error`]; [`PricingError::Budget`] carries a
/// ledger error (a denied reserve, say) through the metering helpers
/// ([`Budget::reserve_for`](crate::Budget::reserve_for) and friends).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// The price table has no entry for this model. Nothing was reserved or charged.
    #[error("no price for model {model:?}; add it to the price table")]
    UnknownModel {
        /// The model name asked for.
        model: String,
    },

    /// A price is negative, not a number, or has more precision than a decimal can hold.
    #[error("model {model:?}: invalid {field} {value:?}: {reason}")]
    InvalidPrice {
        /// The model the price belongs to (empty for prices built in code before naming a model).
        model: String,
        /// The field, as named in the source (`"input_cost_per_token"`, `"output"`, ...).
        field: String,
        /// The offending value, as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A required price is missing from a price file entry.
    #[error("model {model:?}: missing price field {field:?}")]
    MissingPrice {
        /// The model.
        model: String,
        /// The missing field.
        field: String,
    },

    /// A price file names a pricing unit other than `token`, `thousand` or `million`.
    #[error(
        "model {model:?}: unknown price unit {unit:?} (expected \"token\", \"thousand\" or \"million\")"
    )]
    UnknownPriceUnit {
        /// The model.
        model: String,
        /// The unit as written.
        unit: String,
    },

    /// A usage report has a missing, negative, non-integer or inconsistent token count.
    #[error("usage field {field:?}: {reason}")]
    InvalidUsage {
        /// The field, as named in the report (`"prompt_tokens"`,
        /// `"prompt_tokens_details.cached_tokens"`, ...).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The input is not valid JSON, or not of the expected shape (the message names the field
    /// and position where the parser can).
    #[error("malformed {format}: {reason}")]
    Malformed {
        /// What was being read (`"price file"`, `"LiteLLM price map"`, `"usage report"`).
        format: &'static str,
        /// The parser's description, with line and column.
        reason: String,
    },

    /// A cost or token count does not fit the ledger's `i64` minor units (or the intermediate
    /// arithmetic overflowed): the usage is absurdly large.
    #[error("overflow while trying to {operation}")]
    Overflow {
        /// What was being computed.
        operation: &'static str,
    },

    /// A response or stream chunk whose `"usage"` is `null`: the provider has not reported
    /// usage *yet* (every OpenAI stream chunk before the last, with
    /// `stream_options.include_usage`). Not a malformed report: wait for a later chunk, or read
    /// chunks with [`Usage::from_stream_chunk`](crate::Usage::from_stream_chunk), which answers
    /// `Ok(None)` for them.
    #[error("no usage yet: the report's \"usage\" is null")]
    NoUsageYet,

    /// The budget refused or failed (a denied reserve, an unknown node, a store failure).
    #[error(transparent)]
    Budget(#[from] Error),
}

impl PricingError {
    /// `true` if this is a budget denial ([`Error::is_denial`]): the call does not fit now.
    pub fn is_denial(&self) -> bool {
        matches!(self, PricingError::Budget(error) if error.is_denial())
    }
}

/// The prices of one model, in exact dollars per token.
///
/// Input and output prices are required. The others default to the price that applies when a
/// provider does not quote them: cached input (cache reads) and cache writes fall back to the
/// input price, reasoning tokens to the output price. The fallbacks never under-charge a provider
/// that bills those tokens at the full price.
///
/// ```
/// use budget_guard::{ModelPrice, Usage};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // $2.50 per million input tokens, $10 per million output, cache reads at $1.25.
/// let gpt4o = ModelPrice::per_million("2.50".parse()?, "10".parse()?)?
///     .with_cached_input_per_million("1.25".parse()?)?;
/// assert_eq!(gpt4o.input().to_string(), "0.0000025");
/// // 1,000 uncached input, 200 cached input and 500 output tokens:
/// let usage = Usage::new(1_000, 500).with_cached_input(200);
/// // 1000 × 0.0000025 + 200 × 0.00000125 + 500 × 0.00001 = 0.0025 + 0.00025 + 0.005
/// assert_eq!(gpt4o.cost(&usage)?.to_string(), "$0.00775");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelPrice {
    input: Decimal,
    output: Decimal,
    cached_input: Option<Decimal>,
    cache_write: Option<Decimal>,
    reasoning: Option<Decimal>,
    /// The same prices as integers, rebuilt whenever a price changes: what [`cost`] and
    /// [`worst_case`] compute with.
    ///
    /// [`cost`]: ModelPrice::cost
    /// [`worst_case`]: ModelPrice::worst_case
    rates: Rates,
}

/// The error of a cost past `i64` nano-dollars (the same for every pricing path). Returned
/// through a `match`, not `ok_or`: an eagerly built error is dropped on every priced call.
const PRICING_OVERFLOW: PricingError = PricingError::Overflow {
    operation: "price a usage report",
};

/// A price in dollars per `per` tokens, converted to dollars per token exactly.
fn per_token(value: Decimal, per: Per, field: &'static str) -> Result<Decimal, PricingError> {
    let invalid = |reason| PricingError::InvalidPrice {
        model: String::new(),
        field: field.to_owned(),
        value: value.to_string(),
        reason,
    };
    if value.is_sign_negative() && !value.is_zero() {
        return Err(invalid("prices cannot be negative"));
    }
    let mut scaled = value;
    let shift = per.decimal_shift();
    // Dividing by 10^shift is exact: it only moves the decimal point, if the scale allows.
    scaled
        .set_scale(value.scale() + shift)
        .map_err(|_| invalid("too many decimal places (at most 28 per token)"))?;
    Ok(scaled.normalize())
}

/// The pricing unit of a quoted price: per token, per thousand or per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Per {
    Token,
    Thousand,
    Million,
}

impl Per {
    const fn decimal_shift(self) -> u32 {
        match self {
            Per::Token => 0,
            Per::Thousand => 3,
            Per::Million => 6,
        }
    }
}

impl ModelPrice {
    /// Prices in dollars per token.
    ///
    /// ```
    /// use budget_guard::ModelPrice;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let price = ModelPrice::per_token("0.0000025".parse()?, "0.00001".parse()?)?;
    /// assert_eq!(price.output().to_string(), "0.00001");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PricingError::InvalidPrice`] for a negative price.
    pub fn per_token(input: Decimal, output: Decimal) -> Result<Self, PricingError> {
        Self::quoted(input, output, Per::Token)
    }

    /// Prices in dollars per million tokens, as most providers publish them.
    ///
    /// ```
    /// use budget_guard::ModelPrice;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let price = ModelPrice::per_million("3".parse()?, "15".parse()?)?;
    /// assert_eq!(price.input().to_string(), "0.000003");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PricingError::InvalidPrice`] for a negative price or one with more than 22 decimal
    /// places (28 once divided by a million).
    pub fn per_million(input: Decimal, output: Decimal) -> Result<Self, PricingError> {
        Self::quoted(input, output, Per::Million)
    }

    /// Prices in dollars per thousand tokens.
    ///
    /// # Errors
    /// As [`per_million`](ModelPrice::per_million).
    pub fn per_thousand(input: Decimal, output: Decimal) -> Result<Self, PricingError> {
        Self::quoted(input, output, Per::Thousand)
    }

    pub(crate) fn quoted(input: Decimal, output: Decimal, per: Per) -> Result<Self, PricingError> {
        let (input, output) = (
            per_token(input, per, "input")?,
            per_token(output, per, "output")?,
        );
        Ok(ModelPrice {
            input,
            output,
            cached_input: None,
            cache_write: None,
            reasoning: None,
            // The optional prices fall back to these two, as `bucket_prices` says.
            rates: Rates::new([input, input, input, output, output]),
        })
    }

    /// This price with its integer [`Rates`] rebuilt from the decimal prices.
    fn with_rates(mut self) -> Self {
        self.rates = Rates::new(self.bucket_prices());
        self
    }

    /// The per-token price of each [`Usage`] bucket, in the order of [`Usage`]'s fields.
    fn bucket_prices(&self) -> [Decimal; rates::BUCKETS] {
        [
            self.input,
            self.cached_input(),
            self.cache_write(),
            self.output,
            self.reasoning(),
        ]
    }

    pub(crate) fn set_optional(
        mut self,
        field: OptionalPrice,
        value: Decimal,
        per: Per,
    ) -> Result<Self, PricingError> {
        let value = per_token(value, per, field.name())?;
        match field {
            OptionalPrice::CachedInput => self.cached_input = Some(value),
            OptionalPrice::CacheWrite => self.cache_write = Some(value),
            OptionalPrice::Reasoning => self.reasoning = Some(value),
        }
        Ok(self.with_rates())
    }

    /// Sets the price of a cached input token (a cache read), in dollars per token.
    ///
    /// # Errors
    /// [`PricingError::InvalidPrice`] for a negative price.
    pub fn with_cached_input_per_token(self, price: Decimal) -> Result<Self, PricingError> {
        self.set_optional(OptionalPrice::CachedInput, price, Per::Token)
    }

    /// Sets the price of a cached input token (a cache read), in dollars per million tokens.
    ///
    /// # Errors
    /// As [`per_million`](ModelPrice::per_million).
    pub fn with_cached_input_per_million(self, price: Decimal) -> Result<Self, PricingError> {
        self.set_optional(OptionalPrice::CachedInput, price, Per::Million)
    }

    /// Sets the price of a cache-write input token (Anthropic's `cache_creation_input_tokens`),
    /// in dollars per token.
    ///
    /// # Errors
    /// [`PricingError::InvalidPrice`] for a negative price.
    pub fn with_cache_write_per_token(self, price: Decimal) -> Result<Self, PricingError> {
        self.set_optional(OptionalPrice::CacheWrite, price, Per::Token)
    }

    /// Sets the price of a cache-write input token, in dollars per million tokens.
    ///
    /// # Errors
    /// As [`per_million`](ModelPrice::per_million).
    pub fn with_cache_write_per_million(self, price: Decimal) -> Result<Self, PricingError> {
        self.set_optional(OptionalPrice::CacheWrite, price, Per::Million)
    }

    /// Sets the price of a reasoning token, in dollars per token.
    ///
    /// # Errors
    /// [`PricingError::InvalidPrice`] for a negative price.
    pub fn with_reasoning_per_token(self, price: Decimal) -> Result<Self, PricingError> {
        self.set_optional(OptionalPrice::Reasoning, price, Per::Token)
    }

    /// Sets the price of a reasoning token, in dollars per million tokens.
    ///
    /// # Errors
    /// As [`per_million`](ModelPrice::per_million).
    pub fn with_reasoning_per_million(self, price: Decimal) -> Result<Self, PricingError> {
        self.set_optional(OptionalPrice::Reasoning, price, Per::Million)
    }

    /// Dollars per uncached input token.
    pub fn input(&self) -> Decimal {
        self.input
    }

    /// Dollars per output token.
    pub fn output(&self) -> Decimal {
        self.output
    }

    /// Dollars per cached input token (cache read); the input price unless set.
    pub fn cached_input(&self) -> Decimal {
        self.cached_input.unwrap_or(self.input)
    }

    /// Dollars per cache-write input token; the input price unless set.
    pub fn cache_write(&self) -> Decimal {
        self.cache_write.unwrap_or(self.input)
    }

    /// Dollars per reasoning token; the output price unless set.
    pub fn reasoning(&self) -> Decimal {
        self.reasoning.unwrap_or(self.output)
    }

    /// The exact cost of `usage`, rounded **up** to the nano-dollar.
    ///
    /// Every [`Usage`] bucket is priced at its own rate (uncached input at [`input`](Self::input),
    /// cache reads at [`cached_input`](Self::cached_input), cache writes at
    /// [`cache_write`](Self::cache_write), output at [`output`](Self::output), reasoning at
    /// [`reasoning`](Self::reasoning)); the buckets are disjoint, so no token is charged twice.
    /// The products and their sum are computed exactly in integers; only when the exact total has
    /// more than nine decimal places is it rounded up, once, to the next nano-dollar (a total of
    /// `$0.0000000012` costs `$0.000000002`). Each call is rounded on its own, so a caller summing
    /// many calls may see up to one nano-dollar per call above the exact sum, never below it.
    ///
    /// ```
    /// use budget_guard::{ModelPrice, Usage};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cheap = ModelPrice::per_million("0.15".parse()?, "0.60".parse()?)?;
    /// // 7 × 0.00000015 = 0.00000105: nine places, exact.
    /// assert_eq!(cheap.cost(&Usage::new(7, 0))?.minor_units(), 1_050);
    /// let tiny = ModelPrice::per_token("0.0000000001".parse()?, "0".parse()?)?;
    /// // 3 × 0.0000000001 = 0.0000000003: ten places, rounded up to one nano-dollar.
    /// assert_eq!(tiny.cost(&Usage::new(3, 0))?.minor_units(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PricingError::Overflow`] if the cost does not fit `i64` nano-dollars (about $9.2
    /// billion) or the exact intermediate product does not fit 128 bits.
    #[inline]
    pub fn cost(&self, usage: &Usage) -> Result<Amount, PricingError> {
        let tokens = [
            usage.input,
            usage.cached_input,
            usage.cache_write,
            usage.output,
            usage.reasoning,
        ];
        match self.rates.cost(tokens) {
            Some(nanos) => Ok(Amount::from_minor(nanos, Unit::Usd)),
            None => Err(PRICING_OVERFLOW),
        }
    }

    /// The most a call can cost: `prompt_tokens` of input at the dearest input rate (input,
    /// cache read or cache write) plus `max_tokens` of output at the dearest output rate (output or
    /// reasoning), rounded up to the nano-dollar. Hold this before the call; the provider stops
    /// generating at `max_tokens` (reasoning tokens count toward it), so the real cost cannot pass
    /// it unless the prompt was counted short.
    ///
    /// ```
    /// use budget_guard::ModelPrice;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let price = ModelPrice::per_million("2.50".parse()?, "10".parse()?)?;
    /// // 2000 × 0.0000025 + 1000 × 0.00001 = 0.005 + 0.01
    /// assert_eq!(price.worst_case(2_000, 1_000)?.to_string(), "$0.015");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PricingError::Overflow`], as for [`cost`](ModelPrice::cost).
    #[inline]
    pub fn worst_case(&self, prompt_tokens: u64, max_tokens: u64) -> Result<Amount, PricingError> {
        match self.rates.worst_case(prompt_tokens, max_tokens) {
            Some(nanos) => Ok(Amount::from_minor(nanos, Unit::Usd)),
            None => Err(PRICING_OVERFLOW),
        }
    }
}

/// The optional prices, by name (for errors and the file loaders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OptionalPrice {
    CachedInput,
    CacheWrite,
    Reasoning,
}

impl OptionalPrice {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            OptionalPrice::CachedInput => "cached_input",
            OptionalPrice::CacheWrite => "cache_write",
            OptionalPrice::Reasoning => "reasoning",
        }
    }
}

impl fmt::Debug for ModelPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("ModelPrice");
        out.field("input", &self.input.to_string())
            .field("output", &self.output.to_string());
        if let Some(price) = self.cached_input {
            out.field("cached_input", &price.to_string());
        }
        if let Some(price) = self.cache_write {
            out.field("cache_write", &price.to_string());
        }
        if let Some(price) = self.reasoning {
            out.field("reasoning", &price.to_string());
        }
        out.finish()
    }
}

/// Prices by model name. Lookups are exact (`"gpt-4o"` and `"gpt-4o-2024-08-06"` are two
/// entries); [`PriceTable::alias`] adds another name for an existing entry.
///
/// ```
/// use budget_guard::{ModelPrice, PriceTable, PricingError, Usage};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let prices = PriceTable::new()
///     .with("gpt-4o-mini", ModelPrice::per_million("0.15".parse()?, "0.60".parse()?)?)
///     .with("claude-sonnet-4", ModelPrice::per_million("3".parse()?, "15".parse()?)?);
/// let cost = prices.cost("gpt-4o-mini", &Usage::new(10_000, 1_000))?;
/// assert_eq!(cost.to_string(), "$0.0021"); // 0.0015 + 0.0006
/// assert!(matches!(
///     prices.get("gpt-5-turbo-max"),
///     Err(PricingError::UnknownModel { .. })
/// ));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// An empty table.
    pub fn new() -> Self {
        PriceTable::default()
    }

    /// This table with `model` priced at `price` (replacing an earlier price).
    #[must_use]
    pub fn with(mut self, model: impl Into<String>, price: ModelPrice) -> Self {
        self.insert(model, price);
        self
    }

    /// Sets `model`'s price, returning the one it replaces.
    pub fn insert(&mut self, model: impl Into<String>, price: ModelPrice) -> Option<ModelPrice> {
        self.models.insert(model.into(), price)
    }

    /// Makes `alias` a second name for `model`'s current price.
    ///
    /// # Errors
    /// [`PricingError::UnknownModel`] if `model` has no price.
    pub fn alias(&mut self, alias: impl Into<String>, model: &str) -> Result<(), PricingError> {
        let price = *self.get(model)?;
        self.models.insert(alias.into(), price);
        Ok(())
    }

    /// Adds every entry of `other`, its prices replacing this table's for the same names.
    pub fn merge(&mut self, other: PriceTable) {
        self.models.extend(other.models);
    }

    /// The price of `model`.
    ///
    /// # Errors
    /// [`PricingError::UnknownModel`] if the table has no entry of that exact name.
    pub fn get(&self, model: &str) -> Result<&ModelPrice, PricingError> {
        self.models
            .get(model)
            .ok_or_else(|| PricingError::UnknownModel {
                model: model.to_owned(),
            })
    }

    /// `true` if `model` has a price.
    pub fn contains(&self, model: &str) -> bool {
        self.models.contains_key(model)
    }

    /// The exact cost of `usage` on `model` ([`ModelPrice::cost`]).
    ///
    /// # Errors
    /// [`PricingError::UnknownModel`], [`PricingError::Overflow`].
    pub fn cost(&self, model: &str, usage: &Usage) -> Result<Amount, PricingError> {
        self.get(model)?.cost(usage)
    }

    /// Number of priced models (aliases included).
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// `true` if no model is priced.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Model names and prices, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ModelPrice)> + '_ {
        self.models
            .iter()
            .map(|(name, price)| (name.as_str(), price))
    }
}

impl FromIterator<(String, ModelPrice)> for PriceTable {
    fn from_iter<I: IntoIterator<Item = (String, ModelPrice)>>(iter: I) -> Self {
        PriceTable {
            models: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests;
