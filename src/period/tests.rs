use super::*;

fn at(text: &str) -> Timestamp {
    let instant: jiff::Timestamp = text.parse().expect("a valid instant");
    Timestamp::from_unix_nanos(i64::try_from(instant.as_nanosecond()).unwrap())
}

const HOUR: i64 = 3_600_000_000_000;

fn hours(bounds: (Timestamp, Timestamp)) -> i64 {
    (bounds.1.as_unix_nanos() - bounds.0.as_unix_nanos()) / HOUR
}

#[test]
fn months_end_on_the_first_of_the_next_month() {
    let monthly = Period::monthly();
    assert_eq!(
        monthly.bounds_at(at("2026-01-31T23:59:59Z")),
        (at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z"))
    );
    assert_eq!(
        monthly.bounds_at(at("2026-02-01T00:00:00Z")),
        (at("2026-02-01T00:00:00Z"), at("2026-03-01T00:00:00Z"))
    );
    // Leap year: February has 29 days.
    assert_eq!(
        monthly.bounds_at(at("2028-02-29T12:00:00Z")),
        (at("2028-02-01T00:00:00Z"), at("2028-03-01T00:00:00Z"))
    );
    assert_eq!(
        Period::daily().bounds_at(at("2028-02-29T12:00:00Z")),
        (at("2028-02-29T00:00:00Z"), at("2028-03-01T00:00:00Z"))
    );
}

#[test]
fn dst_days_have_23_and_25_hours() {
    let new_york = Period::daily().in_zone("America/New_York").unwrap();
    let spring = new_york.bounds_at(at("2026-03-08T12:00:00Z"));
    assert_eq!(spring.0, at("2026-03-08T05:00:00Z"));
    assert_eq!(hours(spring), 23);
    let autumn = new_york.bounds_at(at("2026-11-01T12:00:00Z"));
    assert_eq!(autumn.0, at("2026-11-01T04:00:00Z"));
    assert_eq!(hours(autumn), 25);
    assert_eq!(hours(new_york.bounds_at(at("2026-11-02T12:00:00Z"))), 24);
}

#[test]
fn weeks_start_on_monday_in_their_zone() {
    let berlin = Period::weekly().in_zone("europe/berlin").unwrap();
    assert_eq!(berlin.zone(), "Europe/Berlin");
    // Sunday 2026-03-29 is the day Berlin moves to summer time.
    let (start, end) = berlin.bounds_at(at("2026-03-29T12:00:00Z"));
    assert_eq!(start, at("2026-03-22T23:00:00Z")); // Monday 00:00 CET
    assert_eq!(end, at("2026-03-29T22:00:00Z")); // Monday 00:00 CEST
}

#[test]
fn fixed_windows_count_from_their_anchor() {
    let period = Period::every(Duration::from_secs(5 * 3600)).unwrap();
    let (start, end) = period.bounds_at(at("2026-03-08T12:00:00Z"));
    assert_eq!(start, at("2026-03-08T10:00:00Z"));
    assert_eq!(end, at("2026-03-08T15:00:00Z"));
    // Before the anchor too.
    let before = Period::every_from(Duration::from_nanos(10), Timestamp::from_unix_nanos(5))
        .unwrap()
        .bounds_at(Timestamp::from_unix_nanos(-7));
    assert_eq!(
        before,
        (
            Timestamp::from_unix_nanos(-15),
            Timestamp::from_unix_nanos(-5)
        )
    );
}

#[test]
fn bad_periods_are_typed_errors() {
    assert!(matches!(
        Period::every(Duration::ZERO),
        Err(Error::InvalidDuration { .. })
    ));
    assert!(matches!(
        Period::every(Duration::MAX),
        Err(Error::InvalidDuration { .. })
    ));
    assert!(matches!(
        Period::daily().in_zone("Nowhere/Atlantis"),
        Err(Error::UnknownTimeZone { name }) if name == "Nowhere/Atlantis"
    ));
    assert!(matches!(
        Period::every(Duration::from_secs(1))
            .unwrap()
            .in_zone("UTC"),
        Err(Error::InvalidPeriod { .. })
    ));
    assert_eq!(Period::daily().in_zone("UTC").unwrap(), Period::daily());
}

#[test]
fn codec_round_trips() {
    for period in [
        Period::daily(),
        Period::weekly().in_zone("Asia/Tokyo").unwrap(),
        Period::monthly().in_zone("America/New_York").unwrap(),
        Period::every_from(Duration::from_secs(7), Timestamp::from_unix_nanos(-3)).unwrap(),
    ] {
        let (code, zone, nanos, anchor) = codec::parts(&period);
        assert_eq!(codec::from_parts(code, zone, nanos, anchor), Ok(period));
    }
}
