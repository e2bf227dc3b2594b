//! Why a token was not accepted, and what the server answers for it.

use http::StatusCode;

/// Why [`crate::TokenValidator::validate`] did not accept a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not good for this server (malformed, unsigned or badly signed, expired,
    /// another issuer's or another resource's, no valid tenant…): answer 401 with
    /// `error="invalid_token"`. The description is safe to send to the client and to log: it
    /// never contains the token or any part of it.
    #[error("invalid access token: {description}")]
    Invalid { description: String },
    /// The issuer's keys cannot be had now (unreachable, failing, or answering nonsense), so no
    /// token can be checked: answer 503 and log the cause (which names the URL, never a token).
    #[error("cannot check access tokens now: {cause}")]
    Unavailable { cause: String },
}

impl TokenError {
    pub(crate) fn invalid(description: impl Into<String>) -> Self {
        Self::Invalid {
            description: description.into(),
        }
    }

    pub(crate) fn unavailable(cause: impl Into<String>) -> Self {
        Self::Unavailable {
            cause: cause.into(),
        }
    }

    /// 401 for [`TokenError::Invalid`], 503 for [`TokenError::Unavailable`].
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::UNAUTHORIZED,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The `WWW-Authenticate` value for this error's answer: see [`crate::www_authenticate`].
    pub fn www_authenticate(&self, metadata_url: &str) -> String {
        crate::www_authenticate(metadata_url, Some(self))
    }
}
