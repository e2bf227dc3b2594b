//! The custom authorizer of the `gateway` profile: an AWS Lambda function that API Gateway (HTTP
//! API) calls before each request, which checks the caller's API key against a key map kept in
//! AWS Secrets Manager.
//!
//! * [`authorize`] decides one request: an HTTP API authorizer event (payload format 2.0) in, a
//!   simple response out, `{"isAuthorized": true, "context": {"tenant": "acme"}}` or
//!   `{"isAuthorized": false}`. It reads `x-api-key`, else `Authorization: Bearer <key>`.
//! * [`run`] is the whole function: it reads [`AuthorizerSettings`], loads the key map once per
//!   Lambda container ([`membrain_auth::RefreshingKeys`] over
//!   [`membrain_secrets::SecretsManagerKeyMap`], reloaded every refresh interval and when an
//!   unknown key arrives, denying everyone once it has not been read for the maximum
//!   staleness), and serves invocations through the official `lambda_runtime`.
//!   [`key_resolver`] and [`serve`] are its two halves.
//!
//! ```no_run
//! # async fn example() -> Result<(), membrain_authorizer::AuthorizerError> {
//! use membrain_authorizer::{AuthorizerSettings, run};
//!
//! run(AuthorizerSettings::from_env()?).await
//! # }
//! ```
//!
//! # Settings (environment of the Lambda function)
//!
//! | Variable | Meaning |
//! | --- | --- |
//! | `MEMBRAIN_KEYS_SECRET` | required: name or ARN of the secret; its `SecretString` is `{"<api key>": "<tenant>", ...}` |
//! | `MEMBRAIN_KEYS_REFRESH_SECS` | seconds between reloads of the key map (default 60): a removed key stops within this |
//! | `MEMBRAIN_KEYS_MAX_STALENESS_SECS` | seconds without a successful reload after which every request is denied (default 900) |
//! | `AWS_REGION` | the secret's region (Lambda sets it) |
//! | `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL` | optional: another Secrets Manager endpoint |
//! | `MEMBRAIN_OAUTH_ISSUER` | optional: also accept OAuth access tokens (JWTs in `Authorization: Bearer`) from this issuer |
//! | `MEMBRAIN_OAUTH_RESOURCE` | with the issuer: the MCP URL tokens must be issued for (their audience) |
//! | `MEMBRAIN_OAUTH_JWKS_URL`, `MEMBRAIN_OAUTH_TENANT_CLAIM` | optional: where the issuer's keys are (default: its metadata), the claim naming the tenant (default `membrain_tenant`) |
//!
//! Credentials come from the function's role, which needs `secretsmanager:GetSecretValue` on the
//! secret (and `kms:Decrypt` when it is encrypted with a customer managed key). A function in
//! the VPC reaches Secrets Manager through the profile's `secretsmanager` interface endpoint.
//!
//! # Configuring API Gateway
//!
//! A Lambda authorizer on the HTTP API with payload format version **2.0** and **simple
//! responses** enabled. The identity source decides what API Gateway checks first and caches
//! on: `$request.header.x-api-key` (callers must send `x-api-key`; results may be cached, and a
//! revoked key then lives up to the cache TTL longer), or none with caching off (callers may also
//! send `Authorization: Bearer`). The integration can pass the tenant on as
//! `$context.authorizer.tenant`.
//!
//! # Keys in logs
//!
//! Nothing here logs a key, a header or the event. `lambda_runtime` logs an event it cannot
//! parse at TRACE level only: never enable TRACE for `lambda_runtime` in production.
//!
//! Architecture invariant: this crate is wiring and wire format only. What a key map is and
//! when it is reloaded belong to `membrain-auth`; reading the secret to `membrain-secrets`.

mod authorize;
mod settings;

use std::convert::Infallible;
use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use membrain_auth::{AuthError, KeyResolver, RefreshSettings, RefreshingKeys};
use membrain_oauth::TokenValidator;
use membrain_secrets::SecretsManagerKeyMap;
use serde_json::Value;

