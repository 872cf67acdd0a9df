//! 电子监察 end to end: the light scanner records each step's turn to yellow and to red once
//! (a red card), chases the department's staff (催办) and escalates to its supervisor by SMS,
//! holds chases in quiet hours; the red-card list and the statistics per department and
//! period (with part E's 好差评 figures). Days cannot pass in a test, so scans are run at other instants through the admin
//! API (`POST /admin/v1/supervision/light-scans`), as `GET /api/v1/supervision/deadlines?at=`
//! judges another instant.

use departments::Faults;
use gateway_base::calendar::Calendar;
use gateway_base::time::{end_of_day_ms, now_ms, rfc3339};
use integration_tests::{Env, Setup, admin_client, workspace_root};
use serde_json::{Value, json};
use std::time::Duration;

const HOUR: i64 = 3_600_000;
const STAFF: &str = "13800000001";
const SUPERVISOR: &str = "13800000002";
const WAIT: Duration = Duration::from_secs(30);

fn tax_form(name: &str) -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": name,
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    })
}

fn calendar() -> Calendar {
    Calendar::load(&workspace_root().join("config/holidays.toml")).unwrap()
}

/// Departments that decide after an hour (every step stays open), tax with contacts, SMS
/// notifications with quiet hours 22:00-08:00, the admin API.
async fn env(ticket_delay: Duration) -> Env {
    let holidays = workspace_root().join("config/holidays.toml");
    Env::start_with(Setup {
        admin: true,
        ticket_delay: Some(ticket_delay),
        notifications: Some("quiet_hours = \"22:00-08:00\"".into()),
        department_extra: vec![(
            "tax",
            format!("contacts = {{ staff = \"{STAFF}\", supervisor = \"{SUPERVISOR}\" }}"),
        )],
        config_extra: format!("[deadlines]\ncalendar = \"{}\"\n", holidays.display()),
        ..Setup::default()
    })
    .await
    .unwrap()
}

