//! Promised time limits (承诺时限) and their warnings (红黄牌: 黄牌提醒, 红牌警告).
//!
//! Every matter promises a decision within `time_limit_days` **working days**. Working days are
//! counted on a holiday calendar (`config/holidays.toml`, named by `[deadlines] calendar`): per
//! year, the dates off (`holidays`, weekday holidays included) and the weekend dates that are
//! worked (`workdays`, China's 调休上班). Every other Monday–Friday is a working day. A year the
//! file does not list is counted Monday–Friday, and a warning is logged once for that year;
//! without a calendar file every year is Monday–Friday.
//!
//! The rules, all in Beijing time (UTC+8):
//! - **The clock starts when the case is received** (`cases.created_at`), for every step of the
//!   case: the promise is made to the applicant, who applied once; a step waiting for another
//!   spends its own time too.
//! - **Day 1 is the first working day after the day of receipt** (the receipt day itself is not
//!   counted, whatever the hour: the usual 受理次日起算 rule). The **deadline** is the end of the
//!   n-th working day, 24:00 Beijing time (shown as 00:00 of the next day, `+08:00`).
//! - **Remaining working days** at an instant: the working days from that day (counted when it is
//!   a working day, even partly spent) up to and including the last working day. That is the
//!   remaining working time rounded up, so "≤ k" means "at most k working days of time left".
//!   Once overdue it is negative: minus the working days after the last one up to that day
//!   (that day counted when it is a working day: -1 on the first working day past the deadline;
//!   0 on the weekend right after a Friday deadline, which is red nonetheless).
//! - **Light**: red when now is past the deadline; yellow when the remaining working days are at
//!   most `yellow_remaining_working_days` (default 1: yellow on the last working day, and on the
//!   days off just before it; 0: never yellow); green otherwise.
//! - A **final** step (approved, rejected, returned, failed, blocked) is done and not lit; it is
//!   recorded whether it finished late (its last change after the deadline).
//!
//! `GET /api/v1/supervision/deadlines` lists the open steps with their light, and the counts per
//! department and light ([`counts`] serves a metrics exporter too). Its `at` parameter evaluates
//! the lights at another instant ("what will be red on Friday"); cases received after `at` are
//! left out, and states are always the current ones.

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::orchestrator::Orchestrator;
use axum::Json;
use axum::extract::{Query, State};
use gateway_base::calendar::Calendar;
use gateway_base::config::DeadlinesConfig;
use gateway_base::model::{FieldProblem, StepState};
use gateway_base::time::{beijing_date, now_ms, rfc3339};
use gateway_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The light of an open step received at `received_ms`, due at `deadline_ms`, at `now_ms`.
/// Before receipt (an `at` in the past) a step is green.
pub fn light(
    calendar: &Calendar,
    received_ms: i64,
    deadline_ms: i64,
    now_ms: i64,
    yellow: YellowRule,
) -> Light {
    if now_ms > deadline_ms {
        Light::Red
    } else if now_ms >= received_ms
        && yellow.remaining_working_days > 0
        && calendar.remaining_working_days(deadline_ms, now_ms)
            <= i64::from(yellow.remaining_working_days)
    {
        Light::Yellow
    } else {
        Light::Green
    }
}

/// When a step turns yellow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YellowRule {
    /// Yellow when at most this many working days remain.
    pub remaining_working_days: u32,
}

/// A step's warning light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    /// Overdue (红牌警告).
    Red,
    /// Nearing its limit (黄牌提醒).
    Yellow,
    /// Within its limit.
    Green,
}

impl Light {
    /// `green`, `yellow` or `red`.
    pub fn as_str(self) -> &'static str {
        match self {
            Light::Green => "green",
            Light::Yellow => "yellow",
            Light::Red => "red",
        }
    }

    fn parse(text: &str) -> Option<Light> {
        match text {
            "green" => Some(Light::Green),
            "yellow" => Some(Light::Yellow),
            "red" => Some(Light::Red),
            _ => None,
        }
    }
}

/// Where a step stands against its promised limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepClock {
    /// The deadline, Unix milliseconds (24:00 Beijing time of the last working day).
    pub deadline_ms: i64,
    /// The light of an open step; `None` once the step is final.
    pub light: Option<Light>,
    /// Working days left (negative once overdue); `None` once the step is final.
    pub remaining_working_days: Option<i64>,
    /// Whether a final step finished after its deadline; `None` while it is open.
    pub finished_late: Option<bool>,
}

