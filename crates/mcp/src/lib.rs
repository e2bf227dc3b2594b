//! The MCP server of Membrain: a thin, stateless bridge from MCP tools to the Memory REST API.
//!
//! * [`tools`]: [`MembrainTools`], the rmcp handler: one tool per REST call, the agent guide as a
//!   tool and as resources. Each tool forwards the caller's own key.
//! * [`api_client`]: [`MemoryApi`], how the bridge reaches the API: [`MemoryApiClient`], the
//!   pooled HTTP client, or [`InProcessApi`], the API's router in this process (`serve`).
//! * [`http`]: Streamable HTTP at `/mcp` with Host/Origin checks, the key check, then a body cap
//!   and JSON-RPC validation; [`McpServer`] binds and runs it through `membrain-http`.
//! * [`ts_tools`]: the `ts_*` time-series tools, through the API (`alb`) or, in the `gateway`
//!   profile, straight from the time-series store with a local key source ([`McpBackend`]).
//! * [`stdio`]: the same tools over stdin/stdout.
//! * [`key_check`]: asks the API whether a key is good (cached briefly).
//! * [`arguments`]: checks tool arguments against the tool's schema, naming the bad parameter.
//!
//! Architecture invariant: the bridge stores nothing and knows no tenant data of its own; in the
//! `alb` profile it never reads a database, in the `gateway` profile it reaches only the
//! time-series store (as seed 001's server does). Any number of tasks can serve any request.

pub mod api_client;
pub mod arguments;
pub mod http;
pub mod instructions;
pub mod key_check;
mod schema;
pub mod stdio;
pub mod tools;
pub mod ts_tools;

pub use api_client::{ApiCall, ApiCallError, Caller, InProcessApi, MemoryApi, MemoryApiClient};
pub use http::{
    AllowedHosts, AllowedHostsError, McpBackend, McpOAuth, McpServer, McpSettings, router,
    router_with,
};
pub use stdio::serve_stdio;
pub use tools::MembrainTools;
pub use ts_tools::{CallerTenant, TimeSeriesAccess};
