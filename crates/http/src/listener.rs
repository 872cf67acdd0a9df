//! The portal and admin listeners: plain TCP, or TLS with rustls.
//!
//! TLS handshakes run in their own tasks, off the accept path: a client that opens a
//! connection and stalls in the handshake delays nobody else, and gives up after
//! [`HANDSHAKE_TIMEOUT`]. At most `max_handshakes` (`[server.tls]`, `[admin.tls]`) are in
//! progress at once; a connection beyond them displaces the handshake that has waited longest.
//! Thousands of clients that connect and stall therefore hold no more than that many file
//! descriptors, tasks and rustls buffers, while the accept loop never stops taking connections
//! and a real client, whose handshake takes milliseconds, is served (it would be displaced only
//! if `max_handshakes` newer connections arrived during its own handshake). Refusing newcomers
//! instead would leave real clients queued in the kernel's backlog behind stalled ones for the
//! whole timeout. Finished handshakes are handed to the server through a channel, so
//! `axum::serve` (and its graceful shutdown) works the same over TLS as over TCP.

use crate::tls::ServerTls;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener whose connections are TLS sessions.
pub struct TlsListener {
    local: SocketAddr,
    sessions: mpsc::Receiver<Session>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accept TLS sessions on `tcp` with `tls`.
    pub fn new(tcp: TcpListener, tls: ServerTls) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(tls.config));
        // A small queue: when the server falls behind, handshakes wait rather than pile up.
        let (finished, sessions) = mpsc::channel(64);
        let handshakes = Handshakes::new(tls.max_handshakes, finished);
        let acceptor = tokio::spawn(accept_loop(tcp, acceptor, handshakes));
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

type Session = (TlsStream<TcpStream>, SocketAddr);

/// The handshakes in progress, oldest first (ids only grow), and where finished ones go.
struct Handshakes {
    limit: usize,
    state: Mutex<(u64, BTreeMap<u64, AbortHandle>)>,
    sessions: mpsc::Sender<Session>,
}

impl Handshakes {
    fn new(limit: usize, sessions: mpsc::Sender<Session>) -> Arc<Handshakes> {
        Arc::new(Handshakes {
            limit: limit.max(1),
            state: Mutex::new((0, BTreeMap::new())),
            sessions,
        })
    }

    /// Run `handshake` as one of the handshakes in progress, displacing the oldest when all
    /// are taken; hand its session to the server. Spawned under the lock, so the task cannot
    /// finish (and forget itself) before it is registered.
    fn start<F>(self: &Arc<Self>, peer: SocketAddr, handshake: F)
    where
        F: Future<Output = Option<Session>> + Send + 'static,
    {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.1.len() >= self.limit
            && let Some((_, oldest)) = state.1.pop_first()
        {
            // Aborting drops its TCP stream: the descriptor and the buffers go with it.
            oldest.abort();
            tracing::debug!(%peer, limit = self.limit, "TLS handshakes at their limit: the oldest gave way");
        }
        let id = state.0;
        state.0 += 1;
        let this = self.clone();
        let task = tokio::spawn(async move {
            let session = handshake.await;
            // No longer a handshake: from here on nothing displaces it.
            this.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .remove(&id);
            if let Some(session) = session {
                let _ = this.sessions.send(session).await;
            }
        });
        state.1.insert(id, task.abort_handle());
    }
}

async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, handshakes: Arc<Handshakes>) {
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
        handshakes.start(peer, async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(session)) => Some((session, peer)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake refused");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    None
                }
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
    tls: Option<ServerTls>,
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
