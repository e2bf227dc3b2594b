//! `GET /stats`: counts for the caller's tenant.

use axum::extract::State;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, Tenant};
use crate::server::AppState;

const TOP_TAGS: usize = 10;

pub async fn stats(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<ApiJson<Value>, ApiError> {
    let stats = state.store.stats(&tenant, TOP_TAGS).await?;
    let usage = state.store.tenant_usage(&tenant).await?;
    // Links per memory, as the public client prints it: links over memories, 0 when empty.
    let average = if stats.total_memories == 0 {
        0.0
    } else {
        stats.total_links as f64 / stats.total_memories as f64
    };
    Ok(ApiJson(json!({
        "total_memories": stats.total_memories,
        "total_links": stats.total_links,
        "avg_links_per_memory": (average * 100.0).round() / 100.0,
        "top_tags": stats.top_tags.iter().map(|(tag, count)| json!({"tag": tag, "count": count})).collect::<Vec<_>>(),
        "categories": stats.categories.iter().map(|(category, count)| json!({"category": category, "count": count})).collect::<Vec<_>>(),
        // What this tenant holds against its quotas, so a 429 never comes as a surprise.
        "usage": {
            "memories": usage.memories,
            "stored_bytes": usage.stored_bytes,
            "pending_jobs": usage.pending_jobs,
            "max_memories": state.limits.max_memories_per_tenant,
            "max_stored_bytes": state.limits.max_stored_bytes_per_tenant,
            "max_pending_jobs": state.limits.max_pending_jobs_per_tenant,
        },
    })))
}
