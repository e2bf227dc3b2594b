//! The handlers of the REST API, one file per area of the contract.

pub mod admin;
pub mod graph;
pub mod health;
pub mod memories;
pub mod search;
pub mod stats;
pub mod timeseries;

use membrain_memory::{Limits, Memory, MemoryId, TenantId, ValidationError};

use crate::error::ApiError;
use crate::server::AppState;

/// Keeps a read within the configured caps on count and bytes. Returns whether a cap cut the
/// list. `size` should count everything the item serialises to ([`json_size`]): history,
/// links and all, since that is what the answer carries.
pub(crate) fn bound<T>(items: &mut Vec<T>, limits: &Limits, size: impl Fn(&T) -> usize) -> bool {
    let mut bytes = 0usize;
    let mut keep = 0usize;
    for item in items.iter() {
        bytes = bytes.saturating_add(size(item));
        if keep >= limits.max_result_memories || (keep > 0 && bytes > limits.max_result_bytes) {
            break;
        }
        keep += 1;
    }
    let truncated = keep < items.len();
    items.truncate(keep);
    truncated
}

/// The bytes `value` serialises to as JSON, counted without building the text.
pub(crate) fn json_size<T: serde::Serialize>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Plain data always serialises; on the impossible failure, count what was written.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Parses a required id parameter, treating an empty value as missing.
pub(crate) fn required_id(raw: Option<&str>, field: &str) -> Result<MemoryId, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Ok(MemoryId::parse_field(raw, field)?),
        None => Err(ValidationError::new(field, "is required").into()),
    }
}

/// Loads one memory or answers 404 naming the field.
pub(crate) async fn load_memory(
    state: &AppState,
    tenant: &TenantId,
    id: MemoryId,
    field: &str,
) -> Result<Memory, ApiError> {
    state
        .store
        .memories(tenant, &[id])
        .await?
        .pop()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{field}: memory {id} not found for this API key's tenant"
            ))
        })
}
