//! Work handed to another runtime, cancelled when whoever waits for it stops waiting.
//!
//! Work handed to another runtime (a busy call to its department's threads, a department
//! exchange back to the gateway's) must end with the request it serves: a client gone or a
//! time bound passed drops the waiter, and the waiter's drop aborts the task. A panic there is
//! the waiter's panic, as if the work had run in place.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinHandle};
use tracing::Instrument;

/// Run `work` on `runtime`, in the caller's tracing span, and wait for it; `Err` only when the
/// runtime shut down before it ended.
pub(crate) async fn run_on<T: Send + 'static>(
    runtime: &Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, ShutDown> {
    match Cancelling(runtime.spawn(work.in_current_span())).await {
        Ok(answer) => Ok(answer),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ShutDown),
    }
}

/// The runtime shut down before the work ended.
#[derive(Debug)]
pub(crate) struct ShutDown;

/// A task's handle that aborts the task when dropped.
struct Cancelling<T>(JoinHandle<T>);

impl<T> Future for Cancelling<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Cancelling<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
