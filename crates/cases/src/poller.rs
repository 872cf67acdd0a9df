//! The poller: asks departments where their steps stand, each step on its department's
//! interval; moving the next poll time is the claim, so with several nodes one asks. Returned
//! steps (补正) are asked too: their department may decide on its own while the applicant has
//! them (a supplement that never came, 逾期未补正), and not every department calls back.

use crate::{Orchestrator, state_of};
use gateway_base::model::{EventKind, StepState};
use gateway_base::time::now_ms;
use gateway_plugins::host::contract;
use gateway_store::StepChange;
use gateway_store::StepRecord;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Orchestrator {
    pub(crate) fn poll_interval(&self, department: &str) -> i64 {
        self.poll_intervals
            .load()
            .get(department)
            .copied()
            .unwrap_or(2_000)
    }

    /// Poll the status of steps at their departments until the process ends.
    pub async fn run_poller(self: Arc<Self>) {
        let tick = self
            .poll_intervals
            .load()
            .values()
            .copied()
            .min()
            .unwrap_or(1_000)
            .clamp(50, 1_000);
        let mut interval = tokio::time::interval(Duration::from_millis(tick as u64));
        while !self.stopping.load(Ordering::SeqCst) {
            interval.tick().await;
            let due = match self.store.due_polls(64).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "poller cannot read the store");
                    continue;
                }
            };
            let polls = due.into_iter().map(|step| {
                let this = self.clone();
                let trace = gateway_base::trace::TraceContext::new_root();
                let span = tracing::info_span!("poll", case = %step.case_id, step = %step.step, trace_id = %trace.trace_id_hex());
                gateway_base::trace::adopt(&span, &trace);
                async move {
                    use tracing::Instrument;
                    let audited = gateway_store::audit::for_step(&step.case_id, &step.step, this.poll(&step));
                    gateway_base::trace::scope(trace, audited)
                        .instrument(span)
                        .await
                }
            });
            futures::future::join_all(polls).await;
        }
    }

    pub(crate) async fn poll(&self, step: &StepRecord) {
        let (Some(adapter), Some(reference)) = (
            self.adapters.get(&step.department),
            step.reference.as_deref(),
        ) else {
            return;
        };
        let next_poll = now_ms() + self.poll_interval(&step.department);
        // Moving the next poll time is the claim: another node that read the same due step
        // finds it no longer due.
        if !self
            .store
            .claim_poll(step, next_poll)
            .await
            .unwrap_or(false)
        {
            return;
        }
        let _running = self.delivery.track();
        let result = match adapter.status(&step.matter, reference).await {
            Ok(report) if step.state == StepState::Returned => {
                self.apply_report_of_returned(step, report, next_poll).await
            }
            Ok(report) => self.apply_report(step, report, EventKind::Status).await,
            Err(e) => {
                tracing::debug!(case = %step.case_id, department = %step.department, error = %e, "status poll failed; will poll again");
                self.store.postpone_poll(step, next_poll).await
            }
        };
        if let Err(e) = result {
            tracing::error!(case = %step.case_id, error = %e, "recording a status failed");
        }
    }

    /// A poll's report of a step that was returned when read. The applicant may have
    /// supplemented it meanwhile (the step `supplemented`, its supplement on the way): a report
    /// taken before the department had the supplement must not undo that, so it is recorded
    /// only while the step is still returned; then the next poll asks again.
    async fn apply_report_of_returned(
        &self,
        step: &StepRecord,
        report: contract::StatusReport,
        next_poll: i64,
    ) -> Result<(), gateway_store::StoreError> {
        // Still with the applicant, nothing new: the usual answer, which needs no re-read.
        if state_of(report.state) == StepState::Returned && report.outputs == "{}" {
            return self.store.postpone_poll(step, next_poll).await;
        }
        let current = self
            .store
            .steps(&step.case_id)
            .await?
            .into_iter()
            .find(|s| s.step == step.step);
        match current {
            Some(current) if current.state == StepState::Returned => {
                self.apply_report(&current, report, EventKind::Status).await
            }
            _ => self.store.postpone_poll(step, next_poll).await,
        }
    }

    pub(crate) async fn apply_report(
        &self,
        step: &StepRecord,
        report: contract::StatusReport,
        kind: EventKind,
    ) -> Result<(), gateway_store::StoreError> {
        let state = state_of(report.state);
        if state == step.state && report.outputs == "{}" {
            let next_poll = now_ms() + self.poll_interval(&step.department);
            return self.store.postpone_poll(step, next_poll).await;
        }
        let requested = report
            .requested
            .as_ref()
            .map(crate::lifecycle::requested_json);
        self.record(
            step,
            StepChange::new(state, kind)
                .reference(Some(&report.reference))
                .outputs(Some(&report.outputs))
                .message(report.message.as_deref())
                .requested(requested.as_deref()),
        )
        .await
    }
}
