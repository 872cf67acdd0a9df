//! 好差评 end to end: evaluations of decided cases through the portal API, the rectification
//! a 非常不满意 opens (lit red once overdue, visit → fix → close), statistics, and reporting
//! to the simulated national system through its adapter — once per evaluation, through its
//! failures and a gateway restart; bad evaluations refused clearly with nothing lost.

use integration_tests::{Env, Setup, client_with};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A case decided at once: public security files a seal on submission.
async fn decided_case(env: &Env) -> String {
    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": ["法定名称章"]
    });
    let case_id = env.apply("public-security.seal-filing", &form).await;
    env.wait_for_case(&case_id, WAIT, |v| v["matters"][0]["state"] == "approved")
        .await;
    case_id
}

fn reporting() -> Setup {
    Setup {
        evaluations: Some("rectification_days = 15\nmax_report_attempts = 10".into()),
        ..Setup::default()
    }
}

/// Poll the case's evaluations until `done` holds (the report is sent by a background loop).
async fn wait_for_evaluations(env: &Env, case_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, list) = env
            .get(&format!("/api/v1/cases/{case_id}/evaluations"))
            .await;
        assert_eq!(status, 200, "{list}");
        if done(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "evaluations of {case_id} did not reach the expected state: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The case's timeline events of the evaluations' kinds: (kind, message).
async fn evaluation_events(env: &Env, case_id: &str) -> Vec<(String, String)> {
    let (status, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(status, 200, "{view}");
    view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            ["evaluated", "rectification_opened", "rectification_closed"]
                .contains(&e["kind"].as_str().unwrap_or_default())
        })
        .map(|e| {
            assert_eq!(e["step"], Value::Null, "{e}");
            assert_eq!(e["state"], Value::Null, "{e}");
            (
                e["kind"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn all_reported(list: &Value) -> bool {
    let items = list["items"].as_array().unwrap();
    !items.is_empty() && items.iter().all(|e| e["report"]["state"] == "reported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_very_dissatisfied_evaluation_opens_a_rectification_that_goes_red_and_is_closed() {
    let env = Env::start_with(reporting()).await.unwrap();
    let case_id = decided_case(&env).await;
    let id_number = "34052419800101001X";
    let (status, evaluation) = env
        .post(
            &format!("/api/v1/cases/{case_id}/evaluations"),
            &json!({
                "channel": "window",
                "level": "非常不满意",
                "indicators": {"overall": 5, "attitude": "非常不满意", "efficiency": 4},
                "anonymous": false,
                "evaluator": {"name": "王小明", "id_number": id_number},
                "comment": "王小明等了两个小时，电话13912345678没人接"
            }),
        )
        .await;
    assert_eq!(status, 201, "{evaluation}");
    assert_eq!(evaluation["level"], 5);
    assert_eq!(evaluation["level_name"], "非常不满意");
    assert_eq!(evaluation["indicators"]["attitude"], 5);
    assert_eq!(evaluation["evaluator_name"], "王**");
    assert_eq!(evaluation["evaluator_id_number"], "3405**********001X");
    assert_eq!(evaluation["departments"], json!(["public-security"]));
    assert_eq!(
        evaluation["matters"][0]["matter"],
        "public-security.seal-filing"
    );
    assert_eq!(evaluation["clerk"], integration_tests::CLERK);
    let shown = evaluation.to_string();
    for secret in ["王小明", id_number, "13912345678"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    let rectification = evaluation["rectification"].as_str().unwrap().to_string();
    // On the case's timeline: evaluated (level and channel) and the rectification opened —
    // nobody's name, number or comment.
    let events = evaluation_events(&env, &case_id).await;
    assert_eq!(
        events,
        [
            (
                "evaluated".to_string(),
                "好差评：非常不满意（窗口即时评）".to_string()
            ),
            (
                "rectification_opened".to_string(),
                "差评整改已开启，限15个工作日内回访、整改并办结".to_string()
            ),
        ]
    );
    let (_, case_view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    let timeline = case_view["timeline"].to_string();
    for secret in ["王小明", "王**", id_number, "13912345678", "两个小时"] {
        assert!(
            !timeline.contains(secret),
            "{secret} on the timeline: {timeline}"
        );
    }

    // Open and green now; yellow on its last working day; red once past its deadline.
    let (_, list) = env.get("/api/v1/supervision/rectifications").await;
    let item = &list["items"][0];
    assert_eq!(item["id"], rectification.as_str(), "{list:#}");
    assert_eq!(
        (item["state"].as_str(), item["light"].as_str()),
        (Some("open"), Some("green"))
    );
    assert_eq!(item["limit_days"], 15);
    assert_eq!(list["open"]["green"], 1);
    let deadline = gateway_base::time::parse_rfc3339(item["deadline"].as_str().unwrap()).unwrap();
    let at = |ms: i64| {
        let text = gateway_base::time::rfc3339(ms);
        text.replace('+', "%2B")
    };
    let (_, last_day) = env
        .get(&format!(
            "/api/v1/supervision/rectifications?at={}",
            at(deadline - 3_600_000)
        ))
        .await;
    assert_eq!(last_day["items"][0]["light"], "yellow", "{last_day:#}");
    let late = at(deadline + 86_400_000);
    let (_, overdue) = env
        .get(&format!(
            "/api/v1/supervision/rectifications?light=red&at={late}"
        ))
        .await;
    assert_eq!(
        overdue["items"][0]["id"],
        rectification.as_str(),
        "{overdue:#}"
    );
    assert!(
        overdue["items"][0]["remaining_working_days"]
            .as_i64()
            .unwrap()
            <= 0
    );
    assert_eq!(overdue["open"]["red"], 1);
    let (_, by_department) = env
        .get(&format!(
            "/api/v1/supervision/rectifications?department=tax&at={late}"
        ))
        .await;
    assert_eq!(by_department["items"], json!([]));

    // Statistics at that later instant: one open, overdue rectification.
    let (status, stats) = env
        .get(&format!(
            "/api/v1/supervision/evaluations/statistics?by=department&at={late}"
        ))
        .await;
    assert_eq!(status, 200, "{stats}");
    let row = &stats["rows"][0];
    assert_eq!(row["key"], "public-security");
    assert_eq!(row["counts"]["very_dissatisfied"], 1);
    assert_eq!(row["satisfaction_rate"], 0.0);
    assert_eq!(
        (
            row["open_rectifications"].as_u64(),
            row["overdue_rectifications"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // Visit, fix, close — in that order (close first is refused; each is recorded once).
    let path = |step: &str| format!("/api/v1/supervision/rectifications/{rectification}/{step}");
    let (status, early) = env
        .post(
            &path("close"),
            &json!({"by": "supervisor-1", "note": "结案"}),
        )
        .await;
    assert_eq!(status, 409, "{early}");
    assert_eq!(early["error"]["code"], "rectification_state");
    let (status, visited) = env
        .post(
            &path("visit"),
            &json!({"note": "电话回访：申请人反映窗口等候时间过长"}),
        )
        .await;
    assert_eq!(status, 200, "{visited}");
    assert_eq!(
        visited["visit"]["by"],
        integration_tests::CLERK,
        "the clerk header stands in"
    );
    let (status, again) = env
        .post(
            &path("visit"),
            &json!({"by": "staff-2", "note": "再次回访"}),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    let (status, fixed) = env
        .post(
            &path("fix"),
            &json!({"by": "staff-1", "note": "增设窗口，高峰期分流"}),
        )
        .await;
    assert_eq!(status, 200, "{fixed}");
    let (status, closed) = env
        .post(
            &path("close"),
            &json!({"by": "supervisor-1", "note": "整改到位，申请人认可"}),
        )
        .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["light"], Value::Null);
    assert_eq!(closed["finished_late"], false);
    assert_eq!(closed["close"]["by"], "supervisor-1");
    let events = evaluation_events(&env, &case_id).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        events[2],
        (
            "rectification_closed".to_string(),
            "差评整改已办结（已回访并整改）".to_string()
        )
    );
    let (_, case_view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    let timeline = case_view["timeline"].to_string();
    for note in ["supervisor-1", "整改到位", "增设窗口"] {
        assert!(
            !timeline.contains(note),
            "{note} on the timeline: {timeline}"
        );
    }
    let (status, _) = env
        .post(&path("fix"), &json!({"by": "staff-1", "note": "又改了"}))
        .await;
    assert_eq!(status, 409, "a closed rectification takes nothing more");
    let (_, open) = env
        .get("/api/v1/supervision/rectifications?state=open")
        .await;
    assert_eq!(open["items"], json!([]));

    // Reported once, in the national system's own format, the card number masked.
    wait_for_evaluations(&env, &case_id, all_reported).await;
    let reports = env.departments.national.reports();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report["evaluateId"], evaluation["id"]);
    assert_eq!(report["projNo"], case_id.as_str());
    assert_eq!(report["serviceCode"], "public-security.seal-filing");
    assert_eq!(report["serviceDepartmentCode"], "public-security");
    assert_eq!(report["evaluateChannel"], "1");
    assert_eq!(report["satisfaction"], "5");
    assert_eq!(report["applicantCardNumber"], "3405**********001X");
    assert_eq!(report["evaluateTime"].as_str().unwrap().len(), 14);
    assert!(!report.to_string().contains(id_number));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_reach_the_national_system_once_through_failures_and_a_restart() {
    let mut env = Env::start_with(reporting()).await.unwrap();
    let case_id = decided_case(&env).await;
    let national = env.departments.national.clone();

    // The national system fails the first three attempts: retried with the same key.
    national.fail_next(3);
    let (status, first) = env
        .post(
            &format!("/api/v1/cases/{case_id}/evaluations"),
            &json!({"channel": "online", "level": 1,
                    "indicators": {"overall": 1, "guide_accuracy": 1, "ease_of_use": 2}}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["anonymous"], true);
    assert_eq!(
        first["rectification"],
        Value::Null,
        "a good evaluation opens none"
    );
    assert_eq!(
        evaluation_events(&env, &case_id).await,
        [(
            "evaluated".to_string(),
            "好差评：非常满意（网上评）".to_string()
        )]
    );
    wait_for_evaluations(&env, &case_id, all_reported).await;
    assert!(national.received() >= 4, "three failures, then the report");
    assert_eq!(national.reports().len(), 1);
    let report = &national.reports()[0];
    assert_eq!(report["evaluateId"], first["id"]);
    assert_eq!(report["anonymous"], "1");
    assert!(report.get("applicantCardNumber").is_none(), "{report}");

    // Down while the gateway restarts: the queued report survives and is sent once after.
    national.set_down(true);
    let before = national.received();
    let (status, second) = env
        .post(
            &format!("/api/v1/cases/{case_id}/evaluations"),
            &json!({"channel": "qr", "level": "基本满意"}),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while national.received() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt was made"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.restart().await.unwrap();
    national.set_down(false);
    let list = wait_for_evaluations(&env, &case_id, all_reported).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let reports = national.reports();
    assert_eq!(reports.len(), 2, "one report per evaluation: {reports:#?}");
    assert_eq!(reports[1]["evaluateId"], second["id"]);
    assert_eq!(reports[1]["satisfaction"], "3");
    assert_eq!(reports[1]["evaluateChannel"], "2");
    assert!(national.refused().is_empty(), "{:?}", national.refused());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_evaluations_are_refused_clearly_and_nothing_is_lost() {
    let other_key = "other-portal-key";
    let env = Env::start_with(Setup {
        // Tax decides after a minute: its case stays undecided for this test.
        ticket_delay: Some(Duration::from_secs(60)),
        config_extra: format!(
            "\n[[auth.clients]]\nid = \"other-portal\"\napi_key_sha256 = \"{}\"\nscopes = [\"apply:*\"]\n",
            gateway_http::auth::sha256_hex(other_key)
        ),
        ..Setup::default()
    })
    .await
    .unwrap();
    let case_id = decided_case(&env).await;
    let path = format!("/api/v1/cases/{case_id}/evaluations");

    // An unknown level, channel and indicator: every problem named, in Chinese.
    let (status, bad) = env
        .post(
            &path,
            &json!({"channel": "fax", "level": "还行", "indicators": {"speed": 1}}),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"level") && fields.contains(&"channel"),
        "{bad}"
    );
    let level = bad["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "level")
        .unwrap();
    assert!(
        level["message"].as_str().unwrap().contains("非常满意"),
        "{level}"
    );
    let (status, bad) = env
        .post(&path, &json!({"channel": "online", "level": 6}))
        .await;
    assert_eq!(status, 422, "{bad}");
    let (status, bad) = env
        .post(
            &path,
            &json!({"channel": "online", "level": 2, "indicators": {"attitude": 1}}),
        )
        .await;
    assert_eq!(status, 422, "a window indicator online: {bad}");
    assert_eq!(bad["error"]["fields"][0]["field"], "indicators.attitude");

    // Another client's case is not found, for reading and for evaluating.
    let other = client_with(&[("x-api-key", other_key)]);
    let url = format!("{}{path}", env.gateway.url());
    let answer = other
        .post(&url)
        .json(&json!({"channel": "online", "level": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    assert_eq!(other.get(&url).send().await.unwrap().status(), 404);

    // A case not decided yet.
    let undecided = env
        .apply(
            "tax.registration",
            &json!({
                "credit_code": "91350100M000100Y43",
                "enterprise_name": "福州测试科技有限公司",
                "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
                "address": "福州市鼓楼区五四路1号",
                "business_scope": "软件开发"
            }),
        )
        .await;
    let (status, refused) = env
        .post(
            &format!("/api/v1/cases/{undecided}/evaluations"),
            &json!({"channel": "online", "level": 1}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "case_not_decided");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("尚未办结"),
        "{refused}"
    );
    let (_, list) = env
        .get(&format!("/api/v1/cases/{undecided}/evaluations"))
        .await;
    assert_eq!(
        (list["decided"].as_bool(), list["items"].clone()),
        (Some(false), json!([]))
    );

    // One per channel: the first is kept, a second refused; two at once, one wins.
    let (status, kept) = env
        .post(&path, &json!({"channel": "window", "level": "满意"}))
        .await;
    assert_eq!(status, 201, "{kept}");
    let (status, second) = env
        .post(&path, &json!({"channel": "window", "level": "不满意"}))
        .await;
    assert_eq!(status, 409, "{second}");
    assert_eq!(second["error"]["code"], "already_evaluated");
    let evaluated = evaluation_events(&env, &case_id).await;
    assert_eq!(
        evaluated,
        [(
            "evaluated".to_string(),
            "好差评：满意（窗口即时评）".to_string()
        )],
        "a refused evaluation leaves no mark"
    );
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .contains("一事一评")
    );
    let race = json!({"channel": "card", "level": "基本满意"});
    let (a, b) = tokio::join!(env.post(&path, &race), env.post(&path, &race));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");

    // Nothing lost, nothing extra: the two accepted, the first as it was; no report queued
    // without `[evaluations] reporting`, and no rectification for a 满意.
    let (_, list) = env.get(&path).await;
    let items = list["items"].as_array().unwrap();
    let channels: Vec<&str> = items
        .iter()
        .map(|e| e["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["window", "card"], "{list:#}");
    assert_eq!(items[0]["id"], kept["id"]);
    assert_eq!(items[0]["level"], 2);
    assert_eq!(items[0]["report"], Value::Null);
    assert_eq!(items[0]["rectification"], Value::Null);
    let (_, stats) = env
        .get("/api/v1/supervision/evaluations/statistics?by=period")
        .await;
    assert_eq!(stats["total"]["total"], 2, "{stats:#}");
    assert_eq!(stats["total"]["satisfaction_rate"], 1.0);
    let (status, bad) = env
        .get("/api/v1/supervision/evaluations/statistics?by=week")
        .await;
    assert_eq!(status, 422, "{bad}");

    // A withdrawn case counts as decided: the service up to the withdrawal may be evaluated.
    let (status, accepted) = env
        .post(
            &format!("/api/v1/cases/{undecided}/withdrawal"),
            &json!({"reason": "经营计划调整，暂不办理"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    env.wait_for_case(&undecided, WAIT, |v| {
        v["matters"][0]["state"] == "withdrawn"
    })
    .await;
    let (status, evaluated) = env
        .post(
            &format!("/api/v1/cases/{undecided}/evaluations"),
            &json!({"channel": "online", "level": "基本满意"}),
        )
        .await;
    assert_eq!(status, 201, "{evaluated}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_store_send_each_report_once() {
    let env = Env::start_with(reporting()).await.unwrap();
    let second = env.start_node("node-b").await.unwrap();
    let case_id = decided_case(&env).await;
    let national = env.departments.national.clone();
    // Evaluations made on both nodes: both reporters look at the same outbox.
    let other = integration_tests::client();
    for (n, channel) in ["window", "qr", "online", "card"].into_iter().enumerate() {
        let base = if n % 2 == 0 {
            env.gateway.url()
        } else {
            second.url()
        };
        let answer = other
            .post(format!("{base}/api/v1/cases/{case_id}/evaluations"))
            .json(&json!({"channel": channel, "level": "满意"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    wait_for_evaluations(&env, &case_id, all_reported).await;
    // Each sent exactly once: a claim keeps the other node off a report being sent.
    assert_eq!(national.reports().len(), 4);
    assert_eq!(national.received(), 4, "no report was sent twice");
    second.shutdown().await;
}
