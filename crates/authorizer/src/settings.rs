//! What the authorizer needs to know, read from the Lambda function's environment.

use std::time::Duration;

use membrain_aws::{AwsEndpoint, Credentials};

use crate::AuthorizerError;

/// The authorizer's settings. [`AuthorizerSettings::from_env`] reads them as a Lambda function
/// is configured; tests and other callers may build them directly.
#[derive(Debug, Clone)]
pub struct AuthorizerSettings {
    /// The Secrets Manager secret (name or ARN) holding the key map.
    pub secret_id: String,
    /// How old the key map may get before it is read again.
    pub refresh: Duration,
    /// How old the last successful read of the key map may get before every request is denied
    /// (a key revoked in the secret must not live on while the secret cannot be read).
    pub max_staleness: Duration,
    /// The region, and the endpoint when it is not the region's public one.
    pub endpoint: AwsEndpoint,
    /// Static credentials; `None` uses the normal chain (in Lambda, the function's role).
    pub credentials: Option<Credentials>,
    /// OAuth access tokens accepted beside the keys; `None`: keys only.
    pub oauth: Option<membrain_oauth::OAuthSettings>,
}

impl AuthorizerSettings {
    pub const SECRET_VAR: &str = "MEMBRAIN_KEYS_SECRET";
    pub const REFRESH_VAR: &str = "MEMBRAIN_KEYS_REFRESH_SECS";
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
    pub const MAX_STALENESS_VAR: &str = "MEMBRAIN_KEYS_MAX_STALENESS_SECS";
    pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(15 * 60);
    pub const OAUTH_ISSUER_VAR: &str = "MEMBRAIN_OAUTH_ISSUER";
    pub const OAUTH_RESOURCE_VAR: &str = "MEMBRAIN_OAUTH_RESOURCE";

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, AuthorizerError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (an environment variable's value by name):
    ///
    /// * `MEMBRAIN_KEYS_SECRET` (required): the secret's name or ARN;
    /// * `MEMBRAIN_KEYS_REFRESH_SECS` (default 60): seconds between reloads of the key map;
    /// * `MEMBRAIN_KEYS_MAX_STALENESS_SECS` (default 900): after this many seconds without a
    ///   successful reload, every request is denied;
    /// * `AWS_REGION`, else `AWS_DEFAULT_REGION` (Lambda sets `AWS_REGION`);
    /// * `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL` (optional): where Secrets
    ///   Manager calls go instead of the region's public endpoint.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AuthorizerError> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let secret_id = set(Self::SECRET_VAR).ok_or(AuthorizerError::MissingSetting {
            var: Self::SECRET_VAR,
            fix: "set it to the name or ARN of the Secrets Manager secret that holds the key map",
        })?;
        let refresh = seconds_at_least_one(
            &set,
            Self::REFRESH_VAR,
            Self::DEFAULT_REFRESH,
            "use a whole number of seconds, at least 1 (default 60)",
        )?;
        let max_staleness = seconds_at_least_one(
            &set,
            Self::MAX_STALENESS_VAR,
            Self::DEFAULT_MAX_STALENESS,
            "use a whole number of seconds, at least 1 (default 900: refuse every key after 15 \
             minutes without a successful read of the secret)",
        )?;
        let region = set("AWS_REGION")
            .or_else(|| set("AWS_DEFAULT_REGION"))
            .ok_or(AuthorizerError::MissingSetting {
                var: "AWS_REGION",
                fix: "set it to the secret's region (Lambda sets it for every function)",
            })?;
        // The SDK reads these too; reading them here lets messages name the real endpoint.
        let endpoint_url =
            set("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| set("AWS_ENDPOINT_URL"));
        let oauth = match set(Self::OAUTH_ISSUER_VAR) {
            None => None,
            Some(issuer) => {
                let resource =
                    set(Self::OAUTH_RESOURCE_VAR).ok_or(AuthorizerError::MissingSetting {
                        var: Self::OAUTH_RESOURCE_VAR,
                        fix: "with MEMBRAIN_OAUTH_ISSUER, set it to the MCP server's public URL \
                          (https://<api id>.execute-api.<region>.amazonaws.com/mcp), which tokens \
                          must be issued for",
                    })?;
                let mut oauth = membrain_oauth::OAuthSettings::new(issuer.trim(), resource.trim());
                oauth.jwks_url = set("MEMBRAIN_OAUTH_JWKS_URL").map(|url| url.trim().to_owned());
                if let Some(claim) = set("MEMBRAIN_OAUTH_TENANT_CLAIM") {
                    oauth.tenant_claim = claim.trim().to_owned();
                }
                oauth.validate().map_err(AuthorizerError::OAuth)?;
                Some(oauth)
            }
        };
        Ok(Self {
            secret_id: secret_id.trim().to_owned(),
            refresh,
            max_staleness,
            endpoint: AwsEndpoint::new(region.trim(), endpoint_url),
            credentials: None,
            oauth,
        })
    }
}

