//! Pricing and metering (issue 8, items 2–4): price tables, cost from usage reports, worst-case
//! reserves, `commit_usage`, and streaming with and without a final usage report.
//!
//! Every expected cost is computed by hand in the comment beside it.

use budget_guard::{
    Amount, Budget, CommitUsageError, Error, Flow, Limit, ModelPrice, NoUsageFallback, PriceTable,
    PricingError, StreamMeter, Unit, Usage,
};
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn usd(text: &str) -> Amount {
    Amount::usd(text).unwrap()
}

/// Prices written in code, per million tokens, as providers publish them.
fn code_prices() -> PriceTable {
    PriceTable::new()
        .with(
            "gpt-4o",
            ModelPrice::per_million(dec("2.50"), dec("10"))
                .unwrap()
                .with_cached_input_per_million(dec("1.25"))
                .unwrap(),
        )
        .with(
            "claude-3-5-sonnet",
            ModelPrice::per_million(dec("3"), dec("15"))
                .unwrap()
                .with_cached_input_per_million(dec("0.30"))
                .unwrap()
                .with_cache_write_per_million(dec("3.75"))
                .unwrap(),
        )
        .with(
            "reasoner",
            ModelPrice::per_token(dec("0.00000015"), dec("0.0000006"))
                .unwrap()
                .with_reasoning_per_token(dec("0.0000035"))
                .unwrap(),
        )
}

// ---------------------------------------------------------------------------------------------
// Exact costs
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_usage_with_cached_tokens_costs_exactly() {
    let prices = code_prices();
    // prompt 2006 of which 1920 cached; completion 300.
    let usage = Usage::openai(2_006, 300, 1_920, 0).unwrap();
    assert_eq!(usage.input, 86);
    // 86 × 0.0000025 = 0.000215
    // 1920 × 0.00000125 = 0.0024
    // 300 × 0.00001 = 0.003
    // total 0.005615 = 5,615,000 nano-dollars
    assert_eq!(prices.cost("gpt-4o", &usage).unwrap(), usd("0.005615"));
}

#[test]
fn anthropic_cache_tokens_are_on_top_of_input() {
    let prices = code_prices();
    // First call writes 2000 tokens to the cache.
    let write = Usage::anthropic(50, 503, 0, 2_000);
    // 50 × 0.000003 = 0.00015
    // 2000 × 0.00000375 = 0.0075
    // 503 × 0.000015 = 0.007545
    // total 0.015195
    assert_eq!(
        prices.cost("claude-3-5-sonnet", &write).unwrap(),
        usd("0.015195")
    );
    // Second call reads them.
    let read = Usage::anthropic(50, 400, 2_000, 0);
    // 50 × 0.000003 + 2000 × 0.0000003 + 400 × 0.000015 = 0.00015 + 0.0006 + 0.006 = 0.00675
    assert_eq!(
        prices.cost("claude-3-5-sonnet", &read).unwrap(),
        usd("0.00675")
    );
}

#[test]
fn reasoning_tokens_use_their_own_price_or_the_output_price() {
    let prices = code_prices();
    // completion 500 of which 400 reasoning.
    let usage = Usage::openai(1_000, 500, 0, 400).unwrap();
    // 1000 × 0.00000015 = 0.00015
    // 100 × 0.0000006 = 0.00006
    // 400 × 0.0000035 = 0.0014
    // total 0.00161
    assert_eq!(prices.cost("reasoner", &usage).unwrap(), usd("0.00161"));
    // gpt-4o has no reasoning price: reasoning bills as output.
    // 1000 × 0.0000025 + 500 × 0.00001 = 0.0025 + 0.005 = 0.0075
    assert_eq!(prices.cost("gpt-4o", &usage).unwrap(), usd("0.0075"));
}

