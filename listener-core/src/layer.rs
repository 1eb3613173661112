//! Layers: code that runs around handler runs, like middleware around a web handler.
//!
//! A [`Layer`] added with [`ListenerBuilder::layer`](crate::ListenerBuilder::layer) (or
//! [`layer_for`](crate::ListenerBuilder::layer_for), for the events matching a filter) is
//! called for each attempt of each handler run, with the [`Run`] (the event, the
//! handler's name, the attempt) and a [`Next`] that runs the rest: the layers added after
//! it, then the handler. It may skip the run ([`Next::skip`]), time it, log it, or do work
//! before and after it, and it sees the outcome, timeouts and panics included. Two layers
//! ship: [`SkipOwnEvents`] and [`RunLog`].
//!
//! ```
//! use listener_core::prelude::*;
//! use listener_core::layer::{Layer, Next, Run, RunResult};
//!
//! /// Counts failed attempts.
//! struct CountFailures(std::sync::atomic::AtomicU64);
//!
//! #[listener_core::source::async_trait]
//! impl Layer for CountFailures {
//!     async fn call(&self, run: &Run, next: Next<'_>) -> RunResult {
//!         let result = next.run().await;
//!         if result.is_err() {
//!             self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         }
//!         result
//!     }
//! }
//!
//! let listener = Listener::builder()
//!     .layer(CountFailures(Default::default()))
//!     .build();
//! ```
//!
//! # Why not tower
//!
//! tower's `Service` is built for request/response stacks that are cloned per request and
//! asked `poll_ready` before each call, with errors boxed. A handler run here is a single
//! call that always ends in one [`RunResult`], and the limits tower's stock layers give
//! (`timeout`, `limit`) are handler policies already ([`Policy`](crate::policy::Policy)),
//! with the meaning this runtime needs: a timeout per attempt reported as
//! [`FailureKind::TimedOut`], a concurrency limit that keeps its waiting runs within the
//! listener's in-flight bound. Taking tower would add a dependency, a clone and a box per
//! run, for layers whose features we already have. `Layer` has tower's shape otherwise:
//! one object wrapping the next, outcome in, outcome out.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::event::TriggerEvent;
use crate::filter::Filter;
use crate::handler::FailureKind;

/// What an attempt of a handler run ended with.
pub type RunResult = Result<(), FailureKind>;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One attempt of one handler run, as a layer sees it.
#[derive(Debug)]
pub struct Run {
    event: Arc<TriggerEvent>,
    handler: Arc<str>,
    attempt: u32,
    handlers: usize,
    skipped: OnceLock<String>,
}

impl Run {
    pub(crate) fn new(
        event: Arc<TriggerEvent>,
        handler: Arc<str>,
        attempt: u32,
        handlers: usize,
    ) -> Self {
        Run {
            event,
            handler,
            attempt,
            handlers,
            skipped: OnceLock::new(),
        }
    }

    /// How many handlers the event matched: this run and its siblings on the same event.
    pub fn handlers(&self) -> usize {
        self.handlers
    }

    /// The event.
    pub fn event(&self) -> &Arc<TriggerEvent> {
        &self.event
    }

    /// The handler's name.
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The attempt: 1 for the first run, 2 for the first retry.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Why a layer skipped this attempt, once one did.
    pub fn skipped(&self) -> Option<&str> {
        self.skipped.get().map(String::as_str)
    }

    pub(crate) fn into_skipped(self) -> Option<String> {
        self.skipped.into_inner()
    }
}

/// The rest of the run after a layer: the layers after it, then the handler.
pub struct Next<'a> {
    layers: &'a [Arc<dyn Layer>],
    run: &'a Run,
    handler: &'a (dyn Fn() -> BoxFuture<'a, RunResult> + Send + Sync),
}

impl<'a> Next<'a> {
    /// Runs the rest of the run and gives its outcome.
    pub fn run(self) -> BoxFuture<'a, RunResult> {
        match self.layers.split_first() {
            Some((layer, rest)) => layer.call(
                self.run,
                Next {
                    layers: rest,
                    ..self
                },
            ),
            None => (self.handler)(),
        }
    }

    /// Skips the rest of the run: the handler does not run, the outcome is `Ok` and says
    /// `reason` (in [`HandlerOutcome::skipped`](crate::HandlerOutcome::skipped) and the
    /// logs), and the attempt is not retried.
    pub fn skip(self, reason: impl Into<String>) -> RunResult {
        // A second skip of one attempt keeps the first reason.
        let _ = self.run.skipped.set(reason.into());
        Ok(())
    }
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("layers_left", &self.layers.len())
            .finish()
    }
}

