//! The delivery queue: a slow department's backlog never holds up another department's steps
//! (on one node and on two nodes sharing PostgreSQL), and after a circuit's cool-down exactly
//! one delivery probes the department while the rest wait for its outcome.

use departments::Faults;
use integration_tests::{Env, Setup};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn seal_form(i: usize) -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": [format!("合同专用章{i}")]
    })
}

fn tax_registration() -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    })
}

/// Public security slowed to 2 s an answer, 16 deliveries at a time per node (the default),
/// department calls allowed 10 s so that slowness is not a failure.
fn slow_setup() -> Setup {
    Setup {
        department_extra: vec![("public-security", "max_concurrent = 16".into())],
        department_timeout: Some(Duration::from_secs(10)),
        ..Setup::default()
    }
}

/// 100 seal filings queue behind the slow department; then one tax registration is applied for
/// and must reach the tax department within a second.
async fn another_department_is_not_held_up(env: &Env, gateways: &[String]) {
    env.departments.public_security.set_faults(Faults {
        latency_ms: 2_000,
        ..Faults::default()
    });
    let http = integration_tests::client();
    let apply = move |url: String, service: &'static str, form: Value| {
        let http = http.clone();
        async move {
            let response = http
                .post(format!("{url}/api/v1/services/{service}/applications"))
                .json(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 202);
        }
    };
    // Eight portals applying at once.
    let mut portals = tokio::task::JoinSet::new();
    for portal in 0..8 {
        let apply = apply.clone();
        let gateways = gateways.to_vec();
        portals.spawn(async move {
            for i in (portal..100).step_by(8) {
                let url = gateways[i % gateways.len()].clone();
                apply(url, "public-security.seal-filing", seal_form(i)).await;
            }
        });
    }
    portals.join_all().await;
    let backlog = 100 - env.departments.public_security.applications();
    assert!(
        backlog >= 50,
        "the slow department has a backlog when the tax step arrives ({backlog} waiting)"
    );

    let submitted = Instant::now();
    apply(
        gateways.last().unwrap().clone(),
        "tax.registration",
        tax_registration(),
    )
    .await;
    while env.departments.tax.applications() == 0 {
        assert!(
            submitted.elapsed() < Duration::from_secs(1),
            "the tax step waited behind public security's backlog for over a second \
             ({} of 100 seal filings delivered)",
            env.departments.public_security.applications()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "tax step delivered {:?} after it was accepted, past a backlog of {backlog}",
        submitted.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_departments_backlog_does_not_hold_up_another_department() {
    let env = Env::start_with(slow_setup()).await.unwrap();
    another_department_is_not_held_up(&env, &[env.gateway.url()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_two_nodes_a_slow_departments_backlog_does_not_hold_up_another_department() {
    if !integration_tests::suite_on_postgres() {
        eprintln!("skipped: several nodes need PostgreSQL (GATEWAY_TEST_STORE=postgres)");
        return;
    }
    let env = Env::start_with(slow_setup()).await.unwrap();
    let second = env.start_node("node-b").await.unwrap();
    another_department_is_not_held_up(&env, &[env.gateway.url(), second.url()]).await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_cooldown_one_probe_goes_and_the_rest_wait_for_its_outcome() {
    let env = Env::start_with(Setup {
        department_extra: vec![(
            "public-security",
            "breaker_failures = 2\nbreaker_cooldown_ms = 1500\nmax_attempts = 20".into(),
        )],
        department_timeout: Some(Duration::from_secs(10)),
        ..Setup::default()
    })
    .await
    .unwrap();
    let department = &env.departments.public_security;
    let arrivals = || department.received("kzba");
    // Down: eight filings fail together and open the circuit.
    department.set_faults(Faults {
        down: true,
        latency_ms: 300,
        ..Faults::default()
    });
    let mut cases = Vec::new();
    for i in 0..8 {
        cases.push(
            env.apply("public-security.seal-filing", &seal_form(i))
                .await,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals() < 8 {
        assert!(Instant::now() < deadline, "the first attempts went out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the failures land (300 ms), then bring the department back, slow: the probe takes 1 s.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before_probe = arrivals();
    department.set_faults(Faults {
        latency_ms: 1_000,
        ..Faults::default()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals() == before_probe {
        assert!(
            Instant::now() < deadline,
            "a probe went after the cool-down"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // While the probe is at the department, nothing else goes.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        arrivals(),
        before_probe + 1,
        "exactly one delivery probed the department after the cool-down"
    );
    // The probe succeeded: the circuit closed and the others follow.
    for case_id in &cases {
        env.wait_for_case(case_id, Duration::from_secs(20), |v| {
            v["status"] == "completed"
        })
        .await;
    }
    assert_eq!(department.applications(), 8);
}
