//! The worker: the group's durable pull consumer, feeding the dispatcher.
//!
//! It pulls only as many messages as it has free in-flight slots, says "in progress" every
//! half ack-wait while an event's handlers run, and answers each message once they are
//! done: acknowledged when all succeeded (or none matched); delivered again after a
//! back-off when one failed; moved to the dead letters (with the error, the handlers and
//! the deliveries in headers) and terminated after the last allowed delivery, or at once
//! for a body that is not an event. At shutdown it stops pulling, lets the runs in flight
//! finish within its drain time and acknowledges them, and hands back (negative
//! acknowledgement, no delay) what did not finish, so another worker takes it at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::completion::Completions;
use super::config::JetStream;
use super::connect::connect;
use super::error::JetStreamError;
use super::headers;
use super::{envelope, setup};
use crate::backoff::Backoff;
use crate::error::Result;
use crate::event::StreamDelivery;
use crate::report::DispatchReport;
use crate::source::{async_trait, Health, Source, SourceContext};
use crate::telemetry::{self, Answer};

/// How long one pull request waits for messages.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// How long a stopping worker waits for its last answers to reach the server.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The group's durable pull consumer.
pub(crate) fn consumer_config(cfg: &JetStream) -> pull::Config {
    let w = &cfg.worker;
    pull::Config {
        durable_name: Some(w.group.clone()),
        description: Some(format!("listener worker group {}", w.group)),
        deliver_policy: match w.start_at {
            Some(at) => DeliverPolicy::ByStartTime {
                start_time: async_nats::datetime::DateTime::from(at),
            },
            None => DeliverPolicy::All,
        },
        ack_policy: AckPolicy::Explicit,
        ack_wait: w.ack_wait,
        // The worker counts deliveries itself, to dead-letter with the error: the server
        // must not stop delivering first.
        max_deliver: -1,
        filter_subject: format!("{}.>", cfg.stream.prefix),
        max_ack_pending: -1,
        ..Default::default()
    }
}

/// A worker of a group, run by the listener as its source.
pub(crate) struct Worker {
    cfg: Arc<JetStream>,
    completions: Arc<Completions>,
    max_in_flight: usize,
    drain: Duration,
    /// The dispatcher's eager start: a message is processed on the pulling task up to its
    /// first wait.
    eager: bool,
    /// Registered when the listener is built.
    metrics: Arc<telemetry::WorkerMetrics>,
}

impl Worker {
    pub(crate) fn new(
        cfg: Arc<JetStream>,
        completions: Arc<Completions>,
        max_in_flight: usize,
        drain: Duration,
        eager: bool,
    ) -> Self {
        let metrics = Arc::new(telemetry::WorkerMetrics::new(&cfg.worker.group));
        Worker {
            cfg,
            completions,
            max_in_flight,
            drain,
            eager,
            metrics,
        }
    }

