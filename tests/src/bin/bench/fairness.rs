//! 3. Fairness: one department's hostile adapter against another department's lookups.
//!
//! The gateway (release binary, its own process) serves the four demo departments and the
//! hostile test adapter as department `hostile` (its default limits: 64 instances, `max_running`
//! half the cores, 1 s of CPU, 32 MiB each here), with `plugins.memory_budget_mib` set. The
//! victim is the tax department's `tax.clearance` lookup, sent at a fixed rate (open loop: the
//! same offered load in every phase, each request timed on its own). Each phase runs the victim
//! alone or beside one load, each hostile worker sending its call again as soon as the last one
//! ends (after 100 ms when refused busy: a hostile caller does not wait out `Retry-After`):
//!
//! - `baseline`: the victim alone;
//! - `one core busy`: a busy loop in a process of its own, outside the gateway — what losing
//!   one core costs the victim on this machine, whoever takes it (the reference for `loops`,
//!   whose adapter may take one core of two);
//! - `memory churn`: a process of its own, outside the gateway, that maps 32 MiB, writes every
//!   page and unmaps it, over and over on one core — what a memory bomb's work costs the victim
//!   on this machine when it is not the gateway's (the reference for `bombs` and `big`);
//! - `loops`: 16 workers calling `hostile.loop` (an endless loop, ended by the CPU limit);
//! - `bombs`: 32 workers calling `hostile.memory` (allocates until its memory limit);
//! - `big`: 4 workers calling `hostile.big` for 20 MB answers (over `max_result_bytes`);
//! - `all`: the three together.
//!
//! For each phase: the victim's p50/p99/max and errors, what the hostile calls got back (and how
//! many were still running when the phase ended), the CPU the gateway used and the CPU other
//! processes on the machine used meanwhile (anything but the gateway, the departments and this
//! process: other work skews the figures), and the gateway's resident set when the phase
//! started, its peak (sampled every 20 ms from `/proc/<pid>/status`, `VmRSS`) and what it held
//! once the phase's calls had drained, each over the gateway's own footprint: its resident set
//! once it has served the victim alone (`baseline`), which holds what lookups cost it whoever
//! else calls.
//! Targets: the victim's p99 within 2× its baseline; the peak within that footprint plus the
//! configured budget.

