//! `[store]`: where cases are kept, and the keys application payloads are sealed with.

use super::{Config, ConfigError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Case storage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://…`.
    pub url: String,
    /// Seal application payloads before they are stored (off when absent).
    pub encryption: Option<EncryptionConfig>,
}

/// `[store.encryption]`: the keys of stored payloads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Id of the key new values are sealed with.
    pub current: String,
    /// Every key values may be sealed with: the current one and older ones kept for reading.
    pub keys: Vec<KeyConfig>,
}

/// One payload key. The key itself is never in the config file: it is read from a file or an
/// environment variable, as base64 (16 bytes for SM4, 32 for AES-256).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Short id stored with every value sealed with this key (letters, digits, `-`, `_`).
    pub id: String,
    /// The cipher (default `sm4-gcm`).
    #[serde(default)]
    pub algorithm: Cipher,
    /// File holding the base64 key (relative to the config file).
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the base64 key.
    pub key_env: Option<String>,
}

/// An AEAD cipher for stored payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Cipher {
    /// SM4 in Galois/Counter Mode, 128-bit key.
    #[default]
    #[serde(rename = "sm4-gcm")]
    Sm4Gcm,
    /// AES-256 in Galois/Counter Mode.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Cipher {
    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Sm4Gcm => 16,
            Cipher::Aes256Gcm => 32,
        }
    }

    /// The name in the config.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Sm4Gcm => "sm4-gcm",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// A new random key, as the base64 text a key file holds (`gateway store-key`).
    pub fn new_key(self) -> String {
        let key: Vec<u8> = (0..self.key_len()).map(|_| rand::random()).collect();
        B64.encode(key)
    }
}

/// One payload key read from its file or variable, of the right length for its cipher.
#[derive(Clone)]
pub struct PayloadKey {
    /// Its id.
    pub id: String,
    /// Its cipher.
    pub cipher: Cipher,
    /// The key bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material: configs get printed.
        f.debug_struct("PayloadKey")
            .field("id", &self.id)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The keys of `[store.encryption]`, read and checked (config paths are relative to the
    /// file); empty when encryption is off. The first key is the current one.
    pub fn payload_keys(&self) -> Result<Vec<PayloadKey>, ConfigError> {
        let file = self.source.as_path();
        let Some(encryption) = &self.store.encryption else {
            return Ok(Vec::new());
        };
        let mut keys: Vec<PayloadKey> = Vec::new();
        for (i, key) in encryption.keys.iter().enumerate() {
            let at = |k: &str| format!("store.encryption.keys[{i}].{k}");
            if key.id.is_empty()
                || !key
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::new(
                    file,
                    at("id"),
                    "letters, digits, '-' and '_' only",
                ));
            }
            let (source, text) = match (&key.key_file, &key.key_env) {
                (Some(path), None) => {
                    let path = self.resolve(path);
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        ConfigError::new(file, at("key_file"), format!("{}: {e}", path.display()))
                    })?;
                    ("key_file", text)
                }
                (None, Some(var)) => {
                    let text = std::env::var(var).map_err(|_| {
                        ConfigError::new(file, at("key_env"), format!("${var} is not set"))
                    })?;
                    ("key_env", text)
                }
                _ => {
                    return Err(ConfigError::new(
                        file,
                        at("key_file"),
                        "give exactly one of key_file and key_env",
                    ));
                }
            };
            let bytes = B64
                .decode(text.trim())
                .map_err(|_| ConfigError::new(file, at(source), "not base64"))?;
            if bytes.len() != key.algorithm.key_len() {
                return Err(ConfigError::new(
                    file,
                    at(source),
                    format!(
                        "{} needs a {}-byte key, this one has {} bytes",
                        key.algorithm.name(),
                        key.algorithm.key_len(),
                        bytes.len()
                    ),
                ));
            }
            if keys.iter().any(|k| k.id == key.id) {
                return Err(ConfigError::new(file, at("id"), "a key id is used twice"));
            }
            keys.push(PayloadKey {
                id: key.id.clone(),
                cipher: key.algorithm,
                bytes,
            });
        }
        let Some(current) = keys.iter().position(|k| k.id == encryption.current) else {
            return Err(ConfigError::new(
                file,
                "store.encryption.current",
                format!("no key `{}` in store.encryption.keys", encryption.current),
            ));
        };
        keys.swap(0, current);
        Ok(keys)
    }

    pub(super) fn check_store(&self, file: &Path) -> Result<(), ConfigError> {
        if !(self.store.url.starts_with("sqlite:") || self.store.url.starts_with("postgres")) {
            return Err(ConfigError::new(
                file,
                "store.url",
                "must start with sqlite: or postgres://",
            ));
        }
        self.payload_keys().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(dir.path().join("short.key"), B64.encode([7u8; 16])).unwrap();
        // The demo config, its relative paths now resolved against the temporary folder. The
        // SM2 keys the simulated 社保 bureau writes when the demo starts are made here instead.
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/gateway.toml");
        let mut text = std::fs::read_to_string(demo).unwrap();
        let key = sm2::SecretKey::from_slice(&[7; 32]).unwrap();
        let pems = {
            use sm2::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
            [
                (
                    "social-security-gateway-key.pem",
                    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                ),
                (
                    "social-security-department.pem",
                    key.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
                ),
            ]
        };
        for (name, pem) in pems {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            text = text.replace(&format!("../var/demo-certs/{name}"), path.to_str().unwrap());
        }
        let mut config = Config::parse(Path::new(demo), &text).unwrap();
        config.source = file.clone();
        config.base_dir = dir.path().to_path_buf();
        config.store.encryption = Some(EncryptionConfig {
            current: "a".into(),
            keys: vec![KeyConfig {
                id: "a".into(),
                algorithm: Cipher::Aes256Gcm,
                key_file: Some("short.key".into()),
                key_env: None,
            }],
        });
        let e = config.payload_keys().unwrap_err();
        assert_eq!(e.key, "store.encryption.keys[0].key_file");
        assert!(e.reason.contains("32-byte"), "{}", e.reason);
        config.store.encryption.as_mut().unwrap().keys[0].algorithm = Cipher::Sm4Gcm;
        config.store.encryption.as_mut().unwrap().current = "b".into();
        let e = config.payload_keys().unwrap_err();
        assert_eq!(e.key, "store.encryption.current");
        config.store.encryption.as_mut().unwrap().current = "a".into();
        assert!(config.payload_keys().unwrap().len() == 1);
    }
}
