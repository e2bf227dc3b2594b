//! `/ts/…`: the time-series calls (list, describe, write, latest, range, query, retention,
//! drop), each a thin wrapper over [`TimeSeriesService`] with the caller's tenant.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use membrain_contract::ts::{DropAnswer, QueryBody};
use membrain_timeseries::service::{LatestBody, RangeBody, RetentionBody, TablesOutput, WriteBody};
use membrain_timeseries::sql::QueryResult;
use membrain_timeseries::{
    LatestResult, RangeResult, TableDescription, TableRef, TsError, WriteOutcome,
};
use membrain_ts_service::TimeSeriesService;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Tenant};
use crate::server::AppState;

/// Seconds a busy answer asks the caller to wait: reads are admitted again as soon as one ends.
const BUSY_RETRY_AFTER_SECS: u32 = 1;

impl From<TsError> for ApiError {
    fn from(error: TsError) -> Self {
        let status = match &error {
            TsError::Invalid { .. } | TsError::Limit(_) => StatusCode::BAD_REQUEST,
            TsError::NotFound(_) => StatusCode::NOT_FOUND,
            TsError::Refused(_) => StatusCode::FORBIDDEN,
            TsError::QuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            // The message says whose reads fill the server (no one else's data).
            TsError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            TsError::Unavailable(_) => {
                tracing::warn!(error = %error, "time-series store unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the time-series store is unavailable; retry shortly",
                );
            }
            _ => return Self::internal(&error),
        };
        Self::new(status, error.code(), error.message())
    }
}

/// A time-series route's failure: the API's error shape, with `Retry-After` on a busy answer
/// (which [`ApiError`] alone cannot carry).
#[derive(Debug)]
pub struct TsRouteError {
    error: ApiError,
    retry_after: Option<u32>,
}

impl From<ApiError> for TsRouteError {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<TsError> for TsRouteError {
    fn from(error: TsError) -> Self {
        let retry_after = matches!(error, TsError::Busy(_)).then_some(BUSY_RETRY_AFTER_SECS);
        Self {
            error: error.into(),
            retry_after,
        }
    }
}

impl IntoResponse for TsRouteError {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn service(state: &AppState) -> Result<&Arc<TimeSeriesService>, ApiError> {
    state.timeseries.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeseries_disabled",
            "this API serves no time-series store: start it with --ts-store (see membrain api --help)",
        )
    })
}

fn table_ref((database, table): (String, String)) -> Result<TableRef, ApiError> {
    Ok(TableRef::parse(&database, &table)?)
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    database: Option<String>,
}

/// `GET /ts/tables?database=`
pub async fn list_tables(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<TablesOutput>, TsRouteError> {
    let output = service(&state)?
        .list_tables(&tenant, params.database.as_deref())
        .await?;
    Ok(ApiJson(output))
}

/// `GET /ts/tables/{database}/{table}`
pub async fn describe_table(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(path): ApiPath<(String, String)>,
) -> Result<ApiJson<TableDescription>, TsRouteError> {
    let table = table_ref(path)?;
    Ok(ApiJson(
        service(&state)?.describe_table(&tenant, &table).await?,
    ))
}

/// `DELETE /ts/tables/{database}/{table}`
pub async fn drop_table(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(path): ApiPath<(String, String)>,
) -> Result<ApiJson<DropAnswer>, TsRouteError> {
    let table = table_ref(path)?;
    service(&state)?.drop_table(&tenant, &table).await?;
    Ok(ApiJson(DropAnswer {
        status: "dropped".to_owned(),
        database: table.database.to_string(),
        table: table.table.to_string(),
    }))
}

/// `PUT /ts/tables/{database}/{table}/retention` `{retention: "30d"}`
pub async fn set_retention(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RetentionBody>,
) -> Result<ApiJson<TableDescription>, TsRouteError> {
    let table = table_ref(path)?;
    Ok(ApiJson(
        service(&state)?
            .set_retention(&tenant, &table, body)
            .await?,
    ))
}

/// `POST /ts/tables/{database}/{table}/records` `{records: [...]}`: creates the table (and its
/// database) on first write; answers which records were written and why others were rejected.
pub async fn write_records(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<WriteBody>,
) -> Result<ApiJson<WriteOutcome>, TsRouteError> {
    let table = table_ref(path)?;
    Ok(ApiJson(
        service(&state)?
            .write_records(&tenant, &table, body)
            .await?,
    ))
}

/// `POST /ts/tables/{database}/{table}/latest` `{dimensions?, measure?}`
pub async fn latest(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<LatestBody>,
) -> Result<ApiJson<LatestResult>, TsRouteError> {
    let table = table_ref(path)?;
    Ok(ApiJson(
        service(&state)?.latest(&tenant, &table, body).await?,
    ))
}

/// `POST /ts/tables/{database}/{table}/range` `{start, end, dimensions?, measure?, bin?, aggregate?}`
pub async fn range(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RangeBody>,
) -> Result<ApiJson<RangeResult>, TsRouteError> {
    let table = table_ref(path)?;
    Ok(ApiJson(
        service(&state)?.range(&tenant, &table, body).await?,
    ))
}

/// `POST /ts/query` `{sql}`: the read-only SQL subset over the caller's tables.
pub async fn query(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<ApiJson<QueryResult>, TsRouteError> {
    Ok(ApiJson(service(&state)?.query(&tenant, &body.sql).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    async fn answer(error: TsError) -> (StatusCode, Option<String>, Value) {
        let response = TsRouteError::from(error).into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|value| value.to_str().unwrap_or_default().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, retry_after, body)
    }

    #[tokio::test]
    async fn quotas_answer_429_and_a_busy_server_503_with_retry_after() {
        let (status, retry_after, body) =
            answer(TsError::QuotaExceeded("4 more fit: drop a table".into())).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after, None, "waiting does not free a quota");
        assert_eq!(
            body,
            json!({"error": {"code": "quota_exceeded", "message": "4 more fit: drop a table"}})
        );

        let (status, retry_after, body) = answer(TsError::Busy("retry in a second".into())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(
            body,
            json!({"error": {"code": "busy", "message": "retry in a second"}})
        );

        let (status, retry_after, body) = answer(TsError::Limit(
            "the read did not finish within its deadline".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(retry_after, None);
        assert_eq!(body["error"]["code"], "limit_exceeded");
    }
}