#[test]
fn costs_round_up_only_past_nine_decimals() {
    // $0.0375 per million = 0.0000000375 per token (ten decimal places).
    let price = ModelPrice::per_million(dec("0.0375"), dec("0.15")).unwrap();
    // 2 × 0.0000000375 = 0.000000075: nine places, exact, 75 nano-dollars.
    assert_eq!(price.cost(&Usage::new(2, 0)).unwrap().minor_units(), 75);
    // 1 × 0.0000000375 = 0.0000000375: rounded up to 38.
    assert_eq!(price.cost(&Usage::new(1, 0)).unwrap().minor_units(), 38);
    // 3 × 0.0000000375 + 1 × 0.00000015 = 0.0000001125 + 0.00000015 = 0.0000002625 → 263
    assert_eq!(price.cost(&Usage::new(3, 1)).unwrap().minor_units(), 263);
    // No usage, no cost (the stream fallback, not the price, prevents free calls).
    assert!(price.cost(&Usage::default()).unwrap().is_zero());
}

#[test]
fn worst_case_uses_the_dearest_rates() {
    let prices = code_prices();
    let sonnet = prices.get("claude-3-5-sonnet").unwrap();
    // Input at the cache-write rate (the dearest input rate): 1000 × 0.00000375 = 0.00375
    // Output: 200 × 0.000015 = 0.003. Total 0.00675.
    assert_eq!(sonnet.worst_case(1_000, 200).unwrap(), usd("0.00675"));
    let reasoner = prices.get("reasoner").unwrap();
    // 100 × 0.00000015 + 100 × 0.0000035 (reasoning is dearer than output) = 0.000015 + 0.00035
    assert_eq!(reasoner.worst_case(100, 100).unwrap(), usd("0.000365"));
}

#[test]
fn unknown_model_is_a_typed_error_and_holds_nothing() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let err = budget
        .reserve_for(&prices, "gpt-9-ultra", 1_000, 1_000)
        .unwrap_err();
    match &err {
        PricingError::UnknownModel { model } => assert_eq!(model, "gpt-9-ultra"),
        other => panic!("expected UnknownModel, got {other:?}"),
    }
    assert!(err.to_string().contains("gpt-9-ultra"));
    assert!(matches!(
        prices.cost("gpt-9-ultra", &Usage::new(1, 1)),
        Err(PricingError::UnknownModel { .. })
    ));
    assert!(budget.balance(Unit::Usd).unwrap().reserved.is_zero());
}

#[test]
fn negative_prices_and_inconsistent_usage_are_typed_errors() {
    let err = ModelPrice::per_million(dec("-1"), dec("1")).unwrap_err();
    assert!(
        matches!(&err, PricingError::InvalidPrice { field, .. } if field == "input"),
        "{err}"
    );
    let err = ModelPrice::per_million(dec("1"), dec("1"))
        .unwrap()
        .with_reasoning_per_token(dec("-0.1"))
        .unwrap_err();
    assert!(matches!(&err, PricingError::InvalidPrice { field, .. } if field == "reasoning"));
    let err = Usage::openai(100, 10, 101, 0).unwrap_err();
    assert!(matches!(&err, PricingError::InvalidUsage { field, .. } if field == "cached_tokens"));
    let err = Usage::openai(100, 10, 0, 11).unwrap_err();
    assert!(
        matches!(&err, PricingError::InvalidUsage { field, .. } if field == "reasoning_tokens")
    );
}

// ---------------------------------------------------------------------------------------------
// reserve_for / commit_usage
// ---------------------------------------------------------------------------------------------

