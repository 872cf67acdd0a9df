//! Operators reload departments, matters, services and clients on a running gateway: a valid
//! config is applied whole at once, an invalid one is refused whole (file, key, reason) while
//! the old one keeps serving, and what only a restart can change is reported, not applied.

use integration_tests::{Env, GatewayProcess, Setup, workspace_root};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A second portal client, added and removed by reloads.
const SECOND_KEY: &str = "second-portal-key";

fn second_client() -> String {
    format!(
        "\n[[auth.clients]]\nid = \"second-portal\"\napi_key_sha256 = \"{}\"\nscopes = [\"lookup:*\", \"supervision\"]\n",
        gateway_http::auth::sha256_hex(SECOND_KEY)
    )
}

fn admin_setup() -> Setup {
    Setup {
        admin: true,
        ..Setup::default()
    }
}

/// Rewrite the running gateway's config file from `setup`, then edit its text.
fn rewrite(env: &Env, setup: &Setup, edit: impl FnOnce(String) -> String) {
    let path =
        integration_tests::write_config(env.dir.path(), &env.departments, setup, &env.store_url)
            .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
}

/// A copy of the catalogue the gateway reads, with `extra` appended, beside the config; the
/// config's `catalogue` line pointed at it.
fn with_catalogue(env: &Env, extra: &str) -> impl FnOnce(String) -> String {
    // The harness's copy (the demo's, its material lists taken out) when it wrote one, else
    // the demo's own file.
    let text = std::fs::read_to_string(env.dir.path().join("catalogue.toml"))
        .or_else(|_| {
            std::fs::read_to_string(workspace_root().join("config/catalogue.toml"))
                .map(|demo| integration_tests::without_social_security(&demo))
        })
        .unwrap();
    // Named as before (errors name the file), in a folder of its own: the harness writes its
    // copy again whenever the config is rewritten.
    let copy = env.dir.path().join("reloaded/catalogue.toml");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, format!("{text}\n{extra}\n")).unwrap();
    move |config: String| {
        config
            .lines()
            .map(|line| {
                if line.starts_with("catalogue = ") {
                    format!("catalogue = \"{}\"\n", copy.display())
                } else {
                    format!("{line}\n")
                }
            })
            .collect()
    }
}

