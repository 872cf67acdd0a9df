//! The market-regulation adapter's exports against a scripted department (`sdk::testing`): the
//! OAuth2 token obtained once, cached for its lifetime less the margin, renewed on a 401.

use market_regulation_adapter::MarketRegulation;
use market_regulation_adapter::protocol::{ENTERPRISE, TOKEN_CACHE_KEY};
use sdk::testing::{Exchange, Harness, TestKey};
use sdk::{Adapter, AdapterError};
use serde_json::{Value, json};
use std::time::Duration;

const USCC: &str = "91350100M000100Y43";

fn harness() -> Harness {
    Harness::new()
        .setting("client-id", "gateway")
        .setting("client-secret", "p@ss word")
        .key("callback-secret", TestKey::hmac("cb"))
}

fn token_grant(token: &str, expires_in: u64) -> Exchange {
    Exchange::post("/oauth/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header_absent("Authorization")
        .body("grant_type=client_credentials&client_id=gateway&client_secret=p%40ss+word")
        .respond_json(
            200,
            &json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}),
        )
}

fn enterprise(token: &str) -> Exchange {
    Exchange::get(format!("/api/enterprises/{USCC}"))
        .header("Authorization", format!("Bearer {token}"))
        .respond_json(
            200,
            &json!({"uscc": USCC, "name": "福州演示餐饮有限公司", "address": "福州市鼓楼区五四路2号",
                    "legalRepresentative": "李四", "registeredCapital": 100, "status": "存续"}),
        )
}

fn lookup() -> Result<String, AdapterError> {
    MarketRegulation::lookup(ENTERPRISE.into(), json!({"credit_code": USCC}).to_string())
}

#[test]
fn the_token_is_obtained_once_and_cached() {
    let harness = harness()
        .expect(token_grant("t-1", 3600))
        .expect(enterprise("t-1"))
        // The second lookup reuses the cached token: no grant in between.
        .expect(enterprise("t-1"));
    let answer: Value = serde_json::from_str(&lookup().unwrap()).unwrap();
    assert_eq!(answer["name"], "福州演示餐饮有限公司");
    assert_eq!(answer["legal_representative"], "李四");
    lookup().unwrap();
    assert_eq!(
        harness.cache_value(TOKEN_CACHE_KEY).as_deref(),
        Some(&b"t-1"[..])
    );
    harness.finish();
}

#[test]
fn the_token_expires_30_seconds_before_the_department_says() {
    let harness = harness()
        .expect(token_grant("t-1", 3600))
        .expect(enterprise("t-1"))
        .expect(enterprise("t-1"))
        .expect(token_grant("t-2", 3600))
        .expect(enterprise("t-2"));
    lookup().unwrap();
    harness.advance(Duration::from_secs(3600 - 30) - Duration::from_millis(1));
    lookup().unwrap();
    harness.advance(Duration::from_millis(1));
    assert_eq!(harness.cache_value(TOKEN_CACHE_KEY), None);
    lookup().unwrap();
    harness.finish();
}

#[test]
fn a_refused_token_is_renewed_and_the_call_retried_once() {
    let harness = harness()
        .cached(TOKEN_CACHE_KEY, "stale", 60_000)
        .expect(
            Exchange::get(format!("/api/enterprises/{USCC}"))
                .header("Authorization", "Bearer stale")
                .respond_json(401, &json!({"error": "invalid_token"})),
        )
        .expect(token_grant("t-2", 3600))
        .expect(enterprise("t-2"));
    lookup().unwrap();
    assert_eq!(
        harness.cache_value(TOKEN_CACHE_KEY).as_deref(),
        Some(&b"t-2"[..])
    );
    assert!(harness.logs().iter().any(|l| l.contains("token refused")));
    harness.finish();
}

