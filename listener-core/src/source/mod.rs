//! Sources: where events come from.
//!
//! A [`Source`] reads its transport, decodes events and hands them to the listener through
//! its [`SourceContext`]; it knows nothing of handlers. Delivery waits while the listener's
//! in-flight bound is reached, so a source that awaits it stops reading instead of
//! buffering without limit.

#[cfg(feature = "realtime")]
pub mod composio;
#[cfg(feature = "websocket")]
mod connection;
pub(crate) mod error;
#[cfg(feature = "websocket")]
mod keepalive;
#[cfg(feature = "realtime")]
pub mod pusher;
#[cfg(feature = "websocket")]
pub mod websocket;

/// Re-exported for implementing [`Source`] without another dependency.
pub use async_trait::async_trait;
#[cfg(feature = "websocket")]
pub use connection::ConnectionOptions;
pub use error::SourceError;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::dispatch::{Dispatched, Dispatcher};
use crate::error::{Error, Result};
use crate::event::TriggerEvent;
use crate::report::DispatchReport;
use crate::report::{Failure, SourceFailure};
use crate::telemetry;

/// Something that yields decoded events until it is told to stop or fails for good.
#[async_trait]
pub trait Source: Send + 'static {
    /// A short name for logs and health reports (never containing secrets).
    fn name(&self) -> String;

    /// Runs until the context's shutdown fires (return `Ok(())` then), the source runs out
    /// of events (`Ok(())`), or it fails for good (`Err`, which the listener reports).
    /// Transient errors are the source's to retry, reporting them with
    /// [`SourceContext::report_error`].
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()>;
}

/// A source's health, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Not connected yet.
    Starting,
    /// Connected and receiving.
    Connected,
    /// Connection lost; retrying.
    Reconnecting {
        /// Consecutive failed attempts so far.
        attempt: u32,
        /// Delay before the next attempt.
        retry_in: Duration,
        /// The last error.
        error: String,
    },
    /// Finished normally.
    Stopped,
    /// Gave up for good.
    Failed(String),
}

impl Health {
    /// The state's name: `starting`, `connected`, `reconnecting`, `stopped` or `failed`
    /// (the `state` label of the `listener_source_health` metric, and the `health` field of
    /// the admin endpoint's `/readyz`).
    pub fn state(&self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Connected => "connected",
            Health::Reconnecting { .. } => "reconnecting",
            Health::Stopped => "stopped",
            Health::Failed(_) => "failed",
        }
    }

    /// Whether the source can receive events now: it is connected (a webhook source: it is
    /// listening).
    pub fn is_ready(&self) -> bool {
        matches!(self, Health::Connected)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Starting => f.write_str("starting"),
            Health::Connected => f.write_str("connected"),
            Health::Reconnecting {
                attempt,
                retry_in,
                error,
            } => {
                write!(
                    f,
                    "reconnecting (attempt {attempt}, next in {retry_in:?}): {error}"
                )
            }
            Health::Stopped => f.write_str("stopped"),
            Health::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// One source's name and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    /// The source's name.
    pub name: String,
    /// Its last reported health.
    pub health: Health,
}

/// The health of every source of a listener.
#[derive(Debug, Default)]
pub(crate) struct HealthBoard {
    entries: Mutex<Vec<SourceHealth>>,
}

