//! One loaded adapter and the calls into it, each in a fresh, bounded instance.

use super::answers::Outcome;
use super::bindings::{v0_1, v0_2, v0_3};
use super::budget::{ADMISSION_WAIT, INSTANCE_HOST_BYTES, MemoryBudget};
use super::call_metrics::CallMetrics;
use super::compat::{self, Contract};
use super::contract::{
    AdapterError, CallbackRequest, Description, FieldError, Receipt, StatusReport, Submission,
    Supplement, Withdrawal,
};
use super::engine::{PluginEngine, TICK};
use super::executor::{self, Stopped};
use super::imports::{Department, Exchanges, HostState};
use super::materials::{CallMaterials, SharedBlobs};
use super::meter::{CpuMeter, Metered};
use gateway_base::config::Limits;
use gateway_base::model::Fault;
use gateway_base::redact::redact;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Why a call into an adapter produced no answer of its own.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The adapter answered with an error of the contract.
    #[error("adapter error: {0:?}")]
    Adapter(AdapterError),
    /// The adapter's code trapped (a panic, an unreachable, a bad memory access). The text,
    /// a wasm backtrace, is for the log (masked there): it is not shown to callers.
    #[error("adapter trapped")]
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
    /// The host could not set up the instance. The text is for the log.
    #[error("adapter could not be instantiated")]
    Instantiate(String),
    /// The department's adapter already runs its maximum of instances on this node.
    #[error("adapter is busy: its {0} instances are all in use")]
    Busy(u32),
    /// The node's memory budget for instances stayed spent while the call waited, or ran out
    /// while it grew.
    #[error("the node's memory budget for adapter instances ({0} MiB) is spent")]
    MemoryBudget(u32),
    /// The adapter handed the host more bytes at once than its limit (`max_result_bytes`):
    /// its answer, or the arguments of one host call. Refused before they were copied out of
    /// its memory.
    #[error("adapter handed the host more than its limit of {0} bytes at once (max_result_bytes)")]
    ResultTooLarge(u32),
    /// The call needs a part of the contract the component's version does not have (a
    /// `supplement` or a `withdraw` of a 0.1 component, materials handed to one): not made.
    #[error("the adapter implements contract {contract}, which has no {what}")]
    Unsupported {
        /// The version the component implements.
        contract: Contract,
        /// What it lacks: `supplement`, `withdraw`, `materials`.
        what: &'static str,
    },
    /// A material of the call could not be read from the gateway's store while the call ran.
    /// The text is for the log.
    #[error("a material of the call could not be read from the gateway's store")]
    Materials(String),
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
            CallError::MemoryBudget(_) => "memory_budget",
            CallError::ResultTooLarge(_) => "result_too_large",
            CallError::Unsupported { .. } => "unsupported",
            CallError::Materials(_) => "materials",
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
            // An answer the adapter cannot read is its own failure to follow the department;
            // running out its time limit is too, whatever it spent the time on (its own sleep,
            // or more department calls than fit: each department call has its own timeout,
            // and a department's timeout reaches the adapter as its own error to report).
            CallError::Adapter(AdapterError::Protocol(_) | AdapterError::Internal(_))
            | CallError::Trap(_)
            | CallError::CpuLimit(_)
            | CallError::MemoryLimit(_)
            | CallError::Timeout(_)
            | CallError::Instantiate(_)
            | CallError::ResultTooLarge(_) => Fault::Adapter,
            // A 0.1 component asked for what 0.2 added is a routing the gateway made (admission
            // keeps matters with materials from 0.1 components), and the store is the
            // gateway's: neither the department's fault nor the version's.
            CallError::Busy(_)
            | CallError::MemoryBudget(_)
            | CallError::Unsupported { .. }
            | CallError::Materials(_) => Fault::Gateway,
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

/// A component pre-instantiated for the version of the contract it implements.
#[derive(Clone)]
struct Pre {
    /// The component with the host's imports resolved.
    instance_pre: InstancePre<HostState>,
    /// Where its exports are.
    exports: Arc<Exports>,
}

/// Where a component's exports are, found once when it is loaded.
struct Exports {
    /// Every export of its version of the contract, for the bindings of that version.
    every: Indices,
    /// `lookup`, for the call made most often.
    lookup: ComponentExportIndex,
}

