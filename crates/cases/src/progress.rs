//! A step's new state recorded, and what follows from it: the licence an approval issues, the
//! steps waiting for it released (their input made from the form, the lookups and the outputs)
//! or blocked with the reason, the case's subscribers woken.

use crate::one_thing::Sources;
use crate::{CaseEvent, Orchestrator};
use gateway_base::model::StepState;
use gateway_base::time::now_ms;
use gateway_store::{StepChange, StepRecord};

impl Orchestrator {
    /// Record a step's change (with its event), then what follows from it.
    pub(crate) async fn record(
        &self,
        step: &StepRecord,
        change: StepChange<'_>,
    ) -> Result<(), gateway_store::StoreError> {
        let StepChange {
            state,
            reference,
            outputs,
            kind,
            ..
        } = change;
        let next_poll = now_ms() + self.poll_interval(&step.department);
        self.store.update_step(step, change, next_poll).await?;
        if reference.is_some() || step.reference.is_some() {
            // A supplement or withdrawal waiting for this step's reference may be due now.
            self.wake.notify_one();
        }
        if state == StepState::Approved {
            crate::licences::record_if_issued(&self.store, step, outputs).await;
        }
        tracing::info!(case = %step.case_id, step = %step.step, department = %step.department, state = state.as_str(), kind = kind.as_str(), "step updated");
        self.announce(step, state);
        if state.is_final() {
            self.advance(&step.case_id).await?;
        }
        Ok(())
    }

    /// Move a case's graph on: release waiting steps whose prerequisites are all approved (with
    /// their input made from the outputs), block those whose prerequisites failed. Repeats until
    /// nothing changes, since a block can block further steps.
    pub(crate) async fn advance(&self, case_id: &str) -> Result<(), gateway_store::StoreError> {
        let Some(case) = self.store.case(case_id).await? else {
            return Ok(());
        };
        let catalogue = self.catalogue();
        let Some(service) = catalogue.services.get(&case.service) else {
            return Ok(());
        };
        loop {
            let steps = self.store.steps(case_id).await?;
            let state_of = |id: &str| steps.iter().find(|s| s.step == id).map(|s| s.state);
            let mut changed = false;
            for step in steps.iter().filter(|s| s.state == StepState::Waiting) {
                let Some(def) = service.step(&step.step) else {
                    continue;
                };
                if let Some(failed) = def
                    .after
                    .iter()
                    .find(|d| state_of(d).is_some_and(|s| s.is_final() && s != StepState::Approved))
                {
                    let message = format!("前置事项「{failed}」未办结，本事项未启动");
                    if self.store.block_step(step, &message).await? {
                        self.announce(step, StepState::Blocked);
                        changed = true;
                    }
                } else if def
                    .after
                    .iter()
                    .all(|d| state_of(d) == Some(StepState::Approved))
                {
                    let outputs = steps
                        .iter()
                        .filter(|s| def.after.contains(&s.step))
                        .map(|s| (s.step.clone(), s.outputs.clone()))
                        .collect();
                    let sources = Sources {
                        form: Some(&case.form),
                        lookups: Some(&case.lookups),
                        outputs,
                    };
                    let input = def
                        .input
                        .as_ref()
                        .map_or_else(|| case.form.clone(), |m| sources.build_input(m));
                    if self.store.release_step(step, &input.to_string()).await? {
                        self.announce(step, StepState::Pending);
                        self.wake.notify_one();
                        changed = true;
                    }
                }
            }
            if !changed {
                return Ok(());
            }
        }
    }

    pub(crate) fn announce(&self, step: &StepRecord, state: StepState) {
        let event = CaseEvent {
            case_id: step.case_id.clone(),
            step: step.step.clone(),
            state,
        };
        // No subscriber is fine: the store is the record, this is only a wake-up.
        let _ = self.events.send(event);
    }
}
