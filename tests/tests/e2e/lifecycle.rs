//! The case lifecycle after delivery, end to end through the real adapters and the
//! simulated departments:
//!
//! - 补正: tax returns a 税务登记 whose address has no house number, asking for the address and
//!   a proof of premises; the case shows what is asked and the clock paused; the applicant
//!   uploads the proof (promised at application under a signed commitment: 容缺, listed
//!   until then) and supplements the
//!   address; tax takes the supplement once (a repeat with the same Idempotency-Key is answered
//!   from the first) and registers the taxpayer; the working days the step spent returned are
//!   added to its limit.
//! - 撤回: a 二手房 case whose deed tax is at the tax department and whose transfer waits for
//!   it: the transfer is withdrawn at once and never reaches the registry, tax is told once,
//!   and the deed tax ends withdrawn. A registration withdrawn while its submission is in
//!   flight: the withdrawal waits for the submission's reference, then tax is told once.
//! - Bad input: a supplement for a matter not returned, a supplement with a bad field or a
//!   material not uploaded, a withdrawal of a decided case, another client's case: clear
//!   errors, nothing lost.
//! - The restarting clock: a business licence returned by market regulation and supplemented
//!   counts its whole limit again from the supplement.
//! - One deadline everywhere: a supplemented registration whose paused days moved its deadline
//!   is not red (light scan, deadline supervision) between the deadline it had and the moved
//!   one, is carded red against the moved one, and its decision between the two counts on
//!   time in the supervision statistics.
//! - 补交容缺材料: a registration's promised proof of premises uploaded while tax is processing
//!   it reaches tax with its bytes whole (as the promised material of a matter in hand), the
//!   promise is kept, the step stays processing (`material_supplied` on the timeline) and is
//!   decided at its time. Likewise a business licence's promised 住所使用证明 at market
//!   regulation.
//! - A returned registration is still polled (the same return again records nothing); when
//!   tax ends it itself (逾期未补正, the `lapse_returned` switch), the gateway learns it by
//!   polling: rejected, with the department's message, by a `status` event.
//! - A gateway killed while a supplement is at the department: after the restart it is sent
//!   again under the same key, taken once, stored once.
//! - Contract 0.1: a department whose adapter has no `supplement` or `withdraw` is never asked;
//!   the API refuses up front (409 `unsupported_by_department`, naming the matter), nothing
//!   stored.
//!
//! Runs on SQLite, and on PostgreSQL with `GATEWAY_TEST_STORE=postgres`.

use gateway_base::calendar::Calendar;
use gateway_base::time::{beijing_date, now_ms, parse_rfc3339, rfc3339};
use integration_tests::files::{delivered, file, pdf};
use integration_tests::{Env, PORTAL_KEY, Setup};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const DAY_MS: i64 = 86_400_000;

/// The registration tax returns: its address gives no house number (tax asks for it, and for
/// a proof of premises matching it).
fn registration(address: &str) -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": address,
        "business_scope": "软件开发"
    })
}

fn only_step(view: &Value) -> &Value {
    &view["matters"][0]
}

fn step<'v>(view: &'v Value, id: &str) -> &'v Value {
    view["matters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {view:#}"))
}

