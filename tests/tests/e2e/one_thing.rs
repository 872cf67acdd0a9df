//! "One thing, one time" (一件事一次办): one form, pre-review that reports everything at once,
//! data reuse from departments, and parallel approval where the service graph allows.

use departments::Faults;
use integration_tests::{Env, Setup};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn matter<'v>(view: &'v Value, step: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == step)
        .unwrap_or_else(|| panic!("no step {step}: {view:#}"))
}

fn all_final(view: &Value) -> bool {
    view["matters"].as_array().unwrap().iter().all(|m| {
        matches!(
            m["state"].as_str(),
            Some("approved" | "rejected" | "returned" | "failed" | "blocked")
        )
    })
}

/// Unix milliseconds of the first timeline event of `kind` for `step`.
fn event_ms(view: &Value, step: &str, kind: &str) -> i128 {
    let event = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == step && e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event for {step}: {view:#}"));
    let at = time::OffsetDateTime::parse(
        event["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    at.unix_timestamp_nanos() / 1_000_000
}

fn properties(form: &Value) -> Vec<String> {
    form["schema"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn open_business_form(name: &str) -> Value {
    json!({
        "enterprise_name": name,
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发",
        "seal_types": ["法定名称章", "财务专用章"]
    })
}

fn home_transfer_form() -> Value {
    json!({
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "张三", "id_number": "11010519491231002X"},
        "buyer": {"name": "李四", "id_number": "34052419800101001X"},
        "buyer_birth_date": "1980-01-01",
        "price": 1200000
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_form_asks_every_field_once_and_nothing_a_department_holds() {
    let env = Env::start().await.unwrap();
    let (status, form) = env
        .get("/api/v1/services/one-thing.open-business/form")
        .await;
    assert_eq!(status, 200, "{form}");
    assert_eq!(form["kind"], "one-thing");
    let fields = properties(&form);
    for f in [
        "enterprise_name",
        "address",
        "legal_representative",
        "registered_capital",
        "business_scope",
        "seal_types",
    ] {
        assert!(
            fields.contains(&f.to_string()),
            "{f} missing from {fields:?}"
        );
    }
    assert!(
        !fields.contains(&"credit_code".to_string()),
        "the credit code comes from the licence step"
    );
    assert_eq!(fields.len(), 6, "each field once: {fields:?}");
    assert!(
        form["schema"]["properties"]["enterprise_name"]["title"]
            .as_str()
            .is_some_and(|t| !t.is_ascii()),
        "Chinese labels"
    );

    let (_, form) = env
        .get("/api/v1/services/one-thing.home-transfer/form")
        .await;
    let fields = properties(&form);
    for f in [
        "certificate_number",
        "seller",
        "buyer",
        "price",
        "buyer_birth_date",
    ] {
        assert!(
            fields.contains(&f.to_string()),
            "{f} missing from {fields:?}"
        );
    }
    for held in ["unit_number", "area", "owner"] {
        assert!(
            !fields.contains(&held.to_string()),
            "{held} is obtained from real estate, not asked"
        );
    }

    let (_, form) = env
        .get("/api/v1/services/one-thing.food-permit-for-enterprise/form")
        .await;
    let fields = properties(&form);
    assert!(fields.contains(&"credit_code".to_string()));
    for held in ["enterprise_name", "address"] {
        assert!(
            !fields.contains(&held.to_string()),
            "{held} comes from market regulation by credit code"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_review_reports_every_problem_from_every_source_at_once() {
    let env = Env::start().await.unwrap();
    let form = json!({
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        // Not the registered owner, though a real resident.
        "seller": {"name": "王五", "id_number": "360426199101010071"},
        // The name does not match the number at public security.
        "buyer": {"name": "李五", "id_number": "34052419800101001X"},
        "buyer_birth_date": "1980-02-01",
        "price": -5
    });
    let (status, review) = env
        .post("/api/v1/services/one-thing.home-transfer/pre-review", &form)
        .await;
    assert_eq!(status, 200, "{review}");
    assert_eq!(review["ok"], false);
    let found: Vec<(String, String)> = review["problems"]
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
        ("seller.id_number", "rule"), // not the owner (real estate lookup)
        ("buyer.id_number", "rule"),  // identity mismatch (public security lookup)
        ("buyer_birth_date", "rule"), // birth date inside the ID number
        ("price", "range"),           // schema
    ] {
        assert!(
            found.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {found:?}"
        );
    }
    let messages = review.to_string();
    assert!(
        messages.contains("登记权利人") && messages.contains("出生日期"),
        "{messages}"
    );
    // Nothing was submitted anywhere.
    assert_eq!(
        env.departments.tax.applications() + env.departments.real_estate.applications(),
        0
    );

    let (status, body) = env
        .post(
            "/api/v1/services/one-thing.home-transfer/applications",
            &form,
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"]["fields"].as_array().unwrap().len(),
        found.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_registry_does_not_hold_is_a_problem_on_its_field() {
    let env = Env::start().await.unwrap();
    let mut form = home_transfer_form();
    form["certificate_number"] = json!("闽(2019)平潭不动产权第0099999号");
    let (_, review) = env
        .post("/api/v1/services/one-thing.home-transfer/pre-review", &form)
        .await;
    let problems = review["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["field"] == "certificate_number" && p["code"] == "not_found"),
        "{review:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_business_runs_seal_and_tax_in_parallel_after_the_licence() {
    let env = Env::start().await.unwrap();
    // Both branches are slow: in sequence they would take the sum, in parallel the maximum.
    let latency = 700;
    env.departments.public_security.set_faults(Faults {
        latency_ms: latency,
        ..Faults::default()
    });
    env.departments.tax.set_faults(Faults {
        latency_ms: latency,
        ..Faults::default()
    });
    let case_id = env
        .apply(
            "one-thing.open-business",
            &open_business_form("福州并联测试科技有限公司"),
        )
        .await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(view["status"], "completed", "{view:#}");

    let credit_code = matter(&view, "licence")["outputs"]["credit_code"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        matter(&view, "tax")["outputs"]["taxpayer_id"],
        credit_code.as_str(),
        "the licence's credit code fed the tax step"
    );
    assert!(
        matter(&view, "seal")["reference"]
            .as_str()
            .unwrap()
            .starts_with("GA")
    );

    let released = event_ms(&view, "seal", "ready").min(event_ms(&view, "tax", "ready"));
    let seal_done = event_ms(&view, "seal", "submitted");
    let tax_done = event_ms(&view, "tax", "submitted");
    let both = seal_done.max(tax_done) - released;
    // Each submission alone takes at least the latency; together they fit well under the sum.
    assert!(both >= latency as i128, "{both} ms");
    assert!(
        both < (2 * latency) as i128 - 200,
        "seal and tax ran one after the other: {both} ms"
    );
    assert!(
        (seal_done - tax_done).abs() < 400,
        "the branches finished together: {seal_done} vs {tax_done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_blocks_the_steps_that_need_it_with_the_reason() {
    let env = Env::start().await.unwrap();
    // The seeded enterprise's name is taken: the licence is refused.
    let case_id = env
        .apply(
            "one-thing.open-business",
            &open_business_form("福州测试科技有限公司"),
        )
        .await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(matter(&view, "licence")["state"], "rejected");
    for step in ["seal", "tax"] {
        let m = matter(&view, step);
        assert_eq!(m["state"], "blocked", "{view:#}");
        assert!(
            m["message"].as_str().unwrap().contains("licence"),
            "the reason names the step: {m}"
        );
    }
    assert_eq!(view["status"], "rejected");
    assert_eq!(
        env.departments.public_security.applications() + env.departments.tax.applications(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_transfer_pays_deed_tax_then_registers_with_one_set_of_materials() {
    let env = Env::start().await.unwrap();
    let case_id = env
        .apply("one-thing.home-transfer", &home_transfer_form())
        .await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(view["status"], "completed", "{view:#}");
    assert!(
        matter(&view, "deed_tax")["outputs"]["tax_due"]
            .as_str()
            .is_some(),
        "{view:#}"
    );
    assert!(
        matter(&view, "transfer")["outputs"]["certificate_number"]
            .as_str()
            .unwrap()
            .contains("不动产权第")
    );
    assert!(
        event_ms(&view, "transfer", "ready") >= event_ms(&view, "deed_tax", "status"),
        "先税后证"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_restaurant_and_a_permit_for_an_existing_enterprise() {
    let env = Env::start_with(Setup::default()).await.unwrap();
    let mut form = open_business_form("福州好味道餐饮有限公司");
    form.as_object_mut().unwrap().remove("seal_types");
    form["business_scope"] = json!("餐饮服务");
    form["business_items"] = json!(["热食类食品制售"]);
    form["premises_area"] = json!(120);
    let case_id = env.apply("one-thing.open-restaurant", &form).await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(view["status"], "completed", "{view:#}");
    assert!(
        matter(&view, "food_permit")["outputs"]["permit_no"]
            .as_str()
            .unwrap()
            .starts_with("JY")
    );

    let existing = json!({
        "credit_code": "91350100M000100Y43",
        "legal_representative_id_number": "11010519491231002X",
        "business_items": ["预包装食品销售"],
        "premises_area": 40
    });
    let case_id = env
        .apply("one-thing.food-permit-for-enterprise", &existing)
        .await;
    let view = env.wait_for_case(&case_id, WAIT, all_final).await;
    assert_eq!(view["status"], "completed", "{view:#}");
}
