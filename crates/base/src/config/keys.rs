//! `[departments.<id>.keys.<name>]`: keys the host holds for a department's adapter, which
//! names them in its `crypto` calls and never sees their bytes.
//!
//! A key is never written in the config itself: `value` is `file:PATH` (relative to the config
//! file) or `env:NAME`. SM2 and Ed25519 keys are PEM (a private key PKCS#8 `PRIVATE KEY`, a
//! public key SPKI `PUBLIC KEY`); an `hmac` secret is the text's bytes as the department issued
//! it (or `encoding = "hex"` / `"base64"`), an `sm4` key 16 bytes given as 32 hex digits (or
//! `encoding = "base64"`). A trailing line break of a file or variable is dropped.
//!
//! Keys are parsed here, once, at start and on every reload: a key that does not parse refuses
//! the config naming the key. Their bytes are zeroized on drop (the RustCrypto key types and
//! [`zeroize::Zeroizing`]), never printed by `Debug`, and the text forms of secret keys are
//! scrubbed from logs and answers like secret settings ([`DepartmentKey::secret_texts`]).

use super::ConfigError;
use base64::Engine as _;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The distinguishing id of SM2 signatures (GM/T 0009's default), the contract's.
pub const SM2_DISTID: &str = "1234567812345678";

/// What a key is, and so what it can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// SM2 private key (signs, and verifies with its public half).
    Sm2Private,
    /// SM2 public key (verifies), e.g. the department's.
    Sm2Public,
    /// Ed25519 private key.
    Ed25519Private,
    /// Ed25519 public key.
    Ed25519Public,
    /// A MAC secret (HMAC-SHA256, HMAC-SM3).
    Hmac,
    /// An SM4 key (SM4-CBC encryption and decryption).
    Sm4,
}

impl KeyKind {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Sm2Private => "sm2-private",
            KeyKind::Sm2Public => "sm2-public",
            KeyKind::Ed25519Private => "ed25519-private",
            KeyKind::Ed25519Public => "ed25519-public",
            KeyKind::Hmac => "hmac",
            KeyKind::Sm4 => "sm4",
        }
    }
}

/// How the text of an `hmac` or `sm4` key gives its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEncoding {
    /// The text's own bytes (UTF-8): the default for `hmac`.
    Text,
    /// Hex digits: the default for `sm4`.
    Hex,
    /// Base64 (RFC 4648, standard alphabet).
    Base64,
}

/// One key of a department.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentKey {
    /// What the key is.
    pub kind: KeyKind,
    /// Where it is: `file:PATH` or `env:NAME`.
    pub value: String,
    /// For `hmac` and `sm4` keys: how the text gives the bytes.
    pub encoding: Option<KeyEncoding>,
    /// The parsed key, once checked.
    #[serde(skip)]
    pub material: Option<Arc<KeyMaterial>>,
    /// The text it was read from, when that text is itself a secret (hmac, sm4, private keys),
    /// for scrubbing.
    #[serde(skip)]
    secret_text: Option<Arc<Zeroizing<String>>>,
}

impl std::fmt::Debug for DepartmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepartmentKey")
            .field("kind", &self.kind)
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

/// A parsed key. Private parts are zeroized when the last holder drops it.
pub enum KeyMaterial {
    /// SM2 signing key with the contract's distinguishing id.
    Sm2Private(Box<sm2::dsa::SigningKey>),
    /// SM2 verifying key with the contract's distinguishing id.
    Sm2Public(Box<sm2::dsa::VerifyingKey>),
    /// Ed25519 signing key.
    Ed25519Private(Box<ed25519_dalek::SigningKey>),
    /// Ed25519 verifying key.
    Ed25519Public(Box<ed25519_dalek::VerifyingKey>),
    /// MAC secret.
    Hmac(Zeroizing<Vec<u8>>),
    /// SM4 key.
    Sm4(Zeroizing<[u8; 16]>),
}

impl KeyMaterial {
    /// The kind this key was configured as.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyMaterial::Sm2Private(_) => KeyKind::Sm2Private,
            KeyMaterial::Sm2Public(_) => KeyKind::Sm2Public,
            KeyMaterial::Ed25519Private(_) => KeyKind::Ed25519Private,
            KeyMaterial::Ed25519Public(_) => KeyKind::Ed25519Public,
            KeyMaterial::Hmac(_) => KeyKind::Hmac,
            KeyMaterial::Sm4(_) => KeyKind::Sm4,
        }
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({})", self.kind().as_str())
    }
}

