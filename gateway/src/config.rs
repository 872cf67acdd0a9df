//! The gateway's configuration: one TOML file, checked whole at start-up.
//!
//! Every struct denies unknown keys, and every problem is reported with the file, the key and
//! the reason, so an operator never starts a gateway that half-understood its config.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A configuration the gateway refuses, naming where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Dotted key of the offending setting (empty when the file itself is the problem).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The portal-facing listener.
    pub server: ServerConfig,
    /// The operators' listener (dead letters, replays); off when absent.
    pub admin: Option<AdminConfig>,
    /// Portal clients, their credentials and scopes. None configured: every portal call is
    /// refused (deny by default).
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// Where cases are kept.
    pub store: StoreConfig,
    /// Where adapter components come from and the defaults for their limits.
    pub plugins: PluginsConfig,
    /// The department systems, by department id.
    pub departments: BTreeMap<String, DepartmentConfig>,
    /// The service catalogue file (matters and services), relative to this file.
    pub catalogue: PathBuf,
    /// Promised time limits: the holiday calendar and when a step turns yellow (红黄牌).
    #[serde(default)]
    pub deadlines: crate::deadlines::DeadlinesConfig,
    /// How the gateway logs (text or JSON lines).
    #[serde(default)]
    pub log: LogConfig,
    /// The audit log of department exchanges: hash, seals.
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// Export of traces to an OpenTelemetry collector; off when absent.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Matters by catalogue code, read from the catalogue file.
    #[serde(skip)]
    pub matters: BTreeMap<String, MatterConfig>,
    /// One-thing services by code, read from the catalogue file.
    #[serde(skip)]
    pub services: BTreeMap<String, ServiceConfig>,
    /// Directory relative paths in this config are resolved against (the file's own directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this config was read from: a reload reads it again.
    #[serde(skip)]
    pub source: PathBuf,
}

/// Export of the gateway's spans (the request span, deliveries, polls, department calls) with
/// OTLP over HTTP; the trace ids are those the gateway propagates in `traceparent`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318` (spans are sent to
    /// `<it>/v1/traces`, protobuf-encoded). Absent: nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported spans (default `gateway`).
    pub service_name: Option<String>,
}

/// The portal-facing HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080`; port 0 picks a free one.
    pub listen: String,
    /// Base URL departments use to call the gateway back; defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// This node's id in delivery claims; unique per running node, stable across its restarts
    /// (a restarted node takes back its own claims at once). Default: host name + listen address.
    pub node_id: Option<String>,
    /// How long a node's claim on a delivery holds, in milliseconds; another node takes the
    /// delivery over when it expires. Keep it above the longest adapter call.
    #[serde(default = "default_claim_ms")]
    pub claim_ms: u64,
    /// On SIGTERM, how long calls in flight may take to finish, in milliseconds.
    #[serde(default = "default_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// How often every department is probed for `/readyz`, in milliseconds: probes run on this
    /// schedule in the background, never per readiness request, so no probe floods a department.
    #[serde(default = "default_readiness_interval_ms")]
    pub readiness_interval_ms: u64,
    /// The longest a portal request may take, in milliseconds; then `504 request_timeout`
    /// (event streams are exempt). What was stored before stays stored.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Serve HTTPS (rustls) instead of plain HTTP.
    pub tls: Option<ListenerTls>,
    /// A certificate with at most this many days left is reported in `/readyz` and logged at
    /// start; an expired one makes the node not ready.
    #[serde(default = "default_certificate_warning_days")]
    pub certificate_warning_days: u32,
}

/// TLS on a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain, the listener's own certificate first.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
    /// PEM CA certificates: when given, every client must present a certificate they issued
    /// (mutual TLS, for portals on a government network that identify their servers this way).
    pub client_ca: Option<PathBuf>,
}

fn default_certificate_warning_days() -> u32 {
    30
}

fn default_request_timeout_ms() -> u64 {
    60_000
}

fn default_readiness_interval_ms() -> u64 {
    10_000
}

