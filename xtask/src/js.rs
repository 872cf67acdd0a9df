//! Adapters written in JavaScript: built into components with componentize-js, pinned with jco
//! in `xtask/js/package.json` and its lock, installed with `npm ci` into `target/js` (as
//! componentize-py is into `target/python`), so `cargo xtask adapters` needs only Node (20 or
//! later) and npm besides the Rust toolchain and Python.
//!
//! Each adapter is a folder with a module `app.js` whose exports answer the contract's, written
//! with the helper library `sdk-js` (imported by relative path: componentize-js follows relative
//! imports from the repository root, so nothing is bundled) against the root `wit/` version it
//! names. A component is built again only when a source (the adapter's folder, `sdk-js`, its
//! WIT, the tools' lock) is newer than it: CI builds once per run, and a build takes about 15 s.
//!
//! The components leave out the engine's `fetch` (WASI HTTP, which the gateway does not link:
//! an adapter reaches its department through `department-http` only); they keep stdio, clocks
//! and random, which the gateway links from WASI preview 2 as it does for Python's.

use crate::freshness::{SourceAdapter, modified, newest};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The JavaScript adapters built with the others.
pub const JS_ADAPTERS: &[SourceAdapter] = &[SourceAdapter {
    dir: "plugins/market-regulation-js",
    wit: "v0.3.0",
    component: "market_regulation_js_adapter.wasm",
}];

/// The helper library every JavaScript adapter builds with.
const SDK: &str = "sdk-js";
/// Where a new JavaScript adapter starts (its tests run with the others; it is not built).
const TEMPLATE: &str = "plugins/template-js";
/// The tools' manifest and lock, committed.
const TOOLS: &str = "xtask/js";

/// `target/js/node_modules`, installed with `npm ci` when the committed lock differs from the
/// one installed last.
pub fn tools(root: &Path) -> anyhow::Result<PathBuf> {
    let work = root.join("target/js");
    std::fs::create_dir_all(&work)?;
    let lock = std::fs::read(root.join(TOOLS).join("package-lock.json"))
        .context("xtask/js/package-lock.json")?;
    let installed = work.join("package-lock.json");
    let modules = work.join("node_modules");
    if std::fs::read(&installed).ok().as_deref() == Some(&lock[..]) && modules.exists() {
        return Ok(modules);
    }
    std::fs::copy(
        root.join(TOOLS).join("package.json"),
        work.join("package.json"),
    )?;
    std::fs::write(&installed, &lock)?;
    let mut install = Command::new("npm");
    install
        .current_dir(&work)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    crate::run(install).context("npm ci (JavaScript adapters need Node 20 or later and npm)")?;
    Ok(modules)
}

/// Build every JavaScript adapter whose sources changed into `out`.
pub fn build(root: &Path, out: &Path) -> anyhow::Result<()> {
    let modules = tools(root)?;
    let cli = modules.join("@bytecodealliance/componentize-js/src/cli.js");
    std::fs::create_dir_all(out)?;
    for adapter in JS_ADAPTERS {
        let wit = Path::new("wit").join(adapter.wit);
        let component = out.join(adapter.component);
        let sources = newest(&root.join(adapter.dir))?
            .max(newest(&root.join(SDK))?)
            .max(newest(&root.join(&wit))?)
            .max(modified(&root.join("target/js/package-lock.json")));
        if sources <= modified(&component) {
            eprintln!("{} is up to date", adapter.component);
            continue;
        }
        // Paths relative to the root, run from it: componentize-js maps the working directory
        // into the engine as its file system while it snapshots, so `../../sdk-js` resolves.
        let mut componentize = Command::new("node");
        componentize
            .current_dir(root)
            .arg(&cli)
            .arg(Path::new(adapter.dir).join("app.js"))
            .arg("--wit")
            .arg(&wit)
            .args(["--world-name", "adapter"])
            .args(["--disable", "http", "fetch-event"])
            .arg("--out")
            .arg(&component);
        crate::run(componentize)?;
    }
    Ok(())
}

/// The JavaScript unit tests: the helper library's and each adapter's (natively under
/// `node --test`, the harness standing in for the host); then each adapter's tests again against
/// its built component, when it is built (`cargo xtask test` builds it first), transpiled by jco
/// into a module whose imports are the same fakes (`sdk-js/testing/component.js`).
pub fn unit_tests(root: &Path) -> anyhow::Result<()> {
    let dirs = [format!("{SDK}/tests"), format!("{TEMPLATE}/tests")]
        .into_iter()
        .chain(JS_ADAPTERS.iter().map(|a| format!("{}/tests", a.dir)));
    let mut test = node_test(root);
    test.args(dirs);
    crate::run(test)?;
    let components = root.join("target/wasm32-wasip2/release");
    for adapter in JS_ADAPTERS {
        let component = components.join(adapter.component);
        if !component.exists() {
            eprintln!(
                "{} is not built: its tests ran against the source only",
                adapter.component
            );
            continue;
        }
        let module = transpiled(root, &component)?;
        let mut test = node_test(root);
        test.env("GOV_ADAPTER_COMPONENT", &module)
            .arg(format!("{}/tests", adapter.dir));
        crate::run(test)?;
    }
    Ok(())
}

/// `node --test` from the root with the harness's loader hook.
fn node_test(root: &Path) -> Command {
    let mut test = Command::new("node");
    test.current_dir(root)
        .args(["--import", "./sdk-js/testing/register.js", "--test"]);
    test
}

/// A component transpiled by jco into `target/js/transpiled/<stem>/<stem>.js`, its contract
/// imports mapped to the harness's fakes (again only when the component is newer).
fn transpiled(root: &Path, component: &Path) -> anyhow::Result<PathBuf> {
    let stem = component
        .file_stem()
        .and_then(|s| s.to_str())
        .context("a component's file name")?;
    let out = root.join("target/js/transpiled").join(stem);
    let module = out.join(format!("{stem}.js"));
    if modified(&module) > modified(component) {
        return Ok(module);
    }
    let _ = std::fs::remove_dir_all(&out);
    // Relative to the transpiled module: target/js/transpiled/<stem>/ → sdk-js/testing/imports.
    let fakes = "../../../../sdk-js/testing/imports/*.js";
    let mut transpile = Command::new("node");
    transpile
        .current_dir(root)
        .arg(root.join("target/js/node_modules/@bytecodealliance/jco/dist/jco.js"))
        .arg("transpile")
        .arg(component)
        .arg("--out-dir")
        .arg(&out)
        .args(["--map", &format!("gov:adapter/*={fakes}"), "--quiet"]);
    crate::run(transpile)?;
    Ok(module)
}
