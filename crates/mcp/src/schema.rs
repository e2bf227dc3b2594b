//! The tools as `tools/list` sends them: schemas every MCP client accepts, and a title in the
//! annotations too.
//!
//! rmcp derives each tool's `inputSchema` and `outputSchema` with schemars (JSON Schema 2020-12).
//! Those are valid JSON Schema but not always valid on the MCP wire: a field typed `Value` gets
//! the boolean schema `true`, and the MCP schema (2025-06-18 and 2025-11-25) requires every
//! property schema to be an object, so strict clients refuse the whole tool list. [`wire_ready`]
//! rewrites each tool's schemas once, when the tools are built:
//!
//! * boolean subschemas become objects (`true` is `{}`, `false` is `{"not": {}}`), at any depth;
//! * `$ref`s into `$defs` are inlined (clients that know only draft-07, or no `$ref` at all,
//!   read every parameter), and `$defs` is dropped once nothing refers to it; a recursive
//!   definition keeps its `$ref` and `$defs`;
//! * schemars' integer and float formats (`uint64`, `double`, …), which are not JSON Schema
//!   formats and which strict validators refuse as unknown, are dropped (the bounds stay);
//! * the root is `"type": "object"`.
//!
//! The argument check ([`crate::arguments`]) reads the same rewritten `inputSchema` as clients.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};

/// Keywords whose value is one subschema (`items` may be a list of them, as in draft-07).
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
/// Keywords whose value maps names to subschemas.
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: [&str; 4] = ["prefixItems", "allOf", "anyOf", "oneOf"];

/// Keywords that only describe: a `$ref`'s siblings may override the definition's.
const ANNOTATIONS: [&str; 8] = [
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// schemars' numeric formats: not JSON Schema formats, so unknown to strict validators.
const NUMERIC_FORMATS: [&str; 14] = [
    "int", "int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32",
    "uint64", "uint128", "float", "double",
];

/// Prepares one tool for `tools/list`: its schemas fit for the MCP wire, and its title in its
/// annotations as well (clients of 2025-03-26 read only `annotations.title`).
pub(crate) fn wire_ready(tool: &mut Tool) {
    tool.input_schema = Arc::new(wire_schema(&tool.input_schema));
    if let Some(output) = &tool.output_schema {
        tool.output_schema = Some(Arc::new(wire_schema(output)));
    }
    let annotations = tool
        .annotations
        .get_or_insert_with(ToolAnnotations::default);
    if annotations.title.is_none() {
        annotations.title.clone_from(&tool.title);
    }
    if tool.title.is_none() {
        tool.title.clone_from(&annotations.title);
    }
}

/// `schema` as the MCP wire takes it (see the module's documentation).
pub fn wire_schema(schema: &JsonObject) -> JsonObject {
    let mut schema = schema.clone();
    normalise(&mut schema);
    inline_definitions(&mut schema);
    if !schema.contains_key("type") {
        schema.insert("type".into(), json!("object"));
    }
    schema
}

/// The object form of a boolean schema.
fn object_form(accepts_everything: bool) -> Map<String, Value> {
    if accepts_everything {
        Map::new()
    } else {
        let mut never = Map::new();
        never.insert("not".into(), Value::Object(Map::new()));
        never
    }
}

/// Calls `visit` on each direct subschema of `schema`.
fn for_each_subschema(schema: &mut Map<String, Value>, visit: &mut impl FnMut(&mut Value)) {
    for (keyword, value) in schema.iter_mut() {
        let keyword = keyword.as_str();
        if ONE_SCHEMA.contains(&keyword) {
            match value {
                Value::Array(list) => list.iter_mut().for_each(&mut *visit),
                other => visit(other),
            }
        } else if SCHEMA_MAPS.contains(&keyword) {
            if let Value::Object(map) = value {
                map.values_mut().for_each(&mut *visit);
            }
        } else if SCHEMA_LISTS.contains(&keyword)
            && let Value::Array(list) = value
        {
            list.iter_mut().for_each(&mut *visit);
        }
    }
}

/// Boolean subschemas to objects and numeric formats dropped, at every depth.
fn normalise(schema: &mut Map<String, Value>) {
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| NUMERIC_FORMATS.contains(&format))
    {
        schema.remove("format");
    }
    for_each_subschema(schema, &mut |subschema| {
        if let Value::Bool(accepts) = subschema {
            *subschema = Value::Object(object_form(*accepts));
        }
        if let Value::Object(object) = subschema {
            normalise(object);
        }
    });
}

/// Replaces every `$ref` into the root's `$defs` with the definition; keeps `$defs` only while a
/// (recursive) reference is left.
fn inline_definitions(root: &mut Map<String, Value>) {
    let Some(Value::Object(definitions)) = root.remove("$defs") else {
        return;
    };
    let mut expanding = Vec::new();
    let kept = inline(root, &definitions, &mut expanding);
    if kept {
        root.insert("$defs".into(), Value::Object(definitions));
    }
}