/// Code that runs around handler runs; see the [module docs](self).
#[async_trait]
pub trait Layer: Send + Sync + 'static {
    /// Called for each attempt of each handler run the layer applies to. Call
    /// [`next.run()`](Next::run) to go on, or [`next.skip(..)`](Next::skip) to skip.
    async fn call(&self, run: &Run, next: Next<'_>) -> RunResult;
}

/// A layer with the events it applies to (`None`: all).
#[derive(Clone)]
pub(crate) struct Scoped {
    pub(crate) filter: Option<Filter>,
    pub(crate) layer: Arc<dyn Layer>,
}

/// The layers of a listener, in the order they were added (the first is outermost).
#[derive(Clone, Default)]
pub(crate) struct Stack {
    layers: Vec<Scoped>,
}

impl Stack {
    pub(crate) fn push(&mut self, filter: Option<Filter>, layer: Arc<dyn Layer>) {
        self.layers.push(Scoped { filter, layer });
    }

    /// Adds `layer` outside every other one.
    #[cfg_attr(not(feature = "jetstream"), allow(dead_code))]
    pub(crate) fn push_front(&mut self, filter: Option<Filter>, layer: Arc<dyn Layer>) {
        self.layers.insert(0, Scoped { filter, layer });
    }

    pub(crate) fn len(&self) -> usize {
        self.layers.len()
    }

    /// The layers applying to `event`, or `None` when there are none.
    pub(crate) fn for_event(&self, event: &TriggerEvent) -> Option<Arc<[Arc<dyn Layer>]>> {
        if self.layers.is_empty() {
            return None;
        }
        let applying: Vec<Arc<dyn Layer>> = self
            .layers
            .iter()
            .filter(|s| s.filter.as_ref().is_none_or(|f| f.matches(event)))
            .map(|s| Arc::clone(&s.layer))
            .collect();
        (!applying.is_empty()).then(|| applying.into())
    }
}

/// Runs `handler` through `layers` for `run`.
pub(crate) async fn call_through<'a>(
    layers: &'a [Arc<dyn Layer>],
    run: &'a Run,
    handler: &'a (dyn Fn() -> BoxFuture<'a, RunResult> + Send + Sync),
) -> RunResult {
    Next {
        layers,
        run,
        handler,
    }
    .run()
    .await
}

type Predicate = dyn Fn(&TriggerEvent) -> bool + Send + Sync;

/// Skips the runs of events the bot produced itself (its own Slack replies coming back as
/// new messages, say), so a bot never answers itself.
///
/// ```
/// use listener_core::prelude::*;
/// use listener_core::layer::SkipOwnEvents;
///
/// let listener = Listener::builder()
///     // The bot's Slack user id, or its bot id: payloads whose `user`, `user_id` or
///     // `bot_id` is this one are skipped.
///     .layer(SkipOwnEvents::user_id("U0BOTUSER"))
///     // Or any test of the event.
///     .layer(SkipOwnEvents::when(|ev| ev.payload["subtype"] == "bot_message"))
///     .build();
/// ```
pub struct SkipOwnEvents {
    test: Box<Predicate>,
    reason: String,
}

/// The payload fields [`SkipOwnEvents::user_id`] compares.
pub const OWN_USER_FIELDS: [&str; 3] = ["user", "user_id", "bot_id"];

impl SkipOwnEvents {
    /// Skips events whose payload's `user`, `user_id` or `bot_id` (top level, a string) is
    /// `id`.
    pub fn user_id(id: impl Into<String>) -> Self {
        let id = id.into();
        let reason = format!("produced by the bot itself ({id})");
        SkipOwnEvents {
            test: Box::new(move |ev| {
                OWN_USER_FIELDS
                    .iter()
                    .any(|field| ev.payload.get(field).and_then(Value::as_str) == Some(&id))
            }),
            reason,
        }
    }

    /// Skips events for which `test` is true.
    pub fn when(test: impl Fn(&TriggerEvent) -> bool + Send + Sync + 'static) -> Self {
        SkipOwnEvents {
            test: Box::new(test),
            reason: "produced by the bot itself".into(),
        }
    }
}

impl std::fmt::Debug for SkipOwnEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipOwnEvents")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Layer for SkipOwnEvents {
    async fn call(&self, run: &Run, next: Next<'_>) -> RunResult {
        if (self.test)(run.event()) {
            return next.skip(self.reason.clone());
        }
        next.run().await
    }
}

