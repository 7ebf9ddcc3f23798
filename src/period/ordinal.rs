//! Period ordinals: consecutive integers numbering the periods of one [`Period`], so that a
//! store which keeps only "the id of the current period" can tell how many periods passed
//! between two operations (`later − earlier − 1` idle ones) without replaying the calendar.
//! The Redis store computes them on the client and its scripts subtract them.

use super::*;

impl Period {
    /// The period containing `at`: its ordinal, first instant and end (as
    /// [`bounds_at`](Period::bounds_at)).
    ///
    /// Ordinals: for [`Period::every_from`] the window index `floor((at − anchor) / window)`;
    /// for calendar periods the local date's day number since 1970-01-01 (daily), the number
    /// of the ISO week whose Monday it is, counted from the week of 1970-01-01 (weekly), or
    /// `year × 12 + month − 1` (monthly), all in the period's time zone. Saturates at the ends
    /// of `i64` (unreachable within [`Timestamp`]'s range for windows of a microsecond or more).
    pub(crate) fn id_at(&self, at: Timestamp) -> (i64, Timestamp, Timestamp) {
        let (start, end) = self.bounds_at(at);
        let id = match self.kind {
            Kind::Every { nanos, anchor } => {
                let offset = i128::from(at.as_unix_nanos()) - i128::from(anchor);
                let index = offset.div_euclid(i128::from(nanos));
                i64::try_from(index).unwrap_or(if index < 0 { i64::MIN } else { i64::MAX })
            }
            _ => self.calendar_ordinal(at).unwrap_or(i64::MAX),
        };
        (id, start, end)
    }

