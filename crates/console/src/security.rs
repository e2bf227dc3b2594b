//! What keeps the console safe in a browser: the headers on every answer, the session cookie,
//! the sign-in check of every page, the Origin check of every POST, CSRF tokens, and forms read
//! without ever answering 500 on bad input.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use maud::Markup;
use serde::de::DeserializeOwned;

use crate::ConsoleState;
use crate::error::ConsoleError;
use crate::session::Session;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "membrain_console";

/// Nothing runs but our own stylesheet and images: no script at all, no frames, forms only to
/// ourselves.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: the security headers on every console answer, error pages included.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Middleware: a POST must come from a page of this console: its `Origin` must name the host
/// it was sent to. Our pages send no referrer (`Referrer-Policy: no-referrer`), so browsers
/// send `Origin: null` on their forms; then the browser's own `Sec-Fetch-Site: same-origin`
/// (a header no page can set) vouches for them instead. A form on another site is refused
/// before anything runs.
pub async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return ConsoleError::forbidden(
            "This form was sent from another site (its Origin does not match this server), so \
             it was refused. Open the console's own page and send it from there.",
        )
        .into_response();
    }
    next.run(request).await
}

fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("origin") {
        Some(origin) if origin != "null" => authority_is(origin, host),
        _ if header("sec-fetch-site") == Some("same-origin") => true,
        _ => header("referer").is_some_and(|referer| authority_is(referer, host)),
    }
}

/// Whether `url` (`scheme://authority[/path…]`) names exactly `host` as its authority.
fn authority_is(url: &str, host: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.eq_ignore_ascii_case(host)
}

/// The `Set-Cookie` value of a new session: `HttpOnly` (no script may read it), `SameSite=Strict`
/// (no other site's request carries it), only under `/console`, and `Secure` over TLS.
pub fn session_cookie(id: &str, secure: bool) -> String {
    let mut cookie = format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The `Set-Cookie` value that ends the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    let mut cookie =
        format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Whether the browser reached us over TLS: a TLS-terminating proxy says so in
/// `X-Forwarded-Proto`, or the settings say every request does.
pub fn over_tls(headers: &HeaderMap, always: bool) -> bool {
    always
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The session id in the request's cookies, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// The signed-in session of a request. Without one, the page sends the browser to sign in.
pub struct SignedIn {
    pub id: String,
    pub session: Session,
}

impl FromRequestParts<ConsoleState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let found = session_id(&parts.headers)
            .and_then(|id| state.sessions.get(&id).map(|session| (id, session)));
        match found {
            Some((id, session)) => Ok(Self { id, session }),
            None if parts.method == Method::GET => {
                Err(Redirect::to("/console/login").into_response())
            }
            None => Err(ConsoleError::new(
                StatusCode::UNAUTHORIZED,
                "Your session has ended (it lasts an hour unused, twelve at most, and only on \
                 the server that started it). Sign in again.",
            )
            .into_response()),
        }
    }
}

impl SignedIn {
    /// Refuses a changing form whose CSRF token is not this session's.
    pub fn check_csrf(&self, offered: &str) -> Result<(), ConsoleError> {
        if self.session.csrf_matches(offered) {
            Ok(())
        } else {
            Err(ConsoleError::forbidden(
                "This form's security token is missing or out of date (it may come from an \
                 older page or another site). Reload the page and send it again.",
            ))
        }
    }
}

/// A URL-encoded form, read by `serde_urlencoded`; a form that does not fit is a 400 page that
/// says what was wrong, never a 500.
pub struct ConsoleForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ConsoleForm<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| {
                ConsoleError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form was larger than the console accepts.",
                )
            })?;
        serde_urlencoded::from_bytes(&bytes)
            .map(ConsoleForm)
            .map_err(|e| ConsoleError::bad_request(format!("The form was not understood: {e}.")))
    }
}

/// A query string read leniently: a bad one is a 400 page, never a 500.
pub struct ConsoleQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ConsoleQuery<T> {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(ConsoleQuery)
            .map_err(|e| {
                ConsoleError::bad_request(format!("The address's query was not understood: {e}."))
            })
    }
}

/// An HTML answer.
pub fn html_response(markup: Markup) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response()
}

/// A 303 to `location` (after a POST, the browser GETs the next page).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    #[test]
    fn posts_must_come_from_this_host() {
        let check = |pairs: &[(&'static str, &str)], expected: bool| {
            assert_eq!(same_origin(&headers(pairs)), expected, "{pairs:?}");
        };
        check(
            &[
                ("host", "127.0.0.1:8000"),
                ("origin", "http://127.0.0.1:8000"),
            ],
            true,
        );
        check(
            &[("host", "mb.example"), ("origin", "https://MB.example")],
            true,
        );
        check(
            &[("host", "mb.example"), ("origin", "https://evil.example")],
            false,
        );
        check(
            &[
                ("host", "mb.example"),
                ("origin", "https://mb.example.evil"),
            ],
            false,
        );
        check(&[("host", "mb.example"), ("origin", "null")], false);
        // Our pages send no referrer, so browsers send `Origin: null` and vouch with
        // Sec-Fetch-Site.
        check(
            &[
                ("host", "mb.example"),
                ("origin", "null"),
                ("sec-fetch-site", "same-origin"),
            ],
            true,
        );
        check(
            &[
                ("host", "mb.example"),
                ("origin", "null"),
                ("sec-fetch-site", "cross-site"),
            ],
            false,
        );
        check(
            &[
                ("host", "mb.example"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
            false,
        );
        check(
            &[
                ("host", "mb.example"),
                ("referer", "https://mb.example/console/keys"),
            ],
            true,
        );
        check(
            &[
                ("host", "mb.example"),
                ("referer", "https://evil.example/mb.example"),
            ],
            false,
        );
        check(&[("host", "mb.example")], false);
        check(&[("origin", "https://mb.example")], false);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; membrain_console=abc; b=2")]);
        assert_eq!(session_id(&map).as_deref(), Some("abc"));
        assert_eq!(
            session_id(&headers(&[("cookie", "membrain_console=")])),
            None
        );
        assert_eq!(session_id(&HeaderMap::new()), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        assert_eq!(
            session_cookie("abc", false),
            "membrain_console=abc; HttpOnly; SameSite=Strict; Path=/console"
        );
        assert!(session_cookie("abc", true).ends_with("; Secure"));
        assert!(over_tls(&headers(&[("x-forwarded-proto", "https")]), false));
        assert!(!over_tls(&headers(&[("x-forwarded-proto", "http")]), false));
        assert!(over_tls(&HeaderMap::new(), true));
    }
}
