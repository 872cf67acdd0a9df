//! The adapters of the departments: versions, the active choice, hot swaps, staged rollouts.
//!
//! Each department has a route: the active version, and optionally a staged candidate that
//! serves a share of its calls. Callers take an `Arc` to one version for the duration of one
//! call, so a call that started on a version finishes on it whatever is activated meanwhile;
//! new calls see the new route at once (an atomic pointer swap, no lock on the call path).
//!
//! The store holds the versions and the routes ([`registry`]), so every node serves the same
//! choice: each node reads the routes every `plugins.sync_interval_ms` and loads what changed
//! (compiled components come from the on-disk cache, so that takes milliseconds). A node's
//! own changes apply on it at once.
//!
//! # Layout
//! - this file: the departments' routes and the versions serving the next call.
//! - [`operations`]: what operators do: push, activate (fully or staged), promote, roll back,
//!   remove; status and history.
//! - `sync`: every node follows the store's routes, keeps the newest versions compiled on
//!   standby, rolls back a failing staged candidate, takes dropped files.
//! - `plan`: the adapter side of a config reload, checked, then committed.
//! - [`admission`]: the checks a component passes before it may serve.
//! - [`watch`]: the directory operators drop component files into.

pub mod admission;
pub mod operations;
mod plan;
mod sync;
pub mod watch;

pub use operations::AdminError;
pub use plan::AdapterPlan;

use crate::connection::Connection;
use crate::host::{Department, LoadedAdapter, PluginEngine, StatsSnapshot};
use admission::Needs;
use anyhow::Context;
use arc_swap::ArcSwap;
use gateway_base::config::{Config, Limits, StagedConfig};
use gateway_base::signature::Trust;
use gateway_base::time::now_ms;
use gateway_store::Store;
use gateway_store::registry::{self, RouteRecord, VersionRecord};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which versions serve one department now, on this node.
#[derive(Default)]
pub struct Route {
    /// The version that serves its calls; none until one is pushed.
    pub active: Option<Arc<LoadedAdapter>>,
    /// A staged version serving `percent` of the calls.
    pub candidate: Option<Arc<LoadedAdapter>>,
    /// The candidate's share of calls, 0-100.
    pub percent: u8,
}

impl Route {
    fn digests(&self) -> (Option<&str>, Option<&str>, u8) {
        (
            self.active.as_deref().map(|a| a.digest.as_str()),
            self.candidate.as_deref().map(|a| a.digest.as_str()),
            self.percent,
        )
    }
}

/// One configured department: its host side and its current route.
struct Slot {
    department: Arc<Department>,
    limits: Limits,
    route: ArcSwap<Route>,
    /// Calls routed so far, to spread a candidate's share evenly.
    picks: AtomicU64,
    /// Whose secrets these are in the scrubbing list (`departments.<id>#<n>`): one owner per
    /// slot, so that two gateways in one process (the in-process tests) never replace each
    /// other's secrets, and a slot dropped takes its secrets with it.
    secrets_owner: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        gateway_base::redact::set_secrets(&self.secrets_owner, []);
    }
}

