//! Fixtures for the end-to-end tests: the real gateway (in-process, on a real port), the real
//! adapter components, and the simulated departments as real HTTP(S) servers.
//!
//! # Layout
//! - [`adapters_dir`]: the built components, built once per run.
//! - [`Env`]: one gateway with its departments, a client, and waiting on case changes.
//! - `tests/`: the end-to-end tests, one file per capability.
//! - `departments/`: the simulated department systems (their own crate).
//! - `adapters/hostile`: a misbehaving adapter for the isolation tests.

use anyhow::Context;
use departments::Departments;
use gateway::Gateway;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The directory of the built adapter components. `cargo xtask test` builds them once and sets
/// `GATEWAY_ADAPTERS_DIR`; run directly, the first test to ask builds them (cargo serialises
/// concurrent builds, and an up-to-date build is a no-op).
pub fn adapters_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(dir) = std::env::var("GATEWAY_ADAPTERS_DIR") {
            return std::fs::canonicalize(&dir).unwrap_or_else(|_| PathBuf::from(dir));
        }
        let root = workspace_root();
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(&root)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "-p",
                    "tax-adapter",
                    "-p",
                    "real-estate-adapter",
                ])
                .args([
                    "-p",
                    "public-security-adapter",
                    "-p",
                    "market-regulation-adapter",
                    "-p",
                    "hostile-adapter",
                ])
                .status()
                .expect("running cargo to build the adapters");
        assert!(status.success(), "building the adapter components failed");
        root.join("target/wasm32-wasip2/release")
    })
    .clone()
}

/// Tweaks to the generated gateway config, as TOML text appended per department.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Extra TOML lines inside each `[departments.<id>]` table, by department id.
    pub department_extra: Vec<(&'static str, String)>,
    /// Add the hostile adapter as department `hostile`, pointed at this base URL.
    pub hostile: Option<String>,
    /// Ticket delay of the simulated departments.
    pub ticket_delay: Option<Duration>,
    /// Token lifetime at market regulation.
    pub token_ttl: Option<Duration>,
    /// Request timeout towards every department (default 3 s).
    pub department_timeout: Option<Duration>,
    /// Extra TOML lines inside `[server]` (node id, claim time …).
    pub server_extra: String,
    /// Open the admin listener on a free port.
    pub admin: bool,
    /// The portal listener's address (default `127.0.0.1:0`).
    pub listen: Option<String>,
    /// Extra top-level TOML appended to the config (a `[deadlines]` table …).
    pub config_extra: String,
}

/// A gateway, its departments, and an HTTP client.
pub struct Env {
    /// The simulated departments.
    pub departments: Departments,
    /// The gateway under test.
    pub gateway: Gateway,
    /// A client for the gateway.
    pub http: reqwest::Client,
    /// Holds the store and config files.
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database made for this gateway, dropped with the `Env`.
    _postgres: Option<TestDatabase>,
}

fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // The test clients use reqwest without a built-in provider, like the gateway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

impl Env {
    /// Departments plus a gateway with all four adapters, default settings.
    pub async fn start() -> anyhow::Result<Env> {
        Self::start_with(Setup::default()).await
    }

