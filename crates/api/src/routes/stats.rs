//! `GET /stats`: counts for the caller's tenant.

use axum::extract::State;
use membrain_contract::stats::{CategoryCount, StatsAnswer, TagCount, Usage};

use crate::error::ApiError;
use crate::extract::{ApiJson, Tenant};
use crate::server::AppState;

const TOP_TAGS: usize = 10;

pub async fn stats(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<ApiJson<StatsAnswer>, ApiError> {
    let stats = state.store.stats(&tenant, TOP_TAGS).await?;
    let usage = state.store.tenant_usage(&tenant).await?;
    // Links per memory, as the public client prints it: links over memories, 0 when empty.
    let average = if stats.total_memories == 0 {
        0.0
    } else {
        stats.total_links as f64 / stats.total_memories as f64
    };
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let limits = &state.limits;
    Ok(ApiJson(StatsAnswer {
        total_memories: count(stats.total_memories),
        total_links: count(stats.total_links),
        avg_links_per_memory: (average * 100.0).round() / 100.0,
        top_tags: stats
            .top_tags
            .into_iter()
            .map(|(tag, n)| TagCount {
                tag,
                count: count(n),
            })
            .collect(),
        categories: stats
            .categories
            .into_iter()
            .map(|(category, n)| CategoryCount {
                category,
                count: count(n),
            })
            .collect(),
        usage: Usage {
            memories: count(usage.memories),
            stored_bytes: count(usage.stored_bytes),
            pending_jobs: count(usage.pending_jobs),
            max_memories: limits.max_memories_per_tenant as u64,
            max_stored_bytes: limits.max_stored_bytes_per_tenant as u64,
            max_pending_jobs: limits.max_pending_jobs_per_tenant as u64,
        },
    }))
}
