//! `GET /stats`: counts for the caller's tenant.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsAnswer {
    pub total_memories: u64,
    pub total_links: u64,
    /// Links over memories, rounded to two places; 0 when there are none.
    pub avg_links_per_memory: f64,
    /// The most used tags, most used first.
    pub top_tags: Vec<TagCount>,
    pub categories: Vec<CategoryCount>,
    /// What the tenant holds against its quotas, so a 429 never comes as a surprise.
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagCount {
    pub tag: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    pub category: String,
    pub count: u64,
}

/// A tenant's usage beside its quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub memories: u64,
    pub stored_bytes: u64,
    pub pending_jobs: u64,
    pub max_memories: u64,
    pub max_stored_bytes: u64,
    pub max_pending_jobs: u64,
}
