//! 社保 (social security) end to end: the Python adapter, built with componentize-py, as the
//! fifth step of 企业开办 against the simulated bureau's fixed-length GB18030 messages signed
//! with SM2 — the host signs with the key the config names and checks nothing for the adapter:
//! the adapter asks the host to verify the department's signature and refuses what fails.
//!
//! The catalogue is the demo's: 企业开办 has the 社保 step after the licence (its credit code
//! flows in like tax's); the harness leaves out the material lists as for every test.

use integration_tests::{Env, Setup};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn start() -> Env {
    Env::start_with(Setup {
        social_security: true,
        ticket_delay: Some(Duration::from_millis(100)),
        ..Setup::default()
    })
    .await
    .unwrap()
}

fn form(name: &str, employees: u32) -> Value {
    json!({
        "enterprise_name": name,
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发",
        "seal_types": ["法定名称章"],
        "employees": employees
    })
}

fn step<'v>(view: &'v Value, id: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {view:#}"))
}

fn state(view: &Value, id: &str) -> String {
    step(view, id)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_business_bundle_takes_the_social_security_step_after_the_licence() {
    let env = start().await;
    let (status, schema) = env
        .get("/api/v1/services/one-thing.open-business/form")
        .await;
    assert_eq!(status, 200, "{schema}");
    assert_eq!(
        schema["schema"]["properties"]["employees"]["title"], "职工人数",
        "the form asks the 社保 field with its Chinese title: {schema:#}"
    );
    let case = env
        .apply("one-thing.open-business", &form("福州参保科技有限公司", 12))
        .await;
    let view = env
        .wait_for_case(&case, WAIT, |v| {
            ["licence", "seal", "social-security"]
                .iter()
                .all(|id| state(v, id) == "approved")
        })
        .await;
    let steps: Vec<&str> = view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["step"].as_str())
        .collect();
    assert_eq!(steps.len(), 4, "licence, seal, tax and 社保: {steps:?}");
    let credit_code = step(&view, "licence")["outputs"]["credit_code"]
        .as_str()
        .unwrap()
        .to_string();
    let ss = step(&view, "social-security");
    let number = ss["outputs"]["registration_number"].as_str().unwrap();
    assert!(number.starts_with("SB"), "{ss:#}");
    assert_eq!(
        env.departments.social_security.registrations(),
        vec![(credit_code, number.to_string())],
        "the bureau registered the licence's credit code, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_answer_is_refused_and_the_step_completes_only_once_it_verifies() {
    let env = start().await;
    let ss = env.departments.social_security.clone();
    ss.tamper_answers(true);
    let case = env
        .apply("one-thing.open-business", &form("福州篡改科技有限公司", 5))
        .await;
    // The bureau registers it and answers; the adapter refuses the answer (its signature no
    // longer verifies), so the step is not taken as submitted.
    let view = env
        .wait_for_case(&case, WAIT, |v| {
            // Registered at the bureau, and the attempt that carried it over: refused.
            ss.registrations().len() == 1
                && step(v, "social-security")["attempts"].as_i64() >= Some(1)
                && state(v, "social-security") == "pending"
        })
        .await;
    assert!(
        step(&view, "social-security")["reference"].is_null(),
        "{view:#}"
    );
    assert_ne!(state(&view, "social-security"), "approved");
    // The answer verifies again: the retry (same serial) gets the bureau's first answer.
    ss.tamper_answers(false);
    let view = env
        .wait_for_case(&case, WAIT, |v| state(v, "social-security") == "approved")
        .await;
    assert_eq!(
        step(&view, "social-security")["outputs"]["registration_number"],
        ss.registrations()[0].1
    );
    assert_eq!(
        ss.registrations().len(),
        1,
        "one registration for the retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_bureau_refuses_shows_as_a_chinese_problem() {
    let env = start().await;
    let case = env
        .apply("one-thing.open-business", &form("福州无员科技有限公司", 0))
        .await;
    let view = env
        .wait_for_case(&case, WAIT, |v| state(v, "social-security") == "failed")
        .await;
    let text = view.to_string();
    assert!(
        text.contains("职工人数为0的单位不予参保登记"),
        "the bureau's reason reaches the case: {view:#}"
    );
    assert!(
        !text.contains("AdapterError"),
        "no Rust debug text: {view:#}"
    );
    assert!(env.departments.social_security.registrations().is_empty());
}
