//! Notifications by SMS, end to end: the gateway's outbox, the SMS adapter (`plugins/sms`) and
//! the simulated provider (`departments::sms`: signature, templates, out-id, per-number rate
//! limit, delivery receipts by callback). The applicant's number is registered per case with
//! `PUT /api/v1/cases/{id}/notifications`; every answer and log line shows it masked.

use departments::Faults;
use integration_tests::{Env, GatewayProcess, Setup, write_config};
use serde_json::{Value, json};
use std::time::Duration;

const PHONE: &str = "13912345678";
const MASKED: &str = "139****5678";
const WAIT: Duration = Duration::from_secs(30);

fn tax_form() -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州通知测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    })
}

async fn env_with(notifications: &str) -> Env {
    Env::start_with(Setup {
        notifications: Some(notifications.to_string()),
        admin: true,
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn put_contact(
    http: &reqwest::Client,
    url: &str,
    case_id: &str,
    body: &Value,
) -> (u16, Value) {
    let response = http
        .put(format!("{url}/api/v1/cases/{case_id}/notifications"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn notifications(http: &reqwest::Client, url: &str, case_id: &str) -> (Value, String) {
    let response = http
        .get(format!("{url}/api/v1/cases/{case_id}/notifications"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

/// The notification of `kind` in a case's list.
fn of_kind<'v>(view: &'v Value, kind: &str) -> Option<&'v Value> {
    view["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == kind)
}

/// Poll a case's notifications until `done` (a separate process or provider has no in-process
/// signal for this: the API is polled with a deadline).
async fn wait_notifications(
    http: &reqwest::Client,
    url: &str,
    case_id: &str,
    done: impl Fn(&Value) -> bool,
) -> (Value, String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (view, text) = notifications(http, url, case_id).await;
        if done(&view) {
            return (view, text);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "notifications of {case_id} did not get there: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn state_is(view: &Value, kind: &str, states: &[&str]) -> bool {
    of_kind(view, kind).is_some_and(|n| states.contains(&n["state"].as_str().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applicant_is_told_of_receipt_and_approval_once_each_with_delivery_receipts() {
    let env = env_with("").await;
    let url = env.gateway.url();
    let case_id = env.apply("tax.registration", &tax_form()).await;
    let (status, answer) = put_contact(&env.http, &url, &case_id, &json!({"phone": PHONE})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["phone"], MASKED);
    let (view, text) = wait_notifications(&env.http, &url, &case_id, |v| {
        state_is(v, "received", &["delivered"]) && state_is(v, "approved", &["delivered"])
    })
    .await;
    // The provider sent one message per event, to the number in clear, signed and templated.
    // (Sent side by side when both are due at once: in template order here.)
    let mut messages = env.departments.sms.messages();
    messages.sort_by(|a, b| a.template.cmp(&b.template));
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let templates: Vec<&str> = messages.iter().map(|m| m.template.as_str()).collect();
    assert_eq!(templates, ["SMS_100001", "SMS_100003"]);
    for m in &messages {
        assert_eq!(m.phone, PHONE);
        assert_eq!(m.sign_name, departments::sms::SIGN_NAME);
        assert_eq!(m.params["case"], case_id);
    }
    assert_eq!(messages[1].params["matter"], "新办纳税人税务登记");
    // The approval's notice carries the licence it issued.
    let (_, case) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    let number = case["licences"][0]["number"].as_str().unwrap_or_default();
    assert!(!number.is_empty(), "{case:#}");
    assert_eq!(messages[1].params["licence"], number);
    // Each notification's id is the provider's out-id; receipts recorded.
    let received = of_kind(&view, "received").unwrap();
    assert_eq!(received["id"], messages[0].out_id.as_str());
    assert_eq!(received["phone"], MASKED);
    assert_eq!(received["template"], "SMS_100001");
    assert!(received["delivered_at"].is_string(), "{view:#}");
    assert_eq!(env.departments.sms.receipts_taken().len(), 2);
    // The API never shows the number in clear, nor does the audit log of the exchanges with
    // the provider.
    assert!(!text.contains(PHONE), "{text}");
    assert!(text.contains(MASKED));
    let audit = env
        .admin_get("/admin/v1/audit?department=sms&limit=100")
        .await
        .to_string();
    assert!(audit.contains("/sms/v1/messages"), "{audit}");
    assert!(!audit.contains(PHONE), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_is_retried_while_the_provider_fails_and_sent_once() {
    let env = env_with("max_attempts = 20").await;
    let url = env.gateway.url();
    env.departments.sms.set_faults(Faults {
        down: true,
        ..Faults::default()
    });
    let case_id = env.apply("tax.registration", &tax_form()).await;
    put_contact(&env.http, &url, &case_id, &json!({"phone": PHONE})).await;
    // Two failed attempts, recorded, still pending.
    let (view, _) = wait_notifications(&env.http, &url, &case_id, |v| {
        of_kind(v, "received").is_some_and(|n| n["attempts"].as_i64() >= Some(2))
    })
    .await;
    let received = of_kind(&view, "received").unwrap();
    assert_eq!(received["state"], "pending", "{view:#}");
    assert!(received["message"].as_str().is_some(), "{view:#}");
    assert!(env.departments.sms.messages().is_empty());
    // The provider is back: sent, once.
    env.departments.sms.set_faults(Faults::default());
    wait_notifications(&env.http, &url, &case_id, |v| {
        state_is(v, "received", &["delivered"]) && state_is(v, "approved", &["delivered"])
    })
    .await;
    let messages = env.departments.sms.messages();
    let received_id = received["id"].as_str().unwrap();
    assert_eq!(
        messages.iter().filter(|m| m.out_id == received_id).count(),
        1,
        "{messages:#?}"
    );
    assert_eq!(messages.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_rate_limit_delays_a_notice_without_losing_it() {
    let env = env_with("").await;
    let url = env.gateway.url();
    // One message per number per 3 s: the approval's notice comes within it and is refused
    // (isv.BUSINESS_LIMIT_CONTROL), then sent on a later attempt.
    env.departments
        .sms
        .set_rate_limit(1, Duration::from_secs(3));
    let case_id = env.apply("tax.registration", &tax_form()).await;
    put_contact(&env.http, &url, &case_id, &json!({"phone": PHONE})).await;
    let (view, _) = wait_notifications(&env.http, &url, &case_id, |v| {
        state_is(v, "received", &["delivered"]) && state_is(v, "approved", &["delivered"])
    })
    .await;
    assert!(
        of_kind(&view, "approved").unwrap()["attempts"].as_i64() >= Some(2),
        "{view:#}"
    );
    assert!(env.departments.sms.department.stats().rejected["rate_limit"] >= 1);
    assert_eq!(env.departments.sms.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applicant_who_opted_out_is_sent_nothing_and_bad_input_is_refused() {
    let env = env_with("").await;
    let url = env.gateway.url();
    let case_id = env.apply("tax.registration", &tax_form()).await;
    // Bad input: named fields, nothing stored.
    let (status, body) = put_contact(&env.http, &url, &case_id, &json!({"phone": "12345"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "phone", "{body}");
    let (status, body) = put_contact(&env.http, &url, &case_id, &json!({})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = put_contact(
        &env.http,
        &url,
        &case_id,
        &json!({"phone": PHONE, "fax": "1"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(!body.to_string().contains(PHONE), "{body}");
    let (status, _) = put_contact(&env.http, &url, "no-such-case", &json!({"opt_out": true})).await;
    assert_eq!(status, 404);
    // Opted out with a number: nothing is sent, each notice says why.
    let (status, answer) = put_contact(
        &env.http,
        &url,
        &case_id,
        &json!({"phone": PHONE, "opt_out": true}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["opt_out"], true);
    let (view, _) = wait_notifications(&env.http, &url, &case_id, |v| {
        state_is(v, "received", &["opted_out"]) && state_is(v, "approved", &["opted_out"])
    })
    .await;
    assert_eq!(of_kind(&view, "approved").unwrap()["attempts"], 0);
    assert!(env.departments.sms.messages().is_empty());
    assert_eq!(env.departments.sms.send_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notifications_configured_nothing_is_recorded() {
    let env = Env::start().await.unwrap();
    let case_id = env.apply("tax.registration", &tax_form()).await;
    env.wait_for_case(&case_id, WAIT, |v| v["status"] == "completed")
        .await;
    let (view, _) = notifications(&env.http, &env.gateway.url(), &case_id).await;
    assert_eq!(view["notifications"], json!([]));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sms_per_event_across_a_gateway_killed_mid_send() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let (store, _db) = store_url(dir.path()).await;
    let setup = Setup {
        server_extra: "node_id = \"node-a\"\nclaim_ms = 3000\nshutdown_grace_ms = 2000".into(),
        notifications: Some(String::new()),
        ..Setup::default()
    };
    let config = write_config(dir.path(), &departments, &setup, &store).unwrap();
    let http = integration_tests::client();
    let log = [("RUST_LOG", "info")];
    let gateway = GatewayProcess::spawn_with_env(&config, &log).await.unwrap();
    // The provider sends each message at once and answers 2 s later: the gateway is killed
    // after the provider sent the first, before it heard so.
    departments.sms.set_faults(Faults {
        latency_ms: 2_000,
        ..Faults::default()
    });
    let response = http
        .post(format!(
            "{}/api/v1/services/tax.registration/applications",
            gateway.url
        ))
        .json(&tax_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let case_id = response.json::<Value>().await.unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = put_contact(&http, &gateway.url, &case_id, &json!({"phone": PHONE})).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    while departments.sms.messages().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "nothing was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_output = gateway.output.clone();
    gateway.kill().await;
    departments.sms.set_faults(Faults::default());
    let sent_before_restart = departments.sms.send_requests();

    let gateway = GatewayProcess::spawn_with_env(&config, &log).await.unwrap();
    let (view, text) = wait_notifications(&http, &gateway.url, &case_id, |v| {
        state_is(v, "received", &["sent", "delivered"])
            && state_is(v, "approved", &["sent", "delivered"])
    })
    .await;
    let mut messages = departments.sms.messages();
    messages.sort_by(|a, b| a.template.cmp(&b.template));
    let templates: Vec<&str> = messages.iter().map(|m| m.template.as_str()).collect();
    assert_eq!(
        templates,
        ["SMS_100001", "SMS_100003"],
        "one message per event: {messages:#?}"
    );
    let received = of_kind(&view, "received").unwrap();
    assert_eq!(received["id"], messages[0].out_id.as_str());
    assert!(
        departments.sms.send_requests() > sent_before_restart,
        "the restarted gateway sent the received notice again (same out-id)"
    );
    assert!(!text.contains(PHONE));
    // No log line of either process has the number in clear.
    let mut lines = first_output.lock().unwrap().clone();
    lines.extend(gateway.output.lock().unwrap().iter().cloned());
    assert!(
        lines.iter().all(|l| !l.contains(PHONE)),
        "a log line has the number in clear"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("notification sent") && l.contains(MASKED)),
        "the sends are logged, masked"
    );
    assert!(gateway.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applicant_is_told_what_a_return_asks_by_when_and_of_the_withdrawal() {
    let env = env_with("").await;
    let url = env.gateway.url();
    // Tax returns a registration whose address gives no house number (补正), with a due date.
    let mut form = tax_form();
    form["address"] = json!("福州市鼓楼区五四路");
    let case_id = env.apply("tax.registration", &form).await;
    put_contact(&env.http, &url, &case_id, &json!({"phone": PHONE})).await;
    wait_notifications(&env.http, &url, &case_id, |v| {
        state_is(v, "returned", &["delivered"])
    })
    .await;
    let returned = env
        .departments
        .sms
        .messages()
        .into_iter()
        .find(|m| m.template == "SMS_100002")
        .expect("the return's notice");
    assert_eq!(returned.params["case"], case_id);
    assert!(!returned.params["reason"].is_empty(), "{returned:?}");
    assert_eq!(
        returned.params["due"].len(),
        "2026-12-10".len(),
        "{returned:?}"
    );
    // The applicant withdraws: told once the department has it.
    let (status, body) = env
        .post(
            &format!("/api/v1/cases/{case_id}/withdrawal"),
            &json!({"reason": "不再办理"}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    wait_notifications(&env.http, &url, &case_id, |v| {
        state_is(v, "withdrawn", &["delivered"])
    })
    .await;
    let mut templates: Vec<String> = env
        .departments
        .sms
        .messages()
        .into_iter()
        .map(|m| m.template)
        .collect();
    templates.sort();
    assert_eq!(templates, ["SMS_100001", "SMS_100002", "SMS_100005"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applicants_td_reply_opts_the_number_out_of_every_case_with_it() {
    // Tax decides after a minute: the cases stay open, and their later event is a withdrawal.
    let env = Env::start_with(Setup {
        notifications: Some(String::new()),
        admin: true,
        ticket_delay: Some(Duration::from_secs(60)),
        ..Setup::default()
    })
    .await
    .unwrap();
    let url = env.gateway.url();
    const OTHER: &str = "13800138000";
    let form = |name: &str| {
        let mut form = tax_form();
        form["enterprise_name"] = json!(name);
        form
    };
    let mut cases = Vec::new();
    for (name, phone) in [
        ("福州退订甲有限公司", PHONE),
        ("福州退订乙有限公司", PHONE),
        ("福州退订丙有限公司", OTHER),
    ] {
        let case_id = env.apply("tax.registration", &form(name)).await;
        let (status, answer) =
            put_contact(&env.http, &url, &case_id, &json!({"phone": phone})).await;
        assert_eq!(status, 200, "{answer}");
        cases.push(case_id);
    }
    let [a, b, c] = [&cases[0], &cases[1], &cases[2]];
    for case_id in &cases {
        wait_notifications(&env.http, &url, case_id, |v| {
            state_is(v, "received", &["delivered"])
        })
        .await;
    }
    let sms = env.departments.sms.clone();
    // Any other reply changes nothing; the provider's signed reply "TD" opts the number out.
    assert_eq!(sms.reply(OTHER, "好的，谢谢").await.unwrap(), 200);
    let (view, _) = notifications(&env.http, &url, c).await;
    assert_eq!(view["opt_out"], false, "{view:#}");
    assert_eq!(sms.reply(PHONE, "TD").await.unwrap(), 200);
    for case_id in [a, b] {
        let (view, text) = notifications(&env.http, &url, case_id).await;
        assert_eq!(view["opt_out"], true, "{view:#}");
        assert_eq!(view["opted_out_by"], "reply", "{view:#}");
        assert_eq!(view["phone"], MASKED);
        assert!(!text.contains(PHONE), "{text}");
    }
    let (view, _) = notifications(&env.http, &url, c).await;
    assert_eq!(view["opt_out"], false, "another number: {view:#}");

    // A later event: a withdrawal. The opted-out number is sent nothing; the other is. (One
    // after the other: each withdrawal is written while the gateway's loops are quiet.)
    let withdraw = |case_id: String| {
        let env = &env;
        async move {
            let (status, body) = env
                .post(
                    &format!("/api/v1/cases/{case_id}/withdrawal"),
                    &json!({"reason": "经营计划调整，暂不办理"}),
                )
                .await;
            assert_eq!(status, 202, "{body}");
        }
    };
    withdraw(a.clone()).await;
    let (view, _) = wait_notifications(&env.http, &url, a, |v| {
        state_is(v, "withdrawn", &["opted_out"])
    })
    .await;
    let withdrawn = of_kind(&view, "withdrawn").unwrap();
    assert_eq!(withdrawn["attempts"], 0, "{view:#}");
    assert_eq!(withdrawn["message"], "申请人已退订短信通知");
    withdraw(c.clone()).await;
    wait_notifications(&env.http, &url, c, |v| {
        state_is(v, "withdrawn", &["delivered"])
    })
    .await;
    let to = |phone: &str| {
        sms.messages()
            .into_iter()
            .filter(|m| m.phone == phone)
            .map(|m| (m.params["case"].clone(), m.template))
            .collect::<Vec<_>>()
    };
    let mut to_phone = to(PHONE);
    to_phone.sort();
    let mut expected = vec![
        (a.clone(), "SMS_100001".to_string()),
        (b.clone(), "SMS_100001".to_string()),
    ];
    expected.sort();
    assert_eq!(to_phone, expected, "only the receipts before the reply");
    assert_eq!(to(OTHER).len(), 2, "{:?}", to(OTHER));

    // A case registering the number later starts opted out; the portal may opt it in again.
    let d = env
        .apply("tax.registration", &form("福州退订丁有限公司"))
        .await;
    let (status, answer) = put_contact(&env.http, &url, &d, &json!({"phone": PHONE})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["opt_out"].clone(), answer["opted_out_by"].clone()),
        (json!(true), json!("reply")),
        "{answer:#}"
    );
    wait_notifications(&env.http, &url, &d, |v| {
        state_is(v, "received", &["opted_out"])
    })
    .await;
    let (status, answer) = put_contact(&env.http, &url, b, &json!({"opt_out": false})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["opt_out"], false);
    assert!(answer.get("opted_out_by").is_none(), "{answer:#}");
    assert_eq!(to(PHONE).len(), 2, "nothing more sent to the number");
    // The number is nowhere in clear: the audit log of the reply's callback included.
    let audit = env
        .admin_get("/admin/v1/audit?department=sms&limit=200")
        .await
        .to_string();
    assert!(!audit.contains(PHONE), "{audit}");
}
