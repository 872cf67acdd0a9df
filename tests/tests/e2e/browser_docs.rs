//! The API docs page (`GET /docs`) on a network with no internet: everything it loads comes
//! from the gateway. Once over plain HTTP (always), once in headless Chromium
//! (`GATEWAY_TEST_BROWSER=1`, see `integration_tests::browser`), whose host resolver resolves
//! nothing, so a script, style or font fetched from any other host fails there.

use integration_tests::Env;
use integration_tests::browser::{self, Browser};

/// Every `src="…"` and `href="…"` of a page.
fn references(html: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| {
            html.split(attribute)
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_and_its_assets_come_from_the_gateway_alone() {
    let env = Env::start().await.unwrap();
    let base = env.gateway.url();
    // No credential: the page and its assets are open, like the document.
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page names another origin: {html}"
    );
    let assets: Vec<String> = references(&html)
        .into_iter()
        .filter(|r| r.starts_with("docs/assets/"))
        .collect();
    assert_eq!(
        assets.len(),
        4,
        "an icon, a stylesheet and two scripts: {html}"
    );

    let vendored = integration_tests::workspace_root().join("crates/http/vendor/swagger-ui");
    for asset in &assets {
        let answer = http.get(format!("{base}/{asset}")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
        let headers = answer.headers().clone();
        let content_type = headers["content-type"].to_str().unwrap();
        let expected = match asset.rsplit('.').next() {
            Some("css") => "text/css",
            Some("png") => "image/png",
            _ => "text/javascript",
        };
        assert!(
            content_type.starts_with(expected),
            "{asset}: {content_type}"
        );
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable"),
            "{asset}"
        );
        let body = answer.bytes().await.unwrap();
        // The vendored files are served as they were fetched.
        let file = asset.trim_start_matches("docs/assets/");
        let stem = file.split('.').next().unwrap();
        let extension = file.rsplit('.').next().unwrap();
        let source = vendored.join(format!("{stem}.{extension}"));
        if source.is_file() {
            assert_eq!(body, std::fs::read(&source).unwrap(), "{asset}");
        }
    }
    // An asset the gateway does not have: the one error format.
    let missing = http
        .get(format!("{base}/docs/assets/swagger-ui-bundle.0000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let error: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_in_a_browser_with_nothing_from_outside() {
    let Some(browser) = Browser::start_if_switched_on("the docs page in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    let env = Env::start().await.unwrap();
    let base = env.gateway.url();
    browser.open(&format!("{base}/docs")).await.unwrap();

    // An operation of the fixed routes, and one of the catalogue's typed paths: the document
    // was fetched from the gateway and rendered.
    browser
        .wait_for(r#"[data-path="/api/v1/catalogue"]"#)
        .await
        .unwrap();
    browser
        .wait_for(
            r#"[data-path="/api/v1/services/market-regulation.business-licence/applications"]"#,
        )
        .await
        .unwrap();
    browser
        .wait_for_text("Integration Gateway Portal API")
        .await
        .unwrap();
    // It works, not only shows: an operation opens with its parameters and "Try it out".
    browser
        .click(r#"#operations-catalogue-catalogue .opblock-summary-control"#)
        .await
        .unwrap();
    browser
        .wait_for("#operations-catalogue-catalogue .try-out__btn")
        .await
        .unwrap();

    let origin = format!("{base}/");
    let resources = browser.resources().await.unwrap();
    assert!(
        resources.len() >= 5,
        "page, css, two scripts, the document: {resources:#?}"
    );
    for url in &resources {
        assert!(
            url.starts_with(&origin),
            "loaded from outside the gateway: {url}"
        );
    }
    assert!(
        resources
            .iter()
            .any(|r| r == &format!("{base}/openapi.json")),
        "{resources:#?}"
    );
    let errors = browser.console_errors().await.unwrap();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    browser
        .screenshot(&browser::screen_path("docs"))
        .await
        .unwrap();
    browser.close().await;
}
