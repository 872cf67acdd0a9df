//! `Store::due_deliveries`: steps another node has claimed are not fetched again, and the batch
//! takes departments in turns, so one department's backlog never fills it.
//!
//! SQLite always; PostgreSQL too when `GATEWAY_TEST_POSTGRES_URL` names a server (a fresh
//! database on it, dropped afterwards).

mod common;

use common::Database;
use gateway_store::{Arrival, NewStep, Store};

async fn check(store: &Store) {
    // 40 cases for a slow department, then one for another, each with one pending step.
    let arrival = Arrival {
        idempotency_key: None,
        request_digest: String::new(),
        clerk: None,
        client: None,
        ..Arrival::default()
    };
    let step = |department: &str| NewStep {
        step: "main".into(),
        matter: format!("{department}.matter"),
        department: department.into(),
        after: Vec::new(),
        input: "{}".into(),
    };
    for i in 0..40 {
        let id = format!("slow-{i:02}");
        store
            .create_case(
                &id,
                "s",
                &serde_json::json!({}),
                &serde_json::json!({}),
                &[step("slow")],
                &arrival,
            )
            .await
            .unwrap();
    }
    store
        .create_case(
            "other-00",
            "s",
            &serde_json::json!({}),
            &serde_json::json!({}),
            &[step("other")],
            &arrival,
        )
        .await
        .unwrap();
    // Due from now on (created "now": wait one millisecond so every step is due).
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;

    let due = store.due_deliveries(8).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|s| s.case_id.as_str()).collect();
    assert_eq!(ids.len(), 8);
    assert!(
        ids.contains(&"other-00"),
        "the other department's step is in the first batch: {ids:?}"
    );
    assert_eq!(
        ids.iter().filter(|id| id.starts_with("slow")).count(),
        7,
        "{ids:?}"
    );
    assert_eq!(ids[0], "slow-00", "each department's oldest first");

    // Another node claims the first ten slow steps: they are not fetched again.
    let until = gateway_base::time::now_ms() + 60_000;
    let all = store.due_deliveries(100).await.unwrap();
    let mut claimed = 0;
    for s in all.iter().filter(|s| s.department == "slow").take(10) {
        assert!(store.claim_delivery(s, "node-b", until).await.unwrap());
        claimed += 1;
    }
    assert_eq!(claimed, 10);
    let due = store.due_deliveries(100).await.unwrap();
    assert_eq!(due.len(), 41 - 10, "claimed steps are skipped");
    assert!(
        due.iter()
            .all(|s| s.case_id.as_str() >= "slow-10" || s.case_id == "other-00"),
        "none of the claimed ones"
    );
    // Once the claims expire (the node died), they are due again.
    assert_eq!(store.release_claims("node-b").await.unwrap(), 10);
    assert_eq!(store.due_deliveries(100).await.unwrap().len(), 41);
}

#[tokio::test]
async fn claimed_steps_are_skipped_and_departments_take_turns() {
    for database in Database::every("due").await {
        let store = Store::open(&database.url).await.unwrap();
        check(&store).await;
        drop(store);
        database.drop().await;
    }
}
