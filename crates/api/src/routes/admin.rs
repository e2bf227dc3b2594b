//! Key administration for the operator: `/api/v1/admin/keys…`, behind [`require_operator`]
//! (the operator key only, never a tenant's key).
//!
//! [`require_operator`]: crate::keys::require_operator

use axum::extract::State;
use axum::http::StatusCode;
use membrain_auth::ApiKey;
use membrain_contract::admin::{CreateKeyRequest, CreatedKey, KeyView, KeysAnswer};
use membrain_memory::{TenantId, ValidationError};
use membrain_store::KeyRecord;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::server::AppState;

/// The longest label a key may carry, in characters.
pub const MAX_KEY_LABEL_CHARS: usize = 200;

/// `GET /admin/keys`: every key, revoked ones too.
pub async fn list_keys(State(state): State<AppState>) -> Result<ApiJson<KeysAnswer>, ApiError> {
    let keys: Vec<KeyView> = state
        .store
        .list_keys()
        .await?
        .into_iter()
        .map(key_view)
        .collect();
    Ok(ApiJson(KeysAnswer {
        count: keys.len(),
        keys,
    }))
}

/// `POST /admin/keys`: a new key for a tenant, answered this once (only its hash is stored).
pub async fn create_key(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, ApiJson<CreatedKey>), ApiError> {
    let tenant_name = body.tenant.as_deref().map(str::trim).unwrap_or_default();
    if tenant_name.is_empty() {
        return Err(ValidationError::new("tenant", "is required: name the key's tenant").into());
    }
    let tenant =
        TenantId::parse(tenant_name).map_err(|e| ValidationError::new("tenant", e.to_string()))?;
    let label = body.label.as_deref().map(str::trim).unwrap_or_default();
    if label.chars().count() > MAX_KEY_LABEL_CHARS {
        return Err(ValidationError::new(
            "label",
            format!("is longer than {MAX_KEY_LABEL_CHARS} characters"),
        )
        .into());
    }
    let key = ApiKey::generate();
    let record = state.store.create_key(&tenant, &key.hash(), label).await?;
    tracing::info!(key_id = %record.id, tenant = %record.tenant, "operator created a key");
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedKey {
            key: key.expose_secret().to_owned(),
            record: key_view(record),
        }),
    ))
}

/// `POST /admin/keys/{key_id}/revoke`: the key stops working (within the key cache's time).
pub async fn revoke_key(
    State(state): State<AppState>,
    ApiPath(key_id): ApiPath<String>,
) -> Result<ApiJson<KeyView>, ApiError> {
    let record = state
        .store
        .revoke_key(key_id.trim())
        .await
        .map_err(|e| match e {
            membrain_store::StoreError::NotFound { .. } => ApiError::not_found(format!(
                "no key has the id {key_id:?} (see GET /api/v1/admin/keys)"
            )),
            other => other.into(),
        })?;
    tracing::info!(key_id = %record.id, tenant = %record.tenant, "operator revoked a key");
    Ok(ApiJson(key_view(record)))
}

fn key_view(record: KeyRecord) -> KeyView {
    let KeyRecord {
        id,
        tenant,
        label,
        created_at,
        revoked_at,
    } = record;
    KeyView {
        id,
        tenant,
        label,
        created_at,
        revoked_at,
    }
}
