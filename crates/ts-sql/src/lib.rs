//! [`SqlTimeSeriesStore`]: Membrain's time series on PostgreSQL (production, shared by every
//! stateless API task) or SQLite (embedded), one implementation over sqlx's `Any` driver.
//!
//! Layout: `ts_tables` (a table's retention and schema, one row per tenant, database and
//! table), `ts_series` (one row per distinct dimension set) and `ts_records` (one row per record,
//! keyed by series and time, its measures as compact JSON). A write locks its table's row, admits
//! the batch against the schema ([`TableMeta::admit`]), inserts and commits in one transaction.
//! Reads narrow to series by their dimensions in Rust and read each series through the
//! `(series_id, time_us)` key, folding with the domain's reference functions; they look at the
//! read's deadline between queries, and an aggregated range reads at most
//! `ReadLimits::max_scan_rows` records.
//!
//! Quotas: `ts_tables.record_count` is kept by every transaction that adds or deletes records,
//! so a tenant's usage is one sum over its table rows. A write takes a per-tenant lock first
//! (PostgreSQL: a transaction-scoped advisory lock; SQLite's `BEGIN IMMEDIATE` already
//! serialises writers), so two writes of one tenant cannot both fit the last of its quota.

mod codec;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use membrain_memory::TenantId;
use membrain_timeseries::{
    BatchItem, DEFAULT_RETENTION, DatabaseName, Deadline, DimensionFilter, Dimensions, LatestQuery,
    LatestResult, Point, RangeQuery, RangeResult, ReadLimits, Rejection, Scan, SeriesPoints, Span,
    TableDescription, TableMeta, TableName, TableRef, TableSchema, TableSummary, TenantUsage,
    TimeSeriesStore, Timestamp, TsError, WriteLimits, WriteOutcome, fold_range, plan_range,
    scan_limit_error, select_measures,
};
use sqlx::any::AnyRow;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Row, Transaction};

/// Where sqlx records this crate's migrations: not `_sqlx_migrations`, which the memory store
/// uses in the same database, so neither migrator mistakes the other's versions for its own.
pub const MIGRATIONS_TABLE: &str = "_membrain_ts_migrations";

/// Rows per multi-row INSERT: 3 parameters each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters per statement.
const INSERT_CHUNK: usize = 1_000;
/// Ids or keys per `IN (…)` list.
const IN_CHUNK: usize = 500;
/// Records read per step while looking back for the latest record carrying one measure.
const LOOK_BACK_PAGE: i64 = 256;

/// Which database the store talks to.
pub use membrain_sql::Backend;
use membrain_sql::{OpenError, PoolSettings, Pools};

