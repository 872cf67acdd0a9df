//! Fixed-format serial numbers (流水号) derived from the gateway's idempotency key, so a retry
//! of the same submission sends the same serial and the department can recognise it, while
//! two submissions practically never share one.
//!
//! ```
//! use sdk::serial;
//!
//! let key = "9f0c6a3e-case-01-step-0";
//! let s = serial::digits(key, 20);
//! assert_eq!(s.len(), 20);
//! assert_eq!(s, serial::digits(key, 20), "the same key, the same serial");
//! // A date in front (yyyyMMdd) and digits of the key's hash after it: 8 + 12 = 20.
//! let dated = serial::dated(key, "20261204", 20);
//! assert!(dated.starts_with("20261204") && dated.len() == 20);
//! ```
//!
//! The digits come from the SM3 digest of the key read as a big number, so they are evenly
//! spread; a department asking for a date in its serial should get a date that does not change
//! on a retry (the application's own date from the payload, not the time of the call: a retry
//! after midnight would otherwise send a new serial).

/// `len` decimal digits (1–64) derived from `key`: always the same for the same key.
pub fn digits(key: &str, len: usize) -> String {
    assert!((1..=64).contains(&len), "a serial of 1 to 64 digits");
    use sm3::Digest as _;
    let mut out = String::with_capacity(len);
    let mut block = sm3::Sm3::digest(key.as_bytes());
    // Each digest gives 19 digits (its first 8 bytes as a number, modulo 10^19, without bias
    // worth counting: 2^64 / 10^19 ≈ 1.8); longer serials digest the digest again.
    while out.len() < len {
        let mut first = [0u8; 8];
        first.copy_from_slice(&block[..8]);
        let n = u64::from_be_bytes(first) % 10_000_000_000_000_000_000;
        out.push_str(&format!("{n:019}"));
        block = sm3::Sm3::digest(block);
    }
    out.truncate(len);
    out
}

/// `prefix` (a date such as `20261204`, a department code) followed by digits derived from
/// `key`, `len` characters in all. Panics if `prefix` is not shorter than `len`.
pub fn dated(key: &str, prefix: &str, len: usize) -> String {
    assert!(prefix.len() < len, "the prefix leaves no room for digits");
    format!("{prefix}{}", digits(key, len - prefix.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_is_fixed_by_its_key_and_differs_between_keys() {
        let a = digits("case-1/step-0", 20);
        assert_eq!(a, digits("case-1/step-0", 20));
        assert!(a.bytes().all(|b| b.is_ascii_digit()), "{a}");
        assert_ne!(a, digits("case-1/step-1", 20));
        // A shorter serial is the start of the longer one: widths can change without surprise.
        assert!(digits("case-1/step-0", 40).starts_with(&a));
        assert_eq!(digits("k", 64).len(), 64);
    }

    #[test]
    fn a_thousand_keys_give_a_thousand_serials() {
        let serials: std::collections::HashSet<String> =
            (0..1000).map(|i| digits(&format!("key-{i}"), 12)).collect();
        assert_eq!(serials.len(), 1000);
    }

    #[test]
    fn a_dated_serial_keeps_its_prefix_and_width() {
        let s = dated("case-1/step-0", "20261204", 20);
        assert_eq!(s.len(), 20);
        assert_eq!(&s[..8], "20261204");
        assert_eq!(&s[8..], &digits("case-1/step-0", 12));
    }
}
