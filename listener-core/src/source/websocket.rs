//! A plain websocket source: each text (or binary) frame is one event in any envelope.
//!
//! It reconnects with [`Backoff`](crate::Backoff) after any drop (the back-off starts over
//! only after a connection stayed up for `stable_after`), pings after `ping_interval` of
//! silence and drops a connection that stays silent for `pong_timeout` after a ping, refuses
//! frames over `max_frame_bytes`, and skips undecodable frames with a bounded log preview.
//! Those settings are the shared [`ConnectionOptions`].

use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use super::connection::connection_setters;
pub use super::connection::DEFAULT_MAX_FRAME_BYTES;
use super::keepalive::{Due, Keepalive};
use super::{ConnectionOptions, Health, Source, SourceContext};
use crate::error::ConfigError;
use crate::error::{Error, Result};
use crate::preview::{preview, PREVIEW_CHARS};
use crate::source::SourceError;

/// Silence after which a plain websocket source pings when
/// [`ConnectionOptions::ping_interval`] is not set: 30 s.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);

/// A source reading events from a `ws://` or `wss://` URL.
///
/// ```no_run
/// use std::time::Duration;
/// use listener_core::source::websocket::WebSocketSource;
/// use listener_core::Listener;
/// # async fn run() -> listener_core::Result<()> {
/// let source = WebSocketSource::new("wss://events.example.com/stream")?
///     .ping_interval(Duration::from_secs(20));
/// Listener::builder().source(source).build()?.wait_forever().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketSource {
    url: String,
    connection: ConnectionOptions,
}

connection_setters!(WebSocketSource);

enum SessionEnd {
    Shutdown,
    Dropped(Error),
}

impl WebSocketSource {
    /// A source for `url`, which must be `ws://` or `wss://`.
    pub fn new(url: impl Into<String>) -> Result<Self> {
        let url = url.into();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(Error::Config(ConfigError {
                key: "websocket url".into(),
                message: format!(
                    "`{}` is not a ws:// or wss:// URL",
                    crate::preview::truncate_chars(&url, 80)
                ),
            }));
        }
        Ok(WebSocketSource {
            url,
            connection: ConnectionOptions::default(),
        })
    }

    /// The URL without credentials or query, for logs.
    fn display_url(&self) -> String {
        let no_query = self.url.split(['?', '#']).next().unwrap_or_default();
        match no_query.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                format!("{scheme}://{host}")
            }
            None => no_query.to_owned(),
        }
    }

    async fn session<S>(
        &self,
        ws: tokio_tungstenite::WebSocketStream<S>,
        cx: &SourceContext,
    ) -> SessionEnd
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut write, mut read) = ws.split();
        let pong_timeout = self.connection.pong_timeout;
        let ping_interval = self
            .connection
            .ping_interval
            .unwrap_or(DEFAULT_PING_INTERVAL);
        let mut keepalive = Keepalive::new(ping_interval, pong_timeout);
        loop {
            tokio::select! {
                _ = cx.cancelled() => {
                    let _ = write.send(Message::Close(None)).await;
                    return SessionEnd::Shutdown;
                }
                due = keepalive.due() => {
                    if due == Due::Dead {
                        return SessionEnd::Dropped(Error::Source(SourceError::Failed {
                            source_name: cx.name().to_owned(),
                            message: format!("no answer to ping within {:?}; connection presumed dead", pong_timeout),
                        }));
                    }
                    if let Err(e) = write.send(Message::Ping(Default::default())).await {
                        return SessionEnd::Dropped(SourceError::websocket(e).into());
                    }
                    keepalive.pinged();
                }
                msg = read.next() => {
                    let msg = match msg {
                        None => return SessionEnd::Dropped(closed("the server closed the connection")),
                        Some(Err(e)) => return SessionEnd::Dropped(SourceError::websocket(e).into()),
                        Some(Ok(msg)) => msg,
                    };
                    keepalive.seen();
                    let bytes: &[u8] = match &msg {
                        Message::Text(text) => text.as_bytes(),
                        Message::Binary(bytes) => bytes,
                        Message::Close(frame) => {
                            let why = frame.as_ref().map_or_else(
                                || "the server closed the connection".to_owned(),
                                |f| format!("the server closed the connection ({} {})", f.code, f.reason),
                            );
                            return SessionEnd::Dropped(closed(&why));
                        }
                        // Pings are answered by tungstenite; pongs only prove liveness.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                    };
                    match cx.deliver_body(bytes).await {
                        Err(Error::ShuttingDown) => return SessionEnd::Shutdown,
                        Err(e @ Error::Decode(_)) => {
                            tracing::warn!(
                                error = %e,
                                frame = %preview(bytes, PREVIEW_CHARS),
                                "skipping undecodable frame"
                            );
                            cx.report_error(e);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn closed(why: &str) -> Error {
    SourceError::Closed(why.to_owned()).into()
}

/// Handshake answers that retrying cannot fix.
fn is_fatal(e: &tungstenite::Error) -> bool {
    match e {
        tungstenite::Error::Http(resp) => matches!(resp.status().as_u16(), 401 | 403 | 404),
        tungstenite::Error::Url(_) => true,
        _ => false,
    }
}

#[async_trait]
impl Source for WebSocketSource {
    fn name(&self) -> String {
        format!("websocket {}", self.display_url())
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()> {
        crate::tls::ensure_crypto_provider();
        let mut failures: u32 = 0;
        loop {
            if cx.is_shutting_down() {
                return Ok(());
            }
            let options = &self.connection;
            let connect = tokio_tungstenite::connect_async_with_config(
                self.url.as_str(),
                Some(options.ws_config()),
                false,
            );
            let connected = tokio::select! {
                _ = cx.cancelled() => return Ok(()),
                r = tokio::time::timeout(options.connect_timeout, connect) => r,
            };
            let error = match connected {
                Ok(Ok((ws, _response))) => {
                    let up_since = Instant::now();
                    cx.set_health(Health::Connected);
                    tracing::info!("connected");
                    match self.session(ws, &cx).await {
                        SessionEnd::Shutdown => return Ok(()),
                        SessionEnd::Dropped(e) => {
                            // Only a connection that stayed up resets the back-off: one a
                            // server drops right after accepting it is one more failed attempt.
                            if options.was_stable(Some(up_since)) {
                                failures = 0;
                            }
                            e
                        }
                    }
                }
                Ok(Err(e)) if is_fatal(&e) => {
                    return Err(Error::Source(SourceError::Failed {
                        source_name: cx.name().to_owned(),
                        message: format!("the server refused the connection: {e}"),
                    }));
                }
                Ok(Err(e)) => SourceError::websocket(e).into(),
                Err(_) => Error::Source(SourceError::Failed {
                    source_name: cx.name().to_owned(),
                    message: format!("connect timed out after {:?}", options.connect_timeout),
                }),
            };
            failures += 1;
            if options.backoff.exhausted(failures) {
                return Err(Error::Source(SourceError::Failed {
                    source_name: cx.name().to_owned(),
                    message: format!(
                        "gave up after {} failed attempts; last error: {error}",
                        failures - 1
                    ),
                }));
            }
            let delay = options.backoff.delay(failures);
            if !cx
                .pause_before_retry("connection lost", failures, delay, error)
                .await
            {
                return Ok(());
            }
        }
    }
}
