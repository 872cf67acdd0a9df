//! `[server]`, `[admin]`, `[log]` and `[telemetry]`: the listeners and what the gateway says
//! about itself.

use serde::Deserialize;
use std::path::PathBuf;

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
    /// The longest one material upload may take, in milliseconds (then `408
    /// upload_timeout`). An upload is exempt from `request_timeout_ms` as a whole, but a
    /// stalled one (no byte for `request_timeout_ms`) ends as any request would.
    #[serde(default = "default_upload_timeout_ms")]
    pub upload_timeout_ms: u64,
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
    /// TLS handshakes in progress at once on this listener. When they are all taken, a new
    /// connection displaces the one that has waited longest (a client that connects and stalls),
    /// so stalled handshakes hold at most this many file descriptors and buffers while real
    /// clients, which finish in milliseconds, are served. Default 256.
    #[serde(default = "default_max_handshakes")]
    pub max_handshakes: u32,
}

fn default_max_handshakes() -> u32 {
    256
}

fn default_certificate_warning_days() -> u32 {
    30
}

fn default_request_timeout_ms() -> u64 {
    60_000
}

fn default_upload_timeout_ms() -> u64 {
    600_000
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
    pub operators: Vec<OperatorConfig>,
    /// Serve HTTPS (rustls) instead of plain HTTP.
    pub tls: Option<ListenerTls>,
}

/// One operator of the admin API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// Operator id, recorded with every change.
    pub id: String,
    /// Hex SHA-256 of the operator's bearer token.
    pub token_sha256: String,
}

impl super::Config {
    pub(super) fn check_server(&self, file: &std::path::Path) -> Result<(), super::ConfigError> {
        use super::ConfigError;
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
        if self.server.upload_timeout_ms == 0 {
            return Err(ConfigError::new(
                file,
                "server.upload_timeout_ms",
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
        let listeners = [
            ("server.tls", self.server.tls.as_ref()),
            (
                "admin.tls",
                self.admin.as_ref().and_then(|a| a.tls.as_ref()),
            ),
        ];
        for (key, tls) in listeners {
            if let Some(tls) = tls {
                if tls.max_handshakes == 0 {
                    return Err(ConfigError::new(
                        file,
                        format!("{key}.max_handshakes"),
                        "must be above 0",
                    ));
                }
                // Readable PEM of the right kind; whether the key fits the certificate shows
                // when the listener is built.
                let pem = |e: crate::pem::PemError| ConfigError::new(file, key, e.to_string());
                crate::pem::certificates(&self.resolve(&tls.cert)).map_err(pem)?;
                crate::pem::private_key(&self.resolve(&tls.key)).map_err(pem)?;
                if let Some(ca) = &tls.client_ca {
                    crate::pem::certificates(&self.resolve(ca)).map_err(pem)?;
                }
            }
        }
        if let Some(admin) = &self.admin {
            check_operators(file, admin)?;
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            let url = url::Url::parse(endpoint)
                .map_err(|e| ConfigError::new(file, "telemetry.otlp_endpoint", e.to_string()))?;
            if url.scheme() != "http" {
                return Err(ConfigError::new(
                    file,
                    "telemetry.otlp_endpoint",
                    "an http:// URL of the collector (OTLP/HTTP, e.g. http://127.0.0.1:4318)",
                ));
            }
        }
        Ok(())
    }
}

/// Hex SHA-256 as the config writes secrets it must recognise but never hold.
pub(super) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

fn check_operators(file: &std::path::Path, admin: &AdminConfig) -> Result<(), super::ConfigError> {
    use super::ConfigError;
    if admin.operators.is_empty() {
        return Err(ConfigError::new(
            file,
            "admin.operators",
            "the admin API needs at least one operator (id and token_sha256): it is never open",
        ));
    }
    for (i, o) in admin.operators.iter().enumerate() {
        if !is_sha256_hex(&o.token_sha256) {
            return Err(ConfigError::new(
                file,
                format!("admin.operators[{i}].token_sha256"),
                "64 hex digits: the SHA-256 of the token (`gateway client-key` makes one)",
            ));
        }
    }
    Ok(())
}
