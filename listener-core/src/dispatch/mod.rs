//! The dispatcher: dedupe, match, and run handlers under a global in-flight bound.
//!
//! It knows nothing of sockets: sources hand it decoded events through
//! [`Dispatcher::dispatch`], which waits while the in-flight bound is reached, so a source
//! stops reading instead of buffering without limit.

pub(crate) mod dedupe;
mod lanes;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use dedupe::DedupeConfig;
use dedupe::DedupeWindow;

use crate::backoff::Backoff;
use crate::error::ConfigError;
use crate::error::{Error, Result};
use crate::event::TriggerEvent;
use crate::extract::{EventContext, StateMap};
use crate::handler::Erased;
use crate::handler::FailureKind;
use crate::layer::{self, Layer, Run, RunResult};
use crate::registry::Registry;
use crate::report::{DispatchReport, ErrorHook, Failure, HandlerFailure, HandlerOutcome};
use crate::telemetry::HandlerMetrics;
use lanes::{Lanes, Place};

/// The default bound on handler runs in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Dispatcher settings.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// At most this many handler runs at once (at least 1).
    pub max_in_flight: usize,
    /// Duplicate-delivery window; `None` disables deduplication.
    pub dedupe: Option<DedupeConfig>,
    /// An attempt taking longer is reported as [`FailureKind::TimedOut`] and its permit
    /// freed; a handler's own [`timeout`](crate::Handler::timeout) takes precedence. An
    /// async handler is cancelled; a blocking one cannot be and runs on detached.
    pub handler_timeout: Option<Duration>,
    /// Start each async handler run on the dispatching task (default `true`): the run is
    /// polled once right there, and only if it has to wait (its first `.await` that is not
    /// ready) does it continue as a task of its own. A handler that finishes without
    /// waiting then costs no task and no wake-up of another worker thread, which is most of
    /// the per-event cost of a small handler. The price is that the synchronous part before
    /// a handler's first wait runs before the source reads its next event; with `false`,
    /// every run is spawned at once and that part runs in parallel with the source. Keep
    /// CPU-heavy work in blocking handlers either way.
    pub eager_start: bool,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            dedupe: Some(DedupeConfig::default()),
            handler_timeout: None,
            eager_start: true,
        }
    }
}

/// What [`Dispatcher::dispatch`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// The event was accepted and this many handler runs were started (0 if none matched).
    Accepted {
        /// Handler runs started.
        handlers: usize,
    },
    /// The event id was seen within the dedupe window; nothing ran.
    Duplicate,
    /// The event went to a JetStream relay (feature `jetstream`): stored in the stream, or
    /// buffered for it; a worker runs its handlers.
    Relayed,
}

/// Counters since the dispatcher was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Events given to `dispatch`, duplicates included.
    pub events: u64,
    /// Events dropped as duplicates.
    pub duplicates: u64,
    /// Handler runs started.
    pub runs: u64,
    /// Handler runs that failed, panicked or timed out.
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    duplicates: AtomicU64,
    runs: AtomicU64,
    failures: AtomicU64,
}

/// What the dispatcher keeps for one handler: its policy, resolved.
struct Slot {
    /// Per attempt: the handler's own, else the listener's.
    timeout: Option<Duration>,
    retries: u32,
    backoff: Backoff,
    /// `concurrency`: one permit per run at once.
    limit: Option<Arc<Semaphore>>,
    /// `sequential_by`.
    lanes: Option<Arc<Lanes>>,
    metrics: HandlerMetrics,
}

struct Inner {
    registry: Registry,
    /// One per handler, indexed like the registry's.
    slots: Vec<Slot>,
    layers: layer::Stack,
    state: Arc<StateMap>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    dedupe: Option<Mutex<DedupeWindow>>,
    eager_start: bool,
    hook: Option<ErrorHook>,
    tracker: TaskTracker,
    closed: AtomicBool,
    counters: Counters,
}

