//! The harness's key store: what [`crate::crypto`] answers natively, as the gateway would with
//! its configured keys. Test keys are made at test time ([`TestKey::sm2`],
//! [`TestKey::ed25519`] draw fresh ones), so no key sits in an adapter's sources.
//!
//! ```
//! use sdk::crypto::{self, SignatureAlgorithm};
//! use sdk::testing::{Harness, TestKey};
//!
//! let gateway = TestKey::sm2();
//! let harness = Harness::new().key("gateway-sm2", gateway.clone());
//! let signature = crypto::sign("gateway-sm2", SignatureAlgorithm::Sm2Sm3, b"message").unwrap();
//! // What the department would check, with the public half only.
//! assert!(gateway.public().verify(SignatureAlgorithm::Sm2Sm3, b"message", &signature));
//! harness.finish();
//! ```

use crate::crypto::{CryptoError, Mac, SignatureAlgorithm};
use std::sync::Arc;

/// The distinguishing id of SM2 signatures (GM/T 0009's default), as the gateway uses it.
const SM2_DISTID: &str = "1234567812345678";

/// A key as the gateway's config would hold it, for tests.
#[derive(Clone)]
pub struct TestKey(Arc<Material>);

enum Material {
    Sm2Private(sm2::dsa::SigningKey),
    Sm2Public(sm2::dsa::VerifyingKey),
    Ed25519Private(ed25519_dalek::SigningKey),
    Ed25519Public(ed25519_dalek::VerifyingKey),
    Hmac(Vec<u8>),
    Sm4([u8; 16]),
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match &*self.0 {
            Material::Sm2Private(_) => "TestKey(sm2-private)",
            Material::Sm2Public(_) => "TestKey(sm2-public)",
            Material::Ed25519Private(_) => "TestKey(ed25519-private)",
            Material::Ed25519Public(_) => "TestKey(ed25519-public)",
            Material::Hmac(_) => "TestKey(hmac)",
            Material::Sm4(_) => "TestKey(sm4)",
        })
    }
}

fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    bytes
}

impl TestKey {
    /// A fresh SM2 private key (`sm2-private`).
    pub fn sm2() -> Self {
        loop {
            // Nearly every 32 random bytes are a valid scalar; retry the rare one that is not.
            if let Ok(key) = sm2::dsa::SigningKey::from_slice(SM2_DISTID, &random32()) {
                return TestKey(Arc::new(Material::Sm2Private(key)));
            }
        }
    }

    /// A fresh Ed25519 private key (`ed25519-private`).
    pub fn ed25519() -> Self {
        TestKey(Arc::new(Material::Ed25519Private(
            ed25519_dalek::SigningKey::from_bytes(&random32()),
        )))
    }

    /// An `hmac` secret.
    pub fn hmac(secret: impl Into<Vec<u8>>) -> Self {
        TestKey(Arc::new(Material::Hmac(secret.into())))
    }

    /// An `sm4` key.
    pub fn sm4(key: [u8; 16]) -> Self {
        TestKey(Arc::new(Material::Sm4(key)))
    }

    /// The public half of a private key (`sm2-public`, `ed25519-public`): a department's key,
    /// for the adapter to verify with. A public or secret key is itself.
    pub fn public(&self) -> Self {
        match &*self.0 {
            Material::Sm2Private(k) => {
                TestKey(Arc::new(Material::Sm2Public(k.verifying_key().clone())))
            }
            Material::Ed25519Private(k) => {
                TestKey(Arc::new(Material::Ed25519Public(k.verifying_key())))
            }
            _ => self.clone(),
        }
    }

    /// The public half as SEC1 (SM2, 65 bytes uncompressed) or raw (Ed25519, 32 bytes) bytes;
    /// none for secret keys.
    pub fn public_bytes(&self) -> Option<Vec<u8>> {
        match &*self.public().0 {
            Material::Sm2Public(k) => Some(k.to_sec1_bytes().to_vec()),
            Material::Ed25519Public(k) => Some(k.to_bytes().to_vec()),
            _ => None,
        }
    }

    /// Sign as the gateway would (e.g. a department's answer, signed with the department's
    /// key, for the adapter to check). Panics for a key that cannot sign with `algorithm`.
    pub fn sign(&self, algorithm: SignatureAlgorithm, data: &[u8]) -> Vec<u8> {
        sign(self, algorithm, data).expect("a private key of this algorithm")
    }

