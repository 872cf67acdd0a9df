//! The lifecycle of a step after its delivery, and the outbox of actions on steps at
//! their departments.
//!
//! - 补正: what a returning department asks for (`steps.requested`, sealed), when the step was
//!   returned (`returned_at`), the working days its clock stood still (`paused_days`) or the
//!   instant it restarted (`clock_from`); a supplement stored with the step's new state, its
//!   merged input and its action, in one transaction.
//! - 撤回: a case withdrawn in one transaction: steps no department holds withdrawn at once,
//!   the others given a withdrawal action.
//! - The outbox (`step_actions`): due actions, claims (one node sends each), retries with the
//!   same idempotency key, a final failure, an action waiting for its step's reference while
//!   the step is still being submitted.

use crate::cases::{Event, StepRecord, insert_event};
use crate::{Result, Store, StoreError};
use gateway_base::model::{EventKind, StepState};
use gateway_base::time::now_ms;
use sqlx::Row;
use std::collections::BTreeSet;

/// What an action does at the department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// The applicant's supplement (fields and materials; or a promised material, no fields).
    Supplement,
    /// The applicant's withdrawal.
    Withdrawal,
}

impl ActionKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Supplement => "supplement",
            ActionKind::Withdrawal => "withdrawal",
        }
    }

    fn parse(text: &str) -> Result<ActionKind> {
        match text {
            "supplement" => Ok(ActionKind::Supplement),
            "withdrawal" => Ok(ActionKind::Withdrawal),
            other => Err(StoreError::Corrupt(format!(
                "step_actions.kind `{other}` is not known"
            ))),
        }
    }
}

/// One action of the outbox, with what its delivery needs of its step.
#[derive(Debug, Clone)]
pub struct ActionRecord {
    /// Action id.
    pub id: String,
    /// Case id.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// What it does.
    pub kind: ActionKind,
    /// Supplement: the changed fields (JSON object text); withdrawal: the reason.
    pub payload: String,
    /// Material codes handed with a supplement.
    pub materials: Vec<String>,
    /// What the department sees on every attempt.
    pub idempotency_key: String,
    /// `pending`, `waiting`, `delivered`, `failed`, `cancelled`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
}

impl ActionRecord {
    /// Whether it hands over a material promised at application (容缺), not an applicant's
    /// supplement to a returned step.
    pub fn is_commitment(&self) -> bool {
        self.idempotency_key.contains(":material:")
    }
}

/// The lifecycle columns of one step.
#[derive(Debug, Clone, Default)]
pub struct StepLifecycle {
    /// Step id.
    pub step: String,
    /// What the department asked for when it returned the step (masked JSON), if it did.
    pub requested: Option<serde_json::Value>,
    /// When the step was last returned.
    pub returned_at: Option<i64>,
    /// Working days added to its limit for the time it spent returned.
    pub paused_days: i64,
    /// When its clock restarted (`supplement_clock = "restart"`).
    pub clock_from: Option<i64>,
}

/// A supplement to store.
#[derive(Debug, Clone)]
pub struct NewSupplement<'a> {
    /// Case id.
    pub case_id: &'a str,
    /// Step id.
    pub step: &'a str,
    /// The changed fields (JSON object text), handed to the department.
    pub fields: &'a str,
    /// The step's input with the fields merged in.
    pub input: &'a str,
    /// Material codes provided with it.
    pub materials: &'a [String],
    /// The portal's Idempotency-Key.
    pub request_key: Option<&'a str>,
    /// Digest of the request body.
    pub request_digest: &'a str,
    /// When the step was returned, as read: the supplement is stored only if it still is.
    pub returned_at: Option<i64>,
    /// Working days to add to the limit (resume), or none.
    pub paused_days: i64,
    /// Restart the clock from now (restart).
    pub restart: bool,
}

/// What became of a supplement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupplementStored {
    /// Stored, with its action id.
    Stored(String),
    /// The Idempotency-Key was used already for this case: the first action, and whether the
    /// request was the same.
    Replayed {
        /// The first request's step.
        step: String,
        /// Whether the body's digest is the first request's.
        same: bool,
    },
    /// The step is not returned (any more).
    NotReturned(StepState),
}

