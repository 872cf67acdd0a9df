//! The screens' doors: sign-in with a local account, a wrong password refused, each role
//! refused on the others' pages and actions, a missing or forged CSRF token refused, the
//! security headers on every answer, sign-out, and the assets served under their hash; and
//! sign-in through a hall's unified identity system (a small OIDC provider of the tests'):
//! a clerk let in with the same session, and every way it must fail refused.
//! SQLite by default; PostgreSQL with `GATEWAY_TEST_STORE=postgres`.

use crate::screens_common;

use integration_tests::{Setup, oidc};
use screens_common::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_door_of_the_screens_checks_who_is_there() {
    let env = start(Setup::default()).await;
    let hall = env.gateway.url();
    let console = env.admin_url();

    // The sign-in page: Chinese, labelled fields, and the headers every screen carries.
    let mut anonymous = Visitor::new(&hall);
    let login = anonymous.get("/screens/login").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains(r#"<html lang="zh-CN">"#));
    assert!(login.body.contains(r#"<label for="user">用户名</label>"#));
    let csp = login.header("content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(login.header("x-content-type-options"), "nosniff");
    assert_eq!(login.header("referrer-policy"), "no-referrer");
    assert_eq!(login.header("cache-control"), "no-store");
    assert!(!login.body.contains("<script>"), "no inline script");
    assert!(!login.body.contains("style="), "no inline style");

    // Its stylesheet and script: from this gateway, under their hash, kept a year.
    for kind in ["screens.css", "screens.js"] {
        let at = login.body.find(kind).expect("the asset is linked");
        let start = login.body[..at].rfind('"').unwrap() + 1;
        let href = login.body[start..at + kind.len()].to_string();
        assert!(href.starts_with("/screens/assets/"), "{href}");
        let asset = anonymous.get(&href).await;
        assert_eq!(asset.status, 200, "{href}");
        assert!(asset.header("cache-control").contains("immutable"));
        assert!(!asset.header("etag").is_empty());
        let other = anonymous
            .get(&format!("/screens/assets/0000000000000000/{kind}"))
            .await;
        assert_eq!(other.status, 404, "an address serves only its own content");
    }

    // No session: a page sends to sign-in, an action is refused.
    let page = anonymous.get("/screens/clerk").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/screens/login");
    let action = anonymous
        .post(
            "/screens/clerk/services/one-thing.open-business/drafts",
            &[],
        )
        .await;
    assert_eq!(action.status, 403);
    assert!(action.body.contains("请重新登录"), "{}", action.body);
    assert!(
        action
            .header("content-security-policy")
            .contains("frame-ancestors 'none'"),
        "refusals carry the headers too"
    );

    // A wrong password, and an unknown user, are the same refusal, with no cookie.
    for (user, password) in [("clerk1", "wrong"), ("nobody", CLERK_PASSWORD)] {
        let refused = anonymous.sign_in("/screens", user, password).await;
        assert_eq!(refused.status, 401);
        assert!(refused.body.contains("用户名或密码不正确"));
        assert!(refused.headers.get("set-cookie").is_none());
    }
    // An operator does not sign in on the portal listener, nor a clerk on the console.
    assert_eq!(
        anonymous
            .sign_in("/screens", "ops1", OPERATOR_PASSWORD)
            .await
            .status,
        401
    );
    assert_eq!(
        Visitor::new(&console)
            .sign_in("/console", "clerk1", CLERK_PASSWORD)
            .await
            .status,
        401
    );

    // The clerk signs in: a session cookie HttpOnly and SameSite=Strict, sent to the window.
    let mut clerk = Visitor::new(&hall);
    let signed = clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location(), "/screens/clerk");
    let cookie = signed.header("set-cookie");
    assert!(cookie.starts_with("gw-hall="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let window = clerk.get("/screens/clerk").await;
    assert_eq!(window.status, 200);
    assert!(window.body.contains("张窗口（窗口受理人员）"));
    assert!(window.body.contains("企业开办"));
    let search = clerk.get("/screens/clerk?q=business-licence").await;
    assert!(search.body.contains("one-thing.open-business"));
    assert!(
        !search.body.contains("real-estate.transfer\""),
        "only what matches"
    );

    // The supervisor signs in; each is refused on the other's pages and actions.
    let mut supervisor = Visitor::new(&hall);
    let signed = supervisor
        .sign_in("/screens", "super1", SUPERVISOR_PASSWORD)
        .await;
    assert_eq!(signed.location(), "/screens/supervisor");
    assert_eq!(supervisor.get("/screens/supervisor").await.status, 200);
    let refused = supervisor.get("/screens/clerk").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("电子监察人员无权"),
        "{}",
        refused.body
    );
    let token = supervisor.get("/screens/supervisor").await.csrf();
    let refused = supervisor
        .post(
            "/screens/clerk/services/one-thing.open-business/drafts",
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(clerk.get("/screens/supervisor").await.status, 403);

    // The operator's console is on the admin listener; a hall session is worth nothing there.
    let mut operator = Visitor::new(&console);
    assert_eq!(operator.get("/console/").await.location(), "/console/login");
    let signed = operator
        .sign_in("/console", "ops1", OPERATOR_PASSWORD)
        .await;
    assert_eq!(signed.status, 303);
    assert!(signed.header("set-cookie").starts_with("gw-console="));
    let home = operator.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("运维控制台"));
    let mut stray = Visitor::new(&console);
    stray.cookie = clerk.cookie.clone();
    assert_eq!(stray.get("/console/").await.location(), "/console/login");
    // The operator's session is refused on the hall's pages (another cookie, another desk).
    let mut stray = Visitor::new(&hall);
    stray.cookie = operator
        .cookie
        .clone()
        .map(|c| c.replace("gw-console", "gw-hall"));
    assert_eq!(stray.get("/screens/clerk").await.status, 403);
    // The admin API still wants an operator's token, not a console session.
    let api = operator.get("/admin/v1/dead-letters").await;
    assert_eq!(api.status, 401);

    // A change needs the session's token: missing, forged, or from another origin.
    let path = "/screens/clerk/services/one-thing.open-business/drafts";
    let token = clerk.get("/screens/clerk").await.csrf();
    assert_eq!(token.len(), 43, "256 bits, base64url");
    let missing = clerk.post(path, &[]).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("安全校验未通过"));
    let forged = clerk.post(path, &[("_csrf", &"A".repeat(43))]).await;
    assert_eq!(forged.status, 403);
    let other_session = clerk
        .post(
            path,
            &[("_csrf", &supervisor.get("/screens/supervisor").await.csrf())],
        )
        .await;
    assert_eq!(other_session.status, 403, "a token is its session's only");
    let cross = clerk
        .post_with(
            path,
            &[("_csrf", &token)],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(cross.status, 403);
    let made = clerk.post(path, &[("_csrf", &token)]).await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert!(made.location().starts_with("/screens/clerk/drafts/"));

    // The store holds the session id's SHA-256, never the id.
    let store = env.gateway.orchestrator.store();
    let id = clerk
        .cookie
        .clone()
        .unwrap()
        .trim_start_matches("gw-hall=")
        .to_string();
    assert!(store.session(&id).await.unwrap().is_none());
    let kept = store
        .session(&gateway_http::auth::sha256_hex(&id))
        .await
        .unwrap()
        .expect("the session, by its id's SHA-256");
    assert_eq!(
        (kept.username.as_str(), kept.role.as_str()),
        ("clerk1", "clerk")
    );

    // A session idle past idle_minutes (30) is over, and one past its absolute expiry too;
    // sessions left to expire are swept when someone signs in.
    let now = gateway_base::time::now_ms();
    for (id, last_seen_at, expires_at) in [
        ("idle-session-id", now - 31 * 60_000, now + 3_600_000),
        ("old-session-id", now - 60_000, now - 1),
    ] {
        store
            .insert_session(&gateway_store::sessions::SessionRecord {
                last_seen_at,
                expires_at,
                id_sha256: gateway_http::auth::sha256_hex(id),
                ..kept.clone()
            })
            .await
            .unwrap();
        let mut stale = Visitor::new(&hall);
        stale.cookie = Some(format!("gw-hall={id}"));
        assert_eq!(
            stale.get("/screens/clerk").await.location(),
            "/screens/login",
            "{id}"
        );
    }
    store
        .insert_session(&gateway_store::sessions::SessionRecord {
            last_seen_at: now - 31 * 60_000,
            id_sha256: gateway_http::auth::sha256_hex("left-behind"),
            ..kept.clone()
        })
        .await
        .unwrap();
    Visitor::new(&hall)
        .sign_in("/screens", "super1", SUPERVISOR_PASSWORD)
        .await;
    assert!(
        store
            .session(&gateway_http::auth::sha256_hex("left-behind"))
            .await
            .unwrap()
            .is_none(),
        "swept"
    );

    // Sign-out needs the token too, then the session is gone on every request.
    assert_eq!(clerk.post("/screens/logout", &[]).await.status, 403);
    let cookie = clerk.cookie.clone();
    let out = clerk.post("/screens/logout", &[("_csrf", &token)]).await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    let mut replay = Visitor::new(&hall);
    replay.cookie = cookie;
    assert_eq!(
        replay.get("/screens/clerk").await.location(),
        "/screens/login"
    );
}

/// The holiday calendar the deadlines are counted on.
fn holidays() -> gateway_base::calendar::Calendar {
    gateway_base::calendar::Calendar::load(
        &integration_tests::workspace_root().join("config/holidays.toml"),
    )
    .unwrap()
}

/// The number on a department's tile for a light, and the address it links to.
fn tile(body: &str, department: &str, light: &str) -> (u64, String) {
    let at = body
        .find(&format!(r#"data-department="{department}""#))
        .unwrap_or_else(|| panic!("no tile for {department}: {body}"));
    let rest = &body[at..];
    let link = rest
        .find(&format!(r#"data-light="{light}" href=""#))
        .unwrap_or_else(|| panic!("no {light} on {department}'s tile"));
    let rest = &rest[link + format!(r#"data-light="{light}" href=""#).len()..];
    let href = unescape(&rest[..rest.find('"').unwrap()]);
    let strong = rest.find("<strong>").unwrap() + "<strong>".len();
    let value = rest[strong..strong + rest[strong..].find('<').unwrap()]
        .parse()
        .unwrap();
    (value, href)
}

/// An attribute's text as the browser reads it (the templates escape `&`).
fn unescape(text: &str) -> String {
    text.replace("&#38;", "&").replace("&amp;", "&")
}

/// Every address a page names: links, form actions, and the `data-*` addresses its script uses.
fn addresses(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "action=\"", "data-refresh=\"", "data-events=\""] {
        let mut rest = body;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').unwrap();
            found.push(unescape(&rest[..end]));
            rest = &rest[end..];
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisors_wall_counts_the_lights_and_every_number_leads_to_its_cases() {
    use gateway_base::time::{beijing_date, end_of_day_ms, parse_rfc3339, rfc3339};
    use serde_json::json;
    let calendar = integration_tests::workspace_root().join("config/holidays.toml");
    // The departments decide after an hour: every step stays open for the whole test.
    let env = start(Setup {
        ticket_delay: Some(std::time::Duration::from_secs(3600)),
        config_extra: format!("[deadlines]\ncalendar = \"{}\"\n", calendar.display()),
        ..Setup::default()
    })
    .await;
    let hall = env.gateway.url();
    let personal = [
        "张三",
        "11010519491231002X",
        "李四",
        "34052419800101001X",
        "福州监察甲有限公司",
        "福州监察乙科技有限公司",
        "王小明",
        "13912345678",
    ];
    // 新办纳税人税务登记 (tax, 1 working day) and 企业开办: the licence (market regulation,
    // 3 working days), then the seal (public security) and tax registration, 1 each.
    let tax = env
        .apply(
            "tax.registration",
            &json!({
                "credit_code": "91350100M000100Y43",
                "enterprise_name": personal[4],
                "legal_representative": {"name": personal[0], "id_number": personal[1]},
                "address": "福州市鼓楼区五四路1号",
                "business_scope": "软件开发"
            }),
        )
        .await;
    let business = env
        .apply(
            "one-thing.open-business",
            &json!({
                "enterprise_name": personal[5],
                "address": "福州市鼓楼区五四路2号",
                "legal_representative": {"name": personal[2], "id_number": personal[3]},
                "registered_capital": 100,
                "business_scope": "软件开发",
                "seal_types": ["法定名称章"]
            }),
        )
        .await;
    let mut one_day_deadline = 0;
    for case in [&tax, &business] {
        let (_, view) = env.get(&format!("/api/v1/cases/{case}")).await;
        let received = parse_rfc3339(view["created_at"].as_str().unwrap()).unwrap();
        one_day_deadline = one_day_deadline.max(holidays().deadline_ms(received, 1));
    }
    // The day after the last working day of the one-day steps: both tax steps and the seal
    // are red by its end.
    let day = beijing_date(one_day_deadline);
    let judged = end_of_day_ms(day) - 1;

    let mut supervisor = Visitor::new(&hall);
    supervisor
        .sign_in("/screens", "super1", SUPERVISOR_PASSWORD)
        .await;
    let mut visited = Vec::new();

    // Today: every open step on its department's tile, whatever its light; refreshed live.
    let now = supervisor.get("/screens/supervisor").await;
    assert_eq!(now.status, 200, "{}", now.body);
    assert!(now.body.contains(r#"data-refresh="30""#));
    let open_today: u64 = ["green", "yellow", "red"]
        .iter()
        .map(|l| tile(&now.body, "tax", l).0)
        .sum();
    assert_eq!(open_today, 2, "two tax steps open");
    visited.push(now);

    // The chosen day: the same counts as the API's `at`, tax red twice, the seal red.
    let wall = supervisor
        .get(&format!("/screens/supervisor?at={day}"))
        .await;
    assert_eq!(wall.status, 200, "{}", wall.body);
    assert!(
        wall.body.contains(&format!(r#"value="{day}""#)),
        "the picker keeps the day"
    );
    let (_, api) = env
        .get(&format!(
            "/api/v1/supervision/deadlines?at={}",
            rfc3339(judged).replace('+', "%2B")
        ))
        .await;
    let counts = api["counts"].as_object().expect("counts");
    assert_eq!(counts.len(), 4, "{api:#}");
    for (department, lights) in counts {
        for light in ["green", "yellow", "red"] {
            assert_eq!(
                tile(&wall.body, department, light).0,
                lights[light].as_u64().unwrap(),
                "{department} {light}"
            );
        }
    }
    assert_eq!(tile(&wall.body, "tax", "red").0, 2);
    assert_eq!(tile(&wall.body, "public-security", "red").0, 1);
    assert_eq!(tile(&wall.body, "real-estate", "red").0, 0);
    // The overdue list: the case, the matter, who has it (the department), how late.
    assert!(
        wall.body
            .contains(&format!("/screens/supervisor/cases/{tax}\""))
    );
    assert!(wall.body.contains("新办纳税人税务登记"));
    assert!(
        wall.body.contains("<td>税务</td>"),
        "who has it: {}",
        wall.body
    );
    assert!(wall.body.contains("红牌，"), "how late: {}", wall.body);

    // The red number leads to its cases: both tax steps, nothing else.
    let (_, href) = tile(&wall.body, "tax", "red");
    assert_eq!(
        href,
        format!("/screens/supervisor/steps?department=tax&light=red&at={day}")
    );
    let behind = supervisor.get(&href).await;
    assert_eq!(behind.status, 200, "{}", behind.body);
    assert!(behind.body.contains("税务 · 红牌 · 在办事项"));
    for case in [&tax, &business] {
        assert!(
            behind
                .body
                .contains(&format!("/screens/supervisor/cases/{case}\"")),
            "{case} behind the number"
        );
    }
    assert_eq!(behind.body.matches(r#"<tr data-light="red">"#).count(), 2);
    assert_eq!(
        behind.body.matches("<tr data-light=").count(),
        2,
        "only tax's red steps"
    );
    let green = supervisor.get(&tile(&wall.body, "tax", "green").1).await;
    assert!(
        !green.body.contains("<tr data-light="),
        "no green tax step then"
    );
    visited.push(wall);
    visited.push(behind);
    visited.push(green);

    // Red cards: the scanner records them (run at the chosen day, as days cannot pass here);
    // the wall lists them and counts them per department, the count leads to them.
    // Noon of the last working day first: the tax steps turn yellow (黄牌), then red.
    let last_day_noon = one_day_deadline - 12 * 3_600_000;
    for at in [last_day_noon, judged] {
        let scanned = integration_tests::admin_client()
            .post(format!(
                "{}/admin/v1/supervision/light-scans",
                env.admin_url()
            ))
            .json(&json!({"at": rfc3339(at)}))
            .send()
            .await
            .unwrap();
        assert_eq!(scanned.status().as_u16(), 200);
    }
    let wall = supervisor
        .get(&format!("/screens/supervisor?at={day}"))
        .await;
    assert!(wall.body.contains("红牌记录（本年，"), "{}", wall.body);
    // The figures' red count for tax: 2, linking to tax's red cards on that day's year.
    let label = wall
        .body
        .find(r#"aria-label="税务 本年红牌 2 次""#)
        .unwrap_or_else(|| panic!("tax's red cards counted: {}", wall.body));
    let link = wall.body[..label].rfind("href=\"").unwrap() + "href=\"".len();
    let cards_href = unescape(&wall.body[link..label - 2]);
    assert_eq!(
        cards_href,
        format!("/screens/supervisor/cards?department=tax&light=red&at={day}")
    );
    let cards = supervisor.get(&cards_href).await;
    assert_eq!(cards.status, 200);
    assert!(cards.body.contains("税务 · 红牌记录"));
    assert_eq!(cards.body.matches("/screens/supervisor/cases/").count(), 2);
    // And the yellow ones, behind the year's yellow count.
    let label = wall
        .body
        .find(r#"aria-label="税务 本年黄牌 2 次""#)
        .unwrap_or_else(|| panic!("tax's yellow cards counted: {}", wall.body));
    let link = wall.body[..label].rfind("href=\"").unwrap() + "href=\"".len();
    let yellow_href = unescape(&wall.body[link..label - 2]);
    assert_eq!(
        yellow_href,
        format!("/screens/supervisor/cards?department=tax&light=yellow&at={day}")
    );
    let yellow = supervisor.get(&yellow_href).await;
    assert!(yellow.body.contains("税务 · 黄牌记录"), "{}", yellow.body);
    assert_eq!(yellow.body.matches("/screens/supervisor/cases/").count(), 2);
    visited.push(yellow);
    visited.push(wall);

    // 好差评: a seal filing is decided at once; its 非常不满意 (named, with a comment) opens a
    // rectification. The wall counts it for public security and lists it with its deadline;
    // the count leads to it; neither names the evaluator.
    let sealed = env
        .apply(
            "public-security.seal-filing",
            &json!({
                "credit_code": "91350100M000100Y43",
                "enterprise_name": personal[4],
                "legal_representative": {"name": personal[0], "id_number": personal[1]},
                "seal_types": ["法定名称章"]
            }),
        )
        .await;
    env.wait_for_case(&sealed, std::time::Duration::from_secs(30), |v| {
        v["matters"][0]["state"] == "approved"
    })
    .await;
    let (status, evaluation) = env
        .post(
            &format!("/api/v1/cases/{sealed}/evaluations"),
            &json!({
                "channel": "window",
                "level": "非常不满意",
                "indicators": {"overall": 5, "attitude": "非常不满意", "efficiency": 4},
                "anonymous": false,
                "evaluator": {"name": personal[6], "id_number": personal[3]},
                "comment": "王小明等了两个小时，电话13912345678没人接"
            }),
        )
        .await;
    assert_eq!(status, 201, "{evaluation}");
    let wall = supervisor
        .get(&format!("/screens/supervisor?at={day}"))
        .await;
    assert!(
        wall.body.contains(r#"aria-label="公安 整改中 1 件">1</a>"#),
        "{}",
        wall.body
    );
    assert!(wall.body.contains("整改中的差评（"));
    assert!(
        wall.body
            .contains(&format!(r#"<a href="/screens/supervisor/cases/{sealed}">"#))
    );
    assert!(
        wall.body.contains("<td>非常不满意</td><td>公安</td>"),
        "{}",
        wall.body
    );
    let rectifications = supervisor
        .get(&format!(
            "/screens/supervisor/rectifications?department=public-security&at={day}"
        ))
        .await;
    assert_eq!(rectifications.status, 200);
    assert!(rectifications.body.contains("公安 · 整改中的差评"));
    assert_eq!(
        rectifications
            .body
            .matches("<tr data-rectification=")
            .count(),
        1
    );
    assert!(
        rectifications.body.contains("绿灯，剩余"),
        "{}",
        rectifications.body
    );
    let none = supervisor
        .get(&format!(
            "/screens/supervisor/rectifications?department=tax&at={day}"
        ))
        .await;
    assert!(none.body.contains("没有符合条件的整改"));
    visited.push(cards);
    visited.push(rectifications);
    visited.push(none);
    let label = wall
        .body
        .find(r#"aria-label="公安 本年评价 1 次""#)
        .unwrap_or_else(|| panic!("the evaluation counted: {}", wall.body));
    let link = wall.body[..label].rfind("href=\"").unwrap() + "href=\"".len();
    let evaluations = supervisor.get(&unescape(&wall.body[link..label - 2])).await;
    assert_eq!(evaluations.status, 200);
    assert!(evaluations.body.contains("公安 · 好差评"));
    assert_eq!(evaluations.body.matches("<tr data-level=\"5\">").count(), 1);
    assert!(
        evaluations
            .body
            .contains(&format!("/screens/supervisor/cases/{sealed}\""))
    );
    assert!(evaluations.body.contains("非常不满意"));
    assert!(evaluations.body.contains("已转整改"));
    visited.push(evaluations);

    // The year's figures: the seal filing decided on time, its one evaluation not satisfied.
    for label in [
        "公安 本年办结 1 件",
        "公安 按时办结 1 件，按时办结率 100.0%",
        "公安 满意评价 0 次，满意率 0.0%",
        "税务 本年办结 0 件",
    ] {
        assert!(
            wall.body.contains(&format!(r#"aria-label="{label}""#)),
            "{label}: {}",
            wall.body
        );
    }
    // Every figure of the table is a link (no bare number) …
    let table = &wall.body[wall.body.find(r#"id="figures-heading""#).unwrap()..];
    let table = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    let rows: Vec<&str> = table.split("<tr>").skip(1).collect();
    assert!(rows.len() >= 4, "one row per department: {table}");
    let departments = rows.len();
    for row in rows {
        let cells: Vec<&str> = row.split("<td>").skip(1).collect();
        assert_eq!(cells.len(), 9, "{row}");
        for cell in &cells[1..] {
            assert!(cell.starts_with("<a data-count=\""), "a bare figure: {row}");
        }
    }
    // … and every counted link on the wall opens a list of exactly that many cases.
    let mut figures = 0;
    let mut rest = wall.body.as_str();
    while let Some(at) = rest.find(" data-count=\"") {
        let open = rest[..=at].rfind("<a ").unwrap();
        let tag = &rest[open..open + rest[open..].find('>').unwrap()];
        rest = &rest[at + 1..];
        let attribute = |name: &str| {
            let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            unescape(&tag[start..start + tag[start..].find('"').unwrap()])
        };
        let count: usize = attribute("data-count").parse().unwrap();
        let href = attribute("href");
        let list = supervisor.get(&href).await;
        assert_eq!(list.status, 200, "{href}: {}", list.body);
        assert_eq!(
            list.body
                .matches(r#"<td><a href="/screens/supervisor/cases/"#)
                .count(),
            count,
            "{tag}: {}",
            list.body
        );
        if href.contains("only=") {
            visited.push(list);
        }
        figures += 1;
    }
    // Three lights on each tile, eight figures for each department, three totals.
    assert!(figures >= 11 * departments + 3, "{figures} figures");
    let decided = supervisor
        .get(&format!(
            "/screens/supervisor/decided?department=public-security&only=on_time&at={day}"
        ))
        .await;
    assert!(
        decided.body.contains("公安 · 按时办结事项"),
        "{}",
        decided.body
    );
    assert!(
        decided
            .body
            .contains(&format!("/screens/supervisor/cases/{sealed}\""))
    );
    assert!(decided.body.contains("按时办结</td>"));
    let wrong = supervisor
        .get("/screens/supervisor/decided?only=late")
        .await;
    assert_eq!(wrong.status, 422);
    visited.push(decided);
    visited.push(wall);
    let evaluated = supervisor
        .get(&format!("/screens/supervisor/cases/{sealed}"))
        .await;
    assert_eq!(evaluated.status, 200);
    visited.push(evaluated);

    // The case, read-only: its matters and timeline, not its form.
    let case = supervisor
        .get(&format!("/screens/supervisor/cases/{business}"))
        .await;
    assert_eq!(case.status, 200, "{}", case.body);
    assert!(case.body.contains(&business));
    assert!(case.body.contains("营业执照设立登记"));
    assert!(case.body.contains("办理过程"));
    assert!(!case.body.contains("withdrawal"), "nothing to act on");
    visited.push(case);

    // Mistakes are Chinese pages: an unknown case, a day that is not one, an unknown filter.
    let missing = supervisor
        .get("/screens/supervisor/cases/no-such-case")
        .await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("未找到"));
    let bad = supervisor.get("/screens/supervisor?at=Friday").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("日期应为 YYYY-MM-DD"), "{}", bad.body);
    let unknown = supervisor
        .get("/screens/supervisor/steps?department=nowhere")
        .await;
    assert_eq!(unknown.status, 404);
    let name = supervisor.get("/screens/supervisor/steps?name=x").await;
    assert_eq!(name.status, 422);

    // No page names a person, and no address carries more than ids, lights and days.
    for page in &visited {
        for person in personal {
            assert!(!page.body.contains(person), "{person} on a page");
        }
        for address in addresses(&page.body) {
            let decoded: String = url::form_urlencoded::parse(address.as_bytes())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            for person in personal {
                assert!(!decoded.contains(person), "{person} in {address}");
            }
            if let Some((_, query)) = address.split_once('?') {
                for (key, _) in url::form_urlencoded::parse(query.as_bytes()) {
                    assert!(
                        ["at", "department", "light", "only"].contains(&key.as_ref()),
                        "{key} in {address}"
                    );
                }
            }
        }
    }

    // A clerk is refused on every page of the wall.
    let mut clerk = Visitor::new(&hall);
    clerk.sign_in("/screens", "clerk1", CLERK_PASSWORD).await;
    for path in [
        format!("/screens/supervisor?at={day}"),
        format!("/screens/supervisor/steps?department=tax&light=red&at={day}"),
        "/screens/supervisor/cards?light=yellow".to_string(),
        "/screens/supervisor/evaluations?department=public-security".to_string(),
        "/screens/supervisor/rectifications".to_string(),
        format!("/screens/supervisor/cases/{tax}"),
    ] {
        let refused = clerk.get(&path).await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(
            refused.body.contains("窗口受理人员无权"),
            "{path}: {}",
            refused.body
        );
        assert!(
            !refused.body.contains(&tax),
            "{path} shows nothing of the case"
        );
    }
}

/// One round trip through the provider: the gateway's start (its flow cookie set), the
/// provider's approval; the callback's path and query, not yet followed.
async fn to_provider_and_back(visitor: &mut Visitor, provider: &oidc::Provider) -> String {
    to_provider_and_back_at(visitor, provider, "/screens").await
}

/// The same from the desk at `prefix` (`/console`: the flow's cookie is the console's).
async fn to_provider_and_back_at(
    visitor: &mut Visitor,
    provider: &oidc::Provider,
    prefix: &str,
) -> String {
    let start = visitor.get(&format!("{prefix}/login/oidc")).await;
    let desk = if prefix == "/console" {
        "console"
    } else {
        "hall"
    };
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = start.location().to_string();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", provider.issuer())),
        "{authorize}"
    );
    for part in [
        "code_challenge_method=S256",
        "scope=openid+profile",
        "nonce=",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    let flow = start
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("gw-{desk}-oidc=")))
        .expect("the flow's cookie");
    assert!(
        flow.contains("HttpOnly") && flow.contains("SameSite=Lax"),
        "{flow}"
    );
    let approved = visitor.http.get(&authorize).send().await.unwrap();
    assert_eq!(approved.status(), 303, "the provider approves at once");
    let back = approved.headers()["location"].to_str().unwrap().to_string();
    back.strip_prefix(&visitor.base)
        .expect("back to the gateway's registered callback")
        .to_string()
}

/// A query parameter's value in a callback's address.
fn param(callback: &str, name: &str) -> String {
    let url = url::Url::parse(&format!("http://x{callback}")).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clerk_signs_in_through_the_halls_identity_provider_and_nothing_else_does() {
    let provider = oidc::Provider::start(serde_json::json!({
        "sub": "5f0c3a9e-idp-subject-77",
        "staff_no": "gl-0307",
        "name": "李统一",
        "roles": ["staff", "hall-clerk"],
        "window": "7号窗口",
    }))
    .await;
    let port = integration_tests::free_port();
    let hall = format!("http://127.0.0.1:{port}");
    provider.register(&format!("{hall}/screens/login/oidc/callback"));
    let setup = Setup {
        listen: Some(format!("127.0.0.1:{port}")),
        ..Setup::default()
    };
    let env = start_with(setup, &provider.config_toml(&hall)).await;

    // The sign-in page offers the provider next to the local form; the console, without a
    // console_redirect_base, does not.
    let mut clerk = Visitor::new(&hall);
    let login = clerk.get("/screens/login").await;
    assert!(login.body.contains("统一身份认证登录"), "{}", login.body);
    assert!(login.body.contains(r#"<label for="user">用户名</label>"#));
    let console = Visitor::new(&env.admin_url()).get("/console/login").await;
    assert!(!console.body.contains("统一身份认证登录"));

    // There and back: the session is made as a local sign-in makes one, the flow's cookie
    // cleared, and the page moves on to the clerk's window (no redirect: see login.rs).
    let callback = to_provider_and_back(&mut clerk, &provider).await;
    let signed = clerk.get(&callback).await;
    assert_signed_in(&signed, "/screens/clerk", "gw-hall");
    assert!(clerk.flow.is_none());
    let window = clerk.get("/screens/clerk").await;
    assert_eq!(window.status, 200);
    assert!(
        window.body.contains("李统一（窗口受理人员）"),
        "{}",
        window.body
    );
    // The same CSRF rules: the session's token makes a draft, a forged one does not.
    let token = window.csrf();
    let path = "/screens/clerk/services/one-thing.open-business/drafts";
    assert_eq!(
        clerk.post(path, &[("_csrf", &"A".repeat(43))]).await.status,
        403
    );
    let made = clerk.post(path, &[("_csrf", &token)]).await;
    assert_eq!(made.status, 303, "{}", made.body);
    // The session records the staff number as the user, the window from the claim, the hall
    // and scopes from the role table, and the provider's subject.
    let id = clerk.cookie.clone().unwrap();
    let id = id.trim_start_matches("gw-hall=");
    let kept = env
        .gateway
        .orchestrator
        .store()
        .session(&gateway_http::auth::sha256_hex(id))
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(
        (kept.username.as_str(), kept.role.as_str()),
        ("gl-0307", "clerk")
    );
    let profile: serde_json::Value = serde_json::from_str(&kept.profile).unwrap();
    assert_eq!(profile["window"], "7号窗口");
    assert_eq!(profile["hall"], "鼓楼区政务服务中心");
    assert_eq!(profile["subject"], "5f0c3a9e-idp-subject-77");
    assert_eq!(profile["scopes"][2], "cases:all");

    // The same callback again: its flow is over (the cookie cleared), whatever the code.
    let again = clerk.get(&callback).await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("登录请求已失效"), "{}", again.body);

    // A replayed code in a new flow of this browser: the provider takes a code once.
    let mut replay = Visitor::new(&hall);
    let fresh = to_provider_and_back(&mut replay, &provider).await;
    let replayed = format!(
        "/screens/login/oidc/callback?code={}&state={}",
        param(&callback, "code"),
        param(&fresh, "state")
    );
    let refused = replay.get(&replayed).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("授权码无效或已使用"),
        "{}",
        refused.body
    );
    assert!(replay.cookie.is_none(), "no session");

    // A tampered state: refused before the code is spent.
    let mut tampered = Visitor::new(&hall);
    let back = to_provider_and_back(&mut tampered, &provider).await;
    let state = param(&back, "state");
    let forged = back.replace(&state, &"B".repeat(43));
    let refused = tampered.get(&forged).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("状态不符"), "{}", refused.body);
    assert!(tampered.cookie.is_none());
    // Another browser (no flow cookie) with a good state and code is refused too.
    let mut stranger = Visitor::new(&hall);
    let back = to_provider_and_back(&mut tampered, &provider).await;
    let refused = stranger.get(&back).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("登录请求已失效"), "{}", refused.body);
    assert!(stranger.cookie.is_none());

    // Tokens that are not right: signed by a key the provider does not publish, expired, for
    // another nonce or another client. Each refused with its reason; none makes a session.
    for (tamper, says) in [
        (oidc::Tamper::OtherKey, "校验未通过"),
        (oidc::Tamper::Expired, "已过期"),
        (oidc::Tamper::Nonce, "校验未通过"),
        (oidc::Tamper::Audience, "校验未通过"),
    ] {
        provider.tamper(tamper);
        let mut visitor = Visitor::new(&hall);
        let back = to_provider_and_back(&mut visitor, &provider).await;
        let refused = visitor.get(&back).await;
        assert_eq!(refused.status, 403, "{tamper:?}");
        assert!(refused.body.contains(says), "{tamper:?}: {}", refused.body);
        assert!(refused.body.contains(r#"<html lang="zh-CN">"#));
        assert!(visitor.cookie.is_none(), "{tamper:?}");
        assert_eq!(
            visitor.get("/screens/clerk").await.location(),
            "/screens/login"
        );
    }
    provider.tamper(oidc::Tamper::None);

    // A person whose role claim maps to nothing here is refused; so is a name taken by a
    // local account.
    provider.set_user(serde_json::json!({
        "sub": "another-subject-0001", "staff_no": "lib-0001", "name": "钱馆员",
        "roles": ["library-staff"],
    }));
    let mut stranger = Visitor::new(&hall);
    let back = to_provider_and_back(&mut stranger, &provider).await;
    let refused = stranger.get(&back).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("未分配可在此登录的本系统角色"),
        "{}",
        refused.body
    );
    assert!(stranger.cookie.is_none());
    provider.set_user(serde_json::json!({
        "sub": "another-subject-0002", "staff_no": "clerk1", "name": "冒名",
        "roles": "hall-clerk",
    }));
    let back = to_provider_and_back(&mut stranger, &provider).await;
    let refused = stranger.get(&back).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("与本地账号同名"), "{}", refused.body);

    // A supervisor by the role table; the window row does not apply.
    provider.set_user(serde_json::json!({
        "sub": "another-subject-0003", "staff_no": "sv-0001", "name": "周监察",
        "roles": "hall-supervisor",
    }));
    let mut supervisor = Visitor::new(&hall);
    let back = to_provider_and_back(&mut supervisor, &provider).await;
    let signed = supervisor.get(&back).await;
    assert!(
        signed.body.contains("url=/screens/supervisor"),
        "{}",
        signed.body
    );
    assert_eq!(supervisor.get("/screens/supervisor").await.status, 200);
    assert_eq!(supervisor.get("/screens/clerk").await.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_signs_in_to_the_console_through_the_identity_provider_and_a_clerk_does_not() {
    let provider = oidc::Provider::start(serde_json::json!({
        "sub": "9a41d7c2-idp-subject-91",
        "staff_no": "yw-0042",
        "name": "吴统一",
        "roles": ["staff", "hall-operator"],
    }))
    .await;
    // Both listeners on ports known before the gateway starts: the provider sends each
    // desk's browsers back to its own listener.
    let (port, admin_port) = (
        integration_tests::free_port(),
        integration_tests::free_port(),
    );
    let hall = format!("http://127.0.0.1:{port}");
    let console = format!("http://127.0.0.1:{admin_port}");
    provider.register(&format!("{hall}/screens/login/oidc/callback"));
    provider.register(&format!("{console}/console/login/oidc/callback"));
    let mut config_extra = format!(
        "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n[[admin.operators]]\nid = \"{}\"\ntoken_sha256 = \"{}\"\n",
        integration_tests::OPERATOR,
        gateway_http::auth::sha256_hex(integration_tests::OPERATOR_TOKEN),
    );
    config_extra.push_str(&screens_toml());
    config_extra.push_str(&provider.config_toml_with_console(&hall, &console));
    let env = integration_tests::Env::start_with(Setup {
        listen: Some(format!("127.0.0.1:{port}")),
        config_extra,
        ..Setup::default()
    })
    .await
    .expect("a gateway");
    assert_eq!(env.admin_url().trim_end_matches('/'), console);

    // The console's sign-in page offers the provider beside the local form.
    let mut operator = Visitor::new(&console);
    let login = operator.get("/console/login").await;
    assert!(login.body.contains("统一身份认证登录"), "{}", login.body);
    assert!(login.body.contains(r#"<label for="user">用户名</label>"#));

    // There and back: the provider was asked for the console's own callback, and the session
    // is the console's (its cookie), the flow's cookie cleared; the page moves on to the
    // console's home.
    let callback = to_provider_and_back_at(&mut operator, &provider, "/console").await;
    assert!(
        callback.starts_with("/console/login/oidc/callback?"),
        "{callback}"
    );
    let signed = operator.get(&callback).await;
    assert_signed_in(&signed, "/console/", "gw-console");
    let home = operator.get("/console/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("吴统一（运维人员）"), "{}", home.body);
    assert!(home.body.contains("<h1>运维控制台</h1>"), "{}", home.body);
    assert!(home.body.contains(r#"id="departments""#));
    // Recorded as an operator, the staff number as the user, the provider's subject beside
    // it; an operator has no window, hall or scopes.
    let id = operator.cookie.clone().unwrap();
    let kept = env
        .gateway
        .orchestrator
        .store()
        .session(&gateway_http::auth::sha256_hex(
            id.trim_start_matches("gw-console="),
        ))
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(
        (kept.username.as_str(), kept.role.as_str()),
        ("yw-0042", "operator")
    );
    let profile: serde_json::Value = serde_json::from_str(&kept.profile).unwrap();
    assert_eq!(profile["subject"], "9a41d7c2-idp-subject-91");
    assert!(
        profile["window"].is_null() && profile["hall"].is_null(),
        "{profile}"
    );
    // The console's actions take the session's CSRF token as a local sign-in's do.
    let verified = operator
        .post("/console/audit/verification", &[("_csrf", &home.csrf())])
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);

    // The same person at the hall's desk: the operator's row is not the hall's.
    let mut at_the_hall = Visitor::new(&hall);
    let back = to_provider_and_back(&mut at_the_hall, &provider).await;
    let refused = at_the_hall.get(&back).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("未分配可在此登录的本系统角色"),
        "{}",
        refused.body
    );
    assert!(at_the_hall.cookie.is_none());

    // A person whose role claim maps only to clerk: refused the console with the Chinese
    // page, no session made; the same person is let in at the hall.
    provider.set_user(serde_json::json!({
        "sub": "9a41d7c2-idp-subject-92", "staff_no": "gl-0309", "name": "郑窗口",
        "roles": ["staff", "hall-clerk"], "window": "5号窗口",
    }));
    let mut clerk = Visitor::new(&console);
    let back = to_provider_and_back_at(&mut clerk, &provider, "/console").await;
    let refused = clerk.get(&back).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains(r#"<html lang="zh-CN">"#));
    assert!(
        refused
            .body
            .contains("您的统一身份认证账号未分配可在此登录的本系统角色，请联系管理员。"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("NoRole"), "no Rust text on the page");
    assert!(clerk.cookie.is_none(), "no console session");
    assert!(clerk.flow.is_none(), "the flow's cookie cleared");
    assert_eq!(clerk.get("/console/").await.location(), "/console/login");
    let mut same_person = Visitor::new(&hall);
    let back = to_provider_and_back(&mut same_person, &provider).await;
    let signed = same_person.get(&back).await;
    assert!(
        signed.body.contains("url=/screens/clerk"),
        "{}",
        signed.body
    );
    let window = same_person.get("/screens/clerk").await;
    assert!(
        window.body.contains("郑窗口（窗口受理人员）"),
        "{}",
        window.body
    );
}

// ---- The operators' console ----

/// `body` as one multipart part of a form field and one of a file, as a browser's FormData.
fn multipart(department: &str, component: &[u8]) -> (String, Vec<u8>) {
    let boundary = "console-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"department\"\r\n\r\n{department}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"component\"; filename=\"adapter.wasm\"\r\n\
         Content-Type: application/wasm\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(component);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// What the admin API says serves `department`: (active digest, candidate digest, percent).
async fn serving(env: &integration_tests::Env, department: &str) -> (String, String, u64) {
    let status = env
        .admin_get(&format!("/admin/v1/adapters/{department}"))
        .await;
    let digest = |role: &str| {
        status[role]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (
        digest("active"),
        digest("candidate"),
        status["percent"].as_u64().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_departments_and_adapters_and_changes_what_serves() {
    let env = start(Setup::default()).await;
    let console = env.admin_url();
    let mut operator = Visitor::new(&console);
    assert_eq!(
        operator
            .sign_in("/console", "ops1", OPERATOR_PASSWORD)
            .await
            .status,
        303
    );
    let home = operator.get("/console/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    let token = home.csrf();

    // Every department the admin API lists, with its readiness, its certificates' expiry and
    // the version serving it.
    let listed = env.admin_get("/admin/v1/adapters").await;
    let departments = listed["departments"].as_array().unwrap();
    assert!(departments.len() >= 4, "{listed}");
    for d in departments {
        let id = d["department"].as_str().unwrap();
        assert!(
            home.body
                .contains(&format!(r#"<tr data-department="{id}">"#)),
            "{id} in the departments' table"
        );
        assert!(
            home.body.contains(&format!(
                r#"<fieldset class="adapter" data-department="{id}">"#
            )),
            "{id} in the adapters"
        );
        let active = d["active"]["digest"].as_str().unwrap();
        assert!(
            home.body.contains(&format!(r#"data-digest="{active}""#)),
            "{id}'s active version shown"
        );
    }
    let row = &home.body[home
        .body
        .find(r#"<tr data-department="public-security">"#)
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("tls.ca："), "{row}");
    assert!(row.contains("剩余 "), "days left: {row}");
    assert!(home.body.contains("正在服务"));
    assert!(!home.body.contains("style="), "no inline style");

    // Upload a second tax version: multipart, the token in the script's header; stored, not
    // serving, recorded with the operator.
    let tax = std::fs::read(integration_tests::adapters_dir().join("tax_adapter.wasm")).unwrap();
    let v1 = gateway_plugins::adapters::digest(&tax);
    let v2_bytes = integration_tests::component_variant(&tax, "console-v2");
    let v2 = gateway_plugins::adapters::digest(&v2_bytes);
    // (A small body for the refusals: the guard answers before reading one, and a large body
    // still being written would meet a closed connection.)
    let (content_type, small) = multipart("tax", b"\0asm");
    for refused in [vec![], vec![("x-csrf-token", "A".repeat(43))]] {
        let headers: Vec<(&str, &str)> = refused.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = operator
            .post_body("/console/adapters", &content_type, small.clone(), &headers)
            .await;
        assert_eq!(answer.status, 403, "an upload without the token");
    }
    let (content_type, body) = multipart("tax", &v2_bytes);
    let pushed = operator
        .post_body(
            "/console/adapters",
            &content_type,
            body,
            &[("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(pushed.status, 303, "{}", pushed.body);
    assert_eq!(pushed.location(), "/console?done=pushed&department=tax");
    let tax_status = env.admin_get("/admin/v1/adapters/tax").await;
    let stored = tax_status["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["digest"] == v2)
        .unwrap_or_else(|| panic!("v2 stored: {tax_status}"));
    assert_eq!(stored["loaded_by"], "ops1");
    assert_eq!(serving(&env, "tax").await, (v1.clone(), String::new(), 0));
    let page = operator.get(pushed.location()).await;
    assert!(
        page.body.contains("组件已上传并通过检查（tax）"),
        "{}",
        page.body
    );

    // A component that is not one: refused in Chinese, naming the check, nothing changes.
    let (content_type, body) = multipart("tax", b"not a component");
    let refused = operator
        .post_body(
            "/console/adapters",
            &content_type,
            body,
            &[("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("组件未通过检查"), "{}", refused.body);
    assert!(refused.body.contains("原有版本照常服务"));

    // Stage it for half the calls, promote it, roll back: each changes what the admin API
    // says serves.
    let staged = operator
        .post(
            "/console/adapters/tax/activate",
            &[("_csrf", &token), ("digest", &v2), ("percent", "50")],
        )
        .await;
    assert_eq!(staged.status, 303, "{}", staged.body);
    assert_eq!(serving(&env, "tax").await, (v1.clone(), v2.clone(), 50));
    let page = operator.get("/console/").await;
    let tax_box = &page.body[page
        .body
        .find(r#"<fieldset class="adapter" data-department="tax">"#)
        .unwrap()..];
    let tax_box = &tax_box[..tax_box.find("</fieldset>").unwrap()];
    assert!(tax_box.contains("灰度候选"), "{tax_box}");
    assert!(tax_box.contains("50%"), "{tax_box}");
    assert!(tax_box.contains("转为全量"), "{tax_box}");

    let promoted = operator
        .post("/console/adapters/tax/promote", &[("_csrf", &token)])
        .await;
    assert_eq!(promoted.status, 303, "{}", promoted.body);
    assert_eq!(serving(&env, "tax").await, (v2.clone(), String::new(), 0));

    let rolled = operator
        .post("/console/adapters/tax/rollback", &[("_csrf", &token)])
        .await;
    assert_eq!(rolled.status, 303, "{}", rolled.body);
    assert_eq!(
        rolled.location(),
        "/console?done=rolled-back&department=tax"
    );
    assert_eq!(serving(&env, "tax").await, (v1.clone(), String::new(), 0));
    let history = env.admin_get("/admin/v1/adapters/tax").await["history"].clone();
    let actions: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|h| {
            (
                h["action"].as_str().unwrap(),
                h["operator"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("rollback", "ops1"),
            ("promote", "ops1"),
            ("stage", "ops1"),
            ("push", "ops1"),
        ],
        "recorded with the operator, as the API records its token's"
    );

    // What the state does not allow: a Chinese page, the registry's reason beside it.
    let refused = operator
        .post("/console/adapters/tax/promote", &[("_csrf", &token)])
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.body.contains("没有灰度中的候选版本可以转正"),
        "{}",
        refused.body
    );
    let out_of_range = operator
        .post(
            "/console/adapters/tax/activate",
            &[("_csrf", &token), ("digest", &v2), ("percent", "0")],
        )
        .await;
    assert_eq!(out_of_range.status, 422, "{}", out_of_range.body);
    assert!(
        out_of_range.body.contains("灰度比例"),
        "{}",
        out_of_range.body
    );
    for page in [&refused, &out_of_range] {
        assert!(!page.body.contains("Conflict("), "no Rust debug text");
        assert!(!page.body.contains("InvalidInput"), "no Rust debug text");
    }

    // A dead letter that is not one is "not found"; the audit chains verified from the console.
    let replay = operator
        .post(
            "/console/dead-letters/no-case/no-step/replay",
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(replay.status, 404);
    assert!(replay.body.contains("未找到"));
    let page = operator.get("/console/").await;
    assert!(page.body.contains("尚未校验。"));
    let verified = operator
        .post("/console/audit/verification", &[("_csrf", &token)])
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    let page = operator.get("/console/").await;
    let audit = &page.body[page.body.find(r#"id="audit""#).unwrap()..];
    assert!(audit.contains("上次校验："), "{audit}");
    assert!(audit.contains("（ops1，节点 "), "{audit}");
    assert!(audit.contains("完整"), "{audit}");

    // A reload of a config that is refused shows every problem: file, key, reason.
    let config = env.dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replacen("/ca.pem\"", "/missing-ca.pem\"", 1)).unwrap();
    let refused = operator
        .post("/console/config/reload", &[("_csrf", &token)])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("新配置未被采用"), "{}", refused.body);
    let table = &refused.body[refused.body.find(r#"<table class="refusal">"#).unwrap()..];
    let row = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    assert!(row.contains("gateway.toml</td>"), "the file: {row}");
    assert!(
        row.contains("<code>departments.public-security.tls</code>"),
        "the key: {row}"
    );
    assert!(row.contains("missing-ca.pem"), "the reason: {row}");
    std::fs::write(&config, &text).unwrap();
    let reloaded = operator
        .post("/console/config/reload", &[("_csrf", &token)])
        .await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert!(
        reloaded.body.contains("配置已重新加载"),
        "{}",
        reloaded.body
    );

    // Every action wants the session's token: missing or forged, refused, nothing changed.
    let actions: [(&str, Vec<(&str, &str)>); 6] = [
        ("/console/adapters/tax/activate", vec![("digest", &v2)]),
        ("/console/adapters/tax/promote", vec![]),
        ("/console/adapters/tax/rollback", vec![]),
        ("/console/dead-letters/no-case/no-step/replay", vec![]),
        ("/console/audit/verification", vec![]),
        ("/console/config/reload", vec![]),
    ];
    for (path, form) in &actions {
        let missing = operator.post(path, form).await;
        assert_eq!(missing.status, 403, "{path} without a token");
        assert!(
            missing.body.contains("安全校验未通过"),
            "{path}: {}",
            missing.body
        );
        let mut forged = form.clone();
        let fake = "A".repeat(43);
        forged.push(("_csrf", &fake));
        assert_eq!(
            operator.post(path, &forged).await.status,
            403,
            "{path} forged"
        );
        let mut cross = form.clone();
        cross.push(("_csrf", &token));
        let answer = operator
            .post_with(path, &cross, &[("origin", "http://evil.example")])
            .await;
        assert_eq!(answer.status, 403, "{path} from another origin");
    }
    assert_eq!(serving(&env, "tax").await, (v1.clone(), String::new(), 0));

    // A clerk's or a supervisor's session reaches neither the console's pages nor its actions,
    // even with its cookie under the console's name and its own token.
    let hall = env.gateway.url();
    for (user, password, first) in [
        ("clerk1", CLERK_PASSWORD, "/screens/clerk"),
        ("super1", SUPERVISOR_PASSWORD, "/screens/supervisor"),
    ] {
        let mut other = Visitor::new(&hall);
        other.sign_in("/screens", user, password).await;
        let their_token = other.get(first).await.csrf();
        let mut stray = Visitor::new(&console);
        stray.cookie = other.cookie.clone();
        assert_eq!(stray.get("/console/").await.location(), "/console/login");
        stray.cookie = other
            .cookie
            .clone()
            .map(|c| c.replace("gw-hall", "gw-console"));
        assert_eq!(stray.get("/console/").await.status, 403, "{user}");
        let answer = stray
            .post(
                "/console/adapters/tax/activate",
                &[("_csrf", &their_token), ("digest", &v2)],
            )
            .await;
        assert_eq!(answer.status, 403, "{user}");
        assert!(!answer.body.contains("灰度"), "{user}");
    }
    assert_eq!(serving(&env, "tax").await, (v1, String::new(), 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_is_replayed_from_the_console_with_the_operator_recorded() {
    let env = start(Setup {
        department_extra: vec![("public-security", "max_attempts = 2".into())],
        ..Setup::default()
    })
    .await;
    env.departments
        .public_security
        .set_faults(departments::Faults {
            down: true,
            ..departments::Faults::default()
        });
    let form = serde_json::json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": ["法定名称章"]
    });
    let case_id = env.apply("public-security.seal-filing", &form).await;
    env.wait_for_case(&case_id, std::time::Duration::from_secs(20), |v| {
        v["matters"][0]["state"] == "failed"
    })
    .await;

    let mut operator = Visitor::new(&env.admin_url());
    operator
        .sign_in("/console", "ops1", OPERATOR_PASSWORD)
        .await;
    let home = operator.get("/console/").await;
    let letters = &home.body[home.body.find(r#"id="dead-letters""#).unwrap()..];
    let replay = format!("/console/dead-letters/{case_id}/public-security.seal-filing/replay");
    assert!(
        letters.contains(&format!(r#"action="{replay}""#)),
        "{letters}"
    );
    assert!(
        letters.contains("已尝试2次仍未成功"),
        "its reason: {letters}"
    );
    assert!(
        !letters.contains("11010519491231002X"),
        "no identity number"
    );

    env.departments
        .public_security
        .set_faults(departments::Faults::default());
    let replayed = operator.post(&replay, &[("_csrf", &home.csrf())]).await;
    assert_eq!(replayed.status, 303, "{}", replayed.body);
    assert_eq!(replayed.location(), "/console?done=replayed");
    let view = env
        .wait_for_case(&case_id, std::time::Duration::from_secs(20), |v| {
            v["status"] == "completed"
        })
        .await;
    let event = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "replayed")
        .unwrap_or_else(|| panic!("a replay on the timeline: {view}"));
    assert_eq!(
        event["clerk"]["id"], "ops1",
        "recorded with the operator, as the API's replay records its token's"
    );
    let after = operator.get("/console/").await;
    assert!(!after.body.contains(&replay), "no longer a dead letter");
}

/// In Chromium (`GATEWAY_TEST_BROWSER=1`), with the provider on another site (`127.0.0.2`
/// against the gateway's `127.0.0.1`) and a page of its own to approve on, as a hall's is: the flow's SameSite=Lax cookie comes
/// back with the provider's redirect, and the session's SameSite=Strict cookie reaches the
/// clerk's window through the page that moves on (a redirect chain begun on another site
/// would leave it off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_clerk_reaches_the_window_from_the_providers_site() {
    let Some(browser) =
        integration_tests::browser::Browser::start_if_switched_on("OIDC sign-in in a browser")
            .await
            .unwrap()
    else {
        return;
    };
    let provider = oidc::Provider::start_on(
        "127.0.0.2",
        serde_json::json!({
            "sub": "5f0c3a9e-idp-subject-78", "staff_no": "gl-0308", "name": "孙统一",
            "roles": ["hall-clerk"],
        }),
    )
    .await;
    let port = integration_tests::free_port();
    let hall = format!("http://127.0.0.1:{port}");
    provider.register(&format!("{hall}/screens/login/oidc/callback"));
    provider.ask_first(true);
    let setup = Setup {
        listen: Some(format!("127.0.0.1:{port}")),
        ..Setup::default()
    };
    let _env = start_with(setup, &provider.config_toml(&hall)).await;
    browser
        .open(&format!("{hall}/screens/login"))
        .await
        .unwrap();
    browser.click("#oidc").await.unwrap();
    // The provider's own page: the way back begins on its site.
    browser.wait_for("#approve").await.unwrap();
    browser.click("#approve").await.unwrap();
    if browser
        .wait_for_text("孙统一（窗口受理人员）")
        .await
        .is_err()
    {
        let url = browser.client().current_url().await.unwrap();
        panic!("the clerk's window is not reached: the browser is at {url}");
    }
    let url = browser.client().current_url().await.unwrap();
    assert_eq!(url.as_str(), format!("{hall}/screens/clerk"));
    // Signed in for good: the window again, and its search, with the session's cookie.
    browser
        .open(&format!("{hall}/screens/clerk?q=business-licence"))
        .await
        .unwrap();
    browser
        .wait_for_text("孙统一（窗口受理人员）")
        .await
        .unwrap();
    let errors = browser.console_errors().await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    browser.close().await;
}

/// The console's "上次校验" on the admin listener at `admin`, as the operator sees it.
async fn last_verification(admin: &str) -> String {
    let mut operator = Visitor::new(admin);
    let signed = operator
        .sign_in("/console", "ops1", OPERATOR_PASSWORD)
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let page = operator.get("/console/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let at = page
        .body
        .find(r#"id="last-verification""#)
        .unwrap_or_else(|| panic!("the last verification's line: {}", page.body));
    let line = &page.body[at..];
    line[..line.find("</p>").unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_audit_verification_is_kept_across_a_restart_and_on_every_node() {
    let mut env = start(Setup::default()).await;
    assert!(
        last_verification(&env.admin_url())
            .await
            .contains("尚未校验")
    );

    let mut operator = Visitor::new(&env.admin_url());
    operator
        .sign_in("/console", "ops1", OPERATOR_PASSWORD)
        .await;
    let token = operator.get("/console/").await.csrf();
    let verified = operator
        .post("/console/audit/verification", &[("_csrf", &token)])
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    let shown = last_verification(&env.admin_url()).await;
    assert!(shown.contains("上次校验："), "{shown}");
    assert!(shown.contains("（ops1，节点 "), "{shown}");
    assert!(shown.contains("完整"), "{shown}");

    // Another node on the same store shows the same verification …
    let other = env.start_node("node-b").await.unwrap();
    let other_admin = format!("http://{}", other.admin_addr.expect("its admin listener"));
    assert_eq!(last_verification(&other_admin).await, shown);
    other.shutdown().await;

    // … and so does this node once restarted: it is the store's, not a node's memory.
    env.restart().await.unwrap();
    assert_eq!(last_verification(&env.admin_url()).await, shown);
}

/// What the identity provider's callback answers a signed-in user: a page moving on to `next`,
/// the session cookie `cookie` set (HttpOnly, SameSite=Strict) and the flow's cookie cleared.
fn assert_signed_in(signed: &Answer, next: &str, cookie: &str) {
    assert_eq!(signed.status, 200, "{}", signed.body);
    let moves_on = format!(r#"content="0;url={next}""#);
    assert!(signed.body.contains(&moves_on), "{}", signed.body);
    let cookies: Vec<&str> = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with(&format!("{cookie}="))
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")),
        "{cookies:?}"
    );
    let cleared = format!("{cookie}-oidc=;");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&cleared) && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
}
