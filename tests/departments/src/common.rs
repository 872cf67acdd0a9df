//! What all four departments share: the fault switches, the counters behind `/_sim/stats`, the
//! idempotency store keyed on each department's request id, and the record of the materials
//! each department took with its applications.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Fault switches of one department, as set by `POST /_sim/faults` or [`crate::Department::set_faults`].
///
/// A fault short-circuits the request before the department looks at it, so a faulted request
/// never creates an application; latency is the exception, it delays an answer that was
/// already produced (the department did the work, the answer is slow).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub latency_ms: u64,
    pub error_rate: f64,
    pub down: bool,
    pub garbage: bool,
    /// Flip one bit of every material file as it arrives, as a line corrupting it in transit
    /// would: the department's own digest check must refuse it.
    pub corrupt_materials: bool,
    /// Stop reading a streamed material upload (tax's form, real estate's package) for this
    /// long once more than `stall_materials_after_bytes` of its body have arrived, as a line
    /// that stops moving would: the sender is caught mid-upload. Each upload held counts in
    /// [`Stats::stalled`], the moment a test may cut the sender off.
    pub stall_materials_ms: u64,
    /// How far into an upload's body the stall begins (0: at its first bytes).
    pub stall_materials_after_bytes: u64,
    /// Not a fault of the line but a decision of the department's own: a matter returned for
    /// 补正 is ended when next asked about, as when its 补正期限 passed without a supplement
    /// (逾期未补正). Tax: the status query (`slzt`) answers `zt` 03 不予受理 with `ztmc`
    /// 逾期未补正, for good.
    pub lapse_returned: bool,
}

/// Counters of one department, as returned by `GET /_sim/stats`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Every request that reached the department (faulted or refused ones too), by operation.
    pub received: BTreeMap<String, usize>,
    /// Unique applications (by request id).
    pub applications: usize,
    /// Refusals, by reason (bad signature, encoding, invalid token, business rule…).
    pub rejected: BTreeMap<String, usize>,
    /// The materials of the applications taken, each recorded once with its application.
    #[serde(default)]
    pub materials: Vec<ReceivedMaterial>,
    /// Uploads held mid-body by the `stall_materials_ms` fault switch, counted as the hold
    /// begins.
    #[serde(default)]
    pub stalled: usize,
    /// The supplements (补正) and withdrawals (撤回) taken, in arrival order, each once with its
    /// repeats counted.
    #[serde(default)]
    pub actions: Vec<crate::actions::ActionRecord>,
}

/// One material of an application a department took, as the department itself found it: for a
/// file, the SM3 and size of the bytes it received (computed by the department, never the
/// sender's claim); for a 免提交 licence, the identifier and how it was verified. Tests compare
/// these with what the applicant uploaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMaterial {
    /// The application's request id.
    pub request_id: String,
    /// The material's code.
    pub code: String,
    /// `file` (bytes received and checked), `licence` (an identifier, verified), `promised`
    /// (容缺: to come later).
    pub kind: String,
    /// Lowercase hex SM3 of the bytes received (files).
    pub sm3: Option<String>,
    /// Bytes received (files).
    pub size: Option<u64>,
    /// GB/T 36904 identifier (licences).
    pub licence_id: Option<String>,
    /// How the licence was verified: `gateway` (its check character checked, then the
    /// gateway's licence-sharing endpoint answered for it), as every department does.
    pub verified_by: Option<String>,
}

/// A finished answer, kept so that a repeated request id gets exactly the first answer back.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Answer {
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Answer {
            status,
            content_type: "application/json; charset=UTF-8",
            body: Bytes::from(value.to_string()),
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response()
    }
}

#[derive(Debug, Default)]
struct Applications {
    /// Request ids in order of first arrival.
    unique: Vec<String>,
    /// Every submission that reached the store, repeats included.
    submitted: Vec<String>,
    answers: HashMap<String, Answer>,
}

/// Shared state of one simulated department, behind its `Department` handle.
#[derive(Debug)]
pub(crate) struct Sim {
    pub name: &'static str,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    apps: Mutex<Applications>,
    traces: Mutex<Vec<(String, Option<String>)>>,
    seq: AtomicU64,
    /// Supplements (补正) and withdrawals (撤回) taken, each once per request id.
    pub actions: crate::actions::Actions,
}

