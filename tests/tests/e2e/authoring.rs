//! Writing an adapter for a new department without reading the gateway: generate it from the
//! template (`cargo xtask new-adapter`), run its harness tests, build it to a component.

use integration_tests::{cargo_in_generated, generated_adapter, generated_adapter_crate};

/// A department the workspace has no adapter and no configuration for.
const NEW_DEPARTMENT: &str = "water";

#[test]
fn a_generated_adapter_passes_its_tests_and_builds_to_a_component() {
    let root = integration_tests::workspace_root();
    assert!(!root.join("plugins/water").exists());
    let demo_config = std::fs::read_to_string(root.join("config/gateway.toml")).unwrap();
    assert!(!demo_config.contains("[departments.water]"));

    // Generated: the department's id and name everywhere, nothing of the template's left.
    let dir = generated_adapter_crate(NEW_DEPARTMENT);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(r#"name = "water-adapter""#), "{manifest}");
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("pub struct Water;"));
    assert!(lib.contains("供水"));
    for file in ["src/lib.rs", "src/protocol.rs", "tests/harness.rs"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            !text.contains("example") && !text.contains("Example") && !text.contains("示例"),
            "{file} still names the template's department"
        );
    }

    // Its harness tests pass with plain `cargo test`, outside the workspace.
    let tested = cargo_in_generated(NEW_DEPARTMENT)
        .arg("test")
        .status()
        .expect("running cargo test in the generated adapter");
    assert!(tested.success(), "the generated adapter's tests failed");

    // It builds to a component that describes the new department.
    let component = generated_adapter(NEW_DEPARTMENT);
    let bytes = std::fs::read(&component).unwrap();
    assert_eq!(&bytes[..4], b"\0asm");
    // Version 0x0d, layer 1: a component, not a core module.
    assert_eq!(&bytes[4..8], &[0x0d, 0x00, 0x01, 0x00]);
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains("water.application") && contains("water.record"));
    assert!(contains("供水申请"));
}

#[test]
fn the_generator_refuses_bad_ids_and_occupied_folders() {
    let root = integration_tests::workspace_root();
    let out = tempfile::tempdir().unwrap();
    let generate = |id: &str, dir: &std::path::Path| {
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args([
                "run",
                "--quiet",
                "-p",
                "xtask",
                "--",
                "new-adapter",
                id,
                "--out",
            ])
            .arg(dir)
            .output()
            .expect("running cargo xtask new-adapter")
    };
    for bad in ["Water", "water_supply", "wa--ter", "water-", "1water"] {
        let refused = generate(bad, &out.path().join("a"));
        assert!(!refused.status.success(), "{bad} was accepted");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("department id"));
    }
    std::fs::write(out.path().join("occupied"), "").unwrap();
    let occupied = generate("water", out.path());
    assert!(!occupied.status.success());
    assert!(String::from_utf8_lossy(&occupied.stderr).contains("not empty"));
}

/// A stand-in for the new department's system, speaking the template's protocol: the API key
/// on every request, a record by identity number.
async fn water_department() -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::{Json, Router, routing::post};
    use serde_json::{Value, json};
    let app = Router::new().route(
        "/api/records/query",
        post(|headers: HeaderMap, Json(query): Json<Value>| async move {
            if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("water-key") {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"code": "401", "message": "bad key"})),
                );
            }
            (
                StatusCode::OK,
                Json(json!({
                    "name": "张三", "idNumber": query["idNumber"],
                    "address": "福州市鼓楼区供水路1号", "registeredOn": "2020-01-01"
                })),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_adapter_is_hot_loaded_into_a_running_gateway() {
    use integration_tests::{Env, Setup};
    use serde_json::json;
    let component = tokio::task::spawn_blocking(|| generated_adapter(NEW_DEPARTMENT))
        .await
        .unwrap();
    let department = water_department().await;
    // The department is configured, with no adapter yet: it waits for one to be pushed.
    let env = Env::start_with(Setup {
        admin: true,
        config_extra: format!(
            "[departments.water]\nname = \"供水\"\nbase_url = \"{department}\"\n[departments.water.settings]\napi-key = \"water-key\"\n"
        ),
        ..Setup::default()
    })
    .await
    .unwrap();
    let query = json!({"id_number": "11010519491231002X"});
    let (status, body) = env.post("/api/v1/lookups/water.record", &query).await;
    assert_eq!(status, 404, "no adapter yet: {body}");

    let pushed = integration_tests::admin_client()
        .post(format!(
            "{}/admin/v1/adapters?department=water&activate=true",
            env.admin_url()
        ))
        .body(std::fs::read(&component).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status().as_u16(), 201);
    let pushed: serde_json::Value = pushed.json().await.unwrap();
    assert_eq!(pushed["version"]["department"], "water");
    assert_eq!(pushed["route"]["active"], pushed["version"]["digest"]);

    let (status, body) = env.post("/api/v1/lookups/water.record", &query).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["name"], "张三");
    assert_eq!(body["result"]["id_number"], "11010519491231002X");
    let (_, catalogue) = env.get("/api/v1/catalogue").await;
    assert!(
        catalogue["lookups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "water.record"),
        "{catalogue}"
    );
}
