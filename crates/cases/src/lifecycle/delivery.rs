//! Delivery of the step actions (supplements, withdrawals) from the store's outbox, in the
//! dispatcher's loop: each claimed first (one node sends it), handed to the adapter's
//! `supplement` or `withdraw` with the action's idempotency key on every attempt, retried with
//! back-off up to the department's `max_attempts`. The receipt's state becomes the step's
//! (recorded before the action is marked delivered: a crash between sends it again under the
//! same key, and the department answers the same).

use crate::{Orchestrator, state_of};
use gateway_base::model::{EventKind, StepState};
use gateway_base::time::now_ms;
use gateway_plugins::host::CallError;
use gateway_plugins::host::contract::{AdapterError, Material, Supplement, Withdrawal};
use gateway_store::StepChange;
use gateway_store::StepRecord;
use gateway_store::actions::{ActionKind, ActionRecord};
use std::sync::Arc;

impl Orchestrator {
    /// Start delivering the due actions this node can claim.
    pub(crate) async fn dispatch_actions(self: &Arc<Self>) {
        let due = match self.store.due_actions(32).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "dispatcher cannot read the actions");
                return;
            }
        };
        for action in due {
            let until = now_ms() + self.delivery.claim_ms;
            match self
                .store
                .claim_action(&action.id, &self.delivery.node, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "claiming an action failed");
                    continue;
                }
            }
            let this = self.clone();
            let running = self.delivery.track();
            tokio::spawn(async move {
                let masked = gateway_base::redact::scope(this.deliver_action(&action));
                masked.await;
                drop(running);
                this.wake.notify_one();
            });
        }
    }

    async fn deliver_action(&self, action: &ActionRecord) {
        let step = match self.store.steps(&action.case_id).await {
            Ok(steps) => steps.into_iter().find(|s| s.step == action.step),
            Err(e) => {
                tracing::error!(case = %action.case_id, error = %e, "reading an action's step failed");
                let _ = self
                    .store
                    .postpone_action(&action.id, now_ms() + 1000)
                    .await;
                return;
            }
        };
        let Some(step) = step else {
            return;
        };
        let Some(adapter) = self.adapters.get(&step.department) else {
            let _ = self
                .store
                .postpone_action(&action.id, now_ms() + 5000)
                .await;
            return;
        };
        let outcome = match action.kind {
            ActionKind::Supplement => {
                let materials = match self.action_materials(action).await {
                    Ok(materials) => materials,
                    Err(e) => {
                        tracing::error!(case = %action.case_id, error = %e, "reading a supplement's materials failed");
                        let _ = self
                            .store
                            .postpone_action(&action.id, now_ms() + 1000)
                            .await;
                        return;
                    }
                };
                adapter
                    .supplement(Supplement {
                        case_id: action.case_id.clone(),
                        matter: step.matter.clone(),
                        reference: step.reference.clone().unwrap_or_default(),
                        idempotency_key: action.idempotency_key.clone(),
                        payload: action.payload.clone(),
                        materials,
                    })
                    .await
            }
            ActionKind::Withdrawal => {
                adapter
                    .withdraw(Withdrawal {
                        case_id: action.case_id.clone(),
                        matter: step.matter.clone(),
                        reference: step.reference.clone(),
                        idempotency_key: action.idempotency_key.clone(),
                        reason: action.payload.clone(),
                    })
                    .await
            }
        };
        let result = match outcome {
            Err(CallError::Busy(_) | CallError::MemoryBudget(_)) => {
                self.store.postpone_action(&action.id, now_ms() + 500).await
            }
            Ok(receipt) => {
                let kind = match action.kind {
                    ActionKind::Supplement if action.is_commitment() => EventKind::MaterialSupplied,
                    ActionKind::Supplement => EventKind::SupplementDelivered,
                    ActionKind::Withdrawal => EventKind::WithdrawalDelivered,
                };
                let mut state = state_of(receipt.state);
                // A promised material (容缺) handed to a step the department is working on does
                // not move the step back: only a decision or a return changes its state.
                if kind == EventKind::MaterialSupplied
                    && !(state.is_final() || state == StepState::Returned)
                {
                    state = step.state;
                }
                // The department may have called back while the call ran (a decision, a new
                // return): a receipt that is not a decision does not undo what was recorded.
                let step = match self.store.steps(&action.case_id).await {
                    Ok(steps) => steps
                        .into_iter()
                        .find(|s| s.step == action.step)
                        .unwrap_or(step),
                    Err(_) => step,
                };
                let moved_on = step.state.is_final()
                    || (action.kind == ActionKind::Supplement
                        && !action.is_commitment()
                        && step.state != StepState::Supplemented);
                if moved_on && !state.is_final() {
                    state = step.state;
                }
                let requested = receipt.requested.as_ref().map(super::requested_json);
                let message = receipt.message.as_deref().map(gateway_base::redact::redact);
                let recorded = self
                    .record(
                        &step,
                        StepChange::new(state, kind)
                            .reference(Some(&receipt.reference))
                            .outputs(Some(&receipt.outputs))
                            .message(message.as_deref())
                            .requested(requested.as_deref()),
                    )
                    .await;
                match recorded {
                    Ok(()) => self.store.action_delivered(action).await,
                    failed => failed,
                }
            }
            Err(CallError::Adapter(AdapterError::Rejected(r)))
                if action.kind == ActionKind::Supplement && !action.is_commitment() =>
            {
                let message = format!("{}: {}", r.code, gateway_base::redact::redact(&r.message));
                self.finish_failed(action, &step, Some(StepState::Rejected), &message)
                    .await
            }
            Err(
                error @ (CallError::Adapter(
                    AdapterError::Rejected(_) | AdapterError::InvalidInput(_),
                )
                | CallError::Unsupported { .. }),
            ) => {
                let detail = gateway_base::redact::redact(&error.to_string());
                tracing::warn!(case = %step.case_id, department = %step.department, error = %detail, "a supplement or withdrawal was refused");
                let message = match &error {
                    // The department's own words about the fields, as the adapter gave them.
                    CallError::Adapter(AdapterError::InvalidInput(fields)) => {
                        gateway_base::redact::redact(
                            &fields
                                .iter()
                                .map(|f| format!("{}: {}", f.field, f.message))
                                .collect::<Vec<_>>()
                                .join("; "),
                        )
                    }
                    other => crate::error::plain_message(other).to_string(),
                };
                let failed = takes_step(action).then_some(StepState::Failed);
                self.finish_failed(action, &step, failed, &message).await
            }
            Err(error) => {
                let detail = gateway_base::redact::redact(&error.to_string());
                tracing::warn!(case = %step.case_id, department = %step.department, attempt = action.attempts + 1, error = %detail, "a supplement or withdrawal failed");
                let message = crate::error::plain_message(&error).to_string();
                let max = self
                    .delivery
                    .pacing(&step.department)
                    .map_or(5, |p| p.max_attempts);
                if action.attempts + 1 >= max {
                    let message = crate::error::gave_up_message(&error, action.attempts + 1);
                    let failed = takes_step(action).then_some(StepState::Failed);
                    self.finish_failed(action, &step, failed, &message).await
                } else {
                    let next = now_ms() + crate::pacing::backoff_ms(action.attempts);
                    self.store
                        .action_attempt_failed(action, &step.department, &message, Some(next))
                        .await
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(case = %action.case_id, error = %e, "recording an action's outcome failed");
        }
    }

    /// An action that will not be delivered: failed for good, with its event; an applicant's
    /// supplement's step takes `step_state` (the department refused it, or it could not be delivered).
    async fn finish_failed(
        &self,
        action: &ActionRecord,
        step: &StepRecord,
        step_state: Option<StepState>,
        message: &str,
    ) -> Result<(), gateway_store::StoreError> {
        tracing::warn!(case = %action.case_id, step = %action.step, kind = action.kind.as_str(), error = %message, "action failed");
        self.store
            .action_attempt_failed(action, &step.department, message, None)
            .await?;
        if let Some(state) = step_state {
            self.record(
                step,
                StepChange::new(state, EventKind::DeliveryFailed).message(Some(message)),
            )
            .await?;
        }
        Ok(())
    }

    /// The materials a supplement hands over: the case's files of the action's codes.
    async fn action_materials(
        &self,
        action: &ActionRecord,
    ) -> Result<Vec<Material>, gateway_store::StoreError> {
        Ok(self
            .store
            .case_materials(&action.case_id)
            .await?
            .into_iter()
            .filter(|m| action.materials.contains(&m.code))
            .map(Material::from)
            .collect())
    }
}

/// Whether the action's failure is its step's: an applicant's supplement is the step's next
/// move (undelivered, the step cannot go on); a withdrawal or a promised material is not (the
/// step stays as its department has it, the failure on its timeline).
fn takes_step(action: &ActionRecord) -> bool {
    action.kind == ActionKind::Supplement && !action.is_commitment()
}
