//! Project entry points, so a fresh machine needs only the Rust toolchain:
//!
//! - `cargo xtask demo`: build the adapters and the gateway, start the simulated departments
//!   and the gateway with every adapter loaded, print where to send requests.
//! - `cargo xtask test`: build the adapters once, then run every test of the workspace.
//! - `cargo xtask adapters`: build the adapter components only.
//! - `cargo xtask bench`: run the benchmarks and print their figures (see BENCHMARKS.md).
//! - `cargo xtask lint`: rustfmt check and clippy with warnings denied.

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
];

fn main() -> anyhow::Result<()> {
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
        _ => {
            eprintln!("usage: cargo xtask <demo | test | adapters | bench | lint>");
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
    Ok(())
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

  curl -s http://127.0.0.1:8080/api/v1/catalogue
  curl -s -X POST http://127.0.0.1:8080/api/v1/lookups/public-security.identity \
       -H 'content-type: application/json' -d '{{"name":"张三","id_number":"11010519491231002X"}}'
  curl -s -X POST http://127.0.0.1:8080/api/v1/services/market-regulation.business-licence/applications \
       -H 'content-type: application/json' \
       -d '{{"enterprise_name":"福州演示餐饮有限公司","address":"福州市鼓楼区五四路2号","legal_representative":{{"name":"李四","id_number":"34052419800101001X"}},"registered_capital":100,"business_scope":"餐饮服务"}}'
  curl -s http://127.0.0.1:8080/api/v1/cases/<case_id>

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
