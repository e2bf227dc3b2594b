//! OAuth for connectors, end to end on both backends: an authorization server the test runs
//! itself (its own keys and JWKS on loopback), the MCP server checking its access tokens beside
//! API keys, the bridge serving a token's tenant through the API's service key, and the API
//! accepting a named tenant from that key alone.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::time::Duration;

use membrain_auth::ApiKey;
use membrain_mcp::McpOAuth;
use membrain_oauth::TokenValidator;
use membrain_oauth::testing::TestIssuer;
use membrain_store::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{TestStack, semantic};

/// The resource URL tokens are issued for (what a deployment sets as --oauth-resource).
const RESOURCE: &str = "http://localhost/mcp";
const SERVICE_KEY: &str = "mb_service_oauth_test_0123456789";

async fn start_stack(backend: Backend, issuer: &TestIssuer) -> TestStack {
    let mut settings = issuer.settings(RESOURCE);
    // Rotations show within the test's time.
    settings.min_refetch_interval = Duration::from_millis(50);
    let validator = TokenValidator::new(settings).unwrap();
    TestStack::spawn_servers(
        backend,
        |api| api.service_key = ApiKey::new(SERVICE_KEY),
        |mcp| {
            mcp.oauth = Some(McpOAuth {
                validator,
                service_key: ApiKey::new(SERVICE_KEY),
            })
        },
        semantic(None),
    )
    .await
}

