//! The holiday calendar falls behind: from 1 November (Beijing time) until next year's table is
//! in the file, the gateway says so — a `calendar` readiness check naming the year (the node
//! stays ready), `gateway_calendar_years_ahead` at 0, a warning in the log once a day — and
//! `gateway calendar check` prints what the file covers and every problem.
//!
//! "Today" is moved with the orchestrator's calendar watch (`judge_at`), which only the
//! calendar's outlook reads: the rest of the gateway keeps the real clock. The gauge is the
//! process's, so this file holds the one test that reads it.

use gateway_base::time::ms;
use integration_tests::{Env, Setup, gateway_binary, workspace_root};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use time::macros::datetime;

/// `/readyz` on the admin listener, once every department has answered its probe.
async fn ready(env: &Env) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = integration_tests::client()
            .get(format!("{}/readyz", env.admin_url()))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if status == 200 {
            assert_eq!(body["status"], "ready", "{body:#}");
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {status} {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn years_ahead(env: &Env) -> String {
    let text = env.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("gateway_calendar_years_ahead "))
        .unwrap_or_else(|| panic!("no gateway_calendar_years_ahead in:\n{text}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_without_next_year_is_a_warning_from_november() {
    // The demo's calendar: 2025 and 2026.
    let calendar = workspace_root().join("config/holidays.toml");
    let env = Env::start_with(Setup {
        admin: true,
        server_extra: "readiness_interval_ms = 200".into(),
        config_extra: format!("[deadlines]\ncalendar = \"{}\"\n", calendar.display()),
        ..Setup::default()
    })
    .await
    .unwrap();
    let watch = env.gateway.orchestrator.calendar_watch();

    // 31 October 2026: 2027 is not due yet.
    watch.judge_at(Some(ms(datetime!(2026-10-31 12:00 +8))));
    let body = ready(&env).await;
    assert_eq!(body["checks"]["calendar"]["state"], "up", "{body:#}");
    assert!(
        body["checks"]["calendar"].get("detail").is_none(),
        "{body:#}"
    );
    assert_eq!(years_ahead(&env).await, "1");

    // 2 November 2026: the check names 2027, the node stays ready, the gauge drops to 0.
    watch.judge_at(Some(ms(datetime!(2026-11-02 09:00 +8))));
    let body = ready(&env).await;
    let check = &body["checks"]["calendar"];
    assert_eq!(check["state"], "up", "a warning, not an outage: {body:#}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the holiday calendar has no 2027: ")
            && detail.contains("国务院办公厅关于2027年部分节假日安排的通知"),
        "{detail}"
    );
    assert_eq!(years_ahead(&env).await, "0");
}

/// `gateway calendar check --config <config> --today <date>`: its output and exit code.
fn calendar_check(config: &Path, today: &str) -> (String, bool) {
    let out = std::process::Command::new(gateway_binary())
        .args(["calendar", "check", "--config"])
        .arg(config)
        .args(["--today", today])
        .output()
        .expect("the gateway binary runs");
    let text = String::from_utf8(out.stdout).unwrap();
    (text, out.status.success())
}

#[test]
fn calendar_check_prints_the_years_their_working_days_and_every_problem() {
    let config = workspace_root().join("config/gateway.toml");
    let (text, ok) = calendar_check(&config, "2026-10-31");
    assert!(ok, "{text}");
    assert!(text.contains("years covered: 2025, 2026\n"), "{text}");
    // Per month, and the year's total: January 2026 has 21 working days (元旦 on 1–2 January,
    // Sunday 4 January worked), October 18 (国庆节, Saturday 10 October worked).
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("2026 "))
        .unwrap_or_else(|| panic!("no 2026 row: {text}"));
    let cells: Vec<i64> = row.split_whitespace().map(|c| c.parse().unwrap()).collect();
    assert_eq!(cells.len(), 14, "{row}");
    assert_eq!((cells[1], cells[10]), (21, 18), "{row}");
    assert_eq!(cells[13], cells[1..13].iter().sum::<i64>(), "{row}");
    assert!(text.contains("no problem (judged on 2026-10-31"), "{text}");

    // From 1 November the missing year is a problem: exit code 1.
    let (text, ok) = calendar_check(&config, "2026-11-01");
    assert!(!ok, "{text}");
    assert!(
        text.contains("1 problem(s) (judged on 2026-11-01):"),
        "{text}"
    );
    assert!(text.contains("the holiday calendar has no 2027"), "{text}");

    // A broken file: every problem at once, with what is left of the years.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.toml"),
        "[deadlines]\ncalendar = \"holidays.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("holidays.toml"),
        "[2026]\nholidays = [2026-10-01, 2026-10-10]\nworkdays = [2026-10-09, 2026-10-10]\n",
    )
    .unwrap();
    let (text, ok) = calendar_check(&dir.path().join("gateway.toml"), "2026-06-01");
    assert!(!ok, "{text}");
    assert!(text.contains("years covered: 2026\n"), "{text}");
    assert!(text.contains("2 problem(s)"), "{text}");
    assert!(
        text.contains("2026.workdays[0]: 2026-10-09 is a Friday"),
        "{text}"
    );
    assert!(
        text.contains("2026.workdays[1]: 2026-10-10 is listed as a holiday too"),
        "{text}"
    );
}
