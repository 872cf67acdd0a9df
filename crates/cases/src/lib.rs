//! The case domain: from one application to every department and back.
//!
//! An application is reviewed whole, stored durably before it is answered, and handed to each
//! department through its adapter as the service graph allows (并联审批); status comes back by
//! polling or callback and becomes one case with a per-department timeline. Promised time
//! limits are kept per step (红黄牌), and approved steps issue electronic licences.
//!
//! # Layout
//! - [`catalogue`]: matters and services with their schemas; form checks.
//! - [`one_thing`]: "one thing" services — the merged form, input mapping, cross-field rules.
//! - [`review`]: pre-review, every problem at once.
//! - [`intake`]: durable acceptance, idempotent.
//! - [`dispatcher`]: delivery of due steps, retried, paced ([`pacing`]: attempts, concurrency,
//!   circuit breaker, claims).
//! - [`poller`], [`callbacks`]: status coming back from departments.
//! - [`lookups`]: shared-data lookups at departments, each recorded.
//! - [`progress`]: a step's new state and what follows from it in the service graph.
//! - [`deadlines`]: promised limits in working days, lights, supervision counts.
//! - [`licences`]: electronic licences (电子证照) issued by approved steps.
//! - [`lifecycle`]: after delivery — 补正 (supplements to returned steps, the paused clock),
//!   撤回 (withdrawal), 容缺 (commitments), and the delivery of supplements and withdrawals.
//! - [`materials`]: application materials: the list per service, uploads into drafts and
//!   cases (content-typed, streamed, content-addressed), the materials part of pre-review and
//!   intake, retention.
//! - [`notifications`]: SMS to applicants and 催办 to departments' contacts through the
//!   channel's adapter: the outbox's sender, templates, quiet hours, opt-out, the light scanner.
//! - [`supervision`]: 电子监察: red-card events, escalation, statistics per department.
//! - [`evaluations`]: 好差评 — evaluations of decided cases, the rectifications (整改) bad ones
//!   open, statistics, reporting to the national system through its adapter.
//! - [`views`]: what the unified API shows (the catalogue, forms, cases, licences), the types
//!   the HTTP handlers answer with and the OpenAPI document is generated from.
//! - [`error`]: [`CaseError`], who is at fault and whether to retry.

#![warn(missing_docs, unreachable_pub)]

pub mod callbacks;
pub mod catalogue;
pub mod deadlines;
pub mod dispatcher;
pub mod error;
pub mod evaluations;
pub mod intake;
pub mod licences;
pub mod lifecycle;
pub mod lookups;
pub mod materials;
pub mod notifications;
pub mod one_thing;
pub mod pacing;
pub mod poller;
pub mod progress;
pub mod review;
pub mod supervision;
pub mod views;

pub use error::CaseError;
pub use intake::Applied;
pub use review::Review;

use crate::catalogue::Catalogue;
use crate::deadlines::Deadlines;
use crate::pacing::Delivery;
use arc_swap::ArcSwap;
use gateway_base::model::StepState;
use gateway_base::telemetry;
use gateway_base::time::now_ms;
use gateway_plugins::adapters::Adapters;
use gateway_plugins::host::contract;
use gateway_store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// A change on a case, for in-process subscribers (tests, streams).
#[derive(Debug, Clone)]
pub struct CaseEvent {
    /// Case id.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// New state.
    pub state: StepState,
}

/// The orchestrator: shared by the API, the dispatcher and the poller.
pub struct Orchestrator {
    store: Store,
    adapters: Arc<Adapters>,
    /// The catalogue; a config reload swaps it whole. A request takes it once and keeps it.
    catalogue: ArcSwap<Catalogue>,
    /// The calendar and the yellow rule; a config reload swaps them whole, like the catalogue.
    deadlines: ArcSwap<Deadlines>,
    /// Whether the calendar covers the years it should by today.
    calendar_watch: crate::deadlines::CalendarWatch,
    /// The URL departments call back to.
    public_url: String,
    /// How often each department's steps are polled, in ms; a reload replaces them.
    poll_intervals: ArcSwap<BTreeMap<String, i64>>,
    /// Wakes the dispatcher: new work is due.
    wake: Notify,
    delivery: Arc<Delivery>,
    /// Set at shutdown: no new deliveries or polls.
    stopping: AtomicBool,
    /// Case changes, for in-process subscribers (event streams).
    events: broadcast::Sender<CaseEvent>,
    /// The limits uploads run under (`[materials]`, `[server]`).
    materials: ArcSwap<crate::materials::MaterialSettings>,
    /// `[evaluations]` and the reporter's wake-up (`configure_evaluations`).
    evaluations: crate::evaluations::Evaluations,
    /// `[notifications]` and the departments' contacts (`configure_notifications`).
    notifications: ArcSwap<crate::notifications::Settings>,
}