/// How an attempt ended, for [`RunRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// The handler succeeded.
    Ok,
    /// A layer further in skipped the run.
    Skipped,
    /// The handler returned an error.
    Error,
    /// The handler panicked.
    Panic,
    /// A parameter could not be extracted.
    Extract,
    /// The attempt timed out.
    TimedOut,
}

impl RunStatus {
    /// The status of `result` for `run`.
    pub fn of(run: &Run, result: &RunResult) -> Self {
        Self::from_result(result, run.skipped().is_some())
    }

    /// The status of `result`, of an attempt a layer skipped or not.
    pub fn from_result(result: &RunResult, skipped: bool) -> Self {
        match result {
            Ok(()) if skipped => RunStatus::Skipped,
            Ok(()) => RunStatus::Ok,
            Err(FailureKind::Error(_)) => RunStatus::Error,
            Err(FailureKind::Panic(_)) => RunStatus::Panic,
            Err(FailureKind::Extract(_)) => RunStatus::Extract,
            Err(FailureKind::TimedOut(_)) => RunStatus::TimedOut,
        }
    }

    /// Its name in logs: `ok`, `skipped`, `error`, `panic`, `extract`, `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Skipped => "skipped",
            RunStatus::Error => "error",
            RunStatus::Panic => "panic",
            RunStatus::Extract => "extract",
            RunStatus::TimedOut => "timeout",
        }
    }
}

/// One line of the [`RunLog`].
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The handler's name.
    pub handler: String,
    /// The event's delivery id (or trigger id when it has none).
    pub event_id: String,
    /// The event's trigger slug.
    pub trigger_slug: String,
    /// The attempt (1-based).
    pub attempt: u32,
    /// How it ended.
    pub status: RunStatus,
    /// The failure's text, or the reason it was skipped.
    pub detail: Option<String>,
    /// How long the rest of the run took.
    pub elapsed: Duration,
}

type Sink = dyn Fn(&RunRecord) + Send + Sync;

/// A structured log of every attempt: one `tracing` event at INFO (WARN for failures) on
/// the target `listener_core::run_log`, with the fields `handler`, `event_id`,
/// `trigger_slug`, `attempt`, `status`, `elapsed_ms` and `detail`; and, if given, a
/// [`RunRecord`] to a function of yours (a file, a channel, a test's counter).
///
/// Add it first to time the whole run, layers included; add it last to time the handler
/// alone.
#[derive(Default)]
pub struct RunLog {
    sink: Option<Box<Sink>>,
}

impl RunLog {
    /// Logs through `tracing` only.
    pub fn new() -> Self {
        RunLog::default()
    }

    /// Also hands each record to `sink` (keep it quick; it runs on the handler's task).
    pub fn with_sink(sink: impl Fn(&RunRecord) + Send + Sync + 'static) -> Self {
        RunLog {
            sink: Some(Box::new(sink)),
        }
    }
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLog")
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

#[async_trait]
impl Layer for RunLog {
    async fn call(&self, run: &Run, next: Next<'_>) -> RunResult {
        let started = Instant::now();
        let result = next.run().await;
        let elapsed = started.elapsed();
        let status = RunStatus::of(run, &result);
        let detail = match &result {
            Err(kind) => Some(kind.to_string()),
            Ok(()) => run.skipped().map(str::to_owned),
        };
        let event = run.event();
        let event_id = event.label();
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let detail_text = detail.as_deref().unwrap_or("");
        if result.is_err() {
            tracing::warn!(target: "listener_core::run_log", handler = run.handler(), event_id = %event_id,
                trigger_slug = %event.trigger_slug, attempt = run.attempt(), status = status.as_str(),
                elapsed_ms, detail = detail_text, "handler run");
        } else {
            tracing::info!(target: "listener_core::run_log", handler = run.handler(), event_id = %event_id,
                trigger_slug = %event.trigger_slug, attempt = run.attempt(), status = status.as_str(),
                elapsed_ms, detail = detail_text, "handler run");
        }
        if let Some(sink) = &self.sink {
            sink(&RunRecord {
                handler: run.handler().to_owned(),
                event_id: event_id.to_owned(),
                trigger_slug: event.trigger_slug.clone(),
                attempt: run.attempt(),
                status,
                detail,
                elapsed,
            });
        }
        result
    }
}
