//! Lanes: the runs of one handler that share a key (`sequential_by`) go one at a time, in
//! the order they were dispatched.
//!
//! Each key in use has a FIFO lock. A run takes its place in the key's queue when it is
//! dispatched (synchronously, before the run is spawned, so a spawned task that is polled
//! late cannot overtake an earlier one), waits for its turn when it starts, and frees the
//! lock when it ends. A key's entry lives only while a run of it is queued or running, so
//! idle keys cost nothing, and the number of entries is bounded by the runs in flight.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::sync::{Mutex as FifoLock, OwnedMutexGuard};

use crate::event::TriggerEvent;
use crate::policy::KeyPath;

type Acquire = Pin<Box<dyn Future<Output = OwnedMutexGuard<()>> + Send>>;

/// The lanes of one handler.
pub(crate) struct Lanes {
    path: KeyPath,
    keys: Mutex<HashMap<String, Arc<FifoLock<()>>, foldhash::fast::RandomState>>,
}

impl Lanes {
    pub(crate) fn new(path: KeyPath) -> Arc<Self> {
        Arc::new(Lanes {
            path,
            keys: Mutex::new(HashMap::default()),
        })
    }

    /// Keys with a run queued or running.
    #[cfg(test)]
    pub(crate) fn active_keys(&self) -> usize {
        self.lock_keys().len()
    }

    fn lock_keys(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FifoLock<()>>, foldhash::fast::RandomState>>
    {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a run for `event`'s key, now.
    pub(crate) fn enter(self: &Arc<Self>, event: &TriggerEvent) -> Place {
        let key = self.path.key_of(event);
        let lock = Arc::clone(self.lock_keys().entry(key.clone()).or_default());
        let mut acquire: Acquire = Box::pin(Arc::clone(&lock).lock_owned());
        // The first poll puts the run in the lock's queue (tokio's lock is FIFO); a run
        // that is first in line gets the lock right away.
        let state = match acquire
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(guard) => State::Held(guard),
            Poll::Pending => State::Queued(acquire),
        };
        Place {
            lanes: Arc::clone(self),
            key,
            lock: Some(lock),
            state: Some(state),
        }
    }

    /// Drops the key's entry if nobody but the map holds its lock any more.
    fn release(&self, key: &str, lock: Arc<FifoLock<()>>) {
        let mut keys = self.lock_keys();
        // Under the map's lock nobody can take a new reference, so two (the map's and
        // ours) means no run of this key is queued or running.
        if Arc::strong_count(&lock) == 2 {
            keys.remove(key);
        }
    }
}

enum State {
    Queued(Acquire),
    /// Held for its drop, which lets the next run of the key go.
    Held(#[allow(dead_code)] OwnedMutexGuard<()>),
}

/// A run's place in its key's lane: queued, then holding the lane until dropped.
pub(crate) struct Place {
    lanes: Arc<Lanes>,
    key: String,
    lock: Option<Arc<FifoLock<()>>>,
    state: Option<State>,
}

impl Place {
    /// Waits until every earlier run of the key has ended.
    pub(crate) async fn wait_turn(&mut self) {
        if let Some(State::Queued(acquire)) = &mut self.state {
            let guard = acquire.await;
            self.state = Some(State::Held(guard));
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // Leave the queue (or free the lane) first, then see whether the key is idle.
        drop(self.state.take());
        if let Some(lock) = self.lock.take() {
            self.lanes.release(&self.key, lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(channel: &str) -> TriggerEvent {
        TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({ "channel": channel }))
    }

    fn lanes() -> Arc<Lanes> {
        Lanes::new(KeyPath::parse("payload.channel").unwrap())
    }

    #[tokio::test]
    async fn runs_of_a_key_take_turns_in_the_order_they_entered() {
        let lanes = lanes();
        let mut first = lanes.enter(&event("a"));
        let mut second = lanes.enter(&event("a"));
        let mut other = lanes.enter(&event("b"));
        first.wait_turn().await;
        first.wait_turn().await; // waiting again keeps the turn
        other.wait_turn().await; // another key is not held up
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), second.wait_turn());
        assert!(
            waiting.await.is_err(),
            "the second run went before the first ended"
        );
        drop(first);
        second.wait_turn().await;
        assert_eq!(lanes.active_keys(), 2);
        drop(second);
        drop(other);
        assert_eq!(lanes.active_keys(), 0, "idle keys are freed");
    }

    #[tokio::test]
    async fn a_place_given_up_while_queued_frees_its_key() {
        let lanes = lanes();
        let mut first = lanes.enter(&event("a"));
        let second = lanes.enter(&event("a"));
        let mut third = lanes.enter(&event("a"));
        first.wait_turn().await;
        drop(second); // cancelled while queued
        drop(first);
        third.wait_turn().await;
        drop(third);
        assert_eq!(lanes.active_keys(), 0);
    }
}
