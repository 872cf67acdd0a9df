//! The supervisors' wall (电子监察) in a real browser (`GATEWAY_TEST_BROWSER=1`, see
//! `integration_tests::browser`): a supervisor signs in, sees a case arrive on the wall without
//! reloading (the screens' script refreshes it), picks the day a step will be overdue, sees its
//! department's tile red, and follows the red number, by keyboard, to the case. The wall fits a
//! hall PC's 1366×768 without sideways scrolling; nothing is loaded from outside the gateway.

use crate::screens_common;

use gateway_base::time::{beijing_date, parse_rfc3339};
use integration_tests::browser::{self, Browser};
use integration_tests::{Env, Setup, workspace_root};
use screens_common::SUPERVISOR_PASSWORD;
use serde_json::{Value, json};
use std::time::Duration;

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

fn tax_form(enterprise: &str) -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": enterprise,
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    })
}

/// The open steps on tax's tile, all lights.
async fn tax_open(browser: &Browser) -> u64 {
    browser
        .execute(
            "var t = document.querySelector('li.tile[data-department=tax]');\
             if (!t) return 0; var n = 0;\
             t.querySelectorAll('a.count strong').forEach(function (s) { n += parseInt(s.textContent, 10); });\
             return n;",
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_a_red_tile_for_an_overdue_case_and_follows_it_to_the_case() {
    let Some(browser) = Browser::start_if_switched_on("the supervisors' wall in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    let holidays = workspace_root().join("config/holidays.toml");
    // The departments decide after an hour: the step stays open.
    let env: Env = screens_common::start(Setup {
        ticket_delay: Some(Duration::from_secs(3600)),
        config_extra: format!("[deadlines]\ncalendar = \"{}\"\n", holidays.display()),
        ..Setup::default()
    })
    .await;
    let base = env.gateway.url();
    let first = env
        .apply("tax.registration", &tax_form("福州监察浏览器甲有限公司"))
        .await;

    let login = format!("{base}/screens/login");
    browser
        .sign_in(&login, "super1", SUPERVISOR_PASSWORD)
        .await
        .unwrap();
    browser.wait_for_text("王监察").await.unwrap();
    browser
        .wait_for("li.tile[data-department=tax]")
        .await
        .unwrap();
    assert_eq!(tax_open(&browser).await, 1);

    // A second case arrives: the wall shows it without being reloaded (within two turns of
    // its 30-second refresh), and the page is the same page (no navigation happened).
    browser.execute("window.__same_page = true;").await.unwrap();
    let second = env
        .apply("tax.registration", &tax_form("福州监察浏览器乙有限公司"))
        .await;
    let until = tokio::time::Instant::now() + Duration::from_secs(70);
    while tax_open(&browser).await < 2 {
        assert!(
            tokio::time::Instant::now() < until,
            "the wall did not show the new case"
        );
        // Polling the page's DOM: the refresh is the page's own timer, not a signal we get.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        browser
            .execute("return window.__same_page === true;")
            .await
            .unwrap(),
        json!(true)
    );

    // The day after the one-day limit of both: the date picker asks what is red then.
    let mut deadline = 0;
    for case in [&first, &second] {
        let (_, view) = env.get(&format!("/api/v1/cases/{case}")).await;
        let received = parse_rfc3339(view["created_at"].as_str().unwrap()).unwrap();
        let calendar = gateway_base::calendar::Calendar::load(&holidays).unwrap();
        deadline = deadline.max(calendar.deadline_ms(received, 1));
    }
    let day = beijing_date(deadline).to_string();
    browser
        .execute(&format!("document.getElementById('at').value = '{day}';"))
        .await
        .unwrap();
    browser
        .click("form.search button[type=submit]")
        .await
        .unwrap();
    let red = browser
        .wait_for("li.tile.tile-red[data-department=tax] a[data-light=red] strong")
        .await
        .unwrap();
    assert_eq!(red.text().await.unwrap(), "2");
    let url = browser.client().current_url().await.unwrap();
    assert_eq!(url.query(), Some(format!("at={day}").as_str()), "{url}");

    // At a hall PC's 1366×768: no sideways scrolling.
    let fits = browser
        .execute("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await
        .unwrap();
    assert_eq!(fits, json!(true), "the wall is wider than the window");
    browser
        .screenshot(&browser::screen_path("supervisor-wall"))
        .await
        .unwrap();

    // By keyboard: Enter on tax's red number, then on the first case behind it.
    browser
        .find("li.tile[data-department=tax] a[data-light=red]")
        .await
        .unwrap()
        .send_keys(ENTER)
        .await
        .unwrap();
    browser
        .wait_for_text("税务 · 红牌 · 在办事项")
        .await
        .unwrap();
    let rows = browser.find_all("tr[data-light=red]").await.unwrap();
    assert_eq!(rows.len(), 2);
    browser
        .find(&format!("a[href='/screens/supervisor/cases/{first}']"))
        .await
        .unwrap()
        .send_keys(ENTER)
        .await
        .unwrap();
    let case = browser.wait_for("#case-id").await.unwrap();
    assert_eq!(case.text().await.unwrap(), first);
    browser.wait_for_text("办理过程").await.unwrap();
    let page = browser
        .execute("return document.body.innerText;")
        .await
        .unwrap();
    let page = page.as_str().unwrap();
    assert!(
        !page.contains("张三"),
        "no applicant's name on the case page"
    );
    assert!(
        !page.contains("11010519491231002X"),
        "nor an identity number"
    );

    let origin = format!("{base}/");
    for url in browser.resources().await.unwrap() {
        assert!(url.starts_with(&origin), "loaded from outside: {url}");
    }
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !e.contains("/favicon.ico - Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
}
