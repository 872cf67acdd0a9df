//! The tax adapter's exports against a scripted department (`sdk::testing`): the signature
//! headers each request carries, and what each answer becomes.

use sdk::http::HttpError;
use sdk::testing::{Exchange, Harness, Sent};
use sdk::{Adapter, AdapterError, StepState, Submission};
use serde_json::{Value, json};
use tax_adapter::Tax;
use tax_adapter::protocol::{CLEARANCE, REGISTRATION, SignMethod, canonical};

const SECRET: &str = "s3cret";

fn harness(sign_method: Option<&str>) -> Harness {
    let harness = Harness::new()
        .setting("app-key", "gw-test")
        .setting("app-secret", SECRET);
    match sign_method {
        Some(m) => harness.setting("sign-method", m),
        None => harness,
    }
}

/// The five authentication headers, as the department checks them.
fn signed(exchange: Exchange, method: &'static str) -> Exchange {
    exchange
        .header("X-App-Key", "gw-test")
        .header("X-Sign-Method", method)
        .header_present("X-Timestamp")
        .header_present("X-Nonce")
        .header_present("X-Signature")
}

/// Recompute the signature of a request the adapter sent, as the department does.
fn assert_signature_verifies(sent: &Sent, method: SignMethod) {
    let timestamp: u64 = sent.header("X-Timestamp").unwrap().parse().unwrap();
    let nonce = sent.header("X-Nonce").unwrap();
    let expected = method.sign(
        SECRET.as_bytes(),
        &canonical(&sent.method, &sent.path, timestamp, nonce, &sent.body),
    );
    assert_eq!(
        sent.header("X-Signature"),
        Some(expected.as_str()),
        "{sent}"
    );
    let now = sdk::sign::unix_seconds();
    assert!(
        timestamp.abs_diff(now) < 60,
        "timestamp {timestamp} is not now ({now})"
    );
}

fn clearance_answer() -> Value {
    json!({"code": "0000", "msg": "成功", "data": {"nsrsbh": "91350100M000100Y43",
        "nsrmc": "福州演示餐饮有限公司", "qszt": "Y", "qjje": "0.00"}})
}

#[test]
fn clearance_lookup_is_signed_and_translated() {
    let harness = harness(None).expect(
        signed(Exchange::post("/api/v1/qscx"), "HMAC-SHA256")
            .header("Content-Type", "application/json")
            .body_json(|body| assert_eq!(body, &json!({"nsrsbh": "91350100M000100Y43"})))
            .respond_json(200, &clearance_answer()),
    );
    let answer = Tax::lookup(
        CLEARANCE.into(),
        json!({"taxpayer_id": "91350100M000100Y43"}).to_string(),
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"taxpayer_id": "91350100M000100Y43", "name": "福州演示餐饮有限公司",
               "cleared": true, "arrears": "0.00"})
    );
    assert_signature_verifies(&harness.sent()[0], SignMethod::HmacSha256);
    harness.finish();
}

#[test]
fn sm3_signatures_when_configured_and_fresh_nonces_per_request() {
    let harness = harness(Some("HMAC-SM3"))
        .expect(
            signed(Exchange::post("/api/v1/qscx"), "HMAC-SM3")
                .respond_json(200, &clearance_answer()),
        )
        .expect(
            signed(Exchange::post("/api/v1/qscx"), "HMAC-SM3")
                .respond_json(200, &clearance_answer()),
        );
    for _ in 0..2 {
        Tax::lookup(
            CLEARANCE.into(),
            json!({"taxpayer_id": "91350100M000100Y43"}).to_string(),
        )
        .unwrap();
    }
    let sent = harness.sent();
    for request in &sent {
        assert_signature_verifies(request, SignMethod::HmacSm3);
    }
    // The department refuses a replayed nonce.
    assert_ne!(sent[0].header("X-Nonce"), sent[1].header("X-Nonce"));
    harness.finish();
}

#[test]
fn refusals_become_the_right_error_kinds() {
    let harness = harness(None)
        .expect(
            Exchange::post("/api/v1/qscx")
                .respond_json(200, &json!({"code": "2002", "msg": "纳税人不存在"})),
        )
        .expect(
            Exchange::post("/api/v1/qscx")
                .respond_json(401, &json!({"code": "4011", "msg": "签名错误"})),
        )
        .expect(Exchange::post("/api/v1/qscx").fail(HttpError::Timeout))
        .expect(
            Exchange::post("/api/v1/qscx")
                .fail(HttpError::Unavailable("connection refused".into())),
        );
    let query = || json!({"taxpayer_id": "91350100M000100Y43"}).to_string();
    let not_found = Tax::lookup(CLEARANCE.into(), query()).unwrap_err();
    assert!(matches!(not_found, AdapterError::Rejected(r) if r.code == "not_found"));
    let bad_signature = Tax::lookup(CLEARANCE.into(), query()).unwrap_err();
    assert!(matches!(bad_signature, AdapterError::Internal(m) if m.contains("app-secret")));
    let timeout = Tax::lookup(CLEARANCE.into(), query()).unwrap_err();
    assert!(matches!(timeout, AdapterError::Timeout(_)));
    let unavailable = Tax::lookup(CLEARANCE.into(), query()).unwrap_err();
    assert!(matches!(unavailable, AdapterError::Unavailable(m) if m == "connection refused"));
    harness.finish();
}

#[test]
fn registration_is_submitted_then_polled_by_its_ticket() {
    let harness = harness(None)
        .expect(
            signed(Exchange::post("/api/v1/swdj"), "HMAC-SHA256")
                .body_json(|body| {
                    assert_eq!(body["qqid"], "key-1");
                    assert_eq!(body["nsrsbh"], "91350100M000100Y43");
                    assert_eq!(body["fddbrsfzjhm"], "11010519491231002X");
                })
                .respond_json(200, &json!({"code": "0000", "data": {"slh": "SL 1/2"}})),
        )
        .expect(
            // The ticket is percent-encoded into the query, and a GET is signed over it.
            signed(Exchange::get("/api/v1/slzt?slh=SL%201%2F2"), "HMAC-SHA256").respond_json(
                200,
                &json!({"code": "0000", "data": {"zt": "01", "ztmc": "审核中"}}),
            ),
        );
    let receipt = Tax::submit(Submission {
        case_id: "case-1".into(),
        matter: REGISTRATION.into(),
        idempotency_key: "key-1".into(),
        payload: json!({
            "credit_code": "91350100M000100Y43",
            "enterprise_name": "福州演示餐饮有限公司",
            "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
            "address": "福州市鼓楼区五四路2号",
            "business_scope": "餐饮服务",
        })
        .to_string(),
        callback_url: String::new(),
        materials: Vec::new(),
    })
    .unwrap();
    assert_eq!(receipt.reference, "SL 1/2");
    let report = Tax::status(REGISTRATION.into(), receipt.reference).unwrap();
    assert_eq!(report.state, StepState::Processing);
    for sent in harness.sent() {
        assert_signature_verifies(&sent, SignMethod::HmacSha256);
    }
    harness.finish();
}
