//! Project entry points, so a fresh machine needs only the Rust toolchain:
//!
//! - `cargo xtask demo`: build the adapters and the gateway, start the simulated departments
//!   and the gateway with every adapter loaded, print where to send requests.
//! - `cargo xtask test`: build the adapters once, then run every test of the workspace.
//! - `cargo xtask adapters`: build the adapter components only: the Rust ones, and the Python
//!   ones with a pinned componentize-py (`python.rs`; needs `python3` with `venv` and `pip`),
//!   the JavaScript ones with a pinned componentize-js (`js.rs`; needs Node 20 or later and npm).
//! - `cargo xtask python-tests`: the Python helper library's and adapters' unit tests (native,
//!   scripted department exchanges), part of `test`.
//! - `cargo xtask js-tests`: the same for JavaScript (`node --test`), part of `test`.
//! - `cargo xtask bench [--pgo]`: run the benchmarks and print their figures (see
//!   BENCHMARKS.md); with `--pgo`, of the profile-guided build.
//! - `cargo xtask pgo`: release binaries optimised with a profile of the gateway's own load
//!   (`pgo.rs`), in `target/<host>/release/`.
//! - `cargo xtask lint`: rustfmt check and clippy with warnings denied.
//! - `cargo xtask schemathesis`: schemathesis against a gateway configured as the demo, on ports
//!   of its own (part of `test` when `GATEWAY_TEST_SCHEMATHESIS=1`, as in CI).
//! - `cargo xtask clients`: generate the portal API's Python and TypeScript clients from a
//!   running gateway's document with pinned generators (`tests/clients/`), type-check with
//!   `tsc`, run a portal script in each language end to end (part of `test` when
//!   `GATEWAY_TEST_CLIENTS=1`, as in CI).
//! - `cargo xtask new-adapter <department-id> [--name 中文名] [--out DIR] [--sdk PATH]`: a new
//!   adapter crate from the template `plugins/template` (see `docs/writing-an-adapter.md`).

use anyhow::{Context, bail};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod freshness;
mod js;
mod pgo;
mod python;

/// The adapter crates built to components, with the department adapters first.
const ADAPTERS: &[&str] = &[
    "tax-adapter",
    "real-estate-adapter",
    "public-security-adapter",
    "market-regulation-adapter",
    "sms-adapter",
    "national-evaluation-adapter",
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
        Some("python-tests") => {
            build_adapters()?;
            python::unit_tests(&root)
        }
        Some("js-tests") => js::unit_tests(&root),
        Some("bench") => bench(&root, &args[1..]),
        Some("lint") => lint(),
        Some("pgo") => {
            build_adapters()?;
            pgo::build(&root).map(drop)
        }
        Some("schemathesis") => {
            build_adapters()?;
            build_binaries()?;
            schemathesis(&root)
        }
        Some("clients") => {
            build_adapters()?;
            build_binaries()?;
            clients(&root)
        }
        Some("new-adapter") => new_adapter(&root, &invoked_from, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo | test | adapters | python-tests | js-tests | bench [--pgo] | pgo | lint | schemathesis | clients | new-adapter>"
            );
            std::process::exit(2);
        }
    }
}

fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    without_cargo_run_env(&mut cargo);
    cargo
}

/// Remove what `cargo run` (the `xtask` alias) hands this process about the xtask package.
///
/// Some build scripts (ring's) fingerprint `CARGO_MANIFEST_DIR` and `CARGO_PKG_*` as cargo sees
/// them, so a build started with xtask's values would rebuild ring and all that depends on it
/// after any build from a shell, and the shell's build would rebuild them again. Without them, a
/// build from here is the build a shell runs.
fn without_cargo_run_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && (name.starts_with("CARGO_PKG_")
                || matches!(
                    name,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_MANIFEST_LINKS"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_RUSTC_CURRENT_DIR"
                ))
        {
            command.env_remove(name);
        }
    }
}

