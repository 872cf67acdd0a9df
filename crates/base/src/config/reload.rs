//! What a reload of the config on a running gateway answers: what it applied and what waits
//! for a restart, or every problem that refused it whole.

use super::ConfigError;
use serde::Serialize;

/// A setting changed in the file that only a restart applies; the running value stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeedsRestart {
    /// Dotted key of the setting.
    pub key: String,
    /// Why it needs a restart.
    pub reason: String,
}

/// What a reload applied.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// What changed, one line each (`departments added: water` …); empty when nothing did.
    pub changes: Vec<String>,
    /// Settings that changed in the file but wait for a restart.
    pub needs_restart: Vec<NeedsRestart>,
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config has problems (each with its file, key and reason); nothing was applied.
    #[error("the new config was refused whole: {} problem(s)", .0.len())]
    Refused(Vec<ConfigError>),
    /// Applying a checked config failed (the store did not take a write).
    #[error("applying the new config failed: {0}")]
    Failed(String),
}
