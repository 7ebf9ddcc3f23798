//! The locks the in-process store is built on, swappable for a model checker.
//!
//! Normally [`Mutex`] is `parking_lot`'s. In the library's own test build with
//! `RUSTFLAGS="--cfg shuttle"` (`scripts/shuttle.sh`), it is [shuttle](https://docs.rs/shuttle)'s,
//! with the same `lock()` API, so `src/store/memory/shuttle_tests.rs` can run
//! [`MemoryStore`](crate::MemoryStore) under randomized schedules. A cfg rather than a feature:
//! shuttle's mutex panics outside a shuttle run, and `cargo test --all-features` must keep
//! working. Only under `test`: shuttle is a dev-dependency (so it never reaches the lockfiles of
//! crates that depend on this one), and a non-test build with `--cfg shuttle` keeps
//! `parking_lot`.

#[cfg(not(all(test, shuttle)))]
pub(crate) use parking_lot::Mutex;

#[cfg(all(test, shuttle))]
pub(crate) use self::shuttle_shim::Mutex;

#[cfg(all(test, shuttle))]
mod shuttle_shim {
    use std::sync::PoisonError;

    /// shuttle's mutex behind `parking_lot`'s API: `lock` returns the guard (a poisoned lock is
    /// taken anyway, as `parking_lot` has no poisoning).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(shuttle::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> shuttle::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }
}
