//! A CloudFormation template under construction: sections as JSON maps, intrinsic functions as
//! small helpers, and checkov suppressions kept next to the resource they excuse.
//!
//! The template is built as a `serde_json::Value` and printed by serde_json, never assembled as
//! text: a value from the topology is always a JSON string, so it can neither add keys nor
//! become an intrinsic function (`{"Fn::…": …}`, `{"Ref": …}`; the YAML short forms such as
//! `!Sub` do not exist in JSON). The one place topology text meets an intrinsic function is
//! `Fn::Sub`, where [`sub_literal`] escapes it.

use serde_json::{Map, Value, json};

/// The sections of a template. Keys are sorted when printed (serde_json's map), which keeps the
/// rendered file stable from one run to the next.
#[derive(Debug, Default)]
pub(crate) struct Template {
    pub description: String,
    pub parameters: Map<String, Value>,
    pub mappings: Map<String, Value>,
    pub conditions: Map<String, Value>,
    pub resources: Map<String, Value>,
    pub outputs: Map<String, Value>,
}

impl Template {
    pub fn parameter(&mut self, name: &str, definition: Value) {
        self.parameters.insert(name.to_owned(), definition);
    }

    pub fn condition(&mut self, name: &str, definition: Value) {
        self.conditions.insert(name.to_owned(), definition);
    }

    /// Adds (or replaces) a resource and returns it, for `DependsOn`, `Metadata` or policies.
    pub fn resource(&mut self, name: &str, kind: &str, properties: Value) -> &mut Value {
        let slot = self.resources.entry(name).or_insert(Value::Null);
        *slot = json!({ "Type": kind, "Properties": properties });
        slot
    }

    pub fn output(&mut self, name: &str, description: &str, value: Value) {
        self.outputs.insert(
            name.to_owned(),
            json!({ "Description": description, "Value": value }),
        );
    }

    pub fn into_json(self) -> Value {
        let mut template = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": self.description,
            "Resources": self.resources,
        });
        for (section, map) in [
            ("Parameters", self.parameters),
            ("Mappings", self.mappings),
            ("Conditions", self.conditions),
            ("Outputs", self.outputs),
        ] {
            if !map.is_empty() {
                template[section] = Value::Object(map);
            }
        }
        template
    }
}

/// Records checkov findings that are accepted on purpose, each with the reason a reviewer reads
/// (`Metadata.checkov.skip`). DEPLOY.md lists every one.
pub(crate) fn skip_checks(resource: &mut Value, checks: &[(&str, &str)]) {
    let skips: Vec<Value> = checks
        .iter()
        .map(|(id, comment)| json!({ "id": id, "comment": comment }))
        .collect();
    resource["Metadata"] = json!({ "checkov": { "skip": skips } });
}

pub(crate) fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

pub(crate) fn get_att(name: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [name, attribute] })
}

pub(crate) fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

/// `text` for splicing into an `Fn::Sub` string as literal text: every `${` becomes `${!`, which
/// `Fn::Sub` writes back as a literal `${`, so topology text can never name a parameter, a
/// resource or a pseudo parameter (`${AWS::AccountId}`). Everywhere else topology text is a plain
/// JSON string value, which CloudFormation never reads as an intrinsic function.
pub(crate) fn sub_literal(text: &str) -> String {
    text.replace("${", "${!")
}

pub(crate) fn tags(pairs: &[(&str, Value)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(key, value)| json!({ "Key": key, "Value": value }))
            .collect(),
    )
}

/// A `Name` tag of `membrain-<network>-<what>`, with the stack's network tag.
pub(crate) fn name_tags(network: &str, what: &str) -> Value {
    tags(&[
        ("Name", json!(format!("membrain-{network}-{what}"))),
        ("membrain:network", json!(network)),
    ])
}
