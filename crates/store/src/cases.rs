//! Cases, their steps (one per matter) and the events of their timeline. The queue over the
//! steps (claims, retries, dead letters, polls, held callbacks) is `deliveries`.

use crate::{Result, Store, StoreError};
use gateway_base::model::{Clerk, EventKind, StepState};
use gateway_base::time::now_ms;
use serde::Serialize;
use sqlx::Row;

/// A stored case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRecord {
    /// Case id.
    pub id: String,
    /// Service code the application was made for.
    pub service: String,
    /// The application form as submitted.
    pub form: serde_json::Value,
    /// Lookup answers gathered at acceptance, by lookup id.
    pub lookups: serde_json::Value,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The portal client that created it (only it may read it, unless allowed all cases).
    pub client: Option<String>,
}

/// A stored step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Case id.
    pub case_id: String,
    /// Step id within the case.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Department id.
    pub department: String,
    /// Current state.
    pub state: StepState,
    /// The department's reference, once it has one.
    pub reference: Option<String>,
    /// Outputs the department produced (JSON object).
    pub outputs: serde_json::Value,
    /// Latest message from the department or the gateway.
    pub message: Option<String>,
    /// The matter's input (JSON object) as sent to the department.
    #[serde(skip)]
    pub input: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Stable key the department sees on every attempt.
    #[serde(skip)]
    pub idempotency_key: String,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// A step whose clock runs (waiting, pending, at the department), with when its case was
/// received.
#[derive(Debug, Clone)]
pub struct OpenStep {
    /// Case id.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Department id.
    pub department: String,
    /// Its state.
    pub state: StepState,
    /// Unix milliseconds the case was received.
    pub received_at: i64,
    /// Working days added to its limit for time spent returned (补正, `resume`).
    pub paused_days: i64,
    /// When its clock restarted after a supplement (`restart`), if it did.
    pub clock_from: Option<i64>,
}

impl OpenStep {
    /// When its clock counts from: the case's receipt, or the supplement that restarted it.
    pub fn clock_start(&self) -> i64 {
        clock_start(self.received_at, self.clock_from)
    }

    /// Its matter's limit with the working days it spent returned.
    pub fn limit_days(&self, time_limit_days: u32) -> u32 {
        limit_days(time_limit_days, self.paused_days)
    }
}

/// When a step's clock counts from: its case's receipt, or the supplement that restarted it
/// (`clock_from`, 补正 with `supplement_clock = restart`). Every reading of a step's deadline
/// (the case view, deadline supervision and its light scan, red cards, statistics, notices)
/// counts from this, with [`limit_days`].
pub fn clock_start(received_at: i64, clock_from: Option<i64>) -> i64 {
    clock_from.unwrap_or(received_at)
}

/// A step's limit in working days: its matter's, with the working days it spent returned
/// (`paused_days`, 补正 with `supplement_clock = resume`).
pub fn limit_days(time_limit_days: u32, paused_days: i64) -> u32 {
    time_limit_days.saturating_add(u32::try_from(paused_days).unwrap_or(0))
}

/// A note on one step's timeline that changes no state (a moved deadline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepNote {
    /// Case id.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// Its department.
    pub department: String,
    /// What the timeline says.
    pub message: String,
}

/// One event of a case's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// Event id (time-ordered).
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The clerk who acted, when a person did (received at the window, replayed by an operator).
    pub clerk: Option<Clerk>,
    /// Step id, when the event concerns one step.
    pub step: Option<String>,
    /// Department id, when it concerns one department.
    pub department: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// The step state after the event, if it changed one.
    pub state: Option<StepState>,
    /// Human-readable detail.
    pub message: Option<String>,
}

/// How an application was admitted: its idempotency key, the digest of what was sent, the clerk.
#[derive(Debug, Clone, Default)]
pub struct Arrival {
    /// The portal's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body, to tell a true repeat from a reused key.
    pub request_digest: String,
    /// The clerk at the window.
    pub clerk: Option<Clerk>,
    /// The portal client that applied: the case's owner.
    pub client: Option<String>,
    /// The case's materials, stored with it.
    pub materials: Vec<crate::materials::NewCaseMaterial>,
    /// The draft the application was prepared in (owned by `client`): consumed in the same
    /// transaction, or the case is not stored ([`StoreError::Gone`]).
    pub draft: Option<String>,
    /// Who signed the commitment (容缺承诺) to provide the promised materials, if anyone did:
    /// recorded (sealed) with each promised material.
    pub commitment: Option<String>,
    /// The service's name as the catalogue gives it (`企业开办`), for the `received` event's
    /// message that clerks and applicants read; the service's code when absent.
    pub service_name: Option<String>,
}

