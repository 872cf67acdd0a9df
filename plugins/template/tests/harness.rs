//! The adapter's exports against a scripted department (`sdk::testing`): each test names the
//! requests the adapter must send and the answers the department gives, then calls the export
//! as the gateway would.

use example_adapter::Example;
use example_adapter::protocol::{APPLICATION, RECORD};
use sdk::http::HttpError;
use sdk::testing::{Exchange, Harness};
use sdk::{Adapter, AdapterError, StepState, Submission, Supplement, Withdrawal};
use serde_json::{Value, json};

fn submission(payload: Value) -> Submission {
    Submission {
        case_id: "case-1".into(),
        matter: APPLICATION.into(),
        idempotency_key: "key-1".into(),
        payload: payload.to_string(),
        callback_url: "http://gateway/callbacks/example".into(),
        materials: Vec::new(),
    }
}

fn good_application() -> Value {
    json!({
        "applicant": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路2号",
    })
}

#[test]
fn submit_files_the_application_with_the_api_key() {
    let harness = Harness::new().setting("api-key", "k-1").expect(
        Exchange::post("/api/applications")
            .header("X-Api-Key", "k-1")
            .header("Content-Type", "application/json")
            .body_json(|body| {
                assert_eq!(body["requestId"], "key-1");
                assert_eq!(body["applicantName"], "张三");
                assert_eq!(body["applicantIdNumber"], "11010519491231002X");
            })
            .respond_json(
                202,
                &json!({"applicationNo": "A-0001", "status": "RECEIVED"}),
            ),
    );
    let receipt = Example::submit(submission(good_application())).unwrap();
    assert_eq!(receipt.reference, "A-0001");
    assert_eq!(receipt.state, StepState::Accepted);
    assert!(harness.logs().iter().any(|l| l.contains("A-0001")));
    harness.finish();
}

#[test]
fn submit_uploads_the_materials_first() {
    let pdf = b"%PDF-1.7 ... %%EOF".to_vec();
    let harness = Harness::new()
        .setting("api-key", "k-1")
        .material("floor-plan", "平面图", "application/pdf", pdf.clone())
        .expect(
            Exchange::post("/api/files")
                .header("X-Api-Key", "k-1")
                // The file is a slice the host streams, not bytes the adapter copied in.
                .streams("floor-plan")
                .check(move |sent| {
                    let has = |needle: &[u8]| sent.body.windows(needle.len()).any(|w| w == needle);
                    if has(&pdf) && has(b"name=\"code\"\r\n\r\nfloor-plan") {
                        Ok(())
                    } else {
                        Err("the form lacks the file or its code".into())
                    }
                })
                .respond_json(201, &json!({"fileId": "F-1"})),
        )
        .expect(
            Exchange::post("/api/applications")
                .body_json(|body| {
                    assert_eq!(
                        body["files"],
                        json!([{"code": "floor-plan", "fileId": "F-1"}])
                    )
                })
                .respond_json(
                    202,
                    &json!({"applicationNo": "A-0002", "status": "RECEIVED"}),
                ),
        );
    let mut with_materials = submission(good_application());
    with_materials.materials = harness.materials();
    let receipt = Example::submit(with_materials).unwrap();
    assert_eq!(receipt.reference, "A-0002");
    harness.finish();
}

#[test]
fn status_reads_the_decision_and_its_outputs() {
    let harness = Harness::new().setting("api-key", "k-1").expect(
        Exchange::get("/api/applications/A-0001").respond_json(
            200,
            &json!({"applicationNo": "A-0001", "status": "APPROVED", "certificateNo": "C-9"}),
        ),
    );
    let report = Example::status(APPLICATION.into(), "A-0001".into()).unwrap();
    assert_eq!(report.state, StepState::Approved);
    assert_eq!(
        serde_json::from_str::<Value>(&report.outputs).unwrap(),
        json!({"certificate_no": "C-9"})
    );
    harness.finish();
}

#[test]
fn lookup_translates_the_record() {
    let harness = Harness::new().setting("api-key", "k-1").expect(
        Exchange::post("/api/records/query")
            .body_json(|body| assert_eq!(body, &json!({"idNumber": "11010519491231002X"})))
            .respond_json(
                200,
                &json!({"name": "张三", "idNumber": "11010519491231002X",
                        "address": "福州市鼓楼区五四路2号", "registeredOn": "2020-01-02"}),
            ),
    );
    let answer = Example::lookup(
        RECORD.into(),
        json!({"id_number": "11010519491231002x"}).to_string(),
    )
    .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["name"], "张三");
    assert_eq!(answer["registered_on"], "2020-01-02");
    harness.finish();
}

