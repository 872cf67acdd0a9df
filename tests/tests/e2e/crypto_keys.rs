//! Keys the adapter never holds (contract 0.3 `crypto`), through the real gateway and the
//! hostile test adapter: whatever it calls, no answer, log line or audit record carries a key's
//! bytes in any form (the PEM, its lines, the raw bytes as hex or base64), and a key rotated by
//! a config reload is the one the next call uses.
//!
//! Keys are made at test time and written beside the config.

use crate::hostile;

use base64::Engine as _;
use hostile::hostile_env_with;
use integration_tests::{GatewayProcess, Setup};
use serde_json::{Value, json};
use sm2::pkcs8::{EncodePrivateKey as _, LineEnding};
use std::path::Path;

const MESSAGE: &str = "单位参保登记 0001";

/// The forms a key's bytes could take in a text.
fn forms(bytes: &[u8]) -> Vec<String> {
    vec![
        hex::encode(bytes),
        hex::encode_upper(bytes),
        base64::engine::general_purpose::STANDARD.encode(bytes),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ]
}

struct Keys {
    /// Every text that would give a key away.
    leaks: Vec<String>,
    /// `keys = {...}` for the hostile department's table.
    toml: String,
    sm2_pem_path: String,
}

/// An SM2 private key (PEM), an HMAC secret and an SM4 key, written into `dir`.
fn write_keys(dir: &Path, hmac_secret: &str) -> Keys {
    let mut scalar = [0u8; 32];
    getrandom_fill(&mut scalar);
    let sm2 = sm2::SecretKey::from_slice(&scalar).expect("a valid scalar");
    let pem = sm2.to_pkcs8_pem(LineEnding::LF).unwrap();
    let sm2_path = dir.join("gateway-sm2.pem");
    std::fs::write(&sm2_path, pem.as_bytes()).unwrap();
    let der = sm2.to_pkcs8_der().unwrap();
    std::fs::write(dir.join("app-secret.txt"), format!("{hmac_secret}\n")).unwrap();
    let sm4 = [
        0x5au8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xf1,
    ];
    std::fs::write(dir.join("sm4.hex"), hex::encode(sm4)).unwrap();
    let mut leaks = vec![pem.trim().to_string(), hmac_secret.to_string()];
    leaks.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_string),
    );
    leaks.extend(forms(&scalar));
    leaks.extend(forms(der.as_bytes()));
    leaks.extend(forms(hmac_secret.as_bytes()));
    leaks.extend(forms(&sm4));
    let toml = format!(
        "keys = {{ gateway-sm2 = {{ kind = \"sm2-private\", value = \"file:{}\" }}, \
         app-secret = {{ kind = \"hmac\", value = \"file:{}\" }}, \
         sm4 = {{ kind = \"sm4\", value = \"file:{}\" }} }}",
        sm2_path.display(),
        dir.join("app-secret.txt").display(),
        dir.join("sm4.hex").display(),
    );
    Keys {
        leaks,
        toml,
        sm2_pem_path: sm2_path.display().to_string(),
    }
}

fn getrandom_fill(bytes: &mut [u8]) {
    // The scalar only needs to differ between runs; a UUID's randomness is the OS's.
    for chunk in bytes.chunks_mut(16) {
        let id = uuid::Uuid::new_v4();
        chunk.copy_from_slice(&id.as_bytes()[..chunk.len()]);
    }
}

fn assert_no_leak(what: &str, text: &str, leaks: &[String]) {
    for leak in leaks {
        assert!(
            !text.contains(leak.as_str()),
            "{what} holds a key form {leak:?}: {text}"
        );
    }
}