/// A new step to store with its case.
#[derive(Debug, Clone)]
pub struct NewStep {
    /// Step id.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Department id.
    pub department: String,
    /// Steps this one waits for; it starts `waiting` when there are any.
    pub after: Vec<String>,
    /// The matter's input JSON (`{}` until a waiting step is released).
    pub input: String,
}

pub(crate) const STEP_COLUMNS: &str = "case_id, step, matter, department, state, reference, outputs, message, input, attempts, idempotency_key, updated_at";

/// A step's new state and what comes with it, recorded with its event by
/// [`Store::update_step`].
#[derive(Debug, Clone, Copy)]
pub struct StepChange<'a> {
    /// The new state.
    pub state: StepState,
    /// The department's reference, when it gave one (kept when absent).
    pub reference: Option<&'a str>,
    /// The outputs, JSON (kept when absent).
    pub outputs: Option<&'a str>,
    /// What the step and its event say.
    pub message: Option<&'a str>,
    /// What a returning department asks the applicant for (补正: masked JSON), when `state`
    /// is `returned`.
    pub requested: Option<&'a str>,
    /// The event's kind.
    pub kind: EventKind,
}

impl<'a> StepChange<'a> {
    /// `state`, recorded as an event of `kind`, with nothing else.
    pub fn new(state: StepState, kind: EventKind) -> Self {
        StepChange {
            state,
            reference: None,
            outputs: None,
            message: None,
            requested: None,
            kind,
        }
    }

    /// With the department's reference.
    pub fn reference(self, reference: Option<&'a str>) -> Self {
        StepChange { reference, ..self }
    }

    /// With the outputs.
    pub fn outputs(self, outputs: Option<&'a str>) -> Self {
        StepChange { outputs, ..self }
    }

    /// With a message.
    pub fn message(self, message: Option<&'a str>) -> Self {
        StepChange { message, ..self }
    }

    /// With what a returning department asks for.
    pub fn requested(self, requested: Option<&'a str>) -> Self {
        StepChange { requested, ..self }
    }
}

