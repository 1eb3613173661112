//! A source for any Pusher Channels app (Pusher itself, sockudo, soketi, the local hub):
//! connect, authorize a private channel, subscribe, and turn the configured events on it
//! into trigger events — with chunk reassembly, keepalive, and Pusher's reconnect rules.
//!
//! Per connection: read `pusher:connection_established` (socket id, activity timeout),
//! fetch a fresh auth token for that socket id, send `pusher:subscribe`, and wait (at most
//! `subscribe_timeout`) for `pusher_internal:subscription_succeeded`. Then: answer
//! `pusher:ping`; send one after `activity_timeout` of silence and drop the connection if
//! nothing comes back within `pong_timeout`. `pusher:error` (or a close) with code 4000-4099
//! ends the source for good, 4100-4199 reconnects after a back-off, 4200-4299 at once; any
//! other drop reconnects with back-off and jitter, which starts over only after a connection
//! stayed subscribed for `stable_after`. A refused auth (401/403) is fatal.

mod auth;
mod chunks;
pub mod protocol;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use auth::Authorizer;
pub use auth::{AuthRefusal, ChannelAuth, ChannelAuthorizer};
pub use chunks::ChunkLimits;
use chunks::{Assembler, ChunkOutcome};
use protocol::{
    code_action, CodeAction, Established, Frame, PusherError, SubscriptionErrorData,
    CHUNKED_TRIGGER_EVENT, TRIGGER_EVENT,
};

use super::keepalive::{Due, Keepalive};
use super::{Health, Source, SourceContext};
use crate::backoff::Backoff;
use crate::decode;
use crate::error::ConfigError;
use crate::error::{Error, Result};
use crate::preview::{preview, truncate_chars, PREVIEW_CHARS};
use crate::source::SourceError;

/// How long the server has to confirm a subscription (`pusher_internal:subscription_succeeded`)
/// before the connection is given up and retried: 10 s.
pub const DEFAULT_SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection must stay subscribed before its end resets the reconnect back-off:
/// 30 s.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(30);

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

type SubscriptionHook = Arc<dyn Fn(&SubscriptionError) + Send + Sync>;

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
    key: String,
    host: String,
    port: u16,
    tls: bool,
    channel: String,
    events: Vec<String>,
    chunked_events: Vec<String>,
    auth: ChannelAuth,
    client_name: String,
    activity_timeout: Option<Duration>,
    pong_timeout: Duration,
    connect_timeout: Duration,
    subscribe_timeout: Duration,
    stable_after: Duration,
    max_frame_bytes: usize,
    backoff: Backoff,
    chunk_limits: ChunkLimits,
    on_subscription_error: Option<SubscriptionHook>,
}

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
            .field("backoff", &self.backoff)
            .field("subscribe_timeout", &self.subscribe_timeout)
            .field("stable_after", &self.stable_after)
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

