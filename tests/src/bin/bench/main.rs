//! `cargo xtask bench`: what the gateway costs, measured against the floor and against a proxy.
//!
//! 1. One lookup (the tax department's 清税查询, `POST /api/v1/qscx`) under the same load five
//!    ways: straight to the simulated department (the floor), through nginx as a plain reverse
//!    proxy (what a proxy costs with no translation), through an axum + reqwest pass-through
//!    (the gateway's own HTTP stack with none of its work, [`passthrough`]), through nginx + njs
//!    doing the tax adapter's work in JavaScript (the peer a team would build without the
//!    gateway, [`njs`]), and through the gateway and its tax adapter
//!    (`POST /api/v1/lookups/tax.clearance`). The load generator is
//!    this process: a fixed number of tokio workers, each sending back-to-back requests over
//!    keep-alive HTTP/1.1 connections. The departments, nginx, the pass-through and the
//!    gateway run as child processes (release builds), so the gateway's peak memory (VmHWM)
//!    and every process's CPU time can be read from `/proc`.
//! 2. The cost of one adapter call in a fresh instance: the hostile test adapter loaded in-process
//!    through the gateway library, timed over sequential `hostile.echo` and `hostile.state` calls
//!    (instantiate + call, no host call).
//!
//! Each path is also run unloaded (one worker) for its latency without queueing.
//! 3. Fairness ([`fairness`]): another department's lookups beside the hostile adapter's endless
//!    loops, memory bombs and oversized answers; their p99 against their own baseline, and the
//!    gateway's peak memory against its configured budget (`--fairness-seconds` per phase, 0
//!    skips it; `--fairness-only` runs nothing else).
//!
//! Everything runs on one machine, load generator included; the output says so. Flags:
//! `--concurrency` (32), `--seconds` (10), `--warmup-seconds` (1), `--unloaded-seconds` (3, 0
//! skips the unloaded runs), `--calls` (20000), `--binaries` (check the bench itself with other
//! builds, e.g. `target/debug`). See BENCHMARKS.md for the method and a reading.

use anyhow::{Context, bail};
use clap::Parser;
use gateway_plugins::host::{Department, Limits, LoadedAdapter, PluginEngine};
use std::fmt::Write as _;
use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Gateway benchmarks: lookup throughput and latency against a direct call and nginx, \
             and the cost of one adapter instantiation + call"
)]
struct Args {
    /// Concurrent workers of the load generator (each keeps one request in flight).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds of each load run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds before each measured run (not counted).
    #[arg(long, default_value_t = 1)]
    warmup_seconds: u64,
    /// Measured seconds of the extra unloaded run of each path (one worker: latency without
    /// queueing); 0 skips it.
    #[arg(long, default_value_t = 3)]
    unloaded_seconds: u64,
    /// Sequential calls per lookup in the instantiation benchmark.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Run as the pass-through row's server on this port instead (the bench starts itself so).
    #[arg(long, hide = true, requires = "passthrough_upstream")]
    passthrough_listen: Option<u16>,
    /// The pass-through server's upstream base URL.
    #[arg(long, hide = true)]
    passthrough_upstream: Option<String>,
    /// Measured seconds of each fairness phase; 0 skips the fairness benchmark.
    #[arg(long, default_value_t = 10)]
    fairness_seconds: u64,
    /// Run only the fairness benchmark.
    #[arg(long)]
    fairness_only: bool,
    /// Run as the fairness benchmark's memory churn instead (the bench starts itself so).
    #[arg(long, hide = true)]
    memory_churn: bool,
    /// Take the `gateway` and `departments` binaries from this directory as they are (e.g.
    /// `target/debug`, to check the bench itself: its figures are then not the release ones)
    /// instead of the release builds, built when stale.
    #[arg(long)]
    binaries: Option<PathBuf>,
}

/// The taxpayer every lookup asks about (seeded at the tax department, clear of arrears).
const TAXPAYER: &str = "91350100M000100Y43";
/// The tax department's 清税查询 path.
const QSCX_PATH: &str = "/api/v1/qscx";
/// The app key and secret the simulated tax department accepts (PROTOCOLS.md).
const APP_KEY: &str = "gw-demo";
const APP_SECRET: &[u8] = b"tax-demo-secret";
/// The 50 µs target of one instantiation + call.
const INSTANTIATION_TARGET_US: f64 = 50.0;

mod fairness;
mod njs;
mod passthrough;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // reqwest is built without a TLS provider (like the gateway); plain HTTP still needs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let (Some(port), Some(upstream)) = (args.passthrough_listen, &args.passthrough_upstream) {
        return passthrough::serve(port, upstream.clone());
    }
    if args.memory_churn {
        fairness::churn_memory();
    }
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.seconds > 0, "--seconds must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            result = run(args) => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted: child processes stopped"),
        }
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let root = integration_tests::workspace_root();
    let adapters = adapters_dir(&root)?;
    let bins = match &args.binaries {
        // Absolute: the gateway is started in the temp dir.
        Some(dir) => {
            let dir = std::fs::canonicalize(dir)
                .with_context(|| format!("--binaries {}", dir.display()))?;
            Binaries {
                gateway: dir.join("gateway"),
                departments: dir.join("departments"),
            }
        }
        None => release_binaries(&root)?,
    };
    // Declared first so it is removed last, after every child process is gone.
    let dir = tempfile::tempdir()?;
    let machine = Machine::read();
    println!("{}", machine.describe());
    println!(
        "Everything runs on this machine: the load generator (this process, {} tokio worker \
         threads), the simulated departments, nginx (alone and with njs), the pass-through and \
         the gateway share its {} \
         cores, so each \
         row's figures include the cost of generating the load.\n",
        tokio::runtime::Handle::current().metrics().num_workers(),
        machine.cores
    );

    // Other work on the box skews every figure: say how busy it was just before the run.
    let ticks = clock_ticks();
    if let Some((busy0, idle0)) = machine_cpu(ticks) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some((busy1, idle1)) = machine_cpu(ticks) {
            let busy = (busy1 - busy0) / ((busy1 - busy0) + (idle1 - idle0)).max(1e-9);
            println!(
                "Before the run the machine was {:.0} % busy{}\n",
                busy * 100.0,
                if busy > 0.10 {
                    ": other work is running, expect lower and noisier figures"
                } else {
                    ""
                }
            );
        }
    }

    let fairness = |seconds: u64| {
        let (root, bins, adapters, dir) = (&root, &bins, &adapters, dir.path());
        async move {
            if seconds == 0 {
                return Ok(None);
            }
            fairness::run(seconds, root, bins, adapters, dir)
                .await
                .map(Some)
        }
    };
    if args.fairness_only {
        let seconds = args.fairness_seconds.max(1);
        let fairness = fairness(seconds).await?.context("fairness ran")?;
        let markdown = format!(
            "Run: `cargo xtask bench --fairness-only --fairness-seconds {seconds}`; {}.\n\n{}",
            machine.describe(),
            fairness.markdown(&machine)
        );
        println!("---- Markdown summary (paste into BENCHMARKS.md) ----\n{markdown}---- end ----");
        return Ok(());
    }
    let lookups = lookup_benchmarks(&args, &root, &bins, &adapters, dir.path()).await?;
    let instantiation = instantiation_benchmark(&args, &adapters, dir.path()).await?;
    let fairness = fairness(args.fairness_seconds).await?;

    println!("{}", lookups.table(&args));
    println!("{}", instantiation.table());
    let mut markdown = summary_markdown(&args, &machine, &lookups, &instantiation);
    if let Some(fairness) = &fairness {
        markdown.push('\n');
        markdown.push_str(&fairness.markdown(&machine));
    }
    println!("---- Markdown summary (paste into BENCHMARKS.md) ----\n{markdown}---- end ----");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Setup: binaries, ports, child processes
