//! The portal and admin listeners: plain TCP, or TLS with rustls.
//!
//! TLS handshakes run in their own tasks, off the accept path: a client that opens a
//! connection and stalls in the handshake delays nobody else, and gives up after
//! [`HANDSHAKE_TIMEOUT`]. Finished handshakes are handed to the server through a channel, so
//! `axum::serve` (and its graceful shutdown) works the same over TLS as over TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener whose connections are TLS sessions.
pub struct TlsListener {
    local: SocketAddr,
    sessions: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accept TLS sessions on `tcp` with `config`.
    pub fn new(tcp: TcpListener, config: rustls::ServerConfig) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        // A small queue: when the server falls behind, handshakes wait rather than pile up.
        let (finished, sessions) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(tcp, acceptor, finished));
        Ok(TlsListener {
            local,
            sessions,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    finished: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(session)) => {
                    let _ = finished.send((session, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.sessions.recv().await {
            Some(session) => session,
            // The accept loop never ends on its own; if it was stopped, so is this listener.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serve `app` on `tcp` — over TLS when `tls` is given — until `stopped` turns true, then
/// finish the requests in flight.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<rustls::ServerConfig>,
    app: axum::Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let signal = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let served = match tls {
        None => axum::serve(tcp, app).with_graceful_shutdown(signal).await,
        Some(config) => match TlsListener::new(tcp, config) {
            Ok(listener) => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(signal)
                    .await
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "server stopped");
    }
}
