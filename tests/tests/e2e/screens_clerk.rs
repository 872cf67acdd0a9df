//! The clerk's window through plain HTTP, as a browser without script would use it (uploads as
//! the screens' script sends them): 企业开办 found by its matter's code, a draft with its
//! materials, the form posted with two problems and both shown on their fields at once, fixed
//! and accepted, the receipt with its QR code, the case followed to completed, the clerk on the
//! case's timeline, a withdrawal of a decided case refused in Chinese.
//! SQLite by default; PostgreSQL with `GATEWAY_TEST_STORE=postgres`.

use crate::screens_common;

use integration_tests::Setup;
use integration_tests::files::{pdf, png};
use screens_common::*;
use std::time::Duration;

fn form(id_number: &str, capital: &str) -> Vec<(&'static str, String)> {
    vec![
        ("f.enterprise_name", "福州窗口受理科技有限公司".into()),
        ("f.address", "福州市鼓楼区五四路2号".into()),
        ("f.legal_representative.name", "李四".into()),
        ("f.legal_representative.id_number", id_number.into()),
        ("f.registered_capital", capital.into()),
        ("f.business_scope", "软件开发".into()),
        ("f.seal_types", "法定名称章".into()),
        ("f.seal_types", "财务专用章".into()),
    ]
}

async fn post_form(
    clerk: &mut Visitor,
    path: &str,
    token: &str,
    fields: &[(&str, String)],
) -> Answer {
    let mut pairs: Vec<(&str, &str)> = vec![("_csrf", token)];
    pairs.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
    clerk.post(path, &pairs).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clerk_takes_an_application_from_search_to_completed() {
    let env = start(Setup {
        demo_materials: true,
        ..Setup::default()
    })
    .await;
    let mut clerk = Visitor::new(&env.gateway.url());
    assert_eq!(
        clerk
            .sign_in("/screens", "clerk1", CLERK_PASSWORD)
            .await
            .status,
        303
    );

    // Found by a matter's code; its draft opened.
    let found = clerk.get("/screens/clerk?q=seal-filing").await;
    assert!(found.body.contains("企业开办"), "{}", found.body);
    let token = found.csrf();
    let made = clerk
        .post(
            "/screens/clerk/services/one-thing.open-business/drafts",
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(made.status, 303);
    let draft_path = made.location().to_string();
    let page = clerk.get(&draft_path).await;
    assert_eq!(page.status, 200);
    for label in [
        r#"<label for="f.enterprise_name">"#,
        r#"<label for="f.legal_representative.id_number">"#,
        "<legend>法定代表人</legend>",
        "公司章程",
        r#"<span class="tag required">必须提交"#,
        r#"<span class="tag deferrable">容缺"#,
    ] {
        assert!(page.body.contains(label), "{label} in the form");
    }

    // Materials, as the screens' script uploads them: the bytes, with the CSRF header.
    for (code, bytes) in [
        ("articles-of-association", pdf(40_000, 1)),
        ("seal-impression", png(20_000, 2)),
    ] {
        let url = format!("{}{draft_path}/materials/{code}", clerk.base);
        // On a client of its own: the refusal closes the connection the body was coming on.
        let refused = reqwest::Client::new()
            .put(&url)
            .header("cookie", clerk.cookie.clone().unwrap())
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "no upload without the token");
        let stored = clerk
            .http
            .put(&url)
            .header("cookie", clerk.cookie.clone().unwrap())
            .header("x-csrf-token", &token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(
            stored.status(),
            201,
            "{code}: {}",
            stored.text().await.unwrap()
        );
    }
    let page = clerk.get(&draft_path).await;
    assert!(page.body.contains("已上传：application/pdf"));

    // Two problems, both shown on their fields at once.
    let wrong = post_form(
        &mut clerk,
        &draft_path,
        &token,
        &form("340524198001010010", "一百万"),
    )
    .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    for field in ["legal_representative.id_number", "registered_capital"] {
        assert!(
            wrong.body.contains(&format!(
                r#"<div class="has-problem" data-field="{field}">"#
            )),
            "{field} marked: {}",
            wrong.body
        );
    }
    assert!(wrong.body.contains("预审发现"));
    assert!(
        wrong.body.contains(r#"value="一百万""#),
        "what was typed is kept"
    );
    assert!(!wrong.body.contains("Error"), "no Rust text");

    // Fixed: accepted, and the receipt.
    let accepted = post_form(
        &mut clerk,
        &draft_path,
        &token,
        &form("34052419800101001X", "100"),
    )
    .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let receipt_path = accepted.location().to_string();
    assert!(receipt_path.ends_with("/receipt"), "{receipt_path}");
    let case_id = receipt_path
        .trim_start_matches("/screens/clerk/cases/")
        .trim_end_matches("/receipt")
        .to_string();
    let receipt = clerk.get(&receipt_path).await;
    assert_eq!(receipt.status, 200);
    assert!(receipt.body.contains("受理回执"));
    assert!(receipt.body.contains(&case_id));
    assert!(receipt.body.contains("<svg"), "the QR code");
    assert!(receipt.body.contains("鼓楼区政务服务中心 3号窗口"));
    assert!(
        !receipt.body.contains("34052419800101001X"),
        "no identity number"
    );

    // Followed to completed (woken by the gateway's case events).
    let mut events = env.gateway.orchestrator.subscribe();
    let case_path = format!("/screens/clerk/cases/{case_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = clerk.get(&case_path).await;
        assert_eq!(page.status, 200);
        if page.body.contains(r#"data-status="completed""#) {
            assert!(page.body.contains("已办结"));
            assert!(page.body.contains("刻章备案"));
            break;
        }
        // An event or a lag: either way the page is read again.
        let _ = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the case completes");
    }
    // The live timeline ends with the case: every event, in Chinese.
    let stream = clerk.get(&format!("{case_path}/events")).await;
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .starts_with("text/event-stream")
    );
    assert!(
        stream.body.contains(r#""status_code":"completed""#),
        "{}",
        stream.body
    );
    // What happened is said in words, not as the event's code in brackets.
    for line in stream.body.lines().filter_map(|l| l.strip_prefix("data:")) {
        let event: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        let text = event["text"].as_str().unwrap_or_default();
        for kind in gateway_base::model::EventKind::ALL {
            let code = serde_json::to_value(kind).unwrap();
            let code = code.as_str().unwrap();
            assert!(!text.contains(&format!("（{code}）")), "{code} in {text}");
        }
    }

    // The clerk is on the case as X-Clerk-* would have put them.
    let events = env
        .gateway
        .orchestrator
        .store()
        .events(&case_id)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.clerk.as_ref().is_some_and(|c| c.id == "clerk1"
                && c.window.as_deref() == Some("3号窗口")
                && c.hall.as_deref() == Some("鼓楼区政务服务中心"))),
        "the clerk on the case's events"
    );

    // A decided case is not withdrawn; the refusal is a Chinese page.
    let refused = clerk
        .post(
            &format!("{case_path}/withdrawal"),
            &[("_csrf", &token), ("reason", "经营计划调整")],
        )
        .await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("当前状态不允许此操作"));
}

