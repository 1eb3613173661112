//! The connection settings shared by the websocket-based sources ([`WebSocketSource`] and,
//! with the `realtime` feature, `PusherSource`): [`ConnectionOptions`], and the macro that
//! writes each source's builder methods for them once.
//!
//! [`WebSocketSource`]: crate::source::websocket::WebSocketSource

use std::time::Duration;

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::backoff::Backoff;

/// Default limit on one websocket frame or message: 1 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

/// How long a connection must stay up before its end resets the reconnect back-off: 30 s.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(30);

/// How one websocket connection is made, kept alive and retried.
///
/// Every websocket-based source holds one and has a builder method per field (same name)
/// that sets it, plus `connection(ConnectionOptions)` to set them all at once.
///
/// ```
/// use std::time::Duration;
/// use listener_core::source::ConnectionOptions;
/// let options = ConnectionOptions::default()
///     .connect_timeout(Duration::from_secs(5))
///     .stable_after(Duration::from_secs(60));
/// assert_eq!(options.max_frame_bytes, 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// Time allowed to connect: TCP, TLS and the websocket handshake (for a Pusher source,
    /// until `pusher:connection_established` arrived). Default 10 s.
    pub connect_timeout: Duration,
    /// Largest websocket frame, and message, accepted; a larger one drops the connection,
    /// which is then re-established. At least 1. Default 1 MiB
    /// ([`DEFAULT_MAX_FRAME_BYTES`]).
    pub max_frame_bytes: usize,
    /// Silence after which the client pings. `None` (the default): 30 s for a plain
    /// websocket source; for a Pusher source the server's `activity_timeout` (120 s when it
    /// gives none), which a value here replaces only when shorter.
    pub ping_interval: Option<Duration>,
    /// Time allowed, after a ping, for anything to arrive before the connection is presumed
    /// dead and dropped. Default 10 s; a new Pusher source starts from 30 s instead.
    pub pong_timeout: Duration,
    /// Reconnect timing. Default [`Backoff::default`].
    pub backoff: Backoff,
    /// How long a connection must have stayed up (for a Pusher source: subscribed) for the
    /// back-off to start over when it ends. A connection dropped sooner counts as a failed
    /// attempt, so a server that closes every connection at once is retried at growing
    /// intervals, not every few hundred milliseconds (and, with [`Backoff::max_attempts`],
    /// eventually given up on). Default 30 s ([`DEFAULT_STABLE_AFTER`]).
    pub stable_after: Duration,
}

impl Default for ConnectionOptions {
    /// 10 s to connect, 1 MiB frames, the source's own ping interval, 10 s for an answer to
    /// a ping, the default back-off, stable after 30 s.
    fn default() -> Self {
        ConnectionOptions {
            connect_timeout: Duration::from_secs(10),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            stable_after: DEFAULT_STABLE_AFTER,
        }
    }
}

impl ConnectionOptions {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets [`max_frame_bytes`](Self::max_frame_bytes) (0 is taken as 1).
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes.max(1);
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = Some(d);
        self
    }

    /// Sets [`pong_timeout`](Self::pong_timeout).
    pub fn pong_timeout(mut self, d: Duration) -> Self {
        self.pong_timeout = d;
        self
    }

    /// Sets [`backoff`](Self::backoff).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets [`stable_after`](Self::stable_after).
    pub fn stable_after(mut self, d: Duration) -> Self {
        self.stable_after = d;
        self
    }

    /// The websocket library's limits for these options.
    pub(crate) fn ws_config(&self) -> WebSocketConfig {
        let max = self.max_frame_bytes.max(1);
        WebSocketConfig::default()
            .max_frame_size(Some(max))
            .max_message_size(Some(max))
    }

    /// Whether a connection that came up at `up_since` (`None`: it never did) and just ended
    /// stayed up for [`stable_after`](Self::stable_after), so the back-off starts over.
    pub(crate) fn was_stable(&self, up_since: Option<Instant>) -> bool {
        match up_since.map(|at| at.elapsed()) {
            Some(up) if up >= self.stable_after => true,
            Some(up) => {
                tracing::debug!(up_ms = up.as_millis() as u64, stable_after = ?self.stable_after, "connection ended before it was stable; back-off continues");
                false
            }
            None => false,
        }
    }
}