/// A poisoned lock only means another request panicked; the counters are still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    pub fn new(name: &'static str) -> Arc<Sim> {
        Arc::new(Sim {
            name,
            faults: Mutex::default(),
            stats: Mutex::default(),
            apps: Mutex::default(),
            traces: Mutex::default(),
            // Random start so numbers from an earlier run of the demo do not come back.
            seq: AtomicU64::new(rand::random_range(0..1_000_000)),
            actions: crate::actions::Actions::default(),
        })
    }

    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub fn set_faults(&self, f: Faults) {
        tracing::info!(department = self.name, faults = ?f, "fault switches set");
        *lock(&self.faults) = f;
    }

    pub fn stats(&self) -> Stats {
        let mut s = lock(&self.stats).clone();
        s.applications = lock(&self.apps).unique.len();
        s.actions = self.actions.all();
        s
    }

    pub fn received_ids(&self) -> Vec<String> {
        lock(&self.apps).unique.clone()
    }

    pub fn submitted_ids(&self) -> Vec<String> {
        lock(&self.apps).submitted.clone()
    }

    pub fn count_received(&self, operation: &str) {
        *lock(&self.stats)
            .received
            .entry(operation.to_owned())
            .or_default() += 1;
    }

    /// Every request's operation and `traceparent` header, in arrival order.
    pub fn traces(&self) -> Vec<(String, Option<String>)> {
        lock(&self.traces).clone()
    }

    /// Record a material of an application the department has just taken (call it where the
    /// application is created, so a repeated request id does not record it again).
    pub fn record_material(&self, material: ReceivedMaterial) {
        lock(&self.stats).materials.push(material);
    }

    /// The `stall_materials_*` fault switches for one streamed upload, as set now.
    pub fn upload_stall(&self) -> UploadStall {
        let f = self.faults();
        UploadStall {
            hold: (f.stall_materials_ms > 0).then(|| Duration::from_millis(f.stall_materials_ms)),
            after: f.stall_materials_after_bytes,
        }
    }

    pub fn reject(&self, reason: &str) {
        tracing::debug!(department = self.name, reason, "request refused");
        *lock(&self.stats)
            .rejected
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// Runs `create` once per request id. The first `Ok` answer is stored and counted as an
    /// application; a repeated id gets that answer back without calling `create`. An `Err`
    /// answer (a refusal) is returned but not stored, so a corrected retry can still succeed.
    ///
    /// `create` runs under the store's lock so two concurrent copies of one request cannot both
    /// create an application; it must not block.
    pub fn submit(
        &self,
        request_id: &str,
        create: impl FnOnce() -> Result<Answer, Answer>,
    ) -> Answer {
        let mut apps = lock(&self.apps);
        apps.submitted.push(request_id.to_owned());
        if let Some(first) = apps.answers.get(request_id) {
            tracing::info!(
                department = self.name,
                request_id,
                "repeated request id, first answer returned"
            );
            return first.clone();
        }
        match create() {
            Ok(answer) => {
                apps.unique.push(request_id.to_owned());
                apps.answers.insert(request_id.to_owned(), answer.clone());
                answer
            }
            Err(refusal) => refusal,
        }
    }

    /// [`Sim::submit`] for an application whose materials must first be verified elsewhere
    /// (licences at the gateway): `verify` runs before `create` and outside the store's lock,
    /// since it waits on the network, and only for a request id not answered yet, so a repeat
    /// gets the first answer without asking again. A refusal from `verify` is returned and not
    /// stored, like one from `create`.
    pub async fn submit_verified<V>(
        &self,
        request_id: &str,
        verify: impl Future<Output = Result<V, Answer>>,
        create: impl FnOnce(V) -> Result<Answer, Answer>,
    ) -> Answer {
        let verified = if lock(&self.apps).answers.contains_key(request_id) {
            None
        } else {
            match verify.await {
                Ok(verified) => Some(verified),
                Err(refusal) => return refusal,
            }
        };
        self.submit(request_id, || match verified {
            Some(verified) => create(verified),
            // An answer once stored is never removed: `submit` answers with it and does not
            // call this.
            None => unreachable!("request id {request_id} was answered"),
        })
    }

    /// A department number: prefix, Beijing date, and a sequence number (e.g. `SW2025061500012345`).
    pub fn next_number(&self, prefix: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) % 100_000_000;
        let d = beijing_now().date();
        format!(
            "{prefix}{:04}{:02}{:02}{n:08}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )
    }
}

