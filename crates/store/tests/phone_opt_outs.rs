//! 退订 by number in the store: an applicant's unsubscribe reply opts out every case with the
//! number, found by its keyed digest — across a key rotation and for contacts stored before
//! the digest existed — and a case registering the number later starts opted out; the number
//! is in no column in clear when payloads are sealed.
//!
//! SQLite always; PostgreSQL too when `GATEWAY_TEST_POSTGRES_URL` names a server.

mod common;

use common::Database;
use gateway_base::config::{Cipher, PayloadKey};
use gateway_store::at_rest::PayloadCipher;
use gateway_store::{Arrival, NewStep, Store};
use sqlx::Row as _;
use std::sync::Arc;

const PHONE: &str = "13912345678";
const OTHER: &str = "13800138000";

fn key(id: &str) -> PayloadKey {
    use base64::Engine as _;
    PayloadKey {
        id: id.into(),
        cipher: Cipher::Sm4Gcm,
        bytes: base64::engine::general_purpose::STANDARD
            .decode(Cipher::Sm4Gcm.new_key())
            .unwrap(),
    }
}

async fn case(store: &Store, id: &str) {
    let steps = [NewStep {
        step: "main".into(),
        matter: "m".into(),
        department: "d".into(),
        after: vec![],
        input: "{}".into(),
    }];
    store
        .create_case(
            id,
            "s",
            &serde_json::json!({}),
            &serde_json::json!({}),
            &steps,
            &Arrival::default(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reply_opts_out_every_case_with_the_number_across_a_key_rotation() {
    for database in Database::every("opt_outs").await {
        let url = database.url.clone();
        let (k1, k2) = (key("k1"), key("k2"));
        let old = Store::open(&url).await.unwrap().with_cipher(Some(Arc::new(
            PayloadCipher::new(std::slice::from_ref(&k1)).unwrap(),
        )));
        for (id, phone) in [("x", PHONE), ("y", PHONE), ("z", OTHER), ("p", PHONE)] {
            case(&old, id).await;
            old.set_case_contact(id, Some(phone), None).await.unwrap();
        }
        // The portal opted p out itself: it stays the portal's.
        old.set_case_contact("p", None, Some(true)).await.unwrap();
        // x as stored before its digest existed (migration 0006).
        sqlx::query("UPDATE case_contacts SET phone_digest = NULL WHERE case_id = 'x'")
            .execute(old.pool())
            .await
            .unwrap();
        drop(old);

        // k2 is current now; k1 still opens (and digests) what it made.
        let store = Store::open(&url)
            .await
            .unwrap()
            .with_cipher(Some(Arc::new(PayloadCipher::new(&[k2, k1]).unwrap())));
        let opted = store
            .record_phone_opt_out("sms", PHONE, "reply:MO1")
            .await
            .unwrap();
        assert_eq!(opted, 2, "x and y (p was opted out already)");
        for (id, opt_out, by) in [
            ("x", true, Some("reply")),
            ("y", true, Some("reply")),
            ("p", true, Some("portal")),
            ("z", false, None),
        ] {
            let contact = store.case_contact(id).await.unwrap().unwrap();
            assert_eq!(
                (contact.opt_out, contact.opted_out_by.as_deref()),
                (opt_out, by),
                "{id}"
            );
        }
        // A repeated reply changes nothing.
        assert_eq!(
            store
                .record_phone_opt_out("sms", PHONE, "reply:MO2")
                .await
                .unwrap(),
            0
        );
        // Registered later: opted out from the start, unless the portal says otherwise.
        case(&store, "w").await;
        let w = store
            .set_case_contact("w", Some(PHONE), None)
            .await
            .unwrap();
        assert_eq!(
            (w.opt_out, w.opted_out_by.as_deref()),
            (true, Some("reply"))
        );
        let w = store
            .set_case_contact("w", None, Some(false))
            .await
            .unwrap();
        assert_eq!((w.opt_out, w.opted_out_by), (false, None));
        case(&store, "v").await;
        let v = store
            .set_case_contact("v", Some(OTHER), None)
            .await
            .unwrap();
        assert!(!v.opt_out);

        // No number in clear anywhere: sealed, masked, digested.
        for table in ["case_contacts", "phone_opt_outs"] {
            let rows = sqlx::query(&format!("SELECT * FROM {table}"))
                .fetch_all(store.pool())
                .await
                .unwrap();
            assert!(!rows.is_empty());
            for row in &rows {
                for i in 0..row.len() {
                    let text: Option<String> = row.try_get(i).unwrap_or(None);
                    let text = text.unwrap_or_default();
                    assert!(
                        !text.contains(PHONE) && !text.contains(OTHER),
                        "{table}: {text}"
                    );
                }
            }
        }
        let masked: String = sqlx::query("SELECT phone_masked FROM phone_opt_outs")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("phone_masked");
        assert_eq!(masked, "139****5678");
        drop(store);
        database.drop().await;
    }
}
