//! 电子监察: red-card events and the supervision statistics per department and period.
//!
//! A **red-card event** is a step's turn to red, recorded once by the light scanner
//! ([`crate::notifications::chases`]) with the matter, the department, the deadline it passed
//! and the clerk who received the case; its escalation to the department's supervisor is a
//! notification written with it. How late it is (`late_working_days`) is read when asked:
//! working days past the deadline until now, or until the step finished.
//!
//! **Statistics** for `[from, to)`, per department:
//! - `decided`: steps decided (approved or rejected) in the period; `on_time`: of those, the
//!   ones decided by their deadline; `on_time_rate` = on_time / decided.
//! - `average_working_days`: the mean working days from receipt to decision (day 1 is the
//!   first working day after the day of receipt, as for deadlines; a decision on the day of
//!   receipt counts 0).
//! - `yellow`, `red`: steps that turned yellow / red (light changes judged in the period).
//! - `evaluations`, `satisfied`, `satisfaction_rate`: 好差评 made in the period and, of those,
//!   非常满意, 满意 and 基本满意 (the usual 满意率); `open_rectifications`,
//!   `overdue_rectifications`: their rectifications open now, and overdue (from
//!   `Store::evaluations_by_department`). Each evaluation and its rectification count once
//!   per department, also when the case had several of the department's matters (开餐馆:
//!   the licence and the food permit).
//!
//! Deadlines here are the matter's limit on the calendar in force, as the step's clock kept it
//! (补正: the working days it spent returned added, or counted from the supplement that
//! restarted it); the working days to decision are those its clock ran: the days it spent
//! returned left out, or counted from the supplement that restarted it.

use crate::deadlines::Light;
use crate::{CaseError, Orchestrator};
use gateway_base::model::{Clerk, StepState};
use gateway_base::time::{beijing_date, now_ms, rfc3339};
use serde::Serialize;
use std::collections::BTreeMap;

/// One red-card event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RedCard {
    /// The case.
    pub case_id: String,
    /// The step.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Matter name.
    pub matter_name: String,
    /// Department id: who had it.
    pub department: String,
    /// When it was found red (RFC 3339).
    pub carded_at: String,
    /// The deadline it passed (RFC 3339, 24:00 Beijing time of the last working day).
    pub deadline: String,
    /// Working days past the deadline: until now while the step is open, until it finished
    /// once it is.
    pub late_working_days: i64,
    /// The step's state now.
    pub state: StepState,
    /// The clerk who received the case at the window, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_by: Option<Clerk>,
}

/// Red-card events of a period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RedCards {
    /// The period's start (RFC 3339).
    pub from: String,
    /// Its end, exclusive (RFC 3339).
    pub to: String,
    /// The events, oldest first.
    pub items: Vec<RedCard>,
}

/// One department's figures for a period.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DepartmentStatistics {
    /// Steps decided (approved or rejected) in the period.
    pub decided: u64,
    /// Of those, decided by their deadline.
    pub on_time: u64,
    /// on_time / decided; none when nothing was decided.
    pub on_time_rate: Option<f64>,
    /// Mean working days from receipt to decision; none when nothing was decided.
    pub average_working_days: Option<f64>,
    /// Steps that turned yellow in the period.
    pub yellow: u64,
    /// Steps that turned red (red-card events) in the period.
    pub red: u64,
    /// 好差评 evaluations made in the period that concern the department (each once, however
    /// many of its matters the case had).
    pub evaluations: u64,
    /// Of those, 非常满意, 满意 or 基本满意.
    pub satisfied: u64,
    /// satisfied / evaluations; none without evaluations.
    pub satisfaction_rate: Option<f64>,
    /// Rectifications of those evaluations open now.
    pub open_rectifications: u64,
    /// Of those, past their deadline now.
    pub overdue_rectifications: u64,
}

/// The statistics of a period, per department.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Statistics {
    /// The period's start (RFC 3339).
    pub from: String,
    /// Its end, exclusive (RFC 3339).
    pub to: String,
    /// Per department (every department with matters, zeros included).
    pub departments: BTreeMap<String, DepartmentStatistics>,
}

