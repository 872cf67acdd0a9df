//! Materials in the store: files written in chunks as they arrive and found by SM3, stored once
//! whatever uploads them, read back by range; sealed chunks at rest; an unfinished upload
//! leaves nothing anyone names; drafts expire with their files, a case's files stay.
//!
//! SQLite always; PostgreSQL too when `GATEWAY_TEST_POSTGRES_URL` names a server.

use gateway_base::model::MaterialSource;
use gateway_store::at_rest::PayloadCipher;
use gateway_store::materials::{Attach, Attached, BlobInfo, NewCaseMaterial, NewMaterialSource};
mod common;

use common::Database;
use gateway_store::{Arrival, NewStep, Store};
use sqlx::Row as _;

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn sm3_hex(data: &[u8]) -> String {
    use sm3::Digest as _;
    hex::encode(sm3::Sm3::digest(data))
}

/// Upload `data` in pieces of `piece` bytes to a draft's material.
async fn upload(
    store: &Store,
    chunk: usize,
    data: &[u8],
    piece: usize,
    attach: Attach<'_>,
) -> Attached {
    let mut writer = store.blob_writer(chunk).await.unwrap();
    for part in data.chunks(piece.max(1)) {
        writer.write(part).await.unwrap();
    }
    writer.finish("application/pdf", attach).await.unwrap()
}

fn stored(attached: Attached) -> BlobInfo {
    match attached {
        Attached::Stored(blob) => blob,
        other => panic!("not stored: {other:?}"),
    }
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n")
}

fn cipher() -> std::sync::Arc<PayloadCipher> {
    use base64::Engine as _;
    let key = gateway_base::config::Cipher::Sm4Gcm.new_key();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    std::sync::Arc::new(
        PayloadCipher::new(&[gateway_base::config::PayloadKey {
            id: "k1".into(),
            cipher: gateway_base::config::Cipher::Sm4Gcm,
            bytes,
        }])
        .unwrap(),
    )
}

#[tokio::test]
async fn a_file_is_stored_in_chunks_once_by_its_sm3_and_read_back_by_range() {
    for db in Database::every("materials").await {
        for sealed in [false, true] {
            let store = Store::open(&db.url)
                .await
                .unwrap()
                .with_cipher(sealed.then(cipher));
            let draft = format!("d-{sealed}");
            store.create_draft(&draft, "portal", "s").await.unwrap();
            let data = bytes(10_000, sealed as u8);
            let blob = stored(
                upload(
                    &store,
                    1024,
                    &data,
                    777,
                    Attach::Draft {
                        draft_id: &draft,
                        code: "a",
                    },
                )
                .await,
            );
            assert_eq!(blob.sm3, sm3_hex(&data));
            assert_eq!((blob.size, blob.chunk_size), (10_000, 1024));
            // Every range, across chunk edges, at the end and past it.
            for (offset, max) in [
                (0, 10_000),
                (0, 1),
                (1023, 2),
                (1000, 5000),
                (9_990, 100),
                (10_000, 5),
                (3, 0),
            ] {
                let got = store
                    .read_blob(&blob.sm3, offset, max)
                    .await
                    .unwrap()
                    .unwrap();
                let end = (offset as usize + max).min(data.len());
                assert_eq!(got, data[(offset as usize).min(end)..end], "{offset}+{max}");
            }
            assert_eq!(store.read_blob(&"0".repeat(64), 0, 10).await.unwrap(), None);
            // The same bytes again, in other pieces, to another material: one file.
            let again = stored(
                upload(
                    &store,
                    4096,
                    &data,
                    10_000,
                    Attach::Draft {
                        draft_id: &draft,
                        code: "b",
                    },
                )
                .await,
            );
            assert_eq!(again, blob, "the first stored stands, its chunk size too");
            // The same material twice: refused, nothing changed, nothing left over.
            let twice = upload(
                &store,
                1024,
                &bytes(10, 9),
                10,
                Attach::Draft {
                    draft_id: &draft,
                    code: "a",
                },
            )
            .await;
            assert_eq!(twice, Attached::Taken);
            let materials = store.draft_materials(&draft).await.unwrap();
            assert_eq!(
                materials
                    .iter()
                    .map(|m| (m.code.as_str(), m.blob.sm3.as_str()))
                    .collect::<Vec<_>>(),
                [("a", blob.sm3.as_str()), ("b", blob.sm3.as_str())]
            );
            assert_eq!(
                upload(
                    &store,
                    1024,
                    &data,
                    100,
                    Attach::Draft {
                        draft_id: "nope",
                        code: "a"
                    }
                )
                .await,
                Attached::Gone
            );
            assert_eq!(count(&store, "material_uploads").await, 0);
            assert_eq!(count(&store, "material_upload_chunks").await, 0);
            // At rest: sealed and bound to the file and position, or base64.
            let chunks =
                sqlx::query("SELECT n, data FROM material_chunks WHERE sm3 = $1 ORDER BY n")
                    .bind(&blob.sm3)
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            assert_eq!(chunks.len(), 10);
            for row in &chunks {
                let text: String = row.get("data");
                assert_eq!(PayloadCipher::is_sealed(&text), sealed, "{}", &text[..20]);
            }
            if sealed {
                // Chunk 1 moved into chunk 0's place does not open.
                let one: String = chunks[1].get("data");
                sqlx::query("UPDATE material_chunks SET data = $1 WHERE sm3 = $2 AND n = 0")
                    .bind(one)
                    .bind(&blob.sm3)
                    .execute(store.pool())
                    .await
                    .unwrap();
                let error = store.read_blob(&blob.sm3, 0, 10).await.unwrap_err();
                assert!(error.to_string().contains("does not verify"), "{error}");
                // Put it back for the next run on this database.
                sqlx::query("DELETE FROM draft_materials")
                    .execute(store.pool())
                    .await
                    .unwrap();
                store.remove_unreferenced_blobs().await.unwrap();
            }
        }
        db.drop().await;
    }
}

