//! [`SqlStore`]: the store on SQLite or PostgreSQL through sqlx's `Any` driver.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use membrain_auth::KeyHash;
use membrain_memory::graph::Edge;
use membrain_memory::ingest::{self, IncomingMemory, IngestDecision};
use membrain_memory::phrases::plain_context;
use membrain_memory::{
    Embedding, EvolutionEvent, JobId, Limits, Memory, MemoryBrief, MemoryId, MemoryLink, NewMemory,
    TenantId,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Row};
use uuid::Uuid;

use crate::error::DbContext;
use crate::records::*;
use crate::turns::{Lane, Reader, Turn, Turns};
use crate::{ImportItem, ImportOutcome, MemoryChange, MemoryStore, StoreError};

/// Which database a [`SqlStore`] talks to.
pub use membrain_sql::Backend;
use membrain_sql::{OpenError, PoolSettings, Pools};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections a pool opens (readers on SQLite; all on PostgreSQL).
    pub max_connections: u32,
    /// How long to wait for a free connection before failing a request.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The SQL store. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct SqlStore {
    backend: Backend,
    /// Reads. On PostgreSQL the same pool as `write`.
    read: AnyPool,
    /// Writes. On SQLite a single connection, so writers in this process queue here instead of
    /// contending for the file lock.
    write: AnyPool,
    /// Whose statement goes next: every read and write waits for its lane's turn before taking
    /// a connection.
    turns: Turns,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Rows changed since the last analysis below which an import never analyses.
const MIN_CHANGES_TO_ANALYZE: i64 = 1_000;

impl SqlStore {
    /// Opens (creating if needed) and migrates the database at `url`: `sqlite://PATH` or
    /// `postgres://…`.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let settings = PoolSettings {
            max_connections: options.max_connections,
            acquire_timeout: options.acquire_timeout,
            statement_timeout: Some(PoolSettings::DEFAULT_STATEMENT_TIMEOUT),
        };
        let pools = Pools::open(url, &settings)
            .await
            .map_err(|error| match error {
                OpenError::UnsupportedUrl => {
                    StoreError::UnsupportedUrl(membrain_sql::redact_url(url))
                }
                OpenError::Failed { step, source } => StoreError::Database {
                    operation: step,
                    source,
                },
            })?;
        let migrator = match pools.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        pools.migrate(migrator).await?;
        let turns = Turns::new(
            pools.write.options().get_max_connections(),
            pools.read.options().get_max_connections(),
            pools.backend == Backend::Postgres,
            options.acquire_timeout,
        );
        Ok(Self {
            backend: pools.backend,
            read: pools.read,
            write: pools.write,
            turns,
        })
    }

    /// Closes the pools, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// The pools' connections in use and idle, for the metrics.
    pub fn pool_usage(&self) -> Vec<membrain_sql::PoolUsage> {
        membrain_sql::pool_usage(self.backend, &self.read, &self.write)
    }

    /// A write transaction, once `writer`'s turn has come; the turn is held until it is dropped
    /// (keep it alive past the commit).
    async fn begin_write(
        &self,
        lane: Lane,
    ) -> Result<(Turn, sqlx::Transaction<'static, sqlx::Any>), StoreError> {
        let turn = self.turns.write(lane).await?;
        let tx = membrain_sql::begin_write(&self.write, self.backend)
            .await
            .during("starting a transaction")?;
        Ok((turn, tx))
    }

    /// `lane`'s turn for a single statement on the writer pool.
    async fn write_turn(&self, lane: Lane) -> Result<Turn, StoreError> {
        self.turns.write(lane).await
    }

    /// A reader connection, once `lane`'s turn has come.
    async fn reader(&self, lane: Lane) -> Result<Reader, StoreError> {
        self.turns.read(lane, &self.read).await
    }

    /// PostgreSQL plans lookups by id or content hash from the table's statistics, and a bulk
    /// import outgrows them faster than autovacuum refreshes them. With statistics from a table
    /// a hundredth its size the planner reads every row of the tenant instead of probing a key
    /// (measured at 100,000 memories: 5 ms per search's memory load, 40 ms per import batch's
    /// hash lookup). So an import analyses the tables it fills once half of `memories` changed
    /// since the last analysis: a dozen times over a 100,000-memory import.
    async fn analyze_if_outgrown(&self) {
        let stale = async {
            let row = sqlx::query(
                "SELECT n_mod_since_analyze AS changed, n_live_tup AS live \
                 FROM pg_stat_user_tables \
                 WHERE relname = 'memories' AND schemaname = current_schema()",
            )
            .fetch_optional(&self.write)
            .await
            .during("reading how stale the statistics are")?;
            let Some(row) = row else {
                return Ok(false);
            };
            let (changed, live): (i64, i64) = (get(&row, "changed")?, get(&row, "live")?);
            Ok::<_, StoreError>(
                changed >= MIN_CHANGES_TO_ANALYZE && changed.saturating_mul(2) >= live,
            )
        };
        let analysed = match stale.await {
            Ok(false) => return,
            Ok(true) => sqlx::query("ANALYZE memories, memory_tags")
                .execute(&self.write)
                .await
                .during("analysing the imported tables")
                .map(drop),
            Err(error) => Err(error),
        };
        // The import itself is committed: a failed analysis only leaves it to autovacuum.
        if let Err(error) = analysed {
            tracing::warn!(%error, "could not refresh the statistics after an import");
        }
    }
}

// ---- conversions -------------------------------------------------------------------------

fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

fn from_micros(value: i64, column: &'static str) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_micros(value)
        .single()
        .ok_or_else(|| StoreError::Corrupt {
            column,
            detail: format!("timestamp {value}"),
        })
}

fn opt_from_micros(
    value: Option<i64>,
    column: &'static str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    value.map(|v| from_micros(v, column)).transpose()
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising plain data (strings, vectors, enums) to a string cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// The wordings a memory had before, from its history (newest last).
fn earlier_wordings(history: &[EvolutionEvent]) -> Vec<String> {
    history
        .iter()
        .filter_map(EvolutionEvent::old_content)
        .map(str::to_owned)
        .collect()
}

fn from_json<T: DeserializeOwned>(raw: &str, column: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        column,
        detail: e.to_string(),
    })
}

fn get<'r, T>(row: &'r AnyRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).during("reading a row")
}

fn memory_id(raw: &str, column: &'static str) -> Result<MemoryId, StoreError> {
    Uuid::parse_str(raw)
        .map(MemoryId::from)
        .map_err(|e| StoreError::Corrupt {
            column,
            detail: e.to_string(),
        })
}

fn tenant_id(raw: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(raw).map_err(|e| StoreError::Corrupt {
        column: "tenant_id",
        detail: e.to_string(),
    })
}

/// `$from, $from+1, …` for `count` parameters: positional placeholders that both dialects read.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $columns), ($columns+1, …), …` for a multi-row `VALUES` of `rows` rows.
fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(1 + row * columns, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Links are undirected and stored once, smaller id first.
fn ordered(a: MemoryId, b: MemoryId) -> (MemoryId, MemoryId) {
    if a.to_string() <= b.to_string() {
        (a, b)
    } else {
        (b, a)
    }
}

/// Id lists are sent in chunks well under both databases' parameter limits.
const ID_CHUNK: usize = 500;

/// Rows one pruning statement deletes.
const PRUNE_BATCH: i64 = 1_000;

const MEMORY_COLUMNS: &str = "id, tenant_id, content, tags, category, context, keywords, evolution_history, evolution_dropped, observed_at, created_at, updated_at";

fn memory_from_row(row: &AnyRow) -> Result<Memory, StoreError> {
    let created_at = from_micros(get(row, "created_at")?, "created_at")?;
    Ok(Memory {
        id: memory_id(&get::<String>(row, "id")?, "id")?,
        content: get(row, "content")?,
        tags: from_json(&get::<String>(row, "tags")?, "tags")?,
        category: get(row, "category")?,
        context: get(row, "context")?,
        keywords: from_json(&get::<String>(row, "keywords")?, "keywords")?,
        links: Vec::new(),
        evolution_history: from_json(
            &get::<String>(row, "evolution_history")?,
            "evolution_history",
        )?,
        evolution_history_dropped: u64::try_from(get::<i64>(row, "evolution_dropped")?)
            .unwrap_or(0),
        observed_at: opt_from_micros(get(row, "observed_at")?, "observed_at")?
            .unwrap_or(created_at),
        created_at,
        updated_at: from_micros(get(row, "updated_at")?, "updated_at")?,
    })
}

const JOB_COLUMNS: &str = "id, tenant_id, status, request, result, error_code, error_message, \
                           attempts, created_at, started_at, completed_at, lease_token";

fn job_from_row(row: &AnyRow) -> Result<IngestJob, StoreError> {
    let status: String = get(row, "status")?;
    let result: Option<String> = get(row, "result")?;
    let error_code: Option<String> = get(row, "error_code")?;
    let error_message: Option<String> = get(row, "error_message")?;
    Ok(IngestJob {
        id: JobId::from(Uuid::parse_str(&get::<String>(row, "id")?).map_err(|e| {
            StoreError::Corrupt {
                column: "id",
                detail: e.to_string(),
            }
        })?),
        tenant: tenant_id(&get::<String>(row, "tenant_id")?)?,
        status: JobStatus::parse(&status).ok_or(StoreError::Corrupt {
            column: "status",
            detail: status.clone(),
        })?,
        request: from_json(&get::<String>(row, "request")?, "request")?,
        result: result.map(|r| from_json(&r, "result")).transpose()?,
        error: error_code.map(|code| JobError {
            code,
            message: error_message.unwrap_or_default(),
        }),
        attempts: get(row, "attempts")?,
        created_at: from_micros(get(row, "created_at")?, "created_at")?,
        started_at: opt_from_micros(get(row, "started_at")?, "started_at")?,
        completed_at: opt_from_micros(get(row, "completed_at")?, "completed_at")?,
        lease: get::<Option<String>>(row, "lease_token")?.map(LeaseToken),
    })
}

/// What a memory costs against the stored-bytes quota ([`Memory::stored_bytes`]), as the
/// database counts it.
fn stored_size(memory: &Memory) -> i64 {
    i64::try_from(memory.stored_bytes()).unwrap_or(i64::MAX)
}

/// An ingest request with nothing of the memory left, for the jobs of a deleted memory.
fn scrubbed_request() -> String {
    to_json(&IngestRequest {
        memory: NewMemory {
            content: String::new(),
            tags: Vec::new(),
            category: String::new(),
            observed_at: None,
        },
        ingestion_scope: None,
    })
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: get(row, "id")?,
        tenant: tenant_id(&get::<String>(row, "tenant_id")?)?,
        label: get(row, "label")?,
        created_at: from_micros(get(row, "created_at")?, "created_at")?,
        revoked_at: opt_from_micros(get(row, "revoked_at")?, "revoked_at")?,
    })
}

