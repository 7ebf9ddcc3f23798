//! [`Labels`]: who and what a hold's spend is attributed to (model, agent, task, free-form tags).

use std::fmt;
use std::sync::Arc;

use crate::error::Error;

/// Most tags one hold may carry.
pub const MAX_TAGS: usize = 8;

/// Longest label value accepted, in bytes.
pub const MAX_LABEL_LEN: usize = 128;

/// Attribution labels of a hold and its spend: the model called, the agent and the task (or
/// session) that spent, and free-form tags such as `"feature:search"`.
///
/// Labels never change the money rules; they only decide how spend is grouped in
/// [`Report`](crate::report::Report)s and what [`SpendRecord`](crate::report::SpendRecord)s carry.
/// Set them when reserving ([`Budget::reserve_labeled`](crate::Budget::reserve_labeled)) or on the
/// live guard ([`Guard::label`](crate::Guard::label));
/// [`Budget::reserve_for`](crate::Budget::reserve_for) labels the model itself.
///
/// ```
/// use budget_guard::Labels;
/// let labels = Labels::new()
///     .model("gpt-4o")
///     .agent("researcher")
///     .task("session-17")
///     .tag("feature:search");
/// assert_eq!(labels.model_name(), Some("gpt-4o"));
/// assert_eq!(labels.tags().len(), 1);
/// assert!(labels.validate().is_ok());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Labels {
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    model: Option<Arc<str>>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    agent: Option<Arc<str>>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    task: Option<Arc<str>>,
    /// Sorted and without duplicates, so equal label sets group together.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    tags: Vec<Arc<str>>,
}

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels::default()
    }

    /// Sets the model (`"gpt-4o"`).
    #[must_use]
    pub fn model(mut self, model: impl AsRef<str>) -> Self {
        self.model = Some(model.as_ref().into());
        self
    }

    /// Sets the agent (`"researcher"`).
    #[must_use]
    pub fn agent(mut self, agent: impl AsRef<str>) -> Self {
        self.agent = Some(agent.as_ref().into());
        self
    }

    /// Sets the task or session (`"session-17"`).
    #[must_use]
    pub fn task(mut self, task: impl AsRef<str>) -> Self {
        self.task = Some(task.as_ref().into());
        self
    }

    /// Adds a free-form tag (`"feature:search"`); adding a tag twice keeps one.
    #[must_use]
    pub fn tag(mut self, tag: impl AsRef<str>) -> Self {
        let tag: Arc<str> = tag.as_ref().into();
        if let Err(at) = self.tags.binary_search(&tag) {
            self.tags.insert(at, tag);
        }
        self
    }

    /// The model, if set.
    pub fn model_name(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The agent, if set.
    pub fn agent_name(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    /// The task or session, if set.
    pub fn task_name(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The tags, sorted.
    pub fn tags(&self) -> &[Arc<str>] {
        &self.tags
    }

    pub(crate) fn model_arc(&self) -> Option<&Arc<str>> {
        self.model.as_ref()
    }

    pub(crate) fn agent_arc(&self) -> Option<&Arc<str>> {
        self.agent.as_ref()
    }

    pub(crate) fn task_arc(&self) -> Option<&Arc<str>> {
        self.task.as_ref()
    }

    /// `true` without any label.
    pub fn is_empty(&self) -> bool {
        self.model.is_none() && self.agent.is_none() && self.task.is_none() && self.tags.is_empty()
    }

    /// These labels with `other`'s on top: `other`'s model, agent and task replace these where
    /// set, and its tags are added.
    #[must_use]
    pub fn merged(mut self, other: &Labels) -> Self {
        if other.model.is_some() {
            self.model.clone_from(&other.model);
        }
        if other.agent.is_some() {
            self.agent.clone_from(&other.agent);
        }
        if other.task.is_some() {
            self.task.clone_from(&other.task);
        }
        for tag in &other.tags {
            self = self.tag(tag);
        }
        self
    }

    /// Checks the labels: every value non-empty, at most [`MAX_LABEL_LEN`] bytes and free of
    /// control characters; at most [`MAX_TAGS`] tags. Reports and records keep label values, so
    /// the bounds keep their memory bounded too.
    ///
    /// # Errors
    /// [`Error::InvalidLabel`] naming the first offending value.
    pub fn validate(&self) -> Result<(), Error> {
        let values = [&self.model, &self.agent, &self.task]
            .into_iter()
            .flatten()
            .chain(&self.tags);
        for value in values {
            let reason = if value.is_empty() {
                Some("labels cannot be empty")
            } else if value.len() > MAX_LABEL_LEN {
                Some("labels are at most 128 bytes")
            } else if value.chars().any(char::is_control) {
                Some("labels cannot contain control characters")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::InvalidLabel {
                    label: value.to_string(),
                    reason,
                });
            }
        }
        if self.tags.len() > MAX_TAGS {
            return Err(Error::InvalidLabel {
                label: self.tags[MAX_TAGS].to_string(),
                reason: "at most 8 tags per hold",
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Labels");
        for (name, value) in [
            ("model", &self.model),
            ("agent", &self.agent),
            ("task", &self.task),
        ] {
            if let Some(value) = value {
                out.field(name, value);
            }
        }
        if !self.tags.is_empty() {
            out.field("tags", &self.tags);
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sorted_and_deduplicated_and_merge_overrides() {
        let base = Labels::new().model("a").tag("z").tag("b").tag("z");
        assert_eq!(base.tags().len(), 2);
        assert_eq!(&*base.tags()[0], "b");
        let merged = base.merged(&Labels::new().model("m").agent("x").tag("c"));
        assert_eq!(merged.model_name(), Some("m"));
        assert_eq!(merged.agent_name(), Some("x"));
        assert_eq!(merged.tags().len(), 3);
    }

    #[test]
    fn bad_labels_are_typed_errors() {
        assert!(matches!(
            Labels::new().agent("").validate(),
            Err(Error::InvalidLabel { .. })
        ));
        assert!(Labels::new().tag("x".repeat(129)).validate().is_err());
        assert!(Labels::new().task("a\nb").validate().is_err());
        let many = (0..9).fold(Labels::new(), |labels, i| labels.tag(format!("t{i}")));
        assert!(many.validate().is_err());
    }
}
