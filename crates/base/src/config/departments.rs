//! `[departments.<id>]`: each department system, how it is reached and paced, and the settings
//! its adapter reads.

use super::keys::DepartmentKey;
use super::{ConfigError, Limits};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
    /// is read from the environment at start-up, `file:PATH` from a file (relative to the
    /// config file, one trailing newline dropped), so secrets need not sit in the file.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The settings that are secrets: given as `env:`/`file:`, or named like one (see
    /// [`is_secret_name`]). Their values are scrubbed from every log line and answer.
    #[serde(skip)]
    pub secret_settings: BTreeSet<String>,
    /// Hex SHA-256 of the bearer token this department sends to the gateway's licence-sharing
    /// endpoint (`GET /licence-sharing/v1/licences/{id}`) to verify a licence an applicant
    /// named. Absent: the department may not read licences.
    pub licence_sharing_key_sha256: Option<String>,
    /// Whom to chase (催办) and escalate to about this department's steps.
    #[serde(default)]
    pub contacts: super::Contacts,
    /// Keys the host holds for the adapter's `crypto` calls, by the name the adapter uses
    /// (see [`super::keys`]).
    #[serde(default)]
    pub keys: BTreeMap<String, DepartmentKey>,
}

/// Whether a setting's name says it holds a secret (`app-secret`, `client_secret`,
/// `password`, `token`, `private-key` …).
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "passwd", "token", "private"]
        .iter()
        .any(|word| name.contains(word))
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

impl DepartmentConfig {
    /// The values of its secret settings (once `env:` and `file:` are read).
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.secret_settings
            .iter()
            .filter_map(|name| self.settings.get(name).map(String::as_str))
    }

    /// Everything to scrub from logs and answers: its secret settings' values and the text
    /// forms of its secret keys.
    pub fn secret_texts(&self) -> Vec<String> {
        self.secrets()
            .map(str::to_string)
            .chain(self.keys.values().flat_map(DepartmentKey::secret_texts))
            .collect()
    }

    /// Its keys, parsed, by name (what the host's `crypto` serves).
    pub fn key_material(&self) -> BTreeMap<String, std::sync::Arc<super::keys::KeyMaterial>> {
        self.keys
            .iter()
            .filter_map(|(name, k)| Some((name.clone(), k.material.clone()?)))
            .collect()
    }

    /// The department's URL, TLS files and pacing make sense (`id` names it in errors); its
    /// secret settings are noted and `file:` values read.
    pub(super) fn check(&mut self, file: &Path, id: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("departments.{id}.{k}");
        for (name, value) in &mut self.settings {
            let secret = value.starts_with("env:") || value.starts_with("file:");
            if secret || is_secret_name(name) {
                self.secret_settings.insert(name.clone());
            }
            if let Some(path) = value.strip_prefix("file:") {
                let path = file.parent().unwrap_or(Path::new("")).join(path);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::new(
                        file,
                        key(&format!("settings.{name}")),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                *value = text.strip_suffix('\r').unwrap_or(text).to_string();
            }
        }
        let url = url::Url::parse(&self.base_url)
            .map_err(|e| ConfigError::new(file, key("base_url"), e.to_string()))?;
        match url.scheme() {
            "http" => {}
            "https" if self.tls.is_some() => {}
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
        if let Some(hash) = &self.licence_sharing_key_sha256
            && !super::server::is_sha256_hex(hash)
        {
            return Err(ConfigError::new(
                file,
                key("licence_sharing_key_sha256"),
                "64 hex digits: the SHA-256 of the department's token (`gateway client-key` makes one)",
            ));
        }
        if let Some(tls) = &self.tls
            && tls.client_cert.is_some() != tls.client_key.is_some()
        {
            return Err(ConfigError::new(
                file,
                key("tls"),
                "client_cert and client_key go together",
            ));
        }
        self.contacts.check(file, id)?;
        for (name, k) in &mut self.keys {
            k.check(file, &key(&format!("keys.{name}")))?;
        }
        for (name, value) in [
            ("timeout_ms", self.timeout_ms),
            ("max_attempts", u64::from(self.max_attempts)),
            ("max_concurrent", u64::from(self.max_concurrent)),
            ("breaker_failures", u64::from(self.breaker_failures)),
        ] {
            if value == 0 {
                return Err(ConfigError::new(file, key(name), "must be above 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_settings_are_noted_and_file_values_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.txt"), "from-a-file\n").unwrap();
        let mut dept: DepartmentConfig = toml::from_str(
            r#"
name = "税务"
base_url = "http://127.0.0.1:1"
[settings]
app-key = "gw-demo"
app-secret = "plain-but-named-secret"
signing = "file:key.txt"
api = "env:SOME_VAR"
"#,
        )
        .unwrap();
        dept.check(&dir.path().join("gateway.toml"), "tax").unwrap();
        assert_eq!(dept.settings["signing"], "from-a-file");
        let secret: Vec<&str> = dept.secret_settings.iter().map(String::as_str).collect();
        assert_eq!(secret, ["api", "app-secret", "signing"]);
        let missing: Result<DepartmentConfig, _> = toml::from_str(
            "name = \"x\"\nbase_url = \"http://127.0.0.1:1\"\nsettings = { k = \"file:nope\" }",
        );
        let error = missing
            .unwrap()
            .check(&dir.path().join("gateway.toml"), "x")
            .unwrap_err();
        assert_eq!(error.key, "departments.x.settings.k");
    }
}
