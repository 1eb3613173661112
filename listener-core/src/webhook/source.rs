//! The webhook source: an HTTP server receiving signed deliveries and feeding the listener.
//!
//! Answers: 2xx once the event is accepted (or, with [`Ack::AfterHandlers`], once its
//! handlers succeeded, 500 otherwise so the sender retries); 401 on any verification failure,
//! with no detail; 400 for a malformed event; 413 over the body limit (enforced while
//! reading); 415 for a non-JSON content type; 503 with `Retry-After` when the dispatcher is
//! saturated or shutting down. A `webhook-id` already accepted within the replay window is
//! answered 200 and not dispatched again. `GET /healthz` says whether it is serving.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Notify;

use super::{verify, WebhookSecret, DEFAULT_TOLERANCE};
use crate::dispatch::dedupe::DedupeWindow;
use crate::preview::{preview, truncate_chars, PREVIEW_CHARS};
use crate::source::{Health, Source, SourceContext};
use crate::{DedupeConfig, Error, Result};

/// Where the source listens unless told otherwise.
pub const DEFAULT_WEBHOOK_ADDR: &str = "127.0.0.1:8787";
/// The path deliveries are POSTed to unless told otherwise.
pub const DEFAULT_WEBHOOK_PATH: &str = "/webhook";

/// When a delivery is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ack {
    /// 200 as soon as the event is verified and handed to the dispatcher (default).
    #[default]
    Accepted,
    /// 200 only once every matching handler succeeded; 500 otherwise, and the delivery id
    /// is forgotten so the sender's retry is dispatched again.
    AfterHandlers,
}

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
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
    max_body: usize,
    ack: Ack,
    retry_after_secs: u64,
}

impl WebhookSource {
    /// A source that binds `addr` when it starts.
    pub fn new(addr: SocketAddr, secrets: Vec<WebhookSecret>) -> Self {
        WebhookSource {
            addr,
            listener: None,
            path: DEFAULT_WEBHOOK_PATH.into(),
            secrets,
            tolerance: DEFAULT_TOLERANCE,
            max_body: 1 << 20,
            ack: Ack::Accepted,
            retry_after_secs: 1,
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

    /// From `COMPOSIO_WEBHOOK_SECRET` (required; several secrets separated by spaces or
    /// commas are all accepted, for rotation), `LISTENER_WEBHOOK_ADDR` (default
    /// `127.0.0.1:8787`) and `LISTENER_WEBHOOK_PATH` (default `/webhook`).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let raw = lookup("COMPOSIO_WEBHOOK_SECRET").unwrap_or_default();
        let secrets: Vec<WebhookSecret> = raw
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(WebhookSecret::new)
            .collect();
        if secrets.is_empty() {
            return Err(Error::Config {
                key: "COMPOSIO_WEBHOOK_SECRET".into(),
                message: "not set".into(),
            });
        }
        let addr_text = lookup("LISTENER_WEBHOOK_ADDR").filter(|v| !v.trim().is_empty());
        let addr_text = addr_text.as_deref().map_or(DEFAULT_WEBHOOK_ADDR, str::trim);
        let addr = addr_text.parse().map_err(|_| Error::Config {
            key: "LISTENER_WEBHOOK_ADDR".into(),
            message: format!(
                "`{}` is not an address such as 127.0.0.1:8787",
                truncate_chars(addr_text, 60)
            ),
        })?;
        let mut source = WebhookSource::new(addr, secrets);
        if let Some(path) = lookup("LISTENER_WEBHOOK_PATH").filter(|v| !v.trim().is_empty()) {
            source = source.path(path.trim())?;
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
            return Err(Error::Config {
                key: "LISTENER_WEBHOOK_PATH".into(),
                message: format!(
                    "`{}` must start with `/` and not be /healthz",
                    truncate_chars(&path, 60)
                ),
            });
        }
        self.path = path;
        Ok(self)
    }

    /// Timestamp tolerance either way (default 300 s; zero disables the check). Also the
    /// replay window.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Largest body accepted (default 1 MiB), enforced while reading.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// When deliveries are acknowledged (default: once accepted).
    pub fn ack(mut self, ack: Ack) -> Self {
        self.ack = ack;
        self
    }

    /// The `Retry-After` sent with 503 answers, in seconds (default 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = secs;
        self
    }
}

