//! The key check in front of every `/api/v1` route, and the database as a key source.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use membrain_auth::{ApiKey, AuthError, KeyResolver, key_from_headers};
use membrain_memory::TenantId;
use membrain_store::MemoryStore;

use crate::error::ApiError;
use crate::extract::Tenant;
use crate::server::AppState;

/// Keys stored in the database (`membrain keys create`).
pub struct DatabaseKeys {
    store: Arc<dyn MemoryStore>,
}

impl DatabaseKeys {
    pub fn new(store: Arc<dyn MemoryStore>) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl KeyResolver for DatabaseKeys {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        self.store
            .tenant_for_key(&key.hash())
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))
    }
}

/// Middleware: finds the caller's key, resolves its tenant, and refuses the request with 401
/// before any handler runs when there is none.
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    let key = key_from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok())).ok_or_else(
        || {
            ApiError::unauthorized(
                "missing API key: send `X-API-Key: <key>` or `Authorization: Bearer <key>` \
                 (create one with `membrain keys create --tenant NAME`)",
            )
        },
    )?;
    let tenant = match state.keys.resolve(&key).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => {
            return Err(ApiError::unauthorized(
                "the API key is not valid or has been revoked: check the key, or create a new one",
            ));
        }
        Err(e) => return Err(ApiError::unavailable(&e)),
    };
    tracing::Span::current().record("tenant", tenant.as_str());
    request.extensions_mut().insert(Tenant(tenant));
    Ok(next.run(request).await)
}
