//! The websocket connections of the hub's Pusher endpoint, for `GET /hub/connections` and
//! the dashboard's list of connected listeners: who is connected, since when, subscribed to
//! what. Changes are announced on the dashboard's feed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::dashboard::Feed;
use super::ids;
use listener_core::preview::truncate_chars;

/// Longest user agent kept, in characters.
const MAX_USER_AGENT_CHARS: usize = 200;

/// Channels listed per connection (a client may subscribe to many).
const MAX_CHANNELS_LISTED: usize = 32;

/// A websocket client of the hub (a listener's realtime source, or any Pusher client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerConnection {
    /// The hub's number for the connection (as in an event's realtime deliveries).
    pub connection: u64,
    /// Its Pusher socket id.
    pub socket_id: String,
    /// When it connected (RFC 3339).
    pub connected_at: String,
    /// Its `User-Agent`, when it sent one (at most 200 characters).
    pub user_agent: Option<String>,
    /// The channels it is subscribed to (at most 32 listed).
    pub channels: Vec<String>,
}

/// The open connections.
pub(crate) struct Connections {
    open: Mutex<BTreeMap<u64, ListenerConnection>>,
    feed: Feed,
}

impl Connections {
    pub(crate) fn new(feed: Feed) -> Self {
        Connections {
            open: Mutex::new(BTreeMap::new()),
            feed,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ListenerConnection>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        self.feed.send("connections", || "{}".to_owned());
    }

    pub(crate) fn opened(&self, connection: u64, socket_id: &str, user_agent: Option<&str>) {
        let info = ListenerConnection {
            connection,
            socket_id: socket_id.to_owned(),
            connected_at: ids::now_rfc3339(),
            user_agent: user_agent.map(|ua| truncate_chars(ua, MAX_USER_AGENT_CHARS)),
            channels: Vec::new(),
        };
        self.lock().insert(connection, info);
        self.changed();
    }

    pub(crate) fn subscribed(&self, connection: u64, channel: &str, on: bool) {
        if let Some(info) = self.lock().get_mut(&connection) {
            let known = info.channels.iter().any(|c| c == channel);
            if on && !known && info.channels.len() < MAX_CHANNELS_LISTED {
                info.channels.push(channel.to_owned());
            } else if !on {
                info.channels.retain(|c| c != channel);
            }
        }
        self.changed();
    }

    pub(crate) fn closed(&self, connection: u64) {
        self.lock().remove(&connection);
        self.changed();
    }

    /// The open connections, oldest first.
    pub(crate) fn list(&self) -> Vec<ListenerConnection> {
        self.lock().values().cloned().collect()
    }
}
