//! The schema is one versioned migration set, run when the store opens: on an empty database,
//! on a store made before migrations were versioned (with and without the columns added after
//! its first release), on a store at version 1 with cases (brought to 2, the materials), and
//! again on an up-to-date store, where it changes nothing.
//!
//! SQLite always; PostgreSQL too when `GATEWAY_TEST_POSTGRES_URL` names a server (a fresh
//! database on it per case, dropped afterwards).

mod common;

use common::Database;
use gateway_base::model::StepState;
use gateway_store::{Arrival, NewStep, Store};
use sqlx::Connection as _;

/// The tables as the gateway created them before versioned migrations, as of its first release
/// (`cases.client` and `steps.input_codes` came later).
const FIRST_RELEASE: &[&str] = &[
    "CREATE TABLE cases (id TEXT PRIMARY KEY, service TEXT NOT NULL, form TEXT NOT NULL,
        lookups TEXT NOT NULL, idempotency_key TEXT, request_digest TEXT, created_at BIGINT NOT NULL)",
    "CREATE TABLE steps (case_id TEXT NOT NULL REFERENCES cases(id), step TEXT NOT NULL,
        matter TEXT NOT NULL, department TEXT NOT NULL, state TEXT NOT NULL, reference TEXT,
        outputs TEXT NOT NULL, message TEXT, input TEXT NOT NULL, attempts BIGINT NOT NULL,
        idempotency_key TEXT NOT NULL, next_attempt_at BIGINT NOT NULL, next_poll_at BIGINT NOT NULL,
        claimed_by TEXT, claim_until BIGINT, updated_at BIGINT NOT NULL, PRIMARY KEY (case_id, step))",
    "CREATE TABLE events (id TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases(id),
        at BIGINT NOT NULL, step TEXT, department TEXT, kind TEXT NOT NULL, clerk TEXT,
        state TEXT, message TEXT)",
    "INSERT INTO cases VALUES ('old-case', 'tax.registration', '{\"a\":1}', '{}', NULL, NULL, 1700000000000)",
    "INSERT INTO steps VALUES ('old-case', 'main', 'tax.registration', 'tax', 'processing',
        'SW1', '{}', NULL, '{\"taxpayer_id\":\"91350100M000100Y43\"}', 1, 'k1', 0, 0, NULL, NULL, 1700000000000)",
];

/// Run `statements` on `db` before any store opens it.
async fn run(db: &Database, statements: &[&str]) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
}

/// The version of every migration file (`NNNN_name.sql`): a store is brought to all of them,
/// whichever part of a change added one.
fn every_version() -> Vec<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
        })
        .collect();
    versions.sort();
    versions
}

async fn versions(store: &Store) -> Vec<i64> {
    use sqlx::Row as _;
    sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i64, _>("version"))
        .collect()
}

fn new_case() -> (Vec<NewStep>, Arrival) {
    let steps = vec![NewStep {
        step: "main".into(),
        matter: "tax.registration".into(),
        department: "tax".into(),
        after: Vec::new(),
        input: r#"{"taxpayer_id":"91350100M000100Y43"}"#.into(),
    }];
    let admission = Arrival {
        client: Some("portal".into()),
        ..Arrival::default()
    };
    (steps, admission)
}

#[tokio::test]
async fn an_empty_database_gets_every_table_and_the_version() {
    for db in Database::every("migrations").await {
        let store = Store::open(&db.url).await.unwrap();
        assert_eq!(versions(&store).await, every_version());
        let (steps, admission) = new_case();
        let form = serde_json::json!({"a": 1});
        store
            .create_case(
                "c1",
                "tax.registration",
                &form,
                &serde_json::json!({}),
                &steps,
                &admission,
            )
            .await
            .unwrap();
        assert_eq!(
            store.case("c1").await.unwrap().unwrap().client.as_deref(),
            Some("portal")
        );
        assert!(store.licences_of_case("c1").await.unwrap().is_empty());
        assert!(
            gateway_store::registry::routes(&store)
                .await
                .unwrap()
                .is_empty()
        );
        // The console's audit verifications: none yet, then the last one kept.
        use gateway_store::verifications::{AuditVerification, VerificationProblem};
        assert_eq!(store.last_audit_verification().await.unwrap(), None);
        let verification = |at: i64, ok: bool| AuditVerification {
            at,
            node: "hall-a".into(),
            operator: "ops1".into(),
            ok,
            chains: 2,
            records: 40,
            seals: 3,
            unsealed: 5,
            signatures_checked: true,
            problems: if ok {
                Vec::new()
            } else {
                vec![VerificationProblem {
                    node: "hall-b".into(),
                    seq: 7,
                    what: "hash mismatch".into(),
                }]
            },
        };
        store
            .record_audit_verification(&verification(1_000, true))
            .await
            .unwrap();
        store
            .record_audit_verification(&verification(2_000, false))
            .await
            .unwrap();
        assert_eq!(
            store.last_audit_verification().await.unwrap(),
            Some(verification(2_000, false))
        );
        // Opening again changes nothing and runs nothing twice.
        drop(store);
        let again = Store::open(&db.url).await.unwrap();
        assert_eq!(versions(&again).await, every_version());
        assert!(again.case("c1").await.unwrap().is_some());
        assert_eq!(
            again.last_audit_verification().await.unwrap(),
            Some(verification(2_000, false)),
            "kept across a restart"
        );
        drop(again);
        db.drop().await;
    }
}

