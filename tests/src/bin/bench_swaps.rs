//! Hot-swap benchmark: the same lookup load with and without repeated adapter swaps.
//!
//! Reports failed requests (must be 0), the time from an activation request to the first call
//! the new version served, and throughput with swaps against the same load without.
//!
//! Run with `cargo xtask bench` (it builds the adapters and runs this in release). Flags:
//! `--seconds N` (each phase, default 10), `--concurrency N` (default 16), `--swap-ms N`
//! (time between swaps, default 200).

use anyhow::Context;
use integration_tests::{Env, Setup, adapters_dir, component_variant as variant};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    seconds: u64,
    concurrency: usize,
    swap_ms: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        seconds: 10,
        concurrency: 16,
        swap_ms: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: u64 = it
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--seconds" => args.seconds = value,
            "--concurrency" => args.concurrency = value as usize,
            "--swap-ms" => args.swap_ms = value,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// Requests served and failed by one load phase.
#[derive(Default)]
struct Counts {
    served: AtomicU64,
    failed: AtomicU64,
}

/// Run `concurrency` clients against the tax clearance lookup until `running` turns false.
fn start_load(
    env: &Env,
    concurrency: usize,
    running: Arc<AtomicBool>,
    counts: Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..concurrency)
        .map(|_| {
            let url = format!("{}/api/v1/lookups/tax.clearance", env.gateway.url());
            let http = env.http.clone();
            let (running, counts) = (running.clone(), counts.clone());
            tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    let ok = http
                        .post(&url)
                        .json(&json!({"taxpayer_id": "91350100M000100Y43"}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    let counter = if ok { &counts.served } else { &counts.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

async fn admin(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<Value> {
    let mut request =
        integration_tests::admin_client().request(method, format!("{}{path}", env.admin_url()));
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let env = Env::start_with(Setup {
        admin: true,
        ..Setup::default()
    })
    .await?;
    let tax = std::fs::read(adapters_dir().join("tax_adapter.wasm"))?;
    let versions = [variant(&tax, "a"), variant(&tax, "b")];
    let mut digests = Vec::new();
    for v in &versions {
        let pushed = admin(
            &env,
            reqwest::Method::POST,
            "/admin/v1/adapters",
            Some(v.clone()),
        )
        .await?;
        digests.push(
            pushed["version"]["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let phase = Duration::from_secs(args.seconds);

    // Without swaps.
    let running = Arc::new(AtomicBool::new(true));
    let steady = Arc::new(Counts::default());
    let clients = start_load(&env, args.concurrency, running.clone(), steady.clone());
    tokio::time::sleep(phase).await;
    running.store(false, Ordering::Relaxed);
    for client in clients {
        client.await?;
    }

    // With a swap every `swap_ms`, alternating two versions.
    let running = Arc::new(AtomicBool::new(true));
    let swapping = Arc::new(Counts::default());
    let clients = start_load(&env, args.concurrency, running.clone(), swapping.clone());
    let started = Instant::now();
    let mut to_first_call = Vec::new();
    let mut activation_answers = Vec::new();
    let mut swaps = 0usize;
    while started.elapsed() < phase {
        let digest = &digests[swaps % 2];
        let asked_at = now_ms();
        let asked = Instant::now();
        admin(
            &env,
            reqwest::Method::POST,
            "/admin/v1/adapters/tax/activate",
            Some(serde_json::to_vec(&json!({"digest": digest}))?),
        )
        .await?;
        activation_answers.push(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(args.swap_ms)).await;
        let status = admin(&env, reqwest::Method::GET, "/admin/v1/adapters/tax", None).await?;
        let first = status["active"]["first_call_ms"].as_i64().unwrap_or(0);
        if status["active"]["digest"] == json!(digest) && first > 0 {
            to_first_call.push(Duration::from_millis((first - asked_at).max(0) as u64));
        }
        swaps += 1;
    }
    running.store(false, Ordering::Relaxed);
    for client in clients {
        client.await?;
    }

    let rate = |c: &Counts| c.served.load(Ordering::Relaxed) as f64 / phase.as_secs_f64();
    to_first_call.sort();
    activation_answers.sort();
    let pick = |v: &[Duration], p: f64| {
        v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "hot swaps: {} clients, {} s per phase, a swap every {} ms",
        args.concurrency, args.seconds, args.swap_ms
    );
    println!(
        "  without swaps: {:.0} req/s, {} failed",
        rate(&steady),
        steady.failed.load(Ordering::Relaxed)
    );
    println!(
        "  with {swaps} swaps: {:.0} req/s, {} failed  (ratio {:.2})",
        rate(&swapping),
        swapping.failed.load(Ordering::Relaxed),
        rate(&swapping) / rate(&steady).max(1.0)
    );
    println!(
        "  activation answered in p50 {:.1} ms, max {:.1} ms",
        pick(&activation_answers, 0.5),
        pick(&activation_answers, 1.0)
    );
    println!(
        "  activation request to first call served by the new version: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} swaps measured)",
        pick(&to_first_call, 0.5),
        pick(&to_first_call, 0.99),
        pick(&to_first_call, 1.0),
        to_first_call.len()
    );
    anyhow::ensure!(
        steady.failed.load(Ordering::Relaxed) + swapping.failed.load(Ordering::Relaxed) == 0,
        "requests failed"
    );
    Ok(())
}
