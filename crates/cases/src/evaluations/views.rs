//! What the evaluation routes answer: evaluations, rectifications with their lights, and
//! statistics. Times are RFC 3339 in Beijing time; personal data is masked.

use super::level_name;
use crate::deadlines::Light;
use gateway_base::time::rfc3339;
use gateway_store::evaluations::{Action, EvaluationRecord};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A matter an evaluation is attached to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluatedMatterView {
    /// The step of the case.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Department id.
    pub department: String,
}

/// Where an evaluation's report to the national system stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    /// `pending` (queued or being retried), `reported`, `failed` (given up).
    pub state: String,
    /// The national system's id for it, once reported.
    pub reference: Option<String>,
}

/// One evaluation (好差评) of a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationView {
    /// Its id.
    pub id: String,
    /// The case.
    pub case_id: String,
    /// `window` (即时评), `qr` (扫码评), `online`, `card` (评价卡).
    pub channel: String,
    /// 满意度 code (GB/T 39046): 1 非常满意 … 5 非常不满意.
    #[schema(minimum = 1, maximum = 5)]
    pub level: u8,
    /// The level's name.
    pub level_name: String,
    /// The channel's indicators given, each 1-5 like the level.
    pub indicators: BTreeMap<String, u8>,
    /// No evaluator recorded.
    pub anonymous: bool,
    /// The evaluator's name, masked (named evaluations).
    pub evaluator_name: Option<String>,
    /// The evaluator's identity number, masked.
    pub evaluator_id_number: Option<String>,
    /// The comment, masked.
    pub comment: Option<String>,
    /// When it was made.
    pub evaluated_at: String,
    /// The service of the case.
    pub service: String,
    /// The matters (and departments) it is attached to.
    pub matters: Vec<EvaluatedMatterView>,
    /// The departments, each once.
    pub departments: Vec<String>,
    /// The clerk who received the case, when a clerk did.
    pub clerk: Option<String>,
    /// The rectification (整改) it opened (不满意, 非常不满意).
    pub rectification: Option<String>,
    /// Its report to the national system; none when reporting is off.
    pub report: Option<ReportView>,
}

impl From<&EvaluationRecord> for EvaluationView {
    fn from(e: &EvaluationRecord) -> Self {
        let mut departments: Vec<String> = e.matters.iter().map(|m| m.department.clone()).collect();
        departments.sort();
        departments.dedup();
        EvaluationView {
            id: e.id.clone(),
            case_id: e.case_id.clone(),
            channel: e.channel.clone(),
            level: e.level,
            level_name: level_name(e.level).to_string(),
            indicators: e.indicators.clone(),
            anonymous: e.anonymous,
            evaluator_name: e.evaluator_name.clone(),
            evaluator_id_number: e.evaluator_id_number.clone(),
            comment: e.comment.clone(),
            evaluated_at: rfc3339(e.created_at),
            service: e.service.clone(),
            matters: e
                .matters
                .iter()
                .map(|m| EvaluatedMatterView {
                    step: m.step.clone(),
                    matter: m.matter.clone(),
                    department: m.department.clone(),
                })
                .collect(),
            departments,
            clerk: e.clerk.as_ref().map(|c| c.id.clone()),
            rectification: e.rectification.clone(),
            report: e.report_state.as_ref().map(|state| ReportView {
                state: state.clone(),
                reference: e.report_reference.clone(),
            }),
        }
    }
}

/// A case's evaluations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationList {
    /// The case.
    pub case_id: String,
    /// Whether the case is decided (every matter final): only then may it be evaluated.
    pub decided: bool,
    /// Its evaluations, oldest first (one per channel at most).
    pub items: Vec<EvaluationView>,
}

/// One recorded action on a rectification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionView {
    /// When it happened.
    pub at: String,
    /// Who acted (staff or supervisor id).
    pub by: String,
    /// The note (what the applicant said; what was done; the supervisor's), masked.
    pub note: String,
}

impl From<&Action> for ActionView {
    fn from(a: &Action) -> Self {
        ActionView {
            at: rfc3339(a.at),
            by: a.by.clone(),
            note: a.note.clone(),
        }
    }
}