    /// Departments plus a gateway, with tweaks.
    pub async fn start_with(setup: Setup) -> anyhow::Result<Env> {
        init_tracing();
        let dir = tempfile::tempdir()?;
        let mut options = departments::Options {
            cert_dir: dir.path().join("certs"),
            ..Default::default()
        };
        if let Some(delay) = setup.ticket_delay {
            options.ticket_delay = delay;
        }
        if let Some(ttl) = setup.token_ttl {
            options.token_ttl = ttl;
        }
        let departments = departments::start(options).await?;
        let postgres = TestDatabase::create_if_switched_on().await?;
        let store_url = match &postgres {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("gateway.db").display()),
        };
        let config_path = write_config(dir.path(), &departments, &setup, &store_url)?;
        let config = gateway::config::Config::load(&config_path)?;
        let gateway = Gateway::start(config)
            .await
            .context("starting the gateway")?;
        Ok(Env {
            departments,
            gateway,
            http: reqwest::Client::new(),
            dir,
            _postgres: postgres,
        })
    }

    /// The admin API's base URL (start with `Setup { admin: true, .. }`).
    pub fn admin_url(&self) -> String {
        format!(
            "http://{}",
            self.gateway
                .admin_addr
                .expect("the admin listener is configured")
        )
    }

    /// POST JSON to a gateway path; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// POST a raw body as JSON content.
    pub async fn post_raw(&self, path: &str, body: String) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.gateway.url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GET a gateway path; the status and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.gateway.url()))
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Apply for a service; the case id (panics with the answer when not accepted).
    pub async fn apply(&self, service: &str, form: &Value) -> String {
        let (status, body) = self
            .post(&format!("/api/v1/services/{service}/applications"), form)
            .await;
        assert_eq!(status, 202, "application not accepted: {body}");
        body["case_id"].as_str().expect("case id").to_string()
    }

    /// Wait until the case's view satisfies `done`, woken by the gateway's case events rather
    /// than by a timer; fails after `within`.
    pub async fn wait_for_case(
        &self,
        case_id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut events = self.gateway.orchestrator.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, view) = self.get(&format!("/api/v1/cases/{case_id}")).await;
            if done(&view) {
                return view;
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(_) => continue,
                Err(_) => panic!(
                    "case {case_id} did not reach the expected state in {within:?}: {view:#}"
                ),
            }
        }
    }
}

