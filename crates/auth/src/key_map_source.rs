//! Where a key map comes from: an environment variable, a file, or (in `membrain-secrets`) an
//! AWS Secrets Manager secret. [`crate::RefreshingKeys`] turns any of them into a resolver.

use std::path::{Path, PathBuf};

use crate::AuthError;
use crate::key_map::{KEY_MAP_SHAPE, KeyMap};

/// A place that holds a key map, read again at each `load` so rotated keys are seen.
#[async_trait::async_trait]
pub trait KeyMapSource: Send + Sync + 'static {
    /// Reads and parses the whole map. Errors never contain any part of a key.
    async fn load(&self) -> Result<KeyMap, AuthError>;

    /// What this source is, for messages: `environment variable MEMBRAIN_API_KEYS`.
    fn describe(&self) -> String;
}

/// A key map in an environment variable (JSON, [`EnvKeyMap::DEFAULT_VAR`] unless named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvKeyMap {
    var: String,
}

impl EnvKeyMap {
    pub const DEFAULT_VAR: &str = "MEMBRAIN_API_KEYS";

    pub fn new(var: impl Into<String>) -> Self {
        Self { var: var.into() }
    }
}

impl Default for EnvKeyMap {
    fn default() -> Self {
        Self::new(Self::DEFAULT_VAR)
    }
}

#[async_trait::async_trait]
impl KeyMapSource for EnvKeyMap {
    async fn load(&self) -> Result<KeyMap, AuthError> {
        let text = std::env::var(&self.var).map_err(|e| {
            let why = match e {
                std::env::VarError::NotPresent => "is not set",
                std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
            };
            AuthError::Unavailable(format!(
                "{} {why}: set it to a JSON object mapping each API key to its tenant, {KEY_MAP_SHAPE}",
                self.describe()
            ))
        })?;
        parse(self, &text)
    }

    fn describe(&self) -> String {
        format!("environment variable {}", self.var)
    }
}

/// A key map in a JSON file, read again at each load, so editing the file rotates keys without a
/// restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKeyMap {
    path: PathBuf,
}

impl FileKeyMap {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait::async_trait]
impl KeyMapSource for FileKeyMap {
    async fn load(&self) -> Result<KeyMap, AuthError> {
        let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| {
            AuthError::Unavailable(format!(
                "cannot read {}: {e} (it should hold a JSON object mapping each API key to its \
                 tenant, {KEY_MAP_SHAPE})",
                self.describe()
            ))
        })?;
        parse(self, &text)
    }

    fn describe(&self) -> String {
        format!("key map file {}", self.path.display())
    }
}

/// Parses a source's text, naming the source in the error.
pub(crate) fn parse(source: &dyn KeyMapSource, text: &str) -> Result<KeyMap, AuthError> {
    KeyMap::parse_json(text).map_err(|problem| AuthError::InvalidKeyMap {
        origin: source.describe(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use membrain_memory::TenantId;

    use super::*;
    use crate::ApiKey;

    #[tokio::test]
    async fn a_file_is_read_again_at_each_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.json");
        let source = FileKeyMap::new(&path);

        let missing = source.load().await.expect_err("no file yet").to_string();
        assert!(missing.starts_with("the key store is unavailable: cannot read key map file "));

        std::fs::write(&path, r#"{"mb_first": "acme"}"#).expect("write keys");
        let first = source.load().await.expect("valid file");
        let acme = TenantId::parse("acme").expect("valid tenant");
        assert_eq!(
            first.tenant(&ApiKey::new("mb_first").expect("key")),
            Some(&acme)
        );

        std::fs::write(&path, r#"{"mb_second": "acme"}"#).expect("write keys");
        let second = source.load().await.expect("valid file");
        assert_eq!(second.tenant(&ApiKey::new("mb_first").expect("key")), None);
        assert_eq!(
            second.tenant(&ApiKey::new("mb_second").expect("key")),
            Some(&acme)
        );

        std::fs::write(&path, r#"{"mb_second": "Acme"}"#).expect("write keys");
        let invalid = source.load().await.expect_err("bad tenant").to_string();
        assert_eq!(
            invalid,
            format!(
                "key map file {} does not hold a valid key map: entry 1: the tenant is not a \
                 valid tenant name (1 to 64 lower-case letters, digits, '-' or '_')",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn an_unset_variable_says_what_to_set() {
        // Tests cannot set variables (`set_var` is unsafe); a name nobody sets shows the message.
        let source = EnvKeyMap::new("MEMBRAIN_TEST_KEYS_NEVER_SET");
        assert_eq!(
            source.load().await.expect_err("unset").to_string(),
            "the key store is unavailable: environment variable MEMBRAIN_TEST_KEYS_NEVER_SET is \
             not set: set it to a JSON object mapping each API key to its tenant, \
             {\"<api key>\": \"<tenant>\", ...}"
        );
        assert_eq!(
            EnvKeyMap::default().describe(),
            "environment variable MEMBRAIN_API_KEYS"
        );
    }
}