fn run(mut command: Command) -> anyhow::Result<()> {
    eprintln!("$ {}", shown(&command));
    let status = command
        .status()
        .with_context(|| format!("running {}", shown(&command)))?;
    if !status.success() {
        bail!("{} failed: {status}", shown(&command));
    }
    Ok(())
}

/// A command as a shell would run it: the variables it sets, the program, the arguments (the
/// variables it removes, the `cargo run` ones, would only be noise).
fn shown(command: &Command) -> String {
    let mut shown = String::new();
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            shown += &format!("{}={value:?} ", name.to_string_lossy());
        }
    }
    shown += &format!("{:?}", command.get_program());
    for arg in command.get_args() {
        shown += &format!(" {arg:?}");
    }
    shown
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
    run(build)?;
    let root = std::env::current_dir()?;
    python::build(&root, &adapters_dir(&root))?;
    js::build(&root, &adapters_dir(&root))
}

fn adapters_dir(root: &Path) -> PathBuf {
    root.join("target/wasm32-wasip2/release")
}

/// Every binary of the workspace in debug (the gateway and the simulated departments among them).
///
/// `test`, `demo` and `schemathesis` build this one selection: features unify the same way each
/// time, so one command after another rebuilds nothing. (Named packages, `-p gateway -p
/// departments`, unified them differently from the whole workspace: wasmtime and the gateway were
/// compiled again.)
fn build_binaries() -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    run(build)
}

fn test(root: &Path, extra: &[String]) -> anyhow::Result<()> {
    build_adapters()?;
    // The crash tests run the gateway binary as a process of its own.
    build_binaries()?;
    // A failing test says what failed in its panic's message; a stack trace of the test's
    // async frames would push that message out of a CI log's tail, so there is none unless
    // GATEWAY_TEST_BACKTRACE=1 asks for one (whatever RUST_BACKTRACE the caller has set).
    let backtrace = if std::env::var("GATEWAY_TEST_BACKTRACE").is_ok_and(|v| v == "1") {
        "1"
    } else {
        "0"
    };
    let with_fixtures = |command: &mut Command| {
        command
            .env("GATEWAY_ADAPTERS_DIR", adapters_dir(root))
            .env("GATEWAY_BINARY", root.join("target/debug/gateway"))
            .env("RUST_BACKTRACE", backtrace);
    };
    // The browser tests run in the same suites when switched on; each says when it skips.
    if !std::env::var("GATEWAY_TEST_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("GATEWAY_TEST_BROWSER is not 1: the browser tests are skipped");
    }
    let mut test = cargo();
    test.args(["test", "--workspace"]).args(extra);
    with_fixtures(&mut test);
    run(test)?;
    python::unit_tests(root)?;
    js::unit_tests(root)?;
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
    if std::env::var("GATEWAY_TEST_CLIENTS").is_ok_and(|v| v == "1") {
        clients(root)?;
    } else {
        eprintln!("GATEWAY_TEST_CLIENTS is not 1: the generated clients' run is skipped");
    }
    Ok(())
}

/// Run schemathesis against a gateway configured as the demo, with its own store, departments and
/// ports (all under `target/schemathesis`), so a demo running on this machine is no obstacle:
/// no answer may be a 5xx, and every answer must match the OpenAPI document.
fn schemathesis(root: &Path) -> anyhow::Result<()> {
    let work = root.join("target/schemathesis");
    let venv = python_tools(
        &root.join("tests/schemathesis/requirements.txt"),
        &work,
        "st",
    )?;
    let st = venv.join("bin/st");
    let gateway = start_gateway(root, &work)?;
    let base_url = &gateway.url;
    let mut check = Command::new(&st);
    // Schemathesis keeps a cache in its working directory: keep it under target/.
    check
        .current_dir(&work)
        .arg("run")
        .arg(format!("{base_url}/openapi.json"))
        .args(["--url", base_url])
        .args([
            "--header",
            "X-Api-Key: demo-portal-key",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            // One worker: Hypothesis describes strategies with `ast.parse`, which CPython 3.11
            // cannot run on two threads at once ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--seed",
            "20261122",
            "--request-timeout",
            "30",
        ]);
    run(check)
}

