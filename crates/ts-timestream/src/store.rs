//! [`TimestreamStore`]: the [`TimeSeriesStore`] over Timestream for LiveAnalytics. Writes go
//! through WriteRecords, table management through the write API, every read through Timestream
//! Query with SQL from `sql.rs`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_timestreamquery::config::timeout::TimeoutConfig;
use aws_sdk_timestreamwrite::operation::write_records::WriteRecordsError;
use aws_sdk_timestreamwrite::types::{MagneticStoreWriteProperties, RetentionProperties, Table};
use membrain_aws::{Credentials, ProvideErrorMetadata, SdkError};
use membrain_memory::TenantId;
use membrain_timeseries::{
    Aggregate, AttributeName, BatchItem, DatabaseName, Deadline, LatestQuery, LatestResult,
    MeasureType, MeasureValue, RangeQuery, RangeResult, ReadLimits, Scan, SeriesPoints, Span,
    TableDescription, TableMeta, TableRef, TableSchema, TableSummary, TenantUsage, TimeSeriesStore,
    Timestamp, TsError, WriteLimits, WriteOutcome, plan_range, scan_limit_error, select_measures,
};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::TimestreamUrl;
use crate::naming::{membrain_table, physical_table, tenant_prefix};
use crate::result::QueryTable;
use crate::sql::{Conditions, TableSql};
use crate::write::{RECORDS_PER_CALL, map_rejections, timestream_record};

const SECONDS_PER_HOUR: i64 = 3_600;
const SECONDS_PER_DAY: i64 = 86_400;
/// Timestream's bounds on a table's retention.
const MEMORY_STORE_HOURS: (i64, i64) = (1, 8_766);
const MAGNETIC_STORE_DAYS: (i64, i64) = (1, 73_000);
/// A Timestream query may run for 60 s; the shared fail-fast attempt timeout would cut it short.
const QUERY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(65);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How new tables keep their records. A table's Membrain retention is its magnetic store
/// retention (records older than that are deleted); the memory store holds the newest hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestreamOptions {
    /// Hours new records stay in the memory store: 1 to 8,766.
    pub memory_store_hours: i64,
    /// Days records are kept at all: 1 to 73,000.
    pub magnetic_store_days: i64,
}

impl Default for TimestreamOptions {
    fn default() -> Self {
        Self {
            memory_store_hours: 24,
            magnetic_store_days: 365,
        }
    }
}

impl TimestreamOptions {
    fn retention_properties(&self) -> Result<RetentionProperties, TsError> {
        let (hours, days) = (self.memory_store_hours, self.magnetic_store_days);
        if !(MEMORY_STORE_HOURS.0..=MEMORY_STORE_HOURS.1).contains(&hours)
            || !(MAGNETIC_STORE_DAYS.0..=MAGNETIC_STORE_DAYS.1).contains(&days)
        {
            return Err(TsError::invalid(
                "retention",
                format!(
                    "Timestream keeps records 1 to 8766 hours in memory and 1 to 73000 days in all; \
                     {hours} hours and {days} days are outside that"
                ),
            ));
        }
        RetentionProperties::builder()
            .memory_store_retention_period_in_hours(hours)
            .magnetic_store_retention_period_in_days(days)
            .build()
            .map_err(|error| TsError::Internal(format!("building retention properties: {error}")))
    }

    /// The table settings for a Membrain retention: whole days (rounded up), and no more memory
    /// store hours than the retention itself.
    fn for_retention(&self, retention: Span) -> Self {
        // Spans are positive, so rounding up is (n + d - 1) / d.
        let round_up = |micros: i64, per: i64| (micros.max(1) + per - 1) / per;
        let days = round_up(retention.as_micros(), SECONDS_PER_DAY * 1_000_000);
        let hours = round_up(retention.as_micros(), SECONDS_PER_HOUR * 1_000_000)
            .min(self.memory_store_hours);
        Self {
            memory_store_hours: hours.clamp(MEMORY_STORE_HOURS.0, MEMORY_STORE_HOURS.1),
            magnetic_store_days: days.clamp(MAGNETIC_STORE_DAYS.0, MAGNETIC_STORE_DAYS.1),
        }
    }
}

/// A Timestream table's settings, as Membrain reports them.
#[derive(Debug, Clone, Copy)]
struct TableSettings {
    retention: Span,
    created_at: Timestamp,
}

