//! API keys for Membrain: how they look, how they are stored, and how a key becomes a tenant.
//!
//! * [`ApiKey`] wraps a secret key so it cannot be printed or logged by accident: its `Debug`
//!   shows `ApiKey(<redacted>)` and it has no `Display`.
//! * [`ApiKey::generate`] makes a new key (`mb_` and 40 random base62 characters, about 238
//!   bits); the `mb_` prefix is what MCP clients and bridges recognise as a Membrain bearer token.
//! * [`KeyHash`] is what is stored: the hex SHA-256 of the key. Keys are random and long, so a
//!   fast hash is enough; nothing about the key can be recovered from it.
//! * [`KeyResolver`] turns a presented key into its [`TenantId`]; [`StaticKey`] is the
//!   single-user source (an environment variable or a file) and [`ResolverChain`] tries several.
//! * [`KeyMap`] is many keys for many tenants, read from JSON (`{"<api key>": "<tenant>"}`) and
//!   kept as hashes; a [`KeyMapSource`] holds one ([`EnvKeyMap`], [`FileKeyMap`], or AWS Secrets
//!   Manager in `membrain-secrets`), and [`RefreshingKeys`] resolves keys from it, reloading it
//!   so rotated keys take effect without a restart.
//!
//! ```no_run
//! # async fn example() -> Result<(), membrain_auth::AuthError> {
//! use std::sync::Arc;
//! use membrain_auth::{ApiKey, EnvKeyMap, KeyResolver, RefreshSettings, RefreshingKeys};
//!
//! let keys = RefreshingKeys::new(Arc::new(EnvKeyMap::default()), RefreshSettings::default()).await?;
//! let tenant = keys.resolve(&ApiKey::generate()).await?; // None: an unknown key
//! # Ok(()) }
//! ```
//!
//! Keys never appear in messages: errors about a key map name the entry by position and tenant.
//!
//! Architecture invariant: this crate knows nothing of HTTP, MCP, SQL or any cloud SDK. The
//! database and Secrets Manager key sources live in their own crates and plug in through
//! [`KeyResolver`] and [`KeyMapSource`].

mod key_map;
mod key_map_source;
mod refreshing_keys;

pub use key_map::{Entry as KeyMapEntry, KEY_MAP_SHAPE, KeyMap, KeyMapError};
pub use key_map_source::{EnvKeyMap, FileKeyMap, KeyMapSource};
pub use refreshing_keys::{RefreshSettings, RefreshingKeys};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use membrain_memory::TenantId;
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// The prefix of every key Membrain issues.
pub const KEY_PREFIX: &str = "mb_";

/// A secret API key as presented by a caller or just generated.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a presented key. Surrounding white space is dropped; an empty key is `None`.
    pub fn new(raw: impl Into<String>) -> Option<Self> {
        let raw = raw.into();
        let trimmed = raw.trim();
        (!trimmed.is_empty()).then(|| Self(trimmed.to_owned()))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(40)
            .map(char::from)
            .collect();
        Self(format!("{KEY_PREFIX}{random}"))
    }

    /// The key itself, for the one place that must show or send it (printing a new key once,
    /// forwarding it to the REST API).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The stored form of a key: lower-case hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    /// Wraps a hash read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a key could not be checked (not: why it was refused; a refused key is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("the key store is unavailable: {0}")]
    Unavailable(String),
    /// A key map source answered, but not with a valid key map.
    #[error("{origin} does not hold a valid key map: {problem}")]
    InvalidKeyMap {
        /// The source, as [`KeyMapSource::describe`] puts it.
        origin: String,
        problem: KeyMapError,
    },
}

/// A source of keys: answers which tenant a key belongs to, or `None` for an unknown or revoked
/// key.
#[async_trait::async_trait]
pub trait KeyResolver: Send + Sync + 'static {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError>;
}

/// One configured key for one tenant: the single-user set-up (`MEMBRAIN_API_KEY`, a key file).
#[derive(Debug, Clone)]
pub struct StaticKey {
    hash: KeyHash,
    tenant: TenantId,
}

impl StaticKey {
    pub fn new(key: &ApiKey, tenant: TenantId) -> Self {
        Self {
            hash: key.hash(),
            tenant,
        }
    }
}

#[async_trait::async_trait]
impl KeyResolver for StaticKey {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        Ok((key.hash() == self.hash).then(|| self.tenant.clone()))
    }
}

/// Tries each source in order; the first that knows the key decides.
#[derive(Clone, Default)]
pub struct ResolverChain {
    sources: Vec<Arc<dyn KeyResolver>>,
}

impl fmt::Debug for ResolverChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverChain")
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl ResolverChain {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, source: Arc<dyn KeyResolver>) -> Self {
        self.sources.push(source);
        self
    }
}

