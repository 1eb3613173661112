//! One Pusher connection: connect, read `pusher:connection_established`, authorize and
//! subscribe, then the read loop ([`Session`]) — pings, events, chunks, errors — and what
//! the connection's end means ([`End`]: stop, give up, or reconnect, at once or after the
//! back-off).

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::auth::{AuthRefusal, Authorizer};
use super::chunks::{Assembler, ChunkOutcome};
use super::config::{PusherSource, SubscriptionError};
use super::drops::DropLog;
use super::protocol::{
    self, code_action, CodeAction, Established, Frame, PusherError, SubscriptionErrorData,
};
use crate::error::Error;
use crate::preview::{preview, truncate_chars, PREVIEW_CHARS};
use crate::source::keepalive::{Due, Keepalive};
use crate::source::{Health, SourceContext, SourceError};

/// How a connection ended.
pub(super) enum End {
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
    /// One connection: connect, establish, subscribe, then read until it ends.
    pub(super) async fn connect_and_serve(
        &self,
        cx: &SourceContext,
        authorizer: &Authorizer,
        drops: &mut DropLog,
    ) -> End {
        let options = &self.connection;
        let connect = tokio_tungstenite::connect_async_with_config(
            self.url(),
            Some(options.ws_config()),
            false,
        );
        let ws = match tokio::time::timeout(options.connect_timeout, connect).await {
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
            Err(_) => return reconnect(timeout_error(cx, "connecting", options.connect_timeout)),
        };
        let (write, read) = ws.split();
        let mut session = Session {
            source: self,
            cx,
            write,
            read,
            assembler: Assembler::new(self.chunk_limits),
            drops,
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
    /// The source's log of dropped chunked events, across its connections.
    drops: &'a mut DropLog,
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
        let connect_timeout = self.source.connection.connect_timeout;
        let deadline = Instant::now() + connect_timeout;
        loop {
            let msg = tokio::select! {
                _ = self.cx.cancelled() => return Err(End::Shutdown),
                _ = sleep_until(deadline) => {
                    return Err(reconnect(timeout_error(self.cx, "waiting for pusher:connection_established", connect_timeout)))
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
            .connection
            .ping_interval
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
        let mut keepalive = Keepalive::new(activity_timeout, self.source.connection.pong_timeout);
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
                            error: timeout_error(self.cx, "waiting for an answer to pusher:ping; connection presumed dead", self.source.connection.pong_timeout),
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
                    self.drops.flush(Instant::now());
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
        match self.cx.deliver_body(body).await {
            Err(Error::ShuttingDown) => Some(End::Shutdown),
            Err(e @ Error::Decode(_)) => {
                self.bad_payload(e, body);
                None
            }
            _ => None,
        }
    }

    /// Incomplete chunked events are lost events: report each one, and log them at a
    /// bounded rate.
    fn report_dropped_chunks(&mut self) {
        let dropped = self.assembler.take_dropped();
        if dropped.is_empty() {
            return;
        }
        let now = Instant::now();
        for message in dropped {
            self.drops.record(&message, now);
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
