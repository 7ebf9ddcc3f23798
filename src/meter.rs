//! Metering model calls against a budget: reserve a call's worst case from its price
//! ([`Budget::reserve_for`]), commit what its usage report says it cost
//! ([`Guard::commit_usage`]), and meter a streaming response chunk by chunk ([`StreamMeter`]).

use std::fmt;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::cost::Cost;
use crate::error::Error;
use crate::guard::{CommitError, Guard};
use crate::price::{ModelPrice, PriceTable, PricingError};
use crate::store::Committed;
use crate::usage::Usage;

/// `tokens` as an amount of [`Unit::Tokens`].
///
/// # Errors
/// [`PricingError::Overflow`] past `i64::MAX` tokens. (Built in the error branch only: an error
/// value built eagerly, as `ok_or` would, is dropped again on every call of the hot path.)
fn tokens_amount(tokens: u64) -> Result<Amount, PricingError> {
    match i64::try_from(tokens) {
        Ok(minor) => Ok(Amount::from_minor(minor, Unit::Tokens)),
        Err(_) => Err(tokens_overflow()),
    }
}

const fn tokens_overflow() -> PricingError {
    PricingError::Overflow {
        operation: "count tokens",
    }
}

impl Budget {
    /// Reserves the worst-case cost of one call to `model`: `prompt_tokens` in and at most
    /// `max_tokens` out, priced by [`ModelPrice::worst_case`].
    ///
    /// The hold is in dollars, plus `prompt_tokens + max_tokens` tokens and one request — all
    /// in one atomic reserve, so the call fits every limit or is held nowhere. Every unit is
    /// ledgered whether or not a node limits it, so a dollars-only tree still shows the tokens
    /// and requests in its balances and reports; only the limits on the path can refuse.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, ModelPrice, PriceTable, Unit, Usage};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let prices = PriceTable::new()
    ///     .with("gpt-4o", ModelPrice::per_million("2.50".parse()?, "10".parse()?)?);
    /// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
    /// // Worst case: 2000 × $0.0000025 + 1000 × $0.00001 = $0.015
    /// let guard = task.reserve_for(&prices, "gpt-4o", 2_000, 1_000)?;
    /// assert_eq!(guard.held().get(Unit::Usd), Some(Amount::usd("0.015")?));
    /// // The provider reports 1,800 prompt and 250 completion tokens:
    /// guard.commit_usage(prices.get("gpt-4o")?, &Usage::new(1_800, 250))?;
    /// // 1800 × 0.0000025 + 250 × 0.00001 = 0.0045 + 0.0025
    /// assert_eq!(task.balance(Unit::Usd)?.spent, Amount::usd("0.007")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PricingError::UnknownModel`] if `prices` has no such model (nothing is held);
    /// [`PricingError::Overflow`] for absurd token counts; [`PricingError::Budget`] wrapping the
    /// reserve's error ([`Error::BudgetExceeded`], [`Error::InDebt`], ...) — see [`PricingError::is_denial`].
    pub fn reserve_for(
        &self,
        prices: &PriceTable,
        model: &str,
        prompt_tokens: u64,
        max_tokens: u64,
    ) -> Result<Guard<'_>, PricingError> {
        let cost = worst_case_cost(prices.get(model)?, prompt_tokens, max_tokens)?;
        // Labelled before the conversion to `PricingError`, in place: the guard is copied once
        // (by that conversion), not three times as with `?` and `Ok(guard)`.
        let mut reserved = self.reserve(cost);
        if let Ok(guard) = &mut reserved {
            guard.label_model(model);
        }
        reserved.map_err(PricingError::Budget)
    }

    /// As [`reserve_for`](Budget::reserve_for), with the price given directly.
    ///
    /// # Errors
    /// As [`reserve_for`](Budget::reserve_for), without `UnknownModel`.
    pub fn reserve_worst_case(
        &self,
        price: &ModelPrice,
        prompt_tokens: u64,
        max_tokens: u64,
    ) -> Result<Guard<'_>, PricingError> {
        let cost = worst_case_cost(price, prompt_tokens, max_tokens)?;
        self.reserve(cost).map_err(PricingError::Budget)
    }
}

