//! A key map: which tenant each API key belongs to, read from JSON such as
//! `{"mb_…": "acme", "mb_…": "globex"}` and kept only as key hashes.
//!
//! Errors name an entry by its position (and its tenant when that is a valid tenant name), never
//! by its key: a key map is a secret, and its errors end up in logs.

use std::collections::{HashMap, HashSet};
use std::fmt;

use membrain_memory::TenantId;
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::Value;

use crate::{ApiKey, KEY_PREFIX, KeyHash};

/// The shape every key map source holds, for messages.
pub const KEY_MAP_SHAPE: &str = r#"{"<api key>": "<tenant>", ...}"#;

/// Which tenant each key belongs to, by key hash.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyMap {
    tenants: HashMap<KeyHash, TenantId>,
}

impl KeyMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a JSON object mapping each key to its tenant. Every key must be non-empty, every
    /// tenant a valid tenant name, and no key may appear twice.
    pub fn parse_json(text: &str) -> Result<Self, KeyMapError> {
        let mut json = serde_json::Deserializer::from_str(text);
        let entries = (&mut json)
            .deserialize_map(OrderedEntries)
            // A map followed by anything but white space is not one JSON value.
            .and_then(|entries| json.end().map(|()| entries));
        let entries = match entries {
            Ok(entries) => entries,
            // Only the position is kept from serde_json's message: its data errors quote the
            // offending value, which may be a key.
            Err(e) if e.is_data() => return Err(KeyMapError::NotAnObject),
            Err(e) => {
                return Err(KeyMapError::Syntax {
                    line: e.line(),
                    column: e.column(),
                });
            }
        };
        let mut map = Self::new();
        let mut positions: HashMap<KeyHash, Entry> = HashMap::new();
        for (index, (key, tenant)) in entries.into_iter().enumerate() {
            let position = index + 1;
            let tenant = parse_tenant(position, tenant)?;
            let entry = Entry {
                position,
                tenant: Some(tenant.clone()),
            };
            let key = ApiKey::new(key).ok_or_else(|| KeyMapError::EmptyKey {
                entry: entry.clone(),
            })?;
            let hash = key.hash();
            if let Some(first) = positions.get(&hash) {
                return Err(KeyMapError::DuplicateKey {
                    first: first.clone(),
                    second: entry,
                });
            }
            positions.insert(hash.clone(), entry);
            map.tenants.insert(hash, tenant);
        }
        Ok(map)
    }

    /// Adds or replaces one key; answers the tenant it had before.
    pub fn insert(&mut self, key: &ApiKey, tenant: TenantId) -> Option<TenantId> {
        self.tenants.insert(key.hash(), tenant)
    }

    pub fn tenant(&self, key: &ApiKey) -> Option<&TenantId> {
        self.tenant_for_hash(&key.hash())
    }

    pub fn tenant_for_hash(&self, hash: &KeyHash) -> Option<&TenantId> {
        self.tenants.get(hash)
    }

    /// How many keys the map holds.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// How many distinct tenants the keys belong to.
    pub fn tenant_count(&self) -> usize {
        self.tenants.values().collect::<HashSet<_>>().len()
    }
}

impl fmt::Debug for KeyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMap")
            .field("keys", &self.len())
            .field("tenants", &self.tenant_count())
            .finish()
    }
}

