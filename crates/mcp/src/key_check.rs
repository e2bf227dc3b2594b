//! The bridge's key check: asks the API whose key this is (`GET /api/v1/auth/whoami`), so a
//! missing or bad key is refused with 401 before any tool is listed or run.

use std::sync::Arc;

use membrain_auth::{ApiKey, AuthError, KeyResolver};
use membrain_memory::TenantId;

use crate::api_client::{ApiCallError, Caller, MemoryApi};

pub struct ApiKeyCheck {
    api: Arc<dyn MemoryApi>,
}

impl ApiKeyCheck {
    pub fn new(api: Arc<dyn MemoryApi>) -> Self {
        Self { api }
    }
}

#[async_trait::async_trait]
impl KeyResolver for ApiKeyCheck {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        match self.api.whoami(&Caller::new(key.clone())).await {
            Ok(answer) => Ok(Some(answer.tenant)),
            Err(ApiCallError::Rejected {
                status: 401 | 403, ..
            }) => Ok(None),
            Err(ApiCallError::BadResponse(why)) => {
                Err(AuthError::Unavailable(format!("bad whoami answer: {why}")))
            }
            Err(other) => Err(AuthError::Unavailable(other.to_string())),
        }
    }
}