    fn calendar_ordinal(&self, at: Timestamp) -> Option<i64> {
        let tz = match self.zone {
            None => TimeZone::UTC,
            Some(name) => zones::get(name)?,
        };
        let instant = jiff::Timestamp::from_nanosecond(i128::from(at.as_unix_nanos())).ok()?;
        let date = instant.to_zoned(tz).date();
        let (year, month) = (i64::from(date.year()), i64::from(date.month()));
        let day = days_from_civil(year, month, i64::from(date.day()));
        Some(match self.kind {
            Kind::Daily => day,
            // 1970-01-01 was a Thursday: its week's Monday is day −3.
            Kind::Weekly => (day + 3).div_euclid(7),
            Kind::Monthly => year * 12 + month - 1,
            Kind::Every { .. } => return None,
        })
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `year-month-day` (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March = 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The canonical text of a period, as a remote store keeps it beside a limit and sends it back
/// when it needs the period's bounds: `kind:zone:nanos:anchor` (kind `d`, `w`, `m` or `e`;
/// zone empty for UTC and for windows). Zone names never contain `:`.
pub(crate) fn spec(period: &Period) -> String {
    let (code, zone, nanos, anchor) = codec::parts(period);
    let kind = ["d", "w", "m", "e"][usize::from(code.min(3))];
    format!("{kind}:{zone}:{nanos}:{anchor}")
}

/// The inverse of [`spec`].
///
/// # Errors
/// A description of what is wrong with `text` (an unknown kind or zone, a bad number).
pub(crate) fn from_spec(text: &str) -> Result<Period, &'static str> {
    let mut parts = text.split(':');
    let (Some(kind), Some(zone), Some(nanos), Some(anchor), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("not a period spec");
    };
    let code = match kind {
        "d" => 0,
        "w" => 1,
        "m" => 2,
        "e" => 3,
        _ => return Err("unknown period kind"),
    };
    let nanos = nanos.parse().map_err(|_| "bad period window")?;
    let anchor = anchor.parse().map_err(|_| "bad period anchor")?;
    codec::from_parts(code, zone, nanos, anchor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        let instant: jiff::Timestamp = text.parse().expect("a valid instant");
        Timestamp::from_unix_nanos(i64::try_from(instant.as_nanosecond()).unwrap())
    }

    #[test]
    fn civil_days_count_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
    }

    #[test]
    fn daily_ids_are_consecutive_local_days_also_across_a_dst_change() {
        let new_york = Period::daily().in_zone("America/New_York").unwrap();
        // 2026-03-08 has 23 hours in New York (DST starts at 2 am); local midnight is 05:00Z.
        let (id, start, end) = new_york.id_at(at("2026-03-08T12:00:00Z"));
        assert_eq!((start, end), new_york.bounds_at(at("2026-03-08T12:00:00Z")));
        assert_eq!(
            end.as_unix_nanos() - start.as_unix_nanos(),
            23 * 3_600_000_000_000
        );
        assert_eq!(id, days_from_civil(2026, 3, 8));
        // 03:00Z on the 9th is still the 8th in New York (UTC-4 now).
        assert_eq!(new_york.id_at(at("2026-03-09T03:00:00Z")).0, id);
        assert_eq!(new_york.id_at(end).0, id + 1);
        let (previous, _, previous_end) = new_york.id_at(at("2026-03-08T04:59:59Z"));
        assert_eq!((previous, previous_end), (id - 1, start));
        // UTC days are the plain day numbers.
        assert_eq!(Period::daily().id_at(at("1970-01-02T00:00:00Z")).0, 1);
    }

    #[test]
    fn weekly_ids_change_on_mondays() {
        let weekly = Period::weekly();
        // 1970-01-01 (Thursday) is in week 0; Monday 1970-01-05 starts week 1.
        assert_eq!(weekly.id_at(at("1970-01-01T00:00:00Z")).0, 0);
        assert_eq!(weekly.id_at(at("1970-01-04T23:59:59Z")).0, 0);
        assert_eq!(weekly.id_at(at("1970-01-05T00:00:00Z")).0, 1);
        let sunday = weekly.id_at(at("2026-03-08T23:00:00Z"));
        let monday = weekly.id_at(at("2026-03-09T00:00:00Z"));
        assert_eq!(monday.0, sunday.0 + 1);
        assert_eq!(sunday.2, monday.1);
    }

    #[test]
    fn monthly_ids_count_months_whatever_their_length() {
        let monthly = Period::monthly();
        let january = monthly.id_at(at("2026-01-31T23:59:59Z"));
        let february = monthly.id_at(at("2026-02-01T00:00:00Z"));
        let march = monthly.id_at(at("2028-03-01T00:00:00Z"));
        assert_eq!(january.0, 2026 * 12);
        assert_eq!(february.0, january.0 + 1);
        assert_eq!(march.0, 2028 * 12 + 2);
        // February 2028 has 29 days, February 2026 28.
        let leap = monthly.id_at(at("2028-02-29T12:00:00Z"));
        assert_eq!(leap.0, march.0 - 1);
        assert_eq!(
            leap.2.as_unix_nanos() - leap.1.as_unix_nanos(),
            29 * 86_400_000_000_000
        );
        assert_eq!(
            february.2.as_unix_nanos() - february.1.as_unix_nanos(),
            28 * 86_400_000_000_000
        );
    }

    #[test]
    fn window_ids_count_from_the_anchor() {
        let period =
            Period::every_from(Duration::from_nanos(100), Timestamp::from_unix_nanos(1_000))
                .unwrap();
        assert_eq!(period.id_at(Timestamp::from_unix_nanos(1_250)).0, 2);
        assert_eq!(period.id_at(Timestamp::from_unix_nanos(999)).0, -1);
        assert_eq!(
            period.id_at(Timestamp::from_unix_nanos(1_000)),
            (
                0,
                Timestamp::from_unix_nanos(1_000),
                Timestamp::from_unix_nanos(1_100)
            )
        );
    }

    #[test]
    fn specs_read_back_as_the_same_period() {
        let periods = [
            Period::daily(),
            Period::weekly().in_zone("Europe/Berlin").unwrap(),
            Period::monthly().in_zone("america/new_york").unwrap(),
            Period::every(Duration::from_secs(90)).unwrap(),
            Period::every_from(Duration::from_secs(5), Timestamp::from_unix_nanos(-7)).unwrap(),
        ];
        for period in periods {
            assert_eq!(from_spec(&spec(&period)), Ok(period), "{}", spec(&period));
        }
        assert_eq!(spec(&periods[1]), "w:Europe/Berlin:0:0");
        assert_eq!(spec(&periods[3]), "e::90000000000:0");
        for bad in [
            "",
            "x::0:0",
            "d:Mars/Base:0:0",
            "e::0:0",
            "e::-5:0",
            "d::0:0:0",
            "e::1:z",
        ] {
            assert!(from_spec(bad).is_err(), "{bad}");
        }
    }
}
