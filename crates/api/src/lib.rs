//! The Memory REST API of Membrain: the wire contract that the public `mem-brain-mcp` client
//! speaks, served with axum over a [`membrain_store::MemoryStore`].
//!
//! * [`server`]: [`ApiSettings`], the shared [`AppState`], the [`router`] and [`ApiServer`]
//!   (bind, then `run_until_stopped`), which `main` and the tests both use.
//! * [`routes`]: one handler module per area (memories, search, graph, stats, health): each
//!   parses into `membrain-memory` types, calls, and answers a `membrain-contract` type.
//! * [`search`]: search below its handler: ranking, related memories, relationship edges and
//!   the answer's assembly, typed.
//! * [`ingest`]: the worker that turns durable jobs into memories: vectors, near-duplicates,
//!   links, tags and context.
//! * [`semantic`]: the embedder, the optional language model and the per-tenant search indexes
//!   (kept in step with the database through its change feed), and the background embedder.
//! * [`keys`]: the key check in front of `/api/v1`, and the database as a key source.
//! * [`fair`]: each tenant's share of the CPU pool, request rate and requests in flight.
//! * [`maintenance`]: pruning of finished jobs and old tombstones on a schedule.
//! * [`error`]: [`ApiError`], the one `{"error": {"code", "message"}}` shape of every failure.
//!
//! Architecture invariant: handlers validate at the edge into `membrain-memory` types and keep no
//! state between requests (all state is in the store), so any number of API tasks can serve
//! one database.

pub mod error;
pub mod extract;
pub mod fair;
pub mod ingest;
pub mod keys;
pub mod maintenance;
pub mod routes;
pub mod search;
pub mod semantic;
pub mod server;

pub use error::ApiError;
pub use keys::DatabaseKeys;
pub use semantic::{Semantic, SemanticTuning};
pub use server::{ApiServer, ApiSettings, AppState, router};
