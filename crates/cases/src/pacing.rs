//! How deliveries to one department are paced: attempts, concurrency, circuit breaker, claims.
//!
//! - **Attempts**: "unavailable" and timeouts are retried with exponential backoff and jitter;
//!   after `max_attempts` the step is a dead letter, visible to operators and replayable.
//! - **Concurrency**: at most `max_concurrent` calls in flight to one department from this node.
//!   The dispatcher takes a slot before it claims a step, so a department at its limit leaves
//!   its due steps unclaimed (for another node, or for later) instead of holding them.
//! - **Circuit breaker**: after `breaker_failures` consecutive failures the department is left
//!   alone for `breaker_cooldown_ms`; due deliveries wait without spending attempts. After the
//!   cool-down exactly one delivery goes, the probe; the others wait for its outcome: an answer
//!   closes the circuit, a failure opens it for another cool-down.
//! - **Claims**: a node claims a step before delivering it, for `claim_ms`; with several nodes on
//!   one PostgreSQL, only one delivers, and a node that dies leaves the step to the others when
//!   its claim expires. The department's idempotency key makes a repeat after a crash harmless.

use gateway_base::config::Config;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The pacing of one department.
#[derive(Debug)]
pub struct DepartmentPacing {
    /// Attempts before a dead letter.
    pub max_attempts: i64,
    /// Calls in flight from this node.
    permits: Arc<Semaphore>,
    max_concurrent: u32,
    breaker_failures: u32,
    breaker_cooldown_ms: i64,
    breaker: Mutex<Breaker>,
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    /// Open until this instant (Unix ms); after it, half open.
    open_until: i64,
    /// Half open and the probe is out.
    probing: bool,
}

/// Circuit state, for metrics and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls flow.
    Closed,
    /// Calls wait until the instant (Unix ms).
    Open(i64),
    /// The cool-down is over: one probe may go (or is out), the rest wait for its outcome.
    HalfOpen,
}

/// What the dispatcher may do with a due step of this department now.
#[derive(Debug)]
pub enum Admission {
    /// Deliver it, holding this ticket until the outcome is known.
    Go(Ticket),
    /// Leave it unclaimed: every slot is taken, or the probe is out.
    Wait,
    /// The circuit is open until this instant (Unix ms): push the step back to it.
    Postpone(i64),
}

/// A delivery's slot at its department, and whether it is the probe of a half-open circuit.
/// Its outcome is reported with [`Ticket::succeeded`] or [`Ticket::failed`]; a probe dropped
/// without either (the call never reached the department) lets the next delivery probe.
#[derive(Debug)]
pub struct Ticket {
    pacing: Arc<DepartmentPacing>,
    _permit: OwnedSemaphorePermit,
    probe: bool,
}