/// What [`Budget::reserve_for`] holds: the worst-case dollars at `price`, `prompt_tokens +
/// max_tokens` tokens and one request.
fn worst_case_cost(
    price: &ModelPrice,
    prompt_tokens: u64,
    max_tokens: u64,
) -> Result<Cost, PricingError> {
    let usd = price.worst_case(prompt_tokens, max_tokens)?;
    let Some(tokens) = prompt_tokens.checked_add(max_tokens) else {
        return Err(tokens_overflow());
    };
    let tokens = tokens_amount(tokens)?.minor_units();
    let mut cost = Cost::from(usd);
    // A zero token count is left out (a reserve refuses zero amounts); the request never is.
    if tokens != 0 {
        cost.set(Unit::Tokens, tokens);
    }
    cost.set(Unit::Requests, 1);
    Ok(cost)
}

impl Budget {
    /// Reserves like [`reserve_for`](Budget::reserve_for) and wraps the guard in a
    /// [`StreamMeter`] for a streaming response.
    ///
    /// # Errors
    /// As [`reserve_for`](Budget::reserve_for).
    pub fn stream_for(
        &self,
        prices: &PriceTable,
        model: &str,
        prompt_tokens: u64,
        max_tokens: u64,
    ) -> Result<StreamMeter<'_>, PricingError> {
        let price = prices.get(model)?;
        let mut guard = self.reserve_worst_case(price, prompt_tokens, max_tokens)?;
        guard.label_model(model);
        Ok(StreamMeter::new(guard, price, prompt_tokens))
    }
}

impl Guard<'_> {
    /// Labels the hold with `model` for reports (only while reports are on, so the call path
    /// allocates nothing otherwise; a model name that is not a valid label is left out).
    fn label_model(&mut self, model: &str) {
        if self.budget().shared().reporting() {
            let labels = crate::labels::Labels::new().model(model);
            if labels.validate().is_ok() && self.labels().is_none_or(|l| l.model_name().is_none()) {
                self.attribution_mut().labels =
                    std::mem::take(&mut self.attribution_mut().labels).merged(&labels);
            }
        }
    }

    /// Keeps `usage` for the spend record (input/output tokens in reports).
    fn note_usage(&mut self, usage: &Usage) {
        if self.budget().shared().reporting() {
            self.attribution_mut().usage = Some(*usage);
        }
    }

    /// The actual cost of `usage` in exactly the units this guard holds: dollars from `price`,
    /// [`Usage::total_tokens`] tokens, and as many requests as were held (a call is the requests
    /// it reserved, normally one).
    ///
    /// # Errors
    /// [`PricingError::Overflow`] for absurd usage.
    pub fn usage_cost(&self, price: &ModelPrice, usage: &Usage) -> Result<Cost, PricingError> {
        // Start from the hold: the same units, and the requests already as held.
        let mut cost = self.held();
        if cost.has(Unit::Usd) {
            cost.set(Unit::Usd, price.cost(usage)?.minor_units());
        }
        if cost.has(Unit::Tokens) {
            let tokens = tokens_amount(usage.total_tokens())?;
            cost.set(Unit::Tokens, tokens.minor_units());
        }
        Ok(cost)
    }

    /// Commits the cost of `usage` at `price` ([`usage_cost`](Guard::usage_cost)) as the hold's
    /// total actual cost. Below the hold the rest returns; above it the overage policy decides,
    /// exactly as for [`commit`](Guard::commit).
    ///
    /// # Errors
    /// [`CommitUsageError::Pricing`] if the usage cannot be priced (overflow): nothing was
    /// committed and the guard comes back, still live. [`CommitUsageError::Commit`]: the
    /// [`CommitError`] of [`commit`](Guard::commit), with its documented outcomes.
    pub fn commit_usage(
        mut self,
        price: &ModelPrice,
        usage: &Usage,
    ) -> Result<Committed, CommitUsageError> {
        match self.usage_cost(price, usage) {
            Ok(cost) => {
                self.note_usage(usage);
                self.commit(cost).map_err(CommitUsageError::Commit)
            }
            Err(error) => Err(CommitUsageError::Pricing {
                error,
                guard: Box::new(self.into_owned()),
            }),
        }
    }
}