impl TableSettings {
    fn of(table: &Table) -> Self {
        let days = table
            .retention_properties()
            .map(|retention| retention.magnetic_store_retention_period_in_days())
            .unwrap_or(MAGNETIC_STORE_DAYS.1);
        // moto leaves CreationTime out; the epoch then stands for "unknown".
        let created_at = table
            .creation_time()
            .map(|time| {
                Timestamp::from_micros(
                    time.secs() * 1_000_000 + i64::from(time.subsec_nanos() / 1_000),
                )
            })
            .unwrap_or(Timestamp::from_micros(0));
        Self {
            retention: Span::from_secs(days * SECONDS_PER_DAY),
            created_at,
        }
    }
}

/// Membrain's time series in one Timestream for LiveAnalytics database.
pub struct TimestreamStore {
    url: TimestreamUrl,
    write: aws_sdk_timestreamwrite::Client,
    query: aws_sdk_timestreamquery::Client,
    options: TimestreamOptions,
    /// Tables this process has written, with their schema, for admitting records. A write holds
    /// the lock from admission to the end of its WriteRecords calls, so the schema it extends is
    /// the one it checked against. Another process's writes are not seen here; Timestream itself
    /// rejects a measure of the wrong type, and any rejection drops the entry.
    tables: Mutex<HashMap<String, TableMeta>>,
    /// Endpoint discovery's refresh tasks (none with an explicit endpoint).
    reloaders: Vec<JoinHandle<()>>,
}

impl Drop for TimestreamStore {
    fn drop(&mut self) {
        for reloader in &self.reloaders {
            reloader.abort();
        }
    }
}

