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
//! - A **final** step (approved, rejected, failed, blocked, withdrawn) is done and not lit; it is
//!   recorded whether it finished late (its last change after the deadline).
//! - A **returned** step (补正, with the applicant) has its clock paused: not lit, no remaining
//!   days, not on the supervision list. 补正时间不计入承诺时限: its matter's `supplement_clock`
//!   says how the clock goes on after the supplement. `resume` (default): the working days it
//!   spent returned are added to its limit — counted as the working days after the day it was
//!   returned up to and including the day of the supplement (the return day was the
//!   department's; like a receipt, the supplement's day is not the department's). `restart`:
//!   the whole limit counts again from the supplement's arrival (day 1 the next working day).
//!   [`paused_days`] counts them.
//!
//! [`supervision`] lists the open steps with their light, and the counts per department and
//! light ([`counts`] serves a metrics exporter too). It can judge the lights at another instant
//! ("what will be red on Friday"); cases received after it are left out, and states are always
//! the current ones.
//!
//! **The calendar changes on a running gateway.** A config reload swaps the [`Deadlines`] whole
//! (the orchestrator holds them behind a pointer): deadlines are never stored, every read
//! computes them from the case's receipt, its matter's limit and the calendar in force, so open
//! steps follow the new calendar from the next read. [`record_moves`] writes a
//! `deadline_moved` event on the timeline of each open step whose deadline the reload moved.
//! [`CalendarWatch`] says when the calendar falls behind: from 1 November until next year's
//! table is present, a `calendar` readiness check that names the year (a warning: the node
//! stays ready), the `gateway_calendar_years_ahead` gauge at 0, and a warning logged once a day.

use crate::catalogue::Catalogue;
use crate::{CaseError, Orchestrator};
use gateway_base::calendar::{Calendar, Outlook};
use gateway_base::config::DeadlinesConfig;
use gateway_base::model::{EventKind, StepState};
use gateway_base::time::{beijing_date, now_ms, rfc3339};
use gateway_store::StoreError;
use gateway_store::cases::StepNote;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::Date;

/// The working days a step returned at `returned_ms` and supplemented at `supplied_ms` spent
/// with the applicant: those after the return day up to and including the supplement's day.
pub fn paused_days(calendar: &Calendar, returned_ms: i64, supplied_ms: i64) -> i64 {
    let (from, to) = (beijing_date(returned_ms), beijing_date(supplied_ms));
    match from.next_day() {
        Some(after) if to > from => calendar.working_days_between(after, to),
        _ => 0,
    }
}

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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
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

    /// The light a text names.
    pub fn parse(text: &str) -> Option<Light> {
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
        if state.is_paused() {
            return StepClock {
                deadline_ms,
                light: None,
                remaining_working_days: None,
                finished_late: None,
            };
        }
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

/// An open step whose deadline a reload moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedDeadline {
    /// The case.
    pub case_id: String,
    /// The step within it.
    pub step: String,
    /// Its department.
    pub department: String,
    /// The deadline before the reload, Unix milliseconds.
    pub from_ms: i64,
    /// The deadline now.
    pub to_ms: i64,
}

impl MovedDeadline {
    /// What the step's timeline records (the `deadline_moved` event's message): why, and
    /// from which last working day to which, e.g.
    /// `节假日安排调整：办结期限（最后工作日）由 2027-01-04 改为 2027-01-05`.
    pub fn message(&self, calendar_changed: bool, limit_changed: bool) -> String {
        let why = match (calendar_changed, limit_changed) {
            (true, true) => "节假日安排及承诺时限调整",
            (false, true) => "承诺时限调整",
            _ => "节假日安排调整",
        };
        format!(
            "{why}：办结期限（最后工作日）由 {} 改为 {}",
            beijing_date(self.from_ms - 1),
            beijing_date(self.to_ms - 1)
        )
    }
}

