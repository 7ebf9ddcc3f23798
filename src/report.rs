//! Attribution reports: who spent what, grouped by node, model, agent, task or tag, over any
//! node and time range.
//!
//! # How it works
//!
//! [`Budget::enable_reports`] gives a tree's handle family (every handle derived from the same
//! [`build`](crate::BudgetBuilder::build) or [`open`](Budget::open)) a report book. Each time a
//! hold ends with spend — a commit, a commit refused as
//! [`OverageRejected`](crate::Error::OverageRejected) (its spend is recorded, partly as debt),
//! or a release of a hold that [`record`](crate::Guard::record)ed spend — the guard adds one
//! [`SpendRecord`] to the book, **after** the store operation returned and outside any ledger
//! lock: reports are observational, never a money rule. The book keeps aggregates per time
//! bucket (one minute by default) × node × [`Labels`], not a log, so its memory is bounded by
//! [`ReportOptions::max_rows`]: past the cap, the oldest buckets are folded into
//! [`Report::dropped`] (counted, but no longer grouped). An optional
//! [`sink`](ReportOptions::sink) receives every record for users who want a full audit trail.
//!
//! # What a report covers
//!
//! Spend committed through this process's handles of the tree, since reports were enabled.
//! Spend is money spent: the ledger's `spent + debt` (an overage refused into debt is still
//! spent). Other processes sharing a durable store, or other [`Budget::open`] handle families,
//! keep their own books. With nothing dropped, a report on a node over all time equals the
//! ledger's `spent + debt` of that node to the nano-unit (`tests/reports.rs` checks it under 8
//! threads).
//!
//! ```
//! use budget_guard::report::{GroupBy, ReportOptions, ReportQuery};
//! use budget_guard::{Amount, Budget, Labels, Limit};
//! # fn main() -> budget_guard::Result<()> {
//! let org = Budget::builder("org", Limit::hard(Amount::usd("10")?)).build()?;
//! org.enable_reports(ReportOptions::new())?;
//! let search = Labels::new().model("gpt-4o").tag("feature:search");
//! org.reserve_labeled(Amount::usd("0.50")?, &search)?.commit(Amount::usd("0.30")?)?;
//! let chat = Labels::new().model("gpt-4o-mini").tag("feature:chat");
//! org.reserve_labeled(Amount::usd("0.10")?, &chat)?.commit(Amount::usd("0.02")?)?;
//!
//! let report = org.report(&ReportQuery::by(GroupBy::Model)).expect("reports enabled");
//! assert_eq!(report.rows[0].key.as_ref(), "gpt-4o");
//! assert_eq!(report.rows[0].totals.usd, Amount::usd("0.30")?);
//! assert_eq!(report.total.usd, Amount::usd("0.32")?);
//! println!("{report}"); // a table: key / records / usd / tokens / requests / in / out
//! # Ok(()) }
//! ```

mod book;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::budget::Budget;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::guard::Guard;
use crate::ids::HoldId;
use crate::labels::Labels;
use crate::usage::Usage;

pub(crate) use self::book::{Entry, Recorder};

type Sink = dyn Fn(&SpendRecord) + Send + Sync + 'static;

/// How a report book buckets, bounds and forwards spend records.
#[derive(Clone)]
#[must_use = "options do nothing until passed to Budget::enable_reports"]
pub struct ReportOptions {
    bucket: Duration,
    max_rows: usize,
    clock: Arc<dyn Clock>,
    sink: Option<Arc<Sink>>,
    drivers: (GroupBy, usize),
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            bucket: Duration::from_secs(60),
            max_rows: 10_000,
            clock: Arc::new(SystemClock),
            sink: None,
            drivers: (GroupBy::Model, 3),
        }
    }
}

impl ReportOptions {
    /// One-minute buckets, at most 10,000 rows, the [`SystemClock`], no sink, top three models
    /// as the cost drivers of threshold events.
    pub fn new() -> Self {
        ReportOptions::default()
    }