/// This crate's migrations for `backend`, recorded in [`MIGRATIONS_TABLE`].
fn migrator(backend: Backend) -> Migrator {
    let mut migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct SqlTsOptions {
    /// The retention of tables created by a first write.
    pub default_retention: Span,
    /// Most connections a pool opens (readers on SQLite, where one connection writes; all on
    /// PostgreSQL).
    pub max_connections: u32,
    /// How long a call waits for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for SqlTsOptions {
    fn default() -> Self {
        Self {
            default_retention: DEFAULT_RETENTION,
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The SQL time-series store. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct SqlTimeSeriesStore {
    backend: Backend,
    /// Reads. On PostgreSQL the same pool as `write`.
    read: AnyPool,
    /// Writes. On SQLite a single connection, so this process's writers queue here instead of
    /// contending for the file lock.
    write: AnyPool,
    default_retention: Span,
}

/// A table's row: its id and what admission needs.
struct StoredTable {
    id: i64,
    meta: TableMeta,
}

/// A series of a table, named by its dimensions.
struct StoredSeries {
    id: i64,
    dimensions: Dimensions,
}

impl SqlTimeSeriesStore {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`:
    /// `sqlite://PATH` or `postgres://…`.
    pub async fn connect(url: &str, options: SqlTsOptions) -> Result<Self, TsError> {
        let settings = PoolSettings {
            max_connections: options.max_connections,
            acquire_timeout: options.acquire_timeout,
            statement_timeout: Some(PoolSettings::DEFAULT_STATEMENT_TIMEOUT),
        };
        let pools = Pools::open(url, &settings).await.map_err(|error| match error {
            OpenError::UnsupportedUrl => TsError::invalid(
                "url",
                "unsupported time-series database URL: use sqlite://PATH or postgres://USER@HOST/DB",
            ),
            OpenError::Failed { step, source } => TsError::Unavailable(format!("{step}: {source}")),
        })?;
        pools
            .migrate(&migrator(pools.backend))
            .await
            .map_err(|error| {
                TsError::Unavailable(format!("migrating the time-series tables: {error}"))
            })?;
        let Pools {
            backend,
            read,
            write,
        } = pools;
        Ok(Self {
            backend,
            read,
            write,
            default_retention: options.default_retention,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pools, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Deletes every record older than its table's retention; returns how many. Reads never
    /// return such records anyway: this only reclaims space, for a periodic job.
    pub async fn prune_expired(&self) -> Result<u64, TsError> {
        let tables = sqlx::query("SELECT id, retention_us FROM ts_tables")
            .fetch_all(&self.read)
            .await
            .during("listing tables to prune")?;
        let now = Timestamp::now();
        let mut deleted = 0;
        for row in tables {
            let id: i64 = row.try_get(0).during("reading a table id")?;
            let retention: i64 = row.try_get(1).during("reading a retention")?;
            let mut tx = self.begin_write().await?;
            deleted += delete_older_than(&mut tx, id, now.plus_micros(-retention)).await?;
            tx.commit().await.during("committing a prune")?;
        }
        Ok(deleted)
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Any>, TsError> {
        membrain_sql::begin_write(&self.write, self.backend)
            .await
            .unavailable("starting a transaction")
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<Any>, TsError> {
        self.read
            .acquire()
            .await
            .unavailable("acquiring a connection")
    }

    /// The table's row, locked until the transaction ends when `lock` (PostgreSQL; SQLite's
    /// `BEGIN IMMEDIATE` already holds the database's write lock).
    async fn load_table(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        table: &TableRef,
        lock: bool,
    ) -> Result<Option<StoredTable>, TsError> {
        let sql = if lock && self.backend == Backend::Postgres {
            "SELECT id, retention_us, created_at_us, schema FROM ts_tables \
             WHERE tenant_id = $1 AND database_name = $2 AND table_name = $3 FOR UPDATE"
        } else {
            "SELECT id, retention_us, created_at_us, schema FROM ts_tables \
             WHERE tenant_id = $1 AND database_name = $2 AND table_name = $3"
        };
        let row = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(table.database.as_str())
            .bind(table.table.as_str())
            .fetch_optional(&mut *conn)
            .await
            .during("reading a table")?;
        row.map(|row| {
            let schema: String = row.try_get(3).during("reading a table's schema")?;
            let schema: TableSchema = serde_json::from_str(&schema).map_err(|error| {
                TsError::Internal(format!("the stored schema of {table} is corrupt: {error}"))
            })?;
            Ok(StoredTable {
                id: row.try_get(0).during("reading a table id")?,
                meta: TableMeta {
                    table: table.clone(),
                    retention: Span::from_micros(row.try_get(1).during("reading a retention")?),
                    created_at: Timestamp::from_micros(
                        row.try_get(2).during("reading a creation time")?,
                    ),
                    schema,
                },
            })
        })
        .transpose()
    }

    async fn existing_table(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<StoredTable, TsError> {
        self.load_table(conn, tenant, table, false)
            .await?
            .ok_or_else(|| TsError::table_not_found(table))
    }

    /// The table's row for a write, created (with the default retention) when missing and the
    /// tenant's table quota allows.
    async fn table_for_write(
        &self,
        tx: &mut AnyConnection,
        tenant: &TenantId,
        table: &TableRef,
        usage: TenantUsage,
        limits: &WriteLimits,
    ) -> Result<(StoredTable, bool), TsError> {
        if let Some(stored) = self.load_table(tx, tenant, table, true).await? {
            return Ok((stored, false));
        }
        limits.check_new_table(usage, table)?;
        // Another task may create it at the same moment: the loser's insert does nothing and
        // both then lock the one row.
        let created = sqlx::query(
            "INSERT INTO ts_tables (tenant_id, database_name, table_name, retention_us, \
             created_at_us, schema) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, database_name, table_name) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(table.database.as_str())
        .bind(table.table.as_str())
        .bind(self.default_retention.as_micros())
        .bind(Timestamp::now().as_micros())
        .bind(schema_json(&TableSchema::default())?)
        .execute(&mut *tx)
        .await
        .during("creating a table")?
        .rows_affected()
            == 1;
        let stored = self
            .load_table(tx, tenant, table, true)
            .await?
            .ok_or_else(|| TsError::Internal(format!("table {table} vanished while created")))?;
        Ok((stored, created))
    }

    async fn describe_stored(
        &self,
        conn: &mut AnyConnection,
        stored: &StoredTable,
    ) -> Result<TableDescription, TsError> {
        let cut = stored.meta.retention_start(Timestamp::now());
        let row = sqlx::query(
            "SELECT COUNT(*), MIN(r.time_us), MAX(r.time_us) FROM ts_records r \
             JOIN ts_series s ON s.id = r.series_id WHERE s.table_id = $1 AND r.time_us >= $2",
        )
        .bind(stored.id)
        .bind(cut.as_micros())
        .fetch_one(&mut *conn)
        .await
        .during("counting a table's records")?;
        let row_count: i64 = row.try_get(0).during("reading a record count")?;
        let earliest: Option<i64> = row.try_get(1).during("reading the earliest time")?;
        let latest: Option<i64> = row.try_get(2).during("reading the latest time")?;
        let series_count: i64 = sqlx::query("SELECT COUNT(*) FROM ts_series WHERE table_id = $1")
            .bind(stored.id)
            .fetch_one(&mut *conn)
            .await
            .during("counting a table's series")?
            .try_get(0)
            .during("reading a series count")?;
        let meta = &stored.meta;
        Ok(TableDescription::new(
            &meta.table,
            meta.retention,
            meta.created_at,
            &meta.schema,
            u64::try_from(series_count).unwrap_or_default(),
            u64::try_from(row_count).unwrap_or_default(),
            earliest
                .zip(latest)
                .map(|(a, b)| (Timestamp::from_micros(a), Timestamp::from_micros(b))),
        ))
    }
}

/// Serialises one tenant's writes until the transaction ends, so that quota checks see every
/// record the tenant's other writes add. SQLite's `BEGIN IMMEDIATE` already holds the database's
/// write lock; PostgreSQL takes a transaction-scoped advisory lock on a key of the tenant's name
/// (two tenants whose keys collide only share the lock).
async fn lock_tenant(
    tx: &mut AnyConnection,
    backend: Backend,
    tenant: &TenantId,
) -> Result<(), TsError> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(tenant_lock_key(tenant))
        .execute(&mut *tx)
        .await
        .during("locking the tenant's quota")?;
    Ok(())
}

/// A stable 64-bit key for a tenant (FNV-1a over a prefix and its name): the advisory lock
/// space is the database's, so the prefix keeps clear of other users of it.
fn tenant_lock_key(tenant: &TenantId) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"membrain-ts-quota:"
        .iter()
        .chain(tenant.as_str().as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_le_bytes(hash.to_le_bytes())
}

/// The tenant's tables and stored records, from its table rows.
async fn tenant_usage(tx: &mut AnyConnection, tenant: &TenantId) -> Result<TenantUsage, TsError> {
    let row = sqlx::query(
        "SELECT COUNT(*), CAST(COALESCE(SUM(record_count), 0) AS BIGINT) FROM ts_tables \
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_one(&mut *tx)
    .await
    .during("reading the tenant's usage")?;
    let tables: i64 = row.try_get(0).during("reading a table count")?;
    let points: i64 = row.try_get(1).during("reading a record count")?;
    Ok(TenantUsage {
        tables: u64::try_from(tables).unwrap_or_default(),
        points: u64::try_from(points).unwrap_or_default(),
    })
}

/// Adds `change` (negative: records deleted) to a table's record count.
async fn add_records(tx: &mut AnyConnection, table_id: i64, change: i64) -> Result<(), TsError> {
    if change == 0 {
        return Ok(());
    }
    sqlx::query("UPDATE ts_tables SET record_count = record_count + $1 WHERE id = $2")
        .bind(change)
        .bind(table_id)
        .execute(&mut *tx)
        .await
        .during("counting a table's records")?;
    Ok(())
}

/// `$from, $from+1, …` for `count` parameters: positional placeholders both dialects read.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn schema_json(schema: &TableSchema) -> Result<String, TsError> {
    serde_json::to_string(schema)
        .map_err(|error| TsError::Internal(format!("a table schema cannot be stored: {error}")))
}

/// The series of a table whose dimensions match `filter`, sorted by dimensions.
async fn matching_series(
    conn: &mut AnyConnection,
    table_id: i64,
    filter: &DimensionFilter,
) -> Result<Vec<StoredSeries>, TsError> {
    let rows = sqlx::query("SELECT id, dims_key FROM ts_series WHERE table_id = $1")
        .bind(table_id)
        .fetch_all(&mut *conn)
        .await
        .during("listing a table's series")?;
    let mut series = Vec::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get(1).during("reading a series key")?;
        let dimensions = Dimensions::from_key(&key)?;
        if dimensions.matches(filter) {
            series.push(StoredSeries {
                id: row.try_get(0).during("reading a series id")?,
                dimensions,
            });
        }
    }
    series.sort_by(|a, b| a.dimensions.cmp(&b.dimensions));
    Ok(series)
}

/// One series' records in `[start, end)`, oldest first, at most `limit`.
async fn series_records(
    conn: &mut AnyConnection,
    series_id: i64,
    start: Timestamp,
    end: Timestamp,
    limit: usize,
) -> Result<Vec<(i64, String)>, TsError> {
    let rows = sqlx::query(
        "SELECT time_us, measures FROM ts_records \
         WHERE series_id = $1 AND time_us >= $2 AND time_us < $3 ORDER BY time_us LIMIT $4",
    )
    .bind(series_id)
    .bind(start.as_micros())
    .bind(end.as_micros())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
    .during("reading a series' records")?;
    rows.iter().map(time_and_measures).collect()
}

fn time_and_measures(row: &AnyRow) -> Result<(i64, String), TsError> {
    Ok((
        row.try_get(0).during("reading a record time")?,
        row.try_get(1).during("reading a record's measures")?,
    ))
}

/// Deletes a table's records older than `cut` and takes them off its record count.
async fn delete_older_than(
    tx: &mut AnyConnection,
    table_id: i64,
    cut: Timestamp,
) -> Result<u64, TsError> {
    let deleted = sqlx::query(
        "DELETE FROM ts_records WHERE time_us < $2 \
         AND series_id IN (SELECT id FROM ts_series WHERE table_id = $1)",
    )
    .bind(table_id)
    .bind(cut.as_micros())
    .execute(&mut *tx)
    .await
    .during("deleting expired records")?
    .rows_affected();
    add_records(tx, table_id, -i64::try_from(deleted).unwrap_or(i64::MAX)).await?;
    Ok(deleted)
}

/// The series ids of `keys` (dimension keys) in a table, creating those that are new. The
/// caller holds the table's lock, so no one else creates them meanwhile.
async fn series_ids(
    tx: &mut AnyConnection,
    table_id: i64,
    keys: &[&str],
) -> Result<HashMap<String, i64>, TsError> {
    let mut ids = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT id, dims_key FROM ts_series WHERE table_id = $1 AND dims_key IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(table_id);
        for key in chunk {
            query = query.bind(*key);
        }
        for row in query.fetch_all(&mut *tx).await.during("finding series")? {
            ids.insert(
                row.try_get::<String, _>(1).during("reading a series key")?,
                row.try_get::<i64, _>(0).during("reading a series id")?,
            );
        }
    }
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|key| !ids.contains_key(*key))
        .collect();
    for chunk in missing.chunks(IN_CHUNK) {
        let values = (0..chunk.len())
            .map(|i| format!("($1, ${})", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO ts_series (table_id, dims_key) VALUES {values} RETURNING id, dims_key"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(table_id);
        for key in chunk {
            query = query.bind(*key);
        }
        for row in query.fetch_all(&mut *tx).await.during("creating series")? {
            ids.insert(
                row.try_get::<String, _>(1).during("reading a series key")?,
                row.try_get::<i64, _>(0).during("reading a series id")?,
            );
        }
    }
    Ok(ids)
}

/// A record ready to insert.
struct NewRecord<'a> {
    series_id: i64,
    item: &'a BatchItem,
    measures: String,
}

/// Inserts records, skipping those whose series and time is taken; returns the keys inserted.
async fn insert_records(
    tx: &mut AnyConnection,
    rows: &[NewRecord<'_>],
) -> Result<HashSet<(i64, i64)>, TsError> {
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(INSERT_CHUNK) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO ts_records (series_id, time_us, measures) VALUES {values} \
             ON CONFLICT (series_id, time_us) DO NOTHING RETURNING series_id, time_us"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(row.series_id)
                .bind(row.item.record.time.as_micros())
                .bind(row.measures.as_str());
        }
        for row in query
            .fetch_all(&mut *tx)
            .await
            .during("inserting records")?
        {
            inserted.insert((
                row.try_get(0).during("reading an inserted series id")?,
                row.try_get(1).during("reading an inserted time")?,
            ));
        }
    }
    Ok(inserted)
}

#[async_trait]
impl TimeSeriesStore for SqlTimeSeriesStore {
    fn describe(&self) -> String {
        format!("SQL time-series store on {}", self.backend.name())
    }

    async fn list_tables(
        &self,
        tenant: &TenantId,
        database: Option<&DatabaseName>,
    ) -> Result<Vec<TableSummary>, TsError> {
        let mut conn = self.reader().await?;
        let rows = match database {
            Some(database) => sqlx::query(
                "SELECT database_name, table_name, retention_us, created_at_us FROM ts_tables \
                 WHERE tenant_id = $1 AND database_name = $2",
            )
            .bind(tenant.as_str())
            .bind(database.as_str()),
            None => sqlx::query(
                "SELECT database_name, table_name, retention_us, created_at_us FROM ts_tables \
                 WHERE tenant_id = $1",
            )
            .bind(tenant.as_str()),
        }
        .fetch_all(&mut *conn)
        .await
        .during("listing tables")?;
        let mut tables = rows
            .iter()
            .map(|row| {
                let database: String = row.try_get(0).during("reading a database name")?;
                let table: String = row.try_get(1).during("reading a table name")?;
                let table =
                    TableRef::new(DatabaseName::parse(&database)?, TableName::parse(&table)?);
                Ok(TableSummary {
                    database: table.database,
                    table: table.table.to_string(),
                    retention: Span::from_micros(row.try_get(2).during("reading a retention")?)
                        .to_string(),
                    created_at: Timestamp::from_micros(
                        row.try_get(3).during("reading a creation time")?,
                    ),
                })
            })
            .collect::<Result<Vec<_>, TsError>>()?;
        // Sorted here rather than by SQL, whose text collation differs between the two.
        tables.sort_by(|a, b| (&a.database, &a.table).cmp(&(&b.database, &b.table)));
        Ok(tables)
    }

    async fn describe_table(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError> {
        let mut conn = self.reader().await?;
        let stored = self.existing_table(&mut conn, tenant, table).await?;
        self.describe_stored(&mut conn, &stored).await
    }

    async fn table_meta(&self, tenant: &TenantId, table: &TableRef) -> Result<TableMeta, TsError> {
        let mut conn = self.reader().await?;
        Ok(self.existing_table(&mut conn, tenant, table).await?.meta)
    }

    async fn write(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        items: Vec<BatchItem>,
        limits: &WriteLimits,
    ) -> Result<WriteOutcome, TsError> {
        let mut tx = self.begin_write().await?;
        lock_tenant(&mut tx, self.backend, tenant).await?;
        let usage = tenant_usage(&mut tx, tenant).await?;
        let (mut stored, table_created) = self
            .table_for_write(&mut tx, tenant, table, usage, limits)
            .await?;
        let schema_before = stored.meta.schema.clone();
        let (admitted, mut rejected) = stored.meta.admit(items, Timestamp::now(), limits);

        let keys: Vec<String> = admitted
            .iter()
            .map(|item| item.record.dimensions.key())
            .collect();
        let mut distinct: Vec<&str> = keys.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let ids = series_ids(&mut tx, stored.id, &distinct).await?;
        let rows = admitted
            .iter()
            .zip(&keys)
            .map(|(item, key)| {
                let series_id = *ids.get(key).ok_or_else(|| {
                    TsError::Internal(format!("series {key} of {table} was not created"))
                })?;
                Ok(NewRecord {
                    series_id,
                    item,
                    measures: codec::encode(&item.record.measures),
                })
            })
            .collect::<Result<Vec<_>, TsError>>()?;
        let inserted = insert_records(&mut tx, &rows).await?;
        // Over the quota, the transaction is dropped unfinished: nothing of the write is kept.
        limits.check_new_points(usage, inserted.len() as u64)?;
        add_records(
            &mut tx,
            stored.id,
            i64::try_from(inserted.len()).unwrap_or(i64::MAX),
        )
        .await?;

        // A record whose series and time were taken is accepted only as an exact repeat.
        let mut ingested = inserted.len();
        for row in rows
            .iter()
            .filter(|row| !inserted.contains(&(row.series_id, row.item.record.time.as_micros())))
        {
            let existing: String = sqlx::query(
                "SELECT measures FROM ts_records WHERE series_id = $1 AND time_us = $2",
            )
            .bind(row.series_id)
            .bind(row.item.record.time.as_micros())
            .fetch_one(&mut *tx)
            .await
            .during("reading a record that is already stored")?
            .try_get(0)
            .during("reading stored measures")?;
            let existing = codec::decode(&existing, &stored.meta.schema, |_| true)?;
            if existing == row.item.record.measures {
                ingested += 1;
            } else {
                rejected.push(Rejection::new(
                    row.item.index,
                    format!(
                        "a record for this series at {} is already stored with other measures: \
                         records are not overwritten; send a different time or the same measures",
                        row.item.record.time
                    ),
                ));
            }
        }
        // Only written records extend the stored schema (admission counted refused repeats too).
        let mut schema = schema_before.clone();
        for row in rows
            .iter()
            .filter(|row| inserted.contains(&(row.series_id, row.item.record.time.as_micros())))
        {
            schema.learn(&row.item.record);
        }
        stored.meta.schema = schema;
        if stored.meta.schema != schema_before {
            sqlx::query("UPDATE ts_tables SET schema = $1 WHERE id = $2")
                .bind(schema_json(&stored.meta.schema)?)
                .bind(stored.id)
                .execute(&mut *tx)
                .await
                .during("updating a table's schema")?;
        }
        tx.commit().await.during("committing a write")?;
        rejected.sort_by_key(|rejection| rejection.record_index);
        Ok(WriteOutcome {
            records_ingested: ingested,
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
        let mut conn = self.reader().await?;
        let stored = self.existing_table(&mut conn, tenant, &query.table).await?;
        let schema = &stored.meta.schema;
        let measures = select_measures(&query.table, schema, query.measure.as_ref())?;
        let wanted = |name: &str| measures.iter().any(|(wanted, _)| wanted.as_str() == name);
        let cut = stored.meta.retention_start(Timestamp::now());
        let series = matching_series(&mut conn, stored.id, &query.dimensions).await?;

        // Each series' newest record, found through its key: one index probe per series.
        let sql_for = |count: usize| match self.backend {
            Backend::Postgres => format!(
                "SELECT s.id, r.time_us, r.measures FROM ts_series s CROSS JOIN LATERAL \
                 (SELECT time_us, measures FROM ts_records WHERE series_id = s.id \
                  AND time_us >= $1 ORDER BY time_us DESC LIMIT 1) r WHERE s.id IN ({})",
                placeholders(2, count)
            ),
            Backend::Sqlite => format!(
                "SELECT s.id, r.time_us, r.measures FROM ts_series s JOIN ts_records r \
                 ON r.series_id = s.id AND r.time_us = (SELECT MAX(time_us) FROM ts_records \
                 WHERE series_id = s.id AND time_us >= $1) WHERE s.id IN ({})",
                placeholders(2, count)
            ),
        };
        let mut newest: HashMap<i64, (i64, String)> = HashMap::with_capacity(series.len());
        for chunk in series.chunks(IN_CHUNK) {
            limits.deadline.check()?;
            let mut sql = sqlx::query(AssertSqlSafe(sql_for(chunk.len()))).bind(cut.as_micros());
            for entry in chunk {
                sql = sql.bind(entry.id);
            }
            for row in sql
                .fetch_all(&mut *conn)
                .await
                .during("reading latest records")?
            {
                let id: i64 = row.try_get(0).during("reading a series id")?;
                newest.insert(
                    id,
                    (
                        row.try_get(1).during("reading a record time")?,
                        row.try_get(2).during("reading a record's measures")?,
                    ),
                );
            }
        }

        let mut found = Vec::new();
        for entry in series {
            let Some((time, measures)) = newest.remove(&entry.id) else {
                continue;
            };
            // One series past the cap shows the answer is truncated.
            if found.len() > limits.max_series {
                break;
            }
            let mut point = Point {
                time: Timestamp::from_micros(time),
                measures: codec::decode(&measures, schema, wanted)?,
            };
            if point.measures.is_empty()
                && let Some(name) = &query.measure
            {
                // The newest record lacks this measure: look further back for one that has it.
                match self
                    .latest_with_measure(
                        &mut conn,
                        entry.id,
                        (cut, time),
                        name.as_str(),
                        schema,
                        &limits.deadline,
                    )
                    .await?
                {
                    Some(older) => point = older,
                    None => continue,
                }
            }
            if !point.measures.is_empty() {
                found.push(SeriesPoints {
                    dimensions: entry.dimensions,
                    points: vec![point],
                });
            }
        }
        Ok(LatestResult::capped(found, limits))
    }

    async fn range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
        limits: &ReadLimits,
    ) -> Result<RangeResult, TsError> {
        let mut conn = self.reader().await?;
        let stored = self.existing_table(&mut conn, tenant, &query.table).await?;
        let schema = &stored.meta.schema;
        let plan = plan_range(query, schema, limits)?;
        let wanted = |name: &str| {
            plan.measures
                .iter()
                .any(|(wanted, _)| wanted.as_str() == name)
        };
        let start = plan
            .start
            .max(stored.meta.retention_start(Timestamp::now()));
        let series = matching_series(&mut conn, stored.id, &query.dimensions).await?;

        let mut found = Vec::new();
        let mut points_found = 0usize;
        let mut rows_read = 0usize;
        for entry in series {
            limits.deadline.check()?;
            // Past the caps nothing more is shown; one extra lets cap_series say "truncated".
            if found.len() > limits.max_series || points_found > limits.max_points {
                break;
            }
            // Raw points past the cap would be cut anyway. Folded ones need every record, all
            // in memory at once here: an aggregate over more than the scan cap is refused.
            let limit = match plan.folding {
                None => limits
                    .max_points
                    .saturating_sub(points_found)
                    .saturating_add(1),
                Some(_) => limits
                    .max_scan_rows
                    .saturating_sub(rows_read)
                    .saturating_add(1),
            };
            let rows = series_records(&mut conn, entry.id, start, plan.end, limit).await?;
            rows_read = rows_read.saturating_add(rows.len());
            if plan.folding.is_some() && rows_read > limits.max_scan_rows {
                return Err(scan_limit_error(limits.max_scan_rows));
            }
            let records = rows
                .iter()
                .map(|(time, measures)| {
                    Ok((
                        Timestamp::from_micros(*time),
                        codec::decode(measures, schema, wanted)?,
                    ))
                })
                .collect::<Result<Vec<_>, TsError>>()?;
            let points = fold_range(
                &plan,
                records
                    .iter()
                    .map(|(time, measures)| (*time, measures.as_slice())),
            );
            if !points.is_empty() {
                points_found += points.len();
                found.push(SeriesPoints {
                    dimensions: entry.dimensions,
                    points,
                });
            }
        }
        Ok(plan.answer(found, limits))
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        scan: &Scan,
        limits: &ReadLimits,
    ) -> Result<Vec<SeriesPoints>, TsError> {
        let mut conn = self.reader().await?;
        let stored = self.existing_table(&mut conn, tenant, &scan.table).await?;
        let schema = &stored.meta.schema;
        let wanted = |name: &str| {
            scan.measures
                .as_ref()
                .is_none_or(|names| names.iter().any(|wanted| wanted.as_str() == name))
        };
        let cut = stored.meta.retention_start(Timestamp::now());
        let start = scan.start.map_or(cut, |start| start.max(cut));
        let end = scan.end.unwrap_or(Timestamp::from_micros(i64::MAX));
        let series = matching_series(&mut conn, stored.id, &scan.dimensions).await?;

        let mut found = Vec::new();
        let mut read = 0;
        for entry in series {
            limits.deadline.check()?;
            let budget = limits.max_scan_rows.saturating_sub(read).saturating_add(1);
            let rows = series_records(&mut conn, entry.id, start, end, budget).await?;
            read += rows.len();
            if read > limits.max_scan_rows {
                return Err(scan_limit_error(limits.max_scan_rows));
            }
            let mut points = Vec::with_capacity(rows.len());
            // Every record counts, even one without any of the wanted measures: to SQL it is a
            // row whose measures are NULL (`count(*)`, `WHERE speed IS NULL`).
            for (time, measures) in rows {
                points.push(Point {
                    time: Timestamp::from_micros(time),
                    measures: codec::decode(&measures, schema, wanted)?,
                });
            }
            if !points.is_empty() {
                found.push(SeriesPoints {
                    dimensions: entry.dimensions,
                    points,
                });
            }
        }
        Ok(found)
    }

    async fn set_retention(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        retention: Span,
    ) -> Result<TableDescription, TsError> {
        let mut tx = self.begin_write().await?;
        let mut stored = self
            .load_table(&mut tx, tenant, table, true)
            .await?
            .ok_or_else(|| TsError::table_not_found(table))?;
        sqlx::query("UPDATE ts_tables SET retention_us = $1 WHERE id = $2")
            .bind(retention.as_micros())
            .bind(stored.id)
            .execute(&mut *tx)
            .await
            .during("changing a retention")?;
        stored.meta.retention = retention;
        delete_older_than(
            &mut tx,
            stored.id,
            stored.meta.retention_start(Timestamp::now()),
        )
        .await?;
        let description = self.describe_stored(&mut tx, &stored).await?;
        tx.commit().await.during("committing a retention change")?;
        Ok(description)
    }

    async fn drop_table(&self, tenant: &TenantId, table: &TableRef) -> Result<(), TsError> {
        let mut tx = self.begin_write().await?;
        let stored = self
            .load_table(&mut tx, tenant, table, true)
            .await?
            .ok_or_else(|| TsError::table_not_found(table))?;
        for (sql, what) in [
            (
                "DELETE FROM ts_records WHERE series_id IN \
                 (SELECT id FROM ts_series WHERE table_id = $1)",
                "deleting a table's records",
            ),
            (
                "DELETE FROM ts_series WHERE table_id = $1",
                "deleting a table's series",
            ),
            ("DELETE FROM ts_tables WHERE id = $1", "deleting a table"),
        ] {
            sqlx::query(sql)
                .bind(stored.id)
                .execute(&mut *tx)
                .await
                .during(what)?;
        }
        tx.commit().await.during("committing a table drop")?;
        Ok(())
    }
}

impl SqlTimeSeriesStore {
    /// The newest record of a series before `before` (and not older than `cut`) that carries
    /// `measure`, read backwards a page at a time. The `LIKE` only narrows the pages (its `_`
    /// matches any character); decoding decides.
    async fn latest_with_measure(
        &self,
        conn: &mut AnyConnection,
        series_id: i64,
        (cut, mut before): (Timestamp, i64),
        measure: &str,
        schema: &TableSchema,
        deadline: &Deadline,
    ) -> Result<Option<Point>, TsError> {
        let pattern = format!("%\"{measure}\":%");
        loop {
            deadline.check()?;
            let rows = sqlx::query(
                "SELECT time_us, measures FROM ts_records WHERE series_id = $1 AND time_us >= $2 \
                 AND time_us < $3 AND measures LIKE $4 ORDER BY time_us DESC LIMIT $5",
            )
            .bind(series_id)
            .bind(cut.as_micros())
            .bind(before)
            .bind(pattern.as_str())
            .bind(LOOK_BACK_PAGE)
            .fetch_all(&mut *conn)
            .await
            .during("looking back for a measure")?;
            let page_len = rows.len();
            for row in &rows {
                let (time, measures) = time_and_measures(row)?;
                let measures = codec::decode(&measures, schema, |name| name == measure)?;
                if !measures.is_empty() {
                    return Ok(Some(Point {
                        time: Timestamp::from_micros(time),
                        measures,
                    }));
                }
                before = time;
            }
            if page_len < LOOK_BACK_PAGE as usize {
                return Ok(None);
            }
        }
    }
}

/// Names the operation a database error happened in.
trait DbContext<T> {
    /// A failed query: unavailable when the database could not be reached, internal otherwise.
    fn during(self, operation: &str) -> Result<T, TsError>;
    /// A failure to connect: always unavailable.
    fn unavailable(self, operation: &str) -> Result<T, TsError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn during(self, operation: &str) -> Result<T, TsError> {
        self.map_err(|error| match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                TsError::Unavailable(format!("{operation}: {error}"))
            }
            error => TsError::Internal(format!("{operation}: {error}")),
        })
    }

    fn unavailable(self, operation: &str) -> Result<T, TsError> {
        self.map_err(|error| TsError::Unavailable(format!("{operation}: {error}")))
    }
}
