//! The console's pages, one module per area. Each handler checks who is signed in, calls the
//! API with that session's key, and renders HTML with `maud` (which escapes every value).

pub mod graph;
pub mod keys;
pub mod memories;
pub mod network;
pub mod series;
pub mod sign_in;

use chrono::{DateTime, Utc};
use membrain_auth::ApiKey;
use serde::Serialize;

use crate::error::ConsoleError;
use crate::security::SignedIn;
use crate::session::Principal;

/// The key of a tenant's session; the operator's session has no tenant to show.
fn tenant_key(signed_in: &SignedIn) -> Result<&ApiKey, ConsoleError> {
    match signed_in.session.principal {
        Principal::Tenant(_) => Ok(&signed_in.session.key),
        Principal::Operator => Err(ConsoleError::forbidden(
            "The operator key belongs to no tenant, so it has no memories or time series to \
             show. Sign in with a tenant's API key to see them.",
        )),
    }
}

/// The key of the operator's session; a tenant's session may not administer keys.
fn operator_key(signed_in: &SignedIn) -> Result<&ApiKey, ConsoleError> {
    match signed_in.session.principal {
        Principal::Operator => Ok(&signed_in.session.key),
        Principal::Tenant(_) => Err(ConsoleError::forbidden(
            "Only the operator key may administer keys. Sign in with the operator key \
             (--operator-key) to create or revoke keys.",
        )),
    }
}

/// `text` cut to at most `chars` characters, with an ellipsis when cut.
fn short(text: &str, chars: usize) -> String {
    let mut cut: String = text.chars().take(chars).collect();
    if text.chars().nth(chars).is_some() {
        cut.push('…');
    }
    cut
}

/// A time as people read it on the page.
fn when(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `path?query`, the query URL-encoded from `query`'s fields (`None`s left out).
fn with_query(path: &str, query: &impl Serialize) -> String {
    match serde_urlencoded::to_string(query) {
        Ok(encoded) if !encoded.is_empty() => format!("{path}?{encoded}"),
        _ => path.to_owned(),
    }
}

/// A memory's console page, its id escaped as one path segment.
fn memory_href(id: &impl ToString) -> String {
    format!("/console/memories/{}", path_segment(&id.to_string()))
}

/// A memory's graph page.
fn graph_href(id: &impl ToString) -> String {
    format!("/console/graph/{}", path_segment(&id.to_string()))
}

/// One path segment, percent-encoded.
fn path_segment(raw: &str) -> String {
    crate::api::percent_encode_segment(raw)
}

/// The one field of a form that only proves it came from this session's page.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}
