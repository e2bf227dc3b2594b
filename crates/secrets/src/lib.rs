//! API key maps kept in AWS Secrets Manager, for the `gateway` profile.
//!
//! [`SecretsManagerKeyMap`] is a [`KeyMapSource`]: each `load` reads the current version
//! (`AWSCURRENT`) of one secret, whose `SecretString` is a key map,
//! `{"<api key>": "<tenant>", ...}`. Wrap it in [`membrain_auth::RefreshingKeys`] to resolve keys
//! and follow rotations (`PutSecretValue`) without a restart:
//!
//! ```no_run
//! # async fn example() -> Result<(), membrain_auth::AuthError> {
//! use std::sync::Arc;
//! use membrain_auth::{RefreshSettings, RefreshingKeys};
//! use membrain_aws::AwsEndpoint;
//! use membrain_secrets::SecretsManagerKeyMap;
//!
//! let endpoint = AwsEndpoint::new("eu-west-1", None);
//! let source = SecretsManagerKeyMap::connect("membrain/api-keys", &endpoint, None).await;
//! let keys = RefreshingKeys::new(Arc::new(source), RefreshSettings::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Errors say which secret, at which endpoint, and how to fix it; they never contain the secret's
//! text or any part of a key.
//!
//! Architecture invariant: this crate only reads the secret and hands its text to
//! [`KeyMap::parse_json`]; what a key map means, and when to reload it, stay in `membrain-auth`.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use membrain_auth::{AuthError, KEY_MAP_SHAPE, KeyMap, KeyMapSource};
use membrain_aws::{AwsEndpoint, Credentials, ProvideErrorMetadata};

/// A key map in one Secrets Manager secret's `SecretString`.
#[derive(Debug, Clone)]
pub struct SecretsManagerKeyMap {
    client: Client,
    secret_id: String,
    endpoint: AwsEndpoint,
}

impl SecretsManagerKeyMap {
    /// A source for `secret_id` (a name or an ARN), through the shared SDK configuration for
    /// `endpoint`: credentials from the normal chain (the Lambda or task role) unless given.
    pub async fn connect(
        secret_id: impl Into<String>,
        endpoint: &AwsEndpoint,
        credentials: Option<Credentials>,
    ) -> Self {
        let config = membrain_aws::sdk_config(endpoint, credentials).await;
        Self::with_client(Client::new(&config), secret_id, endpoint.clone())
    }

    /// A source over a client the caller built; `endpoint` is where that client's calls go, for
    /// messages.
    pub fn with_client(
        client: Client,
        secret_id: impl Into<String>,
        endpoint: AwsEndpoint,
    ) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            endpoint,
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    fn endpoint_url(&self) -> String {
        self.endpoint.describe("secretsmanager")
    }

    /// Why a `GetSecretValue` call failed, and what to do about it.
    fn explain(&self, error: &SdkError<GetSecretValueError>) -> AuthError {
        let secret = &self.secret_id;
        let endpoint = self.endpoint_url();
        let cause = membrain_aws::describe(error);
        let message = if membrain_aws::is_unreachable(error) {
            format!(
                "cannot reach Secrets Manager at {endpoint} to read secret {secret} ({cause}): check \
                 the network path (a secretsmanager VPC endpoint, or a NAT gateway) and the region"
            )
        } else if let Some(service_error) = error.as_service_error() {
            match service_error {
                GetSecretValueError::ResourceNotFoundException(_) => format!(
                    "Secrets Manager at {endpoint} has no secret {secret} ({cause}): create it with \
                     `aws secretsmanager create-secret --name {secret} --secret-string \
                     '{KEY_MAP_SHAPE}'`, or name an existing secret{}",
                    self.region_hint()
                ),
                GetSecretValueError::DecryptionFailure(_) => format!(
                    "Secrets Manager at {endpoint} cannot decrypt secret {secret} ({cause}): allow \
                     kms:Decrypt on the secret's KMS key to this role"
                ),
                GetSecretValueError::InvalidRequestException(_) => format!(
                    "Secrets Manager at {endpoint} refused to read secret {secret} ({cause}): if \
                     it is scheduled for deletion, restore it with `aws secretsmanager \
                     restore-secret --secret-id {secret}`"
                ),
                _ if service_error.code() == Some("AccessDeniedException") => format!(
                    "Secrets Manager at {endpoint} denied reading secret {secret} ({cause}): allow \
                     secretsmanager:GetSecretValue on it to this role"
                ),
                _ => {
                    format!("Secrets Manager at {endpoint} could not read secret {secret}: {cause}")
                }
            }
        } else {
            format!("Secrets Manager at {endpoint} could not read secret {secret}: {cause}")
        };
        AuthError::Unavailable(message)
    }

    /// An ARN names its region; a call to another region's endpoint cannot find it.
    fn region_hint(&self) -> String {
        let arn_region = self
            .secret_id
            .strip_prefix("arn:")
            .and_then(|rest| rest.split(':').nth(2));
        match arn_region {
            Some(region) if region != self.endpoint.region => format!(
                " (the ARN is in region {region}, but calls go to region {})",
                self.endpoint.region
            ),
            _ => String::new(),
        }
    }
}

#[async_trait::async_trait]
impl KeyMapSource for SecretsManagerKeyMap {
    async fn load(&self) -> Result<KeyMap, AuthError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| self.explain(&e))?;
        let Some(text) = answer.secret_string() else {
            return Err(AuthError::Unavailable(format!(
                "secret {} at {} has no SecretString (binary secrets are not read): store the key \
                 map as text with `aws secretsmanager put-secret-value --secret-id {} \
                 --secret-string '{KEY_MAP_SHAPE}'`",
                self.secret_id,
                self.endpoint_url(),
                self.secret_id
            )));
        };
        KeyMap::parse_json(text).map_err(|problem| AuthError::InvalidKeyMap {
            origin: self.describe(),
            problem,
        })
    }

    fn describe(&self) -> String {
        format!(
            "Secrets Manager secret {} at {}",
            self.secret_id,
            self.endpoint_url()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_arn_in_another_region_is_pointed_out() {
        let endpoint = AwsEndpoint::new("eu-west-1", None);
        let config = membrain_aws::sdk_config(&endpoint, None).await;
        let source = |id: &str| {
            SecretsManagerKeyMap::with_client(Client::new(&config), id, endpoint.clone())
        };
        assert_eq!(
            source("arn:aws:secretsmanager:us-east-1:123456789012:secret:keys-AbCdEf")
                .region_hint(),
            " (the ARN is in region us-east-1, but calls go to region eu-west-1)"
        );
        assert_eq!(
            source("arn:aws:secretsmanager:eu-west-1:123456789012:secret:keys-AbCdEf")
                .region_hint(),
            ""
        );
        assert_eq!(source("membrain/api-keys").region_hint(), "");
        assert_eq!(
            source("membrain/api-keys").describe(),
            "Secrets Manager secret membrain/api-keys at https://secretsmanager.eu-west-1.amazonaws.com"
        );
    }
}