async fn put_material(env: &Env, path: &str, bytes: &[u8]) -> (u16, Value) {
    let response = env
        .http
        .put(format!("{}{path}", env.gateway.url()))
        .header("x-api-key", PORTAL_KEY)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// POST with headers; the status, the replay header and the JSON answer.
async fn post_with(env: &Env, path: &str, body: &Value, key: Option<&str>) -> (u16, bool, Value) {
    let mut request = env
        .http
        .post(format!("{}{path}", env.gateway.url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (
        status,
        replayed,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A tax registration applied for with its licence uploaded and its proof of premises
/// promised (容缺): the case id.
async fn apply_with_promise(env: &Env, address: &str) -> String {
    let service = "tax.registration";
    let (status, draft) = env
        .post(&format!("/api/v1/services/{service}/drafts"), &json!({}))
        .await;
    assert_eq!(status, 201, "{draft}");
    let draft = draft["draft_id"].as_str().unwrap().to_string();
    let (status, stored) = put_material(
        env,
        &format!("/api/v1/drafts/{draft}/materials/business-licence"),
        &pdf(40_000, 1),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let path = format!("/api/v1/services/{service}/applications?draft={draft}");
    // 容缺 only with the applicant's signed commitment (`commitment_required`): without a
    // signer, the missing proof of premises is named; the draft is kept.
    let (status, refused) = env.post(&path, &registration(address)).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"]["fields"][0]["field"],
        "materials.premises-proof"
    );
    let response = env
        .http
        .post(format!("{}{path}", env.gateway.url()))
        .header("content-type", "application/json")
        // 张三, as `encodeURIComponent` writes it.
        .header("x-commitment-signed-by", "%E5%BC%A0%E4%B8%89")
        .body(registration(address).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let accepted: Value = response.json().await.unwrap();
    accepted["case_id"].as_str().unwrap().to_string()
}

/// An instant on the day `n` working days before today (the test gateway counts Monday–Friday,
/// no calendar file): the calendar counts exactly `n` working days after that day up to and
/// including today (up to the next working day's eve when today is off).
fn working_days_ago(calendar: &Calendar, n: i64) -> i64 {
    let today = beijing_date(now_ms());
    let mut at = now_ms();
    loop {
        at -= DAY_MS;
        let day = beijing_date(at);
        let after = day.next_day().unwrap();
        if calendar.working_days_between(after, today) >= n {
            return at;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_registration_is_supplemented_and_approved_with_its_clock_paused() {
    let env = Env::start_with(Setup {
        demo_materials: true,
        ticket_delay: Some(Duration::from_millis(300)),
        config_extra: "\n[materials]\ncommitment_required = true\n".into(),
        ..Setup::default()
    })
    .await
    .unwrap();
    let case_id = apply_with_promise(&env, "福州市鼓楼区五四路").await;
    let path = format!("/api/v1/cases/{case_id}");

    // 容缺: the proof of premises is promised, due 10 working days after receipt.
    let (_, view) = env.get(&path).await;
    let commitments = view["commitments"].as_array().unwrap();
    assert_eq!(commitments.len(), 1, "{view:#}");
    assert_eq!(commitments[0]["code"], "premises-proof");
    let calendar = Calendar::weekdays_only();
    let received = parse_rfc3339(view["created_at"].as_str().unwrap()).unwrap();
    let due = calendar.add_working_days(beijing_date(received), 10);
    assert_eq!(commitments[0]["due"], due.to_string());
    assert_eq!(commitments[0]["overdue"], false);
    assert!(commitments[0]["remaining_working_days"].as_i64().unwrap() >= 9);
    let (status, outstanding) = env.get("/api/v1/supervision/commitments").await;
    assert_eq!(status, 200, "{outstanding}");
    assert!(
        outstanding["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["case_id"] == case_id.as_str() && c["code"] == "premises-proof"),
        "{outstanding:#}"
    );

    // Tax returns it: what it asks for is on the case, the clock paused and unlit.
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "returned")
        .await;
    let returned = only_step(&view);
    assert_eq!(view["status"], "returned");
    let asked = &returned["requested"];
    assert!(
        asked["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "address"),
        "{asked:#}"
    );
    assert!(
        asked["materials"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["code"] == "premises-proof"),
        "{asked:#}"
    );
    assert_eq!(returned["clock"]["state"], "paused", "{returned:#}");
    assert_eq!(returned["light"], Value::Null);
    let reference = returned["reference"].as_str().unwrap().to_string();
    let limit = 1; // tax.registration's time_limit_days
    assert_eq!(
        returned["deadline"],
        rfc3339(calendar.deadline_ms(received, limit))
    );

    // Time cannot pass in a test: the return is moved back 3 working days in the store, as
    // if the applicant had taken that long.
    let paused = 3;
    let returned_at = working_days_ago(&calendar, paused);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    sqlx::query("UPDATE steps SET returned_at = $1 WHERE case_id = $2")
        .bind(returned_at)
        .bind(&case_id)
        .execute(&pool)
        .await
        .unwrap();
    // The commitment's signer is recorded with the promised material.
    let signed: Option<String> = sqlx::query_scalar(
        "SELECT committed_by FROM case_materials WHERE case_id = $1 AND code = 'premises-proof'",
    )
    .bind(&case_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(signed.is_some_and(|s| !s.is_empty()));
    // And its due date is moved into the past: supervision lists it overdue, first.
    sqlx::query("UPDATE case_materials SET due = '2026-01-05' WHERE case_id = $1 AND code = 'premises-proof'")
        .bind(&case_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (_, outstanding) = env.get("/api/v1/supervision/commitments").await;
    let first = &outstanding["items"][0];
    assert_eq!(
        (&first["case_id"], &first["overdue"]),
        (&json!(case_id), &json!(true)),
        "{outstanding:#}"
    );
    assert!(first["remaining_working_days"].as_i64().unwrap() < 0);
    assert!(outstanding["overdue"].as_u64().unwrap() >= 1);
    let expected_paused = calendar.working_days_between(
        beijing_date(returned_at).next_day().unwrap(),
        beijing_date(now_ms()),
    );

    // The supplement names a material not uploaded yet: refused, naming it; nothing changes.
    let supplement =
        json!({"fields": {"address": "福州市鼓楼区五四路1号"}, "materials": ["premises-proof"]});
    let supplements = format!("{path}/matters/tax.registration/supplements");
    let (status, _, refused) = post_with(&env, &supplements, &supplement, None).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["fields"][0]["field"], "materials[0]");
    let (_, view) = env.get(&path).await;
    assert_eq!(only_step(&view)["state"], "returned");

    // The proof is uploaded (fulfilling the promise), then the supplement is taken.
    let (status, stored) = put_material(
        &env,
        &format!("{path}/materials/premises-proof"),
        &pdf(30_000, 2),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let (_, view) = env.get(&path).await;
    assert_eq!(view["commitments"], json!([]), "the promise is kept");
    let (status, replayed, accepted) =
        post_with(&env, &supplements, &supplement, Some("supplement-1")).await;
    assert_eq!((status, replayed), (202, false), "{accepted}");
    assert_eq!(accepted["state"], "supplemented");
    // The same request again: answered from the first, nothing stored twice.
    let (status, replayed, _) =
        post_with(&env, &supplements, &supplement, Some("supplement-1")).await;
    assert_eq!((status, replayed), (202, true));
    // The same key with another body: a conflict.
    let other = json!({"fields": {"address": "福州市鼓楼区五四路2号"}});
    let (status, _, conflict) = post_with(&env, &supplements, &other, Some("supplement-1")).await;
    assert_eq!(status, 422, "{conflict}");
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");

    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "approved")
        .await;
    let done = only_step(&view);
    assert_eq!(view["status"], "completed");
    assert_eq!(
        done["clock"]["paused_working_days"], expected_paused,
        "{done:#}"
    );
    assert_eq!(expected_paused, paused);
    assert_eq!(done["clock"]["state"], "stopped");
    assert_eq!(
        done["deadline"],
        rfc3339(calendar.deadline_ms(received, limit + paused as u32)),
        "the deadline moved by the paused working days"
    );
    assert_eq!(done["requested"], Value::Null);
    let kinds: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["supplement_received", "supplement_delivered"] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            1,
            "{kind}: {kinds:?}"
        );
    }

    // Tax took one supplement: the corrected address and the proof of premises.
    let taken = env.departments.tax.supplements(&reference);
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].repeats, 0, "{taken:?}");
    assert_eq!(
        taken[0].body["bzzd"]["scjydz"], "福州市鼓楼区五四路1号",
        "{taken:?}"
    );
    assert!(
        taken[0].body["clbm"]
            .as_array()
            .unwrap()
            .contains(&json!("premises-proof")),
        "{taken:?}"
    );
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_reaches_the_department_holding_a_matter_once_and_nothing_is_delivered_after()
{
    let env = Env::start_with(Setup {
        // The deed tax stays undecided while the applicant withdraws.
        ticket_delay: Some(Duration::from_secs(30)),
        ..Setup::default()
    })
    .await
    .unwrap();
    let form = json!({
        "certificate_number": "闽(2019)平潭不动产权第0011364号",
        "seller": {"name": "张三", "id_number": "11010519491231002X"},
        "buyer": {"name": "李四", "id_number": "34052419800101001X"},
        "buyer_birth_date": "1980-01-01",
        "price": 1200000
    });
    let case_id = env.apply("one-thing.home-transfer", &form).await;
    let path = format!("/api/v1/cases/{case_id}");
    let view = env
        .wait_for_case(&case_id, WAIT, |v| {
            matches!(
                step(v, "deed_tax")["state"].as_str(),
                Some("accepted" | "processing")
            )
        })
        .await;
    assert_eq!(step(&view, "transfer")["state"], "waiting");
    let reference = step(&view, "deed_tax")["reference"]
        .as_str()
        .unwrap()
        .to_string();

    // A blank reason is refused, naming the field; nothing changes.
    let (status, refused) = env
        .post(&format!("{path}/withdrawal"), &json!({"reason": "  "}))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["fields"][0]["field"], "reason");

    let (status, accepted) = env
        .post(
            &format!("{path}/withdrawal"),
            &json!({"reason": "买卖双方协商一致，不再交易"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["withdrawn"], json!(["transfer"]));
    assert_eq!(accepted["notifying"], json!(["deed_tax"]));

    // Withdrawn twice: refused.
    let (status, again) = env
        .post(
            &format!("{path}/withdrawal"),
            &json!({"reason": "再次撤回"}),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "already_withdrawn");

    let view = env
        .wait_for_case(&case_id, WAIT, |v| {
            step(v, "deed_tax")["state"] == "withdrawn"
        })
        .await;
    assert_eq!(view["status"], "withdrawn");
    assert!(view["withdrawn"]["at"].is_string(), "{view:#}");
    let transfer = step(&view, "transfer");
    assert_eq!(transfer["state"], "withdrawn");
    assert_eq!(transfer["reference"], Value::Null);

    // Tax was told once; the registry never received the transfer.
    let told = env.departments.tax.withdrawals(&reference);
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].repeats, 0, "{told:?}");
    assert_eq!(env.departments.real_estate.stats().applications, 0);
    let submitted: Vec<&Value> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["step"] == "transfer" && e["kind"] == "submitted")
        .collect();
    assert!(submitted.is_empty(), "{submitted:?}");
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_supplements_and_withdrawals_are_refused_clearly_and_nothing_is_lost() {
    let other_key = "other-portal-key";
    let env = Env::start_with(Setup {
        ticket_delay: Some(Duration::from_millis(200)),
        config_extra: format!(
            "\n[[auth.clients]]\nid = \"other-portal\"\napi_key_sha256 = \"{}\"\nscopes = [\"apply:*\"]\n",
            gateway_http::auth::sha256_hex(other_key)
        ),
        ..Setup::default()
    })
    .await
    .unwrap();
    // One case approved, one returned.
    let approved = env
        .apply("tax.registration", &registration("福州市鼓楼区五四路1号"))
        .await;
    let returned = env
        .apply("tax.registration", &registration("福州市鼓楼区五四路"))
        .await;
    env.wait_for_case(&approved, WAIT, |v| only_step(v)["state"] == "approved")
        .await;
    env.wait_for_case(&returned, WAIT, |v| only_step(v)["state"] == "returned")
        .await;

    // A supplement for a matter that is not returned.
    let supplement = json!({"fields": {"address": "福州市鼓楼区五四路1号"}});
    let (status, _, refused) = post_with(
        &env,
        &format!("/api/v1/cases/{approved}/matters/tax.registration/supplements"),
        &supplement,
        None,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "not_returned");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("补正"),
        "{refused}"
    );

    // A withdrawal of a decided case.
    let (status, refused) = env
        .post(
            &format!("/api/v1/cases/{approved}/withdrawal"),
            &json!({"reason": "不再需要"}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "case_decided");

    // A supplement with a bad field: every problem named under `fields.`, nothing stored.
    let path = format!("/api/v1/cases/{returned}/matters/tax.registration/supplements");
    let (status, _, refused) =
        post_with(&env, &path, &json!({"fields": {"address": 42}}), None).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_input");
    assert_eq!(
        refused["error"]["fields"][0]["field"], "fields.address",
        "{refused}"
    );
    // An empty supplement, and a step the case does not have.
    let (status, _, refused) = post_with(&env, &path, &json!({}), None).await;
    assert_eq!(status, 422, "{refused}");
    let (status, _, refused) = post_with(
        &env,
        &format!("/api/v1/cases/{returned}/matters/no-such-step/supplements"),
        &supplement,
        None,
    )
    .await;
    assert_eq!(status, 404, "{refused}");

    // Another client's case is not found, for both routes.
    let other = integration_tests::client_with(&[("x-api-key", other_key)]);
    for (route, body) in [
        (path.clone(), supplement.clone()),
        (
            format!("/api/v1/cases/{returned}/withdrawal"),
            json!({"reason": "不是我的"}),
        ),
    ] {
        let response = other
            .post(format!("{}{route}", env.gateway.url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{route}");
    }

    // Nothing was lost: the returned step still waits for its supplement, and takes it.
    let (_, view) = env.get(&format!("/api/v1/cases/{returned}")).await;
    assert_eq!(only_step(&view)["state"], "returned", "{view:#}");
    let reference = only_step(&view)["reference"].as_str().unwrap().to_string();
    assert!(env.departments.tax.supplements(&reference).is_empty());
    let (status, _, accepted) = post_with(&env, &path, &supplement, None).await;
    assert_eq!(status, 202, "{accepted}");
    env.wait_for_case(&returned, WAIT, |v| {
        matches!(
            only_step(v)["state"].as_str(),
            Some("approved" | "returned")
        ) && only_step(v)["clock"]["state"] != "running"
    })
    .await;
    assert_eq!(env.departments.tax.supplements(&reference).len(), 1);
    env.gateway.shutdown().await;
}

/// A plugins folder with today's components, the tax adapter replaced by the committed 0.1.0
/// fixture (no `supplement`, no `withdraw`).
fn plugins_with_the_0_1_tax_adapter(dir: &std::path::Path) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in [
        "real_estate_adapter.wasm",
        "public_security_adapter.wasm",
        "market_regulation_adapter.wasm",
    ] {
        std::fs::copy(
            integration_tests::adapters_dir().join(name),
            plugins.join(name),
        )
        .unwrap();
    }
    let fixture = integration_tests::workspace_root().join("tests/fixtures/tax-adapter-0.1.0.wasm");
    std::fs::copy(fixture, plugins.join("tax_adapter.wasm")).unwrap();
    plugins
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_0_1_department_is_never_asked_to_supplement_or_withdraw() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start_with(Setup {
        plugins_dir: Some(plugins_with_the_0_1_tax_adapter(dir.path())),
        // The 0.1 component reads its app secret as a setting (no host keys before 0.3).
        tax_secret_setting: true,
        // Tax decides after a minute: the registration stays at the department.
        ticket_delay: Some(Duration::from_secs(60)),
        ..Setup::default()
    })
    .await
    .unwrap();
    let case_id = env
        .apply("tax.registration", &registration("福州市鼓楼区五四路1号"))
        .await;
    let path = format!("/api/v1/cases/{case_id}");
    env.wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "accepted")
        .await;

    // A withdrawal would have to be told to tax, whose adapter cannot: refused up front,
    // naming the matter; nothing changed.
    let (status, refused) = env
        .post(
            &format!("{path}/withdrawal"),
            &json!({"reason": "不再办理"}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "unsupported_by_department");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("新办纳税人税务登记"),
        "{refused}"
    );
    let (_, view) = env.get(&path).await;
    assert_eq!(view["withdrawn"], Value::Null);
    assert_eq!(only_step(&view)["state"], "accepted");

    // The 0.1 fixture predates tax's 退回补正, so the step is put `returned` in the store (as
    // a 0.1 adapter reporting a return leaves it): a supplement is refused up front too, and
    // nothing is stored for delivery. Returned steps are polled, and tax would answer that it
    // is still processing: the next poll is put an hour off.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    let returned = "UPDATE steps SET state = 'returned', returned_at = $1, next_poll_at = $2
                    WHERE case_id = $3";
    sqlx::query(returned)
        .bind(now_ms())
        .bind(now_ms() + 3_600_000)
        .bind(&case_id)
        .execute(&pool)
        .await
        .unwrap();
    let (status, _, refused) = post_with(
        &env,
        &format!("{path}/matters/tax.registration/supplements"),
        &json!({"fields": {"address": "福州市鼓楼区五四路2号"}}),
        None,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "unsupported_by_department");
    let actions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM step_actions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(actions, 0, "nothing queued for the department");
    pool.close().await;
    let (_, view) = env.get(&path).await;
    assert_eq!(only_step(&view)["state"], "returned");
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplement_restarts_the_limit_of_a_matter_whose_clock_restarts() {
    let env = Env::start_with(Setup {
        ticket_delay: Some(Duration::from_millis(200)),
        ..Setup::default()
    })
    .await
    .unwrap();
    // Market regulation returns an application whose business scope sums up with 等; the
    // demo catalogue's business licence restarts its limit (3 working days) on a supplement.
    let form = json!({
        "enterprise_name": "福州补正测试科技有限公司",
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发、技术服务等"
    });
    let case_id = env.apply("market-regulation.business-licence", &form).await;
    env.wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "returned")
        .await;

    // Time cannot pass in a test: the case is moved back 4 working days in the store, as if
    // received then.
    let calendar = Calendar::weekdays_only();
    let received = working_days_ago(&calendar, 4);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    sqlx::query("UPDATE cases SET created_at = $1 WHERE id = $2")
        .bind(received)
        .bind(&case_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let limit = 3;
    let path = format!("/api/v1/cases/{case_id}");
    let (_, view) = env.get(&path).await;
    assert_eq!(
        only_step(&view)["deadline"],
        rfc3339(calendar.deadline_ms(received, limit))
    );

    let (status, _, accepted) = post_with(
        &env,
        &format!("{path}/matters/market-regulation.business-licence/supplements"),
        &json!({"fields": {"business_scope": "软件开发、技术服务"}}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let supplied = now_ms();
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "approved")
        .await;
    let done = only_step(&view);
    assert_eq!(done["clock"]["restarted"], true, "{done:#}");
    assert_eq!(done["clock"]["paused_working_days"], 0);
    assert_eq!(
        done["deadline"],
        rfc3339(calendar.deadline_ms(supplied, limit)),
        "the whole limit counts again from the supplement"
    );
    assert!(done["outputs"]["credit_code"].is_string(), "{done:#}");
    // The statistics count the working days of the same clock: from the supplement, decided
    // the day it came (not the 4 working days since the receipt).
    let (status, stats) = env.get("/api/v1/supervision/statistics").await;
    assert_eq!(status, 200, "{stats}");
    let figures = &stats["departments"]["market-regulation"];
    assert_eq!(
        (&figures["decided"], &figures["on_time"]),
        (&json!(1), &json!(1)),
        "{stats:#}"
    );
    if beijing_date(supplied) == beijing_date(now_ms()) {
        assert_eq!(figures["average_working_days"], 0.0, "{stats:#}");
    }
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_of_a_matter_being_submitted_waits_for_its_reference_and_is_told_once() {
    let env = Env::start_with(Setup {
        // Tax decides after a minute; every request to it takes 1.5 s, so the submission is
        // still in flight when the applicant withdraws.
        ticket_delay: Some(Duration::from_secs(60)),
        department_timeout: Some(Duration::from_secs(10)),
        ..Setup::default()
    })
    .await
    .unwrap();
    let tax = &env.departments.tax;
    tax.set_faults(departments::Faults {
        latency_ms: 1500,
        ..departments::Faults::default()
    });
    let case_id = env
        .apply("tax.registration", &registration("福州市鼓楼区五四路1号"))
        .await;
    // The dispatcher's claim on the step is its delivery in flight (polled with a deadline:
    // the claim is not on the API).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let claimed: Option<String> =
            sqlx::query_scalar("SELECT claimed_by FROM steps WHERE case_id = $1")
                .bind(&case_id)
                .fetch_one(&pool)
                .await
                .unwrap();
        if claimed.is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.close().await;

    let path = format!("/api/v1/cases/{case_id}");
    let (status, accepted) = env
        .post(
            &format!("{path}/withdrawal"),
            &json!({"reason": "信息填写有误，撤回重报"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["withdrawn"], json!([]));
    assert_eq!(accepted["notifying"], json!(["tax.registration"]));

    // The submission's receipt gives the reference; the withdrawal follows it, once.
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "withdrawn")
        .await;
    let reference = only_step(&view)["reference"].as_str().unwrap().to_string();
    assert_eq!(tax.applications(), 1, "submitted once");
    let told = tax.withdrawals(&reference);
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].repeats, 0, "{told:?}");
    assert_eq!(view["status"], "withdrawn");
    tax.set_faults(departments::Faults::default());
    env.gateway.shutdown().await;
}

/// A case's view from a gateway process, polled (a separate process has no in-process events
/// to wait on) until `done`, with a deadline.
async fn poll_case(
    http: &reqwest::Client,
    url: &str,
    case_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view: Value = http
            .get(format!("{url}/api/v1/cases/{case_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "case {case_id} did not get there: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_while_delivering_a_supplement_delivers_it_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let db = integration_tests::TestDatabase::create_if_switched_on()
        .await
        .unwrap();
    let store = match &db {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("gateway.db").display()),
    };
    let setup = Setup {
        server_extra: "node_id = \"node-a\"\nclaim_ms = 3000\nshutdown_grace_ms = 5000".into(),
        ..Setup::default()
    };
    let node_dir = dir.path().join("node-a");
    std::fs::create_dir_all(&node_dir).unwrap();
    let config = integration_tests::write_config(&node_dir, &departments, &setup, &store).unwrap();
    let http = integration_tests::client();
    let gateway = integration_tests::GatewayProcess::spawn(&config)
        .await
        .unwrap();
    let response = http
        .post(format!(
            "{}/api/v1/services/tax.registration/applications",
            gateway.url
        ))
        .json(&registration("福州市鼓楼区五四路"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let case_id = response.json::<Value>().await.unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let view = poll_case(&http, &gateway.url, &case_id, |v| {
        only_step(v)["state"] == "returned"
    })
    .await;
    let reference = only_step(&view)["reference"].as_str().unwrap().to_string();

    // Tax takes the supplement at once and answers 1.5 s later: the gateway is killed in
    // between, before it records the answer.
    let tax = &departments.tax;
    tax.set_faults(departments::Faults {
        latency_ms: 1_500,
        ..departments::Faults::default()
    });
    let response = http
        .post(format!(
            "{}/api/v1/cases/{case_id}/matters/tax.registration/supplements",
            gateway.url
        ))
        .json(&json!({"fields": {"address": "福州市鼓楼区五四路1号"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let deadline = tokio::time::Instant::now() + WAIT;
    while tax.supplements(&reference).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.kill().await;
    tax.set_faults(departments::Faults::default());

    // After the restart the supplement is sent again under the same key: tax answers it from
    // the first, takes nothing twice, and decides again (returned once more: the proof of
    // premises it asked for is still missing).
    let gateway = integration_tests::GatewayProcess::spawn(&config)
        .await
        .unwrap();
    let view = poll_case(&http, &gateway.url, &case_id, |v| {
        let delivered = v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "supplement_delivered");
        delivered && only_step(v)["state"] == "returned"
    })
    .await;
    let taken = tax.supplements(&reference);
    assert_eq!(taken.len(), 1, "taken once: {taken:?}");
    assert_eq!(
        taken[0].repeats, 1,
        "sent again after the restart: {taken:?}"
    );
    assert_eq!(taken[0].body["bzzd"]["scjydz"], "福州市鼓楼区五四路1号");
    let received = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "supplement_received")
        .count();
    assert_eq!(received, 1, "stored once");
    let asked = &only_step(&view)["requested"];
    assert_eq!(
        asked["fields"],
        json!([]),
        "the address was corrected: {asked:#}"
    );
    assert!(gateway.terminate().await.success());
    drop(db);
}

/// Run one light scan judged at `at_ms` through the admin API; the (case, light) it recorded.
async fn scan_lights(env: &Env, at_ms: i64) -> Vec<(String, String)> {
    let response = integration_tests::admin_client()
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
                r["light"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplemented_step_is_lit_carded_and_counted_against_its_paused_deadline() {
    let env = Env::start_with(Setup {
        admin: true,
        demo_materials: true,
        ticket_delay: Some(Duration::from_secs(3)),
        config_extra: "\n[materials]\ncommitment_required = true\n".into(),
        ..Setup::default()
    })
    .await
    .unwrap();
    let case_id = apply_with_promise(&env, "福州市鼓楼区五四路").await;
    let path = format!("/api/v1/cases/{case_id}");
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "returned")
        .await;
    let received = parse_rfc3339(view["created_at"].as_str().unwrap()).unwrap();
    // The return moved back 3 working days in the store, as if the applicant had taken that
    // long: the supplement adds them to the limit (tax.registration: 1 working day, resume).
    let calendar = Calendar::weekdays_only();
    let paused = 3;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    sqlx::query("UPDATE steps SET returned_at = $1 WHERE case_id = $2")
        .bind(working_days_ago(&calendar, paused))
        .bind(&case_id)
        .execute(&pool)
        .await
        .unwrap();
    let (status, stored) = put_material(
        &env,
        &format!("{path}/materials/premises-proof"),
        &pdf(30_000, 2),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let supplement =
        json!({"fields": {"address": "福州市鼓楼区五四路1号"}, "materials": ["premises-proof"]});
    let (status, _, accepted) = post_with(
        &env,
        &format!("{path}/matters/tax.registration/supplements"),
        &supplement,
        None,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");

    // Tax decides 3 s after the supplement: until then the step is open. Past the deadline it
    // had before the return, but before the one the paused days moved it to, it is not red:
    // every reading of its deadline counts the paused days.
    let unpaused = calendar.deadline_ms(received, 1);
    let deadline = calendar.deadline_ms(received, 1 + paused as u32);
    let between = unpaused + 3_600_000;
    assert!(between < deadline);
    let recorded = scan_lights(&env, between).await;
    assert!(
        !recorded.contains(&(case_id.clone(), "red".into())),
        "not red before its paused deadline: {recorded:?}"
    );
    let (_, lit) = env
        .get(&format!(
            "/api/v1/supervision/deadlines?at={}",
            rfc3339(between).replace('+', "%2B")
        ))
        .await;
    let item = lit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["case_id"] == case_id.as_str())
        .unwrap_or_else(|| panic!("open at the scan: {lit:#}"));
    assert_ne!(item["light"], "red", "{item:#}");
    assert_eq!(item["deadline"], rfc3339(deadline), "{item:#}");
    // Past the paused deadline it is red, carded against that deadline.
    let recorded = scan_lights(&env, deadline + 3_600_000).await;
    assert!(
        recorded.contains(&(case_id.clone(), "red".into())),
        "{recorded:?}"
    );
    let (status, cards) = env.get("/api/v1/supervision/red-cards").await;
    assert_eq!(status, 200, "{cards}");
    let card = cards["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case_id"] == case_id.as_str())
        .unwrap_or_else(|| panic!("{cards:#}"));
    assert_eq!(card["deadline"], rfc3339(deadline), "{card:#}");

    // Decided: its decision moved in the store to the instant between the two deadlines —
    // the statistics count it on time.
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "approved")
        .await;
    assert_eq!(
        only_step(&view)["deadline"],
        rfc3339(deadline),
        "the case view's deadline"
    );
    sqlx::query("UPDATE steps SET updated_at = $1 WHERE case_id = $2")
        .bind(between)
        .bind(&case_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (status, stats) = env.get("/api/v1/supervision/statistics").await;
    assert_eq!(status, 200, "{stats}");
    let tax = &stats["departments"]["tax"];
    assert_eq!(
        (&tax["decided"], &tax["on_time"]),
        (&json!(1), &json!(1)),
        "{stats:#}"
    );
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promised_material_uploaded_while_tax_processes_the_matter_reaches_tax_whole() {
    // Tax decides 8 s after receipt: long enough for the promised material to come first.
    let env = Env::start_with(Setup {
        demo_materials: true,
        ticket_delay: Some(Duration::from_secs(8)),
        config_extra: "\n[materials]\ncommitment_required = true\n".into(),
        ..Setup::default()
    })
    .await
    .unwrap();
    // An address tax takes as it is, the proof of premises promised (容缺).
    let case_id = apply_with_promise(&env, "福州市鼓楼区五四路1号").await;
    let path = format!("/api/v1/cases/{case_id}");
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "processing")
        .await;
    let reference = only_step(&view)["reference"].as_str().unwrap().to_string();
    assert_eq!(view["commitments"][0]["code"], "premises-proof", "{view:#}");

    // 补交容缺材料: uploaded while tax is processing the registration.
    let proof = pdf(30_000, 7);
    let (status, stored) =
        put_material(&env, &format!("{path}/materials/premises-proof"), &proof).await;
    assert_eq!(status, 201, "{stored}");
    let view = env
        .wait_for_case(&case_id, WAIT, |v| {
            v["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "material_supplied" && !e["state"].is_null())
        })
        .await;
    assert_eq!(view["commitments"], json!([]), "the promise is kept");
    let step = only_step(&view);
    assert_eq!(
        step["state"], "processing",
        "the step stays as tax has it: {view:#}"
    );
    let supplied: Vec<&Value> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "material_supplied")
        .collect();
    assert_eq!(supplied.len(), 2, "queued, then delivered: {supplied:?}");
    assert_eq!(supplied[1]["state"], "processing", "{supplied:?}");
    assert!(
        view["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "delivery_failed"),
        "{view:#}"
    );

    // Tax took it once, as the promised material of a matter in hand, with its bytes whole.
    let taken = env.departments.tax.supplements(&reference);
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(
        taken[0].body["clbm"],
        json!(["premises-proof"]),
        "{taken:?}"
    );
    assert_eq!(taken[0].body["rqcl"], true, "{taken:?}");
    assert_eq!(taken[0].body["bzzd"], json!({}), "{taken:?}");
    assert_eq!(
        delivered(&env.departments.tax, &taken[0].request_id),
        [file("premises-proof", &proof)]
    );

    // And the registration is decided at its time, as before.
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "approved")
        .await;
    assert_eq!(view["status"], "completed");
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_matter_the_department_ends_itself_is_seen_by_polling() {
    let env = Env::start_with(Setup {
        ticket_delay: Some(Duration::from_millis(200)),
        ..Setup::default()
    })
    .await
    .unwrap();
    let tax = &env.departments.tax;
    let case_id = env
        .apply("tax.registration", &registration("福州市鼓楼区五四路"))
        .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "returned")
        .await;
    let events = view["timeline"].as_array().unwrap().len();

    // Returned, its status is still asked on tax's interval; the same return again only
    // moves the next poll: nothing is recorded.
    let asked = tax.received("slzt");
    let deadline = tokio::time::Instant::now() + WAIT;
    while tax.received("slzt") < asked + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a returned step is polled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(only_step(&view)["state"], "returned");
    assert_eq!(
        view["timeline"].as_array().unwrap().len(),
        events,
        "{view:#}"
    );

    // Tax ends it on its own (逾期未补正: the supplement never came); tax calls nobody back,
    // the gateway learns it by polling.
    tax.set_faults(departments::Faults {
        lapse_returned: true,
        ..Default::default()
    });
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "rejected")
        .await;
    tax.set_faults(departments::Faults::default());
    let step = only_step(&view);
    assert_eq!(step["message"], "逾期未补正", "{step:#}");
    assert_eq!(step["requested"], Value::Null, "{step:#}");
    assert_eq!(view["status"], "rejected", "{view:#}");
    let last = view["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["kind"], &last["state"]),
        (&json!("status"), &json!("rejected")),
        "{view:#}"
    );
    env.gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promised_material_uploaded_while_market_regulation_decides_reaches_it_whole() {
    // Market regulation decides 8 s after acceptance: the promised proof comes first.
    let env = Env::start_with(Setup {
        demo_materials: true,
        ticket_delay: Some(Duration::from_secs(8)),
        ..Setup::default()
    })
    .await
    .unwrap();
    let service = "market-regulation.business-licence";
    let (status, draft) = env
        .post(&format!("/api/v1/services/{service}/drafts"), &json!({}))
        .await;
    assert_eq!(status, 201, "{draft}");
    let draft = draft["draft_id"].as_str().unwrap().to_string();
    for (code, bytes) in [
        ("articles-of-association", pdf(40_000, 31)),
        ("shareholder-id", integration_tests::files::jpeg(50_000, 32)),
    ] {
        let (status, stored) = put_material(
            &env,
            &format!("/api/v1/drafts/{draft}/materials/{code}"),
            &bytes,
        )
        .await;
        assert_eq!(status, 201, "{code}: {stored}");
    }
    // The 住所使用证明 promised (容缺).
    let form = json!({
        "enterprise_name": "福州容缺测试科技有限公司",
        "address": "福州市鼓楼区五四路2号",
        "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
        "registered_capital": 100,
        "business_scope": "软件开发、技术服务"
    });
    let (status, accepted) = env
        .post(
            &format!("/api/v1/services/{service}/applications?draft={draft}"),
            &form,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let case_id = accepted["case_id"].as_str().unwrap().to_string();
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "accepted")
        .await;
    assert_eq!(view["commitments"][0]["code"], "premises-proof", "{view:#}");
    let no = only_step(&view)["reference"].as_str().unwrap().to_string();

    let proof = pdf(30_000, 33);
    let (status, stored) = put_material(
        &env,
        &format!("/api/v1/cases/{case_id}/materials/premises-proof"),
        &proof,
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let view = env
        .wait_for_case(&case_id, WAIT, |v| {
            v["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "material_supplied" && !e["state"].is_null())
        })
        .await;
    assert_eq!(view["commitments"], json!([]), "the promise is kept");
    assert_eq!(only_step(&view)["state"], "accepted", "{view:#}");
    let mr = &env.departments.market_regulation;
    let taken = mr.supplements(&no);
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(
        (&taken[0].body["materials"], &taken[0].body["promised"]),
        (&json!(["premises-proof"]), &json!(true)),
        "{taken:?}"
    );
    assert_eq!(
        delivered(mr, &taken[0].request_id),
        [file("premises-proof", &proof)]
    );
    let view = env
        .wait_for_case(&case_id, WAIT, |v| only_step(v)["state"] == "approved")
        .await;
    assert!(
        only_step(&view)["outputs"]["credit_code"].is_string(),
        "{view:#}"
    );
    env.gateway.shutdown().await;
}