async fn reload(env: &Env) -> (u16, Value) {
    let response = integration_tests::admin_client()
        .post(format!("{}/admin/v1/config/reload", env.admin_url()))
        .send()
        .await
        .expect("the admin API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn with_key(env: &Env, key: &str, path: &str) -> u16 {
    integration_tests::client_with(&[("x-api-key", key)])
        .get(format!("{}{path}", env.gateway.url()))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn clearance(env: &Env) -> (u16, Value) {
    env.post(
        "/api/v1/lookups/tax.clearance",
        &json!({"taxpayer_id": "91350100M000100Y43"}),
    )
    .await
}

/// `gateway_config_reloads_total{outcome}` (the recorder is the process's: tests running
/// beside this one count too, so callers compare with at least).
async fn reloads(env: &Env, outcome: &str) -> u64 {
    let text = env.metrics().await;
    let series = format!("gateway_config_reloads_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// The problems of a refused reload, as (file name, key).
fn problems(body: &Value) -> Vec<(String, String, String)> {
    body["error"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems listed: {body}"))
        .iter()
        .map(|p| {
            let file = p["file"].as_str().unwrap_or_default();
            let name = std::path::Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                name,
                p["field"].as_str().unwrap_or_default().to_string(),
                p["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

const NEW_SERVICE: &str = r#"
[services."one-thing.food-permit-by-credit-code"]
name = "凭信用代码申请食品经营许可"

[[services."one-thing.food-permit-by-credit-code".lookups]]
id = "enterprise"
lookup = "market-regulation.enterprise"
query = { credit_code = "form.credit_code" }

[[services."one-thing.food-permit-by-credit-code".steps]]
id = "food_permit"
matter = "market-regulation.food-permit"
input = { credit_code = "form.credit_code", enterprise_name = "lookups.enterprise.name", address = "lookups.enterprise.address", "legal_representative.name" = "lookups.enterprise.legal_representative", "legal_representative.id_number" = "form.legal_representative_id_number", business_items = "form.business_items", premises_area = "form.premises_area" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_a_service_and_a_department_with_its_adapter() {
    let env = Env::start_with(admin_setup()).await.unwrap();
    let form = "/api/v1/services/one-thing.food-permit-by-credit-code/form";
    assert_eq!(env.get(form).await.0, 404);
    let hostile = integration_tests::admin_client()
        .get(format!("{}/admin/v1/adapters/hostile", env.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        hostile.status().as_u16(),
        404,
        "no department hostile before the reload"
    );

    let setup = Setup {
        hostile: Some(env.departments.tax.base_url.clone()),
        ..admin_setup()
    };
    rewrite(&env, &setup, with_catalogue(&env, NEW_SERVICE));
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let changes = body["changes"].to_string();
    assert!(changes.contains("departments added: hostile"), "{body}");
    assert!(
        changes.contains("services added: one-thing.food-permit-by-credit-code"),
        "{body}"
    );
    assert!(
        changes.contains("adapters activated from the config: hostile"),
        "{body}"
    );
    assert_eq!(body["needs_restart"], json!([]), "{body}");

    // The new service is in the catalogue, has its form, and takes applications to the end.
    let (_, catalogue) = env.get("/api/v1/catalogue").await;
    assert!(
        catalogue["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["code"] == "one-thing.food-permit-by-credit-code"),
        "{catalogue}"
    );
    let (status, body) = env.get(form).await;
    assert_eq!(status, 200, "{body}");
    let case_id = env
        .apply(
            "one-thing.food-permit-by-credit-code",
            &json!({
                "credit_code": "91350100M000100Y43",
                "legal_representative_id_number": "11010519491231002X",
                "business_items": ["预包装食品销售"],
                "premises_area": 40
            }),
        )
        .await;
    let view = env
        .wait_for_case(&case_id, WAIT, |v| v["status"] == "completed")
        .await;
    assert_eq!(view["service"], "one-thing.food-permit-by-credit-code");

    // The new department's component was checked, stored and activated by the reload.
    let hostile: Value = env.admin_get("/admin/v1/adapters/hostile").await;
    assert!(hostile["active"]["digest"].is_string(), "{hostile}");
    assert!(
        hostile["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["action"] == "activate" && h["operator"] == "config:ops-1"),
        "recorded with the operator: {hostile}"
    );
    assert!(reloads(&env, "applied").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_added_by_a_reload_is_served_and_a_removed_one_refused_at_once() {
    let env = Env::start_with(admin_setup()).await.unwrap();
    let deadlines = "/api/v1/supervision/deadlines";
    assert_eq!(with_key(&env, SECOND_KEY, deadlines).await, 401);

    let with_second = Setup {
        config_extra: second_client(),
        ..admin_setup()
    };
    rewrite(&env, &with_second, |t| t);
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["changes"]
            .to_string()
            .contains("clients added: second-portal"),
        "{body}"
    );
    assert_eq!(with_key(&env, SECOND_KEY, deadlines).await, 200);

    rewrite(&env, &admin_setup(), |t| t);
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    // The very next request after the answer.
    assert_eq!(with_key(&env, SECOND_KEY, deadlines).await, 401);
    assert_eq!(
        with_key(&env, integration_tests::PORTAL_KEY, deadlines).await,
        200,
        "the remaining client is untouched"
    );
}

/// A department stand-in that records each request's path and answers 503.
async fn recording_department() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(uri.path().to_string());
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_department_url_takes_effect_for_new_calls() {
    let env = Env::start_with(admin_setup()).await.unwrap();
    let (status, body) = clearance(&env).await;
    assert_eq!(status, 200, "{body}");

    let (moved, mut seen) = recording_department().await;
    let old = env.departments.tax.base_url.clone();
    rewrite(&env, &admin_setup(), |t| {
        t.replace(
            &format!("base_url = \"{old}\""),
            &format!("base_url = \"{moved}\""),
        )
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["changes"]
            .to_string()
            .contains("departments changed: tax"),
        "{body}"
    );

    let (status, body) = clearance(&env).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("department_unavailable")),
        "the new address answers 503: {body}"
    );
    // Readiness probes (`GET /`) come to the new address too; the lookup's call is an API path.
    let paths = drain(&mut seen);
    assert!(
        paths.iter().any(|p| p.starts_with("/api/")),
        "the call went to the new address: {paths:?}"
    );

    // And back: the adapter version was not reloaded, only its connection.
    rewrite(&env, &admin_setup(), |t| t);
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = clearance(&env).await;
    assert_eq!(status, 200, "{body}");
    let paths = drain(&mut seen);
    assert!(
        !paths.iter().any(|p| p.starts_with("/api/")),
        "no more calls at the stand-in: {paths:?}"
    );
}

/// A department stand-in that records each request's path and holds every API request until
/// `release` is notified, then answers 503.
async fn holding_department() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<String>,
    std::sync::Arc<tokio::sync::Notify>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (tx, held) = (tx.clone(), held.clone());
        async move {
            let path = uri.path().to_string();
            if path.starts_with("/api/") {
                let released = held.notified();
                let _ = tx.send(path);
                released.await;
            }
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_finishes_on_the_connection_it_started_with() {
    let env = Env::start_with(admin_setup()).await.unwrap();
    let (old, mut at_old, release) = holding_department().await;
    let (new, mut at_new) = recording_department().await;
    let tax = env.departments.tax.base_url.clone();
    rewrite(&env, &admin_setup(), |t| {
        t.replace(
            &format!("base_url = \"{tax}\""),
            &format!("base_url = \"{old}\""),
        )
    });
    assert_eq!(reload(&env).await.0, 200);

    let gateway = env.gateway.url();
    let in_flight = tokio::spawn(async move {
        integration_tests::client()
            .post(format!("{gateway}/api/v1/lookups/tax.clearance"))
            .json(&json!({"taxpayer_id": "91350100M000100Y43"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    // The call is at the old address, held there.
    at_old
        .recv()
        .await
        .expect("the call reached the old address");

    rewrite(&env, &admin_setup(), |t| {
        t.replace(
            &format!("base_url = \"{tax}\""),
            &format!("base_url = \"{new}\""),
        )
    });
    let (status, body) = reload(&env).await;
    assert_eq!(
        status, 200,
        "the reload does not wait for calls in flight: {body}"
    );
    let (status, _) = clearance(&env).await;
    assert_eq!(status, 503);
    assert!(
        drain(&mut at_new).iter().any(|p| p.starts_with("/api/")),
        "a new call goes to the new address"
    );
    assert!(!in_flight.is_finished(), "the first call is still held");

    release.notify_waiters();
    assert_eq!(in_flight.await.unwrap(), 503, "answered by the old address");
    assert!(
        drain(&mut at_new).iter().all(|p| !p.starts_with("/api/")),
        "the call in flight was not sent again to the new address"
    );
}

fn drain(seen: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    std::iter::from_fn(|| seen.try_recv().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_is_refused_whole_and_the_old_one_keeps_serving() {
    let env = Env::start_with(admin_setup()).await.unwrap();
    let deadlines = "/api/v1/supervision/deadlines";
    let with_second = Setup {
        config_extra: second_client(),
        ..admin_setup()
    };

    // A new client and a broken matter in one reload: neither is taken.
    let broken_matter = r#"
[matters."tax.nothing"]
name = "无此部门"
department = "nowhere"
matter_type = "07"
service_object = "2"
time_limit_days = 1
"#;
    rewrite(&env, &with_second, with_catalogue(&env, broken_matter));
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "config_refused", "{body}");
    let found = problems(&body);
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!(found[0].0, "catalogue.toml");
    assert_eq!(found[0].1, "matters.\"tax.nothing\".department");
    assert!(found[0].2.contains("nowhere"), "{body}");
    assert_eq!(
        with_key(&env, SECOND_KEY, deadlines).await,
        401,
        "the new client of a refused config is not accepted"
    );

    // A catalogue that no longer fits the loaded adapters: a matter the tax adapter does not
    // serve.
    let unserved = r#"
[matters."tax.unserved"]
name = "税务未提供的事项"
department = "tax"
matter_type = "07"
service_object = "2"
time_limit_days = 1
"#;
    rewrite(&env, &with_second, with_catalogue(&env, unserved));
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    let found = problems(&body);
    assert!(
        found.iter().any(|(file, key, why)| file == "gateway.toml"
            && key == "departments.tax"
            && why.contains("tax.unserved")),
        "{body}"
    );
    assert_eq!(with_key(&env, SECOND_KEY, deadlines).await, 401);

    // A department whose connection cannot be built (its pinned CA file is gone).
    let missing = env.dir.path().join("certs/missing-ca.pem");
    rewrite(&env, &with_second, |t| {
        t.replace(
            &format!("ca = \"{}/ca.pem\"", env.departments.cert_dir.display()),
            &format!("ca = \"{}\"", missing.display()),
        )
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    let found = problems(&body);
    assert_eq!(found.len(), 1, "only the connection is wrong: {body}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("gateway.toml", "departments.public-security.tls"),
        "{body}"
    );
    assert!(found[0].2.contains("missing-ca.pem"), "{body}");
    assert_eq!(with_key(&env, SECOND_KEY, deadlines).await, 401);

    // The old config serves throughout: its client, its departments, its catalogue.
    assert_eq!(
        with_key(&env, integration_tests::PORTAL_KEY, deadlines).await,
        200
    );
    let (status, body) = clearance(&env).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = env
        .get("/api/v1/services/public-security.seal-filing/form")
        .await;
    assert_eq!(status, 200);
    assert!(reloads(&env, "refused").await >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_need_a_restart_are_reported_not_applied() {
    let env = Env::start_with(admin_setup()).await.unwrap();
    let changed = Setup {
        server_extra: "request_timeout_ms = 1234\nclaim_ms = 30000".into(),
        config_extra: second_client(),
        ..admin_setup()
    };
    rewrite(&env, &changed, |t| {
        t.replace("cpu_ms = 1000", "cpu_ms = 900")
    });
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body["needs_restart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    for key in [
        "server.request_timeout_ms",
        "server.claim_ms",
        "plugins.limits",
    ] {
        assert!(keys.contains(&key), "{key} needs a restart: {body}");
    }
    // What can change is applied alongside.
    assert_eq!(
        with_key(&env, SECOND_KEY, "/api/v1/supervision/deadlines").await,
        200
    );
    // And the limits in force are still the started ones.
    let tax: Value = env.admin_get("/admin/v1/adapters/tax").await;
    assert_eq!(tax["limits"]["cpu_ms"], 1000, "{tax}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let store = match integration_tests::TestDatabase::create_if_switched_on()
        .await
        .unwrap()
    {
        Some(db) => (db.url.clone(), Some(db)),
        None => (
            format!("sqlite://{}", dir.path().join("gateway.db").display()),
            None,
        ),
    };
    let config =
        integration_tests::write_config(dir.path(), &departments, &admin_setup(), &store.0)
            .unwrap();
    let gateway = GatewayProcess::spawn_with_env(
        &config,
        &[
            ("RUST_LOG", "warn,gateway=info"),
            ("GATEWAY_LOG_FORMAT", "json"),
        ],
    )
    .await
    .unwrap();
    let status = |key: &'static str| {
        let url = format!("{}/api/v1/supervision/deadlines", gateway.url);
        async move {
            integration_tests::client_with(&[("x-api-key", key)])
                .get(url)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(SECOND_KEY).await, 401);

    let with_second = Setup {
        config_extra: second_client(),
        ..admin_setup()
    };
    integration_tests::write_config(dir.path(), &departments, &with_second, &store.0).unwrap();
    gateway.signal("HUP");
    let line = gateway
        .wait_for_line(WAIT, |l| l.contains("config reloaded"))
        .await;
    assert!(line.contains("signal:SIGHUP"), "{line}");
    assert_eq!(status(SECOND_KEY).await, 200);
    assert_eq!(status(integration_tests::PORTAL_KEY).await, 200);

    // The command line: a thin client of the admin call, as the operator its token names.
    let listening = gateway
        .wait_for_line(WAIT, |l| l.contains("admin API listening"))
        .await;
    let listening: Value = serde_json::from_str(&listening).unwrap();
    let admin = listening["fields"]["addr"]
        .as_str()
        .expect("the admin address is logged");
    integration_tests::write_config(dir.path(), &departments, &admin_setup(), &store.0).unwrap();
    let cli = tokio::process::Command::new(integration_tests::gateway_binary())
        .args(["config", "reload"])
        .env("GATEWAY_ADMIN_URL", format!("http://{admin}"))
        .env("GATEWAY_ADMIN_TOKEN", integration_tests::OPERATOR_TOKEN)
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{printed}");
    assert!(
        printed.contains("clients removed: second-portal"),
        "{printed}"
    );
    gateway
        .wait_for_line(WAIT, |l| {
            l.contains("config reloaded") && l.contains(integration_tests::OPERATOR)
        })
        .await;
    assert_eq!(status(SECOND_KEY).await, 401);
    assert!(gateway.terminate().await.success());
}

const TAX_AGAIN: &str = r#"
[services."one-thing.tax-registration-again"]
name = "凭信用代码办理税务登记"

[[services."one-thing.tax-registration-again".steps]]
id = "tax"
matter = "tax.registration"
input = { credit_code = "form.credit_code", enterprise_name = "form.enterprise_name", legal_representative = "form.legal_representative", address = "form.address", business_scope = "form.business_scope" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_open_cases_cannot_be_removed() {
    // Tax decides after an hour: the case stays open at the department.
    let setup = Setup {
        ticket_delay: Some(Duration::from_secs(3600)),
        ..admin_setup()
    };
    let env = Env::start_with(setup.clone()).await.unwrap();
    rewrite(&env, &setup, with_catalogue(&env, TAX_AGAIN));
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let case_id = env
        .apply(
            "one-thing.tax-registration-again",
            &json!({
                "credit_code": "91350100M000100Y43",
                "enterprise_name": "福州演示科技有限公司",
                "address": "福州市鼓楼区五四路2号",
                "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
                "business_scope": "软件开发"
            }),
        )
        .await;
    env.wait_for_case(&case_id, WAIT, |v| {
        matches!(
            v["matters"][0]["state"].as_str(),
            Some("accepted" | "processing")
        )
    })
    .await;

    // Back to the demo catalogue: the service would leave with its case still open.
    rewrite(&env, &setup, |t| t);
    let (status, body) = reload(&env).await;
    assert_eq!(status, 422, "{body}");
    let found = problems(&body);
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!(found[0].0, "catalogue.toml");
    assert_eq!(found[0].1, "services.\"one-thing.tax-registration-again\"");
    assert!(found[0].2.contains("1 open step"), "{body}");
    // Still served, and the case still followed.
    let (status, _) = env
        .get("/api/v1/services/one-thing.tax-registration-again/form")
        .await;
    assert_eq!(status, 200);
    let (status, view) = env.get(&format!("/api/v1/cases/{case_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["status"], "in_progress", "{view}");
}

/// Tax's component with one title of its registration form changed (纳税人名称 → 纳税户名称,
/// the same length, so the component stays valid): a version whose input schema differs.
fn tax_with_another_schema() -> Vec<u8> {
    let bytes = std::fs::read(integration_tests::adapters_dir().join("tax_adapter.wasm")).unwrap();
    let (from, to) = ("纳税人名称".as_bytes(), "纳税户名称".as_bytes());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the title is in the component");
    let mut patched = bytes.clone();
    patched[at..at + to.len()].copy_from_slice(to);
    patched
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_to_another_form_is_refused_as_a_push_of_it_is() {
    // The catalogue owns tax.registration's form (a schema file): any tax version may serve.
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("registration.schema.json");
    // The fields the one-thing services map onto the matter, any values.
    std::fs::write(
        &schema,
        r#"{"type": "object", "properties": {"credit_code": {}, "enterprise_name": {}, "address": {},
            "business_scope": {}, "legal_representative": {"type": "object",
            "properties": {"name": {}, "id_number": {}}}}}"#,
    )
    .unwrap();
    let catalogue = dir.path().join("catalogue.toml");
    let text = integration_tests::without_social_security(
        &std::fs::read_to_string(workspace_root().join("config/catalogue.toml")).unwrap(),
    );
    let text = text.replacen(
        "[matters.\"tax.registration\"]\n",
        &format!(
            "[matters.\"tax.registration\"]\nschema = \"{}\"\n",
            schema.display()
        ),
        1,
    );
    // Without its material lists, as the default setup's copy (materials are not the point).
    let mut skipping = false;
    let text: String = text
        .lines()
        .filter(|line| {
            if line.starts_with('[') {
                skipping = line.starts_with("[[matters.") && line.ends_with(".materials]]");
            }
            !skipping
        })
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&catalogue, text).unwrap();
    let setup = Setup {
        catalogue: Some(catalogue),
        ..admin_setup()
    };
    let env = Env::start_with(setup).await.unwrap();
    let admin = |path: &str| format!("{}/admin/v1/adapters{path}", env.admin_url());
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let client = integration_tests::admin_client();
    let (status, body) = send(
        client
            .post(admin("?department=tax&activate=true"))
            .body(tax_with_another_schema()),
    )
    .await;
    assert_eq!(status, 201, "the catalogue's form: admitted: {body}");

    // The form becomes the adapter's own again: the running version's schema is the published one.
    rewrite(&env, &admin_setup(), |text| text);
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");

    // Going back to the version from before would change it, as pushing it would: refused.
    let (status, body) = send(client.post(admin("/tax/rollback")).json(&json!({}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "adapter_refused", "{body}");
    let text = body.to_string();
    assert!(
        text.contains("self_check") && text.contains("input schema differs"),
        "{body}"
    );
    // Nothing changed: the version with the catalogue's form still serves.
    let (_, department) = send(client.get(admin("/tax"))).await;
    let patched = gateway_plugins::adapters::digest(&tax_with_another_schema());
    assert_eq!(department["active"]["digest"], patched, "{department}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_added_by_a_reload_reads_its_file_secret_and_a_reload_reads_it_again() {
    let env = Env::start_with(admin_setup()).await.unwrap();
    // A `file:` secret: a running process cannot gain an environment variable, it can read a file.
    let secret = env.dir.path().join("hostile-signing.txt");
    std::fs::write(&secret, "").unwrap();
    let setup = Setup {
        hostile: Some(env.departments.tax.base_url.clone()),
        department_extra: vec![(
            "hostile",
            format!("settings = {{ signing = \"file:{}\" }}", secret.display()),
        )],
        ..admin_setup()
    };
    rewrite(&env, &setup, |text| text);
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let echo = || async {
        let (status, body) = env
            .post(
                "/api/v1/lookups/hostile.secret",
                &json!({"key": "signing", "as": "result"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["result"]["echo"].clone()
    };
    // The file as it was at the reload: empty, so the setting is empty (nothing to scrub).
    assert_eq!(echo().await, json!(""));

    // The file changes; the next reload reads it again: the adapter now gets a value, which is
    // a secret (scrubbed from its answer) and never shown in clear.
    std::fs::write(&secret, "rotated-signing-key\n").unwrap();
    rewrite(&env, &setup, |text| text);
    let (status, body) = reload(&env).await;
    assert_eq!(status, 200, "{body}");
    let after = echo().await;
    assert_eq!(after, json!("[secret]"), "{after}");
}
