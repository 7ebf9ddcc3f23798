//! Keep AI agents and other metered work inside their budgets **before** the money is spent.
//!
//! Reserve the worst case, do the expensive call, commit what it really cost; the unused rest
//! returns, and a guard that is dropped (early return, `?`, panic) releases its whole hold:
//!
//! ```
//! use budget_guard::{Amount, Budget, Limit, Unit};
//! # fn call_model() -> Amount { Amount::usd("0.031").unwrap() }
//! # fn main() -> budget_guard::Result<()> {
//! let org = Budget::builder("acme", Limit::hard(Amount::usd("100")?))
//!     .child("support", Limit::hard(Amount::usd("40")?))
//!     .child("support/agent-7", Limit::hard(Amount::usd("0.10")?))
//!     .build()?;
//! let agent = org.at("support/agent-7")?;
//!
//! let guard = agent.reserve(Amount::usd("0.05")?)?; // held on agent, support and acme at once
//! let cost = call_model();                           // the expensive call
//! guard.commit(cost)?;                               // $0.031 spent, $0.019 returned
//!
//! let err = agent.reserve(Amount::usd("0.08")?).unwrap_err();
//! assert!(err.is_denial()); // only $0.069 left on agent-7: nothing was held anywhere
//! assert_eq!(org.balance(Unit::Usd)?.spent, Amount::usd("0.031")?);
//! # Ok(()) }
//! ```
//!
//! # The tree
//!
//! A [`Budget`] is a cheap handle to one node of a tree (`org → team → agent → task`). Each node
//! has at most one [`Limit`] per [`Unit`] (USD, tokens, requests), hard or soft, with an
//! [`OveragePolicy`] for commits above their hold. Nodes are added and removed at run time
//! (a child budget per request is the common case), limits raised and lowered, funds credited and
//! debited. A reserve holds the amount on the node and every ancestor, or nowhere.
//!
//! # Periods
//!
//! A limit can be an allocation per [`Period`](period::Period): daily, weekly or monthly on
//! calendar boundaries in an IANA time zone, or fixed windows (`Period::every(5 hours)`), with an
//! optional [`Rollover`](period::Rollover) of the unused rest. Spend resets lazily at the first
//! operation after a boundary (no thread), live holds stay reserved across it, and
//! [`Balance::resets_at`] says when. A per-task cap under a per-month team cap is two nodes on one
//! path. See [`period`].
//!
//! # Exact money
//!
//! [`Amount`] speaks `rust_decimal::Decimal` at the edge and counts `i64` minor units inside
//! (nano-dollars, whole tokens), so the hot path never does decimal math and never rounds
//! silently: too many decimal places, negative values and overflow are errors, and
//! [`Amount::rounded_up`] rounds *up* for estimates.
//!
//! # Reactions
//!
//! * **Thresholds and events.** [`Limit::with_thresholds`] puts levels (`[50, 80, 95]` %) on a
//!   limit; the store detects when committed spend reaches one inside its atomic operation, exactly
//!   once until spend itself falls back (period reset, credit, raised limit); holds count only
//!   with the opt-in [`ThresholdBasis::SpentAndHeld`] early warning. [`Budget::on_event`] and
//!   [`Budget::subscribe`] receive [`Event`]s (crossings, denials, overages, released holds) for
//!   a node and its subtree, after the store call returned, stamped with the store's [`Clock`]:
//!   callbacks may use the budget, and a panicking one changes nothing. [`Budget::on_exceeded`]
//!   hears only refusals (the kill switch), not overages a policy allowed.
//! * **Closures.** [`Budget::run`] reserves, runs the work, and commits what it returned
//!   (releases on error or panic).
//! * **Approval.** [`Budget::require_approval`] makes reserves above a threshold, on a node and
//!   everything below it, ask an [`Approver`](approval::Approver) (a human, a policy service)
//!   before anything is held; a "no" is [`Error::ApprovalDenied`]. See [`approval`].
//! * **Degradation.** A [`Ladder`] of [`Tier`]s picks the best model the budget can still pay
//!   for; [`Ladder::reserve`] holds it in the same step. [`Ladder::fallback`] tries tiers in
//!   order on denials and retryable errors, charging every attempt.
//!
//! # Concurrency
//!
//! Every operation is one atomic step of the [`Store`]: [`MemoryStore`] runs the ledger under one
//! short `parking_lot` lock per tree, so any number of threads can reserve on one budget and a
//! hard limit is never passed (`tests/concurrency.rs` hammers it from 8 threads and checks the
//! limit at every observed moment). No user code runs under that lock.
//!
//! # Cost
//!
//! A reserve+commit pair on a depth-4 path costs roughly 200–260 ns on a shared 2-core VM: about
//! 40× a bare `parking_lot::Mutex<i64>` check-and-add measured in the same run, and about 1.4×
//! faster than one `charge_usd` of the `llm-budget` crate. Nothing is allocated on that path, and
//! the cost does not grow with the size of the tree (a million nodes or a million open holds cost
//! the same as ten). Figures, method and where the time goes: `BENCHMARKS.md` and `benches/`.
//!
//! # Public paths
//!
//! Every public item has exactly one path. The vocabulary every program uses is at the root
//! ([`Budget`], [`Guard`], [`Cost`], [`Amount`], [`Unit`], [`Limit`], [`Error`], [`Store`],
//! [`MemoryStore`], [`FileStore`], events, snapshots, the op model). Each optional subsystem
//! lives in its module only, and its items are named through it:
//!
//! | module | what it holds |
//! |---|---|
//! | [`approval`] | [`Approver`](approval::Approver), [`Approval`](approval::Approval), [`ApprovalRequest`](approval::ApprovalRequest) |
//! | [`burn`] | [`BurnWindow`](burn::BurnWindow), [`BurnRate`](burn::BurnRate) |
//! | [`expiry`] | [`ReserveOptions`](expiry::ReserveOptions), [`ExpiredHold`](expiry::ExpiredHold), hold TTLs |
//! | [`idempotency`] | [`IdempotencyKey`](idempotency::IdempotencyKey), [`OpOptions`](idempotency::OpOptions), [`KeyRetention`](idempotency::KeyRetention), [`HoldEnd`](idempotency::HoldEnd) |
//! | [`period`] | [`Period`](period::Period), [`Rollover`](period::Rollover) |
//! | [`rate`] | [`RateLimit`](rate::RateLimit) |
//! | [`report`] | [`Report`](report::Report), [`ReportQuery`](report::ReportQuery), [`SpendRecord`](report::SpendRecord), ... |
//! | [`top_up`] | [`TopUp`](top_up::TopUp) and its events and snapshot |
//!
//! The feature-gated `openai` and `conformance` are modules of the same kind; the `redis`
//! feature adds `RedisStore` and `RedisOptions` at the root. A module is named by what it is
//! about, so user code reads:
//!
//! ```
//! use budget_guard::period::Period;
//! use budget_guard::{Budget, Limit, usd};
//! # fn main() -> budget_guard::Result<()> {
//! let team = Budget::builder("team", Limit::hard(usd!("25")).per(Period::daily())).build()?;
//! assert_eq!(team.balance(budget_guard::Unit::Usd)?.limit.unwrap().period(), Some(Period::daily()));
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `serde` | no | `Serialize`/`Deserialize` on amounts, limits, balances and snapshots (amounts as exact decimal strings); price tables from JSON and the LiteLLM price map (`PriceTable::from_litellm_json`); usage reports from OpenAI and Anthropic JSON (`Usage::from_json`) |
//! | `tokio` | no | [`Budget::run_async`], [`Budget::reserve_async`] with [`AsyncApprover`](approval::AsyncApprover)s, [`Ladder::fallback_async`], [`Budget::subscribe_async`] (an async event stream); guards held by a cancelled future release their holds |
//! | `openai` | no | [`openai`]: a budgeted chat-completions client on `async-openai` (OpenAI or any compatible server): worst-case holds with the output cap they pay for, commits from the reply's usage, streams, and a policy for replies lost in flight |
//! | `openai-tiktoken` | no | `openai::tiktoken_prompt_bound` and `BudgetedChat::with_tiktoken`: prompt holds from the model's own encoding (`tiktoken-rs`) instead of the byte bound |
//! | `conformance` | no | [`conformance`]: the test suite every [`Store`] implementation must pass |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod amount;
pub mod approval;
#[cfg(feature = "tokio")]
mod asynchronous;
mod balance;
mod budget;
pub mod burn;
mod cancel;
mod check;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod cost;
mod dashboard;
mod error;
mod event;
pub mod expiry;
mod fallback;
mod guard;
mod hub;
pub mod idempotency;
mod ids;
mod labels;
mod ladder;
pub mod lease;
mod ledger;
mod literal;
mod meter;
mod node_state;
mod op;
mod open_holds;
#[cfg(feature = "openai")]
pub mod openai;
pub mod period;
mod policy;
mod price;
pub mod rate;
pub mod report;
mod run;
mod store;
mod sync;
mod threshold;
pub mod top_up;
mod usage;