/// Inlines the references in `schema` and below; whether one had to stay (recursion).
fn inline(
    schema: &mut Map<String, Value>,
    definitions: &Map<String, Value>,
    expanding: &mut Vec<String>,
) -> bool {
    let mut kept = false;
    // The schema's own subschemas first: a definition put in below is inlined already.
    for_each_subschema(schema, &mut |subschema| {
        if let Value::Object(object) = subschema {
            kept |= inline(object, definitions, expanding);
        }
    });
    let target = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .map(str::to_owned);
    if let Some(name) = target {
        match definitions.get(&name) {
            Some(definition) if !expanding.contains(&name) => {
                let mut definition = match definition {
                    Value::Object(object) => object.clone(),
                    Value::Bool(accepts) => object_form(*accepts),
                    _ => Map::new(),
                };
                expanding.push(name);
                kept |= inline(&mut definition, definitions, expanding);
                expanding.pop();
                schema.remove("$ref");
                merge_definition(schema, definition);
            }
            _ => kept = true,
        }
    }
    kept
}

/// Puts `definition` where its `$ref` was: the reference's own annotations (its description)
/// win; any other keyword beside the reference keeps both, as `allOf`.
fn merge_definition(site: &mut Map<String, Value>, definition: Map<String, Value>) {
    let conflicts = site.keys().any(|keyword| {
        !ANNOTATIONS.contains(&keyword.as_str()) && definition.contains_key(keyword)
    });
    if conflicts {
        let all_of = site
            .entry("allOf")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = all_of {
            list.push(Value::Object(definition));
        }
        return;
    }
    for (keyword, value) in definition {
        site.entry(keyword).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn boolean_schemas_become_objects_at_every_depth() {
        let schema = object(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "memory": true,
                "never": false,
                "results": {"type": "array", "items": true},
                "rows": {"type": "array", "items": {"type": "array", "items": true}},
                "count": {"type": "integer", "format": "uint64", "minimum": 0},
                "when": {"type": "string", "format": "date-time"}
            },
            "additionalProperties": false
        }));
        assert_eq!(
            Value::Object(wire_schema(&schema)),
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "memory": {},
                    "never": {"not": {}},
                    "results": {"type": "array", "items": {}},
                    "rows": {"type": "array", "items": {"type": "array", "items": {}}},
                    "count": {"type": "integer", "minimum": 0},
                    "when": {"type": "string", "format": "date-time"}
                },
                "additionalProperties": {"not": {}}
            })
        );
    }

    #[test]
    fn definitions_are_inlined_and_their_siblings_kept() {
        let schema = object(json!({
            "type": "object",
            "properties": {
                "tags": {
                    "anyOf": [{"$ref": "#/$defs/Tags"}, {"type": "null"}],
                    "description": "Tags."
                },
                "usage": {"$ref": "#/$defs/Usage", "description": "The usage."},
                "bounded": {"$ref": "#/$defs/Usage", "required": ["memories"]},
                "anything": {"$ref": "#/$defs/Anything"}
            },
            "$defs": {
                "Tags": {
                    "description": "A list or a string.",
                    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
                },
                "Usage": {
                    "type": "object",
                    "description": "What the tenant holds.",
                    "properties": {"memories": {"type": "integer"}},
                    "required": []
                },
                "Anything": true
            }
        }));
        assert_eq!(
            Value::Object(wire_schema(&schema)),
            json!({
                "type": "object",
                "properties": {
                    "tags": {
                        "anyOf": [
                            {
                                "description": "A list or a string.",
                                "anyOf": [
                                    {"type": "array", "items": {"type": "string"}},
                                    {"type": "string"}
                                ]
                            },
                            {"type": "null"}
                        ],
                        "description": "Tags."
                    },
                    "usage": {
                        "type": "object",
                        "description": "The usage.",
                        "properties": {"memories": {"type": "integer"}},
                        "required": []
                    },
                    "bounded": {
                        "required": ["memories"],
                        "allOf": [{
                            "type": "object",
                            "description": "What the tenant holds.",
                            "properties": {"memories": {"type": "integer"}},
                            "required": []
                        }]
                    },
                    "anything": {}
                }
            })
        );
    }

    #[test]
    fn a_recursive_definition_keeps_its_reference() {
        let schema = object(json!({
            "type": "object",
            "properties": {"root": {"$ref": "#/$defs/Node"}},
            "$defs": {
                "Node": {
                    "type": "object",
                    "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}
                }
            }
        }));
        let wire = Value::Object(wire_schema(&schema));
        assert_eq!(
            wire["properties"]["root"]["properties"]["children"]["items"],
            json!({"$ref": "#/$defs/Node"})
        );
        assert_eq!(wire["$defs"], schema["$defs"]);
    }

    #[test]
    fn the_root_is_an_object_and_the_title_is_in_the_annotations() {
        let mut tool = Tool::new("add_memory", "Store a fact.", Arc::new(JsonObject::new()))
            .with_title("Add memory");
        tool.output_schema = Some(Arc::new(object(json!({"properties": {"memory": true}}))));
        wire_ready(&mut tool);
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
        assert_eq!(
            tool.output_schema
                .as_deref()
                .map(|s| Value::Object(s.clone())),
            Some(json!({"properties": {"memory": {}}, "type": "object"}))
        );
        assert_eq!(
            tool.annotations.and_then(|a| a.title).as_deref(),
            Some("Add memory")
        );
    }
}
