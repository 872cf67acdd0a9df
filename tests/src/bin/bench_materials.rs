//! Materials benchmarks: how fast uploads stream into the store, what they cost the gateway in
//! memory when several large ones arrive at once, and how long one large material takes to
//! reach its department through the department's own adapter.
//!
//! The gateway runs as its own process (the release binary `cargo xtask bench` builds, named by
//! `GATEWAY_BINARY`) so that its resident set is its own, sampled every 20 ms from
//! `/proc/<pid>/status`; the simulated departments and the load run in this process. The demo
//! catalogue is used with every material's size limit raised to take the files.
//!
//! 1. One upload of `--mib` MiB alone: MB/s.
//! 2. `--concurrent` uploads of `--mib` MiB each at once, each into a draft of its own: MB/s
//!    together, and the gateway's peak resident set over idle (target: at most 64 MiB more).
//! 3. One application with a `--delivery-mib` MiB material delivered to its department: time
//!    from the application to the department's receipt of the whole file, with the
//!    department's adapter limited to 8 MiB of linear memory (so a success shows the file
//!    never sat whole in the instance).
//!
//! Each file's bytes differ (a seed per upload), so none is stored once for another. Flags:
//! `--mib N` (50), `--concurrent N` (8), `--delivery-mib N` (20).

use anyhow::Context;
use integration_tests::{GatewayProcess, PORTAL_KEY, Setup, departments_in, write_config};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The growth of the resident set the concurrent uploads may cause.
const RSS_TARGET_MIB: f64 = 64.0;
/// The linear memory the delivering adapter is limited to.
const DELIVERY_MEMORY_MIB: u32 = 8;
/// The service and material the upload runs use (a PDF of the 企业开办 form).
const UPLOAD_SERVICE: &str = "one-thing.open-business";
const UPLOAD_MATERIAL: &str = "articles-of-association";
/// Bytes each chunk of a generated upload holds.
const CHUNK: usize = 256 * 1024;

#[derive(clap::Parser)]
struct Args {
    /// MiB of each upload.
    #[arg(long, default_value_t = 50)]
    mib: u64,
    /// Uploads at once.
    #[arg(long, default_value_t = 8)]
    concurrent: usize,
    /// MiB of the material delivered through its adapter.
    #[arg(long, default_value_t = 20)]
    delivery_mib: u64,
}

/// A PDF of `len` bytes sent a chunk at a time as it is generated (never whole in this process
/// either): header, filler varying with `seed`, trailer.
async fn write_pdf(
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    len: u64,
    seed: u8,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    const HEAD: &[u8] = b"%PDF-1.7\n";
    const TAIL: &[u8] = b"\ntrailer\n<<>>\n%%EOF\n";
    out.write_all(HEAD).await?;
    let filler = len - (HEAD.len() + TAIL.len()) as u64;
    let mut chunk = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < filler {
        let n = (filler - sent).min(CHUNK as u64) as usize;
        for (i, byte) in chunk[..n].iter_mut().enumerate() {
            *byte = (((sent as usize + i) * 7 + seed as usize) % 251) as u8;
        }
        out.write_all(&chunk[..n]).await?;
        sent += n as u64;
    }
    out.write_all(TAIL).await?;
    out.flush().await
}

