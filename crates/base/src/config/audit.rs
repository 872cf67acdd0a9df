//! `[audit]`: the audit log's hash, its seals and its queue.

use super::ConfigError;
use crate::digest::HashAlgorithm;
use crate::signature::SigningKeyFile;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `[audit]` table of the gateway config (optional: the log is always kept; without a
/// signing key it is chained but not sealed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `sm3` (default, GB/T 32905) or `sha256`: the chain's hash and the exchanges' digests.
    #[serde(default)]
    pub hash: HashAlgorithm,
    /// A key file made by `gateway plugin keygen` (Ed25519 or SM2), relative to the config
    /// file; seals are signed with it. Absent: no seals.
    pub signing_key: Option<PathBuf>,
    /// Seal after this many records.
    #[serde(default = "default_seal_every_records")]
    pub seal_every_records: u64,
    /// Seal at least this often while records come, in milliseconds.
    #[serde(default = "default_seal_interval_ms")]
    pub seal_interval_ms: u64,
    /// Records waiting for the writer; beyond this they are dropped (and counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// The signing key, read when the config is loaded.
    #[serde(skip)]
    pub key: Option<SealKey>,
}

/// The seal signing key; its `Debug` leaves the secret out (configs get printed).
#[derive(Clone)]
pub struct SealKey(pub SigningKeyFile);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("id", &self.0.id)
            .field("algorithm", &self.0.algorithm)
            .field("public_key", &self.0.public_key)
            .finish_non_exhaustive()
    }
}

fn default_seal_every_records() -> u64 {
    1000
}
fn default_seal_interval_ms() -> u64 {
    60_000
}
fn default_queue() -> usize {
    10_000
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            hash: HashAlgorithm::default(),
            signing_key: None,
            seal_every_records: default_seal_every_records(),
            seal_interval_ms: default_seal_interval_ms(),
            queue: default_queue(),
            key: None,
        }
    }
}

impl AuditConfig {
    /// Check the numbers and read the signing key (config paths are relative to the file).
    pub(super) fn check(&mut self, file: &Path, base_dir: &Path) -> Result<(), ConfigError> {
        for (name, value) in [
            ("seal_every_records", self.seal_every_records),
            ("seal_interval_ms", self.seal_interval_ms),
            ("queue", self.queue as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::new(
                    file,
                    format!("audit.{name}"),
                    "must be above 0",
                ));
            }
        }
        let Some(path) = &self.signing_key else {
            return Ok(());
        };
        let path = base_dir.join(path);
        let refuse = |why: String| ConfigError::new(file, "audit.signing_key", why);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
        let key: SigningKeyFile = toml::from_str(&text).map_err(|e| {
            refuse(format!(
                "{} is not a key file from `gateway plugin keygen`: {}",
                path.display(),
                e.message()
            ))
        })?;
        // A key that cannot sign would only show at the first seal: try it now.
        let signature = key.sign_bytes(b"check").map_err(refuse)?;
        let verifier = crate::signature::Verifier::new(&key.trusted_key())
            .map_err(|why| refuse(format!("its public key: {why}")))?;
        if !verifier.verify(b"check", &signature) {
            return Err(refuse(
                "its public key does not match its secret key".into(),
            ));
        }
        self.key = Some(SealKey(key));
        Ok(())
    }
}
