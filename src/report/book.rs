//! The recorder behind reports: per-bucket aggregates under one short lock, bounded by a row cap.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{CostDriver, GroupBy, Report, ReportOptions, ReportQuery, ReportRow, SpendOutcome};
use super::{SpendRecord, Totals};
use crate::amount::{Amount, Unit};
use crate::clock::Timestamp;
use crate::cost::Cost;
use crate::ids::HoldId;
use crate::labels::Labels;
use crate::usage::Usage;

/// Running sums in minor units (saturating: a report never panics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Sum {
    minor: [i64; Unit::COUNT],
    records: u64,
    input_tokens: u64,
    output_tokens: u64,
}

impl Sum {
    fn add(&mut self, other: &Sum) {
        for (mine, theirs) in self.minor.iter_mut().zip(other.minor) {
            *mine = mine.saturating_add(theirs);
        }
        self.records = self.records.saturating_add(other.records);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }

    fn totals(&self) -> Totals {
        let amount = |unit: Unit| Amount::from_minor(self.minor[unit.index()], unit);
        Totals {
            usd: amount(Unit::Usd),
            tokens: amount(Unit::Tokens),
            requests: amount(Unit::Requests),
            records: self.records,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RowKey {
    node: Arc<str>,
    labels: Labels,
}

#[derive(Debug, Default)]
struct Book {
    /// Bucket start (Unix nanoseconds) → rows of that bucket.
    buckets: BTreeMap<i64, HashMap<RowKey, Sum>>,
    rows: usize,
    /// Spend whose detail was dropped to stay under the row cap.
    dropped: Sum,
}

/// One tree's report book (shared by a handle family).
pub(crate) struct Recorder {
    options: ReportOptions,
    bucket_nanos: i64,
    book: Mutex<Book>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("options", &self.options)
            .field("rows", &self.book.lock().rows)
            .finish()
    }
}

fn in_scope(node: &str, scope: &str) -> bool {
    node.len() >= scope.len()
        && node.starts_with(scope)
        && (node.len() == scope.len() || node.as_bytes()[scope.len()] == b'/')
}

impl Recorder {
    pub(crate) fn new(options: ReportOptions, bucket_nanos: i64) -> Self {
        Recorder {
            options,
            bucket_nanos,
            book: Mutex::new(Book::default()),
        }
    }

    /// Adds one spend record to its bucket (the lock is held for a map update only) and hands it
    /// to the sink, if any, after the lock is released.
    pub(crate) fn record(&self, entry: Entry<'_>) {
        let spent_minor = |unit: Unit| entry.spent.minor(unit);
        let (input_tokens, output_tokens) = entry.usage.map_or((0, 0), |usage| {
            (usage.prompt_tokens(), usage.completion_tokens())
        });
        let sum = Sum {
            minor: std::array::from_fn(|index| spent_minor(Unit::ALL[index])),
            records: 1,
            input_tokens,
            output_tokens,
        };
        let now = self.options.clock.now();
        let bucket = now.as_unix_nanos().div_euclid(self.bucket_nanos) * self.bucket_nanos;
        let labels = entry.labels.cloned().unwrap_or_default();
        let key = RowKey {
            node: entry.node.clone(),
            labels,
        };
        {
            let mut book = self.book.lock();
            book.add(bucket, key.clone(), &sum, self.options.max_rows);
        }
        if let Some(sink) = &self.options.sink {
            let record = SpendRecord {
                node: key.node,
                hold: entry.hold,
                labels: key.labels,
                spent: *entry.spent,
                input_tokens,
                output_tokens,
                outcome: entry.outcome,
                at: now,
            };
            if catch_unwind(AssertUnwindSafe(|| sink(&record))).is_err() {
                tracing::error!(
                    target: "budget_guard",
                    node = %record.node,
                    "a spend record sink panicked; the books and the report are unaffected"
                );
            }
        }
    }

    pub(crate) fn report(&self, scope: &Arc<str>, query: &ReportQuery) -> Report {
        let from = query
            .from
            .map(|from| from.as_unix_nanos().div_euclid(self.bucket_nanos) * self.bucket_nanos);
        let to = query.to.map(Timestamp::as_unix_nanos);
        let book = self.book.lock();
        let mut groups: HashMap<Arc<str>, Sum> = HashMap::new();
        let mut total = Sum::default();
        let range = book
            .buckets
            .range(from.unwrap_or(i64::MIN)..)
            .take_while(|(start, _)| to.is_none_or(|to| **start < to));
        for (_, rows) in range {
            for (key, sum) in rows.iter().filter(|(key, _)| in_scope(&key.node, scope)) {
                total.add(sum);
                for group in group_keys(key, query.group_by) {
                    groups.entry(group).or_default().add(sum);
                }
            }
        }
        let retained_rows = book.rows;
        let dropped = book.dropped.totals();
        drop(book);
        let mut rows: Vec<ReportRow> = groups
            .into_iter()
            .map(|(key, sum)| ReportRow {
                key,
                totals: sum.totals(),
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.totals.usd, b.totals.tokens, b.totals.requests, &a.key).cmp(&(
                a.totals.usd,
                a.totals.tokens,
                a.totals.requests,
                &b.key,
            ))
        });
        Report {
            scope: scope.clone(),
            group_by: query.group_by,
            from: query.from,
            to: query.to,
            bucket: self.options.bucket,
            rows,
            total: total.totals(),
            dropped,
            retained_rows,
            max_rows: self.options.max_rows,
        }
    }

    /// The biggest spenders in `unit` below `scope` over the retained buckets, for threshold
    /// events.
    pub(crate) fn top_drivers(&self, scope: &str, unit: Unit) -> Vec<CostDriver> {
        let (group_by, count) = self.options.drivers;
        if count == 0 {
            return Vec::new();
        }
        let mut groups: HashMap<Arc<str>, i64> = HashMap::new();
        {
            let book = self.book.lock();
            for rows in book.buckets.values() {
                for (key, sum) in rows.iter().filter(|(key, _)| in_scope(&key.node, scope)) {
                    let spent = sum.minor[unit.index()];
                    if spent != 0 {
                        for group in group_keys(key, group_by) {
                            let entry = groups.entry(group).or_default();
                            *entry = entry.saturating_add(spent);
                        }
                    }
                }
            }
        }
        let mut drivers: Vec<CostDriver> = groups
            .into_iter()
            .map(|(key, spent)| CostDriver {
                group_by,
                key,
                spent: Amount::from_minor(spent, unit),
            })
            .collect();
        drivers.sort_by(|a, b| (b.spent, &a.key).cmp(&(a.spent, &b.key)));
        drivers.truncate(count);
        drivers
    }
}

impl Book {
    fn add(&mut self, bucket: i64, key: RowKey, sum: &Sum, max_rows: usize) {
        if let Some(row) = self
            .buckets
            .get_mut(&bucket)
            .and_then(|rows| rows.get_mut(&key))
        {
            row.add(sum);
            return;
        }
        // A new row: make room by folding the oldest other buckets into `dropped`.
        while self.rows >= max_rows {
            let oldest = self.buckets.keys().copied().find(|start| *start != bucket);
            let Some(oldest) = oldest else { break };
            let rows = self.buckets.remove(&oldest).unwrap_or_default();
            self.rows -= rows.len();
            for evicted in rows.values() {
                self.dropped.add(evicted);
            }
        }
        if self.rows >= max_rows {
            self.dropped.add(sum);
            return;
        }
        self.buckets.entry(bucket).or_default().insert(key, *sum);
        self.rows += 1;
    }
}

/// What one ended hold contributes.
pub(crate) struct Entry<'a> {
    pub(crate) node: &'a Arc<str>,
    pub(crate) hold: HoldId,
    pub(crate) labels: Option<&'a Labels>,
    pub(crate) usage: Option<&'a Usage>,
    pub(crate) spent: &'a Cost,
    pub(crate) outcome: SpendOutcome,
}

fn none() -> Arc<str> {
    Arc::from("(none)")
}

/// The groups a row counts in: one, except by tag (each tag; `(none)` without tags).
fn group_keys(key: &RowKey, group_by: GroupBy) -> Vec<Arc<str>> {
    let one = |value: Option<&Arc<str>>| vec![value.cloned().unwrap_or_else(none)];
    match group_by {
        GroupBy::Node => vec![key.node.clone()],
        GroupBy::Model => one(key.labels.model_arc()),
        GroupBy::Agent => one(key.labels.agent_arc()),
        GroupBy::Task => one(key.labels.task_arc()),
        GroupBy::Tag if key.labels.tags().is_empty() => vec![none()],
        GroupBy::Tag => key.labels.tags().to_vec(),
    }
}
