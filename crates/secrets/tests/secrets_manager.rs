//! `SecretsManagerKeyMap` under `RefreshingKeys`, against a local moto server.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::primitives::Blob;
use membrain_auth::{ApiKey, KeyResolver, RefreshSettings, RefreshingKeys};
use membrain_aws::testing::MotoServer;
use membrain_aws::{AwsEndpoint, Credentials};
use membrain_memory::TenantId;
use membrain_secrets::SecretsManagerKeyMap;

const SECRET: &str = "membrain/api-keys";
const OLD_KEY: &str = "mb_oldSecretOldSecretOld";
const NEW_KEY: &str = "mb_newSecretNewSecretNew";

/// A moto server and what tests need to reach it.
struct Harness {
    moto: MotoServer,
    endpoint: AwsEndpoint,
    client: Client,
}

impl Harness {
    async fn start() -> Self {
        let moto = MotoServer::start();
        let endpoint = AwsEndpoint::new(MotoServer::REGION, Some(moto.endpoint.clone()));
        let config = membrain_aws::sdk_config(&endpoint, Some(credentials())).await;
        Self {
            client: Client::new(&config),
            moto,
            endpoint,
        }
    }

    async fn create_secret(&self, text: &str) {
        self.client
            .create_secret()
            .name(SECRET)
            .secret_string(text)
            .send()
            .await
            .expect("create the secret in moto");
    }

    async fn put_secret(&self, text: &str) {
        self.client
            .put_secret_value()
            .secret_id(SECRET)
            .secret_string(text)
            .send()
            .await
            .expect("put a new secret value in moto");
    }

    async fn source(&self, secret_id: &str) -> SecretsManagerKeyMap {
        SecretsManagerKeyMap::connect(secret_id, &self.endpoint, Some(credentials())).await
    }

    async fn keys(&self, settings: RefreshSettings) -> Result<RefreshingKeys, String> {
        RefreshingKeys::new(Arc::new(self.source(SECRET).await), settings)
            .await
            .map_err(|e| e.to_string())
    }
}

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "membrain-tests")
}

fn key(text: &str) -> ApiKey {
    ApiKey::new(text).expect("key")
}

fn tenant(name: &str) -> Option<TenantId> {
    Some(TenantId::parse(name).expect("tenant"))
}

fn map(entries: &[(&str, &str)]) -> String {
    let entries: Vec<String> = entries
        .iter()
        .map(|(key, tenant)| format!("{key:?}: {tenant:?}"))
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// Reload as soon as an unknown key asks, so tests need not wait.
fn eager(refresh: Duration) -> RefreshSettings {
    RefreshSettings {
        refresh,
        min_reload_gap: Duration::ZERO,
        reload_wait: Duration::from_secs(10),
        ..RefreshSettings::default()
    }
}

#[tokio::test]
async fn a_key_in_the_secret_resolves_to_its_tenant() {
    let aws = Harness::start().await;
    aws.create_secret(&map(&[(OLD_KEY, "acme"), ("mb_other", "globex")]))
        .await;
    let keys = aws
        .keys(RefreshSettings::default())
        .await
        .expect("first load");
    assert_eq!(
        keys.resolve(&key(OLD_KEY)).await.expect("resolve"),
        tenant("acme")
    );
    assert_eq!(
        keys.resolve(&key("mb_other")).await.expect("resolve"),
        tenant("globex")
    );
    assert_eq!(keys.resolve(&key(NEW_KEY)).await.expect("resolve"), None);
}

#[tokio::test]
async fn a_rotated_in_key_works_at_once_and_the_retired_key_stops_at_the_next_reload() {
    let aws = Harness::start().await;
    aws.create_secret(&map(&[(OLD_KEY, "acme")])).await;
    let keys = aws
        .keys(eager(Duration::from_secs(600)))
        .await
        .expect("first load");
    assert_eq!(
        keys.resolve(&key(OLD_KEY)).await.expect("resolve"),
        tenant("acme")
    );

    aws.put_secret(&map(&[(NEW_KEY, "acme")])).await;
    // The map in memory is fresh, so the retired key still works...
    assert_eq!(
        keys.resolve(&key(OLD_KEY)).await.expect("resolve"),
        tenant("acme")
    );
    // ...until the new key, unknown to it, makes it reload.
    assert_eq!(
        keys.resolve(&key(NEW_KEY)).await.expect("resolve"),
        tenant("acme")
    );
    assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), None);
}

