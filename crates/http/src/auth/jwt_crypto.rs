//! The cryptography behind jsonwebtoken, chosen here rather than by a crate feature.
//!
//! jsonwebtoken (10 and later) leaves its signature primitives to a process-wide
//! `CryptoProvider`; with no backend feature and nothing installed, the first `decode` panics.
//! Its two backends each bring more than the gateway verifies: `rust_crypto` adds RSA (the `rsa`
//! crate, RUSTSEC-2023-0071, unpatched) and P-256/P-384 on a newer RustCrypto generation than the
//! tree's; `aws_lc_rs` adds a C library next to ring. The gateway accepts exactly two
//! algorithms, so this provider implements those two on crates the tree already has — HS256 on
//! `hmac` (comparison in constant time) and EdDSA on `ed25519-dalek` (strict verification) — and
//! refuses every other algorithm with an error, never a panic. [`install`] puts it in place
//! before any token is decoded.

use hmac::Mac as _;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// HS256 and EdDSA verification; HS256 signing (the tests make tokens with it). JWK helpers
/// answer with an error: the gateway reads no JWKs.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory,
    verifier_factory,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::InvalidAlgorithm.into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::InvalidAlgorithm.into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
        compute_digest: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
    },
};

/// Make this the process's jsonwebtoken provider (idempotent). Fails only if another provider
/// was installed first, which nothing in the gateway does.
pub fn install() -> std::result::Result<(), String> {
    let _ = PROVIDER.install_default();
    match CryptoProvider::try_get_default() {
        Some(installed) if std::ptr::eq(installed, &PROVIDER) => Ok(()),
        _ => Err("another jsonwebtoken crypto provider was installed first".into()),
    }
}

fn verifier_factory(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match (algorithm, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            let mac = HmacSha256::new_from_slice(key.try_get_as_bytes()?)
                .map_err(|_| ErrorKind::InvalidKeyFormat)?;
            Ok(Box::new(Hs256(mac)))
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => {
            let raw: &[u8; 32] = key
                .try_get_as_bytes()?
                .try_into()
                .map_err(|_| ErrorKind::InvalidEddsaKey)?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(raw)
                .map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Ok(Box::new(Ed25519(key)))
        }
        (Algorithm::HS256 | Algorithm::EdDSA, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn signer_factory(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    match (algorithm, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            let mac = HmacSha256::new_from_slice(key.as_bytes())
                .map_err(|_| ErrorKind::InvalidKeyFormat)?;
            Ok(Box::new(Hs256(mac)))
        }
        (Algorithm::HS256, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

struct Hs256(HmacSha256);

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        // `verify_slice` compares in constant time.
        mac.verify_slice(tag).map_err(|_| signature::Error::new())
    }
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

struct Ed25519(ed25519_dalek::VerifyingKey);

impl signature::Verifier<Vec<u8>> for Ed25519 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        let signature =
            ed25519_dalek::Signature::from_slice(signature).map_err(|_| signature::Error::new())?;
        // Strict: no small-order keys, no malleable signatures.
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Ed25519 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    fn claims() -> serde_json::Value {
        serde_json::json!({"sub": "c", "exp": jsonwebtoken::get_current_timestamp() + 60})
    }

    #[test]
    fn hs256_tokens_round_trip_and_a_wrong_key_or_algorithm_is_an_error_not_a_panic() {
        install().unwrap();
        let header = jsonwebtoken::Header::new(Algorithm::HS256);
        let key = EncodingKey::from_secret(b"secret-0123456789").unwrap();
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        let validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        let right = DecodingKey::from_secret(b"secret-0123456789").unwrap();
        let wrong = DecodingKey::from_secret(b"secret-0123456788").unwrap();
        jsonwebtoken::decode::<serde_json::Value>(&token, &right, &validation).unwrap();
        let error =
            jsonwebtoken::decode::<serde_json::Value>(&token, &wrong, &validation).unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidSignature);
        // RS256 is not ours: an error, whatever the token says.
        let rs256 = jsonwebtoken::Header::new(Algorithm::RS256);
        assert!(jsonwebtoken::encode(&rs256, &claims(), &key).is_err());
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        let forged = format!(
            "{}.{}",
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
            token.split_once('.').unwrap().1
        );
        assert!(jsonwebtoken::decode::<serde_json::Value>(&forged, &right, &validation).is_err());
    }

    #[test]
    fn eddsa_tokens_verify_with_the_public_key_only() {
        install().unwrap();
        use base64::Engine as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let message = format!(
            "{}.{}",
            b64.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#),
            b64.encode(claims().to_string())
        );
        let token = format!(
            "{message}.{}",
            b64.encode(signing.sign(message.as_bytes()).to_bytes())
        );
        let key = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        let validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let other = DecodingKey::from_ed_der(other.verifying_key().as_bytes());
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &other, &validation).is_err());
    }
}
