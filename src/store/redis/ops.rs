//! Each supported [`Op`] and [`Query`] as its script call, and the script's reply as its result.

use std::time::Duration;

use crate::amount::Amount;
use crate::cost::Cost;
use crate::error::Result;
use crate::idempotency::IdempotencyKey;
use crate::ids::{HoldId, NodeId};
use crate::op::{Answer, Applied, Op, Query};
use crate::policy::Limit;
use crate::store::{Committed, Reservation};
use crate::threshold::Crossings;

use super::RedisStore;
use super::codec::{self, field};

/// The script's reply if it is `ok`, else its refusal as a typed error.
fn ok(
    reply: Vec<String>,
    key: Option<&IdempotencyKey>,
    requested: &'static str,
    cost: Option<&Cost>,
) -> Result<Vec<String>> {
    if reply.first().map(String::as_str) == Some("ok") {
        Ok(reply)
    } else {
        Err(codec::refusal(&reply, key, requested, cost))
    }
}

fn node_arg(node: NodeId) -> String {
    node.into_raw().to_string()
}

fn hold_arg(hold: HoldId) -> String {
    hold.into_raw().to_string()
}

/// The request's identity for its idempotency key: the operation and every argument. Empty
/// without a key: the scripts read it only to compare it with the one a key remembers, so a
/// call without one neither builds nor sends it.
fn fingerprint(key: Option<&IdempotencyKey>, name: &str, args: &[String]) -> String {
    if key.is_none() {
        return String::new();
    }
    format!("{name}|{}", args.join("|"))
}

impl RedisStore {
    /// Runs `script` without an idempotency key: its reply, or its refusal as an error (with no
    /// request to name in it).
    fn run_plain(&self, script: &redis::Script, args: Vec<String>) -> Result<Vec<String>> {
        ok(self.run(script, None, "", args)?, None, "", None)
    }

    /// `checked`, unless it is an error and the ledger would have refused the request before
    /// looking at its amounts: an unknown node, an idempotency key already used (a refused
    /// request is never remembered, so it cannot be a retry of the one the key answered), or,
    /// for a reserve (`rate`), a rate limit.
    fn validated(
        &self,
        checked: Result<()>,
        node: NodeId,
        key: Option<&IdempotencyKey>,
        requested: &'static str,
        rate: bool,
    ) -> Result<()> {
        if checked.is_ok() || (key.is_none() && !rate) {
            return checked;
        }
        let args = vec![
            "key".to_owned(),
            key.map(|key| key.as_str().to_owned()).unwrap_or_default(),
            node_arg(node),
            if rate { "rate" } else { "" }.to_owned(),
        ];
        let reply = self.run_plain(&self.scripts.read, args)?;
        match (field(&reply, 1)?, key) {
            ("", _) | (_, None) => checked,
            (first, Some(key)) => Err(crate::Error::IdempotencyMismatch {
                key: key.as_str().into(),
                first: codec::op_name(first),
                requested,
            }),
        }
    }

