//! A spawned task that is cancelled when whoever waits for it stops waiting.
//!
//! Work handed to another runtime (a busy call to its department's threads, a department
//! exchange back to the gateway's) must end with the request it serves: a client gone or a
//! time bound passed drops the waiter, and the waiter's drop aborts the task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::task::{JoinError, JoinHandle};

/// A task's handle that aborts the task when dropped.
pub(crate) struct Cancelling<T>(pub(crate) JoinHandle<T>);

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