// ---- queries shared by pool and transaction paths ------------------------------------------

/// The tenant column as a filter for lookups by id. SQLite, without table statistics, may pick
/// the tenant's index and walk every row of the tenant (58 ms at 100,000 memories instead of
/// 0.04 ms); a unary `+` keeps the term a filter, so the id keys are used. PostgreSQL plans by
/// its statistics and has no unary `+` for text.
fn tenant_filter(conn: &AnyConnection) -> &'static str {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        "+tenant_id"
    } else {
        "tenant_id"
    }
}

/// The rows of `tenant`'s memories among `ids` (in no order), with `columns`, read in chunks.
async fn memory_rows(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ids: &[MemoryId],
    columns: &str,
    what: &'static str,
) -> Result<Vec<AnyRow>, StoreError> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let sql = format!(
            "SELECT {columns} FROM memories WHERE {} = $1 AND id IN ({})",
            tenant_filter(conn),
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
        for id in chunk {
            query = query.bind(id.to_string());
        }
        rows.extend(query.fetch_all(&mut *conn).await.during(what)?);
    }
    Ok(rows)
}

/// Loads memories of `tenant` by id, with their links, in the order of `ids`.
async fn load_memories(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ids: &[MemoryId],
) -> Result<Vec<Memory>, StoreError> {
    let mut found: HashMap<MemoryId, Memory> = HashMap::with_capacity(ids.len());
    for row in memory_rows(conn, tenant, ids, MEMORY_COLUMNS, "loading memories").await? {
        let memory = memory_from_row(&row)?;
        found.insert(memory.id, memory);
    }
    let present: Vec<MemoryId> = found.keys().copied().collect();
    for (link, _) in load_links(conn, tenant, &present, LinkVectors::Without).await? {
        for (here, there) in [
            (link.memory_id_1, link.memory_id_2),
            (link.memory_id_2, link.memory_id_1),
        ] {
            if let Some(memory) = found.get_mut(&here) {
                memory.links.push(MemoryLink {
                    memory_id: there,
                    description: link.description.clone(),
                    created_at: link.created_at,
                });
            }
        }
    }
    let mut ordered_memories = Vec::with_capacity(found.len());
    for id in ids {
        if let Some(mut memory) = found.remove(id) {
            memory.links.sort_by_key(|l| l.created_at);
            ordered_memories.push(memory);
        }
    }
    Ok(ordered_memories)
}

const BRIEF_COLUMNS: &str = "id, content, context, tags, keywords";

/// Loads the briefs of `tenant`'s memories among `ids`, in the order of `ids`.
async fn load_briefs(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ids: &[MemoryId],
) -> Result<Vec<MemoryBrief>, StoreError> {
    let mut found: HashMap<MemoryId, MemoryBrief> = HashMap::with_capacity(ids.len());
    let rows = memory_rows(conn, tenant, ids, BRIEF_COLUMNS, "loading memories' briefs").await?;
    for row in rows {
        let brief = MemoryBrief {
            id: memory_id(&get::<String>(&row, "id")?, "id")?,
            content: get(&row, "content")?,
            context: get(&row, "context")?,
            tags: from_json(&get::<String>(&row, "tags")?, "tags")?,
            keywords: from_json(&get::<String>(&row, "keywords")?, "keywords")?,
        };
        found.insert(brief.id, brief);
    }
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// Whether links are read with their descriptions' vectors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LinkVectors {
    With,
    /// A memory's links need none; a vector is 1.5 KB, several times the rest of the row, and
    /// a search answer with k = 100 has hundreds of links.
    Without,
}

/// Every link of `tenant` touching any of `ids`, each once, with its description's vector when
/// asked for.
async fn load_links(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ids: &[MemoryId],
    vectors: LinkVectors,
) -> Result<Vec<(LinkRecord, Option<Embedding>)>, StoreError> {
    let vector_columns = match vectors {
        LinkVectors::With => ", embedding, embedding_model",
        LinkVectors::Without => "",
    };
    let mut links: HashMap<(MemoryId, MemoryId), (LinkRecord, Option<Embedding>)> = HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let list = placeholders(2, chunk.len());
        let sql = format!(
            "SELECT memory_a, memory_b, description, created_at{vector_columns} FROM links \
             WHERE {} = $1 AND (memory_a IN ({list}) OR memory_b IN ({list}))",
            tenant_filter(conn)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&mut *conn).await.during("loading links")? {
            let a = memory_id(&get::<String>(&row, "memory_a")?, "memory_a")?;
            let b = memory_id(&get::<String>(&row, "memory_b")?, "memory_b")?;
            if links.contains_key(&(a, b)) {
                continue;
            }
            let record = LinkRecord {
                memory_id_1: a,
                memory_id_2: b,
                description: get(&row, "description")?,
                created_at: from_micros(get(&row, "created_at")?, "created_at")?,
            };
            let embedding = match vectors {
                LinkVectors::With => embedding_from_row(&row)?,
                LinkVectors::Without => None,
            };
            links.insert((a, b), (record, embedding));
        }
    }
    Ok(links.into_values().collect())
}

async fn insert_memory(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    memory: &Memory,
    content_hash: &str,
    embedding: Option<&Embedding>,
    revision: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO memories (id, tenant_id, content, content_hash, tags, category, context, \
         keywords, evolution_history, created_at, updated_at, embedding, embedding_model, revision, \
         stored_bytes, evolution_dropped, observed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(memory.id.to_string())
    .bind(tenant.as_str())
    .bind(&memory.content)
    .bind(content_hash)
    .bind(to_json(&memory.tags))
    .bind(&memory.category)
    .bind(&memory.context)
    .bind(to_json(&memory.keywords))
    .bind(to_json(&memory.evolution_history))
    .bind(micros(memory.created_at))
    .bind(micros(memory.updated_at))
    .bind(embedding.map(Embedding::to_bytes))
    .bind(embedding.map(|e| e.model.clone()))
    .bind(revision)
    .bind(stored_size(memory))
    .bind(i64::try_from(memory.evolution_history_dropped).unwrap_or(i64::MAX))
    .bind(micros(memory.observed_at))
    .execute(&mut *conn)
    .await
    .during("inserting a memory")?;
    adjust_usage(conn, tenant, 1, stored_size(memory)).await?;
    replace_tags(conn, tenant, memory.id, &memory.tags).await
}

/// A memory an import creates: new to the database (its id unused, so it has no tag rows yet).
struct ImportedMemory<'a> {
    memory: Memory,
    content_hash: &'a str,
    embedding: Option<&'a Embedding>,
}

/// Rows per multi-row insert: 17 parameters each stays far below both dialects' bind limits.
const INSERT_CHUNK: usize = 100;

