//! The relay: what the sources receive goes to the stream.
//!
//! Two paths. Events a source hands over without waiting (the realtime channel, a plain
//! websocket) go into a bounded buffer, published in order by one task, up to
//! `max_pending_acks` at once, each until its acknowledgement (`PubAck`); a publish that is
//! not acknowledged is published again with the ones after it, in order (their
//! `Nats-Msg-Id` makes the copies that were stored already no-ops). While the stream is
//! unreachable the buffer fills; past its bound the oldest event is dropped, counted and
//! reported to the error hook. Deliveries whose sender waits for the answer (webhooks) are
//! published on their own and answered once acknowledged, or refused at once while the
//! stream is unreachable, so that the sender retries.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::Client;
use tokio::sync::Notify;

use super::config::JetStream;
use super::connect::connect;
use super::envelope::Outgoing;
use super::error::JetStreamError;
use super::setup;
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::event::TriggerEvent;
use crate::source::{async_trait, Body, Health, Source, SourceContext};
use crate::telemetry;

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// What a relay holds for the stream, bounded by count and bytes.
#[derive(Default)]
struct Buffer {
    items: VecDeque<Outgoing>,
    bytes: usize,
}

impl Buffer {
    fn push_back(&mut self, item: Outgoing) {
        self.bytes += item.size();
        self.items.push_back(item);
    }

    fn push_front(&mut self, item: Outgoing) {
        self.bytes += item.size();
        self.items.push_front(item);
    }

    fn pop_front(&mut self) -> Option<Outgoing> {
        let item = self.items.pop_front()?;
        self.bytes -= item.size();
        Some(item)
    }
}

