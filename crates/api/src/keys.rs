//! The key check in front of every `/api/v1` route, and the database as a key source.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use membrain_auth::{ApiKey, AuthError, KeyHash, KeyResolver, TENANT_HEADER, key_from_headers};
use membrain_memory::TenantId;
use membrain_store::{MemoryStore, StoreError};

use crate::error::ApiError;
use crate::extract::Tenant;
use crate::server::AppState;

/// Keys stored in the database (`membrain keys create`), and optionally one single-user key
/// from the configuration (`MEMBRAIN_API_KEY`).
///
/// The database decides first: the single-user key only stands for a key the database never
/// held. So a key exported under `MEMBRAIN_API_KEY` that belongs to another tenant keeps its
/// tenant, and a revoked key stays revoked (`keys revoke` always wins). [`DatabaseKeys::check`]
/// refuses such a configuration at start, so the surprise never happens silently.
pub struct DatabaseKeys {
    store: Arc<dyn MemoryStore>,
    single_user: Option<(KeyHash, TenantId)>,
}

/// Why a single-user key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SingleUserKeyError {
    #[error(
        "MEMBRAIN_API_KEY holds a key that the database gives to tenant {owner:?}, not \
         {wanted:?}: unset MEMBRAIN_API_KEY (the database already accepts that key for its \
         tenant), or set it to a key of its own (`membrain keys create --tenant {wanted}`)"
    )]
    OtherTenant { owner: TenantId, wanted: TenantId },
    #[error(
        "MEMBRAIN_API_KEY holds a key that was revoked (`membrain keys list`): set it to a key \
         that is still valid, or unset it"
    )]
    Revoked,
    #[error("could not check MEMBRAIN_API_KEY against the database: {0}")]
    Store(#[from] StoreError),
}

impl DatabaseKeys {
    pub fn new(store: Arc<dyn MemoryStore>) -> Self {
        Self {
            store,
            single_user: None,
        }
    }

    /// Also accepts `key` for `tenant`, when the database does not know the key.
    pub fn with_single_user_key(mut self, key: &ApiKey, tenant: TenantId) -> Self {
        self.single_user = Some((key.hash(), tenant));
        self
    }

    /// Whether `key` may serve as the single-user key of `tenant`: not when the database holds
    /// it for another tenant, nor when it was revoked.
    pub async fn check(
        store: &dyn MemoryStore,
        key: &ApiKey,
        tenant: &TenantId,
    ) -> Result<(), SingleUserKeyError> {
        match store.key_owner(&key.hash()).await? {
            None => Ok(()),
            Some(owner) if owner.revoked => Err(SingleUserKeyError::Revoked),
            Some(owner) if owner.tenant != *tenant => Err(SingleUserKeyError::OtherTenant {
                owner: owner.tenant,
                wanted: tenant.clone(),
            }),
            Some(_) => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl KeyResolver for DatabaseKeys {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        let unavailable = |e: StoreError| AuthError::Unavailable(e.to_string());
        let hash = key.hash();
        match &self.single_user {
            Some((single, tenant)) if *single == hash => {
                match self.store.key_owner(&hash).await.map_err(unavailable)? {
                    None => Ok(Some(tenant.clone())),
                    Some(owner) if owner.revoked => Ok(None),
                    Some(owner) => Ok(Some(owner.tenant)),
                }
            }
            _ => self.store.tenant_for_key(&hash).await.map_err(unavailable),
        }
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
    let named = headers
        .get(TENANT_HEADER)
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    let tenant = match (&state.service_key, named) {
        (Some(service), named) if is_key(service, &key) => service_tenant(named)?,
        (_, Some(_)) => {
            return Err(ApiError::forbidden(
                "X-Membrain-Tenant is accepted only with the service key: leave it out (your \
                 key already says whose data this is)",
            ));
        }
        (_, None) => match state.keys.resolve(&key).await {
            Ok(Some(tenant)) => tenant,
            Ok(None) => {
                return Err(ApiError::unauthorized(
                    "the API key is not valid or has been revoked: check the key, or create a new one",
                ));
            }
            Err(e) => return Err(ApiError::unavailable(&e)),
        },
    };
    tracing::Span::current().record("tenant", tenant.as_str());
    // Each tenant's rate and requests in flight are bounded before any work is done for it.
    let _in_flight = state.tenant_limiter.admit(&tenant)?;
    // The request metrics name the tenant only when the operator turned per-tenant labels on.
    let label = membrain_telemetry::tenant_labels()
        .then(|| membrain_telemetry::TenantLabel(std::sync::Arc::from(tenant.as_str())));
    request.extensions_mut().insert(Tenant(tenant));
    let mut response = next.run(request).await;
    if let Some(label) = label {
        response.extensions_mut().insert(label);
    }
    Ok(response)
}

/// The tenant the service key names for one call: required, and a valid tenant name.
fn service_tenant(named: Option<String>) -> Result<TenantId, ApiError> {
    let named = named.ok_or_else(|| {
        ApiError::bad_request("the service key acts for a tenant: name it in X-Membrain-Tenant")
    })?;
    TenantId::parse(named.trim()).map_err(|e| {
        ApiError::bad_request(format!("X-Membrain-Tenant does not name a tenant: {e}"))
    })
}

/// Middleware in front of `/api/v1/admin/…`: only the operator key (`--operator-key`) passes.
/// It is compared in constant time (as SHA-256 hashes, so the lengths never differ), and it is
/// no tenant's key: a tenant key, however valid, gets 403 here.
pub async fn require_operator(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(operator) = &state.operator_key else {
        return Err(ApiError::forbidden(
            "key administration is off: no operator key is configured (start the API with \
             --operator-key or MEMBRAIN_OPERATOR_KEY)",
        ));
    };
    let headers = request.headers();
    let key = key_from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    match key {
        Some(key) if is_key(operator, &key) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::forbidden(
            "only the operator key may administer keys; a tenant's API key cannot (send the \
             operator key in X-API-Key)",
        )),
        None => Err(ApiError::forbidden(
            "key administration needs the operator key: send `X-API-Key: <operator key>`",
        )),
    }
}

/// Whether `key` is the configured key (operator or service) whose hash is `configured`, in
/// time independent of where they differ.
pub fn is_key(configured: &KeyHash, key: &ApiKey) -> bool {
    use subtle::ConstantTimeEq;
    let offered = key.hash();
    bool::from(
        offered
            .as_str()
            .as_bytes()
            .ct_eq(configured.as_str().as_bytes()),
    )
}
