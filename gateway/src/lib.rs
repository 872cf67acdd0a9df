//! The integration gateway: one unified API for government service portals over many
//! department systems, each reached through a WebAssembly adapter.
//!
//! A portal applies once; the gateway reviews the whole application, stores it durably, and
//! hands each matter to its department through that department's adapter, which speaks the
//! department's own protocol. Status comes back by polling or callback and becomes one case
//! with a per-department timeline.
//!
//! This crate is the top of the house: the binary, the command line, and the wiring that starts,
//! reloads and stops a gateway. Everything it wires is a crate of its own, each depending only
//! on the ones below it (see `docs/architecture.md`):
//! `gateway_base` ← `gateway_store` ← `gateway_plugins` ← `gateway_cases` ← `gateway_http` ← here.
//!
//! # Layout
//! - [`Gateway`] (this file): start (store, adapters, catalogue, listeners, background tasks),
//!   reload, graceful shutdown.
//! - [`reload`]: departments, matters, services and clients reloaded on a running gateway
//!   (`SIGHUP`, `POST /admin/v1/config/reload`): checked whole, swapped atomically, or refused.
//! - [`cli`]: `gateway plugin …`, `gateway config reload`, `gateway audit verify`: the
//!   operators' command line, a thin client of the admin API.
//! - [`logging`]: the log subscriber (text or JSON lines), masking on the way out.
//! - [`otel`]: optional export of spans with OTLP/HTTP, same trace ids as `traceparent`, masked.

pub mod cli;
pub mod logging;
pub mod otel;
pub mod reload;

use std::net::SocketAddr;
use std::sync::Arc;

fn default_node_id(addr: SocketAddr) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("{}@{addr}", if host.is_empty() { "gateway" } else { &host })
}

