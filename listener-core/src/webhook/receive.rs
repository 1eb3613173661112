//! Answering one webhook request: content type, body under its bounds, verification,
//! replay protection, then the dispatch and the answer its acknowledgement policy asks for.
//! Refusals are counted and summarized ([`super::rejections`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

use super::body::{self, BodyRead};
use super::rejections::{Reason, Rejections};
use super::replay::{Admission, Replay};
use super::{verify, VerifyError, WebhookSecret};
use crate::preview::{preview, PREVIEW_CHARS};
use crate::source::SourceContext;

/// When a delivery is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckPolicy {
    /// 200 as soon as the event is verified and its handler runs are started (default; a
    /// run that never waits has finished by then, see
    /// [`eager_start`](crate::listener::ListenerBuilder::eager_start)).
    #[default]
    Accepted,
    /// 200 only once every matching handler succeeded; 500 otherwise, and the delivery id
    /// is forgotten so the sender's retry is dispatched again.
    AfterHandlers,
}

/// How a server answers requests: the settings of its [`WebhookSource`](super::WebhookSource)
/// that every request reads.
#[derive(Debug, Clone)]
pub(super) struct Answering {
    pub(super) secrets: Vec<WebhookSecret>,
    pub(super) tolerance: Duration,
    pub(super) max_body: usize,
    pub(super) body_timeout: Duration,
    pub(super) ack: AckPolicy,
    pub(super) retry_after_secs: u64,
}

/// The routes: deliveries at `path`, `GET /healthz`.
pub(super) fn router(st: Arc<AppState>, path: &str) -> Router {
    Router::new()
        .route(path, post(receive))
        .route("/healthz", get(healthz))
        .with_state(st)
}

