//! The light scanner: every minute, the open steps' lights ([`crate::deadlines`]); each step's
//! turn to yellow and to red is recorded once (`light_changes`, unique per step and light, so
//! several nodes scanning record it once), in one transaction with its chases: the
//! department's staff on yellow and on red (催办), its supervisor on red (escalation). A red
//! one is a red-card event of 电子监察 ([`crate::supervision`]). A step first seen red records
//! red only.
//!
//! A scan judges at an instant; the loop judges now. [`Orchestrator::scan_lights`] also runs at
//! another instant (the admin API's `POST /admin/v1/supervision/light-scans`, as
//! `GET /api/v1/supervision/deadlines?at=` judges another instant): a drill, or a test that
//! cannot wait for days to pass. What it finds is recorded as found at that instant, and a
//! chase it causes in quiet hours waits from now as long as it would have from then.

use crate::deadlines::Light;
use crate::{CaseError, Orchestrator};
use gateway_base::time::{now_ms, parse_rfc3339};
use gateway_store::notifications::NewChase;
use gateway_store::supervision::LightChange;
use std::sync::Arc;
use std::time::Duration;

/// How often the loop scans.
const SCAN_EVERY: Duration = Duration::from_secs(60);

impl Orchestrator {
    /// Judge the open steps' lights at `at_ms` and record each new yellow or red once, with
    /// its chases; the changes recorded by this scan.
    pub async fn scan_lights(&self, at_ms: i64) -> Result<Vec<LightChange>, CaseError> {
        let view = crate::deadlines::supervision(self, at_ms, None, None).await?;
        let settings = self.notification_settings();
        // Steps lit before are skipped without a query each (the insert's uniqueness still
        // decides, for a change another node records meanwhile).
        let seen = self.store.recorded_lights().await?;
        let mut recorded = Vec::new();
        for item in view.items {
            let light = match item.light {
                Light::Green => continue,
                Light::Yellow => "yellow",
                Light::Red => "red",
            };
            if seen.contains(&(item.case_id.clone(), item.step.clone(), light.to_string())) {
                continue;
            }
            let Some(deadline_at) = parse_rfc3339(&item.deadline) else {
                continue;
            };
            let mut chases = Vec::new();
            if let Some(config) = &settings.config {
                let due_at = now_ms() + super::quiet::hold_ms(config, at_ms);
                let contacts = settings.contacts.get(&item.department);
                if contacts.is_some_and(|c| c.staff.is_some()) {
                    chases.push(NewChase {
                        kind: light,
                        recipient: "staff",
                        due_at,
                    });
                }
                if light == "red" && contacts.is_some_and(|c| c.supervisor.is_some()) {
                    chases.push(NewChase {
                        kind: "escalation",
                        recipient: "supervisor",
                        due_at,
                    });
                }
            }
            let change = LightChange {
                clerk: self.store.received_by(&item.case_id).await?,
                case_id: item.case_id,
                step: item.step,
                light: light.to_string(),
                matter: item.matter,
                department: item.department,
                at: at_ms,
                deadline_at,
            };
            if self.store.record_light_change(&change, &chases).await? {
                tracing::info!(case = %change.case_id, step = %change.step, department = %change.department, light, "step turned {light}");
                recorded.push(change);
            }
        }
        Ok(recorded)
    }

    /// Scan the lights now, every minute, until `stopped` turns true.
    pub async fn run_light_scanner(
        self: Arc<Self>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.scan_lights(now_ms()).await {
                tracing::error!(error = %e, "the light scan failed");
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(SCAN_EVERY) => {}
            }
        }
    }
}