/// What became of a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawal {
    /// Stored: the steps withdrawn at once, and those whose departments are told.
    Done {
        /// Withdrawn at once (never delivered).
        at_once: Vec<String>,
        /// Given a withdrawal action.
        told: Vec<String>,
    },
    /// Every matter is decided already.
    Decided,
    /// The case was withdrawn already.
    AlreadyWithdrawn,
    /// Matters whose departments must be told but cannot be (their adapter has no `withdraw`):
    /// nothing was changed.
    Untellable(Vec<String>),
}

/// Where a sealed withdrawal reason lives.
fn reason_place(case_id: &str) -> String {
    format!("cases.withdrawal:{case_id}")
}

fn payload_place(id: &str) -> String {
    format!("step_actions.payload:{id}")
}

fn requested_place(case_id: &str, step: &str) -> String {
    format!("steps.requested:{case_id}:{step}")
}

const ACTION_COLUMNS: &str = "a.id, a.case_id, a.step, a.kind, a.payload, a.materials, a.idempotency_key, a.state, a.attempts";

/// Record a step's move into `returned` (its clock stops now, `requested` kept) in the
/// transaction of its new state. A step already returned keeps its first return's time.
pub(crate) async fn note_return(
    store: &Store,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    step: &StepRecord,
    requested: Option<&str>,
    now: i64,
) -> Result<()> {
    if step.state != StepState::Returned {
        sqlx::query("UPDATE steps SET returned_at = $1 WHERE case_id = $2 AND step = $3")
            .bind(now)
            .bind(&step.case_id)
            .bind(&step.step)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(requested) = requested {
        sqlx::query("UPDATE steps SET requested = $1 WHERE case_id = $2 AND step = $3")
            .bind(store.seal(
                &requested_place(&step.case_id, &step.step),
                requested.to_string(),
            ))
            .bind(&step.case_id)
            .bind(&step.step)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Record who signed the commitment to provide a new case's promised materials (容缺承诺), in
/// the case's transaction, sealed (`case_materials.committed_by:<case>`).
pub(crate) async fn sign_commitments(
    store: &Store,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    signed_by: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE case_materials SET committed_by = $1 WHERE case_id = $2 AND source = 'promised'",
    )
    .bind(store.seal(
        &format!("case_materials.committed_by:{case_id}"),
        signed_by.to_string(),
    ))
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Actions on a step that are not yet sent and will not be now that it is decided: cancelled,
/// in the transaction of its decision.
pub(crate) async fn cancel_open_actions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    step: &StepRecord,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE step_actions SET state = 'cancelled', updated_at = $1, claimed_by = NULL, claim_until = NULL
         WHERE case_id = $2 AND step = $3 AND state IN ('pending', 'waiting')",
    )
    .bind(now)
    .bind(&step.case_id)
    .bind(&step.step)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Actions waiting for a step's reference become due, now that it has one.
pub(crate) async fn release_waiting_actions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    step: &StepRecord,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE step_actions SET state = 'pending', next_attempt_at = $1, updated_at = $2
         WHERE case_id = $3 AND step = $4 AND state = 'waiting'",
    )
    .bind(now)
    .bind(now)
    .bind(&step.case_id)
    .bind(&step.step)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The lifecycle columns of a case's steps.
    pub async fn step_lifecycles(&self, case_id: &str) -> Result<Vec<StepLifecycle>> {
        let rows = sqlx::query(
            "SELECT step, requested, returned_at, paused_days, clock_from FROM steps WHERE case_id = $1 ORDER BY step",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let step: String = r.get("step");
                let requested = r
                    .get::<Option<String>, _>("requested")
                    .map(|sealed| self.unseal(&requested_place(case_id, &step), sealed))
                    .transpose()?
                    .and_then(|text| serde_json::from_str(&text).ok());
                Ok(StepLifecycle {
                    requested,
                    returned_at: r.get("returned_at"),
                    paused_days: r.get("paused_days"),
                    clock_from: r.get("clock_from"),
                    step,
                })
            })
            .collect()
    }

    /// Store a supplement to a returned step: the step `supplemented` with its merged input
    /// and its clock's new terms, the action to deliver, the event, in one transaction; only
    /// if the step is still returned since `returned_at`. A repeated Idempotency-Key is
    /// answered from the first request.
    pub async fn store_supplement(&self, s: &NewSupplement<'_>) -> Result<SupplementStored> {
        if let Some(replay) = self
            .replayed(s.case_id, s.request_key, s.request_digest)
            .await?
        {
            return Ok(replay);
        }
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE steps SET state = 'supplemented', input = $1, paused_days = paused_days + $2,
             clock_from = CASE WHEN $3 = 1 THEN $4 ELSE clock_from END,
             message = $5, updated_at = $6, claimed_by = NULL, claim_until = NULL
             WHERE case_id = $7 AND step = $8 AND state = 'returned'
             AND ($9 = 0 OR returned_at = $10)",
        )
        .bind(self.seal(
            &format!("steps.input:{}:{}", s.case_id, s.step),
            s.input.to_string(),
        ))
        .bind(s.paused_days)
        .bind(i64::from(s.restart))
        .bind(now)
        .bind("补正材料已提交，正在送达部门")
        .bind(now)
        .bind(s.case_id)
        .bind(s.step)
        .bind(i64::from(s.returned_at.is_some()))
        .bind(s.returned_at.unwrap_or_default())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM steps WHERE case_id = $1 AND step = $2")
                    .bind(s.case_id)
                    .bind(s.step)
                    .fetch_optional(&self.pool)
                    .await?;
            let state = state
                .and_then(|s| s.parse().ok())
                .unwrap_or(StepState::Waiting);
            return Ok(SupplementStored::NotReturned(state));
        }
        let key = format!("{}:{}:supplement:{id}", s.case_id, s.step);
        insert_action(
            self,
            &mut tx,
            &id,
            s.case_id,
            s.step,
            ActionKind::Supplement,
            s.fields,
            s.materials,
            &key,
            (s.request_key, Some(s.request_digest)),
            "pending",
            now,
        )
        .await?;
        let department: Option<String> =
            sqlx::query_scalar("SELECT department FROM steps WHERE case_id = $1 AND step = $2")
                .bind(s.case_id)
                .bind(s.step)
                .fetch_optional(&mut *tx)
                .await?;
        let message = if s.restart {
            "补正已收到，承诺时限自补正之日重新计算".to_string()
        } else {
            format!(
                "补正已收到，补正期间 {} 个工作日不计入承诺时限",
                s.paused_days
            )
        };
        let event = Event {
            step: Some(s.step),
            department: department.as_deref(),
            kind: EventKind::SupplementReceived,
            state: Some(StepState::Supplemented),
            message: Some(&message),
        };
        insert_event(&mut tx, s.case_id, now, &event, None).await?;
        tx.commit().await?;
        Ok(SupplementStored::Stored(id))
    }

    /// The supplement stored under this Idempotency-Key for the case, if there is one.
    pub async fn supplement_replay(
        &self,
        case_id: &str,
        request_key: &str,
        digest: &str,
    ) -> Result<Option<SupplementStored>> {
        self.replayed(case_id, Some(request_key), digest).await
    }

    /// The first action stored under this Idempotency-Key for the case, if there is one.
    async fn replayed(
        &self,
        case_id: &str,
        request_key: Option<&str>,
        digest: &str,
    ) -> Result<Option<SupplementStored>> {
        let Some(key) = request_key else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT step, request_digest FROM step_actions WHERE case_id = $1 AND request_key = $2",
        )
        .bind(case_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| SupplementStored::Replayed {
            step: r.get("step"),
            same: r.get::<Option<String>, _>("request_digest").as_deref() == Some(digest),
        }))
    }

    /// Withdraw a case (撤回) in one transaction: waiting steps and pending steps no node is
    /// delivering are withdrawn at once (the dispatcher only takes pending steps, so they are
    /// never delivered); steps their departments hold get a withdrawal action (a pending step
    /// being delivered gets one that waits for its reference). Refused, with nothing changed,
    /// when the case was withdrawn already, when every matter is decided, or when a department
    /// that must be told is in `untellable`.
    pub async fn withdraw_case(
        &self,
        case_id: &str,
        reason: &str,
        untellable: &BTreeSet<String>,
    ) -> Result<Withdrawal> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let withdrawn: Option<Option<i64>> =
            sqlx::query_scalar("SELECT withdrawn_at FROM cases WHERE id = $1")
                .bind(case_id)
                .fetch_optional(&mut *tx)
                .await?;
        if withdrawn.flatten().is_some() {
            tx.rollback().await?;
            return Ok(Withdrawal::AlreadyWithdrawn);
        }
        let rows = sqlx::query(
            "SELECT step, matter, department, state, reference, claim_until FROM steps WHERE case_id = $1 ORDER BY step",
        )
        .bind(case_id)
        .fetch_all(&mut *tx)
        .await?;
        let (mut at_once, mut told, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        for r in &rows {
            let step: String = r.get("step");
            let state: StepState = r.get::<String, _>("state").parse().map_err(|e| {
                StoreError::Corrupt(format!("steps.state of {case_id}/{step}: {e}"))
            })?;
            let department: String = r.get("department");
            let claimed = r
                .get::<Option<i64>, _>("claim_until")
                .is_some_and(|u| u >= now);
            let tell = match state {
                StepState::Waiting => false,
                StepState::Pending => claimed,
                StepState::Accepted
                | StepState::Processing
                | StepState::Returned
                | StepState::Supplemented => true,
                _ => continue,
            };
            if tell {
                if untellable.contains(&department) {
                    refused.push(r.get::<String, _>("matter"));
                }
                let waiting = r.get::<Option<String>, _>("reference").is_none();
                told.push((step, department, waiting));
            } else {
                at_once.push((step, department, state));
            }
        }
        if !refused.is_empty() {
            tx.rollback().await?;
            refused.dedup();
            return Ok(Withdrawal::Untellable(refused));
        }
        if at_once.is_empty() && told.is_empty() {
            tx.rollback().await?;
            return Ok(Withdrawal::Decided);
        }
        sqlx::query("UPDATE cases SET withdrawn_at = $1, withdrawal_reason = $2 WHERE id = $3")
            .bind(now)
            .bind(self.seal(&reason_place(case_id), reason.to_string()))
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        let mut withdrawn_now = Vec::new();
        for (step, department, state) in at_once {
            // Guarded: a node that claimed the pending step since it was read is delivering
            // it, and it is told instead.
            let done = sqlx::query(
                "UPDATE steps SET state = 'withdrawn', message = $1, updated_at = $2
                 WHERE case_id = $3 AND step = $4 AND state = $5
                 AND (claim_until IS NULL OR claim_until < $6)",
            )
            .bind("申请人已撤回")
            .bind(now)
            .bind(case_id)
            .bind(&step)
            .bind(state.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 1 {
                let event = Event {
                    step: Some(&step),
                    department: Some(&department),
                    kind: EventKind::WithdrawalRequested,
                    state: Some(StepState::Withdrawn),
                    message: Some("申请人已撤回，本事项不再办理"),
                };
                insert_event(&mut tx, case_id, now, &event, None).await?;
                withdrawn_now.push(step);
            } else {
                told.push((step, department, true));
            }
        }
        let mut told_steps = Vec::new();
        for (step, department, waiting) in told {
            // A supplement not yet sent is moot once the matter is withdrawn.
            sqlx::query(
                "UPDATE step_actions SET state = 'cancelled', updated_at = $1
                 WHERE case_id = $2 AND step = $3 AND state IN ('pending', 'waiting') AND kind = 'supplement'",
            )
            .bind(now)
            .bind(case_id)
            .bind(&step)
            .execute(&mut *tx)
            .await?;
            let id = uuid::Uuid::now_v7().to_string();
            let key = format!("{case_id}:{step}:withdrawal");
            insert_action(
                self,
                &mut tx,
                &id,
                case_id,
                &step,
                ActionKind::Withdrawal,
                reason,
                &[],
                &key,
                (None, None),
                if waiting { "waiting" } else { "pending" },
                now,
            )
            .await?;
            let event = Event {
                step: Some(&step),
                department: Some(&department),
                kind: EventKind::WithdrawalRequested,
                state: None,
                message: Some("申请人已撤回，正在通知部门"),
            };
            insert_event(&mut tx, case_id, now, &event, None).await?;
            told_steps.push(step);
        }
        tx.commit().await?;
        Ok(Withdrawal::Done {
            at_once: withdrawn_now,
            told: told_steps,
        })
    }

    /// When the case was withdrawn and why, if it was.
    pub async fn withdrawal_of(&self, case_id: &str) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT withdrawn_at, withdrawal_reason FROM cases WHERE id = $1 AND withdrawn_at IS NOT NULL",
        )
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let reason = r
            .get::<Option<String>, _>("withdrawal_reason")
            .map(|sealed| self.unseal(&reason_place(case_id), sealed))
            .transpose()?
            .unwrap_or_default();
        Ok(Some((r.get("withdrawn_at"), reason)))
    }

    /// Queue a supplement with no fields for a promised material (容缺) just supplied, for each
    /// of `steps` (at their departments), with its event, in one transaction.
    pub async fn queue_material_supplements(
        &self,
        case_id: &str,
        code: &str,
        steps: &[StepRecord],
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        for step in steps {
            let id = uuid::Uuid::now_v7().to_string();
            let key = format!("{case_id}:{}:material:{code}", step.step);
            let waiting = step.reference.is_none();
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM step_actions WHERE idempotency_key = $1")
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_some() {
                continue;
            }
            insert_action(
                self,
                &mut tx,
                &id,
                case_id,
                &step.step,
                ActionKind::Supplement,
                "{}",
                &[code.to_string()],
                &key,
                (None, None),
                if waiting { "waiting" } else { "pending" },
                now,
            )
            .await?;
            let message = format!("容缺材料「{code}」已补交，正在送达部门");
            let event = Event {
                step: Some(&step.step),
                department: Some(&step.department),
                kind: EventKind::MaterialSupplied,
                state: None,
                message: Some(&message),
            };
            insert_event(&mut tx, case_id, now, &event, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every material still promised (容缺) in a case not withdrawn: `(case, service, material)`.
    pub async fn outstanding_commitments(
        &self,
    ) -> Result<Vec<(String, String, gateway_base::model::MaterialRef)>> {
        let rows = sqlx::query(
            "SELECT m.case_id, c.service, m.code, m.name, m.due FROM case_materials m
             JOIN cases c ON c.id = m.case_id
             WHERE m.source = 'promised' AND c.withdrawn_at IS NULL ORDER BY m.due, m.case_id, m.code",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get("case_id"),
                    r.get("service"),
                    gateway_base::model::MaterialRef {
                        code: r.get("code"),
                        name: r.get("name"),
                        source: gateway_base::model::MaterialSource::Promised { due: r.get("due") },
                    },
                )
            })
            .collect())
    }

    /// Actions due for delivery that no node holds a claim on, oldest first.
    pub async fn due_actions(&self, limit: i64) -> Result<Vec<ActionRecord>> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM step_actions a
             WHERE a.state = 'pending' AND a.next_attempt_at <= $1
             AND (a.claim_until IS NULL OR a.claim_until < $2)
             ORDER BY a.next_attempt_at, a.id LIMIT $3"
        ))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.action_from_row(r)).collect()
    }

    /// The actions of a case, oldest first.
    pub async fn actions_of(&self, case_id: &str) -> Result<Vec<ActionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM step_actions a WHERE a.case_id = $1 ORDER BY a.id"
        ))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.action_from_row(r)).collect()
    }

    /// Claim a due action for this node until `until`; false when another node holds it or it
    /// is no longer due.
    pub async fn claim_action(&self, id: &str, node: &str, until: i64) -> Result<bool> {
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE step_actions SET claimed_by = $1, claim_until = $2
             WHERE id = $3 AND state = 'pending' AND next_attempt_at <= $4
             AND (claim_until IS NULL OR claim_until < $5)",
        )
        .bind(node)
        .bind(until)
        .bind(id)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Push an action back without spending an attempt (no slot, no adapter instance).
    pub async fn postpone_action(&self, id: &str, next_attempt_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE step_actions SET next_attempt_at = $1, claimed_by = NULL, claim_until = NULL WHERE id = $2",
        )
        .bind(next_attempt_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Record a failed attempt at an action, and when to try again (same key), or its final
    /// failure (`next_attempt_at` none), with an event on the step's timeline.
    pub async fn action_attempt_failed(
        &self,
        action: &ActionRecord,
        department: &str,
        message: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE step_actions SET attempts = attempts + 1, message = $1, state = $2,
             next_attempt_at = $3, updated_at = $4, claimed_by = NULL, claim_until = NULL WHERE id = $5",
        )
        .bind(message)
        .bind(if next_attempt_at.is_some() { "pending" } else { "failed" })
        .bind(next_attempt_at.unwrap_or(now))
        .bind(now)
        .bind(&action.id)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            step: Some(&action.step),
            department: Some(department),
            kind: if next_attempt_at.is_some() {
                EventKind::DeliveryRetry
            } else {
                EventKind::DeliveryFailed
            },
            state: None,
            message: Some(message),
        };
        insert_event(&mut tx, &action.case_id, now, &event, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Mark an action delivered: the department answered it (its receipt is recorded on the
    /// step by the caller, as any state change).
    pub async fn action_delivered(&self, action: &ActionRecord) -> Result<()> {
        sqlx::query(
            "UPDATE step_actions SET state = 'delivered', attempts = attempts + 1, updated_at = $1,
             claimed_by = NULL, claim_until = NULL WHERE id = $2",
        )
        .bind(now_ms())
        .bind(&action.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A pending step whose delivery failed an attempt while its case was withdrawn: withdrawn
    /// now instead of retried (its withdrawal, waiting for a reference, cancelled). False when
    /// it has no withdrawal waiting.
    pub async fn withdraw_instead_of_retry(&self, step: &StepRecord) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let cancelled = sqlx::query(
            "UPDATE step_actions SET state = 'cancelled', updated_at = $1
             WHERE case_id = $2 AND step = $3 AND kind = 'withdrawal' AND state = 'waiting'",
        )
        .bind(now)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if cancelled == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE steps SET state = 'withdrawn', message = $1, updated_at = $2, claimed_by = NULL, claim_until = NULL
             WHERE case_id = $3 AND step = $4",
        )
        .bind("申请人已撤回")
        .bind(now)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            step: Some(&step.step),
            department: Some(&step.department),
            kind: EventKind::WithdrawalDelivered,
            state: Some(StepState::Withdrawn),
            message: Some("申请人已撤回，本事项不再办理"),
        };
        insert_event(&mut tx, &step.case_id, now, &event, None).await?;
        tx.commit().await?;
        Ok(true)
    }

    fn action_from_row(&self, r: &sqlx::any::AnyRow) -> Result<ActionRecord> {
        let id: String = r.get("id");
        Ok(ActionRecord {
            payload: self.unseal(&payload_place(&id), r.get("payload"))?,
            kind: ActionKind::parse(&r.get::<String, _>("kind"))?,
            materials: serde_json::from_str(&r.get::<String, _>("materials")).unwrap_or_default(),
            case_id: r.get("case_id"),
            step: r.get("step"),
            idempotency_key: r.get("idempotency_key"),
            state: r.get("state"),
            attempts: r.get("attempts"),
            id,
        })
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one row insert, named at the call site"
)]
async fn insert_action(
    store: &Store,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    case_id: &str,
    step: &str,
    kind: ActionKind,
    payload: &str,
    materials: &[String],
    key: &str,
    (request_key, request_digest): (Option<&str>, Option<&str>),
    state: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO step_actions (id, case_id, step, kind, payload, materials, idempotency_key, request_key, request_digest,
         state, attempts, next_attempt_at, claimed_by, claim_until, message, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, NULL, NULL, NULL, $12, $13)",
    )
    .bind(id)
    .bind(case_id)
    .bind(step)
    .bind(kind.as_str())
    .bind(store.seal(&payload_place(id), payload.to_string()))
    .bind(serde_json::to_string(materials).expect("codes serialise"))
    .bind(key)
    .bind(request_key)
    .bind(request_digest)
    .bind(state)
    .bind(now)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
