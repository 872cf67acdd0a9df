//! The hall's screens in a real browser (`GATEWAY_TEST_BROWSER=1`, see
//! `integration_tests::browser`): a clerk signs in at the window's login page; a wrong password
//! is refused in Chinese; nothing the pages load comes from outside the gateway. The clerk's
//! click path: 企业开办 found, its materials uploaded, pre-review's two problems shown at once
//! on their fields, the fixed form accepted, the receipt, the case followed live to completed;
//! the form used by keyboard alone. What the clerk's form, the supervision wall and the
//! console's home weigh and how soon they show, from the browser's Performance API (printed;
//! the weights bounded, the times not: BENCHMARKS.md, "Screens: page weight and first render").

use crate::screens_common;

use integration_tests::Setup;
use integration_tests::browser::{self, Browser};
use integration_tests::files::{pdf, png};
use screens_common::{CLERK_PASSWORD, OPERATOR_PASSWORD, SUPERVISOR_PASSWORD, start};
use serde_json::Value;
use std::time::Duration;

const CLERK: &str = "clerk1";
const CLERK_NAME: &str = "张窗口";

/// How long a 企业开办 may take to complete at the simulated departments (licence, then seal
/// and tax in parallel).
const COMPLETES_WITHIN: Duration = Duration::from_secs(90);

/// The console's errors; none is expected on the screens' pages (they name their own icon, so
/// Chromium asks for no `/favicon.ico`).
async fn page_errors(browser: &Browser) -> Vec<String> {
    browser.console_errors().await.unwrap()
}