impl DepartmentPacing {
    fn new(max_attempts: u32, max_concurrent: u32, failures: u32, cooldown_ms: u64) -> Self {
        DepartmentPacing {
            max_attempts: i64::from(max_attempts),
            permits: Arc::new(Semaphore::new(max_concurrent as usize)),
            max_concurrent,
            breaker_failures: failures,
            breaker_cooldown_ms: cooldown_ms as i64,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    fn breaker(&self) -> MutexGuard<'_, Breaker> {
        // The state is a few integers, consistent after every statement: a panic elsewhere
        // while it was held leaves nothing half-written.
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The circuit now.
    pub fn circuit(&self, now_ms: i64) -> Circuit {
        let breaker = self.breaker();
        if breaker.open_until > now_ms {
            Circuit::Open(breaker.open_until)
        } else if breaker.consecutive_failures >= self.breaker_failures {
            Circuit::HalfOpen
        } else {
            Circuit::Closed
        }
    }

    /// May a delivery to this department start now?
    pub fn admit(self: &Arc<Self>, now_ms: i64) -> Admission {
        let mut breaker = self.breaker();
        if breaker.open_until > now_ms {
            return Admission::Postpone(breaker.open_until);
        }
        let half_open = breaker.consecutive_failures >= self.breaker_failures;
        if half_open && breaker.probing {
            return Admission::Wait;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Admission::Wait;
        };
        breaker.probing = half_open;
        Admission::Go(Ticket {
            pacing: self.clone(),
            _permit: permit,
            probe: half_open,
        })
    }
}

impl Ticket {
    /// The department's pacing.
    pub fn pacing(&self) -> &Arc<DepartmentPacing> {
        &self.pacing
    }

    /// Whether this delivery is the probe of a half-open circuit.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call reached the department and it answered (whatever the business outcome): the
    /// circuit closes.
    pub fn succeeded(self) {
        let mut breaker = self.pacing.breaker();
        breaker.consecutive_failures = 0;
        breaker.open_until = 0;
        breaker.probing = false;
    }

    /// The department was unavailable or timed out; enough of these in a row (a failed probe is
    /// one more) open the circuit for a cool-down.
    pub fn failed(self, now_ms: i64) {
        let pacing = &self.pacing;
        let mut breaker = pacing.breaker();
        breaker.consecutive_failures = breaker.consecutive_failures.saturating_add(1);
        if self.probe {
            breaker.probing = false;
        }
        if breaker.consecutive_failures >= pacing.breaker_failures {
            breaker.open_until = now_ms + pacing.breaker_cooldown_ms;
            tracing::warn!(
                failures = breaker.consecutive_failures,
                cooldown_ms = pacing.breaker_cooldown_ms,
                probe = self.probe,
                "circuit opened"
            );
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // A probe that ends without an outcome (the call never reached the department) leaves
        // the circuit half open for the next delivery to probe. After `succeeded` or `failed`
        // this finds `probing` already cleared.
        if self.probe {
            self.pacing.breaker().probing = false;
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
                let pacing = DepartmentPacing::new(
                    d.max_attempts,
                    d.max_concurrent,
                    d.breaker_failures,
                    d.breaker_cooldown_ms,
                );
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

/// The wait before the next attempt of anything the gateway sends for a department or a
/// channel (a delivery, a supplement or withdrawal, a notice, a national report), from the
/// attempts spent: exponential with jitter, 0.5 s, 1 s, 2 s … capped at 60 s, ±25 %, so that
/// retries of many items spread out instead of arriving together.
pub(crate) fn backoff_ms(attempts: i64) -> i64 {
    let base = (500_i64 << attempts.clamp(0, 7)).min(60_000);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as i64; // 0..999 ‰
    base * 3 / 4 + base * jitter / 2000
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

    fn pacing(max_concurrent: u32) -> Arc<DepartmentPacing> {
        Arc::new(DepartmentPacing::new(3, max_concurrent, 2, 1_000))
    }

    fn go(admission: Admission) -> Ticket {
        match admission {
            Admission::Go(ticket) => ticket,
            other => panic!("expected to go, got {other:?}"),
        }
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() {
        let p = pacing(4);
        go(p.admit(0)).failed(0);
        assert_eq!(p.circuit(0), Circuit::Closed);
        go(p.admit(5)).succeeded();
        go(p.admit(10)).failed(10);
        assert_eq!(
            p.circuit(10),
            Circuit::Closed,
            "a success in between resets the count"
        );
        go(p.admit(20)).failed(20);
        assert_eq!(p.circuit(20), Circuit::Open(1_020));
        assert!(matches!(p.admit(500), Admission::Postpone(1_020)));
        assert_eq!(p.circuit(1_021), Circuit::HalfOpen);
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_and_its_outcome_decides() {
        let p = pacing(4);
        go(p.admit(0)).failed(0);
        go(p.admit(0)).failed(0);
        let probe = go(p.admit(1_001));
        assert!(probe.is_probe());
        assert!(
            matches!(p.admit(1_002), Admission::Wait),
            "the rest wait while the probe is out"
        );
        probe.failed(1_100);
        assert!(
            matches!(p.admit(1_200), Admission::Postpone(2_100)),
            "a failed probe opens the circuit again"
        );
        let probe = go(p.admit(2_100));
        assert!(probe.is_probe());
        drop(probe);
        let probe = go(p.admit(2_101));
        assert!(
            probe.is_probe(),
            "a probe that never reached the department lets the next one probe"
        );
        probe.succeeded();
        assert_eq!(p.circuit(2_102), Circuit::Closed);
        let tickets: Vec<Ticket> = (0..4).map(|_| go(p.admit(2_103))).collect();
        assert!(tickets.iter().all(|t| !t.is_probe()), "closed: all flow");
    }

    #[test]
    fn a_department_at_its_limit_admits_nothing_more_until_a_slot_frees() {
        let p = pacing(2);
        let first = go(p.admit(0));
        let _second = go(p.admit(0));
        assert!(matches!(p.admit(0), Admission::Wait));
        first.succeeded();
        go(p.admit(0));
    }
}
