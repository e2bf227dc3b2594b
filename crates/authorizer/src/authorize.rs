//! One authorizer decision: an API Gateway HTTP API request event in, a simple response out.

use membrain_auth::{ApiKey, KeyResolver, key_from_headers};
use membrain_memory::TenantId;
use membrain_oauth::TokenValidator;
use serde::Serialize;
use serde_json::Value;

/// A simple response (payload format 2.0): `{"isAuthorized": true, "context": {"tenant": "acme"}}`,
/// or `{"isAuthorized": false}`. API Gateway answers a refused request with 403 itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub is_authorized: bool,
    /// What the integration can read as `$context.authorizer.tenant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<AuthorizerContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizerContext {
    pub tenant: String,
}

impl AuthorizerResponse {
    pub fn allow(tenant: &TenantId) -> Self {
        Self {
            is_authorized: true,
            context: Some(AuthorizerContext {
                tenant: tenant.as_str().to_owned(),
            }),
        }
    }

    pub fn deny() -> Self {
        Self {
            is_authorized: false,
            context: None,
        }
    }
}

/// Decides one request. The event is taken as plain JSON so that no event, however odd, fails
/// before a decision: a Lambda error would reach the client as a 500, a refusal as a 403.
///
/// The key comes from `x-api-key`, else `Authorization: Bearer`; header names are matched
/// without regard to case (API Gateway lower-cases them, other callers may not). A missing or
/// unknown key, or a key store that cannot answer, is refused; only the last is logged as an
/// error. Neither the key nor any header is ever logged.
pub async fn authorize(event: &Value, resolver: &dyn KeyResolver) -> AuthorizerResponse {
    authorize_with(event, resolver, None).await
}

/// [`authorize`], also accepting OAuth access tokens checked by `tokens`: a bearer token shaped
/// like a JWT is checked as one (never as a key), its tenant put in the context as a key's is.
pub async fn authorize_with(
    event: &Value,
    resolver: &dyn KeyResolver,
    tokens: Option<&TokenValidator>,
) -> AuthorizerResponse {
    let request_id = text_at(event, &["requestContext", "requestId"]);
    let source_ip = text_at(event, &["requestContext", "http", "sourceIp"]);
    let route = text_at(event, &["routeKey"]);
    warn_if_not_http_api_v2(event);

    if let Some(tokens) = tokens
        && let Some(token) = header_in(event, "authorization")
            .and_then(membrain_oauth::bearer_token)
            .filter(|token| membrain_oauth::looks_like_jwt(token))
    {
        return match tokens.validate(token).await {
            Ok(valid) => {
                tracing::debug!(request_id, source_ip, route, tenant = %valid.tenant, "authorized by an access token");
                AuthorizerResponse::allow(&valid.tenant)
            }
            Err(error) if error.is_unavailable() => {
                tracing::error!(request_id, source_ip, route, %error, "refused: the access token could not be checked");
                AuthorizerResponse::deny()
            }
            Err(error) => {
                tracing::info!(request_id, source_ip, route, %error, "refused: the access token is not valid");
                AuthorizerResponse::deny()
            }
        };
    }

    let Some(key) = key_in(event) else {
        tracing::info!(
            request_id,
            source_ip,
            route,
            "refused: the request carries no API key (x-api-key or Authorization: Bearer)"
        );
        return AuthorizerResponse::deny();
    };
    match resolver.resolve(&key).await {
        Ok(Some(tenant)) => {
            tracing::debug!(request_id, source_ip, route, %tenant, "authorized");
            AuthorizerResponse::allow(&tenant)
        }
        Ok(None) => {
            tracing::info!(
                request_id,
                source_ip,
                route,
                "refused: the API key is unknown or revoked"
            );
            AuthorizerResponse::deny()
        }
        Err(error) => {
            tracing::error!(
                request_id,
                source_ip,
                route,
                %error,
                "refused: the API key could not be checked"
            );
            AuthorizerResponse::deny()
        }
    }
}

/// The caller's key, from the event's headers.
fn key_in(event: &Value) -> Option<ApiKey> {
    key_from_headers(|name| header_in(event, name))
}

/// One header of the event, its name matched without regard to case.
fn header_in<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str())
}

fn text_at<'a>(event: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(event, |value, field| value.get(field))?
        .as_str()
}

/// A REST API event, or an HTTP API sending payload format 1.0, expects an IAM policy back and
/// would turn this authorizer's answers into 500s: say how to configure it.
fn warn_if_not_http_api_v2(event: &Value) {
    let version = text_at(event, &["version"]);
    let rest_api = event.get("methodArn").is_some();
    if rest_api || version.is_some_and(|version| version != "2.0") {
        tracing::error!(
            version,
            rest_api,
            "this is not an HTTP API payload format 2.0 event: configure the authorizer on an \
             HTTP API with payload format version 2.0 and simple responses enabled"
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn responses_have_the_simple_response_shape() {
        let tenant = TenantId::parse("acme").expect("tenant");
        assert_eq!(
            serde_json::to_value(AuthorizerResponse::allow(&tenant)).expect("json"),
            json!({"isAuthorized": true, "context": {"tenant": "acme"}})
        );
        assert_eq!(
            serde_json::to_value(AuthorizerResponse::deny()).expect("json"),
            json!({"isAuthorized": false})
        );
    }

    #[test]
    fn keys_are_found_in_any_header_case_and_odd_events_have_none() {
        let found = |event: Value| key_in(&event).map(|key| key.expose_secret().to_owned());
        assert_eq!(
            found(json!({"headers": {"X-API-KEY": "mb_a"}})).as_deref(),
            Some("mb_a")
        );
        assert_eq!(
            found(json!({"headers": {"Authorization": "Bearer mb_b"}})).as_deref(),
            Some("mb_b")
        );
        for odd in [
            json!(null),
            json!([]),
            json!({"headers": null}),
            json!({"headers": {"x-api-key": 7}}),
            json!({"headers": {"authorization": "Basic bWI6Yg=="}}),
        ] {
            assert_eq!(found(odd.clone()), None, "{odd}");
        }
    }
}
