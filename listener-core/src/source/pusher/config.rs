//! A Pusher source's settings: the [`PusherSource`] struct and its builder, the defaults,
//! and the checks of key, channel, cluster, host and client name made before connecting.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::auth::ChannelAuth;
use super::chunks::ChunkLimits;
use super::drops::DEFAULT_CHUNK_DROP_SUMMARY_INTERVAL;
use super::protocol::{CHUNKED_TRIGGER_EVENT, TRIGGER_EVENT};
use crate::backoff::Backoff;
use crate::error::{ConfigError, Error, Result};
use crate::preview::truncate_chars;
use crate::source::connection::connection_setters;
use crate::source::ConnectionOptions;

/// How long the server has to confirm a subscription (`pusher_internal:subscription_succeeded`)
/// before the connection is given up and retried: 10 s.
pub const DEFAULT_SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a new Pusher source allows for an answer to a ping (its
/// [`ConnectionOptions::pong_timeout`]): 30 s.
const PUSHER_PONG_TIMEOUT: Duration = Duration::from_secs(30);

/// A `pusher:subscription_error`, as given to the
/// [`on_subscription_error`](PusherSource::on_subscription_error) hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionError {
    /// The channel.
    pub channel: String,
    /// The HTTP-like status the server gave (401 for a bad auth token), if any.
    pub status: Option<i64>,
    /// The error type the server gave (`AuthError`, …), if any.
    pub kind: Option<String>,
    /// The server's message, bounded.
    pub message: String,
}

pub(super) type SubscriptionHook = Arc<dyn Fn(&SubscriptionError) + Send + Sync>;

/// A source subscribed to one channel of a Pusher app.
///
/// ```no_run
/// use listener_core::source::pusher::{ChannelAuth, PusherSource};
/// let source = PusherSource::new("app-key", "private-orders")
///     .cluster("eu")?
///     .events(["order-created"])
///     .auth(ChannelAuth::Endpoint {
///         url: "https://example.com/pusher/auth".into(),
///         headers: vec![("authorization".into(), "Bearer …".into())],
///     });
/// # Ok::<(), listener_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PusherSource {
    pub(super) key: String,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) tls: bool,
    pub(super) channel: String,
    pub(super) events: Vec<String>,
    pub(super) chunked_events: Vec<String>,
    pub(super) auth: ChannelAuth,
    pub(super) client_name: String,
    /// Connect timeout, frame limit, keepalive (`ping_interval` is the client's
    /// `activity_timeout`), back-off and `stable_after`.
    pub(super) connection: ConnectionOptions,
    pub(super) subscribe_timeout: Duration,
    pub(super) chunk_limits: ChunkLimits,
    pub(super) chunk_drop_summary: Duration,
    pub(super) on_subscription_error: Option<SubscriptionHook>,
}

connection_setters!(PusherSource);

impl fmt::Debug for PusherSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PusherSource")
            .field("key", &self.key)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("channel", &self.channel)
            .field("events", &self.events)
            .field("chunked_events", &self.chunked_events)
            .field("auth", &self.auth)
            .field("backoff", &self.connection.backoff)
            .field("subscribe_timeout", &self.subscribe_timeout)
            .field("stable_after", &self.connection.stable_after)
            .field("chunk_limits", &self.chunk_limits)
            .finish_non_exhaustive()
    }
}

/// Checks a cluster name: it goes into a host name, so `^[a-z0-9-]+$`, at most 64 characters.
pub fn validate_cluster(cluster: &str) -> Result<()> {
    let ok = !cluster.is_empty()
        && cluster.len() <= 64
        && cluster
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(ConfigError {
            key: "pusher cluster".into(),
            message: format!(
                "`{}` is not a valid cluster (expected ^[a-z0-9-]+$, at most 64 characters)",
                truncate_chars(cluster, 70)
            ),
        }))
    }
}

pub(super) fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(ConfigError {
            key: "pusher key".into(),
            message: format!("`{}` is not a valid app key", truncate_chars(key, 40)),
        }))
    }
}

pub(super) fn validate_channel(channel: &str) -> Result<()> {
    // Pusher's channel name alphabet, at most 164 characters.
    let ok = !channel.is_empty()
        && channel.len() <= 164
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(ConfigError {
            key: "pusher channel".into(),
            message: format!(
                "`{}` is not a valid channel name",
                truncate_chars(channel, 60)
            ),
        }))
    }
}

