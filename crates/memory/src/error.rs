//! The one error type of the memory domain: an input that breaks a rule.

/// An input that breaks one of the domain's rules. The message names the field, what was wrong
/// and what is accepted, because it reaches the caller unchanged (as a 400 or an `isError` tool
/// result).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
#[non_exhaustive]
pub struct ValidationError {
    /// The request field that was wrong, as the caller spelled it (`content`, `k`, `tags[2]`).
    pub field: String,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
