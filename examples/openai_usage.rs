//! Price real-shaped usage reports (OpenAI and Anthropic) with a LiteLLM-format price map,
//! charge them to a budget with `reserve_for` / `commit_usage`, and print a per-model table.
//!
//! Run with `cargo run --features serde --example openai_usage`.

#[cfg(feature = "serde")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::collections::BTreeMap;

    use budget_guard::{Amount, Budget, Limit, PriceTable, Unit, Usage};

    // A few entries in the shape of LiteLLM's model_prices_and_context_window.json.
    let import =
        PriceTable::from_litellm_json(include_str!("../tests/fixtures/litellm_prices.json"))?;
    let prices = import.table;
    println!(
        "loaded {} chat models, skipped {} entries (embeddings, images, audio, per-second)",
        prices.len(),
        import.skipped.len()
    );

    // (model, max_tokens asked for, the provider's response body)
    let calls = [
        (
            "gpt-4o",
            1_000,
            r#"{"object": "chat.completion", "model": "gpt-4o-2024-08-06",
                "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                          "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                          "completion_tokens_details": {"reasoning_tokens": 0}}}"#,
        ),
        (
            "gpt-4o-mini",
            500,
            r#"{"object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
                "usage": {"prompt_tokens": 12000, "completion_tokens": 410, "total_tokens": 12410,
                          "prompt_tokens_details": {"cached_tokens": 0}}}"#,
        ),
        (
            "o3-mini",
            4_000,
            r#"{"object": "chat.completion", "model": "o3-mini-2025-01-31",
                "usage": {"prompt_tokens": 1500, "completion_tokens": 2200, "total_tokens": 3700,
                          "prompt_tokens_details": {"cached_tokens": 1024},
                          "completion_tokens_details": {"reasoning_tokens": 1800}}}"#,
        ),
        (
            "claude-3-5-sonnet-20241022",
            1_024,
            r#"{"type": "message", "model": "claude-3-5-sonnet-20241022",
                "usage": {"input_tokens": 50, "cache_creation_input_tokens": 2000,
                          "cache_read_input_tokens": 0, "output_tokens": 503}}"#,
        ),
        (
            "claude-3-5-sonnet-20241022",
            1_024,
            r#"{"type": "message", "model": "claude-3-5-sonnet-20241022",
                "usage": {"input_tokens": 50, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 2000, "output_tokens": 400}}"#,
        ),
        (
            "gpt-4o",
            1_000,
            r#"{"object": "chat.completion", "model": "gpt-4o-2024-08-06",
                "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020}}"#,
        ),
    ];

    let task = Budget::builder("task", Limit::hard(Amount::usd("0.50")?)).build()?;
    let mut by_model: BTreeMap<&str, (u32, u64, u64, i64)> = BTreeMap::new();
    println!();
    println!(
        "{:<28} {:>7} {:>7} {:>13} {:>13}",
        "model", "in", "out", "held", "cost"
    );
    for (model, max_tokens, body) in calls {
        let usage = Usage::from_json(body)?;
        // Before the call: hold the worst case for this prompt and max_tokens.
        let guard = task.reserve_for(&prices, model, usage.prompt_tokens(), max_tokens)?;
        let held = guard
            .held()
            .get(Unit::Usd)
            .unwrap_or(Amount::zero(Unit::Usd));
        // After the call: commit what the usage report says it cost; the rest returns.
        let cost = prices.cost(model, &usage)?;
        guard.commit_usage(prices.get(model)?, &usage)?;
        println!(
            "{:<28} {:>7} {:>7} {:>13} {:>13}",
            model,
            usage.prompt_tokens(),
            usage.completion_tokens(),
            held.to_string(),
            cost.to_string()
        );
        let row = by_model.entry(model).or_default();
        row.0 += 1;
        row.1 += usage.prompt_tokens();
        row.2 += usage.completion_tokens();
        row.3 += cost.minor_units();
    }

    println!();
    println!(
        "{:<28} {:>5} {:>9} {:>9} {:>13}",
        "model", "calls", "in", "out", "total"
    );
    let mut total = 0;
    for (model, (calls, input, output, nanos)) in &by_model {
        let cost = Amount::try_from_minor(*nanos, Unit::Usd)?;
        println!(
            "{model:<28} {calls:>5} {input:>9} {output:>9} {:>13}",
            cost.to_string()
        );
        total += nanos;
    }
    let total = Amount::try_from_minor(total, Unit::Usd)?;
    let balance = task.balance(Unit::Usd)?;
    println!(
        "{:<28} {:>5} {:>9} {:>9} {:>13}",
        "all",
        "",
        "",
        "",
        total.to_string()
    );
    assert_eq!(
        balance.spent, total,
        "the budget's books match the priced usage exactly"
    );
    println!();
    println!(
        "budget {}: spent {} of {}, nothing left held ({})",
        balance.node,
        balance.spent,
        Amount::usd("0.50")?,
        balance.reserved
    );
    Ok(())
}

#[cfg(not(feature = "serde"))]
fn main() {
    eprintln!("this example parses JSON: run it with `--features serde`");
}