#[test]
fn no_record_is_rejected_as_not_found() {
    let harness = Harness::new().setting("api-key", "k-1").expect(
        Exchange::post("/api/records/query")
            .respond_json(404, &json!({"code": "NOT_FOUND", "message": "无记录"})),
    );
    let error = Example::lookup(
        RECORD.into(),
        json!({"id_number": "11010519491231002X"}).to_string(),
    )
    .unwrap_err();
    assert!(matches!(error, AdapterError::Rejected(r) if r.code == "not_found"));
    harness.finish();
}

#[test]
fn a_slow_or_failing_department_is_worth_retrying() {
    let harness = Harness::new()
        .setting("api-key", "k-1")
        .expect(Exchange::post("/api/applications").fail(HttpError::Timeout))
        .expect(Exchange::post("/api/applications").respond(503, "busy"));
    let timeout = Example::submit(submission(good_application())).unwrap_err();
    assert!(matches!(timeout, AdapterError::Timeout(_)));
    let unavailable = Example::submit(submission(good_application())).unwrap_err();
    assert!(matches!(unavailable, AdapterError::Unavailable(_)));
    harness.finish();
}

#[test]
fn bad_input_and_missing_settings_send_nothing() {
    // No exchange is scripted: any request would fail the test.
    let harness = Harness::new();
    let invalid = Example::submit(submission(json!({"applicant": {"name": "张三"}}))).unwrap_err();
    assert!(matches!(invalid, AdapterError::InvalidInput(ref p) if p.len() == 2));
    let unconfigured = Example::submit(submission(good_application())).unwrap_err();
    assert!(matches!(unconfigured, AdapterError::Internal(m) if m.contains("api-key")));
    harness.finish();
}

#[test]
fn describe_names_the_department_and_its_schemas() {
    let d = Example::describe();
    assert_eq!(d.department, "example");
    assert_eq!(d.matters[0].code, APPLICATION);
    assert_eq!(d.lookups[0].name, RECORD);
    for schema in d
        .matters
        .iter()
        .map(|m| &m.input_schema)
        .chain(d.lookups.iter().map(|l| &l.input_schema))
    {
        serde_json::from_str::<Value>(schema).unwrap();
    }
}

#[test]
fn a_supplement_sends_the_corrected_fields_and_its_files() {
    let harness = Harness::new()
        .setting("api-key", "k-1")
        .material(
            "floor-plan",
            "平面图",
            "application/pdf",
            b"%PDF-1.7 ... %%EOF".to_vec(),
        )
        .expect(Exchange::post("/api/files").respond_json(201, &json!({"fileId": "F-2"})))
        .expect(
            Exchange::post("/api/applications/A-0001/supplements")
                .header("X-Api-Key", "k-1")
                .body_json(|body| {
                    assert_eq!(body["requestId"], "supplement-key-1");
                    assert_eq!(body["fields"], json!({"address": "福州市鼓楼区五四路3号"}));
                    assert_eq!(
                        body["files"],
                        json!([{"code": "floor-plan", "fileId": "F-2"}])
                    );
                })
                .respond_json(
                    202,
                    &json!({"applicationNo": "A-0001", "status": "RECEIVED"}),
                ),
        );
    let receipt = Example::supplement(Supplement {
        case_id: "case-1".into(),
        matter: APPLICATION.into(),
        reference: "A-0001".into(),
        idempotency_key: "supplement-key-1".into(),
        payload: json!({"address": "福州市鼓楼区五四路3号"}).to_string(),
        materials: harness.materials(),
    })
    .unwrap();
    assert_eq!(receipt.state, StepState::Accepted);
    harness.finish();
}

#[test]
fn a_withdrawal_answers_the_state_after_it() {
    let harness = Harness::new().setting("api-key", "k-1").expect(
        Exchange::post("/api/applications/A-0001/withdrawal")
            .body_json(|body| {
                assert_eq!(body["requestId"], "withdrawal-key-1");
                assert_eq!(body["reason"], "不再需要");
            })
            .respond_json(
                200,
                &json!({"applicationNo": "A-0001", "status": "WITHDRAWN"}),
            ),
    );
    let receipt = Example::withdraw(Withdrawal {
        case_id: "case-1".into(),
        matter: APPLICATION.into(),
        reference: Some("A-0001".into()),
        idempotency_key: "withdrawal-key-1".into(),
        reason: "不再需要".into(),
    })
    .unwrap();
    assert_eq!(receipt.state, StepState::Withdrawn);
    harness.finish();
}
