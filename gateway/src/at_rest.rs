//! Encryption of stored application payloads: the form, the lookups' answers, each step's
//! input and callbacks held for later, sealed with an AEAD cipher before they reach the store.
//!
//! A sealed value is text, so one schema fits SQLite and PostgreSQL:
//! `enc1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`. The key id lets keys rotate: new values
//! are sealed with the `current` key, and every configured key can still open what it sealed.
//! Each value is bound to its place (`cases.form:<case id>` …) as associated data, so a sealed
//! value copied into another row or column does not open. Values written before encryption was
//! switched on are plain JSON (never starting with `enc1:`) and read as they are.
//!
//! Ciphers: SM4-GCM (SM4 from GB/T 32907, the national standard block cipher; the default, as
//! government systems are expected to use it) or AES-256-GCM, both from RustCrypto's `aes-gcm`
//! GCM construction. Nonces are 96 random bits per value; rotate keys well before 2³² values.

use crate::config::{Config, ConfigError};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What marks a sealed value.
const PREFIX: &str = "enc1:";
const NONCE_LEN: usize = 12;

type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

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
    pub algorithm: Algorithm,
    /// File holding the base64 key (relative to the config file).
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the base64 key.
    pub key_env: Option<String>,
}

/// An AEAD cipher for stored payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    /// SM4 in Galois/Counter Mode, 128-bit key.
    #[default]
    #[serde(rename = "sm4-gcm")]
    Sm4Gcm,
    /// AES-256 in Galois/Counter Mode.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Algorithm {
    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::Sm4Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }
}

/// A stored value that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Sealed with a key id this gateway is not configured with.
    #[error("sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    /// Sealed, but the gateway has no `[store.encryption]` at all.
    #[error("sealed with key `{0}`, but store encryption is not configured")]
    NotConfigured(String),
    /// Not a well-formed sealed value.
    #[error("malformed sealed value")]
    Malformed,
    /// The tag does not verify: a different key, or the value was altered or moved.
    #[error("sealed value does not verify with key `{0}` (altered, moved, or another key)")]
    Rejected(String),
}

enum Cipher {
    Sm4(Box<Sm4Gcm>),
    Aes(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(algorithm: Algorithm, key: &[u8]) -> Option<Cipher> {
        Some(match algorithm {
            Algorithm::Sm4Gcm => Cipher::Sm4(Box::new(Sm4Gcm::new_from_slice(key).ok()?)),
            Algorithm::Aes256Gcm => Cipher::Aes(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
        })
    }

    fn encrypt(&self, nonce: &[u8; NONCE_LEN], payload: Payload<'_, '_>) -> Vec<u8> {
        let nonce = Nonce::from_slice(nonce);
        match self {
            Cipher::Sm4(c) => c.encrypt(nonce, payload),
            Cipher::Aes(c) => c.encrypt(nonce, payload),
        }
        // GCM fails only past 64 GiB in one message; the body limit is far below that.
        .expect("GCM encryption of a bounded payload")
    }

    fn decrypt(&self, nonce: &[u8], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = Nonce::from_slice(nonce);
        match self {
            Cipher::Sm4(c) => c.decrypt(nonce, payload).ok(),
            Cipher::Aes(c) => c.decrypt(nonce, payload).ok(),
        }
    }
}

/// The configured payload keys.
pub struct PayloadCipher {
    current: String,
    keys: HashMap<String, Cipher>,
}

impl std::fmt::Debug for PayloadCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.debug_struct("PayloadCipher")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PayloadCipher {
    /// The keys of `[store.encryption]`, read and checked; `None` when it is absent.
    pub fn from_config(config: &Config, file: &Path) -> Result<Option<PayloadCipher>, ConfigError> {
        let Some(encryption) = &config.store.encryption else {
            return Ok(None);
        };
        let mut keys = HashMap::new();
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
            let text = match (&key.key_file, &key.key_env) {
                (Some(path), None) => {
                    let path = config.resolve(path);
                    std::fs::read_to_string(&path).map_err(|e| {
                        ConfigError::new(file, at("key_file"), format!("{}: {e}", path.display()))
                    })?
                }
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    ConfigError::new(file, at("key_env"), format!("${var} is not set"))
                })?,
                _ => {
                    return Err(ConfigError::new(
                        file,
                        at("key_file"),
                        "give exactly one of key_file and key_env",
                    ));
                }
            };
            let source = if key.key_file.is_some() {
                "key_file"
            } else {
                "key_env"
            };
            let bytes = B64
                .decode(text.trim())
                .map_err(|_| ConfigError::new(file, at(source), "not base64"))?;
            let cipher = (bytes.len() == key.algorithm.key_len())
                .then(|| Cipher::new(key.algorithm, &bytes))
                .flatten()
                .ok_or_else(|| {
                    ConfigError::new(
                        file,
                        at(source),
                        format!(
                            "{} needs a {}-byte key, this one has {} bytes",
                            key.algorithm.name(),
                            key.algorithm.key_len(),
                            bytes.len()
                        ),
                    )
                })?;
            if keys.insert(key.id.clone(), cipher).is_some() {
                return Err(ConfigError::new(file, at("id"), "a key id is used twice"));
            }
        }
        if !keys.contains_key(&encryption.current) {
            return Err(ConfigError::new(
                file,
                "store.encryption.current",
                format!("no key `{}` in store.encryption.keys", encryption.current),
            ));
        }
        Ok(Some(PayloadCipher {
            current: encryption.current.clone(),
            keys,
        }))
    }

    /// Seal `plain` for the place `context` names, with the current key.
    pub fn seal(&self, context: &str, plain: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self.keys[&self.current].encrypt(
            &nonce,
            Payload {
                msg: plain.as_bytes(),
                aad: context.as_bytes(),
            },
        );
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.current, B64.encode(bytes))
    }

    /// Open a stored value sealed for `context`; plain values come back unchanged.
    pub fn open(cipher: Option<&Self>, context: &str, stored: String) -> Result<String, OpenError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored);
        };
        let (id, body) = rest.split_once(':').ok_or(OpenError::Malformed)?;
        let Some(cipher) = cipher else {
            return Err(OpenError::NotConfigured(id.to_string()));
        };
        let key = cipher
            .keys
            .get(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_string()))?;
        let bytes = B64.decode(body).map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = key
            .decrypt(
                nonce,
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .ok_or_else(|| OpenError::Rejected(id.to_string()))?;
        String::from_utf8(plain).map_err(|_| OpenError::Malformed)
    }

    /// Whether a stored value is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sm4Gcm => "sm4-gcm",
            Algorithm::Aes256Gcm => "aes-256-gcm",
        }
    }
}