struct AppState {
    cx: SourceContext,
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
    max_body: usize,
    ack: Ack,
    retry_after: HeaderValue,
    replay: Mutex<DedupeWindow>,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AppState);

impl<'a> InFlight<'a> {
    fn enter(st: &'a AppState) -> Self {
        st.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(st)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

fn status(code: StatusCode, state: &'static str) -> Response {
    (code, Json(json!({"status": state}))).into_response()
}

fn unavailable(st: &AppState, state: &'static str) -> Response {
    let mut r = status(StatusCode::SERVICE_UNAVAILABLE, state);
    r.headers_mut().insert(RETRY_AFTER, st.retry_after.clone());
    r
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

impl AppState {
    fn forget(&self, id: &str) {
        self.replay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.cx.forget(id);
    }
}

async fn receive(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let _in_flight = InFlight::enter(&st);
    if st.cx.is_shutting_down() {
        return unavailable(&st, "shutting_down");
    }
    if !is_json(&headers) {
        return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > st.max_body) {
        return status(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    }
    let bytes = match axum::body::to_bytes(body, st.max_body).await {
        Ok(b) => b,
        Err(e) => {
            // The limit is enforced as the body streams in; anything else is a broken upload.
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                status(StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            } else {
                status(StatusCode::BAD_REQUEST, "unreadable_body")
            };
        }
    };
    let verified = match verify(&headers, &bytes, &st.secrets, st.tolerance) {
        Ok(v) => v,
        Err(e) if e.is_auth_failure() => {
            tracing::warn!(error = %e, "webhook delivery refused");
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Err(e) => {
            tracing::warn!(error = %e, body = %preview(&bytes, PREVIEW_CHARS), "signed webhook delivery is malformed");
            st.cx.report_error(Error::Verify(e));
            return status(StatusCode::BAD_REQUEST, "malformed_event");
        }
    };
    let id = verified.id;
    let fresh = st
        .replay
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(&id, Instant::now());
    if !fresh {
        tracing::info!(webhook_id = %id, "replayed delivery acknowledged, not dispatched again");
        return status(StatusCode::OK, "duplicate");
    }
    if st.cx.is_saturated() {
        st.forget(&id);
        return unavailable(&st, "saturated");
    }
    tracing::debug!(webhook_id = %id, trigger_slug = %verified.event.trigger_slug, "webhook delivery accepted");
    match st.ack {
        Ack::Accepted => match st.cx.deliver(verified.event).await {
            Ok(_) => status(StatusCode::OK, "accepted"),
            Err(_) => {
                st.forget(&id);
                unavailable(&st, "shutting_down")
            }
        },
        Ack::AfterHandlers => match st.cx.deliver_and_wait(verified.event).await {
            Ok(report) if report.all_ok() => status(StatusCode::OK, "processed"),
            Ok(_) => {
                st.forget(&id);
                status(StatusCode::INTERNAL_SERVER_ERROR, "handler_failed")
            }
            Err(_) => {
                st.forget(&id);
                unavailable(&st, "shutting_down")
            }
        },
    }
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    if st.cx.is_shutting_down() {
        unavailable(&st, "shutting_down")
    } else {
        status(StatusCode::OK, "ok")
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
        let window = if self.tolerance.is_zero() {
            DEFAULT_TOLERANCE
        } else {
            self.tolerance
        };
        let st = Arc::new(AppState {
            cx: cx.clone(),
            secrets: self.secrets,
            tolerance: self.tolerance,
            max_body: self.max_body,
            ack: self.ack,
            retry_after: HeaderValue::from(self.retry_after_secs),
            replay: Mutex::new(DedupeWindow::new(DedupeConfig {
                capacity: 100_000,
                ttl: window,
            })),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        let app = Router::new()
            .route(&self.path, post(receive))
            .route("/healthz", get(healthz))
            .with_state(Arc::clone(&st));
        cx.set_health(Health::Connected);
        tracing::info!(addr = %self.addr, path = %self.path, "webhook source listening");
        // On shutdown: keep answering (503) until the requests in flight have finished,
        // then stop accepting and close.
        let drained = async move {
            cx.cancelled().await;
            loop {
                let idle = st.idle.notified();
                if st.in_flight.load(Ordering::SeqCst) == 0 {
                    break;
                }
                idle.await;
            }
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(drained)
            .await?;
        Ok(())
    }
}
