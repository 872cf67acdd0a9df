//! Rectifications (整改): a 不满意 / 非常不满意 evaluation opens one, in its transaction, with
//! `[evaluations] rectification_days` working days (default 15) counted on the gateway's
//! calendar exactly as a step's promised limit is ([`crate::deadlines`]: day 1 is the first
//! working day after the opening, the deadline is 24:00 Beijing time of the last one). While
//! open it is lit like a step — red once past its deadline, yellow by the same rule
//! (`[deadlines] yellow_remaining_working_days`) — and like a step its deadline is computed on
//! every read, so a reloaded calendar moves it.
//!
//! Its record: the return visit (回访: when, by whom, what the applicant said) and the fix
//! (what was done), each once and in either order, then the close by a supervisor with a
//! note, refused (409) before both. Notes are masked. The opening and the close are events on
//! the case's timeline (`rectification_opened`, `rectification_closed`), written in their
//! transactions; the close's message names no one and quotes no note.

use super::level_name;
use super::views::{ActionView, RectificationList, RectificationView};
use crate::deadlines::{Counts, Light, light};
use crate::{CaseError, Orchestrator};
use gateway_base::model::FieldProblem;
use gateway_base::redact::redact;
use gateway_base::time::{beijing_date, now_ms, parse_rfc3339, rfc3339};
use gateway_store::evaluations::{RectificationRecord, RectificationStep, Stepped};
use serde_json::Value;

/// Which rectifications to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only those concerning this department.
    pub department: Option<String>,
    /// `Some(true)`: open only; `Some(false)`: closed only.
    pub open: Option<bool>,
    /// Only open ones with this light.
    pub light: Option<Light>,
}

/// What a visit, fix or close records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInput {
    /// Who acted.
    pub by: String,
    /// When (RFC 3339 in the body; now when absent).
    pub at: i64,
    /// The note.
    pub note: String,
}

impl ActionInput {
    /// Read `{"by", "at", "note"}`; `clerk` (the `X-Clerk-Id` header) stands in for a
    /// missing `by`. Every problem at once.
    pub fn read(body: &Value, clerk: Option<&str>) -> Result<ActionInput, CaseError> {
        let mut problems = Vec::new();
        let Some(fields) = body.as_object() else {
            return Err(CaseError::InvalidInput(vec![FieldProblem::new(
                "",
                "type",
                "应为JSON对象",
            )]));
        };
        for key in fields.keys() {
            if !matches!(key.as_str(), "by" | "at" | "note") {
                problems.push(FieldProblem::new(
                    key,
                    "unknown_field",
                    "不支持的字段（可用：by、at、note）",
                ));
            }
        }
        let by = match fields.get("by") {
            Some(Value::String(b)) if !b.trim().is_empty() && b.chars().count() <= 64 => {
                Some(b.trim().to_string())
            }
            Some(_) => {
                problems.push(FieldProblem::new(
                    "by",
                    "format",
                    "办理人应为1-64个字符的工号",
                ));
                None
            }
            None => clerk.map(str::to_string),
        };
        if by.is_none() && !fields.contains_key("by") {
            problems.push(FieldProblem::new(
                "by",
                "required",
                "缺少办理人（by，或请求头 X-Clerk-Id）",
            ));
        }
        let at = match fields.get("at") {
            None => Some(now_ms()),
            Some(Value::String(t)) => parse_rfc3339(t).filter(|at| *at <= now_ms() + 60_000),
            Some(_) => None,
        };
        if at.is_none() {
            problems.push(FieldProblem::new(
                "at",
                "format",
                "应为不晚于现在的RFC 3339时间，如 2026-10-09T12:00:00+08:00",
            ));
        }
        let note = match fields.get("note") {
            Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 1000 => {
                Some(n.trim().to_string())
            }
            _ => {
                problems.push(FieldProblem::new(
                    "note",
                    "required",
                    "需填写记录（回访情况、整改措施或办结意见），不超过1000字",
                ));
                None
            }
        };
        match (by, at, note) {
            (Some(by), Some(at), Some(note)) if problems.is_empty() => {
                Ok(ActionInput { by, at, note })
            }
            _ => Err(CaseError::InvalidInput(problems)),
        }
    }
}

