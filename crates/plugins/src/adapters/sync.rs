//! Every node follows the store: it reads the routes every `plugins.sync_interval_ms` and
//! loads what changed, keeps each department's newest version compiled on standby (so an
//! activation is a pointer swap), rolls back a staged candidate whose error rate is too high,
//! and takes component files dropped into the watched folder.

use super::admission::Refusal;
use super::{Adapters, Route, Slot, digest};
use super::{AdminError, watch};
use crate::host::LoadedAdapter;
use gateway_base::time::now_ms;
use gateway_store::StoreError;
use gateway_store::registry::{self};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Adapters {
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

    pub(super) async fn load_dropped(&self, file: &std::path::Path) {
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

    pub(super) async fn apply_routes(&self) -> Result<(), StoreError> {
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

    pub(super) async fn roll_back_failing(&self) -> Result<(), StoreError> {
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
    pub(super) async fn version_for(
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
    pub(super) async fn load_for(
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

    /// Keep each department's newest version compiled, so a push on any node is ready here
    /// before it is activated.
    pub(super) async fn prepare_standby(&self) -> Result<(), StoreError> {
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

    /// Forget compiled versions neither serving nor on standby (calls in flight keep theirs).
    pub(super) fn prune_compiled(&self) {
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
}
