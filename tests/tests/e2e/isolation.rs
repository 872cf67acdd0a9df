//! A misbehaving adapter fails only its own call, with a clear error, and reaches nothing but
//! its own department, while the gateway goes on serving everyone else. What it writes never
//! carries personal data or a secret out, its limits mean what they say, and it is judged for
//! its own faults, never its department's.

use crate::hostile;

use hostile::{hostile_env_with, spawn_lookup};
use integration_tests::{Env, Setup};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ID_NUMBER: &str = "11010519491231002X";
const PHONE: &str = "13912345678";
const NAME: &str = "张三丰";

async fn hostile_env() -> Env {
    hostile_env_with(Setup::default()).await.0
}

async fn hostile(env: &Env, name: &str) -> (u16, Value) {
    env.post(
        &format!("/api/v1/lookups/hostile.{name}"),
        &json!({"probe": 1}),
    )
    .await
}

async fn lookup(env: &Env, name: &str, query: Value) -> (u16, Value) {
    env.post(&format!("/api/v1/lookups/hostile.{name}"), &query)
        .await
}

/// The person every leak test carries in its query.
fn person() -> Value {
    json!({"name": NAME, "id_number": ID_NUMBER, "phone": PHONE})
}

fn assert_no_person(text: &str) {
    for raw in [ID_NUMBER, PHONE, NAME] {
        assert!(!text.contains(raw), "{raw} in {text}");
    }
}

