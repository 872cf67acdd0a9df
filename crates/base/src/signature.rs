//! Signed components: who vouches for an adapter before it may run.
//!
//! The signature travels inside the component, as its last section: a custom section named
//! [`SECTION`] whose content is JSON `{"key": id, "algorithm": "ed25519"|"sm2", "signature":
//! base64}`. What is signed is every byte before that section, so one file carries both and a
//! copy by any means (push, file drop, store) stays verifiable. Ed25519 signs the bytes as
//! they are; SM2 (GB/T 32918, SM3 digest, the default distinguishing id) likewise.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// A public key trusted to sign adapter components.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// Key id, as named in a component's signature.
    pub id: String,
    /// `ed25519` or `sm2`.
    pub algorithm: Algorithm,
    /// The public key: base64 of the 32 raw bytes (Ed25519) or of the SEC1 point (SM2).
    pub public_key: String,
}

/// Name of the custom section that carries the signature.
pub const SECTION: &str = "gov-adapter-signature";

/// SM2's distinguishing identifier when none is agreed otherwise (GM/T 0009).
const SM2_DISTID: &str = "1234567812345678";

/// A signature algorithm the gateway accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// SM2 digital signature (GB/T 32918.2) with SM3.
    Sm2,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Sm2 => "sm2",
        })
    }
}

/// The signature found in a component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signature {
    /// Id of the key that signed.
    pub key: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Base64 of the signature bytes.
    pub signature: String,
}

/// Split a component into the bytes that are signed and the signature section, if it ends
/// with one.
pub fn split(component: &[u8]) -> Result<(&[u8], Option<Signature>), String> {
    let mut at = 8;
    if component.len() < at {
        return Err("too short to be a component".into());
    }
    let mut last = None;
    while at < component.len() {
        let start = at;
        let id = component[at];
        let (size, len) = leb128(&component[at + 1..]).ok_or("truncated section header")?;
        let body = at + 1 + len;
        let end = body.checked_add(size).filter(|&e| e <= component.len());
        let end = end.ok_or("a section runs past the end of the file")?;
        last = Some((start, id, body, end));
        at = end;
    }
    if let Some((start, 0, body, end)) = last {
        let (name_len, len) = leb128(&component[body..end]).ok_or("truncated section name")?;
        let name_at = body + len;
        let name = component
            .get(name_at..name_at + name_len)
            .ok_or("truncated section name")?;
        if name == SECTION.as_bytes() {
            let signature = serde_json::from_slice(&component[name_at + name_len..end])
                .map_err(|e| format!("the signature section is not readable: {e}"))?;
            return Ok((&component[..start], Some(signature)));
        }
    }
    Ok((component, None))
}

/// Append a signature section to a component (which must not carry one yet).
pub fn append(component: &[u8], signature: &Signature) -> Vec<u8> {
    let content = serde_json::to_vec(signature).expect("a signature serialises");
    let mut section = Vec::new();
    write_leb128(&mut section, SECTION.len());
    section.extend_from_slice(SECTION.as_bytes());
    section.extend_from_slice(&content);
    let mut out = component.to_vec();
    out.push(0);
    write_leb128(&mut out, section.len());
    out.extend_from_slice(&section);
    out
}

fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn write_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One trusted public key, ready to verify.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// SM2.
    Sm2(Box<sm2::dsa::VerifyingKey>),
}

impl Verifier {
    /// Decode a configured key; the reason when it is not a key of its algorithm.
    pub fn new(key: &TrustedKey) -> Result<Verifier, String> {
        let bytes = BASE64
            .decode(key.public_key.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        match key.algorithm {
            Algorithm::Ed25519 => {
                let raw: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| "an Ed25519 public key is 32 bytes".to_string())?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map(Verifier::Ed25519)
                    .map_err(|e| format!("not an Ed25519 public key: {e}"))
            }
            Algorithm::Sm2 => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DISTID, &bytes)
                .map(|k| Verifier::Sm2(Box::new(k)))
                .map_err(|e| format!("not an SM2 public key (SEC1): {e}")),
        }
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        match self {
            Verifier::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
            Verifier::Sm2(key) => sm2::dsa::Signature::from_slice(signature)
                .is_ok_and(|s| sm2::dsa::signature::Verifier::verify(&**key, message, &s).is_ok()),
        }
    }
}

/// The configured trusted keys. With none, components need no signature.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    keys: Vec<(TrustedKey, Verifier)>,
}

impl Trust {
    /// From the checked config (keys were decoded once already by the config check).
    pub fn new(keys: &[TrustedKey]) -> Result<Trust, String> {
        let keys = keys
            .iter()
            .map(|k| Ok((k.clone(), Verifier::new(k)?)))
            .collect::<Result<_, String>>()?;
        Ok(Trust { keys })
    }

    /// Whether any key is configured.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Check a component's signature; the key id that signed it, `None` when no key is
    /// configured and the component is unsigned, or the reason it is refused.
    pub fn check(&self, component: &[u8]) -> Result<Option<String>, String> {
        if !self.required() {
            // Nobody to check against: a signature, if any, vouches for nothing here.
            return Ok(None);
        }
        let (signed, signature) = split(component)?;
        let Some(signature) = signature else {
            return Err("the component is not signed, and this gateway requires a signature from a trusted key".into());
        };
        let Some((key, verifier)) = self.keys.iter().find(|(k, _)| k.id == signature.key) else {
            return Err(format!(
                "signed by key `{}`, which is not a trusted key",
                signature.key
            ));
        };
        if key.algorithm != signature.algorithm {
            return Err(format!(
                "key `{}` is an {} key but the signature says {}",
                key.id, key.algorithm, signature.algorithm
            ));
        }
        let bytes = BASE64
            .decode(&signature.signature)
            .map_err(|_| "the signature is not base64".to_string())?;
        if verifier.verify(signed, &bytes) {
            Ok(Some(key.id.clone()))
        } else {
            Err(format!(
                "the signature by key `{}` does not match the component (altered, or signed with another key)",
                key.id
            ))
        }
    }
}