fn validate_key(key: &str) -> Result<()> {
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

fn validate_channel(channel: &str) -> Result<()> {
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

/// How a connection ended.
enum End {
    Shutdown,
    Fatal(Error),
    Reconnect {
        error: Error,
        immediately: bool,
        /// When the subscription succeeded, if it did.
        subscribed: Option<Instant>,
    },
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
            activity_timeout: None,
            pong_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            subscribe_timeout: DEFAULT_SUBSCRIBE_TIMEOUT,
            stable_after: DEFAULT_STABLE_AFTER,
            max_frame_bytes: 1 << 20,
            backoff: Backoff::default(),
            chunk_limits: ChunkLimits::default(),
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
    /// (120 s when it gives none). A shorter one here wins.
    pub fn activity_timeout(mut self, d: Duration) -> Self {
        self.activity_timeout = Some(d);
        self
    }

    /// Time allowed for an answer to a ping before the connection is presumed dead (30 s).
    pub fn pong_timeout(mut self, d: Duration) -> Self {
        self.pong_timeout = d;
        self
    }

    /// Time allowed to connect and receive `pusher:connection_established` (10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time allowed, once `pusher:subscribe` is sent, for the server to confirm with
    /// `pusher_internal:subscription_succeeded` ([`DEFAULT_SUBSCRIBE_TIMEOUT`], 10 s). Past
    /// it the connection counts as a failed attempt: a warning is logged and the source
    /// reconnects after its back-off; health is never `Connected` meanwhile.
    pub fn subscribe_timeout(mut self, d: Duration) -> Self {
        self.subscribe_timeout = d;
        self
    }

    /// How long a connection must have stayed subscribed for the back-off to start over
    /// when it ends ([`DEFAULT_STABLE_AFTER`], 30 s). A connection dropped sooner counts as
    /// a failed attempt, so a server that closes every connection right after subscribing is
    /// retried at growing intervals, not every few hundred milliseconds (and, with
    /// [`Backoff::max_attempts`], eventually given up on).
    pub fn stable_after(mut self, d: Duration) -> Self {
        self.stable_after = d;
        self
    }

    /// Largest websocket frame or message accepted (1 MiB).
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes.max(1);
        self
    }

    /// Reconnect timing.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub(crate) fn backoff_config(&self) -> Backoff {
        self.backoff
    }

    /// Bounds on chunk reassembly.
    pub fn chunk_limits(mut self, limits: ChunkLimits) -> Self {
        self.chunk_limits = limits;
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

    fn validate(&self) -> Result<()> {
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

    fn ws_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_frame_size(Some(self.max_frame_bytes))
            .max_message_size(Some(self.max_frame_bytes))
    }

    async fn connect_and_serve(&self, cx: &SourceContext, authorizer: &Authorizer) -> End {
        let connect =
            tokio_tungstenite::connect_async_with_config(self.url(), Some(self.ws_config()), false);
        let ws = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(tungstenite::Error::Http(resp)))
                if matches!(resp.status().as_u16(), 401 | 403) =>
            {
                return End::Fatal(Error::Source(SourceError::Failed {
                    source_name: cx.name().to_owned(),
                    message: format!(
                        "the server refused the websocket handshake ({})",
                        resp.status()
                    ),
                }))
            }
            Ok(Err(e)) => return reconnect(SourceError::websocket(e).into()),
            Err(_) => return reconnect(timeout_error(cx, "connecting", self.connect_timeout)),
        };
        let (write, read) = ws.split();
        let mut session = Session {
            source: self,
            cx,
            write,
            read,
            assembler: Assembler::new(self.chunk_limits),
            subscribed: None,
        };
        session.run(authorizer).await
    }
}

fn reconnect(error: Error) -> End {
    End::Reconnect {
        error,
        immediately: false,
        subscribed: None,
    }
}

/// `now + after`, or a year from now if that overflows (a "never" timeout).
fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

fn timeout_error(cx: &SourceContext, what: &str, after: Duration) -> Error {
    Error::Source(SourceError::Failed {
        source_name: cx.name().to_owned(),
        message: format!("timed out after {after:?} {what}"),
    })
}

/// What a Pusher error code means for the connection.
fn end_for_code(code: i64, message: String, subscribed: Option<Instant>) -> End {
    let error = Error::Source(SourceError::Pusher { code, message });
    match code_action(code) {
        CodeAction::Fatal => End::Fatal(error),
        CodeAction::Immediately => End::Reconnect {
            error,
            immediately: true,
            subscribed,
        },
        CodeAction::Backoff | CodeAction::Other => End::Reconnect {
            error,
            immediately: false,
            subscribed,
        },
    }
}

