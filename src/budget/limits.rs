//! A node's figures, limits, state and funds.

use crate::amount::{Amount, Unit};
use crate::balance::{Balance, NodeInfo, Snapshot};
use crate::error::Result;
use crate::idempotency::OpOptions;
use crate::node_state::NodeState;
use crate::policy::Limit;
use crate::store::Store;

use super::Budget;

impl Budget {
    /// This node's balance in `unit`.
    ///
    /// # Errors
    /// [`Error::UnknownNode`](crate::Error::UnknownNode) if this node was removed.
    pub fn balance(&self, unit: Unit) -> Result<Balance> {
        self.named(self.shared.store.balance(self.node, unit))
    }

    /// Path, parent, children and every active balance of this node.
    ///
    /// # Errors
    /// [`Error::UnknownNode`](crate::Error::UnknownNode) if this node was removed.
    pub fn info(&self) -> Result<NodeInfo> {
        self.named(self.shared.store.node_info(self.node))
    }

    /// Sets or replaces this node's limit in `limit.unit()` (raise, lower, switch hard/soft or
    /// policy). Raising repays debt first.
    ///
    /// With several limits of the unit on the node (one per period, see [`Limits`](crate::Limits)),
    /// the limit of the same period is replaced; a limit of a period the node does not have
    /// replaces the unit's first limit (give the node all its periods when you create it).
    ///
    /// # Errors
    /// [`Error::LimitBelowUsage`](crate::Error::LimitBelowUsage) for a hard limit below what is
    /// spent and reserved (in its period);
    /// [`Error::InvalidThreshold`](crate::Error::InvalidThreshold) for threshold levels on a limit
    /// that is not the unit's first.
    pub fn set_limit(&self, limit: Limit) -> Result<Balance> {
        let balance = self.named(self.shared.store.set_limit(self.node, limit))?;
        self.shared.wake_cancelled();
        Ok(balance)
    }

    /// Sets this node's [`NodeState`] (the kill switch) and returns the previous one. Frozen and
    /// closed apply to the whole subtree; see [`NodeState`] for what each still allows.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Error, Limit, NodeState};
    /// # fn main() -> budget_guard::Result<()> {
    /// let org = Budget::builder("org", Limit::hard(Amount::usd("10")?))
    ///     .child("team", Limit::hard(Amount::usd("5")?))
    ///     .child("team/agent", Limit::hard(Amount::usd("1")?))
    ///     .build()?;
    /// let agent = org.at("team/agent")?;
    /// let running = agent.reserve(Amount::usd("0.50")?)?;
    /// org.at("team")?.set_state(NodeState::Frozen)?;
    /// assert!(matches!(
    ///     agent.reserve(Amount::usd("0.10")?),
    ///     Err(Error::Frozen { node }) if &*node == "org/team"
    /// ));
    /// running.commit(Amount::usd("0.40")?)?; // work in flight may still commit
    /// org.at("team")?.set_state(NodeState::Active)?;
    /// assert!(agent.reserve(Amount::usd("0.10")?).is_ok());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownNode`](crate::Error::UnknownNode) if this node was removed.
    pub fn set_state(&self, state: NodeState) -> Result<NodeState> {
        let previous = self.named(self.shared.store.set_state(self.node, state))?;
        self.shared.wake_cancelled();
        Ok(previous)
    }

    /// Removes this node's limit in `unit` (it keeps tracking spend).
    ///
    /// # Errors
    /// [`Error::UnknownNode`](crate::Error::UnknownNode) if this node was removed.
    pub fn remove_limit(&self, unit: Unit) -> Result<Balance> {
        self.named(self.shared.store.remove_limit(self.node, unit))
    }

    /// Adds funds: raises the limit in `amount.unit()` by `amount`, repaying debt first.
    ///
    /// ```
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?)).build()?;
    /// let after = wallet.credit(Amount::usd("2.50")?)?;
    /// assert_eq!(after.remaining, Some(Amount::usd("7.50")?));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnitNotBudgeted`](crate::Error::UnitNotBudgeted) without a limit in that unit;
    /// [`Error::InvalidAmount`](crate::Error::InvalidAmount) for zero.
    pub fn credit(&self, amount: Amount) -> Result<Balance> {
        self.named(self.shared.store.credit(self.node, amount))
    }

    /// Takes funds: lowers the limit in `amount.unit()` by `amount`.
    ///
    /// # Errors
    /// [`Error::LimitBelowUsage`](crate::Error::LimitBelowUsage) if less would remain than is spent
    /// and reserved.
    pub fn debit(&self, amount: Amount) -> Result<Balance> {
        self.debit_with(amount, &OpOptions::DEFAULT)
    }

    /// As [`credit`](Budget::credit), with [`OpOptions`]: with an idempotency key, a retry
    /// (same key, node and amount) credits nothing and answers with the node's balance now
    /// (see [`crate::idempotency`]).
    ///
    /// ```
    /// use budget_guard::idempotency::{IdempotencyKey, OpOptions};
    /// use budget_guard::{Amount, Budget, Error, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?)).build()?;
    /// let payment = OpOptions::new().idempotency_key(IdempotencyKey::new("pay_81f3")?);
    /// wallet.credit_with(Amount::usd("20")?, &payment)?;
    /// wallet.credit_with(Amount::usd("20")?, &payment)?; // the webhook fired twice
    /// assert_eq!(wallet.balance(Unit::Usd)?.remaining, Some(Amount::usd("25")?));
    /// let reused = wallet.credit_with(Amount::usd("30")?, &payment).unwrap_err();
    /// assert!(matches!(reused, Error::IdempotencyMismatch { .. }));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`credit`](Budget::credit);
    /// [`Error::IdempotencyMismatch`](crate::Error::IdempotencyMismatch) if the key was used for
    /// another request.
    pub fn credit_with(&self, amount: Amount, options: &OpOptions) -> Result<Balance> {
        self.named(self.shared.store.credit_with(self.node, amount, options))
    }

    /// As [`debit`](Budget::debit), with [`OpOptions`]: with an idempotency key, a retry (same
    /// key, node and amount) debits nothing and answers with the node's balance now (see
    /// [`crate::idempotency`]).
    ///
    /// ```
    /// use budget_guard::idempotency::{IdempotencyKey, OpOptions};
    /// use budget_guard::{Amount, Budget, Limit, Unit};
    /// # fn main() -> budget_guard::Result<()> {
    /// let wallet = Budget::builder("wallet", Limit::hard(Amount::usd("5")?)).build()?;
    /// let refund = OpOptions::new().idempotency_key(IdempotencyKey::new("refund-12")?);
    /// wallet.debit_with(Amount::usd("2")?, &refund)?;
    /// wallet.debit_with(Amount::usd("2")?, &refund)?;
    /// assert_eq!(wallet.balance(Unit::Usd)?.remaining, Some(Amount::usd("3")?));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`debit`](Budget::debit);
    /// [`Error::IdempotencyMismatch`](crate::Error::IdempotencyMismatch) if the key was used for
    /// another request.
    pub fn debit_with(&self, amount: Amount, options: &OpOptions) -> Result<Balance> {
        let balance = self.named(self.shared.store.debit_with(self.node, amount, options))?;
        self.shared.wake_cancelled();
        Ok(balance)
    }

    /// The whole store's state (every tree in it), serializable with the `serde` feature.
    ///
    /// # Errors
    /// Only store failures.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.shared.store.snapshot()
    }
}
