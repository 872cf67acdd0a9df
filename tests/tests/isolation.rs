//! A misbehaving adapter fails only its own call, with a clear error, and reaches nothing but
//! its own department, while the gateway goes on serving everyone else.

use integration_tests::{Env, Setup};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A department that accepts connections and never answers.
async fn silent_department() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

async fn hostile_env() -> Env {
    Env::start_with(Setup {
        hostile: Some(silent_department().await),
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn hostile(env: &Env, name: &str) -> (u16, Value) {
    env.post(
        &format!("/api/v1/lookups/hostile.{name}"),
        &json!({"probe": 1}),
    )
    .await
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
    let env = hostile_env().await;
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
    let env = hostile_env().await;
    let (status, body) = hostile(&env, "escape").await;
    assert_eq!(status, 200, "{body}");
    let attempts = body["result"]["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 5);
    for attempt in attempts {
        assert_eq!(
            attempt["outcome"], "forbidden",
            "escape attempt was not refused: {attempt}"
        );
    }
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