#[test]
fn reserve_for_holds_the_worst_case_and_commit_usage_returns_the_rest() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("0.10")))
        .build()
        .unwrap();
    // Worst case: 4000 × 0.0000025 + 1000 × 0.00001 = 0.01 + 0.01 = 0.02
    let guard = budget.reserve_for(&prices, "gpt-4o", 4_000, 1_000).unwrap();
    assert_eq!(guard.held().get(Unit::Usd), Some(usd("0.02")));
    // Every unit is ledgered (issue 13 item 3): the tree limits no tokens and no requests, and
    // still holds them so balances show them.
    assert_eq!(guard.held().get(Unit::Tokens), Some(Amount::tokens(5_000)));
    assert_eq!(guard.held().get(Unit::Requests), Some(Amount::requests(1)));
    assert_eq!(budget.balance(Unit::Usd).unwrap().reserved, usd("0.02"));
    // Reported: 3900 prompt (3000 cached), 700 completion.
    // 900 × 0.0000025 + 3000 × 0.00000125 + 700 × 0.00001 = 0.00225 + 0.00375 + 0.007 = 0.013
    let usage = Usage::openai(3_900, 700, 3_000, 0).unwrap();
    let committed = guard
        .commit_usage(prices.get("gpt-4o").unwrap(), &usage)
        .unwrap();
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.013")));
    assert_eq!(committed.returned.get(Unit::Usd), Some(usd("0.007")));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.013"));
    assert!(balance.reserved.is_zero());
    // 3900 + 700 tokens and the one request recorded on a dollars-only tree.
    assert_eq!(
        budget.balance(Unit::Tokens).unwrap().spent,
        Amount::tokens(4_600)
    );
    assert_eq!(
        budget.balance(Unit::Requests).unwrap().spent,
        Amount::requests(1)
    );
}

#[test]
fn reserve_for_also_holds_tokens_and_a_request_where_limited() {
    let prices = code_prices();
    let org = Budget::builder(
        "org",
        [Limit::hard(usd("1")), Limit::hard(Amount::tokens(10_000))],
    )
    .child("agent", Limit::hard(Amount::requests(2)))
    .build()
    .unwrap();
    let agent = org.at("agent").unwrap();
    let guard = agent.reserve_for(&prices, "gpt-4o", 3_000, 1_000).unwrap();
    let held = guard.held();
    // 3000 × 0.0000025 + 1000 × 0.00001 = 0.0075 + 0.01 = 0.0175
    assert_eq!(held.get(Unit::Usd), Some(usd("0.0175")));
    assert_eq!(held.get(Unit::Tokens), Some(Amount::tokens(4_000)));
    assert_eq!(held.get(Unit::Requests), Some(Amount::requests(1)));
    // 2000 in, 500 out: 0.005 + 0.005 = 0.01; 2500 tokens; 1 request.
    guard
        .commit_usage(prices.get("gpt-4o").unwrap(), &Usage::new(2_000, 500))
        .unwrap();
    assert_eq!(org.balance(Unit::Usd).unwrap().spent, usd("0.01"));
    assert_eq!(
        org.balance(Unit::Tokens).unwrap().spent,
        Amount::tokens(2_500)
    );
    assert_eq!(
        agent.balance(Unit::Requests).unwrap().spent,
        Amount::requests(1)
    );
    // The token limit denies a call whose worst case does not fit, all units at once.
    let err = agent
        .reserve_for(&prices, "gpt-4o", 7_000, 1_000)
        .unwrap_err();
    assert!(err.is_denial(), "{err}");
    let tokens = org.balance(Unit::Tokens).unwrap();
    assert!(tokens.reserved.is_zero());
    assert!(org.balance(Unit::Usd).unwrap().reserved.is_zero());
}

