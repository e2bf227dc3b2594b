//! What a resource server tells clients: its Protected Resource Metadata (RFC 9728) and where
//! that lives, the `WWW-Authenticate` challenge of a 401 (RFC 9728 §5.1, RFC 6750 §3), and how a
//! bearer token is read from an `Authorization` header.

use serde_json::{Value, json};
use url::Url;

use crate::TokenError;
use crate::settings::{SettingsError, check_url};

/// The well-known suffix of Protected Resource Metadata (RFC 9728 §3).
pub const METADATA_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The name clients show for this resource.
pub const RESOURCE_NAME: &str = "Membrain";

/// The Protected Resource Metadata document of `resource` (RFC 9728 §2): served as JSON at
/// [`metadata_url_for`]`(resource)`. `authorization_servers` are issuer identifiers (usually the
/// one [`crate::OAuthSettings::issuer`]); `scopes_supported` is left out when `scopes` is empty.
pub fn protected_resource_metadata(
    resource: &str,
    authorization_servers: &[String],
    scopes: &[String],
) -> Value {
    let mut doc = json!({
        "resource": resource,
        "authorization_servers": authorization_servers,
        "bearer_methods_supported": ["header"],
        "resource_name": RESOURCE_NAME,
    });
    if !scopes.is_empty() {
        doc["scopes_supported"] = json!(scopes);
    }
    doc
}

/// Where the metadata of `resource` lives (RFC 9728 §3.1): `/.well-known/oauth-protected-resource`
/// inserted between the host and the path, a lone trailing `/` dropped, the query kept:
/// `https://mcp.example.com/mcp` → `https://mcp.example.com/.well-known/oauth-protected-resource/mcp`.
pub fn metadata_url_for(resource: &str) -> Result<String, SettingsError> {
    let url = check_url("resource", resource)?;
    let origin = &url[..url::Position::BeforePath];
    Ok(format!("{origin}{}", path_and_query(&url)))
}

/// The path (and query) part of [`metadata_url_for`], to route the metadata on this server:
/// `https://mcp.example.com/mcp` → `/.well-known/oauth-protected-resource/mcp`. Clients that do
/// not know the resource's path ask the bare [`METADATA_WELL_KNOWN`], so serve it there too.
pub fn metadata_path_for(resource: &str) -> Result<String, SettingsError> {
    let url = check_url("resource", resource)?;
    Ok(path_and_query(&url))
}

fn path_and_query(url: &Url) -> String {
    let path = match url.path() {
        "/" => "",
        path => path,
    };
    match url.query() {
        Some(query) => format!("{METADATA_WELL_KNOWN}{path}?{query}"),
        None => format!("{METADATA_WELL_KNOWN}{path}"),
    }
}

/// The `WWW-Authenticate` value of a 401: `Bearer resource_metadata="<metadata_url>"`, which is
/// how an MCP client finds the authorization server (RFC 9728 §5.1), plus, when a token was
/// given and refused ([`TokenError::Invalid`]), `error="invalid_token"` and its
/// `error_description` (RFC 6750 §3). `None` (no token given) and [`TokenError::Unavailable`]
/// (which is a 503, not a verdict on the token) give the bare challenge. Characters RFC 6750 does
/// not allow in a quoted value are replaced.
pub fn www_authenticate(metadata_url: &str, error: Option<&TokenError>) -> String {
    let mut value = format!("Bearer resource_metadata=\"{}\"", quotable(metadata_url));
    if let Some(TokenError::Invalid { description }) = error {
        value.push_str(", error=\"invalid_token\", error_description=\"");
        value.push_str(&quotable(description));
        value.push('"');
    }
    value
}

/// Keeps what RFC 6750 allows inside a quoted value (%x20-21 / %x23-5B / %x5D-7E); anything else
/// becomes `'` (for `"`) or `?`.
fn quotable(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// The token of an `Authorization: Bearer <token>` header value (the scheme in any case, spaces
/// around the token ignored); `None` for another scheme or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

/// Whether a bearer token has a JWT's shape: three non-empty base64url parts joined by dots. A
/// Membrain API key (`mb_…`, no dots) never does, so a server that takes both can tell which
/// check a bearer token is for without trying either.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = 0;
    for part in token.split('.') {
        parts += 1;
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    parts == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_part() {
        let cases = [
            (
                "https://mcp.example.com/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://mcp.example.com",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://mcp.example.com/",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://mcp.example.com:8443/a/b/",
                "https://mcp.example.com:8443/.well-known/oauth-protected-resource/a/b/",
            ),
            (
                "https://mcp.example.com/mcp?x=1",
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp?x=1",
            ),
            (
                "http://127.0.0.1:8100/mcp",
                "http://127.0.0.1:8100/.well-known/oauth-protected-resource/mcp",
            ),
        ];
        for (resource, expected) in cases {
            assert_eq!(
                metadata_url_for(resource).expect(resource),
                expected,
                "{resource}"
            );
        }
        assert_eq!(
            metadata_path_for("https://mcp.example.com/mcp").expect("path"),
            "/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_path_for("https://mcp.example.com").expect("path"),
            "/.well-known/oauth-protected-resource"
        );
        for bad in [
            "mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/mcp#x",
        ] {
            assert!(metadata_url_for(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_document_has_the_rfc_9728_fields() {
        let doc = protected_resource_metadata(
            "https://mcp.example.com/mcp",
            &["https://auth.example.com".to_owned()],
            &["membrain".to_owned()],
        );
        assert_eq!(
            doc,
            json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://auth.example.com"],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["membrain"],
                "resource_name": "Membrain",
            })
        );
        let doc = protected_resource_metadata("https://mcp.example.com/mcp", &[], &[]);
        assert!(doc.get("scopes_supported").is_none());
        assert_eq!(doc["authorization_servers"], json!([]));
    }

    #[test]
    fn challenges() {
        let url = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            www_authenticate(url, None),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        let expired = TokenError::Invalid {
            description: "the token has expired".to_owned(),
        };
        assert_eq!(
            www_authenticate(url, Some(&expired)),
            format!(
                "Bearer resource_metadata=\"{url}\", error=\"invalid_token\", error_description=\"the token has expired\""
            )
        );
        assert_eq!(
            expired.www_authenticate(url),
            www_authenticate(url, Some(&expired))
        );
        assert_eq!(expired.status(), http::StatusCode::UNAUTHORIZED);
        let down = TokenError::Unavailable {
            cause: "connection refused".to_owned(),
        };
        assert_eq!(down.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            www_authenticate(url, Some(&down)),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        let hostile = TokenError::Invalid {
            description: "a \"quoted\" \\ value\r\nX-Injected: 1 é".to_owned(),
        };
        let value = www_authenticate(url, Some(&hostile));
        assert!(
            value.ends_with("error_description=\"a 'quoted' / value??X-Injected: 1 ?\""),
            "{value}"
        );
        assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }

    #[test]
    fn bearer_tokens_are_read() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer   tok  "), Some("tok"));
        assert_eq!(bearer_token("BEARER tok"), Some("tok"));
        assert_eq!(bearer_token("Basic dXNlcg=="), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn jwt_shapes() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt("mb_0123456789abcdefABCDEF"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b+/.c"));
        assert!(!looks_like_jwt(""));
    }
}