#[async_trait::async_trait]
impl KeyResolver for ResolverChain {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        for source in &self.sources {
            if let Some(tenant) = source.resolve(key).await? {
                return Ok(Some(tenant));
            }
        }
        Ok(None)
    }
}

/// The header in which the service key names the tenant a call is made for (see the API's
/// `--service-key`): the MCP bridge sends it for a caller it identified by an OAuth token, and the
/// API accepts it from the service key alone.
pub const TENANT_HEADER: &str = "x-membrain-tenant";

/// Reads the caller's key from request headers: `X-API-Key` first, then `Authorization: Bearer`.
/// Header lookup is left to the caller (any HTTP library) through `header`.
pub fn key_from_headers<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<ApiKey> {
    if let Some(key) = header("x-api-key").and_then(ApiKey::new) {
        return Some(key);
    }
    let authorization = header("authorization")?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| ApiKey::new(token))
        .flatten()
}

/// Remembers recent answers of a slower source for `ttl`, so a busy agent does not cost a
/// database read per call. A revoked key stops working within `ttl` on every task; a zero `ttl`
/// turns the cache off.
pub struct CachedKeys {
    inner: Arc<dyn KeyResolver>,
    ttl: Duration,
    // A std mutex: held only to read or insert one entry, never across an await.
    entries: Mutex<HashMap<KeyHash, (Option<TenantId>, Instant)>>,
}

impl CachedKeys {
    const MAX_ENTRIES: usize = 10_000;

    pub fn new(inner: Arc<dyn KeyResolver>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl KeyResolver for CachedKeys {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        if self.ttl.is_zero() {
            metrics::counter!("membrain_key_cache_misses_total").increment(1);
            return self.inner.resolve(key).await;
        }
        let hash = key.hash();
        if let Ok(entries) = self.entries.lock()
            && let Some((tenant, at)) = entries.get(&hash)
            && at.elapsed() < self.ttl
        {
            metrics::counter!("membrain_key_cache_hits_total").increment(1);
            return Ok(tenant.clone());
        }
        metrics::counter!("membrain_key_cache_misses_total").increment(1);
        let tenant = self.inner.resolve(key).await?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
                if entries.len() >= Self::MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(hash, (tenant.clone(), Instant::now()));
        }
        Ok(tenant)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn generated_keys_are_prefixed_unique_and_redacted() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert!(a.expose_secret().starts_with(KEY_PREFIX));
        assert_eq!(a.expose_secret().len(), KEY_PREFIX.len() + 40);
        assert_ne!(a, b);
        let debug = format!("{a:?}");
        assert!(!debug.contains(&a.expose_secret()[3..]), "{debug}");
        assert_eq!(a.hash().as_str().len(), 64);
    }

    #[test]
    fn headers_are_read_in_order() {
        let read = |pairs: &'static [(&'static str, &'static str)]| {
            key_from_headers(|name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
                .map(|k| k.expose_secret().to_owned())
        };
        assert_eq!(
            read(&[("x-api-key", "mb_a"), ("authorization", "Bearer mb_b")]).unwrap(),
            "mb_a"
        );
        assert_eq!(read(&[("authorization", "Bearer mb_b")]).unwrap(), "mb_b");
        assert_eq!(read(&[("authorization", "bearer  mb_c ")]).unwrap(), "mb_c");
        assert!(read(&[("authorization", "Basic abc")]).is_none());
        assert!(read(&[("x-api-key", "  ")]).is_none());
        assert!(read(&[]).is_none());
    }

    #[tokio::test]
    async fn chain_resolves_static_keys() {
        let key = ApiKey::generate();
        let tenant = TenantId::parse("default").unwrap();
        let chain = ResolverChain::new().with(Arc::new(StaticKey::new(&key, tenant.clone())));
        assert_eq!(chain.resolve(&key).await.unwrap(), Some(tenant));
        assert_eq!(chain.resolve(&ApiKey::generate()).await.unwrap(), None);
    }

    struct Counting(AtomicUsize, TenantId);

    #[async_trait::async_trait]
    impl KeyResolver for Counting {
        async fn resolve(&self, _key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Some(self.1.clone()))
        }
    }

    #[tokio::test]
    async fn cache_answers_within_ttl_then_asks_again() {
        let inner = Arc::new(Counting(AtomicUsize::new(0), TenantId::parse("t").unwrap()));
        let cache = CachedKeys::new(inner.clone(), Duration::from_secs(5));
        let key = ApiKey::generate();
        cache.resolve(&key).await.unwrap();
        cache.resolve(&key).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        let uncached = CachedKeys::new(inner.clone(), Duration::ZERO);
        uncached.resolve(&key).await.unwrap();
        uncached.resolve(&key).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
    }
}
