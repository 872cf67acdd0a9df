//! The cryptography behind jsonwebtoken, chosen here rather than by a crate feature.
//!
//! jsonwebtoken (10 and later) leaves its signature primitives to a process-wide
//! `CryptoProvider`; with no backend feature and nothing installed, the first `decode` panics.
//! Its two backends each bring more than the gateway verifies: `rust_crypto` adds RSA (the `rsa`
//! crate, RUSTSEC-2023-0071, unpatched) and P-256/P-384 on a newer RustCrypto generation than the
//! tree's; `aws_lc_rs` adds a C library next to ring. The API accepts exactly two algorithms,
//! so this provider implements those on crates the tree already has — HS256 on `hmac`
//! (comparison in constant time) and EdDSA on `ed25519-dalek` (strict verification). The
//! screens' OIDC sign-in verifies a provider's ID tokens, RS256 or ES256 (what identity
//! systems sign with): those two are verified with ring, already in the tree under rustls
//! (public-key verification only; ring holds no RSA private key here). Which algorithms a
//! token may use is each caller's `Validation`, so the API still takes HS256 and EdDSA only.
//! Every other algorithm is an error, never a panic. [`install`] puts the provider in place
//! before any token is decoded.

use hmac::Mac as _;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// HS256, EdDSA, RS256 and ES256 verification; HS256 signing (the tests make tokens with it). JWK helpers
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
        (Algorithm::RS256, AlgorithmFamily::Rsa) => match key.kind() {
            DecodingKeyKind::RsaModulusExponent { n, e } => Ok(Box::new(Rs256 {
                n: n.clone(),
                e: e.clone(),
            })),
            DecodingKeyKind::SecretOrDer(_) => Err(ErrorKind::InvalidRsaKey(String::new()).into()),
        },
        (Algorithm::ES256, AlgorithmFamily::Ec) => {
            // An uncompressed P-256 point: 0x04, x, y.
            let point = key.try_get_as_bytes()?;
            if point.len() != 65 || point[0] != 4 {
                return Err(ErrorKind::InvalidEcdsaKey.into());
            }
            Ok(Box::new(Es256(point.to_vec())))
        }
        (Algorithm::HS256 | Algorithm::EdDSA | Algorithm::RS256 | Algorithm::ES256, _) => {
            Err(ErrorKind::InvalidKeyFormat.into())
        }
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

/// An RSA public key (modulus and exponent, big-endian): RSASSA-PKCS1-v1_5 with SHA-256, keys
/// of 2048 to 8192 bits.
struct Rs256 {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl signature::Verifier<Vec<u8>> for Rs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        ring::signature::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            message,
            signature,
        )
        .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// A P-256 public key (uncompressed point): ECDSA with SHA-256, the JWS form of the signature
/// (r and s, 32 bytes each).
struct Es256(Vec<u8>);

impl signature::Verifier<Vec<u8>> for Es256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), signature::Error> {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Es256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
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

