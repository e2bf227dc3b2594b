//! MCP end to end over real HTTP with the rmcp client: the current protocol (2026-07-28,
//! stateless discover) and 2025-11-25 / 2025-06-18 (initialize), two tenants, both backends.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use reqwest::StatusCode;
use rmcp::model::{ProtocolVersion, ReadResourceRequestParams};
use serde_json::{Value, json};
use support::{McpClient, TestStack, call_err, call_ok, call_tool, node_ids};

on_both_backends!(
    current_protocol_full_flow,
    protocol_2025_11_25_full_flow,
    protocol_2025_06_18_lists_and_calls,
    tool_failures_say_how_to_fix_the_call,
);

const TOOLS: [&str; 18] = [
    "add_memory",
    "delete_memories",
    "find_path",
    "get_agent_instructions",
    "get_memories",
    "get_neighborhood",
    "get_stats",
    "link_memories",
    "search_memories",
    "traverse_graph",
    "ts_describe_table",
    "ts_latest",
    "ts_list_tables",
    "ts_query",
    "ts_range",
    "ts_write_records",
    "unlink_memories",
    "update_memory",
];

async fn full_flow(backend: membrain_store::Backend, version: ProtocolVersion) {
    let stack = TestStack::spawn(backend).await;
    let alice = stack
        .mcp(&stack.key("alice").await, version.clone())
        .await
        .expect("alice connects");
    let bob = stack
        .mcp(&stack.key("bob").await, version.clone())
        .await
        .expect("bob connects");

    let mut names: Vec<String> = alice
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, TOOLS);
    let tools = alice.list_all_tools().await.unwrap();
    let search = tools.iter().find(|t| t.name == "search_memories").unwrap();
    assert_eq!(
        search.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );
    assert!(
        search.output_schema.is_some(),
        "data tools carry an outputSchema"
    );
    let delete = tools.iter().find(|t| t.name == "delete_memories").unwrap();
    assert_eq!(
        delete.annotations.as_ref().and_then(|a| a.destructive_hint),
        Some(true)
    );

    // add -> search -> get
    let tea = call_ok(
        &alice,
        "add_memory",
        json!({"content": "User drinks green tea at breakfast", "tags": "drinks, morning"}),
    )
    .await;
    assert_eq!(tea["action"], "created");
    assert_eq!(tea["memory"]["tags"], json!(["drinks", "morning"]));
    let tea_id = tea["memory_id"].as_str().unwrap().to_owned();
    let cake = call_ok(&alice, "add_memory", json!({"content": "User bakes lemon cake on Sundays", "tags": ["baking"], "category": "hobbies"})).await;
    let cake_id = cake["memory_id"].as_str().unwrap().to_owned();
    let found = call_ok(
        &alice,
        "search_memories",
        json!({"query": "What tea does the user drink?", "k": 3}),
    )
    .await;
    assert_eq!(found["results"][0]["id"], tea_id.as_str());
    let got = call_ok(
        &alice,
        "get_memories",
        json!({"memory_ids": [tea_id, cake_id]}),
    )
    .await;
    assert_eq!(got["count"], 2);
    assert_eq!(got["memories"][1]["category"], "hobbies");

    // update keeps history
    let updated = call_ok(
        &alice,
        "update_memory",
        json!({"memory_id": tea_id, "content": "User drinks matcha at breakfast"}),
    )
    .await;
    assert_eq!(
        updated["memory"]["evolution_history"][0]["old_content"],
        "User drinks green tea at breakfast"
    );
    // ... and corrects when a fact was observed, leaving its content as it is.
    let redated = call_ok(
        &alice,
        "update_memory",
        json!({"memory_id": tea_id, "observed_at": "2024-03-08"}),
    )
    .await;
    assert_eq!(redated["memory"]["observed_at"], "2024-03-08T00:00:00Z");
    assert_eq!(
        redated["memory"]["content"],
        "User drinks matcha at breakfast"
    );

    // link -> find_path / get_neighborhood / traverse -> unlink
    call_ok(&alice, "link_memories", json!({"memory_id_1": tea_id, "memory_id_2": cake_id, "description": "matcha goes with lemon cake"})).await;
    let path = call_ok(
        &alice,
        "find_path",
        json!({"from_id": tea_id, "to_id": cake_id}),
    )
    .await;
    assert_eq!(path["found"], true);
    assert_eq!(path["hops"], 1);
    let near = call_ok(
        &alice,
        "get_neighborhood",
        json!({"memory_id": cake_id, "hops": 1}),
    )
    .await;
    assert_eq!(near["count"], 2);
    let walked = call_ok(
        &alice,
        "traverse_graph",
        json!({"start_memory_id": tea_id, "query": "lemon cake", "edge_similarity_threshold": 0.5}),
    )
    .await;
    assert_eq!(walked["memory_count"], 2);
    let unlinked = call_ok(
        &alice,
        "unlink_memories",
        json!({"memory_id_1": cake_id, "memory_id_2": tea_id}),
    )
    .await;
    assert_eq!(unlinked["status"], "unlinked");
    let no_path = call_ok(
        &alice,
        "find_path",
        json!({"from_id": tea_id, "to_id": cake_id}),
    )
    .await;
    assert_eq!(no_path["found"], false);

    // bob sees none of it, and cannot touch it
    let bob_stats = call_ok(&bob, "get_stats", json!({})).await;
    assert_eq!(bob_stats["total_memories"], 0);
    let bob_search = call_ok(
        &bob,
        "search_memories",
        json!({"query": "matcha breakfast"}),
    )
    .await;
    assert_eq!(bob_search["count"], 0);
    let denied = call_err(&bob, "get_memories", json!({"memory_ids": [tea_id]})).await;
    assert!(denied.contains("not found"), "{denied}");
    let denied = call_err(&bob, "delete_memories", json!({"memory_id": tea_id})).await;
    assert!(denied.contains("not found"), "{denied}");
    call_ok(&bob, "add_memory", json!({"content": "Bob's own memory"})).await;

    // delete
    let deleted = call_ok(&alice, "delete_memories", json!({"tags": "baking"})).await;
    assert_eq!(deleted["memory_ids"], json!([cake_id]));
    let stats = call_ok(&alice, "get_stats", json!({})).await;
    assert_eq!(stats["total_memories"], 1);
    assert_eq!(stats["usage"]["memories"], 1, "{stats}");
    assert!(stats["usage"]["stored_bytes"].as_u64() > Some(0), "{stats}");
    assert!(stats["usage"]["max_memories"].as_u64() > Some(1), "{stats}");
    assert_eq!(
        call_ok(&bob, "get_stats", json!({})).await["total_memories"],
        1
    );

    // The guide, as a tool and as resources.
    let guide = call_tool(&alice, "get_agent_instructions", json!({})).await;
    let text: String = guide
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    assert!(text.contains("search_memories"));
    let resources = alice.list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 3);
    let read = alice
        .read_resource(ReadResourceRequestParams::new(
            "membrain://docs/storage-guidelines",
        ))
        .await
        .unwrap();
    assert!(format!("{:?}", read.contents).contains("Storage guidelines"));
    // Not found, naming the URI in the error's data (SEP-2164).
    let missing = alice
        .read_resource(ReadResourceRequestParams::new("membrain://nope"))
        .await
        .unwrap_err();
    let rmcp::ServiceError::McpError(error) = missing else {
        panic!("a JSON-RPC error, not {missing:?}");
    };
    assert_eq!(
        error.data,
        Some(serde_json::json!({ "uri": "membrain://nope" }))
    );

    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

