//! With `[telemetry] otlp_endpoint`, the gateway exports its spans with OTLP/HTTP to a
//! collector, under the trace id the portal sent in `traceparent`, with personal data masked.

use integration_tests::{GatewayProcess, Setup};
use serde_json::json;
use std::time::Duration;

/// A collector that hands over each export's body (protobuf `ExportTraceServiceRequest`).
async fn collector() -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_under_the_portals_trace_id() {
    let (endpoint, mut exports) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let postgres = integration_tests::TestDatabase::create_if_switched_on()
        .await
        .unwrap();
    let store = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("gateway.db").display()),
    };
    let setup = Setup {
        config_extra: format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\n"),
        ..Setup::default()
    };
    let config = integration_tests::write_config(dir.path(), &departments, &setup, &store).unwrap();
    let gateway = GatewayProcess::spawn_with_env(
        &config,
        &[("RUST_LOG", "info"), ("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await
    .unwrap();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let id_number = "11010519491231002X";
    let http = integration_tests::client();
    // A request that calls a department (public security, over mutual TLS) with an identity
    // number in its path's neighbourhood: the request span and the department call span.
    let answer = http
        .post(format!(
            "{}/api/v1/lookups/public-security.identity",
            gateway.url
        ))
        .header("traceparent", &traceparent)
        .json(&json!({"name": "张三", "id_number": id_number}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer = http
        .get(format!(
            "{}/api/v1/subjects/persons/{id_number}",
            gateway.url
        ))
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    // OTLP/protobuf carries trace ids as their 16 raw bytes.
    let wanted = hex_bytes(trace_id);
    let mut received = Vec::new();
    let mut department_call = false;
    let mut request = false;
    let mut masked_path = false;
    while !(department_call && request && masked_path) {
        let body = tokio::time::timeout(Duration::from_secs(60), exports.recv())
            .await
            .expect("the collector received the spans within a minute")
            .expect("the collector runs");
        if contains(&body, &wanted) {
            department_call |= contains(&body, b"department_call");
            request |= contains(&body, b"request");
            masked_path |= contains(&body, "1101**********002X".as_bytes());
        }
        received.push(body);
    }
    for body in &received {
        assert!(
            !contains(body, id_number.as_bytes()),
            "an identity number left in an exported span"
        );
    }
    assert!(gateway.terminate().await.success());
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
