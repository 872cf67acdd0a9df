//! The delivery queue over the steps table: which steps are due for delivery or a status
//! poll, claims that keep two nodes from sending one step, retries with their back-off, dead
//! letters and their replay, and callbacks held until their submission is answered.

use crate::cases::{Event, STEP_COLUMNS, StepRecord, insert_event};
use crate::{Result, Store};
use gateway_base::model::{Clerk, EventKind, StepState};
use gateway_base::time::now_ms;
use sqlx::Row;

impl Store {
    /// Steps waiting for delivery whose next attempt is due and that no node holds a claim on,
    /// taken in turns across departments: each department's oldest, then each one's second
    /// oldest, and so on. A department whose backlog waits for its concurrency slots therefore
    /// never fills the batch, and steps another node is delivering are not fetched again.
    pub async fn due_deliveries(&self, limit: i64) -> Result<Vec<StepRecord>> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM (
                SELECT {STEP_COLUMNS}, next_attempt_at, ROW_NUMBER() OVER (
                    PARTITION BY department ORDER BY next_attempt_at, case_id, step
                ) AS turn
                FROM steps
                WHERE state = 'pending' AND next_attempt_at <= $1
                AND (claim_until IS NULL OR claim_until < $2)
             ) due
             ORDER BY turn, next_attempt_at LIMIT $3"
        ))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// Steps whose status poll is due: those at a department, and those it returned (补正),
    /// which it may still decide on its own (a supplement that never came: 逾期未补正).
    pub async fn due_polls(&self, limit: i64) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE state IN ('accepted', 'processing', 'returned') AND next_poll_at <= $1 ORDER BY next_poll_at LIMIT $2"
        ))
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// Record a failed delivery attempt and when to try again.
    pub async fn retry_later(
        &self,
        step: &StepRecord,
        message: &str,
        next_attempt_at: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE steps SET attempts = attempts + 1, message = $1, next_attempt_at = $2, updated_at = $3,
             claimed_by = NULL, claim_until = NULL WHERE case_id = $4 AND step = $5")
            .bind(message)
            .bind(next_attempt_at)
            .bind(now)
            .bind(&step.case_id)
            .bind(&step.step)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut tx,
            &step.case_id,
            now,
            &Event {
                step: Some(&step.step),
                department: Some(&step.department),
                kind: EventKind::DeliveryRetry,
                state: None,
                message: Some(message),
            },
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Push a delivery back without spending an attempt (the department's circuit is open).
    pub async fn postpone_delivery(&self, step: &StepRecord, next_attempt_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE steps SET next_attempt_at = $1, claimed_by = NULL, claim_until = NULL WHERE case_id = $2 AND step = $3",
        )
        .bind(next_attempt_at)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Release the claims a node holds: a restarted node takes back its own work at once (its
    /// deliveries, and its supplements and withdrawals).
    pub async fn release_claims(&self, node: &str) -> Result<u64> {
        let released = sqlx::query(
            "UPDATE steps SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1",
        )
        .bind(node)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let actions = sqlx::query(
            "UPDATE step_actions SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1",
        )
        .bind(node)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(released + actions)
    }

    /// Push a step's next poll back without an event (a poll that found nothing new).
    pub async fn postpone_poll(&self, step: &StepRecord, next_poll_at: i64) -> Result<()> {
        sqlx::query("UPDATE steps SET next_poll_at = $1 WHERE case_id = $2 AND step = $3")
            .bind(next_poll_at)
            .bind(&step.case_id)
            .bind(&step.step)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claim a due delivery for this node until `until`; false when another node holds it or it
    /// is no longer pending. A node that dies holding a claim loses it when the claim expires.
    pub async fn claim_delivery(&self, step: &StepRecord, node: &str, until: i64) -> Result<bool> {
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE steps SET claimed_by = $1, claim_until = $2
             WHERE case_id = $3 AND step = $4 AND state = 'pending' AND next_attempt_at <= $5
             AND (claim_until IS NULL OR claim_until < $6)",
        )
        .bind(node)
        .bind(until)
        .bind(&step.case_id)
        .bind(&step.step)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Claim a due status poll by moving its next poll time; false when another node did first.
    pub async fn claim_poll(&self, step: &StepRecord, next_poll_at: i64) -> Result<bool> {
        let claimed = sqlx::query(
            "UPDATE steps SET next_poll_at = $1 WHERE case_id = $2 AND step = $3 AND next_poll_at <= $4
             AND state IN ('accepted', 'processing', 'returned')",
        )
        .bind(next_poll_at)
        .bind(&step.case_id)
        .bind(&step.step)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Dead letters: steps whose delivery failed for good, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE state = 'failed' ORDER BY updated_at DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// Send a dead letter again: back to pending with fresh attempts, recorded with the operator.
    /// False when the step is not a dead letter, or its case was withdrawn (撤回: nothing is
    /// delivered after).
    pub async fn replay(&self, case_id: &str, step: &str, operator: &Clerk) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE steps SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $2,
             claimed_by = NULL, claim_until = NULL WHERE case_id = $3 AND step = $4 AND state = 'failed'
             AND NOT EXISTS (SELECT 1 FROM cases WHERE id = $5 AND withdrawn_at IS NOT NULL)",
        )
        .bind(now)
        .bind(now)
        .bind(case_id)
        .bind(step)
        .bind(case_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            let event = Event {
                step: Some(step),
                department: None,
                kind: EventKind::Replayed,
                state: Some(StepState::Pending),
                message: Some("运维人员已重新投递"),
            };
            insert_event(&mut tx, case_id, now, &event, Some(operator)).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Keep a callback whose reference no step has yet (the department answered the submission
    /// more slowly than it called back); the first one for a reference is kept.
    pub async fn hold_callback(
        &self,
        department: &str,
        reference: &str,
        report: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO early_callbacks (department, reference, report, received_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(department)
        .bind(reference)
        .bind(self.seal(
            &format!("early_callbacks.report:{department}:{reference}"),
            report.to_string(),
        ))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Take a held callback for a reference, if one arrived early.
    pub async fn take_callback(
        &self,
        department: &str,
        reference: &str,
    ) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query(
            "SELECT report FROM early_callbacks WHERE department = $1 AND reference = $2",
        )
        .bind(department)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("DELETE FROM early_callbacks WHERE department = $1 AND reference = $2")
            .bind(department)
            .bind(reference)
            .execute(&self.pool)
            .await?;
        let place = format!("early_callbacks.report:{department}:{reference}");
        Ok(serde_json::from_str(&self.unseal(&place, row.get("report"))?).ok())
    }
}
