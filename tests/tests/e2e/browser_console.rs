//! The operators' console in a real browser (`GATEWAY_TEST_BROWSER=1`, see
//! `integration_tests::browser`): an operator uploads a component through the page's form and
//! rolls an adapter back while lookups run, and none fails.

use crate::screens_common;

use integration_tests::browser::{self, Browser};
use integration_tests::{Setup, adapters_dir, component_variant};
use screens_common::OPERATOR_PASSWORD;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One tax clearance lookup through the portal API; its status (0: no answer).
async fn clearance(url: &str, http: &reqwest::Client) -> u16 {
    http.post(format!("{url}/api/v1/lookups/tax.clearance"))
        .json(&json!({"taxpayer_id": "91350100M000100Y43"}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The digest the admin API says serves `department` fully.
async fn active(env: &integration_tests::Env, department: &str) -> String {
    env.admin_get(&format!("/admin/v1/adapters/{department}"))
        .await["active"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rolls_an_adapter_back_while_lookups_run_and_none_fails() {
    let Some(browser) = Browser::start_if_switched_on("the console's rollback in a browser")
        .await
        .unwrap()
    else {
        return;
    };
    let env = screens_common::start(Setup::default()).await;

    // tax serves a second version, pushed and activated through the admin API.
    let tax = std::fs::read(adapters_dir().join("tax_adapter.wasm")).unwrap();
    let v1 = gateway_plugins::adapters::digest(&tax);
    let v2_bytes = component_variant(&tax, "console-browser-v2");
    let v2 = gateway_plugins::adapters::digest(&v2_bytes);
    let pushed = integration_tests::admin_client()
        .post(format!(
            "{}/admin/v1/adapters?department=tax&activate=true",
            env.admin_url()
        ))
        .body(v2_bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201);
    assert_eq!(active(&env, "tax").await, v2);

    // Lookups run all along, from tasks of their own.
    let stop = Arc::new(tokio::sync::Notify::new());
    let served = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..3 {
        let (url, http) = (env.gateway.url(), env.http.clone());
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.notified() => return,
                    status = clearance(&url, &http) => {
                        let counter = if status == 200 { &served } else { &failed };
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    let traffic = |n: u64| {
        let served = served.clone();
        async move {
            let from = served.load(Ordering::SeqCst);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
            while served.load(Ordering::SeqCst) < from + n {
                tick.tick().await;
            }
        }
    };

    // The operator signs in on the admin listener and finds tax's box.
    let console = env.admin_url();
    let login = format!("{console}/console/login");
    browser
        .sign_in(&login, "ops1", OPERATOR_PASSWORD)
        .await
        .unwrap();
    let tax_box = r#"fieldset[data-department="tax"]"#;
    browser
        .wait_for(&format!(r#"{tax_box} code[data-digest="{v2}"]"#))
        .await
        .unwrap();
    traffic(10).await;

    // Upload a third version through the page's form (the screens' script sends it as
    // multipart with the CSRF token in its header): stored for tax, not serving.
    let v3_bytes = component_variant(&tax, "console-browser-v3");
    let v3 = gateway_plugins::adapters::digest(&v3_bytes);
    let file = env.dir.path().join("tax-v3.wasm");
    std::fs::write(&file, &v3_bytes).unwrap();
    browser
        .type_into("#upload-component", file.to_str().unwrap())
        .await
        .unwrap();
    browser
        .click("form[data-multipart] button[type=submit]")
        .await
        .unwrap();
    browser
        .wait_for_text("组件已上传并通过检查（tax）")
        .await
        .unwrap();
    let stored = env.admin_get("/admin/v1/adapters/tax").await["versions"].clone();
    assert!(
        stored
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["digest"] == v3 && v["loaded_by"] == "ops1"),
        "{stored}"
    );
    assert_eq!(active(&env, "tax").await, v2, "stored, not serving");

    // Roll back: confirm, and the page says so; the admin API says v1 serves.
    browser
        .click(&format!("{tax_box} button.rollback"))
        .await
        .unwrap();
    browser.client().accept_alert().await.unwrap();
    browser.wait_for_text("tax 已回退。").await.unwrap();
    browser
        .wait_for(&format!(r#"{tax_box} code[data-digest="{v1}"]"#))
        .await
        .unwrap();
    assert_eq!(active(&env, "tax").await, v1, "the version before serves");
    traffic(10).await;
    // The picture shows tax's box after the rollback with the calls it has served since (the
    // page read again), the notice above it.
    let shown = browser.client().current_url().await.unwrap();
    browser.open(shown.as_str()).await.unwrap();
    browser
        .execute(r#"document.querySelector('fieldset[data-department="tax"]').scrollIntoView({block: "center"}); return null;"#)
        .await
        .unwrap();
    browser
        .screenshot(&browser::screen_path("console"))
        .await
        .unwrap();

    stop.notify_waiters();
    for task in load {
        task.abort();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no lookup failed");
    assert!(served.load(Ordering::SeqCst) >= 20);

    // Nothing from outside the gateway, nothing the page's CSP refused.
    let origin = format!("{console}/");
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