/// A gateway configured as the demo and its simulated departments, running until dropped.
struct Gateway {
    /// The portal listener.
    url: String,
    /// The admin listener.
    admin_url: String,
    _processes: Children,
}

/// Start the simulated departments and a gateway configured as the demo, with a fresh store and
/// ports of their own, everything under `work`.
fn start_gateway(root: &Path, work: &Path) -> anyhow::Result<Gateway> {
    // A fresh store each run, so earlier runs' cases do not change what this one sees.
    let _ = std::fs::remove_dir_all(work.join("var"));
    let demo_file = root.join("config/gateway.toml");
    let demo: toml::Table = std::fs::read_to_string(&demo_file)
        .with_context(|| format!("reading {}", demo_file.display()))?
        .parse()
        .with_context(|| format!("parsing {}", demo_file.display()))?;
    let departments: Vec<String> = demo
        .get("departments")
        .and_then(toml::Value::as_table)
        .context("the demo config has no [departments]")?
        .keys()
        .cloned()
        .collect();
    let mut ports = free_ports(departments.len() + 2)?.into_iter();
    let ports = RunPorts {
        gateway: ports.next().context("a port")?,
        admin: ports.next().context("a port")?,
        departments: departments.into_iter().zip(ports).collect(),
    };
    let cert_dir = work.join("certs");
    let config = run_config(&demo, &root.join("config"), &ports, &cert_dir)?;
    let config_file = work.join("gateway.toml");
    std::fs::write(&config_file, toml::to_string(&config)?)
        .with_context(|| format!("writing {}", config_file.display()))?;

    let bin = root.join("target/debug");
    let mut children = Children(Vec::new());
    let mut departments = Command::new(bin.join("departments"));
    departments
        .arg("--cert-dir")
        .arg(&cert_dir)
        // Where they verify the licences applicants name (licence sharing).
        .arg("--gateway-url")
        .arg(format!("http://127.0.0.1:{}", ports.gateway));
    // `--tax-port`, `--real-estate-port` ...: the binary's flag for each department id.
    for (id, port) in &ports.departments {
        departments
            .arg(format!("--{id}-port"))
            .arg(port.to_string());
    }
    children.0.push(
        departments
            .spawn()
            .context("starting the simulated departments")?,
    );
    for (id, port) in &ports.departments {
        wait_for_port(*port, &format!("simulated {id} department"), &mut children)?;
    }
    // The SQLite path in the demo config is relative to the working directory.
    let mut gateway = Command::new(bin.join("gateway"));
    gateway
        .args(["serve", "--config"])
        .arg(&config_file)
        .current_dir(work)
        .env("RUST_LOG", "warn");
    children
        .0
        .push(gateway.spawn().context("starting the gateway")?);
    wait_for_port(ports.gateway, "gateway", &mut children)?;
    // The port opens before every component is compiled: on a cold cache the Python one (tens
    // of MB, compiled by a debug gateway) keeps the first requests waiting longer than a client's
    // timeout. The document answering is the sign the gateway serves.
    let url = format!("http://127.0.0.1:{}", ports.gateway);
    let deadline = Instant::now() + Duration::from_secs(600);
    while let Err(e) = http_get(&url, "/openapi.json") {
        if Instant::now() > deadline {
            bail!("the gateway did not serve its API document within 600 s: {e:#}");
        }
        for child in &mut children.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a process exited before the gateway served: {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Gateway {
        url: format!("http://127.0.0.1:{}", ports.gateway),
        admin_url: format!("http://127.0.0.1:{}", ports.admin),
        _processes: children,
    })
}

/// Generate the portal API's clients as a portal team would, from a running gateway's document,
/// and use them: the Python client (openapi-python-client) and the TypeScript types
/// (openapi-typescript, with openapi-fetch), every version pinned in `tests/clients/`. A
/// generator's warning fails the run, the TypeScript portal script is type-checked with `tsc`,
/// and one portal script in each language runs end to end against the gateway (catalogue,
/// form, a lookup with a Chinese purpose and clerk, pre-review with problems, an application
/// with an `Idempotency-Key`, the case followed to `completed` on its event stream, a typed
/// 404 and 422). Tools are installed under `target/clients` (a venv, a node prefix), again
/// only when their pins change.
fn clients(root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let sources = root.join("tests/clients");
    let work = root.join("target/clients");
    std::fs::create_dir_all(&work)?;
    let venv = python_tools(
        &sources.join("python/requirements.txt"),
        &work.join("python"),
        "openapi-python-client",
    )?;
    let typescript = work.join("typescript");
    node_tools(&sources.join("typescript"), &typescript)?;
    let mut took = vec![("tools", started.elapsed())];
    let mut lap = Instant::now();
    let mut timed = |what: &'static str, took: &mut Vec<(&'static str, Duration)>| {
        took.push((what, lap.elapsed()));
        lap = Instant::now();
    };

    let gateway = start_gateway(root, &work)?;
    let document = work.join("openapi.json");
    std::fs::write(&document, http_get(&gateway.url, "/openapi.json")?)
        .with_context(|| format!("writing {}", document.display()))?;

    timed("gateway", &mut took);

    // Python: the generator's own hooks (ruff) come from the venv.
    let bin = venv.join("bin");
    let path = match std::env::var_os("PATH") {
        Some(path) => {
            let mut all = vec![bin.clone()];
            all.extend(std::env::split_paths(&path));
            std::env::join_paths(all)?
        }
        None => bin.clone().into_os_string(),
    };
    let generated = work.join("python/generated");
    let _ = std::fs::remove_dir_all(&generated);
    let mut generate = Command::new(bin.join("openapi-python-client"));
    generate
        .args(["generate", "--fail-on-warning", "--path"])
        .arg(&document)
        .arg("--output-path")
        .arg(&generated)
        .env("PATH", &path);
    without_warnings(generate, "openapi-python-client")?;
    timed("openapi-python-client", &mut took);

    // TypeScript: the types, then the portal script type-checked against them and compiled.
    let modules = typescript.join("node_modules/.bin");
    let mut generate = Command::new(modules.join("openapi-typescript"));
    generate
        .arg(&document)
        .arg("-o")
        .arg(typescript.join("schema.d.ts"))
        .current_dir(&typescript);
    without_warnings(generate, "openapi-typescript")?;
    timed("openapi-typescript", &mut took);
    std::fs::copy(
        sources.join("typescript/portal.ts"),
        typescript.join("portal.ts"),
    )?;
    let mut tsc = Command::new(modules.join("tsc"));
    tsc.arg("-p").arg(typescript.join("tsconfig.json"));
    run(tsc)?;
    timed("tsc", &mut took);

    let mut python = Command::new(bin.join("python"));
    python
        .arg(sources.join("python/portal.py"))
        .env("GATEWAY_URL", &gateway.url)
        .env("GATEWAY_ADMIN_URL", &gateway.admin_url)
        .env("PYTHONPATH", &generated)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run(python)?;
    timed("python portal", &mut took);
    let mut node = Command::new("node");
    node.arg(typescript.join("out/portal.js"))
        .env("GATEWAY_URL", &gateway.url)
        .env("GATEWAY_ADMIN_URL", &gateway.admin_url);
    run(node)?;
    timed("typescript portal", &mut took);
    let parts: Vec<String> = took
        .iter()
        .map(|(what, took)| format!("{what} {:.1} s", took.as_secs_f64()))
        .collect();
    eprintln!(
        "clients: OK in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        parts.join(", ")
    );
    Ok(())
}

