//! The gateway's configuration: one TOML file and the catalogue it names, checked whole.
//!
//! Every struct denies unknown keys, and every problem is reported with the file, the key and
//! the reason, so an operator never starts a gateway that half-understood its config. The
//! checks here parse and validate only (files are read, keys decoded, certificates parsed);
//! the runtime objects (ciphers, TLS configurations, verifiers of tokens) are built by the
//! crates that use them.
//!
//! # Layout
//! - [`server`]: `[server]`, `[admin]`, `[log]`, `[telemetry]`.
//! - [`auth`]: `[auth]`: portal clients, scopes, token keys.
//! - [`store`]: `[store]`: the store's URL and the payload keys.
//! - [`plugins`]: `[plugins]`: components, call limits, staged rollouts, trusted keys.
//! - [`departments`]: the `[departments.<id>]` tables.
//! - [`catalogue`]: the catalogue file: matters and one-thing services, and value sources.
//! - [`deadlines`]: `[deadlines]`: the holiday calendar, the yellow rule.
//! - [`audit`]: `[audit]`: hash, seals, queue.
//! - [`materials`]: `[materials]` and each matter's materials (材料清单).
//! - [`reload`]: what a reload of the running gateway's config answers.

pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod deadlines;
pub mod departments;
pub mod materials;
pub mod plugins;
pub mod reload;
pub mod server;
pub mod store;

