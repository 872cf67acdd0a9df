//! The hash functions the gateway writes digests with: SM3 (GB/T 32905-2016, the default for
//! government systems) or SHA-256.

use serde::{Deserialize, Serialize};

/// A hash function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// SM3 (GB/T 32905-2016).
    #[default]
    Sm3,
    /// SHA-256.
    Sha256,
}

impl HashAlgorithm {
    /// The name written before each hash (`sm3:…`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sm3 => "sm3",
            HashAlgorithm::Sha256 => "sha256",
        }
    }

    /// The algorithm a written hash names.
    pub fn of(hash: &str) -> Option<HashAlgorithm> {
        match hash.split_once(':')?.0 {
            "sm3" => Some(HashAlgorithm::Sm3),
            "sha256" => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }

    /// The digest of the parts, one after the other.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            HashAlgorithm::Sm3 => {
                let mut h = sm3::Sm3::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            HashAlgorithm::Sha256 => {
                let mut h = sha2::Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }

    /// Hex digest of some bytes (a request or answer body).
    pub fn hex(self, bytes: &[u8]) -> String {
        sdk::sign::to_hex(self.digest(&[bytes]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_standards_examples() {
        // GB/T 32905-2016 A.1: SM3("abc").
        assert_eq!(
            HashAlgorithm::Sm3.hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            HashAlgorithm::Sha256.hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(HashAlgorithm::of("sm3:00"), Some(HashAlgorithm::Sm3));
        assert_eq!(HashAlgorithm::of("md5:00"), None);
    }
}