    /// Whether `signature` is valid, as the gateway would check it (false for a malformed one).
    pub fn verify(&self, algorithm: SignatureAlgorithm, data: &[u8], signature: &[u8]) -> bool {
        verify(self, algorithm, data, signature).unwrap_or(false)
    }
}

fn kind(key: &TestKey) -> &'static str {
    match &*key.0 {
        Material::Sm2Private(_) => "sm2-private",
        Material::Sm2Public(_) => "sm2-public",
        Material::Ed25519Private(_) => "ed25519-private",
        Material::Ed25519Public(_) => "ed25519-public",
        Material::Hmac(_) => "hmac",
        Material::Sm4(_) => "sm4",
    }
}

fn cannot(key: &TestKey, what: &str) -> CryptoError {
    CryptoError::UnknownKey(format!("this is an {} key: it cannot {what}", kind(key)))
}

fn sign(key: &TestKey, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match (&*key.0, algorithm) {
        (Material::Sm2Private(k), SignatureAlgorithm::Sm2Sm3) => {
            let signature: sm2::dsa::Signature = sm2::dsa::signature::Signer::sign(k, data);
            Ok(sm2_der(&signature))
        }
        (Material::Ed25519Private(k), SignatureAlgorithm::Ed25519) => {
            Ok(ed25519_dalek::Signer::sign(k, data).to_bytes().to_vec())
        }
        _ => Err(cannot(key, "sign with this algorithm")),
    }
}

fn verify(
    key: &TestKey,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    use sm2::dsa::signature::Verifier as _;
    match (&*key.public().0, algorithm) {
        (Material::Sm2Public(k), SignatureAlgorithm::Sm2Sm3) => {
            let signature = sm2_from_der(signature)?;
            Ok(k.verify(data, &signature).is_ok())
        }
        (Material::Ed25519Public(k), SignatureAlgorithm::Ed25519) => {
            let signature = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| CryptoError::Invalid("an Ed25519 signature is 64 bytes".into()))?;
            Ok(k.verify_strict(data, &signature).is_ok())
        }
        _ => Err(cannot(key, "verify with this algorithm")),
    }
}

fn sm2_der(signature: &sm2::dsa::Signature) -> Vec<u8> {
    use sm2::pkcs8::der::Encode as _;
    use sm2::pkcs8::der::asn1::{SequenceOf, UintRef};
    let (r, s) = (signature.r_bytes(), signature.s_bytes());
    let mut seq = SequenceOf::<UintRef<'_>, 2>::new();
    seq.add(UintRef::new(&r).expect("32 bytes"))
        .expect("room for two");
    seq.add(UintRef::new(&s).expect("32 bytes"))
        .expect("room for two");
    seq.to_der().expect("two integers encode")
}

