//! The rustls configuration of the gateway's own listeners: certificate, optional client CA
//! for mutual TLS.
//!
//! The ring provider is named explicitly rather than installed process-wide, so the gateway
//! never depends on which crate happened to install a default first.

use anyhow::Context;
use gateway_base::config::{Config, ListenerTls};
use std::sync::Arc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a TLS listener runs with.
#[derive(Debug)]
pub struct ServerTls {
    /// Certificate, key, client verification, protocols.
    pub config: rustls::ServerConfig,
    /// Handshakes in progress at once (see [`crate::listener`]).
    pub max_handshakes: usize,
}

/// The server TLS configuration of a listener: its certificate chain and key, and, with a
/// `client_ca`, client certificates required and verified against it.
pub fn server_config(config: &Config, tls: &ListenerTls) -> anyhow::Result<ServerTls> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in gateway_base::pem::certificates(&config.resolve(ca))? {
                roots.add(cert)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(
            gateway_base::pem::certificates(&config.resolve(&tls.cert))?,
            gateway_base::pem::private_key(&config.resolve(&tls.key))?,
        )
        .context("the certificate and key do not belong together")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: server,
        max_handshakes: tls.max_handshakes as usize,
    })
}