/// A failed [`Guard::commit_usage`] or [`StreamMeter::finish`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitUsageError {
    /// The usage could not be priced. Nothing was committed; `guard` still holds the hold
    /// (dropping it releases the hold).
    #[error("could not price the usage; nothing committed, hold still live: {error}")]
    Pricing {
        /// Why.
        error: PricingError,
        /// The live guard, to retry or release.
        guard: Box<Guard<'static>>,
    },
    /// The commit itself failed; see [`Guard::commit`] for what each error leaves behind.
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl From<CommitUsageError> for PricingError {
    /// Keeps the error and drops any returned guard (which releases its hold).
    fn from(error: CommitUsageError) -> Self {
        match error {
            CommitUsageError::Pricing { error, .. } => error,
            CommitUsageError::Commit(error) => PricingError::Budget(error.into()),
        }
    }
}

/// What a [`StreamMeter`] tells the caller after each chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "Flow::Stop means the budget cap is reached: stop reading the stream"]
pub enum Flow {
    /// The spend so far fits: keep streaming.
    Continue,
    /// The budget has no room for the spend so far: stop the stream now. Nothing of the refused
    /// increment was recorded (zero grace); [`StreamMeter::stop_reason`] says which node said
    /// no.
    Stop,
}

/// What [`StreamMeter::finish`] charges when the stream ended without a usage report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoUsageFallback {
    /// Charge the whole hold (the worst case, or more if chunks made it grow). The default: the
    /// only figure known not to be below the provider's bill, since chunk counts are the
    /// caller's estimate.
    #[default]
    ChargeHold,
    /// Charge what was counted: the prompt tokens given to [`StreamMeter::new`] as input plus
    /// every output token reported through [`StreamMeter::on_output_tokens`] (or the last
    /// [`StreamMeter::on_usage`]). If that comes to zero in every unit, the hold is charged
    /// instead, so a stream is never free.
    CountReceived,
}

/// Meters a streaming model response on a live [`Guard`].
///
/// Create it from a worst-case hold ([`Budget::stream_for`], or [`StreamMeter::new`] on any
/// guard), then per chunk report the output tokens received ([`on_output_tokens`]) or the
/// cumulative usage the provider sent ([`on_usage`], e.g. Anthropic's `message_delta`). Each call
/// prices the usage counted so far ([`counted_usd`](StreamMeter::counted_usd)).
///
/// While that count fits the hold, nothing is written to the budget: the hold already keeps the
/// money aside, and chunk counts are only the caller's estimate (a prompt counted long, empty
/// chunks counted as tokens), so recording them as spent could charge more than the provider
/// bills. When the count passes the hold, the meter records it with [`Guard::record`] so the
/// hold grows where every node has room; where one does not, nothing is recorded and the
/// meter answers [`Flow::Stop`] (zero grace at the cap).
///
/// [`finish`] commits the total: the provider's final usage when there is one, exactly, else
/// the [`NoUsageFallback`]. So with a hold the count never passed (always, for a worst-case
/// hold and honest counts), the commit is the provider's usage and never more. Spend recorded
/// to grow the hold cannot be taken back, so only then is the commit floored at it.
///
/// A stream whose hold covers the worst case (prompt plus `max_tokens`) never sees `Stop`;
/// `Stop` comes when the hold was smaller (a partial hold, or a prompt counted short) and the
/// budget runs out mid-stream. Tokens the provider produced after `Stop` are still billed by
/// the provider: reporting them in `finish` commits them under the node's overage policy.
///
/// ```
/// use budget_guard::{Amount, Budget, Flow, Limit, ModelPrice, PriceTable, Unit};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let prices = PriceTable::new()
///     .with("gpt-4o", ModelPrice::per_million("2.50".parse()?, "10".parse()?)?);
/// let task = Budget::builder("task", Limit::hard(Amount::usd("1")?)).build()?;
/// let mut stream = task.stream_for(&prices, "gpt-4o", 1_000, 500)?;
/// for chunk_tokens in [20, 20, 10] {
///     if stream.on_output_tokens(chunk_tokens)? == Flow::Stop {
///         break;
///     }
/// }
/// // After 50 tokens: 1000 × 0.0000025 + 50 × 0.00001 = 0.003, inside the hold.
/// assert_eq!(stream.counted_usd(), Amount::usd("0.003")?);
/// assert_eq!(stream.recorded_usd(), Amount::usd("0")?); // nothing written while it fits
/// // The stream reported no usage: the default fallback charges the hold, never $0.
/// stream.finish(None)?;
/// // 1000 × 0.0000025 + 500 × 0.00001 = 0.0075
/// assert_eq!(task.balance(Unit::Usd)?.spent, Amount::usd("0.0075")?);
/// # Ok(()) }
/// ```
///
/// [`on_output_tokens`]: StreamMeter::on_output_tokens
/// [`on_usage`]: StreamMeter::on_usage
/// [`finish`]: StreamMeter::finish
pub struct StreamMeter<'a> {
    guard: Guard<'a>,
    price: ModelPrice,
    counted: Usage,
    counted_usd: i64,
    recorded_usd: i64,
    recorded_tokens: i64,
    stop_reason: Option<Error>,
    fallback: NoUsageFallback,
}

