//! The slice protocol: how the local root's limit follows the remote holds.
//!
//! One invariant, kept at every step: the local root's limit is at most
//! `reported + Σ slices` (spend already charged to the remote node plus what the remote node
//! still holds for us). The local ledger keeps `spent + reserved ≤ limit` atomically, so the
//! local spend not yet reported never exceeds what the remote node holds. Every step that
//! raises the local limit does so *after* the remote hold exists; every step that ends a remote
//! hold lowers the local limit *first*.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::amount::{Amount, Unit};
use crate::clock::{Clock, Timestamp};
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::expiry::ReserveOptions;
use crate::ids::{HoldId, NodeId};
use crate::op::OpKind;
use crate::store::Store;
use crate::store::memory::MemoryStore;

use super::options::{LeaseOptions, LeaseStats};

/// One remote hold.
#[derive(Debug)]
struct Slice {
    hold: HoldId,
    /// What it still holds on the remote node, in minor units.
    amount: i64,
    /// Spend already moved into it with `record` (a commit takes the total).
    recorded: i64,
    /// When the remote hold ends at the earliest: the lease clock's time before the request
    /// went out, plus the TTL (the server counts from a later instant).
    deadline: Timestamp,
}

/// What is leased, under the lease lock.
#[derive(Debug, Default)]
pub(super) struct Book {
    slices: Vec<Slice>,
    /// Local spend charged to the remote node, in minor units.
    reported: i64,
    /// Spend never charged (see [`LeaseStats::lost`]).
    lost: i64,
    pub(super) closed: bool,
}

/// Everything but the lock: the two stores, the options, the counters.
#[derive(Debug)]
pub(super) struct Lease {
    pub(super) remote: Arc<dyn Store>,
    pub(super) remote_node: NodeId,
    pub(super) local: MemoryStore,
    pub(super) root: NodeId,
    pub(super) root_path: Arc<str>,
    pub(super) options: LeaseOptions,
    unit: Unit,
    /// The earliest time some remote hold must be extended, in the lease clock's nanoseconds
    /// (`i64::MAX` when nothing is leased). Read on every reserve, without the lock.
    renew_due: AtomicI64,
    opened: AtomicU64,
    renewed: AtomicU64,
    returned: AtomicU64,
}

impl Lease {
    pub(super) fn new(
        remote: Arc<dyn Store>,
        remote_node: NodeId,
        local: MemoryStore,
        root: NodeId,
        root_path: Arc<str>,
        options: LeaseOptions,
    ) -> Self {
        Lease {
            unit: options.slice.unit(),
            remote,
            remote_node,
            local,
            root,
            root_path,
            options,
            renew_due: AtomicI64::new(i64::MAX),
            opened: AtomicU64::new(0),
            renewed: AtomicU64::new(0),
            returned: AtomicU64::new(0),
        }
    }

    fn amount(&self, minor: i64) -> Result<Amount> {
        Amount::try_from_minor(minor, self.unit)
    }

    fn now(&self) -> Timestamp {
        self.options.clock.now()
    }

    /// Whether some remote hold is due for extension (one atomic load and a clock read).
    pub(super) fn renewal_due(&self) -> bool {
        self.now().as_unix_nanos() >= self.renew_due.load(Ordering::Acquire)
    }

    /// Local spend not charged to the remote node yet.
    fn unreported(&self, book: &Book) -> Result<i64> {
        let spent = self
            .local
            .balance(self.root, self.unit)?
            .spent
            .minor_units();
        Ok(spent.saturating_sub(book.reported).max(0))
    }

    fn local_room(&self) -> Result<i64> {
        let balance = self.local.balance(self.root, self.unit)?;
        Ok(balance.remaining.map_or(0, Amount::minor_units))
    }

    fn update_renew_due(&self, book: &Book) {
        let margin = self.options.renew_margin;
        let due = book
            .slices
            .iter()
            .map(|slice| slice.deadline.as_unix_nanos().saturating_sub(nanos(margin)))
            .min()
            .unwrap_or(i64::MAX);
        self.renew_due.store(due, Ordering::Release);
    }

