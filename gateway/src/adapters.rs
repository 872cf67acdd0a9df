//! The loaded adapters, one per department, swappable as a whole without stopping calls.
//!
//! Callers take an `Arc` to the adapter for the duration of one call, so a call that started on
//! one version finishes on it even if another is activated meanwhile.

use crate::config::Config;
use crate::connection::Connection;
use crate::host::{AdapterCache, Department, LoadedAdapter, PluginEngine};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The current set of adapters.
pub struct Adapters {
    current: ArcSwap<BTreeMap<String, Arc<LoadedAdapter>>>,
}

impl Adapters {
    /// Load every configured department's adapter; any failure names the department.
    pub async fn load_all(config: &Config, engine: &PluginEngine) -> anyhow::Result<Self> {
        let mut loaded = BTreeMap::new();
        for (id, dept) in &config.departments {
            let path = config.resolve(&config.plugins.dir).join(&dept.adapter);
            let bytes = tokio::fs::read(&path)
                .await
                .with_context(|| format!("department {id}: reading adapter {}", path.display()))?;
            let department = Arc::new(Department {
                id: id.clone(),
                connection: Connection::new(config, dept)
                    .with_context(|| format!("department {id}: connection"))?,
                settings: dept.settings.clone(),
                cache: AdapterCache::default(),
            });
            let adapter = LoadedAdapter::load(engine, &bytes, department, config.limits_of(id))
                .await
                .with_context(|| format!("department {id}: loading adapter {}", path.display()))?;
            let described = &adapter.description().department;
            anyhow::ensure!(
                described == id,
                "department {id}: adapter {} describes itself as department `{described}`",
                path.display()
            );
            tracing::info!(department = %id, digest = %&adapter.digest[..12], version = %adapter.description().adapter_version, "adapter loaded");
            loaded.insert(id.clone(), Arc::new(adapter));
        }
        Ok(Adapters {
            current: ArcSwap::from_pointee(loaded),
        })
    }

    /// The adapter of a department.
    pub fn get(&self, department: &str) -> Option<Arc<LoadedAdapter>> {
        self.current.load().get(department).cloned()
    }

    /// The adapter serving a lookup name.
    pub fn for_lookup(&self, name: &str) -> Option<Arc<LoadedAdapter>> {
        self.current
            .load()
            .values()
            .find(|a| a.description().lookups.iter().any(|l| l.name == name))
            .cloned()
    }

    /// Every loaded adapter.
    pub fn all(&self) -> Vec<Arc<LoadedAdapter>> {
        self.current.load().values().cloned().collect()
    }
}
