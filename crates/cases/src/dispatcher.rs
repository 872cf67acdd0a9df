//! The dispatcher: delivers due steps from the store, each claimed first (with several nodes,
//! exactly one delivers it), paced per department, retried with backoff and jitter, with the
//! same idempotency key on every attempt.

use crate::pacing::{Admission, Circuit, Ticket};
use crate::{Orchestrator, state_of};
use gateway_base::model::{EventKind, Fault, StepState};
use gateway_base::telemetry;
use gateway_base::time::now_ms;
use gateway_plugins::host::CallError;
use gateway_plugins::host::contract::{AdapterError, Material, Submission};
use gateway_store::{StepChange, StepRecord};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Orchestrator {
    /// Deliver due steps until shutdown. Woken at once by new applications. Each step is claimed
    /// in the store first, so with several nodes exactly one delivers it.
    pub async fn run_dispatcher(self: Arc<Self>) {
        while !self.stopping.load(Ordering::SeqCst) {
            match self.store.due_deliveries(64).await {
                Ok(due) => {
                    for step in due {
                        self.dispatch(step).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "dispatcher cannot read the store"),
            }
            // Supplements and withdrawals to steps at their departments (crate::lifecycle).
            self.dispatch_actions().await;
            // Retries come due with time; new work and finished deliveries come with a
            // notification.
            let _ = tokio::time::timeout(Duration::from_millis(250), self.wake.notified()).await;
        }
    }

    /// Start delivering one due step, if its department takes one now. The slot (and, after a
    /// cool-down, the probe) is taken before the claim: a step this node cannot start yet stays
    /// unclaimed, for another node or the next pass.
    async fn dispatch(self: &Arc<Self>, step: StepRecord) {
        let Some(pacing) = self.delivery.pacing(&step.department) else {
            tracing::error!(department = %step.department, "no such department; delivery waits");
            return;
        };
        let ticket = match pacing.admit(now_ms()) {
            Admission::Go(ticket) => ticket,
            Admission::Wait => return,
            Admission::Postpone(until) => {
                // The department is being left alone: push the step back to the end of the
                // cool-down without spending an attempt (claimed first: another node may be
                // delivering it).
                if self.claim(&step).await {
                    let _ = self.store.postpone_delivery(&step, until).await;
                }
                return;
            }
        };
        if !self.claim(&step).await {
            return;
        }
        let this = self.clone();
        let running = self.delivery.track();
        // Each delivery is a trace of its own: its department calls share it.
        let trace = gateway_base::trace::TraceContext::new_root();
        let span = tracing::info_span!("delivery", case = %step.case_id, step = %step.step, trace_id = %trace.trace_id_hex());
        gateway_base::trace::adopt(&span, &trace);
        tokio::spawn(async move {
            use tracing::Instrument;
            let delivery = this.deliver(&step, ticket);
            let audited = gateway_store::audit::for_delivery(
                &this.store,
                &step.case_id,
                &step.step,
                delivery,
            );
            // The applicant's names in the input are masked in what it logs.
            // (Boxed: a delivery's future is large, and this wraps it once more.)
            let audited = Box::pin(audited);
            let masked = gateway_base::redact::scope(async {
                if let Ok(input) = serde_json::from_str::<Value>(&step.input) {
                    gateway_base::redact::note_names(&input);
                }
                audited.await
            });
            gateway_base::trace::scope(trace, masked)
                .instrument(span)
                .await;
            drop(running);
            this.wake.notify_one();
        });
    }

    /// The materials a step's matter lists, among its case's (one set per case, by code): what
    /// the adapter is handed with the submission. A licence a step of the case has not issued
    /// yet is not among them (`Store::case_materials`); the step waits for that step anyway.
    async fn step_materials(
        &self,
        step: &StepRecord,
    ) -> Result<Vec<Material>, gateway_store::StoreError> {
        let catalogue = self.catalogue();
        let Some(matter) = catalogue
            .matters
            .get(&step.matter)
            .filter(|m| !m.materials.is_empty())
        else {
            return Ok(Vec::new());
        };
        let listed = |code: &str| matter.materials.iter().any(|m| m.code == code);
        Ok(self
            .store
            .case_materials(&step.case_id)
            .await?
            .into_iter()
            .filter(|m| listed(&m.code))
            .map(Material::from)
            .collect())
    }

    /// Claim a step for this node; false when another node holds it or it is no longer due.
    async fn claim(&self, step: &StepRecord) -> bool {
        let until = now_ms() + self.delivery.claim_ms;
        match self
            .store
            .claim_delivery(step, &self.delivery.node, until)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(error = %e, "claiming a delivery failed");
                false
            }
        }
    }

    /// Deliver a claimed step with the slot its department gave it; the ticket learns whether
    /// the department answered.
    pub(crate) async fn deliver(&self, step: &StepRecord, ticket: Ticket) {
        let Some(adapter) = self.adapters.get(&step.department) else {
            tracing::error!(department = %step.department, "no adapter loaded; delivery waits");
            let _ = self
                .store
                .retry_later(step, "部门接口程序未加载，稍后重试", now_ms() + 5_000)
                .await;
            return;
        };
        let materials = match self.step_materials(step).await {
            Ok(materials) => materials,
            Err(e) => {
                // The store failed: the gateway's fault, not an attempt at the department.
                tracing::error!(case = %step.case_id, error = %e, "reading a step's materials failed");
                let _ = self.store.postpone_delivery(step, now_ms() + 1000).await;
                return;
            }
        };
        let submission = Submission {
            case_id: step.case_id.clone(),
            matter: step.matter.clone(),
            idempotency_key: step.idempotency_key.clone(),
            payload: step.input.clone(),
            callback_url: format!("{}/callbacks/{}", self.public_url, step.department),
            materials,
        };
        let outcome = adapter.submit(submission).await;
        if let Err(CallError::Busy(_) | CallError::MemoryBudget(_)) = outcome {
            // Every instance is in use on this node, or the node's memory for instances is:
            // not the department's fault, nor an attempt.
            let _ = self.store.postpone_delivery(step, now_ms() + 500).await;
            return;
        }
        let department = step.department.as_str();
        let pacing = ticket.pacing().clone();
        match &outcome {
            // Only the department's own faults count (`CallError::fault`): an adapter that runs
            // out its time limit, or claims a timeout its department never had, does not open
            // its department's circuit.
            Err(error) if error.fault() == Fault::Department => {
                ticket.failed(now_ms());
                telemetry::circuit(
                    department,
                    matches!(pacing.circuit(now_ms()), Circuit::Open(_)),
                );
            }
            _ => {
                ticket.succeeded();
                telemetry::circuit(department, false);
            }
        }
        let outcome_label = match &outcome {
            Ok(_) => "accepted",
            Err(CallError::Adapter(AdapterError::Rejected(_))) => "rejected",
            Err(CallError::Adapter(AdapterError::InvalidInput(_))) => "failed",
            Err(_) if step.attempts + 1 >= pacing.max_attempts => "dead_letter",
            Err(_) => "retry",
        };
        telemetry::delivery(department, outcome_label);
        let result = match outcome {
            Ok(receipt) => {
                let state = state_of(receipt.state);
                let requested = receipt
                    .requested
                    .as_ref()
                    .map(crate::lifecycle::requested_json);
                let recorded = self
                    .record(
                        step,
                        StepChange::new(state, EventKind::Submitted)
                            .reference(Some(&receipt.reference))
                            .outputs(Some(&receipt.outputs))
                            .message(receipt.message.as_deref())
                            .requested(requested.as_deref()),
                    )
                    .await;
                match recorded {
                    Ok(()) => {
                        self.apply_held_callback(&step.department, &receipt.reference)
                            .await
                    }
                    failed => failed,
                }
            }
            Err(CallError::Adapter(AdapterError::Rejected(r))) => {
                let message = format!("{}: {}", r.code, gateway_base::redact::redact(&r.message));
                self.record(
                    step,
                    StepChange::new(StepState::Rejected, EventKind::Submitted)
                        .message(Some(&message)),
                )
                .await
            }
            Err(CallError::Adapter(AdapterError::InvalidInput(fields))) => {
                let message = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.record(
                    step,
                    StepChange::new(StepState::Failed, EventKind::DeliveryFailed)
                        .message(Some(&gateway_base::redact::redact(&message))),
                )
                .await
            }
            Err(error) => {
                // The detail for the log; the case (timeline, matter) gets plain Chinese.
                let detail = gateway_base::redact::redact(&error.to_string());
                let message = crate::error::plain_message(&error);
                if step.attempts + 1 >= pacing.max_attempts {
                    tracing::warn!(case = %step.case_id, department = %step.department, attempts = step.attempts + 1, error = %detail, "delivery given up");
                    let message = crate::error::gave_up_message(&error, step.attempts + 1);
                    self.record(
                        step,
                        StepChange::new(StepState::Failed, EventKind::DeliveryFailed)
                            .message(Some(&message)),
                    )
                    .await
                } else if self.withdrawn_instead_of_retry(step).await {
                    // The applicant withdrew the case while this attempt ran: not tried again.
                    Ok(())
                } else {
                    tracing::warn!(case = %step.case_id, department = %step.department, attempt = step.attempts + 1, error = %detail, "delivery will be retried");
                    let next = now_ms() + crate::pacing::backoff_ms(step.attempts);
                    let retry = self.store.retry_later(step, message, next).await;
                    self.announce(step, StepState::Pending);
                    retry
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(case = %step.case_id, error = %e, "recording a delivery outcome failed");
        }
    }
}
