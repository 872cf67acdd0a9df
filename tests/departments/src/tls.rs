//! The public-security department's PKI and its mutual-TLS server, plus the plain HTTP client
//! the departments use for callbacks.
//!
//! Every start makes a new CA, so no key outlives the process that trusts it. Configs name the
//! ring provider explicitly: a process-wide default provider may or may not be installed by
//! whoever links this crate, and must not decide how these servers behave.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::common::Sim;

/// A handshake that has not finished by then is dropped, so idle sockets cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the server needs from the generated PKI.
pub(crate) struct ServerIdentity {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn named(cn: &str, sans: Vec<String>) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        "Simulated Public Security Department",
    );
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    Ok(params)
}

/// Makes a CA, a server certificate for `localhost`/`127.0.0.1` and a client certificate, and
/// writes `ca.pem`, `server.pem`, `server-key.pem`, `client.pem`, `client-key.pem` into `dir`.
pub(crate) fn generate(dir: &Path) -> anyhow::Result<ServerIdentity> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut ca_params = named("Simulated Public Security CA", vec![])?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut server_params = named("localhost", vec!["localhost".into(), "127.0.0.1".into()])?;
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate()?;
    let server = server_params.signed_by(&server_key, &ca)?;

    let mut client_params = named("gateway", vec![])?;
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client_params.use_authority_key_identifier_extension = true;
    let client_key = KeyPair::generate()?;
    let client = client_params.signed_by(&client_key, &ca)?;

    write(dir, "ca.pem", &ca.pem(), false)?;
    write(dir, "server.pem", &server.pem(), false)?;
    write(dir, "server-key.pem", &server_key.serialize_pem(), true)?;
    write(dir, "client.pem", &client.pem(), false)?;
    write(dir, "client-key.pem", &client_key.serialize_pem(), true)?;

    Ok(ServerIdentity {
        ca: ca.der().clone(),
        chain: vec![server.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    })
}

pub(crate) fn write(dir: &Path, name: &str, contents: &str, secret: bool) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(())
}

/// Server config that refuses any client without a certificate from our CA.
pub(crate) fn server_config(id: ServerIdentity) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(id.ca)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(id.chain, id.key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TLS connections and serves `router` on each over HTTP/1.1. A failed handshake (no
/// or wrong client certificate) is counted as a refusal and the connection dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    sim: Arc<Sim>,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, router, sim) = (acceptor.clone(), router.clone(), sim.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "TLS handshake refused");
                    sim.reject("tls_handshake");
                    return;
                }
                Err(_) => {
                    sim.reject("tls_handshake_timeout");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                router.clone().oneshot(req.map(Body::new))
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Client for callbacks to the gateway. reqwest is built without a bundled provider, so it
/// gets a preconfigured ring config; callbacks are plain HTTP, hence no roots.
pub(crate) fn callback_client() -> anyhow::Result<reqwest::Client> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(5))
        .build()?)
}
