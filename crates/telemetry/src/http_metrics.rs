//! Counting HTTP requests: `membrain_http_requests_total` and
//! `membrain_http_request_duration_seconds`, labelled by the route's template.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Which server a request metric belongs to: `api`, `mcp` or `console`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerName(pub &'static str);

/// The tenant a request was served for, put in the response's extensions by whoever resolved
/// the key, and read only when per-tenant labels are on ([`crate::tenant_labels`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLabel(pub Arc<str>);

/// Middleware (`axum::middleware::from_fn_with_state(ServerName("api"), record_request)`,
/// added with `Router::layer` so the matched route is known): counts the request by route
/// template, method and status, and records its latency. A request no route matched is
/// counted as `unmatched`, so a scanner's random paths do not become series.
pub async fn record_request(
    State(server): State<ServerName>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    let tenant = crate::tenant_labels()
        .then(|| response.extensions().get::<TenantLabel>())
        .flatten();
    match tenant {
        Some(TenantLabel(tenant)) => {
            metrics::counter!("membrain_http_requests_total",
                "server" => server.0, "route" => route.clone(), "method" => method,
                "status" => status, "tenant" => tenant.to_string())
            .increment(1);
            metrics::histogram!("membrain_http_request_duration_seconds",
                "server" => server.0, "route" => route, "method" => method,
                "tenant" => tenant.to_string())
            .record(elapsed);
        }
        None => {
            metrics::counter!("membrain_http_requests_total",
                "server" => server.0, "route" => route.clone(), "method" => method,
                "status" => status)
            .increment(1);
            metrics::histogram!("membrain_http_request_duration_seconds",
                "server" => server.0, "route" => route, "method" => method)
            .record(elapsed);
        }
    }
    response
}

/// The method as a fixed label: a client's invented method is `other`, not a new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_route_template_never_by_raw_path() {
        let handle = crate::install_recorder(false).expect("the recorder installs");
        let router = Router::new()
            .route("/items/{item_id}", get(|| async { "item" }))
            .layer(axum::middleware::from_fn_with_state(
                ServerName("unit"),
                record_request,
            ));
        for (path, status) in [
            ("/items/secret-42", StatusCode::OK),
            ("/scanner/probe-77", StatusCode::NOT_FOUND),
        ] {
            let response = router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
                .await
                .expect("an answer");
            assert_eq!(response.status(), status, "{path}");
        }
        let text = handle.render();
        assert!(
            text.contains(
                r#"membrain_http_requests_total{server="unit",route="/items/{item_id}",method="GET",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"membrain_http_requests_total{server="unit",route="unmatched",method="GET",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(
            !text.contains("secret-42") && !text.contains("probe-77"),
            "{text}"
        );
    }
}
