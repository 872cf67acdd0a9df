//! 好差评: evaluations of decided cases and the matters they are attached to, the
//! rectifications (整改) bad ones open, the outbox of reports to the national evaluation
//! system (claims, retries, the final failure), and the per-department/matter/clerk/month
//! summary that statistics (ours and the supervision module's) are built from.
//!
//! Only masked personal data is written here: the caller masks the evaluator's name and
//! identity number and the comment before they reach the store.

use crate::cases::{Event, insert_event};
use crate::{Result, Store, StoreError};
use gateway_base::model::{Clerk, EventKind};
use gateway_base::time::{beijing_date, now_ms};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// A new evaluation, as the case domain checked and masked it.
#[derive(Debug, Clone)]
pub struct NewEvaluation {
    /// Its id (UUIDv7): the idempotency key of its report.
    pub id: String,
    /// The case.
    pub case_id: String,
    /// `window`, `qr`, `online`, `card`.
    pub channel: String,
    /// 1 非常满意 … 5 非常不满意.
    pub level: u8,
    /// Indicator name → 1-5.
    pub indicators: BTreeMap<String, u8>,
    /// No evaluator recorded.
    pub anonymous: bool,
    /// The evaluator's name, masked.
    pub evaluator_name: Option<String>,
    /// The evaluator's identity number, masked.
    pub evaluator_id_number: Option<String>,
    /// The comment, masked.
    pub comment: Option<String>,
    /// The case's service.
    pub service: String,
    /// The clerk who received the case.
    pub clerk: Option<Clerk>,
    /// The portal client that evaluated.
    pub client: Option<String>,
    /// The matters it is attached to: `(step, matter, department)`.
    pub matters: Vec<EvaluatedMatter>,
    /// Unix ms.
    pub created_at: i64,
    /// What the case's timeline says of it (the `evaluated` event): level and channel, no
    /// personal data.
    pub event_message: String,
}

/// One matter an evaluation is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvaluatedMatter {
    /// The step of the case.
    pub step: String,
    /// Its matter code.
    pub matter: String,
    /// Its department.
    pub department: String,
}

/// A rectification to open with an evaluation.
#[derive(Debug, Clone)]
pub struct NewRectification {
    /// Its id.
    pub id: String,
    /// Its limit in working days from the evaluation.
    pub limit_days: u32,
    /// What the case's timeline says of its opening (the `rectification_opened` event).
    pub event_message: String,
}

/// A report to queue with an evaluation.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// The department (channel) the report goes to.
    pub department: String,
    /// The unified report, JSON text (masked data only).
    pub payload: String,
}

/// What became of an evaluation written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored, with its rectification and report when given.
    Stored,
    /// The case has an evaluation on this channel already: nothing was stored.
    Duplicate,
}

/// A stored evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationRecord {
    /// Its id.
    pub id: String,
    /// The case.
    pub case_id: String,
    /// The channel.
    pub channel: String,
    /// 1-5.
    pub level: u8,
    /// Indicator name → 1-5.
    pub indicators: BTreeMap<String, u8>,
    /// No evaluator recorded.
    pub anonymous: bool,
    /// Masked.
    pub evaluator_name: Option<String>,
    /// Masked.
    pub evaluator_id_number: Option<String>,
    /// Masked.
    pub comment: Option<String>,
    /// The case's service.
    pub service: String,
    /// The clerk who received the case.
    pub clerk: Option<Clerk>,
    /// Unix ms.
    pub created_at: i64,
    /// The matters it is attached to.
    pub matters: Vec<EvaluatedMatter>,
    /// The rectification it opened.
    pub rectification: Option<String>,
    /// Its report: `pending`, `reported`, `failed`; none when reporting is off.
    pub report_state: Option<String>,
    /// The national system's id for the report.
    pub report_reference: Option<String>,
}

