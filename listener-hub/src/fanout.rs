//! Channel subscribers and fan-out. Each connection has its own bounded queue; a subscriber
//! whose queue is full is disconnected (Pusher code 4100, "over capacity": it reconnects
//! after a back-off) instead of stalling the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One connection's outbound side.
#[derive(Clone)]
pub(crate) struct Subscriber {
    pub tx: mpsc::Sender<Utf8Bytes>,
    /// Cancelled to disconnect a subscriber that cannot keep up.
    pub kick: CancellationToken,
    /// The connection's Pusher socket id.
    pub socket_id: Arc<str>,
}

/// A connection that was sent an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recipient {
    pub connection: u64,
    pub socket_id: Arc<str>,
}

#[derive(Default)]
pub(crate) struct Channels {
    by_channel: Mutex<HashMap<String, HashMap<u64, Subscriber>>>,
}

impl Channels {
    pub(crate) fn subscribe(&self, channel: &str, conn: u64, sub: Subscriber) {
        self.lock()
            .entry(channel.to_owned())
            .or_default()
            .insert(conn, sub);
    }

    pub(crate) fn unsubscribe(&self, channel: &str, conn: u64) {
        let mut map = self.lock();
        if let Some(subs) = map.get_mut(channel) {
            subs.remove(&conn);
            if subs.is_empty() {
                map.remove(channel);
            }
        }
    }

    pub(crate) fn remove_connection(&self, conn: u64) {
        let mut map = self.lock();
        map.retain(|_, subs| {
            subs.remove(&conn);
            !subs.is_empty()
        });
    }

    /// Sends every frame to every subscriber of `channel`, in order; returns the subscribers
    /// that got them. A full queue disconnects its subscriber.
    pub(crate) fn publish(&self, channel: &str, frames: &[Utf8Bytes]) -> Vec<Recipient> {
        let subs: Vec<(u64, Subscriber)> = match self.lock().get(channel) {
            Some(subs) => subs.iter().map(|(id, s)| (*id, s.clone())).collect(),
            None => return Vec::new(),
        };
        let mut delivered = Vec::with_capacity(subs.len());
        for (conn, sub) in subs {
            let mut ok = true;
            for frame in frames {
                if sub.tx.try_send(frame.clone()).is_err() {
                    ok = false;
                    break;
                }
            }
            if ok {
                delivered.push(Recipient {
                    connection: conn,
                    socket_id: sub.socket_id,
                });
            } else {
                tracing::warn!(connection = conn, %channel, "subscriber cannot keep up; disconnecting it");
                sub.kick.cancel();
                self.remove_connection(conn);
            }
        }
        delivered
    }

    pub(crate) fn subscriber_count(&self, channel: &str) -> usize {
        self.lock().get(channel).map_or(0, HashMap::len)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Subscriber>>> {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner())
    }
}
