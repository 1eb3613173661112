//! The webhook source: an HTTP server receiving signed deliveries and feeding the listener.
//!
//! Answers: 2xx once the event is accepted (or, with [`AckPolicy::AfterHandlers`], once its
//! handlers succeeded, 500 otherwise so the sender retries); 401 on any verification failure,
//! with no detail; 400 for a malformed event; 413 over the body limit (enforced while
//! reading); 415 for a non-JSON content type; 503 with `Retry-After` when the dispatcher is
//! saturated or shutting down, and for a `webhook-id` whose delivery is still being handled
//! (a concurrent retry: its outcome is not known yet); 408 when the body does not arrive
//! within the body timeout. A `webhook-id` already accepted within the replay window is
//! answered 200 and not dispatched again. `GET /healthz` says whether it is serving.
//!
//! Refused requests are counted by reason and logged at debug level, with a WARN summary at
//! most once per [`rejection_summary_interval`](WebhookSource::rejection_summary_interval).
//! Connections are bounded: see [`max_connections`](WebhookSource::max_connections),
//! [`header_timeout`](WebhookSource::header_timeout) and
//! [`idle_timeout`](WebhookSource::idle_timeout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::receive::{router, summarize, AckPolicy, Answering, AppState};
use super::replay::Replay;
use super::{WebhookSecret, DEFAULT_TOLERANCE};
use crate::error::{ConfigError, Error, Result};
use crate::preview::truncate_chars;
use crate::serve::{serve, ConnectionLimits, MIN_HEADER_BYTES};
use crate::source::{Health, Source, SourceContext};

/// Where the source listens unless told otherwise.
pub const DEFAULT_WEBHOOK_ADDR: &str = "127.0.0.1:8787";
/// The path deliveries are POSTed to unless told otherwise.
pub const DEFAULT_WEBHOOK_PATH: &str = "/webhook";
/// The largest body accepted unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// How long a request's body may take to arrive unless told otherwise.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections served at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// How long a request's header block may take to arrive unless told otherwise.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may wait for its next request unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest request header block (request line and headers) buffered unless told
/// otherwise: 64 KiB, far above what a webhook sender needs (a Composio delivery's is under
/// 2 KiB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;
/// The header and idle timeouts are at least this long (a zero one would close every
/// connection at once).
const MIN_CONNECTION_TIMEOUT: Duration = Duration::from_millis(1);
/// How often refused requests are summarized in the log unless told otherwise.
pub const DEFAULT_REJECTION_SUMMARY_INTERVAL: Duration = Duration::from_secs(10);
/// At most this many delivery ids are remembered for replay protection.
const REPLAY_CAPACITY: usize = 100_000;

/// Receives signed webhook deliveries over HTTP.
///
/// ```no_run
/// use listener_core::prelude::*;
/// use listener_core::webhook::{WebhookSecret, WebhookSource};
/// # async fn run() -> anyhow::Result<()> {
/// let source = WebhookSource::bind("127.0.0.1:8787".parse()?, vec![WebhookSecret::new("whsec_…")])?;
/// println!("POST deliveries to http://{}/webhook", source.local_addr());
/// Listener::builder().source(source).build()?.wait_forever().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WebhookSource {
    addr: SocketAddr,
    listener: Option<std::net::TcpListener>,
    path: String,
    answering: Answering,
    connections: ConnectionLimits,
    rejection_summary: Duration,
}

impl WebhookSource {
    /// A source that binds `addr` when it starts.
    pub fn new(addr: SocketAddr, secrets: Vec<WebhookSecret>) -> Self {
        WebhookSource {
            addr,
            listener: None,
            path: DEFAULT_WEBHOOK_PATH.into(),
            answering: Answering {
                secrets,
                tolerance: DEFAULT_TOLERANCE,
                max_body: DEFAULT_MAX_BODY_BYTES,
                body_timeout: DEFAULT_BODY_TIMEOUT,
                ack: AckPolicy::Accepted,
                retry_after_secs: 1,
            },
            connections: ConnectionLimits {
                server: "webhook",
                max_connections: DEFAULT_MAX_CONNECTIONS,
                header_timeout: DEFAULT_HEADER_TIMEOUT,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
                max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            },
            rejection_summary: DEFAULT_REJECTION_SUMMARY_INTERVAL,
        }
    }