impl HealthBoard {
    pub(crate) fn register(&self, name: String) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        telemetry::health_changed(&name, Health::Starting.state());
        entries.push(SourceHealth {
            name,
            health: Health::Starting,
        });
        entries.len() - 1
    }

    pub(crate) fn set(&self, index: usize, health: Health) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(index) {
            if entry.health.state() != health.state() {
                telemetry::health_changed(&entry.name, health.state());
            }
            entry.health = health;
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<SourceHealth> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The bytes a delivery came with: what a JetStream relay stores (rather than the event),
/// and whether the event's delivery id is in them.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "jetstream"), allow(dead_code))]
pub(crate) enum Body<'a> {
    /// None: a relay writes the event as a V3 envelope, its delivery id in it.
    None,
    /// The bytes as they arrived, decoded into the event by the context itself and
    /// unchanged since: the event's delivery id is the body's own.
    Decoded(&'a [u8]),
    /// The bytes as they arrived, decoded by the source, which may have changed the event
    /// since (a webhook takes the delivery id from its `webhook-id` header): the id travels
    /// beside them.
    Received(&'a [u8]),
}

impl<'a> Body<'a> {
    #[cfg(feature = "jetstream")]
    fn received(bytes: Option<&'a [u8]>) -> Self {
        bytes.map_or(Body::None, Body::Received)
    }
}

/// What a running source is given: the way to deliver events, report health and errors,
/// and the shutdown signal.
#[derive(Clone)]
pub struct SourceContext {
    name: Arc<str>,
    index: usize,
    dispatcher: Dispatcher,
    board: Arc<HealthBoard>,
    shutdown: CancellationToken,
    received: Arc<telemetry::ReceivedCounters>,
    /// Behind a JetStream relay, events go to the stream instead of the dispatcher.
    #[cfg(feature = "jetstream")]
    relay: Option<Arc<crate::jetstream::Relay>>,
}

impl fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceContext")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SourceContext {
    pub(crate) fn new(
        name: String,
        dispatcher: Dispatcher,
        board: Arc<HealthBoard>,
        shutdown: CancellationToken,
    ) -> Self {
        let index = board.register(name.clone());
        let name: Arc<str> = Arc::from(name);
        SourceContext {
            received: Arc::new(telemetry::ReceivedCounters::new(&name)),
            name,
            index,
            dispatcher,
            board,
            shutdown,
            #[cfg(feature = "jetstream")]
            relay: None,
        }
    }

    /// The same context, its events going to `relay`.
    #[cfg(feature = "jetstream")]
    pub(crate) fn with_relay(mut self, relay: Arc<crate::jetstream::Relay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands one decoded event to the dispatcher; waits while the in-flight bound is
    /// reached. [`Error::ShuttingDown`] means: stop reading. Behind a JetStream relay
    /// (feature `jetstream`) the event is buffered for the stream instead, written as a V3
    /// envelope: a source that receives bytes should hand them over with
    /// [`deliver_body`](Self::deliver_body) (which decodes them), or give the bytes it
    /// decoded with [`deliver_envelope`](Self::deliver_envelope).
    pub async fn deliver(&self, event: TriggerEvent) -> Result<Dispatched> {
        self.deliver_inner(event, Body::None).await
    }

    /// Like [`deliver`](Self::deliver), with the bytes the event was decoded from: behind a
    /// JetStream relay, they are what the stream stores (the envelope as it arrived);
    /// otherwise they are not used.
    pub async fn deliver_envelope(
        &self,
        event: TriggerEvent,
        envelope: &[u8],
    ) -> Result<Dispatched> {
        self.deliver_inner(event, Body::Received(envelope)).await
    }

    /// Decodes `body` (any envelope, as [`decode`](crate::decode::decode) does) and
    /// delivers the event with its bytes, as [`deliver_envelope`](Self::deliver_envelope).
    /// Behind a JetStream relay only what the stream needs is decoded (the payload is
    /// validated, not built: the worker that handles the event decodes it). A body that is
    /// not an event is an [`Error::Decode`] and nothing is delivered; the source logs and
    /// reports it ([`report_error`](Self::report_error)) and goes on.
    pub async fn deliver_body(&self, body: &[u8]) -> Result<Dispatched> {
        #[cfg(feature = "jetstream")]
        let event = if self.relay.is_some() {
            crate::decode::decode_identity(body)?
        } else {
            crate::decode::decode(body)?
        };
        #[cfg(not(feature = "jetstream"))]
        let event = crate::decode::decode(body)?;
        self.deliver_inner(event, Body::Decoded(body)).await
    }

    #[cfg_attr(not(feature = "jetstream"), allow(unused_variables))]
    async fn deliver_inner(&self, event: TriggerEvent, body: Body<'_>) -> Result<Dispatched> {
        let received = self.received.received(&event);
        #[cfg(feature = "jetstream")]
        if let Some(relay) = &self.relay {
            relay.enqueue(&self.name, &event, body);
            return Ok(Dispatched::Relayed);
        }
        let dispatched = self.dispatcher.dispatch(event).await;
        if let Ok(Dispatched::Duplicate) = dispatched {
            received.duplicate();
        }
        dispatched
    }

    /// Hands one event over and waits until its handlers finished (for transports that
    /// acknowledge only processed events). Behind a JetStream relay it waits until the
    /// stream stored the event instead, and the report is empty.
    pub async fn deliver_and_wait(&self, event: TriggerEvent) -> Result<DispatchReport> {
        #[cfg(feature = "jetstream")]
        if self.relay.is_some() {
            self.deliver_durably(event, None).await?;
            return Ok(DispatchReport::default());
        }
        let received = self.received.received(&event);
        let report = self.dispatcher.dispatch_and_wait(event).await;
        if report.as_ref().is_ok_and(|r| r.duplicate) {
            received.duplicate();
        }
        report
    }

    /// Whether this source's events go to a JetStream relay (feature `jetstream`) rather
    /// than to handlers in this process.
    pub fn relays(&self) -> bool {
        #[cfg(feature = "jetstream")]
        {
            self.relay.is_some()
        }
        #[cfg(not(feature = "jetstream"))]
        {
            false
        }
    }

    /// Behind a JetStream relay: publishes the event (with the bytes it was decoded from,
    /// when given) and waits until the stream acknowledged it, for transports whose sender
    /// retries what is not acknowledged (webhooks: 2xx only once stored). Fails at once
    /// while the stream is unreachable
    /// ([`JetStreamError::Unavailable`](crate::jetstream::JetStreamError::Unavailable)).
    #[cfg(feature = "jetstream")]
    pub async fn deliver_durably(
        &self,
        event: TriggerEvent,
        envelope: Option<&[u8]>,
    ) -> Result<Dispatched> {
        let Some(relay) = &self.relay else {
            return self.deliver_inner(event, Body::received(envelope)).await;
        };
        self.received.received(&event);
        relay
            .store(&self.name, &event, Body::received(envelope))
            .await?;
        Ok(Dispatched::Relayed)
    }

    /// A JetStream worker's delivery: dispatched without the dedupe window (the stream
    /// deduplicates, and a redelivery must run again), waiting for the handlers.
    /// A plain function giving the dispatcher's future (see
    /// `Dispatcher::dispatch_and_wait_undeduplicated`).
    #[cfg(feature = "jetstream")]
    pub(crate) fn deliver_from_stream(
        &self,
        event: TriggerEvent,
    ) -> impl std::future::Future<Output = Result<DispatchReport>> + Send + '_ {
        self.received.received(&event);
        self.dispatcher.dispatch_and_wait_undeduplicated(event)
    }

    /// Whether a delivery would wait for in-flight capacity right now.
    pub fn is_saturated(&self) -> bool {
        self.dispatcher.is_saturated()
    }

    /// Forgets a delivered event id, so a redelivery of it is dispatched again.
    pub fn forget(&self, event_id: &str) {
        self.dispatcher.forget(event_id);
    }

    /// Records the source's health.
    pub fn set_health(&self, health: Health) {
        self.board.set(self.index, health);
    }

    /// Reports a transient error (the source goes on) to the error hook. The source logs it
    /// itself, with whatever context (a frame preview, a peer address) it has.
    pub fn report_error(&self, error: impl Into<Error>) {
        let error = error.into();
        if let Error::Decode(e) = &error {
            telemetry::decode_failed(&self.name, e);
        }
        tracing::debug!(source = %self.name, error = %error, "source error reported to the hook");
        self.dispatcher.report(Failure::Source(SourceFailure {
            source: self.name.to_string(),
            error: Arc::new(error),
            fatal: false,
        }));
    }

    /// Before a retry: records [`Health::Reconnecting`], logs `what` with the error, reports
    /// the error to the hook, then waits `delay` — unless shutdown begins first, in which case
    /// it returns `false` at once (the source should then return `Ok(())`).
    pub async fn pause_before_retry(
        &self,
        what: &str,
        attempt: u32,
        delay: Duration,
        error: Error,
    ) -> bool {
        tracing::warn!(error = %error, attempt, retry_in_ms = delay.as_millis() as u64, "{what}; retrying");
        telemetry::reconnect(&self.name);
        self.set_health(Health::Reconnecting {
            attempt,
            retry_in: delay,
            error: error.to_string(),
        });
        self.report_error(error);
        tokio::select! {
            _ = self.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Completes when shutdown begins.
    pub async fn cancelled(&self) {
        self.shutdown.cancelled().await
    }

    /// The shutdown token, for sources that hand it to servers or subtasks.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Health;

    /// The health gauge's `state` labels are `Health::state`'s values, in order.
    #[test]
    fn health_states_are_the_metric_labels() {
        let all = [
            Health::Starting,
            Health::Connected,
            Health::Reconnecting {
                attempt: 1,
                retry_in: Duration::from_secs(1),
                error: "x".into(),
            },
            Health::Stopped,
            Health::Failed("x".into()),
        ];
        let states: Vec<_> = all.iter().map(Health::state).collect();
        assert_eq!(states, crate::telemetry::HEALTH_STATES);
    }
}
