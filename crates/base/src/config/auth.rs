//! `[auth]`: the portal clients, their scopes and the keys bearer tokens are verified with.

use super::server::is_sha256_hex;
use super::{Config, ConfigError, from_env};
use serde::Deserialize;
use std::path::Path;

/// `[auth]`: the portal clients and the token keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The portal clients allowed to call.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Keys JWT bearer tokens are verified against. Absent: API keys only.
    pub jwt: Option<JwtConfig>,
}

/// One portal client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Client id: a token's `sub`, the owner recorded on its cases.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Hex SHA-256 of its API key (`gateway client-key` makes one). Absent: tokens only.
    pub api_key_sha256: Option<String>,
    /// What it may do (see the module doc).
    pub scopes: Vec<String>,
    /// Requests a minute it may send (spread out: a burst of at most a sixth of it); absent:
    /// no limit of its own.
    pub rate_per_minute: Option<u32>,
}

/// JWT verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// `HS256` (shared secret) or `EdDSA` (Ed25519 public key).
    pub algorithm: String,
    /// HS256: the secret (use `env:NAME`); EdDSA: base64 of the 32-byte public key.
    pub key: String,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
}

impl Config {
    pub(super) fn check_auth(&mut self, file: &Path) -> Result<(), ConfigError> {
        let mut ids = std::collections::BTreeSet::new();
        for (i, c) in self.auth.clients.iter().enumerate() {
            let key = |k: &str| format!("auth.clients[{i}].{k}");
            if c.id.trim().is_empty() || !ids.insert(c.id.clone()) {
                return Err(ConfigError::new(file, key("id"), "empty or used twice"));
            }
            if let Some(hash) = &c.api_key_sha256
                && !is_sha256_hex(hash)
            {
                return Err(ConfigError::new(
                    file,
                    key("api_key_sha256"),
                    "64 hex digits: the SHA-256 of the key (`gateway client-key` makes one)",
                ));
            }
            for scope in &c.scopes {
                if !is_scope(scope) {
                    return Err(ConfigError::new(
                        file,
                        key("scopes"),
                        format!(
                            "`{scope}` is not a scope: apply:<service>, lookup:<name> (or :*), cases:all, supervision, subjects"
                        ),
                    ));
                }
            }
            if c.rate_per_minute == Some(0) {
                return Err(ConfigError::new(
                    file,
                    key("rate_per_minute"),
                    "must be above 0",
                ));
            }
        }
        if let Some(jwt) = &mut self.auth.jwt {
            if let Some(secret) = from_env(file, "auth.jwt.key", &jwt.key)? {
                jwt.key = secret;
            }
            jwt.check()
                .map_err(|why| ConfigError::new(file, "auth.jwt", why))?;
        }
        Ok(())
    }
}

/// Whether `scope` is one the gateway grants (the module doc of gateway-http's `auth` says what
/// each allows); clerks on the screens carry the same names.
pub(super) fn is_scope(scope: &str) -> bool {
    matches!(scope, "cases:all" | "supervision" | "subjects")
        || scope
            .strip_prefix("apply:")
            .or_else(|| scope.strip_prefix("lookup:"))
            .is_some_and(|rest| !rest.is_empty())
}

impl JwtConfig {
    /// The algorithm is one the gateway verifies, and the key is a key of it.
    fn check(&self) -> Result<(), String> {
        match self.algorithm.as_str() {
            "HS256" if self.key.is_empty() => Err("key: the HS256 secret is empty".into()),
            "HS256" => Ok(()),
            "EdDSA" => self.ed25519_key().map(drop),
            other => Err(format!("algorithm: {other} is not HS256 or EdDSA")),
        }
    }

    /// The EdDSA public key's 32 bytes.
    pub fn ed25519_key(&self) -> Result<[u8; 32], String> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.key.trim())
            .map_err(|e| format!("key: not base64: {e}"))?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| "key: an Ed25519 public key is 32 bytes".to_string())?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|e| format!("key: not an Ed25519 public key: {e}"))?;
        Ok(raw)
    }
}
