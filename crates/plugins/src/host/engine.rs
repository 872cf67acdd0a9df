//! One wasmtime engine for the process: pooling allocator, epoch interruption, async calls.

use super::budget::MemoryBudget;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: how often running wasm checks its CPU limit and yields to
/// tokio (and to the other instances of its department).
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// The engine. A thread advances its epoch for as long as anything (a loaded component, a
/// running call) still holds the engine; it ends by itself when the last holder is gone.
#[derive(Clone)]
pub struct PluginEngine {
    pub(crate) engine: Engine,
    /// The memory all instances of this engine may hold together.
    pub(crate) budget: Arc<MemoryBudget>,
    /// Where the materials of calls are read, once attached.
    pub(crate) materials: super::materials::SharedBlobs,
}

/// Bytes of each linear memory kept resident (the pages its instance wrote, reset in place)
/// when a slot is given back, so that the next call does not fault them in again. The
/// adapters' working set per call, stack and heap, is well under this (the tax adapter's
/// slots keep under 0.5 MiB in all after a thousand lookups). A slot an instance wrote more
/// of keeps this much, whoever uses it next, and every slot once used stays warm (see
/// [`WARM_SLOTS`]): after a burst of memory bombs, each slot they held keeps it, counted
/// against the memory budget. After the fairness benchmark's bombs the gateway stayed 112 MiB
/// over its footprint at 2 MiB, 32 MiB at 512 KiB, with the same instantiation time
/// (BENCHMARKS.md).
const KEEP_RESIDENT: usize = 512 << 10;

/// Unused warm slots below which wasmtime takes a never-used slot for a new instance (so
/// that the warm ones stay affine to their module) and at or above which it reuses a warm
/// one. It orders reuse, it does not bound how many slots stay warm: that is about the most
/// instances alive at once, or this.
const WARM_SLOTS: u32 = 16;

/// Largest memory any adapter may be configured with; the pool reserves slots of this size.
pub const MAX_MEMORY_MIB: u32 = 512;

impl PluginEngine {
    /// An engine whose pool fits `max_instances` live adapter instances at once.
    ///
    /// With `cache_dir`, compiled components are kept on disk keyed by their content and the
    /// engine's settings, so a restart (or another test process) does not compile them again.
    pub fn new(max_instances: u32, cache_dir: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(max_instances)
            .total_core_instances(max_instances * 2)
            .total_memories(max_instances * 2)
            .total_tables(max_instances * 2)
            .max_memory_size((MAX_MEMORY_MIB as usize) << 20)
            // Every call gets a fresh instance, so resetting a slot is on every call's path.
            // Zero the pages an instance dirtied in place (PAGEMAP_SCAN finds them, Linux 6.7+)
            // rather than `madvise` them away and fault them back in on the next call: a
            // per-call syscall and page faults become a memset of what was touched.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .max_unused_warm_slots(WARM_SLOTS)
            .table_keep_resident(KEEP_RESIDENT / 16)
            // What must still be decommitted (beyond what is kept resident: a memory bomb's
            // pages) is given back as soon as its instance is gone, so the memory budget, which
            // counts live instances, bounds what is resident too.
            .decommit_batch_size(1);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // For profiling adapters with `perf`: a /tmp/perf-<pid>.map names the compiled code.
        if std::env::var_os("GATEWAY_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if let Some(dir) = cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            config.cache(Some(wasmtime::Cache::new(cache)?));
        }
        let engine = Engine::new(&config)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        let budget = MemoryBudget::new(DEFAULT_MEMORY_BUDGET_MIB, Some(engine.weak()));
        Ok(PluginEngine {
            engine,
            budget,
            materials: Default::default(),
        })
    }

    /// Where every adapter of this engine reads the materials of its calls: the node's store
    /// (once; later calls are ignored). Until then a call's materials cannot be read (the
    /// call fails by the gateway's fault, [`super::CallError::Materials`]).
    pub fn attach_materials(&self, blobs: Arc<dyn crate::blobs::MaterialBlobs>) {
        let _ = self.materials.set(blobs);
    }

    /// The same engine with a memory budget for its instances (`plugins.memory_budget_mib`);
    /// set before any adapter is loaded, which keeps the budget it was loaded with.
    pub fn with_memory_budget(mut self, mib: u32) -> Self {
        self.budget = MemoryBudget::new(mib, Some(self.engine.weak()));
        self
    }

    /// What the memory budget counts of live instances now (their linear memory and each
    /// one's host-side charge), in bytes.
    pub fn memory_in_use(&self) -> u64 {
        self.budget.used()
    }
}

/// The budget an engine has until told otherwise (the config's default).
const DEFAULT_MEMORY_BUDGET_MIB: u32 = 1024;
