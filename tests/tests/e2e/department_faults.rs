//! A department that is down, slow, or answering garbage gets a distinct error each, never a
//! hang; and an accepted application waits out an outage without being lost or duplicated.

use departments::Faults;
use integration_tests::{Env, Setup};
use serde_json::json;
use std::time::Duration;

async fn env() -> Env {
    Env::start_with(Setup {
        department_timeout: Some(Duration::from_millis(500)),
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn clearance(env: &Env) -> (u16, serde_json::Value) {
    env.post(
        "/api/v1/lookups/tax.clearance",
        &json!({"taxpayer_id": "91350100M000100Y43"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_slow_and_garbage_are_told_apart() {
    let env = env().await;
    env.departments.tax.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let (status, body) = clearance(&env).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("department_unavailable")),
        "{body}"
    );
    assert_eq!(body["error"]["department"], "tax");

    env.departments.tax.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let (status, body) = clearance(&env).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("department_timeout")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "the timeout, not the department, ended the call"
    );

    env.departments.tax.set_faults(Faults {
        garbage: true,
        ..Faults::default()
    });
    let (status, body) = clearance(&env).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("department_protocol_error")),
        "{body}"
    );

    env.departments.tax.set_faults(Faults::default());
    let (status, _) = clearance(&env).await;
    assert_eq!(status, 200, "the department is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_soap_department_is_a_protocol_error() {
    let env = env().await;
    env.departments.real_estate.set_faults(Faults {
        garbage: true,
        ..Faults::default()
    });
    let (status, body) = env
        .post(
            "/api/v1/lookups/real-estate.property",
            &json!({"unit_number": "351001012010GB01859F00040015"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("department_protocol_error")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_application_waits_out_an_outage_and_arrives_once() {
    let env = env().await;
    env.departments.public_security.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": ["法定名称章"]
    });
    let case_id = env.apply("public-security.seal-filing", &form).await;
    // The first attempt fails and is scheduled again; the case keeps it.
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(10), |v| {
            v["matters"][0]["attempts"].as_i64() >= Some(1)
        })
        .await;
    assert_eq!(view["matters"][0]["state"], "pending");
    assert_eq!(view["status"], "received");
    // What a portal shows of the failed attempt is plain Chinese: no adapter's or Rust's text.
    assert_eq!(
        view["matters"][0]["message"], "部门系统暂时无法访问",
        "{view:#}"
    );
    let events = env.get(&format!("/api/v1/cases/{case_id}")).await.1;
    for text in [view.to_string(), events["timeline"].to_string()] {
        for rust in ["AdapterError", "adapter error", "::", "(\\\""] {
            assert!(!text.contains(rust), "`{rust}` in {text}");
        }
    }
    env.departments
        .public_security
        .set_faults(Faults::default());
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(20), |v| {
            v["matters"][0]["state"] == "approved"
        })
        .await;
    assert_eq!(view["status"], "completed");
    assert_eq!(env.departments.public_security.applications(), 1);
}
