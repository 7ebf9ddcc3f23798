//! Script refusals (`'e', code, fields...`) decoded into the crate's typed errors, with the
//! same fields the ledger puts in them.

use super::*;

/// The typed error for a script's refusal (`'e', code, fields...`).
pub(in crate::store::redis) fn refusal(
    reply: &[String],
    key: Option<&IdempotencyKey>,
    requested: &'static str,
    cost: Option<&Cost>,
) -> Error {
    match decode_refusal(reply, key, requested, cost) {
        Ok(error) | Err(error) => error,
    }
}

fn decode_refusal(
    reply: &[String],
    key: Option<&IdempotencyKey>,
    requested: &'static str,
    cost: Option<&Cost>,
) -> Result<Error> {
    let text = |index| field(reply, index).map(str::to_owned);
    let node = |index| field(reply, index).map(Arc::<str>::from);
    let key_text = || Arc::<str>::from(key.map(IdempotencyKey::as_str).unwrap_or_default());
    Ok(match field(reply, 1)? {
        "unknown_node" => Error::UnknownNode {
            path: unknown_node(field(reply, 2)?)?,
        },
        "rate_limited" => Error::RateLimited {
            node: node(2)?,
            limit: field(reply, 3)?
                .parse()
                .map_err(|_| bad_reply("rate limit"))?,
            window: Duration::from_nanos(id(field(reply, 4)?)?),
            retry_after: Duration::from_micros(id(field(reply, 5)?)?),
        },
        "unknown_path" => Error::UnknownNode { path: text(2)? },
        "root_removal" => Error::RootRemoval { node: node(2)? },
        "in_use" => Error::NodeInUse {
            node: node(2)?,
            children: usize::try_from(int(field(reply, 3)?)?)
                .map_err(|_| bad_reply("child count"))?,
            holds: usize::try_from(int(field(reply, 4)?)?).map_err(|_| bad_reply("hold count"))?,
        },
        "duplicate" => Error::DuplicateNode { path: text(2)? },
        "frozen" => Error::Frozen { node: node(2)? },
        "closed" => Error::Closed { node: node(2)? },
        "in_debt" => {
            let unit = unit(field(reply, 3)?)?;
            Error::InDebt {
                node: node(2)?,
                debt: amount(field(reply, 4)?, unit)?,
            }
        }
        "exceeded" => {
            let unit = unit(field(reply, 3)?)?;
            let figure = |index| amount(field(reply, index)?, unit);
            Error::BudgetExceeded(Box::new(
                Exceeded::new(node(2)?, figure(4)?, figure(5)?, figure(6)?, figure(7)?)
                    .with_period(crate::store::redis::periods::period(
                        reply.get(8).map_or("", String::as_str),
                    )?),
            ))
        }
        "unknown_hold" => Error::UnknownHold {
            hold: hold(field(reply, 2)?)?,
        },
        "expired" => Error::ReservationExpired {
            hold: hold(field(reply, 2)?)?,
            node: node(3)?,
            expired_at: timestamp(field(reply, 4)?)?,
        },
        "expired_removed" => Error::ReservationExpired {
            hold: hold(field(reply, 2)?)?,
            node: unknown_node(field(reply, 3)?)?.into(),
            expired_at: timestamp(field(reply, 4)?)?,
        },
        "hold_ended" => Error::HoldEnded {
            key: key_text(),
            hold: hold(field(reply, 2)?)?,
            how: match field(reply, 3)? {
                "committed" => HoldEnd::Committed,
                "released" => HoldEnd::Released,
                _ => HoldEnd::Expired,
            },
        },
        "mismatch" => Error::IdempotencyMismatch {
            key: key_text(),
            first: op_name(field(reply, 2)?),
            requested,
        },
        "unit_mismatch_record" => Error::UnitMismatch {
            expected: unit(field(reply, 2)?)?,
            found: unit(field(reply, 3)?)?,
            context: "record on a hold",
        },
        "below_recorded" => {
            let unit = unit(field(reply, 2)?)?;
            Error::InvalidAmount {
                input: amount(field(reply, 3)?, unit)?.to_string(),
                reason: AmountError::BelowRecorded {
                    recorded_minor: int(field(reply, 4)?)?,
                },
            }
        }
        "unit_mismatch" => {
            let other = cost
                .and_then(|cost| cost.iter().next())
                .map_or(Unit::Usd, Amount::unit);
            let side = |index| -> Result<Unit> {
                let name = field(reply, index)?;
                if name.is_empty() {
                    Ok(other)
                } else {
                    unit(name)
                }
            };
            Error::UnitMismatch {
                expected: side(2)?,
                found: side(3)?,
                context: "commit of a hold",
            }
        }
        "overage_rejected" => {
            let unit = unit(field(reply, 3)?)?;
            let figure = |index| amount(field(reply, index)?, unit);
            Error::OverageRejected {
                node: node(2)?,
                held: figure(4)?,
                actual: figure(5)?,
                debt: figure(6)?,
            }
        }
        "not_budgeted" => Error::UnitNotBudgeted {
            node: node(2)?,
            unit: unit(field(reply, 3)?)?,
        },
        "below_usage" => {
            let unit = unit(field(reply, 3)?)?;
            let figure = |index| amount(field(reply, index)?, unit);
            Error::LimitBelowUsage {
                node: node(2)?,
                unit,
                requested_limit: figure(4)?.max(Amount::zero(unit)),
                spent: figure(5)?,
                reserved: figure(6)?,
            }
        }
        _ => return Err(bad_reply("unknown refusal")),
    })
}

/// An unknown node id (`#<raw>`) as the ledger names it (`node#<index>.<serial>`).
fn unknown_node(text: &str) -> Result<String> {
    let raw = text.strip_prefix('#').ok_or_else(|| bad_reply("node id"))?;
    Ok(crate::ids::NodeId::from_raw(id(raw)?).to_string())
}

/// The operation names fingerprints start with (`"reserve|..."`), as `'static` strings.
pub(in crate::store::redis) fn op_name(text: &str) -> &'static str {
    match text {
        "reserve" => "reserve",
        "reserve_up_to" => "reserve_up_to",
        "commit" => "commit",
        "release" => "release",
        "credit" => "credit",
        "debit" => "debit",
        _ => "another",
    }
}
