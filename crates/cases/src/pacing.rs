//! How deliveries to one department are paced: attempts, concurrency, circuit breaker, claims.
//!
//! - **Attempts**: "unavailable" and timeouts are retried with exponential backoff and jitter;
//!   after `max_attempts` the step is a dead letter, visible to operators and replayable.
//! - **Concurrency**: at most `max_concurrent` calls in flight to one department from this node.
//! - **Circuit breaker**: after `breaker_failures` consecutive failures the department is left
//!   alone for `breaker_cooldown_ms`; due deliveries wait without spending attempts. The first
//!   delivery after the cool-down is the probe that closes or reopens it.
//! - **Claims**: a node claims a step before delivering it, for `claim_ms`; with several nodes on
//!   one PostgreSQL, only one delivers, and a node that dies leaves the step to the others when
//!   its claim expires. The department's idempotency key makes a repeat after a crash harmless.

use gateway_base::config::Config;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use tokio::sync::{Notify, Semaphore};

/// The pacing of one department.
#[derive(Debug)]
pub struct DepartmentPacing {
    /// Attempts before a dead letter.
    pub max_attempts: i64,
    /// Calls in flight from this node.
    pub permits: Semaphore,
    max_concurrent: u32,
    breaker_failures: u32,
    breaker_cooldown_ms: i64,
    consecutive_failures: AtomicU32,
    open_until: AtomicI64,
}

/// Circuit state, for metrics and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls flow.
    Closed,
    /// Calls wait until the instant (Unix ms).
    Open(i64),
}

impl DepartmentPacing {
    /// The circuit now.
    pub fn circuit(&self, now_ms: i64) -> Circuit {
        let until = self.open_until.load(Ordering::Relaxed);
        if until > now_ms {
            Circuit::Open(until)
        } else {
            Circuit::Closed
        }
    }

    /// A call reached the department and it answered (whatever the business outcome).
    pub fn succeeded(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// The department was unavailable or timed out.
    pub fn failed(&self, now_ms: i64) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.breaker_failures {
            self.open_until
                .store(now_ms + self.breaker_cooldown_ms, Ordering::Relaxed);
            tracing::warn!(
                failures,
                cooldown_ms = self.breaker_cooldown_ms,
                "circuit opened"
            );
        }
    }
}

/// Delivery settings and state of this node.
#[derive(Debug)]
pub struct Delivery {
    /// This node's id in claims.
    pub node: String,
    /// How long a claim holds.
    pub claim_ms: i64,
    /// Per department; a config reload replaces it (a department whose settings are unchanged
    /// keeps its pacing, open circuit included).
    pacing: arc_swap::ArcSwap<BTreeMap<String, Arc<DepartmentPacing>>>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Delivery {
    /// Pacing for every configured department.
    pub fn new(config: &Config, node: String) -> Self {
        Delivery {
            node,
            claim_ms: config.server.claim_ms as i64,
            pacing: arc_swap::ArcSwap::from_pointee(Self::pacing_of(config, &BTreeMap::new())),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    fn pacing_of(
        config: &Config,
        previous: &BTreeMap<String, Arc<DepartmentPacing>>,
    ) -> BTreeMap<String, Arc<DepartmentPacing>> {
        config
            .departments
            .iter()
            .map(|(id, d)| {
                let pacing = DepartmentPacing {
                    max_attempts: i64::from(d.max_attempts),
                    permits: Semaphore::new(d.max_concurrent as usize),
                    max_concurrent: d.max_concurrent,
                    breaker_failures: d.breaker_failures,
                    breaker_cooldown_ms: d.breaker_cooldown_ms as i64,
                    consecutive_failures: AtomicU32::new(0),
                    open_until: AtomicI64::new(0),
                };
                let pacing = match previous.get(id) {
                    Some(old)
                        if old.max_attempts == pacing.max_attempts
                            && old.max_concurrent == d.max_concurrent
                            && old.breaker_failures == pacing.breaker_failures
                            && old.breaker_cooldown_ms == pacing.breaker_cooldown_ms =>
                    {
                        old.clone()
                    }
                    _ => Arc::new(pacing),
                };
                (id.clone(), pacing)
            })
            .collect()
    }

    /// Pace deliveries by a reloaded config. Deliveries in flight keep the pacing they took.
    pub fn reconfigure(&self, config: &Config) {
        let next = Self::pacing_of(config, &self.pacing.load());
        self.pacing.store(Arc::new(next));
    }

    /// The pacing of a department.
    pub fn pacing(&self, department: &str) -> Option<Arc<DepartmentPacing>> {
        self.pacing.load().get(department).cloned()
    }

    /// Mark a delivery as running until the guard drops.
    pub fn track(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        gateway_base::telemetry::in_flight(now);
        InFlight(self.clone())
    }

    /// Deliveries running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Wait until no delivery runs.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A running delivery; dropping it ends it.
pub struct InFlight(Arc<Delivery>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let left = self.0.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        gateway_base::telemetry::in_flight(left);
        if left == 0 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> DepartmentPacing {
        DepartmentPacing {
            max_attempts: 3,
            permits: Semaphore::new(1),
            max_concurrent: 1,
            breaker_failures: 2,
            breaker_cooldown_ms: 1_000,
            consecutive_failures: AtomicU32::new(0),
            open_until: AtomicI64::new(0),
        }
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_closes_after_cooldown() {
        let p = pacing();
        p.failed(0);
        assert_eq!(p.circuit(0), Circuit::Closed);
        p.succeeded();
        p.failed(10);
        assert_eq!(
            p.circuit(10),
            Circuit::Closed,
            "a success in between resets the count"
        );
        p.failed(20);
        assert_eq!(p.circuit(20), Circuit::Open(1_020));
        assert_eq!(p.circuit(1_021), Circuit::Closed);
    }
}
