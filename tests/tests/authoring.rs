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
