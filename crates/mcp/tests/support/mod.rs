//! What the MCP gate tests share: a key resolver stub and the gateway backend over an embedded
//! time-series store, so the whole router runs without the REST API.

#![allow(dead_code)] // Each test binary uses a different part.

use std::path::Path;
use std::sync::Arc;

use membrain_auth::{ApiKey, AuthError, KeyResolver};
use membrain_mcp::McpBackend;
use membrain_memory::TenantId;
use membrain_timeseries::{ReadLimits, WriteLimits};
use membrain_ts_embedded::{EmbeddedOptions, EmbeddedStore};
use membrain_ts_service::TimeSeriesService;

pub const VALID_KEY: &str = "mb_fuzz_valid_key_0123456789";
/// A key whose check fails as if the key source were down: the documented 503.
pub const UNCHECKABLE_KEY: &str = "mb_fuzz_key_source_is_down";

/// Knows one key; cannot check another; refuses the rest.
pub struct StubKeys;

#[async_trait::async_trait]
impl KeyResolver for StubKeys {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        match key.expose_secret() {
            VALID_KEY => Ok(Some(TenantId::parse("fuzz").expect("tenant"))),
            UNCHECKABLE_KEY => Err(AuthError::Unavailable("the stub is down".into())),
            _ => Ok(None),
        }
    }
}

/// The gateway profile's backend: the `ts_*` tools over an embedded store in `dir`.
pub async fn direct_backend(dir: &Path) -> McpBackend {
    let store = EmbeddedStore::open(dir, EmbeddedOptions::default())
        .await
        .expect("open the embedded store");
    McpBackend::Direct {
        time_series: Arc::new(TimeSeriesService::new(
            Arc::new(store),
            WriteLimits::default(),
            ReadLimits::default(),
        )),
        keys: Arc::new(StubKeys),
    }
}