impl<'a> StreamMeter<'a> {
    /// Meters a stream on `guard`, whose call sent `prompt_tokens` of input at `price`. The
    /// guard may hold dollars and optionally tokens (and requests, which are committed as held).
    pub fn new(guard: Guard<'a>, price: &ModelPrice, prompt_tokens: u64) -> Self {
        StreamMeter {
            guard,
            price: *price,
            counted: Usage::new(prompt_tokens, 0),
            counted_usd: price
                .cost(&Usage::new(prompt_tokens, 0))
                .map_or(0, Amount::minor_units),
            recorded_usd: 0,
            recorded_tokens: 0,
            stop_reason: None,
            fallback: NoUsageFallback::default(),
        }
    }

    /// Sets what [`finish`](StreamMeter::finish) charges when no usage is reported.
    #[must_use]
    pub fn with_fallback(mut self, fallback: NoUsageFallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// `tokens` more output tokens arrived; counts them, and records the spend so far if it
    /// passes the hold.
    ///
    /// # Errors
    /// [`PricingError::Overflow`] for absurd counts; [`PricingError::Budget`] for failures other
    /// than a denial (a store failure, a hold that already ended). A denial is not an error: it
    /// is [`Flow::Stop`].
    pub fn on_output_tokens(&mut self, tokens: u64) -> Result<Flow, PricingError> {
        self.counted.output =
            self.counted
                .output
                .checked_add(tokens)
                .ok_or_else(|| PricingError::Overflow {
                    operation: "count streamed tokens",
                })?;
        self.record_counted()
    }

    /// The provider reported `cumulative` usage for the stream so far (it replaces the meter's
    /// own count, including the prompt); records the spend so far if it passes the hold.
    ///
    /// # Errors
    /// As [`on_output_tokens`](StreamMeter::on_output_tokens).
    pub fn on_usage(&mut self, cumulative: &Usage) -> Result<Flow, PricingError> {
        self.counted = *cumulative;
        self.record_counted()
    }

    fn record_counted(&mut self) -> Result<Flow, PricingError> {
        if self.stop_reason.is_some() {
            return Ok(Flow::Stop);
        }
        let usd = self.price.cost(&self.counted)?.minor_units();
        let tokens = tokens_amount(self.counted.total_tokens())?.minor_units();
        self.counted_usd = usd;
        let held = self.guard.held();
        // Only a count past the hold is written (to grow it); see the type's documentation.
        let past_hold = (held.has(Unit::Usd) && usd > held.minor(Unit::Usd))
            || (held.has(Unit::Tokens) && tokens > held.minor(Unit::Tokens));
        if !past_hold {
            return Ok(Flow::Continue);
        }
        let mut delta = Cost::new();
        if held.has(Unit::Usd) && usd > self.recorded_usd {
            delta.set(Unit::Usd, usd - self.recorded_usd);
        }
        if held.has(Unit::Tokens) && tokens > self.recorded_tokens {
            delta.set(Unit::Tokens, tokens - self.recorded_tokens);
        }
        if delta.is_empty() {
            return Ok(Flow::Continue);
        }
        match self.guard.record(delta) {
            Ok(()) => {
                if delta.has(Unit::Usd) {
                    self.recorded_usd = usd;
                }
                if delta.has(Unit::Tokens) {
                    self.recorded_tokens = tokens;
                }
                Ok(Flow::Continue)
            }
            Err(error) if error.is_denial() => {
                self.stop_reason = Some(error);
                Ok(Flow::Stop)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The usage counted so far (prompt plus output reported by chunks, or the last cumulative
    /// report).
    pub fn counted(&self) -> Usage {
        self.counted
    }

    /// What the usage counted so far costs in dollars (recorded or not).
    pub fn counted_usd(&self) -> Amount {
        Amount::from_minor(self.counted_usd, Unit::Usd)
    }

    /// Dollars recorded as spent so far: zero while the count fits the hold, the whole count
    /// once it grew the hold.
    pub fn recorded_usd(&self) -> Amount {
        Amount::from_minor(self.recorded_usd, Unit::Usd)
    }

    /// The denial that stopped the stream, if it was stopped.
    pub fn stop_reason(&self) -> Option<&Error> {
        self.stop_reason.as_ref()
    }

    /// `true` once the meter has answered [`Flow::Stop`].
    pub fn is_stopped(&self) -> bool {
        self.stop_reason.is_some()
    }

    /// The guard underneath.
    pub fn guard(&self) -> &Guard<'a> {
        &self.guard
    }

    /// Ends the stream: commits `reported` usage if the provider sent it, else the
    /// [`NoUsageFallback`]. The report is committed as it is, below the chunk counts or not;
    /// only spend already recorded to grow the hold (counts past the hold) is a floor, since
    /// recorded spend cannot be taken back.
    ///
    /// # Errors
    /// As [`Guard::commit_usage`]: [`CommitUsageError::Pricing`] hands the guard back;
    /// [`CommitUsageError::Commit`] carries the commit's error (for example
    /// [`Error::OverageRejected`] when the reported usage runs past a cap the stream was cut at).
    pub fn finish(self, reported: Option<&Usage>) -> Result<Committed, CommitUsageError> {
        let usage = match (reported, self.fallback) {
            (Some(usage), _) => Some(*usage),
            (None, NoUsageFallback::CountReceived) => Some(self.counted),
            (None, NoUsageFallback::ChargeHold) => None,
        };
        let held = self.guard.held();
        let mut cost = match usage {
            Some(usage) => match self.guard.usage_cost(&self.price, &usage) {
                Ok(cost) => cost,
                Err(error) => {
                    return Err(CommitUsageError::Pricing {
                        error,
                        guard: Box::new(self.guard.into_owned()),
                    });
                }
            },
            None => held,
        };
        // Never a free stream: nothing counted in dollars or tokens charges the hold (the one
        // request a hold carries counts nothing about the stream).
        if reported.is_none() && cost.minor(Unit::Usd) == 0 && cost.minor(Unit::Tokens) == 0 {
            cost = held;
        }
        for (unit, recorded) in [
            (Unit::Usd, self.recorded_usd),
            (Unit::Tokens, self.recorded_tokens),
        ] {
            if cost.has(unit) {
                let floor = if usage.is_none() {
                    recorded.max(held.minor(unit))
                } else {
                    recorded
                };
                cost.set(unit, cost.minor(unit).max(floor));
            }
        }
        let mut guard = self.guard;
        if let Some(usage) = &usage {
            guard.note_usage(usage);
        }
        Ok(guard.commit(cost)?)
    }
}

impl fmt::Debug for StreamMeter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamMeter")
            .field("guard", &self.guard)
            .field("counted", &self.counted)
            .field("recorded_usd", &self.recorded_usd())
            .field("recorded_tokens", &self.recorded_tokens)
            .field("stopped", &self.is_stopped())
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}