/// A relay, shared by the sources that feed it and the task that publishes.
pub(crate) struct Relay {
    cfg: Arc<JetStream>,
    name: String,
    buffer: Mutex<Buffer>,
    wake: Notify,
    /// Set once connected and the streams are set up.
    ready: OnceLock<(Client, jetstream::Context)>,
    /// Sources still feeding it: the publishing task ends at shutdown once they all
    /// stopped and the buffer is empty.
    feeders: AtomicUsize,
    dropped: AtomicU64,
    /// The error hook, through a context of the publishing task.
    reporter: OnceLock<SourceContext>,
    metrics: telemetry::RelayMetrics,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Keeps a relay's publishing task going at shutdown while a source feeding it runs.
pub(crate) struct Feeder(Arc<Relay>);

impl Drop for Feeder {
    fn drop(&mut self) {
        self.0.feeders.fetch_sub(1, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

impl Relay {
    pub(crate) fn new(cfg: Arc<JetStream>) -> Arc<Self> {
        let name = format!("jetstream relay {} ({})", cfg.servers, cfg.stream.name);
        let metrics = telemetry::RelayMetrics::new(&cfg.stream.name);
        Arc::new(Relay {
            cfg,
            name,
            buffer: Mutex::new(Buffer::default()),
            wake: Notify::new(),
            ready: OnceLock::new(),
            feeders: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            reporter: OnceLock::new(),
            metrics,
        })
    }

    /// Registers a source that feeds the relay, for as long as the guard lives.
    pub(crate) fn attach(self: &Arc<Self>) -> Feeder {
        self.feeders.fetch_add(1, Ordering::SeqCst);
        Feeder(Arc::clone(self))
    }

    /// The task that publishes the buffer, run by the listener as one of its sources.
    pub(crate) fn publisher(self: &Arc<Self>) -> Box<dyn Source> {
        Box::new(Publisher(Arc::clone(self)))
    }

    /// Buffers `event` (received by `source`, with its `body`) for the stream; never waits.
    /// Past the buffer's bound the oldest event is dropped.
    pub(crate) fn enqueue(&self, source: &str, event: &TriggerEvent, body: Body<'_>) {
        let item = Outgoing::new(&self.cfg.stream.prefix, source, event, body);
        let mut dropped = Vec::new();
        {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            buffer.push_back(item);
            let limits = &self.cfg.relay;
            while buffer.items.len() > limits.max_buffered
                || (buffer.bytes > limits.max_buffered_bytes && buffer.items.len() > 1)
            {
                match buffer.pop_front() {
                    Some(old) => dropped.push(old.msg_id),
                    None => break,
                }
            }
            self.metrics.buffered(buffer.items.len());
        }
        self.wake.notify_one();
        for msg_id in dropped {
            self.report_dropped(msg_id);
        }
    }

    fn report_dropped(&self, msg_id: String) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.dropped();
        // The first of a run and then one in a thousand: the hook hears of each.
        if total == 1 || total % 1000 == 0 {
            tracing::warn!(
                event_id = %msg_id,
                dropped_total = total,
                bound = self.cfg.relay.max_buffered,
                "relay buffer full while the stream is unreachable: oldest event dropped"
            );
        }
        if let Some(cx) = self.reporter.get() {
            cx.report_error(Error::JetStream(JetStreamError::BufferFull {
                event_id: msg_id,
                bound: self.cfg.relay.max_buffered,
            }));
        }
    }

    /// Publishes `event` and waits for the stream's acknowledgement: `Ok` means stored (or
    /// stored before, for a retried delivery). Refused at once while the stream is
    /// unreachable.
    pub(crate) async fn store(
        &self,
        source: &str,
        event: &TriggerEvent,
        body: Body<'_>,
    ) -> Result<(), JetStreamError> {
        let Some((client, js)) = self.ready.get() else {
            return Err(JetStreamError::Unavailable(
                "not connected to the stream yet".into(),
            ));
        };
        if client.connection_state() != State::Connected {
            return Err(JetStreamError::Unavailable("disconnected from NATS".into()));
        }
        let item = Outgoing::new(&self.cfg.stream.prefix, source, event, body);
        let timeout = self.cfg.relay.publish_timeout;
        let subject = item.subject.clone();
        let published = tokio::time::timeout(timeout, async {
            js.send_publish(subject.clone(), publish(&item))
                .await?
                .await
        })
        .await;
        match published {
            Ok(Ok(ack)) => {
                self.metrics.published(ack.duplicate);
                Ok(())
            }
            Ok(Err(e)) => Err(JetStreamError::Publish {
                subject,
                message: e.to_string(),
            }),
            Err(_) => Err(JetStreamError::Unavailable(format!(
                "no acknowledgement within {timeout:?}"
            ))),
        }
    }

    /// Connects, sets the streams up, then publishes the buffer until shutdown and its
    /// feeders are done.
    async fn run(self: Arc<Self>, cx: SourceContext) -> Result<()> {
        let _ = self.reporter.set(cx.clone());
        let client = connect(&self.cfg, "listener relay").await?;
        let js = jetstream::new(client.clone());
        // Events wait meanwhile: retry soon, and at least every second.
        let backoff = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(1),
            ..Backoff::default()
        };
        let mut attempt = 0;
        loop {
            match setup::ensure_streams(&js, &self.cfg.stream).await {
                Ok(()) => break,
                Err(e) => {
                    attempt += 1;
                    if !cx
                        .pause_before_retry(
                            "cannot set up the stream",
                            attempt,
                            backoff.delay(attempt),
                            e.into(),
                        )
                        .await
                    {
                        return Ok(());
                    }
                }
            }
        }
        let _ = self.ready.set((client, js.clone()));
        cx.set_health(Health::Connected);
        tracing::info!(stream = %self.cfg.stream.name, "relay publishing to the stream");
        self.publish_loop(&cx, &js, &backoff).await;
        Ok(())
    }

    async fn publish_loop(&self, cx: &SourceContext, js: &jetstream::Context, backoff: &Backoff) {
        let max_pending = self.cfg.relay.max_pending_acks;
        let timeout = self.cfg.relay.publish_timeout;
        let mut pending: VecDeque<(Outgoing, AckFuture)> = VecDeque::with_capacity(max_pending);
        // What is taken from the buffer at once (one lock for the lot), to be published now.
        let mut taken: VecDeque<Outgoing> = VecDeque::with_capacity(max_pending);
        let mut failures: u32 = 0;
        loop {
            // Fill the pipeline from the buffer, in order.
            let mut refused = None;
            self.take(&mut taken, max_pending - pending.len());
            while let Some(item) = taken.pop_front() {
                match js.send_publish(item.subject.clone(), publish(&item)).await {
                    Ok(ack) => pending.push_back((item, ack.into_future())),
                    Err(e) => {
                        refused = Some(JetStreamError::Publish {
                            subject: item.subject.clone(),
                            message: e.to_string(),
                        });
                        taken.push_front(item);
                        self.requeue(taken.drain(..));
                        break;
                    }
                }
            }
            if let Some((_, ack)) = pending.front_mut() {
                match tokio::time::timeout(timeout, ack).await {
                    Ok(Ok(ack)) => {
                        self.metrics.published(ack.duplicate);
                        pending.pop_front();
                        if failures > 0 {
                            failures = 0;
                            cx.set_health(Health::Connected);
                        }
                        continue;
                    }
                    Ok(Err(e)) => {
                        let subject = pending
                            .front()
                            .map(|(i, _)| i.subject.clone())
                            .unwrap_or_default();
                        refused = Some(JetStreamError::Publish {
                            subject,
                            message: e.to_string(),
                        });
                    }
                    Err(_) => {
                        refused = Some(JetStreamError::Unavailable(format!(
                            "no acknowledgement within {timeout:?}"
                        )))
                    }
                }
                // Everything not acknowledged goes back, in order, to be published again.
                let unacknowledged: Vec<Outgoing> =
                    pending.drain(..).map(|(item, _)| item).collect();
                self.requeue(unacknowledged.into_iter());
            }
            if let Some(error) = refused {
                failures = failures.saturating_add(1);
                let delay = backoff.delay(failures);
                if cx.is_shutting_down() {
                    // Keep trying until the listener's drain deadline ends the task.
                    tracing::warn!(error = %error, buffered = self.len(), "publishing at shutdown failed; retrying");
                    tokio::time::sleep(delay).await;
                } else {
                    // Interrupted by shutdown: go on publishing (the branch above).
                    let _ = cx
                        .pause_before_retry(
                            "publishing to the stream failed",
                            failures,
                            delay,
                            error.into(),
                        )
                        .await;
                }
                continue;
            }
            // Nothing pending and nothing buffered.
            if cx.is_shutting_down() && self.feeders.load(Ordering::SeqCst) == 0 && self.len() == 0
            {
                return;
            }
            let woken = self.wake.notified();
            if self.len() > 0 {
                continue;
            }
            tokio::select! {
                _ = woken => {}
                _ = cx.cancelled(), if !cx.is_shutting_down() => {}
            }
        }
    }

    /// Moves up to `n` events from the front of the buffer to the back of `into`.
    fn take(&self, into: &mut VecDeque<Outgoing>, n: usize) {
        if n == 0 {
            return;
        }
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..n {
            match buffer.pop_front() {
                Some(item) => into.push_back(item),
                None => break,
            }
        }
        self.metrics.buffered(buffer.items.len());
    }

    /// Puts `items` (in order) back at the front of the buffer.
    fn requeue(&self, items: impl DoubleEndedIterator<Item = Outgoing>) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        for item in items.rev() {
            buffer.push_front(item);
        }
        self.metrics.buffered(buffer.items.len());
    }

    fn len(&self) -> usize {
        self.buffer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .items
            .len()
    }
}

fn publish(item: &Outgoing) -> PublishMessage {
    PublishMessage::build()
        .payload(item.payload.clone())
        .headers(item.headers())
}

/// The relay's publishing task, as a source of the listener (its health is the relay's).
struct Publisher(Arc<Relay>);

#[async_trait]
impl Source for Publisher {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()> {
        let relay = Arc::clone(&self.0);
        let result = relay.run(cx).await;
        let left = self.0.len();
        if left > 0 {
            tracing::error!(
                events = left,
                "relay stopped with events it could not publish; they are lost"
            );
        }
        result
    }
}
