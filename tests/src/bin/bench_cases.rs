//! Case benchmarks: how many applications the gateway accepts per second at the durability the
//! API promises (SQLite, and PostgreSQL when `GATEWAY_TEST_POSTGRES_URL` is set), and how long a
//! 企业开办 takes end to end against the sum and the maximum of its departments' latencies.
//!
//! Run with `cargo xtask bench` (it builds the adapters and runs this in release). Flags:
//! `--seconds N` (acceptance run length, default 10), `--concurrency N` (default 32),
//! `--cases N` (企业开办 applications, default 40), `--latency-ms N` (added by each department,
//! default 200).

use anyhow::Context;
use integration_tests::{Env, Setup};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    seconds: u64,
    concurrency: usize,
    cases: usize,
    latency_ms: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        seconds: 10,
        concurrency: 32,
        cases: 40,
        latency_ms: 200,
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
            "--cases" => args.cases = value as usize,
            "--latency-ms" => args.latency_ms = value,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A seal filing whose enterprise fields vary, so no two are the same request.
fn seal_form(n: u64) -> Value {
    json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "seal_types": [format!("合同专用章{n}")]
    })
}

/// Applications accepted per second: each is reviewed (schema, identifiers, the adapter's own
/// `validate` in a fresh wasm instance) and committed with its delivery row before the 202.
async fn acceptance(label: &str, args: &Args) -> anyhow::Result<String> {
    let env = Env::start_with(Setup {
        department_timeout: Some(Duration::from_secs(5)),
        ..Setup::default()
    })
    .await?;
    // Keep the department slow so delivery work does not compete much with acceptance.
    env.departments
        .public_security
        .set_faults(departments::Faults {
            latency_ms: 60_000,
            ..Default::default()
        });
    let url = format!(
        "{}/api/v1/services/public-security.seal-filing/applications",
        env.gateway.url()
    );
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (http, url, counter, errors) = (
            env.http.clone(),
            url.clone(),
            counter.clone(),
            errors.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < stop_at {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                match http.post(&url).json(&seal_form(n)).send().await {
                    Ok(r) if r.status().as_u16() == 202 => latencies.push(started.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(format!(
        "| {label} | {:.0} | {:.1} | {:.1} | {} |",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        errors.load(Ordering::Relaxed)
    ))
}

/// 企业开办 end to end, every department slowed by the same latency.
async fn open_business(args: &Args) -> anyhow::Result<String> {
    let ticket = Duration::from_millis(50);
    let setup = Setup {
        ticket_delay: Some(ticket),
        ..Setup::default()
    };
    let env = Env::start_with(setup).await?;
    let faults = departments::Faults {
        latency_ms: args.latency_ms,
        ..Default::default()
    };
    env.departments.market_regulation.set_faults(faults.clone());
    env.departments.public_security.set_faults(faults.clone());
    env.departments.tax.set_faults(faults);
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency.min(16)));
    let env = Arc::new(env);
    let mut runs = Vec::new();
    for n in 0..args.cases {
        let (env, semaphore) = (env.clone(), semaphore.clone());
        runs.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.expect("semaphore open");
            let form = json!({
                "enterprise_name": format!("福州基准测试{n}号科技有限公司"),
                "address": "福州市鼓楼区五四路2号",
                "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
                "registered_capital": 100,
                "business_scope": "软件开发",
                "seal_types": ["法定名称章"]
            });
            let t0 = Instant::now();
            let case_id = env.apply("one-thing.open-business", &form).await;
            let view = env
                .wait_for_case(&case_id, Duration::from_secs(120), |v| {
                    v["matters"]
                        .as_array()
                        .is_some_and(|m| m.iter().all(|s| s["state"] == "approved"))
                })
                .await;
            (t0.elapsed(), view["status"] == "completed")
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for r in runs {
        let (latency, ok) = r.await?;
        latencies.push(latency);
        failed += usize::from(!ok);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let l = args.latency_ms as f64;
    // Department time on the critical path: licence submit, then seal and tax submit in
    // parallel, then the tax decision read by a poll. Sequentially it would be every call.
    let max_path = l + l + l;
    let sum = 4.0 * l;
    Ok(format!(
        "| 企业开办 ({} cases, ≤16 at once, {} ms per department call) | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
        args.cases,
        args.latency_ms,
        args.cases as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        sum,
        max_path,
        failed
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = args()?;
    // The store comes from the fixture: SQLite, or PostgreSQL with GATEWAY_TEST_STORE=postgres
    // (`cargo xtask bench` runs this binary once for each).
    let store = if integration_tests::suite_on_postgres() {
        "PostgreSQL (local server, default fsync)"
    } else {
        "SQLite (WAL, synchronous=FULL)"
    };
    println!("\n## Applications accepted per second, {store}\n");
    println!(
        "durable before the 202; concurrency {}, {} s; everything on this machine\n",
        args.concurrency, args.seconds
    );
    println!("| store | accepted/s | p50 ms | p99 ms | errors |\n| --- | --- | --- | --- | --- |");
    println!("{}", acceptance(store, &args).await?);
    if args.cases > 0 {
        println!("\n## 企业开办 end to end, {store}\n");
        println!(
            "| run | cases/s | p50 ms | p99 ms | sum of department calls ms | critical path ms | not completed |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        println!("{}", open_business(&args).await?);
    }
    Ok(())
}
