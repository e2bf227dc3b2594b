//! Serving an axum [`Router`](axum::Router) over TCP with the limits every public server needs.
//! Both Membrain servers (the REST API and the MCP server) run through [`serve`] instead of
//! `axum::serve`, which has no timeouts and no caps.
//!
//! * [`HttpLimits`]: the header, idle, body and whole-request timeouts and the caps on open
//!   connections and requests in progress, with defaults for a task behind an AWS load balancer,
//!   and [`HttpLimits::validate`].
//! * [`serve`]: the accept loop (HTTP/1.1 through hyper), until a cancellation token fires, then a
//!   graceful stop bounded by a grace period.
//! * [`error_response`]: the `{"error": {"code", "message"}}` body both servers answer with.
//!
//! What a client meets at each limit:
//!
//! | Limit | Answer |
//! | --- | --- |
//! | request head not complete within `header_timeout` (slowloris) | the connection is closed |
//! | no request for `idle_timeout` (kept-alive connection), or a response left unread that long | the connection is closed |
//! | a pause longer than `body_timeout` while the body arrives | 408 `body_timeout` |
//! | the request not answered within `request_timeout` | 503 `deadline_exceeded` (the handler is stopped) |
//! | `max_connections` open | no more are accepted until one closes (clients wait in the kernel's queue) |
//! | `max_concurrent_requests` in progress | 503 `busy` with `Retry-After: 1` |
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use membrain_http::{HttpLimits, serve};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let router = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! serve(listener, router, HttpLimits::default(), shutdown, Duration::from_secs(20)).await?;
//! # Ok(()) }
//! ```
//!
//! Architecture invariant: knows HTTP and sockets only; no Membrain route, key, tenant or store.
//! What a route answers is the caller's router's business; this crate only bounds it.

mod connection;
mod limits;
mod request;
mod server;
mod throttle;

pub use limits::{HttpLimits, HttpLimitsError};
pub use request::error_response;
pub use server::serve;
