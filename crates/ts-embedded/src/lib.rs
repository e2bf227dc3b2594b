//! The embedded time-series store of `membrain serve`: every table in memory as columns per
//! series, made durable by a write-ahead log in its directory and compacted by checkpoints.
//!
//! Invariant: the last checkpoint plus the log segments numbered from it hold every
//! acknowledged change, in order. A write is admitted under its table's writer lock, appended to
//! the log and fsynced (writers share fsyncs), and only then applied in memory and answered. A
//! checkpoint holds the commit gate exclusively while it starts a new segment and copies the
//! tables, so no change is half in the copy; it is written to a temporary file, fsynced and
//! renamed before the older segments are deleted.
//!
//! Replay skips a torn log tail (a crash mid-append) but refuses to open a segment damaged
//! before its end, naming the file and the byte: see `wal.rs`. Files are the owner's alone
//! (0600, the directory 0700 when created here).
//!
//! Reads run on blocking threads (folding and copying records is CPU work), stop copying at the
//! read caps, and give up at the read's deadline. Writes keep each tenant within its quotas of
//! tables and records, counted as they change.

mod codec;
mod entry;
mod table;
mod wal;

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use membrain_memory::TenantId;
use membrain_timeseries::{
    DEFAULT_RETENTION, DatabaseName, LatestQuery, LatestResult, RangeQuery, RangeResult,
    ReadLimits, Rejection, Scan, SeriesPoints, Span, TableDescription, TableMeta, TableRef,
    TableSummary, TenantUsage, TimeSeriesStore, Timestamp, TsError, WriteLimits, WriteOutcome,
    plan_range, scan_limit_error, select_measures,
};
use tokio::sync::{Mutex as AsyncMutex, RwLock as AsyncRwLock};

use crate::codec::{Decoder, Encoder};
use crate::entry::Entry;
use crate::table::TableData;
use crate::wal::Wal;

/// How the store keeps its tables.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The retention of a table made by its first write.
    pub default_retention: Span,
    /// How often a checkpoint is taken when the log has grown (`None`: only by size and close).
    pub checkpoint_interval: Option<Duration>,
    /// A checkpoint starts once the log has grown by this many bytes since the last one.
    pub checkpoint_log_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            default_retention: DEFAULT_RETENTION,
            checkpoint_interval: Some(Duration::from_secs(300)),
            checkpoint_log_bytes: 256 * 1024 * 1024,
        }
    }
}

const LOCK_FILE: &str = "LOCK";
const CHECKPOINT_PREFIX: &str = "checkpoint-";
const CHECKPOINT_SUFFIX: &str = ".bin";
const CHECKPOINT_MAGIC: &[u8; 8] = b"MBTSCKP1";

type TableKey = (TenantId, TableRef);

/// A table's place in the store; `data` is `None` until its first write lands and after it is
/// dropped (the entry stays, so a writer holding it never writes into a forgotten table).
#[derive(Default)]
struct TableSlot {
    /// Serialises the table's writers from admission to applying (readers are not held up).
    writer: AsyncMutex<()>,
    data: RwLock<Option<TableData>>,
}

struct Inner {
    dir: PathBuf,
    options: EmbeddedOptions,
    tables: RwLock<HashMap<TableKey, Arc<TableSlot>>>,
    /// Held shared by a change from its log append to its apply, exclusively by a checkpoint
    /// while it starts a segment and copies the tables.
    gate: Arc<AsyncRwLock<()>>,
    /// One checkpoint at a time.
    checkpointing: AsyncMutex<()>,
    /// Each tenant's tables and stored records, for the quotas: reserved by a write before its
    /// log append (under the table's writer lock), given back when records or tables go.
    usage: Mutex<HashMap<TenantId, TenantUsage>>,
    wal: Wal,
    /// Held for the store's life: its lock keeps a second process out of `dir`.
    _lock: File,
}

/// The embedded store. Cheap to share behind an `Arc`; see the crate docs for its invariant.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    checkpointer: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Some(task) = self.checkpointer.take() {
            task.abort();
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Mutations under these locks are made whole before anything that can panic; go on.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> TsError {
    TsError::Unavailable(format!(
        "{what} {}: {error}; check the data directory (space, permissions)",
        path.display()
    ))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TsError> + Send + 'static,
) -> Result<T, TsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| TsError::Internal(format!("a storage task failed: {error}")))?
}

