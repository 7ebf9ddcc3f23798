//! Where events go: the callbacks and channels subscribed to a tree, shared by every
//! [`Budget`](crate::Budget) handle derived from the same root.
//!
//! Delivery runs in the caller's thread **after** the store operation returned, so no user code
//! ever runs under a ledger lock (DESIGN invariant 4). The registry's own lock is held only to
//! copy the list of matching subscribers, never while one runs, so a callback may reserve on the
//! same budget, subscribe or unsubscribe without deadlock. Without subscribers, delivery costs one
//! relaxed atomic load.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use parking_lot::RwLock;

use crate::approval::Approvals;
use crate::event::Event;
use crate::ids::NodeId;
use crate::report::Recorder;
use crate::store::Store;

/// Identifies one subscription, to remove it with
/// [`Budget::unsubscribe`](crate::Budget::unsubscribe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

type Callback = dyn Fn(&Event) + Send + Sync + 'static;

enum Sink {
    Callback(Box<Callback>),
    Channel(mpsc::Sender<Event>),
    #[cfg(feature = "tokio")]
    Tokio(tokio::sync::mpsc::UnboundedSender<Event>),
}

struct Subscriber {
    id: u64,
    /// The node subscribed to: the subscriber sees this node and its descendants.
    node: NodeId,
    /// That node's path when the subscription was made. Events name their node by path, so this
    /// finds the candidates; [`Shared::deliver`] then checks that the path still names `node`
    /// (a removed node's subscriptions do not pass to a new node of the same name).
    scope: Arc<str>,
    sink: Sink,
}

impl Subscriber {
    fn sees(&self, node: &str) -> bool {
        covers(&self.scope, node)
    }
}

/// `true` if the node at path `node` is the node at path `scope` or below it.
pub(crate) fn covers(scope: &str, node: &str) -> bool {
    node.len() >= scope.len()
        && node.starts_with(scope)
        && (node.len() == scope.len() || node.as_bytes()[scope.len()] == b'/')
}

/// A store and the subscribers of the trees in it, shared by all handles of one tree.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    active: AtomicBool,
    next_id: AtomicU64,
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    /// `true` while `recorder` is set (the hot path's only cost without reports).
    reporting: AtomicBool,
    recorder: RwLock<Option<Arc<Recorder>>>,
    /// Approval rules ([`crate::approval`]): process-local user code, so kept here, not in the store.
    pub(crate) approvals: Approvals,
    /// Wakes `Guard::cancelled` futures to look again.
    #[cfg(feature = "tokio")]
    wake: tokio::sync::Notify,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .field("subscribers", &self.subscribers.read().len())
            .finish()
    }
}

impl Shared {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Shared {
            store,
            active: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            subscribers: RwLock::new(Vec::new()),
            reporting: AtomicBool::new(false),
            recorder: RwLock::new(None),
            approvals: Approvals::new(),
            #[cfg(feature = "tokio")]
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Wakes every [`Guard::cancelled`](crate::Guard::cancelled) future of this tree to check
    /// again (a state, limit, expiry, denial or overage changed something). Called only on those
    /// rare paths; without the `tokio` feature it does nothing.
    #[inline]
    pub(crate) fn wake_cancelled(&self) {
        #[cfg(feature = "tokio")]
        self.wake.notify_waiters();
    }

    /// What [`wake_cancelled`](Shared::wake_cancelled) notifies.
    #[cfg(feature = "tokio")]
    pub(crate) fn cancel_wakeup(&self) -> &tokio::sync::Notify {
        &self.wake
    }

    /// The time to stamp events with: the store's clock ([`Store::now`]), not the wall clock,
    /// so events agree with hold deadlines, periods and reports.
    pub(crate) fn event_time(&self) -> std::time::SystemTime {
        crate::event::system_time(self.store.now())
    }

