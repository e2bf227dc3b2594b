//! The one error type of the network model.

/// A topology or an input that breaks a rule. `place` says where (a field, a file position, a
/// group's rule), so the message can be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetsecError {
    #[error("{place}: {message}")]
    Invalid { place: String, message: String },
    #[error("{0}")]
    Parse(String),
}

impl NetsecError {
    pub fn invalid(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            place: place.into(),
            message: message.into(),
        }
    }
}