impl TimestreamStore {
    /// Clients for `url`. With an explicit endpoint, calls go there and nowhere else; without
    /// one, the SDK discovers the account's cell endpoints (as Timestream requires) and keeps
    /// them fresh in a background task.
    pub async fn connect(
        url: &TimestreamUrl,
        credentials: Option<Credentials>,
        options: TimestreamOptions,
    ) -> Result<Self, TsError> {
        options.retention_properties()?;
        let config = membrain_aws::sdk_config(&url.aws_endpoint(), credentials).await;
        let write = aws_sdk_timestreamwrite::Client::new(&config);
        let query_config = aws_sdk_timestreamquery::config::Builder::from(&config)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(QUERY_ATTEMPT_TIMEOUT)
                    .operation_timeout(QUERY_ATTEMPT_TIMEOUT * 2)
                    .build(),
            )
            .build();
        let query = aws_sdk_timestreamquery::Client::from_conf(query_config);
        let (write, query, reloaders) = if url.endpoint.is_some() {
            (write, query, Vec::new())
        } else {
            let discovery_failed = |error: Box<dyn std::error::Error + Send + Sync>| {
                TsError::Unavailable(format!(
                    "discovering the Timestream endpoints of {} failed: {error}; check the region \
                     and the credentials",
                    url.region
                ))
            };
            let (write, write_reload) = write
                .with_endpoint_discovery_enabled()
                .await
                .map_err(discovery_failed)?;
            let (query, query_reload) = query
                .with_endpoint_discovery_enabled()
                .await
                .map_err(discovery_failed)?;
            let reloaders = vec![
                tokio::spawn(write_reload.reload_task()),
                tokio::spawn(query_reload.reload_task()),
            ];
            (write, query, reloaders)
        };
        Ok(Self {
            url: url.clone(),
            write,
            query,
            options,
            tables: Mutex::new(HashMap::new()),
            reloaders,
        })
    }

    fn sql(&self, physical: &str) -> TableSql {
        TableSql::new(&self.url.database, physical)
    }

    /// The table's Timestream settings; a missing table is [`TsError::NotFound`].
    async fn settings(&self, table: &TableRef, physical: &str) -> Result<TableSettings, TsError> {
        match self
            .write
            .describe_table()
            .database_name(&self.url.database)
            .table_name(physical)
            .send()
            .await
        {
            Ok(answer) => answer
                .table()
                .map(TableSettings::of)
                .ok_or_else(|| TsError::table_not_found(table)),
            Err(error) if is_not_found(&error) => Err(TsError::table_not_found(table)),
            Err(error) => Err(self.failure(format!("describing table {table}"), &error)),
        }
    }

    /// Dimensions and measure types, from `DESCRIBE`.
    async fn schema(&self, physical: &str) -> Result<TableSchema, TsError> {
        let answer = self
            .run(&self.sql(physical).describe(), None, &Deadline::none())
            .await?;
        let mut schema = TableSchema::default();
        for row in 0..answer.len() {
            let (Some(column), Some(kind), Some(role)) = (
                answer.text(row, "Column"),
                answer.text(row, "Type"),
                answer.text(row, "Timestream attribute type"),
            ) else {
                continue;
            };
            let Ok(name) = AttributeName::parse(column) else {
                continue;
            };
            match role {
                "DIMENSION" => {
                    schema.dimensions.insert(name);
                }
                "MULTI" => {
                    if let Some(kind) = MeasureType::parse(kind) {
                        schema.measures.insert(name, kind);
                    }
                }
                _ => {}
            }
        }
        Ok(schema)
    }

    /// Runs a query over all its pages. More than `max_rows` rows is [`scan_limit_error`]; a
    /// passed `deadline` stops it between pages.
    async fn run(
        &self,
        sql: &str,
        max_rows: Option<usize>,
        deadline: &Deadline,
    ) -> Result<QueryTable, TsError> {
        tracing::debug!(sql, "timestream query");
        let mut table = QueryTable::default();
        let mut next_token = None;
        loop {
            deadline.check()?;
            let page = self
                .query
                .query()
                .query_string(sql)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| self.failure("querying Timestream", &error))?;
            table.push_page(&page)?;
            if let Some(max_rows) = max_rows
                && table.len() > max_rows
            {
                return Err(scan_limit_error(max_rows));
            }
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                return Ok(table);
            }
        }
    }

    /// A table's settings and schema for a write, creating the table (and the Timestream
    /// database) on first use when the tenant's table quota allows. `true` when this call
    /// created it.
    ///
    /// The quota is checked by listing the tenant's tables, only when a table is about to be
    /// created; two processes creating a tenant's last tables at the same moment can both pass.
    /// Records are not counted: Timestream cannot count a tenant's records without a query over
    /// every table, so `max_points_per_tenant` does not apply here.
    async fn load_or_create(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        physical: &str,
        limits: &WriteLimits,
    ) -> Result<(TableMeta, bool), TsError> {
        match self.settings(table, physical).await {
            Ok(settings) => {
                let mut meta =
                    TableMeta::new(table.clone(), settings.retention, settings.created_at);
                meta.schema = self.schema(physical).await?;
                return Ok((meta, false));
            }
            Err(TsError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        let tables = self.list_tables(tenant, None).await?.len() as u64;
        limits.check_new_table(TenantUsage { tables, points: 0 }, table)?;
        let created = match self.create_table(physical).await {
            Err(error) if is_code(&error, "ResourceNotFoundException") => {
                self.create_database().await?;
                self.create_table(physical).await
            }
            other => other,
        };
        match created {
            Ok(settings) => Ok((
                TableMeta::new(table.clone(), settings.retention, settings.created_at),
                true,
            )),
            // Another writer created it first.
            Err(error) if is_code(&error, "ConflictException") => {
                let settings = self.settings(table, physical).await?;
                let mut meta =
                    TableMeta::new(table.clone(), settings.retention, settings.created_at);
                meta.schema = self.schema(physical).await?;
                Ok((meta, false))
            }
            Err(error) => Err(self.failure(format!("creating table {table}"), &error)),
        }
    }

    async fn create_table(
        &self,
        physical: &str,
    ) -> Result<
        TableSettings,
        SdkError<
            aws_sdk_timestreamwrite::operation::create_table::CreateTableError,
            aws_sdk_timestreamwrite::config::http::HttpResponse,
        >,
    > {
        let retention = self.options.retention_properties().ok();
        let answer = self
            .write
            .create_table()
            .database_name(&self.url.database)
            .table_name(physical)
            .set_retention_properties(retention)
            // Records older than the memory store's hours are accepted too, up to the retention.
            .magnetic_store_write_properties(
                MagneticStoreWriteProperties::builder()
                    .enable_magnetic_store_writes(true)
                    .build()
                    .expect("enable_magnetic_store_writes is the only required field"),
            )
            .send()
            .await?;
        let now = TableSettings {
            retention: Span::from_secs(self.options.magnetic_store_days * SECONDS_PER_DAY),
            created_at: Timestamp::now(),
        };
        Ok(answer
            .table()
            .map(TableSettings::of)
            .map_or(now, |settings| {
                // Prefer Timestream's answer, but not its missing creation time.
                if settings.created_at.as_micros() == 0 {
                    TableSettings {
                        created_at: now.created_at,
                        ..settings
                    }
                } else {
                    settings
                }
            }))
    }

    async fn create_database(&self) -> Result<(), TsError> {
        match self
            .write
            .create_database()
            .database_name(&self.url.database)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_code(&error, "ConflictException") => Ok(()),
            Err(error) => Err(self.failure(
                format!("creating the Timestream database {}", self.url.database),
                &error,
            )),
        }
    }

    fn failure<E, R>(&self, context: impl std::fmt::Display, error: &SdkError<E, R>) -> TsError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let text = membrain_aws::describe(error);
        if membrain_aws::is_unreachable(error) {
            TsError::Unavailable(format!(
                "{context}: Timestream at {} did not answer ({text})",
                self.url
            ))
        } else {
            TsError::Unavailable(format!("{context}: {text}"))
        }
    }

    /// What every read needs: the table exists, and its schema.
    async fn read_schema(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<(String, TableSchema), TsError> {
        let physical = physical_table(tenant, table)?;
        self.settings(table, &physical).await?;
        let schema = self.schema(&physical).await?;
        Ok((physical, schema))
    }

    async fn description(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError> {
        let physical = physical_table(tenant, table)?;
        let settings = self.settings(table, &physical).await?;
        let schema = self.schema(&physical).await?;
        let sql = self.sql(&physical);
        let counts = self.run(&sql.counts(), None, &Deadline::none()).await?;
        let dimensions: Vec<AttributeName> = schema.dimensions.iter().cloned().collect();
        let (row_count, span) = if counts.is_empty() {
            (0, None)
        } else {
            let span = counts.time(0, "earliest")?.zip(counts.time(0, "latest")?);
            (counts.count(0, "row_count")?, span)
        };
        let series_count = if row_count == 0 {
            0
        } else {
            let series = self
                .run(&sql.series_count(&dimensions), None, &Deadline::none())
                .await?;
            if series.is_empty() {
                0
            } else {
                series.count(0, "series_count")?
            }
        };
        Ok(TableDescription::new(
            table,
            settings.retention,
            settings.created_at,
            &schema,
            series_count,
            row_count,
            span,
        ))
    }
}

fn is_code<E, R>(error: &SdkError<E, R>, code: &str) -> bool
where
    E: ProvideErrorMetadata,
{
    error.code() == Some(code)
}

fn is_not_found<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    is_code(error, "ResourceNotFoundException")
}