impl Slot {
    /// A configured department with no version serving yet.
    fn new(config: &Config, id: &str, connection: Arc<Connection>) -> Slot {
        let limits = config.limits_of(id);
        let dept = &config.departments[id];
        // What the department holds secret is scrubbed from every log line and answer.
        static SLOTS: AtomicU64 = AtomicU64::new(0);
        let secrets_owner = format!(
            "departments.{id}#{}",
            SLOTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        gateway_base::redact::set_secrets(&secrets_owner, dept.secret_texts());
        let department = Department::new(id, connection, dept.settings.clone(), &limits);
        department.set_keys(dept.key_material());
        Slot {
            department: Arc::new(department),
            limits,
            route: ArcSwap::from_pointee(Route::default()),
            picks: AtomicU64::new(0),
            secrets_owner,
        }
    }
}

/// What the config's catalogue needs from each department's adapter.
fn needs_of(config: &Config) -> BTreeMap<String, Needs> {
    let mut needs: BTreeMap<String, Needs> = config
        .departments
        .keys()
        .map(|id| (id.clone(), Needs::default()))
        .collect();
    for (code, m) in &config.matters {
        if let Some(n) = needs.get_mut(&m.department) {
            n.matters.push((code.clone(), m.schema.is_none()));
            if !m.materials.is_empty() {
                n.with_materials.push(code.clone());
            }
        }
    }
    for service in config.services.values() {
        for lookup in &service.lookups {
            if let Some(n) = lookup
                .lookup
                .split('.')
                .next()
                .and_then(|d| needs.get_mut(d))
            {
                n.lookups.push(lookup.lookup.clone());
            }
        }
    }
    needs
}

/// The adapters of every configured department.
pub struct Adapters {
    engine: PluginEngine,
    store: Store,
    trust: Trust,
    staged: StagedConfig,
    /// The configured departments; replaced whole by a config reload.
    slots: ArcSwap<BTreeMap<String, Arc<Slot>>>,
    /// What the catalogue needs from each department's adapter; replaced by a config reload.
    needs: ArcSwap<BTreeMap<String, Needs>>,
    /// Versions compiled and bound on this node, by digest: those serving, and each
    /// department's newest version (standby), so that activating it is only a pointer swap.
    compiled: std::sync::Mutex<HashMap<String, Arc<LoadedAdapter>>>,
    /// Each department's newest version, kept compiled on standby.
    standby: std::sync::Mutex<Vec<String>>,
    /// One change at a time on this node (admin requests, syncs, file drops).
    changing: tokio::sync::Mutex<()>,
    watch: Option<tokio::sync::Mutex<watch::Watcher>>,
}

impl Adapters {
    /// Open the registry, register the component files the config names, and load every
    /// department's route from the store. Any failure names the department.
    pub async fn start(
        config: &Config,
        engine: &PluginEngine,
        store: Store,
    ) -> anyhow::Result<Arc<Self>> {
        let mut slots = BTreeMap::new();
        for (id, dept) in &config.departments {
            let connection = Connection::new(config, dept)
                .with_context(|| format!("department {id}: connection"))?;
            let slot = Slot::new(config, id, connection);
            gateway_base::telemetry::adapter_limits(id, &slot.limits);
            slots.insert(id.clone(), Arc::new(slot));
        }
        // Adapters read the materials of their calls from this node's store.
        engine.attach_materials(Arc::new(store.clone()));
        let needs = needs_of(config);
        let watch = match &config.plugins.watch_dir {
            Some(dir) => Some(tokio::sync::Mutex::new(watch::Watcher::new(
                config.resolve(dir),
            )?)),
            None => None,
        };
        let adapters = Arc::new(Adapters {
            engine: engine.clone(),
            store,
            trust: Trust::new(&config.plugins.trusted_keys).map_err(anyhow::Error::msg)?,
            staged: config.plugins.staged,
            slots: ArcSwap::from_pointee(slots),
            needs: ArcSwap::from_pointee(needs),
            compiled: Default::default(),
            standby: Default::default(),
            changing: tokio::sync::Mutex::new(()),
            watch,
        });
        for (id, dept) in &config.departments {
            if let Some(file) = &dept.adapter {
                let path = config.resolve(&config.plugins.dir).join(file);
                adapters
                    .register_config_file(id, &path)
                    .await
                    .with_context(|| format!("department {id}: adapter {}", path.display()))?;
            }
        }
        adapters.sync().await?;
        for (id, slot) in adapters.slots.load().iter() {
            match &slot.route.load().active {
                Some(a) => {
                    tracing::info!(department = %id, digest = %&a.digest[..12], version = %a.description().adapter_version, "adapter serving")
                }
                None => {
                    tracing::warn!(department = %id, "no adapter yet: waiting for one to be pushed")
                }
            }
        }
        Ok(adapters)
    }

