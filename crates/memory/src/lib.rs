//! The memory domain of Membrain, free of I/O and protocols.
//!
//! An agent stores short facts ([`Memory`]); each belongs to one tenant ([`TenantId`]), carries
//! tags, a category, derived keywords and a short context, and is linked to other memories by
//! described edges ([`MemoryLink`]). This crate holds everything about memories that can be
//! decided without a database or a network:
//!
//! * validated identifiers and inputs ([`ids`], [`input`]) so the rest never doubts a raw string;
//! * text normalisation, exact-duplicate hashing and keyword extraction ([`text`]);
//! * the time a question names ("last May", "on 13 October 2023"), for time-aware search
//!   ([`when`]);
//! * key phrases, named entities and a readable context sentence, without a language model
//!   ([`phrases`]);
//! * lexical ranking of candidates with BM25 ([`lexical`]);
//! * tag filters built from user regexes, with size limits ([`tag_filter`]);
//! * graph walks over links: shortest path, neighbourhood, query-guided traversal ([`graph`]);
//! * what ingest decides: the near-duplicate and link targets among similar memories, and
//!   whether a new memory is created or merged into an exact or near duplicate ([`ingest`]).
//!
//! Architecture invariant: this crate depends on no storage, HTTP, MCP or CLI crate. Edge crates
//! convert their wire and row types to and from the types here.
//!
//! ```
//! use membrain_memory::text::content_hash;
//! assert_eq!(content_hash("  Hello   World "), content_hash("hello world"));
//! ```

pub mod embedding;
pub mod error;
pub mod graph;
pub mod ids;
pub mod ingest;
pub mod input;
pub mod lexical;
pub mod memory;
pub mod phrases;
pub mod tag_filter;
pub mod text;
pub mod when;

pub use embedding::Embedding;
pub use error::ValidationError;
pub use ids::{JobId, MemoryId, TenantId};
pub use input::{Limits, MemoryPatch, NewMemory, optional_observed_at, parse_time};
pub use memory::{EvolutionEvent, Memory, MemoryBrief, MemoryLink};
pub use tag_filter::TagFilter;
