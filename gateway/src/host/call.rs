//! One loaded adapter and the calls into it, each in a fresh, bounded instance.

use super::bindings::{Adapter, AdapterPre};
use super::contract::{
    AdapterError, CallbackRequest, Description, FieldError, Receipt, StatusReport, Submission,
};
use super::engine::{PluginEngine, TICK};
use super::imports::{Department, HostState};
use crate::config::Limits;
use std::sync::Arc;
use std::time::Duration;
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
}

/// A compiled, pre-instantiated adapter bound to its department.
pub struct LoadedAdapter {
    pre: AdapterPre<HostState>,
    department: Arc<Department>,
    limits: Limits,
    description: Description,
    /// Hex SHA-256 of the component bytes.
    pub digest: String,
}

impl LoadedAdapter {
    /// Compile and pre-instantiate a component for a department, and ask it to describe itself.
    pub async fn load(
        engine: &PluginEngine,
        bytes: &[u8],
        department: Arc<Department>,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        use sha2::Digest;
        let component = Component::new(&engine.engine, bytes)?;
        let mut linker = Linker::<HostState>::new(&engine.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Adapter::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre = AdapterPre::new(linker.instantiate_pre(&component)?)?;
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
        };
        adapter.description = adapter
            .call(|a, s| Box::pin(async move { a.call_describe(s).await }))
            .await
            .map_err(|e| anyhow::anyhow!("describe failed: {e}"))?;
        Ok(adapter)
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
        self.call(move |a, s| Box::pin(async move { a.call_validate(s, &matter, &payload).await }))
            .await
    }

    /// Hand one matter to the department.
    pub async fn submit(&self, submission: Submission) -> Result<Receipt, CallError> {
        self.call(move |a, s| Box::pin(async move { a.call_submit(s, &submission).await }))
            .await?
            .map_err(CallError::Adapter)
    }

    /// Read where a matter stands.
    pub async fn status(&self, matter: &str, reference: &str) -> Result<StatusReport, CallError> {
        let (matter, reference) = (matter.to_string(), reference.to_string());
        self.call(move |a, s| Box::pin(async move { a.call_status(s, &matter, &reference).await }))
            .await?
            .map_err(CallError::Adapter)
    }

    /// Run a shared-data lookup.
    pub async fn lookup(&self, name: &str, query: &str) -> Result<String, CallError> {
        let (name, query) = (name.to_string(), query.to_string());
        self.call(move |a, s| Box::pin(async move { a.call_lookup(s, &name, &query).await }))
            .await?
            .map_err(CallError::Adapter)
    }

    /// Read a department's call back to the gateway.
    pub async fn on_callback(&self, request: CallbackRequest) -> Result<StatusReport, CallError> {
        self.call(move |a, s| Box::pin(async move { a.call_on_callback(s, &request).await }))
            .await?
            .map_err(CallError::Adapter)
    }

    /// Run `f` against a fresh instance in a fresh store, within the adapter's limits.
    async fn call<R: Send + 'static>(
        &self,
        f: impl for<'a> FnOnce(
            &'a Adapter,
            &'a mut Store<HostState>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        > + Send,
    ) -> Result<R, CallError> {
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
        Some(_) => CallError::Trap(crate::redact::redact(&text)),
        None if instantiating => CallError::Instantiate(text),
        None => CallError::Trap(crate::redact::redact(&text)),
    }
}
