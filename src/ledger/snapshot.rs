//! Whole-ledger snapshots: taking one, and rebuilding a ledger from one after checking it.

use std::collections::HashMap;
use std::sync::Arc;

use super::expiry::Tombstone;
use super::{Account, Hold, HoldSlot, Ledger};
use crate::amount::{Amount, Unit};
use crate::balance::{AccountSnapshot, CapSnapshot, HoldSnapshot, NodeSnapshot, Snapshot};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::ids::{HoldId, MAX_LIVE_HOLDS};
use crate::policy::{LimitKind, Limits};

fn invalid(reason: String) -> Error {
    Error::InvalidSnapshot { reason }
}

impl Ledger {
    pub(crate) fn snapshot(&self) -> Snapshot {
        let nodes = self
            .nodes_in_order()
            .into_iter()
            .map(|index| {
                let node = self.node(index);
                NodeSnapshot {
                    path: node.path.clone(),
                    state: node.state,
                    rate_limit: self.rate_limit_at(index),
                    burn_window: self.timed_config(index).0,
                    top_up: self.timed_config(index).1,
                    accounts: Unit::ALL
                        .into_iter()
                        .filter(|unit| node.accounts[unit.index()].is_active())
                        .map(|unit| {
                            let account = &node.accounts[unit.index()];
                            AccountSnapshot {
                                unit,
                                limit: account.limit(),
                                spent: Amount::from_minor(account.spent, unit),
                                reserved: Amount::from_minor(account.reserved, unit),
                                debt: Amount::from_minor(account.debt, unit),
                                allowance: account
                                    .resets_at()
                                    .map(|_| Amount::from_minor(account.allowance(), unit)),
                                resets_at: account.resets_at(),
                                further_limits: account
                                    .extras()
                                    .iter()
                                    .filter_map(|cap| cap_snapshot(cap, unit))
                                    .collect(),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let holds = self
            .holds
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let hold = slot.hold()?;
                Some(HoldSnapshot {
                    id: HoldId::new(index as u32, slot.serial),
                    node: self.node(hold.node).path.clone(),
                    held: hold.held,
                    recorded: hold.recorded,
                    expires_at: hold.expires,
                })
            })
            .collect();
        // Reclaimed holds whose node is gone can never commit again: leave them out.
        let expired_holds = self
            .tombstones
            .iter()
            .filter_map(|(id, tombstone)| {
                let index = self.live(tombstone.node).ok()?;
                Some(HoldSnapshot {
                    id,
                    node: self.node(index).path.clone(),
                    held: tombstone.held,
                    recorded: tombstone.recorded,
                    expires_at: tombstone.expired_at,
                })
            })
            .collect();
        Snapshot {
            nodes,
            holds,
            expired_holds,
            next_serial: self.next_serial,
        }
    }

    /// Rebuilds a ledger from `snapshot`, refusing one that breaks a ledger invariant.
    pub(crate) fn from_snapshot(snapshot: &Snapshot) -> Result<Ledger, Error> {
        let mut ledger = Ledger::new();
        for node in &snapshot.nodes {
            let (parent, name) = match node.path.rsplit_once('/') {
                Some((parent, name)) => {
                    let parent = ledger.resolve(parent).map_err(|_| {
                        invalid(format!("node {} comes before its parent", node.path))
                    })?;
                    (Some(parent), name)
                }
                None => (None, &*node.path),
            };
            check_account_units(node)?;
            let further = node.accounts.iter().flat_map(|a| &a.further_limits);
            let limits = Limits(
                node.accounts
                    .iter()
                    .filter_map(|a| a.limit)
                    .chain(further.map(|cap| cap.limit))
                    .collect(),
            );
            let id = ledger.create_node(parent, name, &limits)?;
            ledger.set_state(id, node.state)?;
            ledger.set_rate_limit(id, node.rate_limit)?;
            ledger.set_burn_window(id, node.burn_window)?;
            ledger.restore_top_up(id, node.top_up)?;
            let index = id.index();
            for account in &node.accounts {
                let figures = [account.spent, account.reserved, account.debt];
                if figures.iter().any(|amount| amount.unit() != account.unit) {
                    return Err(invalid(format!(
                        "{}: mixed units in one account",
                        node.path
                    )));
                }
                if !account.further_limits.is_empty() && account.limit.is_none() {
                    return Err(invalid(format!(
                        "{}: further limits without a first limit",
                        node.path
                    )));
                }
                let slot = &mut ledger.node_mut(index).accounts[account.unit.index()];
                let more = slot.take_more();
                *slot = Account::unused(account.unit);
                slot.spent = account.spent.minor_units();
                slot.reserved = account.reserved.minor_units();
                slot.debt = account.debt.minor_units();
                slot.set_more(more);
                restore_further(slot, &account.further_limits, &node.path)?;
                slot.set_limit(account.limit);
                if account.limit.is_some_and(|limit| limit.period().is_some()) {
                    let allocation = account.limit.map_or(0, |l| l.amount().minor_units());
                    if let Some(allowance) = account.allowance {
                        if allowance.unit() != account.unit {
                            return Err(invalid(format!(
                                "{}: mixed units in one account",
                                node.path
                            )));
                        }
                        slot.set_extra(allowance.minor_units() - allocation);
                    }
                    slot.set_period_end(account.resets_at.unwrap_or(super::period::NOT_STARTED));
                    slot.refresh_caps();
                }
                // Levels already passed count as reported: a restore repeats no event.
                let effective = slot.effective();
                slot.alarm
                    .settle(effective.as_ref(), slot.spent, slot.reserved);
            }
        }
        let mut expected_reserved: HashMap<(u32, Unit), i64> = HashMap::new();
        for hold in &snapshot.holds {
            let node = ledger.resolve(&hold.node).map_err(|_| {
                invalid(format!("hold {} is on unknown node {}", hold.id, hold.node))
            })?;
            if !hold.held.same_units(&hold.recorded) || hold.held.is_empty() {
                return Err(invalid(format!("hold {} has mismatched units", hold.id)));
            }
            for unit in hold.held.units() {
                let outstanding = hold.held.minor(unit) - hold.recorded.minor(unit);
                if outstanding < 0 {
                    return Err(invalid(format!(
                        "hold {} recorded more than it held",
                        hold.id
                    )));
                }
                for index in ledger.path_indices(node.index()) {
                    *expected_reserved.entry((index, unit)).or_default() += outstanding;
                }
            }
            ledger.place_hold(
                hold.id,
                Hold {
                    node: node.index(),
                    held: hold.held,
                    recorded: hold.recorded,
                    expires: hold.expires_at,
                },
            )?;
        }
        for hold in &snapshot.expired_holds {
            let node = ledger.resolve(&hold.node).map_err(|_| {
                invalid(format!(
                    "expired hold {} is on unknown node {}",
                    hold.id, hold.node
                ))
            })?;
            if !hold.held.same_units(&hold.recorded) || hold.held.is_empty() {
                return Err(invalid(format!(
                    "expired hold {} has mismatched units",
                    hold.id
                )));
            }
            ledger.tombstones.insert(
                hold.id,
                Tombstone {
                    node,
                    held: hold.held,
                    recorded: hold.recorded,
                    expired_at: hold.expires_at,
                },
            );
        }
        for index in ledger.nodes_in_order() {
            let node = ledger.node(index);
            for unit in Unit::ALL {
                let account = &node.accounts[unit.index()];
                let expected = expected_reserved.get(&(index, unit)).copied().unwrap_or(0);
                if account.reserved != expected {
                    return Err(invalid(format!(
                        "{} reserves {} {unit} but its holds add up to {expected}",
                        node.path, account.reserved
                    )));
                }
                check_account(&node.path, unit, account)?;
            }
        }
        ledger.rebuild_free_holds();
        ledger.earliest_expiry = snapshot
            .holds
            .iter()
            .map(|hold| hold.expires_at)
            .min()
            .unwrap_or(Timestamp::MAX);
        ledger.next_serial = snapshot.next_serial.max(ledger.next_serial);
        ledger.recompute_due();
        Ok(ledger)
    }

    /// Puts `hold` in its slab slot. The slab grows to the hold's index, so an index from an
    /// untrusted snapshot is checked against [`MAX_LIVE_HOLDS`] before anything is allocated.
    fn place_hold(&mut self, id: HoldId, hold: Hold) -> Result<(), Error> {
        if id.index() >= MAX_LIVE_HOLDS {
            return Err(invalid(format!(
                "hold {id} has index {}, at or above the limit of {MAX_LIVE_HOLDS} live holds",
                id.index()
            )));
        }
        let index = id.index() as usize;
        if index >= self.holds.len() {
            self.holds.resize_with(index + 1, || HoldSlot::free(0));
        }
        if self.holds[index].is_live() {
            return Err(invalid(format!("hold slot of {id} is used twice")));
        }
        self.holds[index] = HoldSlot::live(id.serial(), &hold);
        self.node_mut(hold.node).live_holds += 1;
        Ok(())
    }

    fn rebuild_free_holds(&mut self) {
        self.free_holds = (0..self.holds.len() as u32)
            .rev()
            .filter(|index| !self.holds[*index as usize].is_live())
            .collect();
    }
}

/// One account per unit, and each account's limit in the account's own unit: otherwise the
/// account would be rebuilt in one slot with a limit of another, and the ledger would write a
/// snapshot that no reader (itself included) accepts.
fn check_account_units(node: &NodeSnapshot) -> Result<(), Error> {
    let mut seen = [false; Unit::COUNT];
    for account in &node.accounts {
        let unit = account.unit;
        if std::mem::replace(&mut seen[unit.index()], true) {
            return Err(invalid(format!("{}: two {unit} accounts", node.path)));
        }
        if let Some(limit) = account.limit
            && limit.unit() != unit
        {
            return Err(invalid(format!(
                "{}: the {unit} account has a limit in {}",
                node.path,
                limit.unit()
            )));
        }
    }
    Ok(())
}

pub(super) fn check_account(path: &Arc<str>, unit: Unit, account: &Account) -> Result<(), Error> {
    if account.spent < 0 || account.reserved < 0 || account.debt < 0 {
        return Err(invalid(format!("{path}: negative {unit} figures")));
    }
    if let Some(limit) = account.limit() {
        if limit.kind() == LimitKind::Hard
            && i128::from(account.spent) + i128::from(account.reserved)
                > i128::from(account.allowance())
        {
            return Err(invalid(format!(
                "{path}: spent plus reserved {unit} is above its hard limit"
            )));
        }
    } else if account.debt != 0 {
        return Err(invalid(format!("{path}: {unit} debt without a limit")));
    }
    Ok(())
}

/// A further cap's figures for a snapshot (`None` for a cap without limit, which never exists).
fn cap_snapshot(cap: &Account, unit: Unit) -> Option<CapSnapshot> {
    Some(CapSnapshot {
        limit: cap.limit()?,
        spent: Amount::from_minor(cap.spent, unit),
        allowance: cap
            .resets_at()
            .map(|_| Amount::from_minor(cap.allowance(), unit)),
        resets_at: cap.resets_at(),
    })
}

/// Puts the snapshot figures of a unit's further caps into `account`, whose caps `create_node`
/// made from the same limits in the same order; they share the account's `reserved`.
fn restore_further(account: &mut Account, caps: &[CapSnapshot], path: &str) -> Result<(), Error> {
    let reserved = account.reserved;
    for (cap, figures) in account.extras_mut().iter_mut().zip(caps) {
        let unit = figures.limit.unit();
        let units_agree = figures.spent.unit() == unit
            && figures
                .allowance
                .is_none_or(|allowance| allowance.unit() == unit);
        if !units_agree || cap.limit() != Some(figures.limit) {
            return Err(invalid(format!("{path}: a further limit does not match")));
        }
        cap.spent = figures.spent.minor_units();
        cap.reserved = reserved;
        if let Some(allowance) = figures.allowance {
            cap.set_extra(allowance.minor_units() - figures.limit.amount().minor_units());
        }
        if figures.limit.period().is_some() {
            cap.set_period_end(figures.resets_at.unwrap_or(super::period::NOT_STARTED));
        }
        cap.refresh_caps();
    }
    Ok(())
}