/// What every request of one server shares.
pub(super) struct AppState {
    cx: SourceContext,
    answering: Answering,
    retry_after: HeaderValue,
    replay: Replay,
    pub(super) rejections: Rejections,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl AppState {
    /// The shared state of a server answering with `cx`.
    pub(super) fn new(cx: SourceContext, answering: Answering, replay: Replay) -> Self {
        AppState {
            cx,
            retry_after: HeaderValue::from(answering.retry_after_secs),
            answering,
            replay,
            rejections: Rejections::default(),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    /// Resolves once the server is shutting down and no request is in flight: until then
    /// it keeps answering (503 for new deliveries).
    pub(super) async fn drained(&self) {
        self.cx.cancelled().await;
        loop {
            let idle = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                break;
            }
            idle.await;
        }
    }

    /// Counts a refusal and logs it at debug level; the summary line reports it.
    fn refuse(&self, reason: Reason, response: Response) -> Response {
        self.rejections.count(reason);
        tracing::debug!(
            reason = reason.as_str(),
            status = response.status().as_u16(),
            "webhook request refused"
        );
        response
    }
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

/// A `{"status": "…"}` answer, written directly (the states are fixed identifiers).
fn status(code: StatusCode, state: &'static str) -> Response {
    let body = format!(r#"{{"status":"{state}"}}"#);
    (
        code,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
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

/// Answers one delivery, counting the answer by status
/// (`listener_webhook_responses_total`).
async fn receive(State(st): State<Arc<AppState>>, request: Request) -> Response {
    let response = answer(&st, request).await;
    crate::telemetry::webhook_response(st.cx.name(), response.status().as_u16());
    response
}

async fn answer(st: &AppState, request: Request) -> Response {
    // Taken apart by hand: the `HeaderMap` extractor would clone every header.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Refused before it counts as in flight: the drain at shutdown waits only for the
    // requests that were taken.
    if st.cx.is_shutting_down() {
        return unavailable(st, "shutting_down");
    }
    let _in_flight = InFlight::enter(st);
    if !is_json(&headers) {
        return st.refuse(
            Reason::MediaType,
            status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        );
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = match body::read(
        body,
        declared,
        st.answering.max_body,
        st.answering.body_timeout,
    )
    .await
    {
        BodyRead::Complete(bytes) => bytes,
        BodyRead::TooLarge => {
            let answer = status(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
            return st.refuse(Reason::TooLarge, answer);
        }
        BodyRead::Broken => {
            let answer = status(StatusCode::BAD_REQUEST, "unreadable_body");
            return st.refuse(Reason::UnreadableBody, answer);
        }
        BodyRead::TimedOut => {
            let answer = status(StatusCode::REQUEST_TIMEOUT, "body_timeout");
            return st.refuse(Reason::BodyTimeout, answer);
        }
    };
    let verified = match verify(
        &headers,
        &bytes,
        &st.answering.secrets,
        st.answering.tolerance,
    )
    .map_err(VerifyError::into_decode_error)
    {
        Ok(v) => v,
        Err(Err(e)) => {
            // No detail to the caller. Unauthenticated, so anyone can send these as fast as
            // they like: counted and summarized, logged one by one only at debug level
            // (bounded id, no body).
            st.rejections.count(Reason::of(&e));
            if tracing::enabled!(tracing::Level::DEBUG) {
                let id = headers.get("webhook-id").map_or(&[][..], |v| v.as_bytes());
                tracing::debug!(error = %e, webhook_id = %preview(id, 64), "webhook delivery refused");
            }
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Err(Ok(e)) => {
            tracing::warn!(error = %e, body = %preview(&bytes, PREVIEW_CHARS), "signed webhook delivery is malformed");
            st.cx.report_error(e);
            return status(StatusCode::BAD_REQUEST, "malformed_event");
        }
    };
    // Behind a JetStream relay: 200 once the stream stored the delivery (its body as it
    // arrived), 503 while the stream is unreachable, so that the sender retries.
    #[cfg(feature = "jetstream")]
    if st.cx.relays() {
        return store(st, verified.event, &bytes).await;
    }
    // The event owns what it needs; the body may share hyper's read buffer, so let it go
    // before the handlers run (they may take long with `AckPolicy::AfterHandlers`).
    drop(bytes);
    let mut claim = match st.replay.admit(&verified.id) {
        Admission::Fresh(claim) => claim,
        Admission::Duplicate => {
            tracing::info!(webhook_id = %verified.id, "replayed delivery acknowledged, not dispatched again");
            return status(StatusCode::OK, "duplicate");
        }
        Admission::InProgress => {
            tracing::info!(webhook_id = %verified.id, "a delivery of this id is still being handled; retry later");
            return unavailable(st, "in_progress");
        }
    };
    if st.cx.is_saturated() {
        return unavailable(st, "saturated");
    }
    tracing::debug!(webhook_id = %verified.id, trigger_slug = %verified.event.trigger_slug, "webhook delivery accepted");
    claim.hand_over(&st.cx);
    match st.answering.ack {
        AckPolicy::Accepted => match st.cx.deliver(verified.event).await {
            Ok(_) => {
                claim.keep();
                status(StatusCode::OK, "accepted")
            }
            Err(_) => unavailable(st, "shutting_down"),
        },
        AckPolicy::AfterHandlers => match st.cx.deliver_and_wait(verified.event).await {
            Ok(report) if report.all_ok() => {
                claim.keep();
                status(StatusCode::OK, "processed")
            }
            Ok(_) => status(StatusCode::INTERNAL_SERVER_ERROR, "handler_failed"),
            Err(_) => unavailable(st, "shutting_down"),
        },
    }
}

/// A delivery behind a relay: published, and answered once the stream acknowledged it.
/// The stream deduplicates by delivery id, so a retried delivery is stored once.
#[cfg(feature = "jetstream")]
async fn store(st: &AppState, event: crate::TriggerEvent, body: &[u8]) -> Response {
    let webhook_id = event.event_id.clone();
    match st.cx.deliver_durably(event, Some(body)).await {
        Ok(_) => {
            tracing::debug!(webhook_id = %webhook_id, "webhook delivery stored in the stream");
            status(StatusCode::OK, "stored")
        }
        Err(e) => {
            tracing::warn!(webhook_id = %webhook_id, error = %e, "webhook delivery not stored; answering 503 so the sender retries");
            st.cx.report_error(e);
            unavailable(st, "stream_unavailable")
        }
    }
}

/// Writes the refusal summary once per interval (nothing when there were none).
pub(super) async fn summarize(st: Arc<AppState>, addr: SocketAddr, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        st.rejections.summarize(addr, interval);
    }
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    if st.cx.is_shutting_down() {
        unavailable(&st, "shutting_down")
    } else {
        status(StatusCode::OK, "ok")
    }
}