/// Inserts new memories and their tag rows with multi-row statements. The caller counts their
/// usage.
async fn insert_new_memories(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    memories: &[ImportedMemory<'_>],
    revision: i64,
) -> Result<(), StoreError> {
    const COLUMNS: usize = 17;
    for chunk in memories.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO memories (id, tenant_id, content, content_hash, tags, category, context, \
             keywords, evolution_history, created_at, updated_at, embedding, embedding_model, \
             revision, stored_bytes, evolution_dropped, observed_at) VALUES {}",
            value_rows(chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for new in chunk {
            let memory = &new.memory;
            query = query
                .bind(memory.id.to_string())
                .bind(tenant.as_str())
                .bind(memory.content.clone())
                .bind(new.content_hash)
                .bind(to_json(&memory.tags))
                .bind(memory.category.clone())
                .bind(memory.context.clone())
                .bind(to_json(&memory.keywords))
                .bind(to_json(&memory.evolution_history))
                .bind(micros(memory.created_at))
                .bind(micros(memory.updated_at))
                .bind(new.embedding.map(Embedding::to_bytes))
                .bind(new.embedding.map(|e| e.model.clone()))
                .bind(revision)
                .bind(stored_size(memory))
                .bind(i64::try_from(memory.evolution_history_dropped).unwrap_or(i64::MAX))
                .bind(micros(memory.observed_at));
        }
        query
            .execute(&mut *conn)
            .await
            .during("inserting imported memories")?;
    }
    let tags: Vec<(String, &str)> = memories
        .iter()
        .flat_map(|new| {
            let id = new.memory.id.to_string();
            new.memory
                .tags
                .iter()
                .map(move |tag| (id.clone(), tag.as_str()))
        })
        .collect();
    for chunk in tags.chunks(INSERT_CHUNK * 4) {
        let sql = format!(
            "INSERT INTO memory_tags (memory_id, tenant_id, tag) VALUES {}",
            value_rows(chunk.len(), 3)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, tag) in chunk {
            query = query.bind(id.clone()).bind(tenant.as_str()).bind(*tag);
        }
        query
            .execute(&mut *conn)
            .await
            .during("indexing imported tags")?;
    }
    Ok(())
}

/// Which of `ids` are memories of `tenant`.
async fn stored_ids(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ids: &[MemoryId],
) -> Result<HashSet<MemoryId>, StoreError> {
    memory_rows(conn, tenant, ids, "id", "checking which memories exist")
        .await?
        .iter()
        .map(|row| memory_id(&get::<String>(row, "id")?, "id"))
        .collect()
}

/// The owning tenant of each of `ids` that exists, by id.
async fn owners_of(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    let mut owners = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let sql = format!(
            "SELECT id, tenant_id FROM memories WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query
            .fetch_all(&mut *conn)
            .await
            .during("checking imported ids")?
        {
            owners.insert(get::<String>(&row, "id")?, get(&row, "tenant_id")?);
        }
    }
    Ok(owners)
}

/// The tenant's memory for each of `hashes` that it holds, by content hash.
async fn ids_by_hash(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    hashes: &[&str],
) -> Result<HashMap<String, MemoryId>, StoreError> {
    let mut found = HashMap::with_capacity(hashes.len());
    for chunk in hashes.chunks(ID_CHUNK) {
        let sql = format!(
            "SELECT id, content_hash FROM memories WHERE tenant_id = $1 AND content_hash IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
        for hash in chunk {
            query = query.bind(*hash);
        }
        for row in query
            .fetch_all(&mut *conn)
            .await
            .during("looking up imported content hashes")?
        {
            let id = memory_id(&get::<String>(&row, "id")?, "id")?;
            found.entry(get(&row, "content_hash")?).or_insert(id);
        }
    }
    Ok(found)
}

/// Adds to the tenant's counted memories and bytes. The caller's transaction has already
/// taken the tenant's revision, so the row exists and is locked.
async fn adjust_usage(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    memories: i64,
    bytes: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tenant_revisions SET memory_count = memory_count + $1, \
         stored_bytes = stored_bytes + $2 WHERE tenant_id = $3",
    )
    .bind(memories)
    .bind(bytes)
    .bind(tenant.as_str())
    .execute(&mut *conn)
    .await
    .during("counting the tenant's usage")?;
    Ok(())
}

/// The tenant's counted memories and bytes (inside a writing transaction: as locked).
async fn read_usage(conn: &mut AnyConnection, tenant: &TenantId) -> Result<(i64, i64), StoreError> {
    let row =
        sqlx::query("SELECT memory_count, stored_bytes FROM tenant_revisions WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await
            .during("reading the tenant's usage")?;
    match row {
        Some(row) => Ok((get(&row, "memory_count")?, get(&row, "stored_bytes")?)),
        None => Ok((0, 0)),
    }
}

/// Refuses a change that would take the tenant past its memory or byte quota.
fn check_quota(
    (memories, bytes): (i64, i64),
    new_memories: i64,
    new_bytes: i64,
    limits: &Limits,
) -> Result<(), StoreError> {
    let max_memories = i64::try_from(limits.max_memories_per_tenant).unwrap_or(i64::MAX);
    if new_memories > 0 && memories.saturating_add(new_memories) > max_memories {
        return Err(StoreError::QuotaExceeded(format!(
            "this tenant holds {memories} memories and its quota is {max_memories}: delete \
             memories it no longer needs (delete_memories by tag or category), or ask the \
             operator to raise --max-memories-per-tenant"
        )));
    }
    let max_bytes = i64::try_from(limits.max_stored_bytes_per_tenant).unwrap_or(i64::MAX);
    if new_bytes > 0 && bytes.saturating_add(new_bytes) > max_bytes {
        return Err(StoreError::QuotaExceeded(format!(
            "this tenant stores {bytes} bytes of memories and its quota is {max_bytes}; this \
             change needs {new_bytes} more: delete memories it no longer needs, or ask the \
             operator to raise --max-stored-bytes-per-tenant"
        )));
    }
    Ok(())
}

/// Rewrites the tag index rows of one memory.
async fn replace_tags(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: MemoryId,
    tags: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM memory_tags WHERE memory_id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await
        .during("clearing tags")?;
    for tag in tags {
        sqlx::query("INSERT INTO memory_tags (memory_id, tenant_id, tag) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(tag)
            .execute(&mut *conn)
            .await
            .during("indexing tags")?;
    }
    Ok(())
}

async fn find_by_hash(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    content_hash: &str,
) -> Result<Option<MemoryId>, StoreError> {
    let row = sqlx::query("SELECT id FROM memories WHERE tenant_id = $1 AND content_hash = $2")
        .bind(tenant.as_str())
        .bind(content_hash)
        .fetch_optional(&mut *conn)
        .await
        .during("looking up a content hash")?;
    row.map(|r| memory_id(&get::<String>(&r, "id")?, "id"))
        .transpose()
}

/// Writes the memory's mutable fields back.
async fn save_memory(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    memory: &Memory,
    content_hash: Option<&str>,
    revision: i64,
) -> Result<(), StoreError> {
    let size = stored_size(memory);
    sqlx::query(
        "UPDATE tenant_revisions SET stored_bytes = stored_bytes + $1 - \
         COALESCE((SELECT stored_bytes FROM memories WHERE id = $2 AND tenant_id = $3), 0) \
         WHERE tenant_id = $3",
    )
    .bind(size)
    .bind(memory.id.to_string())
    .bind(tenant.as_str())
    .execute(&mut *conn)
    .await
    .during("counting the tenant's usage")?;
    sqlx::query(
        "UPDATE memories SET content = $1, content_hash = COALESCE($2, content_hash), tags = $3, \
         context = $4, keywords = $5, evolution_history = $6, updated_at = $7, revision = $10, \
         stored_bytes = $11, evolution_dropped = $12, observed_at = $13 \
         WHERE id = $8 AND tenant_id = $9",
    )
    .bind(&memory.content)
    .bind(content_hash)
    .bind(to_json(&memory.tags))
    .bind(&memory.context)
    .bind(to_json(&memory.keywords))
    .bind(to_json(&memory.evolution_history))
    .bind(micros(memory.updated_at))
    .bind(memory.id.to_string())
    .bind(tenant.as_str())
    .bind(revision)
    .bind(size)
    .bind(i64::try_from(memory.evolution_history_dropped).unwrap_or(i64::MAX))
    .bind(micros(memory.observed_at))
    .execute(&mut *conn)
    .await
    .during("updating a memory")?;
    replace_tags(conn, tenant, memory.id, &memory.tags).await
}

async fn insert_link(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    a: MemoryId,
    b: MemoryId,
    description: &str,
    embedding: Option<&Embedding>,
    created_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (a, b) = ordered(a, b);
    sqlx::query(
        "INSERT INTO links (memory_a, memory_b, tenant_id, description, created_at, embedding, \
         embedding_model) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (memory_a, memory_b) DO UPDATE SET description = excluded.description, \
         embedding = excluded.embedding, embedding_model = excluded.embedding_model, \
         embedding_refused_by = NULL",
    )
    .bind(a.to_string())
    .bind(b.to_string())
    .bind(tenant.as_str())
    .bind(description)
    .bind(micros(created_at))
    .bind(embedding.map(Embedding::to_bytes))
    .bind(embedding.map(|e| e.model.clone()))
    .execute(&mut *conn)
    .await
    .during("linking memories")?;
    Ok(())
}

/// Takes the tenant's next revision. Inside a write transaction the counter row stays locked
/// until commit, so one tenant's revisions commit in increasing order.
async fn bump_revision(conn: &mut AnyConnection, tenant: &TenantId) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO tenant_revisions (tenant_id, revision) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET revision = tenant_revisions.revision + 1 \
         RETURNING revision",
    )
    .bind(tenant.as_str())
    .fetch_one(&mut *conn)
    .await
    .during("advancing the tenant revision")?;
    get(&row, "revision")
}

/// The tenant's current revision; 0 for a tenant that never changed.
async fn read_revision(conn: &mut AnyConnection, tenant: &TenantId) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT revision FROM tenant_revisions WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await
        .during("reading the tenant revision")?;
    Ok(row.map(|r| get(&r, "revision")).transpose()?.unwrap_or(0))
}