impl Orchestrator {
    /// A rectification as the API shows it, lit at `at_ms`.
    fn rectification_view(&self, r: &RectificationRecord, at_ms: i64) -> RectificationView {
        let deadlines = self.deadlines();
        let deadline_ms = deadlines.calendar().deadline_ms(r.opened_at, r.limit_days);
        let closed = r
            .close
            .as_ref()
            .filter(|c| c.at <= at_ms || at_ms >= now_ms());
        let (lit, remaining, late) = match closed {
            Some(close) => (None, None, Some(close.at > deadline_ms)),
            None => (
                Some(light(
                    deadlines.calendar(),
                    r.opened_at,
                    deadline_ms,
                    at_ms,
                    deadlines.yellow(),
                )),
                Some(
                    deadlines
                        .calendar()
                        .remaining_working_days(deadline_ms, at_ms),
                ),
                None,
            ),
        };
        RectificationView {
            id: r.id.clone(),
            evaluation_id: r.evaluation_id.clone(),
            case_id: r.case_id.clone(),
            level: r.level,
            level_name: level_name(r.level).to_string(),
            channel: r.channel.clone(),
            departments: r.departments.clone(),
            matters: r.matters.clone(),
            state: if closed.is_some() { "closed" } else { "open" }.to_string(),
            opened_at: rfc3339(r.opened_at),
            limit_days: r.limit_days,
            deadline: rfc3339(deadline_ms),
            last_working_day: beijing_date(deadline_ms - 1).to_string(),
            light: lit,
            remaining_working_days: remaining,
            finished_late: late,
            visit: r.visit.as_ref().map(ActionView::from),
            fix: r.fix.as_ref().map(ActionView::from),
            close: closed.map(ActionView::from),
        }
    }

    /// The rectifications opened by `at_ms`, lit at `at_ms`: open ones red first then by
    /// deadline, then closed ones newest first; the counts are of the open ones of the
    /// department asked (all lights).
    pub async fn rectifications(
        &self,
        at_ms: i64,
        filter: &Filter,
    ) -> Result<RectificationList, CaseError> {
        let mut items: Vec<RectificationView> = self
            .store()
            .rectifications()
            .await?
            .iter()
            .filter(|r| r.opened_at <= at_ms)
            .filter(|r| {
                filter
                    .department
                    .as_ref()
                    .is_none_or(|d| r.departments.contains(d))
            })
            .map(|r| self.rectification_view(r, at_ms))
            .collect();
        let mut open = Counts::default();
        for light in items.iter().filter_map(|r| r.light) {
            match light {
                Light::Green => open.green += 1,
                Light::Yellow => open.yellow += 1,
                Light::Red => open.red += 1,
            }
        }
        items.retain(|r| filter.open.is_none_or(|o| o == (r.state == "open")));
        items.retain(|r| filter.light.is_none_or(|l| r.light == Some(l)));
        items.sort_by(|a, b| {
            let key = |r: &RectificationView| {
                (
                    r.light.is_none(),
                    r.light,
                    if r.light.is_some() {
                        r.deadline.clone()
                    } else {
                        String::new()
                    },
                    std::cmp::Reverse(r.close.as_ref().map(|c| c.at.clone())),
                    r.id.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(RectificationList {
            at: rfc3339(at_ms),
            open,
            items,
        })
    }

    /// One rectification, lit at `at_ms`.
    pub async fn rectification(
        &self,
        id: &str,
        at_ms: i64,
    ) -> Result<RectificationView, CaseError> {
        let record = self
            .store()
            .rectification(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(self.rectification_view(&record, at_ms))
    }

    /// Record the return visit, the fix or the close (after both) of a rectification.
    pub async fn step_rectification(
        &self,
        id: &str,
        step: RectificationStep,
        input: &ActionInput,
    ) -> Result<RectificationView, CaseError> {
        let note = redact(&input.note);
        match self
            .store()
            .step_rectification(
                id,
                step,
                input.at,
                &input.by,
                &note,
                "差评整改已办结（已回访并整改）",
            )
            .await?
        {
            Stepped::Done => self.rectification(id, now_ms()).await,
            Stepped::NotFound => Err(not_found(id)),
            Stepped::Closed => Err(CaseError::RectificationState(
                "该整改已办结，不能再记录".to_string(),
            )),
            Stepped::Repeated => Err(CaseError::RectificationState(
                match step {
                    RectificationStep::Visit => "该整改的回访已记录",
                    _ => "该整改的整改情况已记录",
                }
                .to_string(),
            )),
            Stepped::Early => Err(CaseError::RectificationState(
                "回访和整改情况均已记录后方可办结".to_string(),
            )),
        }
    }
}

fn not_found(id: &str) -> CaseError {
    CaseError::NotFound {
        what: "rectification",
        id: id.to_string(),
    }
}