/// The Python tools in a venv under `work`, installed from `requirements` (every version pinned)
/// when it differs from the one installed last or the venv lacks `tool`; the venv.
fn python_tools(requirements: &Path, work: &Path, tool: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(work)?;
    let venv = work.join("venv");
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let installed = work.join("installed-requirements.txt");
    if std::fs::read_to_string(&installed).ok().as_deref() == Some(wanted.as_str())
        && venv.join("bin").join(tool).exists()
    {
        return Ok(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let mut make = Command::new("python3");
    make.args(["-m", "venv"]).arg(&venv);
    run(make)?;
    let mut install = Command::new(venv.join("bin/pip"));
    install
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements);
    run(install)?;
    std::fs::write(&installed, wanted)?;
    Ok(venv)
}

/// The node tools in `work` (`package.json`, the lock file and `tsconfig.json` copied there),
/// installed with `npm ci` when the lock file differs from the one installed last.
fn node_tools(sources: &Path, work: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(work)?;
    for file in ["package.json", "tsconfig.json"] {
        std::fs::copy(sources.join(file), work.join(file))?;
    }
    let lock = std::fs::read_to_string(sources.join("package-lock.json"))?;
    let installed = work.join("node_modules/.package-lock.json");
    let current = std::fs::read_to_string(work.join("package-lock.json")).ok();
    if current.as_deref() == Some(lock.as_str()) && installed.exists() {
        return Ok(());
    }
    std::fs::write(work.join("package-lock.json"), &lock)?;
    let mut install = Command::new("npm");
    install
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(work);
    run(install)
}

/// Run a generator; its warnings fail the run like its errors (a warning means some part of
/// the API was left out of the client or typed loosely).
fn without_warnings(mut command: Command, what: &str) -> anyhow::Result<()> {
    eprintln!("$ {}", shown(&command));
    let output = command
        .output()
        .with_context(|| format!("running {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprint!("{text}");
    if !output.status.success() {
        bail!("{what} failed: {}", output.status);
    }
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.to_lowercase().contains("warn") || l.contains('⚠'))
        .collect();
    if !warned.is_empty() {
        bail!("{what} warned:\n{}", warned.join("\n"));
    }
    Ok(())
}

/// The body of `GET <base_url><path>` (HTTP/1.0 on a plain TCP connection: the runs' gateway
/// is local and plain).
fn http_get(base_url: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let address = base_url
        .strip_prefix("http://")
        .context("a plain http URL")?;
    let mut stream =
        TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(answer[split + 4..].to_vec())
}

/// Where one schemathesis run listens: ports picked free at its start.
struct RunPorts {
    gateway: u16,
    admin: u16,
    /// Each department of the demo config, by id.
    departments: Vec<(String, u16)>,
}

/// `n` distinct free ports on 127.0.0.1: held together while picked, so none comes twice, then
/// released for the processes to bind. (Something else could take one in between: the run then
/// stops at start-up, saying which, and runs on new ports the next time.)
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("picking free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The demo config for one schemathesis run, written to `target/schemathesis/gateway.toml`.
///
/// What the run needs changed, and nothing else, so schemathesis checks the demo's API: the
/// gateway's and the admin API's listen addresses and the public URL (on `ports`), each
/// department's base URL (the same host, its port in `ports`), the departments' TLS files (in
/// `cert_dir`, where the run's departments write them), and the config's relative paths made
/// absolute: they were relative to the demo file's folder `base`, and the run's file is elsewhere.
fn run_config(
    demo: &toml::Table,
    base: &Path,
    ports: &RunPorts,
    cert_dir: &Path,
) -> anyhow::Result<toml::Table> {
    let mut config = demo.clone();
    // Every path key of the config (departments' TLS files apart), as `section.key`.
    for key in [
        "catalogue",
        "server.tls.cert",
        "server.tls.key",
        "server.tls.client_ca",
        "admin.tls.cert",
        "admin.tls.key",
        "admin.tls.client_ca",
        "audit.signing_key",
        "store.key_file",
        "plugins.dir",
        "plugins.cache_dir",
        "plugins.watch_dir",
        "deadlines.calendar",
    ] {
        if let Some(toml::Value::String(path)) = value_mut(&mut config, key)
            && Path::new(path.as_str()).is_relative()
        {
            *path = base.join(&*path).to_string_lossy().into_owned();
        }
    }
    for (key, port) in [
        ("server.listen", ports.gateway),
        ("server.public_url", ports.gateway),
        ("admin.listen", ports.admin),
    ] {
        match value_mut(&mut config, key) {
            Some(toml::Value::String(address)) => *address = with_port(address, port),
            _ => bail!("the demo config has no {key} to move to port {port}"),
        }
    }
    for (id, port) in &ports.departments {
        let key = format!("departments.{id}.base_url");
        match value_mut(&mut config, &key) {
            Some(toml::Value::String(url)) => *url = with_port(url, *port),
            _ => bail!("the demo config has no {key}"),
        }
        // Keys the host holds, `file:` relative to the demo's folder.
        if let Some(toml::Value::Table(keys)) =
            value_mut(&mut config, &format!("departments.{id}.keys"))
        {
            for (_, key) in keys.iter_mut() {
                let Some(toml::Value::String(value)) = key.get_mut("value") else {
                    continue;
                };
                let Some(path) = value.strip_prefix("file:").map(str::to_string) else {
                    continue;
                };
                // Keys the simulated departments write at start (social security's SM2 pair)
                // are the run's own, in its certificate folder, like public security's TLS files.
                if path.contains("demo-certs/")
                    && let Some(name) = Path::new(&path).file_name()
                {
                    *value = format!("file:{}", cert_dir.join(name).display());
                } else if Path::new(&path).is_relative() {
                    *value = format!("file:{}", base.join(&path).display());
                }
            }
        }
        for file in ["ca", "client_cert", "client_key"] {
            if let Some(toml::Value::String(path)) =
                value_mut(&mut config, &format!("departments.{id}.tls.{file}"))
            {
                let name = Path::new(path.as_str())
                    .file_name()
                    .with_context(|| format!("departments.{id}.tls.{file} names no file"))?;
                *path = cert_dir.join(name).to_string_lossy().into_owned();
            }
        }
    }
    Ok(config)
}

/// The value at a dotted key (`server.listen`), if the config has it.
fn value_mut<'a>(config: &'a mut toml::Table, key: &str) -> Option<&'a mut toml::Value> {
    let mut parts = key.split('.');
    let mut value = config.get_mut(parts.next()?)?;
    for part in parts {
        value = value.as_table_mut()?.get_mut(part)?;
    }
    Some(value)
}

/// `address` (`127.0.0.1:8080`, `https://localhost:18443`, with or without a path) on `port`.
fn with_port(address: &str, port: u16) -> String {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), address),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    format!("{scheme}{host}:{port}{path}")
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
    let pgo = extra.iter().any(|a| a == "--pgo");
    let extra: Vec<&str> = extra
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--pgo")
        .collect();
    let release = if pgo {
        pgo::build(root)?
    } else {
        // The bench binaries built once, in one cargo invocation, then run directly: one `cargo
        // run` each would check the build three or four times, and (nested in `cargo xtask`)
        // with environments that made cargo rebuild ring and what depends on it (BENCHMARKS.md).
        let mut build = cargo();
        build.args([
            "build",
            "--release",
            "-p",
            "integration-tests",
            "--bins",
            "-p",
            "gateway",
            "-p",
            "departments",
        ]);
        run(build)?;
        root.join("target/release")
    };
    let bench_binary = |name: &str| bench_command(root, &release, name);
    // `--materials-only`: uploads and a large material's delivery, nothing else.
    if extra.contains(&"--materials-only") {
        return run(bench_binary("bench_materials"));
    }
    let mut bench = bench_binary("bench");
    if pgo {
        bench.arg("--binaries").arg(&release);
    }
    bench.args(&extra);
    run(bench)?;
    // `--fairness-only` asks for that one measurement: the other binaries are not run.
    if extra.contains(&"--fairness-only") {
        return Ok(());
    }
    // Case throughput and 企业开办 latency: on SQLite, then acceptance on PostgreSQL if named.
    run(bench_binary("bench_cases"))?;
    // Hot swaps under load.
    run(bench_binary("bench_swaps"))?;
    // Uploads (MB/s, memory with several large ones at once) and a large material's delivery.
    run(bench_binary("bench_materials"))?;
    if std::env::var("GATEWAY_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        let mut on_postgres = bench_binary("bench_cases");
        on_postgres
            .args(["--cases", "0"])
            .env("GATEWAY_TEST_STORE", "postgres");
        run(on_postgres)?;
    }
    Ok(())
}

