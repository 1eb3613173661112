//! The bot's bounded memory: which threads it answered, which messages it saw, what it
//! posted itself, and how many replies each channel got recently.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A set remembering at most `capacity` keys; the oldest is forgotten first.
#[derive(Debug, Clone)]
pub struct BoundedSet {
    capacity: usize,
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl BoundedSet {
    /// An empty set holding at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            capacity: capacity.max(1),
            keys: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Adds `key`; `false` if it was there already.
    pub fn insert(&mut self, key: &str) -> bool {
        if self.keys.contains(key) {
            return false;
        }
        while self.keys.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.keys.remove(&old);
                }
                None => break,
            }
        }
        self.keys.insert(key.to_owned());
        self.order.push_back(key.to_owned());
        true
    }

    /// Whether `key` is remembered.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &str) {
        if self.keys.remove(key) {
            self.order.retain(|k| k != key);
        }
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// At most `max` replies per channel within any `window`; `max == 0` means no limit.
/// Remembers at most `max_channels` channels.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    max: u32,
    window: Duration,
    max_channels: usize,
    sent: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// A limiter of `max` replies per `window` per channel.
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimiter {
            max,
            window,
            max_channels: 1024,
            sent: HashMap::new(),
        }
    }

    /// Takes one reply for `channel` at `now`; `false` when the channel is at its limit.
    pub fn try_acquire(&mut self, channel: &str, now: Instant) -> bool {
        if self.max == 0 {
            return true;
        }
        let window = self.window;
        let recent = |q: &mut VecDeque<Instant>| {
            while q
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                q.pop_front();
            }
        };
        if !self.sent.contains_key(channel) && self.sent.len() >= self.max_channels {
            self.sent.retain(|_, q| {
                recent(q);
                !q.is_empty()
            });
            if self.sent.len() >= self.max_channels {
                // Still full of busy channels: forget one rather than grow.
                if let Some(k) = self.sent.keys().next().cloned() {
                    self.sent.remove(&k);
                }
            }
        }
        let q = self.sent.entry(channel.to_owned()).or_default();
        recent(q);
        if q.len() >= self.max as usize {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// FNV-1a: a stable fingerprint (the same in every run, unlike `std`'s hasher).
pub fn fingerprint(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.trim().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_set_forgets_the_oldest() {
        let mut s = BoundedSet::new(2);
        assert!(s.insert("a") && s.insert("b"));
        assert!(!s.insert("a"));
        assert!(s.insert("c"));
        assert_eq!(s.len(), 2);
        assert!(!s.contains("a") && s.contains("b") && s.contains("c"));
        s.remove("b");
        assert!(!s.contains("b"));
        assert!(s.insert("d") && s.contains("c"));
    }

    #[test]
    fn rate_limiter_counts_per_channel_within_the_window() {
        let mut r = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(r.try_acquire("C1", t0));
        assert!(r.try_acquire("C1", t0));
        assert!(!r.try_acquire("C1", t0 + Duration::from_secs(59)));
        assert!(r.try_acquire("C2", t0));
        assert!(r.try_acquire("C1", t0 + Duration::from_secs(60)));
        let mut unlimited = RateLimiter::new(0, Duration::from_secs(60));
        assert!((0..100).all(|_| unlimited.try_acquire("C1", t0)));
    }
}