/// Replaces a memory's vector (`None` clears it, so the background embedder makes it again).
async fn set_memory_embedding(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: MemoryId,
    embedding: Option<&Embedding>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE memories SET embedding = $1, embedding_model = $2, embedding_refused_by = NULL \
         WHERE id = $3 AND tenant_id = $4",
    )
    .bind(embedding.map(Embedding::to_bytes))
    .bind(embedding.map(|e| e.model.clone()))
    .bind(id.to_string())
    .bind(tenant.as_str())
    .execute(&mut *conn)
    .await
    .during("storing a memory's vector")?;
    Ok(())
}

/// A stored vector, if both columns are set and the bytes are whole floats.
fn embedding_from_row(row: &AnyRow) -> Result<Option<Embedding>, StoreError> {
    let bytes: Option<Vec<u8>> = get(row, "embedding")?;
    let model: Option<String> = get(row, "embedding_model")?;
    Ok(match (bytes, model) {
        (Some(bytes), Some(model)) => Some(Embedding::from_bytes(model, &bytes).ok_or(
            StoreError::Corrupt {
                column: "embedding",
                detail: format!("{} bytes is not a whole number of floats", bytes.len()),
            },
        )?),
        _ => None,
    })
}

async fn load_one(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: MemoryId,
) -> Result<Memory, StoreError> {
    load_memories(conn, tenant, &[id])
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found(format!("memory {id}")))
}