    pub(super) fn apply_supported(&self, op: &Op) -> Result<Applied> {
        match op {
            Op::CreateNode {
                parent,
                name,
                limits,
            } => {
                crate::ledger::validate_name(name)?;
                limits.validate(name)?;
                let mut args = vec![parent.map(node_arg).unwrap_or_default(), name.clone()];
                codec::node_limit_args(limits, &mut args)?;
                // The script starts the new periods: it needs their bounds.
                for period in limits.iter().filter_map(Limit::period) {
                    self.periods.learn(period);
                }
                let reply = self.run_plain(&self.scripts.create_node, args)?;
                Ok(Applied::Node(NodeId::from_raw(codec::id(field(
                    &reply, 1,
                )?)?)))
            }
            Op::Reserve {
                node,
                cost,
                ttl,
                idempotency_key,
            } => self.reserve(*node, cost, *ttl, idempotency_key.as_ref()),
            Op::ReserveUpTo {
                node,
                min,
                max,
                ttl,
                idempotency_key,
            } => self.reserve_up_to(*node, (*min, *max), *ttl, idempotency_key.as_ref()),
            Op::Extend { hold, ttl } => {
                let args = vec![hold_arg(*hold), codec::micros(*ttl, "hold TTL")?];
                let reply = self.run_plain(&self.scripts.extend, args)?;
                Ok(Applied::Extended(codec::timestamp(field(&reply, 1)?)?))
            }
            Op::Sweep => {
                let reply = ok(
                    self.run(&self.scripts.sweep, None, "", Vec::new())?,
                    None,
                    "",
                    None,
                )?;
                let expired = reply
                    .get(1..)
                    .unwrap_or_default()
                    .iter()
                    .map(|entry| codec::expired_hold(entry))
                    .collect::<Result<_>>()?;
                Ok(Applied::Swept(expired))
            }
            Op::Commit {
                hold,
                actual,
                idempotency_key,
            } => self.commit(*hold, actual, idempotency_key.as_ref()),
            Op::Release {
                hold,
                idempotency_key,
            } => {
                let args = vec![hold_arg(*hold)];
                let key = idempotency_key.as_ref();
                let print = fingerprint(key, "release", &args);
                let reply = ok(
                    self.run(&self.scripts.release, key, &print, args)?,
                    key,
                    "release",
                    None,
                )?;
                Ok(Applied::Released(field(&reply, 1)? == "1"))
            }
            Op::Credit {
                node,
                amount,
                idempotency_key,
            } => self.funds(*node, "credit", *amount, None, idempotency_key.as_ref()),
            Op::Debit {
                node,
                amount,
                idempotency_key,
            } => self.funds(*node, "debit", *amount, None, idempotency_key.as_ref()),
            Op::SetLimit { node, limit } => {
                limit.validate()?;
                self.funds(*node, "set", limit.amount(), Some(limit), None)
            }
            Op::RemoveLimit { node, unit } => {
                let args = vec![node_arg(*node), unit.name().to_owned(), "remove".to_owned()];
                let reply = self.run_plain(&self.scripts.funds, args)?;
                Ok(Applied::Balance(Box::new(codec::balance(
                    reply.get(1..).unwrap_or_default(),
                )?)))
            }
            Op::Record { hold, partial } => {
                let mut args = vec![hold_arg(*hold)];
                codec::cost_args(partial, &mut args)?;
                ok(
                    self.run(&self.scripts.record, None, "", args)?,
                    None,
                    "",
                    Some(partial),
                )?;
                Ok(Applied::Recorded)
            }
            Op::SetRateLimit { node, limit } => {
                if let Some(limit) = limit {
                    crate::rate::RateLimit::new(limit.requests(), limit.window())?;
                }
                let mut args = vec![node_arg(*node)];
                args.extend(codec::rate_args(*limit));
                let reply = self.run_plain(&self.scripts.set_rate, args)?;
                Ok(Applied::RateLimit(codec::previous_rate_limit(&reply)?))
            }
            Op::RemoveNode { node } => {
                ok(
                    self.run(&self.scripts.remove_node, None, "", vec![node_arg(*node)])?,
                    None,
                    "",
                    None,
                )?;
                Ok(Applied::Removed)
            }
            Op::SetState { node, state } => {
                let args = vec![node_arg(*node), codec::state_name(*state).to_owned()];
                let reply = self.run_plain(&self.scripts.set_state, args)?;
                Ok(Applied::State(codec::state(field(&reply, 1)?)?))
            }
            other => Err(crate::Error::Unsupported {
                op: other.kind(),
                store: codec::STORE,
            }),
        }
    }