/// Whether every dimension a filter names is one of the table's: a filter on a dimension the
/// table never had matches nothing (and Timestream would refuse the unknown column).
fn filter_applies(schema: &TableSchema, filter: &membrain_timeseries::DimensionFilter) -> bool {
    filter
        .iter()
        .all(|(name, _)| schema.dimensions.contains(name))
}

/// A `count` of zero is a bucket with no value of that measure: no value, as the reference fold
/// has it.
fn drop_zero_counts(series: Vec<SeriesPoints>) -> Vec<SeriesPoints> {
    series
        .into_iter()
        .filter_map(|mut entry| {
            entry.points.retain_mut(|point| {
                point
                    .measures
                    .retain(|(_, value)| *value != MeasureValue::Bigint(0));
                !point.measures.is_empty()
            });
            (!entry.points.is_empty()).then_some(entry)
        })
        .collect()
}

#[async_trait::async_trait]
impl TimeSeriesStore for TimestreamStore {
    fn describe(&self) -> String {
        format!(
            "Amazon Timestream for LiveAnalytics, database {} in {}{}",
            self.url.database,
            self.url.region,
            self.url
                .endpoint
                .as_deref()
                .map(|endpoint| format!(" at {endpoint}"))
                .unwrap_or_default()
        )
    }