    /// A source bound now (port 0 picks a free port; see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: SocketAddr, secrets: Vec<WebhookSecret>) -> Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let mut source = WebhookSource::new(listener.local_addr()?, secrets);
        source.listener = Some(listener);
        Ok(source)
    }

    /// From environment variables, read through `lookup`:
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `COMPOSIO_WEBHOOK_SECRET` | required; several secrets separated by spaces or commas are all accepted (rotation); a `whsec_` secret is tried both ways (Composio's raw bytes, Standard Webhooks' base64) |
    /// | `LISTENER_WEBHOOK_ADDR` | where to listen (default `127.0.0.1:8787`) |
    /// | `LISTENER_WEBHOOK_PATH` | where deliveries are POSTed (default `/webhook`) |
    /// | `LISTENER_WEBHOOK_TOLERANCE_SECS` | timestamp tolerance either way (default 300; 0 disables) |
    /// | `LISTENER_WEBHOOK_MAX_BODY_BYTES` | largest body accepted (default 1048576) |
    /// | `LISTENER_WEBHOOK_ACK` | `accepted` (default: 200 once dispatched) or `handlers` (200 once the handlers succeeded, 500 otherwise) |
    /// | `LISTENER_WEBHOOK_BODY_TIMEOUT_SECS` | how long a body may take to arrive (default 30) |
    /// | `LISTENER_WEBHOOK_MAX_CONNECTIONS` | most connections served at once (default 512) |
    /// | `LISTENER_WEBHOOK_HEADER_TIMEOUT_SECS` | how long a header block may take to arrive, from its first byte (default 10) |
    /// | `LISTENER_WEBHOOK_IDLE_TIMEOUT_SECS` | how long a connection may wait for its next request (default 60) |
    /// | `LISTENER_WEBHOOK_MAX_HEADER_BYTES` | largest request header block, request line included (default 65536, at least 8192); 431 beyond |
    /// | `LISTENER_WEBHOOK_REJECTION_SUMMARY_SECS` | how often refused requests are summarized in the log (default 10) |
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let raw = lookup("COMPOSIO_WEBHOOK_SECRET").unwrap_or_default();
        let secrets: Vec<WebhookSecret> = raw
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(WebhookSecret::new)
            .collect();
        if secrets.is_empty() {
            return Err(Error::Config(ConfigError {
                key: "COMPOSIO_WEBHOOK_SECRET".into(),
                message: "not set".into(),
            }));
        }
        let addr_text = lookup("LISTENER_WEBHOOK_ADDR").filter(|v| !v.trim().is_empty());
        let addr_text = addr_text.as_deref().map_or(DEFAULT_WEBHOOK_ADDR, str::trim);
        let addr = addr_text.parse().map_err(|_| {
            Error::Config(ConfigError {
                key: "LISTENER_WEBHOOK_ADDR".into(),
                message: format!(
                    "`{}` is not an address such as 127.0.0.1:8787",
                    truncate_chars(addr_text, 60)
                ),
            })
        })?;
        let mut source = WebhookSource::new(addr, secrets);
        if let Some(path) = lookup("LISTENER_WEBHOOK_PATH").filter(|v| !v.trim().is_empty()) {
            source = source.path(path.trim())?;
        }
        let number = |key: &str| -> Result<Option<u64>> {
            match lookup(key).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    Error::Config(ConfigError {
                        key: key.to_owned(),
                        message: format!("`{}` is not a whole number", truncate_chars(&v, 60)),
                    })
                }),
            }
        };
        if let Some(secs) = number("LISTENER_WEBHOOK_TOLERANCE_SECS")? {
            source = source.tolerance(Duration::from_secs(secs));
        }
        if let Some(bytes) = number("LISTENER_WEBHOOK_MAX_BODY_BYTES")? {
            source = source.max_body_bytes(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        let positive = |key: &str| -> Result<Option<u64>> {
            match number(key)? {
                Some(0) => Err(Error::Config(ConfigError {
                    key: key.to_owned(),
                    message: "must be at least 1".into(),
                })),
                other => Ok(other),
            }
        };
        if let Some(secs) = positive("LISTENER_WEBHOOK_BODY_TIMEOUT_SECS")? {
            source = source.body_timeout(Duration::from_secs(secs));
        }
        if let Some(n) = positive("LISTENER_WEBHOOK_MAX_CONNECTIONS")? {
            source = source.max_connections(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(secs) = positive("LISTENER_WEBHOOK_HEADER_TIMEOUT_SECS")? {
            source = source.header_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = positive("LISTENER_WEBHOOK_IDLE_TIMEOUT_SECS")? {
            source = source.idle_timeout(Duration::from_secs(secs));
        }
        if let Some(bytes) = positive("LISTENER_WEBHOOK_MAX_HEADER_BYTES")? {
            source = source.max_header_bytes(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        if let Some(secs) = positive("LISTENER_WEBHOOK_REJECTION_SUMMARY_SECS")? {
            source = source.rejection_summary_interval(Duration::from_secs(secs));
        }
        if let Some(ack) = lookup("LISTENER_WEBHOOK_ACK").filter(|v| !v.trim().is_empty()) {
            source = source.ack(match ack.trim().to_ascii_lowercase().as_str() {
                "accepted" => AckPolicy::Accepted,
                "handlers" => AckPolicy::AfterHandlers,
                _ => {
                    return Err(Error::Config(ConfigError {
                        key: "LISTENER_WEBHOOK_ACK".into(),
                        message: format!(
                            "`{}` is not `accepted` or `handlers`",
                            truncate_chars(&ack, 60)
                        ),
                    }))
                }
            });
        }
        Ok(source)
    }

    /// From the process environment; see [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// The address (the bound one, after [`bind`](Self::bind)).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The path deliveries are POSTed to (default `/webhook`).
    pub fn path(mut self, path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        if !path.starts_with('/') || path == "/healthz" || path.contains(['{', '}', '*']) {
            return Err(Error::Config(ConfigError {
                key: "LISTENER_WEBHOOK_PATH".into(),
                message: format!(
                    "`{}` must start with `/` and not be /healthz",
                    truncate_chars(&path, 60)
                ),
            }));
        }
        self.path = path;
        Ok(self)
    }

    /// Timestamp tolerance either way (default 300 s; zero disables the check). A
    /// `webhook-id` is remembered for twice this long (at least 600 s): the span over which
    /// one signed timestamp stays acceptable.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.answering.tolerance = tolerance;
        self
    }

    /// Largest body accepted (default 1 MiB), enforced while reading: nothing beyond it is
    /// kept. A larger body is answered 413 once read to its end (and thrown away), up to
    /// four times the limit (at least 8 MiB), so the sender reads the answer instead of a
    /// reset connection; beyond that the connection is dropped.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.answering.max_body = bytes;
        self
    }

    /// How long a request's body may take to arrive (default 30 s); a slower one is
    /// answered 408. Also bounds how long a slow upload holds up shutdown. At the
    /// connection cap a body still arriving may be cut sooner, for a newcomer (see
    /// [`max_connections`](Self::max_connections)).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.answering.body_timeout = timeout;
        self
    }

    /// When deliveries are acknowledged (default: once accepted).
    pub fn ack(mut self, ack: AckPolicy) -> Self {
        self.answering.ack = ack;
        self
    }

    /// The `Retry-After` sent with 503 answers, in seconds (default 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.answering.retry_after_secs = secs;
        self
    }

    /// Most connections served at once (default 512; at least 1). A connection arriving at
    /// the cap makes room by closing the connection that has gone the longest without an
    /// answer (since it opened, or since its last answer) among those with no request in
    /// progress and those whose request body is still arriving. One receiving a body is
    /// closed without an answer: its body is not complete, so nothing in it can have been
    /// verified yet, and senders trickling bodies cannot hold every slot until the
    /// [`body_timeout`](Self::body_timeout). A request whose body has arrived is never cut
    /// for a newcomer: if every connection has one, new connections wait in the listen
    /// backlog until one ends. The newcomer is served once the connection it replaces is
    /// closed, so the connections held never pass the cap by more than one. Rate-limited
    /// WARN lines say when the cap is hit. Keep it below the process's file-descriptor
    /// limit (`ulimit -n`); should the process run out of descriptors anyway, the server
    /// closes an idle connection (or a body arriving), pauses briefly and goes on.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.connections.max_connections = max.max(1);
        self
    }

    /// How long a request's header block may take to arrive, counted from its first byte
    /// (default 10 s): a slower sender (slowloris) is disconnected. An oversized header
    /// block is answered 431 (see [`max_header_bytes`](Self::max_header_bytes)).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.connections.header_timeout = timeout.max(MIN_CONNECTION_TIMEOUT);
        self
    }

    /// Largest request header block the server buffers, request line and headers together,
    /// in bytes (default 64 KiB; at least 8 KiB, the HTTP layer's smallest read buffer: a
    /// smaller setting is raised to it). A larger one is answered 431 (Request Header Fields Too
    /// Large) and the connection closed, after reading at most about this much of it; so it
    /// also bounds the memory and time a sender of huge header blocks costs per connection.
    /// At most 100 header lines are accepted whatever the size (431 beyond; fixed).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.connections.max_header_bytes = bytes.max(MIN_HEADER_BYTES);
        self
    }

    /// How long a connection may wait for its next request, after it opened or after its
    /// last answer (default 60 s); then it is closed. A peer that stops reading its
    /// answers is timed the same way.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.connections.idle_timeout = timeout.max(MIN_CONNECTION_TIMEOUT);
        self
    }

    /// How often refused requests (401, 408, 413, 415, unreadable bodies) are summarized
    /// in one WARN line with counts by reason (default 10 s). Each one is also logged at
    /// debug level.
    pub fn rejection_summary_interval(mut self, interval: Duration) -> Self {
        self.rejection_summary = interval.max(Duration::from_millis(1));
        self
    }
}