/// A stored rectification, with what it needs from its evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct RectificationRecord {
    /// Its id.
    pub id: String,
    /// The evaluation that opened it.
    pub evaluation_id: String,
    /// Its case.
    pub case_id: String,
    /// The evaluation's level (4 or 5).
    pub level: u8,
    /// The evaluation's channel.
    pub channel: String,
    /// The departments of the evaluated matters.
    pub departments: Vec<String>,
    /// The evaluated matters.
    pub matters: Vec<String>,
    /// Unix ms.
    pub opened_at: i64,
    /// Working days it has.
    pub limit_days: u32,
    /// The return visit (回访): when, by whom, what the applicant said (masked).
    pub visit: Option<Action>,
    /// The fix: when, by whom, what was done (masked).
    pub fix: Option<Action>,
    /// The close: when, by which supervisor, the note (masked).
    pub close: Option<Action>,
}

/// One recorded action on a rectification.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// When it happened (as recorded), Unix ms.
    pub at: i64,
    /// Who acted (a staff or supervisor id).
    pub by: String,
    /// The note, masked.
    pub note: String,
}

/// The step of a rectification to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RectificationStep {
    /// The return visit (回访).
    Visit,
    /// The fix.
    Fix,
    /// The supervisor's close: only after both others.
    Close,
}

/// What became of a rectification step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stepped {
    /// Recorded.
    Done,
    /// No such rectification.
    NotFound,
    /// Closed already.
    Closed,
    /// This step is recorded already.
    Repeated,
    /// Close before the visit and the fix are recorded.
    Early,
}

/// One row of the evaluation summary: the evaluations in a period for one department, matter
/// and receiving clerk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EvaluationSummary {
    /// The month, `YYYY-MM` Beijing time, the evaluations were made in.
    pub period: String,
    /// Department id.
    pub department: String,
    /// Matter code.
    pub matter: String,
    /// The clerk who received the cases (`""`: none, an online application).
    pub clerk: String,
    /// Evaluations by level: index 0 is 非常满意 (1) … index 4 非常不满意 (5).
    pub counts_by_level: [u64; 5],
    /// Rectifications of these evaluations not closed at the instant asked.
    pub open_rectifications: u64,
    /// Of those, the ones past their deadline at that instant.
    pub overdue_rectifications: u64,
}

/// The evaluations of a period that concern one department: each evaluation (and its
/// rectification) once, however many of the department's matters it is attached to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DepartmentEvaluations {
    /// Department id.
    pub department: String,
    /// Evaluations by level: index 0 is 非常满意 (1) … index 4 非常不满意 (5).
    pub counts_by_level: [u64; 5],
    /// Rectifications of these evaluations not closed at the instant asked.
    pub open_rectifications: u64,
    /// Of those, the ones past their deadline at that instant.
    pub overdue_rectifications: u64,
}

/// A report waiting in the outbox.
#[derive(Debug, Clone)]
pub struct ReportRecord {
    /// The evaluation (and the idempotency key).
    pub evaluation_id: String,
    /// Its case.
    pub case_id: String,
    /// The department it goes to.
    pub department: String,
    /// The unified report, JSON text.
    pub payload: String,
    /// Attempts so far.
    pub attempts: i64,
}

const EVALUATION_SELECT: &str =
    "SELECT e.id, e.case_id, e.channel, e.level, e.indicators, e.anonymous,
     e.evaluator_name, e.evaluator_id_number, e.comment, e.service, e.clerk, e.created_at,
     r.id AS rectification, p.state AS report_state, p.reference AS report_reference
     FROM evaluations e
     LEFT JOIN rectifications r ON r.evaluation_id = e.id
     LEFT JOIN evaluation_reports p ON p.evaluation_id = e.id";

const RECTIFICATION_SELECT: &str = "SELECT r.id, r.evaluation_id, r.case_id, e.level, e.channel,
     r.opened_at, r.limit_days, r.visited_at, r.visited_by, r.visit_note, r.fixed_at, r.fixed_by,
     r.fix_note, r.closed_at, r.closed_by, r.close_note
     FROM rectifications r JOIN evaluations e ON e.id = r.evaluation_id";

fn bool_of(value: i64) -> bool {
    value != 0
}

