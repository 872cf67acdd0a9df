//! The browser harness itself (`integration_tests::browser`), against a small page served here:
//! it types, clicks, waits, resizes, and — what the page tests rely on — sees a page reach for
//! a host outside, as a console error, since the browser has no internet.

use axum::response::Html;
use axum::routing::get;
use integration_tests::browser::{Browser, PHONE};

const PAGE: &str = r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>窗口</title>
<link rel="icon" href="data:,">
<script src="https://cdn.example.com/library.js"></script>
</head><body>
<input id="name" autocomplete="off"><button id="go" type="button">提交</button>
<p id="out"></p>
<script src="/page.js"></script>
</body></html>"#;

const SCRIPT: &str = r#"document.getElementById("go").addEventListener("click", function () {
  document.getElementById("out").textContent = "已受理：" + document.getElementById("name").value;
});"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_drives_a_page_and_sees_what_it_loads_from_outside() {
    let Some(browser) = Browser::start_if_switched_on("the browser harness")
        .await
        .unwrap()
    else {
        return;
    };
    let app = axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/page.js",
            get(|| async { ([("content-type", "text/javascript")], SCRIPT) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    browser.open(&format!("{base}/")).await.unwrap();
    browser.type_into("#name", "李四").await.unwrap();
    browser.click("#go").await.unwrap();
    let out = browser.wait_for_text("已受理：李四").await.unwrap();
    assert_eq!(out.attr("id").await.unwrap().as_deref(), Some("out"));

    // The page's own script came from the page's server; the outside one never arrived.
    let resources = browser.resources().await.unwrap();
    assert!(
        resources.contains(&format!("{base}/page.js")),
        "{resources:#?}"
    );
    let errors = browser.console_errors().await.unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("cdn.example.com") && e.contains("ERR_NAME_NOT_RESOLVED")),
        "the outside script's failure is a console error: {errors:#?}"
    );

    browser.set_window_size(PHONE).await.unwrap();
    let width = browser.execute("return window.innerWidth;").await.unwrap();
    assert_eq!(width, PHONE.0, "the phone's width in CSS pixels");
    browser.close().await;
}
