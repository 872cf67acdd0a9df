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
//!
//! Keyed digests ([`PayloadCipher::keyed_digests`]): HMAC-SM3 under a key derived from each
//! payload key, for finding a value that is stored only sealed (a phone number opted out by
//! its owner's reply) without keeping it in clear.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gateway_base::config::{Cipher, PayloadKey};
use std::collections::HashMap;

/// What the digest keys are derived with (HMAC-SM3 of this under each payload key).
const DIGEST_KEY_LABEL: &str = "gateway keyed digest v1";

/// What marks a sealed value.
const PREFIX: &str = "enc1:";
const NONCE_LEN: usize = 12;

type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

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

enum Sealer {
    Sm4(Box<Sm4Gcm>),
    Aes(Box<Aes256Gcm>),
}

impl Sealer {
    fn new(algorithm: Cipher, key: &[u8]) -> Option<Sealer> {
        Some(match algorithm {
            Cipher::Sm4Gcm => Sealer::Sm4(Box::new(Sm4Gcm::new_from_slice(key).ok()?)),
            Cipher::Aes256Gcm => Sealer::Aes(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
        })
    }

    fn encrypt(&self, nonce: &[u8; NONCE_LEN], payload: Payload<'_, '_>) -> Vec<u8> {
        let nonce = Nonce::from_slice(nonce);
        match self {
            Sealer::Sm4(c) => c.encrypt(nonce, payload),
            Sealer::Aes(c) => c.encrypt(nonce, payload),
        }
        // GCM fails only past 64 GiB in one message; the body limit is far below that.
        .expect("GCM encryption of a bounded payload")
    }

    fn decrypt(&self, nonce: &[u8], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = Nonce::from_slice(nonce);
        match self {
            Sealer::Sm4(c) => c.decrypt(nonce, payload).ok(),
            Sealer::Aes(c) => c.decrypt(nonce, payload).ok(),
        }
    }
}

/// The configured payload keys.
pub struct PayloadCipher {
    current: String,
    keys: HashMap<String, Sealer>,
    /// Per key id, the HMAC key of [`PayloadCipher::keyed_digests`], derived from the
    /// payload key (never the payload key itself), the current one first.
    digest_keys: Vec<(String, String)>,
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
    /// The ciphers of `[store.encryption]`'s keys (read and checked with the config, the
    /// current one first); `None` when encryption is off.
    pub fn new(keys: &[PayloadKey]) -> Option<PayloadCipher> {
        let current = keys.first()?.id.clone();
        let digest_keys = keys
            .iter()
            .map(|k| {
                (
                    k.id.clone(),
                    sdk::sign::hmac_sm3_hex(&k.bytes, DIGEST_KEY_LABEL.as_bytes()),
                )
            })
            .collect();
        let keys = keys
            .iter()
            .map(|k| {
                let cipher = Sealer::new(k.cipher, &k.bytes)
                    .expect("the config check gave each cipher a key of its length");
                (k.id.clone(), cipher)
            })
            .collect();
        Some(PayloadCipher {
            current,
            keys,
            digest_keys,
        })
    }

    /// Keyed digests (HMAC-SM3) of `value` for the place `context` names, one per configured
    /// key, the current key's first: `<key id>:<hex>`. What a value is found by without
    /// storing it in clear (a phone number beside its sealed form); after a key rotation the
    /// older keys' digests still match what they made.
    pub fn keyed_digests(&self, context: &str, value: &str) -> Vec<String> {
        let message = format!("{context}\0{value}");
        self.digest_keys
            .iter()
            .map(|(id, key)| {
                format!(
                    "{id}:{}",
                    sdk::sign::hmac_sm3_hex(key.as_bytes(), message.as_bytes())
                )
            })
            .collect()
    }

    /// Seal `plain` for the place `context` names, with the current key.
    pub fn seal(&self, context: &str, plain: &str) -> String {
        self.seal_bytes(context, plain.as_bytes())
    }

    /// Seal bytes (a chunk of a material) for the place `context` names, with the current key.
    pub fn seal_bytes(&self, context: &str, plain: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self.keys[&self.current].encrypt(
            &nonce,
            Payload {
                msg: plain,
                aad: context.as_bytes(),
            },
        );
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.current, B64.encode(bytes))
    }

    /// Open a stored value sealed for `context`; plain values come back unchanged.
    pub fn open(cipher: Option<&Self>, context: &str, stored: String) -> Result<String, OpenError> {
        if !Self::is_sealed(&stored) {
            return Ok(stored);
        }
        let plain = Self::open_sealed(cipher, context, &stored)?;
        String::from_utf8(plain).map_err(|_| OpenError::Malformed)
    }

    /// Bytes as they are stored for `context`: sealed with the current key, or base64 when
    /// encryption is off (base64 never starts with `enc1:`, so the two never mix up).
    pub fn store_bytes(cipher: Option<&Self>, context: &str, plain: &[u8]) -> String {
        match cipher {
            Some(cipher) => cipher.seal_bytes(context, plain),
            None => B64.encode(plain),
        }
    }

    /// Stored bytes back: opened when sealed (for `context`), decoded when base64.
    pub fn open_bytes(
        cipher: Option<&Self>,
        context: &str,
        stored: &str,
    ) -> Result<Vec<u8>, OpenError> {
        if Self::is_sealed(stored) {
            Self::open_sealed(cipher, context, stored)
        } else {
            B64.decode(stored).map_err(|_| OpenError::Malformed)
        }
    }

    fn open_sealed(
        cipher: Option<&Self>,
        context: &str,
        stored: &str,
    ) -> Result<Vec<u8>, OpenError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
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
        Ok(plain)
    }

    /// Whether a stored value is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(keys: &[(&str, Cipher, &str)], current: &str) -> PayloadCipher {
        PayloadCipher {
            current: current.into(),
            keys: keys
                .iter()
                .map(|(id, algorithm, key)| {
                    let bytes = B64.decode(key).unwrap();
                    (id.to_string(), Sealer::new(*algorithm, &bytes).unwrap())
                })
                .collect(),
            digest_keys: Vec::new(),
        }
    }

    #[test]
    fn sealed_values_open_in_their_place_only() {
        for algorithm in [Cipher::Sm4Gcm, Cipher::Aes256Gcm] {
            let key = algorithm.new_key();
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
        let old = Cipher::Sm4Gcm.new_key();
        let new = Cipher::Aes256Gcm.new_key();
        let before = cipher(&[("2025", Cipher::Sm4Gcm, &old)], "2025");
        let sealed_before = before.seal("steps.input:c1:s1", "{}");
        let after = cipher(
            &[
                ("2025", Cipher::Sm4Gcm, &old),
                ("2026", Cipher::Aes256Gcm, &new),
            ],
            "2026",
        );
        assert!(after.seal("x", "{}").starts_with("enc1:2026:"));
        assert_eq!(
            PayloadCipher::open(Some(&after), "steps.input:c1:s1", sealed_before.clone()).unwrap(),
            "{}"
        );
        // A gateway that lost the old key, or has no keys at all, says which key is missing.
        let only_new = cipher(&[("2026", Cipher::Aes256Gcm, &new)], "2026");
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
}
