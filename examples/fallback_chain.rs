//! A fallback chain: the primary provider is overloaded (and bills the failed call anyway), the
//! secondary serves; repeated requests continue until the cap stops them, never past it.
//!
//! Run with `cargo run --example fallback_chain`.

use budget_guard::{Amount, Budget, Limit, Outcome, Unit};

#[derive(Debug)]
enum ProviderError {
    Overloaded,
    InvalidRequest,
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chain = budget_guard::Ladder::new()
        .tier("primary", Amount::usd("0.040")?)
        .tier("secondary", Amount::usd("0.025")?)
        .tier("local", Amount::usd("0.002")?);
    let task = Budget::builder("task", Limit::hard(Amount::usd("0.20")?)).build()?;
    let retryable = |error: &ProviderError| matches!(error, ProviderError::Overloaded);

    for request in 1.. {
        let result = chain.fallback(&task, retryable, |tier, guard| match tier.name() {
            // Overloaded on every odd request, after billing $0.004 for the prompt.
            "primary" if request % 2 == 1 => {
                guard
                    .record(Amount::usd("0.004").expect("valid"))
                    .map_err(|_| ProviderError::InvalidRequest)?;
                Err(ProviderError::Overloaded)
            }
            _ => Ok((format!("answer {request}"), tier.estimate())),
        });
        match result {
            Ok(served) => {
                let log: Vec<String> = served
                    .attempts
                    .iter()
                    .map(|attempt| {
                        let what = match &attempt.outcome {
                            Outcome::Served => "served".to_owned(),
                            Outcome::Denied(_) => "denied".to_owned(),
                            Outcome::Failed { error, .. } => format!("failed ({error:?})"),
                            _ => "skipped".to_owned(),
                        };
                        format!("{} {what}, charged {}", attempt.tier, attempt.charged)
                    })
                    .collect();
                println!(
                    "request {request}: {} by {} [{}]",
                    served.value,
                    served.tier,
                    log.join("; ")
                );
            }
            Err(error) => {
                println!("request {request}: {error}");
                break;
            }
        }
    }
    let balance = task.balance(Unit::Usd)?;
    println!(
        "spent {} of the {} cap, {} reserved",
        balance.spent,
        Amount::usd("0.20")?,
        balance.reserved
    );
    assert!(balance.spent <= Amount::usd("0.20")?);
    Ok(())
}
