//! The tax adapter's exports against a scripted department (`sdk::testing`): the signature
//! headers each request carries, and what each answer becomes; materials uploaded one signed
//! form each, streamed by the host, then listed in the application.

use sdk::http::HttpError;
use sdk::testing::{Exchange, Harness, Sent, TestKey};
use sdk::{Adapter, AdapterError, LicenceRef, StepState, Submission};
use serde_json::{Value, json};
use tax_adapter::Tax;
use tax_adapter::protocol::{CLEARANCE, REGISTRATION, SignMethod, canonical};

const SECRET: &str = "s3cret";

fn harness(sign_method: Option<&str>) -> Harness {
    let harness = Harness::new()
        .setting("app-key", "gw-test")
        .key("app-secret", TestKey::hmac(SECRET));
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

/// An upload as the department checks it: signed over the SM3 of the body it received, which
/// `X-Content-SM3` declares.
fn assert_upload_signature_verifies(sent: &Sent) {
    let digest = sdk::sign::sm3_hex(&sent.body);
    assert_eq!(
        sent.header("X-Content-SM3"),
        Some(digest.as_str()),
        "{sent}"
    );
    let timestamp: u64 = sent.header("X-Timestamp").unwrap().parse().unwrap();
    let expected = SignMethod::HmacSha256.sign(
        SECRET.as_bytes(),
        &canonical(
            &sent.method,
            &sent.path,
            timestamp,
            sent.header("X-Nonce").unwrap(),
            digest.as_bytes(),
        ),
    );
    assert_eq!(
        sent.header("X-Signature"),
        Some(expected.as_str()),
        "{sent}"
    );
}

fn registration(materials: Vec<sdk::Material>) -> Submission {
    Submission {
        case_id: "case-1".into(),
        matter: REGISTRATION.into(),
        idempotency_key: "case-1:tax".into(),
        payload: json!({
            "credit_code": "91350100M000100Y43",
            "enterprise_name": "福州演示餐饮有限公司",
            "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
            "address": "福州市鼓楼区五四路2号",
            "business_scope": "餐饮服务",
        })
        .to_string(),
        callback_url: String::new(),
        materials,
    }
}

/// A PDF of `len` bytes that is not one repeated byte.
fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| (i * 31 % 251) as u8));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

const LICENCE_ID: &str =
    "1.2.156.3005.2.11350100003501011L001.11350100003501011L.20260000000000000001.001.U";

