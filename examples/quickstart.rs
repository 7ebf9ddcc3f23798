//! The main job end to end: a small tree, reserve, commit, and a budget-exceeded error; then a
//! threshold callback and a ladder that degrades to a cheaper model as money runs low.
//!
//! Run with `cargo run --example quickstart`.

use budget_guard::{Amount, Budget, Ladder, Limit, Tier, Unit};

/// Stands in for an LLM call: returns what the call really cost.
fn fake_model_call(prompt: &str) -> Amount {
    // $0.002 per character of prompt, exact.
    let nanos = 2_000_000 * i64::try_from(prompt.len()).expect("short prompt");
    Amount::try_from_minor(nanos, Unit::Usd).expect("non-negative")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let org = Budget::builder("acme", Limit::hard(Amount::usd("100")?))
        .child("support", Limit::hard(Amount::usd("40")?))
        .child("support/agent-7", Limit::hard(Amount::usd("1")?))
        .build()?;
    let agent = org.at("support/agent-7")?;

    // Each request gets its own task budget under the agent.
    let task = agent.add_child("task-42", Limit::hard(Amount::usd("0.25")?))?;

    // (prompt, worst-case estimate to hold before calling)
    let calls = [
        ("summarise the ticket", "0.10"),
        ("draft a reply to the customer", "0.10"),
        ("rewrite the whole knowledge base article", "0.20"),
    ];
    for (prompt, estimate) in calls {
        match task.reserve(Amount::usd(estimate)?) {
            Ok(guard) => {
                let cost = fake_model_call(prompt);
                let committed = guard.commit(cost)?;
                let left = task.balance(Unit::Usd)?;
                println!(
                    "call {prompt:?}: held ${estimate}, cost {cost}, returned {}, task has {} left",
                    committed.returned,
                    left.remaining.expect("task has a limit"),
                );
            }
            // The task has $0.152 left: the third call is refused before any money is spent,
            // and nothing was held on the agent, the team or the org either.
            Err(error) => println!("call {prompt:?} refused before spending: {error}"),
        }
    }

    thresholds_and_ladder(&agent)?;

    for node in [&org, &agent, &task] {
        let balance = node.balance(Unit::Usd)?;
        println!(
            "{:<28} limit {:>8}  spent {:>8}  reserved {:>6}  debt {:>6}",
            node.path(),
            balance
                .limit
                .map(|l| l.amount().to_string())
                .unwrap_or_default(),
            balance.spent.to_string(),
            balance.reserved.to_string(),
            balance.debt.to_string(),
        );
    }
    Ok(())
}

/// A second task with 50/80 % alerts, served by the best model tier it can still afford.
fn thresholds_and_ladder(agent: &Budget) -> Result<(), Box<dyn std::error::Error>> {
    let limit = Limit::hard(Amount::usd("0.50")?).with_thresholds([50, 80]);
    let task = agent.add_child("task-43", limit)?;
    // Fires once per level, when committed spend reaches it (holds are listed apart).
    task.on_threshold(|event| {
        println!(
            "  alert: {}% of {} spent on {} ({} spent, {} held)",
            event.level, event.limit, event.node, event.spent, event.reserved
        );
    });
    let ladder = Ladder::new()
        .with(Tier::new("large-model", Amount::usd("0.12")?).while_usage_below(50))
        .with(Tier::new("small-model", Amount::usd("0.04")?));
    while let Ok((tier, guard)) = ladder.reserve(&task) {
        let cost = guard.held().get(Unit::Usd).expect("usd estimate");
        guard.commit(cost)?; // pretend each call costs exactly its estimate
        println!("task-43 used {} for {cost}", tier.name());
    }
    println!(
        "task-43 stopped with {} left",
        task.balance(Unit::Usd)?.remaining.expect("limit")
    );
    Ok(())
}