/// The bindings' indices of every export, by version.
enum Indices {
    V0_1(v0_1::AdapterIndices),
    V0_2(v0_2::AdapterIndices),
    V0_3(v0_3::AdapterIndices),
}

/// The bindings of one fresh instance, of either version.
enum Instance {
    V0_1(v0_1::Adapter),
    V0_2(v0_2::Adapter),
    V0_3(v0_3::Adapter),
}

/// One fresh instance, its exports looked up only when called.
///
/// Why: the bindings' own instantiation type-checks every export of the contract (eight; six
/// for 0.1) for each instance, where a call uses one, and a lookup is a call that must cost
/// little (1.4 % of the gateway's CPU under the lookup load went to those checks). A lookup checks only
/// `lookup`; every other call takes the whole bindings ([`Fresh::bindings`]).
struct Fresh {
    instance: wasmtime::component::Instance,
    exports: Arc<Exports>,
}

impl Pre {
    /// `component`, its imports resolved by `linker`, as a component of `contract`; it must
    /// export what that version of the contract exports.
    fn new(
        linker: &Linker<HostState>,
        component: &Component,
        contract: Contract,
    ) -> wasmtime::Result<Pre> {
        let instance_pre = linker.instantiate_pre(component)?;
        let every = match contract {
            Contract::V0_1 => Indices::V0_1(v0_1::AdapterIndices::new(&instance_pre)?),
            Contract::V0_2 => Indices::V0_2(v0_2::AdapterIndices::new(&instance_pre)?),
            Contract::V0_3 => Indices::V0_3(v0_3::AdapterIndices::new(&instance_pre)?),
        };
        let lookup = component
            .get_export_index(None, "lookup")
            .ok_or_else(|| wasmtime::format_err!("no `lookup` export"))?;
        Ok(Pre {
            instance_pre,
            exports: Arc::new(Exports { every, lookup }),
        })
    }

    fn engine(&self) -> &wasmtime::Engine {
        self.instance_pre.engine()
    }

    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Fresh> {
        Ok(Fresh {
            instance: self.instance_pre.instantiate_async(store).await?,
            exports: self.exports.clone(),
        })
    }

    fn contract(&self) -> Contract {
        match self.exports.every {
            Indices::V0_1(_) => Contract::V0_1,
            Indices::V0_2(_) => Contract::V0_2,
            Indices::V0_3(_) => Contract::V0_3,
        }
    }
}

impl Fresh {
    /// The bindings of every export (each type-checked), for any call.
    fn bindings(&self, store: &mut Store<HostState>) -> wasmtime::Result<Instance> {
        let instance = &self.instance;
        Ok(match &self.exports.every {
            Indices::V0_1(every) => Instance::V0_1(every.load(store, instance)?),
            Indices::V0_2(every) => Instance::V0_2(every.load(store, instance)?),
            Indices::V0_3(every) => Instance::V0_3(every.load(store, instance)?),
        })
    }

    /// Call `lookup`, the one export checked.
    async fn lookup(
        &self,
        store: &mut Store<HostState>,
        name: &str,
        query: &str,
    ) -> wasmtime::Result<Result<String, AdapterError>> {
        let at = &self.exports.lookup;
        Ok(match self.exports.every {
            Indices::V0_1(_) => {
                type Answer = Result<String, v0_1::gov::adapter::types::AdapterError>;
                let lookup = self
                    .instance
                    .get_typed_func::<(&str, &str), (Answer,)>(&mut *store, at)?;
                compat::text(lookup.call_async(store, (name, query)).await?.0)
            }
            Indices::V0_2(_) | Indices::V0_3(_) => {
                let lookup = self
                    .instance
                    .get_typed_func::<(&str, &str), (Result<String, AdapterError>,)>(
                        &mut *store,
                        at,
                    )?;
                lookup.call_async(store, (name, query)).await?.0
            }
        })
    }
}