    /// The time resolution of reports (one minute by default; one hour keeps more history in
    /// the same rows).
    pub fn bucket(mut self, bucket: Duration) -> Self {
        self.bucket = bucket;
        self
    }

    /// The most aggregate rows (bucket × node × label set) kept. A row costs about 200 bytes
    /// plus its label strings (at most 8 × 128 bytes). Past the cap, the oldest buckets are
    /// folded into [`Report::dropped`]; if the current bucket alone fills the cap, new label
    /// sets go there directly.
    pub fn max_rows(mut self, rows: usize) -> Self {
        self.max_rows = rows;
        self
    }

    /// The clock that stamps records (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Receives every [`SpendRecord`] (the full audit trail), in the thread that ended the
    /// hold, after the store operation and outside every lock. Keep it short; a panic in it is
    /// caught and logged and changes nothing.
    pub fn sink(mut self, sink: impl Fn(&SpendRecord) + Send + Sync + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Threshold events list the `count` biggest spenders grouped by `group_by` in
    /// [`ThresholdEvent::top_drivers`](crate::ThresholdEvent::top_drivers) (zero turns it off).
    pub fn top_drivers(mut self, group_by: GroupBy, count: usize) -> Self {
        self.drivers = (group_by, count);
        self
    }
}

impl fmt::Debug for ReportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportOptions")
            .field("bucket", &self.bucket)
            .field("max_rows", &self.max_rows)
            .field("clock", &self.clock)
            .field("sink", &self.sink.is_some())
            .field("drivers", &self.drivers)
            .finish()
    }
}

/// What a report groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum GroupBy {
    /// The node the hold was reserved on (full path).
    Node,
    /// [`Labels::model`]; `(none)` without one.
    Model,
    /// [`Labels::agent`]; `(none)` without one.
    Agent,
    /// [`Labels::task`]; `(none)` without one.
    Task,
    /// Each of [`Labels::tag`]: a record with two tags counts in both groups (so the groups may
    /// sum to more than [`Report::total`]); `(none)` without tags.
    Tag,
}

/// Which spend a report covers: a grouping and an optional time range `[from, to)`, at bucket
/// resolution (a bucket counts when its start is in the range, `from` rounded down to its
/// bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportQuery {
    group_by: GroupBy,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
}

impl ReportQuery {
    /// All retained time, grouped by `group_by`.
    pub fn by(group_by: GroupBy) -> Self {
        ReportQuery {
            group_by,
            from: None,
            to: None,
        }
    }

    /// Only spend at or after `from` (its bucket included).
    #[must_use]
    pub fn since(mut self, from: Timestamp) -> Self {
        self.from = Some(from);
        self
    }

    /// Only spend in buckets starting before `to`.
    #[must_use]
    pub fn until(mut self, to: Timestamp) -> Self {
        self.to = Some(to);
        self
    }
}

/// Sums of spend: per unit, how many records, and the input/output tokens of the usage reports
/// committed ([`Guard::commit_usage`], [`StreamMeter`](crate::StreamMeter)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Totals {
    /// Dollars spent.
    pub usd: Amount,
    /// Tokens spent (as a budget unit).
    pub tokens: Amount,
    /// Requests spent (as a budget unit).
    pub requests: Amount,
    /// Spend records (ended holds with spend).
    pub records: u64,
    /// Input (prompt) tokens of the committed usage reports.
    pub input_tokens: u64,
    /// Output (completion) tokens of the committed usage reports.
    pub output_tokens: u64,
}

impl Totals {
    /// The spend in `unit`.
    pub fn spent(&self, unit: Unit) -> Amount {
        match unit {
            Unit::Usd => self.usd,
            Unit::Tokens => self.tokens,
            Unit::Requests => self.requests,
        }
    }
}

/// One group of a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ReportRow {
    /// The node path, model, agent, task or tag; `(none)` for records without that label.
    pub key: Arc<str>,
    /// The group's sums.
    pub totals: Totals,
}