/// Logging.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one JSON object a line); `GATEWAY_LOG_FORMAT` overrides it.
    #[serde(default)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, span fields (request id, trace id) included.
    Json,
}

impl LogFormat {
    /// `text` or `json`, as in the config and in `GATEWAY_LOG_FORMAT`.
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text.trim() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

fn default_claim_ms() -> u64 {
    60_000
}
fn default_grace_ms() -> u64 {
    10_000
}

fn default_body_limit() -> usize {
    1024 * 1024
}

/// The operators' API listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on, e.g. `127.0.0.1:8081`; keep it off the portal network.
    pub listen: String,
    /// The operators and their bearer tokens (as SHA-256); at least one.
    #[serde(default)]
    pub operators: Vec<crate::auth::OperatorConfig>,
    /// Serve HTTPS (rustls) instead of plain HTTP.
    pub tls: Option<ListenerTls>,
}

/// Case storage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://…`.
    pub url: String,
    /// Seal application payloads before they are stored (off when absent).
    pub encryption: Option<crate::at_rest::EncryptionConfig>,
}

/// Adapter components and the default limits of every call into one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory the `adapter` file names of departments are relative to.
    pub dir: PathBuf,
    /// Where compiled components are cached, keyed by content hash and engine settings.
    pub cache_dir: Option<PathBuf>,
    /// Limits for departments that set none of their own.
    #[serde(default)]
    pub limits: Limits,
    /// Directory watched for component files dropped in by operators; each new one is checked
    /// and, when admitted, activated for the department it describes. Off when absent.
    pub watch_dir: Option<PathBuf>,
    /// How often a node reads the active versions from the store (and scans `watch_dir`), in
    /// milliseconds: an activation on one node reaches the others within this.
    #[serde(default = "default_sync_interval_ms")]
    pub sync_interval_ms: u64,
    /// Staged activation: when a candidate version is rolled back automatically.
    #[serde(default)]
    pub staged: StagedConfig,
    /// Keys whose signature a component must carry. Empty: components need no signature.
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKey>,
}

fn default_sync_interval_ms() -> u64 {
    250
}

/// When a staged candidate is rolled back without an operator.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StagedConfig {
    /// Calls the candidate must have served on a node before its error rate is judged.
    pub min_calls: u64,
    /// Error rate (0..1) of the candidate above which it is rolled back automatically.
    pub max_error_rate: f64,
}

impl Default for StagedConfig {
    fn default() -> Self {
        StagedConfig {
            min_calls: 20,
            max_error_rate: 0.2,
        }
    }
}

/// A public key trusted to sign adapter components.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// Key id, as named in a component's signature.
    pub id: String,
    /// `ed25519` or `sm2`.
    pub algorithm: crate::adapters::signature::Algorithm,
    /// The public key: base64 of the 32 raw bytes (Ed25519) or of the SEC1 point (SM2).
    pub public_key: String,
}

/// What one call into an adapter may use. Exceeding any ends that call with a clear error.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory of one instance, in MiB.
    pub memory_mib: u32,
    /// CPU time the adapter's own code may run in one call, in milliseconds (host calls excluded).
    pub cpu_ms: u32,
    /// Wall-clock bound of one whole call, host calls included, in milliseconds.
    pub call_timeout_ms: u32,
    /// Instances of this adapter alive at once on one node; a call beyond them fails at once
    /// (busy) rather than queue behind a stuck department.
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            cpu_ms: 1000,
            call_timeout_ms: 30_000,
            max_instances: 64,
        }
    }
}