async fn current_protocol_full_flow(backend: membrain_store::Backend) {
    full_flow(backend, ProtocolVersion::V_2026_07_28).await;
}

async fn protocol_2025_11_25_full_flow(backend: membrain_store::Backend) {
    full_flow(backend, ProtocolVersion::V_2025_11_25).await;
}

async fn protocol_2025_06_18_lists_and_calls(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let client = stack
        .mcp(&stack.key("carol").await, ProtocolVersion::V_2025_06_18)
        .await
        .unwrap();
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_06_18);
    assert_eq!(client.list_all_tools().await.unwrap().len(), TOOLS.len());
    let added = call_ok(
        &client,
        "add_memory",
        json!({"content": "Carol prefers trains to planes"}),
    )
    .await;
    assert_eq!(added["action"], "created");
    client.cancel().await.unwrap();
}

async fn tool_failures_say_how_to_fix_the_call(backend: membrain_store::Backend) {
    let stack = TestStack::spawn(backend).await;
    let client: McpClient = stack
        .mcp(&stack.key("dave").await, ProtocolVersion::V_2025_11_25)
        .await
        .unwrap();
    let kept = call_ok(&client, "add_memory", json!({"content": "Dave keeps bees"})).await;
    let kept_id = kept["memory_id"].as_str().unwrap();
    let dated = call_ok(
        &client,
        "add_memory",
        json!({"content": "Dave's first hive swarmed", "observed_at": "2021-05-04"}),
    )
    .await;
    assert_eq!(
        dated["memory"]["observed_at"], "2021-05-04T00:00:00Z",
        "{dated}"
    );
    let in_2021 = call_ok(
        &client,
        "search_memories",
        json!({"query": "Dave hive bees", "k": 5, "observed_after": "2021-01-01", "observed_before": "2022-01-01"}),
    )
    .await;
    assert_eq!(
        node_ids(&in_2021),
        [dated["memory_id"].as_str().unwrap()],
        "{in_2021}"
    );
    let cases = [
        ("add_memory", json!({"content": "   "}), "cannot be empty"),
        (
            "add_memory",
            json!({"content": "x".repeat(70_000)}),
            "limit",
        ),
        ("add_memory", json!({"content": 7}), "content"),
        (
            "add_memory",
            json!({"content": "Dave sold honey", "observed_at": "last spring"}),
            "observed_at",
        ),
        (
            "search_memories",
            json!({"query": "bees", "k": 0}),
            "between 1 and 100",
        ),
        (
            "search_memories",
            json!({"query": "bees", "observed_before": "next week"}),
            "observed_before",
        ),
        (
            "search_memories",
            json!({"query": "bees", "keyword_filter": "a", "scope_regex": "b"}),
            "only one",
        ),
        (
            "search_memories",
            json!({"query": "bees", "scope_regex": "(unclosed"}),
            "not a valid regex",
        ),
        (
            "search_memories",
            json!({"query": "bees", "response_format": "essay"}),
            "response_format",
        ),
        (
            "traverse_graph",
            json!({"start_memory_id": kept_id, "query": "x", "max_hops": 9}),
            "between 1 and 5",
        ),
        (
            "get_neighborhood",
            json!({"memory_id": kept_id, "hops": 0}),
            "between 1 and 5",
        ),
        ("get_memories", json!({"memory_ids": []}), "non-empty"),
        (
            "get_memories",
            json!({"memory_ids": ["not-an-id"]}),
            "not a valid memory id",
        ),
        (
            "get_memories",
            json!({"memory_ids": ["0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b"]}),
            "not found",
        ),
        ("delete_memories", json!({}), "At least one"),
        (
            "update_memory",
            json!({"memory_id": kept_id}),
            "nothing to update",
        ),
        (
            "update_memory",
            json!({"memory_id": kept_id, "observed_at": "last Tuesday"}),
            "observed_at",
        ),
        ("find_path", json!({"from_id": kept_id}), "to_id"),
        (
            "link_memories",
            json!({"memory_id_1": kept_id, "memory_id_2": kept_id, "description": "self"}),
            "must differ",
        ),
    ];
    for (tool, arguments, hint) in cases {
        let message = call_err(&client, tool, arguments.clone()).await;
        assert!(
            message.contains(hint),
            "{tool} {arguments}: {message:?} should mention {hint:?}"
        );
    }
    // An unknown tool is a protocol error, not a crash.
    let unknown = client
        .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
        .await
        .expect_err("unknown tools are refused");
    assert!(unknown.to_string().contains("tool not found"), "{unknown}");
    // The two memories survived, and nothing the refused calls sent was stored.
    assert_eq!(
        call_ok(&client, "get_stats", json!({})).await["total_memories"],
        2
    );
    client.cancel().await.unwrap();
}