impl EmbeddedStore {
    /// Opens (creating) the store in `dir`: locks it, loads the last checkpoint and replays the
    /// log after it. Fails when another process holds `dir`.
    pub async fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, TsError> {
        let dir = dir.to_owned();
        let interval = options.checkpoint_interval;
        let inner = blocking(move || Inner::open(dir, options)).await?;
        let inner = Arc::new(inner);
        let checkpointer = interval.map(|every| {
            let weak = Arc::downgrade(&inner);
            tokio::spawn(checkpoint_every(weak, every))
        });
        Ok(Self {
            inner,
            checkpointer,
        })
    }

    /// The directory the store keeps its files in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Writes a checkpoint now, so that a restart replays nothing; the log is emptied.
    pub async fn checkpoint(&self) -> Result<(), TsError> {
        checkpoint(&self.inner).await
    }

    /// A graceful shutdown: a last checkpoint, then the directory is released once every clone
    /// of the store's handles is gone.
    pub async fn close(self) -> Result<(), TsError> {
        self.checkpoint().await
    }
}

/// Runs a change as its own task, so that a caller who stops waiting (a client that hangs up)
/// cannot cut it between its log append and its apply in memory.
async fn to_completion<T: Send + 'static>(
    change: impl Future<Output = Result<T, TsError>> + Send + 'static,
) -> Result<T, TsError> {
    tokio::spawn(change)
        .await
        .map_err(|error| TsError::Internal(format!("a storage task failed: {error}")))?
}

async fn checkpoint_every(store: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        if inner.wal.bytes_since_checkpoint() > 0
            && let Err(error) = checkpoint(&inner).await
        {
            tracing::error!(%error, "a time-series checkpoint failed; the log keeps growing");
        }
    }
}

async fn checkpoint(inner: &Arc<Inner>) -> Result<(), TsError> {
    let Ok(_one) = inner.checkpointing.try_lock() else {
        // One is under way; it covers everything committed before it started.
        return Ok(());
    };
    let gate = Arc::clone(&inner.gate).write_owned().await;
    let inner = Arc::clone(inner);
    blocking(move || inner.write_checkpoint(gate)).await
}

impl Inner {
    fn open(dir: PathBuf, options: EmbeddedOptions) -> Result<Self, TsError> {
        wal::create_private_dir(&dir)
            .map_err(|error| io_error("cannot create the data directory", &dir, error))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = wal::private_file()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| io_error("cannot open the lock file", &lock_path, error))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(TsError::Unavailable(format!(
                    "another membrain process is using {}: stop it, or pick another --data-dir",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(error)) => {
                return Err(io_error("cannot lock", &lock_path, error));
            }
        }
        let _ = fs::remove_file(dir.join(format!("{CHECKPOINT_PREFIX}tmp")));

        let mut tables: HashMap<TableKey, TableData> = HashMap::new();
        let checkpoints = wal::list(&dir, CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX);
        let mut first_segment = 0;
        if let Some((segment, path)) = checkpoints.last() {
            tables = load_checkpoint(path)?;
            first_segment = *segment;
        }
        let segments = wal::list(&dir, "wal-", ".log");
        let mut replayed = 0usize;
        for (segment, path) in segments.iter().filter(|(n, _)| *n >= first_segment) {
            let bytes = fs::read(path).map_err(|error| io_error("cannot read", path, error))?;
            let (entries, ending) = wal::entries(&bytes);
            match ending {
                wal::Ending::Clean => {}
                wal::Ending::Torn { offset } => tracing::warn!(
                    path = %path.display(),
                    offset,
                    complete = entries.len(),
                    "a log segment ends in an incomplete entry (a crash during an append, never \
                     acknowledged); replay stops there"
                ),
                wal::Ending::Corrupt {
                    offset,
                    next_valid,
                    reason,
                } => {
                    return Err(corrupt_segment(
                        path,
                        offset,
                        next_valid,
                        reason,
                        entries.len(),
                    ));
                }
            }
            let what = path.display().to_string();
            for payload in entries {
                apply_entry(&mut tables, entry::decode(payload, &what)?, &options);
                replayed += 1;
            }
            tracing::debug!(segment, "replayed a log segment");
        }
        let next_segment = segments
            .last()
            .map_or(first_segment, |(n, _)| *n + 1)
            .max(first_segment);
        let wal = Wal::create(&dir, next_segment)?;
        tracing::info!(
            dir = %dir.display(),
            tables = tables.len(),
            replayed,
            "opened the embedded time-series store"
        );
        let mut usage: HashMap<TenantId, TenantUsage> = HashMap::new();
        for ((tenant, _), data) in &tables {
            let counted = usage.entry(tenant.clone()).or_default();
            counted.tables += 1;
            counted.points += data.rows();
        }
        let tables = tables
            .into_iter()
            .map(|(key, data)| {
                let slot = TableSlot {
                    writer: AsyncMutex::new(()),
                    data: RwLock::new(Some(data)),
                };
                (key, Arc::new(slot))
            })
            .collect();
        Ok(Self {
            dir,
            options,
            tables: RwLock::new(tables),
            gate: Arc::new(AsyncRwLock::new(())),
            checkpointing: AsyncMutex::new(()),
            usage: Mutex::new(usage),
            wal,
            _lock: lock,
        })
    }

