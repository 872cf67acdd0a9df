//! Departments calling back: the adapter authenticates and reads the call, and the decision is
//! recorded; a decision that arrives before the submission's answer is held until it names
//! the reference. A notification channel's delivery receipt (`approved`: delivered,
//! `rejected`: undeliverable) is recorded on the notification its reference names
//! ([`crate::notifications`]), held the same way when it comes before the provider's answer;
//! the applicant's reply to a message (退订) opts the number out
//! ([`crate::notifications::opt_out`]).

use crate::{CaseError, Orchestrator, state_of};
use gateway_base::model::{EventKind, StepState};
use gateway_plugins::host::contract;
use gateway_store::StepChange;
use serde_json::json;

impl Orchestrator {
    /// A department called back: let its adapter read the call, then record the status.
    pub async fn callback(
        &self,
        department: &str,
        request: contract::CallbackRequest,
    ) -> Result<(), CaseError> {
        let adapter = self
            .adapters
            .get(department)
            .ok_or_else(|| CaseError::NotFound {
                what: "department",
                id: department.into(),
            })?;
        let report = adapter
            .on_callback(request)
            .await
            .map_err(|e| CaseError::from_call(department, e))?;
        // The applicant's reply to a message (退订), forwarded by the notification channel.
        if self.is_notification_channel(department)
            && let Some(reply) = crate::notifications::opt_out::reply_of(&report)
        {
            return self
                .channel_reply(department, &report.reference, reply)
                .await;
        }
        let Some(step) = self
            .store
            .step_by_reference(department, &report.reference)
            .await?
        else {
            // A notification channel's delivery receipt names a message, not a step.
            let state = state_of(report.state);
            if matches!(state, StepState::Approved | StepState::Rejected)
                && self
                    .notification_receipt(
                        &report.reference,
                        state == StepState::Approved,
                        report.message.as_deref(),
                    )
                    .await?
            {
                return Ok(());
            }
            // The department decided before its answer to our submission arrived: keep the
            // decision until the submission's answer names the reference.
            let held = json!({
                "state": state_of(report.state).as_str(),
                "message": report.message,
                "outputs": report.outputs,
            });
            self.store
                .hold_callback(department, &report.reference, &held)
                .await?;
            tracing::info!(%department, reference = %report.reference, "callback arrived before the submission's answer; held");
            return Ok(());
        };
        if step.state.is_final() {
            // Departments repeat callbacks; the first decision stands.
            return Ok(());
        }
        self.apply_report(&step, report, EventKind::Callback)
            .await?;
        Ok(())
    }

    /// Apply a callback that arrived before the submission's answer, now that the step has its
    /// reference.
    pub(crate) async fn apply_held_callback(
        &self,
        department: &str,
        reference: &str,
    ) -> Result<(), gateway_store::StoreError> {
        let Some(held) = self.store.take_callback(department, reference).await? else {
            return Ok(());
        };
        let Some(step) = self.store.step_by_reference(department, reference).await? else {
            return Ok(());
        };
        if step.state.is_final() {
            return Ok(());
        }
        let Ok(state) = held["state"]
            .as_str()
            .unwrap_or_default()
            .parse::<StepState>()
        else {
            tracing::error!(%department, %reference, "a held callback names no step state; left as it is");
            return Ok(());
        };
        let outputs = held["outputs"].as_str().unwrap_or("{}");
        self.record(
            &step,
            StepChange::new(state, EventKind::Callback)
                .reference(Some(reference))
                .outputs(Some(outputs))
                .message(held["message"].as_str()),
        )
        .await
    }
}
