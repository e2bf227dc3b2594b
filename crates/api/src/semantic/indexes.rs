//! One in-memory search index per tenant, kept in step with the database.
//!
//! The database is the truth; an index is a cache of one tenant's memories (text, tags, vector).
//! Every change to a tenant's memories takes the next tenant revision, in commit order, and
//! deletions leave tombstones, so bringing an index up to date is one cheap query (is the
//! revision newer?) and, when it is, one query for the rows in between. That holds across
//! restarts (a new process loads everything on first use) and across several API processes
//! sharing one PostgreSQL (each catches up on its own before answering).
//!
//! Indexes live within a memory budget: past it, the least recently used tenants' indexes are
//! dropped (they reload from the database on their next search), so the number of tenants a
//! process has served does not decide how much memory it holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use membrain_index::{Document, TenantIndex};
use membrain_memory::text::tokenize;
use membrain_memory::{MemoryId, TenantId};
use membrain_store::{IndexChanges, MemoryStore, StoreError};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// A tenant's index and the revision it reflects.
#[derive(Debug)]
pub struct SyncedIndex {
    pub index: TenantIndex,
    /// -1 before the first load.
    pub revision: i64,
}

/// One tenant's slot: the index, when it was last used, and its size at its last catch-up.
#[derive(Debug)]
struct Slot {
    index: Arc<RwLock<SyncedIndex>>,
    last_used: Instant,
    bytes: usize,
}

/// Every tenant's index in this process, created on first use, within a memory budget.
#[derive(Debug)]
pub struct Indexes {
    model: String,
    dimensions: usize,
    budget: usize,
    tenants: Mutex<HashMap<TenantId, Slot>>,
}