#[test]
fn reserve_for_denied_by_dollars_holds_nothing() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("0.01")))
        .build()
        .unwrap();
    // 1000 × 0.0000025 + 1000 × 0.00001 = 0.0125 > 0.01
    let err = budget
        .reserve_for(&prices, "gpt-4o", 1_000, 1_000)
        .unwrap_err();
    assert!(err.is_denial());
    match err {
        PricingError::Budget(Error::BudgetExceeded(details)) => {
            assert_eq!(details.requested, usd("0.0125"));
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    assert!(budget.balance(Unit::Usd).unwrap().reserved.is_zero());
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_with_reported_usage_commits_the_report() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let mut stream = budget.stream_for(&prices, "gpt-4o", 1_000, 500).unwrap();
    for _ in 0..3 {
        assert_eq!(stream.on_output_tokens(40).unwrap(), Flow::Continue);
        // The count fits the worst-case hold: the hold covers it, nothing is written as spent.
        assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd("0"));
        assert_eq!(budget.balance(Unit::Usd).unwrap().reserved, usd("0.0075"));
    }
    // 1000 × 0.0000025 + 120 × 0.00001 = 0.0025 + 0.0012 = 0.0037
    assert_eq!(stream.counted_usd(), usd("0.0037"));
    assert_eq!(stream.recorded_usd(), usd("0"));
    // The provider's final report: 1000 prompt (200 cached), 130 completion.
    // 800 × 0.0000025 + 200 × 0.00000125 + 130 × 0.00001 = 0.002 + 0.00025 + 0.0013 = 0.00355
    // Below the chunk count (0.0037): the report is what the provider bills, so it is committed.
    let report = Usage::openai(1_000, 130, 200, 0).unwrap();
    let committed = stream.finish(Some(&report)).unwrap();
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.00355")));
    // A report above the count commits the report.
    let mut stream = budget.stream_for(&prices, "gpt-4o", 1_000, 500).unwrap();
    assert_eq!(stream.on_output_tokens(10).unwrap(), Flow::Continue);
    // 1000 × 0.0000025 + 300 × 0.00001 = 0.0055
    let committed = stream.finish(Some(&Usage::new(1_000, 300))).unwrap();
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.0055")));
    // 0.00355 + 0.0055
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.00905"));
    assert!(balance.reserved.is_zero());
}

#[test]
fn stream_without_usage_charges_the_hold_by_default() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let mut stream = budget.stream_for(&prices, "gpt-4o", 1_000, 500).unwrap();
    assert_eq!(stream.on_output_tokens(50).unwrap(), Flow::Continue);
    let committed = stream.finish(None).unwrap();
    // The hold: 1000 × 0.0000025 + 500 × 0.00001 = 0.0075
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.0075")));
}

#[test]
fn stream_without_usage_can_count_what_was_received() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let mut stream = budget
        .stream_for(&prices, "gpt-4o", 1_000, 500)
        .unwrap()
        .with_fallback(NoUsageFallback::CountReceived);
    for _ in 0..7 {
        assert_eq!(stream.on_output_tokens(10).unwrap(), Flow::Continue);
    }
    let committed = stream.finish(None).unwrap();
    // 1000 × 0.0000025 + 70 × 0.00001 = 0.0025 + 0.0007 = 0.0032
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.0032")));
    assert_eq!(committed.returned.get(Unit::Usd), Some(usd("0.0043")));
    // 1000 prompt + 70 received tokens recorded on a dollars-only tree.
    assert_eq!(
        budget.balance(Unit::Tokens).unwrap().spent,
        Amount::tokens(1_070)
    );
}

#[test]
fn stream_with_nothing_counted_is_never_free() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    // No prompt counted, no chunk, no report: the hold is charged rather than $0.
    let stream = budget
        .stream_for(&prices, "gpt-4o", 0, 100)
        .unwrap()
        .with_fallback(NoUsageFallback::CountReceived);
    let committed = stream.finish(None).unwrap();
    // 100 × 0.00001 = 0.001
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.001")));
}

#[test]
fn stream_follows_cumulative_usage_reports() {
    let prices = code_prices();
    let budget = Budget::builder("task", Limit::hard(usd("1")))
        .build()
        .unwrap();
    let mut stream = budget
        .stream_for(&prices, "claude-3-5-sonnet", 2_100, 1_000)
        .unwrap();
    // message_start: 100 input + 2000 cache read, 1 output.
    let start = Usage::anthropic(100, 1, 2_000, 0);
    assert_eq!(stream.on_usage(&start).unwrap(), Flow::Continue);
    // 100 × 0.000003 + 2000 × 0.0000003 + 1 × 0.000015 = 0.0003 + 0.0006 + 0.000015 = 0.000915
    assert_eq!(stream.counted_usd(), usd("0.000915"));
    // message_delta: output now 250 (cumulative).
    let delta = Usage::anthropic(100, 250, 2_000, 0);
    assert_eq!(stream.on_usage(&delta).unwrap(), Flow::Continue);
    // 0.0003 + 0.0006 + 250 × 0.000015 = 0.0009 + 0.00375 = 0.00465
    assert_eq!(stream.counted_usd(), usd("0.00465"));
    stream.finish(Some(&delta)).unwrap();
    assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd("0.00465"));
}