fn failure_message(body: &Value) -> String {
    assert_eq!(body["error"]["code"], "adapter_failed", "{body}");
    assert_eq!(body["error"]["department"], "hostile", "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_fails_only_its_own_call() {
    let env = hostile_env().await;
    let (status, body) = hostile(&env, "trap").await;
    assert_eq!(status, 502);
    assert!(failure_message(&body).contains("trapped"), "{body}");
    let (status, body) = hostile(&env, "echo").await;
    assert_eq!((status, &body["result"]), (200, &json!({"probe": 1})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_hits_the_cpu_limit_without_starving_other_calls() {
    let setup = Setup {
        admin: true,
        ..Setup::default()
    };
    let env = hostile_env_with(setup).await.0;
    let looping = {
        let (http, url) = (env.http.clone(), env.gateway.url());
        tokio::spawn(async move {
            let response = http
                .post(format!("{url}/api/v1/lookups/hostile.loop"))
                .body("{}")
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        })
    };
    // While the loop burns its CPU budget, other adapters' calls are served.
    let (status, _) = env
        .post(
            "/api/v1/lookups/tax.clearance",
            &json!({"taxpayer_id": "91350100M000100Y43"}),
        )
        .await;
    assert_eq!(status, 200);
    let served_during_loop = !looping.is_finished();
    let (status, body) = looping.await.unwrap();
    assert_eq!(status, 502);
    assert!(failure_message(&body).contains("CPU limit"), "{body}");
    assert!(
        served_during_loop,
        "another call was answered while the loop was still running"
    );
    // The loop ran on its department's own threads, not the portal's.
    let moved = "gateway_adapter_moved_total{department=\"hostile\"}";
    assert!(hostile::counter(&env, moved).await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_the_memory_limit() {
    let env = hostile_env().await;
    let (status, body) = hostile(&env, "memory").await;
    assert_eq!(status, 502);
    let message = failure_message(&body);
    assert!(
        message.contains("memory limit") || message.contains("trapped"),
        "{body}"
    );
    let (status, _) = hostile(&env, "echo").await;
    assert_eq!(status, 200, "the gateway serves on after a memory bomb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_reaches_only_its_own_department() {
    let (env, department) = hostile_env_with(Setup::default()).await;
    let (status, body) = hostile(&env, "escape").await;
    assert_eq!(status, 200, "{body}");
    let attempts = body["result"]["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 19, "{body}");
    for attempt in attempts {
        assert_eq!(
            attempt["outcome"], "forbidden",
            "escape attempt was not refused: {attempt}"
        );
    }
    // CONNECT and TRACE (and a method in the wrong case) are refused before they leave.
    let (status, body) = hostile(&env, "methods").await;
    assert_eq!(status, 200, "{body}");
    for attempt in body["result"]["attempts"].as_array().unwrap() {
        assert_eq!(attempt["outcome"], "forbidden", "{attempt}");
    }
    // Nothing reached the department but the gateway's own readiness probes (`GET /`).
    let seen: Vec<String> = department
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| *r != "GET /")
        .cloned()
        .collect();
    assert_eq!(seen, Vec::<String>::new(), "reached the department");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_survives_between_calls() {
    let env = hostile_env().await;
    for _ in 0..3 {
        let (status, body) = hostile(&env, "state").await;
        assert_eq!(status, 200);
        assert_eq!(
            body["result"]["count"], 1,
            "every call sees a fresh instance"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_that_never_answers_times_out_the_host_call() {
    let env = hostile_env().await;
    let started = std::time::Instant::now();
    let (status, body) = hostile(&env, "slow-host").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["attempts"][0]["outcome"], "timeout",
        "{body}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "bounded by the department timeout"
    );
}

// ---------------------------------------------------------------------------------------------
// What an adapter writes: masked and scrubbed wherever it goes
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_code_and_a_field_path_are_masked() {
    let env = hostile_env().await;
    // The department's "code" repeats the applicant.
    let (status, body) = lookup(&env, "reject-pii", person()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "rejected");
    let text = body.to_string();
    assert_no_person(&text);
    for masked in ["1101**********002X", "139****5678", "张**"] {
        assert!(text.contains(masked), "{masked} not in {text}");
    }
    // A field path (and a field code) made of the applicant.
    let mut query = person();
    query["invalid"] = json!(true);
    let (status, body) = lookup(&env, "reject-pii", query).await;
    assert_eq!(status, 422, "{body}");
    let field = body["error"]["fields"][0]["field"].as_str().unwrap();
    assert!(field.starts_with("applicant."), "{body}");
    assert_no_person(&body.to_string());
    assert!(field.contains("1101**********002X"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_of_a_personal_number_is_masked_in_answers() {
    let env = hostile_env().await;
    // `echo-error` repeats its whole query in a department error.
    let shapes = [
        ("110105491231002", "1101*******1002"),
        ("１１０１０５１９４９１２３１００２Ｘ", "1101**********002X"),
        ("１３９１２３４５６７８", "139****5678"),
        ("139 1234 5678", "139****5678"),
        ("139-1234-5678", "139****5678"),
        ("110105 19491231 002X", "1101**********002X"),
        ("ID11010519491231002X", "ID1101**********002X"),
        ("tel13912345678", "tel139****5678"),
    ];
    for (raw, masked) in shapes {
        let (status, body) = lookup(&env, "echo-error", json!({"text": raw})).await;
        assert_eq!(status, 502, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains(raw), "{raw} in {message}");
        assert!(message.contains(masked), "{masked} not in {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_answers_a_plain_message_and_the_request_id() {
    let env = hostile_env().await;
    let response = env
        .http
        .post(format!(
            "{}/api/v1/lookups/hostile.panic",
            env.gateway.url()
        ))
        .header("x-request-id", "trap-request-1")
        .json(&json!({"message": format!("boom for {ID_NUMBER}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    let message = failure_message(&body);
    assert!(message.contains("trapped"), "{body}");
    assert_eq!(body["error"]["request_id"], "trap-request-1", "{body}");
    let text = body.to_string();
    for leak in [
        "backtrace",
        "wasm",
        "hostile_adapter",
        "0x",
        "panicked",
        "boom",
        ID_NUMBER,
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_secrets_never_reach_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("signing.key");
    std::fs::write(&key_file, "file-held-signing-key\n").unwrap();
    let setup = Setup {
        department_extra: vec![(
            "hostile",
            format!(
                "settings = {{ app-secret = \"hostile-s3cret-value\", signing = \"file:{}\", \
                 region = \"fz-0591\" }}",
                key_file.display()
            ),
        )],
        admin: true,
        ..Setup::default()
    };
    let (env, _department) = hostile_env_with(setup).await;
    for key in ["app-secret", "signing"] {
        for form in ["result", "rejected", "invalid", "protocol"] {
            let (status, body) = lookup(&env, "secret", json!({"key": key, "as": form})).await;
            let text = body.to_string();
            for secret in ["hostile-s3cret-value", "file-held-signing-key"] {
                assert!(!text.contains(secret), "{key} as {form}: {text}");
            }
            assert!(
                text.contains("[secret]"),
                "{key} as {form}: {status} {text}"
            );
        }
    }
    // A setting that is no secret reads as it is.
    let (status, body) = lookup(&env, "secret", json!({"key": "region", "as": "result"})).await;
    assert_eq!((status, &body["result"]["echo"]), (200, &json!("fz-0591")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_masks_what_an_adapter_puts_in_a_path() {
    let env = hostile_env_with(Setup {
        admin: true,
        ..Setup::default()
    })
    .await
    .0;
    let (status, body) = lookup(
        &env,
        "chatty",
        json!({"calls": 1, "ms": 1, "query": "?sfz=110105491231002&tel=139%201234%205678&m=１３９１２３４５６７８"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut records = Value::Null;
    for _ in 0..50 {
        records = env.admin_get("/admin/v1/audit?department=hostile").await;
        if records.to_string().contains("/delay/1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = records.to_string();
    assert!(text.contains("/delay/1?sfz="), "{text}");
    for raw in ["110105491231002", "１３９１２３４５６７８"] {
        assert!(!text.contains(raw), "{raw} in {text}");
    }
    for masked in ["sfz=1101*******1002", "m=139****5678"] {
        assert!(text.contains(masked), "{masked} not in {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Limits that mean what they say
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpu_limit_counts_only_the_adapters_own_execution() {
    // 100 department calls of 10 ms each: a second of waiting, microseconds of work, under a
    // CPU limit of 200 ms.
    let env = hostile_env().await;
    let started = Instant::now();
    let (status, body) = lookup(&env, "chatty", json!({"calls": 100, "ms": 10})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["answered"], 100, "{body}");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_clock_bound_covers_the_waiting() {
    // 1000 calls of 10 ms: ten seconds of waiting, past the 3 s bound of the whole call.
    let env = hostile_env().await;
    let started = Instant::now();
    let (status, body) = lookup(&env, "chatty", json!({"calls": 1000, "ms": 10})).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        failure_message(&body).contains("time limit of 3000 ms"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapters_own_sleep_is_its_own_fault() {
    let env = hostile_env().await;
    // Past the call's time limit: the adapter's failure, not the department's timeout.
    let (status, body) = lookup(&env, "sleep", json!({"ms": 10_000})).await;
    assert_eq!(status, 502, "{body}");
    assert!(failure_message(&body).contains("time limit"), "{body}");
    // Asleep past the department's timeout (300 ms), then blaming the department, which it
    // never called.
    let (status, body) = lookup(&env, "sleep", json!({"ms": 400, "claim": "timeout"})).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        failure_message(&body).contains("none of the 0 department request(s)"),
        "{body}"
    );
}

/// The hostile department's two failing matters, as a catalogue addition.
const HOSTILE_MATTERS: &str = r#"
[matters."hostile.sleepy"]
name = "asleep past its time limit"
department = "hostile"
matter_type = "20"
service_object = "1"
time_limit_days = 1

[matters."hostile.stuck"]
name = "its department never answers"
department = "hostile"
matter_type = "20"
service_object = "1"
time_limit_days = 1
"#;

/// `gateway_circuit_open{department="hostile"}` now (0 when never set).
async fn hostile_circuit(env: &Env) -> f64 {
    env.metrics()
        .await
        .lines()
        .find(|l| l.starts_with("gateway_circuit_open{") && l.contains("department=\"hostile\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_counts_only_the_departments_faults() {
    let (env, _department) = hostile_env_with(Setup {
        admin: true,
        catalogue_extra: HOSTILE_MATTERS.into(),
        hostile_limits: "call_timeout_ms = 600".into(),
        department_extra: vec![("hostile", "breaker_failures = 2\nmax_attempts = 3".into())],
        ..Setup::default()
    })
    .await;
    let failed = |view: &Value| view["matters"][0]["state"] == "failed";
    // Three deliveries end at the adapter's own time limit: its fault, the circuit stays shut.
    let case = env.apply("hostile.sleepy", &json!({})).await;
    let view = env
        .wait_for_case(&case, Duration::from_secs(30), failed)
        .await;
    assert!(view.to_string().contains("time limit"), "{view:#}");
    assert_eq!(hostile_circuit(&env).await, 0.0, "{view:#}");
    // Two deliveries the department leaves unanswered open it.
    let case = env.apply("hostile.stuck", &json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while hostile_circuit(&env).await != 1.0 {
        assert!(
            Instant::now() < deadline,
            "the circuit never opened for {case}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_refused_and_dropped() {
    let env = hostile_env().await;
    // Four at once, 20 MB each (the limit is the default 1 MiB): refused, quickly.
    let started = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| spawn_lookup(&env, "big", json!({"bytes": 20_000_000})))
        .collect();
    for call in calls {
        let (status, _, body) = call.await.unwrap();
        let shown: String = body.to_string().chars().take(300).collect();
        assert_eq!(status, 502, "{shown}");
        let message = failure_message(&body);
        assert!(message.contains("max_result_bytes"), "{body}");
        assert!(
            message.contains("more than its limit of 1048576 bytes"),
            "{body}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Under the limit it answers.
    let (status, body) = lookup(&env, "big", json!({"bytes": 100_000})).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["data"].as_str().unwrap().len(), 100_000);
}