#[test]
fn materials_are_uploaded_streamed_and_listed_in_the_application() {
    // Bigger than one slice the adapter reads for the digest (768 KiB).
    let premises = pdf(2 << 20);
    let harness = harness(None)
        .material("premises-proof", "经营场所证明", "application/pdf", premises.clone())
        // The same bytes under another code: uploaded once, listed twice.
        .material("lease", "租赁合同", "application/pdf", premises.clone())
        .licence(
            "business-licence",
            "营业执照",
            LicenceRef {
                id: LICENCE_ID.into(),
                kind: "business_licence".into(),
                number: "91350100M000100Y43".into(),
            },
        )
        .promised("seal-specimen", "印章样式", Some("2026-12-31"))
        .expect(
            signed(Exchange::post("/api/v1/wjsc"), "HMAC-SHA256")
                .header_present("X-Content-SM3")
                .streams("lease")
                .check(|sent| {
                    let ct = sent.header("Content-Type").unwrap_or_default();
                    if ct.starts_with("multipart/form-data; boundary=") {
                        Ok(())
                    } else {
                        Err(format!("Content-Type {ct}"))
                    }
                })
                .respond_json(
                    200,
                    &json!({"code": "0000", "msg": "成功", "data": {"wjid": "WJ1", "wjdx": 1, "wjsm3": "x"}}),
                ),
        )
        .expect(
            signed(Exchange::post("/api/v1/swdj"), "HMAC-SHA256")
                .body_json(|body| {
                    assert_eq!(body["qqid"], "case-1:tax");
                    assert_eq!(
                        body["fjlb"],
                        json!([
                            {"clbm": "lease", "clmc": "租赁合同", "wjid": "WJ1"},
                            {"clbm": "premises-proof", "clmc": "经营场所证明", "wjid": "WJ1"},
                        ])
                    );
                    assert_eq!(
                        body["dzzz"],
                        json!([{"clbm": "business-licence", "clmc": "营业执照", "zzbs": LICENCE_ID,
                            "zzlx": "business_licence", "zzbh": "91350100M000100Y43"}])
                    );
                    assert_eq!(
                        body["rqcl"],
                        json!([{"clbm": "seal-specimen", "clmc": "印章样式", "cnrq": "2026-12-31"}])
                    );
                })
                .respond_json(200, &json!({"code": "0000", "data": {"slh": "SW1"}})),
        );
    let receipt = Tax::submit(registration(harness.materials())).unwrap();
    assert_eq!(receipt.reference, "SW1");
    let sent = harness.sent();
    let upload = &sent[0];
    assert_upload_signature_verifies(upload);
    // The form: its fields, then the file exactly as stored.
    let text = String::from_utf8_lossy(&upload.body);
    for field in ["qqid", "clbm", "clmc", "wjsm3"] {
        assert!(text.contains(&format!("name=\"{field}\"")), "{field}");
    }
    assert!(text.contains(&sdk::sign::sm3_hex(&premises)));
    assert!(text.contains("filename=\"lease.pdf\""));
    assert!(
        upload
            .body
            .windows(premises.len())
            .any(|w| w == premises.as_slice()),
        "the file is in the form whole"
    );
    // The adapter never copied the file into the request: it read it only for the digest,
    // a slice at a time.
    let reads = harness.reads();
    assert!(reads.iter().all(|r| r.max <= 1 << 20), "{reads:?}");
    assert_eq!(reads.iter().map(|r| r.got).sum::<usize>(), premises.len());
    assert_signature_verifies(&sent[1], SignMethod::HmacSha256);
    harness.finish();
}

#[test]
fn a_material_the_department_refuses_is_the_applicants_problem_and_nothing_is_filed() {
    let png = b"\x89PNG\r\n\x1a\nrest-of-png".to_vec();
    let harness = harness(None)
        .material("premises-proof", "经营场所证明", "image/png", png)
        .expect(Exchange::post("/api/v1/wjsc").respond_json(
            200,
            &json!({"code": "3004", "msg": "文件类型不支持：image/png（仅接受PDF、OFD、JPEG）", "data": null}),
        ));
    let error = Tax::submit(registration(harness.materials())).unwrap_err();
    let AdapterError::InvalidInput(problems) = error else {
        panic!("{error:?}")
    };
    assert_eq!(problems[0].field, "materials.premises-proof");
    assert_eq!(problems[0].code, "format");
    assert!(
        problems[0].message.contains("仅接受PDF"),
        "{:?}",
        problems[0]
    );
    // No application was sent: the script has no swdj, and finish would name one.
    harness.finish();
}

#[test]
fn an_upload_altered_on_the_way_or_lost_by_the_department_is_retried() {
    let harness = harness(None)
        .material(
            "premises-proof",
            "经营场所证明",
            "application/pdf",
            pdf(100),
        )
        .expect(Exchange::post("/api/v1/wjsc").respond_json(
            401,
            &json!({"code": "4014", "msg": "请求体SM3摘要与签名不符"}),
        ))
        .expect(
            Exchange::post("/api/v1/wjsc")
                .respond_json(200, &json!({"code": "0000", "data": {"wjid": "WJ7"}})),
        )
        .expect(Exchange::post("/api/v1/swdj").respond_json(
            200,
            &json!({"code": "3005", "msg": "文件标识不存在：WJ7", "data": null}),
        ));
    let altered = Tax::submit(registration(harness.materials())).unwrap_err();
    assert!(matches!(altered, AdapterError::Unavailable(m) if m.contains("4014")));
    let lost = Tax::submit(registration(harness.materials())).unwrap_err();
    assert!(matches!(lost, AdapterError::Unavailable(m) if m.contains("3005")));
    harness.finish();
}