pub use authorize::{AuthorizerContext, AuthorizerResponse, authorize, authorize_with};
pub use settings::AuthorizerSettings;

/// Why the authorizer could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizerError {
    #[error("{var} is not set: {fix}")]
    MissingSetting {
        var: &'static str,
        fix: &'static str,
    },
    #[error("{var}={value:?} is not valid: {fix}")]
    InvalidSetting {
        var: &'static str,
        value: String,
        fix: &'static str,
    },
    /// The key map could not be loaded at start.
    #[error("cannot load the API keys: {0}")]
    Keys(AuthError),
    /// `lambda_runtime` needs the variables Lambda sets; without them it would panic.
    #[error(
        "not running inside AWS Lambda ({var} is not set): deploy this as the authorizer \
         function of the HTTP API, whose runtime sets it"
    )]
    NotInLambda { var: &'static str },
    #[error("the Lambda runtime stopped: {0}")]
    Runtime(lambda_runtime::Error),
    /// MEMBRAIN_OAUTH_* name settings that cannot be used.
    #[error("the OAuth settings (MEMBRAIN_OAUTH_*) cannot be used: {0}")]
    OAuth(membrain_oauth::SettingsError),
}

/// Runs the authorizer in a Lambda function until the runtime stops: loads the key map (a
/// failure here fails the function's start, which Lambda reports and retries), then answers
/// every invocation with [`authorize`].
///
/// Logging is the caller's: set up a `tracing` subscriber first (JSON to stdout suits
/// CloudWatch Logs).
pub async fn run(settings: AuthorizerSettings) -> Result<(), AuthorizerError> {
    // Checked before the keys are loaded, so a run outside Lambda fails at once.
    check_lambda_environment()?;
    let keys = key_resolver(&settings).await?;
    let tokens = settings
        .oauth
        .clone()
        .map(TokenValidator::new)
        .transpose()
        .map_err(AuthorizerError::OAuth)?;
    serve_with(Arc::new(keys), tokens).await
}

/// The production key resolver: the secret's key map, loaded now and kept fresh.
pub async fn key_resolver(
    settings: &AuthorizerSettings,
) -> Result<RefreshingKeys, AuthorizerError> {
    let source = SecretsManagerKeyMap::connect(
        settings.secret_id.clone(),
        &settings.endpoint,
        settings.credentials.clone(),
    )
    .await;
    let refresh = RefreshSettings {
        max_staleness: settings.max_staleness,
        ..RefreshSettings::every(settings.refresh)
    };
    RefreshingKeys::new(Arc::new(source), refresh)
        .await
        .map_err(AuthorizerError::Keys)
}

/// Answers Lambda invocations with [`authorize`] over `resolver` until the runtime stops.
pub async fn serve(resolver: Arc<dyn KeyResolver>) -> Result<(), AuthorizerError> {
    serve_with(resolver, None).await
}

/// [`serve`], also accepting the access tokens `tokens` checks ([`authorize_with`]).
pub async fn serve_with(
    resolver: Arc<dyn KeyResolver>,
    tokens: Option<TokenValidator>,
) -> Result<(), AuthorizerError> {
    check_lambda_environment()?;
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let resolver = Arc::clone(&resolver);
        let tokens = tokens.clone();
        async move {
            Ok::<_, Infallible>(
                authorize_with(&event.payload, resolver.as_ref(), tokens.as_ref()).await,
            )
        }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(AuthorizerError::Runtime)
}

fn check_lambda_environment() -> Result<(), AuthorizerError> {
    const REQUIRED: [&str; 4] = [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ];
    match REQUIRED.into_iter().find(|var| std::env::var(var).is_err()) {
        Some(var) => Err(AuthorizerError::NotInLambda { var }),
        None => Ok(()),
    }
}
