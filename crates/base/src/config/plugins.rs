//! `[plugins]`: where adapter components come from, the limits of every call into one, staged
//! rollouts and the keys components must be signed with.

use super::{Config, ConfigError};
use crate::signature::TrustedKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The most linear memory any adapter instance may be given, in MiB: the pooling allocator
/// reserves this much address space per instance slot.
pub const MAX_MEMORY_MIB: u32 = 512;

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
    /// Linear memory all adapter instances of this node may hold together, in MiB. A call
    /// whose instance does not fit waits (up to a second) for memory to come back, then is
    /// refused as busy; an instance growing past what is left fails its call.
    #[serde(default = "default_memory_budget_mib")]
    pub memory_budget_mib: u32,
}

fn default_sync_interval_ms() -> u64 {
    250
}

/// 1 GiB: sixteen instances at the default 64 MiB each, or hundreds of ordinary ones (an
/// adapter translating JSON or XML uses one to three MiB), on a node sized in a few GB.
fn default_memory_budget_mib() -> u32 {
    1024
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
    /// Instances of this adapter running wasm at the same moment on one node; the others wait
    /// their turn (waiting is not CPU time, but it is wall-clock time). 0: half the node's
    /// cores, at least one, so one department's adapter never takes every core.
    pub max_running: u32,
    /// Most bytes the adapter may hand the host at once: its answer to one call (its result
    /// or its error, every string and list in it together), or the arguments of one host call
    /// (a department request's body it writes itself; the materials the host streams are not
    /// counted). More fails the call (`adapter_failed`), refused before it is copied out of
    /// the instance.
    pub max_result_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            cpu_ms: 1000,
            call_timeout_ms: 30_000,
            max_instances: 64,
            max_running: 0,
            // 1 MiB: a lookup's record or a receipt is a few KiB; the portal's own request
            // limit (`server.body_limit_bytes`) is 1 MiB too.
            max_result_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// `max_running` as it applies on this machine.
    pub fn running(&self) -> u32 {
        if self.max_running > 0 {
            return self.max_running;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        (cores / 2).max(1)
    }
}

impl Config {
    pub(super) fn check_plugins(&self, file: &Path) -> Result<(), ConfigError> {
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
                ("max_result_bytes", limits.max_result_bytes),
            ] {
                if value == 0 {
                    return Err(ConfigError::new(
                        file,
                        format!("{key}.{name}"),
                        "must be above 0",
                    ));
                }
            }
            if limits.memory_mib > MAX_MEMORY_MIB {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.memory_mib"),
                    format!("at most {} MiB", MAX_MEMORY_MIB),
                ));
            }
        }
        if self.plugins.memory_budget_mib == 0 {
            return Err(ConfigError::new(
                file,
                "plugins.memory_budget_mib",
                "must be above 0",
            ));
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
            if let Err(why) = crate::signature::Verifier::new(key) {
                return Err(ConfigError::new(
                    file,
                    format!("plugins.trusted_keys[{i}].public_key"),
                    why,
                ));
            }
        }
        Ok(())
    }
}