    /// Leases a slice of at least `need` minor units (the configured slice, or `need` if more).
    /// Near the remote cap it takes what is left if that covers `need`. Older slices stay:
    /// the caller retires them once the reserve that needed the room holds it.
    ///
    /// # Errors
    /// The remote denial when not even `need` is left; remote store failures.
    pub(super) fn lease(&self, book: &mut Book, need: i64) -> Result<()> {
        let wanted = self.options.slice.minor_units().max(need);
        let granted = match self.open_slice(book, wanted) {
            Err(Error::BudgetExceeded(exceeded)) => {
                let left = exceeded.remaining().minor_units();
                if left < need.max(1) || left >= wanted {
                    return Err(Error::BudgetExceeded(exceeded));
                }
                self.open_slice(book, left)?
            }
            other => other?,
        };
        // The remote hold exists: only now may the local room grow.
        if let Err(error) = self.local.credit(self.root, self.amount(granted)?) {
            self.end_slice_remotely(book, book.slices.len() - 1, 0);
            return Err(error);
        }
        Ok(())
    }

    fn open_slice(&self, book: &mut Book, minor: i64) -> Result<i64> {
        let sent_at = self.now();
        let options = ReserveOptions::new().ttl(self.options.ttl);
        let cost = Cost::from(self.amount(minor)?);
        let reservation = self
            .remote
            .reserve_with(self.remote_node, &cost, &options)?;
        book.slices.push(Slice {
            hold: reservation.hold,
            amount: minor,
            recorded: 0,
            deadline: sent_at.saturating_add(self.options.ttl),
        });
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.update_renew_due(book);
        Ok(minor)
    }

    /// Ends slices on the remote node, charging each the unreported spend it covers: every
    /// slice but the newest whose unused part the local room can give up (`all == false`), or
    /// every slice (`all`, at close: live local holds lose their backing and the root is
    /// closed to new reserves first).
    pub(super) fn retire(&self, book: &mut Book, all: bool) {
        let Ok(mut unreported) = self.unreported(book) else {
            return;
        };
        let keep = usize::from(!all);
        let mut index = 0;
        while book.slices.len() > keep && index < book.slices.len() - keep {
            let charge = book.slices[index].amount.min(unreported);
            let unused = book.slices[index].amount - charge;
            if !all && unused > 0 {
                // Lower the local room first; refused while local holds need it.
                let Ok(amount) = self.amount(unused) else {
                    return;
                };
                if self.local.debit(self.root, amount).is_err() {
                    index += 1;
                    continue;
                }
            }
            if self.end_slice_remotely(book, index, charge) {
                unreported -= charge;
            } else {
                // Definitely not ended: keep the slice (and give the local room back).
                if !all
                    && unused > 0
                    && let Ok(amount) = self.amount(unused)
                {
                    let _ = self.local.credit(self.root, amount);
                }
                index += 1;
            }
        }
        self.update_renew_due(book);
    }