use super::{
    Binaries, ChildGuard, Machine, Target, clock_ticks, cpu_seconds, free_ports, machine_cpu,
    memory_of, percentile, verdict,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `plugins.memory_budget_mib` of the gateway under test.
pub(super) const BUDGET_MIB: u32 = 256;
const MIB: f64 = 1024.0 * 1024.0;
/// Victim lookups per second.
const VICTIM_RATE: u64 = 100;

/// One hostile load: how many workers call which lookup with which query.
struct Hostile {
    workers: usize,
    lookup: &'static str,
    query: &'static str,
}

const LOOPS: Hostile = Hostile {
    workers: 16,
    lookup: "hostile.loop",
    query: "{}",
};
const BOMBS: Hostile = Hostile {
    workers: 32,
    lookup: "hostile.memory",
    query: "{}",
};
const BIG: Hostile = Hostile {
    workers: 4,
    lookup: "hostile.big",
    query: r#"{"bytes": 20000000}"#,
};

/// What runs beside the victim in one phase.
enum Load {
    Nothing,
    /// A busy loop in a process of its own, outside the gateway.
    CoreBusy,
    /// Memory mapped, written and unmapped over and over by a process of its own.
    MemoryChurn,
    Hostile(Vec<&'static Hostile>),
}

impl Load {
    fn describe(&self) -> String {
        match self {
            Load::Nothing => "—".into(),
            Load::CoreBusy => "`sh -c 'while :; do :; done'` (not the gateway)".into(),
            Load::MemoryChurn => "32 MiB mapped, written, unmapped, again (not the gateway)".into(),
            Load::Hostile(loads) => loads
                .iter()
                .map(|h| format!("{} × `{}`", h.workers, h.lookup))
                .collect::<Vec<_>>()
                .join(" + "),
        }
    }
}

/// What one phase measured.
pub(super) struct Phase {
    name: &'static str,
    load: String,
    victim_ms: Vec<u64>,
    victim_errors: u64,
    first_error: Option<String>,
    /// Hostile answers by status (0: no answer, the request failed).
    hostile: BTreeMap<u16, u64>,
    /// Hostile requests still waiting for their answer when the phase ended.
    hostile_in_flight: u64,
    /// Cores the gateway used on average during the phase.
    gateway_cores: f64,
    /// Cores used by other processes on the machine (not the gateway, the departments, this
    /// process or the phase's own outside process) on average during the phase.
    other_cores: f64,
    start_rss_kib: u64,
    peak_rss_kib: u64,
    /// Once the phase's calls were cancelled and had drained.
    after_rss_kib: u64,
    /// The budget's own count then: bytes held by live instances, and kept resident by the
    /// pool in unused slots (`gateway_adapter_memory_bytes`, `…_pool_resident_bytes`).
    after_budget: (f64, f64),
}

impl Phase {
    fn p(&self, p: f64) -> f64 {
        percentile(&self.victim_ms, p) as f64 / 1e6
    }
}

/// The fairness figures.
pub(super) struct Fairness {
    seconds: u64,
    idle_rss_kib: u64,
    phases: Vec<Phase>,
    /// The gateway's own counters at the end: refusals and waits by bound, hostile outcomes.
    counters: Vec<String>,
}

impl Fairness {
    fn baseline_p99(&self) -> f64 {
        self.phases[0].p(99.0)
    }

    /// The gateway's footprint once it has served the victim alone (`baseline`, drained).
    fn footprint_kib(&self) -> u64 {
        self.phases[0].after_rss_kib
    }

    fn budget_kib(&self) -> u64 {
        u64::from(BUDGET_MIB) * 1024
    }

    /// The table for the terminal and for BENCHMARKS.md alike (Markdown).
    pub(super) fn markdown(&self, machine: &Machine) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Fairness: `tax.clearance` at {VICTIM_RATE}/s (open loop) beside the hostile \
             department's adapter; {} s per phase after 1 s warm-up; `memory_budget_mib = \
             {BUDGET_MIB}`; hostile limits 64 instances, `max_running` {} (half of {} cores), \
             32 MiB, 1 s CPU, 30 s per call; gateway RSS {:.0} MiB idle, {:.0} MiB once it has \
             served the victim alone (its footprint, against which the phases' memory is read).\n",
            self.seconds,
            (machine.cores / 2).max(1),
            machine.cores,
            self.idle_rss_kib as f64 / 1024.0,
            self.footprint_kib() as f64 / 1024.0,
        );
        let _ = writeln!(
            md,
            "| phase | beside the victim | victim p50 ms | p99 ms | max ms | errors | p99 ≤ 2× \
             baseline | hostile answers | gateway CPU (cores) | other processes' CPU (cores) | \
             RSS over the footprint, MiB: start → peak → drained | budget's count drained, MiB: \
             instances + pool | peak ≤ footprint + budget |"
        );
        let _ = writeln!(
            md,
            "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | --- | --- |"
        );
        let limit = 2.0 * self.baseline_p99();
        let footprint = self.footprint_kib();
        let over = |kib: u64| (kib as f64 - footprint as f64) / 1024.0;
        for phase in &self.phases {
            let mut answers: Vec<String> = phase
                .hostile
                .iter()
                .map(|(status, n)| match status {
                    0 => format!("{n}× no answer"),
                    status => format!("{n}× {status}"),
                })
                .collect();
            if phase.hostile_in_flight > 0 {
                answers.push(format!("{} still running", phase.hostile_in_flight));
            }
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {:.2} | {:+.0} → {:+.0} → {:+.0} | {:.0} + {:.0} | {} |",
                phase.name,
                phase.load,
                phase.p(50.0),
                phase.p(99.0),
                phase.p(100.0),
                phase.victim_errors,
                if phase.name == "baseline" {
                    "—".to_string()
                } else {
                    format!("{} ({:.2} ms)", verdict(phase.p(99.0) <= limit), limit)
                },
                if answers.is_empty() {
                    "—".into()
                } else {
                    answers.join(", ")
                },
                phase.gateway_cores,
                phase.other_cores,
                over(phase.start_rss_kib),
                over(phase.peak_rss_kib),
                over(phase.after_rss_kib),
                phase.after_budget.0 / MIB,
                phase.after_budget.1 / MIB,
                verdict(phase.peak_rss_kib <= footprint + self.budget_kib()),
            );
        }
        for phase in &self.phases {
            if let Some(error) = &phase.first_error {
                let _ = writeln!(md, "\n{}: first victim error: {error}", phase.name);
            }
        }
        if !self.counters.is_empty() {
            let _ = writeln!(md, "\nThe gateway's counters at the end:\n");
            for line in &self.counters {
                let _ = writeln!(md, "    {line}");
            }
        }
        md
    }
}