/// Raw HTTP against /mcp: the checks in front of rmcp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_gate_refuses_bad_requests_before_any_tool_runs() {
    let stack = TestStack::spawn(membrain_store::Backend::Sqlite).await;
    let key = stack.key("erin").await;
    // No connection reuse: the server closes a connection after refusing an oversize body, and a
    // pooled client could race to send the next request on it.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let post = |body: &str| {
        http.post(&stack.mcp_url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned())
    };
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

    // No key, a bad key, a revoked key: 401 before anything is listed.
    let missing = post(list).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let wrong = post(list)
        .header("x-api-key", "mb_wrongwrongwrongwrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let bearer = post(list)
        .bearer_auth(&key)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::OK,
        "Authorization: Bearer is accepted"
    );

    // Malformed JSON-RPC gets a JSON-RPC error with a 4xx.
    for (body, code) in [
        ("{oops", -32700),
        ("[]", -32600),
        (r#"{"id":1,"method":"x"}"#, -32600),
        ("42", -32600),
    ] {
        let response = post(body).header("x-api-key", &key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    // Oversize bodies, foreign origins and hosts.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"x":"{}"}}}}"#,
        "a".repeat(2 << 20)
    );
    assert_eq!(
        post(&huge)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let foreign = post(list)
        .header("x-api-key", &key)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let local_page = post(list)
        .header("x-api-key", &key)
        .header("origin", "http://localhost:3000")
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(local_page.status(), StatusCode::OK);
    let rebinding = post(list)
        .header("x-api-key", &key)
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), StatusCode::FORBIDDEN);

    // Stateless: no session id is handed out, and any request stands alone.
    let init = post(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    assert!(init.headers().get("mcp-session-id").is_none());
    let health: Value = reqwest::get(stack.mcp_url.replace("/mcp", "/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
}
