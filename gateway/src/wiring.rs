//! The parts of a gateway, wired together and serving nothing yet: the store, the adapters,
//! the catalogue and the case domain, readiness, credentials, the reloader and the audit log.
//! [`crate::Gateway::start`] binds listeners and starts the background tasks around them;
//! tests drive them in-process (the routers without a socket, the dispatcher without a
//! listener).

use crate::reload::Reloader;
use gateway_base::config::Config;
use gateway_cases::Orchestrator;
use gateway_http::auth::{Authenticator, Credentials};
use gateway_http::health::Readiness;
use gateway_plugins::adapters::Adapters;
use gateway_store::audit::AuditLog;
use std::sync::Arc;

/// A gateway's parts.
pub struct Parts {
    /// The config they were built from.
    pub config: Config,
    /// The case domain (and through it the store).
    pub orchestrator: Arc<Orchestrator>,
    /// The departments' adapters.
    pub adapters: Arc<Adapters>,
    /// Readiness, with the departments to probe.
    pub readiness: Arc<Readiness>,
    /// The portal clients' and operators' credentials in force.
    pub credentials: Credentials,
    /// Reloads the config on this node.
    pub reloader: Arc<Reloader>,
    /// This node's audit log writer.
    pub audit: AuditLog,
    /// The hall's screens, when `[screens]` turns them on.
    pub screens: Option<Arc<gateway_http::screens::Screens>>,
}

impl Parts {
    /// Build every part from a checked config, for node `node`, whose departments call back
    /// to `public_url`: open the store (and its migrations), load every adapter, build the
    /// catalogue, take back this node's unfinished deliveries, start the audit writer.
    pub async fn build(config: Config, node: String, public_url: String) -> anyhow::Result<Parts> {
        gateway_base::telemetry::handle();
        // wasmtime's cache wants an absolute directory; config paths are relative to the file.
        let cache_dir = match &config.plugins.cache_dir {
            Some(dir) => Some(std::path::absolute(config.resolve(dir))?),
            None => None,
        };
        let engine = gateway_plugins::host::PluginEngine::new(256, cache_dir.as_deref())?
            .with_memory_budget(config.plugins.memory_budget_mib);
        let cipher = gateway_store::at_rest::PayloadCipher::new(&config.payload_keys()?);
        let store = gateway_store::Store::open(&config.store.url)
            .await?
            .with_cipher(cipher.map(Arc::new));
        let adapters = Adapters::start(&config, &engine, store.clone()).await?;
        let catalogue = Arc::new(gateway_cases::catalogue::Catalogue::build(
            &config,
            &adapters.actives(),
        )?);
        let released = store.release_claims(&node).await?;
        if released > 0 {
            tracing::info!(%node, released, "took back this node's unfinished deliveries");
        }
        let audit = AuditLog::start(&store, node.clone(), &config.audit).await?;
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
        let orchestrator = Orchestrator::new(
            store,
            adapters.clone(),
            catalogue,
            Arc::new(gateway_cases::deadlines::Deadlines::from_config(
                &config.deadlines,
            )),
            public_url,
            polls,
            delivery,
        );
        orchestrator.configure_materials(gateway_cases::materials::MaterialSettings::from_config(
            &config,
        ));
        orchestrator
            .configure_notifications(gateway_cases::notifications::Settings::from_config(&config));
        orchestrator.switch_notifications().await?;
        orchestrator.configure_evaluations(config.evaluations.clone());
        let readiness = Readiness::new(&config)?;
        let operators = config.admin.as_ref().map_or(&[][..], |a| &a.operators[..]);
        let credentials: Credentials = Arc::new(arc_swap::ArcSwap::from_pointee(
            Authenticator::new(&config.auth, operators, &config.departments)
                .map_err(anyhow::Error::msg)?,
        ));
        let screens = gateway_http::screens::Screens::new(
            config.screens.as_ref(),
            orchestrator.clone(),
            gateway_store::audit::verify::configured_keys(&config.audit)
                .map_err(anyhow::Error::msg)?,
            config.server.tls.is_some(),
        )
        .map_err(anyhow::Error::msg)?;
        let reloader = Reloader::new(
            config.clone(),
            orchestrator.clone(),
            credentials.clone(),
            readiness.clone(),
            audit.sink().clone(),
        );
        Ok(Parts {
            config,
            orchestrator,
            adapters,
            readiness,
            credentials,
            reloader,
            audit,
            screens,
        })
    }

    /// The portal listener's app.
    pub fn portal_app(&self) -> gateway_http::App {
        gateway_http::portal_app(
            self.orchestrator.clone(),
            gateway_http::portal::RequestLimits {
                body_bytes: self.config.server.body_limit_bytes,
                timeout_ms: self.config.server.request_timeout_ms,
            },
            self.readiness.clone(),
            self.credentials.clone(),
            self.audit.sink().clone(),
            self.screens.clone(),
        )
    }

    /// The admin listener's app.
    pub fn admin_app(&self) -> gateway_http::App {
        gateway_http::admin_app(
            self.orchestrator.clone(),
            self.readiness.clone(),
            self.reloader.clone(),
            self.credentials.clone(),
            self.screens.clone(),
        )
    }
}