impl DepartmentKey {
    /// The texts that would give this key away (the value read, its bytes in hex and base64),
    /// to be scrubbed from logs and answers. None for public keys.
    pub fn secret_texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(text) = &self.secret_text {
            let text = text.trim();
            if !text.is_empty() {
                out.push(text.to_string());
            }
            // Every line of a PEM body is as secret as the whole.
            out.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                    .map(str::to_string),
            );
        }
        match self.material.as_deref() {
            Some(KeyMaterial::Hmac(bytes)) => {
                out.push(sdk::sign::to_hex(bytes.as_slice()));
                out.push(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()));
            }
            Some(KeyMaterial::Sm4(bytes)) => {
                out.push(sdk::sign::to_hex(bytes.as_slice()));
                out.push(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()));
            }
            _ => {}
        }
        out.sort();
        out.dedup();
        out
    }

    /// Read and parse the key (`file`: the config file, `key`: its dotted name for errors).
    pub(super) fn check(&mut self, file: &Path, key: &str) -> Result<(), ConfigError> {
        let error = |reason: String| ConfigError::new(file, key, reason);
        let text: Zeroizing<String> = if let Some(path) = self.value.strip_prefix("file:") {
            let path = file.parent().unwrap_or(Path::new("")).join(path);
            Zeroizing::new(
                std::fs::read_to_string(&path)
                    .map_err(|e| error(format!("cannot read {}: {e}", path.display())))?,
            )
        } else if let Some(var) = self.value.strip_prefix("env:") {
            Zeroizing::new(
                std::env::var(var)
                    .map_err(|_| error(format!("environment variable {var} is not set")))?,
            )
        } else {
            return Err(ConfigError::new(
                file,
                format!("{key}.value"),
                "a key is never written in the config: `file:PATH` or `env:NAME`",
            ));
        };
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
        let kind = self.kind;
        let encoding = match (kind, self.encoding) {
            (KeyKind::Hmac, e) => e.unwrap_or(KeyEncoding::Text),
            (KeyKind::Sm4, None | Some(KeyEncoding::Hex)) => KeyEncoding::Hex,
            (KeyKind::Sm4, Some(KeyEncoding::Base64)) => KeyEncoding::Base64,
            (KeyKind::Sm4, Some(KeyEncoding::Text)) => {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.encoding"),
                    "an sm4 key is `hex` or `base64`",
                ));
            }
            (_, Some(_)) => {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.encoding"),
                    "only hmac and sm4 keys have an encoding (the others are PEM)",
                ));
            }
            (_, None) => KeyEncoding::Text,
        };
        let what = kind.as_str();
        let pem_error = |e: &dyn std::fmt::Display| {
            error(format!("not a PEM {what} key ({}): {e}", pem_label(kind)))
        };
        let material = match kind {
            KeyKind::Sm2Private => {
                use sm2::pkcs8::DecodePrivateKey as _;
                let secret = sm2::SecretKey::from_pkcs8_pem(trimmed).map_err(|e| pem_error(&e))?;
                let signing =
                    sm2::dsa::SigningKey::new(SM2_DISTID, &secret).map_err(|e| pem_error(&e))?;
                KeyMaterial::Sm2Private(Box::new(signing))
            }
            KeyKind::Sm2Public => {
                use sm2::pkcs8::DecodePublicKey as _;
                let public =
                    sm2::PublicKey::from_public_key_pem(trimmed).map_err(|e| pem_error(&e))?;
                let verifying =
                    sm2::dsa::VerifyingKey::new(SM2_DISTID, public).map_err(|e| pem_error(&e))?;
                KeyMaterial::Sm2Public(Box::new(verifying))
            }
            KeyKind::Ed25519Private => {
                use ed25519_dalek::pkcs8::DecodePrivateKey as _;
                let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(trimmed)
                    .map_err(|e| pem_error(&e))?;
                KeyMaterial::Ed25519Private(Box::new(signing))
            }
            KeyKind::Ed25519Public => {
                use ed25519_dalek::pkcs8::DecodePublicKey as _;
                let verifying = ed25519_dalek::VerifyingKey::from_public_key_pem(trimmed)
                    .map_err(|e| pem_error(&e))?;
                KeyMaterial::Ed25519Public(Box::new(verifying))
            }
            KeyKind::Hmac => {
                let bytes = decode(trimmed, encoding).map_err(error)?;
                if bytes.is_empty() {
                    return Err(error("an hmac secret is not empty".into()));
                }
                KeyMaterial::Hmac(bytes)
            }
            KeyKind::Sm4 => {
                let bytes = decode(trimmed.trim(), encoding).map_err(error)?;
                let key: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
                    error(format!(
                        "an sm4 key is 16 bytes (32 hex digits); this one is {} bytes",
                        bytes.len()
                    ))
                })?;
                KeyMaterial::Sm4(Zeroizing::new(key))
            }
        };
        self.secret_text = match kind {
            KeyKind::Sm2Public | KeyKind::Ed25519Public => None,
            _ => Some(Arc::new(Zeroizing::new(trimmed.to_string()))),
        };
        self.material = Some(Arc::new(material));
        Ok(())
    }
}