/// Write a gateway config for these departments into `dir`; returns its path.
pub fn write_config(
    dir: &Path,
    d: &Departments,
    setup: &Setup,
    store_url: &str,
) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let certs = &d.cert_dir;
    let extra = |id: &str| {
        setup
            .department_extra
            .iter()
            .filter(|(d, _)| *d == id)
            .map(|(_, line)| format!("{line}\n"))
            .collect::<String>()
    };
    let mut text = format!(
        r#"
catalogue = "{catalogue}"

{admin}
[server]
listen = "{listen}"
{server_extra}

[store]
url = "{store_url}"

[plugins]
dir = "{adapters}"
cache_dir = "{cache}"

[plugins.limits]
memory_mib = 64
cpu_ms = 1000
call_timeout_ms = 10000

[departments.tax]
name = "税务"
base_url = "{tax}"
adapter = "tax_adapter.wasm"
timeout_ms = {timeout_ms}
poll_interval_ms = 100
{tax_extra}
[departments.tax.settings]
app-key = "gw-demo"
app-secret = "tax-demo-secret"
sign-method = "HMAC-SM3"

[departments.real-estate]
name = "不动产登记"
base_url = "{real_estate}"
adapter = "real_estate_adapter.wasm"
timeout_ms = {timeout_ms}
poll_interval_ms = 100
{real_estate_extra}
[departments.public-security]
name = "公安"
base_url = "{public_security}"
adapter = "public_security_adapter.wasm"
timeout_ms = {timeout_ms}
poll_interval_ms = 100
{public_security_extra}
[departments.public-security.tls]
ca = "{certs}/ca.pem"
client_cert = "{certs}/client.pem"
client_key = "{certs}/client-key.pem"

[departments.market-regulation]
name = "市场监管"
base_url = "{market_regulation}"
adapter = "market_regulation_adapter.wasm"
timeout_ms = {timeout_ms}
poll_interval_ms = 5000
{market_regulation_extra}
[departments.market-regulation.settings]
client-id = "gw-demo"
client-secret = "mr-demo-secret"
callback-secret = "mr-callback-secret"
"#,
        catalogue = root.join("config/catalogue.toml").display(),
        adapters = adapters_dir().display(),
        cache = root.join("target/component-cache").display(),
        tax = d.tax.base_url,
        real_estate = d.real_estate.base_url,
        public_security = d.public_security.base_url,
        market_regulation = d.market_regulation.base_url,
        certs = certs.display(),
        admin = if setup.admin {
            "[admin]\nlisten = \"127.0.0.1:0\"\n"
        } else {
            ""
        },
        listen = setup.listen.as_deref().unwrap_or("127.0.0.1:0"),
        server_extra = setup.server_extra,
        timeout_ms = setup.department_timeout.map_or(3000, |t| t.as_millis()),
        tax_extra = extra("tax"),
        real_estate_extra = extra("real-estate"),
        public_security_extra = extra("public-security"),
        market_regulation_extra = extra("market-regulation"),
    );
    if let Some(base_url) = &setup.hostile {
        text.push_str(&format!(
            r#"
[departments.hostile]
name = "hostile test adapter"
base_url = "{base_url}"
adapter = "hostile_adapter.wasm"
timeout_ms = 300
{hostile_extra}
[departments.hostile.limits]
memory_mib = 32
cpu_ms = 200
call_timeout_ms = 3000
"#,
            hostile_extra = extra("hostile"),
        ));
    }
    text.push('\n');
    text.push_str(&setup.config_extra);
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The server the PostgreSQL tests use, when they are switched on.
pub fn postgres_url() -> Option<String> {
    std::env::var("GATEWAY_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// True when the end-to-end suite should run on PostgreSQL instead of SQLite
/// (`GATEWAY_TEST_STORE=postgres`, with `GATEWAY_TEST_POSTGRES_URL` naming the server).
pub fn suite_on_postgres() -> bool {
    std::env::var("GATEWAY_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// A fresh database on the test server, so tests never see each other's cases.
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// A new database when the suite runs on PostgreSQL, else `None`.
    pub async fn create_if_switched_on() -> anyhow::Result<Option<TestDatabase>> {
        if !suite_on_postgres() {
            return Ok(None);
        }
        let server = postgres_url()
            .context("GATEWAY_TEST_STORE=postgres needs GATEWAY_TEST_POSTGRES_URL")?;
        Self::create(&server).await.map(Some)
    }

    /// A new database on `server`.
    pub async fn create(server: &str) -> anyhow::Result<TestDatabase> {
        use sqlx::Connection;
        let name = format!("gwtest_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(server)
            .await
            .context("connecting to the test PostgreSQL server")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        Ok(TestDatabase {
            url: format!("{base}/{name}"),
            name,
            server: server.to_string(),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside async: a short-lived runtime on its own thread removes the database.
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&server).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
    }
}

/// The gateway binary. `cargo xtask test` builds it and sets `GATEWAY_BINARY`; run directly, the
/// first test to ask builds it.
pub fn gateway_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("GATEWAY_BINARY") {
            return PathBuf::from(bin);
        }
        let root = workspace_root();
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(&root)
                .args(["build", "-p", "gateway", "--bin", "gateway"])
                .status()
                .expect("running cargo to build the gateway");
        assert!(status.success(), "building the gateway binary failed");
        root.join("target/debug/gateway")
    })
    .clone()
}

/// A gateway running as its own process, for tests that kill it.
pub struct GatewayProcess {
    child: tokio::process::Child,
    /// The portal API's base URL.
    pub url: String,
    /// Every line the process wrote to stdout (its log), as it arrives.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl GatewayProcess {
    /// Start `gateway serve --config <config>` and wait until it says it is ready.
    pub async fn spawn(config: &Path) -> anyhow::Result<GatewayProcess> {
        Self::spawn_with_env(config, &[("RUST_LOG", "warn")]).await
    }

    /// Start the gateway with these environment variables (`RUST_LOG`, `GATEWAY_LOG_FORMAT` …).
    pub async fn spawn_with_env(
        config: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<GatewayProcess> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(gateway_binary())
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = |line: &str| output.lock().unwrap().push(line.to_string());
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                keep(&line);
                if let Some(url) = line.strip_prefix("gateway ready at ") {
                    return Ok::<_, anyhow::Error>(url.trim().to_string());
                }
            }
            anyhow::bail!("the gateway exited before it was ready")
        })
        .await
        .context("the gateway did not become ready within 60 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        let kept = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Ok(GatewayProcess {
            child,
            url: ready,
            output,
        })
    }

    /// SIGKILL: no shutdown, no cleanup, like a power cut.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, then wait for the process to exit; its exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        self.child.wait().await.expect("waiting for the gateway")
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An HTTP client for tests that talk to the gateway without an [`Env`] (the fixture's rustls
/// provider is installed first).
pub fn client() -> reqwest::Client {
    init_tracing();
    reqwest::Client::new()
}
