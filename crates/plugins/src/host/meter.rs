//! The adapter's own execution time, and its department's share of the cores.
//!
//! A call's future is polled by tokio; while a poll runs, the adapter's code runs on that thread,
//! or the host's own work for one of its imports (building a department request, reading the
//! answer, writing the audit record). Waiting — for a department's answer, for the next turn
//! after a yield, for a share of the cores — happens between polls. So the time inside polls,
//! less the time inside the host's imports ([`CpuMeter::host_call`]), is the adapter's own
//! execution time, which the CPU limit bounds; the rest is the host's or waiting, which only the
//! wall-clock bound covers.
//!
//! Each poll also holds one of its department's running permits (`max_running`), given back
//! whenever the call waits: however many instances one department has, they run wasm on at most
//! that many threads at once, and take turns there in order, so the other departments' calls
//! always find a core.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// The adapter's own execution time past which a call is no longer quick (a lookup's or a
/// submission's adapter code takes tens of microseconds; see [`super::executor`]).
const QUICK: Duration = Duration::from_micros(500);

/// Time spent inside polls of one call, readable from the epoch callback during a poll.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    base: Instant,
    /// Nanoseconds spent in finished polls.
    spent: AtomicU64,
    /// Nanoseconds since `base` at which the current poll started; `u64::MAX` between polls.
    since: AtomicU64,
    /// Inside a host import: polls do not count.
    in_host: std::sync::atomic::AtomicBool,
}

impl CpuMeter {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(CpuMeter {
            base: Instant::now(),
            spent: AtomicU64::new(0),
            since: AtomicU64::new(u64::MAX),
            in_host: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether the adapter's code has run longer than a quick call's does ([`QUICK`]).
    pub(crate) fn busy(&self) -> bool {
        self.spent() > QUICK
    }

    /// The host's own work for an import starts: it is not the adapter's execution time, until
    /// the guard is dropped (the import returned, or the call was cancelled).
    pub(crate) fn host_call(self: &Arc<Self>) -> HostCall {
        self.stop();
        self.in_host.store(true, Ordering::Relaxed);
        HostCall(self.clone())
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Execution time so far, the running poll included.
    pub(crate) fn spent(&self) -> Duration {
        let since = self.since.load(Ordering::Relaxed);
        let running = if since == u64::MAX {
            0
        } else {
            self.now().saturating_sub(since)
        };
        Duration::from_nanos(self.spent.load(Ordering::Relaxed) + running)
    }

    fn start(&self) {
        if !self.in_host.load(Ordering::Relaxed) {
            self.since.store(self.now(), Ordering::Relaxed);
        }
    }

    fn stop(&self) {
        let since = self.since.swap(u64::MAX, Ordering::Relaxed);
        if since != u64::MAX {
            self.spent
                .fetch_add(self.now().saturating_sub(since), Ordering::Relaxed);
        }
    }
}

/// The host's work for one import, from [`CpuMeter::host_call`] to its drop.
pub(crate) struct HostCall(Arc<CpuMeter>);

impl Drop for HostCall {
    fn drop(&mut self) {
        self.0.in_host.store(false, Ordering::Relaxed);
        // Back in the adapter's code, within the same poll.
        self.0.start();
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A call's future, metered and run only while it holds a running permit of its department.
pub(crate) struct Metered<'a, T> {
    inner: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
    meter: Arc<CpuMeter>,
    running: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    acquiring: Option<Acquiring>,
}

impl<'a, T> Metered<'a, T> {
    pub(crate) fn new(
        inner: impl Future<Output = T> + Send + 'a,
        meter: Arc<CpuMeter>,
        running: Arc<Semaphore>,
    ) -> Self {
        Metered {
            inner: Box::pin(inner),
            meter,
            running,
            permit: None,
            acquiring: None,
        }
    }
}

impl<T> Future for Metered<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        if this.permit.is_none() {
            if this.acquiring.is_none() {
                match this.running.clone().try_acquire_owned() {
                    Ok(permit) => this.permit = Some(permit),
                    Err(_) => this.acquiring = Some(Box::pin(this.running.clone().acquire_owned())),
                }
            }
            if let Some(acquiring) = &mut this.acquiring {
                match acquiring.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    // Never closed; were it, the call would simply run unshared.
                    Poll::Ready(permit) => this.permit = permit.ok(),
                }
                this.acquiring = None;
            }
        }
        this.meter.start();
        let polled = this.inner.as_mut().poll(cx);
        this.meter.stop();
        if polled.is_pending() {
            // Waiting: the next instance of this department may run meanwhile.
            this.permit = None;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_is_not_counted_and_turns_are_taken() {
        let meter = CpuMeter::new();
        let running = Arc::new(Semaphore::new(1));
        let busy = |ms: u64| {
            let until = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        };
        let call = Metered::new(
            async move {
                busy(20);
                tokio::time::sleep(Duration::from_millis(200)).await;
                busy(20);
            },
            meter.clone(),
            running.clone(),
        );
        let started = Instant::now();
        call.await;
        assert!(started.elapsed() >= Duration::from_millis(240));
        let spent = meter.spent();
        assert!(
            spent >= Duration::from_millis(40) && spent < Duration::from_millis(120),
            "{spent:?}"
        );
        assert_eq!(running.available_permits(), 1, "the permit is given back");

        // The host's work for an import is not the adapter's.
        let meter = CpuMeter::new();
        let host = meter.clone();
        Metered::new(
            async move {
                let _import = host.host_call();
                busy(50);
            },
            meter.clone(),
            running.clone(),
        )
        .await;
        assert!(
            meter.spent() < Duration::from_millis(20),
            "{:?}",
            meter.spent()
        );

        // While one call holds the only permit, another waits for it.
        let held = running.clone().try_acquire_owned().unwrap();
        let other = tokio::spawn(Metered::new(async {}, CpuMeter::new(), running.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!other.is_finished());
        drop(held);
        other.await.unwrap();
    }
}