pub use amount::{Amount, Unit};
pub use balance::{
    AccountSnapshot, Balance, CapSnapshot, HoldSnapshot, NodeInfo, NodeSnapshot, Snapshot,
};
pub use budget::{Budget, BudgetBuilder};
pub use cancel::Cancellation;
pub use check::{Check, LimitStatus, Verdict};
pub use clock::{Clock, CoarseClock, ManualClock, SystemClock, Timestamp};
pub use cost::Cost;
pub use dashboard::{Dashboard, DashboardRow, Status};
pub use error::{AmountError, Error, Exceeded, Result, StoreError, StoreErrorKind};
pub use event::{
    DenialReason, DeniedEvent, Event, ExpiredEvent, OverageEvent, ReleasedEvent, ThresholdEvent,
    TopUpEvent,
};
pub use fallback::{Attempt, FallbackError, Outcome, Served};
pub use guard::{CommitError, Guard};
pub use hub::SubscriptionId;
pub use ids::{HoldId, MAX_LIVE_HOLDS, NodeId};
pub use labels::{Labels, MAX_LABEL_LEN, MAX_TAGS};
pub use ladder::{Ladder, Tier};
pub use lease::{LeaseOptions, LeaseStats, LeasedStore};
pub use meter::{CommitUsageError, Flow, NoUsageFallback, StreamMeter};
pub use node_state::NodeState;
pub use op::{Answer, Applied, Op, OpKind, Query};
pub use open_holds::OpenHolds;
pub use policy::{Limit, LimitKind, Limits, OveragePolicy};
#[cfg(feature = "serde")]
pub use price::{LiteLlmImport, SkipReason, SkippedModel};
pub use price::{ModelPrice, PriceTable, PricingError};
pub use run::RunError;
pub use store::file::{Durability, FileStore, FileStoreOptions};
pub use store::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use store::redis::{FailOpen, LetThrough, RedisOptions, RedisStore};
pub use store::{Committed, Reservation, Store};
pub use threshold::{
    Crossings, MAX_LEVEL_PERCENT, MAX_LEVELS, ThresholdBasis, ThresholdCrossing, Thresholds,
};
pub use usage::Usage;

/// What the literal macros ([`usd!`], [`tokens!`], [`requests!`]) expand to; not a public API.
#[doc(hidden)]
pub mod __literal {
    pub use crate::literal::{LiteralError, count, parse};
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