/// Runs matching handlers for each event. Cheap to clone (shared).
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("handlers", &self.inner.registry.len())
            .field("max_in_flight", &self.inner.max_in_flight)
            .field("in_flight", &self.in_flight())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Dispatcher {
    /// Builds a dispatcher, checking every handler's extractors against `state` (a handler
    /// needing a `State<T>` that is not there is [`ExtractError::MissingState`](crate::extract::ExtractError::MissingState)).
    pub(crate) fn new(
        registry: Registry,
        state: StateMap,
        config: DispatchConfig,
        hook: Option<ErrorHook>,
        layers: layer::Stack,
    ) -> Result<Self> {
        if config.max_in_flight == 0 {
            return Err(Error::Config(ConfigError {
                key: "max_in_flight".into(),
                message: "must be at least 1".into(),
            }));
        }
        if let Some(d) = &config.dedupe {
            if d.ttl.is_zero() {
                return Err(Error::Config(ConfigError {
                    key: "dedupe ttl".into(),
                    message: "must be positive (disable deduplication instead)".into(),
                }));
            }
        }
        let mut slots = Vec::with_capacity(registry.len());
        for h in registry.handlers() {
            h.validate()?;
            h.check(&state)?;
            let policy = h.policy();
            slots.push(Slot {
                timeout: policy.timeout.or(config.handler_timeout),
                retries: policy.retries,
                backoff: policy.retry_backoff,
                limit: policy.concurrency.map(|n| Arc::new(Semaphore::new(n))),
                lanes: policy.sequential_by.clone().map(Lanes::new),
                metrics: HandlerMetrics::new(h.name_arc()),
            });
        }
        Ok(Dispatcher {
            inner: Arc::new(Inner {
                registry,
                slots,
                layers,
                state: Arc::new(state),
                permits: Arc::new(Semaphore::new(config.max_in_flight)),
                max_in_flight: config.max_in_flight,
                dedupe: config.dedupe.map(|c| Mutex::new(DedupeWindow::new(c))),
                eager_start: config.eager_start,
                hook,
                tracker: TaskTracker::new(),
                closed: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        })
    }

    /// The handlers.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Dispatches one event: drops it if its id is a recent duplicate, else starts a run of
    /// each matching handler and returns once all are started (waiting for in-flight
    /// capacity as needed). With [`eager_start`](DispatchConfig::eager_start) (the default)
    /// an async run is polled once here and becomes a task of its own only if it has to
    /// wait; otherwise every run is its own task. Errors only with [`Error::ShuttingDown`].
    pub async fn dispatch(&self, event: TriggerEvent) -> Result<Dispatched> {
        self.dispatch_inner(event, None, true).await
    }

    /// Dispatches one event and waits until all its handlers finished.
    pub async fn dispatch_and_wait(&self, event: TriggerEvent) -> Result<DispatchReport> {
        self.dispatch_and_wait_inner(event, true).await
    }

    /// Like [`dispatch_and_wait`](Self::dispatch_and_wait), without the dedupe window: for
    /// events whose transport deduplicates and redelivers on its own (a JetStream
    /// consumer), where a redelivery must run again.
    ///
    /// A plain function giving the inner future, so that no layer of futures keeps a
    /// copy of the event (some 560 bytes) besides the one that uses it.
    #[cfg_attr(not(feature = "jetstream"), allow(dead_code))]
    pub(crate) fn dispatch_and_wait_undeduplicated(
        &self,
        event: TriggerEvent,
    ) -> impl std::future::Future<Output = Result<DispatchReport>> + Send + '_ {
        self.dispatch_and_wait_inner(event, false)
    }

    async fn dispatch_and_wait_inner(
        &self,
        event: TriggerEvent,
        dedupe: bool,
    ) -> Result<DispatchReport> {
        let mut runs = Vec::new();
        let dispatched = self.dispatch_inner(event, Some(&mut runs), dedupe).await?;
        let mut report = DispatchReport {
            duplicate: dispatched == Dispatched::Duplicate,
            outcomes: Vec::with_capacity(runs.len()),
        };
        for run in runs {
            let outcome = match run {
                Started::Finished(outcome) => outcome,
                Started::Spawned(name, handle) => match handle.await {
                    Ok(outcome) => outcome,
                    // Runs catch their own panics, so this is a cancelled task (runtime
                    // shutdown).
                    Err(e) => HandlerOutcome::abnormal(
                        name,
                        FailureKind::Panic(format!("handler task ended abnormally: {e}")),
                    ),
                },
            };
            report.outcomes.push(outcome);
        }
        Ok(report)
    }

    async fn dispatch_inner(
        &self,
        event: TriggerEvent,
        mut collect: Option<&mut Vec<Started>>,
        dedupe: bool,
    ) -> Result<Dispatched> {
        let inner = &self.inner;
        // Hold a tracker token for the whole dispatch, *then* check for shutdown: a drain
        // that starts after this point waits for the dispatch to finish starting its runs.
        let _token = inner.tracker.token();
        if inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        inner.counters.events.fetch_add(1, Ordering::Relaxed);
        if let (Some(window), true, false) = (&inner.dedupe, dedupe, event.event_id.is_empty()) {
            let fresh = window
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(&event.event_id, Instant::now());
            if !fresh {
                inner.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(event_id = %event.event_id, trigger_slug = %event.trigger_slug, "duplicate event dropped");
                return Ok(Dispatched::Duplicate);
            }
        }

        let mut matched = Vec::new();
        inner
            .registry
            .for_each_match_index(&event, |i| matched.push(i));
        if matched.is_empty() {
            tracing::debug!(event_id = %event.label(), trigger_slug = %event.trigger_slug, "no handler matched");
            return Ok(Dispatched::Accepted { handlers: 0 });
        }
        let label: Arc<str> = Arc::from(event.label());
        let layers = inner.layers.for_event(&event);
        let event = Arc::new(event);
        let count = matched.len();
        for index in matched {
            let handler = &inner.registry.handlers()[index];
            // The semaphore is never closed, so acquiring only waits.
            let permit = Arc::clone(&inner.permits)
                .acquire_owned()
                .await
                .map_err(|_| Error::ShuttingDown)?;
            let name = Arc::clone(handler.name_arc());
            let span = tracing::info_span!(
                "trigger",
                event_id = %label,
                trigger_slug = %event.trigger_slug,
                handler = %name,
            );
            let cx = EventContext::new(
                Arc::clone(&event),
                Arc::clone(&inner.state),
                Arc::clone(&name),
            );
            // Take the run's place in its key's lane now, in dispatch order.
            let held = Held {
                permit,
                place: inner.slots[index].lanes.as_ref().map(|l| l.enter(&event)),
            };
            let run = run_one(
                Arc::clone(inner),
                index,
                cx,
                held,
                Siblings {
                    layers: layers.clone(),
                    matched: count,
                },
                Arc::clone(&label),
                Arc::clone(&name),
            )
            .instrument(span);
            inner.counters.runs.fetch_add(1, Ordering::Relaxed);
            // A blocking run only hands its work to the blocking pool: nothing to gain.
            let started = if inner.eager_start && !handler.is_blocking() {
                // Poll the run once here; only a run that has to wait becomes a task.
                let mut run = Box::pin(run);
                // The run catches its handler's panics; this catches what panics around
                // them (a tracing layer, say), which would otherwise unwind into the source.
                match crate::poll::poll_once(&mut run).await {
                    Ok(Poll::Ready(outcome)) => Started::Finished(outcome),
                    Ok(Poll::Pending) => Started::Spawned(name, inner.tracker.spawn(run)),
                    Err(panic) => {
                        drop(run); // frees its permit
                        Started::Finished(self.run_panicked(index, &event, &label, name, &*panic))
                    }
                }
            } else {
                Started::Spawned(name, inner.tracker.spawn(run))
            };
            if let Some(runs) = collect.as_deref_mut() {
                runs.push(started);
            }
        }
        Ok(Dispatched::Accepted { handlers: count })
    }

    /// The outcome of a run that panicked outside its handler's own panic guard.
    fn run_panicked(
        &self,
        index: usize,
        event: &TriggerEvent,
        label: &str,
        name: Arc<str>,
        panic: &(dyn std::any::Any + Send),
    ) -> HandlerOutcome {
        let kind = FailureKind::panicked(panic);
        tracing::error!(handler = %name, event_id = %label, error = %kind, "handler run failed");
        self.inner.slots[index].metrics.panicked();
        record_failure(&self.inner, event, label, &name, &kind, 1, Vec::new());
        HandlerOutcome::abnormal(name, kind)
    }

    /// Forgets an event id, so a redelivery of it is dispatched again (used when an
    /// accepted delivery could not be processed and the sender will retry).
    pub fn forget(&self, event_id: &str) {
        if let Some(window) = &self.inner.dedupe {
            window
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(event_id);
        }
    }

    /// Handler runs in flight right now.
    pub fn in_flight(&self) -> usize {
        self.inner.max_in_flight - self.inner.permits.available_permits()
    }

    /// The in-flight bound.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }

    /// Whether the in-flight bound is reached (a new dispatch would wait).
    pub fn is_saturated(&self) -> bool {
        self.inner.permits.available_permits() == 0
    }

    /// Whether shutdown has begun (new events are refused).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Counters since the dispatcher was built.
    pub fn stats(&self) -> DispatchStats {
        let c = &self.inner.counters;
        DispatchStats {
            events: c.events.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            runs: c.runs.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }

    /// Reports a failure to the error hook, if any.
    pub(crate) fn report(&self, failure: Failure) {
        report(&self.inner.hook, &failure);
    }

    /// Refuses new events from now on.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.tracker.close();
    }

    /// Closes, then waits up to `deadline` for dispatches and handler runs in flight.
    pub(crate) async fn drain(&self, deadline: Duration) -> Result<()> {
        self.close();
        match tokio::time::timeout(deadline, self.inner.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::DrainTimeout {
                pending: self.inner.tracker.len(),
                deadline,
            }),
        }
    }
}

