//! Where a call's instance runs: on the caller's thread while it is quick, on its department's
//! own threads once it is busy.
//!
//! Why: an instance's wasm runs inside a poll of its call's future, up to a tick at a time. On
//! the threads that serve the portal, a busy instance (a loop, a memory bomb, a huge answer
//! being built) holds up whatever other department's request is queued behind it on that
//! thread until it yields. Moved to threads of its department's own, it competes with the rest
//! of the gateway as any other thread does, and the kernel's scheduler, which keeps a woken
//! thread's wait short, shares the cores between them (BENCHMARKS.md, "Fairness": another
//! department's p99 stays within 2× its baseline).
//!
//! Why not every call there: handing a call to another thread and its answer back costs two
//! thread wake-ups, which on a small machine is more than a quick call's whole adapter code
//! (a lookup's: tens of microseconds). So a call starts where it was made, and moves once its
//! adapter code has run longer than a quick call's does ([`CpuMeter::busy`]): at its next
//! yield (a tick, or a wait for its department), between two polls, which an instance's future
//! allows (wasmtime runs it on a stack of its own). Up to a tick of a busy call is still spent
//! where it was made, so a department whose last call was busy starts its next one on its threads at once
//! (and one whose last call there was quick comes back). A department's threads start with its first busy call; it
//! has as many as it may run instances at once (`max_running`), and their instances' host
//! work, department exchanges and teardown run there too.
//!
//! What a moved call is done for goes with it: the trace it continues, the names it masks and
//! the audit context its exchanges are recorded under (task-locals of the caller's task), and
//! the caller's tracing span. A caller that stops waiting (a client gone, a time bound)
//! cancels the call where it runs.

use super::imports::Department;
use super::meter::CpuMeter;
use crate::cancelling::run_on;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Run `call`, metered by `meter`, for `department`: here while it is quick, then on the
/// department's threads (here to the end if they cannot start). A department whose last call
/// was busy starts the next one there at once.
///
/// The call comes boxed, as it must be to move between threads: boxed where it is made, the
/// futures that wait for it hold a pointer to it, not the call itself, and so does the moved
/// call's path, boxed apart (BENCHMARKS.md, "Where the copies go").
pub(crate) async fn run<T: Send + 'static>(
    department: &Department,
    meter: &CpuMeter,
    mut call: Pin<Box<impl Future<Output = T> + Send + 'static>>,
) -> Result<T, Stopped> {
    if !department.last_call_busy.load(Ordering::Relaxed) {
        let answered = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
            Poll::Ready(answer) => Poll::Ready(Some(answer)),
            Poll::Pending if meter.busy() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        if let Some(answer) = answered {
            department
                .last_call_busy
                .store(meter.busy(), Ordering::Relaxed);
            return Ok(answer);
        }
    }
    metrics::counter!("gateway_adapter_moved_total", "department" => department.id.clone())
        .increment(1);
    let answer = match department.executor() {
        Ok(executor) => Box::pin(executor.finish(call)).await,
        Err(e) => {
            tracing::warn!(department = %department.id, error = %e, "a department's adapter threads could not start: its busy call stays on the portal's threads");
            Ok(call.await)
        }
    };
    department
        .last_call_busy
        .store(meter.busy(), Ordering::Relaxed);
    answer
}

/// A department's threads. Dropped, they end (what still runs there is cancelled).
#[derive(Debug)]
pub(crate) struct Executor {
    handle: Handle,
    /// Dropping it ends the thread that owns the runtime, which drops the runtime there: a
    /// runtime may not be dropped inside another's task, where the last holder may be.
    _stop: oneshot::Sender<()>,
}

impl Executor {
    /// `threads` threads named after the department.
    pub(crate) fn new(department: &str, threads: u32) -> std::io::Result<Executor> {
        // Linux keeps 15 bytes of a thread's name.
        let name: String = format!("wasm-{department}").chars().take(15).collect();
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1) as usize)
            .thread_name(name.clone())
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name(name).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })?;
        Ok(Executor {
            handle,
            _stop: stop,
        })
    }

    /// Run the rest of `call` on these threads, for the caller's request, and wait for it.
    async fn finish<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Stopped> {
        let trace = gateway_base::trace::current();
        let names = gateway_base::redact::noted();
        let audit = gateway_store::audit::current();
        let call = gateway_store::audit::scope(|c| *c = audit, call);
        let call = gateway_base::redact::within(names, call);
        let call = async move {
            match trace {
                Some(trace) => gateway_base::trace::scope(trace, call).await,
                None => call.await,
            }
        };
        run_on(&self.handle, call).await.map_err(|_| Stopped)
    }
}

