//! Request rate limits inside the ledger: an exact sliding-window log per node (see
//! `crate::rate`). Time comes in as an argument; the reserve path pays one integer compare while
//! no node has a rate limit.

use std::time::Duration;

use super::Ledger;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::ids::NodeId;
use crate::rate::RateLimit;

/// The times of a node's last `limit.requests()` granted reserves (`i64::MIN` = never).
#[derive(Clone, Debug)]
pub(super) struct RateWindow {
    pub(super) limit: RateLimit,
    pub(super) stamps: Vec<i64>,
    /// The oldest entry (the next to be overwritten).
    pub(super) head: usize,
}

impl RateWindow {
    fn new(limit: RateLimit, previous: Option<&RateWindow>) -> Self {
        let mut window = RateWindow {
            limit,
            stamps: vec![i64::MIN; limit.requests() as usize],
            head: 0,
        };
        if let Some(previous) = previous {
            // Keep the most recent requests, oldest first.
            let n = previous.stamps.len();
            let recent: Vec<i64> = (0..n)
                .map(|i| previous.stamps[(previous.head + i) % n])
                .filter(|stamp| *stamp != i64::MIN)
                .collect();
            for stamp in recent
                .iter()
                .skip(recent.len().saturating_sub(window.stamps.len()))
            {
                window.push(*stamp);
            }
        }
        window
    }

    /// `None` if a request at `now` fits, else how long until it does.
    fn wait(&self, now: i64) -> Option<i64> {
        let oldest = self.stamps[self.head];
        if oldest == i64::MIN {
            return None;
        }
        let frees_at = oldest.saturating_add(self.limit.window_nanos());
        (frees_at > now).then(|| frees_at - now)
    }

    fn push(&mut self, now: i64) {
        self.stamps[self.head] = now;
        self.head = (self.head + 1) % self.stamps.len();
    }
}

impl Ledger {
    /// Sets or removes a node's rate limit; returns the previous one.
    pub(crate) fn set_rate_limit(
        &mut self,
        id: NodeId,
        limit: Option<RateLimit>,
    ) -> Result<Option<RateLimit>, Error> {
        let index = self.live(id)?;
        if let Some(limit) = limit {
            RateLimit::new(limit.requests(), limit.window())?;
        }
        let node = self.node_mut(index);
        let previous = node.extras_mut().rate.take();
        node.extras_mut().rate =
            limit.map(|limit| Box::new(RateWindow::new(limit, previous.as_deref())));
        match (previous.is_some(), limit.is_some()) {
            (false, true) => self.rate_limited += 1,
            (true, false) => self.rate_limited -= 1,
            _ => {}
        }
        Ok(previous.map(|window| window.limit))
    }

    /// A node's rate limit.
    pub(crate) fn rate_limit_at(&self, index: u32) -> Option<RateLimit> {
        self.node(index)
            .extras()
            .rate
            .as_ref()
            .map(|window| window.limit)
    }

    /// Refuses a reserve at `now` on the path of `id` when a rate limit has no slot; changes
    /// nothing. `now == None` (a replayed record) is never limited.
    #[inline]
    pub(super) fn check_rate(&self, id: NodeId, now: Option<Timestamp>) -> Result<(), Error> {
        if self.rate_limited == 0 {
            return Ok(());
        }
        let (Some(now), Ok(leaf)) = (now, self.live(id)) else {
            return Ok(());
        };
        self.check_rate_slow(leaf, now.as_unix_nanos())
    }

    #[cold]
    fn check_rate_slow(&self, leaf: u32, now: i64) -> Result<(), Error> {
        // The longest wait on the path: a retry before it would still be refused somewhere.
        let mut refused: Option<(i64, u32)> = None;
        for index in self.path_indices(leaf) {
            if let Some(wait) = self
                .node(index)
                .extras()
                .rate
                .as_ref()
                .and_then(|w| w.wait(now))
                && refused.is_none_or(|(longest, _)| wait > longest)
            {
                refused = Some((wait, index));
            }
        }
        let Some((wait, index)) = refused else {
            return Ok(());
        };
        let node = self.node(index);
        let limit = node
            .extras()
            .rate
            .as_ref()
            .expect("refusing node has a rate limit")
            .limit;
        Err(Error::RateLimited {
            node: node.path.clone(),
            limit: limit.requests(),
            window: limit.window(),
            retry_after: Duration::from_nanos(wait.unsigned_abs()),
        })
    }

    /// Takes one slot at `now` on every rate-limited node of the path of `id` (after a granted
    /// reserve that [`Ledger::check_rate`] allowed).
    #[inline]
    pub(super) fn take_rate(&mut self, id: NodeId, now: Option<Timestamp>) {
        if self.rate_limited == 0 {
            return;
        }
        self.take_rate_slow(id, now);
    }

    #[cold]
    fn take_rate_slow(&mut self, id: NodeId, now: Option<Timestamp>) {
        let (Some(now), Ok(leaf)) = (now, self.live(id)) else {
            return;
        };
        let path: Vec<u32> = self.path_indices(leaf).collect();
        for index in path {
            if let Some(window) = self
                .node_mut(index)
                .extras_if_any()
                .and_then(|extras| extras.rate.as_mut())
            {
                window.push(now.as_unix_nanos());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_recent_requests_when_the_limit_changes() {
        let limit = RateLimit::new(3, Duration::from_secs(10)).unwrap();
        let mut window = RateWindow::new(limit, None);
        for t in [1, 2, 3] {
            assert_eq!(window.wait(t), None);
            window.push(t);
        }
        assert_eq!(window.wait(5), Some(10 * 1_000_000_000 + 1 - 5));
        let smaller = RateWindow::new(
            RateLimit::new(2, Duration::from_secs(10)).unwrap(),
            Some(&window),
        );
        assert_eq!(smaller.stamps[smaller.head], 2);
    }
}
