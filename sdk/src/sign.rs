//! The digests and signatures department protocols use: HMAC-SHA256, HMAC-SM3 (国密), SM3,
//! SHA-256, base64, and request nonces.

use base64::Engine;
use hmac::{Hmac, Mac};

/// Lowercase hex HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Lowercase hex HMAC-SM3 of `message` under `key` (GB/T 32905 hash in the RFC 2104 construction).
pub fn hmac_sm3_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<sm3::Sm3>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Lowercase hex SM3 digest.
pub fn sm3_hex(message: &[u8]) -> String {
    use sm3::Digest;
    hex::encode(sm3::Sm3::digest(message))
}

/// Lowercase hex SHA-256 digest.
pub fn sha256_hex(message: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(message))
}

/// Constant-time comparison of two hex signatures (case-insensitive).
pub fn signatures_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64 decoding.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

/// A 32-character hex nonce for signed requests.
///
/// Seeded from std's per-process random hasher keys (WASI random inside a component) mixed with
/// the clock and a counter, so two calls never repeat even within one nanosecond.
pub fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now ^ salt);
        h.write_u64(count);
        h.finish()
    };
    format!(
        "{:016x}{:016x}",
        half(0x9e37_79b9_7f4a_7c15),
        half(0x2545_f491_4f6c_dd1d)
    )
}

/// Unix seconds now.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sm3_matches_the_standard_example() {
        // GB/T 32905-2016, example 1: "abc".
        assert_eq!(
            sm3_hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn nonces_do_not_repeat() {
        let a = nonce();
        assert_eq!(a.len(), 32);
        assert_ne!(a, nonce());
    }

    #[test]
    fn signature_comparison() {
        assert!(signatures_match("ABcd", "abCD"));
        assert!(!signatures_match("abcd", "abce"));
        assert!(!signatures_match("abc", "abcd"));
    }
}
