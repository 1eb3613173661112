//! A bounded window of recently seen event ids.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long, and how many, event ids are remembered to drop duplicate deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeConfig {
    /// At most this many ids are remembered; the oldest is forgotten first.
    pub capacity: usize,
    /// An id is forgotten this long after it was first seen.
    pub ttl: Duration,
}

impl Default for DedupeConfig {
    /// 10,000 ids for 10 minutes.
    fn default() -> Self {
        DedupeConfig {
            capacity: 10_000,
            ttl: Duration::from_secs(600),
        }
    }
}

/// Remembers ids in insertion order; both bounds are enforced on every insert.
#[derive(Debug)]
pub(crate) struct DedupeWindow {
    config: DedupeConfig,
    /// Hashed with foldhash (randomly seeded): several times faster than SipHash on short
    /// ids, and the ids come from verified senders (signed webhooks, Composio's channel).
    seen: HashSet<Arc<str>, foldhash::fast::RandomState>,
    /// Ids with the time they were first seen, oldest first.
    order: VecDeque<(Arc<str>, Instant)>,
}

impl DedupeWindow {
    pub(crate) fn new(config: DedupeConfig) -> Self {
        DedupeWindow {
            config,
            seen: HashSet::with_capacity_and_hasher(
                config.capacity.min(1024),
                foldhash::fast::RandomState::default(),
            ),
            order: VecDeque::with_capacity(config.capacity.min(1024)),
        }
    }

    /// Records `id` and returns `true` if it is new; `false` if it was seen within the window.
    pub(crate) fn insert(&mut self, id: &str, now: Instant) -> bool {
        self.insert_key(id, now).is_some()
    }

    /// Records `id` if it is new and returns the shared key it is kept under; `None` if it
    /// was seen within the window.
    pub(crate) fn insert_key(&mut self, id: &str, now: Instant) -> Option<Arc<str>> {
        self.expire(now);
        // One hash lookup both checks and records (duplicates are rare, so building the
        // key first costs little).
        let key: Arc<str> = Arc::from(id);
        if self.config.capacity == 0 {
            return Some(key);
        }
        if !self.seen.insert(Arc::clone(&key)) {
            return None;
        }
        self.order.push_back((Arc::clone(&key), now));
        while self.order.len() > self.config.capacity {
            self.pop_oldest();
        }
        Some(key)
    }

    /// Forgets `id`, so a later delivery of it is dispatched again.
    pub(crate) fn remove(&mut self, id: &str) {
        if self.seen.remove(id) {
            // The id forgotten is nearly always a recent one: search from the back.
            if let Some(pos) = self.order.iter().rposition(|(k, _)| &**k == id) {
                self.order.remove(pos);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((_, at)) = self.order.front() {
            if now.duration_since(*at) < self.config.ttl {
                break;
            }
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((k, _)) = self.order.pop_front() {
            self.seen.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(capacity: usize, ttl_secs: u64) -> DedupeWindow {
        DedupeWindow::new(DedupeConfig {
            capacity,
            ttl: Duration::from_secs(ttl_secs),
        })
    }

    #[test]
    fn a_repeated_id_is_refused_within_the_window() {
        let mut w = window(10, 60);
        let t = Instant::now();
        assert!(w.insert("a", t));
        assert!(!w.insert("a", t + Duration::from_secs(59)));
        assert!(w.insert("b", t));
    }

    #[test]
    fn ids_expire_after_the_ttl() {
        let mut w = window(10, 60);
        let t = Instant::now();
        assert!(w.insert("a", t));
        assert!(w.insert("a", t + Duration::from_secs(60)));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn capacity_evicts_the_oldest_and_bounds_memory() {
        let mut w = window(3, 600);
        let t = Instant::now();
        for id in ["a", "b", "c", "d"] {
            assert!(w.insert(id, t));
        }
        assert_eq!(w.len(), 3);
        assert!(w.insert("a", t), "a was evicted, so it counts as new");
        assert!(!w.insert("d", t));
        for i in 0..10_000 {
            w.insert(&i.to_string(), t);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.seen.len(), 3);
    }

    #[test]
    fn removed_ids_are_new_again() {
        let mut w = window(10, 600);
        let t = Instant::now();
        assert!(w.insert("a", t));
        w.remove("a");
        assert!(w.insert("a", t));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let mut w = window(0, 600);
        let t = Instant::now();
        assert!(w.insert("a", t));
        assert!(w.insert("a", t));
    }
}
