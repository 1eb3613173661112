//! Waiting on conditions with a deadline, never a bare sleep.

use std::future::Future;
use std::time::Duration;

/// The default deadline of a test wait.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Awaits `fut`, panicking with `what` if it takes longer than [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Polls `cond` until it holds, panicking with `what` after [`DEADLINE`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
}
