//! The adapter side of a config reload: checked against the new config (connections, component
//! files, what the catalogue needs) without touching what serves, then committed whole.

use super::AdminError;
use super::admission::{self, Needs, Refusal};
use super::{Adapters, Slot, digest, needs_of};
use crate::connection::Connection;
use crate::host::{Department, LoadedAdapter};
use gateway_base::config::Config;
use gateway_base::time::now_ms;
use gateway_store::StoreError;
use gateway_store::registry::{self, RouteRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// A department kept by a reload, with the connection and settings its new calls get, and
/// the values of its secret settings (with the owner they are scrubbed under).
type Reconnect = (
    Arc<Department>,
    Arc<Connection>,
    BTreeMap<String, String>,
    BTreeMap<String, Arc<gateway_base::config::KeyMaterial>>,
    (String, Vec<String>),
);

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

impl Adapters {
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
                    reconnect.push((
                        slot.department.clone(),
                        connection,
                        dept.settings.clone(),
                        dept.key_material(),
                        (slot.secrets_owner.clone(), dept.secret_texts()),
                    ));
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
    pub(super) async fn prepare(
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
        admission::contract(&described)?;
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
        for (department, connection, settings, keys, (owner, secrets)) in plan.reconnect {
            gateway_base::redact::set_secrets(&owner, secrets);
            department.reconfigure(connection, settings);
            department.set_keys(keys);
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
}
