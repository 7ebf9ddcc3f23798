//! Key layout: every key of one budget tree starts with the same hash tag, `{prefix:tree}`, so
//! every script touches one Redis Cluster slot, and several trees or applications can share one
//! Redis by using different prefixes or tree names.

use crate::error::{Error, Result};

/// The longest prefix or tree name accepted (keys stay short and bounded).
const MAX_PART_LEN: usize = 128;

/// The key namespace of one tree: `{prefix:tree}`. Scripts derive every key from it (node
/// hashes `…:n:<id>`, holds `…:h:<id>`, the deadline index `…:exp`, idempotency keys `…:k:<key>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Namespace(String);

impl Namespace {
    /// The namespace of `tree` under `prefix`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an empty or overlong part, or one containing braces (which
    /// would change the hash tag), `:` (which would make two namespaces overlap) or control
    /// characters.
    pub(super) fn new(prefix: &str, tree: &str) -> Result<Self> {
        for part in [prefix, tree] {
            let reason = if part.is_empty() {
                Some("must not be empty")
            } else if part.len() > MAX_PART_LEN {
                Some("longer than 128 bytes")
            } else if part.contains(['{', '}', ':']) || part.chars().any(char::is_control) {
                Some("must not contain '{', '}', ':' or control characters")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::InvalidName {
                    name: part.to_owned(),
                    reason,
                });
            }
        }
        Ok(Namespace(format!("{{{prefix}:{tree}}}")))
    }

    /// The tag itself, passed to every script as `KEYS[1]`.
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hash_tag_per_tree() {
        assert_eq!(
            Namespace::new("budget-guard", "acme").unwrap().as_str(),
            "{budget-guard:acme}"
        );
        assert!(matches!(
            Namespace::new("bg", "a}b"),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            Namespace::new("", "acme"),
            Err(Error::InvalidName { .. })
        ));
    }
}
