//! The Memory REST API's wire contract (`/api/v1/…`): one typed struct for every request and
//! answer, and the error shape. The API (`membrain-api`) serialises these; the MCP bridge and
//! the CLI (`membrain-mcp`, `membrain ts`) deserialise them, so a renamed field fails to compile
//! on both sides instead of at run time.
//!
//! The shapes are the public `mem-brain-mcp` 1.1.5 contract plus Membrain's additions; the
//! snapshot tests (`tests/wire.rs`) hold the JSON each type makes, field by field.
//!
//! Requests are lenient where the API answers a missing field with a validation error that
//! names it (ids and texts are `Option`s), so a bad call gets a 400 that says how to fix it,
//! never a bare deserialisation failure. Answers reuse the domain's types ([`Memory`],
//! [`MemoryId`]) where the wire carries them whole.
//!
//! Architecture invariant: this crate holds data shapes only: no I/O, no HTTP, no store.
//!
//! [`Memory`]: membrain_memory::Memory
//! [`MemoryId`]: membrain_memory::MemoryId

pub mod admin;
pub mod error;
pub mod graph;
pub mod health;
pub mod memories;
pub mod search;
pub mod stats;
pub mod ts;

pub use error::{ErrorBody, ErrorDetail};
