use super::*;

/// `(code, zone, nanos, anchor)`: code 0 daily, 1 weekly, 2 monthly, 3 every; zone `""` for
/// UTC.
pub(crate) fn parts(period: &Period) -> (u8, &'static str, i64, i64) {
    let zone = period.zone.unwrap_or("");
    match period.kind {
        Kind::Daily => (0, zone, 0, 0),
        Kind::Weekly => (1, zone, 0, 0),
        Kind::Monthly => (2, zone, 0, 0),
        Kind::Every { nanos, anchor } => (3, "", nanos, anchor),
    }
}

/// The inverse of [`parts`].
pub(crate) fn from_parts(
    code: u8,
    zone: &str,
    nanos: i64,
    anchor: i64,
) -> Result<Period, &'static str> {
    let base = match code {
        0 => Period::daily(),
        1 => Period::weekly(),
        2 => Period::monthly(),
        3 => {
            let nanos = u64::try_from(nanos).map_err(|_| "bad period window")?;
            return Period::every_from(
                Duration::from_nanos(nanos),
                Timestamp::from_unix_nanos(anchor),
            )
            .map_err(|_| "bad period window");
        }
        _ => return Err("unknown period kind"),
    };
    if zone.is_empty() {
        return Ok(base);
    }
    base.in_zone(zone).map_err(|_| "unknown time zone")
}
