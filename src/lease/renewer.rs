//! The background renewer: a thread that runs the lease's heartbeat a few times per renew
//! margin, until the store is dropped.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Shared;

/// The longest the renewer sleeps, so the low-water top-up stays prompt.
const MAX_TICK: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub(super) struct Renewer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Renewer {
    /// Starts the thread. It holds the lease weakly, so it never keeps a dropped store alive.
    pub(super) fn start(shared: &Arc<Shared>) -> std::io::Result<Renewer> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let tick = (shared.lease.options.renew_margin / 2).min(MAX_TICK);
        let weak: Weak<Shared> = Arc::downgrade(shared);
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("budget-guard-lease".to_owned())
            .spawn(move || {
                loop {
                    {
                        let (stopped, wake) = &*signal;
                        let mut stopped = stopped.lock();
                        if !*stopped {
                            wake.wait_for(&mut stopped, tick);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    let Some(shared) = weak.upgrade() else {
                        return;
                    };
                    shared.heartbeat();
                }
            })?;
        Ok(Renewer { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub(super) fn stop(self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock() = true;
        wake.notify_all();
        let _ = self.thread.join();
    }
}