/// One step decided in a period, as the statistics' `decided` and `on_time` count it.
#[derive(Debug, Clone, Serialize)]
pub struct DecidedMatter {
    /// The case.
    pub case_id: String,
    /// The step.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Matter name.
    pub matter_name: String,
    /// Department id.
    pub department: String,
    /// Approved or rejected.
    pub state: StepState,
    /// When it was decided (RFC 3339).
    pub decided_at: String,
    /// Its deadline as its clock kept it (RFC 3339, 24:00 Beijing time of the last working day).
    pub deadline: String,
    /// Decided by its deadline.
    pub on_time: bool,
    /// The working days its clock ran to the decision (the days it stood still left out).
    pub working_days: i64,
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Orchestrator {
    fn known_department(&self, department: Option<&str>) -> Result<(), CaseError> {
        if let Some(department) = department
            && !self
                .catalogue()
                .matters
                .values()
                .any(|m| m.department == department)
        {
            return Err(CaseError::NotFound {
                what: "department",
                id: department.to_string(),
            });
        }
        Ok(())
    }

    /// The red-card events carded in `[from_ms, to_ms)`, of one department or all.
    pub async fn red_cards(
        &self,
        department: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<RedCards, CaseError> {
        self.light_cards(Light::Red, department, from_ms, to_ms)
            .await
    }

    /// The turns to `light` recorded in `[from_ms, to_ms)`, of one department or all: the red
    /// cards, or the yellow ones (黄牌) that the statistics' `yellow` counts. A yellow card's
    /// `late_working_days` is 0 unless its step went on past the deadline.
    pub async fn light_cards(
        &self,
        light: Light,
        department: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<RedCards, CaseError> {
        self.known_department(department)?;
        let (catalogue, deadlines) = (self.catalogue(), self.deadlines());
        let now = now_ms();
        let items = self
            .store
            .light_changes(Some(light.as_str()), department, from_ms, to_ms)
            .await?
            .into_iter()
            .map(|r| {
                let until = if r.state.is_final() {
                    r.updated_at
                } else {
                    now
                };
                let late = -deadlines
                    .calendar()
                    .remaining_working_days(r.change.deadline_at, until);
                RedCard {
                    matter_name: catalogue
                        .matters
                        .get(&r.change.matter)
                        .map_or_else(|| r.change.matter.clone(), |m| m.name.clone()),
                    carded_at: rfc3339(r.change.at),
                    deadline: rfc3339(r.change.deadline_at),
                    late_working_days: late.max(0),
                    state: r.state,
                    received_by: r.change.clerk,
                    case_id: r.change.case_id,
                    step: r.change.step,
                    matter: r.change.matter,
                    department: r.change.department,
                }
            })
            .collect();
        Ok(RedCards {
            from: rfc3339(from_ms),
            to: rfc3339(to_ms),
            items,
        })
    }

    /// The steps decided in `[from_ms, to_ms)`, of one department or all, oldest first: the
    /// cases behind the statistics' `decided` (and, those `on_time`, behind `on_time`).
    pub async fn decided_between(
        &self,
        department: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DecidedMatter>, CaseError> {
        self.known_department(department)?;
        let (catalogue, deadlines) = (self.catalogue(), self.deadlines());
        let calendar = deadlines.calendar();
        let mut decided = Vec::new();
        for step in self.store.decided_steps(from_ms, to_ms).await? {
            if department.is_some_and(|d| d != step.department) {
                continue;
            }
            let Some(matter) = catalogue.matters.get(&step.matter) else {
                continue;
            };
            // The promise as the step's clock kept it (the days it was returned added, or
            // counted from the supplement that restarted it): the deadline the case view and
            // the light scan showed.
            let deadline =
                calendar.deadline_ms(step.clock_start(), step.limit_days(matter.time_limit_days));
            // The working days its clock ran: from the same start, less the days it stood
            // still (a restarted clock counts from the supplement, as its deadline does).
            let first = beijing_date(step.clock_start()).next_day();
            let days = first.map_or(0, |first| {
                calendar.working_days_between(first, beijing_date(step.decided_at))
            }) - step.paused_days;
            decided.push(DecidedMatter {
                matter_name: matter.name.clone(),
                decided_at: rfc3339(step.decided_at),
                deadline: rfc3339(deadline),
                on_time: step.decided_at <= deadline,
                working_days: days.max(0),
                case_id: step.case_id,
                step: step.step,
                matter: step.matter,
                department: step.department,
                state: step.state,
            });
        }
        Ok(decided)
    }

    /// The supervision statistics of `[from_ms, to_ms)` per department.
    pub async fn supervision_statistics(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Statistics, CaseError> {
        let (catalogue, deadlines) = (self.catalogue(), self.deadlines());
        let calendar = deadlines.calendar();
        let mut departments: BTreeMap<String, DepartmentStatistics> = catalogue
            .matters
            .values()
            .map(|m| (m.department.clone(), DepartmentStatistics::default()))
            .collect();
        let mut working_days: BTreeMap<String, i64> = BTreeMap::new();
        for step in self.decided_between(None, from_ms, to_ms).await? {
            let figures = departments.entry(step.department.clone()).or_default();
            figures.decided += 1;
            if step.on_time {
                figures.on_time += 1;
            }
            *working_days.entry(step.department).or_default() += step.working_days;
        }
        for change in self.store.light_changes(None, None, from_ms, to_ms).await? {
            let figures = departments
                .entry(change.change.department.clone())
                .or_default();
            match change.change.light.as_str() {
                "yellow" => figures.yellow += 1,
                "red" => figures.red += 1,
                _ => {}
            }
        }
        let deadline = |opened: i64, days: u32| calendar.deadline_ms(opened, days);
        for row in self
            .store
            .evaluations_by_department(from_ms, to_ms, now_ms(), &deadline)
            .await?
        {
            let figures = departments.entry(row.department.clone()).or_default();
            figures.evaluations += row.counts_by_level.iter().sum::<u64>();
            figures.satisfied += row.counts_by_level[..3].iter().sum::<u64>();
            figures.open_rectifications += row.open_rectifications;
            figures.overdue_rectifications += row.overdue_rectifications;
        }
        for (department, figures) in &mut departments {
            figures.on_time_rate = rate(figures.on_time, figures.decided);
            figures.satisfaction_rate = rate(figures.satisfied, figures.evaluations);
            figures.average_working_days = (figures.decided > 0).then(|| {
                working_days.get(department).copied().unwrap_or(0) as f64 / figures.decided as f64
            });
        }
        Ok(Statistics {
            from: rfc3339(from_ms),
            to: rfc3339(to_ms),
            departments,
        })
    }
}