#[test]
fn stream_is_cut_off_at_the_cap_with_no_spend_past_the_hard_limit() {
    let prices = code_prices();
    let price = *prices.get("gpt-4o").unwrap();
    let limit = usd("0.01");
    let budget = Budget::builder("task", Limit::hard(limit)).build().unwrap();
    // A partial hold (smaller than the worst case), so the stream must grow it as it goes.
    let guard = budget.reserve(usd("0.003")).unwrap();
    let mut stream = StreamMeter::new(guard, &price, 1_000);
    // Prompt: 1000 × 0.0000025 = 0.0025; each chunk of 100 tokens adds 0.001.
    // After chunk k the spend is 0.0025 + 0.001k: k = 7 gives 0.0095, k = 8 would be 0.0105.
    let mut accepted = 0;
    for _ in 0..20 {
        let flow = stream.on_output_tokens(100).unwrap();
        let balance = budget.balance(Unit::Usd).unwrap();
        assert!(
            balance.spent.minor_units() + balance.reserved.minor_units() <= limit.minor_units(),
            "spent {} + reserved {} passed {}",
            balance.spent,
            balance.reserved,
            limit
        );
        if flow == Flow::Stop {
            break;
        }
        accepted += 1;
    }
    assert_eq!(accepted, 7);
    assert!(stream.is_stopped());
    assert!(matches!(
        stream.stop_reason(),
        Some(Error::BudgetExceeded(_))
    ));
    assert_eq!(stream.recorded_usd(), usd("0.0095"));
    // Later chunks keep answering Stop and record nothing.
    assert_eq!(stream.on_output_tokens(100).unwrap(), Flow::Stop);
    assert_eq!(budget.balance(Unit::Usd).unwrap().spent, usd("0.0095"));
    // Ending without a report charges the (grown) hold: what was recorded.
    let committed = stream.finish(None).unwrap();
    assert_eq!(committed.spent.get(Unit::Usd), Some(usd("0.0095")));
    let balance = budget.balance(Unit::Usd).unwrap();
    assert_eq!(balance.spent, usd("0.0095"));
    assert!(balance.reserved.is_zero());
}

#[test]
fn a_report_past_the_cap_is_not_hidden() {
    let prices = code_prices();
    let price = *prices.get("gpt-4o").unwrap();
    let budget = Budget::builder("task", Limit::hard(usd("0.01")))
        .build()
        .unwrap();
    let guard = budget.reserve(usd("0.003")).unwrap();
    let mut stream = StreamMeter::new(guard, &price, 1_000);
    while stream.on_output_tokens(100).unwrap() == Flow::Continue {}
    // The provider billed the refused chunk too: 1000 in, 800 out = 0.0025 + 0.008 = 0.0105.
    let err = stream.finish(Some(&Usage::new(1_000, 800))).unwrap_err();
    let CommitUsageError::Commit(err) = err else {
        panic!("expected a commit error");
    };
    assert!(
        matches!(err.error(), Error::OverageRejected { .. }),
        "{err}"
    );
    // The hard limit still holds; the 0.0005 past it is debt, not spend.
    let balance = budget.balance(Unit::Usd).unwrap();
    assert!(balance.spent <= usd("0.01"));
    assert_eq!(
        balance.spent.minor_units() + balance.debt.minor_units(),
        usd("0.0105").minor_units()
    );
}

