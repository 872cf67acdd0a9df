//! Operators hot-load adapters: push, check, activate, stage, promote, roll back and remove
//! versions on a running gateway, by admin API or by dropping a file, with nothing dropped,
//! the choice kept across restarts and followed by every node.

use gateway_base::config::Limits;
use gateway_base::signature::{Algorithm, SigningKeyFile};
use integration_tests::{
    Env, MARKET_REGULATION_JS, MARKET_REGULATION_JS_LIMITS, Setup, adapters_dir,
    component_variant as variant,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The admin API of one gateway, as operator `ops-1`.
struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    fn of(env: &Env) -> Admin {
        Admin::at(env.admin_url())
    }

    fn at(base: String) -> Admin {
        Admin {
            http: integration_tests::admin_client(),
            base,
        }
    }

    async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("the admin API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn push(&self, component: Vec<u8>, query: &str) -> (u16, Value) {
        Self::answer(
            self.http
                .post(format!("{}/admin/v1/adapters?{query}", self.base))
                .body(component),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Self::answer(
            self.http
                .post(format!("{}/admin/v1/adapters/{path}", self.base))
                .json(&body),
        )
        .await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.http
                .delete(format!("{}/admin/v1/adapters/{path}", self.base)),
        )
        .await
    }

    async fn department(&self, id: &str) -> Value {
        let (status, body) = Self::answer(
            self.http
                .get(format!("{}/admin/v1/adapters/{id}", self.base)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn active(&self, id: &str) -> String {
        self.department(id).await["active"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A built component.
fn component(file: &str) -> Vec<u8> {
    std::fs::read(adapters_dir().join(file)).expect("the adapter components are built")
}

/// A gateway with its admin listener, otherwise as the fixture makes it.
async fn admin_env() -> Env {
    Env::start_with(Setup {
        admin: true,
        ..Setup::default()
    })
    .await
    .unwrap()
}

fn digest(bytes: &[u8]) -> String {
    gateway_plugins::adapters::digest(bytes)
}

async fn clearance(env_url: &str, http: &reqwest::Client) -> u16 {
    http.post(format!("{env_url}/api/v1/lookups/tax.clearance"))
        .json(&json!({"taxpayer_id": "91350100M000100Y43"}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_activate_roll_back_and_remove_a_version() {
    let env = admin_env().await;
    let admin = Admin::of(&env);
    let v1 = digest(&component("tax_adapter.wasm"));
    assert_eq!(
        admin.active("tax").await,
        v1,
        "the config's file serves first"
    );

    let v2_bytes = variant(&component("tax_adapter.wasm"), "v2");
    let v2 = digest(&v2_bytes);
    let (status, pushed) = admin.push(v2_bytes, "department=tax").await;
    assert_eq!(status, 201, "{pushed}");
    assert_eq!(pushed["version"]["digest"], v2);
    assert_eq!(pushed["version"]["department"], "tax");
    assert_eq!(pushed["version"]["contract_version"], "0.3.0");
    assert_eq!(pushed["version"]["loaded_by"], "ops-1");
    assert_eq!(
        pushed["version"]["description"]["lookups"][0]["name"],
        "tax.clearance"
    );
    assert!(pushed["route"].is_null(), "pushed, not activated");
    assert_eq!(admin.active("tax").await, v1);

    let (status, body) = admin
        .post("tax/activate", json!({"digest": &v2[..12]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.active("tax").await, v2);
    assert_eq!(clearance(&env.gateway.url(), &env.http).await, 200);
    let tax = admin.department("tax").await;
    assert_eq!(
        tax["active"]["calls"], 1,
        "the new version served the call: {tax}"
    );
    assert!(
        tax["active"]["first_call_ms"].as_i64().unwrap()
            >= tax["active"]["serving_since_ms"].as_i64().unwrap()
    );

    let (status, body) = admin.post("tax/rollback", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.active("tax").await, v1, "back to the version before");

    let (status, body) = admin.delete(&format!("tax/versions/{v1}")).await;
    assert_eq!(status, 409, "the active version cannot go: {body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, body) = admin.delete(&format!("tax/versions/{v2}")).await;
    assert_eq!(status, 200, "{body}");

    let tax = admin.department("tax").await;
    let versions: Vec<&str> = tax["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["digest"].as_str().unwrap())
        .collect();
    assert_eq!(versions, [v1.as_str()]);
    let actions: Vec<(&str, &str)> = tax["history"]
        .as_array()
        .unwrap()
        .iter()
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
            ("remove", "ops-1"),
            ("rollback", "ops-1"),
            ("activate", "ops-1"),
            ("push", "ops-1"),
            ("activate", "config"),
            ("push", "config"),
        ]
    );

    // Only an operator's token opens the admin API; a portal key is worth nothing there.
    let rollback = format!("{}/admin/v1/adapters/tax/rollback", env.admin_url());
    let (status, body) = Admin::answer(reqwest::Client::new().post(&rollback)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = Admin::answer(env.http.post(&rollback)).await;
    assert_eq!(status, 401, "the portal's API key on the admin API");
    let (status, _) = Admin::answer(env.http.get(format!("{}/metrics", env.admin_url()))).await;
    assert_eq!(status, 401, "metrics too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_component_names_the_check_and_changes_nothing() {
    let env = admin_env().await;
    let admin = Admin::of(&env);
    let before = admin.active("tax").await;
    let refused = |body: &Value| {
        body["error"]["fields"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    let (status, body) = admin.push(b"\0asm not really".to_vec(), "").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "adapter_refused");
    assert_eq!(refused(&body), "compile", "{body}");

    let (status, body) = admin
        .push(component("hostile_adapter.wasm"), "department=tax")
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(refused(&body), "department", "{body}");
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`hostile`, not `tax`")
    );

    let (status, body) = admin.push(component("hostile_adapter.wasm"), "").await;
    assert_eq!(status, 422, "no hostile department here: {body}");
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not configured")
    );

    let (status, body) = admin.push(Vec::new(), "").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "body");

    assert_eq!(admin.active("tax").await, before);
    assert_eq!(
        clearance(&env.gateway.url(), &env.http).await,
        200,
        "still serving"
    );
    assert_eq!(
        admin.department("tax").await["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The four adapters, signed with `key`, in a folder of their own.
fn signed_adapters(key: &SigningKeyFile) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "tax_adapter.wasm",
        "real_estate_adapter.wasm",
        "public_security_adapter.wasm",
        "market_regulation_adapter.wasm",
    ] {
        std::fs::write(dir.path().join(file), key.sign(&component(file)).unwrap()).unwrap();
    }
    dir
}

fn trusted_keys(keys: &[&SigningKeyFile]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "[[plugins.trusted_keys]]\nid = \"{}\"\nalgorithm = \"{}\"\npublic_key = \"{}\"\n",
                k.id, k.algorithm, k.public_key
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_trusted_keys_only_signed_components_are_admitted() {
    let ops = SigningKeyFile::generate("ops-ed25519", Algorithm::Ed25519);
    let gm = SigningKeyFile::generate("ops-sm2", Algorithm::Sm2);
    let stranger = SigningKeyFile::generate("stranger", Algorithm::Ed25519);
    let signed = signed_adapters(&ops);
    let env = Env::start_with(Setup {
        admin: true,
        plugins_dir: Some(signed.path().to_path_buf()),
        config_extra: trusted_keys(&[&ops, &gm]),
        ..Setup::default()
    })
    .await
    .unwrap();
    let admin = Admin::of(&env);
    let tax = admin.department("tax").await;
    assert_eq!(tax["versions"][0]["signed_by"], "ops-ed25519");

    let unsigned = variant(&component("tax_adapter.wasm"), "unsigned");
    let (status, body) = admin.push(unsigned.clone(), "").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["code"], "signature");
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not signed")
    );

    let (status, body) = admin.push(stranger.sign(&unsigned).unwrap(), "").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a trusted key")
    );

    let mut tampered = ops.sign(&unsigned).unwrap();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    let (status, body) = admin.push(tampered, "").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["code"], "signature", "{body}");

    let (status, body) = admin
        .push(gm.sign(&unsigned).unwrap(), "activate=true")
        .await;
    assert_eq!(status, 201, "an SM2 signature by a trusted key: {body}");
    assert_eq!(body["version"]["signed_by"], "ops-sm2");
    assert_eq!(clearance(&env.gateway.url(), &env.http).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_and_rollbacks_under_steady_load_fail_no_request() {
    let env = admin_env().await;
    let admin = Admin::of(&env);
    let v1 = digest(&component("tax_adapter.wasm"));
    let v2_bytes = variant(&component("tax_adapter.wasm"), "v2");
    let v2 = digest(&v2_bytes);
    assert_eq!(admin.push(v2_bytes, "").await.0, 201);

    let stop = Arc::new(tokio::sync::Notify::new());
    let served = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, http) = (env.gateway.url(), env.http.clone());
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.notified() => return,
                    status = clearance(&url, &http) => {
                        if status == 200 { served.fetch_add(1, Ordering::SeqCst); }
                        else { failed.fetch_add(1, Ordering::SeqCst); }
                    }
                }
            }
        }));
    }
    // Pace the swaps by served requests, so each version serves some under load.
    let wait_for_traffic = || {
        let served = served.clone();
        async move {
            let from = served.load(Ordering::SeqCst);
            while served.load(Ordering::SeqCst) < from + 5 {
                tokio::task::yield_now().await;
            }
        }
    };
    for round in 0..10 {
        let (status, body) = admin.post("tax/activate", json!({"digest": v2})).await;
        assert_eq!(status, 200, "round {round}: {body}");
        wait_for_traffic().await;
        let (status, body) = admin.post("tax/rollback", json!({})).await;
        assert_eq!(status, 200, "round {round}: {body}");
        assert_eq!(body["route"]["active"], v1);
        wait_for_traffic().await;
        let (status, body) = admin
            .post("tax/activate", json!({"digest": v2, "percent": 50}))
            .await;
        assert_eq!(status, 200, "round {round}: {body}");
        wait_for_traffic().await;
        let (status, body) = admin.post("tax/rollback", json!({})).await;
        assert_eq!(status, 200, "round {round}: {body}");
        wait_for_traffic().await;
    }
    stop.notify_waiters();
    for task in load {
        task.abort();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no request failed during 40 swaps"
    );
    assert!(served.load(Ordering::SeqCst) >= 200);
    let history = admin.department("tax").await["history"].clone();
    let swaps = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] != "push")
        .count();
    assert!(swaps >= 40, "{history}");
}

/// A gateway with the hostile department (version 1.0.0) and staged rollout judged after
/// ten calls.
async fn hostile_env(extra: &str) -> Env {
    Env::start_with(Setup {
        admin: true,
        hostile: Some("http://127.0.0.1:9".into()),
        config_extra: format!("[plugins.staged]\nmin_calls = 10\nmax_error_rate = 0.5\n{extra}"),
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn echo(env: &Env, query: Value) -> (u16, Value) {
    env.post("/api/v1/lookups/hostile.echo", &query).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_version_serves_its_share_and_is_promoted() {
    let env = hostile_env("").await;
    let admin = Admin::of(&env);
    let (status, body) = admin
        .push(component("hostile_next_adapter.wasm"), "percent=30")
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["route"]["percent"], 30);
    let mut by_version = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..100 {
        let (status, answer) = echo(&env, json!({"i": i})).await;
        assert_eq!(status, 200, "{answer}");
        let version = answer["result"]["served_by"].as_str().unwrap_or("1.0.0");
        *by_version.entry(version.to_string()).or_default() += 1;
    }
    assert_eq!(by_version["2.0.0"], 30, "{by_version:?}");
    assert_eq!(by_version["1.0.0"], 70, "{by_version:?}");
    let hostile = admin.department("hostile").await;
    assert_eq!(hostile["candidate"]["calls"], 30, "{hostile}");
    assert_eq!(hostile["candidate"]["faults"], 0);

    let (status, body) = admin.post("hostile/promote", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["route"]["candidate"].is_null());
    let (_, answer) = echo(&env, json!({})).await;
    assert_eq!(answer["result"]["served_by"], "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_version_failing_past_the_bound_is_rolled_back_automatically() {
    let env = hostile_env("").await;
    let admin = Admin::of(&env);
    let v2 = digest(&component("hostile_next_adapter.wasm"));
    let (status, body) = admin
        .push(component("hostile_next_adapter.wasm"), "percent=50")
        .await;
    assert_eq!(status, 201, "{body}");
    // Version 2 fails these; version 1 echoes them.
    let mut failures = 0;
    for _ in 0..20 {
        let (status, _) = echo(&env, json!({"fail": true})).await;
        if status != 200 {
            failures += 1;
        }
    }
    assert_eq!(failures, 10, "half the calls went to the failing candidate");
    // The rollback is the node's next sync; its route is the signal.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hostile = admin.department("hostile").await;
        if hostile["candidate"].is_null() {
            let last = &hostile["history"][0];
            assert_eq!(last["action"], "auto-rollback", "{hostile}");
            assert_eq!(last["digest"], v2);
            assert!(
                last["detail"]
                    .as_str()
                    .unwrap()
                    .contains("error rate 1.00 over 10 calls"),
                "{last}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not rolled back: {hostile}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..10 {
        let (status, body) = echo(&env, json!({"fail": true})).await;
        assert_eq!(status, 200, "only version 1 serves now: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_adapter_limits_show_in_metrics_and_a_full_adapter_answers_busy() {
    // One call held until the department's gate opens holds the one instance.
    let (env, department) = crate::hostile::hostile_env_with(Setup {
        admin: true,
        hostile_limits: "max_instances = 1\ncall_timeout_ms = 30000".into(),
        ..Setup::default()
    })
    .await;
    let admin = Admin::of(&env);
    let slow = crate::hostile::spawn_lookup(&env, "busy", json!({"ms": 0, "until_open": true}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.department("hostile").await["live_instances"] != 1 {
        assert!(Instant::now() < deadline, "the held call never started");
        tokio::task::yield_now().await;
    }
    let (status, body) = echo(&env, json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "adapter_busy");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 instances")
    );
    department
        .gate
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(slow.await.unwrap().0, 200);
    let (status, _) = echo(&env, json!({})).await;
    assert_eq!(status, 200, "free again");

    let metrics = env.metrics().await;
    for line in [
        r#"gateway_adapter_limit{department="hostile",limit="max_instances"} 1"#,
        r#"gateway_adapter_limit{department="hostile",limit="memory_mib"} 32"#,
        r#"gateway_adapter_limit{department="hostile",limit="cpu_ms"} 200"#,
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
    assert!(
        metrics.contains(r#"gateway_adapter_calls_total{department="hostile",version="1.0.0",call="lookup",outcome="busy"}"#),
        "busy calls are counted"
    );
    assert!(metrics.contains(
        r#"gateway_adapter_call_seconds_bucket{department="hostile",version="1.0.0",call="lookup""#
    ));
}

/// Compiled artefacts in a wasmtime cache folder (its usage statistics left out).
fn compiled_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().ends_with(".stats") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_keeps_versions_and_choice_without_compiling_again() {
    let cache = tempfile::tempdir().unwrap();
    let mut env = Env::start_with(Setup {
        admin: true,
        cache_dir: Some(cache.path().to_path_buf()),
        ..Setup::default()
    })
    .await
    .unwrap();
    let admin = Admin::of(&env);
    let v2_bytes = variant(&component("tax_adapter.wasm"), "v2");
    let v2 = digest(&v2_bytes);
    let (status, body) = admin.push(v2_bytes, "activate=true").await;
    assert_eq!(status, 201, "{body}");
    let before = admin.department("tax").await;
    let compiled = compiled_files(cache.path());
    assert!(
        compiled.len() >= 5,
        "four adapters and v2 compiled: {compiled:?}"
    );

    env.restart().await.unwrap();
    let admin = Admin::of(&env);
    let after = admin.department("tax").await;
    assert_eq!(after["active"]["digest"], v2, "the active choice survived");
    assert_eq!(after["versions"], before["versions"], "the same versions");
    assert_eq!(
        compiled_files(cache.path()),
        compiled,
        "nothing was compiled again"
    );
    assert_eq!(clearance(&env.gateway.url(), &env.http).await, 200);
    assert_eq!(admin.department("tax").await["active"]["calls"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_dropped_into_the_watched_folder_is_loaded() {
    let drop_dir = tempfile::tempdir().unwrap();
    let env = Env::start_with(Setup {
        admin: true,
        plugins_extra: format!(
            "watch_dir = \"{}\"\nsync_interval_ms = 50",
            drop_dir.path().display()
        ),
        ..Setup::default()
    })
    .await
    .unwrap();
    let admin = Admin::of(&env);
    let v2_bytes = variant(&component("tax_adapter.wasm"), "dropped");
    let v2 = digest(&v2_bytes);
    // Written aside, then renamed into place: the watcher never sees half a file.
    let aside = drop_dir.path().join("tax-v2.wasm.part");
    std::fs::write(&aside, &v2_bytes).unwrap();
    std::fs::rename(&aside, drop_dir.path().join("tax-v2.wasm")).unwrap();
    std::fs::write(drop_dir.path().join("junk.wasm"), b"not a component").unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let refusal = drop_dir.path().join("junk.wasm.refused");
    while admin.active("tax").await != v2 || !refusal.exists() {
        assert!(
            Instant::now() < deadline,
            "the dropped files were not handled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tax = admin.department("tax").await;
    assert_eq!(tax["versions"][0]["source"], "file");
    assert_eq!(tax["versions"][0]["loaded_by"], "file:tax-v2.wasm");
    assert!(
        std::fs::read_to_string(&refusal)
            .unwrap()
            .contains("compile")
    );
    assert_eq!(clearance(&env.gateway.url(), &env.http).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_on_one_node_takes_effect_on_the_other_within_a_second() {
    let env = admin_env().await;
    let other = env.start_node("node-b").await.unwrap();
    let (a, b) = (
        Admin::of(&env),
        Admin::at(format!("http://{}", other.admin_addr.unwrap())),
    );
    let v2_bytes = variant(&component("tax_adapter.wasm"), "v2");
    let v2 = digest(&v2_bytes);
    let (status, body) = a.push(v2_bytes, "").await;
    assert_eq!(status, 201, "{body}");
    // Each node compiles a department's newest version ahead of its activation.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.department("tax").await["prepared"]
        .as_array()
        .unwrap()
        .contains(&json!(v2))
    {
        assert!(
            Instant::now() < deadline,
            "node b never prepared the pushed version"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let (status, body) = a.post("tax/activate", json!({"digest": v2})).await;
    assert_eq!(status, 200, "{body}");
    while b.active("tax").await != v2 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "node b still serves the old version"
        );
        tokio::task::yield_now().await;
    }
    eprintln!("node b followed in {:?}", started.elapsed());
    assert_eq!(clearance(&other.url(), &env.http).await, 200);
    assert_eq!(
        b.department("tax").await["active"]["calls"],
        1,
        "node b served it with v2"
    );
    other.shutdown().await;
}

// ---- market regulation in Rust and in JavaScript, swapped under load ----

/// A gateway with its admin listener whose market-regulation department has the limits a
/// JavaScript component needs (the Rust one serves well within them).
async fn market_regulation_env() -> Env {
    Env::start_with(Setup {
        admin: true,
        department_extra: vec![(
            "market-regulation",
            format!("[departments.market-regulation.limits]\n{MARKET_REGULATION_JS_LIMITS}"),
        )],
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn enterprise(env_url: &str, http: &reqwest::Client) -> u16 {
    http.post(format!(
        "{env_url}/api/v1/lookups/market-regulation.enterprise"
    ))
    .json(&json!({"credit_code": "91350100M000100Y43"}))
    .send()
    .await
    .map(|r| r.status().as_u16())
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_regulation_swaps_between_rust_and_javascript_under_load_failing_no_request() {
    let env = market_regulation_env().await;
    let admin = Admin::of(&env);
    let rust = digest(&component("market_regulation_adapter.wasm"));
    let js_bytes = component(MARKET_REGULATION_JS);
    let js = digest(&js_bytes);
    assert_eq!(admin.active("market-regulation").await, rust);
    let (status, pushed) = admin.push(js_bytes, "").await;
    assert_eq!(status, 201, "{pushed}");
    assert_eq!(pushed["version"]["department"], "market-regulation");
    assert_eq!(
        pushed["version"]["description"]["adapter_version"],
        "1.0.0-js"
    );

    let stop = Arc::new(tokio::sync::Notify::new());
    let served = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, http) = (env.gateway.url(), env.http.clone());
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.notified() => return,
                    status = enterprise(&url, &http) => {
                        if status == 200 { served.fetch_add(1, Ordering::SeqCst); }
                        else { failed.fetch_add(1, Ordering::SeqCst); }
                    }
                }
            }
        }));
    }
    // Each version serves some of the load before the next swap: five answers after a swap
    // are at least one the new version gave (four were in flight at most).
    let wait_for_traffic = || {
        let served = served.clone();
        async move {
            let from = served.load(Ordering::SeqCst);
            while served.load(Ordering::SeqCst) < from + 5 {
                tokio::task::yield_now().await;
            }
        }
    };
    let calls_of_active = |department: Value, digest: &str| {
        assert_eq!(department["active"]["digest"], digest, "{department}");
        department["active"]["calls"].as_u64().unwrap_or_default()
    };
    for round in 0..5 {
        let (status, body) = admin
            .post("market-regulation/activate", json!({"digest": js}))
            .await;
        assert_eq!(status, 200, "round {round}: {body}");
        wait_for_traffic().await;
        let department = admin.department("market-regulation").await;
        assert!(calls_of_active(department, &js) >= 1, "round {round}");
        let (status, body) = admin.post("market-regulation/rollback", json!({})).await;
        assert_eq!(status, 200, "round {round}: {body}");
        assert_eq!(body["route"]["active"], rust);
        wait_for_traffic().await;
        let department = admin.department("market-regulation").await;
        assert!(calls_of_active(department, &rust) >= 1, "round {round}");
    }
    stop.notify_waiters();
    for task in load {
        task.abort();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no request failed during 10 swaps between the languages"
    );
    assert!(served.load(Ordering::SeqCst) >= 50);
}

// ---- adapters by language: what admission, an instance and a call cost ----

/// One adapter's figures, in this build (debug unless run from a release test build).
struct Figures {
    file: &'static str,
    size: u64,
    admission: Duration,
    first_call: Duration,
    call_p50: Duration,
    call_mean: Duration,
    instance_memory: u64,
    smallest_memory_mib: Option<u32>,
}

/// Admit `file` as a push does (compile and describe, no compiled-code cache), then time
/// fresh instances answering `validate(matter, "{}")` (no department I/O: an instance and a
/// call), read what an instance starts with, and find the smallest `memory_mib` it serves in.
async fn figures(file: &'static str, department: &str, matter: &str, limits: Limits) -> Figures {
    use gateway_plugins::adapters::admission;
    use gateway_plugins::connection::Connection;
    use gateway_plugins::host::{Department, PluginEngine};
    let bytes = component(file);
    let engine = PluginEngine::new(64, None).unwrap();
    let started = Instant::now();
    let described = admission::describe(&engine, &bytes, limits).await.unwrap();
    let admission = started.elapsed();
    let bind = |limits: Limits| {
        let d = Department::new(
            department,
            Connection::unbound().unwrap(),
            Default::default(),
            &limits,
        );
        described.bind(Arc::new(d), limits)
    };
    let adapter = bind(limits);
    let started = Instant::now();
    let problems = adapter.validate(matter, "{}").await.unwrap();
    let first_call = started.elapsed();
    assert!(
        !problems.is_empty(),
        "{file}: an empty {matter} has problems"
    );
    let mut samples = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        adapter.validate(matter, "{}").await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    let call_mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let mut smallest_memory_mib = None;
    for mib in [2, 4, 8, 16, 24, 32, 48, 64, 96, 128] {
        let tight = Limits {
            memory_mib: mib,
            ..limits
        };
        if bind(tight).validate(matter, "{}").await.is_ok() {
            smallest_memory_mib = Some(mib);
            break;
        }
    }
    Figures {
        file,
        size: bytes.len() as u64,
        admission,
        first_call,
        call_p50: samples[samples.len() / 2],
        call_mean,
        instance_memory: adapter.instance_memory(),
        smallest_memory_mib,
    }
}

/// The Rust, Python and JavaScript adapters side by side, each within the limits its
/// department is given (the demo config's; the default for Rust). Prints the figures
/// (`-- --nocapture`) for BENCHMARKS.md, "Adapters by language".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_by_language_fit_the_limits_their_departments_are_given() {
    // The demo config's: 社保 (Python) 128 MiB and 2 s, the JavaScript market regulation the
    // default memory and CPU; both 16 instances.
    let python_limits = Limits {
        memory_mib: 128,
        cpu_ms: 2000,
        max_instances: 16,
        ..Limits::default()
    };
    let js_limits = Limits {
        max_instances: 16,
        ..Limits::default()
    };
    let all = [
        figures(
            "market_regulation_adapter.wasm",
            "market-regulation",
            "market-regulation.food-permit",
            Limits::default(),
        )
        .await,
        figures(
            "social_security_adapter.wasm",
            "social-security",
            "social-security.registration",
            python_limits,
        )
        .await,
        figures(
            MARKET_REGULATION_JS,
            "market-regulation",
            "market-regulation.food-permit",
            js_limits,
        )
        .await,
    ];
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!(
        "{:<34} {:>9} {:>12} {:>11} {:>10} {:>11} {:>14} {:>14}",
        "component",
        "size MiB",
        "admission s",
        "1st call ms",
        "p50 ms",
        "mean ms",
        "instance MiB",
        "fits in MiB"
    );
    for f in &all {
        println!(
            "{:<34} {:>9.2} {:>12.2} {:>11.1} {:>10.2} {:>11.2} {:>14.1} {:>14}",
            f.file,
            mib(f.size),
            f.admission.as_secs_f64(),
            f.first_call.as_secs_f64() * 1e3,
            f.call_p50.as_secs_f64() * 1e3,
            f.call_mean.as_secs_f64() * 1e3,
            mib(f.instance_memory),
            f.smallest_memory_mib.map_or("-".into(), |m| m.to_string()),
        );
    }
    for (f, limits) in all
        .iter()
        .zip([Limits::default(), python_limits, js_limits])
    {
        let fits = f.smallest_memory_mib.expect("serves within 128 MiB");
        assert!(fits <= limits.memory_mib, "{}: needs {fits} MiB", f.file);
        assert!(
            f.call_mean < Duration::from_millis(u64::from(limits.cpu_ms)),
            "{}: a call takes {:?}",
            f.file,
            f.call_mean
        );
    }
}