/// After a reload has swapped the catalogue and the deadlines: every open step whose deadline
/// moved (the new calendar counts its working days differently, or its matter's limit changed),
/// each recorded on its case's timeline as a `deadline_moved` event. `before_catalogue` and
/// `before` are what served until the reload. A step another node already recorded the same
/// move for (each node reloads its own file) is not recorded twice.
pub async fn record_moves(
    o: &Orchestrator,
    before_catalogue: &Catalogue,
    before: &Deadlines,
) -> Result<Vec<MovedDeadline>, StoreError> {
    let (catalogue, after) = (o.catalogue(), o.deadlines());
    let calendar_changed = after.calendar().differences(before.calendar()) != Default::default();
    let mut moved = Vec::new();
    let mut notes = Vec::new();
    for row in o.store().open_steps(now_ms(), None).await? {
        let (Some(old), Some(new)) = (
            before_catalogue.matters.get(&row.matter),
            catalogue.matters.get(&row.matter),
        ) else {
            continue;
        };
        let from_ms = before
            .calendar()
            .deadline_ms(row.clock_start(), row.limit_days(old.time_limit_days));
        let to_ms = after
            .calendar()
            .deadline_ms(row.clock_start(), row.limit_days(new.time_limit_days));
        if from_ms == to_ms {
            continue;
        }
        let step = MovedDeadline {
            case_id: row.case_id,
            step: row.step,
            department: row.department,
            from_ms,
            to_ms,
        };
        notes.push(StepNote {
            case_id: step.case_id.clone(),
            step: step.step.clone(),
            department: step.department.clone(),
            message: step.message(calendar_changed, old.time_limit_days != new.time_limit_days),
        });
        moved.push(step);
    }
    if !notes.is_empty() {
        o.store()
            .note_steps(EventKind::DeadlineMoved, &notes)
            .await?;
    }
    Ok(moved)
}

/// The calendar's outlook on a running gateway: the `calendar` readiness check, the
/// `gateway_calendar_years_ahead` gauge, and a warning logged once a day (Beijing time) while
/// a year the calendar should list is missing (see [`Calendar::outlook`]).
///
/// It reads today from the system clock, unless told to judge at another instant
/// ([`CalendarWatch::judge_at`]): a rehearsal of what the gateway will say on that day, which
/// is how the tests see November without waiting for it. Nothing else reads that instant.
#[derive(Debug, Default)]
pub struct CalendarWatch {
    /// The instant to judge at instead of the system clock.
    at: Mutex<Option<i64>>,
    /// The Beijing date the warning was last logged on.
    warned_on: Mutex<Option<Date>>,
}

impl CalendarWatch {
    /// Judge the calendar as at `at_ms` from now on; `None`: by the system clock again.
    pub fn judge_at(&self, at_ms: Option<i64>) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) = at_ms;
    }

    /// Now, as this watch sees it.
    pub fn now_ms(&self) -> i64 {
        self.at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(now_ms)
    }

    /// The outlook of `calendar` today (`None` without a calendar file: Monday–Friday was
    /// chosen). Sets the gauge, and logs the warning when it is the first look of the day.
    pub fn check(&self, calendar: &Calendar) -> Option<Outlook> {
        let source = calendar.source()?;
        let outlook = calendar.outlook(beijing_date(self.now_ms()));
        gateway_base::telemetry::calendar_years_ahead(outlook.years_ahead());
        if let Some(warning) = outlook.warning()
            && self.first_warning_on(outlook.today)
        {
            tracing::warn!(
                missing = ?outlook.missing,
                calendar = %source.display(),
                "{warning}"
            );
        }
        Some(outlook)
    }

    /// True the first time it is asked on `today` (a later day after an earlier one counts
    /// too: a rehearsed date, then the real one).
    fn first_warning_on(&self, today: Date) -> bool {
        let mut warned = self.warned_on.lock().unwrap_or_else(|e| e.into_inner());
        if *warned == Some(today) {
            return false;
        }
        *warned = Some(today);
        true
    }
}