/// The calendar and the yellow rule, shared by the API.
#[derive(Debug, Clone)]
pub struct Deadlines {
    calendar: Calendar,
    yellow: YellowRule,
}

impl Deadlines {
    /// From a checked config's `[deadlines]` table.
    pub fn from_config(config: &DeadlinesConfig) -> Deadlines {
        if config.calendar.is_none() {
            tracing::info!("no holiday calendar configured: time limits count Monday–Friday only");
        }
        Deadlines::new(
            config.days.clone(),
            YellowRule {
                remaining_working_days: config.yellow_remaining_working_days,
            },
        )
    }

    /// From a calendar and a yellow rule.
    pub fn new(calendar: Calendar, yellow: YellowRule) -> Deadlines {
        Deadlines { calendar, yellow }
    }

    /// The working-day calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// When steps turn yellow.
    pub fn yellow(&self) -> YellowRule {
        self.yellow
    }

    /// A step's clock: its matter's limit in working days, when its case was received, its
    /// state, its last change (the finish time of a final step), and the instant to judge at.
    pub fn clock(
        &self,
        limit_days: u32,
        received_ms: i64,
        state: StepState,
        changed_ms: i64,
        now_ms: i64,
    ) -> StepClock {
        let deadline_ms = self.calendar.deadline_ms(received_ms, limit_days);
        if state.is_final() {
            return StepClock {
                deadline_ms,
                light: None,
                remaining_working_days: None,
                finished_late: Some(changed_ms > deadline_ms),
            };
        }
        StepClock {
            deadline_ms,
            light: Some(light(
                &self.calendar,
                received_ms,
                deadline_ms,
                now_ms,
                self.yellow,
            )),
            remaining_working_days: Some(self.calendar.remaining_working_days(deadline_ms, now_ms)),
            finished_late: None,
        }
    }
}

/// Open steps per light, for one department.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Within their limit.
    pub green: u64,
    /// Nearing it.
    pub yellow: u64,
    /// Overdue.
    pub red: u64,
}

impl Counts {
    fn add(&mut self, light: Light) {
        match light {
            Light::Green => self.green += 1,
            Light::Yellow => self.yellow += 1,
            Light::Red => self.red += 1,
        }
    }
}

/// One open step on the supervision list.
#[derive(Debug, Clone, Serialize)]
struct Item {
    case_id: String,
    step: String,
    matter: String,
    matter_name: String,
    department: String,
    state: String,
    received_at: String,
    deadline: String,
    last_working_day: String,
    light: Light,
    remaining_working_days: i64,
    #[serde(skip)]
    deadline_ms: i64,
}

/// States a step is open in: its clock runs.
const OPEN: [StepState; 4] = [
    StepState::Waiting,
    StepState::Pending,
    StepState::Accepted,
    StepState::Processing,
];

/// The open steps of cases received by `now_ms` (of one department, when given), lit at `now_ms`.
async fn open_steps(
    o: &Orchestrator,
    now_ms: i64,
    department: Option<&str>,
) -> Result<Vec<Item>, StoreError> {
    let states = OPEN
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "SELECT s.case_id, s.step, s.matter, s.department, s.state, c.created_at AS received_at
         FROM steps s JOIN cases c ON c.id = s.case_id
         WHERE s.state IN ({states}) AND c.created_at <= $1"
    );
    if department.is_some() {
        sql.push_str(" AND s.department = $2");
    }
    let mut query = sqlx::query(&sql).bind(now_ms);
    if let Some(department) = department {
        query = query.bind(department);
    }
    let rows = query.fetch_all(o.store.pool()).await?;
    let mut items = Vec::with_capacity(rows.len());
    let catalogue = o.catalogue();
    for row in &rows {
        let matter_code: String = row.get("matter");
        let Some(matter) = catalogue.matters.get(&matter_code) else {
            // A matter no longer in the catalogue has no limit to count against.
            tracing::debug!(matter = %matter_code, "step of an unknown matter left off the deadlines");
            continue;
        };
        let received_ms: i64 = row.get("received_at");
        let state: String = row.get("state");
        let Some(open) = OPEN.iter().find(|s| s.as_str() == state) else {
            continue;
        };
        let clock = o.deadlines.clock(
            matter.time_limit_days,
            received_ms,
            *open,
            received_ms,
            now_ms,
        );
        let (Some(light), Some(remaining)) = (clock.light, clock.remaining_working_days) else {
            continue;
        };
        items.push(Item {
            case_id: row.get("case_id"),
            step: row.get("step"),
            matter: matter_code,
            matter_name: matter.name.clone(),
            department: row.get("department"),
            state,
            received_at: rfc3339(received_ms),
            deadline: rfc3339(clock.deadline_ms),
            last_working_day: beijing_date(clock.deadline_ms - 1).to_string(),
            light,
            remaining_working_days: remaining,
            deadline_ms: clock.deadline_ms,
        });
    }
    Ok(items)
}

