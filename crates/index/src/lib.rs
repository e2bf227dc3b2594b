//! Hybrid search over one tenant's memories, held in memory: BM25 over their text, cosine
//! similarity over their embeddings, and fusion of the two lists (relative-score fusion, which
//! search uses; reciprocal-rank fusion is kept for comparison).
//!
//! Why it exists: loading every candidate from SQL and ranking it per request grows with the
//! tenant; an index answers a search in a few milliseconds at 100,000 memories, and the database
//! stays the one source of truth that the index is rebuilt from.
//!
//! * [`TenantIndex`] holds one tenant's [`Document`]s: [`TenantIndex::lexical`] ranks them by BM25
//!   (the same ranking as `membrain_memory::lexical::rank_bm25`) and [`TenantIndex::dense`] by
//!   cosine similarity; both take a tag filter that is applied before the best `k` are chosen
//!   (and the `_where` forms a filter on tags and observation time together).
//! * [`fuse_relative`] merges the two rankings ([`Scored`]) by their scores rescaled to 0..=1
//!   and weighted (what search uses); [`fuse_rrf`] by reciprocal rank, for comparison;
//!   [`blend`] mixes two such rankings (search's time-aware one with the overall one).
//!
//! Modules: `lexical` (the inverted index), `dense` (vector storage and the quantised scan),
//! `top_k` (the bounded heap both use), `fusion` (relative-score and reciprocal-rank fusion).
//!
//! Architecture invariant: pure: no I/O, no async, no storage; the API keeps one `TenantIndex`
//! per tenant in sync with the database. This crate depends on `membrain-memory` (for ids and
//! tokenisation, so lexical ranks agree with the rest of Membrain) and `rayon`, nothing else.
//!
//! ```
//! use membrain_index::{Document, TenantIndex, fuse_relative};
//! use membrain_memory::MemoryId;
//!
//! let mut index = TenantIndex::new(2);
//! let coffee = MemoryId::new();
//! index.upsert(Document {
//!     id: coffee,
//!     text: "The user drinks coffee every morning".into(),
//!     tags: vec!["food".into()],
//!     embedding: Some(vec![1.0, 0.0]),
//!     observed_at: 0,
//! });
//! let any = |_: &[String]| true;
//! let lexical = index.lexical("coffee", &any, 10);
//! let dense = index.dense(&[1.0, 0.0], &any, 10, 0.5);
//! let fused = fuse_relative(&lexical, &dense, 0.6, 10);
//! assert_eq!(fused[0].id, coffee);
//! ```

mod dense;
mod fusion;
mod lexical;
mod tenant_index;
mod top_k;

use membrain_memory::MemoryId;

pub use fusion::{Fused, best_scored, blend, fuse_relative, fuse_rrf, fuse_rrf_with_ranks};
pub use tenant_index::{DocumentFilter, TenantIndex, VectorStatus};

/// One memory as the index sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: MemoryId,
    /// The text ranked by BM25 (split into stemmed terms by `membrain_memory::text::terms`).
    pub text: String,
    /// The tags a search filter is tested against.
    pub tags: Vec<String>,
    /// A unit-length embedding of `dimensions` components, or `None` for lexical-only memories.
    pub embedding: Option<Vec<f32>>,
    /// When the memory's fact was observed, in microseconds since the epoch: what a search for a
    /// time ("last May") filters on.
    pub observed_at: i64,
}

/// One search hit: a memory and its score (higher is better; the scale depends on the ranking).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub id: MemoryId,
    pub score: f32,
}
