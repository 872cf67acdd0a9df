//! One loaded adapter and the calls into it, each in a fresh, bounded instance.

use super::bindings::{Adapter, AdapterPre};
use super::contract::{
    AdapterError, CallbackRequest, Description, FieldError, Receipt, StatusReport, Submission,
};
use super::engine::{PluginEngine, TICK};
use super::imports::{Department, HostState};
use gateway_base::config::Limits;
use gateway_base::model::Fault;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Why a call into an adapter produced no answer of its own.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The adapter answered with an error of the contract.
    #[error("adapter error: {0:?}")]
    Adapter(AdapterError),
    /// The adapter's code trapped (a panic, an unreachable, a bad memory access).
    #[error("adapter trapped: {0}")]
    Trap(String),
    /// The adapter's code ran longer than its CPU limit.
    #[error("adapter exceeded its CPU limit of {0} ms")]
    CpuLimit(u32),
    /// The adapter tried to grow its memory past its limit.
    #[error("adapter exceeded its memory limit of {0} MiB")]
    MemoryLimit(u32),
    /// The whole call, host calls included, exceeded its wall-clock bound.
    #[error("adapter call exceeded its time limit of {0} ms")]
    Timeout(u32),
    /// The host could not set up the instance.
    #[error("adapter could not be instantiated: {0}")]
    Instantiate(String),
    /// The department's adapter already runs its maximum of instances on this node.
    #[error("adapter is busy: its {0} instances are all in use")]
    Busy(u32),
}

impl CallError {
    /// The metric label of this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Adapter(AdapterError::InvalidInput(_)) => "invalid_input",
            CallError::Adapter(AdapterError::Rejected(_)) => "rejected",
            CallError::Adapter(AdapterError::Unavailable(_)) => "unavailable",
            CallError::Adapter(AdapterError::Timeout(_)) => "department_timeout",
            CallError::Adapter(AdapterError::Protocol(_)) => "protocol",
            CallError::Adapter(AdapterError::Internal(_)) => "internal",
            CallError::Trap(_) => "trap",
            CallError::CpuLimit(_) => "cpu_limit",
            CallError::MemoryLimit(_) => "memory_limit",
            CallError::Timeout(_) => "timeout",
            CallError::Instantiate(_) => "instantiate",
            CallError::Busy(_) => "busy",
        }
    }

    /// Who is at fault: the one place a call's failure is judged. The department's circuit
    /// breaker counts [`Fault::Department`], a staged version is judged by [`Fault::Adapter`],
    /// and the caller is answered by it.
    pub fn fault(&self) -> Fault {
        match self {
            CallError::Adapter(AdapterError::InvalidInput(_) | AdapterError::Rejected(_)) => {
                Fault::Caller
            }
            CallError::Adapter(AdapterError::Unavailable(_) | AdapterError::Timeout(_)) => {
                Fault::Department
            }
            // An answer the adapter cannot read is its own failure to follow the department.
            CallError::Adapter(AdapterError::Protocol(_) | AdapterError::Internal(_))
            | CallError::Trap(_)
            | CallError::CpuLimit(_)
            | CallError::MemoryLimit(_)
            | CallError::Timeout(_)
            | CallError::Instantiate(_) => Fault::Adapter,
            CallError::Busy(_) => Fault::Gateway,
        }
    }
}

/// What one version has served on this node since it last started serving.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    faults: AtomicU64,
    /// Unix ms it started serving (entered a route) on this node; 0 when not serving.
    serving_since_ms: AtomicI64,
    /// Unix ms of its first call completed since then; 0 before.
    first_call_ms: AtomicI64,
}

/// A copy of [`CallStats`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StatsSnapshot {
    /// Calls completed.
    pub calls: u64,
    /// Of which failed by the adapter's own fault.
    pub faults: u64,
    /// Unix ms it started serving on this node (0: not serving).
    pub serving_since_ms: i64,
    /// Unix ms of its first call since then (0: none yet).
    pub first_call_ms: i64,
}