/// Run one light scan judged at `at_ms`; the (case, step, light) it recorded.
async fn scan(env: &Env, at_ms: i64) -> Vec<(String, String, String)> {
    let response = admin_client()
        .post(format!(
            "{}/admin/v1/supervision/light-scans",
            env.admin_url()
        ))
        .json(&json!({"at": rfc3339(at_ms)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    body["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["case_id"].as_str().unwrap().to_string(),
                r["step"].as_str().unwrap().to_string(),
                r["light"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ms(text: &str) -> i64 {
    gateway_base::time::parse_rfc3339(text).unwrap_or_else(|| panic!("{text}"))
}

async fn case_notifications(env: &Env, case_id: &str) -> Value {
    let (status, body) = env
        .get(&format!("/api/v1/cases/{case_id}/notifications"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The messages the provider sent about a case.
fn messages_of(env: &Env, case_id: &str) -> Vec<departments::sms::SmsMessage> {
    env.departments
        .sms
        .messages()
        .into_iter()
        .filter(|m| m.params.get("case").map(String::as_str) == Some(case_id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_is_chased_on_yellow_and_red_once_escalated_and_held_in_quiet_hours() {
    let env = env(Duration::from_secs(3600)).await;
    let cal = calendar();
    let a = env
        .apply("tax.registration", &tax_form("福州催办甲有限公司"))
        .await;
    let (_, view) = env.get(&format!("/api/v1/cases/{a}")).await;
    let received = ms(view["created_at"].as_str().unwrap());
    // tax.registration: 1 working day. Its deadline is 24:00 of that day (Beijing time).
    let deadline = cal.deadline_ms(received, 1);
    let last_day_noon = deadline - 12 * HOUR;

    // Noon of the last working day: yellow, the staff chased at once.
    assert_eq!(
        scan(&env, last_day_noon).await,
        [(a.clone(), "tax.registration".into(), "yellow".into())]
    );
    let deadline_wait = tokio::time::Instant::now() + WAIT;
    while messages_of(&env, &a).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline_wait,
            "no yellow chase sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let yellow = messages_of(&env, &a);
    assert_eq!(yellow.len(), 1);
    assert_eq!(yellow[0].phone, STAFF);
    assert_eq!(yellow[0].template, "SMS_100006");
    assert_eq!(yellow[0].params["matter"], "新办纳税人税务登记");
    assert_eq!(yellow[0].params["department"], "税务");
    // Scanned again: nothing new.
    assert!(scan(&env, last_day_noon + HOUR).await.is_empty());

    // 23:00 the day after the deadline: red, in quiet hours. The red card is recorded; its
    // chase and escalation wait for 08:00 — from now, as long as they would from 23:00.
    let night = deadline + 23 * HOUR;
    let before = now_ms();
    assert_eq!(
        scan(&env, night).await,
        [(a.clone(), "tax.registration".into(), "red".into())]
    );
    let held = case_notifications(&env, &a).await;
    let chases: Vec<&Value> = held["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "red" || n["kind"] == "escalation")
        .collect();
    assert_eq!(chases.len(), 2, "{held:#}");
    for chase in &chases {
        assert_eq!(chase["state"], "pending", "{held:#}");
        let due = ms(chase["due_at"].as_str().unwrap());
        assert!(
            due >= before + 9 * HOUR - 60_000,
            "held until 08:00: {chase}"
        );
    }

    // Another case, found red at noon: chased and escalated at once, each once.
    let b = env
        .apply("tax.registration", &tax_form("福州催办乙有限公司"))
        .await;
    let noon_after = deadline + 36 * HOUR;
    let recorded = scan(&env, noon_after).await;
    assert_eq!(
        recorded,
        [(b.clone(), "tax.registration".into(), "red".into())]
    );
    assert!(
        scan(&env, noon_after + HOUR).await.is_empty(),
        "once per step"
    );
    let deadline_wait = tokio::time::Instant::now() + WAIT;
    loop {
        let view = case_notifications(&env, &b).await;
        let delivered = view["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] == "delivered")
            .count();
        if delivered == 2 {
            let text = view.to_string();
            assert!(
                !text.contains(STAFF) && !text.contains(SUPERVISOR),
                "{text}"
            );
            assert!(text.contains("138****0001") && text.contains("138****0002"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline_wait, "{view:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sent side by side: in either order.
    let mut sent: Vec<(String, String)> = messages_of(&env, &b)
        .into_iter()
        .map(|m| (m.template, m.phone))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("SMS_100007".to_string(), STAFF.to_string()),
            ("SMS_100008".to_string(), SUPERVISOR.to_string())
        ]
    );
    // Case A's held chases are still not sent: only its yellow one went out.
    assert_eq!(messages_of(&env, &a).len(), 1);

    // The red cards: both, with the department, the deadline and the clerk who received them.
    let (status, cards) = env
        .get("/api/v1/supervision/red-cards?department=tax")
        .await;
    assert_eq!(status, 200, "{cards}");
    let items = cards["items"].as_array().unwrap();
    let cased: Vec<&str> = items
        .iter()
        .map(|c| c["case_id"].as_str().unwrap())
        .collect();
    assert_eq!(cased, [a.as_str(), b.as_str()]);
    assert_eq!(items[0]["department"], "tax");
    assert_eq!(items[0]["matter_name"], "新办纳税人税务登记");
    assert_eq!(ms(items[0]["deadline"].as_str().unwrap()), deadline);
    assert_eq!(items[0]["received_by"]["id"], integration_tests::CLERK);
    assert!(items[0]["late_working_days"].as_i64().unwrap() >= 0);
    // Bad queries: named.
    let (status, body) = env
        .get("/api/v1/supervision/red-cards?from=yesterday")
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "from");
    let (status, _) = env
        .get("/api/v1/supervision/red-cards?department=nope")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_per_department_match_a_known_set_of_cases() {
    // Departments decide at once: two tax cases are approved on the day they are received;
    // public security is down, so a seal filing stays pending (retried) and goes red.
    let env = env(Duration::from_millis(200)).await;
    let start = now_ms() - HOUR;
    env.departments.public_security.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let mut taxes = Vec::new();
    for name in ["福州统计甲有限公司", "福州统计乙有限公司"] {
        taxes.push(env.apply("tax.registration", &tax_form(name)).await);
    }
    for case_id in &taxes {
        env.wait_for_case(case_id, WAIT, |v| v["status"] == "completed")
            .await;
    }
    let seal = env
        .apply(
            "public-security.seal-filing",
            &json!({
                "credit_code": "91350100M000100Y43",
                "enterprise_name": "福州统计丙有限公司",
                "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
                "seal_types": ["法定名称章"]
            }),
        )
        .await;
    // 好差评: one 非常满意, one 非常不满意 (which opens a rectification).
    for (case_id, level) in taxes.iter().zip(["非常满意", "非常不满意"]) {
        let (status, body) = env
            .post(
                &format!("/api/v1/cases/{case_id}/evaluations"),
                &json!({"channel": "online", "level": level, "comment": "办理体验"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // A scan far past every deadline: the open seal filing turns red (first seen red: no
    // yellow); the decided tax steps are not lit.
    let cal = calendar();
    let far = end_of_day_ms(gateway_base::time::beijing_date(
        cal.deadline_ms(now_ms(), 10),
    )) + 12 * HOUR;
    let recorded = scan(&env, far).await;
    assert_eq!(
        recorded,
        [(
            seal.clone(),
            "public-security.seal-filing".into(),
            "red".into()
        )]
    );
    let (status, stats) = env
        .get(&format!(
            "/api/v1/supervision/statistics?from={}",
            rfc3339(start).replace('+', "%2B")
        ))
        .await;
    assert_eq!(status, 200, "{stats}");
    let tax = &stats["departments"]["tax"];
    assert_eq!(tax["decided"], 2, "{stats:#}");
    assert_eq!(tax["on_time"], 2);
    assert_eq!(tax["on_time_rate"], 1.0);
    assert_eq!(tax["average_working_days"], 0.0);
    assert_eq!(
        (tax["yellow"].clone(), tax["red"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(tax["evaluations"], 2);
    assert_eq!(tax["satisfied"], 1);
    assert_eq!(tax["satisfaction_rate"], 0.5);
    assert_eq!(tax["open_rectifications"], 1);
    assert_eq!(tax["overdue_rectifications"], 0);
    let police = &stats["departments"]["public-security"];
    assert_eq!(police["decided"], 0, "{stats:#}");
    assert_eq!(police["on_time_rate"], Value::Null);
    assert_eq!(police["average_working_days"], Value::Null);
    assert_eq!(police["evaluations"], 0);
    assert_eq!(police["satisfaction_rate"], Value::Null);
    assert_eq!(
        (police["yellow"].clone(), police["red"].clone()),
        (json!(0), json!(1))
    );
    // A period that ends before anything: all zeros.
    let (status, empty) = env
        .get("/api/v1/supervision/statistics?from=2020-01-01T00:00:00%2B08:00&to=2020-02-01T00:00:00%2B08:00")
        .await;
    assert_eq!(status, 200);
    assert_eq!(empty["departments"]["tax"]["decided"], 0);
    let (status, _) = env
        .get("/api/v1/supervision/statistics?from=2020-02-01T00:00:00%2B08:00&to=2020-01-01T00:00:00%2B08:00")
        .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_of_two_matters_of_one_department_counts_once_there() {
    // 我要开饭店: the business licence and the food permit (both market regulation), then the
    // tax registration. One 非常不满意 of the case concerns market regulation once — one
    // evaluation, one rectification — though two of its matters were evaluated.
    let env = env(Duration::from_millis(200)).await;
    let start = now_ms() - HOUR;
    let case_id = env
        .apply(
            "one-thing.open-restaurant",
            &json!({
                "enterprise_name": "福州统计餐饮有限公司",
                "address": "福州市鼓楼区五四路2号",
                "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
                "registered_capital": 100,
                "business_scope": "餐饮服务",
                "business_items": ["预包装食品销售"],
                "premises_area": 40
            }),
        )
        .await;
    env.wait_for_case(&case_id, WAIT, |v| v["status"] == "completed")
        .await;
    let (status, body) = env
        .post(
            &format!("/api/v1/cases/{case_id}/evaluations"),
            &json!({"channel": "online", "level": "非常不满意"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["departments"],
        json!(["market-regulation", "tax"]),
        "{body}"
    );
    let (status, stats) = env
        .get(&format!(
            "/api/v1/supervision/statistics?from={}",
            rfc3339(start).replace('+', "%2B")
        ))
        .await;
    assert_eq!(status, 200, "{stats}");
    let market = &stats["departments"]["market-regulation"];
    assert_eq!(market["decided"], 2, "both matters decided: {stats:#}");
    assert_eq!(market["evaluations"], 1, "one evaluation: {stats:#}");
    assert_eq!(market["satisfied"], 0);
    assert_eq!(market["satisfaction_rate"], 0.0);
    assert_eq!(
        market["open_rectifications"], 1,
        "one rectification: {stats:#}"
    );
    assert_eq!(market["overdue_rectifications"], 0);
    let tax = &stats["departments"]["tax"];
    assert_eq!(
        (
            tax["evaluations"].clone(),
            tax["open_rectifications"].clone()
        ),
        (json!(1), json!(1)),
        "{stats:#}"
    );
}