#[test]
fn a_fresh_token_refused_again_is_a_protocol_error() {
    let refused = || {
        Exchange::get(format!("/api/enterprises/{USCC}"))
            .respond_json(401, &json!({"error": "invalid_token"}))
    };
    let harness = harness()
        .expect(token_grant("t-1", 3600))
        .expect(refused())
        .expect(token_grant("t-2", 3600))
        .expect(refused());
    assert!(matches!(lookup(), Err(AdapterError::Protocol(_))));
    harness.finish();
}

#[test]
fn wrong_client_credentials_are_for_an_operator() {
    let harness = harness().expect(
        Exchange::post("/oauth/token").respond_json(401, &json!({"error": "invalid_client"})),
    );
    let error = lookup().unwrap_err();
    assert!(matches!(error, AdapterError::Internal(m) if m.contains("client-secret")));
    harness.finish();
}

// ---- materials: uploaded in chunks before the application that names them ----

use market_regulation_adapter::protocol::FOOD_PERMIT;
use sdk::LicenceRef;

const PERMIT: &str = r#"{"credit_code":"91350100M000100Y43","enterprise_name":"福州测试科技有限公司",
    "address":"福州市鼓楼区五四路1号","legal_representative":{"name":"张三","id_number":"11010519491231002X"},
    "business_items":["热食类食品制售"],"premises_area":120.5}"#;
const CALLBACK: &str = "https://gw.example/callbacks/market-regulation";
const MIB: usize = 1 << 20;

/// 2.5 MiB that are not a pattern: three chunks of 1 MiB, the last a half.
fn rules() -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes
        .extend((0..(5 * MIB / 2) as u32 - 9).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    bytes
}

fn licence() -> LicenceRef {
    LicenceRef {
        id: "1.2.156.3005.2.11350100003501011L001.11350100003501011L.2025AB.001.X".into(),
        kind: "business_licence".into(),
        number: "350100000000001".into(),
    }
}

fn with_materials(bytes: &[u8]) -> Harness {
    harness()
        .cached(TOKEN_CACHE_KEY, "t-1", 60_000)
        .material(
            "food-safety-rules",
            "食品安全管理制度",
            "application/pdf",
            bytes.to_vec(),
        )
        .licence("business-licence", "营业执照", licence())
}

fn submit(harness: &Harness) -> Result<sdk::Receipt, AdapterError> {
    MarketRegulation::submit(sdk::Submission {
        case_id: "case-1".into(),
        matter: FOOD_PERMIT.into(),
        idempotency_key: "case-1:food_permit".into(),
        payload: PERMIT.into(),
        callback_url: CALLBACK.into(),
        materials: harness.materials(),
    })
}

fn open(received: &[u64], status: &str) -> Exchange {
    Exchange::post("/v2/files")
        .header("Authorization", "Bearer t-1")
        .body_json(|open| {
            assert_eq!(open["requestId"], "case-1:food_permit");
            assert_eq!(open["code"], "food-safety-rules");
            assert_eq!(open["size"], rules().len());
            assert_eq!(open["sm3"], sdk::sign::sm3_hex(&rules()));
            assert_eq!(open["chunkSize"], MIB);
        })
        .respond_json(
            201,
            &json!({"fileId": "F-7", "chunkSize": MIB, "chunks": 3, "received": received,
                    "status": status}),
        )
}

fn chunk(n: usize, bytes: &[u8]) -> Exchange {
    let part = bytes[n * MIB..((n + 1) * MIB).min(bytes.len())].to_vec();
    Exchange::new("PUT", format!("/v2/files/F-7/chunks/{n}"))
        .header("Authorization", "Bearer t-1")
        .header("X-Chunk-SM3", sdk::sign::sm3_hex(&part))
        .streams("food-safety-rules")
        .body(part)
        .respond_json(200, &json!({"fileId": "F-7", "chunk": n}))
}

fn complete(bytes: &[u8]) -> Exchange {
    let whole = json!({"sm3": sdk::sign::sm3_hex(bytes), "size": bytes.len()});
    let expected = whole.clone();
    Exchange::post("/v2/files/F-7/complete")
        .body_json(move |body| assert_eq!(*body, expected))
        .respond_json(
            200,
            &json!({"fileId": "F-7", "status": "COMPLETE", "sm3": whole["sm3"], "size": whole["size"]}),
        )
}