    /// Commits slice `index` with `charge` more spend (or releases it when `charge` is zero:
    /// spend recorded earlier stays spent) and drops it from the book unless the remote store
    /// says it did not happen. Returns whether the slice is gone.
    fn end_slice_remotely(&self, book: &mut Book, index: usize, charge: i64) -> bool {
        let Slice { hold, recorded, .. } = book.slices[index];
        let ended = match self.amount(recorded.saturating_add(charge)) {
            // A commit takes the hold's total actual cost, recorded spend included.
            Ok(total) if charge > 0 => self.remote.commit(hold, &Cost::from(total)).map(|_| ()),
            _ => self.remote.release(hold).map(|_| ()),
        };
        match ended {
            Ok(()) => book.reported += charge,
            Err(Error::ReservationExpired { .. } | Error::UnknownHold { .. }) => {
                // Reclaimed remotely before we could charge it.
                book.lost += charge;
            }
            Err(error) if error.outcome_unknown() => {
                // May have happened: counted as reported; if it did not, the hold expires.
                tracing::warn!(%error, "lease: ending a remote slice may have failed");
                book.reported += charge;
            }
            Err(error) => {
                // Did not happen (the server refused, or was not reached): keep the slice.
                tracing::warn!(%error, "lease: could not end a remote slice");
                return false;
            }
        }
        book.slices.remove(index);
        self.returned.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The periodic work: extend remote holds near their deadline, report spend where the
    /// remote store records partial spend, and top the slice up below the low-water mark.
    pub(super) fn heartbeat(&self, book: &mut Book) {
        if book.closed {
            return;
        }
        self.extend_due(book);
        if self.remote.supports(OpKind::Record) {
            self.report(book);
        }
        let low = self.options.low_water.minor_units();
        if matches!(self.local_room(), Ok(room) if room < low) {
            match self.lease(book, 0) {
                Ok(()) => self.retire(book, false),
                Err(error) => tracing::debug!(%error, "lease: could not top the slice up"),
            }
        }
        self.update_renew_due(book);
    }

    fn extend_due(&self, book: &mut Book) {
        let now = self.now();
        let due = now.saturating_add(self.options.renew_margin);
        let mut index = 0;
        while index < book.slices.len() {
            if book.slices[index].deadline > due {
                index += 1;
                continue;
            }
            let hold = book.slices[index].hold;
            match self.remote.extend(hold, self.options.ttl) {
                Ok(_) => {
                    book.slices[index].deadline = now.saturating_add(self.options.ttl);
                    self.renewed.fetch_add(1, Ordering::Relaxed);
                    index += 1;
                }
                Err(Error::ReservationExpired { .. } | Error::UnknownHold { .. }) => {
                    self.drop_expired_slice(book, index);
                }
                Err(error) => {
                    tracing::warn!(%error, "lease: could not extend a remote slice");
                    index += 1;
                }
            }
        }
        self.update_renew_due(book);
    }

    /// The remote node reclaimed a slice (the process stalled past its TTL): its unreported
    /// spend is lost and the local room it backed goes, as far as live local holds allow.
    fn drop_expired_slice(&self, book: &mut Book, index: usize) {
        let slice = book.slices.remove(index);
        self.returned.fetch_add(1, Ordering::Relaxed);
        let unreported = self.unreported(book).unwrap_or(0);
        let others: i64 = book.slices.iter().map(|slice| slice.amount).sum();
        // Spend the remaining slices cannot cover was charged to nobody.
        let uncovered = unreported.saturating_sub(others).min(slice.amount);
        book.lost += uncovered;
        book.reported += uncovered;
        let room = self.local_room().unwrap_or(0);
        let cut = (slice.amount - uncovered).min(room);
        if cut > 0
            && let Ok(amount) = self.amount(cut)
        {
            let _ = self.local.debit(self.root, amount);
        }
        tracing::warn!(hold = %slice.hold, "lease: a remote slice expired before it was renewed");
    }

    /// Moves unreported spend into the remote holds with `record` (slices shrink, the local
    /// room does not change).
    fn report(&self, book: &mut Book) {
        let Ok(mut unreported) = self.unreported(book) else {
            return;
        };
        for slice in &mut book.slices {
            let charge = slice.amount.min(unreported);
            if charge == 0 {
                continue;
            }
            let Ok(amount) = self.amount(charge) else {
                return;
            };
            match self.remote.record(slice.hold, &Cost::from(amount)) {
                Ok(()) => {
                    slice.amount -= charge;
                    slice.recorded += charge;
                    book.reported += charge;
                    unreported -= charge;
                }
                Err(error) => {
                    tracing::debug!(%error, "lease: could not report spend");
                    return;
                }
            }
        }
    }

    /// Closes the root to new reserves and ends every slice, charging the spend so far.
    pub(super) fn close(&self, book: &mut Book) -> Result<()> {
        if book.closed {
            return Ok(());
        }
        book.closed = true;
        self.local
            .set_state(self.root, crate::node_state::NodeState::Closed)?;
        self.retire(book, true);
        if book.slices.is_empty() {
            Ok(())
        } else {
            Err(crate::error::StoreError::transient(format!(
                "lease: {} slice(s) could not be returned; they come back by expiry",
                book.slices.len()
            ))
            .into())
        }
    }

    pub(super) fn stats(&self, book: &Book) -> Result<LeaseStats> {
        let outstanding: i64 = book.slices.iter().map(|slice| slice.amount).sum();
        let mut unreported = self.unreported(book)?;
        let mut lost = book.lost;
        if book.closed {
            // Spend committed after close on holds that were live then.
            lost += unreported;
            unreported = 0;
        }
        Ok(LeaseStats {
            opened: self.opened.load(Ordering::Relaxed),
            renewed: self.renewed.load(Ordering::Relaxed),
            returned: self.returned.load(Ordering::Relaxed),
            slices: book.slices.len(),
            outstanding: self.amount(outstanding)?,
            reported: self.amount(book.reported)?,
            unreported: self.amount(unreported)?,
            lost: self.amount(lost)?,
        })
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}
