//! `/ts/…`: the time-series calls (list, describe, write, latest, range, query, retention,
//! drop), each a thin wrapper over [`TimeSeriesService`](membrain_timeseries::service::TimeSeriesService)
//! with the caller's tenant.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use membrain_timeseries::service::{
    LatestBody, RangeBody, RetentionBody, TablesOutput, TimeSeriesService, WriteBody,
};
use membrain_timeseries::sql::QueryResult;
use membrain_timeseries::{
    LatestResult, RangeResult, TableDescription, TableRef, TsError, WriteOutcome,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Tenant};
use crate::server::AppState;

impl From<TsError> for ApiError {
    fn from(error: TsError) -> Self {
        let status = match &error {
            TsError::Invalid { .. } | TsError::Limit(_) => StatusCode::BAD_REQUEST,
            TsError::NotFound(_) => StatusCode::NOT_FOUND,
            TsError::Refused(_) => StatusCode::FORBIDDEN,
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
) -> Result<ApiJson<TablesOutput>, ApiError> {
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
) -> Result<ApiJson<TableDescription>, ApiError> {
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
) -> Result<ApiJson<Value>, ApiError> {
    let table = table_ref(path)?;
    service(&state)?.drop_table(&tenant, &table).await?;
    Ok(ApiJson(json!({
        "status": "dropped", "database": table.database, "table": table.table,
    })))
}

/// `PUT /ts/tables/{database}/{table}/retention` `{retention: "30d"}`
pub async fn set_retention(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RetentionBody>,
) -> Result<ApiJson<TableDescription>, ApiError> {
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
) -> Result<ApiJson<WriteOutcome>, ApiError> {
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
) -> Result<ApiJson<LatestResult>, ApiError> {
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
) -> Result<ApiJson<RangeResult>, ApiError> {
    let table = table_ref(path)?;
    Ok(ApiJson(
        service(&state)?.range(&tenant, &table, body).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    sql: String,
}

/// `POST /ts/query` `{sql}`: the read-only SQL subset over the caller's tables.
pub async fn query(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<ApiJson<QueryResult>, ApiError> {
    Ok(ApiJson(service(&state)?.query(&tenant, &body.sql).await?))
}
