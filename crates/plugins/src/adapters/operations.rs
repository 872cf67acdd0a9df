//! What operators do with adapter versions: push (checked, stored), activate fully or for a
//! share of calls, promote a staged candidate, roll back, remove; each recorded with the
//! operator in the history.

use super::admission::{self, Refusal};
use super::{Adapters, digest};
use super::{DepartmentStatus, Serving};
use crate::host::LoadedAdapter;
use gateway_base::time::now_ms;
use gateway_store::StoreError;
use gateway_store::registry::{self, RouteRecord, VersionRecord};
use std::sync::Arc;

/// Why an operator's request about adapters was not done.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such department or version.
    #[error("{what} `{id}` not found")]
    NotFound {
        /// `department` or `version`.
        what: &'static str,
        /// Its id as given.
        id: String,
    },
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

impl Adapters {
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

    pub(super) async fn admit(
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
        admission::contract(&described).map_err(AdminError::Refused)?;
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

    /// Write a route, record it, and apply it on this node at once.
    pub(super) async fn change_route(
        &self,
        route: &RouteRecord,
        action: &str,
        digest: &str,
        detail: Option<&str>,
    ) -> Result<(), AdminError> {
        // Load first: a version that cannot be loaded here must not become the choice.
        let chosen = self.version_for(&route.department, digest).await?;
        // The rule a push follows, whichever way a version comes to serve (activated, staged,
        // promoted, rolled back to): it serves every matter and lookup the catalogue needs, and
        // a matter whose form is the adapter's own schema keeps the published one. Rolling back
        // to a version from before a schema change would otherwise change the published form
        // behind the catalogue's back, which a push of the same component is refused for.
        if let Some(slot) = self.slots.load().get(&route.department).cloned() {
            let running = slot.route.load().active.clone();
            if running.as_ref().is_none_or(|r| r.digest != digest) {
                let needs = self
                    .needs
                    .load()
                    .get(&route.department)
                    .cloned()
                    .unwrap_or_default();
                admission::self_check(&chosen, &needs, running.as_deref())
                    .await
                    .map_err(AdminError::Refused)?;
            }
        }
        registry::set_route(&self.store, route, action, digest, detail).await?;
        tracing::info!(department = %route.department, %action, digest = %&digest[..12], operator = %route.updated_by, "adapter route changed");
        self.apply_routes().await?;
        Ok(())
    }
}