impl Store {
    /// Store an evaluation with the matters it is attached to, the rectification it opens, the
    /// report it queues and their events on the case's timeline (`evaluated`,
    /// `rectification_opened`), in one transaction; [`Recorded::Duplicate`] (nothing stored)
    /// when the case has one on this channel already, whoever wrote it first.
    pub async fn record_evaluation(
        &self,
        e: &NewEvaluation,
        rectification: Option<&NewRectification>,
        report: Option<&NewReport>,
    ) -> Result<Recorded> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO evaluations (id, case_id, channel, level, indicators, anonymous, evaluator_name,
             evaluator_id_number, comment, service, clerk, clerk_id, client, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (case_id, channel) DO NOTHING",
        )
        .bind(&e.id)
        .bind(&e.case_id)
        .bind(&e.channel)
        .bind(i64::from(e.level))
        .bind(serde_json::to_string(&e.indicators).expect("indicators serialise"))
        .bind(i64::from(e.anonymous))
        .bind(e.evaluator_name.as_deref())
        .bind(e.evaluator_id_number.as_deref())
        .bind(e.comment.as_deref())
        .bind(&e.service)
        .bind(
            e.clerk
                .as_ref()
                .map(|c| serde_json::to_string(c).expect("a clerk serialises")),
        )
        .bind(e.clerk.as_ref().map(|c| c.id.as_str()))
        .bind(e.client.as_deref())
        .bind(e.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(Recorded::Duplicate);
        }
        for m in &e.matters {
            sqlx::query(
                "INSERT INTO evaluation_matters (evaluation_id, step, matter, department) VALUES ($1, $2, $3, $4)",
            )
            .bind(&e.id)
            .bind(&m.step)
            .bind(&m.matter)
            .bind(&m.department)
            .execute(&mut *tx)
            .await?;
        }
        let event = |kind, message| Event {
            step: None,
            department: None,
            kind,
            state: None,
            message: Some(message),
        };
        insert_event(
            &mut tx,
            &e.case_id,
            e.created_at,
            &event(EventKind::Evaluated, &e.event_message),
            None,
        )
        .await?;
        if let Some(r) = rectification {
            sqlx::query(
                "INSERT INTO rectifications (id, evaluation_id, case_id, opened_at, limit_days) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&r.id)
            .bind(&e.id)
            .bind(&e.case_id)
            .bind(e.created_at)
            .bind(i64::from(r.limit_days))
            .execute(&mut *tx)
            .await?;
            insert_event(
                &mut tx,
                &e.case_id,
                e.created_at,
                &event(EventKind::RectificationOpened, &r.event_message),
                None,
            )
            .await?;
        }
        if let Some(r) = report {
            sqlx::query(
                "INSERT INTO evaluation_reports (evaluation_id, department, payload, state, attempts, next_attempt_at, updated_at)
                 VALUES ($1, $2, $3, 'pending', 0, $4, $5)",
            )
            .bind(&e.id)
            .bind(&r.department)
            .bind(&r.payload)
            .bind(e.created_at)
            .bind(e.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Recorded::Stored)
    }

    /// The evaluations of a case, oldest first.
    pub async fn case_evaluations(&self, case_id: &str) -> Result<Vec<EvaluationRecord>> {
        let rows = sqlx::query(&format!(
            "{EVALUATION_SELECT} WHERE e.case_id = $1 ORDER BY e.created_at, e.id"
        ))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        self.evaluations_from(&rows).await
    }

    /// The evaluations made in `[from_ms, to_ms)`, oldest first.
    pub async fn evaluations_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<EvaluationRecord>> {
        let rows = sqlx::query(&format!(
            "{EVALUATION_SELECT} WHERE e.created_at >= $1 AND e.created_at < $2 ORDER BY e.created_at, e.id"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        self.evaluations_from(&rows).await
    }

    async fn evaluations_from(&self, rows: &[sqlx::any::AnyRow]) -> Result<Vec<EvaluationRecord>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.get("id");
            let indicators = serde_json::from_str(&r.get::<String, _>("indicators"))
                .map_err(|e| StoreError::Corrupt(format!("evaluations.indicators of {id}: {e}")))?;
            out.push(EvaluationRecord {
                matters: self.evaluated_matters(&id).await?,
                case_id: r.get("case_id"),
                channel: r.get("channel"),
                level: r.get::<i64, _>("level") as u8,
                indicators,
                anonymous: bool_of(r.get("anonymous")),
                evaluator_name: r.get("evaluator_name"),
                evaluator_id_number: r.get("evaluator_id_number"),
                comment: r.get("comment"),
                service: r.get("service"),
                clerk: r
                    .get::<Option<String>, _>("clerk")
                    .and_then(|c| serde_json::from_str(&c).ok()),
                created_at: r.get("created_at"),
                rectification: r.get("rectification"),
                report_state: r.get("report_state"),
                report_reference: r.get("report_reference"),
                id,
            });
        }
        Ok(out)
    }

    async fn evaluated_matters(&self, evaluation_id: &str) -> Result<Vec<EvaluatedMatter>> {
        let rows = sqlx::query(
            "SELECT step, matter, department FROM evaluation_matters WHERE evaluation_id = $1 ORDER BY step",
        )
        .bind(evaluation_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| EvaluatedMatter {
                step: r.get("step"),
                matter: r.get("matter"),
                department: r.get("department"),
            })
            .collect())
    }