/// Read `path` until its body holds `needle`, woken by the gateway's case events (at most a
/// minute); the page that holds it.
async fn page_once(
    clerk: &mut Visitor,
    env: &integration_tests::Env,
    path: &str,
    needle: &str,
) -> Answer {
    let mut events = env.gateway.orchestrator.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = clerk.get(path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        if page.body.contains(needle) {
            return page;
        }
        let _ = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("{needle} on {path} within a minute: {}", page.body));
    }
}

/// A tax registration taken at the window with its licence uploaded and its proof of
/// premises promised (容缺), at an address without a house number (tax returns those): the
/// case's page.
async fn registration_at_the_window(clerk: &mut Visitor, address: &str) -> (String, String) {
    let found = clerk.get("/screens/clerk").await;
    let token = found.csrf();
    let made = clerk
        .post(
            "/screens/clerk/services/tax.registration/drafts",
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let draft_path = made.location().to_string();
    let stored = clerk
        .http
        .put(format!(
            "{}{draft_path}/materials/business-licence",
            clerk.base
        ))
        .header("cookie", clerk.cookie.clone().unwrap())
        .header("x-csrf-token", &token)
        .body(pdf(30_000, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 201, "{}", stored.text().await.unwrap());
    let fields: Vec<(&str, String)> = vec![
        ("f.credit_code", "91350100M000100Y43".into()),
        ("f.enterprise_name", "福州测试科技有限公司".into()),
        ("f.legal_representative.name", "张三".into()),
        (
            "f.legal_representative.id_number",
            "11010519491231002X".into(),
        ),
        ("f.address", address.into()),
        ("f.business_scope", "软件开发".into()),
        ("commitment", "张三".into()),
    ];
    let accepted = post_form(clerk, &draft_path, &token, &fields).await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let case_path = accepted.location().trim_end_matches("/receipt").to_string();
    (case_path, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_returned_matter_is_supplemented_from_the_case_page() {
    let env = start(Setup {
        demo_materials: true,
        ticket_delay: Some(Duration::from_millis(300)),
        ..Setup::default()
    })
    .await;
    let mut clerk = Visitor::new(&env.gateway.url());
    clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    let (case_path, token) = registration_at_the_window(&mut clerk, "福州市鼓楼区五四路").await;
    let case_id = case_path.rsplit('/').next().unwrap().to_string();

    // Returned: the page says what tax asks — the address, with its reason, as a field of the
    // matter's form, and the proof of premises with a file chooser — and where to send it.
    let page = page_once(&mut clerk, &env, &case_path, r#"data-status="returned""#).await;
    assert!(
        page.body.contains("补正：新办纳税人税务登记"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"<div class="has-problem" data-field="address">"#),
        "the asked field: {}",
        page.body
    );
    assert!(page.body.contains(r#"<tr data-material="premises-proof">"#));
    let action = "/matters/tax.registration/supplements";
    assert!(
        page.body
            .contains(&format!(r#"action="{case_path}{action}""#))
    );
    let supplements = format!("{case_path}{action}");

    // The proof not uploaded yet: the same page, the problem named, nothing sent.
    let refused = clerk
        .post(
            &supplements,
            &[
                ("_csrf", &token),
                ("f.address", "福州市鼓楼区五四路1号"),
                ("material", "premises-proof"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("材料尚未上传"), "{}", refused.body);
    assert!(
        refused.body.contains(r#"value="福州市鼓楼区五四路1号""#),
        "what was typed is kept"
    );
    assert_eq!(
        tax_state(&env, &case_id).await,
        gateway_base::model::StepState::Returned
    );

    // Uploaded to the case (as the page's script does), then the supplement is taken through
    // the same call as the API's: the step is supplemented, then registered.
    let url = format!("{}{case_path}/materials/premises-proof", clerk.base);
    let stored = clerk
        .http
        .put(&url)
        .header("cookie", clerk.cookie.clone().unwrap())
        .header("x-csrf-token", &token)
        .body(pdf(20_000, 8))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 201, "{}", stored.text().await.unwrap());
    let taken = clerk
        .post(
            &supplements,
            &[
                ("_csrf", &token),
                ("f.address", "福州市鼓楼区五四路1号"),
                ("material", "premises-proof"),
            ],
        )
        .await;
    assert_eq!(taken.status, 303, "{}", taken.body);
    assert_eq!(taken.location(), case_path);
    let done = page_once(&mut clerk, &env, &case_path, r#"data-status="completed""#).await;
    assert!(
        !done.body.contains("补正：新办纳税人税务登记"),
        "nothing asked any more"
    );
    let events = env
        .gateway
        .orchestrator
        .store()
        .events(&case_id)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == gateway_base::model::EventKind::SupplementReceived),
        "the supplement on the timeline"
    );
}

async fn tax_state(env: &integration_tests::Env, case_id: &str) -> gateway_base::model::StepState {
    let steps = env
        .gateway
        .orchestrator
        .store()
        .steps(case_id)
        .await
        .unwrap();
    steps[0].state
}

/// The case ids listed on a page of the clerk's list, in order.
fn listed(page: &Answer) -> Vec<String> {
    page.body
        .split(r#"<tr data-case=""#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clerks_cases_are_listed_newest_first_paged_and_found_by_number() {
    let env = start(Setup::default()).await;
    let mut clerk = Visitor::new(&env.gateway.url());
    clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    let token = clerk.get("/screens/clerk").await.csrf();
    // 21 cases at this window: one more than a page.
    let mut mine = Vec::new();
    for n in 0..21 {
        let made = clerk
            .post(
                "/screens/clerk/services/tax.registration/drafts",
                &[("_csrf", &token)],
            )
            .await;
        let fields: Vec<(&str, String)> = vec![
            ("f.credit_code", "91350100M000100Y43".into()),
            ("f.enterprise_name", format!("福州列表{n}号科技有限公司")),
            ("f.legal_representative.name", "张三".into()),
            (
                "f.legal_representative.id_number",
                "11010519491231002X".into(),
            ),
            ("f.address", "福州市鼓楼区五四路1号".into()),
            ("f.business_scope", "软件开发".into()),
        ];
        let accepted = post_form(&mut clerk, made.location(), &token, &fields).await;
        assert_eq!(accepted.status, 303, "{}", accepted.body);
        let id = accepted
            .location()
            .trim_start_matches("/screens/clerk/cases/")
            .trim_end_matches("/receipt")
            .to_string();
        mine.push(id);
    }
    // One received by another clerk of the same hall, through the hall's portal.
    let answer = env
        .http
        .post(format!(
            "{}/api/v1/services/tax.registration/applications",
            env.gateway.url()
        ))
        .header("x-clerk-id", "clerk-other")
        .header("x-clerk-window", "5号窗口".as_bytes())
        .header("x-clerk-hall", "鼓楼区政务服务中心".as_bytes())
        .json(&serde_json::json!({
            "credit_code": "91350100M000100Y43",
            "enterprise_name": "福州邻窗科技有限公司",
            "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
            "address": "福州市鼓楼区五四路1号",
            "business_scope": "软件开发"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let other: serde_json::Value = answer.json().await.unwrap();
    let other = other["case_id"].as_str().unwrap().to_string();

    // Mine, newest first: a page of 20, then the oldest on the next.
    let newest_first: Vec<String> = mine.iter().rev().cloned().collect();
    let first = clerk.get("/screens/clerk/cases").await;
    assert_eq!(first.status, 200);
    assert_eq!(listed(&first), newest_first[..20]);
    assert!(first.body.contains("新办纳税人税务登记"));
    assert!(
        !first.body.contains("福州列表"),
        "the list shows no applicant's data"
    );
    assert!(first.body.contains(r#"rel="next""#));
    let second = clerk.get("/screens/clerk/cases?page=2").await;
    assert_eq!(listed(&second), newest_first[20..]);
    assert!(!second.body.contains(r#"rel="next""#));
    assert!(
        second
            .body
            .contains(r#"href="/screens/clerk/cases?page=1" rel="prev""#)
    );

    // The hall's: the neighbour's case too, newest first.
    let hall = clerk.get("/screens/clerk/cases?scope=hall").await;
    let hall = listed(&hall);
    assert_eq!(hall[0], other);
    assert_eq!(hall[1..], newest_first[..19]);

    // Found by a part of its number (as read off a receipt); a number of no case finds none.
    let wanted = &mine[7];
    let tail = &wanted[wanted.len() - 12..];
    let found = clerk.get(&format!("/screens/clerk/cases?q={tail}")).await;
    assert_eq!(listed(&found), std::slice::from_ref(wanted));
    let none = clerk.get("/screens/clerk/cases?q=no-such-case%25").await;
    assert!(listed(&none).is_empty());
    assert!(none.body.contains("没有符合条件的办件"));
}

#[tokio::test(flavor = "multi_thread")]
async fn lookups_fill_the_form_for_the_clerk_and_are_recorded() {
    let env = start(Setup::default()).await;
    let mut clerk = Visitor::new(&env.gateway.url());
    clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    let token = clerk.get("/screens/clerk").await.csrf();
    let made = clerk
        .post(
            "/screens/clerk/services/tax.registration/drafts",
            &[("_csrf", &token)],
        )
        .await;
    let form = clerk.get(made.location()).await;
    // A button beside the credit code and beside the representative's identity number.
    let enterprise = "/screens/clerk/lookups/market-regulation.enterprise";
    assert!(
        form.body.contains(&format!(
            r#"data-lookup="{enterprise}" data-from="f.credit_code""#
        )),
        "{}",
        form.body
    );
    assert!(form.body.contains(
        r#"data-lookup="/screens/clerk/lookups/public-security.identity" data-from="f.legal_representative.name,f.legal_representative.id_number""#
    ));

    let ask = |path: &str, fields: serde_json::Value, token: Option<&str>| {
        let mut request = clerk
            .http
            .post(format!("{}{path}", clerk.base))
            .header("cookie", clerk.cookie.clone().unwrap())
            .json(&serde_json::json!({"service": "tax.registration", "fields": fields}));
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (
                status,
                answer.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    // Without the session's token: refused, nothing looked up.
    let (status, _) = ask(
        enterprise,
        serde_json::json!({"f.credit_code": "91350100M000100Y43"}),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // The enterprise by its credit code: the fields to fill.
    let (status, answer) = ask(
        enterprise,
        serde_json::json!({"f.credit_code": "91350100M000100Y43"}),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["fill"]["f.enterprise_name"], "福州测试科技有限公司");
    assert!(answer["fill"]["f.address"].is_string(), "{answer}");
    // An unknown one: said in Chinese, nothing filled.
    let (status, answer) = ask(
        enterprise,
        serde_json::json!({"f.credit_code": "91110000600037341L"}),
        Some(&token),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        answer["text"].as_str().unwrap().contains("未查到"),
        "{answer}"
    );
    assert!(answer.get("fill").is_none());

    // The representative's identity, verified at public security.
    let identity = "/screens/clerk/lookups/public-security.identity";
    let (status, answer) = ask(
        identity,
        serde_json::json!({"f.legal_representative.name": "张三",
                           "f.legal_representative.id_number": "11010519491231002X"}),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verified"], "match");
    let (_, answer) = ask(
        identity,
        serde_json::json!({"f.legal_representative.name": "李四",
                           "f.legal_representative.id_number": "11010519491231002X"}),
        Some(&token),
    )
    .await;
    assert_eq!(answer["verified"], "mismatch");
    assert!(answer["text"].as_str().unwrap().contains("不一致"));

    // Each is recorded as the API's are: the clerk served, the purpose, never the query.
    let records = env
        .gateway
        .orchestrator
        .store()
        .lookup_records(10)
        .await
        .unwrap();
    assert_eq!(records.len(), 4, "{records:?}");
    for record in &records {
        assert_eq!(record.client, "screens:clerk1");
        assert_eq!(record.clerk.as_ref().unwrap()["id"], "clerk1");
        assert!(
            record.purpose.contains("新办纳税人税务登记"),
            "{}",
            record.purpose
        );
    }
    assert!(!format!("{records:?}").contains("91350100M000100Y43"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_receipts_qr_code_opens_the_applicants_page_and_takes_one_evaluation() {
    let env = start(Setup {
        demo_materials: true,
        ..Setup::default()
    })
    .await;
    let mut clerk = Visitor::new(&env.gateway.url());
    clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    let (case_path, _) = registration_at_the_window(&mut clerk, "福州市鼓楼区五四路1号").await;
    let case_id = case_path.rsplit('/').next().unwrap().to_string();
    let receipt = clerk.get(&format!("{case_path}/receipt")).await;
    let status_url = status_url_of(&receipt);
    assert!(
        status_url.starts_with(&format!("{}/screens/status/", env.gateway.url())),
        "without public_url, the address the clerk used: {status_url}"
    );
    let path = status_url[status_url.find("/screens/status/").unwrap()..].to_string();
    let token = path.trim_start_matches("/screens/status/");
    assert_eq!(token.len(), 43, "256 random bits: {token}");
    assert!(
        !status_url.contains(&case_id),
        "not the case id: {status_url}"
    );
    // The receipt printed again shows the same code.
    let again = clerk.get(&format!("{case_path}/receipt")).await;
    assert!(again.body.contains(&status_url));

    // On the applicant's phone: no sign-in, no personal data; woken by the case's events.
    let mut phone = Visitor::new(&env.gateway.url());
    let page = page_once(&mut phone, &env, &path, r#"data-status="completed""#).await;
    assert!(page.body.contains(&case_id));
    assert!(page.body.contains("新办纳税人税务登记"));
    for personal in [
        "张三",
        "11010519491231002X",
        "福州测试科技有限公司",
        "五四路",
    ] {
        assert!(
            !page.body.contains(personal),
            "{personal} on the public page"
        );
    }
    assert!(
        page.body.contains(r#"id="evaluate""#),
        "扫码评 once completed"
    );
    // A guessed token, or the case id in its place, opens nothing.
    for wrong in [
        format!("/screens/status/{case_id}"),
        "/screens/status/x".into(),
    ] {
        let refused = phone.get(&wrong).await;
        assert_eq!(refused.status, 404);
        assert!(!refused.body.contains(&case_id));
    }

    // 扫码评: no level is named in Chinese; a post from another site is refused.
    let none = phone.post(&path, &[("comment", "很快")]).await;
    assert_eq!(none.status, 422, "{}", none.body);
    assert!(none.body.contains("评价等级"), "{}", none.body);
    let forged = phone
        .post_with(
            &path,
            &[("level", "非常不满意")],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let given = phone
        .post(&path, &[("level", "满意"), ("comment", "窗口办理很快")])
        .await;
    assert_eq!(given.status, 303, "{}", given.body);
    let after = phone.get(&path).await;
    assert!(
        after.body.contains("您的评价：<strong>满意</strong>"),
        "{}",
        after.body
    );
    assert!(!after.body.contains(r#"id="evaluate""#), "once per case");
    let twice = phone.post(&path, &[("level", "不满意")]).await;
    assert_eq!(twice.status, 409);

    // Recorded as the API's evaluations are: the qr channel, anonymous, with the clerk who
    // received the case.
    let evaluations = env
        .gateway
        .orchestrator
        .store()
        .case_evaluations(&case_id)
        .await
        .unwrap();
    assert_eq!(evaluations.len(), 1);
    assert_eq!(evaluations[0].channel, "qr");
    assert_eq!(evaluations[0].level, 2);
    assert!(
        evaluations[0]
            .clerk
            .as_ref()
            .is_some_and(|c| c.id == "clerk1")
    );
}

/// The address under the receipt's QR code.
fn status_url_of(receipt: &Answer) -> String {
    let marker = r#"<span id="status-url">"#;
    let at = receipt.body.find(marker).expect("the QR code's address");
    let rest = &receipt.body[at + marker.len()..];
    rest[..rest.find('<').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_receipts_qr_code_opens_the_configured_public_address() {
    // Not an absolute http(s) address: the gateway does not start, and says which key.
    for bad in [
        "hall.example.gov.cn",
        "ftp://hall.example.gov.cn",
        "https://hall.example.gov.cn/?x=1",
    ] {
        let refused = try_start(Setup::default(), &format!("public_url = \"{bad}\""), "")
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad} refused"));
        let said = format!("{refused:#}");
        assert!(said.contains("screens.public_url"), "{bad}: {said}");
        assert!(said.contains("http(s)"), "{bad}: {said}");
    }

    // Behind a proxy the clerk's browser reaches the listener at one address, phones at another.
    let env = try_start(
        Setup {
            demo_materials: true,
            ..Setup::default()
        },
        r#"public_url = "https://hall.example.gov.cn/""#,
        "",
    )
    .await
    .expect("a gateway");
    let mut clerk = Visitor::new(&env.gateway.url());
    clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    let (case_path, _) = registration_at_the_window(&mut clerk, "福州市鼓楼区五四路1号").await;
    let receipt = clerk.get(&format!("{case_path}/receipt")).await;
    assert_eq!(receipt.status, 200);
    let status_url = status_url_of(&receipt);
    let token = status_url
        .strip_prefix("https://hall.example.gov.cn/screens/status/")
        .unwrap_or_else(|| panic!("the configured address: {status_url}"));
    assert_eq!(token.len(), 43, "{status_url}");
    assert!(
        !receipt.body.contains(&env.gateway.url()),
        "not the listener's own address"
    );
    // The proxy's path is the gateway's; 扫码评 posted from the page at the public address
    // (its Origin, not the Host the proxy reaches the gateway at) is taken, another site's not.
    let path = format!("/screens/status/{token}");
    let mut phone = Visitor::new(&env.gateway.url());
    page_once(&mut phone, &env, &path, r#"data-status="completed""#).await;
    let forged = phone
        .post_with(
            &path,
            &[("level", "非常不满意")],
            &[("origin", "https://evil.example.com")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let given = phone
        .post_with(
            &path,
            &[("level", "满意")],
            &[("origin", "https://hall.example.gov.cn")],
        )
        .await;
    assert_eq!(given.status, 303, "{}", given.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_receipts_qr_code_is_https_when_the_portal_listener_serves_tls() {
    use crate::transport::{ca, issue, server_tls};
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let year = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let authority = ca("Test Hall CA", year);
    std::fs::write(dir.join("ca.pem"), authority.pem()).unwrap();
    issue(
        dir,
        "gateway",
        &authority,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        year,
    );
    let env = start(Setup {
        demo_materials: true,
        config_extra: server_tls(dir, "gateway", None),
        ..Setup::default()
    })
    .await;
    let url = env.gateway.url();
    assert!(url.starts_with("https://"), "{url}");
    let mut clerk = Visitor::new(&url);
    clerk.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&authority.pem().into_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    let (case_path, _) = registration_at_the_window(&mut clerk, "福州市鼓楼区五四路1号").await;
    let receipt = clerk.get(&format!("{case_path}/receipt")).await;
    assert_eq!(receipt.status, 200);
    let status_url = status_url_of(&receipt);
    assert!(
        status_url.starts_with(&format!("{url}/screens/status/")),
        "https, as the listener serves: {status_url}"
    );
    let page = clerk
        .get(&status_url[status_url.find("/screens/status/").unwrap()..])
        .await;
    assert_eq!(page.status, 200);
}
