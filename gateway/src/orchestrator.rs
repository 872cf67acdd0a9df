//! From one application to every department: pre-review, durable acceptance, delivery, status.
//!
//! An application is reviewed whole (schema, identifier checks, and each adapter's own
//! `validate`), then the case and one step per matter are committed before the API answers.
//! Delivery runs from the store, not from memory: the dispatcher picks due steps, so a step
//! survives a crash between acceptance and delivery, and the same idempotency key is sent on
//! every attempt.

use crate::api::error::ApiError;
use crate::catalogue::{Catalogue, FieldProblem, Service, merge_problems};
use crate::delivery::{Circuit, Delivery};
use crate::services::{Context, check_rules, problem_on_form};
use arc_swap::ArcSwap;
use gateway_base::config::Source;
use gateway_base::model::StepState;
use gateway_base::telemetry;
use gateway_base::time::now_ms;
use gateway_plugins::adapters::Adapters;
use gateway_plugins::host::CallError;
use gateway_plugins::host::contract::{self, AdapterError, Submission};
use gateway_store::{Admission, NewStep, StepRecord, Store};
use serde_json::{Value, json};
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

/// The outcome of a pre-review.
#[derive(Debug)]
pub struct Review {
    /// Every problem found, deduplicated.
    pub problems: Vec<FieldProblem>,
    /// Lookup answers by lookup id.
    pub lookups: Value,
}

struct LookupResults {
    answers: Value,
    problems: Vec<FieldProblem>,
}

/// An accepted application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The case id.
    pub case_id: String,
    /// True when this was a repeat of an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
}

