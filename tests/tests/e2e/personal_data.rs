//! Personal data: application payloads sealed at rest (and keys that rotate), and names,
//! identity numbers and phone numbers masked in logs, spans and error messages.

use integration_tests::{Env, GatewayProcess, Setup};
use serde_json::{Value, json};
use sqlx::Row;
use std::path::Path;
use std::time::Duration;

const ID_NUMBER: &str = "11010519491231002X";
const CREDIT_CODE: &str = "91350100M000100Y43";
const NAME: &str = "欧阳娜娜";
const PHONE: &str = "13912345678";

fn seal_form() -> Value {
    json!({
        "credit_code": CREDIT_CODE,
        "enterprise_name": "福州加密测试有限公司",
        "legal_representative": {"name": NAME, "id_number": ID_NUMBER},
        "seal_types": ["公章"]
    })
}

/// `[store.encryption]` with these keys (id, algorithm, key file), sealing with `current`.
fn encryption(current: &str, keys: &[(&str, &str, &Path)]) -> String {
    let mut text = format!("\n[store.encryption]\ncurrent = \"{current}\"\n");
    for (id, algorithm, file) in keys {
        text.push_str(&format!(
            "[[store.encryption.keys]]\nid = \"{id}\"\nalgorithm = \"{algorithm}\"\nkey_file = \"{}\"\n",
            file.display()
        ));
    }
    text
}

fn write_key(dir: &Path, name: &str, bytes: usize) -> std::path::PathBuf {
    use base64::Engine;
    let key: Vec<u8> = (0..bytes)
        .map(|i| (i as u8).wrapping_mul(37) ^ 0x5a)
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(key)).unwrap();
    path
}

