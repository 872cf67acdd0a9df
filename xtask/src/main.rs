//! Project entry points, so a fresh machine needs only the Rust toolchain:
//!
//! - `cargo xtask demo`: build the adapters and the gateway, start the simulated departments
//!   and the gateway with every adapter loaded, print where to send requests.
//! - `cargo xtask test`: build the adapters once, then run every test of the workspace.
//! - `cargo xtask adapters`: build the adapter components only.
//! - `cargo xtask bench`: run the benchmarks and print their figures (see BENCHMARKS.md).
//! - `cargo xtask lint`: rustfmt check and clippy with warnings denied.
//! - `cargo xtask schemathesis`: schemathesis against a demo gateway (part of `test` when
//!   `GATEWAY_TEST_SCHEMATHESIS=1`, as in CI).
//! - `cargo xtask new-adapter <department-id> [--name 中文名] [--out DIR] [--sdk PATH]`: a new
//!   adapter crate from the template `plugins/template` (see `docs/writing-an-adapter.md`).

use anyhow::{Context, bail};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The adapter crates built to components, with the department adapters first.
const ADAPTERS: &[&str] = &[
    "tax-adapter",
    "real-estate-adapter",
    "public-security-adapter",
    "market-regulation-adapter",
    "hostile-adapter",
    "hostile-next-adapter",
];

fn main() -> anyhow::Result<()> {
    // Where the user ran `cargo xtask`: `new-adapter` resolves its relative `--out` there.
    let invoked_from = std::env::current_dir()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    std::env::set_current_dir(&root)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(&root),
        Some("test") => test(&root, &args[1..]),
        Some("adapters") => build_adapters(),
        Some("bench") => bench(&root, &args[1..]),
        Some("lint") => lint(),
        Some("schemathesis") => schemathesis(&root),
        Some("new-adapter") => new_adapter(&root, &invoked_from, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo | test | adapters | bench | lint | schemathesis | new-adapter>"
            );
            std::process::exit(2);
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(mut command: Command) -> anyhow::Result<()> {
    eprintln!("$ {command:?}");
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

/// Add the component target if rustup manages this toolchain (it is a no-op when present).
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2") => Ok(()),
        Ok(_) => {
            let mut add = Command::new("rustup");
            add.args(["target", "add", "wasm32-wasip2"]);
            run(add)
        }
        Err(_) => {
            eprintln!("rustup not found: assuming the wasm32-wasip2 target is installed");
            Ok(())
        }
    }
}

fn build_adapters() -> anyhow::Result<()> {
    ensure_wasm_target()?;
    let mut build = cargo();
    build.args(["build", "--release", "--target", "wasm32-wasip2"]);
    for adapter in ADAPTERS {
        build.args(["-p", adapter]);
    }
    run(build)
}

fn adapters_dir(root: &Path) -> PathBuf {
    root.join("target/wasm32-wasip2/release")
}

fn test(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    build_adapters()?;
    // The crash tests run the gateway binary as a process of its own.
    let mut gateway = cargo();
    // The whole workspace, so features unify as in the test run and nothing is built twice.
    gateway.args(["build", "--workspace", "--bins"]);
    run(gateway)?;
    let with_fixtures = |command: &mut Command| {
        command
            .env("GATEWAY_ADAPTERS_DIR", adapters_dir(root))
            .env("GATEWAY_BINARY", root.join("target/debug/gateway"));
    };
    let mut test = cargo();
    test.args(["test", "--workspace"]).args(extra);
    with_fixtures(&mut test);
    run(test)?;
    // The same end-to-end suite again on PostgreSQL, when a server is named.
    if std::env::var("GATEWAY_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        let mut on_postgres = cargo();
        on_postgres
            .args(["test", "--workspace"])
            .args(extra)
            .env("GATEWAY_TEST_STORE", "postgres");
        with_fixtures(&mut on_postgres);
        run(on_postgres)?;
    } else {
        eprintln!("GATEWAY_TEST_POSTGRES_URL is not set: the PostgreSQL run is skipped");
    }
    if std::env::var("GATEWAY_TEST_SCHEMATHESIS").is_ok_and(|v| v == "1") {
        schemathesis(root)?;
    } else {
        eprintln!("GATEWAY_TEST_SCHEMATHESIS is not 1: the schemathesis run is skipped");
    }
    Ok(())
}