    /// Starts a new segment and copies the tables under the gate, then writes the copy.
    fn write_checkpoint(
        &self,
        gate: tokio::sync::OwnedRwLockWriteGuard<()>,
    ) -> Result<(), TsError> {
        let segment = self.wal.rotate()?;
        let now = Timestamp::now();
        let mut out = Encoder::default();
        out.bytes.extend_from_slice(CHECKPOINT_MAGIC);
        let slots: Vec<(TenantId, Arc<TableSlot>)> = read(&self.tables)
            .iter()
            .map(|((tenant, _), slot)| (tenant.clone(), Arc::clone(slot)))
            .collect();
        let mut tables = Vec::with_capacity(slots.len());
        for (tenant, slot) in &slots {
            // Checkpoints are where records past retention leave memory.
            if let Some(table) = write(&slot.data).as_mut() {
                let cutoff = table.meta.retention_start(now);
                let dropped = table.drop_before(cutoff);
                self.release(tenant, 0, dropped);
            }
            tables.push((tenant, read(&slot.data)));
        }
        out.len(tables.iter().filter(|(_, data)| data.is_some()).count());
        for (tenant, data) in &tables {
            if let Some(data) = data.as_ref() {
                out.str(tenant.as_str());
                data.encode(&mut out);
            }
        }
        drop(tables);
        drop(gate);
        let checksum = crc32fast::hash(&out.bytes);
        out.u32(checksum);

        let temporary = self.dir.join(format!("{CHECKPOINT_PREFIX}tmp"));
        let path = self.dir.join(format!(
            "{CHECKPOINT_PREFIX}{segment:016}{CHECKPOINT_SUFFIX}"
        ));
        let mut file = wal::private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(|error| io_error("cannot create", &temporary, error))?;
        std::io::Write::write_all(&mut file, &out.bytes)
            .and_then(|()| file.sync_all())
            .map_err(|error| io_error("cannot write", &temporary, error))?;
        fs::rename(&temporary, &path).map_err(|error| io_error("cannot rename", &path, error))?;
        wal::sync_dir(&self.dir)?;
        for (number, old) in wal::list(&self.dir, CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX) {
            if number < segment
                && let Err(error) = fs::remove_file(&old)
            {
                tracing::warn!(path = %old.display(), %error, "cannot delete an old checkpoint");
            }
        }
        self.wal.delete_before(segment);
        tracing::debug!(path = %path.display(), bytes = out.bytes.len(), "wrote a checkpoint");
        Ok(())
    }
}

/// The refusal to open a segment damaged before its end: where, what is known, what to do.
fn corrupt_segment(
    path: &Path,
    offset: usize,
    next_valid: usize,
    reason: &str,
    entries_before: usize,
) -> TsError {
    let path = path.display();
    TsError::Unavailable(format!(
        "the time-series log {path} is damaged at byte {offset} ({reason}), and a valid entry \
         follows at byte {next_valid}: this is not the torn end a crash leaves, and opening would \
         silently lose acknowledged writes. Stop, and either restore the data directory from a \
         backup, or keep what can be kept: `truncate -s {offset} '{path}'` keeps the \
         {entries_before} entries before the damage and loses every change logged from byte \
         {offset} on; moving the file aside (mv '{path}' '{path}.damaged') loses every change \
         in it. Then start membrain again"
    ))
}

