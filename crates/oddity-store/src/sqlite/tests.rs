//! The conformance suite on SQLite, plus what is specific to this backend.

use super::*;
use crate::testsuite::{T0, batch, event, events_at, must_commit};

/// A store in a fresh temp dir, with tiny purge chunks so retention is exercised across many
/// transactions.
async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        purge_chunk_rows: 7,
        reader_pool_size: 2,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&dir.path().join("oddity.db"), options).unwrap();
    (dir, store)
}

crate::store_test_suite!(temp_store());

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/oddity.db");
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        must_commit(
            &store,
            batch(2, 0, events_at(2, 0, &[("u1", "login", T0)]), Vec::new()),
        )
        .await;
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.positions().await.unwrap(), BTreeMap::from([(2, 1)]));
    assert_eq!(store.events(&EventQuery::default()).await.unwrap().total, 1);
    assert_eq!(store.path(), path);
}

#[tokio::test]
async fn entity_counts_held_in_memory_are_recounted_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oddity.db");
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        // The first commit flushes nothing (the counts are not due yet); the store is then
        // dropped without `stats`, as a crash would leave it.
        must_commit(
            &store,
            batch(
                0,
                0,
                events_at(
                    0,
                    0,
                    &[
                        ("u1", "login", T0),
                        ("u1", "click", T0),
                        ("u2", "login", T0),
                    ],
                ),
                Vec::new(),
            ),
        )
        .await;
        let flushed: i64 = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT coalesce(sum(n), 0) FROM event_counts_by_entity",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(flushed, 0, "counts wait in memory");
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    must_commit(
        &store,
        batch(0, 3, events_at(0, 3, &[("u2", "login", T0)]), Vec::new()),
    )
    .await;
    let stats = store.stats(0).await.unwrap();
    assert_eq!(
        stats.top_entities_by_events,
        vec![("u1".to_owned(), 2), ("u2".to_owned(), 2)]
    );
    // Flushed now, and counted once even after another reopen.
    drop(store);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let stats = store.stats(0).await.unwrap();
    assert_eq!(
        stats.top_entities_by_events,
        vec![("u1".to_owned(), 2), ("u2".to_owned(), 2)]
    );
}

#[tokio::test]
async fn open_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oddity.db");
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported,
        }) => assert_eq!(supported, schema::LATEST_VERSION),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn zero_readers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        reader_pool_size: 0,
        ..SqliteOptions::default()
    };
    assert!(SqliteStore::open(&dir.path().join("x.db"), options).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_and_queries() {
    let (_dir, store) = temp_store().await;
    let mut tasks = Vec::new();
    for partition in 0..4u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..10u64 {
                let events = (0..50)
                    .map(|i| event(partition, b * 50 + i, "u", "click", T0))
                    .collect();
                must_commit(&store, batch(partition, b * 50, events, Vec::new())).await;
            }
        }));
    }
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let page = store.events(&EventQuery::default()).await.unwrap();
                assert!(page.total <= 2000);
                store.stats(0).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.events(&EventQuery::default()).await.unwrap().total,
        2000
    );
    assert_eq!(
        store
            .positions()
            .await
            .unwrap()
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![500; 4]
    );
}

#[tokio::test]
async fn page_size_applies_to_new_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oddity.db");
    let page_size = |p: &Path| {
        Connection::open(p)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get::<_, u32>(0))
            .unwrap()
    };
    drop(
        SqliteStore::open(
            &path,
            SqliteOptions {
                page_size: 8192,
                ..SqliteOptions::default()
            },
        )
        .unwrap(),
    );
    assert_eq!(page_size(&path), 8192);
    drop(
        SqliteStore::open(
            &path,
            SqliteOptions {
                page_size: 4096,
                ..SqliteOptions::default()
            },
        )
        .unwrap(),
    );
    assert_eq!(page_size(&path), 8192);
    let bad = SqliteOptions {
        page_size: 1000,
        ..SqliteOptions::default()
    };
    assert!(SqliteStore::open(&dir.path().join("bad.db"), bad).is_err());
}
