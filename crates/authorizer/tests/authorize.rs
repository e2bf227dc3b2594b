//! `authorize` on real-shaped API Gateway events, with a static resolver and with the
//! production resolver over a Secrets Manager secret in moto.

mod support;

use membrain_auth::{ApiKey, AuthError, KeyResolver, StaticKey};
use membrain_authorizer::{
    AuthorizerError, AuthorizerSettings, authorize, authorize_with, key_resolver, run,
};
use membrain_aws::testing::MotoServer;
use membrain_memory::TenantId;
use serde_json::json;
use support::{TENANT, VALID_KEY, cases, fixture};

/// Runs every fixture through `authorize` over `resolver` and compares the answers as JSON.
async fn check_fixtures(resolver: &dyn KeyResolver) {
    for (name, expected) in cases() {
        let response = authorize(&fixture(name), resolver).await;
        let actual = serde_json::to_value(&response).expect("serialise the response");
        assert_eq!(actual, expected, "for {name}");
    }
}

#[tokio::test]
async fn fixtures_with_a_static_resolver() {
    let key = ApiKey::new(VALID_KEY).expect("key");
    let tenant = TenantId::parse(TENANT).expect("tenant");
    check_fixtures(&StaticKey::new(&key, tenant)).await;
}

#[tokio::test]
async fn fixtures_with_the_secrets_manager_resolver() {
    let moto = MotoServer::start();
    let settings = support::secret_in(&moto).await;
    let resolver = key_resolver(&settings).await.expect("load the key map");
    check_fixtures(&resolver).await;
}

/// A key store that cannot answer.
struct Down;

#[async_trait::async_trait]
impl KeyResolver for Down {
    async fn resolve(&self, _key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        Err(AuthError::Unavailable(
            "Secrets Manager timed out".to_owned(),
        ))
    }
}

#[tokio::test]
async fn an_unavailable_key_store_refuses_every_request() {
    for (name, _) in cases() {
        let response = authorize(&fixture(name), &Down).await;
        assert_eq!(
            serde_json::to_value(&response).expect("serialise the response"),
            json!({"isAuthorized": false}),
            "for {name}"
        );
    }
}

#[tokio::test]
async fn a_missing_secret_fails_the_start_with_the_fix() {
    let moto = MotoServer::start();
    let mut settings = support::secret_in(&moto).await;
    settings.secret_id = "membrain/no-such-secret".to_owned();
    let error = key_resolver(&settings).await.expect_err("no such secret");
    assert!(matches!(error, AuthorizerError::Keys(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot load the API keys: the key store is unavailable: Secrets Manager at {} has no \
             secret membrain/no-such-secret (ResourceNotFoundException: Secrets Manager can't \
             find the specified secret.): create it with `aws secretsmanager create-secret \
             --name membrain/no-such-secret --secret-string '{{\"<api key>\": \"<tenant>\", \
             ...}}'`, or name an existing secret",
            moto.endpoint
        )
    );
}

#[tokio::test]
async fn run_outside_lambda_says_so_before_touching_aws() {
    // Nothing listens at this endpoint: the Lambda check must fail first.
    let settings = AuthorizerSettings::from_lookup(|name| match name {
        "MEMBRAIN_KEYS_SECRET" => Some("membrain/api-keys".to_owned()),
        "AWS_REGION" => Some("eu-west-1".to_owned()),
        "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9".to_owned()),
        _ => None,
    })
    .expect("valid settings");
    let error = run(settings).await.expect_err("not in Lambda");
    assert_eq!(
        error.to_string(),
        "not running inside AWS Lambda (AWS_LAMBDA_RUNTIME_API is not set): deploy this as the \
         authorizer function of the HTTP API, whose runtime sets it"
    );
}

/// The same tokens the MCP server accepts: a good one is authorized with its tenant in the
/// context, a bad one refused, an API key still works, and a JWT is never taken for a key.
#[tokio::test]
async fn access_tokens_are_authorized_beside_keys() {
    use membrain_oauth::TokenValidator;
    use membrain_oauth::testing::TestIssuer;
    const RESOURCE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/mcp";
    let issuer = TestIssuer::start().await;
    let tokens = TokenValidator::new(issuer.settings(RESOURCE)).expect("settings");
    let key = ApiKey::new(VALID_KEY).expect("key");
    let keys = StaticKey::new(&key, TenantId::parse(TENANT).expect("tenant"));
    let event = |authorization: &str| {
        json!({
            "version": "2.0", "type": "REQUEST", "routeKey": "ANY /mcp",
            "headers": { "authorization": authorization },
            "requestContext": { "requestId": "r1", "http": { "sourceIp": "203.0.113.9" } },
        })
    };
    let decide = |authorization: String| {
        let (keys, tokens) = (&keys, &tokens);
        async move {
            let response = authorize_with(&event(&authorization), keys, Some(tokens)).await;
            serde_json::to_value(&response).expect("serialise the response")
        }
    };
    let good = issuer.token(&issuer.claims(RESOURCE, "dana"));
    assert_eq!(
        decide(format!("Bearer {good}")).await,
        json!({"isAuthorized": true, "context": {"tenant": "dana"}})
    );
    let mut expired = issuer.claims(RESOURCE, "dana");
    expired["exp"] = json!(1_000_000_000);
    expired["iat"] = json!(999_999_000);
    let elsewhere = issuer.claims("https://other.example/mcp", "dana");
    for token in [issuer.token(&expired), issuer.token(&elsewhere)] {
        assert_eq!(
            decide(format!("Bearer {token}")).await,
            json!({"isAuthorized": false})
        );
    }
    assert_eq!(
        decide(format!("Bearer {VALID_KEY}")).await,
        json!({"isAuthorized": true, "context": {"tenant": TENANT}})
    );
    // Without OAuth configured a token is only an unknown key.
    let response = authorize(&event(&format!("Bearer {good}")), &keys).await;
    assert!(!response.is_authorized);
}

/// MEMBRAIN_OAUTH_ISSUER turns tokens on, and needs the resource they are issued for.
#[test]
fn oauth_settings_come_from_the_environment() {
    let base = [
        ("MEMBRAIN_KEYS_SECRET", "membrain/api-keys"),
        ("AWS_REGION", "us-east-1"),
    ];
    let read = |extra: &[(&str, &str)]| {
        let env: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
        AuthorizerSettings::from_lookup(|name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    };
    assert!(read(&[]).expect("keys only").oauth.is_none());
    let issuer = (
        "MEMBRAIN_OAUTH_ISSUER",
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc",
    );
    let error = read(&[issuer]).expect_err("no resource");
    assert!(
        error.to_string().contains("MEMBRAIN_OAUTH_RESOURCE"),
        "{error}"
    );
    let settings = read(&[
        issuer,
        (
            "MEMBRAIN_OAUTH_RESOURCE",
            "https://abc.execute-api.us-east-1.amazonaws.com/mcp",
        ),
        ("MEMBRAIN_OAUTH_TENANT_CLAIM", "custom:tenant"),
    ])
    .expect("tokens on")
    .oauth
    .expect("oauth");
    assert_eq!(settings.tenant_claim, "custom:tenant");
    let error = read(&[issuer, ("MEMBRAIN_OAUTH_RESOURCE", "not a url")]).expect_err("bad");
    assert!(error.to_string().contains("MEMBRAIN_OAUTH_"), "{error}");
}
