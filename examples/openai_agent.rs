//! An agent loop through the budgeted OpenAI client: a ladder picks the model tier by what is
//! left of the budget, every call holds its worst case and commits its usage, and a fallback
//! chain moves from one model to another when the first fails.
//!
//! Runs against `OPENAI_BASE_URL` (with `OPENAI_API_KEY`) when set, else against the test mock
//! (`tests/openai_support/mock.rs`), which it starts on a loopback port, so it works offline:
//! `cargo run --features openai --example openai_agent`.

#[path = "../tests/openai_support/mock.rs"]
mod mock;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequest};
use budget_guard::openai::{BudgetedChat, OpenAiError};
use budget_guard::{Amount, Budget, Ladder, Limit, ModelPrice, Outcome, PriceTable, Tier, Unit};

fn request(model: &str, text: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        model: model.to_owned(),
        messages: vec![ChatCompletionRequestUserMessage::from(text).into()],
        max_completion_tokens: Some(150),
        ..Default::default()
    }
}

fn status(budget: &Budget) -> Result<String, budget_guard::Error> {
    let balance = budget.balance(Unit::Usd)?;
    let remaining = balance
        .remaining
        .map_or("-".to_owned(), |left| left.to_string());
    Ok(format!(
        "spent {}, reserved {}, remaining {remaining}",
        balance.spent, balance.reserved
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (base_url, mock) = match std::env::var("OPENAI_BASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let mock = mock::Mock::start().await;
            (mock.base_url.clone(), Some(mock))
        }
    };
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_else(|_| "offline".to_owned());
    println!("provider: {base_url}");
    let prices = PriceTable::new()
        .with(
            "gpt-4o",
            ModelPrice::per_million("2.50".parse()?, "10".parse()?)?
                .with_cached_input_per_million("1.25".parse()?)?,
        )
        .with(
            "gpt-4o-mini",
            ModelPrice::per_million("0.15".parse()?, "0.60".parse()?)?
                .with_cached_input_per_million("0.075".parse()?)?,
        );
    let config = OpenAIConfig::new()
        .with_api_base(base_url)
        .with_api_key(key);
    let chat = BudgetedChat::new(Client::with_config(config), prices);

    // The ladder: the premium model while less than half the budget is used, then the economy
    // model; each tier's estimate is its worst case for the loop's requests.
    let premium = chat.worst_case(&request("gpt-4o", "question 00: how do I size a hold?"))?;
    let economy = chat.worst_case(&request(
        "gpt-4o-mini",
        "question 00: how do I size a hold?",
    ))?;
    let ladder = Ladder::new()
        .with(Tier::new("gpt-4o", premium).while_usage_below(50))
        .with(Tier::new("gpt-4o-mini", economy));
    let agent = Budget::builder("agent", Limit::hard(Amount::usd("0.004")?)).build()?;

    println!("\nagent loop on a $0.004 budget (premium holds {premium}, economy {economy}):");
    for step in 0..100 {
        let (tier, guard) = match ladder.reserve(&agent) {
            Ok(chosen) => chosen,
            Err(error) => {
                println!("step {step:>2}: stop, {error}");
                break;
            }
        };
        let model = tier.name().to_owned();
        let question = format!("question {step:02}: how do I size a hold?");
        match chat.chat_held(guard, request(&model, &question)).await {
            Ok(reply) => println!(
                "step {step:>2}: {model:<11} held {:>12} cost {:>12} | {}",
                reply.held.to_string(),
                reply.cost.to_string(),
                status(&agent)?
            ),
            Err(error) => println!("step {step:>2}: {model} failed: {error}"),
        }
    }

    // A fallback chain across two models on another budget. Offline, the mock is told to fail
    // the first model with a 500 (not billed, released), so the chain moves on.
    let task = Budget::builder("task", Limit::hard(Amount::usd("0.05")?)).build()?;
    let chain = Ladder::new()
        .tier("gpt-4o", premium)
        .tier("gpt-4o-mini", economy);
    let offline = mock.is_some();
    let served = chain
        .fallback_async(&task, OpenAiError::is_retryable, async |tier, guard| {
            let text = if offline && tier.name() == "gpt-4o" {
                "fault:500"
            } else {
                "summarize"
            };
            chat.chat_within(guard, request(tier.name(), text)).await
        })
        .await
        .map_err(|error| error.to_string())?;
    println!("\nfallback chain served by {}:", served.tier);
    for attempt in &served.attempts {
        let outcome = match &attempt.outcome {
            Outcome::Failed { error, .. } => format!("failed: {error}"),
            other => format!("{other:?}"),
        };
        let charged = attempt
            .charged
            .get(Unit::Usd)
            .unwrap_or(Amount::zero(Unit::Usd));
        println!(
            "  {:<11} charged {:<10} {outcome}",
            attempt.tier,
            charged.to_string()
        );
    }
    println!("task: {}", status(&task)?);

    let (agent_books, task_books) = (agent.balance(Unit::Usd)?, task.balance(Unit::Usd)?);
    assert!(agent_books.reserved.is_zero() && task_books.reserved.is_zero());
    if let Some(mock) = mock {
        let spent = agent_books.spent.minor_units() + task_books.spent.minor_units();
        assert_eq!(
            spent,
            mock.billed_nanos(),
            "the budgets' books match the server's"
        );
        println!("\nthe budgets spent exactly what the mock billed: {spent} nano-dollars");
    }
    Ok(())
}