#[tokio::test]
async fn a_key_removed_from_the_secret_stops_once_the_map_is_stale() {
    let aws = Harness::start().await;
    aws.create_secret(&map(&[(OLD_KEY, "acme"), (NEW_KEY, "acme")]))
        .await;
    // A zero refresh interval: every resolve finds the map stale and reloads it.
    let keys = aws.keys(eager(Duration::ZERO)).await.expect("first load");
    assert_eq!(
        keys.resolve(&key(OLD_KEY)).await.expect("resolve"),
        tenant("acme")
    );

    aws.put_secret(&map(&[(NEW_KEY, "acme")])).await;
    assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), None);
    assert_eq!(
        keys.resolve(&key(NEW_KEY)).await.expect("resolve"),
        tenant("acme")
    );
}

#[tokio::test]
async fn a_missing_secret_says_which_where_and_how_to_create_it() {
    let aws = Harness::start().await;
    let error = aws
        .keys(RefreshSettings::default())
        .await
        .expect_err("no such secret");
    assert_eq!(
        error,
        format!(
            "the key store is unavailable: Secrets Manager at {} has no secret {SECRET} \
             (ResourceNotFoundException: Secrets Manager can't find the specified secret.): \
             create it with `aws secretsmanager create-secret --name {SECRET} --secret-string \
             '{{\"<api key>\": \"<tenant>\", ...}}'`, or name an existing secret",
            aws.moto.endpoint
        )
    );
}

#[tokio::test]
async fn a_secret_that_is_not_a_key_map_names_the_entry_never_the_key() {
    let aws = Harness::start().await;
    // Written the wrong way round: tenant → key.
    aws.create_secret(&map(&[("acme", OLD_KEY)])).await;
    let error = aws
        .keys(RefreshSettings::default())
        .await
        .expect_err("not a key map");
    assert_eq!(
        error,
        format!(
            "Secrets Manager secret {SECRET} at {} does not hold a valid key map: entry 1: the \
             tenant is not a valid tenant name (1 to 64 lower-case letters, digits, '-' or '_'); \
             it looks like an API key: each entry goes from key to tenant, \
             \"<api key>\": \"<tenant>\"",
            aws.moto.endpoint
        )
    );
    assert!(!error.contains(&OLD_KEY[3..]));
}

#[tokio::test]
async fn a_binary_secret_is_refused_with_the_fix() {
    let aws = Harness::start().await;
    aws.client
        .create_secret()
        .name(SECRET)
        .secret_binary(Blob::new(map(&[(OLD_KEY, "acme")])))
        .send()
        .await
        .expect("create a binary secret in moto");
    let error = aws
        .keys(RefreshSettings::default())
        .await
        .expect_err("binary secret");
    assert_eq!(
        error,
        format!(
            "the key store is unavailable: secret {SECRET} at {} has no SecretString (binary \
             secrets are not read): store the key map as text with `aws secretsmanager \
             put-secret-value --secret-id {SECRET} --secret-string \
             '{{\"<api key>\": \"<tenant>\", ...}}'`",
            aws.moto.endpoint
        )
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_reported_with_the_network_fix() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let endpoint = AwsEndpoint::new("us-east-1", Some(format!("http://127.0.0.1:{port}")));
    let source = SecretsManagerKeyMap::connect(SECRET, &endpoint, Some(credentials())).await;
    let error = RefreshingKeys::new(Arc::new(source), RefreshSettings::default())
        .await
        .expect_err("nothing listens")
        .to_string();
    let expected_start = format!(
        "the key store is unavailable: cannot reach Secrets Manager at http://127.0.0.1:{port} to \
         read secret {SECRET} ("
    );
    assert!(error.starts_with(&expected_start), "{error}");
    assert!(
        error.ends_with(
            "): check the network path (a secretsmanager VPC endpoint, or a NAT gateway) and the \
             region"
        ),
        "{error}"
    );
}
