//! Loading price tables (`serde` feature): our own file shape, and the LiteLLM price map.
//!
//! Prices are never read through `f64`. Our own shape takes decimal strings (or whole numbers);
//! the LiteLLM map writes floats such as `2.5e-06`, so its price fields are captured as the raw
//! JSON text (`serde_json::value::RawValue`) and parsed as exact decimals.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{ModelPrice, OptionalPrice, Per, PriceTable, PricingError};

// ---------------------------------------------------------------------------------------------
// Our own shape
// ---------------------------------------------------------------------------------------------

/// The file form of a [`PriceTable`]:
///
/// ```json
/// { "models": { "gpt-4o": { "per": "million", "input": "2.50", "output": "10",
///                           "cached_input": "1.25" } } }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceFile {
    models: BTreeMap<String, PriceEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    per: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<PriceText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<PriceText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cached_input: Option<PriceText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write: Option<PriceText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reasoning: Option<PriceText>,
}

/// A price as written: a decimal string or a whole number. Floats are refused (they may already
/// have lost digits in the parser).
struct PriceText(String);

impl Serialize for PriceText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PriceText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PriceText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price as a decimal string such as \"2.50\"")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<PriceText, E> {
                Ok(PriceText(value.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<PriceText, E> {
                Ok(PriceText(value.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<PriceText, E> {
                Ok(PriceText(value.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<PriceText, E> {
                Err(E::custom(format_args!(
                    "price {value} is a float; write prices as decimal strings such as \"2.50\" so \
                     no digit is lost"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn parse_price(model: &str, field: &str, text: &str) -> Result<Decimal, PricingError> {
    let invalid = |reason| PricingError::InvalidPrice {
        model: model.to_owned(),
        field: field.to_owned(),
        value: text.to_owned(),
        reason,
    };
    let value = exact_decimal(text.trim()).ok_or_else(|| invalid("not an exact decimal number"))?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(invalid("prices cannot be negative"));
    }
    Ok(value)
}

/// `text` as an exact decimal: plain (`0.0000025`) or scientific (`2.5e-06`) notation. `None`
/// for anything else, or for values a decimal cannot hold without rounding.
fn exact_decimal(text: &str) -> Option<Decimal> {
    match text.split_once(['e', 'E']) {
        None => Decimal::from_str_exact(text).ok(),
        Some((base, exponent)) => {
            // The base must be exact on its own; the exponent then only moves the point.
            Decimal::from_str_exact(base).ok()?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Decimal::from_scientific(text).ok()
        }
    }
}

/// Names the model in an error raised by a price constructor.
fn in_model(model: &str, error: PricingError) -> PricingError {
    match error {
        PricingError::InvalidPrice {
            field,
            value,
            reason,
            ..
        } => PricingError::InvalidPrice {
            model: model.to_owned(),
            field,
            value,
            reason,
        },
        other => other,
    }
}

impl TryFrom<PriceFile> for PriceTable {
    type Error = PricingError;

    fn try_from(file: PriceFile) -> Result<Self, PricingError> {
        let mut table = PriceTable::new();
        for (model, entry) in file.models {
            let per = match entry.per.trim() {
                "token" => Per::Token,
                "thousand" => Per::Thousand,
                "million" => Per::Million,
                other => {
                    return Err(PricingError::UnknownPriceUnit {
                        model,
                        unit: other.to_owned(),
                    });
                }
            };
            let required = |field: &str, value: Option<PriceText>| {
                let text = value.ok_or_else(|| PricingError::MissingPrice {
                    model: model.clone(),
                    field: field.to_owned(),
                })?;
                parse_price(&model, field, &text.0)
            };
            let input = required("input", entry.input)?;
            let output = required("output", entry.output)?;
            let mut price =
                ModelPrice::quoted(input, output, per).map_err(|e| in_model(&model, e))?;
            for (field, value) in [
                (OptionalPrice::CachedInput, entry.cached_input),
                (OptionalPrice::CacheWrite, entry.cache_write),
                (OptionalPrice::Reasoning, entry.reasoning),
            ] {
                if let Some(text) = value {
                    let value = parse_price(&model, field.name(), &text.0)?;
                    price = price
                        .set_optional(field, value, per)
                        .map_err(|e| in_model(&model, e))?;
                }
            }
            table.insert(model, price);
        }
        Ok(table)
    }
}

impl From<&PriceTable> for PriceFile {
    fn from(table: &PriceTable) -> Self {
        let text = |price: rust_decimal::Decimal| PriceText(price.normalize().to_string());
        let models = table
            .iter()
            .map(|(model, price)| {
                let entry = PriceEntry {
                    per: "token".to_owned(),
                    input: Some(text(price.input)),
                    output: Some(text(price.output)),
                    cached_input: price.cached_input.map(text),
                    cache_write: price.cache_write.map(text),
                    reasoning: price.reasoning.map(text),
                };
                (model.to_owned(), entry)
            })
            .collect();
        PriceFile { models }
    }
}

impl Serialize for PriceTable {
    /// Writes our own file shape, every price per token as an exact decimal string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PriceFile::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PriceTable {
    /// Reads our own file shape from any serde format (JSON, TOML, ...). Validation errors become
    /// the format's error message; [`PriceTable::from_json`] keeps them typed.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = PriceFile::deserialize(deserializer)?;
        PriceTable::try_from(file).map_err(serde::de::Error::custom)
    }
}

impl PriceTable {
    /// Reads a price table in our own JSON shape. Every model has `per` (`"token"`,
    /// `"thousand"` or `"million"`), `input` and `output`, and optionally `cached_input`,
    /// `cache_write` and `reasoning`; prices are decimal strings (whole numbers are accepted,
    /// floats are not). The same shape loads from TOML or any serde format through
    /// `Deserialize`.
    ///
    /// ```
    /// use budget_guard::{PriceTable, Usage};
    /// # fn main() -> Result<(), budget_guard::PricingError> {
    /// let prices = PriceTable::from_json(r#"{"models": {
    ///     "gpt-4o": {"per": "million", "input": "2.50", "output": "10", "cached_input": "1.25"},
    ///     "o3-mini": {"per": "million", "input": "1.10", "output": "4.40"}
    /// }}"#)?;
    /// assert_eq!(prices.get("gpt-4o")?.cached_input().to_string(), "0.00000125");
    /// // 1000 × 0.0000011 + 1000 × 0.0000044
    /// assert_eq!(prices.cost("o3-mini", &Usage::new(1_000, 1_000))?.to_string(), "$0.0055");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PricingError::Malformed`] for invalid JSON, unknown fields (named in the message) or a
    /// float price; [`PricingError::UnknownPriceUnit`], [`PricingError::MissingPrice`] and
    /// [`PricingError::InvalidPrice`] naming the model and field.
    pub fn from_json(json: &str) -> Result<PriceTable, PricingError> {
        let file: PriceFile =
            serde_json::from_str(json).map_err(|error| PricingError::Malformed {
                format: "price file",
                reason: error.to_string(),
            })?;
        PriceTable::try_from(file)
    }

    /// Writes this table in our own JSON shape (prices per token, exact decimal strings).
    ///
    /// # Errors
    /// [`PricingError::Malformed`] only if serialization itself fails (it does not for this
    /// shape).
    pub fn to_json(&self) -> Result<String, PricingError> {
        serde_json::to_string_pretty(self).map_err(|error| PricingError::Malformed {
            format: "price file",
            reason: error.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// LiteLLM's model_prices_and_context_window.json
// ---------------------------------------------------------------------------------------------

/// Modes of LiteLLM entries priced per input and output token that we load.
const TOKEN_MODES: [&str; 3] = ["chat", "completion", "responses"];

#[derive(Deserialize)]
struct LiteLlmEntry<'a> {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, borrow)]
    input_cost_per_token: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output_cost_per_token: Option<&'a RawValue>,
    #[serde(default, borrow)]
    cache_read_input_token_cost: Option<&'a RawValue>,
    #[serde(default, borrow)]
    cache_creation_input_token_cost: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output_cost_per_reasoning_token: Option<&'a RawValue>,
}

/// What [`PriceTable::from_litellm_json`] loaded, and what it left out and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiteLlmImport {
    /// The chat-model prices.
    pub table: PriceTable,
    /// Entries not loaded, sorted by name.
    pub skipped: Vec<SkippedModel>,
}

/// One LiteLLM entry that was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedModel {
    /// The entry's key.
    pub model: String,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Why a LiteLLM entry was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Its `mode` is not a token-priced text mode (`chat`, `completion`, `responses`): an
    /// embedding, image, audio or rerank model, or the `sample_spec` placeholder.
    NotChat {
        /// The mode as written.
        mode: String,
    },
    /// It lacks a per-token price (`input_cost_per_token` or `output_cost_per_token`), for
    /// example a model billed per image or per second.
    MissingPrice {
        /// The missing field.
        field: &'static str,
    },
    /// The entry is not a JSON object.
    NotAnObject,
}

/// The raw JSON text of a number or string, as an exact decimal.
fn raw_price(model: &str, field: &str, raw: &RawValue) -> Result<Decimal, PricingError> {
    let text = raw.get().trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    parse_price(model, field, text)
}

impl PriceTable {
    /// Reads the public LiteLLM price map (`model_prices_and_context_window.json`), keyed by
    /// model name.
    ///
    /// Loaded: entries whose `mode` is `chat`, `completion` or `responses` (or that have no
    /// `mode`) with both `input_cost_per_token` and `output_cost_per_token`. Also read:
    /// `cache_read_input_token_cost` (cached input), `cache_creation_input_token_cost` (cache
    /// write) and `output_cost_per_reasoning_token`. Every other field is ignored — including
    /// long-context tiers such as `input_cost_per_token_above_200k_tokens`, so prompts past such
    /// a threshold are priced at the base rate. Skipped, and listed in
    /// [`LiteLlmImport::skipped`]: other modes (embeddings, images, audio, the `sample_spec`
    /// placeholder) and entries without both token prices.
    ///
    /// Prices in that file are JSON floats (`2.5e-06`); they are read from the raw JSON text as
    /// exact decimals, never through `f64`.
    ///
    /// ```
    /// use budget_guard::PriceTable;
    /// # fn main() -> Result<(), budget_guard::PricingError> {
    /// let import = PriceTable::from_litellm_json(r#"{
    ///     "gpt-4o": {"litellm_provider": "openai", "mode": "chat",
    ///                "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
    ///     "text-embedding-3-small": {"mode": "embedding", "input_cost_per_token": 2e-08,
    ///                                "output_cost_per_token": 0.0}
    /// }"#)?;
    /// assert_eq!(import.table.get("gpt-4o")?.input().to_string(), "0.0000025");
    /// assert_eq!(import.skipped[0].model, "text-embedding-3-small");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PricingError::Malformed`] if the text is not a JSON object of entries;
    /// [`PricingError::InvalidPrice`] naming the model and field for a price of a loaded entry
    /// that is negative or not a number. Nothing is returned on error.
    pub fn from_litellm_json(json: &str) -> Result<LiteLlmImport, PricingError> {
        let malformed = |error: serde_json::Error| PricingError::Malformed {
            format: "LiteLLM price map",
            reason: error.to_string(),
        };
        let entries: BTreeMap<String, &RawValue> = serde_json::from_str(json).map_err(malformed)?;
        let mut table = PriceTable::new();
        let mut skipped = Vec::new();
        let mut skip = |model: &str, reason| {
            skipped.push(SkippedModel {
                model: model.to_owned(),
                reason,
            });
        };
        for (model, raw) in entries {
            let Ok(entry) = serde_json::from_str::<LiteLlmEntry<'_>>(raw.get()) else {
                skip(&model, SkipReason::NotAnObject);
                continue;
            };
            if let Some(mode) = &entry.mode
                && !TOKEN_MODES.contains(&mode.as_str())
            {
                skip(&model, SkipReason::NotChat { mode: mode.clone() });
                continue;
            }
            let (Some(input), Some(output)) =
                (entry.input_cost_per_token, entry.output_cost_per_token)
            else {
                let field = if entry.input_cost_per_token.is_none() {
                    "input_cost_per_token"
                } else {
                    "output_cost_per_token"
                };
                skip(&model, SkipReason::MissingPrice { field });
                continue;
            };
            let input = raw_price(&model, "input_cost_per_token", input)?;
            let output = raw_price(&model, "output_cost_per_token", output)?;
            let mut price =
                ModelPrice::per_token(input, output).map_err(|e| in_model(&model, e))?;
            for (field, name, raw) in [
                (
                    OptionalPrice::CachedInput,
                    "cache_read_input_token_cost",
                    entry.cache_read_input_token_cost,
                ),
                (
                    OptionalPrice::CacheWrite,
                    "cache_creation_input_token_cost",
                    entry.cache_creation_input_token_cost,
                ),
                (
                    OptionalPrice::Reasoning,
                    "output_cost_per_reasoning_token",
                    entry.output_cost_per_reasoning_token,
                ),
            ] {
                if let Some(raw) = raw {
                    let value = raw_price(&model, name, raw)?;
                    price = price
                        .set_optional(field, value, Per::Token)
                        .map_err(|e| in_model(&model, e))?;
                }
            }
            tracing::trace!(target: "budget_guard", %model, "LiteLLM price loaded");
            table.insert(model, price);
        }
        Ok(LiteLlmImport { table, skipped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scientific_text_is_exact() {
        assert_eq!(exact_decimal("2.5e-06").unwrap().to_string(), "0.0000025");
        assert_eq!(exact_decimal("1E-5").unwrap().to_string(), "0.00001");
        assert_eq!(exact_decimal("1.25e+1").unwrap().to_string(), "12.5");
        assert_eq!(exact_decimal("3").unwrap().to_string(), "3");
        assert!(exact_decimal("abc").is_none());
        assert!(exact_decimal("1e").is_none());
        assert!(exact_decimal("NaN").is_none());
    }
}
