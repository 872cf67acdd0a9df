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
//! - [`keys`]: `[departments.<id>.keys.<name>]`: keys the host holds for an adapter's `crypto`.
//! - [`catalogue`]: the catalogue file: matters and one-thing services, and value sources.
//! - [`deadlines`]: `[deadlines]`: the holiday calendar, the yellow rule.
//! - [`evaluations`]: `[evaluations]`: 好差评 rectification limit, national reporting.
//! - [`audit`]: `[audit]`: hash, seals, queue.
//! - [`materials`]: `[materials]` and each matter's materials (材料清单).
//! - [`notifications`]: `[notifications]`: the SMS channel, templates, quiet hours; departments'
//!   contacts for 催办.
//! - [`screens`]: `[screens]`: the hall's screens' accounts, roles and sessions.
//! - [`oidc`]: `[screens.oidc]`: sign-in through the hall's unified identity system.
//! - [`reload`]: what a reload of the running gateway's config answers.

pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod deadlines;
pub mod departments;
pub mod evaluations;
pub mod keys;
pub mod materials;
pub mod notifications;
pub mod oidc;
pub mod plugins;
pub mod reload;
pub mod screens;
pub mod server;
pub mod store;

/// Errors name `file:line:column: key: reason`; they are the TOML files' own ([`crate::toml_file`]).
pub use crate::toml_file::{ConfigError, Position, parse_toml};
pub use audit::AuditConfig;
pub use auth::{AuthConfig, ClientConfig, JwtConfig};
pub use catalogue::{
    MatterConfig, RuleCheck, RuleConfig, ServiceConfig, ServiceLookupConfig, Source, StepConfig,
    SupplementClock,
};
pub use deadlines::DeadlinesConfig;
pub use departments::{DepartmentConfig, TlsConfig};
pub use evaluations::EvaluationsConfig;
pub use keys::{DepartmentKey, KeyKind, KeyMaterial};
pub use materials::{
    DEFAULT_COMMITMENT_DAYS, MaterialConfig, MaterialFormat, MaterialsConfig, Need, Obtain,
};
pub use notifications::{Contacts, Notice, NotificationsConfig, TemplateConfig};
pub use oidc::{OidcConfig, OidcRoleConfig};
pub use plugins::{Limits, MAX_MEMORY_MIB, PluginsConfig, StagedConfig};
pub use screens::{AccountConfig, Role, ScreensConfig};
pub use server::{
    AdminConfig, ListenerTls, LogConfig, LogFormat, OperatorConfig, ServerConfig, TelemetryConfig,
};
pub use store::{Cipher, EncryptionConfig, KeyConfig, PayloadKey, StoreConfig};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// Notifications by SMS (applicant notices, 催办); nothing is sent when absent.
    pub notifications: Option<NotificationsConfig>,
    /// 好差评: the rectification limit, reporting to the national system.
    #[serde(default)]
    pub evaluations: EvaluationsConfig,
    /// The hall's screens (clerks, supervisors, operators); off when absent.
    pub screens: Option<ScreensConfig>,
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
        self.check_screens(file)?;
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
        self.evaluations.check(file, &self.departments)?;
        if let Some(notifications) = &mut self.notifications {
            notifications.check(file, &self.departments)?;
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
