//! `/health` (the process is alive), `/ready` (the database answers) and `whoami` (the key is good).

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, Tenant};
use crate::server::AppState;

pub async fn health() -> ApiJson<Value> {
    ApiJson(json!({
        "status": "healthy",
        "service": "membrain-api",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub async fn ready(State(state): State<AppState>) -> Result<ApiJson<Value>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database is not reachable",
        )
    })?;
    Ok(ApiJson(
        json!({ "status": "ready", "database": state.store.backend().name() }),
    ))
}

/// `GET /api/v1/auth/whoami`: the tenant of the caller's key. The MCP bridge asks this to refuse
/// bad keys before any tool is listed.
pub async fn whoami(Tenant(tenant): Tenant) -> ApiJson<Value> {
    ApiJson(json!({ "tenant": tenant }))
}
