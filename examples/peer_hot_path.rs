//! Runs `N` priced LLM-call charges through budget-guard or through `llm-budget` 0.2 (a
//! dev-dependency), the work of `benches/peer.rs`'s issue-16 rows, as a plain program: the
//! harness for instruction counts of the side-by-side comparison (BENCHMARKS.md, "Issue 16
//! targets" and "Priced call vs llm-budget (wave 5)"), which are stable on a shared machine where
//! times are not.
//!
//! * `budget-guard`: `reserve_for` (worst case of 2,000 prompt + 1,000 completion tokens) then
//!   `commit_usage` (1,800 + 250 tokens) on `fleet/agent`, `gpt-4o-mini` at $0.15 / $0.60 per
//!   million tokens.
//! * `llm-budget`: `FleetAllocator::charge_agent_usage` of the same usage and model (its built-in
//!   price table has the same prices), awaited in a current-thread tokio runtime.
//!
//! ```text
//! cargo build --profile bench --example peer_hot_path
//! valgrind --tool=callgrind target/release/examples/peer_hot_path 10000 llm-budget  # and 20000:
//! # instructions per call = (Ir(20000) - Ir(10000)) / 10000
//! ```

use std::hint::black_box;

use budget_guard::{Amount, Budget, Limit, ModelPrice, PriceTable, Usage};
use llm_budget::{FleetAllocator, ModelTier};

const MODEL: &str = "gpt-4o-mini";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1_000);
    match std::env::args().nth(2).as_deref() {
        Some("llm-budget") => {
            let fleet = FleetAllocator::new(1e12, ModelTier::Standard, 0.2)?;
            fleet.register_agent("agent", 1e9)?;
            let usage = llm_budget::Usage::new(1_800, 250);
            let runtime = tokio::runtime::Builder::new_current_thread().build()?;
            runtime.block_on(async {
                for _ in 0..calls {
                    let receipt = fleet
                        .charge_agent_usage("agent", black_box(MODEL), &usage, None, None)
                        .await?;
                    black_box(receipt);
                }
                Ok::<_, llm_budget::BudgetError>(())
            })?;
            println!(
                "{calls} llm-budget charges; fleet spent ${:.6}",
                fleet.fleet_budget().spent_usd()
            );
        }
        _ => {
            let prices = PriceTable::new().with(
                MODEL,
                ModelPrice::per_million("0.15".parse()?, "0.6".parse()?)?,
            );
            let price = prices.get(MODEL)?;
            let usage = Usage::new(1_800, 250);
            let big = Limit::hard(Amount::usd("1000000000")?);
            let fleet = Budget::builder("fleet", big).child("agent", big).build()?;
            let agent = fleet.at("agent")?;
            for _ in 0..calls {
                let guard = agent.reserve_for(&prices, black_box(MODEL), 2_000, 1_000)?;
                black_box(guard.commit_usage(price, &usage)?);
            }
            println!(
                "{calls} budget-guard reserve_for + commit_usage; fleet spent {}",
                fleet.balance(budget_guard::Unit::Usd)?.spent
            );
        }
    }
    Ok(())
}