struct Session<'a, S> {
    source: &'a PusherSource,
    cx: &'a SourceContext,
    write: SplitSink<WebSocketStream<S>, Message>,
    read: SplitStream<WebSocketStream<S>>,
    assembler: Assembler,
    /// When `pusher_internal:subscription_succeeded` came, if it has.
    subscribed: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    async fn send(&mut self, text: String) -> std::result::Result<(), Error> {
        self.write
            .send(Message::text(text))
            .await
            .map_err(|e| SourceError::websocket(e).into())
    }

    /// Reads until `pusher:connection_established`.
    async fn established(&mut self) -> std::result::Result<Established, End> {
        let deadline = Instant::now() + self.source.connect_timeout;
        loop {
            let msg = tokio::select! {
                _ = self.cx.cancelled() => return Err(End::Shutdown),
                _ = sleep_until(deadline) => {
                    return Err(reconnect(timeout_error(self.cx, "waiting for pusher:connection_established", self.source.connect_timeout)))
                }
                msg = self.read.next() => msg,
            };
            let text = match msg {
                None => {
                    return Err(reconnect(closed(
                        "the server closed the connection before it was established",
                    )))
                }
                Some(Err(e)) => return Err(reconnect(SourceError::websocket(e).into())),
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(frame))) => return Err(close_end(frame.as_ref(), None)),
                Some(Ok(_)) => continue,
            };
            let frame = match Frame::parse(&text) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, frame = %preview(text.as_bytes(), PREVIEW_CHARS), "bad frame before connection_established");
                    continue;
                }
            };
            match frame.event.as_ref() {
                "pusher:connection_established" => {
                    return frame.data_as::<Established>().map_err(|e| {
                        reconnect(Error::Source(SourceError::Failed {
                            source_name: self.cx.name().to_owned(),
                            message: format!("malformed connection_established: {e}"),
                        }))
                    })
                }
                "pusher:error" => {
                    let err: PusherError = frame.data_as().unwrap_or_default();
                    return Err(error_end(err, None));
                }
                other => {
                    tracing::debug!(event = %truncate_chars(other, 80), "frame before connection_established ignored")
                }
            }
        }
    }

    async fn run(&mut self, authorizer: &Authorizer) -> End {
        let established = match self.established().await {
            Ok(e) => e,
            Err(end) => return end,
        };
        let server_timeout =
            Duration::from_secs(established.activity_timeout.unwrap_or(120).clamp(1, 3600));
        let activity_timeout = self
            .source
            .activity_timeout
            .map_or(server_timeout, |ours| ours.min(server_timeout));
        tracing::debug!(socket_id = %established.socket_id, ?activity_timeout, "connection established");

        let channel = self.source.channel.as_str();
        let token = match authorizer.token(&established.socket_id, channel).await {
            Ok(token) => token,
            Err(AuthRefusal { error, fatal: true }) => return End::Fatal(error),
            Err(AuthRefusal {
                error,
                fatal: false,
            }) => return reconnect(error),
        };
        if let Err(e) = self
            .send(protocol::subscribe(channel, token.as_deref()))
            .await
        {
            return reconnect(e);
        }

        let subscribe_timeout = self.source.subscribe_timeout;
        let subscribe_deadline = deadline_after(subscribe_timeout);
        let mut keepalive = Keepalive::new(activity_timeout, self.source.pong_timeout);
        let sweep_every = (self.source.chunk_limits.max_age / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        let mut sweep = tokio::time::interval(sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                _ = self.cx.cancelled() => {
                    let _ = self.write.send(Message::Close(None)).await;
                    return End::Shutdown;
                }
                _ = sleep_until(subscribe_deadline), if self.subscribed.is_none() => {
                    // No close handshake: a server that does not answer may not read either.
                    tracing::warn!(channel = %channel, ?subscribe_timeout, "no pusher_internal:subscription_succeeded in time; reconnecting");
                    return reconnect(timeout_error(self.cx, "waiting for pusher_internal:subscription_succeeded", subscribe_timeout));
                }
                due = keepalive.due() => {
                    if due == Due::Dead {
                        return End::Reconnect {
                            error: timeout_error(self.cx, "waiting for an answer to pusher:ping; connection presumed dead", self.source.pong_timeout),
                            immediately: false,
                            subscribed: self.subscribed,
                        };
                    }
                    if let Err(e) = self.send(protocol::ping()).await {
                        return reconnect(e);
                    }
                    keepalive.pinged();
                    continue;
                }
                _ = sweep.tick() => {
                    self.assembler.evict_expired(std::time::Instant::now());
                    self.report_dropped_chunks();
                    continue;
                }
                msg = self.read.next() => msg,
            };
            keepalive.seen();
            let text = match msg {
                None => return self.dropped(closed("the server closed the connection")),
                Some(Err(e)) => return self.dropped(SourceError::websocket(e).into()),
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(frame))) => {
                    return close_end(frame.as_ref(), self.subscribed)
                }
                Some(Ok(Message::Binary(b))) => {
                    tracing::warn!(bytes = b.len(), "unexpected binary frame ignored");
                    continue;
                }
                Some(Ok(_)) => continue,
            };
            if let Some(end) = self.on_frame(&text).await {
                return end;
            }
        }
    }

    fn dropped(&self, error: Error) -> End {
        End::Reconnect {
            error,
            immediately: false,
            subscribed: self.subscribed,
        }
    }

    /// Handles one text frame; `Some` ends the connection.
    async fn on_frame(&mut self, text: &str) -> Option<End> {
        let frame = match Frame::parse(text) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, frame = %preview(text.as_bytes(), PREVIEW_CHARS), "skipping malformed pusher frame");
                self.cx.report_error(e);
                return None;
            }
        };
        let ours = frame.channel.as_deref() == Some(self.source.channel.as_str());
        match frame.event.as_ref() {
            "pusher:ping" => {
                if let Err(e) = self.send(protocol::pong()).await {
                    return Some(self.dropped(e));
                }
            }
            "pusher:pong" => {}
            "pusher:error" => {
                let err: PusherError = frame.data_as().unwrap_or_default();
                if err
                    .code
                    .is_some_and(|c| code_action(c) != CodeAction::Other)
                {
                    return Some(error_end(err, self.subscribed));
                }
                let message = truncate_chars(err.message.as_deref().unwrap_or("(no message)"), 300);
                tracing::warn!(code = ?err.code, %message, "pusher error");
                self.cx.report_error(Error::Source(SourceError::Pusher {
                    code: err.code.unwrap_or(0),
                    message,
                }));
            }
            "pusher_internal:subscription_succeeded" if ours => {
                self.subscribed.get_or_insert_with(Instant::now);
                self.cx.set_health(Health::Connected);
                tracing::info!(channel = %self.source.channel, "subscribed");
            }
            "pusher:subscription_error" => return Some(self.subscription_error(&frame)),
            event if ours && self.source.events.iter().any(|e| e == event) => {
                match frame.data_text() {
                    Ok(body) => return self.deliver(body.as_bytes()).await,
                    Err(e) => self.bad_payload(e.into(), text.as_bytes()),
                }
            }
            event if ours && self.source.chunked_events.iter().any(|e| e == event) => {
                let data = match frame.data_text() {
                    Ok(d) => d,
                    Err(e) => {
                        self.bad_payload(
                            Error::Source(SourceError::Chunk(format!(
                                "chunk data is not a JSON string: {e}"
                            ))),
                            text.as_bytes(),
                        );
                        return None;
                    }
                };
                let pushed = self.assembler.push(&data, std::time::Instant::now());
                self.report_dropped_chunks();
                match pushed {
                    Ok(ChunkOutcome::Pending) => {}
                    Ok(ChunkOutcome::Complete(body)) => return self.deliver(body.as_bytes()).await,
                    Err(problem) => self
                        .bad_payload(Error::Source(SourceError::Chunk(problem)), text.as_bytes()),
                }
            }
            other => tracing::debug!(event = %truncate_chars(other, 80), "frame ignored"),
        }
        None
    }

    async fn deliver(&mut self, body: &[u8]) -> Option<End> {
        match decode::decode(body) {
            Ok(event) => match self.cx.deliver(event).await {
                Err(Error::ShuttingDown) => Some(End::Shutdown),
                _ => None,
            },
            Err(e) => {
                self.bad_payload(e.into(), body);
                None
            }
        }
    }

    /// Incomplete chunked events are lost events: log and report each one.
    fn report_dropped_chunks(&mut self) {
        for message in self.assembler.take_dropped() {
            tracing::warn!(%message, "chunked event dropped");
            self.cx
                .report_error(Error::Source(SourceError::Chunk(message)));
        }
    }

    fn bad_payload(&self, error: Error, bytes: &[u8]) {
        tracing::warn!(error = %error, frame = %preview(bytes, PREVIEW_CHARS), "skipping undecodable event");
        self.cx.report_error(error);
    }

    fn subscription_error(&self, frame: &Frame<'_>) -> End {
        let data: SubscriptionErrorData = frame.data_as().unwrap_or_default();
        let raw = frame
            .data_text()
            .map(|d| d.into_owned())
            .unwrap_or_default();
        let message = data
            .error
            .clone()
            .unwrap_or_else(|| truncate_chars(&raw, 300));
        let err = SubscriptionError {
            channel: frame
                .channel
                .as_deref()
                .unwrap_or(&self.source.channel)
                .to_owned(),
            status: data.status,
            kind: data.kind.clone(),
            message: truncate_chars(&message, 300),
        };
        tracing::error!(status = ?err.status, kind = ?err.kind, message = %err.message, "subscription refused");
        if let Some(hook) = &self.source.on_subscription_error {
            hook(&err);
        }
        let error = Error::Source(SourceError::Auth {
            message: format!(
                "subscription to `{}` refused{}: {}",
                err.channel,
                err.status.map(|s| format!(" ({s})")).unwrap_or_default(),
                err.message
            ),
        });
        let refused =
            matches!(err.status, Some(401 | 403)) || err.kind.as_deref() == Some("AuthError");
        if refused {
            End::Fatal(error)
        } else {
            reconnect(error)
        }
    }
}