#[test]
fn a_supplement_uploads_under_its_own_request_id_and_sends_the_corrected_fields() {
    let proof = pdf(10_000);
    let harness = harness(None)
        .material("premises-proof", "经营场所证明", "application/pdf", proof)
        .expect(
            signed(Exchange::post("/api/v1/wjsc"), "HMAC-SHA256")
                .streams("premises-proof")
                .check(|sent| {
                    let text = String::from_utf8_lossy(&sent.body);
                    if text.contains("name=\"qqid\"\r\n\r\nsupplement-1") {
                        Ok(())
                    } else {
                        Err("the file is not uploaded under the supplement's qqid".into())
                    }
                })
                .respond_json(200, &json!({"code": "0000", "data": {"wjid": "WJ9"}})),
        )
        .expect(
            signed(Exchange::post("/api/v1/bzsq"), "HMAC-SHA256")
                .body_json(|body| {
                    assert_eq!(body["qqid"], "supplement-1");
                    assert_eq!(body["slh"], "SW1");
                    assert_eq!(body["bzzd"], json!({"scjydz": "福州市鼓楼区五四路1号"}));
                    assert_eq!(
                        body["fjlb"],
                        json!([{"clbm": "premises-proof", "clmc": "经营场所证明", "wjid": "WJ9"}])
                    );
                })
                .respond_json(
                    200,
                    &json!({"code": "0000", "data": {"slh": "SW1", "zt": "01", "ztmc": "受理中"}}),
                ),
        );
    let receipt = Tax::supplement(sdk::Supplement {
        case_id: "case-1".into(),
        matter: REGISTRATION.into(),
        reference: "SW1".into(),
        idempotency_key: "supplement-1".into(),
        payload: json!({"address": "福州市鼓楼区五四路1号"}).to_string(),
        materials: harness.materials(),
    })
    .unwrap();
    assert_eq!(
        (receipt.reference.as_str(), receipt.state),
        ("SW1", StepState::Processing)
    );
    assert_signature_verifies(&harness.sent()[1], SignMethod::HmacSha256);
    harness.finish();
}

#[test]
fn a_withdrawal_after_the_decision_answers_it_with_its_outputs() {
    let harness = harness(None)
        .expect(
            signed(Exchange::post("/api/v1/cxsq"), "HMAC-SHA256")
                .body_json(|body| {
                    assert_eq!(body["qqid"], "withdrawal-1");
                    assert_eq!(body["cxyy"], "不再经营");
                })
                .respond_json(
                    200,
                    &json!({"code": "0000", "data": {"slh": "SW1", "zt": "02", "ztmc": "已办结"}}),
                ),
        )
        .expect(
            signed(Exchange::get("/api/v1/slzt?slh=SW1"), "HMAC-SHA256").respond_json(
                200,
                &json!({"code": "0000", "data": {"slh": "SW1", "zt": "02", "ztmc": "已办结",
                    "swdjxx": {"nsrsbh": "91350100M000100Y43", "djrq": "2026-12-03"}}}),
            ),
        );
    let receipt = Tax::withdraw(sdk::Withdrawal {
        case_id: "case-1".into(),
        matter: REGISTRATION.into(),
        reference: Some("SW1".into()),
        idempotency_key: "withdrawal-1".into(),
        reason: "不再经营".into(),
    })
    .unwrap();
    assert_eq!(receipt.state, StepState::Approved);
    let outputs: Value = serde_json::from_str(&receipt.outputs).unwrap();
    assert_eq!(outputs["taxpayer_id"], "91350100M000100Y43");
    harness.finish();

    // Never taken by the department: nothing to tell it.
    let untold = Harness::new();
    let receipt = Tax::withdraw(sdk::Withdrawal {
        case_id: "case-1".into(),
        matter: REGISTRATION.into(),
        reference: None,
        idempotency_key: "withdrawal-2".into(),
        reason: String::new(),
    })
    .unwrap();
    assert_eq!(receipt.state, StepState::Withdrawn);
    untold.finish();
}
