use super::*;

/// The serialized form: `{"kind": "monthly", "zone": "Europe/Berlin"}` or
/// `{"kind": "every", "nanos": 18000000000000, "anchor": 0}`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum PeriodRepr {
    Daily {
        #[serde(default)]
        zone: Option<String>,
    },
    Weekly {
        #[serde(default)]
        zone: Option<String>,
    },
    Monthly {
        #[serde(default)]
        zone: Option<String>,
    },
    Every {
        nanos: u64,
        #[serde(default)]
        anchor: i64,
    },
}

impl From<Period> for PeriodRepr {
    fn from(period: Period) -> Self {
        let zone = period.zone.map(str::to_owned);
        match period.kind {
            Kind::Daily => PeriodRepr::Daily { zone },
            Kind::Weekly => PeriodRepr::Weekly { zone },
            Kind::Monthly => PeriodRepr::Monthly { zone },
            Kind::Every { nanos, anchor } => PeriodRepr::Every {
                nanos: nanos.unsigned_abs(),
                anchor,
            },
        }
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PeriodRepr::from(*self).serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = PeriodRepr::deserialize(deserializer)?;
        Period::try_from(repr).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<PeriodRepr> for Period {
    type Error = Error;
    fn try_from(repr: PeriodRepr) -> Result<Self, Error> {
        let (base, zone) = match repr {
            PeriodRepr::Daily { zone } => (Period::daily(), zone),
            PeriodRepr::Weekly { zone } => (Period::weekly(), zone),
            PeriodRepr::Monthly { zone } => (Period::monthly(), zone),
            PeriodRepr::Every { nanos, anchor } => {
                return Period::every_from(
                    Duration::from_nanos(nanos),
                    Timestamp::from_unix_nanos(anchor),
                );
            }
        };
        match zone {
            Some(zone) => base.in_zone(&zone),
            None => Ok(base),
        }
    }
}
