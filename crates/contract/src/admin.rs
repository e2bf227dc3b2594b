//! Key administration for the operator: `/api/v1/admin/keys…`. Only the operator key
//! (`--operator-key`, not a tenant's key) may call these routes; anyone else gets 403.

use chrono::{DateTime, Utc};
use membrain_memory::TenantId;
use serde::{Deserialize, Serialize};

/// An API key as the operator sees it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    /// The key's public handle (`key_…`), used to revoke it.
    pub id: String,
    pub tenant: TenantId,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// `GET /admin/keys`: every key, revoked ones too, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysAnswer {
    pub keys: Vec<KeyView>,
    pub count: usize,
}

/// `POST /admin/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateKeyRequest {
    /// The tenant the key will act for (letters, digits, `-`, `_`, `.`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// What the key is for, shown in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `POST /admin/keys` answers 201 with the new key, shown this once (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub record: KeyView,
}
