//! Key administration, for the operator key only: list, create (the new key shown once, in the
//! answer to the form, never in a URL), revoke.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use membrain_contract::admin::{CreateKeyRequest, CreatedKey, KeyView, KeysAnswer};
use serde::Deserialize;

use super::{CsrfForm, operator_key, path_segment, when};
use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::layout::page;
use crate::security::{ConsoleForm, SignedIn, html_response, see_other};

/// `GET /console/keys`.
pub async fn list(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
) -> Result<Response, ConsoleError> {
    keys_page(&state, &signed_in, None).await
}

async fn keys_page(
    state: &ConsoleState,
    signed_in: &SignedIn,
    created: Option<&CreatedKey>,
) -> Result<Response, ConsoleError> {
    let key = operator_key(signed_in)?;
    let answer: KeysAnswer = state.api.get(key, &["admin", "keys"], None::<&()>).await?;
    let csrf = &signed_in.session.csrf_token;
    let body = html! {
        @if let Some(created) = created {
            section class="card created" id="created-key" {
                p { "New key for tenant " strong { (created.record.tenant.as_str()) } ". Copy it now: it is shown this once, and only its hash is kept." }
                p { code class="secret" id="new-key" { (created.key) } }
            }
        }
        form method="post" action="/console/keys" class="bar" id="create-key" {
            input type="hidden" name="csrf_token" value=(csrf);
            label for="tenant" { "Tenant" }
            input type="text" id="tenant" name="tenant" required placeholder="acme";
            label for="label" { "Label" }
            input type="text" id="label" name="label" placeholder="what the key is for";
            button type="submit" { "Create key" }
        }
        table class="keys" {
            thead { tr { th { "Id" } th { "Tenant" } th { "Label" } th { "Created" } th { "State" } } }
            tbody {
                @for view in &answer.keys {
                    tr data-key-id=(view.id) {
                        td { code { (view.id) } }
                        td { (view.tenant.as_str()) }
                        td { (view.label) }
                        td class="nowrap" { (when(view.created_at)) }
                        td { (state_cell(view, csrf)) }
                    }
                }
            }
        }
    };
    Ok(html_response(page(
        "Keys",
        Some((&signed_in.session).into()),
        body,
    )))
}

fn state_cell(view: &KeyView, csrf: &str) -> maud::Markup {
    html! {
        @if let Some(revoked) = view.revoked_at {
            span class="muted revoked" { "revoked " (when(revoked)) }
        } @else {
            form method="post" action=(format!("/console/keys/{}/revoke", path_segment(&view.id))) class="inline" {
                input type="hidden" name="csrf_token" value=(csrf);
                button type="submit" class="danger" id=(format!("revoke-{}", view.id)) { "Revoke" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    label: String,
}

/// `POST /console/keys`: the new key appears in this answer only.
pub async fn create(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    ConsoleForm(form): ConsoleForm<CreateForm>,
) -> Result<Response, ConsoleError> {
    signed_in.check_csrf(&form.csrf_token)?;
    let key = operator_key(&signed_in)?;
    let request = CreateKeyRequest {
        tenant: Some(form.tenant.trim().to_owned()),
        label: Some(form.label.trim().to_owned()).filter(|l| !l.is_empty()),
    };
    let created: CreatedKey = state.api.post(key, &["admin", "keys"], &request).await?;
    keys_page(&state, &signed_in, Some(&created)).await
}

/// `POST /console/keys/{key_id}/revoke`.
pub async fn revoke(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(key_id): Path<String>,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Result<Response, ConsoleError> {
    signed_in.check_csrf(&form.csrf_token)?;
    let key = operator_key(&signed_in)?;
    let _: KeyView = state
        .api
        .post(
            key,
            &["admin", "keys", &key_id, "revoke"],
            &serde_json::json!({}),
        )
        .await?;
    Ok(see_other("/console/keys"))
}
