//! [`HttpLimits`]: the timeouts and caps of one server, with their defaults and their checks.

use std::time::Duration;

/// The timeouts and caps [`crate::serve`] applies to every connection and request.
///
/// The defaults suit a server behind an AWS load balancer (its idle timeout is 60 s) on a task
/// with a file-descriptor limit in the tens of thousands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a client may take to send a request head (the request line and headers), from
    /// the connection's opening or from the first byte of a later request. Slow-header clients
    /// (slowloris) are disconnected after it.
    pub header_timeout: Duration,
    /// How long a connection may sit idle between requests, and how long a client may leave a
    /// response unread, before it is closed. Longer than the load balancer's own idle timeout
    /// (AWS ALB: 60 s), so that the balancer, not the server, closes idle connections: a server
    /// that closes first races the balancer reusing the connection, and the balancer answers
    /// that request with a 502. AWS recommends a target keep-alive longer than the balancer's.
    pub idle_timeout: Duration,
    /// The longest pause while a request body arrives (between two pieces of it, as nginx's
    /// `client_body_timeout`): a body that stalls longer is answered 408 `body_timeout`.
    pub body_timeout: Duration,
    /// The longest a request may take, from its head to its response: a request still running
    /// then is stopped and answered 503 `deadline_exceeded`. The load balancer's idle timeout
    /// (60 s) bounds a plain JSON response anyway; answering at it means the caller hears why.
    pub request_timeout: Duration,
    /// Connections open at once. At the cap the server stops accepting (new clients wait in the
    /// kernel's queue) until one closes. Keep it well below the process's open-file limit.
    pub max_connections: usize,
    /// Requests handled at once. Beyond it a request is answered at once with 503 `busy` and
    /// `Retry-After: 1`, rather than queued without bound.
    pub max_concurrent_requests: usize,
}

impl HttpLimits {
    /// The largest cap accepted: more connections than any process can open, and more requests
    /// at once than any task can serve.
    pub const MAX_CAP: usize = 1_000_000;
    /// The longest timeout accepted; longer ones are mistakes (and overflow deadlines).
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

    /// Checks every value: timeouts above zero and at most a day, caps from 1 to [`Self::MAX_CAP`].
    pub fn validate(&self) -> Result<(), HttpLimitsError> {
        let timeouts = [
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            ("body_timeout", self.body_timeout),
            ("request_timeout", self.request_timeout),
        ];
        for (name, value) in timeouts {
            if value.is_zero() || value > Self::MAX_TIMEOUT {
                return Err(HttpLimitsError::Timeout { name, value });
            }
        }
        let caps = [
            ("max_connections", self.max_connections),
            ("max_concurrent_requests", self.max_concurrent_requests),
        ];
        for (name, value) in caps {
            if value == 0 || value > Self::MAX_CAP {
                return Err(HttpLimitsError::Cap {
                    name,
                    value,
                    max: Self::MAX_CAP,
                });
            }
        }
        Ok(())
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            // 75 s > the AWS ALB's default 60 s idle timeout: see the field's documentation.
            idle_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_concurrent_requests: 512,
        }
    }
}

/// A value of [`HttpLimits`] that cannot be served with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpLimitsError {
    #[error("the HTTP {name} must be more than zero and at most a day (it is {value:?})")]
    Timeout { name: &'static str, value: Duration },
    #[error("the HTTP {name} must be between 1 and {max} (it is {value})")]
    Cap {
        name: &'static str,
        value: usize,
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes one value of the defaults.
    type Change = fn(&mut HttpLimits);

    #[test]
    fn defaults_are_valid_and_zeroes_are_not() {
        assert_eq!(HttpLimits::default().validate(), Ok(()));
        let cases: [(Change, &str); 6] = [
            (
                |l| l.header_timeout = Duration::ZERO,
                "the HTTP header_timeout must be more than zero and at most a day (it is 0ns)",
            ),
            (
                |l| l.idle_timeout = Duration::from_secs(86_401),
                "the HTTP idle_timeout must be more than zero and at most a day (it is 86401s)",
            ),
            (
                |l| l.body_timeout = Duration::ZERO,
                "the HTTP body_timeout must be more than zero and at most a day (it is 0ns)",
            ),
            (
                |l| l.request_timeout = Duration::ZERO,
                "the HTTP request_timeout must be more than zero and at most a day (it is 0ns)",
            ),
            (
                |l| l.max_connections = 0,
                "the HTTP max_connections must be between 1 and 1000000 (it is 0)",
            ),
            (
                |l| l.max_concurrent_requests = 0,
                "the HTTP max_concurrent_requests must be between 1 and 1000000 (it is 0)",
            ),
        ];
        for (change, expected) in cases {
            let mut limits = HttpLimits::default();
            change(&mut limits);
            let error = limits.validate().expect_err(expected);
            assert_eq!(error.to_string(), expected);
        }
    }
}
