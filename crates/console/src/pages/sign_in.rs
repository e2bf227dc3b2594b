//! Sign-in with an API key (a tenant's, or the operator key) and sign-out.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use maud::{Markup, html};
use membrain_auth::ApiKey;
use membrain_contract::admin::KeysAnswer;
use membrain_contract::health::WhoAmI;
use serde::Deserialize;

use super::CsrfForm;
use crate::ConsoleState;
use crate::api::ApiFailure;
use crate::error::ConsoleError;
use crate::layout::page;
use crate::security::{
    ConsoleForm, SignedIn, cleared_cookie, html_response, over_tls, see_other, session_cookie,
};
use crate::session::Principal;

/// `GET /console/login`.
pub async fn form() -> Response {
    html_response(sign_in_page(None))
}

fn sign_in_page(problem: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(problem) = problem {
                p class="error" id="sign-in-error" { (problem) }
            }
            form method="post" action="/console/login" class="card" {
                label for="key" { "API key" }
                input type="password" id="key" name="key" autocomplete="off" required
                    placeholder="mb_…";
                p class="hint" {
                    "A tenant's key shows that tenant's memories and time series; the operator \
                     key (--operator-key) administers keys. The key stays on the server: the \
                     browser keeps only a session cookie."
                }
                button type="submit" id="sign-in" { "Sign in" }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
}

/// `POST /console/login`: checks the key with the API (`whoami` for a tenant's key, the key
/// listing for the operator key) and starts a session.
pub async fn sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    ConsoleForm(form): ConsoleForm<SignInForm>,
) -> Result<Response, ConsoleError> {
    let refused = |message: &str| {
        let mut response = html_response(sign_in_page(Some(message)));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        Ok(response)
    };
    let Some(key) = ApiKey::new(form.key.trim()) else {
        return refused("Enter an API key.");
    };
    let principal = match state
        .api
        .get::<WhoAmI>(&key, &["auth", "whoami"], None::<&()>)
        .await
    {
        Ok(who) => Principal::Tenant(who.tenant),
        Err(ApiFailure::Refused { status, .. }) if status == StatusCode::UNAUTHORIZED => {
            // Not a tenant's key: the operator key, if the API lets it list keys.
            match state
                .api
                .get::<KeysAnswer>(&key, &["admin", "keys"], None::<&()>)
                .await
            {
                Ok(_) => Principal::Operator,
                Err(ApiFailure::Refused { status, .. }) if status.is_client_error() => {
                    return refused(
                        "That key is not valid or has been revoked. Check it, or ask the \
                         operator for a new one.",
                    );
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(other) => return Err(other.into()),
    };
    let id = state
        .sessions
        .start(key, principal.clone())
        .map_err(|e| ConsoleError::internal(&e))?;
    match &principal {
        Principal::Tenant(tenant) => tracing::info!(tenant = %tenant, "console sign-in"),
        Principal::Operator => tracing::info!("console sign-in as the operator"),
    }
    let secure = over_tls(&headers, state.settings.always_secure_cookie);
    let target = match principal {
        Principal::Tenant(_) => "/console/memories",
        Principal::Operator => "/console/keys",
    };
    Ok(with_cookie(see_other(target), &session_cookie(&id, secure)))
}

/// `POST /console/logout`: ends the session (CSRF-checked, so no other site can sign a user
/// out).
pub async fn sign_out(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    signed_in.check_csrf(&form.csrf_token)?;
    state.sessions.end(&signed_in.id);
    let secure = over_tls(&headers, state.settings.always_secure_cookie);
    Ok(with_cookie(
        see_other("/console/login"),
        &cleared_cookie(secure),
    ))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    match HeaderValue::from_str(cookie) {
        Ok(value) => {
            response.headers_mut().append(header::SET_COOKIE, value);
            response
        }
        Err(e) => ConsoleError::internal(&e).into_response(),
    }
}