// ---------------------------------------------------------------------------------------------

fn adapters_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("GATEWAY_ADAPTERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/wasm32-wasip2/release"));
    for file in ["tax_adapter.wasm", "hostile_adapter.wasm"] {
        if !dir.join(file).is_file() {
            bail!(
                "{} has no {file}: run the benchmark as `cargo xtask bench`, which builds the \
                 adapter components first",
                dir.display()
            );
        }
    }
    Ok(std::fs::canonicalize(&dir)?)
}

struct Binaries {
    gateway: PathBuf,
    departments: PathBuf,
}

/// The release `gateway` and `departments` binaries, built first when missing or older than
/// their sources.
fn release_binaries(root: &Path) -> anyhow::Result<Binaries> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bins = Binaries {
        gateway: target.join("release/gateway"),
        departments: target.join("release/departments"),
    };
    let built = [&bins.gateway, &bins.departments]
        .iter()
        .map(|b| std::fs::metadata(b).and_then(|m| m.modified()).ok())
        .collect::<Option<Vec<_>>>()
        .and_then(|times| times.into_iter().min());
    let sources = [
        "Cargo.toml",
        "Cargo.lock",
        "crates",
        "gateway",
        "sdk",
        "tests/departments",
        "wit",
    ]
    .iter()
    .filter_map(|p| newest_mtime(&root.join(p)))
    .max();
    if let (Some(built), Some(sources)) = (built, sources)
        && built >= sources
    {
        return Ok(bins);
    }
    // Only when needed: `cargo run` hands this process its own package's CARGO_PKG_* and
    // CARGO_MANIFEST_* variables, some build scripts (ring's) fingerprint those, and a nested
    // build therefore recompiles part of the tree. Without them the build matches one run by
    // hand from a shell.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .current_dir(root)
        .args(["build", "--release", "-p", "gateway", "-p", "departments"]);
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && (name.starts_with("CARGO_PKG_")
                || matches!(
                    name,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_RUSTC_CURRENT_DIR"
                ))
        {
            build.env_remove(name);
        }
    }
    eprintln!("$ cargo build --release -p gateway -p departments");
    match build.status() {
        Ok(s) if s.success() => Ok(bins),
        other => bail!(
            "building the release gateway and departments failed ({other:?}); run \
             `cargo build --release -p gateway -p departments`"
        ),
    }
}

/// The newest modification time of a file or of any file under a directory (`target` aside).
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// The simulated departments no benchmark calls (SMS, the national 好差评 system, social
/// security) on free ports too: on their fixed defaults a second bench, a demo or a test run
/// on the same machine would stop the departments from starting.
fn unused_departments_on_free_ports(command: &mut Command) -> anyhow::Result<()> {
    let ports = free_ports(3)?;
    command
        .args(["--sms-port", &ports[0].to_string()])
        .args(["--national-evaluation-port", &ports[1].to_string()])
        .args(["--social-security-port", &ports[2].to_string()]);
    Ok(())
}

/// `n` distinct free ports on 127.0.0.1, none handed out before in this run: below the
/// kernel's ephemeral range ([`integration_tests::free_port`]). Ports the kernel picks itself
/// could come back in a later pick once released, or as the local port of one of the load's
/// connections, and a server started on one then fails to bind while another answers there.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    Ok((0..n).map(|_| integration_tests::free_port()).collect())
}

/// A child process that is stopped when dropped, however the benchmark ends.
struct ChildGuard {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// Stop with SIGTERM first, SIGKILL after 5 s: nginx's master then stops its workers, and
    /// the Rust processes return from `main`, so an instrumented build writes its profile.
    graceful: bool,
}