/// The resident set of `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Samples a process's resident set every 20 ms until dropped; keeps the peak.
struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl PeakRss {
    fn watch(pid: u32) -> Self {
        let (peak, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (p, s) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        PeakRss { peak, stop }
    }

    fn peak_mib(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Portal {
    http: reqwest::Client,
    url: String,
}

impl Portal {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("x-api-key", PORTAL_KEY)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    async fn draft(&self, service: &str) -> anyhow::Result<String> {
        let created = self
            .post(&format!("/api/v1/services/{service}/drafts"), &json!({}))
            .await?;
        Ok(created["draft_id"]
            .as_str()
            .context("draft_id")?
            .to_string())
    }

    /// Upload a generated PDF over HTTP/1.1 written by hand (the body streamed as it is
    /// generated); the time it took.
    async fn upload(
        &self,
        draft: &str,
        code: &str,
        len: u64,
        seed: u8,
    ) -> anyhow::Result<Duration> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let started = Instant::now();
        let authority = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let head = format!(
            "PUT /api/v1/drafts/{draft}/materials/{code} HTTP/1.1\r\nhost: {authority}\r\n\
             x-api-key: {PORTAL_KEY}\r\ncontent-type: application/pdf\r\n\
             content-length: {len}\r\nconnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        write_pdf(&mut stream, len, seed).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let took = started.elapsed();
        let answer = String::from_utf8_lossy(&answer);
        anyhow::ensure!(answer.starts_with("HTTP/1.1 201"), "upload: {answer}");
        let body: Value = answer
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .context("upload: the answer's body")?;
        anyhow::ensure!(body["size"] == json!(len), "stored size: {body}");
        Ok(took)
    }
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

fn verdict(pass: bool) -> &'static str {
    if pass { "✅ yes" } else { "❌ no" }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let dir = tempfile::tempdir()?;
    let departments = departments_in(dir.path()).await;
    // Every material takes the benchmark's files.
    let largest = args.mib.max(args.delivery_mib) + 1;
    let catalogue = integration_tests::without_social_security(&std::fs::read_to_string(
        integration_tests::workspace_root().join("config/catalogue.toml"),
    )?);
    let catalogue: String = catalogue
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("max_mib") {
                format!("max_mib = {largest}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let catalogue_path = dir.path().join("bench-catalogue.toml");
    std::fs::write(&catalogue_path, catalogue)?;
    let setup = Setup {
        demo_materials: true,
        catalogue: Some(catalogue_path),
        config_extra: format!("\n[materials]\nmax_mib = {largest}\n"),
        department_extra: ["tax", "real-estate", "public-security", "market-regulation"]
            .into_iter()
            .map(|d| {
                (
                    d,
                    format!("\n[departments.{d}.limits]\nmemory_mib = {DELIVERY_MEMORY_MIB}\n"),
                )
            })
            .collect(),
        ..Setup::default()
    };
    let store_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let config = write_config(dir.path(), &departments, &setup, &store_url)?;
    let gateway = GatewayProcess::spawn(&config).await?;
    departments.gateway.set_url(&gateway.url);
    let pid = gateway.pid().context("the gateway's pid")?;
    let portal = Portal {
        http: reqwest::Client::new(),
        url: gateway.url.clone(),
    };
    let bytes = args.mib * 1024 * 1024;

    // Warm: one small upload, so idle includes what the first upload sets up.
    let draft = portal.draft(UPLOAD_SERVICE).await?;
    portal.upload(&draft, UPLOAD_MATERIAL, 64 * 1024, 0).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_mib = rss_kib(pid).context("rss")? as f64 / 1024.0;

    // 1. One upload alone.
    let draft = portal.draft(UPLOAD_SERVICE).await?;
    let alone = portal.upload(&draft, UPLOAD_MATERIAL, bytes, 1).await?;

    // 2. Several at once.
    let watch = PeakRss::watch(pid);
    let started = Instant::now();
    let mut uploads = Vec::new();
    for i in 0..args.concurrent {
        let draft = portal.draft(UPLOAD_SERVICE).await?;
        let portal = Portal {
            http: portal.http.clone(),
            url: portal.url.clone(),
        };
        uploads.push(tokio::spawn(async move {
            portal
                .upload(&draft, UPLOAD_MATERIAL, bytes, 2 + i as u8)
                .await
        }));
    }
    let mut slowest = Duration::ZERO;
    for upload in uploads {
        slowest = slowest.max(upload.await??);
    }
    let together = started.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let peak_mib = watch.peak_mib();
    drop(watch);
    let growth = peak_mib - idle_mib;

    // 3. One large material delivered through its department's adapter.
    let delivery = deliver(&portal, &departments, args.delivery_mib * 1024 * 1024).await?;

    println!("---- Markdown summary (paste into BENCHMARKS.md) ----");
    println!(
        "Run: `cargo xtask bench` (`bench_materials`: gateway release binary in its own process, \
         SQLite store, the demo catalogue with every material's `max_mib` at {largest}); \
         {} cores.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| measurement | figure | target | met |");
    println!("| --- | ---: | --- | --- |");
    println!(
        "| one {} MiB upload alone | {:.0} MB/s ({:.2} s) | — | — |",
        args.mib,
        mb_per_s(bytes, alone),
        alone.as_secs_f64()
    );
    println!(
        "| {} × {} MiB uploads at once | {:.0} MB/s together ({:.2} s, slowest {:.2} s) | — | — |",
        args.concurrent,
        args.mib,
        mb_per_s(bytes * args.concurrent as u64, together),
        together.as_secs_f64(),
        slowest.as_secs_f64()
    );
    println!(
        "| gateway RSS during them: peak − idle | {peak_mib:.0} − {idle_mib:.0} = {growth:.0} MiB | ≤ {RSS_TARGET_MIB:.0} MiB | {} |",
        verdict(growth <= RSS_TARGET_MIB)
    );
    println!(
        "| one {} MiB material to {} through its adapter ({} MiB linear memory) | {:.2} s ({:.0} MB/s) | adapter memory ≤ {DELIVERY_MEMORY_MIB} MiB | {} |",
        args.delivery_mib,
        delivery.department,
        DELIVERY_MEMORY_MIB,
        delivery.took.as_secs_f64(),
        mb_per_s(args.delivery_mib * 1024 * 1024, delivery.took),
        verdict(true)
    );
    println!("---- end ----");
    Ok(())
}

/// What the delivery run measured.
struct Delivery {
    department: &'static str,
    took: Duration,
}

/// Apply for a tax registration (the demo catalogue's example form) with a large 经营场所证明
/// and wait until the tax department has received it whole, as the department itself counted.
async fn deliver(
    portal: &Portal,
    departments: &integration_tests::Departments,
    len: u64,
) -> anyhow::Result<Delivery> {
    const SERVICE: &str = "tax.registration";
    let draft = portal.draft(SERVICE).await?;
    // The enterprise's licence is not in this fresh store: it is uploaded too (small).
    portal
        .upload(&draft, "business-licence", 64 * 1024, 200)
        .await?;
    portal.upload(&draft, "premises-proof", len, 201).await?;
    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发",
    });
    let started = Instant::now();
    portal
        .post(
            &format!("/api/v1/services/{SERVICE}/applications?draft={draft}"),
            &form,
        )
        .await?;
    let deadline = started + Duration::from_secs(300);
    loop {
        let received = departments
            .tax
            .stats()
            .materials
            .into_iter()
            .any(|m| m.code == "premises-proof" && m.size == Some(len));
        if received {
            return Ok(Delivery {
                department: "tax",
                took: started.elapsed(),
            });
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the tax department did not receive the material within 300 s"
        );
        // A benchmark's resolution, not a test's synchronisation: the department has no signal.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
