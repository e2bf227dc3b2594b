use thiserror::Error;

/// Why an emulation could not be built, changed, probed or removed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EmulateError {
    /// The topology cannot be emulated; nothing was created.
    #[error("this topology cannot be emulated: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// This machine lacks something the emulation needs (root, a tool); nothing was created.
    #[error("{0}")]
    Missing(String),
    /// A command failed; its standard error is kept.
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A service in a tier did not come up.
    #[error("{0}")]
    Service(String),
}

impl EmulateError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
