//! Polling a future once on the current task: the eager start of handler runs (the
//! dispatcher) and of stream messages (a JetStream worker), where only what has to wait
//! becomes a task of its own.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

/// Polls `fut` once, catching a panic of that poll (which would otherwise unwind into the
/// caller): `Ok(Ready)` when it finished, `Ok(Pending)` when it has to wait (spawn it),
/// `Err` with the panic's payload.
pub(crate) async fn poll_once<F: Future + ?Sized>(
    fut: &mut Pin<Box<F>>,
) -> std::thread::Result<Poll<F::Output>> {
    std::future::poll_fn(|cx| {
        Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
            fut.as_mut().poll(cx)
        })))
    })
    .await
}