/// Where one streamed upload stops moving (the `stall_materials_*` fault switches): once,
/// when its body has passed the threshold.
#[derive(Debug)]
pub(crate) struct UploadStall {
    /// How long to hold; none once held (or when the switch is off).
    hold: Option<Duration>,
    after: u64,
}

impl UploadStall {
    /// `read` bytes of the body have arrived: hold the upload here if this is the moment.
    pub async fn passed(&mut self, sim: &Sim, read: u64) {
        if read <= self.after {
            return;
        }
        if let Some(hold) = self.hold.take() {
            lock(&sim.stats).stalled += 1;
            tracing::info!(department = sim.name, read, "upload held mid-body");
            tokio::time::sleep(hold).await;
        }
    }
}

/// The departments print Beijing time (UTC+8, no daylight saving).
pub fn beijing_now() -> OffsetDateTime {
    OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8))
}

/// Beijing date as `YYYY-MM-DD`.
pub fn beijing_date(at: OffsetDateTime) -> String {
    let d = at.to_offset(time::macros::offset!(+8)).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// How the fault layer sees one department: how to name a request's operation for the
/// counters, and what content type a garbage answer pretends to have (so an adapter has to
/// notice by parsing, not by the header).
#[derive(Clone, Copy)]
pub(crate) struct Profile {
    pub operation: fn(&Request) -> String,
    pub content_type: &'static str,
}

/// Bytes that are neither JSON nor XML nor valid UTF-8.
const GARBAGE: &[u8] = b"\xff\xfe<<<\x00 upstream exploded {not: json] </not-xml";

/// Wraps a department's routes in the fault layer and adds the harness's `/_sim/*` routes,
/// which the fault layer leaves alone.
pub(crate) fn finish(routes: Router, sim: Arc<Sim>, profile: Profile) -> Router {
    let harness = Router::new()
        .route("/_sim/faults", post(post_faults))
        .route("/_sim/stats", get(get_stats))
        .with_state(sim.clone());
    // The fallback goes under the fault layer too: a department that is down is down for every
    // path, including the bare base URL the gateway's readiness probe asks for.
    routes
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(axum::middleware::from_fn_with_state(
            (sim, profile),
            fault_layer,
        ))
        .merge(harness)
}

async fn fault_layer(
    State((sim, profile)): State<(Arc<Sim>, Profile)>,
    req: Request,
    next: Next,
) -> Response {
    let operation = (profile.operation)(&req);
    sim.count_received(&operation);
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lock(&sim.traces).push((operation, traceparent));
    let f = sim.faults();
    let answer = if f.down {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    } else if f.error_rate > 0.0 && rand::random::<f64>() < f.error_rate {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else if f.garbage {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, profile.content_type)],
            GARBAGE,
        )
            .into_response()
    } else {
        next.run(req).await
    };
    if f.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
    }
    answer
}

async fn post_faults(State(sim): State<Arc<Sim>>, Json(f): Json<Faults>) -> Json<Faults> {
    sim.set_faults(f.clone());
    Json(f)
}

async fn get_stats(State(sim): State<Arc<Sim>>) -> Json<Stats> {
    Json(sim.stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_upload_is_held_once_past_the_threshold() {
        let sim = Sim::new("test");
        let mut off = sim.upload_stall();
        off.passed(&sim, 1 << 30).await;
        assert_eq!(sim.stats().stalled, 0, "the switch is off");
        sim.set_faults(Faults {
            stall_materials_ms: 1,
            stall_materials_after_bytes: 100,
            ..Faults::default()
        });
        let mut stall = sim.upload_stall();
        stall.passed(&sim, 100).await;
        assert_eq!(sim.stats().stalled, 0, "not past the threshold yet");
        stall.passed(&sim, 101).await;
        stall.passed(&sim, 500).await;
        assert_eq!(sim.stats().stalled, 1, "held once");
    }
}