/// The schemathesis version the API document is checked with (pinned: its checks evolve).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Run schemathesis against a demo gateway (its own store under `target/schemathesis`): no
/// answer may be a 5xx, and every answer must match the OpenAPI document.
fn schemathesis(root: &Path) -> anyhow::Result<()> {
    let work = root.join("target/schemathesis");
    std::fs::create_dir_all(&work)?;
    let venv = work.join("venv");
    let st = venv.join("bin/st");
    if !st.exists() {
        let mut make = Command::new("python3");
        make.args(["-m", "venv"]).arg(&venv);
        run(make)?;
        let mut install = Command::new(venv.join("bin/pip"));
        install.args(["install", "--quiet", SCHEMATHESIS]);
        run(install)?;
    }
    // A fresh store each run, so earlier runs' cases do not change what this one sees.
    let _ = std::fs::remove_dir_all(work.join("var"));
    let bin = root.join("target/debug");
    let mut children = Children(Vec::new());
    let mut departments = Command::new(bin.join("departments"));
    departments.args(["--cert-dir", "var/demo-certs"]);
    children.0.push(
        departments
            .spawn()
            .context("starting the simulated departments")?,
    );
    for port in [18081, 18082, 18443, 18084] {
        wait_for_port(port, "a simulated department", &mut children)?;
    }
    // The SQLite path in the demo config is relative to the working directory.
    let mut gateway = Command::new(bin.join("gateway"));
    gateway
        .args(["serve", "--config"])
        .arg(root.join("config/gateway.toml"))
        .current_dir(&work)
        .env("RUST_LOG", "warn");
    children
        .0
        .push(gateway.spawn().context("starting the gateway")?);
    wait_for_port(8080, "gateway", &mut children)?;
    let mut check = Command::new(&st);
    // Schemathesis keeps a cache in its working directory: keep it under target/.
    check.current_dir(&work).args([
        "run",
        "http://127.0.0.1:8080/openapi.json",
        "--header",
        "X-Api-Key: demo-portal-key",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        "25",
        "--workers",
        "2",
        "--seed",
        "20261122",
        "--request-timeout",
        "30",
    ]);
    run(check)
}

fn lint() -> anyhow::Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)
}

fn bench(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    build_adapters()?;
    let mut bench = cargo();
    bench
        .args([
            "run",
            "--release",
            "-p",
            "integration-tests",
            "--bin",
            "bench",
            "--",
        ])
        .args(extra)
        .env("GATEWAY_ADAPTERS_DIR", adapters_dir(root));
    run(bench)?;
    // Case throughput and 企业开办 latency: on SQLite, then acceptance on PostgreSQL if named.
    let mut cases = cargo();
    cases
        .args([
            "run",
            "--release",
            "-p",
            "integration-tests",
            "--bin",
            "bench_cases",
        ])
        .env("GATEWAY_ADAPTERS_DIR", adapters_dir(root));
    run(cases)?;
    // Hot swaps under load.
    let mut swaps = cargo();
    swaps
        .args([
            "run",
            "--release",
            "-p",
            "integration-tests",
            "--bin",
            "bench_swaps",
        ])
        .env("GATEWAY_ADAPTERS_DIR", adapters_dir(root));
    run(swaps)?;
    if std::env::var("GATEWAY_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        let mut on_postgres = cargo();
        on_postgres
            .args([
                "run",
                "--release",
                "-p",
                "integration-tests",
                "--bin",
                "bench_cases",
                "--",
                "--cases",
                "0",
            ])
            .env("GATEWAY_ADAPTERS_DIR", adapters_dir(root))
            .env("GATEWAY_TEST_STORE", "postgres");
        run(on_postgres)?;
    }
    Ok(())
}