/// The orchestrator: shared by the API, the dispatcher and the poller.
pub struct Orchestrator {
    pub(crate) store: Store,
    pub(crate) adapters: Arc<Adapters>,
    /// The catalogue; a config reload swaps it whole. A request takes it once and keeps it.
    catalogue: ArcSwap<Catalogue>,
    pub(crate) deadlines: Arc<crate::deadlines::Deadlines>,
    public_url: String,
    poll_intervals: ArcSwap<BTreeMap<String, i64>>,
    wake: Notify,
    pub(crate) delivery: Arc<Delivery>,
    stopping: AtomicBool,
    events: broadcast::Sender<CaseEvent>,
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
            deadlines,
            public_url,
            poll_intervals: ArcSwap::from_pointee(poll_intervals),
            wake: Notify::new(),
            delivery,
            stopping: AtomicBool::new(false),
            events: broadcast::channel(1024).0,
        })
    }

    /// Bring the gauges that describe the store up to date (called when metrics are scraped).
    pub async fn refresh_gauges(&self) -> Result<(), gateway_store::StoreError> {
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

    /// Serve a new catalogue and poll intervals (a config reload). Requests in flight finish
    /// with the catalogue they took; cases already stored go on whatever the catalogue says,
    /// since deliveries and polls read their department from the store.
    pub fn reconfigure(&self, catalogue: Arc<Catalogue>, poll_intervals: BTreeMap<String, i64>) {
        self.catalogue.store(catalogue);
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

    /// Every problem with an application for a service, gathered at once (一次性告知): the
    /// form's schema and identifier checks, the service's lookups (a certificate that does not
    /// exist), its cross-field rules, and every involved department's own `validate`, all
    /// departments asked in parallel. Also returns the lookup answers, which fill matter inputs.
    pub async fn review(&self, service_code: &str, form: &Value) -> Result<Review, ApiError> {
        self.review_in(&self.catalogue(), service_code, form).await
    }

    async fn review_in(
        &self,
        catalogue: &Catalogue,
        service_code: &str,
        form: &Value,
    ) -> Result<Review, ApiError> {
        let service = catalogue
            .services
            .get(service_code)
            .ok_or_else(|| ApiError::NotFound {
                what: "service",
                id: service_code.into(),
            })?;
        if !form.is_object() {
            let problem = FieldProblem::new("", "type", "申请表应为JSON对象");
            return Ok(Review {
                problems: vec![problem],
                lookups: json!({}),
            });
        }
        let form_problems = catalogue.check_form(service, form);
        let lookups = self.run_lookups(service, form, &form_problems).await?;
        let ctx = Context {
            form: Some(form),
            lookups: Some(&lookups.answers),
            outputs: Default::default(),
        };
        let rule_problems = check_rules(&service.rules, &ctx);
        let checks = service.steps.iter().map(|step| {
            let ctx = &ctx;
            async move {
                let matter = &catalogue.matters[&step.matter];
                let input = step
                    .input
                    .as_ref()
                    .map_or_else(|| form.clone(), |m| ctx.build_input(m));
                let adapter =
                    self.adapters
                        .get(&matter.department)
                        .ok_or_else(|| ApiError::Unavailable {
                            department: matter.department.clone(),
                            message: "no adapter loaded".into(),
                        })?;
                let found = adapter
                    .validate(&matter.code, &input.to_string())
                    .await
                    .map_err(|e| ApiError::from_call(&matter.department, e))?;
                // Problems are reported on the form field that feeds them; fields an earlier
                // step will fill are not the applicant's to fix.
                let problems = found
                    .into_iter()
                    .filter_map(|f| {
                        let field = match &step.input {
                            None => Some(f.field.clone()),
                            Some(mapping) => problem_on_form(&step.id, mapping, &f.field),
                        };
                        field.map(|field| {
                            FieldProblem::new(
                                field,
                                f.code,
                                gateway_base::redact::redact(&f.message),
                            )
                        })
                    })
                    .collect::<Vec<_>>();
                Ok::<_, ApiError>(problems)
            }
        });
        let department_problems = futures::future::try_join_all(checks).await?;
        let lists = [form_problems, lookups.problems, rule_problems]
            .into_iter()
            .chain(department_problems);
        Ok(Review {
            problems: merge_problems(lists),
            lookups: lookups.answers,
        })
    }

    /// Run a service's lookups in parallel. A lookup whose query fields already have problems is
    /// skipped; a record the department does not hold is a problem on the field that named it.
    async fn run_lookups(
        &self,
        service: &Service,
        form: &Value,
        known: &[FieldProblem],
    ) -> Result<LookupResults, ApiError> {
        let ctx = Context {
            form: Some(form),
            ..Default::default()
        };
        let runs = service.lookups.iter().map(|lookup| {
            let ctx = &ctx;
            async move {
                let form_fields: Vec<String> = lookup
                    .query
                    .iter()
                    .filter_map(|(_, s)| {
                        if let Source::Form(p) = s {
                            Some(p.join("."))
                        } else {
                            None
                        }
                    })
                    .collect();
                let blamed = form_fields.first().cloned().unwrap_or_default();
                let ready = lookup.query.iter().all(|(_, s)| ctx.resolve(s).is_some())
                    && !known.iter().any(|p| {
                        form_fields
                            .iter()
                            .any(|f| p.field == *f || p.field.starts_with(&format!("{f}.")))
                    });
                if !ready {
                    return Ok((lookup.id.clone(), None, None));
                }
                let adapter =
                    self.adapters
                        .for_lookup(&lookup.lookup)
                        .ok_or_else(|| ApiError::NotFound {
                            what: "lookup",
                            id: lookup.lookup.clone(),
                        })?;
                let department = adapter.department().id.clone();
                match adapter
                    .lookup(&lookup.lookup, &ctx.build_input(&lookup.query).to_string())
                    .await
                {
                    Ok(answer) => {
                        let value: Value =
                            serde_json::from_str(&answer).map_err(|e| ApiError::AdapterFailed {
                                department,
                                message: format!("lookup answer is not JSON: {e}"),
                            })?;
                        Ok((lookup.id.clone(), Some(value), None))
                    }
                    Err(CallError::Adapter(AdapterError::Rejected(r))) => {
                        let code = if r.code == "not_found" {
                            "not_found"
                        } else {
                            "rejected"
                        };
                        let message = format!(
                            "{department} 未查询到相符的登记信息：{}",
                            gateway_base::redact::redact(&r.message)
                        );
                        Ok((
                            lookup.id.clone(),
                            None,
                            Some(FieldProblem::new(blamed, code, message)),
                        ))
                    }
                    Err(CallError::Adapter(AdapterError::InvalidInput(fields))) => {
                        let message = fields
                            .iter()
                            .map(|f| gateway_base::redact::redact(&f.message))
                            .collect::<Vec<_>>()
                            .join("; ");
                        Ok((
                            lookup.id.clone(),
                            None,
                            Some(FieldProblem::new(blamed, "format", message)),
                        ))
                    }
                    Err(e) => Err(ApiError::from_call(&department, e)),
                }
            }
        });
        let mut results = LookupResults {
            answers: json!({}),
            problems: Vec::new(),
        };
        for (id, answer, problem) in futures::future::try_join_all(runs).await? {
            if let Some(answer) = answer {
                results.answers[id.as_str()] = answer;
            }
            results.problems.extend(problem);
        }
        Ok(results)
    }

    /// Review and, when clean, durably accept an application. Returns the case id.
    ///
    /// Steps that wait for others are stored as `waiting`; their input is made when the steps
    /// they wait for are approved, from the form, the lookup answers and those steps' outputs.
    pub async fn apply(
        &self,
        service_code: &str,
        form: Value,
        admission: Admission,
    ) -> Result<Applied, ApiError> {
        if let Some(applied) = self.repeated(&admission).await? {
            return Ok(applied);
        }
        let catalogue = self.catalogue();
        let review = self.review_in(&catalogue, service_code, &form).await?;
        if !review.problems.is_empty() {
            return Err(ApiError::InvalidInput(review.problems));
        }
        let service = &catalogue.services[service_code];
        let ctx = Context {
            form: Some(&form),
            lookups: Some(&review.lookups),
            outputs: Default::default(),
        };
        let steps: Vec<NewStep> = service
            .steps
            .iter()
            .map(|s| NewStep {
                step: s.id.clone(),
                matter: s.matter.clone(),
                department: catalogue.matters[&s.matter].department.clone(),
                after: s.after.clone(),
                input: match (&s.input, s.after.is_empty()) {
                    (None, _) => form.to_string(),
                    (Some(mapping), true) => ctx.build_input(mapping).to_string(),
                    (Some(_), false) => "{}".to_string(),
                },
            })
            .collect();
        let case_id = uuid::Uuid::now_v7().to_string();
        if let Err(error) = self
            .store
            .create_case(
                &case_id,
                service_code,
                &form,
                &review.lookups,
                &steps,
                &admission,
            )
            .await
        {
            // Two requests with one key raced; the loser answers with the winner's case.
            return match self.repeated(&admission).await? {
                Some(applied) => Ok(applied),
                None => Err(error.into()),
            };
        }
        tracing::info!(case = %case_id, service = %service_code, steps = steps.len(), "application accepted");
        self.wake.notify_one();
        Ok(Applied {
            case_id,
            replayed: false,
        })
    }

    /// The earlier case of a repeated request, or a conflict when the key was used for another.
    async fn repeated(&self, admission: &Admission) -> Result<Option<Applied>, ApiError> {
        let Some(key) = &admission.idempotency_key else {
            return Ok(None);
        };
        match self.store.case_by_idempotency_key(key).await? {
            Some((case_id, digest)) if digest == admission.request_digest => Ok(Some(Applied {
                case_id,
                replayed: true,
            })),
            Some(_) => Err(ApiError::IdempotencyConflict(key.clone())),
            None => Ok(None),
        }
    }

    /// Move a case's graph on: release waiting steps whose prerequisites are all approved (with
    /// their input made from the outputs), block those whose prerequisites failed. Repeats until
    /// nothing changes, since a block can block further steps.
    async fn advance(&self, case_id: &str) -> Result<(), gateway_store::StoreError> {
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
                    let ctx = Context {
                        form: Some(&case.form),
                        lookups: Some(&case.lookups),
                        outputs,
                    };
                    let input = def
                        .input
                        .as_ref()
                        .map_or_else(|| case.form.clone(), |m| ctx.build_input(m));
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

    /// Deliver due steps until shutdown. Woken at once by new applications. Each step is claimed
    /// in the store first, so with several nodes exactly one delivers it.
    pub async fn run_dispatcher(self: Arc<Self>) {
        while !self.stopping.load(Ordering::SeqCst) {
            match self.store.due_deliveries(64).await {
                Ok(due) => {
                    for step in due {
                        let until = now_ms() + self.delivery.claim_ms;
                        match self
                            .store
                            .claim_delivery(&step, &self.delivery.node, until)
                            .await
                        {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => {
                                tracing::error!(error = %e, "claiming a delivery failed");
                                continue;
                            }
                        }
                        let this = self.clone();
                        let running = self.delivery.track();
                        // Each delivery is a trace of its own: its department calls share it.
                        let trace = gateway_base::trace::TraceContext::new_root();
                        let span = tracing::info_span!("delivery", case = %step.case_id, step = %step.step, trace_id = %trace.trace_id_hex());
                        gateway_base::trace::adopt(&span, &trace);
                        tokio::spawn(async move {
                            use tracing::Instrument;
                            let delivery = this.deliver(&step);
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
                }
                Err(e) => tracing::error!(error = %e, "dispatcher cannot read the store"),
            }
            // Retries come due with time; new work comes with a notification.
            let _ = tokio::time::timeout(Duration::from_millis(250), self.wake.notified()).await;
        }
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

    async fn deliver(&self, step: &StepRecord) {
        let Some(pacing) = self.delivery.pacing(&step.department) else {
            tracing::error!(department = %step.department, "no such department; delivery waits");
            return;
        };
        if let Circuit::Open(until) = pacing.circuit(now_ms()) {
            // The department is being left alone: wait without spending an attempt.
            let _ = self.store.postpone_delivery(step, until).await;
            return;
        }
        let Ok(_permit) = pacing.permits.acquire().await else {
            return;
        };
        let Some(adapter) = self.adapters.get(&step.department) else {
            tracing::error!(department = %step.department, "no adapter loaded; delivery waits");
            let _ = self
                .store
                .retry_later(
                    step,
                    "no adapter loaded for the department",
                    now_ms() + 5_000,
                )
                .await;
            return;
        };
        let submission = Submission {
            case_id: step.case_id.clone(),
            matter: step.matter.clone(),
            idempotency_key: step.idempotency_key.clone(),
            payload: step.input.clone(),
            callback_url: format!("{}/callbacks/{}", self.public_url, step.department),
        };
        let outcome = adapter.submit(submission).await;
        if let Err(CallError::Busy(_)) = outcome {
            // Every instance is in use on this node: not the department's fault, nor an attempt.
            let _ = self.store.postpone_delivery(step, now_ms() + 500).await;
            return;
        }
        let department = step.department.as_str();
        match &outcome {
            Err(CallError::Adapter(AdapterError::Unavailable(_) | AdapterError::Timeout(_)))
            | Err(CallError::Timeout(_)) => {
                pacing.failed(now_ms());
                telemetry::circuit(
                    department,
                    matches!(pacing.circuit(now_ms()), Circuit::Open(_)),
                );
            }
            _ => {
                pacing.succeeded();
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
                let recorded = self
                    .record(
                        step,
                        state,
                        Some(&receipt.reference),
                        Some(&receipt.outputs),
                        receipt.message.as_deref(),
                        "submitted",
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
                    StepState::Rejected,
                    None,
                    None,
                    Some(&message),
                    "submitted",
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
                    StepState::Failed,
                    None,
                    None,
                    Some(&gateway_base::redact::redact(&message)),
                    "delivery_failed",
                )
                .await
            }
            Err(error) => {
                let message = gateway_base::redact::redact(&error.to_string());
                if step.attempts + 1 >= pacing.max_attempts {
                    let message =
                        format!("gave up after {} attempts: {message}", step.attempts + 1);
                    self.record(
                        step,
                        StepState::Failed,
                        None,
                        None,
                        Some(&message),
                        "delivery_failed",
                    )
                    .await
                } else {
                    tracing::warn!(case = %step.case_id, department = %step.department, attempt = step.attempts + 1, error = %message, "delivery will be retried");
                    let next = now_ms() + backoff_ms(step.attempts);
                    let retry = self.store.retry_later(step, &message, next).await;
                    self.announce(step, StepState::Pending);
                    retry
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(case = %step.case_id, error = %e, "recording a delivery outcome failed");
        }
    }

    async fn record(
        &self,
        step: &StepRecord,
        state: StepState,
        reference: Option<&str>,
        outputs: Option<&str>,
        message: Option<&str>,
        kind: &str,
    ) -> Result<(), gateway_store::StoreError> {
        let next_poll = now_ms() + self.poll_interval(&step.department);
        self.store
            .update_step(step, state, reference, outputs, message, kind, next_poll)
            .await?;
        if state == StepState::Approved {
            crate::licences::record_if_issued(&self.store, step, outputs).await;
        }
        tracing::info!(case = %step.case_id, step = %step.step, department = %step.department, state = state.as_str(), kind, "step updated");
        self.announce(step, state);
        if state.is_final() {
            self.advance(&step.case_id).await?;
        }
        Ok(())
    }

    fn announce(&self, step: &StepRecord, state: StepState) {
        let event = CaseEvent {
            case_id: step.case_id.clone(),
            step: step.step.clone(),
            state,
        };
        // No subscriber is fine: the store is the record, this is only a wake-up.
        let _ = self.events.send(event);
    }

    fn poll_interval(&self, department: &str) -> i64 {
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

    async fn poll(&self, step: &StepRecord) {
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
            Ok(report) => self.apply_report(step, report, "status").await,
            Err(e) => {
                tracing::debug!(case = %step.case_id, department = %step.department, error = %e, "status poll failed; will poll again");
                self.store.postpone_poll(step, next_poll).await
            }
        };
        if let Err(e) = result {
            tracing::error!(case = %step.case_id, error = %e, "recording a status failed");
        }
    }

    async fn apply_report(
        &self,
        step: &StepRecord,
        report: contract::StatusReport,
        kind: &str,
    ) -> Result<(), gateway_store::StoreError> {
        let state = state_of(report.state);
        if state == step.state && report.outputs == "{}" {
            let next_poll = now_ms() + self.poll_interval(&step.department);
            return self.store.postpone_poll(step, next_poll).await;
        }
        self.record(
            step,
            state,
            Some(&report.reference),
            Some(&report.outputs),
            report.message.as_deref(),
            kind,
        )
        .await
    }

    /// Apply a callback that arrived before the submission's answer, now that the step has its
    /// reference.
    async fn apply_held_callback(
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
            state,
            Some(reference),
            Some(outputs),
            held["message"].as_str(),
            "callback",
        )
        .await
    }

    /// A department called back: let its adapter read the call, then record the status.
    pub async fn callback(
        &self,
        department: &str,
        request: contract::CallbackRequest,
    ) -> Result<(), ApiError> {
        let adapter = self
            .adapters
            .get(department)
            .ok_or_else(|| ApiError::NotFound {
                what: "department",
                id: department.into(),
            })?;
        let report = adapter
            .on_callback(request)
            .await
            .map_err(|e| ApiError::from_call(department, e))?;
        let Some(step) = self
            .store
            .step_by_reference(department, &report.reference)
            .await?
        else {
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
        self.apply_report(&step, report, "callback").await?;
        Ok(())
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 60 s, ±25 %.
fn backoff_ms(attempts: i64) -> i64 {
    let base = (500_i64 << attempts.clamp(0, 7)).min(60_000);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as i64; // 0..999 ‰
    base * 3 / 4 + base * jitter / 2000
}

fn state_of(state: contract::StepState) -> StepState {
    match state {
        contract::StepState::Accepted => StepState::Accepted,
        contract::StepState::Processing => StepState::Processing,
        contract::StepState::Approved => StepState::Approved,
        contract::StepState::Rejected => StepState::Rejected,
        contract::StepState::Returned => StepState::Returned,
    }
}

/// The one status of a case, from the states of its steps.
pub fn case_status(states: &[StepState]) -> &'static str {
    if states.iter().any(|s| !s.is_final()) {
        if states.iter().all(|s| *s == StepState::Pending) {
            "received"
        } else {
            "in_progress"
        }
    } else if states.iter().all(|s| *s == StepState::Approved) {
        "completed"
    } else if states.contains(&StepState::Returned) {
        "returned"
    } else if states.contains(&StepState::Rejected) {
        "rejected"
    } else {
        "failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let b = backoff_ms(attempt);
            let base = (500_i64 << attempt.clamp(0, 7)).min(60_000);
            assert!(
                b >= base * 3 / 4 && b <= base * 5 / 4,
                "attempt {attempt}: {b}"
            );
        }
        assert!(backoff_ms(0) < backoff_ms(3));
    }

    #[test]
    fn case_status_aggregates_steps() {
        use StepState::*;
        assert_eq!(case_status(&[Pending, Pending]), "received");
        assert_eq!(case_status(&[Approved, Accepted]), "in_progress");
        assert_eq!(case_status(&[Approved, Approved]), "completed");
        assert_eq!(case_status(&[Approved, Rejected, Blocked]), "rejected");
        assert_eq!(case_status(&[Approved, Returned]), "returned");
        assert_eq!(case_status(&[Approved, Failed]), "failed");
    }
}