/// A rectification (整改) opened by a bad evaluation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RectificationView {
    /// Its id.
    pub id: String,
    /// The evaluation that opened it.
    pub evaluation_id: String,
    /// Its case.
    pub case_id: String,
    /// The evaluation's level code (4 不满意, 5 非常不满意).
    pub level: u8,
    /// The level's name.
    pub level_name: String,
    /// The evaluation's channel.
    pub channel: String,
    /// The departments of the evaluated matters.
    pub departments: Vec<String>,
    /// The evaluated matters.
    pub matters: Vec<String>,
    /// `open` or `closed`.
    pub state: String,
    /// When it was opened (the evaluation's time).
    pub opened_at: String,
    /// Its limit, in working days.
    pub limit_days: u32,
    /// 24:00 Beijing time of its last working day.
    pub deadline: String,
    /// The last working day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub last_working_day: String,
    /// Its light while open (red once overdue, yellow by the steps' rule); none once closed.
    pub light: Option<Light>,
    /// Working days left while open (negative once overdue).
    pub remaining_working_days: Option<i64>,
    /// Whether it was closed after its deadline; none while open.
    pub finished_late: Option<bool>,
    /// The return visit (回访).
    pub visit: Option<ActionView>,
    /// The fix.
    pub fix: Option<ActionView>,
    /// The supervisor's close.
    pub close: Option<ActionView>,
}

/// Rectifications at an instant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RectificationList {
    /// The instant the lights are judged at.
    pub at: String,
    /// Open rectifications per light (of the department asked, all lights).
    pub open: crate::deadlines::Counts,
    /// The rectifications: open ones red first then by deadline, then the closed ones.
    pub items: Vec<RectificationView>,
}

/// Evaluations counted by level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LevelCounts {
    /// 1 非常满意.
    pub very_satisfied: u64,
    /// 2 满意.
    pub satisfied: u64,
    /// 3 基本满意.
    pub basically_satisfied: u64,
    /// 4 不满意.
    pub dissatisfied: u64,
    /// 5 非常不满意.
    pub very_dissatisfied: u64,
}

/// One row of the statistics.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationStatisticsRow {
    /// The department id, matter code, clerk id (`""`: received online, no clerk) or month
    /// (`YYYY-MM`), as `by` asked.
    pub key: String,
    /// Evaluations per level.
    pub counts: LevelCounts,
    /// All evaluations.
    pub total: u64,
    /// (非常满意 + 满意 + 基本满意) / all evaluations, 0-1 to four places; none without
    /// evaluations.
    pub satisfaction_rate: Option<f64>,
    /// Rectifications of these evaluations not closed at `at`.
    pub open_rectifications: u64,
    /// Of those, past their deadline at `at`.
    pub overdue_rectifications: u64,
}

/// Evaluation statistics over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationStatistics {
    /// First day counted, `YYYY-MM-DD` (Beijing time).
    #[schema(format = Date)]
    pub from: String,
    /// Last day counted.
    #[schema(format = Date)]
    pub to: String,
    /// `department`, `matter`, `clerk` or `period` (month).
    pub by: String,
    /// The instant rectifications are judged at.
    pub at: String,
    /// One row per key. An evaluation of a case with several matters counts once for each
    /// of its matters (and departments) in `department` and `matter` rows, once elsewhere.
    pub rows: Vec<EvaluationStatisticsRow>,
    /// Every evaluation of the period once.
    pub total: EvaluationStatisticsRow,
}

/// An evaluation as a portal sends it (`POST /api/v1/cases/{id}/evaluations`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationRequest {
    /// `window` (窗口即时评), `qr` (扫码评), `online` (网上评), `card` (评价卡).
    #[schema(example = "online")]
    pub channel: String,
    /// 非常满意, 满意, 基本满意, 不满意 or 非常不满意; the code 1-5 (GB/T 39046) is read too.
    #[schema(example = "满意")]
    pub level: String,
    /// The channel's indicators, each a level name or code: online `overall`, `efficiency`,
    /// `guide_accuracy`, `convenience`, `ease_of_use`; window, qr and card `overall`,
    /// `efficiency`, `service_level`, `attitude`. Any may be left out.
    #[schema(value_type = Option<Object>)]
    pub indicators: Option<BTreeMap<String, u8>>,
    /// Default: true without an evaluator, false with one.
    pub anonymous: Option<bool>,
    /// A named evaluation's evaluator (stored and shown masked).
    pub evaluator: Option<EvaluatorRequest>,
    /// Free comment, at most 500 characters (stored masked).
    pub comment: Option<String>,
}

/// The evaluator of a named evaluation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluatorRequest {
    /// Name.
    pub name: String,
    /// Resident identity number (GB 11643).
    pub id_number: Option<String>,
}

/// A return visit, fix or close of a rectification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionRequest {
    /// The staff (visit, fix) or supervisor (close) id; default: the `X-Clerk-Id` header.
    pub by: Option<String>,
    /// When it happened (RFC 3339, not in the future); default: now.
    #[schema(format = DateTime)]
    pub at: Option<String>,
    /// What the applicant said (visit), what was done (fix), the supervisor's note (close);
    /// 1-1000 characters.
    pub note: String,
}
