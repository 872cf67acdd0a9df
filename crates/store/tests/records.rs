//! Lookup records on the records connection: each is readable once its call returns, and on a
//! SQLite file waiting for SQLite's write lock (a case's commit holding it) happens off the
//! runtime, so the runtime goes on meanwhile.
//!
//! SQLite always; PostgreSQL too when `GATEWAY_TEST_POSTGRES_URL` names a server.

mod common;

use common::Database;
use gateway_store::{LookupServes, Store};

fn serves(purpose: &str) -> LookupServes {
    LookupServes {
        purpose: purpose.into(),
        case_id: None,
        clerk: None,
    }
}

/// Concurrent lookups share commits; each call returns only once its own record is stored.
async fn every_record_is_stored_when_its_call_returns(store: &Store) {
    let calls = (0..64).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let purpose = format!("核验 {n}");
            store
                .lookup_begun("portal", "tax.clearance", &serves(&purpose))
                .ended("ok")
                .await
                .unwrap();
            let stored = store.lookup_records(1000).await.unwrap();
            assert!(
                stored.iter().any(|r| r.purpose == purpose),
                "record {n} not readable when its call returned"
            );
        })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap();
    }
    let stored = store.lookup_records(1000).await.unwrap();
    assert_eq!(stored.len(), 64);
    assert!(
        stored
            .iter()
            .all(|r| r.case_id.is_none() && r.clerk.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_records_are_stored_before_their_calls_return() {
    for database in Database::every("records").await {
        let store = Store::open(&database.url).await.unwrap();
        every_record_is_stored_when_its_call_returns(&store).await;
        drop(store);
        database.drop().await;
    }
}

/// A lookup alone has its record written while it runs (`pending`), and again with its
/// outcome when it ends: one record, read with its outcome once the lookup is answered.
async fn a_lookup_alone_is_recorded_as_it_begins_and_again_when_it_ends(store: &Store) {
    let recording = store.lookup_begun("portal", "tax.clearance", &serves("核验 独自"));
    let running = store.lookup_records(10).await.unwrap();
    assert_eq!(
        running.len(),
        1,
        "the record is written while the lookup runs"
    );
    assert_eq!(running[0].outcome, "pending");
    recording.ended("department_timeout").await.unwrap();
    let ended = store.lookup_records(10).await.unwrap();
    assert_eq!(ended.len(), 1, "written again, not twice");
    assert_eq!(ended[0].outcome, "department_timeout");
    assert_eq!(ended[0].at, running[0].at);
    assert_eq!(ended[0].purpose, "核验 独自");
}

/// A lookup dropped before it ended (its client gone) is recorded `cancelled`, whether it
/// began alone (its first write and its outcome may meet in one batch) or beside others.
async fn a_lookup_dropped_before_it_ended_is_recorded_cancelled(store: &Store) {
    drop(store.lookup_begun("portal", "tax.clearance", &serves("核验 甲")));
    let first = store.lookup_begun("portal", "tax.clearance", &serves("核验 乙"));
    drop(store.lookup_begun("portal", "tax.clearance", &serves("核验 丙")));
    first.ended("ok").await.unwrap();
    let mut stored: Vec<(String, String)> = store
        .lookup_records(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.purpose, r.outcome))
        .collect();
    stored.sort();
    let mut expected: Vec<(String, String)> = [
        ("核验 甲", "cancelled"),
        ("核验 乙", "ok"),
        ("核验 丙", "cancelled"),
    ]
    .iter()
    .map(|(p, o)| (p.to_string(), o.to_string()))
    .collect();
    expected.sort();
    assert_eq!(stored, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_is_recorded_with_how_it_ended_or_cancelled() {
    for database in Database::every("records_outcomes").await {
        let store = Store::open(&database.url).await.unwrap();
        a_lookup_alone_is_recorded_as_it_begins_and_again_when_it_ends(&store).await;
        sqlx::query("DELETE FROM lookup_records")
            .execute(store.pool())
            .await
            .unwrap();
        a_lookup_dropped_before_it_ended_is_recorded_cancelled(&store).await;
        drop(store);
        database.drop().await;
    }
}

/// On one thread, a lookup's record waits while a case's transaction holds SQLite's write
/// lock, the thread goes on with other work meanwhile (the transaction is committed from it),
/// and the record is stored once the lock is free. Written on the runtime's thread, the record
/// would block it in SQLite's busy handler until the timeout and fail.
#[tokio::test(flavor = "current_thread")]
async fn a_record_waiting_for_sqlites_write_lock_leaves_the_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::open(&url).await.unwrap();
    let mut case = store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("DELETE FROM lookup_records")
        .execute(&mut *case)
        .await
        .unwrap();
    let recording = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .lookup_begun("portal", "tax.clearance", &serves("核验"))
                .ended("ok")
                .await
        }
    });
    // The record is queued and waits for the lock; this thread is free to go on.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!recording.is_finished(), "stored while the lock was held");
    case.commit().await.unwrap();
    recording.await.unwrap().unwrap();
    assert_eq!(store.lookup_records(10).await.unwrap().len(), 1);
}

/// The WAL is checkpointed as records are written (SQLite's automatic checkpoint, which waits
/// for the disk, is off on the records connection, whose lookup records are written on the
/// runtime's thread): after thousands of commits, from lookups one after another and many at
/// once, the WAL holds a few thousand pages, not every page ever written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_as_records_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for n in 0..2000 {
        store
            .lookup_begun("portal", "tax.clearance", &serves(&format!("核验 {n}")))
            .ended("ok")
            .await
            .unwrap();
    }
    for round in 0..10 {
        let calls = (0..64).map(|n| {
            let store = store.clone();
            async move {
                let purpose = format!("核验 {round}-{n}");
                store
                    .lookup_begun("portal", "tax.clearance", &serves(&purpose))
                    .ended("ok")
                    .await
            }
        });
        for recorded in futures::future::join_all(calls).await {
            recorded.unwrap();
        }
    }
    // Each commit writes a page or more (a first write the table's and its key's), and a
    // lookup alone commits twice: without checkpoints the WAL would hold well over 4 800
    // pages (19 MiB). A passive checkpoint does not always
    // let the next commit start the WAL over, so on a busy machine it can span a few
    // checkpoint intervals (6.4 MiB seen in a full test run): the bound is about half of
    // what it reaches with no checkpoint at all.
    let wal = std::fs::metadata(dir.path().join("store.db-wal"))
        .unwrap()
        .len();
    assert!(wal < 10 << 20, "the WAL has grown to {wal} bytes");
    assert_eq!(store.lookup_records(5000).await.unwrap().len(), 2640);
}
