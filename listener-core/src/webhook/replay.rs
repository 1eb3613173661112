//! Replay protection: a `webhook-id` accepted recently is not dispatched again, and one
//! whose delivery is still being handled is not answered before its outcome is known.
//!
//! Senders retry on timeouts with the same `webhook-id` (the id stays the same across a delivery's retries), and a captured
//! request stays validly signed for as long as its timestamp is within the tolerance. The
//! window reuses the dispatcher's dedupe window; one lock covers the check and the insert,
//! so two concurrent deliveries of one id cannot both pass.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::dispatch::dedupe::DedupeWindow;
use crate::dispatch::DedupeConfig;
use crate::source::SourceContext;

/// The ids accepted recently, and those being handled right now.
pub(crate) struct Replay {
    state: Mutex<State>,
}

struct State {
    seen: DedupeWindow,
    /// Shares its keys with `seen`.
    in_progress: HashSet<Arc<str>, foldhash::fast::RandomState>,
}

/// What the replay check says about a verified delivery's id.
pub(crate) enum Admission<'a> {
    /// New: handle it; the claim settles the id's fate when dropped.
    Fresh(Claim<'a>),
    /// Accepted before, within the window: acknowledge, do not dispatch again.
    Duplicate,
    /// Another request with this id is being handled right now; its outcome is unknown.
    InProgress,
}

/// A fresh id being handled. Dropped without [`keep`](Claim::keep) (refused, failed, or the
/// client went away mid-way), the id is forgotten, by the dispatcher's dedupe too once the
/// event was handed over, so the sender's retry is dispatched.
pub(crate) struct Claim<'a> {
    replay: &'a Replay,
    id: Arc<str>,
    handed_over: Option<&'a SourceContext>,
    keep: bool,
}

impl Replay {
    /// Remembers up to `capacity` ids for `window` each.
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Replay {
            state: Mutex::new(State {
                seen: DedupeWindow::new(DedupeConfig {
                    capacity,
                    ttl: window,
                }),
                in_progress: HashSet::default(),
            }),
        }
    }

    /// Checks `id` and, if it is new, claims it.
    pub(crate) fn admit(&self, id: &str) -> Admission<'_> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.in_progress.contains(id) {
            return Admission::InProgress;
        }
        let Some(id) = state.seen.insert_key(id, Instant::now()) else {
            return Admission::Duplicate;
        };
        state.in_progress.insert(Arc::clone(&id));
        Admission::Fresh(Claim {
            replay: self,
            id,
            handed_over: None,
            keep: false,
        })
    }
}

impl<'a> Claim<'a> {
    /// The event is about to go to the dispatcher behind `cx`.
    pub(crate) fn hand_over(&mut self, cx: &'a SourceContext) {
        self.handed_over = Some(cx);
    }

    /// The delivery succeeded: remember its id for the replay window.
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.replay.state.lock().unwrap_or_else(|p| p.into_inner());
            state.in_progress.remove(&self.id);
            if !self.keep {
                state.seen.remove(&self.id);
            }
        }
        if let (false, Some(cx)) = (self.keep, self.handed_over) {
            cx.forget(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay() -> Replay {
        Replay::new(Duration::from_secs(600), 100)
    }

    #[test]
    fn a_kept_id_is_a_duplicate_afterwards() {
        let r = replay();
        let Admission::Fresh(claim) = r.admit("msg_1") else {
            panic!("a new id must be fresh")
        };
        assert!(matches!(r.admit("msg_1"), Admission::InProgress));
        assert!(matches!(r.admit("msg_2"), Admission::Fresh(_)));
        claim.keep();
        assert!(matches!(r.admit("msg_1"), Admission::Duplicate));
    }

    #[test]
    fn a_claim_dropped_without_keeping_frees_the_id() {
        let r = replay();
        let Admission::Fresh(claim) = r.admit("msg_1") else {
            panic!("a new id must be fresh")
        };
        drop(claim);
        assert!(matches!(r.admit("msg_1"), Admission::Fresh(_)));
    }

    #[test]
    fn only_one_of_many_concurrent_deliveries_is_fresh() {
        let r = replay();
        let fresh = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| match r.admit("msg_race") {
                        Admission::Fresh(claim) => {
                            claim.keep();
                            1
                        }
                        _ => 0,
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0))
                .sum::<usize>()
        });
        assert_eq!(fresh, 1);
    }
}
