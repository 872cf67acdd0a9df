//! Signatures, MACs and SM4 with keys the gateway holds (contract 0.3): the adapter names a
//! key of its department (`[departments.<id>.keys.<name>]` in the gateway's config) and never
//! sees its bytes.
//!
//! ```no_run
//! use sdk::crypto::{self, Mac, SignatureAlgorithm};
//! # fn f() -> Result<(), sdk::AdapterError> {
//! // The department's HMAC app secret, held by the gateway as key `app-secret`.
//! let mac = crypto::mac("app-secret", Mac::HmacSha256, b"string to sign")?;
//! // An SM2 signature (SM3, id 1234567812345678, DER) with the gateway's private key.
//! let signature = crypto::sign("gateway-sm2", SignatureAlgorithm::Sm2Sm3, b"message")?;
//! // The department's answer, checked with its public key.
//! let genuine = crypto::verify("department-sm2", SignatureAlgorithm::Sm2Sm3, b"answer", &signature)?;
//! # Ok(()) }
//! ```
//!
//! Natively (unit tests) these answer from the test harness's keys
//! ([`Harness::key`](crate::testing::Harness::key)).

#[cfg(not(target_arch = "wasm32"))]
use super::testing::keys::double as imp;
#[cfg(target_arch = "wasm32")]
use super::wit::gov::adapter::crypto as imp;

pub use super::wit::gov::adapter::crypto::{CryptoError, MacAlgorithm as Mac, SignatureAlgorithm};

/// A key that is missing or of the wrong kind is the gateway's configuration, not the
/// department: an internal error naming it.
impl From<CryptoError> for crate::AdapterError {
    fn from(e: CryptoError) -> Self {
        crate::AdapterError::Internal(match e {
            CryptoError::UnknownKey(why) => format!("crypto key: {why}"),
            CryptoError::Invalid(why) => format!("crypto input: {why}"),
        })
    }
}

/// Sign `data` with the private key `key` (SM2-SM3: DER; Ed25519: 64 bytes).
pub fn sign(key: &str, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    imp::sign(key, algorithm, data)
}

/// Whether `signature` over `data` is valid under key `key` (a private key's public half, or a
/// department's public key). A malformed signature is `Err(Invalid)`, a wrong one `Ok(false)`.
pub fn verify(
    key: &str,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    imp::verify(key, algorithm, data, signature)
}

/// A MAC of `data` with the secret `key` (an `hmac` key).
pub fn mac(key: &str, algorithm: Mac, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    imp::mac(key, algorithm, data)
}

/// [`mac`] as lowercase hex, as most department protocols carry it.
pub fn mac_hex(key: &str, algorithm: Mac, data: &[u8]) -> Result<String, CryptoError> {
    mac(key, algorithm, data).map(crate::sign::to_hex)
}

/// Whether `signature_hex` is the MAC of `data` under the secret `key`: how an adapter checks
/// a department's signed callback without holding the department's secret.
///
/// The host computes the MAC; it is compared here in constant time (`subtle`), so how long the
/// check takes tells a forger nothing about how much of a guess was right. Hex digits in either
/// case; anything else, or a signature of the wrong length, is `Ok(false)`.
pub fn verify_mac_hex(
    key: &str,
    algorithm: Mac,
    data: &[u8],
    signature_hex: &str,
) -> Result<bool, CryptoError> {
    use subtle::ConstantTimeEq as _;
    let expected = mac(key, algorithm, data)?;
    // Decoding depends only on the signature given, which the sender knows anyway.
    let Ok(given) = hex::decode(signature_hex) else {
        return Ok(false);
    };
    Ok(given.len() == expected.len() && bool::from(given.ct_eq(&expected)))
}

/// The SM3 digest of `data` (no key; [`crate::sign::sm3_hex`] computes the same in the adapter).
pub fn sm3(data: &[u8]) -> Vec<u8> {
    imp::sm3(data)
}

/// SM4-CBC with PKCS#7 padding under the `sm4` key `key`; `iv` is 16 bytes.
pub fn sm4_encrypt(key: &str, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    imp::sm4_encrypt(key, iv, data)
}

/// The inverse of [`sm4_encrypt`].
pub fn sm4_decrypt(key: &str, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    imp::sm4_decrypt(key, iv, data)
}
