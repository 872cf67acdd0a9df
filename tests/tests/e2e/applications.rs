//! Applying for a single matter at each of the four departments, end to end: review, durable
//! acceptance, delivery through the adapter, and status by polling or by callback.

use integration_tests::{Env, Setup};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn step_state(view: &Value) -> &str {
    view["matters"][0]["state"].as_str().unwrap_or_default()
}

fn timeline_kinds(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

fn licence_form(name: &str) -> Value {
    json!({
        "enterprise_name": name,
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "餐饮服务"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_licence_is_issued_through_the_departments_callback() {
    business_licence_by_callback(Setup::default()).await;
}

/// The same application through the JavaScript adapter (`plugins/market-regulation-js`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_licence_is_issued_through_the_departments_callback_in_javascript() {
    business_licence_by_callback(Setup {
        market_regulation_js: true,
        ..Setup::default()
    })
    .await;
}

async fn business_licence_by_callback(setup: Setup) {
    let env = Env::start_with(setup).await.unwrap();
    let case_id = env
        .apply(
            "market-regulation.business-licence",
            &licence_form("福州回调测试餐饮有限公司"),
        )
        .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step_state(v) == "approved")
        .await;
    assert_eq!(view["status"], "completed");
    let step = &view["matters"][0];
    assert!(
        step["reference"].as_str().unwrap().starts_with("SCJG"),
        "{step}"
    );
    let code = step["outputs"]["credit_code"].as_str().unwrap();
    assert_eq!(
        code.len(),
        18,
        "an issued unified social credit code: {code}"
    );
    assert!(
        timeline_kinds(&view).contains(&"callback".to_string()),
        "decided by callback: {view:#}"
    );
    // The department saw the gateway's idempotency key as its request id, once.
    assert_eq!(
        env.departments.market_regulation.received_ids(),
        vec![format!("{case_id}:market-regulation.business-licence")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tax_registration_is_decided_by_polling() {
    let env = Env::start().await.unwrap();
    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    });
    let case_id = env.apply("tax.registration", &form).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step_state(v) == "approved")
        .await;
    let step = &view["matters"][0];
    assert!(
        step["reference"].as_str().unwrap().starts_with("SW"),
        "{step}"
    );
    assert_eq!(step["outputs"]["taxpayer_id"], "91350100M000100Y43");
    let kinds = timeline_kinds(&view);
    assert_eq!(kinds.first().map(String::as_str), Some("received"));
    assert!(
        kinds.contains(&"submitted".to_string()) && kinds.contains(&"status".to_string()),
        "{kinds:?}"
    );
    assert_eq!(env.departments.tax.applications(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_filing_is_final_on_submission() {
    let env = Env::start().await.unwrap();
    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": ["法定名称章", "财务专用章"]
    });
    let case_id = env.apply("public-security.seal-filing", &form).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step_state(v) == "approved")
        .await;
    assert!(
        view["matters"][0]["outputs"]["filing_no"]
            .as_str()
            .unwrap()
            .starts_with("GA"),
        "{view:#}"
    );
    assert_eq!(env.departments.public_security.applications(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_hand_home_transfer_is_registered() {
    let env = Env::start().await.unwrap();
    let form = json!({
        "unit_number": "351001012010GB01859F00040015",
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "张三", "id_number": "11010519491231002X"},
        "buyer": {"name": "李四", "id_number": "34052419800101001X"},
        "price": 1200000
    });
    let case_id = env.apply("real-estate.transfer", &form).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step_state(v) == "approved")
        .await;
    let certificate = view["matters"][0]["outputs"]["certificate_number"]
        .as_str()
        .unwrap();
    assert!(
        certificate.contains("不动产权第"),
        "a new certificate number: {certificate}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_on_the_merits_is_recorded_on_the_case() {
    let env = Env::start().await.unwrap();
    // The seller is not the registered owner: the department refuses with E201.
    let form = json!({
        "unit_number": "351001012010GB01859F00040015",
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "王五", "id_number": "360426199101010071"},
        "buyer": {"name": "李四", "id_number": "34052419800101001X"},
        "price": 1200000
    });
    let case_id = env.apply("real-estate.transfer", &form).await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| step_state(v) == "rejected")
        .await;
    assert_eq!(view["status"], "rejected");
    assert!(
        view["matters"][0]["message"]
            .as_str()
            .unwrap()
            .contains("E201"),
        "{view:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_problem_is_reported_at_once_and_nothing_is_sent() {
    let env = Env::start().await.unwrap();
    let form = json!({
        "credit_code": "91110000600037341M",
        "legal_representative": {"name": "张三", "id_number": "110105194912310021"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    });
    let (status, review) = env
        .post("/api/v1/services/tax.registration/pre-review", &form)
        .await;
    assert_eq!(status, 200);
    assert_eq!(review["ok"], false);
    let fields: Vec<(String, String)> = review["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_string(),
                p["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("enterprise_name", "required"),
        ("credit_code", "checksum"),
        ("legal_representative.id_number", "checksum"),
    ] {
        assert!(
            fields.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {fields:?}"
        );
    }
    // Submitting the same form is refused with the same problems, in the documented format.
    let (status, body) = env
        .post("/api/v1/services/tax.registration/applications", &form)
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(
        body["error"]["fields"].as_array().unwrap().len(),
        fields.len()
    );
    assert!(
        !body.to_string().contains("110105194912310021"),
        "identity numbers never echo back"
    );
    assert_eq!(env.departments.tax.applications(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_unknown_services_get_the_error_format() {
    let env = Env::start().await.unwrap();
    let (status, body) = env
        .post_raw(
            "/api/v1/services/tax.registration/applications",
            "{\"credit_code\": ".into(),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "malformed_json");
    let (status, body) = env
        .post("/api/v1/services/no.such-matter/applications", &json!({}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = env
        .post(
            "/api/v1/services/tax.registration/applications",
            &json!([1, 2]),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = env
        .get("/api/v1/cases/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_overtakes_the_submission_answer_is_kept_and_applied() {
    // The department decides after 50 ms but answers the submission only after 600 ms: its
    // callback reaches the gateway before the gateway knows the application number.
    let env = Env::start_with(integration_tests::Setup {
        ticket_delay: Some(Duration::from_millis(50)),
        ..Default::default()
    })
    .await
    .unwrap();
    env.departments
        .market_regulation
        .set_faults(departments::Faults {
            latency_ms: 600,
            ..Default::default()
        });
    let case_id = env
        .apply(
            "market-regulation.business-licence",
            &licence_form("福州抢先回调测试有限公司"),
        )
        .await;
    // Polling runs every 5 s for this department: only the held callback can finish it sooner.
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(4), |v| {
            step_state(v) == "approved"
        })
        .await;
    assert!(
        timeline_kinds(&view).contains(&"callback".to_string()),
        "{view:#}"
    );
    assert_eq!(
        view["matters"][0]["outputs"]["credit_code"]
            .as_str()
            .map(str::len),
        Some(18)
    );
}
