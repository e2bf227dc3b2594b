//! The web console of Membrain: pages at `/console` that show what a tenant has stored
//! (memories, search with why each result matched, one memory's history and links, the link
//! graph drawn to walk, time-series tables and charts), and let the operator administer keys;
//! plus the deployment's network plan as a diagram.
//!
//! * [`routes`] builds the `/console` router from [`ConsoleSettings`] and the API's router;
//!   `membrain serve` and `membrain api` serve it beside the API on the API's port.
//! * [`api`]: [`ConsoleApi`](api::ConsoleApi), the API's router called in process with the
//!   signed-in key, answers read into `membrain-contract` types.
//! * [`session`]: sessions in this process's memory (random 256-bit ids, CSRF tokens, idle and
//!   absolute expiry, a bounded count).
//! * [`security`]: headers on every answer (a CSP that admits no script), the cookie, the
//!   Origin check of every POST, CSRF checks, and forms read without ever answering 500.
//! * [`pages`]: one module per page, HTML written with `maud` (every value escaped).
//! * [`graph_layout`] (a radial layout, pure) and [`chart`] (`plotters` SVG) draw the pictures;
//!   [`network`] draws the plan's tiers and flows.
//!
//! Pages are server-rendered HTML and need no JavaScript: links and forms only.
//!
//! Architecture invariant: the console reaches data only through the API's router with the
//! signed-in key: it depends on no store, no index and not on `membrain-api`, so it can see no
//! more than that key's tenant, under the same limits and errors as any other client. Sessions
//! are per process (with several API tasks behind a load balancer, a user moved to another task
//! signs in again).

pub mod api;
pub mod chart;
mod error;
pub mod graph_layout;
mod layout;
pub mod network;
mod pages;
pub mod security;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use http::header::{self, HeaderValue};
use membrain_netsec::profiles::Profile;

pub use error::ConsoleError;
use security::SignedIn;
use session::{Principal, SessionLimits, Sessions};

/// What the console can be told.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Whose network plan the network page draws (`alb` or `gateway`).
    pub network_profile: Profile,
    /// Mark the session cookie `Secure` on every answer, not only when a proxy says the
    /// request came over TLS (`X-Forwarded-Proto: https`).
    pub always_secure_cookie: bool,
    pub sessions: SessionLimits,
    /// The longest one API call of a page may take.
    pub api_timeout: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            network_profile: Profile::Alb,
            always_secure_cookie: false,
            sessions: SessionLimits::default(),
            api_timeout: Duration::from_secs(30),
        }
    }
}

/// Shared by every console handler. Cheap to clone.
#[derive(Clone)]
pub struct ConsoleState {
    pub api: api::ConsoleApi,
    pub sessions: Arc<Sessions>,
    pub settings: Arc<ConsoleSettings>,
}

/// The largest form the console reads (a key, a search, a tenant name).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The console's routes under `/console`, calling `api_router` (the API's whole router, as
/// `ApiServer::router` gives it) for every piece of data.
pub fn routes(settings: ConsoleSettings, api_router: Router) -> Router {
    let state = ConsoleState {
        api: api::ConsoleApi::new(api_router, settings.api_timeout),
        sessions: Arc::new(Sessions::new(settings.sessions.clone())),
        settings: Arc::new(settings),
    };
    let console = Router::new()
        .route("/", get(home))
        .route(
            "/login",
            get(pages::sign_in::form).post(pages::sign_in::sign_in),
        )
        .route("/logout", post(pages::sign_in::sign_out))
        .route("/memories", get(pages::memories::list))
        .route("/memories/{memory_id}", get(pages::memories::one))
        .route("/search", get(pages::memories::search))
        .route("/graph/{memory_id}", get(pages::graph::neighbourhood))
        .route("/series", get(pages::series::tables))
        .route("/series/{database}/{table}", get(pages::series::table))
        .route("/keys", get(pages::keys::list).post(pages::keys::create))
        .route("/keys/{key_id}/revoke", post(pages::keys::revoke))
        .route("/network", get(pages::network::plan))
        .route("/static/console.css", get(stylesheet))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security::same_origin_posts))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ConsoleError::internal(&"a console handler panicked").into_response()
            },
        ));
    Router::new()
        .nest("/console", console)
        // What people type: the console's address with a trailing slash.
        .route(
            "/console/",
            get(|| async { security::see_other("/console") }),
        )
        .layer(middleware::from_fn(security::security_headers))
        // Each page in the log by method and path only: queries hold search text, and the
        // session cookie and keys are headers, never logged.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::extract::Request| {
                    tracing::info_span!(
                        "console",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                },
            ),
        )
}

/// `/console`: where a signed-in user starts, or the sign-in page.
async fn home(signed_in: Option<SignedIn>) -> Response {
    match signed_in.map(|s| s.session.principal) {
        Some(Principal::Tenant(_)) => security::see_other("/console/memories"),
        Some(Principal::Operator) => security::see_other("/console/keys"),
        None => security::see_other("/console/login"),
    }
}

impl axum::extract::OptionalFromRequestParts<ConsoleState> for SignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &ConsoleState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(security::session_id(&parts.headers).and_then(|id| {
            state
                .sessions
                .get(&id)
                .map(|session| SignedIn { id, session })
        }))
    }
}

/// The console's own stylesheet, compiled in.
async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        include_str!("../static/console.css"),
    )
        .into_response()
}

async fn not_found() -> ConsoleError {
    ConsoleError::not_found("There is no console page at this address.")
}

async fn method_not_allowed() -> ConsoleError {
    ConsoleError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "This page does not take that kind of request.",
    )
}