pub use audit::AuditConfig;
pub use auth::{AuthConfig, ClientConfig, JwtConfig};
pub use catalogue::{
    MatterConfig, RuleCheck, RuleConfig, ServiceConfig, ServiceLookupConfig, Source, StepConfig,
};
pub use deadlines::DeadlinesConfig;
pub use departments::{DepartmentConfig, TlsConfig};
pub use materials::{MaterialConfig, MaterialFormat, MaterialsConfig, Need, Obtain};
pub use plugins::{Limits, MAX_MEMORY_MIB, PluginsConfig, StagedConfig, TrustedKey};
pub use server::{
    AdminConfig, ListenerTls, LogConfig, LogFormat, OperatorConfig, ServerConfig, TelemetryConfig,
};
pub use store::{Cipher, EncryptionConfig, KeyConfig, PayloadKey, StoreConfig};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A configuration the gateway refuses, naming where and why: `file:line:column: key: reason`
/// (the position when the key or the syntax error is found in the file, else `file: key:
/// reason`).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file: TOML's own position for a syntax or type error, else the value of
    /// `key` (or the table nearest to it that is there). `None` when the file cannot be read
    /// or the key is not in it.
    pub position: Option<Position>,
    /// Dotted key of the offending setting (empty when the file itself is the problem).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// A place in a config file: 1-based line and column (the column counts characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to its end and to a character boundary).
    pub fn of(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(Position { line, column }) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl ConfigError {
    /// A problem at `key` of `file` (its position is found by [`ConfigError::locate`]).
    pub fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            position: None,
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same problem, at the position of its key in `text` (the file's contents), unless
    /// it has a position already.
    pub fn located_in(mut self, text: &str) -> Self {
        if self.position.is_none() {
            self.position = position_of_key(text, &self.key);
        }
        self
    }

    /// The same problem, at the position of its key in its file, read again (unless it has a
    /// position already, or the file cannot be read).
    pub fn locate(self) -> Self {
        if self.position.is_some() || self.key.is_empty() {
            return self;
        }
        match std::fs::read_to_string(&self.file) {
            Ok(text) => self.located_in(&text),
            Err(_) => self,
        }
    }
}

/// One step of a dotted key: a table key or an array index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    /// A quoted key: never split or joined.
    Quoted(String),
    Index(usize),
}

/// `departments.tax.timeout_ms`, `auth.clients[0].scopes`, `matters."tax.registration".kind`.
fn steps(key: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut chars = key.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, steps: &mut Vec<Step>| {
        if !word.is_empty() {
            steps.push(Step::Key(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut word, &mut steps),
            '"' => {
                flush(&mut word, &mut steps);
                let mut quoted = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => quoted.extend(chars.next()),
                        '"' => break,
                        c => quoted.push(c),
                    }
                }
                steps.push(Step::Quoted(quoted));
            }
            '[' => {
                flush(&mut word, &mut steps);
                let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
                match digits.parse() {
                    Ok(i) => steps.push(Step::Index(i)),
                    Err(_) => return steps,
                }
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut steps);
    steps
}

/// Where the value at `key` starts in the TOML `text`, or the table nearest to it that is
/// there; `None` when the text does not parse or not even the first step is in it. A key
/// named by serde (unquoted) may hold dots: when a step is not a key of its table, it is tried
/// joined with the steps after it.
fn position_of_key(text: &str, key: &str) -> Option<Position> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let steps = steps(key);
    let mut table: &DeTable<'_> = document.get_ref();
    let mut found: Option<std::ops::Range<usize>> = None;
    let mut value: Option<&DeValue<'_>> = None;
    let mut i = 0;
    while i < steps.len() {
        let next = match (&steps[i], value) {
            (Step::Index(n), Some(DeValue::Array(array))) => {
                i += 1;
                array.get(*n)
            }
            (Step::Index(_), _) => None,
            (Step::Quoted(name), None) => {
                i += 1;
                table.get(name.as_str())
            }
            (Step::Key(_), None) => {
                // The longest run of unquoted steps that is a key of this table.
                let run = steps[i..]
                    .iter()
                    .take_while(|s| matches!(s, Step::Key(_)))
                    .count();
                (1..=run).rev().find_map(|n| {
                    let name = steps[i..i + n]
                        .iter()
                        .map(|s| match s {
                            Step::Key(k) => k.as_str(),
                            _ => "",
                        })
                        .collect::<Vec<_>>()
                        .join(".");
                    table.get(name.as_str()).inspect(|_| i += n)
                })
            }
            (Step::Key(_) | Step::Quoted(_), Some(_)) => None,
        };
        let Some(next) = next else { break };
        found = Some(next.span());
        match next.get_ref() {
            DeValue::Table(inner) => {
                table = inner;
                value = None;
            }
            other => value = Some(other),
        }
    }
    found.map(|span| Position::of(text, span.start))
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
    pub auth: AuthConfig,
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
    pub deadlines: DeadlinesConfig,
    /// How the gateway logs (text or JSON lines).
    #[serde(default)]
    pub log: LogConfig,
    /// The audit log of department exchanges: hash, seals.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Export of traces to an OpenTelemetry collector; off when absent.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Uploaded materials: the size cap, how long drafts are kept, the chunk size.
    #[serde(default)]
    pub materials: MaterialsConfig,
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

/// Deserialize TOML, naming the dotted key of the first problem.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let at = |span: Option<std::ops::Range<usize>>| span.map(|s| Position::of(text, s.start));
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
        position: at(e.span()),
        ..ConfigError::new(path, "", e.message().trim_end())
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        ConfigError {
            position: at(inner.span()),
            ..ConfigError::new(path, key, inner.message().trim_end())
        }
        .located_in(text)
    })
}

/// Read `env:NAME` from the environment; any other value is itself.
fn from_env(file: &Path, key: &str, value: &str) -> Result<Option<String>, ConfigError> {
    let Some(var) = value.strip_prefix("env:") else {
        return Ok(None);
    };
    std::env::var(var)
        .map(Some)
        .map_err(|_| ConfigError::new(file, key, format!("environment variable {var} is not set")))
}