impl Store {
    /// Open steps (waiting, pending, at the department, returned to the applicant, supplemented)
    /// by department and service: `(department, service, count)`.
    pub async fn open_step_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT s.department, c.service, COUNT(*) AS n FROM steps s JOIN cases c ON c.id = s.case_id
             WHERE s.state IN ('pending', 'waiting', 'accepted', 'processing', 'returned', 'supplemented')
             GROUP BY s.department, c.service",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("department"), r.get("service"), r.get("n")))
            .collect())
    }

    /// The open steps of cases received by `at_ms`, of one department or all. A returned step
    /// (with the applicant, its clock paused) is not among them.
    pub async fn open_steps(&self, at_ms: i64, department: Option<&str>) -> Result<Vec<OpenStep>> {
        const OPEN: [StepState; 5] = [
            StepState::Waiting,
            StepState::Pending,
            StepState::Accepted,
            StepState::Processing,
            StepState::Supplemented,
        ];
        let states = OPEN
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT s.case_id, s.step, s.matter, s.department, s.state, c.created_at AS received_at,
             s.paused_days, s.clock_from
             FROM steps s JOIN cases c ON c.id = s.case_id
             WHERE s.state IN ({states}) AND c.created_at <= $1 AND ($2 = '' OR s.department = $2)"
        ))
        .bind(at_ms)
        .bind(department.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let (case_id, step): (String, String) = (r.get("case_id"), r.get("step"));
                Ok(OpenStep {
                    state: parse_state(&r.get::<String, _>("state"), &case_id, &step)?,
                    matter: r.get("matter"),
                    department: r.get("department"),
                    received_at: r.get("received_at"),
                    paused_days: r.get("paused_days"),
                    clock_from: r.get("clock_from"),
                    case_id,
                    step,
                })
            })
            .collect()
    }

    /// The clerk who received a case at the window, if a clerk did (its `received` event).
    pub async fn received_by(&self, case_id: &str) -> Result<Option<Clerk>> {
        let row = sqlx::query(
            "SELECT clerk FROM events WHERE case_id = $1 AND kind = 'received' AND clerk IS NOT NULL",
        )
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<String, _>("clerk")).ok()))
    }

    /// Store a new case with its steps and its first event, in one transaction.
    pub async fn create_case(
        &self,
        id: &str,
        service: &str,
        form: &serde_json::Value,
        lookups: &serde_json::Value,
        steps: &[NewStep],
        admission: &Arrival,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO cases (id, service, form, lookups, idempotency_key, request_digest, created_at, client)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(service)
        .bind(self.seal(&format!("cases.form:{id}"), form.to_string()))
        .bind(self.seal(&format!("cases.lookups:{id}"), lookups.to_string()))
        .bind(admission.idempotency_key.as_deref())
        .bind(admission.request_digest.as_str())
        .bind(now)
        .bind(admission.client.as_deref())
            .execute(&mut *tx)
            .await?;
        for step in steps {
            sqlx::query(
                "INSERT INTO steps (case_id, step, matter, department, state, reference, outputs, message, input, input_codes, attempts, idempotency_key, next_attempt_at, next_poll_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, NULL, '{}', NULL, $6, $7, 0, $8, $9, $10, $11)",
            )
            .bind(id)
            .bind(&step.step)
            .bind(&step.matter)
            .bind(&step.department)
            .bind(if step.after.is_empty() { "pending" } else { "waiting" })
            .bind(self.seal(&input_place(id, &step.step), step.input.clone()))
            .bind(credit_codes(&step.input))
            .bind(format!("{id}:{}", step.step))
            .bind(now)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        crate::materials::insert_case_materials(&mut tx, id, &admission.materials).await?;
        if let Some(signed_by) = &admission.commitment {
            crate::actions::sign_commitments(self, &mut tx, id, signed_by).await?;
        }
        if let Some(draft) = &admission.draft {
            sqlx::query("DELETE FROM draft_materials WHERE draft_id = $1")
                .bind(draft)
                .execute(&mut *tx)
                .await?;
            let consumed = sqlx::query("DELETE FROM drafts WHERE id = $1 AND client = $2")
                .bind(draft)
                .bind(admission.client.as_deref().unwrap_or_default())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if consumed == 0 {
                return Err(StoreError::Gone {
                    what: "draft",
                    id: draft.clone(),
                });
            }
        }
        let event = Event {
            step: None,
            department: None,
            kind: EventKind::Received,
            state: None,
            message: Some(&format!(
                "已受理「{}」申请",
                admission.service_name.as_deref().unwrap_or(service)
            )),
        };
        insert_event(&mut tx, id, now, &event, admission.clerk.as_ref()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A case, if it exists.
    pub async fn case(&self, id: &str) -> Result<Option<CaseRecord>> {
        let row = sqlx::query(
            "SELECT id, service, form, lookups, created_at, client FROM cases WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(CaseRecord {
            form: self.open_json(&format!("cases.form:{id}"), r.get("form"))?,
            lookups: self.open_json(&format!("cases.lookups:{id}"), r.get("lookups"))?,
            id: r.get("id"),
            service: r.get("service"),
            created_at: r.get("created_at"),
            client: r.get("client"),
        }))
    }

    /// The steps of a case, in step order.
    pub async fn steps(&self, case_id: &str) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE case_id = $1 ORDER BY step"
        ))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// The timeline of a case, oldest first.
    pub async fn events(&self, case_id: &str) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query("SELECT id, at, step, department, kind, state, message, clerk FROM events WHERE case_id = $1 ORDER BY id")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.get("id");
                let corrupt = |e: gateway_base::model::UnknownState| {
                    StoreError::Corrupt(format!("events of {case_id}, {id}: {e}"))
                };
                Ok(EventRecord {
                    kind: r.get::<String, _>("kind").parse().map_err(corrupt)?,
                    state: r
                        .get::<Option<String>, _>("state")
                        .map(|s| s.parse())
                        .transpose()
                        .map_err(corrupt)?,
                    clerk: r
                        .get::<Option<String>, _>("clerk")
                        .and_then(|c| serde_json::from_str(&c).ok()),
                    at: r.get("at"),
                    step: r.get("step"),
                    department: r.get("department"),
                    message: r.get("message"),
                    id,
                })
            })
            .collect()
    }

    /// The step a department's reference belongs to.
    pub async fn step_by_reference(
        &self,
        department: &str,
        reference: &str,
    ) -> Result<Option<StepRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE department = $1 AND reference = $2"
        ))
        .bind(department)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.step_from_row(r)).transpose()
    }

    /// Record a step's new state (and reference, outputs, message) with its event, atomically;
    /// with what a returning department asks for when the new state is `returned`, and the
    /// step's actions (补正, 撤回) kept in step: released once the step has a reference,
    /// cancelled once it is decided. `next_poll_at` schedules the next status poll for steps
    /// still at the department.
    pub async fn update_step(
        &self,
        step: &StepRecord,
        change: StepChange<'_>,
        next_poll_at: i64,
    ) -> Result<()> {
        let StepChange {
            state,
            reference,
            outputs,
            message,
            requested,
            kind,
        } = change;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        if state == StepState::Returned {
            crate::actions::note_return(self, &mut tx, step, requested, now).await?;
        }
        if state.is_final() {
            crate::actions::cancel_open_actions(&mut tx, step, now).await?;
        } else if reference.is_some() || step.reference.is_some() {
            crate::actions::release_waiting_actions(&mut tx, step, now).await?;
        }
        sqlx::query(
            "UPDATE steps SET state = $1, reference = COALESCE($2, reference), outputs = COALESCE($3, outputs),
             message = $4, next_poll_at = $5, updated_at = $6, claimed_by = NULL, claim_until = NULL
             WHERE case_id = $7 AND step = $8",
        )
        .bind(state.as_str())
        .bind(reference)
        .bind(outputs)
        .bind(message)
        .bind(next_poll_at)
        .bind(now)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            step: Some(&step.step),
            department: Some(&step.department),
            kind,
            state: Some(state),
            message,
        };
        insert_event(&mut tx, &step.case_id, now, &event, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Record notes of `kind` on steps' timelines, all in one transaction. A step whose latest
    /// note of this kind says the same already is skipped: each node of a cluster reloads its
    /// own config, and the same change is recorded once. The number of notes recorded.
    pub async fn note_steps(&self, kind: EventKind, notes: &[StepNote]) -> Result<usize> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let mut recorded = 0;
        for note in notes {
            let latest: Option<Option<String>> = sqlx::query_scalar(
                "SELECT message FROM events WHERE case_id = $1 AND step = $2 AND kind = $3 ORDER BY id DESC LIMIT 1",
            )
            .bind(&note.case_id)
            .bind(&note.step)
            .bind(kind.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if latest.flatten().as_deref() == Some(note.message.as_str()) {
                continue;
            }
            let event = Event {
                step: Some(&note.step),
                department: Some(&note.department),
                kind,
                state: None,
                message: Some(&note.message),
            };
            insert_event(&mut tx, &note.case_id, now, &event, None).await?;
            recorded += 1;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Release a waiting step for delivery with its input; false if it was no longer waiting
    /// (another task released or blocked it first).
    pub async fn release_step(&self, step: &StepRecord, input: &str) -> Result<bool> {
        let message = "前置事项已办结，本事项开始办理";
        self.leave_waiting(
            step,
            StepState::Pending,
            Some(input),
            message,
            EventKind::Ready,
        )
        .await
    }

    /// Block a waiting step, with the reason; false if it was no longer waiting.
    pub async fn block_step(&self, step: &StepRecord, message: &str) -> Result<bool> {
        self.leave_waiting(step, StepState::Blocked, None, message, EventKind::Blocked)
            .await
    }

    /// Move a step out of `waiting` with its event, only if it is still waiting.
    async fn leave_waiting(
        &self,
        step: &StepRecord,
        state: StepState,
        input: Option<&str>,
        message: &str,
        kind: EventKind,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE steps SET state = $1, input = COALESCE($2, input), input_codes = COALESCE($3, input_codes),
             message = $4, next_attempt_at = $5, updated_at = $6 WHERE case_id = $7 AND step = $8 AND state = 'waiting'",
        )
        .bind(state.as_str())
        .bind(input.map(|i| self.seal(&input_place(&step.case_id, &step.step), i.to_string())))
        .bind(input.map(credit_codes))
        .bind(message)
        .bind(now)
        .bind(now)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            let event = Event {
                step: Some(&step.step),
                department: Some(&step.department),
                kind,
                state: Some(state),
                message: Some(message),
            };
            insert_event(&mut tx, &step.case_id, now, &event, None).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// The case an idempotency key was first used for, with the digest of that request.
    pub async fn case_by_idempotency_key(&self, key: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT id, request_digest FROM cases WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            (
                r.get("id"),
                r.get::<Option<String>, _>("request_digest")
                    .unwrap_or_default(),
            )
        }))
    }
}

pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    at: i64,
    event: &Event<'_>,
    clerk: Option<&Clerk>,
) -> Result<()> {
    // UUIDv7 ids sort by time, so the timeline reads in order on every backend.
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO events (id, case_id, at, step, department, kind, state, message, clerk) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&id)
        .bind(case_id)
        .bind(at)
        .bind(event.step)
        .bind(event.department)
        .bind(event.kind.as_str())
        .bind(event.state.map(StepState::as_str))
        .bind(event.message)
        .bind(clerk.map(|c| serde_json::to_string(c).expect("a clerk serialises")))
        .execute(&mut **tx)
        .await?;
    // The applicant's notice of this event, if it causes one, in the same transaction.
    crate::notifications::enqueue_for_event(tx, case_id, at, &id, event).await?;
    Ok(())
}

/// The fields of one timeline event.
pub(crate) struct Event<'a> {
    pub(crate) step: Option<&'a str>,
    pub(crate) department: Option<&'a str>,
    pub(crate) kind: EventKind,
    pub(crate) state: Option<StepState>,
    pub(crate) message: Option<&'a str>,
}

/// Where a step's input is, as its sealed value's associated data.
fn input_place(case_id: &str, step: &str) -> String {
    format!("steps.input:{case_id}:{step}")
}

/// The unified social credit codes an input names, as `"code"` strings side by side: the
/// 企业码 view finds an enterprise's cases by them, also when the input itself is sealed.
/// (Credit codes are public registry identifiers, not personal data.)
fn credit_codes(input: &str) -> String {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) if sdk::ids::credit_code(s).is_ok() => {
                found.push(format!("\"{s}\""));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            serde_json::Value::Object(fields) => fields.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(value) = serde_json::from_str(input) {
        walk(&value, &mut found);
    }
    found.join(",")
}

