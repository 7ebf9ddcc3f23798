use std::time::Duration;

use super::*;

#[test]
fn the_ring_forgets_old_buckets() {
    let window = BurnWindow::with_buckets(Duration::from_nanos(100), 10).unwrap();
    let mut tracker = BurnTracker::new(window);
    tracker.add(5, Unit::Usd, 7);
    tracker.add(95, Unit::Usd, 3);
    assert_eq!(tracker.spent(99, Unit::Usd), 10);
    assert_eq!(tracker.spent(100, Unit::Usd), 3); // the window is buckets 1..=10 now
    assert_eq!(tracker.spent(110, Unit::Usd), 3);
    tracker.add(150, Unit::Usd, 1); // clears buckets 10..=15
    assert_eq!(tracker.spent(150, Unit::Usd), 4);
    tracker.add(10_000, Unit::Usd, 2); // far ahead: everything else is gone
    assert_eq!(tracker.spent(10_000, Unit::Usd), 2);
    tracker.add(10, Unit::Usd, 9); // older than the ring: ignored
    assert_eq!(tracker.spent(10_000, Unit::Usd), 2);
    assert_eq!(tracker.spent(10_000, Unit::Tokens), 0);
}