    /// The config's component for a department: registered if the store does not know it,
    /// and then activated (a new file in the config is a deployment). A known file leaves the
    /// stored choice alone, so a restart keeps what operators activated.
    async fn register_config_file(&self, id: &str, path: &std::path::Path) -> anyhow::Result<()> {
        let bytes = tokio::fs::read(path).await.context("reading")?;
        let digest = digest(&bytes);
        if registry::version(&self.store, &digest).await?.is_some() {
            let routed = registry::routes(&self.store)
                .await?
                .into_iter()
                .any(|r| r.department == id);
            if routed {
                return Ok(());
            }
        } else {
            self.admit(&bytes, Some(id), "config", "config")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let route = RouteRecord {
            department: id.to_string(),
            active: digest.clone(),
            candidate: None,
            percent: 0,
            updated_by: "config".into(),
            updated_at: now_ms(),
        };
        registry::set_route(&self.store, &route, "activate", &digest, None).await?;
        Ok(())
    }

    /// The version that serves the next call of a department (the candidate for its share).
    pub fn get(&self, department: &str) -> Option<Arc<LoadedAdapter>> {
        let slots = self.slots.load();
        let slot = slots.get(department)?;
        let route = slot.route.load();
        if let Some(candidate) = &route.candidate {
            // Spread evenly: after any n calls, the candidate has had floor(n × percent / 100)
            // of them, so its error rate is judged on its true share from the first calls.
            let n = slot.picks.fetch_add(1, Ordering::Relaxed);
            let p = u64::from(route.percent);
            if (n + 1) * p / 100 > n * p / 100 {
                return Some(candidate.clone());
            }
        }
        route.active.clone()
    }

    /// The version serving the next call of the lookup `name`.
    pub fn for_lookup(&self, name: &str) -> Option<Arc<LoadedAdapter>> {
        let slots = self.slots.load();
        let department = slots.iter().find_map(|(id, slot)| {
            let route = slot.route.load();
            route
                .active
                .as_ref()?
                .description()
                .lookups
                .iter()
                .any(|l| l.name == name)
                .then_some(id)
        })?;
        self.get(department)
    }

    /// The active version of every department that has one.
    pub fn all(&self) -> Vec<Arc<LoadedAdapter>> {
        self.actives().into_values().collect()
    }

    /// The active version of every department that has one, by department.
    pub fn actives(&self) -> BTreeMap<String, Arc<LoadedAdapter>> {
        self.slots
            .load()
            .iter()
            .filter_map(|(id, s)| Some((id.clone(), s.route.load().active.clone()?)))
            .collect()
    }

    /// Configured department ids.
    pub fn departments(&self) -> Vec<String> {
        self.slots.load().keys().cloned().collect()
    }

    /// A department's host-owned connection, as new calls use it (the audit log attaches to it).
    pub fn connection(&self, department: &str) -> Option<Arc<Connection>> {
        self.slots
            .load()
            .get(department)
            .map(|s| s.department.connection())
    }

    fn compiled_insert(&self, adapter: Arc<LoadedAdapter>) -> Arc<LoadedAdapter> {
        self.compiled
            .lock()
            .expect("not poisoned")
            .entry(adapter.digest.clone())
            .or_insert(adapter)
            .clone()
    }

    fn slot(&self, department: &str) -> Result<Arc<Slot>, AdminError> {
        self.slots
            .load()
            .get(department)
            .cloned()
            .ok_or_else(|| AdminError::NotFound {
                what: "department",
                id: department.to_string(),
            })
    }

    async fn route_record(&self, department: &str) -> Result<Option<RouteRecord>, AdminError> {
        self.slot(department)?;
        Ok(registry::routes(&self.store)
            .await?
            .into_iter()
            .find(|r| r.department == department))
    }

    /// A department's version by digest or unambiguous digest prefix (at least 8 characters).
    async fn find_version(
        &self,
        department: &str,
        digest: &str,
    ) -> Result<VersionRecord, AdminError> {
        self.slot(department)?;
        let not_found = || AdminError::NotFound {
            what: "version",
            id: format!("{department}/{digest}"),
        };
        if digest.len() < 8 {
            return Err(not_found());
        }
        let mut matching: Vec<VersionRecord> = registry::versions(&self.store, department)
            .await?
            .into_iter()
            .filter(|v| v.digest.starts_with(&digest.to_ascii_lowercase()))
            .collect();
        match matching.len() {
            0 => Err(not_found()),
            1 => Ok(matching.remove(0)),
            n => Err(AdminError::Conflict(format!(
                "{n} versions start with `{digest}`; give more of the digest"
            ))),
        }
    }

    /// The version active before `current`, from the history.
    async fn previous_active(&self, department: &str, current: &str) -> Result<String, AdminError> {
        let known: Vec<String> = registry::versions(&self.store, department)
            .await?
            .into_iter()
            .map(|v| v.digest)
            .collect();
        registry::history(&self.store, department, 1000)
            .await?
            .into_iter()
            .filter(|h| matches!(h.action.as_str(), "activate" | "promote" | "rollback"))
            .filter_map(|h| h.digest)
            .find(|d| d != current && known.contains(d))
            .ok_or_else(|| {
                AdminError::Conflict(format!(
                    "department {department} has no earlier version to roll back to"
                ))
            })
    }
}

/// A version serving a department on this node, with its counts.
#[derive(Debug, Clone, Serialize)]
pub struct Serving {
    /// Its digest.
    pub digest: String,
    /// Its own version.
    pub adapter_version: String,
    /// Calls and faults on this node since it started serving.
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

/// What serves a department and what versions it has.
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentStatus {
    /// The department.
    pub department: String,
    /// The active version.
    pub active: Option<Serving>,
    /// The staged candidate.
    pub candidate: Option<Serving>,
    /// The candidate's share of calls.
    pub percent: u8,
    /// The limits every call runs under.
    pub limits: Limits,
    /// Instances running now on this node.
    pub live_instances: u32,
    /// Versions compiled on this node (serving, or the newest on standby): activating one of
    /// these is only a pointer swap here.
    pub prepared: Vec<String>,
    /// Every stored version, newest first.
    pub versions: Vec<VersionRecord>,
}

/// Hex SHA-256, the identity of a component.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    sdk::sign::to_hex(sha2::Sha256::digest(bytes))
}
