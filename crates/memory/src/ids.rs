//! Validated identifiers. Each is parsed once at the edge; inside, a value of these types is
//! known to be well formed.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ValidationError;

/// The tenant a key belongs to. Lower-case letters, digits, `-` and `_`, 1 to 64 characters, so
/// it is safe in logs, file names and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok_len = (1..=64).contains(&raw.len());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok_len && ok_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "tenant",
                format!(
                    "{raw:?} is not a valid tenant name: use 1 to 64 lower-case letters, digits, '-' or '_'"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TenantId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUID v7), so ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses a caller-supplied id; the error names `field` and says what an id looks like.
            pub fn parse_field(raw: &str, field: &str) -> Result<Self, ValidationError> {
                Uuid::parse_str(raw.trim()).map(Self).map_err(|_| {
                    ValidationError::new(
                        field,
                        format!(
                            "{:?} is not a valid {} (expected a UUID such as 0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b)",
                            truncate_for_message(raw),
                            $field
                        ),
                    )
                })
            }

            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                Self::parse_field(raw, $field)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }
    };
}

uuid_id!(
    /// The id of one memory, unique across tenants.
    MemoryId,
    "memory id"
);
uuid_id!(
    /// The id of one durable ingest job.
    JobId,
    "job id"
);

/// Shortens a caller's value for an error message, so a huge bad input is not echoed back whole.
pub fn truncate_for_message(raw: &str) -> String {
    const MAX: usize = 80;
    if raw.len() <= MAX {
        return raw.to_owned();
    }
    let mut end = MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_checked() {
        assert!(TenantId::parse("default").is_ok());
        assert!(TenantId::parse("team-a_2").is_ok());
        for bad in ["", "Upper", "has space", "a/b", &"x".repeat(65)] {
            let err = TenantId::parse(bad).unwrap_err();
            assert_eq!(err.field, "tenant", "{bad:?}");
        }
    }

    #[test]
    fn memory_ids_round_trip_and_reject_garbage() {
        let id = MemoryId::new();
        assert_eq!(MemoryId::parse(&id.to_string()).unwrap(), id);
        let err = MemoryId::parse_field("not-an-id", "memory_ids[0]").unwrap_err();
        assert_eq!(err.field, "memory_ids[0]");
        assert!(err.message.contains("not-an-id"));
    }

    #[test]
    fn long_values_are_truncated_in_messages() {
        let long = "é".repeat(100);
        let shown = truncate_for_message(&long);
        assert!(shown.len() < 90);
        assert!(shown.ends_with('…'));
    }
}
