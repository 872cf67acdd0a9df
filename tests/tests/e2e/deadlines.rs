//! Promised time limits (承诺时限) and their lights (红黄牌), end to end: a case's steps get their
//! deadline in working days on the real holiday calendar, and the supervision endpoint lists
//! them by department and light. Time is moved with the endpoint's `at` parameter, not by
//! sleeping; the departments take an hour to decide, so every step stays open meanwhile.
//!
//! The calendar is reloaded on a running gateway: a reload that adds a year moves the deadline
//! and the light of an open step, and its timeline records the move; a broken calendar refuses
//! the reload whole. The calendars written here are fixtures (a holiday put where the test needs
//! one), not the State Council's arrangement of any year.

use gateway_base::calendar::Calendar;
use gateway_base::time::{beijing_date, end_of_day_ms, rfc3339};
use integration_tests::{Env, Setup, workspace_root};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const HOUR: i64 = 3_600_000;

fn open_business_form() -> Value {
    json!({
        "enterprise_name": "福州时限测试科技有限公司",
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发",
        "seal_types": ["法定名称章"]
    })
}

fn calendar() -> Calendar {
    Calendar::load(&workspace_root().join("config/holidays.toml")).unwrap()
}

async fn env() -> Env {
    let calendar = workspace_root().join("config/holidays.toml");
    Env::start_with(Setup {
        // Decisions come an hour after receipt: the steps stay open for the whole test.
        ticket_delay: Some(Duration::from_secs(3600)),
        config_extra: format!("[deadlines]\ncalendar = \"{}\"\n", calendar.display()),
        ..Setup::default()
    })
    .await
    .unwrap()
}

fn ms(text: &str) -> i64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// `at=` for a query string (`+` must be escaped there).
fn at(instant_ms: i64) -> String {
    format!("at={}", rfc3339(instant_ms).replace('+', "%2B"))
}

async fn supervision(env: &Env, query: &str) -> Value {
    let (status, body) = env
        .get(&format!("/api/v1/supervision/deadlines?{query}"))
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// (step, light, remaining working days) of each listed item, in order.
fn listed(body: &Value) -> Vec<(String, String, i64)> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["step"].as_str().unwrap().to_string(),
                i["light"].as_str().unwrap().to_string(),
                i["remaining_working_days"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn item<'v>(body: &'v Value, step: &str) -> &'v Value {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["step"] == step)
        .unwrap_or_else(|| panic!("no {step}: {body:#}"))
}

fn matter<'v>(view: &'v Value, step: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == step)
        .unwrap_or_else(|| panic!("no {step}: {view:#}"))
}

