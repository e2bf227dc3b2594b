//! The tool list, exactly as `tools/list` answers it over HTTP, against the published MCP wire
//! schema (`tests/schemas/<version>.json`, see the README there) of every protocol version the
//! server serves; every tool's annotations; one order for the list.
//!
//! Both tool sets are checked: every tool (the `alb` profile, `serve`, stdio) and the gateway
//! profile's `ts_*` tools ([`membrain_mcp::MembrainTools::time_series_only`]).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use membrain_mcp::{McpBackend, McpSettings, router_with};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

mod support;

use support::{VALID_KEY, direct_backend};

/// The protocol versions the server serves, each with its schema file.
const VERSIONS: [&str; 3] = ["2025-06-18", "2025-11-25", "2026-07-28"];

/// Every tool: name, then readOnlyHint, destructiveHint, idempotentHint, openWorldHint.
const HINTS: [(&str, bool, bool, bool, bool); 18] = [
    ("add_memory", false, false, true, false),
    ("delete_memories", false, true, true, false),
    ("find_path", true, false, true, false),
    ("get_agent_instructions", true, false, true, false),
    ("get_memories", true, false, true, false),
    ("get_neighborhood", true, false, true, false),
    ("get_stats", true, false, true, false),
    ("link_memories", false, true, true, false),
    ("search_memories", true, false, true, false),
    ("traverse_graph", true, false, true, false),
    ("ts_describe_table", true, false, true, false),
    ("ts_latest", true, false, true, false),
    ("ts_list_tables", true, false, true, false),
    ("ts_query", true, false, true, false),
    ("ts_range", true, false, true, false),
    ("ts_write_records", false, false, true, false),
    ("unlink_memories", false, true, true, false),
    ("update_memory", false, true, true, false),
];

/// A stand-in for the Memory REST API that knows every key: listing tools needs only the key
/// check (`GET /api/v1/auth/whoami`).
fn stub_api() -> Router {
    Router::new().route(
        "/api/v1/auth/whoami",
        axum::routing::get(|| async { axum::Json(json!({"tenant": "wire"})) }),
    )
}

/// The server with every tool, as `membrain serve` builds it.
fn full_server() -> Router {
    router_with(
        &McpSettings::default(),
        McpBackend::InProcess(stub_api()),
        CancellationToken::new(),
    )
    .expect("router")
}

/// The gateway profile's server: the `ts_*` tools only.
async fn gateway_server(dir: &std::path::Path) -> Router {
    router_with(
        &McpSettings::default(),
        direct_backend(dir).await,
        CancellationToken::new(),
    )
    .expect("router")
}

/// The `result` of `tools/list` at `version`, as the server sends it.
async fn tools_list(server: &Router, version: &str) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    if version >= "2026-07-28" {
        // No initialize from 2026-07-28 on: every request says who asks, in its `_meta`.
        message["params"] = json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientInfo": {"name": "wire-schema-test", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }});
    }
    let mut request = Request::post("/mcp");
    if version >= "2026-07-28" {
        request = request.header("mcp-method", "tools/list");
    }
    let request = request
        .header("host", "localhost:8100")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("x-api-key", VALID_KEY)
        .header("mcp-protocol-version", version)
        .body(Body::from(message.to_string()))
        .expect("a request");
    let response = server
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .expect("a body");
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, StatusCode::OK, "tools/list at {version}: {text}");
    let answer: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
    answer
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("tools/list at {version} failed: {answer}"))
}

