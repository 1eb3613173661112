//! Exponential back-off with jitter and a cap, for reconnecting sources.

use std::time::Duration;

use rand::Rng;

/// Reconnect timing: the delay before attempt `n` (1-based) is
/// `min(initial × multiplier^(n-1), max)`, of which a random half is taken away ("equal
/// jitter"), so many clients dropped together do not reconnect together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub initial: Duration,
    /// Largest delay (before jitter).
    pub max: Duration,
    /// Growth factor per attempt (at least 1).
    pub multiplier: f64,
    /// Give up after this many consecutive failed attempts; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// 500 ms, doubling, capped at 30 s, retrying forever.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The capped delay before attempt `attempt` (1-based), without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let factor = self.multiplier.max(1.0).powi(exp);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The delay before attempt `attempt` (1-based), jittered into `[base/2, base]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        let half = base / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }

    /// Whether attempt `attempt` (1-based) is past `max_attempts`.
    pub fn exhausted(&self, attempt: u32) -> bool {
        self.max_attempts.is_some_and(|max| attempt > max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            max_attempts: None,
        };
        assert_eq!(b.base_delay(1), Duration::from_millis(100));
        assert_eq!(b.base_delay(2), Duration::from_millis(200));
        assert_eq!(b.base_delay(4), Duration::from_millis(800));
        assert_eq!(b.base_delay(5), Duration::from_secs(1));
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_and_full_base() {
        let b = Backoff::default();
        for attempt in 1..20 {
            let base = b.base_delay(attempt);
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(
                    d >= base / 2 && d <= base,
                    "{d:?} outside [{:?}, {base:?}]",
                    base / 2
                );
            }
        }
    }

    #[test]
    fn max_attempts_bounds_retries() {
        let b = Backoff {
            max_attempts: Some(3),
            ..Backoff::default()
        };
        assert!(!b.exhausted(3));
        assert!(b.exhausted(4));
        assert!(!Backoff::default().exhausted(u32::MAX));
    }
}