/// The stored columns of a case, as the database holds them.
async fn stored(env: &Env, case_id: &str) -> (String, String, String, String) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&env.store_url).await.unwrap();
    let case = sqlx::query("SELECT form, lookups FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let step = sqlx::query("SELECT input, input_codes FROM steps WHERE case_id = $1")
        .bind(case_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    (
        case.get("form"),
        case.get("lookups"),
        step.get("input"),
        step.get("input_codes"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_payloads_are_sealed_and_old_keys_still_open_after_rotation() {
    let keys = tempfile::tempdir().unwrap();
    let k1 = write_key(keys.path(), "k1.key", 16);
    let k2 = write_key(keys.path(), "k2.key", 32);
    let mut env = Env::start_with(Setup {
        config_extra: encryption("k1", &[("k1", "sm4-gcm", &k1)]),
        ..Setup::default()
    })
    .await
    .unwrap();
    let first = env.apply("public-security.seal-filing", &seal_form()).await;
    let case = env
        .wait_for_case(&first, Duration::from_secs(20), |v| {
            v["status"] == "completed"
        })
        .await;
    assert_eq!(
        case["status"], "completed",
        "the sealed input reached the department whole"
    );

    let (form, lookups, input, codes) = stored(&env, &first).await;
    for (column, value) in [("form", &form), ("lookups", &lookups), ("input", &input)] {
        assert!(
            value.starts_with("enc1:k1:"),
            "{column} is not sealed: {value}"
        );
        for secret in [NAME, ID_NUMBER, "福州加密测试有限公司"] {
            assert!(!value.contains(secret), "{column} shows {secret}");
        }
    }
    // The 企业码 view still finds the case by the credit code its sealed input names.
    assert_eq!(codes, format!("\"{CREDIT_CODE}\""));
    let (status, view) = env
        .get(&format!("/api/v1/subjects/enterprises/{CREDIT_CODE}"))
        .await;
    assert_eq!(status, 200, "{view}");
    assert!(
        view["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["case_id"] == first.as_str()),
        "{view:#}"
    );

    // Rotate: new values are sealed with k2 (AES-256-GCM), k1 stays configured for reading.
    let config = env.dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let rotated = text.replace(
        &encryption("k1", &[("k1", "sm4-gcm", &k1)]),
        &encryption("k2", &[("k1", "sm4-gcm", &k1), ("k2", "aes-256-gcm", &k2)]),
    );
    assert_ne!(rotated, text);
    std::fs::write(&config, &rotated).unwrap();
    env.restart().await.unwrap();
    let second = env.apply("public-security.seal-filing", &seal_form()).await;
    let case = env
        .wait_for_case(&second, Duration::from_secs(20), |v| {
            v["status"] == "completed"
        })
        .await;
    assert_eq!(case["status"], "completed");
    assert!(stored(&env, &second).await.0.starts_with("enc1:k2:"));
    let (status, old) = env.get(&format!("/api/v1/cases/{first}")).await;
    assert_eq!(status, 200, "a case sealed with the older key reads: {old}");
    assert_eq!(old["status"], "completed");

    // Without k1, its cases do not read as empty: they fail, loudly.
    std::fs::write(
        &config,
        text.replace(
            &encryption("k1", &[("k1", "sm4-gcm", &k1)]),
            &encryption("k2", &[("k2", "aes-256-gcm", &k2)]),
        ),
    )
    .unwrap();
    env.restart().await.unwrap();
    let (status, _) = env.get(&format!("/api/v1/cases/{first}")).await;
    assert_eq!(status, 500);
    let (status, _) = env.get(&format!("/api/v1/cases/{second}")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_the_wrong_length_is_refused_with_its_key() {
    let keys = tempfile::tempdir().unwrap();
    let short = write_key(keys.path(), "short.key", 16);
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let setup = Setup {
        config_extra: encryption("k", &[("k", "aes-256-gcm", &short)]),
        ..Setup::default()
    };
    let path = integration_tests::write_config(dir.path(), &departments, &setup, "sqlite::memory:")
        .unwrap();
    let e = gateway_base::config::Config::load(&path).unwrap_err();
    assert_eq!(e.key, "store.encryption.keys[0].key_file");
    assert!(e.reason.contains("32-byte"), "{}", e.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_identity_and_phone_numbers_are_masked_in_logs_spans_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let store = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let setup = Setup {
        hostile: Some("http://127.0.0.1:9".into()),
        ..Setup::default()
    };
    let config = integration_tests::write_config(dir.path(), &departments, &setup, &store).unwrap();
    let gateway = GatewayProcess::spawn_with_env(
        &config,
        &[
            ("GATEWAY_LOG_FORMAT", "json"),
            (
                "RUST_LOG",
                "debug,hyper=info,h2=info,sqlx=info,wasmtime=info,cranelift=info",
            ),
        ],
    )
    .await
    .unwrap();
    let http = integration_tests::client();
    let person = json!({"name": NAME, "id_number": ID_NUMBER, "phone": PHONE});
    let lookup = |name: &str, body: Value| {
        http.post(format!("{}/api/v1/lookups/{name}", gateway.url))
            .json(&body)
            .send()
    };

    // A department error text that repeats the applicant: passed on masked, logged masked.
    let answer = lookup("hostile.echo-error", person.clone()).await.unwrap();
    assert_eq!(answer.status(), 502);
    let protocol = answer.text().await.unwrap();
    // As a field problem.
    let mut invalid = person.clone();
    invalid["invalid"] = json!(true);
    let answer = lookup("hostile.echo-error", invalid).await.unwrap();
    assert_eq!(answer.status(), 422);
    let field = answer.text().await.unwrap();
    for answer in [&protocol, &field] {
        for secret in [NAME, ID_NUMBER, PHONE] {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
        for masked in ["欧***", "1101**********002X", "139****5678"] {
            assert!(answer.contains(masked), "{masked} not in {answer}");
        }
    }
    // The ordinary paths: a lookup, a pre-review with problems, an application.
    let answer = lookup(
        "public-security.identity",
        json!({"name": NAME, "id_number": ID_NUMBER}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    let mut form = seal_form();
    form["credit_code"] = json!("91350100M000100Y44"); // a wrong check character
    let answer = http
        .post(format!(
            "{}/api/v1/services/public-security.seal-filing/pre-review",
            gateway.url
        ))
        .json(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let review = answer.text().await.unwrap();
    assert!(
        !review.contains(NAME) && !review.contains(ID_NUMBER),
        "{review}"
    );

    let output = gateway.output.clone();
    gateway.terminate().await;
    let lines = output.lock().unwrap().clone();
    let mut masked_name_lines = 0;
    for line in &lines {
        for secret in [NAME, ID_NUMBER, PHONE] {
            assert!(!line.contains(secret), "{secret} in the log: {line}");
        }
        if line.contains("欧***") {
            masked_name_lines += 1;
            let entry: Value = serde_json::from_str(line).unwrap();
            // Logged inside the request's span, which carries its trace id.
            assert!(entry["span"]["trace_id"].is_string(), "{line}");
        }
    }
    assert!(
        masked_name_lines > 0,
        "the department's error text was logged (masked): {lines:#?}"
    );
}
