//! Validated names: databases, tables, dimensions and measures. Each is parsed once at the edge,
//! so a value of these types is safe in messages, file names and (quoted) SQL identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TsError;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

macro_rules! container_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// 3 to 256 letters, digits, `_` or `-` (Timestream's rule, without its `.`,
            /// so that `database.table` is never ambiguous).
            pub fn parse(raw: &str) -> Result<Self, TsError> {
                if (3..=256).contains(&raw.len()) && raw.chars().all(is_name_char) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(TsError::invalid(
                        $what,
                        format!(
                            "{raw:?} is not a valid {} name: use 3 to 256 letters, digits, '_' or '-'",
                            $what
                        ),
                    ))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = TsError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

container_name!(
    /// A database: a tenant's named group of tables.
    DatabaseName,
    "database"
);
container_name!(
    /// A table inside a database.
    TableName,
    "table"
);

/// A table, fully named: `database.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableRef {
    pub database: DatabaseName,
    pub table: TableName,
}

impl TableRef {
    pub fn new(database: DatabaseName, table: TableName) -> Self {
        Self { database, table }
    }

    pub fn parse(database: &str, table: &str) -> Result<Self, TsError> {
        Ok(Self::new(
            DatabaseName::parse(database)?,
            TableName::parse(table)?,
        ))
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// Names a record may not use for a dimension or measure: they are the columns every row has.
pub const RESERVED_NAMES: [&str; 3] = ["time", "measure_name", "measure_value"];

/// The name of a dimension or a measure: 1 to 128 letters, digits, `_`, `-` or `.`, starting
/// with a letter or `_`; not one of [`RESERVED_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AttributeName(String);

impl AttributeName {
    pub fn parse(raw: &str) -> Result<Self, TsError> {
        let starts_well = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let ok = (1..=128).contains(&raw.len())
            && starts_well
            && raw.chars().all(|c| is_name_char(c) || c == '.');
        if !ok {
            return Err(TsError::invalid(
                "name",
                format!(
                    "{raw:?} is not a valid dimension or measure name: use 1 to 128 letters, digits, \
                     '_', '-' or '.', starting with a letter or '_'"
                ),
            ));
        }
        if RESERVED_NAMES
            .iter()
            .any(|reserved| raw.eq_ignore_ascii_case(reserved))
        {
            return Err(TsError::invalid(
                "name",
                format!("{raw:?} is reserved (every row has it); choose another name"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AttributeName {
    type Error = TsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AttributeName> for String {
    fn from(value: AttributeName) -> Self {
        value.0
    }
}

impl std::borrow::Borrow<str> for AttributeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_timestream_without_dots() {
        for good in ["transit", "bus_position", "a-b", &"x".repeat(256)] {
            assert!(DatabaseName::parse(good).is_ok(), "{good}");
            assert!(TableName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ab",
            "a.b.c",
            "has space",
            "ünï",
            &"x".repeat(257),
            "x;drop",
        ] {
            let error = TableName::parse(bad).unwrap_err().to_string();
            assert!(error.contains("3 to 256"), "{bad}: {error}");
        }
    }

    #[test]
    fn attribute_names_refuse_reserved_and_odd_characters() {
        for good in ["speed", "bus_id", "_x", "co2.level", "a-b"] {
            assert!(AttributeName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "a b", "x'y", &"x".repeat(129)] {
            assert!(AttributeName::parse(bad).is_err(), "{bad}");
        }
        for reserved in ["time", "TIME", "measure_name", "measure_value"] {
            let error = AttributeName::parse(reserved).unwrap_err().to_string();
            assert!(error.contains("reserved"), "{reserved}: {error}");
        }
    }

    #[test]
    fn table_refs_print_qualified() {
        let table = TableRef::parse("transit", "bus_position").unwrap();
        assert_eq!(table.to_string(), "transit.bus_position");
    }
}
