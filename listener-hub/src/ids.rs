//! Fresh identifiers and timestamps for events the hub makes.

use std::time::SystemTime;

use rand::Rng;

/// `prefix` followed by 24 random hex digits (`evt_9f…`).
pub(crate) fn fresh(prefix: &str) -> String {
    let mut rng = rand::rng();
    let n: u128 = rng.random();
    format!("{prefix}{:024x}", n & ((1u128 << 96) - 1))
}

/// A Pusher socket id: two random numbers joined by a dot.
pub(crate) fn socket_id() -> String {
    let mut rng = rand::rng();
    format!(
        "{}.{}",
        rng.random_range(100_000..999_999_999u64),
        rng.random_range(100_000..999_999_999u64)
    )
}

/// Now, as an RFC 3339 timestamp with milliseconds (`2026-11-23T08:00:00.123Z`).
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
