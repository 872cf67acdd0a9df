//! Reporting evaluations to the national 好差评 system, through the adapter of the department
//! `[evaluations] reporting` names, like any delivery: the report is written to an outbox in
//! the evaluation's own transaction, and this loop sends it — claimed first, so with several
//! nodes one sends it; the evaluation's id is the idempotency key on every attempt (the
//! national system answers a repeat with its first answer, which covers a crash between
//! sending and recording); retried with back-off while the system fails, `failed` after
//! `max_report_attempts` or when it refuses the report outright. The adapter's `submit` takes
//! it as matter [`super::REPORT_MATTER`]; its receipt's reference is the national system's id.

use crate::Orchestrator;
use gateway_base::model::Fault;
use gateway_base::redact::redact;
use gateway_base::time::now_ms;
use gateway_plugins::host::CallError;
use gateway_plugins::host::contract::{AdapterError, StepState, Submission};
use gateway_store::evaluations::ReportRecord;
use std::sync::Arc;
use std::time::Duration;

/// How often due reports are looked for when nothing wakes the loop (retries come due).
const LOOK_EVERY: Duration = Duration::from_millis(250);

impl Orchestrator {
    /// Send due evaluation reports until `stopped` turns true. Takes back this node's claims
    /// first (a restarted node resumes at once).
    pub async fn run_evaluation_reports(
        self: Arc<Self>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        if let Err(e) = self
            .store()
            .release_report_claims(&self.delivery().node)
            .await
        {
            tracing::error!(error = %e, "releasing this node's evaluation report claims failed");
        }
        loop {
            if *stopped.borrow() {
                return;
            }
            if self.evaluation_settings().reporting.is_some() {
                match self.store().due_reports(32).await {
                    Ok(due) => {
                        for report in due {
                            if *stopped.borrow() {
                                return;
                            }
                            self.send_report(&report).await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "reading due evaluation reports failed"),
                }
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = self.evaluations.wake.notified() => {}
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    }

    /// One attempt at one report, claimed first; its outcome recorded.
    async fn send_report(&self, report: &ReportRecord) {
        let store = self.store();
        let node = &self.delivery().node;
        let until = now_ms() + self.delivery().claim_ms;
        match store.claim_report(&report.evaluation_id, node, until).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "claiming an evaluation report failed");
                return;
            }
        }
        let Some(adapter) = self.adapters().get(&report.department) else {
            tracing::error!(department = %report.department, "no adapter loaded for evaluation reports; they wait");
            let _ = store
                .postpone_report(&report.evaluation_id, now_ms() + 5_000)
                .await;
            return;
        };
        let submission = Submission {
            case_id: report.case_id.clone(),
            matter: super::REPORT_MATTER.to_string(),
            idempotency_key: report.evaluation_id.clone(),
            payload: report.payload.clone(),
            callback_url: format!("{}/callbacks/{}", self.public_url, report.department),
            materials: Vec::new(),
        };
        let call = adapter.submit(submission);
        let outcome =
            gateway_store::audit::for_delivery(store, &report.case_id, super::REPORT_MATTER, call)
                .await;
        let max = i64::from(self.evaluation_settings().max_report_attempts);
        let attempt = report.attempts + 1;
        let (state, reference, message, next) = match outcome {
            Err(CallError::Busy(_) | CallError::MemoryBudget(_)) => {
                let _ = store
                    .postpone_report(&report.evaluation_id, now_ms() + 500)
                    .await;
                return;
            }
            Ok(receipt) if receipt.state == StepState::Rejected => (
                "failed",
                None,
                Some(redact(receipt.message.as_deref().unwrap_or("refused"))),
                now_ms(),
            ),
            Ok(receipt) => ("reported", Some(receipt.reference), None, now_ms()),
            Err(CallError::Adapter(AdapterError::Rejected(r))) => (
                "failed",
                None,
                Some(redact(&format!("{}: {}", r.code, r.message))),
                now_ms(),
            ),
            Err(e) if e.fault() == Fault::Caller || attempt >= max => (
                "failed",
                None,
                Some(redact(&format!("gave up after {attempt} attempts: {e}"))),
                now_ms(),
            ),
            Err(e) => {
                tracing::warn!(evaluation = %report.evaluation_id, attempt, error = %redact(&e.to_string()), "evaluation report will be retried");
                (
                    "pending",
                    None,
                    Some(redact(&e.to_string())),
                    now_ms() + crate::pacing::backoff_ms(report.attempts),
                )
            }
        };
        if state == "failed" {
            tracing::error!(evaluation = %report.evaluation_id, message = ?message, "evaluation report failed for good");
        }
        if let Err(e) = store
            .report_attempted(
                &report.evaluation_id,
                state,
                reference.as_deref(),
                message.as_deref(),
                next,
            )
            .await
        {
            tracing::error!(error = %e, "recording an evaluation report's outcome failed");
        }
    }
}