fn load_checkpoint(path: &Path) -> Result<HashMap<TableKey, TableData>, TsError> {
    let bytes = fs::read(path).map_err(|error| io_error("cannot read", path, error))?;
    let what = path.display().to_string();
    let corrupt = |detail: &str| Decoder::new(&bytes, &what).corrupt(detail);
    let Some((body, checksum)) = bytes.split_last_chunk::<4>() else {
        return Err(corrupt("it is too short"));
    };
    if crc32fast::hash(body) != u32::from_le_bytes(*checksum) {
        return Err(corrupt("its checksum does not match"));
    }
    let Some(body) = body.strip_prefix(CHECKPOINT_MAGIC) else {
        return Err(corrupt("it is not a membrain checkpoint"));
    };
    let mut input = Decoder::new(body, &what);
    let mut tables = HashMap::new();
    for _ in 0..input.len()? {
        let tenant = input.string()?;
        let tenant = TenantId::parse(&tenant).map_err(|error| input.corrupt(error))?;
        let data = TableData::decode(&mut input)?;
        tables.insert((tenant, data.meta.table.clone()), data);
    }
    if !input.is_done() {
        return Err(input.corrupt("bytes follow the last table"));
    }
    Ok(tables)
}

/// Replays one entry onto the tables read so far.
fn apply_entry(tables: &mut HashMap<TableKey, TableData>, entry: Entry, options: &EmbeddedOptions) {
    match entry {
        Entry::Write {
            tenant,
            table,
            created,
            records,
        } => {
            let key = (tenant, table);
            let data = tables.entry(key.clone()).or_insert_with(|| {
                let (retention, at) =
                    created.unwrap_or((options.default_retention, Timestamp::now()));
                TableData::new(TableMeta::new(key.1, retention, at))
            });
            data.apply(records);
        }
        Entry::SetRetention {
            tenant,
            table,
            retention,
            now,
        } => {
            if let Some(data) = tables.get_mut(&(tenant, table)) {
                data.meta.retention = retention;
                data.drop_before(data.meta.retention_start(now));
            }
        }
        Entry::DropTable { tenant, table } => {
            tables.remove(&(tenant, table));
        }
    }
}

#[async_trait::async_trait]
impl TimeSeriesStore for EmbeddedStore {
    fn describe(&self) -> String {
        format!("embedded time-series store in {}", self.inner.dir.display())
    }

    async fn list_tables(
        &self,
        tenant: &TenantId,
        database: Option<&DatabaseName>,
    ) -> Result<Vec<TableSummary>, TsError> {
        let slots: Vec<Arc<TableSlot>> = read(&self.inner.tables)
            .iter()
            .filter(|((owner, table), _)| {
                owner == tenant && database.is_none_or(|database| table.database == *database)
            })
            .map(|(_, slot)| Arc::clone(slot))
            .collect();
        let mut summaries: Vec<TableSummary> = slots
            .iter()
            .filter_map(|slot| {
                let data = read(&slot.data);
                let meta = &data.as_ref()?.meta;
                Some(TableSummary {
                    database: meta.table.database.clone(),
                    table: meta.table.table.to_string(),
                    retention: meta.retention.to_string(),
                    created_at: meta.created_at,
                })
            })
            .collect();
        summaries.sort_by(|a, b| (&a.database, &a.table).cmp(&(&b.database, &b.table)));
        Ok(summaries)
    }

