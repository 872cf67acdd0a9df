//! Certificates and private keys from PEM files, read with `rustls-pki-types` (the PEM reader
//! of the rustls project itself).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// Why a PEM file gives no certificate or key.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file cannot be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not PEM of the kind asked for.
    #[error("parsing {path}: {error}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// The file holds no certificate, or no key.
    #[error("no {what} in {path}")]
    Empty {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|error| PemError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// Every certificate in a PEM file (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::Parse {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PemError::Empty {
            what: "certificate",
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => PemError::Empty {
            what: "private key",
            path: path.display().to_string(),
        },
        other => PemError::Parse {
            path: path.display().to_string(),
            error: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_and_keys_are_read_and_absences_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        assert_eq!(certificates(&cert_path).unwrap().len(), 1);
        assert!(private_key(&key_path).is_ok());
        assert!(matches!(
            certificates(&key_path),
            Err(PemError::Empty { .. })
        ));
        assert!(matches!(
            private_key(&cert_path),
            Err(PemError::Empty { .. })
        ));
        assert!(matches!(
            certificates(&dir.path().join("missing.pem")),
            Err(PemError::Read { .. })
        ));
    }
}
