//! The handlers of the REST API, one file per area of the contract.

pub mod graph;
pub mod health;
pub mod memories;
pub mod search;
pub mod stats;
pub mod timeseries;

use membrain_memory::{Limits, Memory, MemoryId, TenantId, ValidationError};

use crate::error::ApiError;
use crate::server::AppState;

/// Keeps a read within the configured caps on count and content bytes. Returns whether a cap
/// cut the list.
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

pub(crate) fn memory_size(memory: &Memory) -> usize {
    memory.content.len()
        + memory
            .links
            .iter()
            .map(|l| l.description.len() + 48)
            .sum::<usize>()
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