    /// Every rectification (the open ones and the closed), oldest first.
    pub async fn rectifications(&self) -> Result<Vec<RectificationRecord>> {
        let rows = sqlx::query(&format!(
            "{RECTIFICATION_SELECT} ORDER BY r.opened_at, r.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        self.rectifications_from(&rows).await
    }

    /// One rectification.
    pub async fn rectification(&self, id: &str) -> Result<Option<RectificationRecord>> {
        let rows = sqlx::query(&format!("{RECTIFICATION_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(self.rectifications_from(&rows).await?.into_iter().next())
    }

    async fn rectifications_from(
        &self,
        rows: &[sqlx::any::AnyRow],
    ) -> Result<Vec<RectificationRecord>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let evaluation_id: String = r.get("evaluation_id");
            let matters = self.evaluated_matters(&evaluation_id).await?;
            let mut departments: Vec<String> =
                matters.iter().map(|m| m.department.clone()).collect();
            departments.sort();
            departments.dedup();
            let action = |at: &str, by: &str, note: &str| {
                r.get::<Option<i64>, _>(at).map(|at| Action {
                    at,
                    by: r.get::<Option<String>, _>(by).unwrap_or_default(),
                    note: r.get::<Option<String>, _>(note).unwrap_or_default(),
                })
            };
            out.push(RectificationRecord {
                id: r.get("id"),
                case_id: r.get("case_id"),
                level: r.get::<i64, _>("level") as u8,
                channel: r.get("channel"),
                departments,
                matters: matters.into_iter().map(|m| m.matter).collect(),
                opened_at: r.get("opened_at"),
                limit_days: r.get::<i64, _>("limit_days") as u32,
                visit: action("visited_at", "visited_by", "visit_note"),
                fix: action("fixed_at", "fixed_by", "fix_note"),
                close: action("closed_at", "closed_by", "close_note"),
                evaluation_id,
            });
        }
        Ok(out)
    }

    /// Record a step of a rectification (`by` and `note` masked by the caller), in order: the
    /// visit and the fix once each, in either order, then the close, which writes a
    /// `rectification_closed` event saying `closed_message` on the case's timeline in its
    /// transaction. The conditions are in the update itself, so two supervisors at once
    /// cannot both close it.
    pub async fn step_rectification(
        &self,
        id: &str,
        step: RectificationStep,
        at: i64,
        by: &str,
        note: &str,
        closed_message: &str,
    ) -> Result<Stepped> {
        let sql = match step {
            RectificationStep::Visit => {
                "UPDATE rectifications SET visited_at = $1, visited_by = $2, visit_note = $3
                 WHERE id = $4 AND closed_at IS NULL AND visited_at IS NULL"
            }
            RectificationStep::Fix => {
                "UPDATE rectifications SET fixed_at = $1, fixed_by = $2, fix_note = $3
                 WHERE id = $4 AND closed_at IS NULL AND fixed_at IS NULL"
            }
            RectificationStep::Close => {
                "UPDATE rectifications SET closed_at = $1, closed_by = $2, close_note = $3
                 WHERE id = $4 AND closed_at IS NULL AND visited_at IS NOT NULL AND fixed_at IS NOT NULL"
            }
        };
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql)
            .bind(at)
            .bind(by)
            .bind(note)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if done {
            if step == RectificationStep::Close {
                let case_id: String =
                    sqlx::query_scalar("SELECT case_id FROM rectifications WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                let event = Event {
                    step: None,
                    department: None,
                    kind: EventKind::RectificationClosed,
                    state: None,
                    message: Some(closed_message),
                };
                // Timed when it is recorded, as every event: the close's own time (which may
                // be given earlier) is on the rectification.
                insert_event(&mut tx, &case_id, now_ms(), &event, None).await?;
            }
            tx.commit().await?;
            return Ok(Stepped::Done);
        }
        tx.rollback().await?;
        let Some(r) = self.rectification(id).await? else {
            return Ok(Stepped::NotFound);
        };
        Ok(if r.close.is_some() {
            Stepped::Closed
        } else if step == RectificationStep::Close {
            Stepped::Early
        } else {
            Stepped::Repeated
        })
    }

    /// The evaluations made in `[from_ms, to_ms)` summed per month, department, matter and
    /// receiving clerk (an evaluation counts once for each matter it is attached to: per
    /// department, see [`Store::evaluations_by_department`]), with
    /// their rectifications open at `at_ms` and, of those, the overdue ones: `deadline` gives
    /// a rectification's deadline from its opening and its limit in working days (the case
    /// domain passes its calendar). Rows in key order.
    pub async fn evaluation_summary(
        &self,
        from_ms: i64,
        to_ms: i64,
        at_ms: i64,
        deadline: &(dyn Fn(i64, u32) -> i64 + Sync),
    ) -> Result<Vec<EvaluationSummary>> {
        let rows = sqlx::query(
            "SELECT e.level, e.created_at, e.clerk_id, m.matter, m.department,
             r.opened_at, r.limit_days, r.closed_at
             FROM evaluations e
             JOIN evaluation_matters m ON m.evaluation_id = e.id
             LEFT JOIN rectifications r ON r.evaluation_id = e.id
             WHERE e.created_at >= $1 AND e.created_at < $2",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut sums: BTreeMap<(String, String, String, String), EvaluationSummary> =
            BTreeMap::new();
        for r in &rows {
            let date = beijing_date(r.get("created_at"));
            let period = format!("{:04}-{:02}", date.year(), u8::from(date.month()));
            let key = (
                period,
                r.get::<String, _>("department"),
                r.get::<String, _>("matter"),
                r.get::<Option<String>, _>("clerk_id").unwrap_or_default(),
            );
            let row = sums
                .entry(key.clone())
                .or_insert_with(|| EvaluationSummary {
                    period: key.0,
                    department: key.1,
                    matter: key.2,
                    clerk: key.3,
                    ..Default::default()
                });
            let level = r.get::<i64, _>("level").clamp(1, 5) as usize;
            row.counts_by_level[level - 1] += 1;
            if let Some(opened) = r.get::<Option<i64>, _>("opened_at") {
                let closed = r
                    .get::<Option<i64>, _>("closed_at")
                    .is_some_and(|c| c <= at_ms);
                if !closed && opened <= at_ms {
                    row.open_rectifications += 1;
                    let limit = r.get::<Option<i64>, _>("limit_days").unwrap_or(0) as u32;
                    if at_ms > deadline(opened, limit) {
                        row.overdue_rectifications += 1;
                    }
                }
            }
        }
        Ok(sums.into_values().collect())
    }

    /// The evaluations made in `[from_ms, to_ms)` per department, each evaluation (and its
    /// rectification) counted once for each department it concerns — not once per matter, as
    /// [`Store::evaluation_summary`]'s rows are: summing those rows over a department counts
    /// an evaluation of a case with two of its matters twice. Rectifications open at `at_ms`
    /// and overdue by `deadline` as there. Rows in department order.
    pub async fn evaluations_by_department(
        &self,
        from_ms: i64,
        to_ms: i64,
        at_ms: i64,
        deadline: &(dyn Fn(i64, u32) -> i64 + Sync),
    ) -> Result<Vec<DepartmentEvaluations>> {
        // DISTINCT over (evaluation, department): one row however many matters it names there.
        let rows = sqlx::query(
            "SELECT DISTINCT e.id, e.level, m.department, r.opened_at, r.limit_days, r.closed_at
             FROM evaluations e
             JOIN evaluation_matters m ON m.evaluation_id = e.id
             LEFT JOIN rectifications r ON r.evaluation_id = e.id
             WHERE e.created_at >= $1 AND e.created_at < $2",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut sums: BTreeMap<String, DepartmentEvaluations> = BTreeMap::new();
        for r in &rows {
            let department: String = r.get("department");
            let row = sums
                .entry(department.clone())
                .or_insert_with(|| DepartmentEvaluations {
                    department,
                    ..Default::default()
                });
            let level = r.get::<i64, _>("level").clamp(1, 5) as usize;
            row.counts_by_level[level - 1] += 1;
            if let Some(opened) = r.get::<Option<i64>, _>("opened_at") {
                let closed = r
                    .get::<Option<i64>, _>("closed_at")
                    .is_some_and(|c| c <= at_ms);
                if !closed && opened <= at_ms {
                    row.open_rectifications += 1;
                    let limit = r.get::<Option<i64>, _>("limit_days").unwrap_or(0) as u32;
                    if at_ms > deadline(opened, limit) {
                        row.overdue_rectifications += 1;
                    }
                }
            }
        }
        Ok(sums.into_values().collect())
    }

    /// Reports due now that no node holds a claim on, oldest first.
    pub async fn due_reports(&self, limit: i64) -> Result<Vec<ReportRecord>> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT p.evaluation_id, e.case_id, p.department, p.payload, p.attempts
             FROM evaluation_reports p JOIN evaluations e ON e.id = p.evaluation_id
             WHERE p.state = 'pending' AND p.next_attempt_at <= $1
             AND (p.claim_until IS NULL OR p.claim_until < $2)
             ORDER BY p.next_attempt_at LIMIT $3",
        )
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ReportRecord {
                evaluation_id: r.get("evaluation_id"),
                case_id: r.get("case_id"),
                department: r.get("department"),
                payload: r.get("payload"),
                attempts: r.get("attempts"),
            })
            .collect())
    }

    /// Claim a due report for `node` until `until`; false when another node holds it or it is
    /// no longer due.
    pub async fn claim_report(&self, evaluation_id: &str, node: &str, until: i64) -> Result<bool> {
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE evaluation_reports SET claimed_by = $1, claim_until = $2
             WHERE evaluation_id = $3 AND state = 'pending' AND next_attempt_at <= $4
             AND (claim_until IS NULL OR claim_until < $5)",
        )
        .bind(node)
        .bind(until)
        .bind(evaluation_id)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Release the report claims a node holds: a restarted node takes back its work at once.
    pub async fn release_report_claims(&self, node: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE evaluation_reports SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1",
        )
        .bind(node)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The outcome of one attempt at a report: `reported` with the national system's id,
    /// `failed` for good, or `pending` again at `next_attempt_at`. Counts the attempt and
    /// releases the claim.
    pub async fn report_attempted(
        &self,
        evaluation_id: &str,
        state: &str,
        reference: Option<&str>,
        message: Option<&str>,
        next_attempt_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE evaluation_reports SET state = $1, reference = COALESCE($2, reference), message = $3,
             attempts = attempts + 1, next_attempt_at = $4, updated_at = $5,
             claimed_by = NULL, claim_until = NULL WHERE evaluation_id = $6",
        )
        .bind(state)
        .bind(reference)
        .bind(message)
        .bind(next_attempt_at)
        .bind(now_ms())
        .bind(evaluation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Push a report back without spending an attempt (no adapter instance free now).
    pub async fn postpone_report(&self, evaluation_id: &str, next_attempt_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE evaluation_reports SET next_attempt_at = $1, claimed_by = NULL, claim_until = NULL
             WHERE evaluation_id = $2",
        )
        .bind(next_attempt_at)
        .bind(evaluation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