/// One JSON-RPC call to `/mcp` with `authorization` (a full header value) or none.
async fn call(stack: &TestStack, authorization: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(&stack.mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

fn tool(name: &str, arguments: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": name, "arguments": arguments } })
}

/// The structured answer of a successful tool call.
async fn tool_ok(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    answer["result"]["structuredContent"].clone()
}

async fn connectors_reach_their_tenant_with_tokens(backend: Backend) {
    let issuer = TestIssuer::start().await;
    let stack = start_stack(backend, &issuer).await;
    let base = stack.mcp_url.trim_end_matches("/mcp").to_owned();

    // The resource metadata, without a key, where the challenge points.
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let metadata = reqwest::get(&metadata_url).await.unwrap();
    assert_eq!(metadata.status(), StatusCode::OK);
    assert_eq!(metadata.headers()["access-control-allow-origin"], "*");
    let metadata: Value = metadata.json().await.unwrap();
    assert_eq!(metadata["resource"], RESOURCE);
    assert_eq!(
        metadata["authorization_servers"],
        json!([issuer.issuer_url()])
    );
    let bare: Value = reqwest::get(format!("{base}/.well-known/oauth-protected-resource"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bare, metadata);

    // No credentials: 401 with the challenge that leads to the authorization server.
    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
    let refused = call(&stack, None, list.clone()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(
                "resource_metadata=\"http://localhost/.well-known/oauth-protected-resource/mcp\""
            ),
        "{challenge}"
    );

    // A good token: alice's memory, stored through the service key as alice.
    let alice_token = issuer.token(&issuer.claims(RESOURCE, "alice"));
    let bearer = |token: &str| format!("Bearer {token}");
    let added = tool_ok(
        call(
            &stack,
            Some(&bearer(&alice_token)),
            tool(
                "add_memory",
                json!({ "content": "Alice keeps her notes in Obsidian" }),
            ),
        )
        .await,
    )
    .await;
    assert!(added["memory"]["id"].is_string(), "{added}");
    let alice_stats = tool_ok(
        call(
            &stack,
            Some(&bearer(&alice_token)),
            tool("get_stats", json!({})),
        )
        .await,
    )
    .await;
    assert_eq!(alice_stats["total_memories"], 1, "{alice_stats}");
    // Bob, by API key, sees none of it; alice's key sees what her token stored.
    let bob_key = stack.key("bob").await;
    let (_, bob_stats) = stack.rest(&bob_key).get("/stats").await;
    assert_eq!(bob_stats["total_memories"], 0, "{bob_stats}");
    let alice_key = stack.key("alice").await;
    let (_, by_key) = stack.rest(&alice_key).get("/stats").await;
    assert_eq!(by_key["total_memories"], 1, "{by_key}");
    // API keys keep working on /mcp beside tokens.
    let bob_list = call(&stack, Some(&bearer(&bob_key)), list.clone()).await;
    assert_eq!(bob_list.status(), StatusCode::OK);

    // Bad tokens: 401 invalid_token, each with the challenge naming the error.
    let mut claims = issuer.claims(RESOURCE, "alice");
    let now = claims["iat"].as_u64().unwrap();
    let edit = |change: &dyn Fn(&mut Value)| {
        let mut edited = claims.clone();
        change(&mut edited);
        issuer.token(&edited)
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            edit(&|c| {
                c["exp"] = json!(now - 3600);
                c["iat"] = json!(now - 7200);
            }),
        ),
        (
            "wrong audience",
            edit(&|c| c["aud"] = json!("https://other.example/mcp")),
        ),
        (
            "wrong issuer",
            edit(&|c| c["iss"] = json!("https://issuer.example")),
        ),
        (
            "no tenant claim",
            edit(&|c| {
                c.as_object_mut().unwrap().remove("membrain_tenant");
            }),
        ),
        (
            "a tenant name that is not one",
            edit(&|c| c["membrain_tenant"] = json!("Alice Smith")),
        ),
        ("bad signature", issuer.token_with_foreign_key(&claims)),
    ];
    for (case, token) in &cases {
        let response = call(&stack, Some(&bearer(token)), list.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{case}: {challenge}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_token", "{case}: {body}");
        assert!(
            !body.to_string().contains(token.as_str()),
            "{case}: the answer never echoes the token"
        );
    }

    // An unsigned token (empty signature) is not even taken for a token: refused like a bad key.
    let unsigned = issuer.token_with(&claims, &json!({ "alg": "none" }));
    let response = call(&stack, Some(&bearer(&unsigned)), list.clone()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The issuer rotates its key: a token signed with the new one is accepted (the keys are
    // fetched again), and once the old key is retired its tokens stop working.
    issuer.rotate();
    claims["jti"] = json!("after-rotation");
    let rotated = issuer.token(&claims);
    tool_ok(
        call(
            &stack,
            Some(&bearer(&rotated)),
            tool("get_stats", json!({})),
        )
        .await,
    )
    .await;
    issuer.retire_old_keys();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut stranger = claims.clone();
    stranger["jti"] = json!("unknown-kid");
    let unknown_kid = issuer.token_with(&stranger, &json!({ "kid": "retired-or-never-was" }));
    let response = call(&stack, Some(&bearer(&unknown_kid)), list.clone()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The issuer unreachable with no usable keys: 503, not 401 (the token may well be good).
    let offline = TestIssuer::start().await;
    let offline_stack = start_stack(backend, &offline).await;
    offline.set_available(false);
    let token = offline.token(&offline.claims(RESOURCE, "alice"));
    let response = call(&offline_stack, Some(&bearer(&token)), list).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// The API takes a named tenant from the service key only, and the service key only with one.
async fn only_the_service_key_names_a_tenant(backend: Backend) {
    let issuer = TestIssuer::start().await;
    let stack = start_stack(backend, &issuer).await;
    let http = reqwest::Client::new();
    let stats = |key: &str, tenant: Option<&str>| {
        let mut request = http
            .get(format!("{}/api/v1/stats", stack.api_url))
            .header("x-api-key", key);
        if let Some(tenant) = tenant {
            request = request.header("x-membrain-tenant", tenant);
        }
        request.send()
    };
    let alice_key = stack.key("alice").await;
    let response = stats(&alice_key, Some("bob")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only with the service key"),
        "{body}"
    );
    let response = stats(SERVICE_KEY, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = stats(SERVICE_KEY, Some("Not A Tenant")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = stats(SERVICE_KEY, Some("carol")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let whoami: Value = http
        .get(format!("{}/api/v1/auth/whoami", stack.api_url))
        .header("x-api-key", SERVICE_KEY)
        .header("x-membrain-tenant", "carol")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(whoami["tenant"], "carol", "{whoami}");
}

#[tokio::test]
async fn connectors_reach_their_tenant_with_tokens_sqlite() {
    connectors_reach_their_tenant_with_tokens(Backend::Sqlite).await;
}

#[tokio::test]
async fn connectors_reach_their_tenant_with_tokens_postgres() {
    connectors_reach_their_tenant_with_tokens(Backend::Postgres).await;
}

#[tokio::test]
async fn only_the_service_key_names_a_tenant_sqlite() {
    only_the_service_key_names_a_tenant(Backend::Sqlite).await;
}

#[tokio::test]
async fn only_the_service_key_names_a_tenant_postgres() {
    only_the_service_key_names_a_tenant(Backend::Postgres).await;
}
