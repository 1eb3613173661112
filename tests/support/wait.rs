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

/// Asserts that the times of successive connection attempts (at least six) show a back-off
/// of 50 ms doubling: the delays before reconnects 1..5 are 50, 100, 200, 400, 800 ms, each
/// jittered into [base/2, base], so each interval is at least the one before (give or take
/// scheduling), the 5th is at least 400 ms, and more than four times the 1st.
pub fn assert_backed_off<T>(what: &str, accepted: &[T])
where
    T: Copy + std::ops::Sub<Output = Duration>,
{
    let intervals: Vec<Duration> = accepted.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("{what}: reconnect intervals {intervals:?}");
    assert!(
        intervals.len() >= 5,
        "{what}: too few attempts: {intervals:?}"
    );
    for pair in intervals.windows(2) {
        assert!(
            pair[1] + Duration::from_millis(20) >= pair[0],
            "{what}: an interval shrank: {intervals:?}"
        );
    }
    assert!(
        intervals[4] >= Duration::from_millis(400),
        "{what}: the 5th reconnect came after {:?}: {intervals:?}",
        intervals[4]
    );
    assert!(
        intervals[4] > intervals[0] * 4,
        "{what}: the intervals did not grow: {intervals:?}"
    );
}

/// Asserts that a back-off of 50 ms doubling grew while a server flapped (the gap before
/// the 4th reconnect is at least 400 ms) and started over after a stable connection (the
/// next gap is the first retry's, 50-100 ms: under 300 ms and under half the flapping one).
pub fn assert_backoff_reset(gap_flapping: Duration, gap_after: Duration) {
    assert!(
        gap_flapping >= Duration::from_millis(400),
        "the back-off did not grow while flapping: {gap_flapping:?}"
    );
    assert!(
        gap_after < Duration::from_millis(300),
        "no reset after a stable connection: {gap_after:?}"
    );
    assert!(
        gap_after * 2 < gap_flapping,
        "{gap_after:?} vs {gap_flapping:?}"
    );
}
