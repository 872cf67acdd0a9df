//! The integration gateway: one unified API for government service portals over many
//! department systems, each reached through a WebAssembly adapter.
//!
//! A portal applies once; the gateway reviews the whole application, stores it durably, and
//! hands each matter to its department through that department's adapter, which speaks the
//! department's own protocol. Status comes back by polling or callback and becomes one case
//! with a per-department timeline.
//!
//! # Layout
//! - [`config`]: the TOML config, checked whole at start-up (file, key, reason).
//! - [`catalogue`]: matters, services and their schemas; field problems.
//! - [`host`]: the wasmtime plugin host — engine, per-call instances, limits, host imports.
//! - [`adapters`]: the loaded adapter of each department, swappable.
//! - [`connection`]: the host-owned HTTP(S) connection to each department, and its fences.
//! - [`tls`]: rustls configurations.
//! - [`store`]: cases, steps and events in SQLite or PostgreSQL.
//! - [`orchestrator`]: review, durable acceptance, delivery with retries, polling, callbacks.
//! - [`api`]: the axum routes and the one error format.
//! - [`redact`]: masking of identity and phone numbers in logs and messages.

pub mod adapters;
pub mod api;
pub mod catalogue;
pub mod config;
pub mod connection;
pub mod host;
pub mod orchestrator;
pub mod redact;
pub mod services;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

/// A running gateway.
pub struct Gateway {
    /// The address the portal API listens on.
    pub addr: SocketAddr,
    /// The orchestrator (for in-process subscribers such as tests).
    pub orchestrator: Arc<orchestrator::Orchestrator>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Start a gateway from a checked config: open the store, load every adapter, build the
    /// catalogue, bind the listener, start the dispatcher and the poller.
    pub async fn start(config: config::Config) -> anyhow::Result<Gateway> {
        let cache_dir = config.plugins.cache_dir.as_ref().map(|d| config.resolve(d));
        let engine = host::PluginEngine::new(256, cache_dir.as_deref())?;
        let store = store::Store::open(&config.store.url).await?;
        let adapters = Arc::new(adapters::Adapters::load_all(&config, &engine).await?);
        let catalogue = Arc::new(catalogue::Catalogue::build(&config, &adapters)?);
        let listener = tokio::net::TcpListener::bind(&config.server.listen).await?;
        let addr = listener.local_addr()?;
        let polls = config
            .departments
            .iter()
            .map(|(id, d)| (id.clone(), d.poll_interval_ms as i64))
            .collect();
        let orchestrator = orchestrator::Orchestrator::new(
            store,
            adapters,
            catalogue,
            config.public_url(addr),
            polls,
        );
        let app = api::router(orchestrator.clone(), config.server.body_limit_bytes)
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let tasks = vec![
            tokio::spawn(orchestrator.clone().run_dispatcher()),
            tokio::spawn(orchestrator.clone().run_poller()),
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "server stopped");
                }
            }),
        ];
        tracing::info!(%addr, "gateway listening");
        Ok(Gateway {
            addr,
            orchestrator,
            tasks,
        })
    }

    /// The portal API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