    /// A 2048-bit RSA key made for this test only (PKCS#1 DER, base64): ring verifies RSA but
    /// does not make RSA keys.
    const RSA_TEST_KEY: &[&str] = &[
        "MIIEogIBAAKCAQEAqk3DZMRpqaHwD9VfGZ9tlmo4YPQBAxGq8Ox4RxSe2ZeZm/n6qgjtPOgXCX0wKFMI1GWHWZMU+R8wWCEY",
        "ZXh1UA+rHLwEMvGaNzPuuEQN2FJHhawCy50A1UXWXnb+qparVnhdlEah/BZSB3uz4r2p9p0wPU7V9z0dt+DiCQgFx7qVz+dT",
        "+/WyNnByU8priuk5RCyW/aKcKw8FZXgpckBFJaY/V3S/iFhkrpMHi3DGN/u15fZpmdRpxWjZnXLTaYeRT3EVKBKTkEjygFNg",
        "q1Mwfx8LyT7TYwTQ3OQ5LtYTDWLvzaQu+1kN/yYRE4TFbcpAmow6JTNls1HocYx82QS9JQIDAQABAoIBAA4FoRTm5xxEbROg",
        "qdfePJOp40J4VK0AA2ca0TxpAjtANDGXf4AIhCADrAHoANMRIyT5xw8lARER9FUNRIj2RhJ1d81B3cakBeKNsBYT5F/vRlxH",
        "MWO6ZZspyOC2Q3mgNjNEbdALkMLEw7RCBymgHCJmBtbFavCUY6IELhg4ROGQ5Mtp/PW8cTBdns4Rn4YAjGjBq664vK1y0j/r",
        "xIsXAFtYv4jYFvT0TlR1GUOT4DposICqiZbUV+d6feOP2hIBBPX33kuEUe2qU0NZCqr8cR68DywS17k6/XJg1L3hNO7oGTU4",
        "e14SZhY/XIMtPp98/CstIB6knCXrV07qTxE7CPECgYEA4yJ+NIWEz94eZe2RVItzYMSi9xzAhR2RduvflGOaAFdCjMH++uoJ",
        "YZz/V9ZwHWmiT4BJzCLT/4wO+Osvt+skheIKsH6rLbiVrnraSpmTD0Vj6Jc1qPVyRVH+qdxobVS1C0/TWArG7qTrlO0Ez5qa",
        "j7VvirFSe7BEy4bYhFkhOm8CgYEAv/Ja31Vau2debD99VOF5Jaw5hUrBSc6zRpybmLeRCm9zsP140FWpYGY91BxfjcASqtcD",
        "O6sYw/5onWuVxQ9qHYDoLvxmMM1wzVXrzTI+UmpBmBZsbNgYNMCu8qIKEwYOeuqp6KgvPqJFvYAtg70AdFnCY12kDiNWHcI0",
        "inRnG6sCgYBY6ezLtKTcFpCByDEHDpv4+qDs6WV39q42Bnn8hc0IayBTJ7IgGTPY8XOHuBsleG+gfZDmB5BDzlkiGjcQ4Uzn",
        "2CflFYD/Ie3+YntHjrzh0oEc0OyhmovEFSgC6JQ8kFda+UG7imR7kTXjk7E5b8Unkpf6jBXE86jKn5vsm1OFowKBgAG+HosW",
        "iEtZRecvsGCb53CrHp6SLi0QXlpOw67gQ8XXezJpKrahgHcqlncdhtSPoNvCNfpNtFzbK3H6bxKp8CmyaOk8S2U4CEUk+Y4U",
        "XbJ72nqaAYP/dkDMWwpC5FqF3I3LIZ3GIR+tc3qj9kXS6nUj93rVd87VDUwZ3kY/hkwfAoGAd5xxUzrLWgYmKEYG/Uw9f7ra",
        "GpdA5yN9oL5q3gMqwh7LbFAXZ/VS1IQrJud5Sw00/e4QrYvtaahYSMqloukZbNEFMJPftTCgQuvurUINHFKc7FzGyQ5V/SHd",
        "2YnXc3w8AGMkT/1A1Ta7rvGNEDyYAU4o+/hFr4K7WO9LtkAfbb0=",
    ];

    fn signed_with(alg: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let message = format!(
            "{}.{}",
            b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)),
            b64.encode(claims().to_string())
        );
        format!("{message}.{}", b64.encode(sign(message.as_bytes())))
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_key_only() {
        install().unwrap();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(RSA_TEST_KEY.concat())
            .unwrap();
        let pair = ring::signature::RsaKeyPair::from_der(&der).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let token = signed_with("RS256", |message| {
            let mut signature = vec![0; pair.public().modulus_len()];
            pair.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                message,
                &mut signature,
            )
            .unwrap();
            signature
        });
        let public: ring::signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let key = DecodingKey::from_rsa_raw_components(&public.n, &public.e);
        let validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&tampered, &key, &validation).is_err());
    }

    #[test]
    fn es256_tokens_verify_with_their_key_and_no_other() {
        install().unwrap();
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let pair = |rng: &ring::rand::SystemRandom| {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng).unwrap()
        };
        let (ours, other) = (pair(&rng), pair(&rng));
        let token = signed_with("ES256", |m| ours.sign(&rng, m).unwrap().as_ref().to_vec());
        let key_of = |p: &EcdsaKeyPair| {
            use base64::Engine as _;
            let point = p.public_key().as_ref();
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            DecodingKey::from_ec_components(&b64.encode(&point[1..33]), &b64.encode(&point[33..]))
                .unwrap()
        };
        let validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        jsonwebtoken::decode::<serde_json::Value>(&token, &key_of(&ours), &validation).unwrap();
        let error = jsonwebtoken::decode::<serde_json::Value>(&token, &key_of(&other), &validation)
            .unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::InvalidSignature);
    }
}