fn application() -> Exchange {
    Exchange::post("/api/food-permits")
        .header("Authorization", "Bearer t-1")
        .body_json(|application| {
            assert_eq!(application["requestId"], "case-1:food_permit");
            assert_eq!(
                application["materials"],
                json!([
                    {"code": "business-licence", "name": "营业执照",
                     "licence": {"id": licence().id, "kind": "business_licence", "number": "350100000000001"}},
                    {"code": "food-safety-rules", "name": "食品安全管理制度", "fileId": "F-7"},
                ])
            );
        })
        .respond_json(202, &json!({"applicationNo": "SPJY1", "status": "ACCEPTED"}))
}

#[test]
fn files_go_up_in_chunks_with_their_sm3_before_the_application_names_them() {
    let bytes = rules();
    let harness = with_materials(&bytes)
        .expect(open(&[], "UPLOADING"))
        .expect(chunk(0, &bytes))
        .expect(chunk(1, &bytes))
        .expect(chunk(2, &bytes))
        .expect(complete(&bytes))
        .expect(application());
    assert_eq!(submit(&harness).unwrap().reference, "SPJY1");
    // Read through for the chunks' digests, a host read at a time; the bytes sent were
    // streamed by the host.
    let read: usize = harness.reads().iter().map(|r| r.got).sum();
    assert_eq!(read, bytes.len());
    assert!(
        harness
            .reads()
            .iter()
            .all(|r| r.max <= sdk::materials::READ_MAX)
    );
    harness.finish();
}

#[test]
fn an_upload_cut_off_resumes_where_the_department_stands() {
    let bytes = rules();
    // After a crash the department has chunk 0 (and 2): only chunk 1 goes again.
    let harness = with_materials(&bytes)
        .expect(open(&[0, 2], "UPLOADING"))
        .expect(chunk(1, &bytes))
        .expect(complete(&bytes))
        .expect(application());
    submit(&harness).unwrap();
    harness.finish();
    // The whole file is there already: straight to the application.
    let harness = with_materials(&bytes)
        .expect(open(&[0, 1, 2], "COMPLETE"))
        .expect(application());
    submit(&harness).unwrap();
    harness.finish();
}

#[test]
fn a_refused_chunk_stops_the_submission_for_the_gateway_to_send_again() {
    let bytes = rules();
    let harness = with_materials(&bytes)
        .expect(open(&[], "UPLOADING"))
        .expect(Exchange::new("PUT", "/v2/files/F-7/chunks/0").respond_json(
            400,
            &json!({"error": "chunk_digest_mismatch", "message": "分片0的SM3与内容不符"}),
        ));
    let error = submit(&harness).unwrap_err();
    assert!(
        matches!(&error, AdapterError::Protocol(m) if m.contains("chunk_digest_mismatch")),
        "{error:?}"
    );
    harness.finish();
}

#[test]
fn a_callback_is_checked_by_the_host_key_and_never_by_a_secret_the_adapter_holds() {
    let body = br#"{"applicationNo":"SCJG1","requestId":"k","status":"APPROVED","uscc":"91350100M000100Y43","licenceNo":"L1"}"#;
    let callback = |signature: String| sdk::CallbackRequest {
        headers: vec![("X-Signature".into(), signature)],
        body: body.to_vec(),
    };
    let harness = harness();
    let report =
        MarketRegulation::on_callback(callback(sdk::sign::hmac_sha256_hex(b"cb", body))).unwrap();
    assert_eq!(report.reference, "SCJG1");
    let forged = MarketRegulation::on_callback(callback(sdk::sign::hmac_sha256_hex(b"cb2", body)))
        .unwrap_err();
    assert!(
        matches!(&forged, AdapterError::InvalidInput(f) if f[0].field == "X-Signature"),
        "{forged:?}"
    );
    harness.finish();
}