/// One of the bench binaries in `binaries`, run directly, with the gateway and the adapters
/// beside it.
fn bench_command(root: &Path, binaries: &Path, name: &str) -> Command {
    let mut command = Command::new(binaries.join(name));
    without_cargo_run_env(&mut command);
    command
        .env("GATEWAY_ADAPTERS_DIR", adapters_dir(root))
        .env("GATEWAY_BINARY", binaries.join("gateway"));
    command
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
    build_binaries()?;
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
        (18086, "SMS provider"),
        (18087, "national evaluation"),
        (18088, "social security"),
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
The gateway is ready at http://127.0.0.1:8080 with the adapters of its seven departments loaded
(tax, real estate, public security, market regulation, 社保 in Python, the SMS provider, the
national 好差评 system).
Portal calls carry the demo client's key; the admin API (127.0.0.1:8081) the demo operator's token.

  curl -s http://127.0.0.1:8080/api/v1/catalogue -H 'X-Api-Key: demo-portal-key'
  curl -s -X POST http://127.0.0.1:8080/api/v1/lookups/public-security.identity \
       -H 'X-Api-Key: demo-portal-key' -H 'content-type: application/json' \
       -H 'X-Lookup-Purpose: demo' -H 'X-Clerk-Id: window-1' \
       -d '{{"name":"张三","id_number":"11010519491231002X"}}'
  curl -s -X POST http://127.0.0.1:8080/api/v1/services/market-regulation.business-licence/drafts \
       -H 'X-Api-Key: demo-portal-key'
  curl -s -X PUT http://127.0.0.1:8080/api/v1/drafts/<draft_id>/materials/articles-of-association \
       -H 'X-Api-Key: demo-portal-key' --data-binary @config/samples/articles-of-association.pdf
  curl -s -X PUT http://127.0.0.1:8080/api/v1/drafts/<draft_id>/materials/shareholder-id \
       -H 'X-Api-Key: demo-portal-key' --data-binary @config/samples/shareholder-id.pdf
  curl -s -X POST 'http://127.0.0.1:8080/api/v1/services/market-regulation.business-licence/applications?draft=<draft_id>' \
       -H 'X-Api-Key: demo-portal-key' -H 'content-type: application/json' \
       -d '{{"enterprise_name":"福州演示餐饮有限公司","address":"福州市鼓楼区五四路2号","legal_representative":{{"name":"李四","id_number":"34052419800101001X"}},"registered_capital":100,"business_scope":"餐饮服务"}}'
  curl -s http://127.0.0.1:8080/api/v1/cases/<case_id> -H 'X-Api-Key: demo-portal-key'
  GATEWAY_ADMIN_TOKEN=demo-operator-token target/debug/gateway plugin list
  open http://127.0.0.1:8080/docs

Market regulation in JavaScript, staged beside the Rust adapter for half the calls (`plugin
rollback market-regulation` drops it, `plugin promote market-regulation` makes it serve all):
  GATEWAY_ADMIN_TOKEN=demo-operator-token target/debug/gateway plugin push \
       target/wasm32-wasip2/release/market_regulation_js_adapter.wasm \
       --department market-regulation --activate --percent 50

The screens (accounts in config/gateway.toml [screens]; the password is the user name):
  clerk (综合受理窗口)      http://127.0.0.1:8080/screens/login   demo-clerk / demo-clerk
  supervisor (电子监察)     http://127.0.0.1:8080/screens/login   demo-supervisor / demo-supervisor
  operator (运维控制台)     http://127.0.0.1:8081/console/login   demo-operator / demo-operator

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
lto = "fat"
codegen-units = 1
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_move_to_another_port() {
        assert_eq!(with_port("127.0.0.1:8080", 1), "127.0.0.1:1");
        assert_eq!(with_port("http://127.0.0.1:8080", 2), "http://127.0.0.1:2");
        assert_eq!(
            with_port("https://localhost:18443/ws", 3),
            "https://localhost:3/ws"
        );
        assert_eq!(
            with_port("http://example.gov.cn", 4),
            "http://example.gov.cn:4"
        );
    }

    /// Every dotted key whose value differs between two tables (or is in one only).
    fn changed(a: &toml::Table, b: &toml::Table, at: &str, out: &mut Vec<String>) {
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match (a.get(key), b.get(key)) {
                (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                    changed(x, y, &path, out)
                }
                (x, y) if x != y => out.push(path),
                _ => {}
            }
        }
    }

    #[test]
    fn the_run_config_is_the_demo_on_other_ports_with_absolute_paths() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let demo: toml::Table = std::fs::read_to_string(root.join("config/gateway.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let ids: Vec<String> = demo["departments"]
            .as_table()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let ports = RunPorts {
            gateway: 40001,
            admin: 40002,
            departments: ids.iter().cloned().zip(40003..).collect(),
        };
        let certs = Path::new("/run/certs");
        let config = run_config(&demo, &root.join("config"), &ports, certs).unwrap();

        assert_eq!(config["server"]["listen"].as_str(), Some("127.0.0.1:40001"));
        assert_eq!(
            config["server"]["public_url"].as_str(),
            Some("http://127.0.0.1:40001")
        );
        assert_eq!(config["admin"]["listen"].as_str(), Some("127.0.0.1:40002"));
        for (id, port) in &ports.departments {
            let url = config["departments"][id]["base_url"].as_str().unwrap();
            assert!(url.ends_with(&format!(":{port}")), "{id}: {url}");
        }
        let tls = &config["departments"]["public-security"]["tls"];
        assert_eq!(tls["ca"].as_str(), Some("/run/certs/ca.pem"));
        assert_eq!(
            tls["client_key"].as_str(),
            Some("/run/certs/client-key.pem")
        );
        for key in [
            "catalogue",
            "deadlines.calendar",
            "plugins.dir",
            "plugins.cache_dir",
        ] {
            let mut config = config.clone();
            let path = value_mut(&mut config, key)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string();
            assert!(Path::new(&path).is_absolute(), "{key}: {path}");
            assert!(path.starts_with(root.to_str().unwrap()), "{key}: {path}");
        }
        // Nothing else differs from the demo: schemathesis checks the demo's API.
        let mut differs = Vec::new();
        changed(&demo, &config, "", &mut differs);
        let mut expected = vec![
            "server.listen".to_string(),
            "server.public_url".into(),
            "admin.listen".into(),
            "catalogue".into(),
            "deadlines.calendar".into(),
            "plugins.dir".into(),
            "plugins.cache_dir".into(),
            "departments.public-security.tls.ca".into(),
            "departments.public-security.tls.client_cert".into(),
            "departments.public-security.tls.client_key".into(),
        ];
        expected.extend(ids.iter().map(|id| format!("departments.{id}.base_url")));
        // Key files: made absolute, those the simulated departments write in the run's folder.
        for id in &ids {
            for (name, key) in demo["departments"][id]
                .get("keys")
                .and_then(toml::Value::as_table)
                .into_iter()
                .flatten()
            {
                expected.push(format!("departments.{id}.keys.{name}.value"));
                let value = config["departments"][id]["keys"][name]["value"]
                    .as_str()
                    .unwrap();
                let path = value.strip_prefix("file:").unwrap();
                assert!(Path::new(path).is_absolute(), "{id}.{name}: {value}");
                if key["value"].as_str().unwrap().contains("demo-certs/") {
                    assert!(path.starts_with("/run/certs/"), "{id}.{name}: {value}");
                }
            }
        }
        differs.sort();
        expected.sort();
        assert_eq!(differs, expected);
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(6).unwrap();
        let distinct: std::collections::BTreeSet<&u16> = ports.iter().collect();
        assert_eq!(distinct.len(), 6);
    }
}
