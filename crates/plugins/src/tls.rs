//! rustls configurations of department connections: the pinned CA, and the gateway's client
//! identity where the department requires mutual TLS.
//!
//! The ring provider is named explicitly rather than installed process-wide, so the gateway
//! never depends on which crate happened to install a default first.

use gateway_base::config::{Config, TlsConfig};
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client TLS configuration for one department.
pub fn client_config(config: &Config, tls: &TlsConfig) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in gateway_base::pem::certificates(&config.resolve(&tls.ca))? {
        roots.add(cert)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let client = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => builder.with_client_auth_cert(
            gateway_base::pem::certificates(&config.resolve(cert))?,
            gateway_base::pem::private_key(&config.resolve(key))?,
        )?,
        _ => builder.with_no_client_auth(),
    };
    Ok(client)
}

/// A client configuration that trusts no server: for connections that must never use TLS.
pub fn no_trust_config() -> anyhow::Result<rustls::ClientConfig> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}