impl Orchestrator {
    /// Wire the orchestrator.
    pub fn new(
        store: Store,
        adapters: Arc<Adapters>,
        catalogue: Arc<Catalogue>,
        deadlines: Arc<crate::deadlines::Deadlines>,
        public_url: String,
        poll_intervals: BTreeMap<String, i64>,
        delivery: Arc<Delivery>,
    ) -> Arc<Self> {
        Arc::new(Orchestrator {
            store,
            adapters,
            catalogue: ArcSwap::new(catalogue),
            deadlines: ArcSwap::new(deadlines),
            calendar_watch: Default::default(),
            public_url,
            poll_intervals: ArcSwap::from_pointee(poll_intervals),
            wake: Notify::new(),
            delivery,
            stopping: AtomicBool::new(false),
            events: broadcast::channel(1024).0,
            materials: Default::default(),
            evaluations: Default::default(),
            notifications: Default::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The departments' adapters.
    pub fn adapters(&self) -> &Arc<Adapters> {
        &self.adapters
    }

    /// The working-day calendar and the yellow rule as they are now: take them once per
    /// request, like the catalogue.
    pub fn deadlines(&self) -> Arc<Deadlines> {
        self.deadlines.load_full()
    }

    /// Whether the calendar covers the years it should: the readiness check, gauge and log.
    pub fn calendar_watch(&self) -> &crate::deadlines::CalendarWatch {
        &self.calendar_watch
    }

    /// Delivery pacing per department (a reload replaces it).
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Bring the gauges that describe the store up to date (called when metrics are scraped).
    pub async fn refresh_gauges(&self) -> Result<(), gateway_store::StoreError> {
        self.calendar_outlook();
        for (department, counts) in crate::deadlines::counts(self, now_ms()).await? {
            telemetry::lights(&department, "green", counts.green as usize);
            telemetry::lights(&department, "yellow", counts.yellow as usize);
            telemetry::lights(&department, "red", counts.red as usize);
        }
        Ok(())
    }

    /// The catalogue as it is now: take it once per request, so one request sees one view.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue.load_full()
    }

    /// Serve a new catalogue, calendar and poll intervals (a config reload). Requests in
    /// flight finish with the catalogue and calendar they took; cases already stored go on
    /// whatever the catalogue says, since deliveries and polls read their department from the
    /// store, and their deadlines follow the new calendar from the next read.
    pub fn reconfigure(
        &self,
        catalogue: Arc<Catalogue>,
        deadlines: Arc<Deadlines>,
        poll_intervals: BTreeMap<String, i64>,
    ) {
        self.catalogue.store(catalogue);
        self.deadlines.store(deadlines);
        self.poll_intervals.store(Arc::new(poll_intervals));
        // A new department's deliveries may be due already.
        self.wake.notify_one();
    }

    /// Look for due deliveries now (after a replay, say).
    pub fn wake_dispatcher(&self) {
        self.wake.notify_one();
    }

    /// Subscribe to case changes.
    pub fn subscribe(&self) -> broadcast::Receiver<CaseEvent> {
        self.events.subscribe()
    }

    /// Stop taking new deliveries and polls, and wait up to `grace` for those in flight. What
    /// does not finish keeps its claim, and is taken up again (same idempotency key) after restart.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        let finished = tokio::time::timeout(grace, self.delivery.idle())
            .await
            .is_ok();
        tracing::info!(
            finished,
            left = self.delivery.in_flight(),
            "deliveries stopped"
        );
        finished
    }
}

/// The one status of a case, from the states of its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Stored, nothing delivered yet.
    Received,
    /// At least one matter is with its department.
    InProgress,
    /// Every matter approved.
    Completed,
    /// A department asks for supplements (补正).
    Returned,
    /// A department refused.
    Rejected,
    /// A matter could not be delivered or failed.
    Failed,
    /// The applicant withdrew the case (撤回); every matter is finished.
    Withdrawn,
}

impl CaseStatus {
    /// The status of a case whose steps are in `states`.
    pub fn of(states: &[StepState]) -> CaseStatus {
        // A matter with the applicant (补正) is what the applicant must act on, first.
        if states.contains(&StepState::Returned) {
            CaseStatus::Returned
        } else if states.iter().any(|s| !s.is_final()) {
            if states.iter().all(|s| *s == StepState::Pending) {
                CaseStatus::Received
            } else {
                CaseStatus::InProgress
            }
        } else if states.iter().all(|s| *s == StepState::Approved) {
            CaseStatus::Completed
        } else if states.contains(&StepState::Withdrawn) {
            CaseStatus::Withdrawn
        } else if states.contains(&StepState::Rejected) {
            CaseStatus::Rejected
        } else {
            CaseStatus::Failed
        }
    }

    /// The text the API answers.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Received => "received",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Completed => "completed",
            CaseStatus::Returned => "returned",
            CaseStatus::Rejected => "rejected",
            CaseStatus::Failed => "failed",
            CaseStatus::Withdrawn => "withdrawn",
        }
    }
}

/// The gateway's state of a step as a department reports it.
fn state_of(state: contract::StepState) -> StepState {
    match state {
        contract::StepState::Accepted => StepState::Accepted,
        contract::StepState::Processing => StepState::Processing,
        contract::StepState::Approved => StepState::Approved,
        contract::StepState::Rejected => StepState::Rejected,
        contract::StepState::Returned => StepState::Returned,
        contract::StepState::Withdrawn => StepState::Withdrawn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_status_aggregates_steps() {
        use StepState::*;
        let of = |states: &[StepState]| CaseStatus::of(states).as_str();
        assert_eq!(of(&[Pending, Pending]), "received");
        assert_eq!(of(&[Approved, Accepted]), "in_progress");
        assert_eq!(of(&[Approved, Approved]), "completed");
        assert_eq!(of(&[Approved, Rejected, Blocked]), "rejected");
        assert_eq!(of(&[Approved, Returned]), "returned");
        assert_eq!(of(&[Accepted, Returned]), "returned");
        assert_eq!(of(&[Approved, Supplemented]), "in_progress");
        assert_eq!(of(&[Approved, Failed]), "failed");
        assert_eq!(of(&[Withdrawn, Approved, Withdrawn]), "withdrawn");
    }
}