    async fn describe_table(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError> {
        // Counting visits every series: a blocking thread's work.
        self.read_table(tenant, table, false, |data| {
            Ok(data.describe(Timestamp::now()))
        })
        .await
    }

    async fn table_meta(&self, tenant: &TenantId, table: &TableRef) -> Result<TableMeta, TsError> {
        self.inner
            .with_table(tenant, table, |data| Ok(data.meta.clone()))
    }

    async fn write(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        items: Vec<membrain_timeseries::BatchItem>,
        limits: &WriteLimits,
    ) -> Result<WriteOutcome, TsError> {
        let (inner, tenant, table, limits) = (
            Arc::clone(&self.inner),
            tenant.clone(),
            table.clone(),
            limits.clone(),
        );
        to_completion(async move { inner.write(&tenant, &table, items, limits).await }).await
    }

    async fn set_retention(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        retention: Span,
    ) -> Result<TableDescription, TsError> {
        let (inner, tenant, table) = (Arc::clone(&self.inner), tenant.clone(), table.clone());
        to_completion(async move { inner.set_retention(&tenant, &table, retention).await }).await
    }

    async fn drop_table(&self, tenant: &TenantId, table: &TableRef) -> Result<(), TsError> {
        let (inner, tenant, table) = (Arc::clone(&self.inner), tenant.clone(), table.clone());
        to_completion(async move { inner.drop_table(&tenant, &table).await }).await
    }

    async fn latest(
        &self,
        tenant: &TenantId,
        query: &LatestQuery,
        limits: &ReadLimits,
    ) -> Result<LatestResult, TsError> {
        let (query, limits) = (query.clone(), limits.clone());
        self.read_table(
            tenant,
            &query.table.clone(),
            limits.low_priority,
            move |data| {
                let measures =
                    select_measures(&query.table, &data.meta.schema, query.measure.as_ref())?;
                let names: Vec<_> = measures.iter().map(|(name, _)| name).collect();
                let slots = data.slots_of(names.iter().copied());
                let oldest = data.oldest(Timestamp::now());
                let mut ticker = limits.deadline.ticker();
                let mut found = Vec::new();
                for (dimensions, series) in &data.series {
                    ticker.tick()?;
                    if !dimensions.matches(&query.dimensions) {
                        continue;
                    }
                    // One series past the cap shows the answer is truncated.
                    if found.len() > limits.max_series {
                        break;
                    }
                    if let Some(point) = data.latest(series, oldest, &slots, &mut ticker)? {
                        found.push(SeriesPoints {
                            dimensions: dimensions.clone(),
                            points: vec![point],
                        });
                    }
                }
                Ok(LatestResult::capped(found, &limits))
            },
        )
        .await
    }

    async fn range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
        limits: &ReadLimits,
    ) -> Result<RangeResult, TsError> {
        let (query, limits) = (query.clone(), limits.clone());
        self.read_table(
            tenant,
            &query.table.clone(),
            limits.low_priority,
            move |data| {
                let plan = plan_range(&query, &data.meta.schema, &limits)?;
                let names: Vec<_> = plan.measures.iter().map(|(name, _)| name).collect();
                let slots = data.slots_of(names.iter().copied());
                let start = plan.start.as_micros().max(data.oldest(Timestamp::now()));
                let end = plan.end.as_micros();
                let mut ticker = limits.deadline.ticker();
                let mut found = Vec::new();
                // Points still worth copying: one past the cap shows the answer is truncated, and
                // nothing beyond it is ever copied.
                let mut budget = limits.max_points.saturating_add(1);
                for (dimensions, series) in &data.series {
                    ticker.tick()?;
                    if !dimensions.matches(&query.dimensions) {
                        continue;
                    }
                    if found.len() > limits.max_series || budget == 0 {
                        break;
                    }
                    let rows = series.rows(start, end);
                    let points = if plan.folding.is_some() {
                        TableData::fold(&plan, series, rows, &slots, budget, &mut ticker)?
                    } else {
                        TableData::records(series, rows, &slots, false, budget, &mut ticker)?
                    };
                    if !points.is_empty() {
                        budget = budget.saturating_sub(points.len());
                        found.push(SeriesPoints {
                            dimensions: dimensions.clone(),
                            points,
                        });
                    }
                }
                Ok(plan.answer(found, &limits))
            },
        )
        .await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        scan: &Scan,
        limits: &ReadLimits,
    ) -> Result<Vec<SeriesPoints>, TsError> {
        let (scan, limits) = (scan.clone(), limits.clone());
        self.read_table(
            tenant,
            &scan.table.clone(),
            limits.low_priority,
            move |data| {
                let all: Vec<_> = data.meta.schema.measures.keys().collect();
                let slots = match &scan.measures {
                    Some(names) => data.slots_of(names.iter()),
                    None => data.slots_of(all),
                };
                let oldest = data.oldest(Timestamp::now());
                let start = scan
                    .start
                    .map_or(oldest, |start| start.as_micros().max(oldest));
                let end = scan.end.map_or(i64::MAX, Timestamp::as_micros);
                let mut ticker = limits.deadline.ticker();
                // Counting is two binary searches per series: the cap is known before any copy.
                let mut matching = Vec::new();
                let mut rows = 0usize;
                for (dimensions, series) in &data.series {
                    ticker.tick()?;
                    if !dimensions.matches(&scan.dimensions) {
                        continue;
                    }
                    let range = series.rows(start, end);
                    rows = rows.saturating_add(range.len());
                    if rows > limits.max_scan_rows {
                        return Err(scan_limit_error(limits.max_scan_rows));
                    }
                    if !range.is_empty() {
                        matching.push((dimensions, series, range));
                    }
                }
                matching
                    .into_iter()
                    .map(|(dimensions, series, rows)| {
                        Ok(SeriesPoints {
                            dimensions: dimensions.clone(),
                            // A row is a row in SQL, even when it lacks the selected measures.
                            points: TableData::records(
                                series,
                                rows,
                                &slots,
                                true,
                                usize::MAX,
                                &mut ticker,
                            )?,
                        })
                    })
                    .collect()
            },
        )
        .await
    }
}

