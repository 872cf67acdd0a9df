//! 电子监察's records: each (step, light) change the light scanner saw, once — a red one is a
//! red-card event — written with the chases it causes; and the rows the statistics are
//! computed from (decided steps, light changes in a period).

use crate::notifications::{NewChase, enqueue_chases};
use crate::{Result, Store};
use gateway_base::model::{Clerk, StepState};
use gateway_base::time::now_ms;
use serde::Serialize;
use sqlx::Row;

/// A step seen to turn yellow or red.
#[derive(Debug, Clone, Serialize)]
pub struct LightChange {
    /// The case.
    pub case_id: String,
    /// The step.
    pub step: String,
    /// `yellow` or `red`.
    pub light: String,
    /// Matter code.
    pub matter: String,
    /// Department id.
    pub department: String,
    /// The instant it was judged at, Unix ms.
    pub at: i64,
    /// The step's deadline then, Unix ms.
    pub deadline_at: i64,
    /// Who received the case at the window, when a clerk did.
    pub clerk: Option<Clerk>,
}

/// A recorded light change with where its step stands now.
#[derive(Debug, Clone)]
pub struct RecordedLight {
    /// The change.
    pub change: LightChange,
    /// When it was recorded, Unix ms.
    pub recorded_at: i64,
    /// The step's state now.
    pub state: StepState,
    /// The step's last change, Unix ms (its finish, once final).
    pub updated_at: i64,
}

/// A step decided (approved or rejected), for the statistics.
#[derive(Debug, Clone)]
pub struct DecidedStep {
    /// Its case.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// Approved or rejected.
    pub state: StepState,
    /// Department id.
    pub department: String,
    /// Matter code.
    pub matter: String,
    /// Its case's receipt, Unix ms.
    pub received_at: i64,
    /// Its decision, Unix ms.
    pub decided_at: i64,
    /// Working days its clock was paused (returned to the applicant, 补正).
    pub paused_days: i64,
    /// When its clock restarted, if a supplement restarted it.
    pub clock_from: Option<i64>,
}

impl DecidedStep {
    /// When its clock counted from ([`crate::cases::clock_start`]).
    pub fn clock_start(&self) -> i64 {
        crate::cases::clock_start(self.received_at, self.clock_from)
    }

    /// Its matter's limit with the working days it spent returned
    /// ([`crate::cases::limit_days`]).
    pub fn limit_days(&self, time_limit_days: u32) -> u32 {
        crate::cases::limit_days(time_limit_days, self.paused_days)
    }
}

impl Store {
    /// Record a light change once, with its chases, in one transaction; false when this
    /// (step, light) was recorded before (by this node or another).
    pub async fn record_light_change(
        &self,
        change: &LightChange,
        chases: &[NewChase],
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO light_changes (case_id, step, light, matter, department, at, deadline_at, clerk, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (case_id, step, light) DO NOTHING",
        )
        .bind(&change.case_id)
        .bind(&change.step)
        .bind(&change.light)
        .bind(&change.matter)
        .bind(&change.department)
        .bind(change.at)
        .bind(change.deadline_at)
        .bind(
            change
                .clerk
                .as_ref()
                .map(|c| serde_json::to_string(c).expect("a clerk serialises")),
        )
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            enqueue_chases(
                &mut tx,
                &change.case_id,
                &change.step,
                &change.department,
                &change.light,
                chases,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// The (case, step, light) already recorded for steps still open: what a scan need not
    /// record again.
    pub async fn recorded_lights(
        &self,
    ) -> Result<std::collections::HashSet<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT l.case_id, l.step, l.light FROM light_changes l
             JOIN steps s ON s.case_id = l.case_id AND s.step = l.step
             WHERE s.state IN ('waiting', 'pending', 'accepted', 'processing', 'supplemented')",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("case_id"), r.get("step"), r.get("light")))
            .collect())
    }

    /// Light changes of `light` (or both) judged in `from..to`, of one department or all,
    /// oldest first.
    pub async fn light_changes(
        &self,
        light: Option<&str>,
        department: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<RecordedLight>> {
        let rows = sqlx::query(
            "SELECT l.case_id, l.step, l.light, l.matter, l.department, l.at, l.deadline_at, l.clerk,
                    l.recorded_at, s.state, s.updated_at
             FROM light_changes l JOIN steps s ON s.case_id = l.case_id AND s.step = l.step
             WHERE ($1 = '' OR l.light = $1) AND ($2 = '' OR l.department = $2)
             AND l.at >= $3 AND l.at < $4 ORDER BY l.at, l.case_id, l.step",
        )
        .bind(light.unwrap_or(""))
        .bind(department.unwrap_or(""))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let case_id: String = r.get("case_id");
                let step: String = r.get("step");
                let state = r.get::<String, _>("state").parse().map_err(
                    |e: gateway_base::model::UnknownState| {
                        crate::StoreError::Corrupt(format!("steps.state of {case_id}/{step}: {e}"))
                    },
                )?;
                Ok(RecordedLight {
                    change: LightChange {
                        light: r.get("light"),
                        matter: r.get("matter"),
                        department: r.get("department"),
                        at: r.get("at"),
                        deadline_at: r.get("deadline_at"),
                        clerk: r
                            .get::<Option<String>, _>("clerk")
                            .and_then(|c| serde_json::from_str(&c).ok()),
                        case_id,
                        step,
                    },
                    recorded_at: r.get("recorded_at"),
                    state,
                    updated_at: r.get("updated_at"),
                })
            })
            .collect()
    }

    /// Steps decided (approved or rejected) in `from..to`: their department, matter, receipt
    /// and decision.
    pub async fn decided_steps(&self, from: i64, to: i64) -> Result<Vec<DecidedStep>> {
        let rows = sqlx::query(
            "SELECT s.case_id, s.step, s.state, s.department, s.matter, c.created_at AS received_at,
                    s.updated_at AS decided_at, s.paused_days, s.clock_from
             FROM steps s JOIN cases c ON c.id = s.case_id
             WHERE s.state IN ('approved', 'rejected') AND s.updated_at >= $1 AND s.updated_at < $2
             ORDER BY s.updated_at, s.case_id, s.step",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let (case_id, step): (String, String) = (r.get("case_id"), r.get("step"));
                let state = r.get::<String, _>("state").parse().map_err(
                    |e: gateway_base::model::UnknownState| {
                        crate::StoreError::Corrupt(format!("steps.state of {case_id}/{step}: {e}"))
                    },
                )?;
                Ok(DecidedStep {
                    case_id,
                    step,
                    state,
                    department: r.get("department"),
                    matter: r.get("matter"),
                    received_at: r.get("received_at"),
                    decided_at: r.get("decided_at"),
                    paused_days: r.get("paused_days"),
                    clock_from: r.get("clock_from"),
                })
            })
            .collect()
    }
}