fn error_end(err: PusherError, subscribed: Option<Instant>) -> End {
    let message = truncate_chars(err.message.as_deref().unwrap_or("(no message)"), 300);
    match err.code {
        Some(code) => end_for_code(code, message, subscribed),
        None => End::Reconnect {
            error: Error::Source(SourceError::Pusher { code: 0, message }),
            immediately: false,
            subscribed,
        },
    }
}

fn close_end(
    frame: Option<&tungstenite::protocol::CloseFrame>,
    subscribed: Option<Instant>,
) -> End {
    match frame {
        Some(f) if (4000..4300).contains(&u16::from(f.code)) => end_for_code(
            i64::from(u16::from(f.code)),
            truncate_chars(&f.reason, 300),
            subscribed,
        ),
        Some(f) => End::Reconnect {
            error: closed(&format!(
                "the server closed the connection ({} {})",
                f.code,
                truncate_chars(&f.reason, 200)
            )),
            immediately: false,
            subscribed,
        },
        None => End::Reconnect {
            error: closed("the server closed the connection"),
            immediately: false,
            subscribed,
        },
    }
}

fn closed(why: &str) -> Error {
    SourceError::Closed(why.to_owned()).into()
}

#[async_trait]
impl Source for PusherSource {
    fn name(&self) -> String {
        format!("pusher {}:{} {}", self.host, self.port, self.channel)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()> {
        self.validate()?;
        let authorizer = Authorizer::new(self.auth.clone(), self.key.clone())?;
        let mut failures: u32 = 0;
        let mut last_immediate: Option<Instant> = None;
        loop {
            if cx.is_shutting_down() {
                return Ok(());
            }
            let (error, immediately) = match self.connect_and_serve(&cx, &authorizer).await {
                End::Shutdown => return Ok(()),
                End::Fatal(error) => {
                    return Err(match error {
                        e @ (Error::Source(SourceError::Failed { .. })
                        | Error::Config(ConfigError { .. })) => e,
                        other => Error::Source(SourceError::Failed {
                            source_name: cx.name().to_owned(),
                            message: other.to_string(),
                        }),
                    })
                }
                End::Reconnect {
                    error,
                    immediately,
                    subscribed,
                } => {
                    // Only a connection that stayed up resets the back-off: one a server
                    // drops right after subscribing is one more failed attempt.
                    match subscribed.map(|at| at.elapsed()) {
                        Some(up) if up >= self.stable_after => failures = 0,
                        Some(up) => {
                            tracing::debug!(up_ms = up.as_millis() as u64, stable_after = ?self.stable_after, "connection ended before it was stable; back-off continues");
                        }
                        None => {}
                    }
                    (error, immediately)
                }
            };
            failures += 1;
            if self.backoff.exhausted(failures) {
                return Err(Error::Source(SourceError::Failed {
                    source_name: cx.name().to_owned(),
                    message: format!(
                        "gave up after {} failed attempts; last error: {error}",
                        failures - 1
                    ),
                }));
            }
            // "Reconnect at once" is honoured, but not twice within a few seconds: a server
            // answering every connection with 42xx must not make us spin.
            let now = Instant::now();
            let delay = if immediately
                && last_immediate.is_none_or(|t| now.duration_since(t) > Duration::from_secs(5))
            {
                last_immediate = Some(now);
                Duration::ZERO
            } else {
                self.backoff.delay(failures)
            };
            if !cx
                .pause_before_retry("connection lost", failures, delay, error)
                .await
            {
                return Ok(());
            }
        }
    }
}