impl EmbeddedStore {
    /// Runs `read_table` over an existing table on a blocking thread, holding the table's read
    /// lock (writers wait only for the moment they apply a change).
    /// Runs `read_table` over the table's data on a blocking thread, at low OS priority when
    /// the service says the tenant is heavy (`ReadLimits::low_priority`).
    async fn read_table<T: Send + 'static>(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        low_priority: bool,
        read_table: impl FnOnce(&TableData) -> Result<T, TsError> + Send + 'static,
    ) -> Result<T, TsError> {
        let slot = self
            .inner
            .slot(tenant, table)
            .ok_or_else(|| TsError::table_not_found(table))?;
        let table = table.clone();
        let priority = if low_priority {
            membrain_fair::Priority::Low
        } else {
            membrain_fair::Priority::Normal
        };
        membrain_fair::run_at(priority, move || {
            let data = read(&slot.data);
            let data = data
                .as_ref()
                .ok_or_else(|| TsError::table_not_found(&table))?;
            read_table(data)
        })
        .await
        .map_err(|error| TsError::Internal(format!("a storage task failed: {error}")))?
    }
}

/// Table lookups, and the changes behind the trait (each run by `to_completion`).
impl Inner {
    fn slot(&self, tenant: &TenantId, table: &TableRef) -> Option<Arc<TableSlot>> {
        read(&self.tables)
            .get(&(tenant.clone(), table.clone()))
            .cloned()
    }

    fn slot_or_new(&self, tenant: &TenantId, table: &TableRef) -> Arc<TableSlot> {
        if let Some(slot) = self.slot(tenant, table) {
            return slot;
        }
        Arc::clone(
            write(&self.tables)
                .entry((tenant.clone(), table.clone()))
                .or_default(),
        )
    }

    /// Counts a write's new table and records against the tenant's quotas, or refuses it.
    fn reserve(
        &self,
        tenant: &TenantId,
        new_table: Option<&TableRef>,
        points: usize,
        limits: &WriteLimits,
    ) -> Result<(), TsError> {
        let mut usage = lock(&self.usage);
        let counted = usage.entry(tenant.clone()).or_default();
        if let Some(table) = new_table {
            limits.check_new_table(*counted, table)?;
        }
        let points = points as u64;
        limits.check_new_points(*counted, points)?;
        counted.tables += u64::from(new_table.is_some());
        counted.points += points;
        Ok(())
    }

    /// Gives back tables and records that are gone (or never written).
    fn release(&self, tenant: &TenantId, tables: u64, points: u64) {
        if tables == 0 && points == 0 {
            return;
        }
        let mut usage = lock(&self.usage);
        if let Some(counted) = usage.get_mut(tenant) {
            counted.tables = counted.tables.saturating_sub(tables);
            counted.points = counted.points.saturating_sub(points);
            if *counted == TenantUsage::default() {
                usage.remove(tenant);
            }
        }
    }

    /// Runs `read` on an existing table.
    fn with_table<T>(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        read_table: impl FnOnce(&TableData) -> Result<T, TsError>,
    ) -> Result<T, TsError> {
        let slot = self
            .slot(tenant, table)
            .ok_or_else(|| TsError::table_not_found(table))?;
        let data = read(&slot.data);
        let data = data
            .as_ref()
            .ok_or_else(|| TsError::table_not_found(table))?;
        read_table(data)
    }

