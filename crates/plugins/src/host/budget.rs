//! The node's memory budget for adapter instances, and the limiter each instance grows under.
//!
//! Every instance's linear memory is counted as it grows (instantiation included) against one
//! budget for the whole node, and given back when the instance is dropped. What the pool keeps
//! resident in slots no instance uses (up to 512 KiB of the pages an instance wrote, reset in
//! place rather than given back to the system, so the next call does not fault them in again)
//! counts too, as the engine reports it: the budget bounds the resident memory of instances and
//! their slots, whatever they do. A call is admitted only while the budget has room for what its adapter
//! needed at instantiation last time; otherwise it waits (up to [`ADMISSION_WAIT`]) for memory
//! to come back, then is refused as busy. Once running, an instance may not grow into the last
//! eighth of the budget, which is kept for instantiating new calls: a memory bomb fails its own
//! call, and the next ordinary call still starts.
//!
//! An instance also holds memory outside its linear memory: its store, the instance's state,
//! the stack its code runs on, the call's buffers (measured at 100 to 300 KiB). Each live
//! instance is charged [`INSTANCE_HOST_BYTES`] for it, from admission to its end, so that the
//! budget bounds what instances cost the process, not only their linear memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::{ResourceLimiter, StoreLimits};

/// Longest a call waits at admission for the budget before it is refused.
pub(crate) const ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// What one live instance is charged beside its linear memory, for its host-side state.
pub(crate) const INSTANCE_HOST_BYTES: u64 = 256 << 10;

/// Linear memory all adapter instances of a node may hold together.
pub(crate) struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
    /// What the pool kept resident in unused slots when last asked (at each admission).
    pooled: AtomicU64,
    engine: Option<wasmtime::EngineWeak>,
    released: tokio::sync::Notify,
    /// `gateway_adapter_memory_bytes` and `gateway_adapter_pool_resident_bytes`, set at every
    /// call: handles kept rather than looked up each time (`call_metrics` says why).
    used_gauge: metrics::Gauge,
    pooled_gauge: metrics::Gauge,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit)
            .field("used", &self.used)
            .field("pooled", &self.pooled)
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `limit_mib` for the instances of `engine` (and what its pool keeps resident).
    pub(crate) fn new(limit_mib: u32, engine: Option<wasmtime::EngineWeak>) -> Arc<Self> {
        let budget = MemoryBudget {
            limit: u64::from(limit_mib) << 20,
            used: AtomicU64::new(0),
            pooled: AtomicU64::new(0),
            engine,
            released: tokio::sync::Notify::new(),
            used_gauge: metrics::gauge!("gateway_adapter_memory_bytes"),
            pooled_gauge: metrics::gauge!("gateway_adapter_pool_resident_bytes"),
        };
        metrics::gauge!("gateway_adapter_memory_budget_bytes").set(budget.limit as f64);
        Arc::new(budget)
    }

    /// The budget in MiB.
    pub(crate) fn limit_mib(&self) -> u32 {
        (self.limit >> 20) as u32
    }

    /// Bytes held by live instances now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes the pool keeps resident in slots no instance uses, asked of the engine now.
    fn pooled_now(&self) -> u64 {
        let pooled = self
            .engine
            .as_ref()
            .and_then(wasmtime::EngineWeak::upgrade)
            .and_then(|engine| engine.pooling_allocator_metrics())
            .map_or(0, |m| {
                (m.unused_memory_bytes_resident()
                    + m.unused_table_bytes_resident()
                    + m.unused_stack_bytes_resident().unwrap_or(0)) as u64
            });
        self.pooled.store(pooled, Ordering::Relaxed);
        self.pooled_gauge.set(pooled as f64);
        pooled
    }

    /// Whether `expected` more bytes fit now, live instances and the pool's resident slots
    /// counted.
    pub(crate) fn fits(&self, expected: u64) -> bool {
        self.used() + self.pooled_now() + expected <= self.limit
    }

    /// Take `bytes` if the total, with what the pool keeps resident, stays within `ceiling`.
    fn take(&self, bytes: u64, ceiling: u64) -> bool {
        let pooled = self.pooled.load(Ordering::Relaxed);
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + pooled + bytes <= ceiling).then_some(used + bytes)
            });
        if let Ok(before) = taken {
            self.used_gauge.set((before + bytes) as f64);
        }
        taken.is_ok()
    }

    /// Take `bytes` already admitted (an instance's host-side charge), whatever is left.
    fn charge(&self, bytes: u64) {
        let before = self.used.fetch_add(bytes, Ordering::AcqRel);
        self.used_gauge.set((before + bytes) as f64);
    }

    fn give_back(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.used_gauge.set((before - bytes) as f64);
        self.released.notify_waiters();
    }

    /// What a running instance may grow to: all but the eighth kept for instantiation.
    fn running_ceiling(&self) -> u64 {
        self.limit - self.limit / 8
    }

    /// Wait until `expected` bytes fit in the budget, at most `wait`; whether they do.
    pub(crate) async fn admit(&self, expected: u64, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before looking, so memory given back in between is not missed.
            released.as_mut().enable();
            if self.fits(expected) {
                return true;
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return self.fits(expected);
            }
        }
    }
}

