//! What a guard keeps of a reserve's report besides the hold, boxed and only when there is
//! something to keep (issue 16: the guard stays at 128 bytes).

use std::sync::Arc;

use crate::expiry::ExpiredHold;
use crate::report::Attribution;
use crate::threshold::Crossings;
use crate::top_up::{TopUpApplied, TopUpCapped};

/// The rare parts of a reserve's report, as a granted reserve hands them to [`Guard::new`](super::Guard::new):
/// the [`Reservation`](crate::Reservation) fields besides the hold, its amount, deadline and
/// replay flag. Nearly always all empty.
#[derive(Debug)]
pub(crate) struct GrantReport {
    pub(crate) over_soft_limit: Option<Arc<str>>,
    pub(crate) events: Crossings,
    pub(crate) top_ups: Vec<TopUpApplied>,
    pub(crate) top_up_caps: Vec<TopUpCapped>,
    pub(crate) expired: Vec<ExpiredHold>,
}

/// The rare parts of a [`Reservation`](crate::Reservation) a guard keeps for its accessors.
#[derive(Debug, Default)]
pub(super) struct Extras {
    /// Labels and usage for reports; `None` unless set.
    pub(super) attribution: Option<Attribution>,
    /// A node on the path whose soft limit the hold passes.
    pub(super) over_soft_limit: Option<Arc<str>>,
    pub(super) events: Crossings,
    pub(super) top_ups: Vec<TopUpApplied>,
    pub(super) top_up_caps: Vec<TopUpCapped>,
}

impl Extras {
    /// What a guard keeps of a reserve's report: nothing while it is all empty (no allocation).
    #[inline]
    pub(super) fn keep(
        over_soft_limit: Option<Arc<str>>,
        events: Crossings,
        top_ups: Vec<TopUpApplied>,
        top_up_caps: Vec<TopUpCapped>,
    ) -> Option<Box<Extras>> {
        if over_soft_limit.is_none()
            && events.is_empty()
            && top_ups.is_empty()
            && top_up_caps.is_empty()
        {
            discard(events.into_vec());
            discard(top_ups);
            discard(top_up_caps);
            return None;
        }
        Extras::boxed(over_soft_limit, events, top_ups, top_up_caps)
    }

    #[cold]
    fn boxed(
        over_soft_limit: Option<Arc<str>>,
        events: Crossings,
        top_ups: Vec<TopUpApplied>,
        top_up_caps: Vec<TopUpCapped>,
    ) -> Option<Box<Extras>> {
        Some(Box::new(Extras {
            attribution: None,
            over_soft_limit,
            events,
            top_ups,
            top_up_caps,
        }))
    }
}

/// Drops `list` where it is empty and owns no memory (nearly every report list of a
/// reserve) without its drop glue: forgetting a `Vec` of capacity zero frees nothing and leaks
/// nothing, and it spares the out-of-line call to drop the list's (absent) elements and memory
/// that otherwise runs for every list on every reserve (≈ 23 instructions each, issue 16).
#[inline]
pub(super) fn discard<T>(list: Vec<T>) {
    if list.capacity() == 0 {
        std::mem::forget(list);
    } else {
        drop(list);
    }
}