    async fn setup(
        &self,
        js: &jetstream::Context,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, JetStreamError> {
        setup::ensure_streams(js, &self.cfg.stream).await?;
        let store = setup::ensure_completions(js, &self.cfg.stream).await?;
        self.completions.set(store);
        let stream =
            js.get_stream(&self.cfg.stream.name)
                .await
                .map_err(|e| JetStreamError::Setup {
                    what: format!("stream {}", self.cfg.stream.name),
                    message: e.to_string(),
                })?;
        stream
            .get_or_create_consumer(&self.cfg.worker.group, consumer_config(&self.cfg))
            .await
            .map_err(|e| JetStreamError::Setup {
                what: format!("consumer {}", self.cfg.worker.group),
                message: e.to_string(),
            })
    }
}

#[async_trait]
impl Source for Worker {
    fn name(&self) -> String {
        format!(
            "jetstream worker {} ({}/{})",
            self.cfg.servers, self.cfg.stream.name, self.cfg.worker.group
        )
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()> {
        let client = connect(
            &self.cfg,
            &format!("listener worker {}", self.cfg.worker.group),
        )
        .await?;
        let js = jetstream::new(client.clone());
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            ..Backoff::default()
        };
        let mut attempt = 0;
        let consumer = loop {
            match self.setup(&js).await {
                Ok(consumer) => break consumer,
                Err(e) => {
                    attempt += 1;
                    if !cx
                        .pause_before_retry(
                            "cannot set up the worker's consumer",
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
        };
        cx.set_health(Health::Connected);
        tracing::info!(group = %self.cfg.worker.group, stream = %self.cfg.stream.name, "worker pulling from the stream");

        let shared = Arc::new(Shared {
            cfg: Arc::clone(&self.cfg),
            js,
            cx: cx.clone(),
            abandon: CancellationToken::new(),
            metrics: Arc::clone(&self.metrics),
        });
        let slots = Arc::new(Semaphore::new(self.max_in_flight));
        let mut runs = JoinSet::new();
        // The allocation of the last message processed to its end on this task, reused for
        // the next one: a message's processing is some 7 KiB, which allocating and freeing
        // for each message costs more than the rest of its bookkeeping.
        let mut spare = None;
        let mut failures: u32 = 0;
        'pull: loop {
            let first = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break 'pull, // never closed
                },
                _ = cx.cancelled() => break 'pull,
            };
            let want = 1 + slots.available_permits();
            let batch = consumer
                .batch()
                .max_messages(want)
                .expires(PULL_EXPIRES)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    drop(first);
                    failures = failures.saturating_add(1);
                    let error = JetStreamError::Consume(e.to_string());
                    if !cx
                        .pause_before_retry(
                            "pulling from the stream failed",
                            failures,
                            backoff.delay(failures),
                            error.into(),
                        )
                        .await
                    {
                        break 'pull;
                    }
                    continue;
                }
            };
            let mut first = Some(first);
            loop {
                let next = tokio::select! {
                    next = batch.next() => next,
                    _ = cx.cancelled() => {
                        // Hand back at once what arrived and was not started.
                        while let Some(Some(Ok(message))) = futures_util::FutureExt::now_or_never(batch.next()) {
                            let _ = message.ack_with(AckKind::Nak(None)).await;
                        }
                        break 'pull;
                    }
                };
                match next {
                    None => break,
                    Some(Ok(message)) => {
                        if failures > 0 {
                            failures = 0;
                            cx.set_health(Health::Connected);
                        }
                        let permit = match first.take() {
                            Some(permit) => permit,
                            // Free: the pull asked for no more than there were.
                            None => match Arc::clone(&slots).acquire_owned().await {
                                Ok(permit) => permit,
                                Err(_) => break 'pull,
                            },
                        };
                        let shared = Arc::clone(&shared);
                        let run = async move { shared.process(message, permit).await };
                        if self.eager {
                            // Like the dispatcher's eager start: processed here up to its
                            // first wait; only a message that has to wait becomes a task.
                            let mut run = match spare.take() {
                                Some(mut slot) => {
                                    Pin::set(&mut slot, run);
                                    slot
                                }
                                None => Box::pin(run),
                            };
                            // A panic around the handlers (they catch their own) ends this
                            // message's processing, as it ends a task; unanswered, the
                            // stream delivers it again after the ack wait.
                            match crate::poll::poll_once(&mut run).await {
                                Ok(Poll::Ready(())) => spare = Some(run),
                                Ok(Poll::Pending) => {
                                    runs.spawn(run);
                                }
                                Err(_) => {
                                    tracing::error!("processing a stream message panicked; the stream delivers it again after the ack wait");
                                }
                            }
                        } else {
                            runs.spawn(run);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "pull request ended");
                        break;
                    }
                }
                while runs.try_join_next().is_some() {}
            }
            while runs.try_join_next().is_some() {}
        }

