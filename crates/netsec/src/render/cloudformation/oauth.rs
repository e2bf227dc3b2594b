//! OAuth for connectors in both stacks: hosted MCP clients (web chat connectors) cannot send an
//! API key header, so with `OAuthIssuer` set (a Cognito user pool, say) the MCP servers, and in
//! `gateway` the authorizer, also accept that issuer's access tokens. Off (empty) by default.

use serde_json::{Value, json};

use super::template::{Template, reference};

/// The condition under which tokens are accepted.
pub(crate) const ACCEPT_OAUTH: &str = "AcceptOAuth";

/// The parameters (an empty issuer: keys only).
pub(crate) fn add_parameters(template: &mut Template) {
    template.parameter(
        "OAuthIssuer",
        json!({
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^(https://[^\\s]+)?$",
            "Description": "Also accept OAuth access tokens from this issuer (for connectors that cannot send an API key), e.g. a Cognito user pool: https://cognito-idp.<region>.amazonaws.com/<pool id> (see DEPLOY.md); empty: API keys only",
        }),
    );
    template.parameter(
        "OAuthTenantClaim",
        json!({
            "Type": "String",
            "Default": "membrain_tenant",
            "AllowedPattern": "^[!-~]{1,128}$",
            "Description": "The access-token claim that names the caller's Membrain tenant (a Cognito pre token generation trigger adds it)",
        }),
    );
}

/// The condition, for a stack that has resources only OAuth needs.
pub(crate) fn add_condition(template: &mut Template) {
    template.condition(
        ACCEPT_OAUTH,
        json!({ "Fn::Not": [{ "Fn::Equals": [reference("OAuthIssuer"), ""] }] }),
    );
}

/// What a process that checks tokens is told: the issuer (empty: off), the URL tokens must be
/// issued for (`resource`, this stack's public MCP URL) and the tenant claim.
pub(crate) fn environment(resource: Value) -> Vec<(&'static str, Value)> {
    vec![
        ("MEMBRAIN_OAUTH_ISSUER", reference("OAuthIssuer")),
        ("MEMBRAIN_OAUTH_RESOURCE", resource),
        ("MEMBRAIN_OAUTH_TENANT_CLAIM", reference("OAuthTenantClaim")),
    ]
}