/// The version of the contract a component implements, from what it imports and exports
/// (never from what its `describe` says): the `gov:adapter` interfaces it imports name their
/// version; a component that imports none of them is 0.2 when it exports `supplement` and
/// `withdraw` (or 0.3, whose exports are 0.2's, when it describes itself so: see
/// [`LoadedAdapter::load`]). Two versions at once, or one this host does not serve, is refused.
fn detect(component: &Component, engine: &wasmtime::Engine) -> Result<Contract, LoadError> {
    let ty = component.component_type();
    let mut imported = std::collections::BTreeSet::new();
    for (name, _) in ty.imports(engine) {
        if let Some(rest) = name.strip_prefix("gov:adapter/")
            && let Some((_, version)) = rest.split_once('@')
        {
            imported.insert(version.to_string());
        }
    }
    let served = || {
        compat::SERVED
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match imported.len() {
        0 => {
            let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
            Ok(
                if exports.contains(&"supplement") && exports.contains(&"withdraw") {
                    Contract::V0_2
                } else {
                    Contract::V0_1
                },
            )
        }
        1 => {
            let version = imported.pop_first().expect("one");
            Contract::parse(&version).ok_or_else(|| {
                LoadError::Contract(format!(
                    "it imports gov:adapter@{version}; this gateway serves contracts {}",
                    served()
                ))
            })
        }
        _ => Err(LoadError::Contract(format!(
            "it imports gov:adapter at versions {}: a component implements one",
            imported.into_iter().collect::<Vec<_>>().join(" and ")
        ))),
    }
}

/// A compiled, pre-instantiated adapter bound to its department.
pub struct LoadedAdapter {
    pre: Pre,
    /// The contract it implements: its pre-instantiation's, but for a component without
    /// imports that describes 0.3 (run as 0.2, whose exports are the same).
    contract: Contract,
    /// Where the materials of its calls are read.
    blobs: SharedBlobs,
    department: Arc<Department>,
    limits: Limits,
    budget: Arc<MemoryBudget>,
    /// What its last instantiation took of the budget (linear memory and the instance's host
    /// charge): what a call must find free in it.
    initial_memory: Arc<AtomicU64>,
    description: Description,
    /// Hex SHA-256 of the component bytes.
    pub digest: String,
    /// Calls and faults since this version last started serving on this node.
    pub stats: CallStats,
    /// Its calls' metric handles.
    metrics: CallMetrics,
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
        let contract = detect(&component, &engine.engine)?;
        // Without a `gov:adapter` import, 0.2 and 0.3 look alike (0.3 only adds an import).
        let imports_none = !component
            .component_type()
            .imports(&engine.engine)
            .any(|(name, _)| name.starts_with("gov:adapter/"));
        let mut linker = Linker::<HostState>::new(&engine.engine);
        let host = |e: wasmtime::Error| LoadError::Compile(format!("host imports: {e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(host)?;
        type Own = wasmtime::component::HasSelf<HostState>;
        let contract_error =
            |e: wasmtime::Error| LoadError::Contract(format!("contract {contract}: {e:#}"));
        match contract {
            Contract::V0_1 => v0_1::Adapter::add_to_linker::<_, Own>(&mut linker, |s| s),
            Contract::V0_2 => v0_2::Adapter::add_to_linker::<_, Own>(&mut linker, |s| s),
            Contract::V0_3 => v0_3::Adapter::add_to_linker::<_, Own>(&mut linker, |s| s),
        }
        .map_err(host)?;
        let pre = Pre::new(&linker, &component, contract).map_err(contract_error)?;
        // Its version is known once it has described itself (below).
        let metrics = CallMetrics::new(&department.id, "");
        let mut adapter = LoadedAdapter {
            contract: pre.contract(),
            pre,
            blobs: engine.materials.clone(),
            department,
            limits,
            budget: engine.budget.clone(),
            initial_memory: Arc::default(),
            description: Description {
                department: String::new(),
                contract_version: String::new(),
                adapter_version: String::new(),
                matters: Vec::new(),
                lookups: Vec::new(),
            },
            digest: sdk::sign::to_hex(sha2::Sha256::digest(bytes)),
            stats: CallStats::default(),
            metrics,
        };
        adapter.description = adapter
            .call("describe", CallMaterials::default(), |a, s| {
                Box::pin(async move {
                    Ok(match a.bindings(s)? {
                        Instance::V0_1(a) => compat::description(a.call_describe(s).await?),
                        Instance::V0_2(a) => a.call_describe(s).await?,
                        Instance::V0_3(a) => a.call_describe(s).await?,
                    })
                })
            })
            .await
            .map_err(LoadError::Describe)?;
        adapter.metrics =
            CallMetrics::new(&adapter.department.id, &adapter.description.adapter_version);
        if imports_none
            && contract == Contract::V0_2
            && Contract::parse(&adapter.description.contract_version) == Some(Contract::V0_3)
        {
            adapter.contract = Contract::V0_3;
        }
        Ok(adapter)
    }

    /// What its last instance started with, in bytes: its linear memory once instantiated and
    /// the instance's host-side charge, as the memory budget counts it (0 before a call).
    /// A component's own figure: a Rust adapter starts from a few pages, a Python or
    /// JavaScript one from its interpreter's snapshot (BENCHMARKS.md, "Adapters by language").
    pub fn instance_memory(&self) -> u64 {
        self.initial_memory.load(Ordering::Relaxed)
    }

    /// The version of the contract the component implements (detected from the component
    /// itself; admission checks that its `describe` says the same).
    pub fn contract(&self) -> Contract {
        self.contract
    }

    /// The same compiled version bound to another department (or the same one afresh): a
    /// component is described before it is known which department it is for.
    pub fn bind(&self, department: Arc<Department>, limits: Limits) -> LoadedAdapter {
        LoadedAdapter {
            pre: self.pre.clone(),
            contract: self.contract,
            blobs: self.blobs.clone(),
            limits,
            budget: self.budget.clone(),
            initial_memory: Arc::new(AtomicU64::new(self.initial_memory.load(Ordering::Relaxed))),
            description: self.description.clone(),
            digest: self.digest.clone(),
            stats: CallStats::default(),
            metrics: CallMetrics::new(&department.id, &self.description.adapter_version),
            department,
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
        self.call("validate", CallMaterials::default(), move |a, s| {
            Box::pin(async move {
                Ok(match a.bindings(s)? {
                    Instance::V0_1(a) => {
                        compat::field_errors(a.call_validate(s, &matter, &payload).await?)
                    }
                    Instance::V0_2(a) => a.call_validate(s, &matter, &payload).await?,
                    Instance::V0_3(a) => a.call_validate(s, &matter, &payload).await?,
                })
            })
        })
        .await
    }

    /// Hand one matter to the department, with its materials (which the adapter may read and
    /// stream to its department during this call, and no others). A component of contract
    /// 0.1 is handed none: a submission with materials is [`CallError::Unsupported`].
    pub async fn submit(&self, submission: Submission) -> Result<Receipt, CallError> {
        if !submission.materials.is_empty() {
            self.requires_0_2("submit", "materials")?;
        }
        let materials = CallMaterials::of(&submission.materials);
        self.call("submit", materials, move |a, s| {
            Box::pin(async move {
                Ok(match a.bindings(s)? {
                    Instance::V0_1(a) => {
                        compat::receipt(a.call_submit(s, &compat::submission(submission)).await?)
                    }
                    Instance::V0_2(a) => a.call_submit(s, &submission).await?,
                    Instance::V0_3(a) => a.call_submit(s, &submission).await?,
                })
            })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Hand the applicant's supplement of a returned matter to the department (补正), with
    /// the materials it provides. A component of contract 0.1 has no `supplement`:
    /// [`CallError::Unsupported`], nothing called.
    pub async fn supplement(&self, supplement: Supplement) -> Result<Receipt, CallError> {
        self.requires_0_2("supplement", "supplement")?;
        let materials = CallMaterials::of(&supplement.materials);
        self.call("supplement", materials, move |a, s| {
            Box::pin(async move {
                match a.bindings(s)? {
                    Instance::V0_2(a) => a.call_supplement(s, &supplement).await,
                    Instance::V0_3(a) => a.call_supplement(s, &supplement).await,
                    Instance::V0_1(_) => unreachable!("checked before the call"),
                }
            })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Tell the department the applicant withdraws a matter (撤回). A component of contract
    /// 0.1 has no `withdraw`: [`CallError::Unsupported`], nothing called.
    pub async fn withdraw(&self, withdrawal: Withdrawal) -> Result<Receipt, CallError> {
        self.requires_0_2("withdraw", "withdraw")?;
        self.call("withdraw", CallMaterials::default(), move |a, s| {
            Box::pin(async move {
                match a.bindings(s)? {
                    Instance::V0_2(a) => a.call_withdraw(s, &withdrawal).await,
                    Instance::V0_3(a) => a.call_withdraw(s, &withdrawal).await,
                    Instance::V0_1(_) => unreachable!("checked before the call"),
                }
            })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Refuse `call` needing `what`, which contract 0.1 lacks, for a 0.1 component (counted as
    /// a call with outcome `unsupported`).
    fn requires_0_2(&self, call: &'static str, what: &'static str) -> Result<(), CallError> {
        match self.contract() {
            contract if !contract.has_materials() => {
                metrics::counter!("gateway_adapter_calls_total", "department" => self.department.id.clone(), "version" => self.description.adapter_version.clone(), "call" => call, "outcome" => "unsupported").increment(1);
                Err(CallError::Unsupported { contract, what })
            }
            _ => Ok(()),
        }
    }

    /// Read where a matter stands.
    pub async fn status(&self, matter: &str, reference: &str) -> Result<StatusReport, CallError> {
        let (matter, reference) = (matter.to_string(), reference.to_string());
        self.call("status", CallMaterials::default(), move |a, s| {
            Box::pin(async move {
                Ok(match a.bindings(s)? {
                    Instance::V0_1(a) => {
                        compat::status_report(a.call_status(s, &matter, &reference).await?)
                    }
                    Instance::V0_2(a) => a.call_status(s, &matter, &reference).await?,
                    Instance::V0_3(a) => a.call_status(s, &matter, &reference).await?,
                })
            })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Run a shared-data lookup.
    pub async fn lookup(&self, name: &str, query: &str) -> Result<String, CallError> {
        let (name, query) = (name.to_string(), query.to_string());
        self.call("lookup", CallMaterials::default(), move |a, s| {
            Box::pin(async move { a.lookup(s, &name, &query).await })
        })
        .await?
        .map_err(CallError::Adapter)
    }

    /// Read a department's call back to the gateway.
    pub async fn on_callback(&self, request: CallbackRequest) -> Result<StatusReport, CallError> {
        self.call("on_callback", CallMaterials::default(), move |a, s| {
            Box::pin(async move {
                Ok(match a.bindings(s)? {
                    Instance::V0_1(a) => compat::status_report(
                        a.call_on_callback(s, &compat::callback_request(request))
                            .await?,
                    ),
                    Instance::V0_2(a) => a.call_on_callback(s, &request).await?,
                    Instance::V0_3(a) => a.call_on_callback(s, &request).await?,
                })
            })
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
        materials: CallMaterials,
        f: impl for<'a> FnOnce(
            &'a Fresh,
            &'a mut Store<HostState>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        > + Send
        + 'static,
    ) -> Result<R, CallError> {
        let started = Instant::now();
        // The department exchanges of this call are audited with the version that made them.
        let adapter = gateway_store::audit::AdapterRef {
            version: self.description.adapter_version.clone(),
            digest: self.digest.clone(),
            call: name.to_string(),
        };
        let (result, exchanges, material_failure) = gateway_store::audit::scope(
            |c| c.adapter = Some(adapter),
            self.call_bounded(materials, f),
        )
        .await;
        let result = match (result, material_failure) {
            // The store failed the adapter: whatever it made of that (an error, a trap), the
            // call failed by the gateway's fault, not its department's or its own.
            (Ok(answer), Some(why)) if answer.error().is_some() => Err(materials_failed(why)),
            (Err(_), Some(why)) => Err(materials_failed(why)),
            (result, _) => result,
        };
        let result = self.judge(name, result, &exchanges);
        let error = match &result {
            Ok(answer) => answer.error().map(|e| CallError::Adapter(e.clone())),
            Err(e) => Some(e.clone()),
        };
        let fault = error.as_ref().is_some_and(|e| e.fault() == Fault::Adapter);
        self.stats.record(fault);
        let outcome = error.as_ref().map_or("ok", CallError::kind);
        self.metrics
            .record(name, outcome, started.elapsed().as_secs_f64());
        result
    }

    /// What a finished call's outcome becomes: an answer over the size limit is dropped for
    /// an error, the adapter's claims about its department are held against what the host saw,
    /// every text it wrote that can reach a screen or a log is masked and secrets are scrubbed
    /// from its data; a trap's backtrace is logged (masked), never passed on.
    fn judge<R: Outcome>(
        &self,
        name: &str,
        result: Result<R, CallError>,
        exchanges: &Exchanges,
    ) -> Result<R, CallError> {
        let limit = self.limits.max_result_bytes;
        let mut answer = match result {
            // The store's hostcall fuel refused a larger answer before it left the instance;
            // text is counted here too, in case a lift ever stops counting it.
            Ok(answer) if answer.text_len() > limit as usize => {
                drop(answer);
                return Err(CallError::ResultTooLarge(limit));
            }
            Ok(answer) => answer,
            Err(CallError::Trap(detail)) => {
                tracing::warn!(department = %self.department.id, version = %self.description.adapter_version, call = name, trap = %detail, "adapter trapped");
                return Err(CallError::Trap(detail));
            }
            Err(CallError::Instantiate(detail)) => {
                tracing::warn!(department = %self.department.id, version = %self.description.adapter_version, call = name, error = %redact(&detail), "adapter could not be instantiated");
                return Err(CallError::Instantiate(detail));
            }
            Err(e) => return Err(e),
        };
        answer.sanitize(exchanges);
        Ok(answer)
    }

    /// Run `f` in a fresh instance within every bound; what came of it, and the department
    /// exchanges the host saw meanwhile.
    async fn call_bounded<R: Send + 'static>(
        &self,
        materials: CallMaterials,
        f: impl for<'a> FnOnce(
            &'a Fresh,
            &'a mut Store<HostState>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        > + Send
        + 'static,
    ) -> (Result<R, CallError>, Exchanges, Option<String>) {
        let none = (Exchanges::default(), None);
        let department = &self.department;
        let limits = self.limits;
        // Beyond its bound on instances a department's call is refused at once, rather than
        // queue behind a stuck department.
        let Ok(instance) = department.instances.clone().try_acquire_owned() else {
            refused(&department.id, "instances");
            return (
                Err(CallError::Busy(department.max_instances)),
                none.0,
                none.1,
            );
        };
        // The node's memory budget: wait a little for memory to come back, then refuse.
        let expected = self
            .initial_memory
            .load(Ordering::Relaxed)
            .max(INSTANCE_HOST_BYTES);
        if !self.budget.fits(expected) {
            metrics::counter!("gateway_adapter_waits_total", "department" => department.id.clone(), "bound" => "memory").increment(1);
            let wait = ADMISSION_WAIT.min(Duration::from_millis(u64::from(limits.call_timeout_ms)));
            if !self.budget.admit(expected, wait).await {
                refused(&department.id, "memory");
                return (
                    Err(CallError::MemoryBudget(self.budget.limit_mib())),
                    none.0,
                    none.1,
                );
            }
        }
        let live = LiveInstance::new(self.metrics.instances());
        // The CPU limit is the adapter's own execution time: time inside the polls of this
        // call less the host's work in its imports (see `meter`), checked every tick while
        // wasm runs. Waiting for its department, for its turn or after a yield is not counted;
        // the wall-clock bound covers it.
        let meter = CpuMeter::new();
        let run = run_bounded(
            self.pre.clone(),
            department.clone(),
            limits,
            self.budget.clone(),
            self.initial_memory.clone(),
            HostParts {
                materials,
                blobs: self.blobs.get().cloned(),
                meter: meter.clone(),
            },
            f,
        );
        // Boxed here, once: see `executor::run`.
        let call = Box::pin(async move {
            let ran = run.await;
            // The instance's bounds are held until it is gone, wherever it ran.
            drop((instance, live));
            ran
        });
        match executor::run(department, &meter, call).await {
            Ok(ran) => ran,
            Err(Stopped) => (
                Err(CallError::Instantiate(
                    "the department's threads stopped during the call".into(),
                )),
                none.0,
                none.1,
            ),
        }
    }
}

/// What the host hands a call's instance besides its department.
struct HostParts {
    materials: CallMaterials,
    blobs: Option<Arc<dyn crate::blobs::MaterialBlobs>>,
    /// The adapter's own execution time.
    meter: Arc<CpuMeter>,
}

/// A fresh instance of `pre` running `f` within every bound: what
/// came of it, and the department exchanges the host saw meanwhile.
async fn run_bounded<R: Send + 'static>(
    pre: Pre,
    department: Arc<Department>,
    limits: Limits,
    budget: Arc<MemoryBudget>,
    initial_memory: Arc<AtomicU64>,
    parts: HostParts,
    f: impl for<'a> FnOnce(
        &'a Fresh,
        &'a mut Store<HostState>,
    )
        -> std::pin::Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>
    + Send
    + 'static,
) -> (Result<R, CallError>, Exchanges, Option<String>) {
    let meter = parts.meter;
    let mut store = Store::new(
        pre.engine(),
        HostState::new(
            department.clone(),
            limits.memory_mib,
            budget.clone(),
            meter.clone(),
            parts.materials,
            parts.blobs,
        ),
    );
    store.limiter(|s| &mut s.limits);
    // What the host copies out of the instance at once (the call's answer, or one host
    // call's arguments) is bounded by `max_result_bytes`: wasmtime counts the bytes of
    // every string and list it lifts against this fuel and refuses the lift past it, so
    // an oversized answer is never copied into the gateway's memory.
    store.set_hostcall_fuel(limits.max_result_bytes as usize);
    let cpu_limit = Duration::from_millis(u64::from(limits.cpu_ms));
    store.set_epoch_deadline(1);
    {
        let meter = meter.clone();
        store.epoch_deadline_callback(move |_| {
            if meter.spent() > cpu_limit {
                Err(wasmtime::Error::from(Trap::Interrupt))
            } else {
                // Yield each tick: a busy adapter never holds a thread for long.
                Ok(UpdateDeadline::Yield(1))
            }
        });
    }
    let run = async {
        let adapter = pre
            .instantiate(&mut store)
            .await
            .map_err(|e| classify(e, &limits, true))?;
        let limiter = &mut store.data_mut().limits;
        initial_memory.store(limiter.held, Ordering::Relaxed);
        limiter.running = true;
        f(&adapter, &mut store)
            .await
            .map_err(|e| classify(e, &limits, false))
    };
    let bound = Duration::from_millis(u64::from(limits.call_timeout_ms)) + TICK;
    let metered = Metered::new(run, meter, department.running.clone());
    let result = match tokio::time::timeout(bound, metered).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout(limits.call_timeout_ms)),
    };
    let state = store.data();
    let result = match result {
        // A growth the node's budget refused, not the instance's own limit.
        Err(CallError::MemoryLimit(_) | CallError::Trap(_) | CallError::Instantiate(_))
            if state.limits.denied_by_budget =>
        {
            refused(&department.id, "memory");
            Err(CallError::MemoryBudget(budget.limit_mib()))
        }
        other => other,
    };
    (result, state.exchanges, state.material_failure.clone())
}

fn materials_failed(why: String) -> CallError {
    tracing::warn!(error = %redact(&why), "an adapter call failed: a material could not be read");
    CallError::Materials(why)
}

/// A call refused busy by one of its bounds, counted.
fn refused(department: &str, bound: &'static str) {
    metrics::counter!("gateway_adapter_refusals_total", "department" => department.to_string(), "bound" => bound).increment(1);
}

/// One live instance in the `gateway_adapter_instances` gauge, for as long as it lives (a
/// cancelled call included).
struct LiveInstance(metrics::Gauge);

impl LiveInstance {
    fn new(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        LiveInstance(gauge)
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn classify(error: wasmtime::Error, limits: &Limits, instantiating: bool) -> CallError {
    let text = format!("{error:#}");
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::CpuLimit(limits.cpu_ms),
        Some(Trap::AllocationTooLarge) => CallError::MemoryLimit(limits.memory_mib),
        // wasmtime's refusal of a lift past the store's hostcall fuel (no type to match).
        _ if text.contains("fuel allocated for hostcalls has been exhausted") => {
            CallError::ResultTooLarge(limits.max_result_bytes)
        }
        _ if text.contains("forcing trap when growing memory")
            || text.contains("memory minimum size") =>
        {
            CallError::MemoryLimit(limits.memory_mib)
        }
        Some(_) => CallError::Trap(redact(&text)),
        None if instantiating => CallError::Instantiate(text),
        None => CallError::Trap(redact(&text)),
    }
}
