//! `LlmError`, the one error type of this crate. Every message names the service and URL and
//! says what to check, because the person reading it configured that URL somewhere else.

use std::fmt;
use std::time::Duration;

use membrain_embed::EmbedError;

/// Which kind of service a call went to; it starts every message about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `POST {base}/embeddings`.
    Embeddings,
    /// `POST {base}/chat/completions`.
    Chat,
}

impl fmt::Display for Service {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Embeddings => "the embedding service",
            Self::Chat => "the language model",
        })
    }
}

/// Everything that can go wrong while configuring or calling a service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The configured base URL cannot be used.
    #[error(
        "{url:?} is not a usable base URL: {reason}; give the API root of an OpenAI-compatible \
         service, e.g. http://127.0.0.1:8080/v1"
    )]
    InvalidUrl { url: String, reason: String },

    /// The HTTP client could not be set up (TLS roots, for instance).
    #[error("cannot set up an HTTP client: {detail}")]
    Client { detail: String },

    /// A call was made and failed; `problem` says how.
    #[error("{service} at {url}: {problem}")]
    Call {
        service: Service,
        /// The full URL called, e.g. `http://127.0.0.1:8080/v1/embeddings`.
        url: String,
        problem: CallProblem,
    },
}

/// How a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallProblem {
    /// No connection, or the connection broke.
    #[error("cannot reach it ({detail}); is the service running, and is the URL right?")]
    Unreachable { detail: String },

    /// No complete answer in time.
    #[error(
        "no answer within {} s; is the service overloaded or the model still loading?",
        after.as_secs_f32()
    )]
    Timeout { after: Duration },

    /// An HTTP status other than 2xx; `message` is the service's own error text or an excerpt of
    /// the body.
    #[error("answered HTTP {status}: {message}{}", status_hint(*status))]
    Status { status: u16, message: String },

    /// A 2xx answer whose body is not the expected JSON.
    #[error("answered with a body that is not an OpenAI-compatible answer ({detail})")]
    Malformed { detail: String },

    /// An embeddings answer with more or fewer vectors than texts sent.
    #[error("returned {got} embeddings for {expected} texts")]
    WrongCount { expected: usize, got: usize },

    /// A vector whose length is not the one the embedder was set up with.
    #[error(
        "returned a vector of {got} dimensions where {expected} were expected; did the model \
         behind this URL change? (a restart probes it again)"
    )]
    WrongDimensions { expected: usize, got: usize },

    /// A vector that cannot be scaled to unit length (all zeros, or not finite).
    #[error("returned a vector that is all zeros or not finite, which cannot be normalised")]
    InvalidVector,

    /// A chat answer without text in `choices[0].message.content`.
    #[error("answered without text in choices[0].message.content")]
    EmptyAnswer,
}

/// What to check for the statuses that have one likely cause.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => "; check the API key",
        404 => {
            "; check the base URL (the API root, usually ending in /v1) and that the model exists"
        }
        429 => "; the service is rate-limiting or out of quota, try again later",
        _ => "",
    }
}

impl LlmError {
    pub(crate) fn call(service: Service, url: &str, problem: CallProblem) -> Self {
        Self::Call {
            service,
            url: url.to_owned(),
            problem,
        }
    }

    /// The problem of a failed call; `None` for configuration errors.
    pub fn problem(&self) -> Option<&CallProblem> {
        match self {
            Self::Call { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// `Embedder::embed` answers an `EmbedError`: a failed call becomes `EmbedError::Inference`
/// carrying the whole message, service and URL included, or `EmbedError::Refused` when the
/// service turned the input down (400, 413, 422), which retrying the same text cannot fix.
impl From<LlmError> for EmbedError {
    fn from(error: LlmError) -> Self {
        let refused = matches!(
            error.problem(),
            Some(CallProblem::Status {
                status: 400 | 413 | 422,
                ..
            })
        );
        if refused {
            EmbedError::Refused(error.to_string())
        } else {
            EmbedError::Inference(error.to_string())
        }
    }
}

/// The causes of a transport error, without reqwest's own top line (which repeats the URL).
pub(crate) fn transport_detail(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper and std often wrap the same text twice; say it once.
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

/// Classifies a transport error: a timeout, or a connection that failed.
pub(crate) fn transport_problem(error: &reqwest::Error, timeout: Duration) -> CallProblem {
    if error.is_timeout() {
        CallProblem::Timeout { after: timeout }
    } else {
        CallProblem::Unreachable {
            detail: transport_detail(error),
        }
    }
}

/// The most useful text of an error answer: OpenAI's `{"error": {"message": …}}` when present
/// (most compatible servers use it), otherwise the start of the body.
pub(crate) fn status_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let message = value
            .pointer("/error/message")
            .or_else(|| value.get("error"))
            .or_else(|| value.get("message"))
            .or_else(|| value.get("detail"))
            .and_then(serde_json::Value::as_str);
        if let Some(message) = message {
            return excerpt(message);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        excerpt(&text)
    }
}

/// A 2xx body that did not parse: the parser's complaint and how the body begins, which is
/// usually enough to see that the URL points at something else (an HTML page, another API).
pub(crate) fn malformed(error: &serde_json::Error, body: &[u8]) -> CallProblem {
    let text = String::from_utf8_lossy(body);
    let mut start = excerpt(&text);
    if start.chars().count() > 80 {
        start = format!("{}…", start.chars().take(80).collect::<String>());
    }
    CallProblem::Malformed {
        detail: format!("{error}; the body begins {start:?}"),
    }
}

/// At most 300 characters of `text` on one line: enough to recognise an error page or message.
pub(crate) fn excerpt(text: &str) -> String {
    const LIMIT: usize = 300;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_prefer_the_services_own_text() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}"#,
                "Incorrect API key provided",
            ),
            (br#"{"error": "model not loaded"}"#, "model not loaded"),
            (br#"{"detail": "Not Found"}"#, "Not Found"),
            (b"<html>\n  <body>Bad   gateway</body></html>", "<html> <body>Bad gateway</body></html>"),
            (b"  ", "(empty body)"),
        ];
        for (body, expected) in cases {
            assert_eq!(status_message(body), expected);
        }
        let long = "x".repeat(1000);
        assert_eq!(status_message(long.as_bytes()).chars().count(), 301);
    }

    #[test]
    fn statuses_with_one_likely_cause_say_what_to_check() {
        let message = |status| {
            CallProblem::Status {
                status,
                message: "m".into(),
            }
            .to_string()
        };
        assert!(message(401).ends_with("check the API key"));
        assert!(message(404).contains("/v1"));
        assert_eq!(message(500), "answered HTTP 500: m");
    }

    #[test]
    fn a_failed_call_becomes_an_embed_error_with_the_same_text() {
        let error = LlmError::call(
            Service::Embeddings,
            "http://127.0.0.1:9/v1/embeddings",
            CallProblem::WrongCount {
                expected: 2,
                got: 1,
            },
        );
        let text = error.to_string();
        assert_eq!(
            EmbedError::from(error).to_string(),
            format!("embedding failed: {text}")
        );
        assert_eq!(
            text,
            "the embedding service at http://127.0.0.1:9/v1/embeddings: returned 1 embeddings for 2 texts"
        );
    }
}
