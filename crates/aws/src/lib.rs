//! What every Membrain AWS client shares: an SDK configuration that fails fast (short timeouts,
//! few retries, an optional endpoint such as a local moto server), and the moto test harness
//! (`testing`, feature `test-support`).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

pub use aws_config::SdkConfig as Config;
pub use aws_smithy_runtime_api::client::result::SdkError;
pub use aws_smithy_types::error::display::DisplayErrorContext;
pub use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[cfg(feature = "test-support")]
pub mod testing;

/// Where AWS calls go: the region, and optionally an endpoint that replaces the region's public
/// one (a VPC endpoint's DNS name, or a local stand-in such as moto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsEndpoint {
    pub region: String,
    pub endpoint_url: Option<String>,
}

impl AwsEndpoint {
    pub fn new(region: impl Into<String>, endpoint_url: Option<String>) -> Self {
        Self {
            region: region.into(),
            endpoint_url,
        }
    }

    /// The endpoint calls of `service` (`ec2`, `secretsmanager`…) go to, for messages.
    pub fn describe(&self, service: &str) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://{service}.{}.amazonaws.com", self.region))
    }
}

/// Static credentials, for tests and callers that resolved credentials themselves.
pub use aws_credential_types::Credentials;

/// A TCP connection that takes longer than this is not coming.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of one call.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// One call with its retries.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The first try and two retries, backing off from 200 ms: throttling gets a second chance, a
/// dead endpoint is reported within a few seconds.
const MAX_ATTEMPTS: u32 = 3;

/// The SDK configuration for `endpoint`: credentials from the normal chain (environment, profile,
/// container or instance role) unless `credentials` is given; fail-fast timeouts and retries.
pub async fn sdk_config(endpoint: &AwsEndpoint, credentials: Option<Credentials>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(endpoint.region.clone()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(2)),
        );
    if let Some(url) = &endpoint.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}

/// Whether an SDK error means the endpoint could not be reached at all (refused, timed out,
/// unresolvable), as opposed to an answer with an error in it.
pub fn is_unreachable<E, R>(error: &SdkError<E, R>) -> bool {
    matches!(
        error,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
    )
}

/// An SDK error in one line: the service's code and message when it answered, the whole chain of
/// causes when it did not.
pub fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(error).to_string(),
    }
}