impl PusherSource {
    /// A source for app `key`, subscribing to `channel`, on Pusher's `mt1` cluster over TLS,
    /// listening for Composio's `trigger_to_client` and `chunked-trigger_to_client` events.
    pub fn new(key: impl Into<String>, channel: impl Into<String>) -> Self {
        PusherSource {
            key: key.into(),
            host: "ws-mt1.pusher.com".into(),
            port: 443,
            tls: true,
            channel: channel.into(),
            events: vec![TRIGGER_EVENT.into()],
            chunked_events: vec![CHUNKED_TRIGGER_EVENT.into()],
            auth: ChannelAuth::None,
            client_name: "listener-core-rust".into(),
            connection: ConnectionOptions::default().pong_timeout(PUSHER_PONG_TIMEOUT),
            subscribe_timeout: DEFAULT_SUBSCRIBE_TIMEOUT,
            chunk_limits: ChunkLimits::default(),
            chunk_drop_summary: DEFAULT_CHUNK_DROP_SUMMARY_INTERVAL,
            on_subscription_error: None,
        }
    }

    /// Connects to `ws-{cluster}.pusher.com` (validated: it becomes a host name).
    pub fn cluster(mut self, cluster: &str) -> Result<Self> {
        validate_cluster(cluster)?;
        self.host = format!("ws-{cluster}.pusher.com");
        Ok(self)
    }

    /// Connects to this host instead (self-hosted servers, tests).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Connects to this port (default 443).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Uses `wss://` (true, the default) or `ws://`.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The channel to subscribe to.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// The app key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Events whose `data` is one trigger event (default `trigger_to_client`).
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, events: I) -> Self {
        self.events = events.into_iter().map(Into::into).collect();
        self
    }

    /// Events whose `data` is one chunk of a trigger event (default
    /// `chunked-trigger_to_client`).
    pub fn chunked_events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, events: I) -> Self {
        self.chunked_events = events.into_iter().map(Into::into).collect();
        self
    }

    /// How private-channel tokens are obtained.
    pub fn auth(mut self, auth: ChannelAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The `client` query parameter sent to the server.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Silence after which the client pings; default: the server's `activity_timeout`
    /// (120 s when it gives none). A shorter one here wins. Pusher's name for
    /// [`ping_interval`](Self::ping_interval), which it sets.
    pub fn activity_timeout(self, d: Duration) -> Self {
        self.ping_interval(d)
    }

    /// Time allowed, once `pusher:subscribe` is sent, for the server to confirm with
    /// `pusher_internal:subscription_succeeded` ([`DEFAULT_SUBSCRIBE_TIMEOUT`], 10 s). Past
    /// it the connection counts as a failed attempt: a warning is logged and the source
    /// reconnects after its back-off; health is never `Connected` meanwhile.
    pub fn subscribe_timeout(mut self, d: Duration) -> Self {
        self.subscribe_timeout = d;
        self
    }

    pub(crate) fn backoff_config(&self) -> Backoff {
        self.connection.backoff
    }

    /// Bounds on chunk reassembly.
    pub fn chunk_limits(mut self, limits: ChunkLimits) -> Self {
        self.chunk_limits = limits;
        self
    }

    /// How often dropped chunked events (evicted by [`ChunkLimits`], or expired) are
    /// summarized in the log (default [`DEFAULT_CHUNK_DROP_SUMMARY_INTERVAL`], 10 s; at least
    /// 1 ms). The first drop is a WARN line of its own; the ones that follow within the
    /// interval are counted and written as one WARN line (the count and the last one's
    /// description) once it has passed, so a server sending a flood of chunks that never
    /// complete cannot flood the log. Each drop is still reported to the error hook
    /// ([`SourceError::Chunk`](crate::source::SourceError::Chunk)) and logged at debug level.
    pub fn chunk_drop_summary_interval(mut self, interval: Duration) -> Self {
        self.chunk_drop_summary = interval.max(Duration::from_millis(1));
        self
    }

    /// Called for every `pusher:subscription_error`.
    pub fn on_subscription_error(
        mut self,
        hook: impl Fn(&SubscriptionError) + Send + Sync + 'static,
    ) -> Self {
        self.on_subscription_error = Some(Arc::new(hook));
        self
    }

    /// The websocket URL (the key is public; no secret goes into it).
    pub fn url(&self) -> String {
        format!(
            "{}://{}:{}/app/{}?client={}&version={}&protocol=7",
            if self.tls { "wss" } else { "ws" },
            self.host,
            self.port,
            self.key,
            self.client_name,
            env!("CARGO_PKG_VERSION"),
        )
    }

    pub(super) fn validate(&self) -> Result<()> {
        validate_key(&self.key)?;
        validate_channel(&self.channel)?;
        if self.host.is_empty() || self.host.contains(['/', '?', '#', '@', ' ']) {
            return Err(Error::Config(ConfigError {
                key: "pusher host".into(),
                message: format!("`{}` is not a host name", truncate_chars(&self.host, 60)),
            }));
        }
        if !self
            .client_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::Config(ConfigError {
                key: "pusher client name".into(),
                message: "only letters, digits, `-` and `_`".into(),
            }));
        }
        Ok(())
    }
}