/// A running gateway.
pub struct Gateway {
    /// The address the portal API listens on.
    pub addr: SocketAddr,
    /// The orchestrator (for in-process subscribers such as tests).
    pub orchestrator: Arc<gateway_cases::Orchestrator>,
    /// The admin API's address, when configured.
    pub admin_addr: Option<SocketAddr>,
    /// Whether the portal listener serves HTTPS.
    pub tls: bool,
    reloader: Arc<reload::Reloader>,
    audit: Option<gateway_store::audit::AuditLog>,
    shutdown: tokio::sync::watch::Sender<bool>,
    grace: std::time::Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Start a gateway from a checked config: open the store, load every adapter, build the
    /// catalogue, bind the listener, start the dispatcher and the poller.
    pub async fn start(config: gateway_base::config::Config) -> anyhow::Result<Gateway> {
        gateway_base::telemetry::handle();
        // wasmtime's cache wants an absolute directory; config paths are relative to the file.
        let cache_dir = match &config.plugins.cache_dir {
            Some(dir) => Some(std::path::absolute(config.resolve(dir))?),
            None => None,
        };
        let engine = gateway_plugins::host::PluginEngine::new(256, cache_dir.as_deref())?;
        // Checked when the config was loaded; read again here for the key material.
        let cipher = gateway_store::at_rest::PayloadCipher::new(&config.payload_keys()?);
        let store = gateway_store::Store::open(&config.store.url)
            .await?
            .with_cipher(cipher.map(Arc::new));
        let adapters =
            gateway_plugins::adapters::Adapters::start(&config, &engine, store.clone()).await?;
        let catalogue = Arc::new(gateway_cases::catalogue::Catalogue::build(
            &config,
            &adapters.actives(),
        )?);
        let public_tls = match &config.server.tls {
            Some(tls) => Some(gateway_http::tls::server_config(&config, tls)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(&config.server.listen).await?;
        let addr = listener.local_addr()?;
        let node = config
            .server
            .node_id
            .clone()
            .unwrap_or_else(|| default_node_id(addr));
        let released = store.release_claims(&node).await?;
        if released > 0 {
            tracing::info!(%node, released, "took back this node's unfinished deliveries");
        }
        let audit =
            gateway_store::audit::AuditLog::start(&store, node.clone(), &config.audit).await?;
        for id in adapters.departments() {
            if let Some(connection) = adapters.connection(&id) {
                connection.attach_audit(audit.sink().recorder(&id));
            }
        }
        let delivery = Arc::new(gateway_cases::pacing::Delivery::new(&config, node));
        let polls = config
            .departments
            .iter()
            .map(|(id, d)| (id.clone(), d.poll_interval_ms as i64))
            .collect();
        let orchestrator = gateway_cases::Orchestrator::new(
            store,
            adapters.clone(),
            catalogue,
            Arc::new(gateway_cases::deadlines::Deadlines::from_config(
                &config.deadlines,
            )),
            config.public_url(addr),
            polls,
            delivery,
        );
        let readiness = gateway_http::health::Readiness::new(&config)?;
        let operators = config.admin.as_ref().map_or(&[][..], |a| &a.operators[..]);
        let authenticator: gateway_http::auth::Credentials =
            Arc::new(arc_swap::ArcSwap::from_pointee(
                gateway_http::auth::Authenticator::new(&config.auth, operators)
                    .map_err(anyhow::Error::msg)?,
            ));
        let reloader = reload::Reloader::new(
            config.clone(),
            orchestrator.clone(),
            authenticator.clone(),
            readiness.clone(),
            audit.sink().clone(),
        );
        let app = gateway_http::portal_app(
            orchestrator.clone(),
            gateway_http::portal::RequestLimits {
                body_bytes: config.server.body_limit_bytes,
                timeout_ms: config.server.request_timeout_ms,
            },
            readiness.clone(),
            authenticator.clone(),
        );
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(orchestrator.clone().run_dispatcher()),
            tokio::spawn(orchestrator.clone().run_poller()),
            tokio::spawn(readiness.clone().run(stopped.clone())),
            tokio::spawn(gateway_http::listener::serve(
                listener,
                public_tls,
                app,
                stopped.clone(),
            )),
            tokio::spawn(adapters.run_sync(
                std::time::Duration::from_millis(config.plugins.sync_interval_ms),
                stopped.clone(),
            )),
        ];
        let admin_addr = match &config.admin {
            Some(admin) => {
                let listener = tokio::net::TcpListener::bind(&admin.listen).await?;
                let admin_addr = listener.local_addr()?;
                let app = gateway_http::admin_app(
                    orchestrator.clone(),
                    readiness.clone(),
                    reloader.clone(),
                    authenticator,
                );
                let admin_tls = match &admin.tls {
                    Some(tls) => Some(gateway_http::tls::server_config(&config, tls)?),
                    None => None,
                };
                tasks.push(tokio::spawn(gateway_http::listener::serve(
                    listener, admin_tls, app, stopped,
                )));
                tracing::info!(addr = %admin_addr, "admin API listening");
                Some(admin_addr)
            }
            None => None,
        };
        tracing::info!(%addr, "gateway listening");
        Ok(Gateway {
            addr,
            orchestrator,
            admin_addr,
            tls: config.server.tls.is_some(),
            reloader,
            audit: Some(audit),
            shutdown,
            grace: std::time::Duration::from_millis(config.server.shutdown_grace_ms),
            tasks,
        })
    }

    /// Stop gracefully: refuse new connections, let requests and deliveries in flight finish
    /// within the configured grace, and leave the rest to the durable queue. True when
    /// everything in flight finished.
    pub async fn shutdown(mut self) -> bool {
        let _ = self.shutdown.send(true);
        let finished = self.orchestrator.stop(self.grace).await;
        // After the calls in flight: their exchanges are written and sealed too.
        if let Some(audit) = self.audit.take() {
            audit.close(self.grace).await;
        }
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(self.grace, task).await;
        }
        finished
    }

    /// Read the config file again and apply it, or refuse it whole (see [`reload`]); what
    /// `SIGHUP` and `POST /admin/v1/config/reload` do. `operator` is recorded with the change.
    pub async fn reload(
        &self,
        operator: &str,
    ) -> Result<gateway_base::config::reload::Reloaded, gateway_base::config::reload::ReloadError>
    {
        self.reloader.reload(operator).await
    }

    /// The portal API's base URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