impl Indexes {
    pub fn new(model: impl Into<String>, dimensions: usize, budget: usize) -> Self {
        Self {
            model: model.into(),
            dimensions,
            budget,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Tenants whose index this process holds, and their bytes together.
    pub fn held(&self) -> (usize, usize) {
        let tenants = self.lock();
        (tenants.len(), tenants.values().map(|slot| slot.bytes).sum())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Slot>> {
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `tenant`'s new size and drops the least recently used other indexes while the
    /// total is over the budget. An index in use stays whole for its readers (they hold it);
    /// the next search of a dropped tenant loads it again.
    fn settle(&self, tenant: &TenantId, bytes: usize) {
        let mut tenants = self.lock();
        if let Some(slot) = tenants.get_mut(tenant) {
            slot.bytes = bytes;
        }
        let mut total: usize = tenants.values().map(|slot| slot.bytes).sum();
        while total > self.budget {
            let oldest = tenants
                .iter()
                .filter(|(id, _)| *id != tenant)
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else {
                tracing::warn!(%tenant, bytes, budget = self.budget, "one tenant's search index is larger than the whole index memory budget");
                break;
            };
            if let Some(dropped) = tenants.remove(&oldest) {
                total -= dropped.bytes;
                tracing::debug!(tenant = %oldest, bytes = dropped.bytes, "search index dropped to stay within the memory budget");
            }
        }
        metrics::gauge!("membrain_index_memory_bytes").set(total as f64);
        metrics::gauge!("membrain_index_tenants").set(tenants.len() as f64);
    }

    /// The tenant's index as it stands, without asking the database for newer changes: for a
    /// second look within a request that has just brought it up to date (one round trip less).
    /// `None` when it was dropped in between.
    pub async fn as_held(&self, tenant: &TenantId) -> Option<OwnedRwLockReadGuard<SyncedIndex>> {
        let slot = self.lock().get(tenant).map(|slot| slot.index.clone())?;
        Some(slot.read_owned().await)
    }

    /// The tenant's index, brought up to the database's latest revision first.
    pub async fn current(
        &self,
        store: &dyn MemoryStore,
        tenant: &TenantId,
    ) -> Result<OwnedRwLockReadGuard<SyncedIndex>, StoreError> {
        let slot = {
            let mut tenants = self.lock();
            let slot = tenants.entry(tenant.clone()).or_insert_with(|| Slot {
                index: Arc::new(RwLock::new(SyncedIndex {
                    index: TenantIndex::new(self.dimensions),
                    revision: -1,
                })),
                last_used: Instant::now(),
                bytes: 0,
            });
            slot.last_used = Instant::now();
            slot.index.clone()
        };
        let latest = store.tenant_revision(tenant).await?;
        {
            let synced = slot.clone().read_owned().await;
            if synced.revision >= latest.max(0) {
                return Ok(synced);
            }
        }
        let mut synced = slot.write_owned().await;
        // Another request may have caught up while this one waited for the lock.
        if synced.revision < latest.max(0) {
            let changes = store
                .index_changes(tenant, synced.revision, &self.model)
                .await?;
            let loaded = apply(&mut synced, changes);
            tracing::debug!(%tenant, loaded, revision = synced.revision, "search index caught up");
            let bytes = synced.index.heap_bytes();
            self.settle(tenant, bytes);
        }
        Ok(synced.downgrade())
    }
}

/// Applies upserts and removals in revision order (a memory may be deleted and re-imported under
/// the same id). Returns how many changes were applied.
fn apply(synced: &mut SyncedIndex, changes: IndexChanges) -> usize {
    if changes.full {
        // The whole tenant (a first load, or deletions were pruned past what this index holds).
        synced.index = TenantIndex::new(synced.index.dimensions());
        synced.revision = -1;
    }
    enum Change {
        Upsert(membrain_store::IndexEntry),
        Remove(MemoryId),
    }
    let mut ordered: Vec<(i64, Change)> = changes
        .upserts
        .into_iter()
        .map(|entry| (entry.revision, Change::Upsert(entry)))
        .chain(
            changes
                .removals
                .into_iter()
                .map(|(id, revision)| (revision, Change::Remove(id))),
        )
        .collect();
    // Stable: an upsert and a removal of one revision cannot concern the same memory.
    ordered.sort_by_key(|(revision, _)| *revision);
    let count = ordered.len();
    for (_, change) in ordered {
        match change {
            Change::Upsert(entry) => {
                // A vector of the wrong length leaves the memory lexical-only; the backfill
                // re-makes vectors of other models, so this only happens with a broken row.
                let _ = synced.index.upsert(Document {
                    id: entry.id,
                    text: lexical_text(&entry.content, &entry.tags, &entry.earlier_wordings),
                    tags: entry.tags,
                    embedding: entry.embedding,
                    observed_at: entry.observed_at,
                });
            }
            Change::Remove(id) => {
                synced.index.remove(id);
            }
        }
    }
    synced.revision = synced.revision.max(changes.revision);
    count
}

/// What lexical ranking reads: the content, the tags the content does not already say (a tag
/// is often the word asked for; one derived from the content, such as a key phrase, adds no
/// word and would only count its words twice) and the memory's earlier wordings (what a merge
/// or an update replaced is still found by its own words; the vector is the content's alone).
pub fn lexical_text(content: &str, tags: &[String], earlier_wordings: &[String]) -> String {
    let extra: usize = earlier_wordings.iter().map(String::len).sum();
    let mut text = String::with_capacity(content.len() + tags.len() * 8 + extra);
    text.push_str(content);
    // Word runs with a space each side, so "art" is not found in "start".
    let words = |text: &str| format!(" {} ", tokenize(text).join(" "));
    let said = words(content);
    let unsaid_tags = tags.iter().filter(|tag| !said.contains(&words(tag)));
    for part in unsaid_tags.chain(earlier_wordings) {
        text.push(' ');
        text.push_str(part);
    }
    text
}

#[cfg(test)]
mod tests {
    use membrain_store::Backend;
    use membrain_store::testing::TestDatabase;

    use super::*;

    #[test]
    fn lexical_text_adds_only_the_tags_the_content_does_not_say() {
        let tags = [
            "Bike Startup".to_owned(),
            "work".to_owned(),
            "lisbon".to_owned(),
            "art".to_owned(),
        ];
        let text = lexical_text(
            "I took a job at a bike   startup in Lisbon",
            &tags,
            &["I took a job in Porto".to_owned()],
        );
        assert_eq!(
            text,
            "I took a job at a bike   startup in Lisbon work art I took a job in Porto"
        );
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_held_index_is_seen_as_it_stands_and_an_unknown_one_is_not() {
        let database = TestDatabase::new(Backend::Sqlite).await;
        let store = database.store().await;
        let (a, b) = (tenant("a"), tenant("b"));
        let indexes = Indexes::new("model", 4, 1 << 20);
        assert!(indexes.as_held(&a).await.is_none(), "nothing held yet");
        let revision = indexes
            .current(&store, &a)
            .await
            .expect("a caught up")
            .revision;
        let held = indexes.as_held(&a).await.expect("a is held");
        assert_eq!(held.revision, revision, "as the catch-up left it");
        assert!(
            indexes.as_held(&b).await.is_none(),
            "a tenant never caught up (or dropped for the budget) is not held: the caller \
             catches up"
        );
    }
}