fn parse_tenant(position: usize, value: Value) -> Result<TenantId, KeyMapError> {
    let unnamed = Entry {
        position,
        tenant: None,
    };
    let text = match value {
        Value::String(text) => text,
        other => {
            return Err(KeyMapError::TenantNotString {
                entry: unnamed,
                found: json_kind(&other),
            });
        }
    };
    // The value is not echoed: in a map written the wrong way round it is a key.
    TenantId::parse(&text).map_err(|_| KeyMapError::InvalidTenant {
        entry: unnamed,
        looks_like_a_key: text.trim().starts_with(KEY_PREFIX),
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The entries of a JSON object in document order, duplicates kept, so errors can name an
/// entry by the position its author sees.
struct OrderedEntries;

impl<'de> Visitor<'de> for OrderedEntries {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object mapping API keys to tenants")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(entry) = access.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// One entry of a key map, as errors name it: `entry 3 (tenant "acme")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based, in document order.
    pub position: usize,
    /// The entry's tenant, when it is a valid tenant name.
    pub tenant: Option<TenantId>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(tenant) => write!(f, "entry {} (tenant {:?})", self.position, tenant.as_str()),
            None => write!(f, "entry {}", self.position),
        }
    }
}

/// Why a text is not a key map. No variant carries any part of a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyMapError {
    #[error(
        "it is not valid JSON (error at line {line}, column {column}); expected {KEY_MAP_SHAPE}"
    )]
    Syntax { line: usize, column: usize },
    #[error("it is not a JSON object; expected {KEY_MAP_SHAPE}")]
    NotAnObject,
    #[error("{entry}: the key is empty")]
    EmptyKey { entry: Entry },
    #[error("{entry}: the tenant must be a string, found {found}")]
    TenantNotString { entry: Entry, found: &'static str },
    #[error(
        "{entry}: the tenant is not a valid tenant name (1 to 64 lower-case letters, digits, '-' \
         or '_'){}",
        if *looks_like_a_key {
            "; it looks like an API key: each entry goes from key to tenant, \"<api key>\": \"<tenant>\""
        } else {
            ""
        }
    )]
    InvalidTenant {
        entry: Entry,
        looks_like_a_key: bool,
    },
    #[error("{first} and {second} have the same key: give each key one entry")]
    DuplicateKey { first: Entry, second: Entry },
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "mb_AAAAsecretAAAA";
    const KEY_B: &str = "mb_BBBBsecretBBBB";

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("valid tenant")
    }

    fn key(text: &str) -> ApiKey {
        ApiKey::new(text).expect("non-empty key")
    }

    #[test]
    fn a_valid_map_resolves_by_hash() {
        let map = KeyMap::parse_json(&format!(
            r#" {{"{KEY_A}": "acme", "  {KEY_B} ": "globex", "mb_other": "acme"}} "#
        ))
        .expect("valid map");
        assert_eq!(map.len(), 3);
        assert_eq!(map.tenant_count(), 2);
        assert_eq!(map.tenant(&key(KEY_A)), Some(&tenant("acme")));
        // Keys are trimmed as presented keys are.
        assert_eq!(map.tenant(&key(KEY_B)), Some(&tenant("globex")));
        assert_eq!(map.tenant(&key("mb_unknown")), None);
        assert!(KeyMap::parse_json("{}").expect("empty map").is_empty());
    }

    #[test]
    fn debug_shows_counts_only() {
        let map = KeyMap::parse_json(&format!(r#"{{"{KEY_A}": "acme"}}"#)).expect("valid map");
        assert_eq!(format!("{map:?}"), "KeyMap { keys: 1, tenants: 1 }");
    }

    /// Each bad map, and the message it must give. None of them may contain any part of a key.
    #[test]
    fn errors_name_the_entry_and_never_the_key() {
        let cases: &[(String, &str)] = &[
            (
                format!(r#"{{"{KEY_A}": "acme", "{KEY_B}""#),
                "it is not valid JSON (error at line 1, column 49); expected {\"<api key>\": \"<tenant>\", ...}",
            ),
            (
                format!(r#"{{"{KEY_A}": "acme"}} trailing"#),
                "it is not valid JSON (error at line 1, column 31); expected {\"<api key>\": \"<tenant>\", ...}",
            ),
            (
                format!(r#"["{KEY_A}"]"#),
                "it is not a JSON object; expected {\"<api key>\": \"<tenant>\", ...}",
            ),
            (
                format!(r#""{KEY_A}""#),
                "it is not a JSON object; expected {\"<api key>\": \"<tenant>\", ...}",
            ),
            (
                format!(r#"{{"{KEY_A}": "acme", " ": "globex"}}"#),
                "entry 2 (tenant \"globex\"): the key is empty",
            ),
            (
                format!(r#"{{"{KEY_A}": "acme", "{KEY_B}": 7}}"#),
                "entry 2: the tenant must be a string, found a number",
            ),
            (
                format!(r#"{{"{KEY_A}": "Acme Corp"}}"#),
                "entry 1: the tenant is not a valid tenant name (1 to 64 lower-case letters, digits, '-' or '_')",
            ),
            (
                format!(r#"{{"acme": "{KEY_A}"}}"#),
                "entry 1: the tenant is not a valid tenant name (1 to 64 lower-case letters, digits, '-' or '_'); \
                 it looks like an API key: each entry goes from key to tenant, \"<api key>\": \"<tenant>\"",
            ),
            (
                format!(r#"{{"{KEY_A}": "acme", "{KEY_B}": "globex", " {KEY_A}": "initech"}}"#),
                "entry 1 (tenant \"acme\") and entry 3 (tenant \"initech\") have the same key: give each key one entry",
            ),
        ];
        for (text, expected) in cases {
            let error = KeyMap::parse_json(text).expect_err(text);
            let message = error.to_string();
            assert_eq!(message, *expected, "for {text}");
            for secret in [KEY_A, KEY_B] {
                assert!(!message.contains(&secret[3..]), "{message}");
                assert!(!format!("{error:?}").contains(&secret[3..]), "{error:?}");
            }
        }
    }
}