/// Spend below one node over a time range, grouped; `Display` prints it as a table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Report {
    /// The node reported on (its subtree is included).
    pub scope: Arc<str>,
    /// The grouping.
    pub group_by: GroupBy,
    /// Start of the range, if bounded.
    pub from: Option<Timestamp>,
    /// End of the range, if bounded.
    pub to: Option<Timestamp>,
    /// The bucket width (the range's resolution).
    pub bucket: Duration,
    /// The groups, biggest spend first (dollars, then tokens, then requests).
    pub rows: Vec<ReportRow>,
    /// Everything in scope and range, each record counted once.
    pub total: Totals,
    /// Spend of the whole tree, any node and any time, folded out of the rows to stay under the
    /// row cap: counted, no longer grouped. Zero until the cap is reached.
    pub dropped: Totals,
    /// Rows the book holds now (whole tree).
    pub retained_rows: usize,
    /// The row cap.
    pub max_rows: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|row| row.key.chars().count())
            .chain([self.scope.chars().count() + 7, 10])
            .max()
            .unwrap_or(10);
        writeln!(
            f,
            "{:<width$}  {:>7}  {:>14}  {:>12}  {:>8}  {:>10}  {:>10}",
            format!("{:?}", self.group_by).to_lowercase(),
            "records",
            "usd",
            "tokens",
            "requests",
            "input",
            "output"
        )?;
        let line = |f: &mut fmt::Formatter<'_>, key: &str, t: &Totals| {
            writeln!(
                f,
                "{key:<width$}  {:>7}  {:>14}  {:>12}  {:>8}  {:>10}  {:>10}",
                t.records,
                t.usd.to_string(),
                t.tokens.minor_units(),
                t.requests.minor_units(),
                t.input_tokens,
                t.output_tokens
            )
        };
        for row in &self.rows {
            line(f, &row.key, &row.totals)?;
        }
        line(f, &format!("total ({})", self.scope), &self.total)?;
        if self.dropped.records > 0 {
            line(f, "dropped", &self.dropped)?;
        }
        Ok(())
    }
}

/// A top spender listed in a threshold event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct CostDriver {
    /// What the key is.
    pub group_by: GroupBy,
    /// The model, agent, task, tag or node.
    pub key: Arc<str>,
    /// Its spend in the crossing's unit below the crossing node, over the retained buckets.
    pub spent: Amount,
}

/// How a hold's spend came to be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum SpendOutcome {
    /// A commit succeeded.
    Committed,
    /// A commit above the hold was refused by the overage policy; the spend was recorded (the
    /// excess as debt where it did not fit).
    OverageRejected,
    /// The hold was released (or its guard dropped) after [`Guard::record`] had recorded spend,
    /// which stays spent.
    Released,
    /// The hold had been reclaimed by expiry and its late commit failed; the spend recorded
    /// before the reclaim stays spent.
    Reclaimed,
}

/// One ended hold's spend, as handed to a [`ReportOptions::sink`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SpendRecord {
    /// The node the hold was reserved on.
    pub node: Arc<str>,
    /// The hold.
    pub hold: HoldId,
    /// Its labels.
    pub labels: Labels,
    /// What it spent, per unit.
    pub spent: Cost,
    /// Input tokens of the committed usage report (zero without one).
    pub input_tokens: u64,
    /// Output tokens of the committed usage report (zero without one).
    pub output_tokens: u64,
    /// How the spend was recorded.
    pub outcome: SpendOutcome,
    /// When (the report clock).
    pub at: Timestamp,
}

/// Labels and usage a guard carries to its spend record.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attribution {
    pub(crate) labels: Labels,
    pub(crate) usage: Option<Usage>,
}