#[async_trait]
impl MemoryStore for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.reader(Lane::Upkeep).await?;
        conn.ping().await.during("pinging the database")
    }

    async fn create_key(
        &self,
        tenant: &TenantId,
        hash: &KeyHash,
        label: &str,
    ) -> Result<KeyRecord, StoreError> {
        let _turn = self.write_turn(Lane::Upkeep).await?;
        let record = KeyRecord {
            id: format!("key_{}", Uuid::new_v4().simple()),
            tenant: tenant.clone(),
            label: label.to_owned(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, key_hash, label, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&record.id)
        .bind(tenant.as_str())
        .bind(hash.as_str())
        .bind(label)
        .bind(micros(record.created_at))
        .execute(&self.write)
        .await
        .during("creating a key")?;
        Ok(record)
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut conn = self.reader(Lane::Upkeep).await?;
        let rows = sqlx::query(
            "SELECT id, tenant_id, label, created_at, revoked_at FROM api_keys \
             ORDER BY tenant_id, created_at",
        )
        .fetch_all(&mut *conn)
        .await
        .during("listing keys")?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, key_id: &str) -> Result<KeyRecord, StoreError> {
        let _turn = self.write_turn(Lane::Upkeep).await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(micros(Utc::now()))
            .bind(key_id)
            .execute(&self.write)
            .await
            .during("revoking a key")?;
        let row = sqlx::query(
            "SELECT id, tenant_id, label, created_at, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.write)
        .await
        .during("reading a key")?;
        row.as_ref()
            .map(key_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found(format!("key {key_id}")))
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.tenant_for_key", skip_all)]
    async fn tenant_for_key(&self, hash: &KeyHash) -> Result<Option<TenantId>, StoreError> {
        let mut conn = self.reader(Lane::Upkeep).await?;
        let row = sqlx::query(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash.as_str())
        .fetch_optional(&mut *conn)
        .await
        .during("checking a key")?;
        row.map(|r| tenant_id(&get::<String>(&r, "tenant_id")?))
            .transpose()
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.key_owner", skip_all)]
    async fn key_owner(&self, hash: &KeyHash) -> Result<Option<KeyOwner>, StoreError> {
        let mut conn = self.reader(Lane::Upkeep).await?;
        let row = sqlx::query("SELECT tenant_id, revoked_at FROM api_keys WHERE key_hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&mut *conn)
            .await
            .during("looking up a key")?;
        row.map(|r| {
            Ok(KeyOwner {
                tenant: tenant_id(&get::<String>(&r, "tenant_id")?)?,
                revoked: get::<Option<i64>>(&r, "revoked_at")?.is_some(),
            })
        })
        .transpose()
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.enqueue_ingest", skip_all)]
    async fn enqueue_ingest(
        &self,
        tenant: &TenantId,
        request: &IngestRequest,
        limits: &Limits,
    ) -> Result<IngestJob, StoreError> {
        // Checked outside a transaction: a burst racing past by a few jobs is caught again when
        // each job completes (inside its transaction), so nothing is stored over the quota.
        let usage = self.tenant_usage(tenant).await?;
        let max_pending = i64::try_from(limits.max_pending_jobs_per_tenant).unwrap_or(i64::MAX);
        if usage.pending_jobs >= max_pending {
            return Err(StoreError::QuotaExceeded(format!(
                "this tenant has {} ingest jobs waiting and at most {max_pending} may wait: \
                 retry once some have completed (GET /api/v1/memories/jobs/{{job_id}})",
                usage.pending_jobs
            )));
        }
        let content_bytes = i64::try_from(request.memory.content.len()).unwrap_or(i64::MAX);
        check_quota(
            (
                usage.memories.saturating_add(usage.pending_jobs),
                usage.stored_bytes,
            ),
            1,
            content_bytes,
            limits,
        )?;
        let job = IngestJob {
            id: JobId::new(),
            tenant: tenant.clone(),
            status: JobStatus::Queued,
            request: request.clone(),
            result: None,
            error: None,
            attempts: 0,
            created_at: Utc::now(),
            started_at: None,
            completed_at: None,
            lease: None,
        };
        let _turn = self.write_turn(Lane::tenant(tenant)).await?;
        sqlx::query(
            "INSERT INTO ingest_jobs (id, tenant_id, status, request, attempts, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(job.id.to_string())
        .bind(tenant.as_str())
        .bind(JobStatus::Queued.as_str())
        .bind(to_json(request))
        .bind(micros(job.created_at))
        .execute(&self.write)
        .await
        .during("enqueueing an ingest job")?;
        Ok(job)
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.claim_ingest_jobs", skip_all)]
    async fn claim_ingest_jobs(
        &self,
        lease: Duration,
        max: usize,
        after: Option<&TenantId>,
        skip: &[TenantId],
    ) -> Result<Vec<IngestJob>, StoreError> {
        let _turn = self.write_turn(Lane::Ingest).await?;
        let now = Utc::now();
        let lease_end = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let token = LeaseToken(Uuid::new_v4().simple().to_string());
        // The tenant whose turn it is: the first after `after` with a waiting job, else the
        // first of all. The waiting test is repeated where the rows are locked: PostgreSQL
        // re-checks it on rows another worker changed meanwhile, so a job is never claimed twice.
        const WAITING: &str =
            "(status = 'queued' OR (status = 'running' AND lease_expires_at < $1))";
        // Placeholders only: the skipped tenants are bound, from $5 on.
        let skipped: String = (0..skip.len())
            .map(|i| format!(" AND tenant_id <> ${}", i + 5))
            .collect();
        // The batch size is a literal, not a parameter: SQLite plans a subquery's bound LIMIT
        // with its value and so prepares the statement again on every run (idle workers poll).
        let limit = max.min(i64::MAX as usize);
        // The pick is materialised: inlined as a subquery, PostgreSQL may run it more than once,
        // and with SKIP LOCKED each run locks other rows, so a claim could exceed `max`.
        let sql = format!(
            "WITH picked AS MATERIALIZED (SELECT id FROM ingest_jobs \
                 WHERE tenant_id = COALESCE( \
                     (SELECT MIN(tenant_id) FROM ingest_jobs \
                      WHERE {WAITING} AND tenant_id > $4{skipped}), \
                     (SELECT MIN(tenant_id) FROM ingest_jobs WHERE {WAITING}{skipped})) \
                 AND {WAITING} \
                 ORDER BY created_at, id LIMIT {limit} {}) \
             UPDATE ingest_jobs SET status = 'running', attempts = attempts + 1, \
             started_at = COALESCE(started_at, $1), lease_expires_at = $2, lease_token = $3 \
             WHERE id IN (SELECT id FROM picked) AND {WAITING} \
             RETURNING {JOB_COLUMNS}",
            self.backend.skip_locked()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(micros(now))
            .bind(micros(lease_end))
            .bind(&token.0)
            .bind(after.map(TenantId::as_str).unwrap_or_default());
        for tenant in skip {
            query = query.bind(tenant.as_str());
        }
        let rows = query
            .fetch_all(&self.write)
            .await
            .during("claiming ingest jobs")?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|job| job.created_at);
        Ok(jobs)
    }

    async fn renew_ingest_leases(
        &self,
        jobs: &[(JobId, LeaseToken)],
        lease: Duration,
    ) -> Result<usize, StoreError> {
        let _turn = self.write_turn(Lane::Ingest).await?;
        let lease_end =
            Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut renewed = 0;
        for (id, token) in jobs {
            let done = sqlx::query(
                "UPDATE ingest_jobs SET lease_expires_at = $1 \
                 WHERE id = $2 AND lease_token = $3 AND status = 'running'",
            )
            .bind(micros(lease_end))
            .bind(id.to_string())
            .bind(&token.0)
            .execute(&self.write)
            .await
            .during("renewing an ingest lease")?;
            renewed += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        Ok(renewed)
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.complete_ingest", skip_all)]
    async fn complete_ingest(
        &self,
        job: &IngestJob,
        prepared: PreparedMemory,
        limits: &Limits,
    ) -> Result<IngestResult, StoreError> {
        let tenant = &job.tenant;
        let now = Utc::now();
        let (_turn, mut tx) = self.begin_write(Lane::Ingest).await?;
        let revision = bump_revision(&mut tx, tenant).await?;
        // The memory to merge into, if it still exists (it may have been deleted meanwhile).
        let near_duplicate = match prepared.near_duplicate {
            Some(near) => load_memories(&mut tx, tenant, &[near.id])
                .await?
                .pop()
                .map(|memory| (memory, near.similarity)),
            None => None,
        };
        let exact_duplicate = match find_by_hash(&mut tx, tenant, &prepared.content_hash).await? {
            Some(existing) => Some(load_one(&mut tx, tenant, existing).await?),
            None => None,
        };
        // Whether to create or merge, and into which, is decided by `membrain_memory::ingest`
        // from what was just loaded; here the quotas are checked with the growth it reports and
        // the result is written.
        let incoming = IncomingMemory {
            new: &prepared.new,
            keywords: &prepared.keywords,
            context: &prepared.context,
        };
        let decision = ingest::decide(incoming, exact_duplicate, near_duplicate, limits, now);
        if let Some(growth) = decision.usage_growth() {
            check_quota(
                read_usage(&mut tx, tenant).await?,
                growth.memories,
                growth.bytes,
                limits,
            )?;
        }
        let id = decision.memory().id;
        match &decision {
            IngestDecision::ExactDuplicate { memory, tags_added } => {
                if *tags_added {
                    save_memory(&mut tx, tenant, memory, None, revision).await?;
                }
            }
            IngestDecision::NearDuplicate { memory, .. } => {
                save_memory(
                    &mut tx,
                    tenant,
                    memory,
                    Some(&prepared.content_hash),
                    revision,
                )
                .await?;
                set_memory_embedding(&mut tx, tenant, id, prepared.embedding.as_ref()).await?;
            }
            IngestDecision::Create { memory } => {
                insert_memory(
                    &mut tx,
                    tenant,
                    memory,
                    &prepared.content_hash,
                    prepared.embedding.as_ref(),
                    revision,
                )
                .await?;
            }
        }
        let action = decision.action();
        let targets: Vec<MemoryId> = prepared.links.iter().map(|link| link.other).collect();
        let still_stored = stored_ids(&mut tx, tenant, &targets).await?;
        let linked = ingest::link_targets(id, &targets, &still_stored);
        for link in prepared
            .links
            .iter()
            .filter(|link| linked.contains(&link.other))
        {
            insert_link(
                &mut tx,
                tenant,
                id,
                link.other,
                &link.description,
                link.embedding.as_ref(),
                now,
            )
            .await?;
        }
        let result = IngestResult {
            status: "success".to_owned(),
            memory_id: id,
            action,
        };
        let finished = sqlx::query(
            "UPDATE ingest_jobs SET status = 'completed', result = $1, completed_at = $2, \
             lease_expires_at = NULL, lease_token = NULL, memory_id = $3 \
             WHERE id = $4 AND status = 'running' AND lease_token = $5",
        )
        .bind(to_json(&result))
        .bind(micros(now))
        .bind(id.to_string())
        .bind(job.id.to_string())
        .bind(job.lease.as_ref().map(|t| t.0.clone()))
        .execute(&mut *tx)
        .await
        .during("completing an ingest job")?;
        if finished.rows_affected() == 0 {
            // Another worker took the job over after our lease ran out; its answer stands.
            tx.rollback()
                .await
                .during("rolling back a duplicate ingest")?;
            return Err(StoreError::Conflict(format!(
                "ingest job {} is no longer held by this worker",
                job.id
            )));
        }
        tx.commit().await.during("committing an ingest")?;
        Ok(result)
    }

    async fn fail_ingest(&self, job: &IngestJob, error: &JobError) -> Result<(), StoreError> {
        let _turn = self.write_turn(Lane::Ingest).await?;
        let done = sqlx::query(
            "UPDATE ingest_jobs SET status = 'failed', error_code = $1, error_message = $2, \
             completed_at = $3, lease_expires_at = NULL, lease_token = NULL \
             WHERE id = $4 AND status = 'running' AND lease_token = $5",
        )
        .bind(&error.code)
        .bind(&error.message)
        .bind(micros(Utc::now()))
        .bind(job.id.to_string())
        .bind(job.lease.as_ref().map(|t| t.0.clone()))
        .execute(&self.write)
        .await
        .during("failing an ingest job")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "ingest job {} is no longer held by this worker",
                job.id
            )));
        }
        Ok(())
    }

    async fn requeue_ingest(&self, job: &IngestJob) -> Result<(), StoreError> {
        let _turn = self.write_turn(Lane::Ingest).await?;
        sqlx::query(
            "UPDATE ingest_jobs SET status = 'queued', lease_expires_at = NULL, lease_token = NULL \
             WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(job.id.to_string())
        .bind(job.lease.as_ref().map(|t| t.0.clone()))
        .execute(&self.write)
        .await
        .during("requeueing an ingest job")?;
        Ok(())
    }

    async fn release_ingest_jobs(&self, jobs: &[IngestJob]) -> Result<usize, StoreError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let (_turn, mut tx) = self.begin_write(Lane::Ingest).await?;
        let mut released = 0;
        for job in jobs {
            let done = sqlx::query(
                "UPDATE ingest_jobs SET status = 'queued', lease_expires_at = NULL, \
                 lease_token = NULL, attempts = attempts - 1 \
                 WHERE id = $1 AND status = 'running' AND lease_token = $2",
            )
            .bind(job.id.to_string())
            .bind(job.lease.as_ref().map(|t| t.0.clone()))
            .execute(&mut *tx)
            .await
            .during("releasing an ingest job")?;
            released += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        tx.commit().await.during("releasing ingest jobs")?;
        Ok(released)
    }

    async fn other_tenant_waiting(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let mut conn = self.reader(Lane::Ingest).await?;
        // COUNT is a 64-bit integer on both backends; the inner LIMIT stops at the first job.
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM ingest_jobs \
             WHERE status = 'queued' AND tenant_id <> $1 LIMIT 1) AS waiting",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *conn)
        .await
        .during("looking for other tenants' ingest jobs")?;
        Ok(waiting > 0)
    }

    async fn queued_ingest_jobs(&self) -> Result<u64, StoreError> {
        let mut conn = self.reader(Lane::Ingest).await?;
        let queued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM ingest_jobs WHERE status = 'queued'")
                .fetch_one(&mut *conn)
                .await
                .during("counting queued ingest jobs")?;
        Ok(u64::try_from(queued).unwrap_or(0))
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.ingest_job", skip_all)]
    async fn ingest_job(
        &self,
        tenant: &TenantId,
        job_id: JobId,
    ) -> Result<Option<IngestJob>, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM ingest_jobs WHERE id = $1 AND tenant_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(job_id.to_string())
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await
            .during("reading an ingest job")?;
        row.as_ref().map(job_from_row).transpose()
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.memories", skip_all)]
    async fn memories(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<Memory>, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        load_memories(&mut conn, tenant, ids).await
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.memory_briefs", skip_all)]
    async fn memory_briefs(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<MemoryBrief>, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        load_briefs(&mut conn, tenant, ids).await
    }

    async fn memory_by_hash(
        &self,
        tenant: &TenantId,
        content_hash: &str,
    ) -> Result<Option<MemoryId>, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        find_by_hash(&mut conn, tenant, content_hash).await
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.update_memory", skip_all)]
    async fn update_memory(
        &self,
        tenant: &TenantId,
        id: MemoryId,
        change: MemoryChange,
        limits: &Limits,
    ) -> Result<Memory, StoreError> {
        let MemoryChange {
            content,
            tags,
            observed_at,
        } = change;
        let now = Utc::now();
        let (_turn, mut tx) = self.begin_write(Lane::tenant(tenant)).await?;
        let mut memory = load_one(&mut tx, tenant, id).await?;
        let revision = bump_revision(&mut tx, tenant).await?;
        let before = stored_size(&memory);
        let mut new_hash = None;
        let mut new_embedding = None;
        if let Some(change) = content.filter(|c| c.content != memory.content) {
            if let Some(other) = find_by_hash(&mut tx, tenant, &change.content_hash).await?
                && other != id
            {
                return Err(StoreError::Conflict(format!(
                    "memory {other} already holds this content; update or delete that one instead"
                )));
            }
            let old_content = std::mem::replace(&mut memory.content, change.content);
            memory.record_evolution(
                EvolutionEvent::ContentUpdate {
                    old_content,
                    timestamp: now,
                },
                limits.max_history_entries,
            );
            memory.context = plain_context(&memory.category, &memory.content);
            memory.keywords = change.keywords;
            new_hash = Some(change.content_hash);
            new_embedding = Some(change.embedding);
        }
        if let Some(tags) = tags {
            memory.tags = tags;
        }
        if let Some(observed_at) = observed_at {
            memory.observed_at = observed_at;
        }
        check_quota(
            read_usage(&mut tx, tenant).await?,
            0,
            stored_size(&memory) - before,
            limits,
        )?;
        memory.updated_at = now;
        save_memory(&mut tx, tenant, &memory, new_hash.as_deref(), revision).await?;
        if let Some(embedding) = new_embedding {
            set_memory_embedding(&mut tx, tenant, id, embedding.as_ref()).await?;
        }
        tx.commit().await.during("committing an update")?;
        Ok(memory)
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.delete_memories", skip_all)]
    async fn delete_memories(
        &self,
        tenant: &TenantId,
        selector: &DeleteSelector,
    ) -> Result<Vec<MemoryId>, StoreError> {
        let (_turn, mut tx) = self.begin_write(Lane::tenant(tenant)).await?;
        let ids: Vec<String> = match selector {
            DeleteSelector::Id(id) => {
                let row = sqlx::query("SELECT id FROM memories WHERE id = $1 AND tenant_id = $2")
                    .bind(id.to_string())
                    .bind(tenant.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .during("finding a memory to delete")?;
                match row {
                    Some(row) => vec![get(&row, "id")?],
                    None => return Err(StoreError::not_found(format!("memory {id}"))),
                }
            }
            DeleteSelector::Filter { tags, category } => {
                let rows = if tags.is_empty() {
                    sqlx::query("SELECT id FROM memories WHERE tenant_id = $1 AND category = $2")
                        .bind(tenant.as_str())
                        .bind(category.clone().unwrap_or_default())
                        .fetch_all(&mut *tx)
                        .await
                } else {
                    let category_clause = if category.is_some() {
                        format!("AND m.category = ${}", tags.len() + 2)
                    } else {
                        String::new()
                    };
                    let sql = format!(
                        "SELECT m.id AS id FROM memories m JOIN memory_tags t ON t.memory_id = m.id \
                         WHERE m.tenant_id = $1 AND t.tag IN ({}) {category_clause} \
                         GROUP BY m.id HAVING COUNT(*) = {}",
                        placeholders(2, tags.len()),
                        tags.len()
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
                    for tag in tags {
                        query = query.bind(tag);
                    }
                    if let Some(category) = category {
                        query = query.bind(category);
                    }
                    query.fetch_all(&mut *tx).await
                }
                .during("selecting memories to delete")?;
                rows.iter()
                    .map(|r| get::<String>(r, "id"))
                    .collect::<Result<_, _>>()?
            }
        };
        if !ids.is_empty() {
            let revision = bump_revision(&mut tx, tenant).await?;
            let deleted_at = micros(Utc::now());
            for id in &ids {
                sqlx::query(
                    "INSERT INTO memory_tombstones (tenant_id, memory_id, revision, deleted_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, memory_id) DO UPDATE SET revision = excluded.revision, \
                     deleted_at = excluded.deleted_at",
                )
                .bind(tenant.as_str())
                .bind(id)
                .bind(revision)
                .bind(deleted_at)
                .execute(&mut *tx)
                .await
                .during("recording deletions")?;
            }
        }
        let scrubbed = scrubbed_request();
        for chunk in ids.chunks(ID_CHUNK) {
            let list = placeholders(2, chunk.len());
            let sql = format!(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(stored_bytes), 0) AS BIGINT) AS bytes \
                 FROM memories \
                 WHERE tenant_id = $1 AND id IN ({list})"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
            for id in chunk {
                query = query.bind(id);
            }
            let row = query
                .fetch_one(&mut *tx)
                .await
                .during("sizing memories to delete")?;
            let (count, bytes): (i64, i64) = (get(&row, "n")?, get(&row, "bytes")?);
            adjust_usage(&mut tx, tenant, -count, -bytes).await?;
            // Deleted means unreadable: the jobs that wrote these memories keep no content.
            let sql = format!(
                "UPDATE ingest_jobs SET request = ${} WHERE tenant_id = $1 AND memory_id IN ({list})",
                chunk.len() + 2
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
            for id in chunk {
                query = query.bind(id);
            }
            query
                .bind(&scrubbed)
                .execute(&mut *tx)
                .await
                .during("scrubbing the jobs of deleted memories")?;
            for sql in [
                format!(
                    "DELETE FROM links WHERE tenant_id = $1 AND (memory_a IN ({list}) OR memory_b IN ({list}))"
                ),
                format!("DELETE FROM memory_tags WHERE tenant_id = $1 AND memory_id IN ({list})"),
                format!("DELETE FROM memories WHERE tenant_id = $1 AND id IN ({list})"),
            ] {
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await.during("deleting memories")?;
            }
        }
        tx.commit().await.during("committing a delete")?;
        ids.iter().map(|id| memory_id(id, "id")).collect()
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.tenant_usage", skip_all)]
    async fn tenant_usage(&self, tenant: &TenantId) -> Result<TenantUsage, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        let (memories, stored_bytes) = read_usage(&mut conn, tenant).await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM ingest_jobs \
             WHERE tenant_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *conn)
        .await
        .during("counting pending ingest jobs")?;
        Ok(TenantUsage {
            memories,
            stored_bytes,
            pending_jobs: get(&row, "n")?,
        })
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.tenant_revision", skip_all)]
    async fn tenant_revision(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        read_revision(&mut conn, tenant).await
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.index_changes", skip_all)]
    async fn index_changes(
        &self,
        tenant: &TenantId,
        since: i64,
        model: &str,
    ) -> Result<IndexChanges, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        // Every revision up to the one read here has committed (they commit in order), so
        // fetching exactly (since, revision] misses nothing; later changes wait for the next call.
        let revision = read_revision(&mut conn, tenant).await?;
        let mut changes = IndexChanges {
            revision,
            full: since < 0,
            ..IndexChanges::default()
        };
        if revision <= since {
            return Ok(changes);
        }
        let rows = sqlx::query(
            "SELECT id, revision, content, tags, evolution_history, created_at, observed_at, \
                    CASE WHEN embedding_model = $4 THEN embedding END AS embedding \
             FROM memories WHERE tenant_id = $1 AND revision > $2 AND revision <= $3 \
             ORDER BY revision",
        )
        .bind(tenant.as_str())
        .bind(since)
        .bind(revision)
        .bind(model)
        .fetch_all(&mut *conn)
        .await
        .during("loading changed memories")?;
        for row in &rows {
            let bytes: Option<Vec<u8>> = get(row, "embedding")?;
            changes.upserts.push(IndexEntry {
                id: memory_id(&get::<String>(row, "id")?, "id")?,
                revision: get(row, "revision")?,
                content: get(row, "content")?,
                tags: from_json(&get::<String>(row, "tags")?, "tags")?,
                earlier_wordings: earlier_wordings(&from_json::<Vec<EvolutionEvent>>(
                    &get::<String>(row, "evolution_history")?,
                    "evolution_history",
                )?),
                observed_at: match get::<Option<i64>>(row, "observed_at")? {
                    Some(at) => at,
                    None => get(row, "created_at")?,
                },
                embedding: bytes
                    .and_then(|b| Embedding::from_bytes(model, &b))
                    .map(|e| e.vector),
            });
        }
        if since >= 0 {
            let rows = sqlx::query(
                "SELECT memory_id, revision FROM memory_tombstones \
                 WHERE tenant_id = $1 AND revision > $2 AND revision <= $3",
            )
            .bind(tenant.as_str())
            .bind(since)
            .bind(revision)
            .fetch_all(&mut *conn)
            .await
            .during("loading deletions")?;
            for row in &rows {
                changes.removals.push((
                    memory_id(&get::<String>(row, "memory_id")?, "memory_id")?,
                    get(row, "revision")?,
                ));
            }
            // Read after the tombstones: if pruning removed some after `since` before they
            // were read, this sees it, and the index loads the tenant afresh instead of keeping
            // a deleted memory.
            let row =
                sqlx::query("SELECT pruned_through FROM tenant_revisions WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_optional(&mut *conn)
                    .await
                    .during("reading how far deletions were pruned")?;
            let pruned_through: i64 = row
                .map(|r| get(&r, "pruned_through"))
                .transpose()?
                .unwrap_or(0);
            if pruned_through > since {
                drop(conn);
                return self.index_changes(tenant, -1, model).await;
            }
        }
        Ok(changes)
    }

    async fn pending_embeddings(
        &self,
        model: &str,
        limit: usize,
    ) -> Result<Vec<PendingEmbedding>, StoreError> {
        let mut conn = self.reader(Lane::Upkeep).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut pending = Vec::new();
        let rows = sqlx::query(
            "SELECT tenant_id, id, content FROM memories \
             WHERE (embedding_model IS NULL OR embedding_model <> $1) \
             AND (embedding_refused_by IS NULL OR embedding_refused_by <> $1) LIMIT $2",
        )
        .bind(model)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .during("finding memories without vectors")?;
        for row in &rows {
            pending.push(PendingEmbedding {
                tenant: tenant_id(&get::<String>(row, "tenant_id")?)?,
                target: EmbeddingTarget::Memory(memory_id(&get::<String>(row, "id")?, "id")?),
                text: get(row, "content")?,
            });
        }
        let rows = sqlx::query(
            "SELECT tenant_id, memory_a, memory_b, description FROM links \
             WHERE (embedding_model IS NULL OR embedding_model <> $1) \
             AND (embedding_refused_by IS NULL OR embedding_refused_by <> $1) LIMIT $2",
        )
        .bind(model)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .during("finding links without vectors")?;
        for row in &rows {
            pending.push(PendingEmbedding {
                tenant: tenant_id(&get::<String>(row, "tenant_id")?)?,
                target: EmbeddingTarget::Link(
                    memory_id(&get::<String>(row, "memory_a")?, "memory_a")?,
                    memory_id(&get::<String>(row, "memory_b")?, "memory_b")?,
                ),
                text: get(row, "description")?,
            });
        }
        Ok(pending)
    }

    async fn store_embeddings(
        &self,
        done: &[(PendingEmbedding, Embedding)],
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_write(Lane::Upkeep).await?;
        let mut revisions: HashMap<TenantId, i64> = HashMap::new();
        for (pending, embedding) in done {
            match pending.target {
                EmbeddingTarget::Memory(id) => {
                    // A new vector changes what the tenant's indexes hold: it needs a revision.
                    let revision = match revisions.get(&pending.tenant) {
                        Some(r) => *r,
                        None => {
                            let r = bump_revision(&mut tx, &pending.tenant).await?;
                            revisions.insert(pending.tenant.clone(), r);
                            r
                        }
                    };
                    sqlx::query(
                        "UPDATE memories SET embedding = $1, embedding_model = $2, revision = $3 \
                         WHERE id = $4 AND tenant_id = $5 AND content = $6",
                    )
                    .bind(embedding.to_bytes())
                    .bind(&embedding.model)
                    .bind(revision)
                    .bind(id.to_string())
                    .bind(pending.tenant.as_str())
                    .bind(&pending.text)
                    .execute(&mut *tx)
                    .await
                    .during("storing a memory's vector")?;
                }
                EmbeddingTarget::Link(a, b) => {
                    let (a, b) = ordered(a, b);
                    sqlx::query(
                        "UPDATE links SET embedding = $1, embedding_model = $2 \
                         WHERE memory_a = $3 AND memory_b = $4 AND tenant_id = $5 \
                         AND description = $6",
                    )
                    .bind(embedding.to_bytes())
                    .bind(&embedding.model)
                    .bind(a.to_string())
                    .bind(b.to_string())
                    .bind(pending.tenant.as_str())
                    .bind(&pending.text)
                    .execute(&mut *tx)
                    .await
                    .during("storing a link's vector")?;
                }
            }
        }
        tx.commit().await.during("committing vectors")
    }

    async fn refuse_embeddings(
        &self,
        refused: &[PendingEmbedding],
        model: &str,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_write(Lane::Upkeep).await?;
        for pending in refused {
            match pending.target {
                EmbeddingTarget::Memory(id) => sqlx::query(
                    "UPDATE memories SET embedding_refused_by = $1 \
                     WHERE id = $2 AND tenant_id = $3 AND content = $4",
                )
                .bind(model)
                .bind(id.to_string())
                .bind(pending.tenant.as_str())
                .bind(&pending.text),
                EmbeddingTarget::Link(a, b) => {
                    let (a, b) = ordered(a, b);
                    sqlx::query(
                        "UPDATE links SET embedding_refused_by = $1 \
                         WHERE memory_a = $2 AND memory_b = $3 AND tenant_id = $4 \
                         AND description = $5",
                    )
                    .bind(model)
                    .bind(a.to_string())
                    .bind(b.to_string())
                    .bind(pending.tenant.as_str())
                    .bind(&pending.text)
                }
            }
            .execute(&mut *tx)
            .await
            .during("recording a refused text")?;
        }
        tx.commit().await.during("committing refused texts")
    }

    async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn(Lane::Upkeep).await?;
        let now = micros(Utc::now());
        let until = now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
        // One statement: a new lease, a renewal, or taking over an expired one; a lease another
        // holder still has is left alone (no row changes).
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.write)
        .await
        .during("taking a lease")?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn(Lane::Upkeep).await?;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.write)
            .await
            .during("releasing a lease")?;
        Ok(())
    }

    async fn prune(
        &self,
        jobs_before: DateTime<Utc>,
        tombstones_before: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        // Finished jobs, a bounded batch per statement so no delete holds locks for long (and
        // other writers get their turns between batches).
        loop {
            let turn = self.write_turn(Lane::Upkeep).await?;
            let done = sqlx::query(
                "DELETE FROM ingest_jobs WHERE id IN (SELECT id FROM ingest_jobs \
                 WHERE status IN ('completed', 'failed') AND completed_at < $1 LIMIT $2)",
            )
            .bind(micros(jobs_before))
            .bind(PRUNE_BATCH)
            .execute(&self.write)
            .await
            .during("pruning finished ingest jobs")?;
            drop(turn);
            pruned.jobs += done.rows_affected();
            if done.rows_affected() < PRUNE_BATCH as u64 {
                break;
            }
        }
        // Tombstones, per tenant: record how far they were pruned first (in the same
        // transaction), so an index older than that reloads instead of missing a deletion.
        let rows = sqlx::query(
            "SELECT tenant_id, MAX(revision) AS through FROM memory_tombstones \
             WHERE deleted_at < $1 GROUP BY tenant_id",
        )
        .bind(micros(tombstones_before))
        .fetch_all(&mut *self.reader(Lane::Upkeep).await?)
        .await
        .during("finding old tombstones")?;
        for row in &rows {
            let tenant: String = get(row, "tenant_id")?;
            let through: i64 = get(row, "through")?;
            let (_turn, mut tx) = self.begin_write(Lane::Upkeep).await?;
            sqlx::query(
                "UPDATE tenant_revisions SET pruned_through = \
                 CASE WHEN pruned_through < $1 THEN $1 ELSE pruned_through END \
                 WHERE tenant_id = $2",
            )
            .bind(through)
            .bind(&tenant)
            .execute(&mut *tx)
            .await
            .during("recording pruned deletions")?;
            let done = sqlx::query(
                "DELETE FROM memory_tombstones WHERE tenant_id = $1 AND revision <= $2",
            )
            .bind(&tenant)
            .bind(through)
            .execute(&mut *tx)
            .await
            .during("pruning tombstones")?;
            tx.commit().await.during("committing pruned tombstones")?;
            pruned.tombstones += done.rows_affected();
        }
        Ok(pruned)
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.link", skip_all)]
    async fn link(
        &self,
        tenant: &TenantId,
        a: MemoryId,
        b: MemoryId,
        description: &str,
        embedding: Option<&Embedding>,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_write(Lane::tenant(tenant)).await?;
        let found = load_memories(&mut tx, tenant, &[a, b]).await?;
        for id in [a, b] {
            if !found.iter().any(|m| m.id == id) {
                return Err(StoreError::not_found(format!("memory {id}")));
            }
        }
        insert_link(&mut tx, tenant, a, b, description, embedding, Utc::now()).await?;
        tx.commit().await.during("committing a link")
    }

    async fn unlink(
        &self,
        tenant: &TenantId,
        a: MemoryId,
        b: MemoryId,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn(Lane::tenant(tenant)).await?;
        let (a, b) = ordered(a, b);
        let done = sqlx::query(
            "DELETE FROM links WHERE tenant_id = $1 AND memory_a = $2 AND memory_b = $3",
        )
        .bind(tenant.as_str())
        .bind(a.to_string())
        .bind(b.to_string())
        .execute(&self.write)
        .await
        .during("unlinking memories")?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.edges_from", skip_all)]
    async fn edges_from(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<Edge>, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        let links = load_links(&mut conn, tenant, ids, LinkVectors::With).await?;
        let mut edges = Vec::with_capacity(links.len() * 2);
        for (link, embedding) in links {
            for (from, to) in [
                (link.memory_id_1, link.memory_id_2),
                (link.memory_id_2, link.memory_id_1),
            ] {
                if ids.contains(&from) {
                    edges.push(Edge {
                        from,
                        to,
                        description: link.description.clone(),
                        embedding: embedding.clone(),
                    });
                }
            }
        }
        // Stable order, so walks are repeatable.
        edges.sort_by_key(|edge| (edge.from, edge.to));
        Ok(edges)
    }

    #[tracing::instrument(target = "membrain_trace", name = "store.stats", skip_all)]
    async fn stats(&self, tenant: &TenantId, top: usize) -> Result<MemoryStats, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        // One statement instead of four: on SQLite every statement is a round trip to the
        // connection's worker thread, and stats is the call agents make most. `top` is a
        // literal, not a parameter: SQLite plans a subquery's bound LIMIT with its value, so it
        // would prepare this statement again on every call (a quarter of a call's CPU).
        let sql = format!(
            "SELECT 'count' AS kind, 'memories' AS name, \
                    (SELECT COUNT(*) FROM memories WHERE tenant_id = $1) AS n \
             UNION ALL SELECT 'count', 'links', (SELECT COUNT(*) FROM links WHERE tenant_id = $1) \
             UNION ALL SELECT * FROM (SELECT 'tag' AS kind, tag AS name, COUNT(*) AS n \
                 FROM memory_tags WHERE tenant_id = $1 GROUP BY tag ORDER BY n DESC, tag LIMIT {top}) AS tags \
             UNION ALL SELECT * FROM (SELECT 'category' AS kind, category AS name, COUNT(*) AS n \
                 FROM memories WHERE tenant_id = $1 GROUP BY category ORDER BY n DESC, category LIMIT {top}) AS categories",
            top = top.min(i64::MAX as usize)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(&mut *conn)
            .await
            .during("computing stats")?;
        let mut stats = MemoryStats {
            total_memories: 0,
            total_links: 0,
            top_tags: Vec::new(),
            categories: Vec::new(),
        };
        for row in &rows {
            let kind: String = get(row, "kind")?;
            let name: String = get(row, "name")?;
            let n: i64 = get(row, "n")?;
            match (kind.as_str(), name.as_str()) {
                ("count", "memories") => stats.total_memories = n,
                ("count", "links") => stats.total_links = n,
                ("tag", _) => stats.top_tags.push((name, n)),
                ("category", _) => stats.categories.push((name, n)),
                _ => {}
            }
        }
        // UNION ALL does not promise to keep each part's order; restore it.
        let by_count =
            |a: &(String, i64), b: &(String, i64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
        stats.top_tags.sort_by(by_count);
        stats.categories.sort_by(by_count);
        Ok(stats)
    }

    async fn list_memories(
        &self,
        tenant: &TenantId,
        listing: &MemoryListing,
    ) -> Result<Vec<Memory>, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        // Without a cursor, "before" the newest possible memory: one query shape for every page.
        let (before_time, before_id) = match listing.before {
            Some((time, id)) => (micros(time), id.to_string()),
            None => (i64::MAX, String::new()),
        };
        let rows = sqlx::query(
            "SELECT id FROM memories m WHERE tenant_id = $1 \
             AND ($2 = '' OR EXISTS (SELECT 1 FROM memory_tags t \
                  WHERE t.memory_id = m.id AND t.tenant_id = $3 AND t.tag = $4)) \
             AND (created_at < $5 OR (created_at = $6 AND $7 <> '' AND id < $8)) \
             ORDER BY created_at DESC, id DESC LIMIT $9",
        )
        .bind(tenant.as_str())
        .bind(listing.tag.clone().unwrap_or_default())
        .bind(tenant.as_str())
        .bind(listing.tag.clone().unwrap_or_default())
        .bind(before_time)
        .bind(before_time)
        .bind(before_id.clone())
        .bind(before_id)
        .bind(i64::try_from(listing.limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .during("listing memories")?;
        let ids: Vec<MemoryId> = rows
            .iter()
            .map(|r| memory_id(&get::<String>(r, "id")?, "id"))
            .collect::<Result<_, _>>()?;
        load_memories(&mut conn, tenant, &ids).await
    }

    async fn export_memories(
        &self,
        tenant: &TenantId,
        after: Option<MemoryId>,
        limit: usize,
    ) -> Result<Vec<Memory>, StoreError> {
        let mut conn = self.reader(Lane::tenant(tenant)).await?;
        let rows = sqlx::query(
            "SELECT id FROM memories WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .during("paging memories for export")?;
        let ids: Vec<MemoryId> = rows
            .iter()
            .map(|r| memory_id(&get::<String>(r, "id")?, "id"))
            .collect::<Result<_, _>>()?;
        load_memories(&mut conn, tenant, &ids).await
    }

    /// A batch in a constant number of round trips, not several per memory: one lookup of the
    /// ids, one of the content hashes, then multi-row inserts. The decisions are the ones a
    /// memory-by-memory import would make, in order (an id or content seen earlier in the batch
    /// counts as stored).
    async fn import_memories(
        &self,
        tenant: &TenantId,
        items: &[ImportItem],
        limits: &Limits,
    ) -> Result<Vec<(MemoryId, ImportOutcome)>, StoreError> {
        let (turn, mut tx) = self.begin_write(Lane::tenant(tenant)).await?;
        if self.backend == Backend::Postgres {
            // An import fills a table faster than autovacuum analyses it: a generic plan cached
            // while it was small (measured: the hash lookup scanning the whole tenant through
            // its revision index, 0.4 s a batch at 30,000 memories) would stay. Planned per call
            // instead, from the table's current size.
            sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                .execute(&mut *tx)
                .await
                .during("planning the import's lookups per call")?;
        }
        let revision = bump_revision(&mut tx, tenant).await?;
        let before = read_usage(&mut tx, tenant).await?;
        let mut usage = before;
        let ids: Vec<String> = items.iter().map(|i| i.memory.id.to_string()).collect();
        let mut owners = owners_of(&mut tx, &ids).await?;
        let hashes: Vec<&str> = items.iter().map(|i| i.content_hash.as_str()).collect();
        let mut by_hash = ids_by_hash(&mut tx, tenant, &hashes).await?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut created: Vec<ImportedMemory> = Vec::new();
        for item in items {
            let memory = &item.memory;
            let owner = owners.get(&memory.id.to_string());
            if owner.map(String::as_str) == Some(tenant.as_str()) {
                outcomes.push((memory.id, ImportOutcome::Skipped));
                continue;
            }
            if let Some(existing) = by_hash.get(&item.content_hash) {
                outcomes.push((*existing, ImportOutcome::Merged));
                continue;
            }
            let mut stored = memory.clone();
            if owner.is_some() {
                stored.id = MemoryId::new();
            }
            // An exported history may be longer than this server keeps.
            let excess = stored
                .evolution_history
                .len()
                .saturating_sub(limits.max_history_entries);
            stored.evolution_history.drain(..excess);
            stored.evolution_history_dropped += excess as u64;
            stored.tags.truncate(limits.max_tags);
            let size = stored_size(&stored);
            check_quota(usage, 1, size, limits)?;
            usage = (usage.0 + 1, usage.1 + size);
            owners.insert(stored.id.to_string(), tenant.as_str().to_owned());
            by_hash.insert(item.content_hash.clone(), stored.id);
            outcomes.push((stored.id, ImportOutcome::Created));
            created.push(ImportedMemory {
                memory: stored,
                content_hash: &item.content_hash,
                embedding: item.embedding.as_ref(),
            });
        }
        insert_new_memories(&mut tx, tenant, &created, revision).await?;
        if !created.is_empty() {
            adjust_usage(&mut tx, tenant, usage.0 - before.0, usage.1 - before.1).await?;
        }
        tx.commit().await.during("committing an import")?;
        drop(turn);
        if self.backend == Backend::Postgres && !created.is_empty() {
            self.analyze_if_outgrown().await;
        }
        Ok(outcomes)
    }
}