/// The resource limiter of one store: the instance's own limits, then the node's budget.
pub(crate) struct Limiter {
    own: StoreLimits,
    budget: Arc<MemoryBudget>,
    /// Bytes this store holds of the budget.
    pub(crate) held: u64,
    /// Instantiation is over: growth may no longer use the reserve.
    pub(crate) running: bool,
    /// A growth was refused because the budget was spent (rather than the instance's limit).
    pub(crate) denied_by_budget: bool,
}

impl Limiter {
    /// The limiter of an admitted instance, charged [`INSTANCE_HOST_BYTES`] from the start.
    pub(crate) fn new(own: StoreLimits, budget: Arc<MemoryBudget>) -> Self {
        budget.charge(INSTANCE_HOST_BYTES);
        Limiter {
            own,
            budget,
            held: INSTANCE_HOST_BYTES,
            running: false,
            denied_by_budget: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.own.memory_growing(current, desired, maximum)? {
            return Ok(false);
        }
        let bytes = desired.saturating_sub(current) as u64;
        let ceiling = if self.running {
            self.budget.running_ceiling()
        } else {
            self.budget.limit
        };
        if self.budget.take(bytes, ceiling) {
            self.held += bytes;
            Ok(true)
        } else {
            self.denied_by_budget = true;
            Err(wasmtime::Error::msg(format!(
                "the node's memory budget for adapter instances ({} MiB) is spent",
                self.budget.limit_mib()
            )))
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.own.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.own.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.own.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.own.instances()
    }

    fn tables(&self) -> usize {
        self.own.tables()
    }

    fn memories(&self) -> usize {
        self.own.memories()
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::StoreLimitsBuilder;

    fn limiter(budget: &Arc<MemoryBudget>, own_mib: usize) -> Limiter {
        Limiter::new(
            StoreLimitsBuilder::new()
                .memory_size(own_mib << 20)
                .trap_on_grow_failure(true)
                .build(),
            budget.clone(),
        )
    }

    #[tokio::test]
    async fn instances_grow_within_the_budget_and_give_it_back() {
        const HOST: u64 = INSTANCE_HOST_BYTES;
        let budget = MemoryBudget::new(16, None);
        let mut a = limiter(&budget, 64);
        assert_eq!(
            budget.used(),
            HOST,
            "charged for its host-side state at once"
        );
        assert!(a.memory_growing(0, 2 << 20, None).unwrap());
        a.running = true;
        // Running, it may not take the last eighth (2 MiB of 16).
        let ceiling = (14 << 20) - HOST as usize;
        assert!(a.memory_growing(2 << 20, ceiling, None).unwrap());
        assert!(
            a.memory_growing(ceiling, ceiling + (1 << 20), None)
                .is_err()
        );
        assert!(a.denied_by_budget);
        // A new instance still starts in the reserve.
        let mut b = limiter(&budget, 64);
        assert!(b.memory_growing(0, 1 << 20, None).unwrap());
        assert_eq!(budget.used(), (15 << 20) + HOST);
        // Nothing more fits: admission waits, then says no.
        assert!(!budget.admit(2 << 20, Duration::from_millis(20)).await);
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.admit(2 << 20, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        drop(a);
        assert!(waiting.await.unwrap(), "admitted once memory came back");
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_instance_limit_is_judged_first() {
        let budget = MemoryBudget::new(1024, None);
        let mut a = limiter(&budget, 1);
        assert!(a.memory_growing(0, 2 << 20, None).is_err());
        assert!(!a.denied_by_budget);
        assert_eq!(budget.used(), INSTANCE_HOST_BYTES);
        drop(a);
        assert_eq!(budget.used(), 0);
    }
}