/// Child processes that are killed when the demo ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for_port(port: u16, what: &str, children: &mut Children) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        for child in &mut children.0 {
            if let Some(status) = child.try_wait()? {
                bail!("{what} exited before it was ready: {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not open port {port} within 60 s")
}

fn demo(root: &Path) -> anyhow::Result<()> {
    build_adapters()?;
    let mut build = cargo();
    build.args(["build", "-p", "gateway", "-p", "departments"]);
    run(build)?;
    std::fs::create_dir_all(root.join("var"))?;
    let bin = root.join("target/debug");
    let mut children = Children(Vec::new());
    let mut departments = Command::new(bin.join("departments"));
    departments.args(["--cert-dir", "var/demo-certs"]);
    children.0.push(
        departments
            .spawn()
            .context("starting the simulated departments")?,
    );
    for (port, name) in [
        (18081, "tax"),
        (18082, "real estate"),
        (18443, "public security"),
        (18084, "market regulation"),
    ] {
        wait_for_port(port, &format!("simulated {name} department"), &mut children)?;
    }
    let mut gateway = Command::new(bin.join("gateway"));
    gateway.args(["serve", "--config", "config/gateway.toml"]);
    children
        .0
        .push(gateway.spawn().context("starting the gateway")?);
    wait_for_port(8080, "gateway", &mut children)?;
    println!(
        r#"
The gateway is ready at http://127.0.0.1:8080 with four adapters loaded.
Portal calls carry the demo client's key; the admin API (127.0.0.1:8081) the demo operator's token.

  curl -s http://127.0.0.1:8080/api/v1/catalogue -H 'X-Api-Key: demo-portal-key'
  curl -s -X POST http://127.0.0.1:8080/api/v1/lookups/public-security.identity \
       -H 'X-Api-Key: demo-portal-key' -H 'content-type: application/json' \
       -H 'X-Lookup-Purpose: demo' -H 'X-Clerk-Id: window-1' \
       -d '{{"name":"张三","id_number":"11010519491231002X"}}'
  curl -s -X POST http://127.0.0.1:8080/api/v1/services/market-regulation.business-licence/applications \
       -H 'X-Api-Key: demo-portal-key' -H 'content-type: application/json' \
       -d '{{"enterprise_name":"福州演示餐饮有限公司","address":"福州市鼓楼区五四路2号","legal_representative":{{"name":"李四","id_number":"34052419800101001X"}},"registered_capital":100,"business_scope":"餐饮服务"}}'
  curl -s http://127.0.0.1:8080/api/v1/cases/<case_id> -H 'X-Api-Key: demo-portal-key'
  GATEWAY_ADMIN_TOKEN=demo-operator-token target/debug/gateway plugin list
  open http://127.0.0.1:8080/docs

Press Ctrl-C to stop.
"#
    );
    // The children run until one of them stops or the demo is interrupted (which ends us too).
    loop {
        for child in &mut children.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a demo process exited: {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

const NEW_ADAPTER_USAGE: &str =
    "usage: cargo xtask new-adapter <department-id> [--name 中文名] [--out DIR] [--sdk PATH]";

/// `new-adapter`: copy `plugins/template` to a crate of its own for a new department.
///
/// The template's department id `example` becomes the new id everywhere (crate name, type name,
/// matter and lookup codes, docs) and its name 示例部门 the `--name`. The copy is a workspace of
/// its own (an empty `[workspace]` table) depending on the sdk by absolute path, so it builds
/// wherever it is put; the workspace's `Cargo.lock` comes along so it resolves the versions the
/// sdk is tested with, offline.
fn new_adapter(root: &Path, invoked_from: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut id = None;
    let mut name = None;
    let mut out = None;
    let mut sdk = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .with_context(|| format!("{flag} needs a value\n{NEW_ADAPTER_USAGE}"))
        };
        match arg.as_str() {
            "--name" => name = Some(value("--name")?),
            "--out" => out = Some(invoked_from.join(value("--out")?)),
            "--sdk" => sdk = Some(invoked_from.join(value("--sdk")?)),
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{NEW_ADAPTER_USAGE}"),
            _ if id.is_some() => bail!("one department id only\n{NEW_ADAPTER_USAGE}"),
            _ => id = Some(arg.clone()),
        }
    }
    let id = id.context(NEW_ADAPTER_USAGE)?;
    let valid = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !valid {
        bail!(
            "department id {id:?}: lowercase ASCII letters and digits in words joined by `-`, starting with a letter (like `real-estate`)"
        );
    }
    let name = name.unwrap_or_else(|| id.clone());
    let out = out.unwrap_or_else(|| invoked_from.join(format!("{id}-adapter")));
    if out
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!("{} exists and is not empty", out.display());
    }
    let sdk = std::fs::canonicalize(sdk.unwrap_or_else(|| root.join("sdk")))
        .context("the sdk directory (--sdk)")?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!(
            "{} has no Cargo.toml: pass the sdk's directory with --sdk",
            sdk.display()
        );
    }

    let template = root.join("plugins/template");
    let snake = id.replace('-', "_");
    let camel: String = id
        .split('-')
        .map(|part| part[..1].to_ascii_uppercase() + &part[1..])
        .collect();
    // Longest token first: `example_adapter` is the crate's Rust name, `Example` its type.
    let rename = |text: &str| {
        text.replace("example_adapter", &format!("{snake}_adapter"))
            .replace("Example", &camel)
            .replace("example", &id)
            .replace("示例部门", &name)
    };
    for dir in ["src", "tests"] {
        for entry in std::fs::read_dir(template.join(dir))? {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let target = out.join(dir).join(path.file_name().context("file name")?);
            std::fs::create_dir_all(target.parent().context("parent")?)?;
            std::fs::write(&target, rename(&text))
                .with_context(|| format!("writing {}", target.display()))?;
        }
    }
    let toml_string = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let manifest = format!(
        r#"[package]
name = "{id}-adapter"
description = "Adapter for the department `{id}` ({name}) of the 一网通办 integration gateway."
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the wasm32-wasip2 component; rlib: the native unit and harness tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
gateway-sdk = {{ path = {sdk} }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

[dev-dependencies]
# tests/fuzz.rs: property tests of reading the department's answers, with the sdk's strategies
# (`sdk::testing::fuzz`, natively only: the component never links proptest).
gateway-sdk = {{ path = {sdk}, features = ["fuzz"] }}
proptest = {{ version = "1", default-features = false, features = ["std", "bit-set"] }}

[lints.rust]
unsafe_code = "forbid"

# A workspace of its own: it builds wherever it is put. To make it a member of the gateway's
# workspace instead, delete this table and list the crate in the workspace's `members`.
[workspace]

# As the gateway's workspace builds its adapters.
[profile.release]
codegen-units = 4
"#,
        sdk = toml_string(&sdk.to_string_lossy()),
    );
    std::fs::write(out.join("Cargo.toml"), manifest)?;
    std::fs::copy(root.join("Cargo.lock"), out.join("Cargo.lock"))?;
    println!(
        "adapter for department `{id}` ({name}) written to {dir}

  cd {dir}
  cargo test                                        # the harness tests
  cargo build --release --target wasm32-wasip2      # target/wasm32-wasip2/release/{snake}_adapter.wasm

Then: docs/writing-an-adapter.md (the protocol, the gateway config, loading it).",
        dir = out.display()
    );
    Ok(())
}