/// One department system and the adapter that speaks its protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentConfig {
    /// Display name, e.g. `税务`.
    pub name: String,
    /// Base URL of the department's system; adapters reach nothing else.
    pub base_url: String,
    /// Component file, relative to `plugins.dir`, registered and activated at start-up when the
    /// store does not know it yet. Absent: the department waits for a version pushed by an
    /// operator (admin API or `watch_dir`).
    pub adapter: Option<PathBuf>,
    /// Per-request timeout towards the department, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest department response accepted, in bytes.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// How often matters in progress are polled for status, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// TLS towards the department: pinned CA and, for mutual TLS, the gateway's identity.
    pub tls: Option<TlsConfig>,
    /// Limits of calls into this department's adapter (defaults: `plugins.limits`).
    pub limits: Option<Limits>,
    /// Delivery attempts before a step becomes a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Deliveries in flight to this department from one node.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
    /// Consecutive failures (unavailable, timeout) that open the circuit.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open circuit leaves the department alone, in milliseconds.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// Settings and secrets handed to the adapter through `config.get`. A value `env:NAME`
    /// is read from the environment at start-up, so secrets need not sit in the file.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_response() -> usize {
    4 * 1024 * 1024
}
fn default_poll_ms() -> u64 {
    2_000
}
fn default_max_attempts() -> u32 {
    8
}
fn default_max_concurrent() -> u32 {
    16
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown_ms() -> u64 {
    10_000
}

/// TLS files for one department connection, relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificate(s) the department's server certificate must chain to (pinned: the
    /// system roots are not used).
    pub ca: PathBuf,
    /// PEM client certificate chain for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
}

/// The catalogue file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    matters: BTreeMap<String, MatterConfig>,
    #[serde(default)]
    services: BTreeMap<String, ServiceConfig>,
}

/// A "one thing" service (一件事): several matters, one form, one submission.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Name, e.g. `企业开办`.
    pub name: String,
    /// What the applicant gets done.
    #[serde(default)]
    pub description: String,
    /// Lookups run before submission; their answers fill matter inputs (四不提交) and feed rules.
    #[serde(default)]
    pub lookups: Vec<ServiceLookupConfig>,
    /// The matters, each a step; steps without `after` start at once, in parallel.
    pub steps: Vec<StepConfig>,
    /// Cross-field rules checked at pre-review.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Form fields used only by rules (not by any matter or lookup), as JSON Schema.
    #[serde(default)]
    pub fields: BTreeMap<String, toml::Value>,
}

/// A lookup of a service: its query fields map to sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLookupConfig {
    /// Id within the service, used in sources as `lookups.<id>.<path>`.
    pub id: String,
    /// Lookup name, e.g. `real-estate.property`.
    pub lookup: String,
    /// Query field (dotted path) → source.
    pub query: BTreeMap<String, String>,
}

/// One step of a service: a matter, what it waits for, and where its input comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Id within the service, used in sources as `steps.<id>.outputs.<path>`.
    pub id: String,
    /// Matter code.
    pub matter: String,
    /// Steps whose approval this one waits for.
    #[serde(default)]
    pub after: Vec<String>,
    /// Matter input field (dotted path) → source: `form.<path>`, `lookups.<id>.<path>`,
    /// `steps.<id>.outputs.<path>` or `const:<text>`.
    pub input: BTreeMap<String, String>,
}

/// A cross-field rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `equals` (the two sources are equal) or `birth-date-matches` (left is an identity number
    /// whose embedded birth date must equal the date in right, `YYYY-MM-DD`).
    pub check: RuleCheck,
    /// First source.
    pub left: String,
    /// Second source.
    pub right: String,
    /// The form field the applicant must correct.
    pub field: String,
    /// What to tell the applicant.
    pub message: String,
}

/// Kinds of cross-field rules.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RuleCheck {
    /// Both sides equal.
    Equals,
    /// The birth date inside an identity number equals a declared date.
    BirthDateMatches,
}

/// One matter (事项) of the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterConfig {
    /// Name, e.g. `税务登记`.
    pub name: String,
    /// Department id that decides it.
    pub department: String,
    /// 事项类型 code (GB/T 39046): `01` 许可 … `20` 公共服务.
    pub matter_type: String,
    /// 服务对象 code: `1` 自然人, `2` 企业法人 ….
    pub service_object: String,
    /// Promised time limit (承诺时限), in working days.
    pub time_limit_days: u32,
    /// JSON Schema file of the matter's input; by default the adapter's own `describe` schema.
    pub schema: Option<PathBuf>,
}