/// A new random key for `algorithm`, as the base64 text a key file holds.
pub fn new_key(algorithm: Algorithm) -> String {
    let key: Vec<u8> = (0..algorithm.key_len()).map(|_| rand::random()).collect();
    B64.encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(keys: &[(&str, Algorithm, &str)], current: &str) -> PayloadCipher {
        PayloadCipher {
            current: current.into(),
            keys: keys
                .iter()
                .map(|(id, algorithm, key)| {
                    let bytes = B64.decode(key).unwrap();
                    (id.to_string(), Cipher::new(*algorithm, &bytes).unwrap())
                })
                .collect(),
        }
    }

    #[test]
    fn sealed_values_open_in_their_place_only() {
        for algorithm in [Algorithm::Sm4Gcm, Algorithm::Aes256Gcm] {
            let key = new_key(algorithm);
            let c = cipher(&[("k1", algorithm, &key)], "k1");
            let form = r#"{"name":"张三","id_number":"11010519491231002X"}"#;
            let sealed = c.seal("cases.form:c1", form);
            assert!(sealed.starts_with("enc1:k1:"), "{sealed}");
            assert!(!sealed.contains("张三") && !sealed.contains("11010519491231002X"));
            assert_ne!(
                sealed,
                c.seal("cases.form:c1", form),
                "a fresh nonce per value"
            );
            assert_eq!(
                PayloadCipher::open(Some(&c), "cases.form:c1", sealed.clone()).unwrap(),
                form
            );
            // Moved to another case, or altered by one character: refused.
            assert!(matches!(
                PayloadCipher::open(Some(&c), "cases.form:c2", sealed.clone()),
                Err(OpenError::Rejected(_))
            ));
            let mut altered = sealed.clone().into_bytes();
            let last = altered.len() - 3;
            altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
            assert!(
                PayloadCipher::open(
                    Some(&c),
                    "cases.form:c1",
                    String::from_utf8(altered).unwrap()
                )
                .is_err()
            );
        }
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_plain_values_pass() {
        let old = new_key(Algorithm::Sm4Gcm);
        let new = new_key(Algorithm::Aes256Gcm);
        let before = cipher(&[("2025", Algorithm::Sm4Gcm, &old)], "2025");
        let sealed_before = before.seal("steps.input:c1:s1", "{}");
        let after = cipher(
            &[
                ("2025", Algorithm::Sm4Gcm, &old),
                ("2026", Algorithm::Aes256Gcm, &new),
            ],
            "2026",
        );
        assert!(after.seal("x", "{}").starts_with("enc1:2026:"));
        assert_eq!(
            PayloadCipher::open(Some(&after), "steps.input:c1:s1", sealed_before.clone()).unwrap(),
            "{}"
        );
        // A gateway that lost the old key, or has no keys at all, says which key is missing.
        let only_new = cipher(&[("2026", Algorithm::Aes256Gcm, &new)], "2026");
        assert!(matches!(
            PayloadCipher::open(Some(&only_new), "steps.input:c1:s1", sealed_before.clone()),
            Err(OpenError::UnknownKey(id)) if id == "2025"
        ));
        assert!(matches!(
            PayloadCipher::open(None, "steps.input:c1:s1", sealed_before),
            Err(OpenError::NotConfigured(_))
        ));
        assert_eq!(
            PayloadCipher::open(None, "x", r#"{"plain":true}"#.into()).unwrap(),
            r#"{"plain":true}"#
        );
    }

    #[test]
    fn keys_are_checked_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(dir.path().join("short.key"), B64.encode([7u8; 16])).unwrap();
        // The demo config, its relative paths now resolved against the temporary folder.
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/gateway.toml");
        let mut config = Config::load(Path::new(demo)).unwrap();
        config.base_dir = dir.path().to_path_buf();
        config.store.encryption = Some(EncryptionConfig {
            current: "a".into(),
            keys: vec![KeyConfig {
                id: "a".into(),
                algorithm: Algorithm::Aes256Gcm,
                key_file: Some("short.key".into()),
                key_env: None,
            }],
        });
        let e = PayloadCipher::from_config(&config, &file).unwrap_err();
        assert_eq!(e.key, "store.encryption.keys[0].key_file");
        assert!(e.reason.contains("32-byte"), "{}", e.reason);
        config.store.encryption.as_mut().unwrap().keys[0].algorithm = Algorithm::Sm4Gcm;
        config.store.encryption.as_mut().unwrap().current = "b".into();
        let e = PayloadCipher::from_config(&config, &file).unwrap_err();
        assert_eq!(e.key, "store.encryption.current");
        config.store.encryption.as_mut().unwrap().current = "a".into();
        assert!(
            PayloadCipher::from_config(&config, &file)
                .unwrap()
                .is_some()
        );
    }
}
