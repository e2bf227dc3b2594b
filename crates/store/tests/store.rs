//! Every storage behaviour, run once on SQLite and once on PostgreSQL.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

use std::time::Duration;

use membrain_auth::ApiKey;
use membrain_memory::text::content_hash;
use membrain_memory::{
    Embedding, EvolutionEvent, JobId, Limits, Memory, MemoryId, NewMemory, TenantId,
};
use membrain_store::testing::TestDatabase;
use membrain_store::*;

/// Declares each test once per backend: `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(
    keys_resolve_to_their_tenant_until_revoked,
    ingest_jobs_complete_and_exact_duplicates_merge,
    an_expired_lease_is_claimed_again,
    updates_keep_history_and_refuse_collisions,
    deletes_follow_their_selector_within_the_tenant,
    links_are_undirected_and_tenant_scoped,
    stats_count_one_tenant,
    export_pages_and_import_round_trip,
    listing_pages_newest_first_by_tag_within_the_tenant,
    a_large_import_batch_decides_as_one_by_one_would,
    a_lease_has_one_holder_until_it_expires_or_is_released,
    the_change_feed_brings_an_index_up_to_date,
    near_duplicates_merge_with_history_and_vectors,
    vectors_of_another_model_are_pending_until_remade,
    ingest_is_claimed_in_turns_across_tenants,
    a_batch_handed_back_for_another_tenant_keeps_its_place,
    a_claim_passes_over_the_tenants_it_is_told_to_skip,
    only_the_claim_holding_a_job_may_finish_it,
    quotas_refuse_what_would_cross_them,
    histories_and_merged_tags_stay_within_their_limits,
    usage_follows_every_write,
    deleting_a_memory_scrubs_its_jobs,
    pruning_drops_old_jobs_and_tombstones_and_indexes_reload,
    refused_texts_leave_the_embedding_queue,
    key_owners_are_known_even_when_revoked,
    a_database_from_before_the_bounds_migrates_whole,
);

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn prepared(content: &str, tags: &[&str]) -> PreparedMemory {
    let new = NewMemory::parse(
        content,
        Some(tags.iter().map(|t| t.to_string()).collect()),
        Some("facts".into()),
        &Limits::default(),
    )
    .unwrap();
    PreparedMemory {
        content_hash: content_hash(&new.content),
        keywords: membrain_memory::text::keywords(&new.content, 8),
        context: "ctx".into(),
        new,
        embedding: None,
        near_duplicate: None,
        links: vec![],
    }
}

/// What an ingest did, with the memory as stored afterwards.
struct Ingested {
    memory_id: MemoryId,
    action: IngestAction,
    memory: Memory,
}

/// Enqueues, claims and completes one ingest, as the worker does.
async fn ingest(store: &SqlStore, tenant: &TenantId, memory: PreparedMemory) -> Ingested {
    let request = IngestRequest {
        memory: memory.new.clone(),
        ingestion_scope: None,
    };
    let limits = Limits::default();
    store
        .enqueue_ingest(tenant, &request, &limits)
        .await
        .unwrap();
    let job = claim_one(store, Duration::from_secs(30))
        .await
        .expect("a job");
    let result = store.complete_ingest(&job, memory, &limits).await.unwrap();
    let memory = store
        .memories(tenant, &[result.memory_id])
        .await
        .unwrap()
        .pop()
        .expect("the ingested memory");
    Ingested {
        memory_id: result.memory_id,
        action: result.action,
        memory,
    }
}

/// Claims at most one job, as a worker with a batch of one would.
async fn claim_one(store: &SqlStore, lease: Duration) -> Option<IngestJob> {
    store
        .claim_ingest_jobs(lease, 1, None, &[])
        .await
        .unwrap()
        .pop()
}

