//! The gateway's own log, as the binary writes it in both formats, under a hostile adapter: no
//! adapter text starts a line, no department secret is written, and a trap's backtrace is
//! there (masked, with the request's id) rather than in the answer.

use integration_tests::{GatewayProcess, Setup};
use serde_json::{Value, json};

const SECRET: &str = "hostile-s3cret-value";
const ID_NUMBER: &str = "11010519491231002X";
/// A line of the gateway's own, as it would look in the text format.
const FORGED: &str = "2026-01-21T10:00:00.000000Z  INFO gateway::admin: adapter activated";

/// Every way an adapter's message could break a line, each followed by a forged line.
fn forgeries() -> Vec<String> {
    vec![
        format!("ok\n{FORGED} operator=\"root\""),
        format!("ok\r\n{FORGED}"),
        format!("ok\r{FORGED}"),
        format!("ok\u{1b}[2K\r{FORGED}"),
        format!("ok\u{2028}{FORGED}\u{85}{FORGED}\u{b}\u{c}"),
        "ok\n{\"timestamp\":\"2026-01-21T10:00:00Z\",\"level\":\"INFO\",\"target\":\"gateway::admin\",\"fields\":{\"message\":\"adapter activated\"}}".into(),
    ]
}

/// Run the binary in `format`, misbehave through the hostile adapter, and return what it wrote.
async fn logged(format: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let store = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let setup = Setup {
        hostile: Some("http://127.0.0.1:9".into()),
        department_extra: vec![(
            "hostile",
            format!("settings = {{ app-secret = \"{SECRET}\" }}"),
        )],
        ..Setup::default()
    };
    let config = integration_tests::write_config(dir.path(), &departments, &setup, &store).unwrap();
    let gateway = GatewayProcess::spawn_with_env(
        &config,
        &[("GATEWAY_LOG_FORMAT", format), ("RUST_LOG", "info")],
    )
    .await
    .unwrap();
    let http = integration_tests::client();
    let lookup = |name: &str, body: Value, request_id: &str| {
        http.post(format!("{}/api/v1/lookups/hostile.{name}", gateway.url))
            .header("x-request-id", request_id)
            .json(&body)
            .send()
    };
    let answer = lookup("log-forge", json!({"lines": forgeries()}), "forge-1")
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // The secret, logged by the adapter and echoed in its error.
    let answer = lookup("secret", json!({"key": "app-secret"}), "secret-1")
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    assert!(!answer.text().await.unwrap().contains(SECRET));
    let answer = lookup(
        "panic",
        json!({"message": format!("{ID_NUMBER} {SECRET}")}),
        "trap-1",
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 502);
    gateway
        .wait_for_line(std::time::Duration::from_secs(10), |l| {
            l.contains("adapter trapped")
        })
        .await;
    let output = gateway.output.clone();
    gateway.terminate().await;
    output.lock().unwrap().clone()
}

/// What holds in either format.
fn check(lines: &[String]) {
    // `SHOW_LOG=1` prints what the binary wrote, to read it by eye.
    if std::env::var_os("SHOW_LOG").is_some() {
        lines.iter().for_each(|l| eprintln!("{l}"));
    }
    assert!(lines.iter().any(|l| l.contains("gateway ready at")));
    for line in lines {
        assert!(!line.starts_with("2026-01-21"), "a forged line: {line}");
        assert!(
            !line.starts_with('{') || line.contains("\"target\""),
            "{line}"
        );
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{2028}'),
            "a control character in {line:?}"
        );
        assert!(!line.contains(SECRET), "the secret in {line}");
        assert!(!line.contains(ID_NUMBER), "an identity number in {line}");
    }
    // Each forgery is inside one line of the adapter's, with the department named.
    let forged: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("adapter activated"))
        .collect();
    assert_eq!(forged.len(), forgeries().len(), "{forged:#?}");
    for line in forged {
        assert!(line.contains("hostile"), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("the secret is [secret]")),
        "{lines:#?}"
    );
    // The trap's detail is in the log, on the request's line.
    let trap = lines
        .iter()
        .find(|l| l.contains("adapter trapped"))
        .expect("the trap is logged");
    assert!(trap.contains("trap-1"), "{trap}");
    assert!(trap.contains("wasm"), "{trap}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_adapter_text_starts_a_line_of_the_text_log() {
    let lines = logged("text").await;
    check(&lines);
    for line in lines.iter().filter(|l| l.contains("adapter activated")) {
        assert!(line.contains(" adapter: "), "the adapter's target: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_the_json_log_is_one_event() {
    let lines = logged("json").await;
    check(&lines);
    for line in lines.iter().filter(|l| l.starts_with('{')) {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if line.contains("adapter activated") {
            assert_eq!(event["target"], "adapter", "{line}");
        }
    }
}