/// Deserialize TOML, naming the dotted key of the first problem.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let de = toml::Deserializer::parse(text)
        .map_err(|e| ConfigError::new(path, "", e.message().to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::new(
            path,
            if key == "." { String::new() } else { key },
            e.into_inner().message().to_string(),
        )
    })
}

const MATTER_TYPES: [&str; 11] = [
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "20",
];
const SERVICE_OBJECTS: [&str; 6] = ["1", "2", "3", "4", "5", "6"];

impl Config {
    /// Read, parse and check a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "", format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parse and check config text that came from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = parse_toml(path, text)?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.source = path.to_path_buf();
        let catalogue_path = config.resolve(&config.catalogue);
        let catalogue_text = std::fs::read_to_string(&catalogue_path).map_err(|e| {
            ConfigError::new(
                path,
                "catalogue",
                format!("cannot read {}: {e}", catalogue_path.display()),
            )
        })?;
        let catalogue: CatalogueFile = parse_toml(&catalogue_path, &catalogue_text)?;
        config.matters = catalogue.matters;
        config.services = catalogue.services;
        config.check(path, &catalogue_path)?;
        Ok(config)
    }

    fn check(&mut self, file: &Path, catalogue: &Path) -> Result<(), ConfigError> {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                file,
                "server.listen",
                "not a socket address like 127.0.0.1:8080",
            ));
        }
        if self.server.request_timeout_ms == 0 {
            return Err(ConfigError::new(
                file,
                "server.request_timeout_ms",
                "must be above 0",
            ));
        }
        if self.server.readiness_interval_ms == 0 {
            return Err(ConfigError::new(
                file,
                "server.readiness_interval_ms",
                "must be above 0",
            ));
        }
        if let Some(admin) = &self.admin
            && admin.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::new(
                file,
                "admin.listen",
                "not a socket address like 127.0.0.1:8081",
            ));
        }
        if !(self.store.url.starts_with("sqlite:") || self.store.url.starts_with("postgres")) {
            return Err(ConfigError::new(
                file,
                "store.url",
                "must start with sqlite: or postgres://",
            ));
        }
        crate::at_rest::PayloadCipher::from_config(self, file)?;
        let listeners = [
            ("server.tls", self.server.tls.as_ref()),
            (
                "admin.tls",
                self.admin.as_ref().and_then(|a| a.tls.as_ref()),
            ),
        ];
        for (key, tls) in listeners {
            if let Some(tls) = tls {
                crate::tls::server_config(self, tls)
                    .map_err(|e| ConfigError::new(file, key, format!("{e:#}")))?;
            }
        }
        if self.departments.is_empty() {
            return Err(ConfigError::new(
                file,
                "departments",
                "no department is configured",
            ));
        }
        for (id, dept) in &mut self.departments {
            let key = |k: &str| format!("departments.{id}.{k}");
            let url = reqwest::Url::parse(&dept.base_url)
                .map_err(|e| ConfigError::new(file, key("base_url"), e.to_string()))?;
            match url.scheme() {
                "http" => {}
                "https" if dept.tls.is_some() => {}
                "https" => {
                    return Err(ConfigError::new(
                        file,
                        key("tls"),
                        "an https department needs tls.ca (the department's CA is pinned)",
                    ));
                }
                other => {
                    return Err(ConfigError::new(
                        file,
                        key("base_url"),
                        format!("scheme {other} is not http or https"),
                    ));
                }
            }
            if let Some(tls) = &dept.tls
                && tls.client_cert.is_some() != tls.client_key.is_some()
            {
                return Err(ConfigError::new(
                    file,
                    key("tls"),
                    "client_cert and client_key go together",
                ));
            }
            for (name, value) in [
                ("timeout_ms", dept.timeout_ms),
                ("max_attempts", u64::from(dept.max_attempts)),
                ("max_concurrent", u64::from(dept.max_concurrent)),
                ("breaker_failures", u64::from(dept.breaker_failures)),
            ] {
                if value == 0 {
                    return Err(ConfigError::new(file, key(name), "must be above 0"));
                }
            }
            for (name, value) in &mut dept.settings {
                if let Some(var) = value.strip_prefix("env:") {
                    *value = std::env::var(var).map_err(|_| {
                        ConfigError::new(
                            file,
                            key(&format!("settings.{name}")),
                            format!("environment variable {var} is not set"),
                        )
                    })?;
                }
            }
        }
        self.check_plugins(file)?;
        self.check_auth(file)?;
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            let url = reqwest::Url::parse(endpoint)
                .map_err(|e| ConfigError::new(file, "telemetry.otlp_endpoint", e.to_string()))?;
            if url.scheme() != "http" {
                return Err(ConfigError::new(
                    file,
                    "telemetry.otlp_endpoint",
                    "an http:// URL of the collector (OTLP/HTTP, e.g. http://127.0.0.1:4318)",
                ));
            }
        }
        self.audit.check(file, &self.base_dir)?;
        for (code, matter) in &self.matters {
            let key = |k: &str| format!("matters.\"{code}\".{k}");
            if !self.departments.contains_key(&matter.department) {
                return Err(ConfigError::new(
                    catalogue,
                    key("department"),
                    format!("no department `{}` is configured", matter.department),
                ));
            }
            if !MATTER_TYPES.contains(&matter.matter_type.as_str()) {
                return Err(ConfigError::new(
                    catalogue,
                    key("matter_type"),
                    "not a GB/T 39046 事项类型 code (01-10, 20)",
                ));
            }
            if !SERVICE_OBJECTS.contains(&matter.service_object.as_str()) {
                return Err(ConfigError::new(
                    catalogue,
                    key("service_object"),
                    "not a GB/T 39046 服务对象 code (1-6)",
                ));
            }
            if matter.time_limit_days == 0 {
                return Err(ConfigError::new(
                    catalogue,
                    key("time_limit_days"),
                    "must be at least 1 working day",
                ));
            }
        }
        for (code, service) in &self.services {
            check_service(catalogue, code, service, &self.matters)?;
        }
        self.deadlines.load_calendar(file, &self.base_dir)?;
        Ok(())
    }

    fn check_auth(&mut self, file: &Path) -> Result<(), ConfigError> {
        let is_sha256 = |h: &str| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit());
        if let Some(admin) = &self.admin {
            if admin.operators.is_empty() {
                return Err(ConfigError::new(
                    file,
                    "admin.operators",
                    "the admin API needs at least one operator (id and token_sha256): it is never open",
                ));
            }
            for (i, o) in admin.operators.iter().enumerate() {
                if !is_sha256(&o.token_sha256) {
                    return Err(ConfigError::new(
                        file,
                        format!("admin.operators[{i}].token_sha256"),
                        "64 hex digits: the SHA-256 of the token (`gateway client-key` makes one)",
                    ));
                }
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, c) in self.auth.clients.iter().enumerate() {
            let key = |k: &str| format!("auth.clients[{i}].{k}");
            if c.id.trim().is_empty() || !ids.insert(c.id.clone()) {
                return Err(ConfigError::new(file, key("id"), "empty or used twice"));
            }
            if let Some(hash) = &c.api_key_sha256
                && !is_sha256(hash)
            {
                return Err(ConfigError::new(
                    file,
                    key("api_key_sha256"),
                    "64 hex digits: the SHA-256 of the key (`gateway client-key` makes one)",
                ));
            }
            for scope in &c.scopes {
                let known = matches!(scope.as_str(), "cases:all" | "supervision" | "subjects")
                    || scope
                        .strip_prefix("apply:")
                        .or_else(|| scope.strip_prefix("lookup:"))
                        .is_some_and(|rest| !rest.is_empty());
                if !known {
                    return Err(ConfigError::new(
                        file,
                        key("scopes"),
                        format!(
                            "`{scope}` is not a scope: apply:<service>, lookup:<name> (or :*), cases:all, supervision, subjects"
                        ),
                    ));
                }
            }
        }
        if let Some(jwt) = &mut self.auth.jwt
            && let Some(var) = jwt.key.strip_prefix("env:")
        {
            jwt.key = std::env::var(var).map_err(|_| {
                ConfigError::new(
                    file,
                    "auth.jwt.key",
                    format!("environment variable {var} is not set"),
                )
            })?;
        }
        let operators = self.admin.as_ref().map_or(&[][..], |a| &a.operators[..]);
        crate::auth::Authenticator::new(&self.auth, operators)
            .map_err(|why| ConfigError::new(file, "auth.jwt", why))?;
        Ok(())
    }

    fn check_plugins(&self, file: &Path) -> Result<(), ConfigError> {
        let limits = std::iter::once(("plugins.limits".to_string(), self.plugins.limits)).chain(
            self.departments
                .iter()
                .filter_map(|(id, d)| Some((format!("departments.{id}.limits"), d.limits?))),
        );
        for (key, limits) in limits {
            for (name, value) in [
                ("memory_mib", limits.memory_mib),
                ("cpu_ms", limits.cpu_ms),
                ("call_timeout_ms", limits.call_timeout_ms),
                ("max_instances", limits.max_instances),
            ] {
                if value == 0 {
                    return Err(ConfigError::new(
                        file,
                        format!("{key}.{name}"),
                        "must be above 0",
                    ));
                }
            }
            if limits.memory_mib > crate::host::MAX_MEMORY_MIB {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.memory_mib"),
                    format!("at most {} MiB", crate::host::MAX_MEMORY_MIB),
                ));
            }
        }
        if self.plugins.sync_interval_ms == 0 {
            return Err(ConfigError::new(
                file,
                "plugins.sync_interval_ms",
                "must be above 0",
            ));
        }
        if !(0.0..=1.0).contains(&self.plugins.staged.max_error_rate) {
            return Err(ConfigError::new(
                file,
                "plugins.staged.max_error_rate",
                "an error rate between 0 and 1",
            ));
        }
        for (i, key) in self.plugins.trusted_keys.iter().enumerate() {
            if let Err(why) = crate::adapters::signature::Verifier::new(key) {
                return Err(ConfigError::new(
                    file,
                    format!("plugins.trusted_keys[{i}].public_key"),
                    why,
                ));
            }
        }
        Ok(())
    }

    /// A path from the config, resolved against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The limits of one department's adapter.
    pub fn limits_of(&self, department: &str) -> Limits {
        self.departments
            .get(department)
            .and_then(|d| d.limits)
            .unwrap_or(self.plugins.limits)
    }

    /// The URL departments call back to.
    pub fn public_url(&self, bound: std::net::SocketAddr) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| {
                let scheme = if self.server.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{bound}")
            })
            .trim_end_matches('/')
            .to_string()
    }
}