/// Run the fairness phases against a gateway of its own.
pub(super) async fn run(
    seconds: u64,
    root: &Path,
    bins: &Binaries,
    adapters: &Path,
    dir: &Path,
) -> anyhow::Result<Fairness> {
    let ports = free_ports(7)?;
    let (tax, real_estate, public_security, market_regulation) =
        (ports[0], ports[1], ports[2], ports[3]);
    let (gateway_port, admin_port, nobody) = (ports[4], ports[5], ports[6]);
    let dir = dir.join("fairness");
    std::fs::create_dir_all(&dir)?;
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
    super::unused_departments_on_free_ports(&mut command)?;
    let mut departments =
        ChildGuard::spawn("departments", command, dir.join("departments.log"), false)?;
    for port in [tax, real_estate, public_security, market_regulation] {
        departments.wait_for_port(port)?;
    }
    let config = super::write_gateway_config(
        &dir,
        root,
        adapters,
        &cert_dir,
        gateway_port,
        [tax, real_estate, public_security, market_regulation],
    )?;
    let mut text = std::fs::read_to_string(&config)?.replacen(
        "[plugins]\n",
        &format!("[plugins]\nmemory_budget_mib = {BUDGET_MIB}\n"),
        1,
    );
    let _ = write!(
        text,
        r#"
[departments.hostile]
name = "hostile test adapter"
base_url = "http://127.0.0.1:{nobody}"
adapter = "hostile_adapter.wasm"
timeout_ms = 1000

[departments.hostile.limits]
memory_mib = 32
cpu_ms = 1000
call_timeout_ms = 30000
max_instances = 64

[admin]
listen = "127.0.0.1:{admin_port}"
[[admin.operators]]
id = "{operator}"
token_sha256 = "{token}"
"#,
        operator = integration_tests::OPERATOR,
        token = gateway_http::auth::sha256_hex(integration_tests::OPERATOR_TOKEN),
    );
    std::fs::write(&config, text)?;
    let mut command = Command::new(&bins.gateway);
    command
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .env("RUST_LOG", "warn");
    let mut gateway = ChildGuard::spawn("gateway", command, dir.join("gateway.log"), false)?;
    gateway.wait_for_port(gateway_port)?;
    let base = format!("http://127.0.0.1:{gateway_port}");
    let victim = Target::Gateway {
        url: format!("{base}/api/v1/lookups/tax.clearance"),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    super::sanity_check("fairness victim", &victim).await?;
    // Idle: started, every adapter loaded, one lookup answered, and quiet (components compiled
    // in the background at start are done).
    settle(gateway.pid()).await;
    let idle_rss_kib = memory_of(gateway.pid()).map_or(0, |(_, rss)| rss);
    let processes = Processes {
        gateway: gateway.pid(),
        departments: departments.pid(),
        metrics: format!("http://127.0.0.1:{admin_port}/metrics"),
    };

    let phases: [(&'static str, Load); 7] = [
        ("baseline", Load::Nothing),
        ("one core busy", Load::CoreBusy),
        ("memory churn", Load::MemoryChurn),
        ("loops", Load::Hostile(vec![&LOOPS])),
        ("bombs", Load::Hostile(vec![&BOMBS])),
        ("big", Load::Hostile(vec![&BIG])),
        ("all", Load::Hostile(vec![&LOOPS, &BOMBS, &BIG])),
    ];
    let mut measured = Vec::new();
    for (name, load) in phases {
        eprintln!("fairness: {name}");
        let phase = run_phase(
            name, &load, &client, &base, &victim, &processes, seconds, &dir,
        )
        .await?;
        measured.push(phase);
    }
    let metrics = metrics(&client, &processes.metrics).await;
    let counters = metrics
        .lines()
        .filter(|l| {
            (l.starts_with("gateway_adapter_refusals_total")
                || l.starts_with("gateway_adapter_waits_total")
                || l.starts_with("gateway_adapter_moved_total")
                || l.starts_with("gateway_adapter_calls_total{department=\"hostile\""))
                && !l.starts_with('#')
        })
        .map(str::to_string)
        .collect();
    drop(gateway);
    drop(departments);
    Ok(Fairness {
        seconds,
        idle_rss_kib,
        phases: measured,
        counters,
    })
}

/// The `memory churn` phase's process: 32 MiB mapped, every page written, unmapped, forever
/// (glibc maps an allocation this large on its own and unmaps it when freed).
pub(super) fn churn_memory() -> ! {
    const SIZE: usize = 32 << 20;
    loop {
        let mut block = vec![0u8; SIZE];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&block);
    }
}

/// Wait (30 s at most) until a process uses under 5 % of a core over a second.
async fn settle(pid: u32) {
    let ticks = clock_ticks();
    for _ in 0..30 {
        let before = cpu_seconds(pid, ticks).unwrap_or(0.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if cpu_seconds(pid, ticks).unwrap_or(0.0) - before < 0.05 {
            return;
        }
    }
}

/// The processes whose CPU a phase tells apart from other work on the machine.
struct Processes {
    gateway: u32,
    departments: u32,
    /// The gateway's `/metrics` (admin listener).
    metrics: String,
}

/// The gateway's Prometheus text (empty when it cannot be read).
async fn metrics(client: &reqwest::Client, url: &str) -> String {
    let response = client
        .get(url)
        .bearer_auth(integration_tests::OPERATOR_TOKEN)
        .send()
        .await;
    match response {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The value of an unlabelled gauge in Prometheus text (0 when absent).
fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// CPU seconds so far: the gateway's, ours (departments, this process, `extra`), the machine's
/// busy time.
fn cpu_now(processes: &Processes, extra: Option<u32>, ticks: f64) -> (f64, f64, f64) {
    let of = |pid: u32| cpu_seconds(pid, ticks).unwrap_or(0.0);
    let ours = of(processes.departments) + of(std::process::id()) + extra.map_or(0.0, of);
    let busy = machine_cpu(ticks).map_or(0.0, |(busy, _)| busy);
    (of(processes.gateway), ours, busy)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one phase's settings, each used once"
)]
async fn run_phase(
    name: &'static str,
    load: &Load,
    client: &reqwest::Client,
    base: &str,
    victim: &Target,
    processes: &Processes,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<Phase> {
    let pid = processes.gateway;
    let start_rss_kib = memory_of(pid).map_or(0, |(_, rss)| rss);
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<BTreeMap<u16, u64>>> = Arc::default();
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    let mut outsider = None;
    match load {
        Load::Nothing => {}
        Load::CoreBusy => {
            let mut command = Command::new("sh");
            command.args(["-c", "while :; do :; done"]);
            outsider = Some(ChildGuard::spawn(
                "busy loop",
                command,
                dir.join("busy-loop.log"),
                false,
            )?);
        }
        Load::MemoryChurn => {
            let mut command = Command::new(std::env::current_exe()?);
            command.arg("--memory-churn");
            outsider = Some(ChildGuard::spawn(
                "memory churn",
                command,
                dir.join("memory-churn.log"),
                false,
            )?);
        }
        Load::Hostile(loads) => {
            for load in loads {
                for _ in 0..load.workers {
                    let (client, stop, answers, in_flight) = (
                        client.clone(),
                        stop.clone(),
                        answers.clone(),
                        in_flight.clone(),
                    );
                    let url = format!("{base}/api/v1/lookups/{}", load.lookup);
                    let query = load.query;
                    workers.push(tokio::spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            in_flight.fetch_add(1, Ordering::Relaxed);
                            let status = client
                                .post(&url)
                                .header("content-type", "application/json")
                                .header("x-api-key", integration_tests::PORTAL_KEY)
                                .header("x-lookup-purpose", integration_tests::LOOKUP_PURPOSE)
                                .header("x-clerk-id", integration_tests::CLERK)
                                .body(query)
                                .timeout(Duration::from_secs(60))
                                .send()
                                .await
                                .map(|r| r.status().as_u16())
                                .unwrap_or(0);
                            in_flight.fetch_sub(1, Ordering::Relaxed);
                            *answers.lock().unwrap().entry(status).or_default() += 1;
                            if status == 503 {
                                // Refused busy: back after a moment, not after Retry-After.
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }));
                }
            }
        }
    }
    let busy_pid = outsider.as_ref().map(ChildGuard::pid);
    // The resident set, sampled until the phase ends.
    let peak = Arc::new(AtomicU64::new(start_rss_kib));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some((_, rss)) = memory_of(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Warm-up: the load reaches its steady state (instances running, memory spent).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = clock_ticks();
    let cpu_before = cpu_now(processes, busy_pid, ticks);
    let measuring = Instant::now();
    // The victim: one request every 1/rate s, each on a task of its own, timed alone.
    let results: Arc<Mutex<Vec<Result<u64, String>>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / VICTIM_RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut sent = Vec::new();
    while Instant::now() < end {
        tick.tick().await;
        let (client, victim, results) = (client.clone(), victim.clone(), results.clone());
        sent.push(tokio::spawn(async move {
            let started = Instant::now();
            let outcome = match victim.request(&client).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(body) if victim.succeeded(status, &body) => {
                            Ok(started.elapsed().as_nanos() as u64)
                        }
                        Ok(body) => Err(format!(
                            "HTTP {status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(200)])
                        )),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            results.lock().unwrap().push(outcome);
        }));
    }
    for request in sent {
        let _ = request.await;
    }
    let cpu_after = cpu_now(processes, busy_pid, ticks);
    let elapsed = measuring.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    drop(outsider);
    // Hostile calls in flight are cancelled (the gateway drops a call whose caller is gone).
    for worker in workers {
        worker.abort();
    }
    let hostile_in_flight = in_flight.load(Ordering::Relaxed);
    // Let what the phase left end and its memory go back before reading what stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_rss_kib = memory_of(pid).map_or(0, |(_, rss)| rss);
    let counted = metrics(client, &processes.metrics).await;

    let after_budget = (
        gauge(&counted, "gateway_adapter_memory_bytes"),
        gauge(&counted, "gateway_adapter_pool_resident_bytes"),
    );

    let results = std::mem::take(&mut *results.lock().unwrap());
    let mut victim_ms: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .copied()
        .collect();
    victim_ms.sort_unstable();
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let gateway_cores = (cpu_after.0 - cpu_before.0) / elapsed;
    let all_cores = (cpu_after.2 - cpu_before.2) / elapsed;
    let ours = (cpu_after.1 - cpu_before.1) / elapsed;
    let hostile_answers = answers.lock().unwrap().clone();
    Ok(Phase {
        name,
        load: load.describe(),
        victim_ms,
        victim_errors: errors.len() as u64,
        first_error: errors.first().map(|e| e.to_string()),
        hostile: hostile_answers,
        hostile_in_flight,
        gateway_cores,
        other_cores: (all_cores - gateway_cores - ours).max(0.0),
        start_rss_kib,
        peak_rss_kib: peak.load(Ordering::Relaxed),
        after_rss_kib,
        after_budget,
    })
}
