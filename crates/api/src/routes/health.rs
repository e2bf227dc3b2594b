//! `/health` (the process is alive), `/ready` (the database answers) and `whoami` (the key is good).

use axum::extract::State;
use axum::http::StatusCode;
use membrain_contract::health::{Health, Ready, WhoAmI};

use crate::error::ApiError;
use crate::extract::{ApiJson, Tenant};
use crate::server::AppState;

pub async fn health() -> ApiJson<Health> {
    ApiJson(Health {
        status: "healthy".to_owned(),
        service: "membrain-api".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

pub async fn ready(State(state): State<AppState>) -> Result<ApiJson<Ready>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the database is not reachable",
        )
    })?;
    Ok(ApiJson(Ready {
        status: "ready".to_owned(),
        database: state.store.backend().name().to_owned(),
    }))
}

/// `GET /api/v1/auth/whoami`: the tenant of the caller's key. The MCP bridge asks this to refuse
/// bad keys before any tool is listed.
pub async fn whoami(Tenant(tenant): Tenant) -> ApiJson<WhoAmI> {
    ApiJson(WhoAmI { tenant })
}