/// Sign in as the clerk; the clerk's first page is shown.
async fn sign_in(browser: &Browser, base: &str) {
    let login = format!("{base}/screens/login");
    browser
        .sign_in(&login, CLERK, CLERK_PASSWORD)
        .await
        .unwrap();
    browser.wait_for_text(CLERK_NAME).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_signs_in_and_a_wrong_password_is_refused_in_chinese() {
    let Some(browser) = Browser::start_if_switched_on("the clerk's sign-in in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    let env = start(Setup::default()).await;
    let base = env.gateway.url();
    browser
        .open(&format!("{base}/screens/login"))
        .await
        .unwrap();

    // A wrong password: the same login page, the error in Chinese, no session.
    browser.type_into("#user", CLERK).await.unwrap();
    browser
        .type_into("#password", "不是这个密码")
        .await
        .unwrap();
    browser.click("button[type=submit]").await.unwrap();
    let problem = browser.wait_for("[role=alert]").await.unwrap();
    assert_eq!(problem.text().await.unwrap(), "用户名或密码不正确。");
    let user = browser.find("#user").await.unwrap();
    assert_eq!(user.prop("value").await.unwrap().as_deref(), Some(CLERK));
    browser
        .screenshot(&browser::screen_path("login-refused"))
        .await
        .unwrap();
    // The refusal is the page's answer (401), not a console error of the page's own making.
    let errors: Vec<String> = page_errors(&browser)
        .await
        .into_iter()
        .filter(|e| !e.contains("/screens/login - Failed to load resource: the server responded with a status of 401"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // The right one: the clerk's first page, with the clerk's name, and a session cookie the
    // page's scripts cannot read (HttpOnly).
    browser
        .type_into("#password", CLERK_PASSWORD)
        .await
        .unwrap();
    browser.click("button[type=submit]").await.unwrap();
    browser.wait_for_text(CLERK_NAME).await.unwrap();
    let url = browser.client().current_url().await.unwrap();
    assert_eq!(url.path(), "/screens/clerk", "{url}");
    assert!(
        browser.find_all("[role=alert]").await.unwrap().is_empty(),
        "no error on the first page"
    );
    let cookies = browser.execute("return document.cookie;").await.unwrap();
    assert_eq!(cookies, "", "the session cookie is HttpOnly");
    let secure_cookies = browser.client().get_all_cookies().await.unwrap();
    assert!(
        secure_cookies
            .iter()
            .any(|c| c.http_only() == Some(true) && c.same_site().is_some()),
        "a session cookie, HttpOnly with SameSite: {secure_cookies:?}"
    );

    let origin = format!("{base}/");
    let resources = browser.resources().await.unwrap();
    for url in &resources {
        assert!(
            url.starts_with(&origin),
            "loaded from outside the gateway: {url}"
        );
    }
    // The page names its icon, an embedded SVG served by the gateway.
    let icon = browser
        .execute("return document.querySelector('link[rel=icon]').href;")
        .await
        .unwrap();
    let icon = icon.as_str().unwrap();
    assert!(
        icon.starts_with(&format!("{base}/screens/assets/")),
        "{icon}"
    );
    let served = reqwest::get(icon).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/svg+xml");
    let errors = page_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser
        .screenshot(&browser::screen_path("clerk-signed-in"))
        .await
        .unwrap();
    browser.close().await;
}

/// The value of a form field, as the page holds it.
async fn value_of(browser: &Browser, css: &str) -> String {
    browser
        .find(css)
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Type into the field `f.<path>` after clearing it.
async fn fill(browser: &Browser, path: &str, text: &str) {
    let field = browser.find(&format!("[id='f.{path}']")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_takes_open_business_from_problems_to_completed_in_a_browser() {
    let Some(browser) = Browser::start_if_switched_on("the clerk's click path in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    let env = start(Setup {
        demo_materials: true,
        ..Setup::default()
    })
    .await;
    let base = env.gateway.url();
    sign_in(&browser, &base).await;

    // Found by name, its draft opened from the list.
    browser.type_into("#q", "企业开办").await.unwrap();
    browser.click("form.search button").await.unwrap();
    browser
        .click("#found[data-q='企业开办'] form[data-service='one-thing.open-business'] button")
        .await
        .unwrap();
    browser.wait_for("[id='f.enterprise_name']").await.unwrap();
    let draft_url = browser.client().current_url().await.unwrap();
    assert!(
        draft_url.path().starts_with("/screens/clerk/drafts/"),
        "{draft_url}"
    );

    // Every field has its label, and Tab walks the form in the order it reads.
    let unlabelled = browser
        .execute(
            "return Array.from(document.querySelectorAll('main form input:not([type=hidden]), main form select, main form textarea'))\
             .filter(function (e) { return !(e.labels && e.labels.length && e.labels[0].textContent.trim()); })\
             .map(function (e) { return e.id || e.name; });",
        )
        .await
        .unwrap();
    assert_eq!(
        unlabelled,
        Value::Array(Vec::new()),
        "fields without a label"
    );
    keyboard_walks_the_form(&browser).await;

    // The materials, chosen as files: the script uploads each and says so.
    let dir = tempfile::tempdir().unwrap();
    for (code, name, bytes) in [
        ("articles-of-association", "章程.pdf", pdf(40_000, 1)),
        ("seal-impression", "印模.png", png(20_000, 2)),
        // 免提交 once public security confirms the representative, but the number is about
        // to be mistyped: the clerk takes the copy the applicant brought.
        ("shareholder-id", "股东身份证明.pdf", pdf(30_000, 3)),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        browser
            .type_into(&format!("[id='m-{code}']"), path.to_str().unwrap())
            .await
            .unwrap();
        browser
            .wait_for(&format!("[id='m-{code}'][data-uploaded=yes]"))
            .await
            .unwrap();
        let status = browser
            .find(&format!("[id='m-{code}-status']"))
            .await
            .unwrap();
        assert!(
            status.text().await.unwrap().starts_with("已上传"),
            "{code} uploaded"
        );
    }

    // Filled with two mistakes: an identity number that does not check, and no address.
    fill(&browser, "enterprise_name", "福州浏览器受理科技有限公司").await;
    fill(&browser, "legal_representative.name", "李四").await;
    fill(
        &browser,
        "legal_representative.id_number",
        "340524198001010010",
    )
    .await;
    fill(&browser, "registered_capital", "100").await;
    fill(&browser, "business_scope", "软件开发").await;
    fill(
        &browser,
        "seal_types",
        "法定名称章
财务专用章",
    )
    .await;
    browser.click("#submit").await.unwrap();
    let alert = browser.wait_for("#problems").await.unwrap();
    let said = alert.text().await.unwrap();
    let marked = browser
        .execute(
            "return Array.from(document.querySelectorAll('.has-problem')).map(function (e) { return e.textContent.replace(/\\s+/g, ' '); });",
        )
        .await
        .unwrap();
    assert!(said.contains("预审发现 2 处问题"), "{said}: {marked:#}");
    for field in ["legal_representative.id_number", "address"] {
        let marked = browser
            .find(&format!("[data-field='{field}'].has-problem"))
            .await
            .unwrap();
        let problem = marked
            .find(fantoccini::Locator::Css(".field-problem"))
            .await;
        assert!(problem.is_ok(), "{field} has its problem beside it");
        let invalid = browser
            .find(&format!("[id='f.{field}']"))
            .await
            .unwrap()
            .attr("aria-invalid")
            .await
            .unwrap();
        assert_eq!(invalid.as_deref(), Some("true"), "{field} is aria-invalid");
    }
    assert_eq!(
        value_of(&browser, "[id='f.enterprise_name']").await,
        "福州浏览器受理科技有限公司",
        "what was typed is kept"
    );
    browser
        .screenshot(&browser::screen_path("clerk-form-problems"))
        .await
        .unwrap();

    // Fixed and accepted: the receipt with its QR code.
    fill(
        &browser,
        "legal_representative.id_number",
        "34052419800101001X",
    )
    .await;
    fill(&browser, "address", "福州市鼓楼区五四路2号").await;
    browser.click("#submit").await.unwrap();
    let case_id = browser
        .wait_for("#receipt-case")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!case_id.is_empty());
    assert!(!browser.find_all(".qr svg").await.unwrap().is_empty());
    let receipt = browser.find("main").await.unwrap().text().await.unwrap();
    assert!(receipt.contains("鼓楼区政务服务中心 3号窗口"), "{receipt}");
    assert!(
        !receipt.contains("34052419800101001X"),
        "no identity number"
    );
    browser
        .screenshot(&browser::screen_path("clerk-receipt"))
        .await
        .unwrap();

    // The case, followed live: the timeline grows until the case is completed.
    browser.click("a[data-case]").await.unwrap();
    browser.wait_for("#timeline li").await.unwrap();
    browser
        .client()
        .wait()
        .at_most(COMPLETES_WITHIN)
        .for_element(fantoccini::Locator::Css(
            "#case-status[data-status=completed]",
        ))
        .await
        .expect("the case completes on the open page, without a reload");
    assert_eq!(
        browser
            .find("#case-status")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "已办结"
    );
    // Each matter's row followed too: all three approved, on the page as first loaded.
    let states = browser
        .execute("return Array.from(document.querySelectorAll('tr[data-step] td[data-state]')).map(function (e) { return e.dataset.state; });")
        .await
        .unwrap();
    assert_eq!(
        states,
        serde_json::json!(["approved", "approved", "approved"]),
        "every matter approved without a reload"
    );
    let timeline = browser
        .find("#timeline")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(timeline.contains("已批准"), "{timeline}");
    let shown = browser.find_all("#timeline li").await.unwrap().len();
    assert!(shown >= 4, "{timeline}");
    // The ended stream's reconnection is told the timeline is whole: the page stops following
    // and shows no event twice.
    browser
        .wait_for("#timeline[data-live=ended]")
        .await
        .unwrap();
    assert_eq!(
        browser.find_all("#timeline li").await.unwrap().len(),
        shown,
        "no event shown twice"
    );
    browser
        .screenshot(&browser::screen_path("clerk-case-completed"))
        .await
        .unwrap();

    // The receipt's QR code, on the applicant's phone: the status, then 扫码评.
    browser.click("a[href$='/receipt']").await.unwrap();
    let status_url = browser
        .wait_for("#status-url")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!status_url.contains(&case_id), "{status_url}");
    browser.client().delete_all_cookies().await.unwrap();
    browser.set_window_size(browser::PHONE).await.unwrap();
    browser.open(&status_url).await.unwrap();
    let status = browser.wait_for("#case-status").await.unwrap();
    assert_eq!(status.text().await.unwrap(), "已办结");
    let width = browser
        .execute("return document.documentElement.scrollWidth;")
        .await
        .unwrap();
    assert!(
        width.as_u64().unwrap() <= u64::from(browser::PHONE.0),
        "no sideways scrolling on a phone: {width}"
    );
    browser
        .screenshot(&browser::screen_path("applicant-status-phone"))
        .await
        .unwrap();
    browser.click("#level-1").await.unwrap();
    browser
        .type_into("#comment", "一次办好，很方便")
        .await
        .unwrap();
    browser.click("#submit-evaluation").await.unwrap();
    let thanks = browser.wait_for("#evaluated").await.unwrap();
    assert!(thanks.text().await.unwrap().contains("非常满意"));
    assert!(browser.find_all("#evaluate").await.unwrap().is_empty());
    browser.set_window_size(browser::DESKTOP).await.unwrap();
    let errors = page_errors(&browser).await;
    let errors: Vec<&String> = errors
        .iter()
        // The form answered 422 with its problems: that is the page, not a fault.
        .filter(|e| !e.contains("status of 422"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
}

/// Tab, pressed on the keyboard (not typed into an element: a file chooser would take it for
/// a file's name).
async fn press_tab(browser: &Browser) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let tab = '\u{e004}';
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: tab })
        .then(KeyAction::Up { value: tab });
    browser.client().perform_actions(keys).await.unwrap();
}

/// From the form's first field, Tab reaches every field, each file chooser and the submit
/// button in the order they stand in the page (no field skipped, none out of order), and what
/// is typed goes into the field that has the focus.
async fn keyboard_walks_the_form(browser: &Browser) {
    let order = browser
        .execute(
            "return Array.from(document.querySelectorAll('main form input:not([type=hidden]), main form select, main form textarea, main form button'))\
             .filter(function (e) { return !e.disabled && e.tabIndex >= 0; })\
             .map(function (e) { return e.id || (e.name + '=' + e.value); });",
        )
        .await
        .unwrap();
    let order: Vec<String> = serde_json::from_value(order).unwrap();
    assert!(order.len() > 8, "{order:?}");
    assert_eq!(order.last().map(String::as_str), Some("submit"));
    let positive = browser
        .execute("return document.querySelectorAll('[tabindex]:not([tabindex=\"-1\"]):not([tabindex=\"0\"])').length;")
        .await
        .unwrap();
    assert_eq!(positive, 0, "no tabindex reorders the page");
    browser
        .execute(&format!("document.getElementById('{}').focus();", order[0]))
        .await
        .unwrap();
    let mut walked = Vec::new();
    for _ in 0..order.len() {
        let here = browser
            .execute("var e = document.activeElement; return e.id || (e.name + '=' + e.value);")
            .await
            .unwrap();
        walked.push(here.as_str().unwrap_or_default().to_string());
        press_tab(browser).await;
    }
    assert_eq!(walked, order, "Tab follows the page's order");
    // Typing goes where the focus is: the first field, reached by keyboard again.
    browser
        .execute(&format!("document.getElementById('{}').focus();", order[0]))
        .await
        .unwrap();
    let first = browser.client().active_element().await.unwrap();
    first.send_keys("键").await.unwrap();
    assert_eq!(
        value_of(browser, &format!("[id='{}']", order[0])).await,
        "键"
    );
    first.clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_fills_the_form_in_a_browser() {
    let Some(browser) = Browser::start_if_switched_on("lookups filling the form in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    let env = start(Setup::default()).await;
    let base = env.gateway.url();
    sign_in(&browser, &base).await;
    browser
        .click("#found form[data-service='tax.registration'] button")
        .await
        .unwrap();
    browser
        .type_into("[id='f.credit_code']", "91350100M000100Y43")
        .await
        .unwrap();
    browser
        .click("button[data-from='f.credit_code']")
        .await
        .unwrap();
    browser
        .wait_for("button[data-from='f.credit_code'][data-looked=yes]")
        .await
        .unwrap();
    assert_eq!(
        value_of(&browser, "[id='f.enterprise_name']").await,
        "福州测试科技有限公司",
        "filled from market regulation"
    );
    assert!(!value_of(&browser, "[id='f.address']").await.is_empty());
    let said = browser
        .find("[id='f.credit_code-lookup']")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(said.contains("市场监管部门"), "{said}");
    // The representative verified: the page says whether name and number match.
    fill(&browser, "legal_representative.name", "张三").await;
    fill(
        &browser,
        "legal_representative.id_number",
        "11010519491231002X",
    )
    .await;
    browser
        .click("button[data-from='f.legal_representative.name,f.legal_representative.id_number']")
        .await
        .unwrap();
    browser.wait_for_text("姓名与身份号码一致").await.unwrap();
    let errors = page_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_matter_is_supplemented_in_a_browser() {
    let Some(browser) = Browser::start_if_switched_on("补正 from the case page in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    // Tax decides two seconds after acceptance: the case page is open before the matter is
    // returned.
    let env = start(Setup {
        demo_materials: true,
        ticket_delay: Some(Duration::from_secs(2)),
        ..Setup::default()
    })
    .await;
    let base = env.gateway.url();
    sign_in(&browser, &base).await;
    browser
        .click("#found form[data-service='tax.registration'] button")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let licence = dir.path().join("营业执照.pdf");
    std::fs::write(&licence, pdf(30_000, 5)).unwrap();
    browser
        .type_into("[id='m-business-licence']", licence.to_str().unwrap())
        .await
        .unwrap();
    browser
        .wait_for("[id='m-business-licence'][data-uploaded=yes]")
        .await
        .unwrap();
    fill(&browser, "credit_code", "91350100M000100Y43").await;
    fill(&browser, "enterprise_name", "福州测试科技有限公司").await;
    fill(&browser, "legal_representative.name", "张三").await;
    fill(
        &browser,
        "legal_representative.id_number",
        "11010519491231002X",
    )
    .await;
    // No house number: tax returns it, asking for the address and a proof of premises.
    fill(&browser, "address", "福州市鼓楼区五四路").await;
    fill(&browser, "business_scope", "软件开发").await;
    browser.type_into("#commitment", "张三").await.unwrap();
    browser.click("#submit").await.unwrap();
    browser.click("a[data-case]").await.unwrap();
    browser.wait_for("#case-id").await.unwrap();
    // A mark on this document: a reload would lose it.
    let before = browser
        .execute(
            "window.sameDocument = true; \
             return document.querySelector('section.supplement') === null",
        )
        .await
        .unwrap();
    assert_eq!(
        before,
        Value::Bool(true),
        "not returned yet when the page opened"
    );
    browser
        .client()
        .wait()
        .at_most(COMPLETES_WITHIN)
        .for_element(fantoccini::Locator::Css(
            "#case-status[data-status=returned]",
        ))
        .await
        .expect("returned, shown live");
    // What is asked comes onto the page as the matter turns returned, without a reload.
    let asked = browser.wait_for("section.supplement").await.unwrap();
    assert_eq!(
        browser
            .execute("return window.sameDocument === true")
            .await
            .unwrap(),
        Value::Bool(true),
        "the form came without a reload"
    );
    let said = asked.text().await.unwrap();
    assert!(said.contains("补正：新办纳税人税务登记"), "{said}");
    let address = browser
        .find("[id='tax.registration-f.address']")
        .await
        .unwrap();
    address.clear().await.unwrap();
    address.send_keys("福州市鼓楼区五四路1号").await.unwrap();
    let proof = dir.path().join("经营场所证明.pdf");
    std::fs::write(&proof, pdf(20_000, 6)).unwrap();
    browser
        .type_into(
            "[id='tax.registration-m-premises-proof']",
            proof.to_str().unwrap(),
        )
        .await
        .unwrap();
    browser
        .wait_for("[id='tax.registration-m-premises-proof'][data-uploaded=yes]")
        .await
        .unwrap();
    browser
        .screenshot(&browser::screen_path("clerk-supplement"))
        .await
        .unwrap();
    browser
        .click("section.supplement button[type=submit]")
        .await
        .unwrap();
    browser
        .client()
        .wait()
        .at_most(COMPLETES_WITHIN)
        .for_element(fantoccini::Locator::Css(
            "#case-status[data-status=completed]",
        ))
        .await
        .expect("registered after the supplement");
    assert!(
        browser
            .find_all("section.supplement")
            .await
            .unwrap()
            .is_empty()
    );
    let errors = page_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
}

// ---- Page weight and time to first render ----

/// Waits for the page's `load` and its first contentful paint (at most ten seconds more: a
/// browser that reports none gives null), then gives what the Performance API says of the
/// document and every resource it loaded.
const PAGE_LOAD: &str = r#"
var done = arguments[arguments.length - 1];
function entry(e) {
  return {name: e.name, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize};
}
function collect(fcp) {
  var navigation = performance.getEntriesByType('navigation')[0];
  done({
    document: entry(navigation),
    resources: performance.getEntriesByType('resource').map(entry),
    dom_content_loaded: navigation.domContentLoadedEventEnd,
    load: navigation.loadEventEnd,
    first_contentful_paint: fcp
  });
}
function painted() {
  var paint = performance.getEntriesByName('first-contentful-paint')[0];
  if (paint) { collect(paint.startTime); return; }
  var timer = setTimeout(function () { collect(null); }, 10000);
  new PerformanceObserver(function (list, observer) {
    var fcp = list.getEntriesByName('first-contentful-paint')[0];
    if (fcp) { observer.disconnect(); clearTimeout(timer); collect(fcp.startTime); }
  }).observe({type: 'paint', buffered: true});
}
var navigation = performance.getEntriesByType('navigation')[0];
if (document.readyState === 'complete' && navigation && navigation.loadEventEnd > 0) {
  painted();
} else {
  addEventListener('load', function () { setTimeout(painted, 0); });
}
"#;

/// One resource as the Performance API reports it, in bytes: over the wire with headers (0 when
/// it came from the cache), the body as sent, the body decoded.
struct Entry {
    name: String,
    transfer: u64,
    encoded: u64,
    decoded: u64,
}

impl Entry {
    fn from(value: &Value) -> Entry {
        let bytes = |key: &str| {
            value[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}: {value}")) as u64
        };
        Entry {
            name: value["name"].as_str().unwrap_or_default().to_string(),
            transfer: bytes("transfer"),
            encoded: bytes("encoded"),
            decoded: bytes("decoded"),
        }
    }

    /// The last part of its path (`screens.css`).
    fn short(&self) -> &str {
        let path = self.name.split(['?', '#']).next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or(path)
    }
}

/// A page's load: the document, its resources, and its times in milliseconds from the start
/// of the navigation.
struct PageLoad {
    entries: Vec<Entry>,
    dom_content_loaded: f64,
    load: f64,
    first_contentful_paint: Option<f64>,
}

impl PageLoad {
    fn total(&self, bytes: impl Fn(&Entry) -> u64) -> u64 {
        self.entries.iter().map(bytes).sum()
    }
}

/// `url` loaded as on a first visit (the browser's cache emptied, the session's cookie kept),
/// then again as on the next visit; what each load reports.
async fn page_load(browser: &Browser, url: &str) -> (PageLoad, PageLoad) {
    let mut loads = Vec::new();
    browser.clear_cache().await.unwrap();
    for _ in 0..2 {
        browser.open(url).await.unwrap();
        let reported = browser.execute_async(PAGE_LOAD).await.unwrap();
        let entries = std::iter::once(&reported["document"])
            .chain(reported["resources"].as_array().unwrap())
            .map(Entry::from)
            .collect();
        loads.push(PageLoad {
            entries,
            dom_content_loaded: reported["dom_content_loaded"].as_f64().unwrap(),
            load: reported["load"].as_f64().unwrap(),
            first_contentful_paint: reported["first_contentful_paint"].as_f64(),
        });
    }
    let next = loads.pop().unwrap();
    (loads.pop().unwrap(), next)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// Measure `url` (a page of `origin`, signed in already), print its line, and check what holds
/// on any machine: everything from `origin`, the stylesheet and script there, taken from the
/// cache on the next visit, and no more than `bound` bytes decoded.
async fn weigh(browser: &Browser, page: &str, origin: &str, url: &str, bound: u64) {
    let (first, next) = page_load(browser, url).await;
    let resources: Vec<String> = first
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let name = if i == 0 { "document" } else { e.short() };
            format!("{name} {}", kib(e.decoded))
        })
        .collect();
    println!(
        "page weight: {page}: {requests} requests, decoded {decoded}, encoded {encoded}, \
         transferred {transfer} (next visit {again}); DOMContentLoaded {dcl:.0} ms, load {load:.0} ms, \
         first contentful paint {fcp}; [{resources}]",
        requests = first.entries.len(),
        decoded = kib(first.total(|e| e.decoded)),
        encoded = kib(first.total(|e| e.encoded)),
        transfer = kib(first.total(|e| e.transfer)),
        again = kib(next.total(|e| e.transfer)),
        dcl = first.dom_content_loaded,
        load = first.load,
        fcp = first
            .first_contentful_paint
            .map_or("none reported".to_string(), |t| format!("{t:.0} ms")),
        resources = resources.join(", "),
    );

    // Nothing from outside the gateway: a hall's network has no internet.
    for load in [&first, &next] {
        for e in &load.entries {
            assert!(
                e.name.starts_with(&format!("{origin}/")),
                "{page}: loaded from outside the gateway: {}",
                e.name
            );
        }
    }
    // The measurement saw the page: the document, and its stylesheet and script from the
    // network on the first visit.
    assert!(first.entries[0].decoded > 0, "{page}: an empty document");
    for asset in ["screens.css", "screens.js"] {
        let loaded = first
            .entries
            .iter()
            .find(|e| e.short() == asset)
            .unwrap_or_else(|| panic!("{page}: {asset} is not among the page's resources"));
        assert!(
            loaded.transfer > 0 && loaded.decoded > 0,
            "{page}: {asset} fetched on a first visit"
        );
    }
    // Served under their hash and kept: the next visit fetches no asset again.
    for e in next.entries.iter().filter(|e| e.name.contains("/assets/")) {
        assert_eq!(
            e.transfer, 0,
            "{page}: {} fetched again on the next visit",
            e.name
        );
    }
    let decoded = first.total(|e| e.decoded);
    assert!(
        decoded <= bound,
        "{page}: {decoded} bytes decoded, more than the bound of {bound}: what made it heavier?"
    );
    let errors = page_errors(browser).await;
    assert!(errors.is_empty(), "{page}: console errors: {errors:#?}");
}

/// What each page weighs, decoded (document, stylesheet, script, icon), at most: about three
/// times what it weighed when measured (21.5, 25.0 and 25.8 KiB: BENCHMARKS.md, "Screens: page
/// weight and first render"), so a page that grows by a library, an inlined picture or a
/// table repeated fails here.
const CLERK_FORM_BOUND: u64 = 64 * 1024;
const SUPERVISION_WALL_BOUND: u64 = 72 * 1024;
const CONSOLE_HOME_BOUND: u64 = 72 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_screens_weigh_and_how_soon_they_show() {
    let Some(browser) = Browser::start_if_switched_on("the screens' page weight in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    let env = start(Setup {
        demo_materials: true,
        ..Setup::default()
    })
    .await;
    let base = env.gateway.url();
    let base = base.trim_end_matches('/');

    // The clerk's application form for 企业开办 (its materials too), a draft opened from the
    // search as at the window.
    sign_in(&browser, base).await;
    browser
        .open(&format!("{base}/screens/clerk?q=企业开办"))
        .await
        .unwrap();
    browser
        .click("#found form[data-service='one-thing.open-business'] button")
        .await
        .unwrap();
    browser.wait_for("[id='f.enterprise_name']").await.unwrap();
    let draft = browser.client().current_url().await.unwrap();
    assert!(
        draft.path().starts_with("/screens/clerk/drafts/"),
        "{draft}"
    );
    weigh(
        &browser,
        "clerk form 企业开办",
        base,
        draft.as_str(),
        CLERK_FORM_BOUND,
    )
    .await;
    browser.wait_for("[id='f.enterprise_name']").await.unwrap();

    // The supervision wall.
    let login = format!("{base}/screens/login");
    browser
        .sign_in(&login, "super1", SUPERVISOR_PASSWORD)
        .await
        .unwrap();
    browser.wait_for_text("王监察").await.unwrap();
    weigh(
        &browser,
        "supervision wall",
        base,
        &format!("{base}/screens/supervisor"),
        SUPERVISION_WALL_BOUND,
    )
    .await;
    browser
        .wait_for("li.tile[data-department=tax]")
        .await
        .unwrap();

    // The console's home, on the admin listener.
    let console = env.admin_url();
    let console = console.trim_end_matches('/');
    let login = format!("{console}/console/login");
    browser
        .sign_in(&login, "ops1", OPERATOR_PASSWORD)
        .await
        .unwrap();
    browser.wait_for_text("赵运维").await.unwrap();
    weigh(
        &browser,
        "console home",
        console,
        &format!("{console}/console/"),
        CONSOLE_HOME_BOUND,
    )
    .await;
    browser.wait_for("#departments").await.unwrap();
    browser.close().await;
}