/// A private key that signs components (`gateway plugin sign`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKeyFile {
    /// Key id, as configured in `plugins.trusted_keys`.
    pub id: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Base64 of the secret key (keep this file to the signing machine).
    pub secret_key: String,
    /// Base64 of the public key, for the gateway's config.
    pub public_key: String,
}

impl SigningKeyFile {
    /// A fresh key pair.
    pub fn generate(id: &str, algorithm: Algorithm) -> SigningKeyFile {
        let (secret, public) = match algorithm {
            Algorithm::Ed25519 => {
                let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
                (
                    key.to_bytes().to_vec(),
                    key.verifying_key().to_bytes().to_vec(),
                )
            }
            Algorithm::Sm2 => loop {
                // A random 32-byte string is a valid scalar except with negligible odds.
                if let Ok(secret) = sm2::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                    let public = secret.public_key();
                    break (
                        secret.to_bytes().to_vec(),
                        sm2::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&public, false)
                            .as_bytes()
                            .to_vec(),
                    );
                }
            },
        };
        SigningKeyFile {
            id: id.to_string(),
            algorithm,
            secret_key: BASE64.encode(secret),
            public_key: BASE64.encode(public),
        }
    }

    /// Sign a component: the component with its signature section appended (an existing
    /// signature is replaced).
    pub fn sign(&self, component: &[u8]) -> Result<Vec<u8>, String> {
        let (unsigned, _) = split(component)?;
        let signature = self.sign_bytes(unsigned)?;
        Ok(append(
            unsigned,
            &Signature {
                key: self.id.clone(),
                algorithm: self.algorithm,
                signature: BASE64.encode(signature),
            },
        ))
    }

    /// The raw signature of some bytes (components, audit seals).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let secret = BASE64
            .decode(&self.secret_key)
            .map_err(|_| "the secret key is not base64".to_string())?;
        let signature = match self.algorithm {
            Algorithm::Ed25519 => {
                use ed25519_dalek::Signer as _;
                let raw: [u8; 32] = secret
                    .try_into()
                    .map_err(|_| "an Ed25519 secret key is 32 bytes".to_string())?;
                ed25519_dalek::SigningKey::from_bytes(&raw)
                    .sign(message)
                    .to_bytes()
                    .to_vec()
            }
            Algorithm::Sm2 => {
                use sm2::dsa::signature::Signer as _;
                let secret = sm2::SecretKey::from_slice(&secret)
                    .map_err(|_| "not an SM2 secret key".to_string())?;
                let key = sm2::dsa::SigningKey::new(SM2_DISTID, &secret)
                    .map_err(|e| format!("SM2 key: {e}"))?;
                let signature: sm2::dsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        };
        Ok(signature)
    }

    /// The trusted-key entry for the gateway's config.
    pub fn trusted_key(&self) -> TrustedKey {
        TrustedKey {
            id: self.id.clone(),
            algorithm: self.algorithm,
            public_key: self.public_key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble and one custom section.
    fn component() -> Vec<u8> {
        let mut c = b"\0asm\x0d\0\x01\0".to_vec();
        c.extend_from_slice(&[0, 4, 3, b'a', b'b', b'c']);
        c
    }

    #[test]
    fn each_algorithm_signs_and_verifies() {
        for algorithm in [Algorithm::Ed25519, Algorithm::Sm2] {
            let key = SigningKeyFile::generate("k1", algorithm);
            let trust = Trust::new(&[key.trusted_key()]).unwrap();
            let signed = key.sign(&component()).unwrap();
            assert_eq!(trust.check(&signed), Ok(Some("k1".into())), "{algorithm}");
            assert_eq!(split(&signed).unwrap().0, &component()[..]);
            // Re-signing replaces, it does not stack.
            assert_eq!(key.sign(&signed).unwrap().len(), signed.len());
        }
    }

    #[test]
    fn unsigned_altered_and_foreign_components_are_refused() {
        let key = SigningKeyFile::generate("k1", Algorithm::Ed25519);
        let other = SigningKeyFile::generate("k2", Algorithm::Ed25519);
        let trust = Trust::new(&[key.trusted_key()]).unwrap();
        assert!(
            trust
                .check(&component())
                .unwrap_err()
                .contains("not signed")
        );
        let mut altered = key.sign(&component()).unwrap();
        altered[12] ^= 1;
        assert!(
            trust
                .check(&altered)
                .unwrap_err()
                .contains("does not match")
        );
        let foreign = other.sign(&component()).unwrap();
        assert!(
            trust
                .check(&foreign)
                .unwrap_err()
                .contains("not a trusted key")
        );
        // Another key claiming a trusted key's id fails verification.
        let mut impostor = other.clone();
        impostor.id = "k1".into();
        let forged = impostor.sign(&component()).unwrap();
        assert!(trust.check(&forged).unwrap_err().contains("does not match"));
    }

    #[test]
    fn without_trusted_keys_unsigned_components_pass() {
        assert_eq!(Trust::default().check(&component()), Ok(None));
    }
}