impl Config {
    /// Read, parse and check a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "", format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parse and check config text that came from `path`; a problem carries its position in
    /// the file it is in (this one, the catalogue or the holiday calendar).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Self::parse_unlocated(path, text).map_err(|e| {
            if e.file == path {
                e.located_in(text)
            } else {
                e.locate()
            }
        })
    }

    fn parse_unlocated(path: &Path, text: &str) -> Result<Config, ConfigError> {
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
        let catalogue: catalogue::CatalogueFile = parse_toml(&catalogue_path, &catalogue_text)?;
        config.matters = catalogue.matters;
        config.services = catalogue.services;
        config.check(path, &catalogue_path)?;
        Ok(config)
    }

    fn check(&mut self, file: &Path, catalogue: &Path) -> Result<(), ConfigError> {
        self.check_server(file)?;
        self.check_store(file)?;
        if self.departments.is_empty() {
            return Err(ConfigError::new(
                file,
                "departments",
                "no department is configured",
            ));
        }
        for (id, dept) in &mut self.departments {
            dept.check(file, id)?;
            for (name, value) in &mut dept.settings {
                let key = format!("departments.{id}.settings.{name}");
                if let Some(secret) = from_env(file, &key, value)? {
                    *value = secret;
                }
            }
        }
        self.check_plugins(file)?;
        self.check_auth(file)?;
        self.audit.check(file, &self.base_dir)?;
        catalogue::check(catalogue, &self.matters, &self.services, &self.departments)?;
        self.materials.check(file)?;
        materials::check(
            catalogue,
            self.materials.max_mib,
            &self.matters,
            &self.services,
        )?;
        self.deadlines.load_calendar(file, &self.base_dir)?;
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

#[cfg(test)]
mod position_tests {
    use super::*;

    const TEXT: &str = "catalogue = \"c\"\n[server]\nlisten = \"x\"\n\n[departments.tax]\ntimeout_ms = 5\n[departments.tax.tls]\nca = \"q\"\n[[auth.clients]]\nid = \"a\"\n[[auth.clients]]\nid = \"b\"\nscopes = [\"x\", \"y\"]\n[matters.\"tax.registration\"]\nname = \"登记\"\n";

    fn at(key: &str) -> Option<(usize, usize)> {
        position_of_key(TEXT, key).map(|p| (p.line, p.column))
    }

    #[test]
    fn a_key_is_found_at_its_value_or_the_nearest_table_that_is_there() {
        assert_eq!(at("server.listen"), Some((3, 10)));
        assert_eq!(at("departments.tax.timeout_ms"), Some((6, 14)));
        assert_eq!(
            at("departments.tax.tls"),
            Some((7, 1)),
            "a table: its header"
        );
        assert_eq!(
            at("departments.tax.tls.client_cert"),
            Some((7, 1)),
            "absent: its table"
        );
        assert_eq!(at("auth.clients[1].scopes[1]"), Some((13, 16)));
        assert_eq!(at("auth.clients[1]"), Some((11, 1)));
        assert_eq!(at("matters.\"tax.registration\".name"), Some((15, 8)));
        assert_eq!(
            at("matters.tax.registration.name"),
            Some((15, 8)),
            "serde's unquoted path"
        );
        assert_eq!(
            at("admin.operators"),
            None,
            "not even the first step is there"
        );
        assert_eq!(at(""), None);
    }

    #[test]
    fn columns_count_characters_and_errors_print_file_line_column_key_reason() {
        let text = "name = \"登记中心\"\nx = 1\n";
        assert_eq!(Position::of(text, text.find("x").unwrap()).column, 1);
        assert_eq!(Position::of(text, 10), Position { line: 1, column: 9 });
        let error = ConfigError::new(Path::new("g.toml"), "x", "bad").located_in(text);
        assert_eq!(error.to_string(), "g.toml:2:5: x: bad");
        let unplaced = ConfigError::new(Path::new("g.toml"), "y", "missing").located_in(text);
        assert_eq!(unplaced.to_string(), "g.toml: y: missing");
        let syntax = parse_toml::<toml::Table>(Path::new("g.toml"), "a = \n").unwrap_err();
        assert!(syntax.to_string().starts_with("g.toml:1:5: "), "{syntax}");
    }
}