impl Store {
    pub(crate) fn step_from_row(&self, r: &sqlx::any::AnyRow) -> Result<StepRecord> {
        let case_id: String = r.get("case_id");
        let step: String = r.get("step");
        let input = self.unseal(&input_place(&case_id, &step), r.get("input"))?;
        let state = r.get::<String, _>("state").parse().map_err(
            |e: gateway_base::model::UnknownState| {
                StoreError::Corrupt(format!("steps.state of {case_id}/{step}: {e}"))
            },
        )?;
        Ok(StepRecord {
            input,
            case_id,
            step,
            matter: r.get("matter"),
            department: r.get("department"),
            state,
            reference: r.get("reference"),
            outputs: serde_json::from_str(&r.get::<String, _>("outputs")).unwrap_or_default(),
            message: r.get("message"),
            attempts: r.get("attempts"),
            idempotency_key: r.get("idempotency_key"),
            updated_at: r.get("updated_at"),
        })
    }
}

/// A stored step state; a text no version writes is an error, never a guess.
fn parse_state(text: &str, case_id: &str, step: &str) -> Result<StepState> {
    text.parse()
        .map_err(|e: gateway_base::model::UnknownState| {
            StoreError::Corrupt(format!("steps.state of {case_id}/{step}: {e}"))
        })
}
