//! Bad configs are refused at start-up with the file, the line and column, the key and the
//! reason (`file:line:column: key: reason`).
//!
//! Each `tests/ui/<case>.toml` has the exact error it must produce in `<case>.err` (paths shown
//! relative to `tests/ui`). Run with `BLESS=1` to write the `.err` files after a deliberate change.

use gateway_base::config::Config;
use std::path::Path;

#[test]
fn bad_configs_are_refused_with_file_key_and_reason() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut cases: Vec<_> = std::fs::read_dir(&ui)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "the ui cases are present");
    let mut mismatches = Vec::new();
    for case in &cases {
        let error = match Config::load(case) {
            Ok(_) => "accepted, but it should be refused".to_string(),
            Err(e) => format!("{e}\n").replace(&format!("{}/", ui.display()), ""),
        };
        let expected_path = case.with_extension("err");
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&expected_path, &error).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != error {
            mismatches.push(format!(
                "{}:\n  expected: {expected}  got:      {error}",
                case.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_demo_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let demo = root.join("config/gateway.toml");
    // The 社保 bureau's SM2 keys are written by the simulated bureau when the demo starts: made
    // here instead, and the demo's paths pointed at them.
    let keys = tempfile::tempdir().unwrap();
    let key = sm2::SecretKey::from_slice(&[7; 32]).unwrap();
    let mut text = std::fs::read_to_string(&demo).unwrap();
    for (name, pem) in {
        use sm2::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
        [
            (
                "social-security-gateway-key.pem",
                key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            ),
            (
                "social-security-department.pem",
                key.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
            ),
        ]
    } {
        let path = keys.path().join(name);
        std::fs::write(&path, pem).unwrap();
        text = text.replace(&format!("../var/demo-certs/{name}"), path.to_str().unwrap());
    }
    let config = Config::parse(&demo, &text).expect("config/gateway.toml is valid");
    // The four departments, 社保 (the Python adapter), the SMS provider (the notification
    // channel) and the national 好差评 system (where evaluations are reported).
    assert_eq!(config.departments.len(), 7);
    assert_eq!(
        config.evaluations.reporting.as_deref(),
        Some("national-evaluation")
    );
    assert_eq!(config.matters.len(), 7);
    assert_eq!(config.services.len(), 4);
}
