//! What the authorizer tests share: the fixture events, the key they carry, the answers they
//! must get, and a Secrets Manager secret in moto holding that key.

// Each test binary uses part of this.
#![allow(dead_code)]

use std::path::PathBuf;

use aws_sdk_secretsmanager::Client;
use membrain_authorizer::AuthorizerSettings;
use membrain_aws::testing::MotoServer;
use membrain_aws::{AwsEndpoint, Credentials};
use serde_json::{Value, json};

/// The key the fixtures present where a key should work (`bearer_header.json` and
/// `mixed_case_header.json` carry it too); `wrong_key.json` carries another.
pub const VALID_KEY: &str = "mb_q7Rk2VxT9LmW4pZc8NbY1dHs6JfG3aEu0KiOyBtP";
pub const TENANT: &str = "acme";
pub const SECRET: &str = "membrain/gateway/api-keys";

/// Each fixture event (API Gateway HTTP API, payload format 2.0) and the exact answer it gets.
pub fn cases() -> Vec<(&'static str, Value)> {
    let allowed = json!({"isAuthorized": true, "context": {"tenant": TENANT}});
    let refused = json!({"isAuthorized": false});
    vec![
        ("valid_key.json", allowed.clone()),
        ("wrong_key.json", refused.clone()),
        ("missing_header.json", refused),
        ("bearer_header.json", allowed.clone()),
        ("mixed_case_header.json", allowed),
    ]
}

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

pub fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "membrain-tests")
}

/// The key map the secret holds: the valid key, and one for another tenant.
pub fn key_map() -> String {
    json!({VALID_KEY: TENANT, "mb_someoneElsesKey": "globex"}).to_string()
}

/// Creates the secret in `moto` and answers settings that point at it.
pub async fn secret_in(moto: &MotoServer) -> AuthorizerSettings {
    let endpoint = AwsEndpoint::new(MotoServer::REGION, Some(moto.endpoint.clone()));
    let config = membrain_aws::sdk_config(&endpoint, Some(credentials())).await;
    Client::new(&config)
        .create_secret()
        .name(SECRET)
        .secret_string(key_map())
        .send()
        .await
        .expect("create the key map secret in moto");
    AuthorizerSettings {
        secret_id: SECRET.to_owned(),
        refresh: AuthorizerSettings::DEFAULT_REFRESH,
        max_staleness: AuthorizerSettings::DEFAULT_MAX_STALENESS,
        endpoint,
        credentials: Some(credentials()),
        oauth: None,
    }
}
