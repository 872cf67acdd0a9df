//! `crypto` (contract 0.3): signatures, MACs and SM4 with keys the host holds.
//!
//! An adapter names a key of its department (`[departments.<id>.keys.<name>]`, parsed by
//! `gateway_base::config::keys`) and gets a signature, a MAC or a ciphertext back; no call
//! answers a key's bytes, its public half included, and an error names the key and what it
//! cannot do, never what it holds. A call uses the keys as they were when it started: a reload
//! that rotates a key is seen by the next call.
//!
//! The algorithms are RustCrypto's: `sm2` (SM2 with SM3 and the distinguishing id
//! `1234567812345678`, GM/T 0009; signatures DER-encoded `SEQUENCE { r, s }` as GM/T 0009 and
//! OpenSSL write them), `ed25519-dalek` (strict verification), `hmac` over `sha2` and `sm3`,
//! `sm4` in `cbc` mode with PKCS#7 padding.

use super::bindings::v0_3::gov::adapter::crypto::{
    CryptoError, Host, MacAlgorithm, SignatureAlgorithm,
};
use super::imports::HostState;
use gateway_base::config::KeyMaterial;
use sm2::pkcs8::der::asn1::{SequenceOf, UintRef};
use sm2::pkcs8::der::{Decode as _, Encode as _};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A department's keys by name, as a call sees them.
pub(crate) type Keys = BTreeMap<String, Arc<KeyMaterial>>;

fn algorithm_name(algorithm: SignatureAlgorithm) -> &'static str {
    match algorithm {
        SignatureAlgorithm::Sm2Sm3 => "sm2-sm3",
        SignatureAlgorithm::Ed25519 => "ed25519",
    }
}

fn find<'k>(keys: &'k Keys, name: &str) -> Result<&'k KeyMaterial, CryptoError> {
    keys.get(name).map(Arc::as_ref).ok_or_else(|| {
        CryptoError::UnknownKey(format!(
            "no key `{name}` for this department (configure [departments.<id>.keys.{name}])"
        ))
    })
}

fn cannot(name: &str, key: &KeyMaterial, what: &str) -> CryptoError {
    CryptoError::UnknownKey(format!(
        "key `{name}` is an {} key: it cannot {what}",
        key.kind().as_str()
    ))
}

/// Sign `data` with the private key `name`.
pub(crate) fn sign(
    keys: &Keys,
    name: &str,
    algorithm: SignatureAlgorithm,
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = find(keys, name)?;
    match (key, algorithm) {
        (KeyMaterial::Sm2Private(k), SignatureAlgorithm::Sm2Sm3) => {
            let signature: sm2::dsa::Signature = sm2::dsa::signature::Signer::sign(&**k, data);
            sm2_der(&signature)
        }
        (KeyMaterial::Ed25519Private(k), SignatureAlgorithm::Ed25519) => {
            Ok(ed25519_dalek::Signer::sign(&**k, data).to_bytes().to_vec())
        }
        _ => Err(cannot(
            name,
            key,
            &format!("sign with {}", algorithm_name(algorithm)),
        )),
    }
}

/// Whether `signature` over `data` is valid under key `name`.
pub(crate) fn verify(
    keys: &Keys,
    name: &str,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    use sm2::dsa::signature::Verifier as _;
    let key = find(keys, name)?;
    match (key, algorithm) {
        (KeyMaterial::Sm2Private(_) | KeyMaterial::Sm2Public(_), SignatureAlgorithm::Sm2Sm3) => {
            let verifying = match key {
                KeyMaterial::Sm2Private(k) => k.verifying_key(),
                KeyMaterial::Sm2Public(k) => &**k,
                _ => unreachable!("matched above"),
            };
            let signature = sm2_from_der(signature)?;
            Ok(verifying.verify(data, &signature).is_ok())
        }
        (
            KeyMaterial::Ed25519Private(_) | KeyMaterial::Ed25519Public(_),
            SignatureAlgorithm::Ed25519,
        ) => {
            let verifying = match key {
                KeyMaterial::Ed25519Private(k) => k.verifying_key(),
                KeyMaterial::Ed25519Public(k) => **k,
                _ => unreachable!("matched above"),
            };
            let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| {
                CryptoError::Invalid(format!(
                    "an Ed25519 signature is 64 bytes; this one is {}",
                    signature.len()
                ))
            })?;
            Ok(verifying.verify_strict(data, &signature).is_ok())
        }
        _ => Err(cannot(
            name,
            key,
            &format!("verify {}", algorithm_name(algorithm)),
        )),
    }
}

