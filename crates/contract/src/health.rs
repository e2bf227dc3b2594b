//! `GET /health`, `GET /ready`, `GET /api/v1/auth/whoami`.

use membrain_memory::TenantId;
use serde::{Deserialize, Serialize};

/// `GET /health`: the process is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `healthy`.
    pub status: String,
    pub service: String,
    pub version: String,
}

/// `GET /ready`: the database answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Always `ready` (a database that does not answer is a 503 `not_ready`).
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// `GET /api/v1/auth/whoami`: the tenant the caller's key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub tenant: TenantId,
}