fn pem_label(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Sm2Private | KeyKind::Ed25519Private => "PKCS#8 `PRIVATE KEY`",
        _ => "SPKI `PUBLIC KEY`",
    }
}

fn decode(text: &str, encoding: KeyEncoding) -> Result<Zeroizing<Vec<u8>>, String> {
    Ok(Zeroizing::new(match encoding {
        KeyEncoding::Text => text.as_bytes().to_vec(),
        KeyEncoding::Hex => hex::decode(text).map_err(|e| format!("not hex: {e}"))?,
        KeyEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("not base64: {e}"))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, value: &str, encoding: Option<&str>) -> DepartmentKey {
        let encoding = encoding.map_or(String::new(), |e| format!("encoding = \"{e}\"\n"));
        toml::from_str(&format!(
            "kind = \"{kind}\"\nvalue = \"{value}\"\n{encoding}"
        ))
        .unwrap()
    }

    #[test]
    fn every_kind_parses_from_its_file_and_secrets_are_noted() {
        use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
        use sm2::pkcs8::LineEnding;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gateway.toml");
        let sm2 = sm2::SecretKey::from_slice(&[7; 32]).unwrap();
        std::fs::write(
            dir.path().join("sm2.pem"),
            sm2.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sm2.pub"),
            sm2.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
        )
        .unwrap();
        let ed = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        std::fs::write(
            dir.path().join("ed.pem"),
            ed.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("ed.pub"),
            ed.verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("hmac.txt"), "app-secret-value\n").unwrap();
        std::fs::write(
            dir.path().join("sm4.hex"),
            "00112233445566778899aabbccddeeff\n",
        )
        .unwrap();
        for (kind, file) in [
            ("sm2-private", "sm2.pem"),
            ("sm2-public", "sm2.pub"),
            ("ed25519-private", "ed.pem"),
            ("ed25519-public", "ed.pub"),
            ("hmac", "hmac.txt"),
            ("sm4", "sm4.hex"),
        ] {
            let mut k = key(kind, &format!("file:{file}"), None);
            k.check(&config, "departments.x.keys.k").unwrap();
            assert_eq!(k.material.as_ref().unwrap().kind().as_str(), kind);
            let texts = k.secret_texts();
            assert_eq!(texts.is_empty(), kind.ends_with("-public"), "{kind}");
            assert!(
                !format!("{k:?}").contains("BEGIN"),
                "{kind}: Debug prints no key"
            );
        }
        let mut hmac = key("hmac", "file:hmac.txt", None);
        hmac.check(&config, "k").unwrap();
        assert!(
            hmac.secret_texts()
                .contains(&"app-secret-value".to_string())
        );
        assert!(
            hmac.secret_texts()
                .contains(&hex::encode("app-secret-value"))
        );
    }

    #[test]
    fn a_key_that_does_not_parse_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            dir.path().join("bad.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("short.hex"), "0011").unwrap();
        for (kind, value, encoding, wanted) in [
            (
                "sm2-private",
                "file:bad.pem",
                None,
                "not a PEM sm2-private key",
            ),
            (
                "ed25519-public",
                "file:bad.pem",
                None,
                "not a PEM ed25519-public key",
            ),
            ("sm4", "file:short.hex", None, "16 bytes"),
            ("sm4", "file:short.hex", Some("text"), "`hex` or `base64`"),
            (
                "sm2-public",
                "file:short.hex",
                Some("hex"),
                "only hmac and sm4",
            ),
            ("hmac", "file:nope", None, "cannot read"),
            (
                "hmac",
                "env:GATEWAY_TEST_NO_SUCH_VARIABLE",
                None,
                "is not set",
            ),
            (
                "hmac",
                "written-inline",
                None,
                "never written in the config",
            ),
        ] {
            let error = key(kind, value, encoding)
                .check(&config, "departments.x.keys.k")
                .unwrap_err();
            assert!(error.key.starts_with("departments.x.keys.k"), "{error}");
            assert!(error.reason.contains(wanted), "{kind} {value}: {error}");
        }
    }
}