/// A MAC of `data` with the secret `name`.
pub(crate) fn mac(
    keys: &Keys,
    name: &str,
    algorithm: MacAlgorithm,
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    use hmac::Mac as _;
    let key = find(keys, name)?;
    let KeyMaterial::Hmac(secret) = key else {
        return Err(cannot(name, key, "make a MAC (an hmac key does)"));
    };
    // Any key length is valid for HMAC: `new_from_slice` cannot fail here.
    Ok(match algorithm {
        MacAlgorithm::HmacSha256 => {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        MacAlgorithm::HmacSm3 => {
            let mut m = hmac::Hmac::<sm3::Sm3>::new_from_slice(secret).expect("any length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    })
}

/// The SM3 digest of `data`.
pub(crate) fn sm3(data: &[u8]) -> Vec<u8> {
    use sm3::Digest as _;
    sm3::Sm3::digest(data).to_vec()
}

fn sm4_key<'k>(keys: &'k Keys, name: &str) -> Result<&'k [u8; 16], CryptoError> {
    match find(keys, name)? {
        KeyMaterial::Sm4(k) => Ok(k),
        other => Err(cannot(
            name,
            other,
            "encrypt or decrypt with SM4 (an sm4 key does)",
        )),
    }
}

fn iv16(iv: &[u8]) -> Result<&[u8; 16], CryptoError> {
    iv.try_into().map_err(|_| {
        CryptoError::Invalid(format!(
            "an SM4-CBC IV is 16 bytes; this one is {}",
            iv.len()
        ))
    })
}

/// SM4-CBC with PKCS#7 padding.
pub(crate) fn sm4_encrypt(
    keys: &Keys,
    name: &str,
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    use cbc::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
    let key = sm4_key(keys, name)?;
    let iv = iv16(iv)?;
    Ok(
        cbc::Encryptor::<sm4::Sm4>::new(key.into(), iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(data),
    )
}

/// The inverse of [`sm4_encrypt`]; a length that is not whole blocks or bad padding is
/// `invalid` (one message for both, as a padding oracle would want two).
pub(crate) fn sm4_decrypt(
    keys: &Keys,
    name: &str,
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    use cbc::cipher::{BlockDecryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
    let key = sm4_key(keys, name)?;
    let iv = iv16(iv)?;
    cbc::Decryptor::<sm4::Sm4>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .map_err(|_| {
            CryptoError::Invalid(
                "not an SM4-CBC ciphertext under this key and IV (length or padding)".into(),
            )
        })
}

/// `SEQUENCE { r INTEGER, s INTEGER }`.
fn sm2_der(signature: &sm2::dsa::Signature) -> Result<Vec<u8>, CryptoError> {
    let (r, s) = (signature.r_bytes(), signature.s_bytes());
    let encode = || -> sm2::pkcs8::der::Result<Vec<u8>> {
        let mut seq = SequenceOf::<UintRef<'_>, 2>::new();
        seq.add(UintRef::new(&r)?)?;
        seq.add(UintRef::new(&s)?)?;
        seq.to_der()
    };
    encode().map_err(|e| CryptoError::Invalid(format!("encoding the signature: {e}")))
}

fn sm2_from_der(der: &[u8]) -> Result<sm2::dsa::Signature, CryptoError> {
    let invalid = || CryptoError::Invalid("not a DER SM2 signature (SEQUENCE { r, s })".into());
    let seq = SequenceOf::<UintRef<'_>, 2>::from_der(der).map_err(|_| invalid())?;
    let mut scalars = [[0u8; 32]; 2];
    let mut count = 0;
    for (i, n) in seq.iter().enumerate() {
        let bytes = n.as_bytes();
        if i > 1 || bytes.len() > 32 {
            return Err(invalid());
        }
        scalars[i][32 - bytes.len()..].copy_from_slice(bytes);
        count += 1;
    }
    if count != 2 {
        return Err(invalid());
    }
    sm2::dsa::Signature::from_scalars(scalars[0], scalars[1]).map_err(|_| invalid())
}

impl Host for HostState {
    async fn sign(
        &mut self,
        key: String,
        algorithm: SignatureAlgorithm,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        let _host = self.meter.host_call();
        sign(&self.keys, &key, algorithm, &data)
    }

    async fn verify(
        &mut self,
        key: String,
        algorithm: SignatureAlgorithm,
        data: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<bool, CryptoError> {
        let _host = self.meter.host_call();
        verify(&self.keys, &key, algorithm, &data, &signature)
    }

    async fn mac(
        &mut self,
        key: String,
        algorithm: MacAlgorithm,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        let _host = self.meter.host_call();
        mac(&self.keys, &key, algorithm, &data)
    }

    async fn sm3(&mut self, data: Vec<u8>) -> Vec<u8> {
        let _host = self.meter.host_call();
        sm3(&data)
    }

    async fn sm4_encrypt(
        &mut self,
        key: String,
        iv: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        let _host = self.meter.host_call();
        sm4_encrypt(&self.keys, &key, &iv, &data)
    }

    async fn sm4_decrypt(
        &mut self,
        key: String,
        iv: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, CryptoError> {
        let _host = self.meter.host_call();
        sm4_decrypt(&self.keys, &key, &iv, &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn keys() -> Keys {
        let sm2_secret = sm2::SecretKey::from_slice(&[0x42; 32]).unwrap();
        let sm2_private =
            sm2::dsa::SigningKey::new(gateway_base::config::keys::SM2_DISTID, &sm2_secret).unwrap();
        let sm2_public = sm2_private.verifying_key().clone();
        let ed = ed25519_dalek::SigningKey::from_bytes(&[0x24; 32]);
        let mut keys = Keys::new();
        keys.insert(
            "sm2".into(),
            Arc::new(KeyMaterial::Sm2Private(Box::new(sm2_private))),
        );
        keys.insert(
            "sm2-pub".into(),
            Arc::new(KeyMaterial::Sm2Public(Box::new(sm2_public))),
        );
        keys.insert(
            "ed".into(),
            Arc::new(KeyMaterial::Ed25519Public(Box::new(ed.verifying_key()))),
        );
        keys.insert(
            "ed-private".into(),
            Arc::new(KeyMaterial::Ed25519Private(Box::new(ed))),
        );
        keys.insert(
            "hmac".into(),
            Arc::new(KeyMaterial::Hmac(Zeroizing::new(b"key".to_vec()))),
        );
        keys.insert(
            "sm4".into(),
            Arc::new(KeyMaterial::Sm4(Zeroizing::new(
                hex::decode("0123456789abcdeffedcba9876543210")
                    .unwrap()
                    .try_into()
                    .unwrap(),
            ))),
        );
        keys
    }

    #[test]
    fn sm2_signatures_are_der_and_agree_with_the_crate() {
        use sm2::dsa::signature::{Signer as _, Verifier as _};
        let keys = keys();
        let data = "单位参保登记".as_bytes();
        let der = sign(&keys, "sm2", SignatureAlgorithm::Sm2Sm3, data).unwrap();
        assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        let signature = sm2_from_der(&der).unwrap();
        // Verified by the crate directly, with a verifying key built from the public bytes.
        let KeyMaterial::Sm2Public(public) = keys["sm2-pub"].as_ref() else {
            unreachable!()
        };
        let crate_key = sm2::dsa::VerifyingKey::from_sec1_bytes(
            gateway_base::config::keys::SM2_DISTID,
            &public.to_sec1_bytes(),
        )
        .unwrap();
        crate_key.verify(data, &signature).unwrap();
        // A signature made by the crate verifies in the host, under the public key and under
        // the private key's public half; a changed byte does not.
        let secret = sm2::SecretKey::from_slice(&[0x42; 32]).unwrap();
        let signer =
            sm2::dsa::SigningKey::new(gateway_base::config::keys::SM2_DISTID, &secret).unwrap();
        let made: sm2::dsa::Signature = signer.sign(b"answer");
        let made = sm2_der(&made).unwrap();
        for key in ["sm2", "sm2-pub"] {
            assert!(verify(&keys, key, SignatureAlgorithm::Sm2Sm3, b"answer", &made).unwrap());
            assert!(!verify(&keys, key, SignatureAlgorithm::Sm2Sm3, b"answEr", &made).unwrap());
        }
        assert!(matches!(
            verify(&keys, "sm2", SignatureAlgorithm::Sm2Sm3, b"x", b"not der"),
            Err(CryptoError::Invalid(_))
        ));
    }

    #[test]
    fn sm2_verifies_a_signature_with_a_different_distinguishing_id_as_invalid() {
        use sm2::dsa::signature::Signer as _;
        let keys = keys();
        let secret = sm2::SecretKey::from_slice(&[0x42; 32]).unwrap();
        let other = sm2::dsa::SigningKey::new("ALICE123@YAHOO.COM", &secret).unwrap();
        let made: sm2::dsa::Signature = other.sign(b"data");
        let made = sm2_der(&made).unwrap();
        assert!(!verify(&keys, "sm2-pub", SignatureAlgorithm::Sm2Sm3, b"data", &made).unwrap());
    }

    #[test]
    fn ed25519_matches_rfc_8032_and_the_crate() {
        // RFC 8032 section 7.1, TEST 1.
        let secret: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let mut keys = Keys::new();
        let signing = ed25519_dalek::SigningKey::from_bytes(&secret);
        keys.insert(
            "k".into(),
            Arc::new(KeyMaterial::Ed25519Private(Box::new(signing))),
        );
        let signature = sign(&keys, "k", SignatureAlgorithm::Ed25519, b"").unwrap();
        assert_eq!(
            hex::encode(&signature),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(verify(&keys, "k", SignatureAlgorithm::Ed25519, b"", &signature).unwrap());
        let keys = self::keys();
        let made =
            ed25519_dalek::Signer::sign(&ed25519_dalek::SigningKey::from_bytes(&[0x24; 32]), b"x");
        assert!(
            verify(
                &keys,
                "ed",
                SignatureAlgorithm::Ed25519,
                b"x",
                &made.to_bytes()
            )
            .unwrap()
        );
        assert!(
            !verify(
                &keys,
                "ed",
                SignatureAlgorithm::Ed25519,
                b"y",
                &made.to_bytes()
            )
            .unwrap()
        );
        assert!(matches!(
            verify(&keys, "ed", SignatureAlgorithm::Ed25519, b"x", &[0; 10]),
            Err(CryptoError::Invalid(_))
        ));
    }

    #[test]
    fn macs_match_known_vectors() {
        let keys = keys();
        // RFC 4231 is for long keys; this is the widely published HMAC-SHA256("key", fox).
        let fox = b"The quick brown fox jumps over the lazy dog";
        assert_eq!(
            hex::encode(mac(&keys, "hmac", MacAlgorithm::HmacSha256, fox).unwrap()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // HMAC-SM3 checked against the construction itself (RFC 2104 over SM3, 64-byte blocks).
        let expected = {
            use sm3::Digest as _;
            let mut k = [0u8; 64];
            k[..3].copy_from_slice(b"key");
            let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
            let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
            let inner = sm3::Sm3::new()
                .chain_update(&ipad)
                .chain_update(fox)
                .finalize();
            sm3::Sm3::new()
                .chain_update(&opad)
                .chain_update(inner)
                .finalize()
                .to_vec()
        };
        assert_eq!(
            mac(&keys, "hmac", MacAlgorithm::HmacSm3, fox).unwrap(),
            expected
        );
    }

    #[test]
    fn sm3_matches_gb_t_32905() {
        assert_eq!(
            hex::encode(sm3(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn sm4_cbc_matches_gb_t_32907_and_round_trips() {
        let keys = keys();
        // GB/T 32907 appendix A: one block under the standard key. In CBC with a zero IV the
        // first block is that block's ECB encryption.
        let plain = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let out = sm4_encrypt(&keys, "sm4", &[0; 16], &plain).unwrap();
        assert_eq!(out.len(), 32, "one block and a block of padding");
        assert_eq!(hex::encode(&out[..16]), "681edf34d206965e86b3e94f536e4246");
        assert_eq!(sm4_decrypt(&keys, "sm4", &[0; 16], &out).unwrap(), plain);
        let iv = [7u8; 16];
        let text = "定长报文".as_bytes();
        let sealed = sm4_encrypt(&keys, "sm4", &iv, text).unwrap();
        assert_eq!(sm4_decrypt(&keys, "sm4", &iv, &sealed).unwrap(), text);
        assert!(matches!(
            sm4_encrypt(&keys, "sm4", &[0; 8], text),
            Err(CryptoError::Invalid(_))
        ));
        assert!(matches!(
            sm4_decrypt(&keys, "sm4", &iv, &sealed[..15]),
            Err(CryptoError::Invalid(_))
        ));
    }

    #[test]
    fn a_key_cannot_do_what_its_kind_does_not_and_errors_hold_no_key_bytes() {
        let keys = keys();
        let refusals = [
            sign(&keys, "sm2-pub", SignatureAlgorithm::Sm2Sm3, b"x").unwrap_err(),
            sign(&keys, "sm2", SignatureAlgorithm::Ed25519, b"x").unwrap_err(),
            sign(&keys, "hmac", SignatureAlgorithm::Sm2Sm3, b"x").unwrap_err(),
            mac(&keys, "sm4", MacAlgorithm::HmacSm3, b"x").unwrap_err(),
            sm4_encrypt(&keys, "hmac", &[0; 16], b"x").unwrap_err(),
            verify(&keys, "hmac", SignatureAlgorithm::Ed25519, b"x", &[0; 64]).unwrap_err(),
            sign(&keys, "nope", SignatureAlgorithm::Sm2Sm3, b"x").unwrap_err(),
        ];
        for refusal in refusals {
            let CryptoError::UnknownKey(message) = refusal else {
                panic!("{refusal:?}")
            };
            assert!(
                !message.contains("0123456789abcdef") && !message.contains("6b6579"),
                "{message}"
            );
        }
    }
}