#[tokio::test]
async fn a_store_from_before_versioned_migrations_is_brought_up_to_date_with_its_cases() {
    for db in Database::every("migrations").await {
        run(&db, FIRST_RELEASE).await;
        let store = Store::open(&db.url).await.unwrap();
        assert_eq!(versions(&store).await, every_version());
        // The old case reads as it was, with the columns it did not have.
        let case = store
            .case("old-case")
            .await
            .unwrap()
            .expect("the old case is kept");
        assert_eq!(case.form, serde_json::json!({"a": 1}));
        assert_eq!(case.client, None);
        let steps = store.steps("old-case").await.unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].state, StepState::Processing);
        assert_eq!(steps[0].reference.as_deref(), Some("SW1"));
        // And the store works as a new one: new cases, licences and adapter routes.
        let (steps, admission) = new_case();
        store
            .create_case(
                "c2",
                "tax.registration",
                &serde_json::json!({}),
                &serde_json::json!({}),
                &steps,
                &admission,
            )
            .await
            .unwrap();
        assert_eq!(
            store.case("c2").await.unwrap().unwrap().client.as_deref(),
            Some("portal")
        );
        assert!(
            gateway_store::registry::routes(&store)
                .await
                .unwrap()
                .is_empty()
        );
        drop(store);
        db.drop().await;
    }
}

#[tokio::test]
async fn an_unknown_step_state_is_an_error_not_a_guess() {
    let db = Database::sqlite();
    let store = Store::open(&db.url).await.unwrap();
    let (steps, admission) = new_case();
    store
        .create_case(
            "c3",
            "tax.registration",
            &serde_json::json!({}),
            &serde_json::json!({}),
            &steps,
            &admission,
        )
        .await
        .unwrap();
    sqlx::query("UPDATE steps SET state = 'finished' WHERE case_id = 'c3'")
        .execute(store.pool())
        .await
        .unwrap();
    let error = store.steps("c3").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`finished` is not a known state or event"),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_at_version_1_with_cases_gets_the_materials_and_keeps_its_cases() {
    use gateway_store::materials::{Attach, Attached, NewCaseMaterial, NewMaterialSource};
    for db in Database::every("migrations").await {
        // Version 1 exactly as it shipped: its file alone, run by a migrator of its own.
        let only_first = tempfile::tempdir().unwrap();
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_initial.sql"),
            only_first.path().join("0001_initial.sql"),
        )
        .unwrap();
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        sqlx::migrate::Migrator::new(only_first.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        for statement in [
            "INSERT INTO cases (id, service, form, lookups, created_at, client)
             VALUES ('old-case', 'tax.registration', '{\"a\":1}', '{}', 1700000000000, 'portal')",
            "INSERT INTO steps (case_id, step, matter, department, state, outputs, input, attempts,
                 idempotency_key, next_attempt_at, next_poll_at, updated_at)
             VALUES ('old-case', 'main', 'tax.registration', 'tax', 'processing', '{}', '{}', 1,
                 'k1', 0, 0, 1700000000000)",
        ] {
            sqlx::query(statement).execute(&mut *conn).await.unwrap();
        }
        drop(conn);
        pool.close().await;

        let store = Store::open(&db.url).await.unwrap();
        assert_eq!(versions(&store).await, every_version());
        let old = store.case("old-case").await.unwrap().expect("kept");
        assert_eq!(old.form, serde_json::json!({"a": 1}));
        assert!(store.case_materials("old-case").await.unwrap().is_empty());
        // The new tables work: a draft, an upload to it, a case that consumes it.
        store
            .create_draft("d1", "portal", "tax.registration")
            .await
            .unwrap();
        let mut writer = store.blob_writer(4).await.unwrap();
        writer.write(b"%PDF-1.7 %%EOF").await.unwrap();
        let Attached::Stored(blob) = writer
            .finish(
                "application/pdf",
                Attach::Draft {
                    draft_id: "d1",
                    code: "a",
                },
            )
            .await
            .unwrap()
        else {
            panic!("not stored")
        };
        let (steps, mut admission) = new_case();
        admission.draft = Some("d1".into());
        admission.materials = vec![NewCaseMaterial {
            code: "a".into(),
            name: "甲".into(),
            source: NewMaterialSource::File {
                sm3: blob.sm3.clone(),
            },
        }];
        store
            .create_case(
                "c4",
                "tax.registration",
                &serde_json::json!({}),
                &serde_json::json!({}),
                &steps,
                &admission,
            )
            .await
            .unwrap();
        assert!(store.draft("d1").await.unwrap().is_none(), "consumed");
        assert_eq!(store.case_materials("c4").await.unwrap().len(), 1);
        drop(store);
        db.drop().await;
    }
}