impl CallStats {
    /// Start counting afresh: the version starts serving now.
    pub fn start_serving(&self, now_ms: i64) {
        self.calls.store(0, Ordering::Relaxed);
        self.faults.store(0, Ordering::Relaxed);
        self.first_call_ms.store(0, Ordering::Relaxed);
        self.serving_since_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The version no longer serves.
    pub fn stop_serving(&self) {
        self.serving_since_ms.store(0, Ordering::Relaxed);
    }

    fn record(&self, fault: bool) {
        if self.calls.fetch_add(1, Ordering::Relaxed) == 0 {
            let _ = self.first_call_ms.compare_exchange(
                0,
                gateway_base::time::now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        if fault {
            self.faults.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            serving_since_ms: self.serving_since_ms.load(Ordering::Relaxed),
            first_call_ms: self.first_call_ms.load(Ordering::Relaxed),
        }
    }
}

/// Why a component could not be loaded, by stage.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// It is not a component this engine can compile.
    #[error("does not compile: {0}")]
    Compile(String),
    /// It needs an import the host does not give, or exports something else than the contract.
    #[error("does not fit the host's imports and the contract's exports: {0}")]
    Contract(String),
    /// Its `describe` failed.
    #[error("describe failed: {0}")]
    Describe(CallError),
}

/// A compiled, pre-instantiated adapter bound to its department.
pub struct LoadedAdapter {
    pre: AdapterPre<HostState>,
    department: Arc<Department>,
    limits: Limits,
    description: Description,
    /// Hex SHA-256 of the component bytes.
    pub digest: String,
    /// Calls and faults since this version last started serving on this node.
    pub stats: CallStats,
}

impl LoadedAdapter {
    /// Compile and pre-instantiate a component for a department, and ask it to describe itself.
    pub async fn load(
        engine: &PluginEngine,
        bytes: &[u8],
        department: Arc<Department>,
        limits: Limits,
    ) -> Result<Self, LoadError> {
        use sha2::Digest;
        let started = Instant::now();
        let component = Component::new(&engine.engine, bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        tracing::debug!(elapsed = ?started.elapsed(), "component compiled or read from the cache");
        let mut linker = Linker::<HostState>::new(&engine.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| {
                Adapter::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(
                    &mut linker,
                    |s| s,
                )
            })
            .map_err(|e| LoadError::Compile(format!("host imports: {e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(AdapterPre::new)
            .map_err(|e| LoadError::Contract(format!("{e:#}")))?;
        let mut adapter = LoadedAdapter {
            pre,
            department,
            limits,
            description: Description {
                department: String::new(),
                contract_version: String::new(),
                adapter_version: String::new(),
                matters: Vec::new(),
                lookups: Vec::new(),
            },
            digest: hex::encode(sha2::Sha256::digest(bytes)),
            stats: CallStats::default(),
        };
        adapter.description = adapter
            .call("describe", |a, s| {
                Box::pin(async move { a.call_describe(s).await })
            })
            .await
            .map_err(LoadError::Describe)?;
        Ok(adapter)
    }

    /// The same compiled version bound to another department (or the same one afresh): a
    /// component is described before it is known which department it is for.
    pub fn bind(&self, department: Arc<Department>, limits: Limits) -> LoadedAdapter {
        LoadedAdapter {
            pre: self.pre.clone(),
            department,
            limits,
            description: self.description.clone(),
            digest: self.digest.clone(),
            stats: CallStats::default(),
        }
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// What the adapter reported at load.
    pub fn description(&self) -> &Description {
        &self.description
    }

    /// The department this adapter is bound to.
    pub fn department(&self) -> &Arc<Department> {
        &self.department
    }

    /// Every problem the department would have with this input.
    pub async fn validate(
        &self,
        matter: &str,
        payload: &str,
    ) -> Result<Vec<FieldError>, CallError> {
        let (matter, payload) = (matter.to_string(), payload.to_string());
        self.call("validate", move |a, s| {
            Box::pin(async move { a.call_validate(s, &matter, &payload).await })
        })
        .await
    }

    /// Hand one matter to the department.
    pub async fn submit(&self, submission: Submission) -> Result<Receipt, CallError> {
        self.call("submit", move |a, s| {
            Box::pin(async move { a.call_submit(s, &submission).await })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Read where a matter stands.
    pub async fn status(&self, matter: &str, reference: &str) -> Result<StatusReport, CallError> {
        let (matter, reference) = (matter.to_string(), reference.to_string());
        self.call("status", move |a, s| {
            Box::pin(async move { a.call_status(s, &matter, &reference).await })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Run a shared-data lookup.
    pub async fn lookup(&self, name: &str, query: &str) -> Result<String, CallError> {
        let (name, query) = (name.to_string(), query.to_string());
        self.call("lookup", move |a, s| {
            Box::pin(async move { a.call_lookup(s, &name, &query).await })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Read a department's call back to the gateway.
    pub async fn on_callback(&self, request: CallbackRequest) -> Result<StatusReport, CallError> {
        self.call("on_callback", move |a, s| {
            Box::pin(async move { a.call_on_callback(s, &request).await })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Run `f` against a fresh instance in a fresh store, within the adapter's limits.
    ///
    /// Counted in [`Self::stats`] and in the metrics by department, version and call, with
    /// the outcome the contract gave (an adapter error inside an `Ok` is an outcome too).
    async fn call<R: Send + 'static + Outcome>(
        &self,
        name: &'static str,
        f: impl for<'a> FnOnce(
            &'a Adapter,
            &'a mut Store<HostState>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        > + Send,
    ) -> Result<R, CallError> {
        let started = Instant::now();
        // The department exchanges of this call are audited with the version that made them.
        let adapter = gateway_store::audit::AdapterRef {
            version: self.description.adapter_version.clone(),
            digest: self.digest.clone(),
            call: name.to_string(),
        };
        let result =
            gateway_store::audit::scope(|c| c.adapter = Some(adapter), self.call_bounded(f)).await;
        let error = match &result {
            Ok(answer) => answer.error().map(|e| CallError::Adapter(e.clone())),
            Err(e) => Some(e.clone()),
        };
        let fault = error.as_ref().is_some_and(|e| e.fault() == Fault::Adapter);
        self.stats.record(fault);
        let version = self.description.adapter_version.clone();
        let labels = [
            ("department", self.department.id.clone()),
            ("version", version),
            ("call", name.to_string()),
        ];
        metrics::histogram!("gateway_adapter_call_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        let outcome = error.as_ref().map_or("ok", CallError::kind);
        let mut labels = labels.to_vec();
        labels.push(("outcome", outcome.to_string()));
        metrics::counter!("gateway_adapter_calls_total", &labels).increment(1);
        result
    }

    async fn call_bounded<R: Send + 'static>(
        &self,
        f: impl for<'a> FnOnce(
            &'a Adapter,
            &'a mut Store<HostState>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        > + Send,
    ) -> Result<R, CallError> {
        let department = &self.department;
        let _instance = department
            .instances
            .clone()
            .try_acquire_owned()
            .map_err(|_| CallError::Busy(department.max_instances))?;
        let _live = LiveInstance::new(&department.id);
        let limits = self.limits;
        let mut store = Store::new(
            self.pre.engine(),
            HostState::new(self.department.clone(), limits.memory_mib),
        );
        store.limiter(|s| &mut s.limits);
        let cpu_budget = PluginEngine::cpu_ticks(&limits);
        // The deadline callback only runs while wasm runs, so counting its ticks measures the
        // adapter's own CPU time; yielding each tick keeps a busy adapter from starving tokio.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks > cpu_budget {
                Err(wasmtime::Error::from(Trap::Interrupt))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let run = async {
            let adapter = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| classify(e, &limits, true))?;
            f(&adapter, &mut store)
                .await
                .map_err(|e| classify(e, &limits, false))
        };
        let bound = Duration::from_millis(u64::from(limits.call_timeout_ms)) + TICK;
        match tokio::time::timeout(bound, run).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(limits.call_timeout_ms)),
        }
    }
}

/// One live instance in the `gateway_adapter_instances` gauge, for as long as it lives (a
/// cancelled call included).
struct LiveInstance(metrics::Gauge);

impl LiveInstance {
    fn new(department: &str) -> Self {
        let gauge =
            metrics::gauge!("gateway_adapter_instances", "department" => department.to_string());
        gauge.increment(1.0);
        LiveInstance(gauge)
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// What a call's answer says about how it went: the contract's own error, if it carries one.
trait Outcome {
    fn error(&self) -> Option<&AdapterError>;
}

impl<T> Outcome for Result<T, AdapterError> {
    fn error(&self) -> Option<&AdapterError> {
        self.as_ref().err()
    }
}

impl Outcome for Description {
    fn error(&self) -> Option<&AdapterError> {
        None
    }
}

impl Outcome for Vec<FieldError> {
    fn error(&self) -> Option<&AdapterError> {
        None
    }
}

fn classify(error: wasmtime::Error, limits: &Limits, instantiating: bool) -> CallError {
    let text = format!("{error:#}");
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::CpuLimit(limits.cpu_ms),
        Some(Trap::AllocationTooLarge) => CallError::MemoryLimit(limits.memory_mib),
        _ if text.contains("forcing trap when growing memory")
            || text.contains("memory minimum size") =>
        {
            CallError::MemoryLimit(limits.memory_mib)
        }
        Some(_) => CallError::Trap(gateway_base::redact::redact(&text)),
        None if instantiating => CallError::Instantiate(text),
        None => CallError::Trap(gateway_base::redact::redact(&text)),
    }
}
