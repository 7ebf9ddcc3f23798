//! A node's accounts, one per unit (issue 16, node layout).
//!
//! Every unit is ledgered on every node, but a node almost always uses one unit: the one its
//! limit is in. [`Accounts`] keeps that unit's [`Account`] inline and the other units' behind one
//! optional box, created the first time an operation changes one of them. Indexing by
//! [`Unit::index`] reads like the array it replaces: an account a node never used reads as
//! [`Account::unused`].

use std::ops::{Index, IndexMut};

use super::Account;
use crate::amount::Unit;

/// The account every unit a node never used reads as.
static UNUSED: [Account; Unit::COUNT] = [
    Account::unused(Unit::Usd),
    Account::unused(Unit::Tokens),
    Account::unused(Unit::Requests),
];

/// A node's accounts, indexed by [`Unit::index`].
#[derive(Debug)]
pub(super) struct Accounts {
    /// The account of the unit the node was created with a limit in (USD without one).
    first: Account,
    /// Every other unit's account, at its unit's index (the slot of `first`'s unit is unused);
    /// `None` until one of them is changed.
    others: Option<Box<[Account; Unit::COUNT]>>,
}

impl Accounts {
    /// Keeps the first account that has a limit or figures inline, the rest boxed if any of
    /// them has one.
    pub(super) fn new(mut all: [Account; Unit::COUNT]) -> Self {
        let inline = all.iter().position(Account::is_active).unwrap_or(0);
        let first = std::mem::replace(&mut all[inline], Account::unused(Unit::ALL[inline]));
        let others = all.iter().any(Account::is_active).then(|| Box::new(all));
        Accounts { first, others }
    }

    /// Every unit's account, in unit order (unused ones included, as [`Account::unused`]).
    pub(super) fn iter(&self) -> impl Iterator<Item = &Account> {
        Unit::ALL.into_iter().map(|unit| &self[unit.index()])
    }

    /// Every account the node has used (unused ones read as [`Account::unused`] and need no
    /// change), the inline one first.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Account> {
        let inline = self.first.unit().index();
        let others = self.others.iter_mut().flat_map(|others| others.iter_mut());
        std::iter::once(&mut self.first).chain(
            others
                .enumerate()
                .filter(move |(index, _)| *index != inline)
                .map(|(_, account)| account),
        )
    }

    /// Whether any unit's account is in debt (the reserve walk's test, without touching the
    /// box while there is none).
    #[inline]
    pub(super) fn owe(&self) -> bool {
        self.first.debt != 0
            || self
                .others
                .as_deref()
                .is_some_and(|others| others.iter().any(|account| account.debt != 0))
    }
}

impl Index<usize> for Accounts {
    type Output = Account;

    #[inline]
    fn index(&self, index: usize) -> &Account {
        if self.first.unit().index() == index {
            return &self.first;
        }
        match self.others.as_deref() {
            Some(others) => &others[index],
            None => &UNUSED[index],
        }
    }
}

impl IndexMut<usize> for Accounts {
    /// The account of unit `index`, boxing the other units' accounts the first time one of them
    /// is changed.
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut Account {
        if self.first.unit().index() == index {
            return &mut self.first;
        }
        if self.others.is_none() {
            return self.box_others(index);
        }
        let others = self.others.as_deref_mut();
        &mut others.expect("the other units' accounts were boxed above")[index]
    }
}

impl Accounts {
    /// Boxes the other units' accounts (once per node, the first time one changes) and returns
    /// unit `index`'s. Out of line: inlined, building the box's 216 bytes on the stack made every
    /// path walk reserve a large frame and save every register (issue 16).
    #[cold]
    #[inline(never)]
    fn box_others(&mut self, index: usize) -> &mut Account {
        &mut self.others.insert(Box::new(Unit::ALL.map(Account::unused)))[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_the_same_whether_inline_boxed_or_never_used() {
        let mut all = Unit::ALL.map(Account::unused);
        all[Unit::Tokens.index()].spent = 7;
        let mut accounts = Accounts::new(all);
        assert!(accounts.others.is_none(), "one used unit: nothing boxed");
        assert_eq!(accounts[Unit::Tokens.index()].spent, 7);
        assert_eq!(accounts[Unit::Usd.index()].spent, 0);
        accounts[Unit::Requests.index()].spent = 3;
        assert!(accounts.others.is_some());
        let spent: Vec<i64> = accounts.iter().map(|account| account.spent).collect();
        assert_eq!(spent, [0, 7, 3]);
        let units: Vec<Unit> = accounts.iter().map(Account::unit).collect();
        assert_eq!(units, Unit::ALL);
        assert_eq!(accounts.iter_mut().count(), Unit::COUNT);
    }
}
