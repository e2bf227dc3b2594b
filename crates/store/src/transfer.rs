//! Export and import of one tenant as JSON lines: one `{"type":"memory",…}` line per memory,
//! then one `{"type":"link",…}` line per link. The format is the store's own and stable across
//! backends, so a tenant can move from SQLite to PostgreSQL (or between tenants) with it.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

use membrain_memory::text::content_hash;
use membrain_memory::{Limits, Memory, MemoryId, TenantId};
use serde::{Deserialize, Serialize};

use crate::{ImportItem, ImportOutcome, LinkRecord, MemoryStore, StoreError};

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Memory(Memory),
    Link(LinkRecord),
}

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {message}")]
    BadLine { line: usize, message: String },
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    pub memories: usize,
    pub links: usize,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub created: usize,
    pub skipped: usize,
    pub merged: usize,
    pub links: usize,
    /// Links whose ends were not in the file or the tenant.
    pub links_skipped: usize,
}

const PAGE: usize = 500;

/// Writes every memory and link of `tenant` to `out`.
pub async fn export_tenant(
    store: &dyn MemoryStore,
    tenant: &TenantId,
    out: &mut dyn Write,
) -> Result<ExportReport, TransferError> {
    let mut report = ExportReport::default();
    let mut links: BTreeMap<(MemoryId, MemoryId), LinkRecord> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.export_memories(tenant, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for mut memory in page {
            for link in std::mem::take(&mut memory.links) {
                let (a, b) = if memory.id < link.memory_id {
                    (memory.id, link.memory_id)
                } else {
                    (link.memory_id, memory.id)
                };
                links.entry((a, b)).or_insert(LinkRecord {
                    memory_id_1: a,
                    memory_id_2: b,
                    description: link.description,
                    created_at: link.created_at,
                });
            }
            write_line(out, &Line::Memory(memory))?;
            report.memories += 1;
        }
    }
    for link in links.into_values() {
        write_line(out, &Line::Link(link))?;
        report.links += 1;
    }
    out.flush()?;
    Ok(report)
}

fn write_line(out: &mut dyn Write, line: &Line) -> Result<(), TransferError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads an export into `tenant`. Memories keep their ids unless another tenant owns them (then
/// they get new ids and their links follow); exact duplicates merge. `progress` is called after
/// each line with the number of bytes read so far. Histories and tags are cut to `limits`, and
/// the tenant's quotas in `limits` hold.
pub async fn import_tenant(
    store: &dyn MemoryStore,
    tenant: &TenantId,
    input: &mut dyn BufRead,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, TransferError> {
    let mut report = ImportReport::default();
    let mut new_ids: HashMap<MemoryId, MemoryId> = HashMap::new();
    let mut links = Vec::new();
    let mut buffer = String::new();
    let mut bytes_read = 0u64;
    let mut number = 0usize;
    let mut batch: Vec<ImportItem> = Vec::with_capacity(IMPORT_BATCH);
    loop {
        buffer.clear();
        let read = input.read_line(&mut buffer)?;
        if read == 0 {
            break;
        }
        number += 1;
        bytes_read += read as u64;
        if buffer.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&buffer).map_err(|e| TransferError::BadLine {
            line: number,
            message: format!("not a memory or link line of a Membrain export ({e})"),
        })?;
        match line {
            Line::Memory(mut memory) => {
                if memory.content.trim().is_empty() {
                    return Err(TransferError::BadLine {
                        line: number,
                        message: "empty content".into(),
                    });
                }
                memory.links.clear();
                batch.push(ImportItem {
                    content_hash: content_hash(&memory.content),
                    memory,
                    embedding: None,
                });
                if batch.len() >= IMPORT_BATCH {
                    import_batch(store, tenant, &mut batch, limits, &mut new_ids, &mut report)
                        .await?;
                }
            }
            Line::Link(link) => links.push(link),
        }
        progress(bytes_read);
    }
    import_batch(store, tenant, &mut batch, limits, &mut new_ids, &mut report).await?;
    for link in links {
        let a = new_ids
            .get(&link.memory_id_1)
            .copied()
            .unwrap_or(link.memory_id_1);
        let b = new_ids
            .get(&link.memory_id_2)
            .copied()
            .unwrap_or(link.memory_id_2);
        match store.link(tenant, a, b, &link.description, None).await {
            Ok(()) => report.links += 1,
            Err(StoreError::NotFound { .. }) => report.links_skipped += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// Memories written per transaction: one commit (one fsync) per batch, not per memory.
const IMPORT_BATCH: usize = 500;

async fn import_batch(
    store: &dyn MemoryStore,
    tenant: &TenantId,
    batch: &mut Vec<ImportItem>,
    limits: &Limits,
    new_ids: &mut HashMap<MemoryId, MemoryId>,
    report: &mut ImportReport,
) -> Result<(), TransferError> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = store.import_memories(tenant, batch, limits).await?;
    for (item, (id, outcome)) in batch.iter().zip(outcomes) {
        new_ids.insert(item.memory.id, id);
        match outcome {
            ImportOutcome::Created => report.created += 1,
            ImportOutcome::Skipped => report.skipped += 1,
            ImportOutcome::Merged => report.merged += 1,
        }
    }
    batch.clear();
    Ok(())
}