async fn keys_resolve_to_their_tenant_until_revoked(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let key = ApiKey::generate();
    let record = store
        .create_key(&tenant("acme"), &key.hash(), "laptop")
        .await
        .unwrap();
    assert_eq!(
        store.tenant_for_key(&key.hash()).await.unwrap(),
        Some(tenant("acme"))
    );
    assert_eq!(
        store
            .tenant_for_key(&ApiKey::generate().hash())
            .await
            .unwrap(),
        None
    );
    let listed = store.list_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].label, "laptop");
    let revoked = store.revoke_key(&record.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(store.tenant_for_key(&key.hash()).await.unwrap(), None);
    assert!(matches!(
        store.revoke_key("key_nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn ingest_jobs_complete_and_exact_duplicates_merge(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    assert!(claim_one(&store, Duration::from_secs(30)).await.is_none());

    let first = ingest(&store, &t, prepared("User likes green tea", &["drinks"])).await;
    assert_eq!(first.action, IngestAction::Created);
    assert_eq!(first.memory.tags, vec!["drinks"]);

    let again = ingest(
        &store,
        &t,
        prepared("  user LIKES green   tea ", &["prefs"]),
    )
    .await;
    assert_eq!(again.action, IngestAction::Merged);
    assert_eq!(again.memory_id, first.memory_id);
    assert_eq!(again.memory.tags, vec!["drinks", "prefs"]);
    assert!(matches!(
        again.memory.evolution_history[0],
        EvolutionEvent::Merge { .. }
    ));

    // Another tenant's identical content is its own memory.
    let other = ingest(&store, &tenant("b"), prepared("User likes green tea", &[])).await;
    assert_eq!(other.action, IngestAction::Created);
    assert_ne!(other.memory_id, first.memory_id);

    // The finished job is readable by its tenant only.
    let request = IngestRequest {
        memory: prepared("x", &[]).new,
        ingestion_scope: None,
    };
    let job = store
        .enqueue_ingest(&t, &request, &Limits::default())
        .await
        .unwrap();
    let queued = store.ingest_job(&t, job.id).await.unwrap().unwrap();
    assert_eq!(queued.status, JobStatus::Queued);
    assert!(
        store
            .ingest_job(&tenant("b"), job.id)
            .await
            .unwrap()
            .is_none()
    );
    let claimed = claim_one(&store, Duration::from_secs(30)).await.unwrap();
    store
        .fail_ingest(
            &claimed,
            &JobError {
                code: "BAD".into(),
                message: "nope".into(),
            },
        )
        .await
        .unwrap();
    let failed = store.ingest_job(&t, job.id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.unwrap().code, "BAD");
}

async fn an_expired_lease_is_claimed_again(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let memory = prepared("Lease test", &[]);
    let request = IngestRequest {
        memory: memory.new.clone(),
        ingestion_scope: Some("^x".into()),
    };
    store
        .enqueue_ingest(&t, &request, &Limits::default())
        .await
        .unwrap();
    let first = claim_one(&store, Duration::from_millis(1)).await.unwrap();
    assert_eq!(first.request, request);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The first worker "crashed": its lease ran out and the job is handed out again.
    let second = claim_one(&store, Duration::from_secs(30)).await.unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempts, 2);
    assert!(claim_one(&store, Duration::from_secs(30)).await.is_none());
    store
        .complete_ingest(&second, memory.clone(), &Limits::default())
        .await
        .unwrap();
    // The late first worker cannot complete it twice.
    assert!(matches!(
        store
            .complete_ingest(&first, memory, &Limits::default())
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Requeue puts a claimed job back.
    store
        .enqueue_ingest(&t, &request, &Limits::default())
        .await
        .unwrap();
    let claimed = claim_one(&store, Duration::from_secs(30)).await.unwrap();
    store.requeue_ingest(&claimed).await.unwrap();
    assert!(claim_one(&store, Duration::from_secs(30)).await.is_some());
}

async fn updates_keep_history_and_refuse_collisions(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let tea = ingest(&store, &t, prepared("User likes tea", &["drinks"]))
        .await
        .memory_id;
    let coffee = ingest(&store, &t, prepared("User likes coffee", &[]))
        .await
        .memory_id;
    let change = |text: &str| PreparedContent {
        content: text.into(),
        content_hash: content_hash(text),
        keywords: vec!["matcha".into()],
        embedding: None,
    };
    let updated = store
        .update_memory(
            &t,
            tea,
            MemoryChange {
                content: Some(change("User now prefers matcha")),
                tags: Some(vec!["green".into()]),
                ..MemoryChange::default()
            },
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(updated.content, "User now prefers matcha");
    assert_eq!(updated.tags, vec!["green"]);
    assert!(
        updated.context.starts_with("A facts memory")
            && updated.context.contains("matcha")
            && !updated.context.contains("tea"),
        "the context follows the new content: {}",
        updated.context
    );
    match &updated.evolution_history[..] {
        [EvolutionEvent::ContentUpdate { old_content, .. }] => {
            assert_eq!(old_content, "User likes tea")
        }
        other => panic!("unexpected history {other:?}"),
    }
    assert!(matches!(
        store
            .update_memory(
                &t,
                tea,
                MemoryChange {
                    content: Some(change("user likes COFFEE")),
                    ..MemoryChange::default()
                },
                &Limits::default()
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .update_memory(
                &tenant("b"),
                coffee,
                MemoryChange {
                    tags: Some(vec![]),
                    ..MemoryChange::default()
                },
                &Limits::default()
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // The stored hash follows the content: the old text is free again.
    assert_eq!(
        store
            .memory_by_hash(&t, &content_hash("User likes tea"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .memory_by_hash(&t, &content_hash("user now prefers matcha"))
            .await
            .unwrap(),
        Some(tea)
    );
}

async fn deletes_follow_their_selector_within_the_tenant(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (a, b) = (tenant("a"), tenant("b"));
    let both = ingest(&store, &a, prepared("one", &["x", "y"]))
        .await
        .memory_id;
    let only_x = ingest(&store, &a, prepared("two", &["x"])).await.memory_id;
    let other_tenant = ingest(&store, &b, prepared("three", &["x", "y"]))
        .await
        .memory_id;
    store.link(&a, both, only_x, "related", None).await.unwrap();

    let filter = |tags: &[&str], category: Option<&str>| DeleteSelector::Filter {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        category: category.map(str::to_owned),
    };
    assert_eq!(
        store
            .delete_memories(&a, &filter(&["x", "y"], None))
            .await
            .unwrap(),
        vec![both]
    );
    assert!(
        store
            .delete_memories(&a, &filter(&["x"], Some("other")))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .delete_memories(&a, &filter(&[], Some("facts")))
            .await
            .unwrap(),
        vec![only_x]
    );
    assert!(matches!(
        store
            .delete_memories(&a, &DeleteSelector::Id(other_tenant))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.memories(&b, &[other_tenant]).await.unwrap().len(), 1);
    assert_eq!(store.stats(&a, 10).await.unwrap().total_links, 0);
}

async fn links_are_undirected_and_tenant_scoped(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (a, b) = (tenant("a"), tenant("b"));
    let x = ingest(&store, &a, prepared("x memory", &[]))
        .await
        .memory_id;
    let y = ingest(&store, &a, prepared("y memory", &[]))
        .await
        .memory_id;
    let foreign = ingest(&store, &b, prepared("z memory", &[]))
        .await
        .memory_id;

    store.link(&a, y, x, "first", None).await.unwrap();
    store
        .link(&a, x, y, "second description", None)
        .await
        .unwrap();
    assert!(matches!(
        store.link(&a, x, foreign, "no", None).await,
        Err(StoreError::NotFound { .. })
    ));

    let loaded = store.memories(&a, &[x, y]).await.unwrap();
    assert_eq!(loaded[0].links.len(), 1);
    assert_eq!(loaded[0].links[0].memory_id, y);
    assert_eq!(loaded[0].links[0].description, "second description");
    assert_eq!(loaded[1].links[0].memory_id, x);

    let edges = store.edges_from(&a, &[y]).await.unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!((edges[0].from, edges[0].to), (y, x));
    assert!(store.edges_from(&b, &[x, y]).await.unwrap().is_empty());
    assert!(store.memories(&b, &[x]).await.unwrap().is_empty());
    // Briefs: the same texts, in the order asked, only the tenant's own.
    let briefs = store.memory_briefs(&a, &[y, foreign, x]).await.unwrap();
    assert_eq!(briefs.iter().map(|b| b.id).collect::<Vec<_>>(), [y, x]);
    for (brief, full) in briefs.iter().zip([&loaded[1], &loaded[0]]) {
        assert_eq!(
            (&brief.content, &brief.context, &brief.tags, &brief.keywords),
            (&full.content, &full.context, &full.tags, &full.keywords)
        );
    }
    assert!(store.memory_briefs(&b, &[x]).await.unwrap().is_empty());

    assert!(!store.unlink(&b, x, y).await.unwrap());
    assert!(store.unlink(&a, y, x).await.unwrap());
    assert!(!store.unlink(&a, x, y).await.unwrap());
    // Links made at ingest only reach memories of the same tenant.
    let mut linked = prepared("w memory", &[]);
    linked.links = vec![
        PreparedLink {
            other: x,
            description: "made at ingest".into(),
            embedding: Some(vector(0.3)),
        },
        PreparedLink {
            other: foreign,
            description: "must be ignored".into(),
            embedding: None,
        },
    ];
    let w = ingest(&store, &a, linked).await;
    assert_eq!(w.memory.links.len(), 1);
    assert_eq!(w.memory.links[0].memory_id, x);
}

async fn stats_count_one_tenant(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let a = tenant("a");
    let m1 = ingest(&store, &a, prepared("alpha", &["x", "y"]))
        .await
        .memory_id;
    let m2 = ingest(&store, &a, prepared("beta", &["x"])).await.memory_id;
    ingest(&store, &tenant("b"), prepared("gamma", &["x"])).await;
    store.link(&a, m1, m2, "r", None).await.unwrap();
    let stats = store.stats(&a, 10).await.unwrap();
    assert_eq!(stats.total_memories, 2);
    assert_eq!(stats.total_links, 1);
    assert_eq!(
        stats.top_tags,
        vec![("x".to_owned(), 2), ("y".to_owned(), 1)]
    );
    assert_eq!(stats.categories, vec![("facts".to_owned(), 2)]);
}

async fn export_pages_and_import_round_trip(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (a, b) = (tenant("a"), tenant("b"));
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            ingest(&store, &a, prepared(&format!("memory number {i}"), &["n"]))
                .await
                .memory_id,
        );
    }
    store
        .link(&a, ids[0], ids[1], "neighbours", None)
        .await
        .unwrap();
    let page1 = store.export_memories(&a, None, 3).await.unwrap();
    let page2 = store
        .export_memories(&a, Some(page1[2].id), 3)
        .await
        .unwrap();
    assert_eq!(page1.len() + page2.len(), 5);
    let mut exported: Vec<MemoryId> = page1.iter().chain(&page2).map(|m| m.id).collect();
    exported.sort();
    ids.sort();
    assert_eq!(exported, ids);

    // Importing into another tenant of the same database gives fresh ids (ids are global).
    let m = &page1[0];
    let item = |m: &membrain_memory::Memory, embedding: Option<Embedding>| ImportItem {
        memory: m.clone(),
        content_hash: content_hash(&m.content),
        embedding,
    };
    let done = store
        .import_memories(
            &b,
            &[item(m, Some(vector(0.2))), item(m, None)],
            &Limits::default(),
        )
        .await
        .unwrap();
    let (new_id, outcome) = done[0];
    assert_eq!(outcome, ImportOutcome::Created);
    assert_ne!(new_id, m.id);
    assert_eq!(
        done[1],
        (new_id, ImportOutcome::Merged),
        "same content in one batch"
    );
    let (same, skipped) = store
        .import_memories(&a, &[item(m, None)], &Limits::default())
        .await
        .unwrap()[0];
    assert_eq!((same, skipped), (m.id, ImportOutcome::Skipped));
    let feed = store.index_changes(&b, -1, "test-model").await.unwrap();
    assert_eq!(
        feed.upserts[0].embedding.as_deref(),
        Some(&[0.2, 0.8, 0.5][..])
    );
    let copy = store.memories(&b, &[new_id]).await.unwrap().pop().unwrap();
    assert_eq!(copy.content, m.content);
    assert_eq!(copy.created_at, m.created_at);
}

/// A batch larger than one multi-row insert: repeated contents merge into the first, a repeated
/// id is skipped, tags are indexed for every created memory, and usage counts only what was
/// created, as importing the items one by one would.
async fn listing_pages_newest_first_by_tag_within_the_tenant(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("lister");
    for n in 0..5 {
        let tags: &[&str] = if n % 2 == 0 { &["even"] } else { &["odd"] };
        ingest(
            &store,
            &t,
            prepared(&format!("Listed fact number {n}"), tags),
        )
        .await;
    }
    ingest(&store, &tenant("other"), prepared("Not theirs", &["even"])).await;

    // Every page after the last one's end, until a short page: newest first, each memory once.
    let pages = async |tag: Option<&str>| {
        let mut seen: Vec<Memory> = Vec::new();
        loop {
            let listing = MemoryListing {
                tag: tag.map(str::to_owned),
                before: seen.last().map(|m| (m.created_at, m.id)),
                limit: 2,
            };
            let page = store.list_memories(&t, &listing).await.unwrap();
            let short = page.len() < 2;
            seen.extend(page);
            if short {
                return seen;
            }
        }
    };
    let all = pages(None).await;
    assert_eq!(all.len(), 5);
    let mut expected = all.clone();
    expected.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
    assert_eq!(all, expected);
    assert_eq!(all.last().unwrap().content, "Listed fact number 0");
    let even = pages(Some("even")).await;
    assert_eq!(
        even.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        [
            "Listed fact number 4",
            "Listed fact number 2",
            "Listed fact number 0"
        ]
    );
    let none = MemoryListing {
        tag: Some("absent".into()),
        before: None,
        limit: 10,
    };
    assert!(store.list_memories(&t, &none).await.unwrap().is_empty());
}

async fn a_large_import_batch_decides_as_one_by_one_would(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("bulk");
    let mut items: Vec<ImportItem> = (0..250)
        .map(|i| {
            let content = format!("imported memory number {}", i % 200);
            let mut tags = vec![format!("n{}", i % 200)];
            if i % 2 == 0 {
                tags.push("even".to_owned());
            }
            new_import_item(content, tags, (i % 3 == 0).then(|| vector(0.1)))
        })
        .collect();
    let first = items[0].clone();
    items.push(first.clone());
    let outcomes = store
        .import_memories(&t, &items, &Limits::default())
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 251);
    let count = |wanted: ImportOutcome| outcomes.iter().filter(|(_, o)| *o == wanted).count();
    assert_eq!(count(ImportOutcome::Created), 200);
    assert_eq!(count(ImportOutcome::Merged), 50);
    assert_eq!(outcomes[250], (first.memory.id, ImportOutcome::Skipped));
    for i in 200..250 {
        assert_eq!(
            outcomes[i],
            (outcomes[i - 200].0, ImportOutcome::Merged),
            "item {i}"
        );
    }
    assert_eq!(store.tenant_usage(&t).await.unwrap().memories, 200);
    let stats = store.stats(&t, 3).await.unwrap();
    assert_eq!(stats.total_memories, 200);
    assert_eq!(stats.top_tags[0], ("even".to_owned(), 100));
    let stored = store.memories(&t, &[outcomes[199].0]).await.unwrap();
    assert_eq!(stored[0].tags, ["n199"]);
    let deleted = store
        .delete_memories(
            &t,
            &DeleteSelector::Filter {
                tags: vec!["even".into()],
                category: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.len(), 100);
    assert_eq!(store.tenant_usage(&t).await.unwrap().memories, 100);
}

async fn a_lease_has_one_holder_until_it_expires_or_is_released(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let long = Duration::from_secs(60);
    assert!(store.hold_lease("backfill", "a", long).await.unwrap());
    assert!(!store.hold_lease("backfill", "b", long).await.unwrap());
    assert!(
        store.hold_lease("backfill", "a", long).await.unwrap(),
        "renewed"
    );
    // Another name is another lease.
    assert!(store.hold_lease("prune", "b", long).await.unwrap());
    // b's release of a lease it does not hold changes nothing; a's own release frees it.
    store.release_lease("backfill", "b").await.unwrap();
    assert!(!store.hold_lease("backfill", "b", long).await.unwrap());
    store.release_lease("backfill", "a").await.unwrap();
    // Short, but long enough that a loaded machine does not let it expire before the next
    // statement (50 ms once did, under the whole test suite).
    let short = Duration::from_secs(1);
    assert!(store.hold_lease("backfill", "b", short).await.unwrap());
    // A holder that stops renewing loses the lease once it expires.
    assert!(!store.hold_lease("backfill", "a", long).await.unwrap());
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert!(store.hold_lease("backfill", "a", long).await.unwrap());
    assert!(!store.hold_lease("backfill", "b", long).await.unwrap());
}

#[tokio::test]
async fn unsupported_urls_are_named() {
    let err = SqlStore::connect("mysql://x", &StoreOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mysql://x"));
}

mod transfer {
    use membrain_store::transfer::{export_tenant, import_tenant};

    use super::*;

    async fn round_trip(backend: Backend) {
        let source_db = TestDatabase::new(backend).await;
        let source = source_db.store().await;
        let t = tenant("a");
        let x = ingest(&source, &t, prepared("User likes tea", &["drinks"]))
            .await
            .memory_id;
        let y = ingest(&source, &t, prepared("User likes cake", &["food"]))
            .await
            .memory_id;
        source
            .link(&t, x, y, "afternoon treats", None)
            .await
            .unwrap();

        let mut exported = Vec::new();
        let report = export_tenant(&source, &t, &mut exported).await.unwrap();
        assert_eq!((report.memories, report.links), (2, 1));
        assert_eq!(
            String::from_utf8(exported.clone()).unwrap().lines().count(),
            3
        );

        // Into a fresh database on the other backend: same ids, same link.
        let other = match backend {
            Backend::Sqlite => Backend::Postgres,
            Backend::Postgres => Backend::Sqlite,
        };
        let target_db = TestDatabase::new(other).await;
        let target = target_db.store().await;
        let mut seen = 0;
        let imported = import_tenant(
            &target,
            &t,
            &mut exported.as_slice(),
            &Limits::default(),
            &mut |b| seen = b,
        )
        .await
        .unwrap();
        assert_eq!((imported.created, imported.links), (2, 1));
        assert_eq!(seen, exported.len() as u64);
        let memories = target.memories(&t, &[x, y]).await.unwrap();
        assert_eq!(memories.len(), 2);
        assert_eq!(memories[0].links[0].description, "afternoon treats");

        // Again: everything is already there.
        let again = import_tenant(
            &target,
            &t,
            &mut exported.as_slice(),
            &Limits::default(),
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!((again.created, again.skipped), (0, 2));

        // A broken line is reported with its number, and nothing after it is imported.
        let bad = b"{\"type\":\"memory\"}\n";
        let err = import_tenant(
            &target,
            &tenant("c"),
            &mut bad.as_slice(),
            &Limits::default(),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().starts_with("line 1:"), "{err}");
    }

    #[tokio::test]
    async fn sqlite_export_imports_into_postgres() {
        round_trip(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres_export_imports_into_sqlite() {
        round_trip(Backend::Postgres).await;
    }
}

/// A bulk import outgrows PostgreSQL's statistics faster than autovacuum refreshes them, and
/// stale statistics plan lookups by id as a scan of the whole tenant: the import analyses the
/// table itself once enough of it changed.
#[tokio::test]
async fn a_bulk_import_refreshes_postgres_statistics() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = db.store().await;
    let t = tenant("bulk");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let analysed = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'memories'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert!(!analysed().await, "a fresh database was analysed already");
    // PostgreSQL publishes a connection's row counts at most once a second: batches a second
    // apart, until the counts say half the table is new (the first time: at 1,000 rows).
    for batch in 0..10 {
        let items: Vec<ImportItem> = (0..600)
            .map(|i| {
                new_import_item(
                    format!("bulk memory {batch}-{i}"),
                    vec!["bulk".into()],
                    None,
                )
            })
            .collect();
        store
            .import_memories(&t, &items, &Limits::default())
            .await
            .unwrap();
        if analysed().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    panic!("6,000 imported memories and the table was never analysed");
}

/// Production connects to RDS with `sslmode=require`; the driver must speak TLS (the test server,
/// like Debian's default PostgreSQL, has `ssl = on`).
#[tokio::test]
async fn postgres_connections_can_require_tls() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let url = format!("{}?sslmode=require", db.url);
    let store = SqlStore::connect(&url, &StoreOptions::default())
        .await
        .expect("a TLS connection");
    store.ping().await.unwrap();
    assert_eq!(
        store.stats(&tenant("tls"), 5).await.unwrap().total_memories,
        0
    );
}

/// A memory as an export carries it, new to every database.
fn new_import_item(content: String, tags: Vec<String>, embedding: Option<Embedding>) -> ImportItem {
    let now = chrono::Utc::now();
    ImportItem {
        content_hash: content_hash(&content),
        memory: Memory {
            id: MemoryId::new(),
            content,
            tags,
            category: "facts".to_owned(),
            context: "ctx".to_owned(),
            keywords: vec![],
            links: vec![],
            evolution_history: vec![],
            evolution_history_dropped: 0,
            observed_at: now,
            created_at: now,
            updated_at: now,
        },
        embedding,
    }
}

fn vector(seed: f32) -> Embedding {
    Embedding::new("test-model", vec![seed, 1.0 - seed, 0.5])
}

async fn the_change_feed_brings_an_index_up_to_date(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let a = tenant("a");
    assert_eq!(store.tenant_revision(&a).await.unwrap(), 0);
    let mut first = prepared("the cat sleeps", &["pets"]);
    first.embedding = Some(vector(0.25));
    let cat = ingest(&store, &a, first).await.memory_id;
    let dog = ingest(&store, &a, prepared("the dog barks", &["pets"]))
        .await
        .memory_id;
    ingest(&store, &tenant("b"), prepared("another tenant", &[])).await;

    let everything = store.index_changes(&a, -1, "test-model").await.unwrap();
    assert_eq!(
        everything.revision, 2,
        "one revision per change, per tenant"
    );
    let ids: Vec<MemoryId> = everything.upserts.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![cat, dog], "revision order, this tenant only");
    assert_eq!(
        everything.upserts[0].embedding.as_deref(),
        Some(&[0.25, 0.75, 0.5][..])
    );
    assert_eq!(everything.upserts[1].embedding, None, "not embedded yet");
    let other_model = store.index_changes(&a, -1, "other").await.unwrap();
    assert_eq!(
        other_model.upserts[0].embedding, None,
        "a vector of another model is never handed out"
    );

    let since = everything.revision;
    assert!(
        store
            .index_changes(&a, since, "test-model")
            .await
            .unwrap()
            .upserts
            .is_empty()
    );
    // A corrected observation time reaches the index with the new tags.
    let observed: chrono::DateTime<chrono::Utc> = "2023-05-08T13:56:00Z".parse().unwrap();
    let updated = store
        .update_memory(
            &a,
            dog,
            MemoryChange {
                tags: Some(vec!["loud".into()]),
                observed_at: Some(observed),
                ..MemoryChange::default()
            },
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(updated.observed_at, observed);
    assert!(
        updated.evolution_history.is_empty(),
        "only a content change is history: {:?}",
        updated.evolution_history
    );
    store
        .delete_memories(&a, &DeleteSelector::Id(cat))
        .await
        .unwrap();
    let later = store.index_changes(&a, since, "test-model").await.unwrap();
    assert_eq!(later.revision, 4);
    assert_eq!(later.upserts.len(), 1);
    assert_eq!(later.upserts[0].id, dog);
    assert_eq!(later.upserts[0].tags, vec!["loud".to_owned()]);
    assert_eq!(later.upserts[0].observed_at, observed.timestamp_micros());
    assert_eq!(later.removals, vec![(cat, 4)]);
    assert_eq!(store.tenant_revision(&a).await.unwrap(), 4);
}

async fn near_duplicates_merge_with_history_and_vectors(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let a = tenant("a");
    let old = ingest(&store, &a, prepared("User lives in Paris", &["home"]))
        .await
        .memory_id;
    let mut again = prepared("The user's home is in Paris", &["city"]);
    again.embedding = Some(vector(0.5));
    again.near_duplicate = Some(membrain_memory::ingest::SimilarMemory {
        id: old,
        similarity: 0.93,
    });
    let done = ingest(&store, &a, again).await;
    assert_eq!(done.memory_id, old, "merged, not stored twice");
    assert_eq!(done.action, IngestAction::Merged);
    assert_eq!(done.memory.content, "The user's home is in Paris");
    assert_eq!(done.memory.tags, vec!["home".to_owned(), "city".to_owned()]);
    match &done.memory.evolution_history[..] {
        [
            EvolutionEvent::NearDuplicateMerge {
                old_content,
                similarity,
                merged_tags,
                ..
            },
        ] => {
            assert_eq!(old_content, "User lives in Paris");
            assert!((similarity - 0.93).abs() < 1e-6);
            assert_eq!(merged_tags, &vec!["city".to_owned()]);
        }
        other => panic!("unexpected history {other:?}"),
    }
    assert_eq!(store.stats(&a, 5).await.unwrap().total_memories, 1);
    let feed = store.index_changes(&a, -1, "test-model").await.unwrap();
    assert_eq!(
        feed.upserts[0].embedding.as_deref(),
        Some(&[0.5, 0.5, 0.5][..])
    );
    // The old wording's hash is released: it can be stored again as its own memory.
    let back = ingest(&store, &a, prepared("User lives in Paris", &[])).await;
    assert_eq!(back.action, IngestAction::Created);
}

async fn vectors_of_another_model_are_pending_until_remade(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let a = tenant("a");
    let mut with_old = prepared("coffee every morning", &[]);
    with_old.embedding = Some(Embedding::new("old-model", vec![1.0, 0.0, 0.0]));
    let x = ingest(&store, &a, with_old).await.memory_id;
    let y = ingest(&store, &a, prepared("tea at night", &[]))
        .await
        .memory_id;
    store
        .link(&a, x, y, "both are drinks", Some(&vector(0.1)))
        .await
        .unwrap();
    let pending = store.pending_embeddings("test-model", 10).await.unwrap();
    let targets: Vec<EmbeddingTarget> = pending.iter().map(|p| p.target).collect();
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert!(targets.contains(&EmbeddingTarget::Memory(x)));
    assert!(targets.contains(&EmbeddingTarget::Memory(y)));
    let before = store.tenant_revision(&a).await.unwrap();
    let done: Vec<(PendingEmbedding, Embedding)> =
        pending.into_iter().map(|p| (p, vector(0.9))).collect();
    store.store_embeddings(&done).await.unwrap();
    assert!(
        store
            .pending_embeddings("test-model", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store.tenant_revision(&a).await.unwrap() > before,
        "indexes must notice"
    );
    let edges = store.edges_from(&a, &[x]).await.unwrap();
    assert_eq!(edges[0].embedding, Some(vector(0.1)));
    // Another model: links are pending too.
    assert_eq!(
        store.pending_embeddings("newer", 10).await.unwrap().len(),
        3
    );
}

fn request(content: &str) -> IngestRequest {
    IngestRequest {
        memory: prepared(content, &[]).new,
        ingestion_scope: None,
    }
}

async fn ingest_is_claimed_in_turns_across_tenants(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let limits = Limits::default();
    let (a, b, c) = (tenant("a"), tenant("b"), tenant("c"));
    // Tenant a queues a burst first; tenants b and c one job each, after all of it.
    for i in 0..40 {
        store
            .enqueue_ingest(&a, &request(&format!("a burst {i}")), &limits)
            .await
            .unwrap();
    }
    let b_job = store
        .enqueue_ingest(&b, &request("b's one memory"), &limits)
        .await
        .unwrap();
    let c_job = store
        .enqueue_ingest(&c, &request("c's one memory"), &limits)
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    // A worker that has served no one yet starts with the first tenant: a's oldest 16, in order.
    let first = store.claim_ingest_jobs(lease, 16, None, &[]).await.unwrap();
    assert_eq!(first.len(), 16);
    assert!(
        first.iter().all(|job| job.tenant == a),
        "one tenant per batch"
    );
    assert!(first.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    // After a, b's turn then c's, though a still has 24 jobs older than theirs.
    let second = store
        .claim_ingest_jobs(lease, 16, Some(&a), &[])
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![b_job.id],
        "b's job is next, not behind a's burst"
    );
    let third = store
        .claim_ingest_jobs(lease, 16, Some(&b), &[])
        .await
        .unwrap();
    assert_eq!(
        third.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![c_job.id]
    );
    // After the last tenant the turn wraps around to a; every job is claimed once.
    let rest = store
        .claim_ingest_jobs(lease, 100, Some(&c), &[])
        .await
        .unwrap();
    assert_eq!(rest.len(), 24);
    assert!(rest.iter().all(|job| job.tenant == a));
    assert!(rest.iter().all(|j| !first.iter().any(|f| f.id == j.id)));
    assert!(
        store
            .claim_ingest_jobs(lease, 16, Some(&a), &[])
            .await
            .unwrap()
            .is_empty(),
        "nothing is left to claim"
    );
}

/// A worker passes over the tenants whose batches its fellow workers hold, so a burst of one
/// tenant never has both workers while another tenant's job waits.
async fn a_claim_passes_over_the_tenants_it_is_told_to_skip(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let limits = Limits::default();
    let (a, b, c) = (tenant("a"), tenant("b"), tenant("c"));
    for i in 0..10 {
        store
            .enqueue_ingest(&a, &request(&format!("a burst {i}")), &limits)
            .await
            .unwrap();
    }
    for t in [&b, &c] {
        store
            .enqueue_ingest(t, &request(&format!("{t}'s one memory")), &limits)
            .await
            .unwrap();
    }
    let lease = Duration::from_secs(30);
    let tenants = |jobs: &[IngestJob]| {
        jobs.iter()
            .map(|job| job.tenant.clone())
            .collect::<Vec<_>>()
    };
    // Skipping a, the first turn is b's, though a comes first and has the oldest jobs.
    let first = store
        .claim_ingest_jobs(lease, 4, None, std::slice::from_ref(&a))
        .await
        .unwrap();
    assert_eq!(tenants(&first), vec![b.clone()]);
    // After c's turn the claim wraps around, still past a: to nobody, once c's job is taken.
    let second = store
        .claim_ingest_jobs(lease, 4, Some(&b), &[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(tenants(&second), vec![c.clone()]);
    let none = store
        .claim_ingest_jobs(lease, 4, Some(&c), std::slice::from_ref(&a))
        .await
        .unwrap();
    assert!(
        none.is_empty(),
        "only a's jobs are left: {:?}",
        tenants(&none)
    );
    // Skipping nobody, a's jobs are claimed as before.
    let rest = store
        .claim_ingest_jobs(lease, 4, Some(&c), &[])
        .await
        .unwrap();
    assert_eq!(tenants(&rest), vec![a.clone(); 4]);
}

/// A worker that sees another tenant waiting hands the rest of its batch back: the jobs are
/// queued again as they were (oldest first, the attempt not counted), and only its own claim can
/// hand them back.
async fn a_batch_handed_back_for_another_tenant_keeps_its_place(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let limits = Limits::default();
    let (a, b) = (tenant("a"), tenant("b"));
    for i in 0..4 {
        store
            .enqueue_ingest(&a, &request(&format!("a {i}")), &limits)
            .await
            .unwrap();
    }
    let lease = Duration::from_secs(30);
    let batch = store.claim_ingest_jobs(lease, 4, None, &[]).await.unwrap();
    assert_eq!(batch.len(), 4);
    assert!(!store.other_tenant_waiting(&a).await.unwrap(), "a alone");
    store
        .enqueue_ingest(&b, &request("b's one memory"), &limits)
        .await
        .unwrap();
    assert!(store.other_tenant_waiting(&a).await.unwrap());
    assert!(
        !store.other_tenant_waiting(&b).await.unwrap(),
        "only b waits"
    );

    // Handed back: the last three of a's batch (the first was done).
    let (_, rest) = batch.split_at(1);
    assert_eq!(store.release_ingest_jobs(rest).await.unwrap(), 3);
    for job in rest {
        let now = store.ingest_job(&a, job.id).await.unwrap().unwrap();
        assert_eq!(now.status, JobStatus::Queued);
        assert_eq!(
            now.attempts,
            job.attempts - 1,
            "the claim is not an attempt"
        );
    }
    // A stale hand-back (the claim no longer holds them) changes nothing.
    assert_eq!(store.release_ingest_jobs(rest).await.unwrap(), 0);
    // b's turn comes next; then a's three, in their order.
    let next = store
        .claim_ingest_jobs(lease, 4, Some(&a), &[])
        .await
        .unwrap();
    assert!(next.iter().all(|job| job.tenant == b) && next.len() == 1);
    let again = store
        .claim_ingest_jobs(lease, 4, Some(&b), &[])
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|job| job.id).collect::<Vec<_>>(),
        rest.iter().map(|job| job.id).collect::<Vec<_>>()
    );
}

async fn only_the_claim_holding_a_job_may_finish_it(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let limits = Limits::default();
    let t = tenant("a");
    let job = store
        .enqueue_ingest(&t, &request("lease owner"), &limits)
        .await
        .unwrap();
    let first = claim_one(&store, Duration::from_millis(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = claim_one(&store, Duration::from_secs(30)).await.unwrap();
    assert_eq!(second.id, job.id);
    assert_ne!(first.lease, second.lease);
    // The first claim lost the job: it can neither renew, fail nor requeue it.
    let held = [(first.id, first.lease.clone().unwrap())];
    assert_eq!(
        store
            .renew_ingest_leases(&held, Duration::from_secs(30))
            .await
            .unwrap(),
        0
    );
    let error = JobError {
        code: "X".into(),
        message: "late".into(),
    };
    assert!(matches!(
        store.fail_ingest(&first, &error).await,
        Err(StoreError::Conflict(_))
    ));
    store.requeue_ingest(&first).await.unwrap();
    assert_eq!(
        store.ingest_job(&t, job.id).await.unwrap().unwrap().status,
        JobStatus::Running,
        "a stale requeue leaves the new owner's job alone"
    );
    // The second claim renews and completes it.
    let held = [(second.id, second.lease.clone().unwrap())];
    assert_eq!(
        store
            .renew_ingest_leases(&held, Duration::from_secs(30))
            .await
            .unwrap(),
        1
    );
    store
        .complete_ingest(&second, prepared("lease owner", &[]), &limits)
        .await
        .unwrap();
    let done = store.ingest_job(&t, job.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert!(matches!(
        store.fail_ingest(&second, &error).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.ingest_job(&t, job.id).await.unwrap().unwrap().status,
        JobStatus::Completed,
        "a completed job is never marked failed afterwards"
    );
}

async fn quotas_refuse_what_would_cross_them(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let limits = Limits {
        max_memories_per_tenant: 2,
        max_pending_jobs_per_tenant: 2,
        max_stored_bytes_per_tenant: 10_000,
        ..Limits::default()
    };
    ingest(&store, &t, prepared("first fact", &[])).await;
    // One memory stored and one job waiting reach the memory quota of 2.
    store
        .enqueue_ingest(&t, &request("second fact"), &limits)
        .await
        .unwrap();
    let refused = store
        .enqueue_ingest(&t, &request("third fact"), &limits)
        .await
        .unwrap_err();
    match refused {
        StoreError::QuotaExceeded(message) => assert!(message.contains("quota is 2"), "{message}"),
        other => panic!("expected a quota error, got {other:?}"),
    }
    // Another tenant is not affected.
    store
        .enqueue_ingest(&tenant("b"), &request("third fact"), &limits)
        .await
        .unwrap();
    // The quota also holds at completion (jobs queued before it was lowered).
    let job = claim_one(&store, Duration::from_secs(30)).await.unwrap();
    let tight = Limits {
        max_memories_per_tenant: 1,
        ..limits.clone()
    };
    assert!(matches!(
        store
            .complete_ingest(&job, prepared(&job.request.memory.content, &[]), &tight)
            .await,
        Err(StoreError::QuotaExceeded(_))
    ));
    // Bytes: content larger than what is left is refused at the door.
    let big = Limits {
        max_stored_bytes_per_tenant: 20,
        ..Limits::default()
    };
    assert!(matches!(
        store
            .enqueue_ingest(&tenant("c"), &request(&"x".repeat(50)), &big)
            .await,
        Err(StoreError::QuotaExceeded(_))
    ));
}

async fn histories_and_merged_tags_stay_within_their_limits(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let limits = Limits {
        max_history_entries: 3,
        max_tags: 4,
        ..Limits::default()
    };
    let id = ingest(&store, &t, prepared("version 0", &["a", "b"]))
        .await
        .memory_id;
    for i in 1..=6 {
        let text = format!("version {i}");
        store
            .update_memory(
                &t,
                id,
                MemoryChange {
                    content: Some(PreparedContent {
                        content_hash: content_hash(&text),
                        keywords: vec![],
                        content: text,
                        embedding: None,
                    }),
                    ..MemoryChange::default()
                },
                &limits,
            )
            .await
            .unwrap();
    }
    let memory = store.memories(&t, &[id]).await.unwrap().pop().unwrap();
    assert_eq!(memory.evolution_history.len(), 3);
    assert_eq!(memory.evolution_history_dropped, 3);
    match &memory.evolution_history[2] {
        EvolutionEvent::ContentUpdate { old_content, .. } => assert_eq!(old_content, "version 5"),
        other => panic!("unexpected {other:?}"),
    }
    // An exact duplicate with many new tags merges only up to the tag limit.
    let job_request = IngestRequest {
        memory: prepared("version 6", &["c", "d", "e", "f"]).new,
        ingestion_scope: None,
    };
    store
        .enqueue_ingest(&t, &job_request, &limits)
        .await
        .unwrap();
    let job = claim_one(&store, Duration::from_secs(30)).await.unwrap();
    store
        .complete_ingest(&job, prepared("version 6", &["c", "d", "e", "f"]), &limits)
        .await
        .unwrap();
    let memory = store.memories(&t, &[id]).await.unwrap().pop().unwrap();
    assert_eq!(memory.tags, vec!["a", "b", "c", "d"]);
    assert_eq!(memory.evolution_history.len(), 3);
    assert_eq!(memory.evolution_history_dropped, 4);
}

async fn usage_follows_every_write(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let empty = store.tenant_usage(&t).await.unwrap();
    assert_eq!((empty.memories, empty.stored_bytes), (0, 0));
    let one = ingest(&store, &t, prepared("twelve bytes", &["x"])).await;
    ingest(&store, &t, prepared("another memory", &[])).await;
    let usage = store.tenant_usage(&t).await.unwrap();
    assert_eq!(usage.memories, 2);
    // Content plus the empty history "[]" of each.
    assert_eq!(usage.stored_bytes, (12 + 2) + (14 + 2));
    store
        .update_memory(
            &t,
            one.memory_id,
            MemoryChange {
                content: Some(PreparedContent {
                    content_hash: content_hash("short"),
                    keywords: vec![],
                    content: "short".into(),
                    embedding: None,
                }),
                ..MemoryChange::default()
            },
            &Limits::default(),
        )
        .await
        .unwrap();
    let memory = store
        .memories(&t, &[one.memory_id])
        .await
        .unwrap()
        .pop()
        .unwrap();
    let history = serde_json::to_string(&memory.evolution_history).unwrap();
    let usage = store.tenant_usage(&t).await.unwrap();
    assert_eq!(usage.stored_bytes, (5 + history.len() as i64) + (14 + 2));
    store
        .delete_memories(&t, &DeleteSelector::Id(one.memory_id))
        .await
        .unwrap();
    let usage = store.tenant_usage(&t).await.unwrap();
    assert_eq!((usage.memories, usage.stored_bytes), (1, 14 + 2));
    assert_eq!(store.tenant_usage(&tenant("b")).await.unwrap().memories, 0);
}

async fn deleting_a_memory_scrubs_its_jobs(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let limits = Limits::default();
    let secret = "the safe code is 4711";
    let job = store
        .enqueue_ingest(&t, &request(secret), &limits)
        .await
        .unwrap();
    let claimed = claim_one(&store, Duration::from_secs(30)).await.unwrap();
    let result = store
        .complete_ingest(&claimed, prepared(secret, &[]), &limits)
        .await
        .unwrap();
    let finished = store.ingest_job(&t, job.id).await.unwrap().unwrap();
    assert_eq!(finished.request.memory.content, secret);
    assert_eq!(finished.result.unwrap().memory_id, result.memory_id);
    store
        .delete_memories(&t, &DeleteSelector::Id(result.memory_id))
        .await
        .unwrap();
    let scrubbed = store.ingest_job(&t, job.id).await.unwrap().unwrap();
    assert_eq!(scrubbed.request.memory.content, "");
    assert!(scrubbed.request.memory.tags.is_empty());
    assert_eq!(scrubbed.status, JobStatus::Completed);
}

async fn pruning_drops_old_jobs_and_tombstones_and_indexes_reload(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let keep = ingest(&store, &t, prepared("kept memory", &[]))
        .await
        .memory_id;
    let gone = ingest(&store, &t, prepared("deleted memory", &[]))
        .await
        .memory_id;
    let before_delete = store.tenant_revision(&t).await.unwrap();
    store
        .delete_memories(&t, &DeleteSelector::Id(gone))
        .await
        .unwrap();
    let queued = store
        .enqueue_ingest(&t, &request("still waiting"), &Limits::default())
        .await
        .unwrap();
    // Nothing is old enough yet.
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(store.prune(past, past).await.unwrap(), Pruned::default());
    // Everything finished before now goes; a queued job stays.
    let future = chrono::Utc::now() + chrono::Duration::seconds(1);
    let pruned = store.prune(future, future).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            jobs: 2,
            tombstones: 1
        }
    );
    assert!(store.ingest_job(&t, queued.id).await.unwrap().is_some());
    // An index that held the deleted memory cannot learn of the deletion from the feed any
    // more: it is told to load the tenant afresh.
    let changes = store
        .index_changes(&t, before_delete, "test-model")
        .await
        .unwrap();
    assert!(changes.full);
    let ids: Vec<_> = changes.upserts.iter().map(|u| u.id).collect();
    assert_eq!(ids, vec![keep]);
    // An index that is current needs nothing.
    let now = store.tenant_revision(&t).await.unwrap();
    let nothing = store.index_changes(&t, now, "test-model").await.unwrap();
    assert!(!nothing.full && nothing.upserts.is_empty());
}

async fn refused_texts_leave_the_embedding_queue(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let t = tenant("a");
    let poison = ingest(&store, &t, prepared("a text the service refuses", &[]))
        .await
        .memory_id;
    ingest(&store, &t, prepared("a normal text", &[])).await;
    let pending = store.pending_embeddings("m", 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let refused: Vec<_> = pending
        .iter()
        .filter(|p| p.target == EmbeddingTarget::Memory(poison))
        .cloned()
        .collect();
    store.refuse_embeddings(&refused, "m").await.unwrap();
    let pending = store.pending_embeddings("m", 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_ne!(pending[0].target, EmbeddingTarget::Memory(poison));
    // Another model is asked again; so is this one once the text changes.
    assert_eq!(
        store.pending_embeddings("other", 10).await.unwrap().len(),
        2
    );
    store
        .update_memory(
            &t,
            poison,
            MemoryChange {
                content: Some(PreparedContent {
                    content_hash: content_hash("rewritten text"),
                    keywords: vec![],
                    content: "rewritten text".into(),
                    embedding: None,
                }),
                ..MemoryChange::default()
            },
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(store.pending_embeddings("m", 10).await.unwrap().len(), 2);
}

async fn key_owners_are_known_even_when_revoked(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let key = ApiKey::generate();
    assert_eq!(store.key_owner(&key.hash()).await.unwrap(), None);
    let record = store
        .create_key(&tenant("acme"), &key.hash(), "k")
        .await
        .unwrap();
    assert_eq!(
        store.key_owner(&key.hash()).await.unwrap(),
        Some(KeyOwner {
            tenant: tenant("acme"),
            revoked: false
        })
    );
    store.revoke_key(&record.id).await.unwrap();
    assert_eq!(
        store.key_owner(&key.hash()).await.unwrap(),
        Some(KeyOwner {
            tenant: tenant("acme"),
            revoked: true
        })
    );
}

/// A database written by the previous release (migrations 0001–0002) keeps working after
/// migration 0003: finished jobs point at their memory without a copy, and usage is counted.
async fn a_database_from_before_the_bounds_migrates_whole(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let mut old = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    old.migrations = std::borrow::Cow::Owned(old.migrations[..2].to_vec());
    sqlx::any::install_default_drivers();
    let url = if backend == Backend::Sqlite {
        format!("{}?mode=rwc", db.url)
    } else {
        db.url.clone()
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    old.run(&pool).await.unwrap();
    let id = MemoryId::new();
    let memory_json = serde_json::json!({
        "id": id, "content": "old fact", "tags": [], "category": "general", "context": "",
        "keywords": [], "links": [], "evolution_history": [],
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    });
    let result = serde_json::json!({
        "status": "success", "memory_id": id, "action": "created", "memory": memory_json,
    });
    sqlx::query(
        "INSERT INTO memories (id, tenant_id, content, content_hash, tags, category, context, \
         keywords, evolution_history, created_at, updated_at, revision) \
         VALUES ($1, 'a', 'old fact', $2, '[]', 'general', '', '[]', '[]', 0, 0, 1)",
    )
    .bind(id.to_string())
    .bind(content_hash("old fact"))
    .execute(&pool)
    .await
    .unwrap();
    let job = JobId::new();
    sqlx::query(
        "INSERT INTO ingest_jobs (id, tenant_id, status, request, result, attempts, created_at, \
         completed_at) VALUES ($1, 'a', 'completed', $2, $3, 1, 0, 0)",
    )
    .bind(job.to_string())
    .bind(serde_json::to_string(&request("old fact")).unwrap())
    .bind(result.to_string())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = db.store().await;
    let t = tenant("a");
    let migrated = store.ingest_job(&t, job).await.unwrap().unwrap();
    assert_eq!(migrated.result.unwrap().memory_id, id);
    let usage = store.tenant_usage(&t).await.unwrap();
    assert_eq!(usage.memories, 1);
    assert_eq!(usage.stored_bytes, "old fact".len() as i64 + 2);
    // The job follows its memory's deletion like any new one.
    store
        .delete_memories(&t, &DeleteSelector::Id(id))
        .await
        .unwrap();
    let scrubbed = store.ingest_job(&t, job).await.unwrap().unwrap();
    assert_eq!(scrubbed.request.memory.content, "");
    assert_eq!(store.tenant_usage(&t).await.unwrap().memories, 0);
}
