//! The hostile test adapter's department and the calls the isolation tests make through it,
//! shared by `isolation.rs` and `memory_budget.rs`.

#![allow(dead_code, reason = "each test file uses some of these")]

use integration_tests::{Env, Setup};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The hostile adapter's department: `GET /delay/<ms>` answers `{}` after `ms`, `GET /gate`
/// answers as [`TestDepartment::gate`] says; any other request is held and never answered. Every request that arrives is kept (method and target).
pub struct TestDepartment {
    pub url: String,
    pub seen: Arc<Mutex<Vec<String>>>,
    /// What `GET /gate` answers: 200 once opened, 423 until then (the bomb's `until_open`).
    pub gate: Arc<AtomicBool>,
    /// Notified on every request that arrives.
    arrived: Arc<tokio::sync::Notify>,
}

impl TestDepartment {
    /// Wait until every one of `requests` (method and target, as in `seen`) has arrived.
    pub async fn received(&self, requests: &[&str]) {
        loop {
            let arrived = self.arrived.notified();
            let seen = self.seen.lock().unwrap().clone();
            if requests.iter().all(|r| seen.iter().any(|s| s == r)) {
                return;
            }
            arrived.await;
        }
    }
}

pub async fn test_department() -> TestDepartment {
    use axum::extract::{Path, Request};
    use axum::routing::get;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let arrived = Arc::new(tokio::sync::Notify::new());
    let tell = arrived.clone();
    let gate = Arc::new(AtomicBool::new(false));
    let open = gate.clone();
    let app = axum::Router::new()
        .route(
            "/gate",
            get(move || async move {
                if open.load(Ordering::SeqCst) {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::LOCKED
                }
            }),
        )
        .route(
            "/delay/{ms}",
            get(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "{}"
            }),
        )
        .fallback(std::future::pending::<&'static str>)
        .layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| {
                record
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", request.method(), request.uri()));
                tell.notify_waiters();
                next.run(request)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestDepartment {
        url,
        seen,
        gate,
        arrived,
    }
}

pub async fn hostile_env_with(setup: Setup) -> (Env, TestDepartment) {
    let department = test_department().await;
    let env = Env::start_with(Setup {
        hostile: Some(department.url.clone()),
        ..setup
    })
    .await
    .unwrap();
    (env, department)
}

/// A hostile lookup on a task of its own: its status, `Retry-After` and JSON answer.
pub fn spawn_lookup(
    env: &Env,
    name: &str,
    query: Value,
) -> tokio::task::JoinHandle<(u16, Option<String>, Value)> {
    let http = env.http.clone();
    let url = format!("{}/api/v1/lookups/hostile.{name}", env.gateway.url());
    tokio::spawn(async move {
        let response = http.post(url).json(&query).send().await.unwrap();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (status, retry, response.json().await.unwrap_or(Value::Null))
    })
}

/// The value of a counter or gauge series (0 when absent).
pub async fn counter(env: &Env, series: &str) -> f64 {
    env.metrics()
        .await
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Wait until the metric `series` satisfies `reached` (polling the metrics page; at most ten
/// seconds), and return its value: how a test knows the gateway is in the state it set up.
pub async fn metric_reaches(env: &Env, series: &str, reached: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = counter(env, series).await;
        if reached(value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} stayed at {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