#[async_trait]
impl Source for WebhookSource {
    fn name(&self) -> String {
        format!("webhook http://{}{}", self.addr, self.path)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()> {
        let listener = match self.listener {
            Some(l) => tokio::net::TcpListener::from_std(l)?,
            None => tokio::net::TcpListener::bind(self.addr).await?,
        };
        let addr = listener.local_addr().unwrap_or(self.addr);
        if !self.answering.secrets.iter().any(WebhookSecret::is_usable) {
            return Err(Error::Config(ConfigError {
                key: "COMPOSIO_WEBHOOK_SECRET".into(),
                message: "no usable webhook secret (an empty secret would let anyone sign)".into(),
            }));
        }
        let window = self
            .answering
            .tolerance
            .max(DEFAULT_TOLERANCE)
            .saturating_mul(2);
        let st = Arc::new(AppState::new(
            cx.clone(),
            self.answering,
            Replay::new(window, REPLAY_CAPACITY),
        ));
        let app = router(Arc::clone(&st), &self.path);
        cx.set_health(Health::Connected);
        tracing::info!(%addr, path = %self.path, "webhook source listening");
        let summaries = tokio::spawn(summarize(Arc::clone(&st), addr, self.rejection_summary));
        // On shutdown: keep answering (503) until the requests in flight have finished,
        // then stop accepting and close.
        serve(listener, app, self.connections, st.drained()).await;
        summaries.abort();
        st.rejections.summarize(addr, self.rejection_summary);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<WebhookSource> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WebhookSource::from_lookup(&move |key| {
            vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn configuration_from_the_environment() {
        let s = from(&[("COMPOSIO_WEBHOOK_SECRET", "whsec_a, whsec_b  c")]).unwrap();
        assert_eq!(s.answering.secrets.len(), 3);
        assert_eq!(s.local_addr().to_string(), DEFAULT_WEBHOOK_ADDR);
        assert_eq!(s.path, DEFAULT_WEBHOOK_PATH);
        assert_eq!(
            (s.answering.tolerance, s.answering.max_body, s.answering.ack),
            (
                DEFAULT_TOLERANCE,
                DEFAULT_MAX_BODY_BYTES,
                AckPolicy::Accepted
            )
        );

        let s = from(&[
            ("COMPOSIO_WEBHOOK_SECRET", "whsec_a"),
            ("LISTENER_WEBHOOK_ADDR", " 0.0.0.0:9000 "),
            ("LISTENER_WEBHOOK_PATH", "/hooks/composio"),
            ("LISTENER_WEBHOOK_TOLERANCE_SECS", "0"),
            ("LISTENER_WEBHOOK_MAX_BODY_BYTES", "4096"),
            ("LISTENER_WEBHOOK_ACK", "Handlers"),
        ])
        .unwrap();
        assert_eq!(s.local_addr().to_string(), "0.0.0.0:9000");
        assert_eq!(s.path, "/hooks/composio");
        assert_eq!(s.connections.max_header_bytes, DEFAULT_MAX_HEADER_BYTES);
        let header_bytes = |v: &str| {
            from(&[
                ("COMPOSIO_WEBHOOK_SECRET", "whsec_a"),
                ("LISTENER_WEBHOOK_MAX_HEADER_BYTES", v),
            ])
            .map(|s| s.connections.max_header_bytes)
        };
        assert_eq!(header_bytes(" 16384 ").unwrap(), 16384);
        // Below the HTTP layer's minimum: raised to it (hyper would panic on less).
        assert_eq!(header_bytes("100").unwrap(), 8192);
        assert_eq!(
            (s.answering.tolerance, s.answering.max_body, s.answering.ack),
            (Duration::ZERO, 4096, AckPolicy::AfterHandlers)
        );
    }

    #[test]
    fn bad_configuration_names_the_variable() {
        let key_of = |vars: &[(&str, &str)]| match from(vars) {
            Err(Error::Config(ConfigError { key, .. })) => key,
            other => panic!("expected a configuration error, got {other:?}"),
        };
        assert_eq!(key_of(&[]), "COMPOSIO_WEBHOOK_SECRET");
        assert_eq!(
            key_of(&[("COMPOSIO_WEBHOOK_SECRET", " , ")]),
            "COMPOSIO_WEBHOOK_SECRET"
        );
        let with = |k: &'static str, v: &'static str| [("COMPOSIO_WEBHOOK_SECRET", "s"), (k, v)];
        for (key, value) in [
            ("LISTENER_WEBHOOK_ADDR", "localhost"),
            ("LISTENER_WEBHOOK_PATH", "webhook"),
            ("LISTENER_WEBHOOK_PATH", "/healthz"),
            ("LISTENER_WEBHOOK_TOLERANCE_SECS", "-1"),
            ("LISTENER_WEBHOOK_MAX_BODY_BYTES", "1MiB"),
            ("LISTENER_WEBHOOK_MAX_HEADER_BYTES", "64KiB"),
            ("LISTENER_WEBHOOK_MAX_HEADER_BYTES", "0"),
            ("LISTENER_WEBHOOK_ACK", "later"),
        ] {
            assert_eq!(key_of(&with(key, value)), key, "{key}={value}");
        }
    }

    #[test]
    fn the_name_shows_where_it_listens_and_never_a_secret() {
        let s = WebhookSource::new(
            "127.0.0.1:8787".parse().unwrap(),
            vec![WebhookSecret::new("whsec_hunter2")],
        );
        assert_eq!(s.name(), "webhook http://127.0.0.1:8787/webhook");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
