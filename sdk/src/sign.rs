//! The digests and signatures department protocols use: HMAC-SHA256, HMAC-SM3 (国密), SM3,
//! SHA-256, base64, and request nonces; and the check of a department's HMAC signature, in
//! constant time.

use base64::Engine;
use hmac::{Hmac, Mac};

/// Lowercase hex of `bytes`, as digests, signatures and nonces are written.
///
/// Written through `hex::encode_to_slice`, a byte at a time into a buffer of the final size:
/// `hex::encode` collects an iterator of `char`s, about three times slower for a digest, and a
/// lookup signs, digests and traces a few of them.
pub fn to_hex(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = vec![0; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut out).expect("the buffer is twice the input");
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Lowercase hex HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    to_hex(mac.finalize().into_bytes())
}

/// Lowercase hex HMAC-SM3 of `message` under `key` (GB/T 32905 hash in the RFC 2104 construction).
pub fn hmac_sm3_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<sm3::Sm3>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    to_hex(mac.finalize().into_bytes())
}

/// Lowercase hex SM3 digest.
pub fn sm3_hex(message: &[u8]) -> String {
    use sm3::Digest;
    to_hex(sm3::Sm3::digest(message))
}

/// Lowercase hex SHA-256 digest.
pub fn sha256_hex(message: &[u8]) -> String {
    use sha2::Digest;
    to_hex(sha2::Sha256::digest(message))
}

/// Whether `signature_hex` is the HMAC-SHA256 of `message` under `key`: the way to check a
/// department's signature (a callback's, say).
///
/// The MAC is compared in constant time (the `hmac` crate's `verify_slice`), so how long the
/// check takes tells a forger nothing about how much of a guess was right. Hex digits in either
/// case; anything else, or a signature of the wrong length, is `false`.
pub fn verify_hmac_sha256_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    verify_hex::<Hmac<sha2::Sha256>>(key, message, signature_hex)
}

/// Whether `signature_hex` is the HMAC-SM3 of `message` under `key`, compared in constant time
/// as [`verify_hmac_sha256_hex`] does.
pub fn verify_hmac_sm3_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    verify_hex::<Hmac<sm3::Sm3>>(key, message, signature_hex)
}

fn verify_hex<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    message: &[u8],
    signature_hex: &str,
) -> bool {
    // Decoding depends only on the signature given, which the sender knows anyway.
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(&signature).is_ok()
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64 decoding.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

/// A nonce for signed requests: 32 lowercase hex characters, 128 bits from the system's random
/// source (`getrandom`: the operating system natively, WASI `random` inside a component), so no
/// two repeat in practice, across calls, instances and processes alike.
///
/// Panics if the system has no random source to give: a component then traps, rather than sign
/// requests with a nonce a department could have seen before.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system's random source");
    to_hex(bytes)
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
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(to_hex([]), "");
        assert_eq!(to_hex([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        let every: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&every), hex::encode(&every));
    }

    #[test]
    fn sm3_matches_the_standard_example() {
        // GB/T 32905-2016, example 1: "abc".
        assert_eq!(
            sm3_hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    /// RFC 4231 test case 2.
    const RFC_4231_KEY: &[u8] = b"Jefe";
    const RFC_4231_MESSAGE: &[u8] = b"what do ya want for nothing?";
    const RFC_4231_SHA256: &str =
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    /// The same key and message under HMAC-SM3, as OpenSSL 3 computes it
    /// (`hmac.new(b"Jefe", b"what do ya want for nothing?", "sm3")` in Python).
    const HMAC_SM3: &str = "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882";

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(RFC_4231_KEY, RFC_4231_MESSAGE),
            RFC_4231_SHA256
        );
    }

    #[test]
    fn hmac_sm3_matches_openssl() {
        assert_eq!(hmac_sm3_hex(RFC_4231_KEY, RFC_4231_MESSAGE), HMAC_SM3);
    }

    /// Every way a signature can be wrong, for one verify function and its known answer.
    fn check_verify(verify: fn(&[u8], &[u8], &str) -> bool, right: &str) {
        let verify = |signature: &str| verify(RFC_4231_KEY, RFC_4231_MESSAGE, signature);
        assert!(verify(right));
        assert!(verify(&right.to_uppercase()), "hex digits in either case");
        // One hex digit changed, at every position.
        for i in 0..right.len() {
            let mut flipped = right.as_bytes().to_vec();
            flipped[i] = if flipped[i] == b'0' { b'1' } else { b'0' };
            let flipped = String::from_utf8(flipped).unwrap();
            assert!(!verify(&flipped), "digit {i} changed: {flipped}");
        }
        // Wrong lengths: a byte short, a byte more, half a byte short, nothing.
        assert!(!verify(&right[..right.len() - 2]));
        assert!(!verify(&format!("{right}00")));
        assert!(!verify(&right[..right.len() - 1]));
        assert!(!verify(""));
        // Not hex: a letter past f, a space, a sign, non-ASCII.
        assert!(!verify(&format!("{}g", &right[..right.len() - 1])));
        assert!(!verify(&format!(" {}", &right[1..])));
        assert!(!verify(&format!("+{}", &right[1..])));
        assert!(!verify(&format!("签{}", &right[3..])));
    }

    #[test]
    fn hmac_sha256_verification_known_answers() {
        check_verify(verify_hmac_sha256_hex, RFC_4231_SHA256);
        assert!(!verify_hmac_sha256_hex(
            b"Jefe!",
            RFC_4231_MESSAGE,
            RFC_4231_SHA256
        ));
        assert!(!verify_hmac_sha256_hex(
            RFC_4231_KEY,
            b"what do ya want for nothing?!",
            RFC_4231_SHA256
        ));
        // Not the SM3 one: the algorithm is part of the signature.
        assert!(!verify_hmac_sha256_hex(
            RFC_4231_KEY,
            RFC_4231_MESSAGE,
            HMAC_SM3
        ));
    }

    #[test]
    fn hmac_sm3_verification_known_answers() {
        check_verify(verify_hmac_sm3_hex, HMAC_SM3);
        assert!(!verify_hmac_sm3_hex(b"Jefe!", RFC_4231_MESSAGE, HMAC_SM3));
        assert!(!verify_hmac_sm3_hex(
            RFC_4231_KEY,
            b"what do ya want for nothing?!",
            HMAC_SM3
        ));
        assert!(!verify_hmac_sm3_hex(
            RFC_4231_KEY,
            RFC_4231_MESSAGE,
            RFC_4231_SHA256
        ));
    }

    #[test]
    fn nonces_are_32_lowercase_hex_characters_and_do_not_repeat() {
        let nonces: Vec<String> = (0..10_000).map(|_| nonce()).collect();
        for n in &nonces {
            assert_eq!(n.len(), 32, "{n}");
            assert!(
                n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{n}"
            );
        }
        let distinct: std::collections::HashSet<&String> = nonces.iter().collect();
        assert_eq!(distinct.len(), nonces.len());
    }
}