fn pry(key: &str, path: &str) -> Value {
    json!({"key": key, "path": path, "message": MESSAGE})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_gives_an_adapter_a_keys_bytes_nor_puts_them_in_an_answer_or_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), "hostile-app-secret-0001");
    let (env, _department) = hostile_env_with(Setup {
        department_extra: vec![("hostile", keys.toml.clone())],
        admin: true,
        ..Setup::default()
    })
    .await;
    let mut answers = Vec::new();
    for key in ["gateway-sm2", "app-secret", "sm4", "no-such-key"] {
        let (status, body) = env
            .post(
                "/api/v1/lookups/hostile.keys",
                &pry(key, &keys.sm2_pem_path),
            )
            .await;
        assert_eq!(status, 200, "{key}: {body}");
        assert_no_leak(
            &format!("the answer for {key}"),
            &body.to_string(),
            &keys.leaks,
        );
        answers.push((key, body["result"].clone()));
    }
    let answer = |key: &str| answers.iter().find(|(k, _)| *k == key).unwrap().1.clone();
    // What each key can do, it did; everything else was refused by kind, and the key's file
    // was not reachable through department-http.
    let sm2 = answer("gateway-sm2");
    assert!(sm2["sign_sm2"]["ok"].is_string(), "{sm2}");
    assert!(
        sm2["sign_ed25519"]["error"]
            .as_str()
            .unwrap()
            .contains("UnknownKey"),
        "{sm2}"
    );
    assert!(
        sm2["hmac_sha256"]["error"]
            .as_str()
            .unwrap()
            .contains("UnknownKey"),
        "{sm2}"
    );
    assert!(
        sm2["sm4_encrypt"]["error"]
            .as_str()
            .unwrap()
            .contains("UnknownKey"),
        "{sm2}"
    );
    assert_eq!(sm2["config"], json!([null, null, null, null]), "{sm2}");
    for attempt in sm2["http"].as_array().unwrap() {
        assert_eq!(attempt["outcome"], "forbidden", "{attempt}");
    }
    let mac = answer("app-secret");
    assert_eq!(
        mac["mac_hex"],
        json!(sdk::sign::hmac_sha256_hex(
            b"hostile-app-secret-0001",
            MESSAGE.as_bytes()
        )),
        "{mac}"
    );
    assert!(
        mac["sign_sm2"]["error"]
            .as_str()
            .unwrap()
            .contains("UnknownKey"),
        "{mac}"
    );
    let sm4 = answer("sm4");
    assert!(sm4["sm4_encrypt"]["ok"].is_string(), "{sm4}");
    assert!(
        sm4["sm4_bad_iv"]["error"]
            .as_str()
            .unwrap()
            .contains("Invalid"),
        "{sm4}"
    );
    assert!(
        answer("no-such-key")["sign_sm2"]["error"]
            .as_str()
            .unwrap()
            .contains("UnknownKey")
    );
    // The department exchanges the adapter tried are audited; no record carries a key.
    let audit = env.admin_get("/admin/v1/audit?department=hostile").await;
    assert_no_leak("the audit log", &audit.to_string(), &keys.leaks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_log_carries_no_key_whatever_the_adapter_logs() {
    let dir = tempfile::tempdir().unwrap();
    let departments = integration_tests::departments_in(dir.path()).await;
    let keys = write_keys(dir.path(), "hostile-app-secret-0002");
    let store = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let setup = Setup {
        hostile: Some("http://127.0.0.1:9".into()),
        department_extra: vec![("hostile", keys.toml.clone())],
        ..Setup::default()
    };
    let config = integration_tests::write_config(dir.path(), &departments, &setup, &store).unwrap();
    let gateway = GatewayProcess::spawn_with_env(&config, &[("RUST_LOG", "debug")])
        .await
        .unwrap();
    let http = integration_tests::client();
    for key in ["gateway-sm2", "app-secret", "sm4"] {
        let answer = http
            .post(format!("{}/api/v1/lookups/hostile.keys", gateway.url))
            .json(&pry(key, &keys.sm2_pem_path))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert_no_leak("an answer", &text, &keys.leaks);
        // The adapter's own log line of everything it got arrives.
        gateway
            .wait_for_line(std::time::Duration::from_secs(10), |l| {
                l.contains(&format!("what the host gave for key {key}"))
            })
            .await;
    }
    let output = gateway.output.clone();
    gateway.terminate().await;
    let lines = output.lock().unwrap().clone();
    assert!(lines.len() > 3, "{lines:#?}");
    for line in &lines {
        assert_no_leak("a log line", line, &keys.leaks);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_by_reload_is_the_one_the_next_call_uses() {
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), "first-secret");
    let (env, _department) = hostile_env_with(Setup {
        department_extra: vec![("hostile", keys.toml.clone())],
        admin: true,
        ..Setup::default()
    })
    .await;
    let mac = |env: &integration_tests::Env| {
        let env_http = env.http.clone();
        let url = format!("{}/api/v1/lookups/hostile.keys", env.gateway.url());
        async move {
            let body: Value = env_http
                .post(url)
                .json(&pry("app-secret", ""))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["result"]["mac_hex"].clone()
        }
    };
    let expected = |secret: &str| {
        json!(sdk::sign::hmac_sha256_hex(
            secret.as_bytes(),
            MESSAGE.as_bytes()
        ))
    };
    assert_eq!(mac(&env).await, expected("first-secret"));
    // The operator rotates the secret in its file and reloads.
    std::fs::write(dir.path().join("app-secret.txt"), "second-secret\n").unwrap();
    let answer = integration_tests::admin_client()
        .post(format!("{}/admin/v1/config/reload", env.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    assert_eq!(mac(&env).await, expected("second-secret"));
    // A key file that no longer parses refuses the reload, naming the key; the running key
    // stays.
    std::fs::write(dir.path().join("sm4.hex"), "not hex").unwrap();
    let answer = integration_tests::admin_client()
        .post(format!("{}/admin/v1/config/reload", env.admin_url()))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    assert_ne!(status, 200, "{text}");
    assert!(text.contains("departments.hostile.keys.sm4"), "{text}");
    assert_eq!(mac(&env).await, expected("second-secret"));
}
