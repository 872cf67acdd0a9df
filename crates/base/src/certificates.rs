//! Expiry dates of every certificate the gateway holds or pins: the listeners' own, each
//! department's pinned CA and the gateway's client identity towards it.
//!
//! A certificate that expires breaks a department connection or the portal's HTTPS without any
//! change on the gateway, so its date is published ahead of time: as a Prometheus gauge
//! (`gateway_certificate_not_after_seconds`), in `/readyz` (an expired certificate makes the
//! node not ready; one within `server.certificate_warning_days` is named with its date), and in
//! a warning at start. A file holding a chain reports its earliest expiry.

use crate::config::Config;
use std::path::Path;
use x509_parser::prelude::{FromDer, X509Certificate};

/// One certificate file and its earliest expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Where it is configured: `server.tls.cert`, `departments.<id>.tls.ca` …
    pub name: String,
    /// The subject of the certificate that expires first.
    pub subject: String,
    /// Its not-after time, Unix milliseconds.
    pub not_after_ms: i64,
}

impl Certificate {
    /// Whole days left at `now_ms` (negative once expired).
    pub fn days_left(&self, now_ms: i64) -> i64 {
        (self.not_after_ms - now_ms).div_euclid(86_400_000)
    }
}

/// Every configured certificate file, with its earliest expiry.
pub fn inventory(config: &Config) -> anyhow::Result<Vec<Certificate>> {
    let mut files = Vec::new();
    let listeners = [
        ("server.tls", config.server.tls.as_ref()),
        (
            "admin.tls",
            config.admin.as_ref().and_then(|a| a.tls.as_ref()),
        ),
    ];
    for (key, tls) in listeners {
        if let Some(tls) = tls {
            files.push((format!("{key}.cert"), tls.cert.clone()));
            if let Some(ca) = &tls.client_ca {
                files.push((format!("{key}.client_ca"), ca.clone()));
            }
        }
    }
    for (id, department) in &config.departments {
        if let Some(tls) = &department.tls {
            files.push((format!("departments.{id}.tls.ca"), tls.ca.clone()));
            if let Some(cert) = &tls.client_cert {
                files.push((format!("departments.{id}.tls.client_cert"), cert.clone()));
            }
        }
    }
    files
        .into_iter()
        .map(|(name, path)| earliest(name, &config.resolve(&path)))
        .collect()
}

fn earliest(name: String, path: &Path) -> anyhow::Result<Certificate> {
    let mut first: Option<Certificate> = None;
    for der in crate::pem::certificates(path)? {
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| anyhow::anyhow!("{}: not an X.509 certificate: {e}", path.display()))?;
        let not_after_ms = cert.validity().not_after.timestamp() * 1000;
        if first.as_ref().is_none_or(|c| not_after_ms < c.not_after_ms) {
            first = Some(Certificate {
                name: name.clone(),
                subject: cert.subject().to_string(),
                not_after_ms,
            });
        }
    }
    first.ok_or_else(|| anyhow::anyhow!("no certificate in {}", path.display()))
}

/// Publish each expiry as a gauge and warn about those close to it.
pub fn publish(certificates: &[Certificate], warning_days: u32) {
    let now = crate::time::now_ms();
    for c in certificates {
        metrics::gauge!(
            "gateway_certificate_not_after_seconds",
            "certificate" => c.name.clone(),
            "subject" => c.subject.clone(),
        )
        .set((c.not_after_ms / 1000) as f64);
        let days = c.days_left(now);
        if days < 0 {
            tracing::error!(certificate = %c.name, subject = %c.subject, not_after = %crate::time::rfc3339(c.not_after_ms), "certificate expired");
        } else if days <= i64::from(warning_days) {
            tracing::warn!(certificate = %c.name, subject = %c.subject, not_after = %crate::time::rfc3339(c.not_after_ms), days, "certificate expires soon");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(not_after: time::OffsetDateTime, cn: &str) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = not_after - time::Duration::days(365);
        params.not_after = not_after;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_chain_reports_its_earliest_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let soon = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        let later = soon + time::Duration::days(300);
        let path = dir.path().join("chain.pem");
        std::fs::write(&path, pem(later, "leaf") + &pem(soon, "intermediate")).unwrap();
        let c = earliest("server.tls.cert".into(), &path).unwrap();
        assert_eq!(c.subject, "CN=intermediate");
        assert_eq!(c.not_after_ms / 1000, soon.unix_timestamp());
        assert_eq!(c.days_left(crate::time::now_ms()), 9); // 9 whole days and some hours
        assert!(c.days_left(soon.unix_timestamp() * 1000 + 1) < 0);
    }
}