/// The spec's `ListToolsResult` definition for `version`, ready to validate answers.
fn wire_validator(version: &str) -> jsonschema::Validator {
    let path = format!(
        "{}/tests/schemas/{version}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut document: Value = serde_json::from_str(&text).expect("the schema is JSON");
    // 2025-06-18 is draft-07 (`definitions`), later versions 2020-12 (`$defs`).
    let definitions = if document.get("$defs").is_some() {
        "$defs"
    } else {
        "definitions"
    };
    assert!(
        document[definitions].get("ListToolsResult").is_some(),
        "{path} defines ListToolsResult"
    );
    document["$ref"] = json!(format!("#/{definitions}/ListToolsResult"));
    jsonschema::validator_for(&document).unwrap_or_else(|e| panic!("{path} compiles: {e}"))
}

fn tools_of(result: &Value) -> &Vec<Value> {
    result["tools"].as_array().expect("a list of tools")
}

fn names_of(result: &Value) -> Vec<String> {
    tools_of(result)
        .iter()
        .map(|tool| tool["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// What the wire schema of `version` finds wrong with `result`, each problem with its tool.
fn wire_problems(validator: &jsonschema::Validator, version: &str, result: &Value) -> Vec<String> {
    let names = names_of(result);
    validator
        .iter_errors(result)
        .map(|error| {
            let path = error.instance_path().to_string();
            let tool = path
                .strip_prefix("/tools/")
                .and_then(|rest| rest.split('/').next())
                .and_then(|index| index.parse::<usize>().ok())
                .and_then(|index| names.get(index))
                .map_or(String::new(), |name| format!(" ({name})"));
            format!("{version}{tool} at {path}: {error}")
        })
        .collect()
}

#[tokio::test]
async fn every_tool_list_is_valid_on_the_wire_of_every_version() {
    let dir = tempfile::tempdir().expect("a directory");
    let servers = [
        ("every tool", full_server(), HINTS.len()),
        ("gateway", gateway_server(dir.path()).await, 6),
    ];
    let mut problems = Vec::new();
    for version in VERSIONS {
        let validator = wire_validator(version);
        for (profile, server, count) in &servers {
            let result = tools_list(server, version).await;
            assert_eq!(tools_of(&result).len(), *count, "{profile} at {version}");
            problems.extend(
                wire_problems(&validator, version, &result)
                    .into_iter()
                    .map(|problem| format!("{profile}, {problem}")),
            );
        }
    }
    assert!(
        problems.is_empty(),
        "the tool list is not valid on the wire:\n{}",
        problems.join("\n")
    );
}

/// Where a JSON Schema keyword holds subschemas: one, a map of them, or a list of them.
const ONE_SCHEMA: [&str; 12] = [
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "contentSchema",
];
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
const SCHEMA_LISTS: [&str; 4] = ["prefixItems", "allOf", "anyOf", "oneOf"];

/// Every subschema of `schema` that is a boolean (`true` / `false`), by its JSON pointer.
fn boolean_subschemas(schema: &Map<String, Value>, at: &str, found: &mut Vec<String>) {
    let mut visit = |value: &Value, path: String| match value {
        Value::Bool(_) => found.push(path),
        Value::Object(object) => boolean_subschemas(object, &path, found),
        _ => {}
    };
    for (keyword, value) in schema {
        let path = format!("{at}/{keyword}");
        if ONE_SCHEMA.contains(&keyword.as_str()) {
            match value {
                Value::Array(list) => {
                    for (i, item) in list.iter().enumerate() {
                        visit(item, format!("{path}/{i}"));
                    }
                }
                other => visit(other, path),
            }
        } else if SCHEMA_MAPS.contains(&keyword.as_str()) {
            for (name, item) in value.as_object().into_iter().flatten() {
                visit(item, format!("{path}/{name}"));
            }
        } else if SCHEMA_LISTS.contains(&keyword.as_str()) {
            for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                visit(item, format!("{path}/{i}"));
            }
        }
    }
}

#[tokio::test]
async fn every_schema_is_an_object_schema_of_json_schema_2020_12() {
    let result = tools_list(&full_server(), "2025-11-25").await;
    let mut problems = Vec::new();
    for tool in tools_of(&result) {
        let name = tool["name"].as_str().expect("a name");
        for field in ["inputSchema", "outputSchema"] {
            let Some(schema) = tool.get(field) else {
                continue;
            };
            if let Err(error) = jsonschema::meta::validate(schema) {
                problems.push(format!("{name} {field}: not a valid JSON Schema: {error}"));
            }
            let object = schema.as_object().expect("a schema object");
            if object.get("type") != Some(&json!("object")) {
                problems.push(format!("{name} {field}: the root is not type object"));
            }
            let mut booleans = Vec::new();
            boolean_subschemas(object, "", &mut booleans);
            for path in booleans {
                problems.push(format!("{name} {field}: a boolean schema at {path}"));
            }
        }
    }
    let data_tools = tools_of(&result)
        .iter()
        .filter(|tool| tool.get("outputSchema").is_some())
        .count();
    assert_eq!(
        data_tools,
        HINTS.len() - 1,
        "every tool but get_agent_instructions has an outputSchema"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn every_tool_has_a_title_and_all_four_hints() {
    let dir = tempfile::tempdir().expect("a directory");
    let gateway = gateway_server(dir.path()).await;
    for (server, version) in [
        (&full_server(), "2025-06-18"),
        (&full_server(), "2026-07-28"),
        (&gateway, "2025-11-25"),
    ] {
        let result = tools_list(server, version).await;
        for tool in tools_of(&result) {
            let name = tool["name"].as_str().expect("a name");
            let annotations = tool["annotations"]
                .as_object()
                .unwrap_or_else(|| panic!("{name} has annotations"));
            let title = annotations
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{name}'s annotations have a title"));
            assert!(
                !title.is_empty() && title.len() <= 40 && title.starts_with(char::is_uppercase),
                "{name}: a short human title, got {title:?}"
            );
            assert_eq!(
                tool.get("title").and_then(Value::as_str),
                Some(title),
                "{name}: the tool's title is its annotations' title"
            );
            let (_, read_only, destructive, idempotent, open_world) = HINTS
                .iter()
                .find(|(tool, ..)| *tool == name)
                .unwrap_or_else(|| panic!("{name} is in HINTS"));
            for (hint, expected) in [
                ("readOnlyHint", read_only),
                ("destructiveHint", destructive),
                ("idempotentHint", idempotent),
                ("openWorldHint", open_world),
            ] {
                assert_eq!(
                    annotations.get(hint),
                    Some(&json!(expected)),
                    "{name}'s {hint} at {version}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_tool_list_has_one_order_sorted_by_name() {
    let dirs = [
        tempfile::tempdir().expect("a directory"),
        tempfile::tempdir().expect("a directory"),
    ];
    let first = full_server();
    let second = full_server();
    let mut listings = Vec::new();
    for version in VERSIONS {
        for server in [&first, &second, &first] {
            listings.push(names_of(&tools_list(server, version).await));
        }
    }
    let mut sorted = listings[0].clone();
    sorted.sort();
    assert_eq!(listings[0], sorted, "sorted by name");
    assert_eq!(
        listings[0],
        HINTS.map(|(name, ..)| name.to_owned()).to_vec(),
        "every tool"
    );
    for listing in &listings {
        assert_eq!(listing, &listings[0], "the same order every time");
    }

    let gateway = [
        gateway_server(dirs[0].path()).await,
        gateway_server(dirs[1].path()).await,
    ];
    let ts_names: Vec<String> = listings[0]
        .iter()
        .filter(|name| name.starts_with("ts_"))
        .cloned()
        .collect();
    for server in &gateway {
        for version in VERSIONS {
            assert_eq!(names_of(&tools_list(server, version).await), ts_names);
        }
    }
}