        // Shutdown: no more pulls; the runs in flight get the drain time, then are handed back.
        let in_flight = runs.len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                drain_ms = self.drain.as_millis() as u64,
                "worker stopping: letting runs finish"
            );
        }
        let finished = tokio::time::timeout(self.drain, async {
            while runs.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                unfinished = runs.len(),
                "worker drain time passed: handing unfinished events back to the stream"
            );
            shared.abandon.cancel();
            while runs.join_next().await.is_some() {}
        }
        // The answers are buffered writes: send them before the connection goes.
        match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the last answers to the stream may be lost; those events will be delivered again"),
            Err(_) => tracing::warn!("sending the last answers to the stream timed out; those events will be delivered again"),
        }
        Ok(())
    }
}

/// What every message's processing shares.
struct Shared {
    cfg: Arc<JetStream>,
    js: jetstream::Context,
    cx: SourceContext,
    /// Cancelled when the drain time is over: unfinished runs are handed back.
    abandon: CancellationToken,
    metrics: Arc<telemetry::WorkerMetrics>,
}

impl Shared {
    async fn process(&self, message: jetstream::Message, _permit: OwnedSemaphorePermit) {
        let (sequence, delivered) = match message.info() {
            Ok(info) => (
                info.stream_sequence,
                u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX),
            ),
            Err(e) => {
                tracing::warn!(error = %e, subject = %message.subject, "a message without JetStream metadata; terminated");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let group = &self.cfg.worker.group;
        let span = tracing::info_span!("stream_message", stream = %self.cfg.stream.name, sequence, delivered);
        async {
            let known = headers::Known::of(message.headers.as_ref());
            if let Some(only) = known.replay_group {
                if only != group {
                    // A dead letter of another group, replayed for that group only.
                    self.answer(&message, AckKind::Ack, Answer::OtherGroup).await;
                    return;
                }
            }
            let mut event = match envelope::read_event(&message.payload, &known) {
                Ok(event) => event,
                Err(e) => {
                    let error = e.to_string();
                    tracing::warn!(error = %error, body = %crate::preview::preview(&message.payload, crate::preview::PREVIEW_CHARS), "a stream message is not an event; dead-lettered");
                    self.cx.report_error(e);
                    self.dead_letter(&message, sequence, delivered, "decode", &error).await;
                    return;
                }
            };
            let max = self.cfg.worker.max_deliveries;
            if delivered > max {
                // Delivered past the maximum without an answer: workers died running it.
                let error = format!("delivered {delivered} times without an answer (did workers die running it?)");
                tracing::error!(event_id = %event.label(), "{error}; dead-lettered");
                self.dead_letter(&message, sequence, delivered, "", &error).await;
                return;
            }
            let replay_of = known.replay_of.and_then(|v| v.trim().parse::<u64>().ok());
            event.metadata.stream = Some(StreamDelivery {
                stream: self.cfg.stream.name.clone(),
                group: group.clone(),
                sequence: replay_of.unwrap_or(sequence),
                delivered,
                replayed: replay_of.is_some(),
            });
            let label = event.label().to_owned();
            let report = self.run_with_progress(&message, event).await;
            match report {
                None => {
                    self.answer(&message, AckKind::Nak(None), Answer::HandedBack).await;
                }
                Some(Err(_)) => {
                    // The listener stopped before the event was dispatched.
                    self.answer(&message, AckKind::Nak(None), Answer::HandedBack).await;
                }
                Some(Ok(report)) if report.all_ok() => {
                    self.answer(&message, AckKind::Ack, Answer::Acked).await;
                }
                Some(Ok(report)) => {
                    let (handlers, error) = failed(&report);
                    if delivered >= max {
                        tracing::error!(event_id = %label, handlers = %handlers, deliveries = delivered, "handlers failed on the last allowed delivery; dead-lettered");
                        self.dead_letter(&message, sequence, delivered, &handlers, &error).await;
                    } else {
                        let delay = self.cfg.worker.redelivery.delay(delivered);
                        tracing::info!(event_id = %label, handlers = %handlers, retry_in_ms = delay.as_millis() as u64, "handlers failed; the stream delivers the event again");
                        self.answer(&message, AckKind::Nak(Some(delay)), Answer::Redelivered).await;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Dispatches the event and waits for its handlers, saying "in progress" every half
    /// ack-wait; `None` when the drain time ran out first.
    async fn run_with_progress(
        &self,
        message: &jetstream::Message,
        event: crate::TriggerEvent,
    ) -> Option<Result<DispatchReport>> {
        let run = self.cx.deliver_from_stream(event);
        tokio::pin!(run);
        // Most runs finish when first polled: they need no timer.
        if let Poll::Ready(report) =
            std::future::poll_fn(|cx| Poll::Ready(run.as_mut().poll(cx))).await
        {
            return Some(report);
        }
        let period = self.cfg.worker.ack_wait / 2;
        let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                biased;
                report = &mut run => return Some(report),
                _ = progress.tick() => {
                    if let Err(e) = message.ack_with(AckKind::Progress).await {
                        tracing::debug!(error = %e, "in-progress acknowledgement failed");
                    }
                }
                _ = self.abandon.cancelled() => return None,
            }
        }
    }

    async fn answer(&self, message: &jetstream::Message, kind: AckKind, outcome: Answer) {
        if let Err(e) = message.ack_with(kind).await {
            tracing::warn!(error = %e, outcome = outcome.as_str(), "answering the stream failed; it will deliver the event again after the ack wait");
        }
        self.metrics.answered(outcome);
    }

    /// Stores the message in the dead letters with why, then terminates it; if it cannot
    /// be stored, the stream delivers it again later instead.
    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        sequence: u64,
        delivered: u32,
        handlers: &str,
        error: &str,
    ) {
        let group = &self.cfg.worker.group;
        let prefix = &self.cfg.stream.prefix;
        let rest = message
            .subject
            .strip_prefix(prefix.as_str())
            .and_then(|r| r.strip_prefix('.'))
            .unwrap_or("_");
        let subject = format!("{}.{group}.{rest}", self.cfg.stream.dead_letter_prefix());
        let mut h = message.headers.clone().unwrap_or_default();
        // Idempotent: a worker that dies between storing and terminating stores it once.
        h.insert(headers::MSG_ID, format!("{group}.{sequence}"));
        h.insert(headers::DEAD_ERROR, headers::value(error));
        h.insert(headers::DEAD_HANDLER, headers::value(handlers));
        h.insert(headers::DEAD_DELIVERIES, delivered.to_string());
        h.insert(headers::DEAD_GROUP, group.as_str());
        h.insert(headers::DEAD_SUBJECT, message.subject.as_str());
        h.insert(headers::DEAD_SEQUENCE, sequence.to_string());
        let stored = tokio::time::timeout(self.cfg.relay.publish_timeout, async {
            self.js
                .publish_with_headers(subject.clone(), h, message.payload.clone())
                .await?
                .await
        })
        .await;
        match stored {
            Ok(Ok(_)) => {
                self.answer(message, AckKind::Term, Answer::DeadLettered)
                    .await
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, subject = %subject, "cannot store the dead letter; the stream delivers the event again later");
                self.answer(
                    message,
                    AckKind::Nak(Some(self.cfg.worker.redelivery.max)),
                    Answer::Redelivered,
                )
                .await;
            }
            Err(_) => {
                tracing::error!(subject = %subject, "storing the dead letter timed out; the stream delivers the event again later");
                self.answer(
                    message,
                    AckKind::Nak(Some(self.cfg.worker.redelivery.max)),
                    Answer::Redelivered,
                )
                .await;
            }
        }
    }
}

/// The failed handlers (comma-separated) and their errors (`handler: error; …`).
fn failed(report: &DispatchReport) -> (String, String) {
    let mut handlers = Vec::new();
    let mut errors = Vec::new();
    for outcome in report.failures() {
        handlers.push(outcome.handler.to_string());
        if let Err(kind) = &outcome.result {
            errors.push(format!("{}: {kind}", outcome.handler));
        }
    }
    (handlers.join(","), errors.join("; "))
}