    fn reserve(
        &self,
        node: NodeId,
        cost: &Cost,
        ttl: Duration,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied> {
        self.validated(cost.validate_reservable(), node, key, "reserve", true)?;
        let mut args = vec![node_arg(node), codec::micros(ttl, "hold TTL")?];
        codec::cost_args(cost, &mut args)?;
        self.hold("reserve", args, cost, key)
    }

    /// A reserve of what the tightest hard limit on the path has room for, within
    /// `min..=max`, as the ledger's `reserve_up_to`.
    fn reserve_up_to(
        &self,
        node: NodeId,
        (min, max): (Amount, Amount),
        ttl: Duration,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied> {
        let checks = min
            .same_unit(max, "reserve_up_to")
            .and_then(|()| Cost::from(min).validate_reservable())
            .and_then(|()| {
                if min > max {
                    return Err(crate::Error::InvalidAmount {
                        input: format!("{min}..={max}"),
                        reason: crate::error::AmountError::EmptyRange,
                    });
                }
                Ok(())
            });
        self.validated(checks, node, key, "reserve_up_to", true)?;
        let args = vec![
            node_arg(node),
            codec::micros(ttl, "hold TTL")?,
            "~".to_owned(),
            min.unit().name().to_owned(),
            codec::minor(min)?,
            codec::minor(max)?,
        ];
        self.hold("reserve_up_to", args, &Cost::from(min), key)
    }

    /// Runs the reserve script (`name` is `reserve` or `reserve_up_to`) and reads its reply.
    fn hold(
        &self,
        name: &'static str,
        args: Vec<String>,
        cost: &Cost,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied> {
        let print = fingerprint(key, name, &args);
        let reply = ok(
            self.run(&self.scripts.reserve, key, &print, args)?,
            key,
            name,
            Some(cost),
        )?;
        let hold = codec::hold(field(&reply, 1)?)?;
        let expires_at = codec::timestamp(field(&reply, 2)?)?;
        let soft = field(&reply, 3)?;
        let held = match field(&reply, 4)? {
            "" => *cost,
            granted => {
                let unit = cost.iter().next().map_or(crate::Unit::Usd, Amount::unit);
                Cost::from(codec::amount(granted, unit)?)
            }
        };
        let replayed = field(&reply, 5)? == "replayed";
        let count = usize::try_from(codec::int(field(&reply, 6)?)?).unwrap_or(usize::MAX);
        let rest = reply.get(7..).unwrap_or_default();
        let (crossings, expired) = rest.split_at(count.min(rest.len()));
        let mut reservation = Reservation::new(hold, held, expires_at)
            .with_over_soft_limit((!soft.is_empty()).then(|| soft.into()))
            .with_replayed(replayed)
            .with_expired(
                expired
                    .iter()
                    .map(|entry| codec::expired_hold(entry))
                    .collect::<Result<_>>()?,
            );
        for entry in crossings {
            reservation.events.push(codec::crossing(entry)?);
        }
        Ok(Applied::Reserved(reservation))
    }

    fn commit(&self, hold: HoldId, actual: &Cost, key: Option<&IdempotencyKey>) -> Result<Applied> {
        let mut args = vec![hold_arg(hold)];
        codec::cost_args(actual, &mut args)?;
        let print = fingerprint(key, "commit", &args);
        let reply = ok(
            self.run(&self.scripts.commit, key, &print, args)?,
            key,
            "commit",
            Some(actual),
        )?;
        let expired = field(&reply, 1)? == "expired";
        let mut entries = reply.get(2..).unwrap_or_default().to_vec();
        let replayed = entries.last().map(String::as_str) == Some("replayed");
        if replayed {
            entries.pop();
        }
        let (mut spent, mut returned, mut overage) = (Cost::new(), Cost::new(), Cost::new());
        let mut events = Crossings::new();
        for entry in &entries {
            if entry.contains('\u{1e}') {
                events.push(codec::crossing(entry)?);
                continue;
            }
            let mut parts = entry.split('=');
            let unit = codec::unit(parts.next().unwrap_or_default())?;
            spent = spent.with(codec::amount(parts.next().unwrap_or_default(), unit)?)?;
            returned = returned.with(codec::amount(parts.next().unwrap_or_default(), unit)?)?;
            overage = overage.with(codec::amount(parts.next().unwrap_or_default(), unit)?)?;
        }
        let mut committed = Committed::new(spent, returned, overage)
            .with_expired(expired)
            .with_replayed(replayed);
        committed.events = events;
        Ok(Applied::Committed(committed))
    }

    fn funds(
        &self,
        node: NodeId,
        op: &'static str,
        amount: Amount,
        limit: Option<&Limit>,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied> {
        if limit.is_none() {
            self.validated(
                Cost::from(amount).validate_reservable(),
                node,
                key,
                op,
                false,
            )?;
        }
        let mut args = vec![
            node_arg(node),
            amount.unit().name().to_owned(),
            op.to_owned(),
        ];
        match limit {
            Some(limit) => {
                let mut limit_args = Vec::new();
                codec::limit_args(limit, &mut limit_args)?;
                args.extend(limit_args.into_iter().skip(1));
                if let Some(period) = limit.period() {
                    self.periods.learn(period);
                }
            }
            None => args.push(codec::minor(amount)?),
        }
        let print = fingerprint(key, op, &args);
        let reply = ok(
            self.run(&self.scripts.funds, key, &print, args)?,
            key,
            op,
            None,
        )?;
        Ok(Applied::Balance(Box::new(codec::balance(
            reply.get(1..).unwrap_or_default(),
        )?)))
    }

    pub(super) fn read_supported(&self, query: &Query) -> Result<Answer> {
        let args = match query {
            Query::Resolve { path } => vec!["resolve".to_owned(), path.clone()],
            Query::Balance { node, unit } => {
                vec![
                    "balance".to_owned(),
                    node_arg(*node),
                    unit.name().to_owned(),
                ]
            }
            Query::NodeInfo { node } => vec!["info".to_owned(), node_arg(*node)],
            Query::Snapshot => vec!["snapshot".to_owned()],
            Query::Cancellation { hold } => vec!["cancel".to_owned(), hold_arg(*hold)],
            Query::Check { node, cost } => return self.check(*node, cost).map(Answer::Check),
        };
        let reply = self.run_plain(&self.scripts.read, args)?;
        match query {
            Query::Resolve { .. } => Ok(Answer::Node(NodeId::from_raw(codec::id(field(
                &reply, 1,
            )?)?))),
            Query::Balance { .. } => Ok(Answer::Balance(codec::balance(
                reply.get(1..).unwrap_or_default(),
            )?)),
            Query::Snapshot => Ok(Answer::Snapshot(Box::new(codec::snapshot(&reply)?))),
            Query::Cancellation { .. } => Ok(Answer::Cancellation(codec::cancellation(&reply)?)),
            _ => Ok(Answer::NodeInfo(codec::node_info(&reply)?)),
        }
    }
}