fn sm2_from_der(der: &[u8]) -> Result<sm2::dsa::Signature, CryptoError> {
    use sm2::pkcs8::der::Decode as _;
    use sm2::pkcs8::der::asn1::{SequenceOf, UintRef};
    let invalid = || CryptoError::Invalid("not a DER SM2 signature (SEQUENCE { r, s })".into());
    let seq = SequenceOf::<UintRef<'_>, 2>::from_der(der).map_err(|_| invalid())?;
    let scalars: Vec<[u8; 32]> = seq
        .iter()
        .map(|n| {
            let bytes = n.as_bytes();
            let mut out = [0u8; 32];
            if bytes.len() > 32 {
                return Err(invalid());
            }
            out[32 - bytes.len()..].copy_from_slice(bytes);
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    let [r, s] = scalars.as_slice() else {
        return Err(invalid());
    };
    sm2::dsa::Signature::from_scalars(*r, *s).map_err(|_| invalid())
}

/// What `sdk::crypto` calls natively: the harness's keys, the gateway's algorithms.
pub(crate) mod double {
    use super::{CryptoError, Mac, Material, SignatureAlgorithm, TestKey};

    fn key(name: &str) -> Result<TestKey, CryptoError> {
        super::super::current()
            .borrow()
            .keys
            .get(name)
            .cloned()
            .ok_or_else(|| {
                CryptoError::UnknownKey(format!(
                    "no key `{name}` for this department (the test's Harness::key gives none)"
                ))
            })
    }

    pub fn sign(
        name: &str,
        algorithm: SignatureAlgorithm,
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        super::sign(&key(name)?, algorithm, data)
    }

    pub fn verify(
        name: &str,
        algorithm: SignatureAlgorithm,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        super::verify(&key(name)?, algorithm, data, signature)
    }

    pub fn mac(name: &str, algorithm: Mac, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = key(name)?;
        let Material::Hmac(secret) = &*key.0 else {
            return Err(super::cannot(&key, "make a MAC (an hmac key does)"));
        };
        let hex = match algorithm {
            Mac::HmacSha256 => crate::sign::hmac_sha256_hex(secret, data),
            Mac::HmacSm3 => crate::sign::hmac_sm3_hex(secret, data),
        };
        Ok(hex::decode(hex).expect("hex the sdk wrote"))
    }

    pub fn sm3(data: &[u8]) -> Vec<u8> {
        use sm3::Digest as _;
        sm3::Sm3::digest(data).to_vec()
    }

    fn sm4_key(name: &str, iv: &[u8]) -> Result<([u8; 16], [u8; 16]), CryptoError> {
        let key = key(name)?;
        let Material::Sm4(k) = &*key.0 else {
            return Err(super::cannot(
                &key,
                "encrypt or decrypt with SM4 (an sm4 key does)",
            ));
        };
        let iv: [u8; 16] = iv.try_into().map_err(|_| {
            CryptoError::Invalid(format!(
                "an SM4-CBC IV is 16 bytes; this one is {}",
                iv.len()
            ))
        })?;
        Ok((*k, iv))
    }

    pub fn sm4_encrypt(name: &str, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use cbc::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
        let (k, iv) = sm4_key(name, iv)?;
        Ok(cbc::Encryptor::<sm4::Sm4>::new(&k.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(data))
    }

    pub fn sm4_decrypt(name: &str, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use cbc::cipher::{BlockDecryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
        let (k, iv) = sm4_key(name, iv)?;
        cbc::Decryptor::<sm4::Sm4>::new(&k.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(|_| {
                CryptoError::Invalid(
                    "not an SM4-CBC ciphertext under this key and IV (length or padding)".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto;
    use crate::testing::Harness;

    #[test]
    fn the_harness_signs_macs_and_encrypts_with_its_keys_as_the_host_does() {
        let gateway = TestKey::sm2();
        let department = TestKey::ed25519();
        let harness = Harness::new()
            .key("gateway", gateway.clone())
            .key("department", department.public())
            .key("secret", TestKey::hmac("k"))
            .key("sm4", TestKey::sm4([7; 16]));
        let signature = crypto::sign("gateway", SignatureAlgorithm::Sm2Sm3, b"m").unwrap();
        assert!(
            gateway
                .public()
                .verify(SignatureAlgorithm::Sm2Sm3, b"m", &signature)
        );
        assert!(!TestKey::sm2().verify(SignatureAlgorithm::Sm2Sm3, b"m", &signature));
        let answer = department.sign(SignatureAlgorithm::Ed25519, b"answer");
        assert!(
            crypto::verify(
                "department",
                SignatureAlgorithm::Ed25519,
                b"answer",
                &answer
            )
            .unwrap()
        );
        assert!(
            !crypto::verify("department", SignatureAlgorithm::Ed25519, b"other", &answer).unwrap()
        );
        assert_eq!(
            crypto::mac_hex("secret", Mac::HmacSha256, b"m").unwrap(),
            crate::sign::hmac_sha256_hex(b"k", b"m")
        );
        let sealed = crypto::sm4_encrypt("sm4", &[1; 16], "定长".as_bytes()).unwrap();
        assert_eq!(
            crypto::sm4_decrypt("sm4", &[1; 16], &sealed).unwrap(),
            "定长".as_bytes()
        );
        // Refused as the host refuses: a public key cannot sign, an unknown name is unknown.
        assert!(matches!(
            crypto::sign("department", SignatureAlgorithm::Ed25519, b"m"),
            Err(CryptoError::UnknownKey(_))
        ));
        assert!(matches!(
            crypto::mac("nope", Mac::HmacSm3, b"m"),
            Err(CryptoError::UnknownKey(_))
        ));
        assert!(matches!(
            crypto::sm4_encrypt("sm4", &[1; 8], b"m"),
            Err(CryptoError::Invalid(_))
        ));
        assert_eq!(
            crypto::sm3(b"abc"),
            hex::decode(crate::sign::sm3_hex(b"abc")).unwrap()
        );
        harness.finish();
    }
}