/// The department's threads ended before the call did (they end only with the department).
#[derive(Debug)]
pub(crate) struct Stopped;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Connection;
    use crate::host::meter::Metered;
    use gateway_base::trace::TraceContext;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn department() -> Department {
        let limits = gateway_base::config::Limits::default();
        let connection = Connection::unbound().unwrap();
        Department::new("tests", connection, Default::default(), &limits)
    }

    fn thread() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    /// A call whose adapter code runs `spin` and then waits once (as at a tick), answering
    /// where it ends; one that does not spin answers at once.
    fn call(
        department: &Department,
        spin: Duration,
    ) -> (Arc<CpuMeter>, impl Future<Output = String> + Send + 'static) {
        let meter = CpuMeter::new();
        let code = async move {
            if spin > Duration::ZERO {
                let until = Instant::now() + spin;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                tokio::task::yield_now().await;
            }
            thread()
        };
        let metered = Metered::new(code, meter.clone(), department.running.clone());
        (meter, metered)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_quick_call_stays_and_a_busy_one_moves_to_its_departments_threads() {
        let department = department();
        let here = thread();
        let (meter, quick) = call(&department, Duration::ZERO);
        assert_eq!(
            run(&department, &meter, Box::pin(quick)).await.unwrap(),
            here
        );
        assert!(
            department.executor.get().is_none(),
            "no threads for quick calls"
        );

        let (meter, busy) = call(&department, Duration::from_millis(2));
        assert_eq!(
            run(&department, &meter, Box::pin(busy)).await.unwrap(),
            "wasm-tests"
        );

        // Its department's last call was busy: the next one starts there at once, and being
        // quick, brings the one after it back.
        let (meter, quick) = call(&department, Duration::ZERO);
        assert_eq!(
            run(&department, &meter, Box::pin(quick)).await.unwrap(),
            "wasm-tests"
        );
        let (meter, quick) = call(&department, Duration::ZERO);
        assert_eq!(
            run(&department, &meter, Box::pin(quick)).await.unwrap(),
            here
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_moved_call_keeps_its_trace_and_audit_context_and_is_cancelled_with_its_caller() {
        let department = department();
        let meter = CpuMeter::new();
        let (dropped, told) = oneshot::channel::<()>();
        let (seen, what) = oneshot::channel();
        struct Tell(Option<oneshot::Sender<()>>);
        impl Drop for Tell {
            fn drop(&mut self) {
                let _ = self.0.take().map(|tell| tell.send(()));
            }
        }
        let code = async move {
            let _tell = Tell(Some(dropped));
            let until = Instant::now() + Duration::from_millis(2);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            tokio::task::yield_now().await;
            let case = gateway_store::audit::current().case_id;
            let _ = seen.send((thread(), gateway_base::trace::current(), case));
            std::future::pending::<()>().await;
        };
        let metered = Metered::new(code, meter.clone(), department.running.clone());
        let trace = TraceContext::new_root();
        let call = gateway_base::trace::scope(
            trace.clone(),
            gateway_store::audit::for_step(
                "case-1",
                "tax",
                run(&department, &meter, Box::pin(metered)),
            ),
        );
        // The caller stops waiting once the call has told what it saw where it moved.
        let (ran_on, traced, case) = tokio::select! {
            _ = call => unreachable!("the call never ends"),
            seen = what => seen.unwrap(),
        };
        assert_eq!(ran_on, "wasm-tests");
        assert_eq!(traced, Some(trace));
        assert_eq!(case.as_deref(), Some("case-1"));
        // Dropped by its caller, the call is cancelled where it runs.
        told.await.expect("the moved call was dropped");
    }
}