#[test]
fn many_streams_on_one_budget_never_pass_the_cap() {
    let prices = code_prices();
    let price = *prices.get("gpt-4o").unwrap();
    let limit = usd("0.05");
    let budget = Budget::builder("team", Limit::hard(limit)).build().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let budget = budget.clone();
            scope.spawn(move || {
                // Late threads may find the budget already spent: nothing to stream.
                let Ok(guard) = budget.reserve(usd("0.001")) else {
                    return;
                };
                let mut stream = StreamMeter::new(guard, &price, 100);
                while stream.on_output_tokens(7).unwrap() == Flow::Continue {}
                stream.finish(None).unwrap();
            });
        }
    });
    let balance = budget.balance(Unit::Usd).unwrap();
    assert!(balance.spent <= limit, "{}", balance.spent);
    assert!(balance.reserved.is_zero());
    // Every stream stopped only when the next 7 tokens (0.00007) did not fit.
    assert!(limit.minor_units() - balance.spent.minor_units() < 70_000 * 8);
}

// ---------------------------------------------------------------------------------------------
// Files (serde feature)
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "serde")]
mod files {
    use super::*;
    use budget_guard::SkipReason;

    const FIXTURE: &str = include_str!("fixtures/litellm_prices.json");

    #[test]
    fn litellm_fixture_loads_chat_models_and_reports_the_rest() {
        let import = PriceTable::from_litellm_json(FIXTURE).unwrap();
        let names: Vec<&str> = import.table.iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "claude-3-5-haiku-20241022",
                "claude-3-5-sonnet-20241022",
                "gemini/gemini-1.5-flash-8b",
                "gemini/gemini-2.5-flash-preview-04-17",
                "gpt-3.5-turbo-instruct",
                "gpt-4o",
                "gpt-4o-mini",
                "o3-mini",
            ]
        );
        let skipped: Vec<(&str, &SkipReason)> = import
            .skipped
            .iter()
            .map(|s| (s.model.as_str(), &s.reason))
            .collect();
        assert_eq!(skipped.len(), 5);
        assert!(matches!(
            skipped[0],
            ("dall-e-3", SkipReason::NotChat { mode }) if mode == "image_generation"
        ));
        assert!(matches!(
            skipped[1],
            (
                "replicate/meta/llama-2-70b-chat",
                SkipReason::MissingPrice {
                    field: "input_cost_per_token"
                }
            )
        ));
        assert!(matches!(
            skipped[2],
            ("sample_spec", SkipReason::NotChat { .. })
        ));
        assert!(matches!(
            skipped[3],
            ("text-embedding-3-small", SkipReason::NotChat { .. })
        ));
        assert!(matches!(
            skipped[4],
            ("whisper-1", SkipReason::NotChat { .. })
        ));
    }

    #[test]
    fn float_shaped_prices_parse_exactly() {
        let table = PriceTable::from_litellm_json(FIXTURE).unwrap().table;
        let gpt4o = table.get("gpt-4o").unwrap();
        // 2.5e-06 is 0.0000025 exactly (as an f64 it is 2.50000000000000010...e-06).
        assert_eq!(gpt4o.input(), dec("0.0000025"));
        assert_eq!(gpt4o.input().to_string(), "0.0000025");
        assert_eq!(gpt4o.output(), dec("0.00001"));
        assert_eq!(gpt4o.cached_input(), dec("0.00000125"));
        // 1.1e-06 is 1.1000000000000001e-06 as an f64.
        assert_eq!(
            table.get("o3-mini").unwrap().input().to_string(),
            "0.0000011"
        );
        // 3.75e-08 keeps all ten decimal places.
        assert_eq!(
            table
                .get("gemini/gemini-1.5-flash-8b")
                .unwrap()
                .input()
                .to_string(),
            "0.0000000375"
        );
        let reasoner = table.get("gemini/gemini-2.5-flash-preview-04-17").unwrap();
        assert_eq!(reasoner.reasoning(), dec("0.0000035"));
        let sonnet = table.get("claude-3-5-sonnet-20241022").unwrap();
        assert_eq!(sonnet.cache_write(), dec("0.00000375"));
        assert_eq!(sonnet.cached_input(), dec("0.0000003"));
        // No cache prices: both default to the input price.
        let instruct = table.get("gpt-3.5-turbo-instruct").unwrap();
        assert_eq!(instruct.cached_input(), instruct.input());
        assert_eq!(instruct.cache_write(), instruct.input());
        assert_eq!(instruct.reasoning(), instruct.output());
    }

    const OPENAI_RESPONSE: &str = r#"{
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "..."},
                     "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        }
    }"#;

    const ANTHROPIC_RESPONSE: &str = r#"{
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": [{"type": "text", "text": "..."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 2000,
                  "cache_read_input_tokens": 0, "output_tokens": 503}
    }"#;

    #[test]
    fn real_shaped_payloads_cost_exactly_with_the_litellm_table() {
        let table = PriceTable::from_litellm_json(FIXTURE).unwrap().table;
        let openai = Usage::from_json(OPENAI_RESPONSE).unwrap();
        assert_eq!(openai, Usage::openai(2_006, 300, 1_920, 0).unwrap());
        // 86 × 0.0000025 + 1920 × 0.00000125 + 300 × 0.00001 = 0.000215 + 0.0024 + 0.003
        assert_eq!(table.cost("gpt-4o", &openai).unwrap(), usd("0.005615"));
        let anthropic = Usage::from_json(ANTHROPIC_RESPONSE).unwrap();
        assert_eq!(anthropic, Usage::anthropic(50, 503, 0, 2_000));
        // 50 × 0.000003 + 2000 × 0.00000375 + 503 × 0.000015 = 0.00015 + 0.0075 + 0.007545
        assert_eq!(
            table
                .cost("claude-3-5-sonnet-20241022", &anthropic)
                .unwrap(),
            usd("0.015195")
        );
        // o3-mini with reasoning: prompt 1500, completion 2200 of which 1800 reasoning.
        let o3 = Usage::from_openai_json(
            r#"{"prompt_tokens": 1500, "completion_tokens": 2200,
                "completion_tokens_details": {"reasoning_tokens": 1800}}"#,
        )
        .unwrap();
        // 1500 × 0.0000011 + 2200 × 0.0000044 (reasoning at the output price)
        // = 0.00165 + 0.00968 = 0.01133
        assert_eq!(table.cost("o3-mini", &o3).unwrap(), usd("0.01133"));
    }

    #[test]
    fn responses_api_usage_is_read_as_subsets() {
        let usage = Usage::from_json(
            r#"{"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 600},
                "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 200},
                "total_tokens": 1300}"#,
        )
        .unwrap();
        assert_eq!(
            usage,
            Usage::new(400, 100)
                .with_cached_input(600)
                .with_reasoning(200)
        );
        // Nulls in Anthropic reports count as zero.
        let usage = Usage::from_anthropic_json(
            r#"{"input_tokens": 5, "output_tokens": 6, "cache_read_input_tokens": null}"#,
        )
        .unwrap();
        assert_eq!(usage, Usage::anthropic(5, 6, 0, 0));
    }

    #[test]
    fn bad_usage_reports_name_the_field() {
        let field_of = |json: &str| match Usage::from_json(json).unwrap_err() {
            PricingError::InvalidUsage { field, .. } => field,
            other => panic!("expected InvalidUsage, got {other:?}"),
        };
        assert_eq!(
            field_of(r#"{"prompt_tokens": -5, "completion_tokens": 1}"#),
            "prompt_tokens"
        );
        assert_eq!(field_of(r#"{"prompt_tokens": 5}"#), "completion_tokens");
        assert_eq!(
            field_of(r#"{"prompt_tokens": 5, "completion_tokens": 1.5}"#),
            "completion_tokens"
        );
        assert_eq!(
            field_of(r#"{"input_tokens": "many", "output_tokens": 1}"#),
            "input_tokens"
        );
        assert_eq!(
            field_of(
                r#"{"prompt_tokens": 5, "completion_tokens": 1,
                    "prompt_tokens_details": {"cached_tokens": 6}}"#
            ),
            "prompt_tokens_details.cached_tokens"
        );
        assert_eq!(field_of(r#"{"tokens": 5}"#), "prompt_tokens");
        assert!(matches!(
            Usage::from_json("{not json"),
            Err(PricingError::Malformed { .. })
        ));
        assert!(matches!(
            Usage::from_json("[1, 2]"),
            Err(PricingError::Malformed { .. })
        ));
    }

    #[test]
    fn our_price_file_round_trips_exactly() {
        let table = PriceTable::from_json(
            r#"{"models": {
                "gpt-4o": {"per": "million", "input": "2.50", "output": "10",
                           "cached_input": "1.25"},
                "claude-3-5-sonnet": {"per": "thousand", "input": "0.003", "output": "0.015",
                                      "cached_input": "0.0003", "cache_write": "0.00375"},
                "reasoner": {"per": "token", "input": "0.00000015", "output": "0.0000006",
                             "reasoning": "0.0000035"}
            }}"#,
        )
        .unwrap();
        assert_eq!(table, code_prices());
        let written = table.to_json().unwrap();
        assert!(written.contains("\"0.0000025\""), "{written}");
        assert_eq!(PriceTable::from_json(&written).unwrap(), table);
    }

    #[test]
    fn bad_price_files_are_typed_errors_naming_the_field() {
        let err = PriceTable::from_json(
            r#"{"models": {"m": {"per": "million", "input": "-1", "output": "2"}}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PricingError::InvalidPrice { model, field, value, .. }
                if model == "m" && field == "input" && value == "-1"),
            "{err:?}"
        );
        let err = PriceTable::from_json(
            r#"{"models": {"m": {"per": "billion", "input": "1", "output": "2"}}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PricingError::UnknownPriceUnit { model, unit } if model == "m" && unit == "billion"),
            "{err:?}"
        );
        let err = PriceTable::from_json(r#"{"models": {"m": {"per": "token", "input": "1"}}}"#)
            .unwrap_err();
        assert!(
            matches!(&err, PricingError::MissingPrice { field, .. } if field == "output"),
            "{err:?}"
        );
        let err = PriceTable::from_json(
            r#"{"models": {"m": {"per": "token", "input": "1", "output": "2", "ouptut": "3"}}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PricingError::Malformed { reason, .. } if reason.contains("ouptut")),
            "{err:?}"
        );
        let err = PriceTable::from_json(
            r#"{"models": {"m": {"per": "token", "input": 2.5e-06, "output": "2"}}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PricingError::Malformed { reason, .. } if reason.contains("float")),
            "{err:?}"
        );
        let err = PriceTable::from_json(
            r#"{"models": {"m": {"per": "token", "input": "two", "output": "2"}}}"#,
        )
        .unwrap_err();
        assert!(matches!(&err, PricingError::InvalidPrice { field, .. } if field == "input"));
        assert!(matches!(
            PriceTable::from_json("{\"models\": "),
            Err(PricingError::Malformed { .. })
        ));
    }

    #[test]
    fn bad_litellm_prices_are_typed_errors() {
        let err = PriceTable::from_litellm_json(
            r#"{"m": {"mode": "chat", "input_cost_per_token": -2.5e-06,
                      "output_cost_per_token": 1e-05}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PricingError::InvalidPrice { model, field, .. }
                if model == "m" && field == "input_cost_per_token"),
            "{err:?}"
        );
        let err = PriceTable::from_litellm_json(
            r#"{"m": {"mode": "chat", "input_cost_per_token": 1e-06,
                      "output_cost_per_token": 1e-05, "cache_read_input_token_cost": true}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PricingError::InvalidPrice { field, .. }
                if field == "cache_read_input_token_cost"),
            "{err:?}"
        );
        assert!(matches!(
            PriceTable::from_litellm_json("[]"),
            Err(PricingError::Malformed { .. })
        ));
    }

    #[test]
    fn price_tables_deserialize_through_plain_serde() {
        let table: PriceTable = serde_json::from_str(
            r#"{"models": {"m": {"per": "million", "input": "1", "output": "2"}}}"#,
        )
        .unwrap();
        assert_eq!(table.get("m").unwrap().output(), dec("0.000002"));
        let err = serde_json::from_str::<PriceTable>(
            r#"{"models": {"m": {"per": "lots", "input": "1", "output": "2"}}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("lots"), "{err}");
    }
}
