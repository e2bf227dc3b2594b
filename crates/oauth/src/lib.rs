//! Membrain as an OAuth 2.1 resource server, beside its API keys: what hosted MCP clients (web
//! chat connectors, which cannot send custom headers) need to reach it.
//!
//! * [`TokenValidator`] checks a bearer token that is a JWT access token (RFC 9068) issued by the
//!   one configured authorization server ([`OAuthSettings`]): its signature against the issuer's
//!   published keys (JWKS, discovered from the issuer's metadata or configured, cached, fetched
//!   again for a new key id at most once per interval), its algorithm (asymmetric only, from an
//!   allow-list), type, expiry and not-before (with leeway), issuer, and audience (this server's
//!   resource URL, RFC 8707). The caller's Membrain tenant comes from one configured claim and
//!   must be a valid [`membrain_memory::TenantId`]. A refused token is
//!   [`TokenError::Invalid`] (401); keys that cannot be fetched are [`TokenError::Unavailable`]
//!   (503).
//! * [`protected_resource_metadata`], [`metadata_url_for`] and [`www_authenticate`]: the Protected
//!   Resource Metadata document (RFC 9728) and the `WWW-Authenticate: Bearer resource_metadata=…`
//!   challenge (with `error="invalid_token"` per RFC 6750) that lead a client to the
//!   authorization server.
//! * `testing::TestIssuer` (feature `test-support`): an authorization server on 127.0.0.1 with
//!   its own keys, for tests.
//!
//! What it never does: it never forwards a token anywhere (the only requests it makes are GETs of
//! the issuer's public metadata and keys), never logs a token or any part of one (error
//! descriptions name the failed check, not the token's content), never accepts an unsigned or
//! shared-secret (HS*) token, and knows no HTTP framework, store or route: the servers decide
//! where the metadata is served and what a tenant may do.

mod error;
mod jwks;
mod metadata;
mod settings;
mod validator;

#[cfg(feature = "test-support")]
pub mod testing;

pub use error::TokenError;
pub use metadata::{
    METADATA_WELL_KNOWN, RESOURCE_NAME, bearer_token, looks_like_jwt, metadata_path_for,
    metadata_url_for, protected_resource_metadata, www_authenticate,
};
pub use settings::{
    DEFAULT_MAX_TOKEN_BYTES, DEFAULT_TENANT_CLAIM, OAuthSettings, SettingsError, SigningAlgorithm,
};
pub use validator::{TokenValidator, ValidToken};