    async fn list_tables(
        &self,
        tenant: &TenantId,
        database: Option<&DatabaseName>,
    ) -> Result<Vec<TableSummary>, TsError> {
        let prefix = tenant_prefix(tenant);
        let mut summaries = Vec::new();
        let mut next_token = None;
        loop {
            let page = match self
                .write
                .list_tables()
                .database_name(&self.url.database)
                .set_next_token(next_token)
                .send()
                .await
            {
                Ok(page) => page,
                // No Timestream database yet: nobody has written.
                Err(error) if is_not_found(&error) => return Ok(Vec::new()),
                Err(error) => return Err(self.failure("listing Timestream tables", &error)),
            };
            for table in page.tables() {
                let Some(name) = table.table_name().filter(|name| name.starts_with(&prefix)) else {
                    continue;
                };
                let Some(table_ref) = membrain_table(tenant, name) else {
                    continue;
                };
                if database.is_some_and(|wanted| *wanted != table_ref.database) {
                    continue;
                }
                let settings = TableSettings::of(table);
                summaries.push(TableSummary {
                    database: table_ref.database,
                    table: table_ref.table.to_string(),
                    retention: settings.retention.to_string(),
                    created_at: settings.created_at,
                });
            }
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        summaries.sort_by(|a, b| (&a.database, &a.table).cmp(&(&b.database, &b.table)));
        Ok(summaries)
    }

    async fn describe_table(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError> {
        self.description(tenant, table).await
    }

    /// DescribeTable and one `DESCRIBE`: no counting query.
    async fn table_meta(&self, tenant: &TenantId, table: &TableRef) -> Result<TableMeta, TsError> {
        let physical = physical_table(tenant, table)?;
        let settings = self.settings(table, &physical).await?;
        let mut meta = TableMeta::new(table.clone(), settings.retention, settings.created_at);
        meta.schema = self.schema(&physical).await?;
        Ok(meta)
    }

    async fn write(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        items: Vec<BatchItem>,
        limits: &WriteLimits,
    ) -> Result<WriteOutcome, TsError> {
        if items.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let physical = physical_table(tenant, table)?;
        let mut tables = self.tables.lock().await;
        // Out of the cache while writing: only a write that ends cleanly puts its schema back.
        let (mut meta, table_created) = match tables.remove(&physical) {
            Some(meta) => (meta, false),
            None => {
                self.load_or_create(tenant, table, &physical, limits)
                    .await?
            }
        };
        let (admitted, mut rejected) = meta.admit(items, Timestamp::now(), limits);
        let mut records_ingested = 0;
        let mut timestream_rejected = false;
        for chunk in admitted.chunks(RECORDS_PER_CALL) {
            let records = chunk
                .iter()
                .map(timestream_record)
                .collect::<Result<Vec<_>, _>>()?;
            let answer = self
                .write
                .write_records()
                .database_name(&self.url.database)
                .table_name(&physical)
                .set_records(Some(records))
                .send()
                .await;
            match answer {
                Ok(_) => records_ingested += chunk.len(),
                Err(error) => match error.as_service_error() {
                    // The records Timestream did not name were written.
                    Some(WriteRecordsError::RejectedRecordsException(exception)) => {
                        let mapped = map_rejections(chunk, exception.rejected_records())?;
                        records_ingested += chunk.len() - mapped.len();
                        rejected.extend(mapped);
                        timestream_rejected = true;
                    }
                    _ => {
                        return Err(self.failure(
                            format!(
                                "writing records to {table} ({records_ingested} of {} written; \
                                 sending the batch again is safe)",
                                admitted.len()
                            ),
                            &error,
                        ));
                    }
                },
            }
        }
        if !timestream_rejected {
            tables.insert(physical, meta);
        }
        rejected.sort_by_key(|rejection| rejection.record_index);
        Ok(WriteOutcome {
            records_ingested,
            rejected_records: rejected,
            table_created,
        })
    }

    async fn latest(
        &self,
        tenant: &TenantId,
        query: &LatestQuery,
        limits: &ReadLimits,
    ) -> Result<LatestResult, TsError> {
        let (physical, schema) = self.read_schema(tenant, &query.table).await?;
        let measures = select_measures(&query.table, &schema, query.measure.as_ref())?;
        if measures.is_empty() || !filter_applies(&schema, &query.dimensions) {
            return Ok(LatestResult {
                series: Vec::new(),
                truncated: false,
            });
        }
        let dimensions: Vec<AttributeName> = schema.dimensions.iter().cloned().collect();
        let names: Vec<AttributeName> = measures.iter().map(|(name, _)| name.clone()).collect();
        let sql = self.sql(&physical).latest(
            &dimensions,
            &query.dimensions,
            &names,
            query.measure.as_ref(),
        );
        let answer = self
            .run(&sql, Some(limits.max_scan_rows), &limits.deadline)
            .await?;
        Ok(LatestResult::capped(
            answer.series(&dimensions, &measures, None)?,
            limits,
        ))
    }

    async fn range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
        limits: &ReadLimits,
    ) -> Result<RangeResult, TsError> {
        let (physical, schema) = self.read_schema(tenant, &query.table).await?;
        let plan = plan_range(query, &schema, limits)?;
        if plan.measures.is_empty() || !filter_applies(&schema, &query.dimensions) {
            return Ok(plan.answer(Vec::new(), limits));
        }
        let dimensions: Vec<AttributeName> = schema.dimensions.iter().cloned().collect();
        let names: Vec<AttributeName> =
            plan.measures.iter().map(|(name, _)| name.clone()).collect();
        let conditions = Conditions {
            dimensions: Some(&query.dimensions),
            start: Some(plan.start),
            end: Some(plan.end),
            any_of: &names,
        };
        let sql = self.sql(&physical);
        let cap = limits.max_scan_rows;
        let series = match plan.folding {
            None => self
                .run(
                    &sql.records(&dimensions, &names, &conditions, cap + 1),
                    Some(cap),
                    &limits.deadline,
                )
                .await?
                .series(&dimensions, &plan.measures, None)?,
            Some((bin, aggregate)) => {
                let text = sql.buckets(
                    &dimensions,
                    &plan.measures,
                    bin,
                    aggregate,
                    &conditions,
                    cap + 1,
                );
                let whole_range = bin.is_none().then_some(plan.start);
                let series = self.run(&text, Some(cap), &limits.deadline).await?.series(
                    &dimensions,
                    &plan.measures,
                    whole_range,
                )?;
                if aggregate == Aggregate::Count {
                    drop_zero_counts(series)
                } else {
                    series
                }
            }
        };
        Ok(plan.answer(series, limits))
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        scan: &Scan,
        limits: &ReadLimits,
    ) -> Result<Vec<SeriesPoints>, TsError> {
        let (physical, schema) = self.read_schema(tenant, &scan.table).await?;
        let wanted: Option<BTreeSet<&AttributeName>> =
            scan.measures.as_ref().map(|names| names.iter().collect());
        let measures: Vec<(AttributeName, MeasureType)> = schema
            .measures
            .iter()
            .filter(|(name, _)| wanted.as_ref().is_none_or(|wanted| wanted.contains(name)))
            .map(|(name, kind)| (name.clone(), *kind))
            .collect();
        if measures.is_empty() || !filter_applies(&schema, &scan.dimensions) {
            return Ok(Vec::new());
        }
        let dimensions: Vec<AttributeName> = schema.dimensions.iter().cloned().collect();
        let names: Vec<AttributeName> = measures.iter().map(|(name, _)| name.clone()).collect();
        let conditions = Conditions {
            dimensions: Some(&scan.dimensions),
            start: scan.start,
            end: scan.end,
            any_of: &names,
        };
        let cap = limits.max_scan_rows;
        let sql = self
            .sql(&physical)
            .records(&dimensions, &names, &conditions, cap + 1);
        self.run(&sql, Some(cap), &limits.deadline)
            .await?
            .series(&dimensions, &measures, None)
    }

    async fn set_retention(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        retention: Span,
    ) -> Result<TableDescription, TsError> {
        let physical = physical_table(tenant, table)?;
        let properties = self
            .options
            .for_retention(retention)
            .retention_properties()?;
        let mut tables = self.tables.lock().await;
        tables.remove(&physical);
        // moto fails with a 500 on a missing table; Timestream says ResourceNotFound. Ask first
        // so both answer NotFound.
        self.settings(table, &physical).await?;
        match self
            .write
            .update_table()
            .database_name(&self.url.database)
            .table_name(&physical)
            .retention_properties(properties)
            .send()
            .await
        {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => return Err(TsError::table_not_found(table)),
            Err(error) => {
                return Err(self.failure(format!("changing the retention of {table}"), &error));
            }
        }
        drop(tables);
        self.description(tenant, table).await
    }

    async fn drop_table(&self, tenant: &TenantId, table: &TableRef) -> Result<(), TsError> {
        let physical = physical_table(tenant, table)?;
        let mut tables = self.tables.lock().await;
        tables.remove(&physical);
        // moto deletes a missing table silently; Timestream says ResourceNotFound. Ask first so
        // both answer NotFound.
        self.settings(table, &physical).await?;
        match self
            .write
            .delete_table()
            .database_name(&self.url.database)
            .table_name(&physical)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Err(TsError::table_not_found(table)),
            Err(error) => Err(self.failure(format!("dropping table {table}"), &error)),
        }
    }
}