fn check_service(
    file: &Path,
    code: &str,
    service: &ServiceConfig,
    matters: &BTreeMap<String, MatterConfig>,
) -> Result<(), ConfigError> {
    let key = |k: String| format!("services.\"{code}\".{k}");
    if matters.contains_key(code) {
        return Err(ConfigError::new(
            file,
            key("name".into()),
            "a service cannot share its code with a matter",
        ));
    }
    if service.steps.is_empty() {
        return Err(ConfigError::new(
            file,
            key("steps".into()),
            "a service needs at least one step",
        ));
    }
    let lookup_ids: Vec<&str> = service.lookups.iter().map(|l| l.id.as_str()).collect();
    let mut seen: Vec<&str> = Vec::new();
    for (i, step) in service.steps.iter().enumerate() {
        let at = |k: &str| key(format!("steps[{i}].{k}"));
        if seen.contains(&step.id.as_str()) || lookup_ids.contains(&step.id.as_str()) {
            return Err(ConfigError::new(
                file,
                at("id"),
                format!("step id `{}` is used twice", step.id),
            ));
        }
        if !matters.contains_key(&step.matter) {
            return Err(ConfigError::new(
                file,
                at("matter"),
                format!("no matter `{}` in the catalogue", step.matter),
            ));
        }
        // Steps may only wait for steps defined before them: the graph is acyclic by construction.
        for dep in &step.after {
            if !seen.contains(&dep.as_str()) {
                return Err(ConfigError::new(
                    file,
                    at("after"),
                    format!("`{dep}` is not a step defined before this one"),
                ));
            }
        }
        for (field, source) in &step.input {
            let source = Source::parse(source)
                .map_err(|why| ConfigError::new(file, at(&format!("input.{field}")), why))?;
            match &source {
                Source::Step(dep, _) if !step.after.contains(dep) => {
                    return Err(ConfigError::new(
                        file,
                        at(&format!("input.{field}")),
                        format!("uses step `{dep}`, which is not in `after`"),
                    ));
                }
                Source::Lookup(id, _) if !lookup_ids.contains(&id.as_str()) => {
                    return Err(ConfigError::new(
                        file,
                        at(&format!("input.{field}")),
                        format!("no lookup `{id}` in this service"),
                    ));
                }
                _ => {}
            }
        }
        seen.push(&step.id);
    }
    for (i, lookup) in service.lookups.iter().enumerate() {
        for (field, source) in &lookup.query {
            match Source::parse(source) {
                Ok(Source::Form(_) | Source::Const(_)) => {}
                Ok(_) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("lookups[{i}].query.{field}")),
                        "a lookup query takes form fields or constants",
                    ));
                }
                Err(why) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("lookups[{i}].query.{field}")),
                        why,
                    ));
                }
            }
        }
    }
    for (i, rule) in service.rules.iter().enumerate() {
        for (side, source) in [("left", &rule.left), ("right", &rule.right)] {
            match Source::parse(source) {
                Ok(Source::Step(..)) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("rules[{i}].{side}")),
                        "rules are checked before any step runs",
                    ));
                }
                Ok(Source::Lookup(id, _)) if !lookup_ids.contains(&id.as_str()) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("rules[{i}].{side}")),
                        format!("no lookup `{id}` in this service"),
                    ));
                }
                Ok(_) => {}
                Err(why) => {
                    return Err(ConfigError::new(
                        file,
                        key(format!("rules[{i}].{side}")),
                        why,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Where a value of a matter input, a lookup query or a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A field of the applicant's form (dotted path).
    Form(Vec<String>),
    /// A field of a service lookup's answer: lookup id, path.
    Lookup(String, Vec<String>),
    /// An output of an earlier step: step id, path.
    Step(String, Vec<String>),
    /// A fixed text.
    Const(String),
}

impl Source {
    /// Parse `form.a.b`, `lookups.id.a`, `steps.id.outputs.a` or `const:text`.
    pub fn parse(text: &str) -> Result<Source, String> {
        if let Some(value) = text.strip_prefix("const:") {
            return Ok(Source::Const(value.to_string()));
        }
        let parts: Vec<String> = text.split('.').map(str::to_string).collect();
        let bad = || {
            format!(
                "`{text}` is not form.<field>, lookups.<id>.<field>, steps.<id>.outputs.<field> or const:<text>"
            )
        };
        if parts.iter().any(String::is_empty) {
            return Err(bad());
        }
        match parts.as_slice() {
            [head, path @ ..] if head == "form" && !path.is_empty() => {
                Ok(Source::Form(path.to_vec()))
            }
            [head, id, path @ ..] if head == "lookups" && !path.is_empty() => {
                Ok(Source::Lookup(id.clone(), path.to_vec()))
            }
            [head, id, outputs, path @ ..]
                if head == "steps" && outputs == "outputs" && !path.is_empty() =>
            {
                Ok(Source::Step(id.clone(), path.to_vec()))
            }
            _ => Err(bad()),
        }
    }
}