impl ChildGuard {
    fn spawn(
        name: &'static str,
        mut command: Command,
        log: PathBuf,
        graceful: bool,
    ) -> anyhow::Result<Self> {
        let out = File::create(&log)?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(ChildGuard {
            name,
            child,
            log,
            graceful,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until `port` accepts connections, or fail with the end of the child's log.
    fn wait_for_port(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited before it was ready ({status}):\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not open port {port} within 60 s:\n{}",
            self.name,
            self.log_tail()
        )
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------------------------

/// The machine, as the figures should be read against.
struct Machine {
    cores: usize,
    memory_gib: f64,
    cpu: String,
    kernel: String,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = field_kib(&meminfo, "MemTotal:").unwrap_or(0);
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: memory_kib as f64 / (1024.0 * 1024.0),
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "Machine: {} cores ({}), {:.1} GiB RAM, Linux {}",
            self.cores, self.cpu, self.memory_gib, self.kernel
        )
    }
}

/// A `Key:   1234 kB` line of a `/proc` status-like file, in KiB.
fn field_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in KiB.
fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((field_kib(&status, "VmHWM:")?, field_kib(&status, "VmRSS:")?))
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds a process has used so far (`None` once it is gone).
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// The direct children of a process (nginx's workers under its master).
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Busy and idle CPU seconds of the whole machine so far, from `/proc/stat`.
fn machine_cpu(ticks: f64) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let idle = v.get(3)? + v.get(4).unwrap_or(&0.0);
    let busy = v.iter().take(8).sum::<f64>() - idle;
    Some((busy / ticks, idle / ticks))
}

/// The processes whose CPU time a run reports, by role.
#[derive(Clone)]
struct Watched {
    role: &'static str,
    pids: Vec<u32>,
}

/// CPU seconds so far of each watched role, then the machine's busy and idle seconds.
fn cpu_of(watched: &[Watched], ticks: f64) -> Vec<f64> {
    let mut seconds: Vec<f64> = watched
        .iter()
        .map(|w| {
            w.pids
                .iter()
                .filter_map(|&pid| cpu_seconds(pid, ticks))
                .sum()
        })
        .collect();
    let (busy, idle) = machine_cpu(ticks).unwrap_or((0.0, 0.0));
    seconds.extend([busy, idle]);
    seconds
}

// ---------------------------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------------------------

/// What the load generator sends: one of the ways to the same lookup.
#[derive(Clone)]
enum Target {
    /// A signed `POST /api/v1/qscx` to `base` (the department itself, or nginx in front of it).
    Signed { url: String },
    /// `POST /api/v1/lookups/tax.clearance` to the gateway.
    Gateway { url: String },
}

impl Target {
    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        match self {
            Target::Signed { url } => {
                // Exactly as the tax adapter signs: a fresh nonce and the current timestamp,
                // HMAC-SHA256 over METHOD\nPATH\nTIMESTAMP\nNONCE\nBODY.
                let body = format!(r#"{{"nsrsbh":"{TAXPAYER}"}}"#);
                let timestamp = sdk::sign::unix_seconds();
                let nonce = sdk::sign::nonce();
                let canonical = format!("POST\n{QSCX_PATH}\n{timestamp}\n{nonce}\n{body}");
                let signature = sdk::sign::hmac_sha256_hex(APP_SECRET, canonical.as_bytes());
                client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-App-Key", APP_KEY)
                    .header("X-Timestamp", timestamp.to_string())
                    .header("X-Nonce", nonce)
                    .header("X-Sign-Method", "HMAC-SHA256")
                    .header("X-Signature", signature)
                    .body(body)
            }
            Target::Gateway { url } => client
                .post(url)
                .header("content-type", "application/json")
                .header("x-api-key", integration_tests::PORTAL_KEY)
                .header("x-lookup-purpose", integration_tests::LOOKUP_PURPOSE)
                .header("x-clerk-id", integration_tests::CLERK)
                .body(format!(r#"{{"taxpayer_id":"{TAXPAYER}"}}"#)),
        }
    }

    /// Whether an answer is the successful lookup (a cheap check: status and a marker).
    fn succeeded(&self, status: u16, body: &[u8]) -> bool {
        let marker: &[u8] = match self {
            Target::Signed { .. } => br#""code":"0000""#,
            Target::Gateway { .. } => br#""cleared":true"#,
        };
        status == 200 && body.windows(marker.len()).any(|w| w == marker)
    }
}

/// One measured load run.
struct LoadRun {
    completed: u64,
    errors: u64,
    first_error: Option<String>,
    measured: Duration,
    /// Latency of every request completed in the measured window, in nanoseconds, sorted.
    latencies: Vec<u64>,
    /// CPU seconds used during the measured window, by role; the last is `rest`, the machine's
    /// busy time outside the watched processes (other work on the box).
    cpu: Vec<(&'static str, f64)>,
    /// Share of the machine's CPU time left idle during the measured window.
    idle_share: f64,
    /// The process's peak and current resident set after the run, in KiB (the gateway's).
    memory: Option<MemoryReading>,
}

#[derive(Clone, Copy)]
struct MemoryReading {
    idle_rss_kib: u64,
    peak_kib: u64,
    after_rss_kib: u64,
}

impl LoadRun {
    fn throughput(&self) -> f64 {
        self.completed as f64 / self.measured.as_secs_f64()
    }

    /// Nearest-rank percentile, in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p) as f64 / 1e6
    }

    /// CPU milliseconds per request of each role, and the machine's idle share.
    fn cpu_summary(&self) -> String {
        let roles = self
            .cpu
            .iter()
            .map(|(role, _)| format!("{role} {:.3}", self.cpu_ms_per_request(role).unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("{roles}; idle {:.0} %", self.idle_share * 100.0)
    }

    fn cpu_ms_per_request(&self, role: &str) -> Option<f64> {
        let total = self.completed + self.errors;
        self.cpu
            .iter()
            .find(|(r, _)| *r == role)
            .filter(|_| total > 0)
            .map(|(_, secs)| secs * 1000.0 / total as f64)
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Default)]
struct WorkerTally {
    completed: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<u64>,
}

/// How one load run is shaped.
#[derive(Clone, Copy)]
struct Shape {
    concurrency: usize,
    warmup_seconds: u64,
    seconds: u64,
}

/// Run `concurrency` workers sending back-to-back requests for warm-up + measured seconds.
/// A request counts when it completes inside the measured window; the latency of each is kept.
async fn load(
    label: &str,
    target: &Target,
    shape: Shape,
    watched: &[Watched],
    ticks: f64,
) -> anyhow::Result<LoadRun> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(shape.concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let start = tokio::time::Instant::now();
    let measure_from = start + Duration::from_secs(shape.warmup_seconds);
    let end = measure_from + Duration::from_secs(shape.seconds);
    eprintln!(
        "{label}: {} workers, {} s warm-up + {} s measured …",
        shape.concurrency, shape.warmup_seconds, shape.seconds
    );

    let cpu_probe = {
        let watched = watched.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from).await;
            let before = cpu_of(&watched, ticks);
            tokio::time::sleep_until(end).await;
            let after = cpu_of(&watched, ticks);
            before
                .iter()
                .zip(after)
                .map(|(b, a)| (a - b).max(0.0))
                .collect::<Vec<f64>>()
        })
    };

    let workers: Vec<_> = (0..shape.concurrency)
        .map(|_| {
            let client = client.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let mut tally = WorkerTally {
                    latencies: Vec::with_capacity(64 * 1024),
                    ..Default::default()
                };
                loop {
                    let sent = tokio::time::Instant::now();
                    if sent >= end {
                        break;
                    }
                    let outcome = async {
                        let response = target.request(&client).send().await?;
                        let status = response.status().as_u16();
                        let body = response.bytes().await?;
                        Ok::<_, reqwest::Error>((status, body))
                    }
                    .await;
                    let done = tokio::time::Instant::now();
                    if done < measure_from || done > end {
                        continue;
                    }
                    match outcome {
                        Ok((status, body)) if target.succeeded(status, &body) => {
                            tally.completed += 1;
                            tally.latencies.push((done - sent).as_nanos() as u64);
                        }
                        Ok((status, body)) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert_with(|| {
                                format!(
                                    "HTTP {status}: {}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                )
                            });
                        }
                        Err(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                tally
            })
        })
        .collect();

    let mut run = LoadRun {
        completed: 0,
        errors: 0,
        first_error: None,
        measured: Duration::from_secs(shape.seconds),
        latencies: Vec::new(),
        cpu: Vec::new(),
        idle_share: 0.0,
        memory: None,
    };
    for worker in workers {
        let tally = worker.await?;
        run.completed += tally.completed;
        run.errors += tally.errors;
        if run.first_error.is_none() {
            run.first_error = tally.first_error;
        }
        run.latencies.extend(tally.latencies);
    }
    run.latencies.sort_unstable();
    let mut cpu = cpu_probe.await?;
    let (busy, idle) = (cpu[cpu.len() - 2], cpu[cpu.len() - 1]);
    cpu.truncate(cpu.len() - 2);
    let rest = (busy - cpu.iter().sum::<f64>()).max(0.0);
    run.cpu = watched.iter().map(|w| w.role).zip(cpu).collect();
    run.cpu.push(("rest", rest));
    run.idle_share = if busy + idle > 0.0 {
        idle / (busy + idle)
    } else {
        0.0
    };
    eprintln!(
        "{label}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        run.throughput(),
        run.percentile_ms(50.0),
        run.percentile_ms(99.0),
        run.errors
    );
    if let Some(e) = &run.first_error {
        eprintln!("{label}: first error: {e}");
    }
    Ok(run)
}

/// One request before the load, so a broken setup fails clearly instead of as 100 % errors.
async fn sanity_check(label: &str, target: &Target) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let response = target
        .request(&client)
        .send()
        .await
        .with_context(|| format!("{label}: the first request failed"))?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    if !target.succeeded(status, &body) {
        bail!(
            "{label}: the first request answered HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. The lookup four ways
// ---------------------------------------------------------------------------------------------

/// One path's runs: under the configured load, and unloaded (one worker).
struct PathRuns {
    loaded: LoadRun,
    unloaded: Option<LoadRun>,
}

/// Check the path answers, then the loaded run and the unloaded one.
async fn measure(
    label: &str,
    target: Target,
    args: &Args,
    watched: &[Watched],
    ticks: f64,
) -> anyhow::Result<PathRuns> {
    sanity_check(label, &target).await?;
    let loaded = load(
        label,
        &target,
        Shape {
            concurrency: args.concurrency,
            warmup_seconds: args.warmup_seconds,
            seconds: args.seconds,
        },
        watched,
        ticks,
    )
    .await?;
    let unloaded = if args.unloaded_seconds > 0 {
        let shape = Shape {
            concurrency: 1,
            warmup_seconds: args.warmup_seconds,
            seconds: args.unloaded_seconds,
        };
        Some(
            load(
                &format!("{label} (unloaded)"),
                &target,
                shape,
                watched,
                ticks,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(PathRuns { loaded, unloaded })
}

struct Lookups {
    direct: PathRuns,
    nginx: Result<PathRuns, String>,
    passthrough: PathRuns,
    /// Why the njs row was skipped, when it was.
    njs: Result<PathRuns, String>,
    gateway: PathRuns,
}

async fn lookup_benchmarks(
    args: &Args,
    root: &Path,
    bins: &Binaries,
    adapters: &Path,
    dir: &Path,
) -> anyhow::Result<Lookups> {
    let ticks = clock_ticks();
    let ports = free_ports(8)?;
    let (tax, real_estate, public_security, market_regulation, nginx_port, gateway_port) =
        (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
    let (passthrough_port, njs_port) = (ports[6], ports[7]);
    let bench_pid = std::process::id();

    // The simulated departments, one child process for all four.
    let cert_dir = dir.join("certs");
    let mut command = Command::new(&bins.departments);
    command
        .arg("--cert-dir")
        .arg(&cert_dir)
        .args(["--tax-port", &tax.to_string()])
        .args(["--real-estate-port", &real_estate.to_string()])
        .args(["--public-security-port", &public_security.to_string()])
        .args(["--market-regulation-port", &market_regulation.to_string()])
        .env("RUST_LOG", "warn");
    unused_departments_on_free_ports(&mut command)?;
    let mut departments =
        ChildGuard::spawn("departments", command, dir.join("departments.log"), true)?;
    for port in [tax, real_estate, public_security, market_regulation] {
        departments.wait_for_port(port)?;
    }
    let departments_pid = departments.pid();
    // What each run watches: the load generator, the proxy in between (if any), the department.
    let watched = |proxy: Option<(&'static str, Vec<u32>)>| {
        let mut watched = vec![Watched {
            role: "loadgen",
            pids: vec![bench_pid],
        }];
        watched.extend(proxy.map(|(role, pids)| Watched { role, pids }));
        watched.push(Watched {
            role: "departments",
            pids: vec![departments_pid],
        });
        watched
    };

    // a. Straight to the department.
    let direct_target = Target::Signed {
        url: format!("http://127.0.0.1:{tax}{QSCX_PATH}"),
    };
    let direct = measure("direct", direct_target, args, &watched(None), ticks).await?;

    // b. Through nginx as a plain reverse proxy.
    let nginx = match nginx_version() {
        None => {
            println!("nginx not found (apt-get install nginx): skipping the proxy row");
            Err("nginx not found (apt-get install nginx)".to_string())
        }
        Some(version) => {
            eprintln!("nginx: {version}, 1 worker process, upstream keepalive 64");
            let nginx_dir = dir.join("nginx");
            let conf = write_nginx_conf(&nginx_dir, nginx_port, tax)?;
            let (nginx, pids) = start_nginx(&nginx_dir, &conf, nginx_port).await?;
            let target = Target::Signed {
                url: format!("http://127.0.0.1:{nginx_port}{QSCX_PATH}"),
            };
            let runs = measure(
                "nginx",
                target,
                args,
                &watched(Some(("nginx", pids))),
                ticks,
            )
            .await?;
            drop(nginx);
            Ok(runs)
        }
    };

    // c. Through the gateway's HTTP stack alone: axum in, reqwest out, nothing in between.
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["--passthrough-listen", &passthrough_port.to_string()])
        .args(["--passthrough-upstream", &format!("http://127.0.0.1:{tax}")]);
    let mut passthrough =
        ChildGuard::spawn("pass-through", command, dir.join("passthrough.log"), true)?;
    passthrough.wait_for_port(passthrough_port)?;
    let passthrough_runs = measure(
        "pass-through",
        Target::Signed {
            url: format!("http://127.0.0.1:{passthrough_port}{QSCX_PATH}"),
        },
        args,
        &watched(Some(("pass-through", vec![passthrough.pid()]))),
        ticks,
    )
    .await?;
    drop(passthrough);

    // d. Through nginx + njs doing the tax adapter's work: the peer built without the gateway.
    let njs = match (nginx_version(), njs::module()) {
        (None, _) => {
            println!("nginx not found (apt-get install nginx): skipping the njs row");
            Err("nginx not found (apt-get install nginx)".to_string())
        }
        (Some(_), None) => {
            println!(
                "njs module not found (apt-get install libnginx-mod-http-js): skipping the njs row"
            );
            Err("njs module not found (apt-get install libnginx-mod-http-js)".to_string())
        }
        (Some(version), Some(module)) => {
            eprintln!(
                "nginx + njs: {version}, {}, 1 worker process, upstream keepalive 64",
                module.display()
            );
            let njs_dir = dir.join("njs");
            let key_sha256 = gateway_http::auth::sha256_hex(integration_tests::PORTAL_KEY);
            let settings = njs::Settings {
                portal_key_sha256: &key_sha256,
                app_key: APP_KEY,
                app_secret: std::str::from_utf8(APP_SECRET)?,
            };
            let conf = njs::write_conf(&njs_dir, &module, njs_port, tax, &settings)?;
            let (nginx, pids) = start_nginx(&njs_dir, &conf, njs_port).await?;
            let url = format!("http://127.0.0.1:{njs_port}/api/v1/lookups/tax.clearance");
            njs::check_keys(&url, integration_tests::PORTAL_KEY).await?;
            let runs = measure(
                "nginx + njs",
                Target::Gateway { url },
                args,
                &watched(Some(("nginx", pids))),
                ticks,
            )
            .await?;
            drop(nginx);
            Ok(runs)
        }
    };

    // e. Through the gateway and its tax adapter, as a child process so its memory is its own.
    let config = write_gateway_config(
        dir,
        root,
        adapters,
        &cert_dir,
        gateway_port,
        [tax, real_estate, public_security, market_regulation],
    )?;
    let mut command = Command::new(&bins.gateway);
    command
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env("RUST_LOG", "warn");
    let mut gateway = ChildGuard::spawn("gateway", command, dir.join("gateway.log"), true)?;
    gateway.wait_for_port(gateway_port)?;
    let gateway_target = Target::Gateway {
        url: format!("http://127.0.0.1:{gateway_port}/api/v1/lookups/tax.clearance"),
    };
    // Resident memory once started and loaded, before any lookup.
    let idle_rss_kib = memory_of(gateway.pid()).map_or(0, |(_, rss)| rss);
    let mut gateway_runs = measure(
        "gateway",
        gateway_target,
        args,
        &watched(Some(("gateway", vec![gateway.pid()]))),
        ticks,
    )
    .await?;
    let (peak_kib, after_rss_kib) = memory_of(gateway.pid())
        .context("reading the gateway's /proc/<pid>/status after the run")?;
    gateway_runs.loaded.memory = Some(MemoryReading {
        idle_rss_kib,
        peak_kib,
        after_rss_kib,
    });
    let warnings = std::fs::read_to_string(&gateway.log).unwrap_or_default();
    let warned = warnings.lines().filter(|l| l.contains("WARN")).count();
    if warned > 0 {
        eprintln!(
            "gateway logged {warned} warnings during the run; the last ones:\n{}",
            gateway.log_tail()
        );
    }
    drop(gateway);
    drop(departments);
    Ok(Lookups {
        direct,
        nginx,
        passthrough: passthrough_runs,
        njs,
        gateway: gateway_runs,
    })
}

/// Start nginx on `conf` (prefix `dir`) and wait for `port`; the guard and the pids whose CPU
/// time the row counts (the master and its worker).
async fn start_nginx(dir: &Path, conf: &Path, port: u16) -> anyhow::Result<(ChildGuard, Vec<u32>)> {
    let mut command = Command::new("nginx");
    command.arg("-c").arg(conf).arg("-p").arg(dir);
    let mut nginx = ChildGuard::spawn("nginx", command, dir.join("stdout.log"), true)?;
    nginx.wait_for_port(port)?;
    // The worker is forked after the port is bound; give it a moment to appear.
    let mut workers = children_of(nginx.pid());
    for _ in 0..50 {
        if !workers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        workers = children_of(nginx.pid());
    }
    let mut pids = vec![nginx.pid()];
    pids.extend(workers);
    Ok((nginx, pids))
}

fn nginx_version() -> Option<String> {
    let out = Command::new("nginx").arg("-v").output().ok()?;
    // nginx prints its version on stderr.
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Some(
        text.strip_prefix("nginx version: ")
            .unwrap_or(&text)
            .to_string(),
    )
}

/// A minimal reverse proxy: one worker (fair on a 2-core box shared with the load generator,
/// the departments and, in its own row, the gateway's runtime), keep-alive both ways, no logs.
fn write_nginx_conf(dir: &Path, listen: u16, tax: u16) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("logs"))?;
    let d = dir.display();
    let conf = format!(
        r#"# Written by the gateway benchmark: nginx as a plain reverse proxy to the tax department.
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

    upstream tax_department {{
        server 127.0.0.1:{tax};
        keepalive 64;
    }}

    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://tax_department;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// The gateway's config: all four departments (the demo catalogue names them all, and 社保,
/// left out here), the tax department signing with HMAC-SHA256 like the direct rows, a SQLite
/// store in the temp dir.
fn write_gateway_config(
    dir: &Path,
    root: &Path,
    adapters: &Path,
    certs: &Path,
    listen: u16,
    [tax, real_estate, public_security, market_regulation]: [u16; 4],
) -> anyhow::Result<PathBuf> {
    let catalogue = dir.join("catalogue.toml");
    std::fs::write(
        &catalogue,
        integration_tests::without_social_security(&std::fs::read_to_string(
            root.join("config/catalogue.toml"),
        )?),
    )?;
    let text = format!(
        r#"# Written by the gateway benchmark.
catalogue = "{catalogue}"

[server]
listen = "127.0.0.1:{listen}"

[store]
url = "sqlite://{store}"

[plugins]
dir = "{adapters}"
cache_dir = "{cache}"

[plugins.limits]
memory_mib = 64
cpu_ms = 1000
call_timeout_ms = 10000

[departments.tax]
name = "税务"
base_url = "http://127.0.0.1:{tax}"
adapter = "tax_adapter.wasm"
timeout_ms = 3000

[departments.tax.settings]
app-key = "gw-demo"
sign-method = "HMAC-SHA256"

[departments.tax.keys.app-secret]
kind = "hmac"
value = "file:tax-app-secret.txt"

[departments.real-estate]
name = "不动产登记"
base_url = "http://127.0.0.1:{real_estate}"
adapter = "real_estate_adapter.wasm"
timeout_ms = 3000

[departments.public-security]
name = "公安"
base_url = "https://localhost:{public_security}"
adapter = "public_security_adapter.wasm"
timeout_ms = 3000

[departments.public-security.tls]
ca = "{certs}/ca.pem"
client_cert = "{certs}/client.pem"
client_key = "{certs}/client-key.pem"

[departments.market-regulation]
name = "市场监管"
base_url = "http://127.0.0.1:{market_regulation}"
adapter = "market_regulation_adapter.wasm"
timeout_ms = 3000
poll_interval_ms = 5000

[departments.market-regulation.settings]
client-id = "gw-demo"
client-secret = "mr-demo-secret"

[departments.market-regulation.keys.callback-secret]
kind = "hmac"
value = "file:mr-callback-secret.txt"
"#,
        catalogue = catalogue.display(),
        store = dir.join("gateway.db").display(),
        adapters = adapters.display(),
        cache = root.join("target/component-cache").display(),
        certs = certs.display(),
    ) + &integration_tests::portal_client_toml();
    std::fs::write(dir.join("tax-app-secret.txt"), "tax-demo-secret\n")?;
    std::fs::write(dir.join("mr-callback-secret.txt"), "mr-callback-secret\n")?;
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

impl Lookups {
    /// Each row's runs, or why it was skipped.
    fn paths(&self) -> Vec<(&'static str, Result<&PathRuns, &str>)> {
        vec![
            ("direct → tax department (floor)", Ok(&self.direct)),
            (
                "nginx → tax department",
                self.nginx.as_ref().map_err(String::as_str),
            ),
            ("axum + reqwest pass-through → tax", Ok(&self.passthrough)),
            (
                "nginx + njs (adapter's work) → tax",
                self.njs.as_ref().map_err(String::as_str),
            ),
            ("gateway → tax adapter → tax", Ok(&self.gateway)),
        ]
    }

    fn nginx_loaded(&self) -> Option<&LoadRun> {
        self.nginx.as_ref().ok().map(|n| &n.loaded)
    }

    fn njs_loaded(&self) -> Option<&LoadRun> {
        self.njs.as_ref().ok().map(|n| &n.loaded)
    }

    fn gateway_vs_nginx(&self) -> Option<f64> {
        Some(self.gateway.loaded.throughput() / self.nginx_loaded()?.throughput())
    }

    fn p99_overhead_ms(&self) -> f64 {
        self.gateway.loaded.percentile_ms(99.0) - self.direct.loaded.percentile_ms(99.0)
    }

    /// The ratios against the targets, and the informative ones: (name, value, target, verdict).
    fn ratios(&self) -> Vec<(String, String, &'static str, &'static str)> {
        let direct = &self.direct.loaded;
        let gateway = &self.gateway.loaded;
        let mut rows = Vec::new();
        match self.gateway_vs_nginx() {
            Some(r) => rows.push((
                "gateway / nginx throughput".into(),
                format!("{r:.2}"),
                "≥ 0.80",
                verdict(r >= 0.80),
            )),
            None => rows.push((
                "gateway / nginx throughput".into(),
                "n/a".into(),
                "≥ 0.80",
                "no nginx",
            )),
        }
        match self.njs_loaded() {
            Some(njs) => {
                let r = gateway.throughput() / njs.throughput();
                rows.push((
                    "gateway / njs throughput".into(),
                    format!("{r:.2}"),
                    "≥ 1",
                    verdict(r >= 1.0),
                ));
            }
            None => rows.push((
                "gateway / njs throughput".into(),
                "n/a".into(),
                "≥ 1",
                "no njs",
            )),
        }
        let overhead = self.p99_overhead_ms();
        rows.push((
            "gateway p99 − direct p99".into(),
            format!("{overhead:.2} ms"),
            "≤ 1 ms",
            verdict(overhead <= 1.0),
        ));
        rows.push((
            "gateway / direct throughput".into(),
            format!("{:.2}", gateway.throughput() / direct.throughput()),
            "",
            "",
        ));
        if let Some(nginx) = self.nginx_loaded() {
            rows.push((
                "nginx / direct throughput".into(),
                format!("{:.2}", nginx.throughput() / direct.throughput()),
                "",
                "",
            ));
            rows.push((
                "nginx p99 − direct p99".into(),
                format!(
                    "{:.2} ms",
                    nginx.percentile_ms(99.0) - direct.percentile_ms(99.0)
                ),
                "",
                "",
            ));
        }
        if let Some(njs) = self.njs_loaded() {
            rows.push((
                "njs / direct throughput".into(),
                format!("{:.2}", njs.throughput() / direct.throughput()),
                "",
                "",
            ));
            rows.push((
                "njs p99 − direct p99".into(),
                format!(
                    "{:.2} ms",
                    njs.percentile_ms(99.0) - direct.percentile_ms(99.0)
                ),
                "",
                "",
            ));
            rows.push((
                "gateway p99 − njs p99".into(),
                format!(
                    "{:.2} ms",
                    gateway.percentile_ms(99.0) - njs.percentile_ms(99.0)
                ),
                "",
                "",
            ));
        }
        let passthrough = &self.passthrough.loaded;
        if let Some(nginx) = self.nginx_loaded() {
            rows.push((
                "pass-through / nginx throughput".into(),
                format!("{:.2}", passthrough.throughput() / nginx.throughput()),
                "",
                "",
            ));
        }
        rows.push((
            "gateway / pass-through throughput".into(),
            format!("{:.2}", gateway.throughput() / passthrough.throughput()),
            "",
            "",
        ));
        rows.push((
            "pass-through p99 − direct p99".into(),
            format!(
                "{:.2} ms",
                passthrough.percentile_ms(99.0) - direct.percentile_ms(99.0)
            ),
            "",
            "",
        ));
        if let (Some(d), Some(g)) = (&self.direct.unloaded, &self.gateway.unloaded) {
            rows.push((
                "unloaded: gateway p50 − direct p50".into(),
                format!("{:.3} ms", g.percentile_ms(50.0) - d.percentile_ms(50.0)),
                "",
                "",
            ));
            rows.push((
                "unloaded: gateway p99 − direct p99".into(),
                format!("{:.3} ms", g.percentile_ms(99.0) - d.percentile_ms(99.0)),
                "",
                "",
            ));
        }
        if let Some(m) = gateway.memory {
            rows.push((
                "gateway peak RSS (VmHWM)".into(),
                format!("{:.1} MiB", m.peak_kib as f64 / 1024.0),
                "",
                "",
            ));
            rows.push((
                "gateway RSS idle after start / after the run".into(),
                format!(
                    "{:.1} / {:.1} MiB",
                    m.idle_rss_kib as f64 / 1024.0,
                    m.after_rss_kib as f64 / 1024.0
                ),
                "",
                "",
            ));
        }
        rows
    }

    fn table(&self, args: &Args) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Lookup tax.clearance: {} concurrent workers, {} s measured after {} s warm-up, \
             HTTP/1.1 keep-alive",
            args.concurrency, args.seconds, args.warmup_seconds
        );
        let header = |out: &mut String| {
            let _ = writeln!(
                out,
                "{:<34} {:>9} {:>9} {:>9} {:>9} {:>8}   CPU ms per request in the window; machine idle",
                "path", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
            );
        };
        let row = |out: &mut String, name: &str, r: &LoadRun| {
            let _ = writeln!(
                out,
                "{name:<34} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>8}   {}",
                r.throughput(),
                r.percentile_ms(50.0),
                r.percentile_ms(99.0),
                r.percentile_ms(100.0),
                r.errors,
                r.cpu_summary()
            );
        };
        header(&mut out);
        for (name, runs) in self.paths() {
            match runs {
                Ok(runs) => row(&mut out, name, &runs.loaded),
                Err(why) => {
                    let _ = writeln!(out, "{name:<34} skipped: {why}");
                }
            }
        }
        if args.unloaded_seconds > 0 {
            let _ = writeln!(
                out,
                "\nUnloaded (1 worker, {} s measured): latency without queueing",
                args.unloaded_seconds
            );
            header(&mut out);
            for (name, runs) in self.paths() {
                if let Some(r) = runs.ok().and_then(|r| r.unloaded.as_ref()) {
                    row(&mut out, name, r);
                }
            }
        }
        let _ = writeln!(out, "\nRatios");
        for (name, value, target, verdict) in self.ratios() {
            let target = if target.is_empty() {
                String::new()
            } else {
                format!("target {target}")
            };
            let _ = writeln!(out, "  {name:<46} {value:>14}   {target:<14} {verdict}");
        }
        out
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

// ---------------------------------------------------------------------------------------------
// 2. One adapter instantiation + call
// ---------------------------------------------------------------------------------------------

struct Timing {
    lookup: &'static str,
    /// Nanoseconds per call, sorted.
    samples: Vec<u64>,
}

impl Timing {
    fn mean_us(&self) -> f64 {
        self.samples.iter().sum::<u64>() as f64 / self.samples.len().max(1) as f64 / 1e3
    }

    fn percentile_us(&self, p: f64) -> f64 {
        percentile(&self.samples, p) as f64 / 1e3
    }
}

struct Instantiation {
    calls: usize,
    timings: Vec<Timing>,
}

/// The hostile adapter loaded in-process exactly as the gateway loads an adapter, then timed
/// over sequential lookups that never call the host: each is a fresh store, instantiation from
/// the pre-instantiated component, the call, and the store's teardown.
async fn instantiation_benchmark(
    args: &Args,
    adapters: &Path,
    dir: &Path,
) -> anyhow::Result<Instantiation> {
    // A config with only the hostile department, pointed at a closed port (no call reaches it),
    // and an empty catalogue; the public config parser builds the department's connection.
    let hostile_dir = dir.join("hostile");
    std::fs::create_dir_all(&hostile_dir)?;
    std::fs::write(hostile_dir.join("catalogue.toml"), "")?;
    let config_path = hostile_dir.join("gateway.toml");
    let text = format!(
        r#"catalogue = "catalogue.toml"

[server]
listen = "127.0.0.1:0"

[store]
url = "sqlite://{store}"

[plugins]
dir = "{adapters}"

[departments.hostile]
name = "hostile test adapter"
base_url = "http://127.0.0.1:9"
adapter = "hostile_adapter.wasm"
"#,
        store = hostile_dir.join("unused.db").display(),
        adapters = adapters.display(),
    );
    let config = gateway_base::config::Config::parse(&config_path, &text)?;
    let dept_config = &config.departments["hostile"];
    let department = Arc::new(Department::new(
        "hostile",
        gateway_plugins::connection::Connection::new(&config, dept_config)?,
        dept_config.settings.clone(),
        &Limits::default(),
    ));
    let bytes = std::fs::read(adapters.join("hostile_adapter.wasm"))?;
    let engine = PluginEngine::new(64, None)?;
    eprintln!("instantiation: compiling hostile_adapter.wasm …");
    let adapter = LoadedAdapter::load(&engine, &bytes, department, Limits::default()).await?;

    let mut timings = Vec::new();
    for lookup in ["hostile.echo", "hostile.state"] {
        eprintln!("instantiation: {} sequential {lookup} calls …", args.calls);
        // Warm-up: page in the pool slots and the code.
        for _ in 0..(args.calls / 20).max(100) {
            adapter.lookup(lookup, "{}").await?;
        }
        let mut samples = Vec::with_capacity(args.calls);
        for _ in 0..args.calls {
            let started = Instant::now();
            let answer = adapter.lookup(lookup, "{}").await?;
            samples.push(started.elapsed().as_nanos() as u64);
            if lookup == "hostile.state" && answer != r#"{"count":1}"# {
                bail!("hostile.state answered {answer}: an instance was reused");
            }
        }
        samples.sort_unstable();
        timings.push(Timing { lookup, samples });
    }
    Ok(Instantiation {
        calls: args.calls,
        timings,
    })
}

impl Instantiation {
    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Adapter instantiation + call (hostile adapter, in-process, {} sequential calls each, \
             after a warm-up; target {INSTANTIATION_TARGET_US} µs)",
            self.calls
        );
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>9} {:>9} {:>9}   {:<12} {:<12}",
            "lookup", "mean µs", "p50 µs", "p99 µs", "max µs", "mean ≤ 50", "p99 ≤ 50"
        );
        for t in &self.timings {
            let _ = writeln!(
                out,
                "{:<16} {:>9.1} {:>9.1} {:>9.1} {:>9.1}   {:<12} {:<12}",
                t.lookup,
                t.mean_us(),
                t.percentile_us(50.0),
                t.percentile_us(99.0),
                t.percentile_us(100.0),
                verdict(t.mean_us() <= INSTANTIATION_TARGET_US),
                verdict(t.percentile_us(99.0) <= INSTANTIATION_TARGET_US),
            );
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The Markdown summary
// ---------------------------------------------------------------------------------------------

fn summary_markdown(
    args: &Args,
    machine: &Machine,
    lookups: &Lookups,
    instantiation: &Instantiation,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Run: `cargo xtask bench --concurrency {} --seconds {} --warmup-seconds {} \
         --unloaded-seconds {} --calls {}`; {} cores ({}), {:.0} GiB; load generator, \
         departments, nginx, pass-through, nginx + njs and gateway all on this one machine.\n",
        args.concurrency,
        args.seconds,
        args.warmup_seconds,
        args.unloaded_seconds,
        args.calls,
        machine.cores,
        machine.cpu,
        machine.memory_gib,
    );
    let header = |md: &mut String| {
        let _ = writeln!(
            md,
            "| path | req/s | p50 ms | p99 ms | max ms | errors | CPU ms per request; machine idle |"
        );
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    };
    let row = |md: &mut String, name: &str, r: &LoadRun| {
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
            r.throughput(),
            r.percentile_ms(50.0),
            r.percentile_ms(99.0),
            r.percentile_ms(100.0),
            r.errors,
            r.cpu_summary()
        );
    };
    let _ = writeln!(
        md,
        "Loaded: {} workers, {} s measured after {} s warm-up.\n",
        args.concurrency, args.seconds, args.warmup_seconds
    );
    header(&mut md);
    for (name, runs) in lookups.paths() {
        match runs {
            Ok(runs) => row(&mut md, name, &runs.loaded),
            Err(why) => {
                let _ = writeln!(md, "| {name} | skipped ({why}) | | | | | |");
            }
        }
    }
    if args.unloaded_seconds > 0 {
        let _ = writeln!(
            md,
            "\nUnloaded: 1 worker, {} s measured after {} s warm-up.\n",
            args.unloaded_seconds, args.warmup_seconds
        );
        header(&mut md);
        for (name, runs) in lookups.paths() {
            if let Some(r) = runs.ok().and_then(|r| r.unloaded.as_ref()) {
                row(&mut md, name, r);
            }
        }
    }
    let _ = writeln!(md, "\n| figure | value | target | |");
    let _ = writeln!(md, "| --- | ---: | --- | --- |");
    for (name, value, target, verdict) in lookups.ratios() {
        let _ = writeln!(md, "| {name} | {value} | {target} | {verdict} |");
    }
    let _ = writeln!(
        md,
        "\n| adapter instantiation + call ({} calls) | mean µs | p50 µs | p99 µs | max µs | \
         target 50 µs (mean / p99) |",
        instantiation.calls
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | --- |");
    for t in &instantiation.timings {
        let _ = writeln!(
            md,
            "| `{}` | {:.1} | {:.1} | {:.1} | {:.1} | {} / {} |",
            t.lookup,
            t.mean_us(),
            t.percentile_us(50.0),
            t.percentile_us(99.0),
            t.percentile_us(100.0),
            verdict(t.mean_us() <= INSTANTIATION_TARGET_US),
            verdict(t.percentile_us(99.0) <= INSTANTIATION_TARGET_US),
        );
    }
    md
}