#[tokio::test]
async fn an_unfinished_upload_leaves_nothing_anyone_names() {
    for db in Database::every("materials").await {
        let store = Store::open(&db.url).await.unwrap();
        store.create_draft("d", "portal", "s").await.unwrap();
        // Dropped half way (the client went away): removed in the background.
        let mut writer = store.blob_writer(100).await.unwrap();
        writer.write(&bytes(550, 1)).await.unwrap();
        assert_eq!(count(&store, "material_upload_chunks").await, 5);
        drop(writer);
        for _ in 0..100 {
            if count(&store, "material_uploads").await == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(count(&store, "material_uploads").await, 0);
        assert_eq!(count(&store, "material_upload_chunks").await, 0);
        // Aborted (refused): the same.
        let mut writer = store.blob_writer(100).await.unwrap();
        writer.write(&bytes(150, 1)).await.unwrap();
        writer.abort().await.unwrap();
        assert_eq!(count(&store, "material_upload_chunks").await, 0);
        // A node that died mid-upload: the sweep removes its upload once it is old.
        let mut writer = store.blob_writer(100).await.unwrap();
        writer.write(&bytes(150, 1)).await.unwrap();
        std::mem::forget(writer);
        assert_eq!(
            store.remove_stale_uploads(0).await.unwrap(),
            0,
            "not old yet"
        );
        assert_eq!(
            store
                .remove_stale_uploads(gateway_base::time::now_ms() + 1)
                .await
                .unwrap(),
            1
        );
        assert_eq!(count(&store, "material_upload_chunks").await, 0);
        assert_eq!(count(&store, "material_blobs").await, 0);
        assert!(store.draft_materials("d").await.unwrap().is_empty());
        db.drop().await;
    }
}

#[tokio::test]
async fn expired_drafts_go_with_their_files_and_a_cases_files_stay() {
    for db in Database::every("materials").await {
        let store = Store::open(&db.url).await.unwrap();
        store.create_draft("old", "portal", "s").await.unwrap();
        store.create_draft("kept", "portal", "s").await.unwrap();
        let only_old = stored(
            upload(
                &store,
                64,
                &bytes(100, 1),
                100,
                Attach::Draft {
                    draft_id: "old",
                    code: "a",
                },
            )
            .await,
        );
        let shared = stored(
            upload(
                &store,
                64,
                &bytes(100, 2),
                100,
                Attach::Draft {
                    draft_id: "old",
                    code: "b",
                },
            )
            .await,
        );
        stored(
            upload(
                &store,
                64,
                &bytes(100, 2),
                100,
                Attach::Draft {
                    draft_id: "kept",
                    code: "b",
                },
            )
            .await,
        );
        let in_case = stored(
            upload(
                &store,
                64,
                &bytes(100, 3),
                100,
                Attach::Draft {
                    draft_id: "kept",
                    code: "c",
                },
            )
            .await,
        );
        // "kept" becomes a case: its materials stay with the case.
        let admission = Arrival {
            client: Some("portal".into()),
            draft: Some("kept".into()),
            materials: vec![
                NewCaseMaterial {
                    code: "b".into(),
                    name: "乙".into(),
                    source: NewMaterialSource::File {
                        sm3: shared.sm3.clone(),
                    },
                },
                NewCaseMaterial {
                    code: "c".into(),
                    name: "丙".into(),
                    source: NewMaterialSource::File {
                        sm3: in_case.sm3.clone(),
                    },
                },
                NewCaseMaterial {
                    code: "d".into(),
                    name: "丁".into(),
                    source: NewMaterialSource::Promised { due: None },
                },
                NewCaseMaterial {
                    code: "e".into(),
                    name: "戊".into(),
                    source: NewMaterialSource::IssuedByStep {
                        kind: "business_licence".into(),
                    },
                },
            ],
            ..Arrival::default()
        };
        let steps = [NewStep {
            step: "main".into(),
            matter: "m".into(),
            department: "d".into(),
            after: vec![],
            input: "{}".into(),
        }];
        store
            .create_case(
                "case",
                "s",
                &serde_json::json!({}),
                &serde_json::json!({}),
                &steps,
                &admission,
            )
            .await
            .unwrap();
        // Consumed once: a second application on the same draft is refused whole.
        let error = store
            .create_case(
                "case2",
                "s",
                &serde_json::json!({}),
                &serde_json::json!({}),
                &steps,
                &admission,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, gateway_store::StoreError::Gone { what: "draft", .. }),
            "{error}"
        );
        assert!(store.case("case2").await.unwrap().is_none());
        // Everything older than now + 1 ms expires: the draft "old" only ("kept" is consumed).
        assert_eq!(
            store
                .remove_expired_drafts(gateway_base::time::now_ms() + 1)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.remove_unreferenced_blobs().await.unwrap(), 1);
        assert!(store.blob(&only_old.sm3).await.unwrap().is_none());
        assert_eq!(store.read_blob(&only_old.sm3, 0, 10).await.unwrap(), None);
        assert!(
            store.blob(&shared.sm3).await.unwrap().is_some(),
            "the case still refers to it"
        );
        assert_eq!(
            store
                .read_blob(&in_case.sm3, 0, 1000)
                .await
                .unwrap()
                .unwrap(),
            bytes(100, 3)
        );
        assert_eq!(
            count(&store, "material_chunks").await,
            4,
            "two files of two chunks"
        );
        // The case's materials as adapters get them: the step's licence is not issued yet.
        let refs = store.case_materials("case").await.unwrap();
        let codes: Vec<_> = refs.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["b", "c", "d"]);
        assert_eq!(
            refs[0].source,
            MaterialSource::File {
                media_type: "application/pdf".into(),
                size: 100,
                sm3: shared.sm3.clone()
            }
        );
        assert_eq!(refs[2].source, MaterialSource::Promised { due: None });
        // A promised material is provided later; one provided already is not replaced.
        let provided = upload(
            &store,
            64,
            &bytes(10, 4),
            10,
            Attach::Case {
                case_id: "case",
                code: "d",
                name: "丁",
                replace: false,
            },
        )
        .await;
        assert!(matches!(provided, Attached::Stored(_)));
        let again = upload(
            &store,
            64,
            &bytes(10, 5),
            10,
            Attach::Case {
                case_id: "case",
                code: "d",
                name: "丁",
                replace: false,
            },
        )
        .await;
        assert_eq!(again, Attached::Taken);
        let first = store.case_materials("case").await.unwrap()[2].clone();
        // 补正: a material a returned step asks for anew replaces the case's file.
        let anew = upload(
            &store,
            64,
            &bytes(10, 6),
            10,
            Attach::Case {
                case_id: "case",
                code: "d",
                name: "丁",
                replace: true,
            },
        )
        .await;
        assert!(matches!(anew, Attached::Stored(_)));
        let refs = store.case_materials("case").await.unwrap();
        assert!(matches!(
            &refs[2].source,
            MaterialSource::File { size: 10, .. }
        ));
        assert_ne!(
            refs[2].source, first.source,
            "the new file replaced the first"
        );
        db.drop().await;
    }
}