/// Writes, for a source keeping its [`ConnectionOptions`] in a field named `connection`, the
/// builder methods that set them: `connection` (all at once), `connection_options` (the
/// current ones), and one per option, each delegating to the [`ConnectionOptions`] method
/// of the same name.
macro_rules! connection_setters {
    ($source:ty) => {
        impl $source {
            /// Sets all the shared connection settings at once (see
            /// [`ConnectionOptions`](crate::source::ConnectionOptions)), replacing those set
            /// before.
            pub fn connection(mut self, options: $crate::source::ConnectionOptions) -> Self {
                self.connection = options;
                self
            }

            /// The shared connection settings in effect.
            pub fn connection_options(&self) -> &$crate::source::ConnectionOptions {
                &self.connection
            }

            /// Time allowed to connect; see
            /// [`ConnectionOptions::connect_timeout`](crate::source::ConnectionOptions::connect_timeout)
            /// (default 10 s).
            pub fn connect_timeout(mut self, d: ::std::time::Duration) -> Self {
                self.connection = self.connection.connect_timeout(d);
                self
            }

            /// Largest accepted frame (and message); see
            /// [`ConnectionOptions::max_frame_bytes`](crate::source::ConnectionOptions::max_frame_bytes)
            /// (default 1 MiB).
            pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
                self.connection = self.connection.max_frame_bytes(bytes);
                self
            }

            /// Silence after which a ping is sent; see
            /// [`ConnectionOptions::ping_interval`](crate::source::ConnectionOptions::ping_interval).
            pub fn ping_interval(mut self, d: ::std::time::Duration) -> Self {
                self.connection = self.connection.ping_interval(d);
                self
            }

            /// Time allowed for an answer to a ping before the connection is presumed dead;
            /// see
            /// [`ConnectionOptions::pong_timeout`](crate::source::ConnectionOptions::pong_timeout).
            pub fn pong_timeout(mut self, d: ::std::time::Duration) -> Self {
                self.connection = self.connection.pong_timeout(d);
                self
            }

            /// Reconnect timing; see
            /// [`ConnectionOptions::backoff`](crate::source::ConnectionOptions::backoff).
            pub fn backoff(mut self, backoff: $crate::Backoff) -> Self {
                self.connection = self.connection.backoff(backoff);
                self
            }

            /// How long a connection must stay up for the back-off to start over when it
            /// ends; see
            /// [`ConnectionOptions::stable_after`](crate::source::ConnectionOptions::stable_after)
            /// (default 30 s).
            pub fn stable_after(mut self, d: ::std::time::Duration) -> Self {
                self.connection = self.connection.stable_after(d);
                self
            }
        }
    };
}

pub(crate) use connection_setters;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_set_their_field_and_a_zero_frame_limit_is_one() {
        let o = ConnectionOptions::default()
            .connect_timeout(Duration::from_secs(1))
            .max_frame_bytes(0)
            .ping_interval(Duration::from_secs(2))
            .pong_timeout(Duration::from_secs(3))
            .stable_after(Duration::from_secs(4));
        assert_eq!(o.connect_timeout, Duration::from_secs(1));
        assert_eq!(o.max_frame_bytes, 1);
        assert_eq!(o.ping_interval, Some(Duration::from_secs(2)));
        assert_eq!(o.pong_timeout, Duration::from_secs(3));
        assert_eq!(o.stable_after, Duration::from_secs(4));
        assert_eq!(o.backoff, Backoff::default());
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_connection_up_for_stable_after_is_stable() {
        let o = ConnectionOptions::default().stable_after(Duration::from_secs(5));
        let up = Instant::now();
        assert!(!o.was_stable(None));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(!o.was_stable(Some(up)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(o.was_stable(Some(up)));
    }
}
