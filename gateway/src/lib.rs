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
//! - [`Gateway`] (this file): start (listeners, background tasks), reload, graceful shutdown.
//! - [`Parts`]: every part wired, serving nothing yet (what tests drive in-process).
//! - [`reload`]: departments, matters, services and clients reloaded on a running gateway
//!   (`SIGHUP`, `POST /admin/v1/config/reload`): checked whole, swapped atomically, or refused.
//! - [`cli`]: `gateway plugin …`, `gateway config reload`, `gateway audit verify`: the
//!   operators' command line, a thin client of the admin API.
//! - [`logging`]: the log subscriber (text or JSON lines), masking on the way out.
//! - [`otel`]: optional export of spans with OTLP/HTTP, same trace ids as `traceparent`, masked.

#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod logging;
pub mod otel;
pub mod reload;
mod wiring;

pub use wiring::Parts;

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
        let public_url = config.public_url(addr);
        let parts = Parts::build(config, node, public_url).await?;
        let (app, admin_app) = (parts.portal_app(), parts.admin_app());
        let Parts {
            config,
            orchestrator,
            adapters,
            readiness,
            reloader,
            audit,
            ..
        } = parts;
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(orchestrator.clone().run_dispatcher()),
            tokio::spawn(orchestrator.clone().run_poller()),
            tokio::spawn(readiness.clone().run(stopped.clone())),
            tokio::spawn(orchestrator.clone().watch_calendar(stopped.clone())),
            tokio::spawn(orchestrator.clone().run_material_sweeper(stopped.clone())),
            tokio::spawn(orchestrator.clone().run_evaluation_reports(stopped.clone())),
            tokio::spawn(orchestrator.clone().run_notifier(stopped.clone())),
            tokio::spawn(orchestrator.clone().run_light_scanner(stopped.clone())),
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
                let admin_tls = match &admin.tls {
                    Some(tls) => Some(gateway_http::tls::server_config(&config, tls)?),
                    None => None,
                };
                tasks.push(tokio::spawn(gateway_http::listener::serve(
                    listener, admin_tls, admin_app, stopped,
                )));
                tracing::info!(addr = %admin_addr, "admin API listening");
                Some(admin_addr)
            }
            None => None,
        };
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        tracing::info!(%addr, workers, "gateway listening");
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
