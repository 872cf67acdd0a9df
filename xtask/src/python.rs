//! Adapters written in Python: built into components with componentize-py, pinned, installed
//! from PyPI into a venv under `target/python` (as schemathesis is under `target/schemathesis`),
//! so `cargo xtask adapters` needs only `python3` with `venv` and `pip` besides the Rust
//! toolchain.
//!
//! Each adapter is a folder with a module `app` whose class `WitWorld` answers the contract's
//! exports, built with the helper library `sdk-python` against the root `wit/` version it names.
//! A component is built again only when a source (the adapter's folder, `sdk-python`, its WIT)
//! is newer than it. The bindings are also written out as Python under
//! `target/python/bindings/<version>`, for the adapters' native unit tests (the harness in
//! `gov_adapter.testing` stands in for the host).

use crate::freshness::{SourceAdapter, modified, newest};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// componentize-py, pinned: the CPython it bundles and the bindings it generates change between
/// releases, and a component's size and start-up with them (BENCHMARKS.md).
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The Python adapters built with the others.
pub const PYTHON_ADAPTERS: &[SourceAdapter] = &[SourceAdapter {
    dir: "plugins/social-security",
    wit: "v0.3.0",
    component: "social_security_adapter.wasm",
}];

/// The helper library every Python adapter builds with.
const SDK: &str = "sdk-python";
/// Where a new Python adapter starts (its tests run with the others; it is not built).
const TEMPLATE: &str = "plugins/template-python";

/// The venv's `componentize-py`, installed when the pin differs from the one installed last.
pub fn componentize_py(root: &Path) -> anyhow::Result<PathBuf> {
    let work = root.join("target/python");
    std::fs::create_dir_all(&work)?;
    let venv = work.join("venv");
    let tool = venv.join("bin/componentize-py");
    let installed = work.join("installed.txt");
    if std::fs::read_to_string(&installed).ok().as_deref() == Some(COMPONENTIZE_PY) && tool.exists()
    {
        return Ok(tool);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let mut make = Command::new("python3");
    make.args(["-m", "venv"]).arg(&venv);
    crate::run(make).context("python3 -m venv (Python adapters need python3 with venv and pip)")?;
    let mut install = Command::new(venv.join("bin/pip"));
    install.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        COMPONENTIZE_PY,
    ]);
    crate::run(install)?;
    std::fs::write(&installed, COMPONENTIZE_PY)?;
    Ok(tool)
}

/// Build every Python adapter whose sources changed into `out`, and write the bindings.
pub fn build(root: &Path, out: &Path) -> anyhow::Result<()> {
    let tool = componentize_py(root)?;
    std::fs::create_dir_all(out)?;
    for adapter in PYTHON_ADAPTERS {
        let wit = root.join("wit").join(adapter.wit);
        let bindings = root.join("target/python/bindings").join(adapter.wit);
        if newest(&wit)? > modified(&bindings) {
            let _ = std::fs::remove_dir_all(&bindings);
            let mut generate = Command::new(&tool);
            generate
                .arg("-d")
                .arg(&wit)
                .args(["-w", "adapter", "bindings"])
                .arg(&bindings);
            crate::run(generate)?;
        }
        let component = out.join(adapter.component);
        let sources = newest(&root.join(adapter.dir))?
            .max(newest(&root.join(SDK))?)
            .max(newest(&wit)?)
            .max(modified(&root.join("target/python/installed.txt")));
        if sources <= modified(&component) {
            eprintln!("{} is up to date", adapter.component);
            continue;
        }
        let mut componentize = Command::new(&tool);
        componentize
            .arg("-d")
            .arg(&wit)
            .args(["-w", "adapter", "componentize", "-p"])
            .arg(root.join(adapter.dir))
            .arg("-p")
            .arg(root.join(SDK))
            .args(["app", "-o"])
            .arg(&component);
        crate::run(componentize)?;
    }
    Ok(())
}

/// The Python unit tests: the helper library's and each adapter's (natively, with the
/// harness), after [`build`] wrote the bindings.
pub fn unit_tests(root: &Path) -> anyhow::Result<()> {
    let dirs = [format!("{SDK}/tests"), format!("{TEMPLATE}/tests")]
        .into_iter()
        .chain(PYTHON_ADAPTERS.iter().map(|a| format!("{}/tests", a.dir)));
    for dir in dirs {
        let mut test = Command::new("python3");
        test.current_dir(root)
            .args(["-m", "unittest", "discover", "-s", &dir]);
        crate::run(test)?;
    }
    Ok(())
}
