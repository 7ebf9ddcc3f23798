//! A simulated agent loop: a fake model reports token usage, charged per token from a
//! [`PriceTable`] with exact decimal prices; a ladder picks the model tier as money runs low;
//! the loop runs until the budget stops it, then prints who spent what, by model, and the
//! budget dashboard.
//!
//! Run with `cargo run --example agent_loop`.

use budget_guard::report::{GroupBy, ReportOptions, ReportQuery};
use budget_guard::{
    Amount, Budget, Event, Labels, Ladder, Limit, ModelPrice, PriceTable, Tier, Unit, Usage,
};

/// The fake model: token usage varies with the step, deterministically.
fn fake_model(step: u64) -> Usage {
    Usage::new(2_000 + 500 * (step % 4), 400 + 150 * (step % 3))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Per million tokens (input, output), exact.
    let prices = PriceTable::new()
        .with(
            "premium",
            ModelPrice::per_million("15".parse()?, "75".parse()?)?,
        )
        .with(
            "standard",
            ModelPrice::per_million("3".parse()?, "15".parse()?)?,
        )
        .with(
            "economy",
            ModelPrice::per_million("0.25".parse()?, "1.25".parse()?)?,
        );
    // Hold the worst case per call: 4,000 input and 1,000 output tokens.
    let mut ladder = Ladder::new();
    for (index, model) in ["premium", "standard", "economy"].into_iter().enumerate() {
        let tier = Tier::new(model, prices.get(model)?.worst_case(4_000, 1_000)?);
        // The premium model only while less than 60 % of the budget is used.
        ladder = ladder.with(if index == 0 {
            tier.while_usage_below(60)
        } else {
            tier
        });
    }

    let agent = Budget::builder(
        "agent",
        Limit::hard(Amount::usd("1")?).with_thresholds([50, 80, 95]),
    )
    .build()?;
    agent.enable_reports(ReportOptions::new())?;
    agent.on_event(|event| {
        if let Event::ThresholdCrossed(crossed) = event {
            let drivers: Vec<String> = crossed
                .top_drivers
                .iter()
                .map(|driver| format!("{} {}", driver.key, driver.spent))
                .collect();
            println!(
                "  ** {}% of {} used on {} ({} left; top models: {})",
                crossed.level,
                crossed.limit,
                crossed.node,
                crossed.remaining,
                drivers.join(", ")
            );
        }
    });

    let mut step = 0;
    loop {
        step += 1;
        let (tier, mut guard) = match ladder.reserve(&agent) {
            Ok(chosen) => chosen,
            Err(error) => {
                println!("step {step}: stopped by the budget: {error}");
                break;
            }
        };
        let model = tier.name().to_owned();
        guard.label(
            &Labels::new()
                .model(&model)
                .agent("researcher")
                .tag(if step % 2 == 0 {
                    "feature:search"
                } else {
                    "feature:summarize"
                }),
        )?;
        let usage = fake_model(step);
        let price = prices.get(&model)?;
        let cost = price.cost(&usage)?;
        let held = guard.held();
        guard.commit_usage(price, &usage)?;
        let left = agent
            .balance(Unit::Usd)?
            .remaining
            .expect("agent has a limit");
        println!(
            "step {step:>2}: {model:<8} {:>5} in / {:>4} out tokens  held {held}  cost {cost}  left {left}",
            usage.prompt_tokens(),
            usage.completion_tokens(),
        );
    }
    let balance = agent.balance(Unit::Usd)?;
    println!(
        "spent {} of {} in {} steps\n",
        balance.spent,
        Amount::usd("1")?,
        step - 1
    );
    let report = agent
        .report(&ReportQuery::by(GroupBy::Model))
        .expect("reports are enabled");
    assert_eq!(
        report.total.usd, balance.spent,
        "the report matches the ledger"
    );
    println!("{report}");
    println!("{}", agent.dashboard(Unit::Usd)?);
    Ok(())
}
