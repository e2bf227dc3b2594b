//! Checks a tool call's arguments against the tool's input schema before they are deserialised,
//! so a wrong call is answered with the parameter's name and what it should be ("parameter 'k'
//! must be an integer, got a string") instead of a bare serde message.
//!
//! Only the top level is checked (required parameters, JSON types, `anyOf`, `$ref` into
//! `$defs`): that is where agents go wrong, and deeper errors still get serde's message.

use serde_json::{Map, Value};

/// What is wrong with `arguments` for a tool with `schema`, or `None` when they fit.
pub fn argument_problem(
    schema: &Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
) -> Option<String> {
    let empty = Map::new();
    let arguments = arguments.unwrap_or(&empty);
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !arguments.contains_key(name) {
                let hint = properties
                    .and_then(|p| p.get(name))
                    .and_then(|p| p.get("description"))
                    .and_then(Value::as_str)
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                return Some(format!("missing required parameter '{name}'{hint}"));
            }
        }
    }
    let properties = properties?;
    for (name, value) in arguments {
        let Some(property) = properties.get(name) else {
            continue;
        };
        if !matches_schema(schema, property, value) {
            return Some(format!(
                "parameter '{name}' must be {}, got {}",
                describe_schema(schema, property),
                describe_value(value)
            ));
        }
    }
    None
}

fn resolve<'a>(root: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => root
            .get("$defs")
            .and_then(|d| d.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

fn matches_schema(root: &Map<String, Value>, schema: &Value, value: &Value) -> bool {
    let schema = resolve(root, schema);
    if let Some(options) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        return options
            .iter()
            .any(|option| matches_schema(root, option, value));
    }
    match schema.get("type") {
        Some(Value::String(kind)) => matches_type(kind, value),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .any(|kind| matches_type(kind, value)),
        // No type constraint (or one we do not model): let serde decide.
        _ => true,
    }
}

fn matches_type(kind: &str, value: &Value) -> bool {
    match kind {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn describe_schema(root: &Map<String, Value>, schema: &Value) -> String {
    let schema = resolve(root, schema);
    if let Some(options) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        let kinds: Vec<String> = options.iter().map(|o| describe_schema(root, o)).collect();
        return kinds.join(" or ");
    }
    let article = |kind: &str| match kind {
        "string" => "a string".to_owned(),
        "integer" => "an integer".to_owned(),
        "number" => "a number".to_owned(),
        "boolean" => "true or false".to_owned(),
        "array" => {
            let items = schema
                .get("items")
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str);
            match items {
                Some(item) => format!("a list of {item}s"),
                None => "a list".to_owned(),
            }
        }
        "object" => "an object".to_owned(),
        "null" => "null".to_owned(),
        other => other.to_owned(),
    };
    match schema.get("type") {
        Some(Value::String(kind)) => article(kind),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .map(article)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a valid value".to_owned(),
    }
}

fn describe_value(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let shown = value.to_string();
    if shown.len() <= 40 {
        format!("{kind} ({shown})")
    } else {
        kind.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Map<String, Value> {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "A question."},
                "k": {"type": "integer"},
                "threshold": {"type": "number"},
                "scope": {"type": ["array", "null"], "items": {"type": "string"}},
                "tags": {"anyOf": [{"$ref": "#/$defs/Tags"}, {"type": "null"}]}
            },
            "required": ["query"],
            "$defs": {"Tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn check(arguments: Value, expected: Option<&str>) {
        let problem = argument_problem(&schema(), arguments.as_object());
        assert_eq!(problem.as_deref(), expected, "{arguments}");
    }

    #[test]
    fn fitting_arguments_pass() {
        check(json!({"query": "q"}), None);
        check(
            json!({"query": "q", "k": 3, "threshold": 1, "scope": null, "tags": "a,b"}),
            None,
        );
        check(json!({"query": "q", "tags": ["a"], "unknown": 1}), None);
    }

    #[test]
    fn problems_name_the_parameter() {
        check(
            json!({}),
            Some("missing required parameter 'query' (A question.)"),
        );
        check(
            json!({"query": 7}),
            Some("parameter 'query' must be a string, got a number (7)"),
        );
        check(
            json!({"query": "q", "k": "5"}),
            Some("parameter 'k' must be an integer, got a string (\"5\")"),
        );
        check(
            json!({"query": "q", "k": 2.5}),
            Some("parameter 'k' must be an integer, got a decimal number (2.5)"),
        );
        check(
            json!({"query": "q", "scope": "x"}),
            Some("parameter 'scope' must be a list of strings or null, got a string (\"x\")"),
        );
        check(
            json!({"query": "q", "tags": 3}),
            Some(
                "parameter 'tags' must be a list of strings or a string or null, got a number (3)",
            ),
        );
    }
}
