//! [`ConsoleError`]: every failure a page can meet, answered as a friendly HTML page with the
//! right status (4xx saying what was wrong; 5xx saying little and logging the cause).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::html;

use crate::api::ApiFailure;
use crate::layout::page;
use crate::security::html_response;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleError {
    pub status: StatusCode,
    pub message: String,
}

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A fault on our side: the cause goes to the log, the page says little.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "console request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The console could not complete the request; the server's log says why.",
        )
    }

    fn title(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "That request was not understood",
            StatusCode::UNAUTHORIZED => "Not signed in",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::METHOD_NOT_ALLOWED => "Not allowed here",
            StatusCode::PAYLOAD_TOO_LARGE => "Too much data",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            status if status.is_server_error() => "Something went wrong",
            _ => "That did not work",
        }
    }
}

impl From<ApiFailure> for ConsoleError {
    fn from(failure: ApiFailure) -> Self {
        match failure {
            // The API's own words: they name the field and say how to fix it.
            ApiFailure::Refused {
                status, message, ..
            } if status.is_client_error() => Self::new(status, message),
            ApiFailure::Refused {
                status, message, ..
            } => {
                tracing::warn!(%status, %message, "the API refused a console call");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The Memory API is unavailable right now; retry shortly.",
                )
            }
            ApiFailure::Unavailable(cause) => {
                tracing::warn!(%cause, "the API could not answer a console call");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The Memory API is unavailable right now; retry shortly.",
                )
            }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let body = html! {
            p class="error" { (self.message) }
            p { a href="/console" { "Back to the console" } }
        };
        let mut response = html_response(page(self.title(), None, body));
        *response.status_mut() = self.status;
        response
    }
}