/// How often the watch looks at the calendar: the daily warning is logged within this of
/// midnight, Beijing time.
const WATCH_EVERY: Duration = Duration::from_secs(15 * 60);

impl Orchestrator {
    /// The calendar's outlook now, as the `calendar` readiness check shows it; `None` without
    /// a calendar file. Sets the gauge and logs the daily warning (see [`CalendarWatch`]).
    pub fn calendar_outlook(&self) -> Option<Outlook> {
        self.calendar_watch.check(self.deadlines().calendar())
    }

    /// Look at the calendar every quarter of an hour until `stopped` turns true: the gauge
    /// stays current and the warning is logged once a day even when nobody asks `/readyz`.
    pub async fn watch_calendar(self: Arc<Self>, mut stopped: tokio::sync::watch::Receiver<bool>) {
        loop {
            self.calendar_outlook();
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
        }
    }
}

/// Open steps per light, for one department.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenStep {
    /// The case.
    pub case_id: String,
    /// The step within it.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Matter name.
    pub matter_name: String,
    /// Department id.
    pub department: String,
    /// Its state (an open one).
    pub state: StepState,
    /// When the case was received (RFC 3339): the clock's start.
    pub received_at: String,
    /// 24:00 Beijing time of the last working day (RFC 3339).
    pub deadline: String,
    /// The last working day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub last_working_day: String,
    /// Its light.
    pub light: Light,
    /// Working days left (negative once overdue).
    pub remaining_working_days: i64,
    #[serde(skip)]
    deadline_ms: i64,
}

/// The supervision view: open steps and counts at an instant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Supervision {
    /// The instant the lights are judged at (RFC 3339).
    pub at: String,
    /// Per department (every department with matters, zeros included): open steps by light.
    pub counts: BTreeMap<String, Counts>,
    /// The open steps, red first, then by deadline.
    pub items: Vec<OpenStep>,
}