/// What a run holds until it ends: its in-flight permit, and its place in its key's lane.
struct Held {
    /// Held for its drop, which frees the slot.
    #[allow(dead_code)]
    permit: OwnedSemaphorePermit,
    place: Option<Place>,
}

/// What the runs of one dispatched event share: the layers that apply to it, and how many
/// handlers it matched.
struct Siblings {
    layers: Option<Arc<[Arc<dyn Layer>]>>,
    matched: usize,
}

/// A handler run as [`Dispatcher::dispatch_inner`] left it.
enum Started {
    /// It finished when first polled (eager start).
    Finished(HandlerOutcome),
    /// It runs on as its own task.
    Spawned(Arc<str>, JoinHandle<HandlerOutcome>),
}

fn report(hook: &Option<ErrorHook>, failure: &Failure) {
    if let Some(hook) = hook {
        // A panicking hook must not take the run (or the source) down with it.
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| hook(failure))) {
            tracing::error!(error = %FailureKind::panicked(&*panic), "the error hook failed");
        }
    }
}

/// One handler run: its turn in its lane, then attempts (each within the handler's
/// concurrency limit, through the layers, under the timeout) until one succeeds, is
/// skipped, cannot be retried, or the retries are used up.
async fn run_one(
    inner: Arc<Inner>,
    index: usize,
    cx: EventContext,
    mut held: Held,
    siblings: Siblings,
    label: Arc<str>,
    name: Arc<str>,
) -> HandlerOutcome {
    let Siblings { layers, matched } = siblings;
    let slot = &inner.slots[index];
    let func = inner.registry.handlers()[index].erased();
    if let Some(place) = held.place.as_mut() {
        place.wait_turn().await;
    }
    let started = Instant::now();
    let event = Arc::clone(cx.event());
    let mut cx = Some(cx);
    let mut earlier = Vec::new();
    let mut attempt: u32 = 1;
    // An event redelivered by a stream counts the attempts of its earlier deliveries, each
    // of which made `retries + 1` (a run that failed used them all).
    let earlier_attempts = event.metadata.stream.as_ref().map_or(0, |s| {
        s.delivered
            .saturating_sub(1)
            .saturating_mul(slot.retries.saturating_add(1))
    });
    let (result, skipped) = loop {
        // The last possible attempt takes the context; earlier ones share it.
        let this = if attempt > slot.retries {
            cx.take()
        } else {
            cx.clone()
        };
        let Some(this) = this else {
            break (Ok(()), None); // unreachable: the last attempt ends the loop
        };
        let this = if attempt > 1 || earlier_attempts > 0 {
            this.with_attempt(earlier_attempts.saturating_add(attempt))
        } else {
            this
        };
        let limit = match &slot.limit {
            // The semaphore is never closed, so acquiring only waits.
            Some(limit) => Arc::clone(limit).acquire_owned().await.ok(),
            None => None,
        };
        let attempt_started = Instant::now();
        let (result, skipped) = {
            let _in_flight = slot.metrics.in_flight();
            attempt_once(func, this, slot.timeout, layers.as_deref(), &name, matched).await
        };
        slot.metrics
            .attempt_finished(&result, skipped.is_some(), attempt_started.elapsed());
        drop(limit);
        match result {
            Err(kind)
                if attempt <= slot.retries
                    && kind.is_retryable()
                    && !inner.closed.load(Ordering::SeqCst) =>
            {
                let delay = slot.backoff.delay(attempt);
                tracing::warn!(
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %kind,
                    "handler attempt failed, retrying"
                );
                earlier.push(kind);
                slot.metrics.retry_scheduled();
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            result => break (result, skipped),
        }
    };
    drop(held);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match (&result, &skipped) {
        (Ok(()), Some(reason)) => {
            tracing::debug!(elapsed_ms, reason = %reason, "handler run skipped")
        }
        (Ok(()), None) => tracing::debug!(elapsed_ms, attempt, "handler finished"),
        (Err(kind), _) => {
            tracing::error!(elapsed_ms, attempt, error = %kind, "handler failed");
            record_failure(&inner, &event, &label, &name, kind, attempt, earlier);
        }
    }
    HandlerOutcome {
        handler: name,
        result,
        attempts: attempt,
        skipped,
    }
}

/// One attempt: the handler under its timeout, panics caught, through the layers if any.
/// Gives the outcome and why a layer skipped it, if one did.
async fn attempt_once(
    func: &dyn Erased,
    cx: EventContext,
    timeout: Option<Duration>,
    layers: Option<&[Arc<dyn Layer>]>,
    name: &Arc<str>,
    matched: usize,
) -> (RunResult, Option<String>) {
    let Some(layers) = layers else {
        return (guarded(func, cx, timeout).await, None);
    };
    let run = Run::new(
        Arc::clone(cx.event()),
        Arc::clone(name),
        cx.attempt(),
        matched,
    );
    let handler =
        move || -> layer::BoxFuture<'_, RunResult> { Box::pin(guarded(func, cx.clone(), timeout)) };
    let result = AssertUnwindSafe(layer::call_through(layers, &run, &handler))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(FailureKind::panicked(&*panic)));
    (result, run.into_skipped())
}