/// A whole number of seconds, at least 1, from `var`; `default` when it is not set.
fn seconds_at_least_one(
    set: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
    fix: &'static str,
) -> Result<Duration, AuthorizerError> {
    let Some(text) = set(var) else {
        return Ok(default);
    };
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds >= 1 => Ok(Duration::from_secs(seconds)),
        _ => Err(AuthorizerError::InvalidSetting {
            var,
            value: text,
            fix,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(env: &[(&str, &str)], expected: Result<(&str, u64, &str, Option<&str>), &str>) {
        let lookup = |name: &str| {
            env.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        };
        let actual = AuthorizerSettings::from_lookup(lookup)
            .map(|s| {
                (
                    s.secret_id,
                    s.refresh.as_secs(),
                    s.endpoint.region,
                    s.endpoint.endpoint_url,
                )
            })
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(secret, refresh, region, url)| {
                (
                    secret.to_owned(),
                    refresh,
                    region.to_owned(),
                    url.map(str::to_owned),
                )
            })
            .map_err(str::to_owned);
        assert_eq!(actual, expected, "for {env:?}");
    }

    #[test]
    fn settings_come_from_the_environment() {
        let secret = ("MEMBRAIN_KEYS_SECRET", "membrain/api-keys");
        let region = ("AWS_REGION", "eu-west-1");
        check(
            &[secret, region],
            Ok(("membrain/api-keys", 60, "eu-west-1", None)),
        );
        check(
            &[
                secret,
                ("AWS_DEFAULT_REGION", "us-east-2"),
                ("MEMBRAIN_KEYS_REFRESH_SECS", " 300 "),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ],
            Ok((
                "membrain/api-keys",
                300,
                "us-east-2",
                Some("http://127.0.0.1:5000"),
            )),
        );
        check(
            &[
                secret,
                region,
                ("AWS_ENDPOINT_URL", "http://general"),
                (
                    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                    "https://vpce-1.secretsmanager",
                ),
            ],
            Ok((
                "membrain/api-keys",
                60,
                "eu-west-1",
                Some("https://vpce-1.secretsmanager"),
            )),
        );
        check(
            &[region, ("MEMBRAIN_KEYS_SECRET", " ")],
            Err(
                "MEMBRAIN_KEYS_SECRET is not set: set it to the name or ARN of the Secrets \
                 Manager secret that holds the key map",
            ),
        );
        check(
            &[secret],
            Err(
                "AWS_REGION is not set: set it to the secret's region (Lambda sets it for every \
                 function)",
            ),
        );
        for bad in ["0", "-5", "1m", "1.5"] {
            check(
                &[secret, region, ("MEMBRAIN_KEYS_REFRESH_SECS", bad)],
                Err(&format!(
                    "MEMBRAIN_KEYS_REFRESH_SECS={bad:?} is not valid: use a whole number of \
                     seconds, at least 1 (default 60)"
                )),
            );
        }
    }

    #[test]
    fn a_key_map_too_long_unread_denies_after_the_maximum_staleness() {
        let read = |extra: Option<(&str, &str)>| {
            let env = [
                ("MEMBRAIN_KEYS_SECRET", "membrain/api-keys"),
                ("AWS_REGION", "eu-west-1"),
            ];
            AuthorizerSettings::from_lookup(|name| {
                env.iter()
                    .chain(extra.iter())
                    .find(|(var, _)| *var == name)
                    .map(|(_, value)| (*value).to_owned())
            })
        };
        let defaults = read(None).expect("defaults");
        assert_eq!(defaults.max_staleness, Duration::from_secs(900));
        let set = read(Some(("MEMBRAIN_KEYS_MAX_STALENESS_SECS", " 120 "))).expect("120");
        assert_eq!(set.max_staleness, Duration::from_secs(120));
        let error = read(Some(("MEMBRAIN_KEYS_MAX_STALENESS_SECS", "0"))).expect_err("zero");
        assert!(
            error.to_string().starts_with(
                "MEMBRAIN_KEYS_MAX_STALENESS_SECS=\"0\" is not valid: use a whole number"
            ),
            "{error}"
        );
    }
}