    /// `true` if anyone listens (one relaxed load; the hot path's only cost without subscribers).
    #[inline]
    pub(crate) fn listening(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// `true` if a report book records spend (one relaxed load).
    #[inline]
    pub(crate) fn reporting(&self) -> bool {
        self.reporting.load(Ordering::Relaxed)
    }

    /// The report book, if reports are enabled.
    pub(crate) fn recorder(&self) -> Option<Arc<Recorder>> {
        if !self.reporting() {
            return None;
        }
        self.recorder.read().clone()
    }

    pub(crate) fn set_recorder(&self, recorder: Option<Arc<Recorder>>) {
        let mut slot = self.recorder.write();
        self.reporting.store(recorder.is_some(), Ordering::Relaxed);
        *slot = recorder;
    }

    fn add(&self, node: NodeId, scope: Arc<str>, sink: Sink) -> SubscriptionId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subscribers = self.subscribers.write();
        subscribers.push(Arc::new(Subscriber {
            id,
            node,
            scope,
            sink,
        }));
        self.active.store(true, Ordering::Relaxed);
        SubscriptionId(id)
    }

    pub(crate) fn on_event(
        &self,
        node: NodeId,
        scope: Arc<str>,
        callback: impl Fn(&Event) + Send + Sync + 'static,
    ) -> SubscriptionId {
        self.add(node, scope, Sink::Callback(Box::new(callback)))
    }

    pub(crate) fn channel(
        &self,
        node: NodeId,
        scope: Arc<str>,
    ) -> (SubscriptionId, mpsc::Receiver<Event>) {
        let (sender, receiver) = mpsc::channel();
        (self.add(node, scope, Sink::Channel(sender)), receiver)
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn tokio_channel(
        &self,
        node: NodeId,
        scope: Arc<str>,
    ) -> (SubscriptionId, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        (self.add(node, scope, Sink::Tokio(sender)), receiver)
    }

    pub(crate) fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.remove(&[id.0])
    }

    fn remove(&self, ids: &[u64]) -> bool {
        let mut subscribers = self.subscribers.write();
        let before = subscribers.len();
        subscribers.retain(|subscriber| !ids.contains(&subscriber.id));
        self.active
            .store(!subscribers.is_empty(), Ordering::Relaxed);
        subscribers.len() != before
    }

    /// Delivers `event` to every subscriber that sees its node, in subscription order. A
    /// panicking callback is caught and reported; channels whose receiver is gone are removed.
    pub(crate) fn deliver(&self, event: &Event) {
        if !self.listening() {
            return;
        }
        let node = event.node();
        let candidates: Vec<Arc<Subscriber>> = self
            .subscribers
            .read()
            .iter()
            .filter(|subscriber| subscriber.sees(node))
            .cloned()
            .collect();
        let mut gone = Vec::new();
        // Subscriptions key on the node: its path must still name the node subscribed to.
        let matching = candidates.into_iter().filter(|subscriber| {
            self.store.resolve(&subscriber.scope).ok() == Some(subscriber.node)
        });
        for subscriber in matching {
            match &subscriber.sink {
                Sink::Callback(callback) => {
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| callback(event))) {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "non-string panic payload".to_owned());
                        tracing::error!(
                            target: "budget_guard",
                            subscription = subscriber.id,
                            node = %node,
                            panic = %message,
                            "an event callback panicked; the event and the books are unaffected"
                        );
                    }
                }
                Sink::Channel(sender) => {
                    if sender.send(event.clone()).is_err() {
                        gone.push(subscriber.id);
                    }
                }
                #[cfg(feature = "tokio")]
                Sink::Tokio(sender) => {
                    if sender.send(event.clone()).is_err() {
                        gone.push(subscriber.id);
                    }
                }
            }
        }
        if !gone.is_empty() {
            self.remove(&gone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_covers_the_node_and_its_descendants_only() {
        let subscriber = Subscriber {
            id: 1,
            node: NodeId::from_raw(1),
            scope: "acme/team".into(),
            sink: Sink::Callback(Box::new(|_| {})),
        };
        assert!(subscriber.sees("acme/team"));
        assert!(subscriber.sees("acme/team/agent"));
        assert!(!subscriber.sees("acme/teamwork"));
        assert!(!subscriber.sees("acme"));
    }
}