/// The handler itself (extraction included), its panics caught, under `timeout`.
async fn guarded(func: &dyn Erased, cx: EventContext, timeout: Option<Duration>) -> RunResult {
    // An async handler's extractors run in `call`, before its future: catch their panics.
    let run = match std::panic::catch_unwind(AssertUnwindSafe(|| func.call(cx))) {
        Ok(run) => AssertUnwindSafe(run).catch_unwind(),
        Err(panic) => return Err(FailureKind::panicked(&*panic)),
    };
    let caught = match timeout {
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(caught) => caught,
            Err(_) => Ok(Err(FailureKind::TimedOut(limit))),
        },
        None => run.await,
    };
    caught.unwrap_or_else(|panic| Err(FailureKind::panicked(&*panic)))
}

/// Counts a failed run and passes it to the error hook.
fn record_failure(
    inner: &Inner,
    event: &TriggerEvent,
    label: &str,
    name: &Arc<str>,
    kind: &FailureKind,
    attempts: u32,
    earlier: Vec<FailureKind>,
) {
    inner.counters.failures.fetch_add(1, Ordering::Relaxed);
    report(
        &inner.hook,
        &Failure::Handler(HandlerFailure {
            handler: Arc::clone(name),
            event_id: label.to_owned(),
            trigger_slug: event.trigger_slug.clone(),
            kind: kind.clone(),
            attempts,
            earlier,
        }),
    );
}