/// The open steps of cases received by `at_ms` (of one department, when given), lit at `at_ms`.
async fn open_steps(
    o: &Orchestrator,
    at_ms: i64,
    department: Option<&str>,
) -> Result<Vec<OpenStep>, StoreError> {
    let (catalogue, deadlines) = (o.catalogue(), o.deadlines());
    let mut items = Vec::new();
    for row in o.store().open_steps(at_ms, department).await? {
        let Some(matter) = catalogue.matters.get(&row.matter) else {
            // A matter no longer in the catalogue has no limit to count against.
            tracing::debug!(matter = %row.matter, "step of an unknown matter left off the deadlines");
            continue;
        };
        let clock = deadlines.clock(
            row.limit_days(matter.time_limit_days),
            row.clock_start(),
            row.state,
            row.received_at,
            at_ms,
        );
        let (Some(light), Some(remaining)) = (clock.light, clock.remaining_working_days) else {
            continue;
        };
        items.push(OpenStep {
            case_id: row.case_id,
            step: row.step,
            matter: row.matter,
            matter_name: matter.name.clone(),
            department: row.department,
            state: row.state,
            received_at: rfc3339(row.received_at),
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

fn count(items: &[OpenStep], mut counts: BTreeMap<String, Counts>) -> BTreeMap<String, Counts> {
    for item in items {
        counts
            .entry(item.department.clone())
            .or_default()
            .add(item.light);
    }
    counts
}

/// Open steps per department and light at `at_ms` (every department with matters is listed,
/// with zeros when it has nothing open): for the supervision view and metrics exporters.
pub async fn counts(o: &Orchestrator, at_ms: i64) -> Result<BTreeMap<String, Counts>, StoreError> {
    Ok(count(&open_steps(o, at_ms, None).await?, departments(o)))
}

/// The open steps at `at_ms`, red first then by deadline, of one department or all, with one
/// light or all; the counts follow `department` and `at_ms`, not `light`.
pub async fn supervision(
    o: &Orchestrator,
    at_ms: i64,
    department: Option<&str>,
    light: Option<Light>,
) -> Result<Supervision, CaseError> {
    let mut counts = departments(o);
    if let Some(department) = department {
        if !counts.contains_key(department) {
            return Err(CaseError::NotFound {
                what: "department",
                id: department.to_string(),
            });
        }
        counts.retain(|d, _| d == department);
    }
    let mut items = open_steps(o, at_ms, department).await?;
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
    Ok(Supervision {
        at: rfc3339(at_ms),
        counts,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_base::time::ms;
    use time::OffsetDateTime;
    use time::macros::datetime;

    const DAY: i64 = 86_400_000;

    fn calendar() -> Calendar {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/holidays.toml");
        Calendar::load(&path).expect("config/holidays.toml is valid")
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

    #[test]
    fn paused_days_are_the_working_days_after_the_return_up_to_the_supplement() {
        let c = Calendar::weekdays_only();
        // Returned on Friday 2026-03-06, supplemented on Tuesday 2026-03-10: Monday and
        // Tuesday (the weekend is not counted, nor the day of the return).
        let friday = ms(datetime!(2026-03-06 16:00 +8));
        assert_eq!(
            paused_days(&c, friday, ms(datetime!(2026-03-10 09:00 +8))),
            2
        );
        // Supplemented the same day, or on the weekend after: nothing paused.
        assert_eq!(
            paused_days(&c, friday, ms(datetime!(2026-03-06 17:00 +8))),
            0
        );
        assert_eq!(
            paused_days(&c, friday, ms(datetime!(2026-03-08 10:00 +8))),
            0
        );
        // A week later: five working days; the limit moves by them.
        let later = ms(datetime!(2026-03-13 10:00 +8));
        assert_eq!(paused_days(&c, friday, later), 5);
        let received = ms(datetime!(2026-03-02 10:00 +8));
        assert_eq!(
            c.deadline_ms(received, 3),
            ms(datetime!(2026-03-06 00:00 +8))
        );
        assert_eq!(
            c.deadline_ms(received, 3 + 5),
            ms(datetime!(2026-03-13 00:00 +8))
        );
    }

    #[test]
    fn a_moved_deadline_is_recorded_with_its_last_working_days() {
        let moved = MovedDeadline {
            case_id: "c".into(),
            step: "licence".into(),
            department: "market-regulation".into(),
            from_ms: ms(datetime!(2027-01-05 00:00 +8)),
            to_ms: ms(datetime!(2027-01-06 00:00 +8)),
        };
        assert_eq!(
            moved.message(true, false),
            "节假日安排调整：办结期限（最后工作日）由 2027-01-04 改为 2027-01-05"
        );
        assert!(moved.message(false, true).starts_with("承诺时限调整："));
        assert!(
            moved
                .message(true, true)
                .starts_with("节假日安排及承诺时限调整：")
        );
    }

    #[test]
    fn the_watch_judges_on_the_day_it_is_told_and_warns_once_a_day() {
        let watch = CalendarWatch::default();
        let c = calendar(); // 2025 and 2026
        watch.judge_at(Some(ms(datetime!(2026-10-31 12:00 +8))));
        let october = watch.check(&c).unwrap();
        assert_eq!((october.years_ahead(), october.warning()), (1, None));
        watch.judge_at(Some(ms(datetime!(2026-11-02 09:00 +8))));
        let november = watch.check(&c).unwrap();
        assert_eq!(november.missing, [2027]);
        assert_eq!(november.years_ahead(), 0);
        // The log: once on the 2nd, again on the 3rd.
        let second = time::macros::date!(2026 - 11 - 02);
        assert!(!watch.first_warning_on(second), "warned by the check above");
        assert!(watch.first_warning_on(second.next_day().unwrap()));
        assert!(!watch.first_warning_on(second.next_day().unwrap()));
        // Back to the system clock.
        watch.judge_at(None);
        assert!((watch.now_ms() - now_ms()).abs() < 60_000);
        // No calendar file: Monday–Friday was chosen, nothing to watch.
        assert!(watch.check(&Calendar::weekdays_only()).is_none());
    }
}
