//! `Endpoint` and `EndpointKey`: where a service is and how to authenticate to it, validated once
//! so every call can build its URL without failing.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::error::LlmError;

/// A secret key for an OpenAI-compatible service, sent as `Authorization: Bearer <key>`.
///
/// Its `Debug` shows `EndpointKey(<redacted>)` and it has no `Display`, so it cannot reach a log
/// by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointKey(String);

impl EndpointKey {
    /// Wraps a key. Surrounding white space is dropped; an empty key is `None` (no key).
    pub fn new(raw: impl Into<String>) -> Option<Self> {
        let raw = raw.into();
        let trimmed = raw.trim();
        (!trimmed.is_empty()).then(|| Self(trimmed.to_owned()))
    }

    /// The key itself, for the one place that sends it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EndpointKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("EndpointKey(<redacted>)")
    }
}

/// An OpenAI-compatible service: its API root, an optional key, and how long one call may take.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The API root without a trailing slash, e.g. `http://127.0.0.1:8080/v1`.
    base_url: String,
    api_key: Option<EndpointKey>,
    timeout: Option<Duration>,
}

impl Endpoint {
    /// Checks that `base_url` is an absolute `http` or `https` URL without query or credentials.
    /// The operation's path is appended to it: `{base_url}/embeddings`.
    pub fn new(base_url: &str) -> Result<Self, LlmError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let invalid = |reason: &str| LlmError::InvalidUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = Url::parse(trimmed).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("only http:// and https:// are supported"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it names no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid(
                "it has a query or fragment; give the API root only",
            ));
        }
        // A key in the URL would be printed in every error message; it belongs in the key setting.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "it carries credentials; pass the key separately, as a bearer token",
            ));
        }
        Ok(Self {
            base_url: trimmed.to_owned(),
            api_key: None,
            timeout: None,
        })
    }

    /// Sends `key` as a bearer token on every call (`None`: no `Authorization` header).
    pub fn with_api_key(mut self, key: Option<EndpointKey>) -> Self {
        self.api_key = key;
        self
    }

    /// How long one call may take, from connecting to the last byte of the answer. Each client
    /// has its own default.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The API root, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn api_key(&self) -> Option<&EndpointKey> {
        self.api_key.as_ref()
    }

    pub(crate) fn timeout_or(&self, default: Duration) -> Duration {
        self.timeout.unwrap_or(default)
    }

    /// The URL of one operation, e.g. `operation_url("embeddings")`.
    pub(crate) fn operation_url(&self, operation: &str) -> String {
        format!("{}/{operation}", self.base_url)
    }
}

/// Connecting should be quick even when answering is not: a wrong host fails in seconds.
pub(crate) fn connect_timeout(call_timeout: Duration) -> Duration {
    call_timeout.min(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        let cases: [(&str, Result<&str, &str>); 8] = [
            ("http://127.0.0.1:8080/v1", Ok("http://127.0.0.1:8080/v1")),
            (
                "https://api.openai.com/v1/ ",
                Ok("https://api.openai.com/v1"),
            ),
            (
                "http://localhost:11434/v1//",
                Ok("http://localhost:11434/v1"),
            ),
            ("127.0.0.1:8080/v1", Err("")),
            ("ftp://host/v1", Err("only http")),
            ("http://host/v1?x=1", Err("query")),
            ("http://user:sk-123@host/v1", Err("credentials")),
            ("", Err("")),
        ];
        for (input, expected) in cases {
            match (Endpoint::new(input), expected) {
                (Ok(endpoint), Ok(base)) => assert_eq!(endpoint.base_url(), base, "{input}"),
                (Err(error), Err(needle)) => {
                    let message = error.to_string();
                    assert!(message.contains(needle), "{input}: {message}");
                    assert!(
                        message.contains("e.g. http://127.0.0.1:8080/v1"),
                        "{message}"
                    );
                }
                (outcome, expected) => panic!("{input}: got {outcome:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn keys_are_trimmed_and_never_shown() {
        assert_eq!(EndpointKey::new("   "), None);
        let key = EndpointKey::new(" sk-secret ").expect("a key");
        assert_eq!(key.expose_secret(), "sk-secret");
        let endpoint = Endpoint::new("http://127.0.0.1:1/v1")
            .expect("valid")
            .with_api_key(Some(key));
        let shown = format!("{endpoint:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