/// Every department with matters in the catalogue, with zero counts.
fn departments(o: &Orchestrator) -> BTreeMap<String, Counts> {
    o.catalogue()
        .matters
        .values()
        .map(|m| (m.department.clone(), Counts::default()))
        .collect()
}

fn count(items: &[Item], mut counts: BTreeMap<String, Counts>) -> BTreeMap<String, Counts> {
    for item in items {
        counts
            .entry(item.department.clone())
            .or_default()
            .add(item.light);
    }
    counts
}

/// Open steps per department and light at `now_ms` (every department with matters is listed,
/// with zeros when it has nothing open): for the supervision endpoint and metrics exporters.
pub async fn counts(o: &Orchestrator, now_ms: i64) -> Result<BTreeMap<String, Counts>, StoreError> {
    Ok(count(&open_steps(o, now_ms, None).await?, departments(o)))
}

/// The supervision routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(supervision))
}

/// `GET /api/v1/supervision/deadlines?department=<id>&light=<green|yellow|red>&at=<RFC 3339>`:
/// the open steps, red first then by deadline, and the counts per department and light (the
/// counts follow `department` and `at`, not `light`).
#[utoipa::path(
    get,
    path = "/api/v1/supervision/deadlines",
    tag = "supervision",
    params(
        ("department" = Option<String>, Query, nullable = false, description = "Only this department"),
        ("light" = Option<crate::api::openapi::Light>, Query, nullable = false, description = "Only steps with this light"),
        ("at" = Option<String>, Query, nullable = false, format = DateTime, description = "Judge the lights at this instant (RFC 3339); default now"),
    ),
    responses(
        (status = 200, description = "Open steps and counts.", body = crate::api::openapi::Supervision),
        (status = 404, description = "`not_found`: no such department.", body = crate::api::openapi::Error),
        (status = 422, description = "`invalid_input`: a bad `light` or `at`, or an unknown parameter.", body = crate::api::openapi::Error),
        (status = 500, description = "`internal`.", body = crate::api::openapi::Error),
    )
)]
async fn supervision(
    State(o): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = query.map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new("", "format", e.body_text())])
    })?;
    let mut problems = Vec::new();
    let (mut department, mut light, mut at) = (None, None, now_ms());
    for (name, value) in &params {
        match name.as_str() {
            "department" => department = Some(value.clone()),
            "light" => match Light::parse(value) {
                Some(l) => light = Some(l),
                None => problems.push(FieldProblem::new(
                    "light",
                    "enum",
                    "应为 green、yellow 或 red",
                )),
            },
            "at" => {
                match OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339) {
                    Ok(t) => at = (t.unix_timestamp_nanos() / 1_000_000) as i64,
                    Err(_) => problems.push(FieldProblem::new(
                        "at",
                        "format",
                        "应为RFC 3339时间，如 2026-10-09T12:00:00+08:00",
                    )),
                }
            }
            other => problems.push(FieldProblem::new(
                other,
                "unknown_field",
                "不支持的查询参数（可用：department、light、at）",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    let mut counts = departments(&o);
    if let Some(department) = &department {
        if !counts.contains_key(department) {
            return Err(ApiError::NotFound {
                what: "department",
                id: department.clone(),
            });
        }
        counts.retain(|d, _| d == department);
    }
    let mut items = open_steps(&o, at, department.as_deref()).await?;
    let counts = count(&items, counts);
    items.retain(|i| light.is_none_or(|l| i.light == l));
    items.sort_by(|a, b| {
        (a.light, a.deadline_ms, &a.case_id, &a.step).cmp(&(
            b.light,
            b.deadline_ms,
            &b.case_id,
            &b.step,
        ))
    });
    Ok(Json(
        json!({"at": rfc3339(at), "counts": counts, "items": items}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DAY: i64 = 86_400_000;

    fn calendar() -> Calendar {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/holidays.toml");
        Calendar::load(&path).expect("config/holidays.toml is valid")
    }

    fn ms(t: OffsetDateTime) -> i64 {
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn yellow_on_the_last_working_day_red_after_the_deadline() {
        let c = calendar();
        let rule = YellowRule {
            remaining_working_days: 1,
        };
        // 5 days from Tuesday 29 Sep 2026: last working day Monday 12 October.
        let received = ms(datetime!(2026-09-29 10:00 +8));
        let deadline = c.deadline_ms(received, 5);
        let at = |t: OffsetDateTime| light(&c, received, deadline, ms(t), rule);
        assert_eq!(at(datetime!(2026-09-29 10:00 +8)), Light::Green);
        assert_eq!(c.remaining_working_days(deadline, received), 6);
        // Friday 9 Oct: 9, 10 (worked Saturday) and 12 left.
        assert_eq!(at(datetime!(2026-10-09 12:00 +8)), Light::Green);
        // Saturday 10 Oct is worked: 10 and 12 left.
        assert_eq!(
            c.remaining_working_days(deadline, ms(datetime!(2026-10-10 12:00 +8))),
            2
        );
        assert_eq!(at(datetime!(2026-10-10 23:59 +8)), Light::Green);
        // Sunday 11 Oct: only Monday left.
        assert_eq!(at(datetime!(2026-10-11 09:00 +8)), Light::Yellow);
        assert_eq!(at(datetime!(2026-10-12 23:59:59 +8)), Light::Yellow);
        assert_eq!(light(&c, received, deadline, deadline, rule), Light::Yellow);
        assert_eq!(
            light(&c, received, deadline, deadline + 1, rule),
            Light::Red
        );
        // Overdue: Tuesday 13 October is the first working day past the deadline.
        assert_eq!(c.remaining_working_days(deadline, deadline + 1), -1);
        assert_eq!(c.remaining_working_days(deadline, deadline + DAY + 1), -2);
        // A Friday deadline: red on the weekend after it, with no working day lost yet.
        let friday = c.deadline_ms(ms(datetime!(2026-10-12 09:00 +8)), 4);
        assert_eq!(rfc3339(friday), "2026-10-17T00:00:00+08:00");
        let saturday = ms(datetime!(2026-10-17 12:00 +8));
        assert_eq!(light(&c, received, friday, saturday, rule), Light::Red);
        assert_eq!(c.remaining_working_days(friday, saturday), 0);
        // A wider yellow window.
        let two = YellowRule {
            remaining_working_days: 2,
        };
        assert_eq!(
            light(
                &c,
                received,
                deadline,
                ms(datetime!(2026-10-10 12:00 +8)),
                two
            ),
            Light::Yellow
        );
        // No yellow at all.
        let zero = YellowRule {
            remaining_working_days: 0,
        };
        assert_eq!(light(&c, received, deadline, deadline, zero), Light::Green);
        // An instant before receipt is green.
        assert_eq!(
            light(&c, received, deadline, received - DAY, rule),
            Light::Green
        );
    }

    #[test]
    fn final_steps_are_not_lit_but_finishing_late_is_recorded() {
        let d = Deadlines::new(
            calendar(),
            YellowRule {
                remaining_working_days: 1,
            },
        );
        let received = ms(datetime!(2026-09-29 10:00 +8));
        let deadline = d.calendar().deadline_ms(received, 5);
        let late = d.clock(
            5,
            received,
            StepState::Approved,
            deadline + 1,
            deadline + DAY,
        );
        assert_eq!(late.light, None);
        assert_eq!(late.remaining_working_days, None);
        assert_eq!(late.finished_late, Some(true));
        let in_time = d.clock(5, received, StepState::Rejected, deadline, deadline + DAY);
        assert_eq!(in_time.finished_late, Some(false));
        let open = d.clock(5, received, StepState::Waiting, received, deadline + DAY);
        assert_eq!((open.light, open.finished_late), (Some(Light::Red), None));
        assert_eq!(open.deadline_ms, deadline);
    }
}