    /// Appends `payload` to the log (durably) and then applies `change` in memory, under the
    /// commit gate.
    async fn commit<T>(
        self: &Arc<Self>,
        payload: Vec<u8>,
        change: impl FnOnce() -> T,
    ) -> Result<T, TsError> {
        let gate = Arc::clone(&self.gate).read_owned().await;
        let inner = Arc::clone(self);
        blocking(move || inner.wal.append(&payload)).await?;
        let applied = change();
        drop(gate);
        if self.wal.bytes_since_checkpoint() >= self.options.checkpoint_log_bytes {
            let inner = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(error) = checkpoint(&inner).await {
                    tracing::error!(%error, "a time-series checkpoint failed; the log keeps growing");
                }
            });
        }
        Ok(applied)
    }

    async fn write(
        self: &Arc<Self>,
        tenant: &TenantId,
        table: &TableRef,
        items: Vec<membrain_timeseries::BatchItem>,
        limits: WriteLimits,
    ) -> Result<WriteOutcome, TsError> {
        let slot = self.slot_or_new(tenant, table);
        let _writer = slot.writer.lock().await;
        let now = Timestamp::now();
        // Admission reads the table only: this writer alone changes it until it is done.
        let (meta, created, fresh, mut outcome) = {
            let data = read(&slot.data);
            let (mut meta, created) = match data.as_ref() {
                Some(data) => (data.meta.clone(), false),
                None => (
                    TableMeta::new(table.clone(), self.options.default_retention, now),
                    true,
                ),
            };
            let schema_before = meta.schema.clone();
            let (admitted, mut rejected) = meta.admit(items, now, &limits);
            let mut fresh = Vec::with_capacity(admitted.len());
            let mut repeated = 0;
            for item in admitted {
                match data.as_ref().and_then(|data| data.stored(&item.record)) {
                    None => fresh.push(item.record),
                    Some(true) => repeated += 1,
                    Some(false) => rejected.push(Rejection::new(
                        item.index,
                        format!(
                            "a record for this series at {} is already stored with other measure \
                             values: a stored record is never changed; send it with a different \
                             time or different dimensions",
                            item.record.time
                        ),
                    )),
                }
            }
            rejected.sort_by_key(|rejection| rejection.record_index);
            // Only written records extend the schema (admission counted the refused ones too).
            meta.schema = schema_before;
            let outcome = WriteOutcome {
                records_ingested: repeated,
                rejected_records: rejected,
                table_created: false,
            };
            (meta, created, fresh, outcome)
        };
        if fresh.is_empty() {
            return Ok(outcome);
        }
        // Refused whole over a quota: nothing is logged, nothing applied.
        self.reserve(tenant, created.then_some(table), fresh.len(), &limits)?;
        let created = created.then_some((meta.retention, meta.created_at));
        let payload = entry::encode_write(tenant, table, created, &fresh);
        let count = fresh.len();
        let committed = self
            .commit(payload, || {
                let mut data = write(&slot.data);
                data.get_or_insert_with(|| TableData::new(meta))
                    .apply(fresh);
            })
            .await;
        if let Err(error) = committed {
            self.release(
                tenant,
                u64::from(created.is_some()),
                u64::try_from(count).unwrap_or(u64::MAX),
            );
            return Err(error);
        }
        outcome.records_ingested += count;
        outcome.table_created = created.is_some();
        Ok(outcome)
    }

    async fn set_retention(
        self: &Arc<Self>,
        tenant: &TenantId,
        table: &TableRef,
        retention: Span,
    ) -> Result<TableDescription, TsError> {
        let slot = self
            .slot(tenant, table)
            .ok_or_else(|| TsError::table_not_found(table))?;
        let _writer = slot.writer.lock().await;
        if read(&slot.data).is_none() {
            return Err(TsError::table_not_found(table));
        }
        let now = Timestamp::now();
        let payload = entry::encode_set_retention(tenant, table, retention, now);
        self.commit(payload, || {
            let mut data = write(&slot.data);
            let data = data
                .as_mut()
                .ok_or_else(|| TsError::table_not_found(table))?;
            data.meta.retention = retention;
            let dropped = data.drop_before(data.meta.retention_start(now));
            self.release(tenant, 0, dropped);
            Ok(data.describe(now))
        })
        .await?
    }

    async fn drop_table(
        self: &Arc<Self>,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<(), TsError> {
        let slot = self
            .slot(tenant, table)
            .ok_or_else(|| TsError::table_not_found(table))?;
        let _writer = slot.writer.lock().await;
        if read(&slot.data).is_none() {
            return Err(TsError::table_not_found(table));
        }
        let payload = entry::encode_drop(tenant, table);
        self.commit(payload, || {
            if let Some(data) = write(&slot.data).take() {
                self.release(tenant, 1, data.rows());
            }
        })
        .await
    }
}
