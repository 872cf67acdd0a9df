//! Cases that are never lost: idempotent submission, the clerk on the timeline, a live event
//! stream, dead letters and their replay, graceful shutdown, and a gateway killed mid-delivery.

use departments::Faults;
use integration_tests::{Env, GatewayProcess, Setup, write_config};
use serde_json::{Value, json};
use std::time::Duration;

fn seal_form() -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": ["法定名称章"]
    })
}

async fn post_with(
    env: &Env,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = env
        .http
        .post(format!("{}{path}", env.gateway.url()))
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_post_with_the_same_idempotency_key_returns_the_same_case() {
    let env = Env::start().await.unwrap();
    let path = "/api/v1/services/public-security.seal-filing/applications";
    let key = [("Idempotency-Key", "portal-req-0001")];
    let (status, first_headers, first) = post_with(&env, path, &key, &seal_form()).await;
    assert_eq!(status, 202, "{first}");
    assert!(first_headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = post_with(&env, path, &key, &seal_form()).await;
    assert_eq!(status, 202);
    assert_eq!(again["case_id"], first["case_id"]);
    assert_eq!(
        headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    // The same key for a different application is refused, not silently merged.
    let mut other = seal_form();
    other["seal_types"] = json!(["财务专用章"]);
    let (status, _, body) = post_with(&env, path, &key, &other).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("idempotency_conflict")),
        "{body}"
    );
    let case_id = first["case_id"].as_str().unwrap();
    env.wait_for_case(case_id, Duration::from_secs(20), |v| {
        v["status"] == "completed"
    })
    .await;
    assert_eq!(env.departments.public_security.applications(), 1);
    // A repeat after the case has moved on answers where it is now, not `received`.
    assert_eq!(first["status"], "received", "{first}");
    let (status, headers, late) = post_with(&env, path, &key, &seal_form()).await;
    assert_eq!(status, 202, "{late}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(late["case_id"], first["case_id"]);
    assert_eq!(late["status"], "completed", "{late}");
    assert_eq!(env.departments.public_security.applications(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clerk_is_on_the_timeline_and_events_stream_live() {
    let env = Env::start().await.unwrap();
    env.departments.public_security.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let clerk = [
        ("X-Clerk-Id", "clerk-0042"),
        ("X-Clerk-Window", "综合受理3号窗口"),
        ("X-Clerk-Hall", "平潭县政务服务中心"),
    ];
    let (status, _, body) = post_with(
        &env,
        "/api/v1/services/public-security.seal-filing/applications",
        &clerk,
        &seal_form(),
    )
    .await;
    assert_eq!(status, 202);
    let case_id = body["case_id"].as_str().unwrap().to_string();

    let mut stream = env
        .http
        .get(format!(
            "{}/api/v1/cases/{case_id}/events",
            env.gateway.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: submitted") {
                break;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the stream delivered the submission live: {seen}"
    );
    assert!(
        seen.contains("event: received"),
        "the stream starts with the history: {seen}"
    );

    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    let received = &view["timeline"][0];
    assert_eq!(received["kind"], "received");
    assert_eq!(
        received["clerk"],
        json!({"id": "clerk-0042", "window": "综合受理3号窗口", "hall": "平潭县政务服务中心"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_become_a_dead_letter_that_operators_can_replay() {
    let setup = Setup {
        admin: true,
        department_extra: vec![("public-security", "max_attempts = 2".into())],
        ..Setup::default()
    };
    let env = Env::start_with(setup).await.unwrap();
    env.departments.public_security.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let case_id = env.apply("public-security.seal-filing", &seal_form()).await;
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(20), |v| {
            v["matters"][0]["state"] == "failed"
        })
        .await;
    assert!(
        view["matters"][0]["message"]
            .as_str()
            .unwrap()
            .contains("已尝试2次仍未成功"),
        "{view:#}"
    );

    let admin = env.admin_url();
    let letters: Value = integration_tests::admin_client()
        .get(format!("{admin}/admin/v1/dead-letters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = letters["dead_letters"].as_array().unwrap();
    assert!(
        listed.iter().any(|l| l["case_id"] == case_id.as_str()),
        "{letters}"
    );
    // The portal listener does not serve the admin API.
    let (status, _) = env.get("/admin/v1/dead-letters").await;
    assert_eq!(status, 404);

    env.departments
        .public_security
        .set_faults(Faults::default());
    let replay =
        format!("{admin}/admin/v1/dead-letters/{case_id}/public-security.seal-filing/replay");
    let refused = env.http.post(&replay).send().await.unwrap();
    assert_eq!(
        refused.status().as_u16(),
        401,
        "a replay needs an operator's token, not a portal key"
    );
    let replayed = integration_tests::admin_client()
        .post(&replay)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status().as_u16(), 200);
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(20), |v| {
            v["status"] == "completed"
        })
        .await;
    let replay_event = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "replayed")
        .unwrap();
    assert_eq!(replay_event["clerk"]["id"], integration_tests::OPERATOR);
    // What the gateway itself writes on a timeline is read by clerks and applicants: Chinese.
    assert_eq!(replay_event["message"], "运维人员已重新投递", "{view:#}");
    let timeline = view["timeline"].as_array().unwrap();
    let received = timeline.iter().find(|e| e["kind"] == "received").unwrap();
    assert_eq!(received["message"], "已受理「刻章备案」申请", "{view:#}");
    for event in timeline.iter().filter(|e| {
        ["received", "replayed", "delivery_retry", "delivery_failed"]
            .contains(&e["kind"].as_str().unwrap_or_default())
    }) {
        let message = event["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && !message.chars().any(|c| c.is_ascii_alphabetic()),
            "{event}"
        );
    }
    assert_eq!(env.departments.public_security.applications(), 1);
}

/// Start departments and a gateway process on one store; the config and its directory.
async fn process_setup(
    departments: &departments::Departments,
    dir: &std::path::Path,
    store_url: &str,
    node: &str,
) -> std::path::PathBuf {
    let setup = Setup {
        server_extra: format!("node_id = \"{node}\"\nclaim_ms = 3000\nshutdown_grace_ms = 5000"),
        ..Setup::default()
    };
    let node_dir = dir.join(node);
    std::fs::create_dir_all(&node_dir).unwrap();
    write_config(&node_dir, departments, &setup, store_url).unwrap()
}

async fn store_url(dir: &std::path::Path) -> (String, Option<integration_tests::TestDatabase>) {
    match integration_tests::TestDatabase::create_if_switched_on()
        .await
        .unwrap()
    {
        Some(db) => (db.url.clone(), Some(db)),
        None => (
            format!("sqlite://{}", dir.join("gateway.db").display()),
            None,
        ),
    }
}

/// Apply for a seal filing at a gateway process; the case id.
async fn submit_seal(http: &reqwest::Client, gateway: &str, form: &Value) -> String {
    let response = http
        .post(format!(
            "{gateway}/api/v1/services/public-security.seal-filing/applications"
        ))
        .json(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    response.json::<Value>().await.unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Wait until the department has taken a first application (it answers later: a delivery is
/// then in flight). The department lives in this process but records arrivals without a signal.
async fn first_application_taken(department: &departments::Department) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while department.applications() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_all_completed(http: &reqwest::Client, url: &str, cases: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for case_id in cases {
        loop {
            let view: Value = http
                .get(format!("{url}/api/v1/cases/{case_id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if view["status"] == "completed" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "case {case_id} did not complete: {view:#}"
            );
            // A separate process has no in-process events to wait on: poll its API.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_delivery_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let (store, _db) = store_url(dir.path()).await;
    let config = process_setup(&departments, dir.path(), &store, "node-a").await;
    let http = integration_tests::client();
    let gateway = GatewayProcess::spawn(&config).await.unwrap();
    // Slow answers: the department takes each filing at once and answers 1.5 s later.
    departments.public_security.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    let mut cases = Vec::new();
    for i in 0..5 {
        let mut form = seal_form();
        form["seal_types"] = json!([format!("合同专用章{i}")]);
        cases.push(submit_seal(&http, &gateway.url, &form).await);
    }
    // Wait until the department has taken at least one, then cut the power.
    first_application_taken(&departments.public_security).await;
    gateway.kill().await;
    departments.public_security.set_faults(Faults::default());

    let gateway = GatewayProcess::spawn(&config).await.unwrap();
    wait_all_completed(&http, &gateway.url, &cases).await;
    assert_eq!(
        departments.public_security.applications(),
        5,
        "each case reached the department exactly once"
    );
    let ids = departments.public_security.received_ids();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no request id twice: {ids:?}");
    assert!(
        gateway.terminate().await.success(),
        "SIGTERM stops the gateway cleanly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work_and_one_takes_over_when_the_other_dies() {
    if !integration_tests::suite_on_postgres() {
        eprintln!("skipped: several nodes need PostgreSQL (GATEWAY_TEST_STORE=postgres)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let (store, _db) = store_url(dir.path()).await;
    let http = integration_tests::client();
    let a = GatewayProcess::spawn(&process_setup(&departments, dir.path(), &store, "node-a").await)
        .await
        .unwrap();
    let b = GatewayProcess::spawn(&process_setup(&departments, dir.path(), &store, "node-b").await)
        .await
        .unwrap();
    departments.public_security.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    let mut cases = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &a.url } else { &b.url };
        let mut form = seal_form();
        form["seal_types"] = json!([format!("发票专用章{i}")]);
        cases.push(submit_seal(&http, node, &form).await);
    }
    first_application_taken(&departments.public_security).await;
    a.kill().await;
    departments.public_security.set_faults(Faults::default());
    // Node B finishes everything, including what A had claimed, once A's claims expire.
    wait_all_completed(&http, &b.url, &cases).await;
    assert_eq!(departments.public_security.applications(), 8);
    let ids = departments.public_security.received_ids();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "no case twice at the department: {ids:?}");
    b.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_deliveries_dead_letters_and_lights_in_metrics() {
    let setup = Setup {
        admin: true,
        department_extra: vec![("public-security", "max_attempts = 1".into())],
        ..Setup::default()
    };
    let env = Env::start_with(setup).await.unwrap();
    env.departments.public_security.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let case_id = env.apply("public-security.seal-filing", &seal_form()).await;
    env.wait_for_case(&case_id, Duration::from_secs(20), |v| {
        v["matters"][0]["state"] == "failed"
    })
    .await;
    let metrics = env.metrics().await;
    let has = |needle: &str| metrics.lines().any(|l| l.contains(needle));
    assert!(
        has("gateway_dead_letters_total{department=\"public-security\"}"),
        "{metrics}"
    );
    assert!(
        has("gateway_deliveries_total{department=\"public-security\",outcome=\"dead_letter\"}"),
        "{metrics}"
    );
    assert!(
        has("gateway_steps_by_light{department=\"tax\",light=\"green\"}"),
        "every department's lights are there: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_delivery_in_flight_finish_before_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let (store, _db) = store_url(dir.path()).await;
    let config = process_setup(&departments, dir.path(), &store, "node-a").await;
    let http = integration_tests::client();
    let gateway = GatewayProcess::spawn(&config).await.unwrap();
    departments.public_security.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    let case_id = submit_seal(&http, &gateway.url, &seal_form()).await;
    first_application_taken(&departments.public_security).await;
    // The department holds its answer for 1.5 s; the grace is 5 s: the call finishes and is recorded.
    assert!(gateway.terminate().await.success());
    departments.public_security.set_faults(Faults::default());
    let gateway = GatewayProcess::spawn(&config).await.unwrap();
    let view: Value = http
        .get(format!("{}/api/v1/cases/{case_id}", gateway.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        view["status"], "completed",
        "recorded before the process exited: {view:#}"
    );
    assert_eq!(
        departments.public_security.received("kzba"),
        1,
        "nothing was sent again after the restart"
    );
    gateway.kill().await;
}