/// Noon, Beijing time, of a date.
fn noon(date: time::Date) -> i64 {
    end_of_day_ms(date) - 12 * HOUR
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_turn_yellow_on_their_last_working_day_and_red_after_it() {
    let env = env().await;
    let cal = calendar();
    // 企业开办: licence (market regulation, 3 working days), then seal (public security) and tax
    // registration (tax), 1 working day each, waiting for the licence. Every clock starts at
    // receipt.
    let case_id = env
        .apply("one-thing.open-business", &open_business_form())
        .await;
    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    let received = ms(view["created_at"].as_str().unwrap());
    let licence_deadline = cal.deadline_ms(received, 3);
    let one_day_deadline = cal.deadline_ms(received, 1);

    // The case view: each matter's deadline, and its light now (just after receipt).
    let licence = matter(&view, "licence");
    assert_eq!(ms(licence["deadline"].as_str().unwrap()), licence_deadline);
    assert_eq!(licence["light"], "green", "{view:#}");
    assert_eq!(licence["finished_late"], Value::Null);
    for step in ["seal", "tax"] {
        let m = matter(&view, step);
        assert_eq!(m["state"], "waiting");
        assert_eq!(ms(m["deadline"].as_str().unwrap()), one_day_deadline);
        // Green, or yellow when received on a day off: only the next working day is left.
        let expected = if cal.is_working_day(beijing_date(received)) {
            "green"
        } else {
            "yellow"
        };
        assert_eq!(m["light"], expected, "{step}: {view:#}");
    }

    // At receipt: the licence is green with all its days ahead.
    let body = supervision(&env, &at(received)).await;
    let row = item(&body, "licence");
    assert_eq!(row["case_id"], case_id.as_str());
    assert_eq!(row["matter"], "market-regulation.business-licence");
    assert_eq!(row["matter_name"], "营业执照设立登记");
    assert_eq!(row["department"], "market-regulation");
    assert_eq!(ms(row["received_at"].as_str().unwrap()), received);
    assert_eq!(ms(row["deadline"].as_str().unwrap()), licence_deadline);
    assert!(
        row["deadline"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00+08:00"),
        "24:00 Beijing time: {row}"
    );
    assert_eq!(row["light"], "green");
    assert!(
        row["remaining_working_days"].as_i64().unwrap() >= 3,
        "{row}"
    );

    // The working day before the last: green, two working days left.
    let last = beijing_date(licence_deadline - 1);
    assert_eq!(row["last_working_day"], last.to_string());
    let mut before_last = last.previous_day().unwrap();
    while !cal.is_working_day(before_last) {
        before_last = before_last.previous_day().unwrap();
    }
    let body = supervision(&env, &at(noon(before_last))).await;
    let row = item(&body, "licence");
    assert_eq!(
        (&row["light"], &row["remaining_working_days"]),
        (&json!("green"), &json!(2))
    );

    // The last working day: the licence is yellow; the one-day steps are long overdue, red.
    // Red first, then by deadline.
    let on_last_day = at(noon(last));
    let body = supervision(&env, &on_last_day).await;
    let items = listed(&body);
    assert_eq!(
        items
            .iter()
            .map(|(s, l, _)| (s.as_str(), l.as_str()))
            .collect::<Vec<_>>(),
        [("seal", "red"), ("tax", "red"), ("licence", "yellow")],
        "{body:#}"
    );
    assert_eq!(items[2].2, 1, "one working day left: {body:#}");
    assert!(items[0].2 < 0, "overdue by working days: {body:#}");
    assert_eq!(
        body["counts"],
        json!({
            "market-regulation": {"green": 0, "yellow": 1, "red": 0},
            "public-security": {"green": 0, "yellow": 0, "red": 1},
            "real-estate": {"green": 0, "yellow": 0, "red": 0},
            "tax": {"green": 0, "yellow": 0, "red": 1},
        })
    );

    // Just past its deadline: the licence is red too.
    let body = supervision(&env, &at(licence_deadline + 1000)).await;
    assert_eq!(item(&body, "licence")["light"], "red");
    assert_eq!(body["counts"]["market-regulation"]["red"], 1);

    // Filtering by light lists only that light; the counts stay whole.
    let red = supervision(&env, &format!("{on_last_day}&light=red")).await;
    assert_eq!(
        listed(&red)
            .iter()
            .map(|(s, ..)| s.as_str())
            .collect::<Vec<_>>(),
        ["seal", "tax"]
    );
    assert_eq!(red["counts"], body_counts(&env, &on_last_day).await);
    let yellow = supervision(&env, &format!("{on_last_day}&light=yellow")).await;
    assert_eq!(
        listed(&yellow)
            .iter()
            .map(|(s, ..)| s.as_str())
            .collect::<Vec<_>>(),
        ["licence"]
    );
    let green = supervision(&env, &format!("{on_last_day}&light=green")).await;
    assert!(listed(&green).is_empty(), "{green:#}");

    // Filtering by department: its steps and its counts only.
    let tax = supervision(&env, &format!("{on_last_day}&department=tax")).await;
    assert_eq!(
        tax["counts"],
        json!({"tax": {"green": 0, "yellow": 0, "red": 1}})
    );
    assert_eq!(
        listed(&tax)
            .iter()
            .map(|(s, ..)| s.as_str())
            .collect::<Vec<_>>(),
        ["tax"]
    );
    let both = supervision(
        &env,
        &format!("{on_last_day}&department=market-regulation&light=red"),
    )
    .await;
    assert!(listed(&both).is_empty(), "{both:#}");

    // Before the case was received, it is not on the list.
    let body = supervision(&env, &at(received - 24 * HOUR)).await;
    assert!(listed(&body).is_empty(), "{body:#}");
    assert_eq!(body["counts"]["market-regulation"]["green"], 0);

    // Without `at`: now, just after receipt.
    let body = supervision(&env, "").await;
    assert_eq!(item(&body, "licence")["light"], "green");
}

async fn body_counts(env: &Env, query: &str) -> Value {
    supervision(env, query).await["counts"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_supervision_queries_get_the_one_error_format() {
    let env = env().await;
    let (status, body) = env
        .get("/api/v1/supervision/deadlines?light=purple&at=friday&page=2")
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input");
    let fields: Vec<(&str, &str)> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("light", "enum"),
            ("at", "format"),
            ("page", "unknown_field")
        ],
        "every problem at once: {body}"
    );
    let (status, body) = env
        .get("/api/v1/supervision/deadlines?department=housing")
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
}

/// A gateway (admin listener on) counting working days on the calendar file `calendar`.
async fn env_on(calendar: &Path, extra: &str) -> Env {
    Env::start_with(calendar_setup(calendar, extra))
        .await
        .unwrap()
}

fn calendar_setup(calendar: &Path, extra: &str) -> Setup {
    Setup {
        admin: true,
        ticket_delay: Some(Duration::from_secs(3600)),
        config_extra: format!(
            "[deadlines]\ncalendar = \"{}\"\n{extra}",
            calendar.display()
        ),
        ..Setup::default()
    }
}

/// A calendar file in its own folder, with no year yet: every day counts Monday–Friday.
fn empty_calendar() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holidays.toml");
    std::fs::write(&path, "# no year yet\n").unwrap();
    (dir, path)
}

async fn reload(env: &Env) -> (u16, Value) {
    let response = integration_tests::admin_client()
        .post(format!("{}/admin/v1/config/reload", env.admin_url()))
        .send()
        .await
        .expect("the admin API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The licence step's deadline in the case view, Unix milliseconds.
async fn licence_deadline(env: &Env, case_id: &str) -> i64 {
    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    ms(matter(&view, "licence")["deadline"].as_str().unwrap())
}

/// The case's `deadline_moved` events.
async fn moves(env: &Env, case_id: &str) -> Vec<Value> {
    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "deadline_moved")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adding_the_year_moves_an_open_steps_deadline_and_its_light() {
    let (_dir, calendar) = empty_calendar();
    let env = env_on(&calendar, "").await;
    // A second node on the same store and calendar file: each node reloads its own config.
    let other = env.start_node("b").await.unwrap();
    let case_id = env
        .apply("one-thing.open-business", &open_business_form())
        .await;
    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    let received = ms(view["created_at"].as_str().unwrap());
    let one_day = ms(matter(&view, "seal")["deadline"].as_str().unwrap());

    // Counted Monday–Friday: the licence's last working day, and the day after it, when the
    // licence is red.
    let before = licence_deadline(&env, &case_id).await;
    assert_eq!(before, Calendar::weekdays_only().deadline_ms(received, 3));
    let last = beijing_date(before - 1);
    let day_after = at(noon(last.next_day().unwrap()));
    let row = item(&supervision(&env, &day_after).await, "licence").clone();
    assert_eq!(row["light"], "red", "{row}");

    // The year of that day is added, with that day off.
    let year = last.year();
    let text = format!("[{year}]\nholidays = [{last}]\n");
    std::fs::write(&calendar, &text).unwrap();
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let changes = body["changes"].to_string();
    assert!(
        changes.contains(&format!("calendar years added: {year}")),
        "{body}"
    );
    assert!(
        changes.contains("deadlines moved: 1 open step(s) of 1 case(s)"),
        "{body}"
    );
    assert_eq!(body["needs_restart"], json!([]), "{body}");

    // From the next read: the licence's deadline is a working day later, and the day after
    // the old one it is yellow with one working day left. The one-day steps did not move.
    let new = Calendar::parse(&calendar, &text).unwrap();
    let after = licence_deadline(&env, &case_id).await;
    assert_eq!(after, new.deadline_ms(received, 3));
    assert!(after > before);
    let new_last = beijing_date(after - 1);
    let row = item(&supervision(&env, &day_after).await, "licence").clone();
    assert_eq!(
        (&row["light"], &row["remaining_working_days"]),
        (&json!("yellow"), &json!(1)),
        "{row}"
    );
    assert_eq!(ms(row["deadline"].as_str().unwrap()), after);
    assert_eq!(row["last_working_day"], new_last.to_string());
    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(
        ms(matter(&view, "seal")["deadline"].as_str().unwrap()),
        one_day
    );

    // The timeline records the move, on the licence step.
    let recorded = moves(&env, &case_id).await;
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["step"], "licence");
    assert_eq!(recorded[0]["department"], "market-regulation");
    assert_eq!(recorded[0]["state"], Value::Null);
    assert_eq!(
        recorded[0]["message"],
        format!("节假日安排调整：办结期限（最后工作日）由 {last} 改为 {new_last}")
    );

    // The other node reloads the same file: it serves the new calendar, and the move is on
    // the timeline once.
    let reloaded = other.reload("ops-2").await.unwrap();
    assert!(
        reloaded
            .changes
            .iter()
            .any(|c| c.starts_with("deadlines moved")),
        "{:?}",
        reloaded.changes
    );
    assert_eq!(moves(&env, &case_id).await.len(), 1);
    // A reload that changes nothing moves nothing.
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["changes"].to_string().contains("deadlines"), "{body}");
    assert_eq!(moves(&env, &case_id).await.len(), 1);
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_calendar_in_a_reload_is_refused_whole() {
    let (_dir, calendar) = empty_calendar();
    let env = env_on(&calendar, "").await;
    let case_id = env
        .apply("one-thing.open-business", &open_business_form())
        .await;
    let before = licence_deadline(&env, &case_id).await;
    let last = beijing_date(before - 1);

    // The same year, that day off, but a weekday listed as worked; and a new portal client in
    // the same reload.
    let year = last.year();
    let mut weekday = time::Date::from_calendar_date(year, time::Month::March, 2).unwrap();
    while gateway_base::calendar::is_weekend(weekday) {
        weekday = weekday.next_day().unwrap();
    }
    std::fs::write(
        &calendar,
        format!("[{year}]\nholidays = [{last}]\nworkdays = [{weekday}]\n"),
    )
    .unwrap();
    const KEY: &str = "calendar-test-key";
    let client = format!(
        "\n[[auth.clients]]\nid = \"second-portal\"\napi_key_sha256 = \"{}\"\nscopes = [\"supervision\"]\n",
        gateway_http::auth::sha256_hex(KEY)
    );
    integration_tests::write_config(
        env.dir.path(),
        &env.departments,
        &calendar_setup(&calendar, &client),
        &env.store_url,
    )
    .unwrap();
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "config_refused", "{body}");
    let fields = body["error"]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{body}");
    assert!(
        fields[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("holidays.toml"),
        "{body}"
    );
    assert_eq!(fields[0]["field"], format!("{year}.workdays[0]"), "{body}");
    assert!(
        fields[0]["message"]
            .as_str()
            .unwrap()
            .contains("workdays lists the Saturdays and Sundays"),
        "{body}"
    );

    // Nothing of it applies: the deadline did not move, nothing is on the timeline, and the
    // new client is not accepted.
    assert_eq!(licence_deadline(&env, &case_id).await, before);
    assert!(moves(&env, &case_id).await.is_empty());
    let status = integration_tests::client_with(&[("x-api-key", KEY)])
        .get(format!(
            "{}/api/v1/supervision/deadlines",
            env.gateway.url()
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}