/// Adds an ended hold's spend to the report book, if reports are on (one relaxed load if not).
#[inline]
pub(crate) fn note_spend(
    budget: &Budget,
    hold: HoldId,
    attribution: Option<&Attribution>,
    spent: &Cost,
    outcome: SpendOutcome,
) {
    if !budget.shared().reporting() || spent.iter().all(Amount::is_zero) {
        return;
    }
    if let Some(recorder) = budget.shared().recorder() {
        recorder.record(Entry {
            node: budget.path_arc(),
            hold,
            labels: attribution.map(|a| &a.labels),
            usage: attribution.and_then(|a| a.usage.as_ref()),
            spent,
            outcome,
        });
    }
}

/// Reports.
impl Budget {
    /// Starts a report book for this tree's handle family (see [`crate::report`]), replacing
    /// any earlier book. Spend committed before is not in it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use budget_guard::report::ReportOptions;
    /// use budget_guard::{Amount, Budget, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?)).build()?;
    /// org.enable_reports(ReportOptions::new().bucket(Duration::from_secs(3600)).max_rows(1_000))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidDuration`] for a zero bucket or one longer than 292 years.
    pub fn enable_reports(&self, options: ReportOptions) -> Result<()> {
        crate::expiry::validate_ttl(options.bucket, "a report bucket")?;
        let nanos =
            i64::try_from(options.bucket.as_nanos()).map_err(|_| Error::InvalidDuration {
                what: "a report bucket",
                reason: "longer than i64 nanoseconds (292 years)",
            })?;
        self.shared()
            .set_recorder(Some(Arc::new(Recorder::new(options, nanos))));
        Ok(())
    }

    /// Stops recording and drops the report book.
    pub fn disable_reports(&self) {
        self.shared().set_recorder(None);
    }

    /// Spend below this node (its subtree) as `query` selects, or `None` when reports are not
    /// enabled.
    pub fn report(&self, query: &ReportQuery) -> Option<Report> {
        let recorder = self.shared().recorder()?;
        Some(recorder.report(self.path_arc(), query))
    }

    /// As [`reserve`](Budget::reserve), with the hold attributed to `labels`.
    ///
    /// # Errors
    /// [`Error::InvalidLabel`] (checked before anything is held); otherwise as
    /// [`reserve`](Budget::reserve).
    pub fn reserve_labeled(&self, cost: impl Into<Cost>, labels: &Labels) -> Result<Guard<'_>> {
        labels.validate()?;
        let mut guard = self.reserve(cost)?;
        guard.attribution_mut().labels = labels.clone();
        Ok(guard)
    }

    /// The cost drivers of a threshold crossing on `node` in `unit` (empty without reports).
    pub(crate) fn top_drivers(&self, node: &str, unit: Unit) -> Vec<CostDriver> {
        self.shared()
            .recorder()
            .map(|recorder| recorder.top_drivers(node, unit))
            .unwrap_or_default()
    }
}

/// Attribution.
impl Guard<'_> {
    /// Adds `labels` to this hold: model, agent and task replace earlier ones where set, tags
    /// are added. The spend record made when the hold ends carries them.
    ///
    /// ```
    /// use budget_guard::report::{GroupBy, ReportOptions, ReportQuery};
    /// use budget_guard::{Amount, Budget, Labels, Limit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("1")?)).build()?;
    /// org.enable_reports(ReportOptions::new())?;
    /// let mut guard = org.reserve(Amount::usd("0.10")?)?;
    /// guard.label(&Labels::new().agent("planner"))?; // known only once the work started
    /// guard.commit(Amount::usd("0.04")?)?;
    /// let report = org.report(&ReportQuery::by(GroupBy::Agent)).unwrap();
    /// assert_eq!(report.rows[0].key.as_ref(), "planner");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidLabel`] if the merged labels are invalid (the guard's labels are
    /// unchanged).
    pub fn label(&mut self, labels: &Labels) -> Result<()> {
        let merged = self.labels().cloned().unwrap_or_default().merged(labels);
        merged.validate()?;
        self.attribution_mut().labels = merged;
        Ok(())
    }

    /// The hold's labels, if any were set.
    pub fn labels(&self) -> Option<&Labels> {
        self.attribution().map(|attribution| &attribution.labels)
    }
}
