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
//! - [`admission`]: the checks a component passes before it may serve.
//! - [`watch`]: the directory operators drop component files into.

pub mod admission;
pub mod watch;

use crate::connection::Connection;
use crate::host::{Department, LoadedAdapter, PluginEngine, StatsSnapshot};
use admission::{Needs, Refusal};
use anyhow::Context;
use arc_swap::ArcSwap;
use gateway_base::config::{Config, Limits, StagedConfig};
use gateway_base::signature::Trust;
use gateway_base::time::now_ms;
use gateway_store::registry::{self, RouteRecord, VersionRecord};
use gateway_store::{Store, StoreError};
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
}

impl Slot {
    /// A configured department with no version serving yet.
    fn new(config: &Config, id: &str, connection: Arc<Connection>) -> Slot {
        let limits = config.limits_of(id);
        let settings = config.departments[id].settings.clone();
        Slot {
            department: Arc::new(Department::new(
                id,
                connection,
                settings,
                limits.max_instances,
            )),
            limits,
            route: ArcSwap::from_pointee(Route::default()),
            picks: AtomicU64::new(0),
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

/// The adapter side of a config reload, checked and not yet applied: the departments as they
/// will be, their new connections and settings, and the component files to activate.
pub struct AdapterPlan {
    slots: BTreeMap<String, Arc<Slot>>,
    needs: BTreeMap<String, Needs>,
    reconnect: Vec<Reconnect>,
    deploys: Vec<Deploy>,
    /// Versions a department the reload adds will serve from the store's route.
    stored_routes: BTreeMap<String, Arc<LoadedAdapter>>,
}

/// A department kept by a reload, with the connection and settings its new calls get.
type Reconnect = (Arc<Department>, Arc<Connection>, BTreeMap<String, String>);

/// A config's component file that a reload activates.
struct Deploy {
    department: String,
    bytes: Vec<u8>,
    adapter: Arc<LoadedAdapter>,
    signed_by: Option<String>,
    /// The store already has the version (only the route is new).
    stored: bool,
}

impl AdapterPlan {
    /// The version that will serve each department once the plan is applied.
    pub fn actives(&self) -> BTreeMap<String, Arc<LoadedAdapter>> {
        self.slots
            .iter()
            .filter_map(|(id, slot)| {
                let deployed = self
                    .deploys
                    .iter()
                    .find(|d| &d.department == id)
                    .map(|d| d.adapter.clone());
                let active = deployed
                    .or_else(|| self.stored_routes.get(id).cloned())
                    .or_else(|| slot.route.load().active.clone())?;
                Some((id.clone(), active))
            })
            .collect()
    }

    /// Departments whose component file the reload activates.
    pub fn deployed(&self) -> Vec<String> {
        self.deploys.iter().map(|d| d.department.clone()).collect()
    }
}

/// Why an operator's request about adapters was not done.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such department or version.
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    /// Not possible in the current state (e.g. removing the active version).
    #[error("{0}")]
    Conflict(String),
    /// The component failed a check.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

    /// Check a component and store it as a version (not activated). `department`, when given,
    /// must be the one the component describes. A known component answers its existing record.
    pub async fn push(
        &self,
        bytes: &[u8],
        department: Option<&str>,
        source: &str,
        operator: &str,
    ) -> Result<VersionRecord, AdminError> {
        let _changing = self.changing.lock().await;
        self.admit(bytes, department, source, operator).await
    }

    async fn admit(
        &self,
        bytes: &[u8],
        expected: Option<&str>,
        source: &str,
        operator: &str,
    ) -> Result<VersionRecord, AdminError> {
        let signed_by = self
            .trust
            .check(bytes)
            .map_err(|why| AdminError::Refused(Refusal::new("signature", why)))?;
        let digest = digest(bytes);
        if let Some(known) = registry::version(&self.store, &digest).await? {
            if let Some(expected) = expected
                && expected != known.department
            {
                return Err(AdminError::Refused(Refusal::new(
                    "department",
                    format!(
                        "the component describes department `{}`, not `{expected}`",
                        known.department
                    ),
                )));
            }
            return Ok(known);
        }
        let limits = expected
            .and_then(|d| self.slots.load().get(d).map(|s| s.limits))
            .unwrap_or_default();
        let described = admission::describe(&self.engine, bytes, limits)
            .await
            .map_err(AdminError::Refused)?;
        let description = described.description();
        if !admission::compatible(&description.contract_version, sdk::CONTRACT_VERSION) {
            return Err(AdminError::Refused(Refusal::new(
                "contract_version",
                format!(
                    "built against contract {}, this gateway serves {}",
                    description.contract_version,
                    sdk::CONTRACT_VERSION
                ),
            )));
        }
        let department = description.department.clone();
        if let Some(expected) = expected
            && expected != department
        {
            return Err(AdminError::Refused(Refusal::new(
                "department",
                format!("the component describes department `{department}`, not `{expected}`"),
            )));
        }
        let Some(slot) = self.slots.load().get(&department).cloned() else {
            return Err(AdminError::Refused(Refusal::new(
                "department",
                format!(
                    "the component describes department `{department}`, which is not configured"
                ),
            )));
        };
        let adapter = Arc::new(described.bind(slot.department.clone(), slot.limits));
        let running = slot.route.load().active.clone();
        let needs = self
            .needs
            .load()
            .get(&department)
            .cloned()
            .unwrap_or_default();
        admission::self_check(&adapter, &needs, running.as_deref())
            .await
            .map_err(AdminError::Refused)?;
        let record = admission::record(&adapter, bytes.len(), signed_by, source, operator);
        if registry::insert_version(&self.store, &record, bytes).await? {
            registry::record(
                &self.store,
                &department,
                "push",
                Some(&record.digest),
                operator,
                Some(&format!("{source}, version {}", record.adapter_version)),
            )
            .await?;
            tracing::info!(%department, digest = %&record.digest[..12], version = %record.adapter_version, %operator, %source, "adapter version admitted");
        }
        self.compiled_insert(adapter);
        Ok(record)
    }

    /// Activate a version for all of a department's calls, or with `percent` < 100 stage it as
    /// a candidate beside the active version.
    pub async fn activate(
        &self,
        department: &str,
        digest: &str,
        percent: Option<u8>,
        operator: &str,
    ) -> Result<RouteRecord, AdminError> {
        let _changing = self.changing.lock().await;
        let version = self.find_version(department, digest).await?;
        let current = self.route_record(department).await?;
        let percent = percent.unwrap_or(100).min(100);
        let (route, action) = if percent == 100 {
            (
                RouteRecord {
                    department: department.to_string(),
                    active: version.digest.clone(),
                    candidate: None,
                    percent: 0,
                    updated_by: operator.to_string(),
                    updated_at: now_ms(),
                },
                "activate",
            )
        } else {
            let Some(current) = current else {
                return Err(AdminError::Conflict(format!(
                    "department {department} has no active version to stage a candidate beside; activate one fully first"
                )));
            };
            if current.active == version.digest {
                return Err(AdminError::Conflict(
                    "this version is already the active one".into(),
                ));
            }
            (
                RouteRecord {
                    candidate: Some(version.digest.clone()),
                    percent,
                    updated_by: operator.to_string(),
                    updated_at: now_ms(),
                    ..current
                },
                "stage",
            )
        };
        let detail = (action == "stage").then(|| format!("{percent}% of calls"));
        self.change_route(&route, action, &version.digest, detail.as_deref())
            .await?;
        Ok(route)
    }

    /// Make the staged candidate the active version.
    pub async fn promote(
        &self,
        department: &str,
        operator: &str,
    ) -> Result<RouteRecord, AdminError> {
        let _changing = self.changing.lock().await;
        let current = self.route_record(department).await?;
        let Some(candidate) = current.as_ref().and_then(|r| r.candidate.clone()) else {
            return Err(AdminError::Conflict(format!(
                "department {department} has no staged candidate to promote"
            )));
        };
        let route = RouteRecord {
            department: department.to_string(),
            active: candidate.clone(),
            candidate: None,
            percent: 0,
            updated_by: operator.to_string(),
            updated_at: now_ms(),
        };
        self.change_route(&route, "promote", &candidate, None)
            .await?;
        Ok(route)
    }

    /// Roll back: drop the staged candidate if there is one; otherwise activate `digest`, or
    /// by default the version that was active before the current one.
    pub async fn rollback(
        &self,
        department: &str,
        digest: Option<&str>,
        operator: &str,
    ) -> Result<RouteRecord, AdminError> {
        let _changing = self.changing.lock().await;
        let Some(current) = self.route_record(department).await? else {
            return Err(AdminError::Conflict(format!(
                "department {department} has no version to roll back from"
            )));
        };
        if let (Some(candidate), None) = (&current.candidate, digest) {
            registry::drop_candidate(
                &self.store,
                department,
                candidate,
                operator,
                "rollback",
                None,
            )
            .await?;
            self.apply_routes().await?;
            return Ok(self.route_record(department).await?.unwrap_or(current));
        }
        let target = match digest {
            Some(d) => self.find_version(department, d).await?.digest,
            None => self.previous_active(department, &current.active).await?,
        };
        let route = RouteRecord {
            department: department.to_string(),
            active: target.clone(),
            candidate: None,
            percent: 0,
            updated_by: operator.to_string(),
            updated_at: now_ms(),
        };
        self.change_route(&route, "rollback", &target, None).await?;
        Ok(route)
    }

    /// Remove a version that serves no calls.
    pub async fn remove(
        &self,
        department: &str,
        digest: &str,
        operator: &str,
    ) -> Result<String, AdminError> {
        let _changing = self.changing.lock().await;
        let version = self.find_version(department, digest).await?;
        if let Some(route) = self.route_record(department).await?
            && (route.active == version.digest || route.candidate.as_ref() == Some(&version.digest))
        {
            return Err(AdminError::Conflict(
                "this version serves calls; activate or roll back to another first".into(),
            ));
        }
        registry::delete_version(&self.store, &version.digest).await?;
        registry::record(
            &self.store,
            department,
            "remove",
            Some(&version.digest),
            operator,
            None,
        )
        .await?;
        self.compiled
            .lock()
            .expect("not poisoned")
            .remove(&version.digest);
        Ok(version.digest)
    }

    /// What serves a department and what it has: route, versions with this node's counts.
    pub async fn status(&self, department: &str) -> Result<DepartmentStatus, AdminError> {
        let slot = self.slot(department)?;
        let route = slot.route.load();
        let serving = |a: &Option<Arc<LoadedAdapter>>| {
            a.as_ref().map(|a| Serving {
                digest: a.digest.clone(),
                adapter_version: a.description().adapter_version.clone(),
                stats: a.stats.snapshot(),
            })
        };
        Ok(DepartmentStatus {
            department: department.to_string(),
            active: serving(&route.active),
            candidate: serving(&route.candidate),
            percent: route.percent,
            limits: slot.limits,
            live_instances: slot.department.live_instances(),
            prepared: {
                let compiled = self.compiled.lock().expect("not poisoned");
                let mut prepared: Vec<String> = compiled
                    .values()
                    .filter(|a| a.department().id == department)
                    .map(|a| a.digest.clone())
                    .collect();
                prepared.sort();
                prepared
            },
            versions: registry::versions(&self.store, department).await?,
        })
    }

    /// A department's history of changes, newest first.
    pub async fn history(
        &self,
        department: &str,
    ) -> Result<Vec<registry::HistoryRecord>, AdminError> {
        self.slot(department)?;
        Ok(registry::history(&self.store, department, 200).await?)
    }

    /// Bring this node in line with the store: apply changed routes, roll back candidates
    /// whose error rate passed the bound, load dropped files.
    pub async fn sync(&self) -> Result<(), StoreError> {
        {
            let _changing = self.changing.lock().await;
            self.roll_back_failing().await?;
            self.apply_routes().await?;
            self.prepare_standby().await?;
        }
        if let Some(watch) = &self.watch {
            let ready = watch.lock().await.scan();
            for file in ready {
                self.load_dropped(&file).await;
            }
        }
        Ok(())
    }

    /// Sync every `interval` until `stopped`.
    pub async fn run_sync(
        self: Arc<Self>,
        interval: std::time::Duration,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "reading adapter routes failed; retrying");
            }
        }
    }

    async fn load_dropped(&self, file: &std::path::Path) {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let operator = format!("file:{name}");
        let result = async {
            let bytes = tokio::fs::read(file)
                .await
                .map_err(|e| AdminError::Conflict(format!("reading: {e}")))?;
            if registry::version(&self.store, &digest(&bytes))
                .await?
                .is_some()
            {
                // Known content: a restart re-reading the folder must not undo later choices.
                return Ok(None);
            }
            let record = self.push(&bytes, None, "file", &operator).await?;
            self.activate(&record.department, &record.digest, None, &operator)
                .await?;
            Ok::<_, AdminError>(Some(record))
        }
        .await;
        match result {
            Ok(Some(record)) => {
                tracing::info!(file = %name, department = %record.department, digest = %&record.digest[..12], "dropped adapter activated")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "dropped adapter refused");
                watch::mark_refused(file, &e.to_string());
            }
        }
    }

    /// Write a route, record it, and apply it on this node at once.
    async fn change_route(
        &self,
        route: &RouteRecord,
        action: &str,
        digest: &str,
        detail: Option<&str>,
    ) -> Result<(), AdminError> {
        // Load first: a version that cannot be loaded here must not become the choice.
        self.version_for(&route.department, digest).await?;
        registry::set_route(&self.store, route, action, digest, detail).await?;
        tracing::info!(department = %route.department, %action, digest = %&digest[..12], operator = %route.updated_by, "adapter route changed");
        self.apply_routes().await?;
        Ok(())
    }

    async fn apply_routes(&self) -> Result<(), StoreError> {
        for record in registry::routes(&self.store).await? {
            let Some(slot) = self.slots.load().get(&record.department).cloned() else {
                continue;
            };
            let current = slot.route.load();
            let wanted = (
                Some(record.active.as_str()),
                record.candidate.as_deref(),
                if record.candidate.is_some() {
                    record.percent
                } else {
                    0
                },
            );
            if current.digests() == wanted {
                continue;
            }
            tracing::debug!(department = %record.department, active = %record.active, "following a route change");
            let loaded = async {
                let active = self.version_for(&record.department, &record.active).await?;
                let candidate = match &record.candidate {
                    Some(d) => Some(self.version_for(&record.department, d).await?),
                    None => None,
                };
                Ok::<_, AdminError>((active, candidate))
            }
            .await;
            let (active, candidate) = match loaded {
                Ok(loaded) => loaded,
                Err(e) => {
                    // Keep serving what runs; the next sync tries again.
                    tracing::error!(department = %record.department, error = %e, "cannot load the chosen adapter version");
                    continue;
                }
            };
            let now = now_ms();
            let before: Vec<&Arc<LoadedAdapter>> = current
                .active
                .iter()
                .chain(current.candidate.iter())
                .collect();
            for version in [Some(&active), candidate.as_ref()].into_iter().flatten() {
                if !before.iter().any(|b| b.digest == version.digest) {
                    version.stats.start_serving(now);
                }
            }
            for old in &before {
                if old.digest != active.digest
                    && candidate.as_ref().is_none_or(|c| c.digest != old.digest)
                {
                    old.stats.stop_serving();
                }
            }
            gateway_base::telemetry::adapter_route(
                &record.department,
                &active.description().adapter_version,
                &active.digest,
                candidate.as_ref().map(|c| {
                    (
                        c.description().adapter_version.as_str(),
                        c.digest.as_str(),
                        record.percent,
                    )
                }),
            );
            slot.picks.store(0, Ordering::Relaxed);
            slot.route.store(Arc::new(Route {
                active: Some(active),
                candidate,
                percent: if record.candidate.is_some() {
                    record.percent
                } else {
                    0
                },
            }));
        }
        self.prune_compiled();
        Ok(())
    }

    async fn roll_back_failing(&self) -> Result<(), StoreError> {
        for (id, slot) in self.slots.load().iter() {
            let route = slot.route.load();
            let Some(candidate) = &route.candidate else {
                continue;
            };
            let stats = candidate.stats.snapshot();
            if stats.calls < self.staged.min_calls.max(1) {
                continue;
            }
            let rate = stats.faults as f64 / stats.calls as f64;
            if rate <= self.staged.max_error_rate {
                continue;
            }
            let active_rate = route.active.as_ref().map_or(0.0, |a| {
                let s = a.stats.snapshot();
                s.faults as f64 / s.calls.max(1) as f64
            });
            let detail = format!(
                "error rate {rate:.2} over {} calls (active version: {active_rate:.2}), bound {:.2}",
                stats.calls, self.staged.max_error_rate
            );
            if registry::drop_candidate(
                &self.store,
                id,
                &candidate.digest,
                "auto-rollback",
                "auto-rollback",
                Some(&detail),
            )
            .await?
            {
                tracing::warn!(department = %id, digest = %&candidate.digest[..12], %detail, "staged adapter rolled back automatically");
            }
        }
        Ok(())
    }

    /// A version compiled and bound for its department on this node, loading it from the
    /// store if needed (its digest and signature checked again: the store is not trusted
    /// more than an upload).
    async fn version_for(
        &self,
        department: &str,
        digest: &str,
    ) -> Result<Arc<LoadedAdapter>, AdminError> {
        if let Some(found) = self.compiled.lock().expect("not poisoned").get(digest) {
            return Ok(found.clone());
        }
        let slot = self.slot(department)?;
        self.load_for(&slot, department, digest).await
    }

    /// Load a stored version for a slot (a configured department, or one a reload adds).
    async fn load_for(
        &self,
        slot: &Slot,
        department: &str,
        digest: &str,
    ) -> Result<Arc<LoadedAdapter>, AdminError> {
        if let Some(found) = self.compiled.lock().expect("not poisoned").get(digest)
            && Arc::ptr_eq(found.department(), &slot.department)
        {
            return Ok(found.clone());
        }
        let bytes = registry::component(&self.store, digest)
            .await?
            .ok_or_else(|| AdminError::NotFound {
                what: "version",
                id: digest.to_string(),
            })?;
        let refuse = |check, why: String| AdminError::Refused(Refusal::new(check, why));
        if self::digest(&bytes) != digest {
            return Err(refuse(
                "integrity",
                "the stored component does not match its digest".into(),
            ));
        }
        self.trust
            .check(&bytes)
            .map_err(|why| refuse("signature", why))?;
        let started = std::time::Instant::now();
        let adapter =
            LoadedAdapter::load(&self.engine, &bytes, slot.department.clone(), slot.limits)
                .await
                .map_err(|e| refuse("compile", e.to_string()))?;
        tracing::debug!(%department, digest = %&digest[..12], elapsed = ?started.elapsed(), "version loaded from the store");
        if adapter.description().department != department {
            return Err(refuse(
                "department",
                format!(
                    "describes department `{}`",
                    adapter.description().department
                ),
            ));
        }
        Ok(self.compiled_insert(Arc::new(adapter)))
    }

    fn compiled_insert(&self, adapter: Arc<LoadedAdapter>) -> Arc<LoadedAdapter> {
        self.compiled
            .lock()
            .expect("not poisoned")
            .entry(adapter.digest.clone())
            .or_insert(adapter)
            .clone()
    }

    /// Keep each department's newest version compiled, so a push on any node is ready here
    /// before it is activated.
    async fn prepare_standby(&self) -> Result<(), StoreError> {
        let newest = registry::newest_versions(&self.store).await?;
        let slots = self.slots.load_full();
        let wanted: Vec<String> = newest
            .iter()
            .filter(|(department, _)| slots.contains_key(*department))
            .map(|(_, digest)| digest.clone())
            .collect();
        if *self.standby.lock().expect("not poisoned") == wanted {
            return Ok(());
        }
        for (department, digest) in &newest {
            if slots.contains_key(department)
                && let Err(e) = self.version_for(department, digest).await
            {
                tracing::warn!(%department, digest = %&digest[..12], error = %e, "cannot prepare the newest version");
            }
        }
        *self.standby.lock().expect("not poisoned") = wanted;
        self.prune_compiled();
        Ok(())
    }

    /// Hold off every other adapter change on this node (admin requests, syncs, file drops)
    /// while a config reload is checked and applied.
    pub async fn hold_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changing.lock().await
    }

    /// Check the adapter side of a new config without applying anything: the departments it
    /// adds (with their component files), component files that are new to the store, and that
    /// every version serving now still fits the new catalogue. `connections` are the new
    /// configs' department connections, already built. Problems are (key, reason).
    /// Call with [`Self::hold_changes`] held.
    pub async fn plan(
        &self,
        config: &Config,
        connections: &BTreeMap<String, Arc<Connection>>,
    ) -> Result<AdapterPlan, Vec<(String, String)>> {
        let current = self.slots.load_full();
        let needs = needs_of(config);
        let mut problems = Vec::new();
        let mut slots = BTreeMap::new();
        let mut reconnect = Vec::new();
        for (id, dept) in &config.departments {
            // A connection that could not be built is the caller's problem to report (the
            // reload is refused); the other checks still run, against no connection at all.
            match (current.get(id), connections.get(id).cloned()) {
                (Some(slot), Some(connection)) => {
                    reconnect.push((slot.department.clone(), connection, dept.settings.clone()));
                    slots.insert(id.clone(), slot.clone());
                }
                (Some(slot), None) => {
                    slots.insert(id.clone(), slot.clone());
                }
                (None, connection) => {
                    let connection = match connection {
                        Some(connection) => connection,
                        None => Connection::unbound()
                            .map_err(|e| vec![(format!("departments.{id}"), format!("{e:#}"))])?,
                    };
                    slots.insert(id.clone(), Arc::new(Slot::new(config, id, connection)));
                }
            }
        }
        let store_problem = |e: StoreError| vec![("store".to_string(), e.to_string())];
        let routes = registry::routes(&self.store).await.map_err(store_problem)?;
        let mut deploys = Vec::new();
        for (id, dept) in &config.departments {
            let (Some(file), Some(slot)) = (&dept.adapter, slots.get(id)) else {
                continue;
            };
            let key = format!("departments.{id}.adapter");
            let path = config.resolve(&config.plugins.dir).join(file);
            let bytes = match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    problems.push((key, format!("cannot read {}: {e}", path.display())));
                    continue;
                }
            };
            let stored = registry::version(&self.store, &digest(&bytes))
                .await
                .map_err(store_problem)?
                .is_some();
            // As at start-up: a file the store knows leaves the stored choice alone.
            if stored && routes.iter().any(|r| &r.department == id) {
                continue;
            }
            match self.prepare(&bytes, id, slot, &needs[id]).await {
                Ok((adapter, signed_by)) => deploys.push(Deploy {
                    department: id.clone(),
                    bytes,
                    adapter,
                    signed_by,
                    stored,
                }),
                Err(refusal) => problems.push((
                    key,
                    format!(
                        "{}: refused at the {} check: {}",
                        path.display(),
                        refusal.check,
                        refusal.reason
                    ),
                )),
            }
        }
        let mut stored_routes = BTreeMap::new();
        for (id, slot) in &slots {
            if current.contains_key(id) || deploys.iter().any(|d| &d.department == id) {
                continue;
            }
            // A department added again whose route the store still has.
            if let Some(route) = routes.iter().find(|r| &r.department == id) {
                match self.load_for(slot, id, &route.active).await {
                    Ok(version) => {
                        stored_routes.insert(id.clone(), version);
                    }
                    Err(e) => problems.push((format!("departments.{id}"), e.to_string())),
                }
            }
        }
        for (id, slot) in &slots {
            if deploys.iter().any(|d| &d.department == id) {
                continue;
            }
            let route = slot.route.load();
            let serving = [
                ("active", route.active.clone()),
                ("candidate", route.candidate.clone()),
            ]
            .into_iter()
            .chain(std::iter::once(("active", stored_routes.get(id).cloned())));
            for (role, version) in serving {
                let Some(version) = version else { continue };
                if let Err(refusal) = admission::self_check(&version, &needs[id], None).await {
                    problems.push((
                        format!("departments.{id}"),
                        format!(
                            "the {role} adapter version {} ({}) does not fit the new catalogue: {}",
                            version.description().adapter_version,
                            &version.digest[..12],
                            refusal.reason
                        ),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(AdapterPlan {
            slots,
            needs,
            reconnect,
            deploys,
            stored_routes,
        })
    }

    /// Every check of an upload, for a config's component file of a department (which may be
    /// one the reload adds), without storing anything.
    async fn prepare(
        &self,
        bytes: &[u8],
        department: &str,
        slot: &Slot,
        needs: &Needs,
    ) -> Result<(Arc<LoadedAdapter>, Option<String>), Refusal> {
        let signed_by = self
            .trust
            .check(bytes)
            .map_err(|why| Refusal::new("signature", why))?;
        let described = admission::describe(&self.engine, bytes, slot.limits).await?;
        let description = described.description();
        if !admission::compatible(&description.contract_version, sdk::CONTRACT_VERSION) {
            return Err(Refusal::new(
                "contract_version",
                format!(
                    "built against contract {}, this gateway serves {}",
                    description.contract_version,
                    sdk::CONTRACT_VERSION
                ),
            ));
        }
        if description.department != department {
            return Err(Refusal::new(
                "department",
                format!(
                    "the component describes department `{}`, not `{department}`",
                    description.department
                ),
            ));
        }
        let adapter = Arc::new(described.bind(slot.department.clone(), slot.limits));
        let running = slot.route.load().active.clone();
        admission::self_check(&adapter, needs, running.as_deref()).await?;
        Ok((adapter, signed_by))
    }

    /// Apply a checked plan: store and activate the new component files, point the
    /// departments at their new connections and settings, and swap the departments whole.
    /// Calls in flight finish on what they started with. Call with [`Self::hold_changes`] held.
    pub async fn commit(&self, plan: AdapterPlan, operator: &str) -> Result<(), AdminError> {
        for deploy in &plan.deploys {
            let digest = deploy.adapter.digest.clone();
            if !deploy.stored {
                let record = admission::record(
                    &deploy.adapter,
                    deploy.bytes.len(),
                    deploy.signed_by.clone(),
                    "config",
                    operator,
                );
                if registry::insert_version(&self.store, &record, &deploy.bytes).await? {
                    registry::record(
                        &self.store,
                        &deploy.department,
                        "push",
                        Some(&digest),
                        operator,
                        Some(&format!(
                            "config reload, version {}",
                            record.adapter_version
                        )),
                    )
                    .await?;
                }
            }
            let route = RouteRecord {
                department: deploy.department.clone(),
                active: digest.clone(),
                candidate: None,
                percent: 0,
                updated_by: operator.to_string(),
                updated_at: now_ms(),
            };
            registry::set_route(
                &self.store,
                &route,
                "activate",
                &digest,
                Some("config reload"),
            )
            .await?;
        }
        for (department, connection, settings) in plan.reconnect {
            department.reconfigure(connection, settings);
        }
        {
            let mut compiled = self.compiled.lock().expect("not poisoned");
            for version in plan
                .deploys
                .iter()
                .map(|d| &d.adapter)
                .chain(plan.stored_routes.values())
            {
                compiled.insert(version.digest.clone(), version.clone());
            }
        }
        for (id, slot) in &plan.slots {
            gateway_base::telemetry::adapter_limits(id, &slot.limits);
        }
        self.needs.store(Arc::new(plan.needs));
        self.slots.store(Arc::new(plan.slots));
        self.apply_routes().await?;
        Ok(())
    }

    /// Forget compiled versions neither serving nor on standby (calls in flight keep theirs).
    fn prune_compiled(&self) {
        let serving: Vec<String> = self
            .slots
            .load()
            .values()
            .flat_map(|s| {
                let r = s.route.load();
                [r.active.clone(), r.candidate.clone()]
            })
            .flatten()
            .map(|a| a.digest.clone())
            .chain(self.standby.lock().expect("not poisoned").iter().cloned())
            .collect();
        self.compiled
            .lock()
            .expect("not poisoned")
            .retain(|digest, _| serving.contains(digest));
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
    hex::encode(sha2::Sha256::digest(bytes))
}
