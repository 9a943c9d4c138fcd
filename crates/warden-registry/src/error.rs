//! [`RegistryError`]: why the registry refused something.

/// A refusal by the registry's rules. Each message names the field or the
/// rule, and never echoes more of the input than a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A field is missing, malformed or out of range.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A stage change the lifecycle does not allow.
    #[error("a model version cannot move from `{from}` to `{to}`{hint}")]
    Transition {
        /// The current stage.
        from: &'static str,
        /// The stage asked for.
        to: &'static str,
        /// How to get there instead, if there is a way.
        hint: &'static str,
    },
    /// The four-eyes rule refused a vote.
    #[error("{0}")]
    FourEyes(&'static str),
    /// The promotion request is no longer open.
    #[error("promotion request is {0}")]
    Closed(&'static str),
}

impl RegistryError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        RegistryError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
