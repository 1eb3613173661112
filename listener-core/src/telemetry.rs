//! Metrics: what the listener counts and measures, through the `metrics` facade (feature
//! `metrics`, a default).
//!
//! Every metric goes to whatever recorder the application installs
//! (`metrics::set_global_recorder`, or an exporter's `install`): Prometheus, StatsD,
//! OpenTelemetry, anything with a `metrics` exporter. With the `prometheus` feature,
//! `install_prometheus` installs `metrics-exporter-prometheus` with the buckets below, and
//! the admin endpoint (`ListenerBuilder::admin`, feature `admin`) serves it at `/metrics`.
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `listener_events_received_total` | counter | `source`, `trigger_slug` | events a source decoded and handed over, duplicates included |
//! | `listener_duplicates_dropped_total` | counter | `source`, `trigger_slug` | events dropped because their id was seen within the dedupe window |
//! | `listener_decode_failures_total` | counter | `source`, `error` | frames or bodies that were not an event; `error` is `invalid_json`, `number_out_of_range`, `not_an_object`, `unknown_envelope`, `invalid_field` or `envelope_mismatch` |
//! | `listener_handler_runs_total` | counter | `handler`, `outcome` | finished handler attempts (a run retried twice counts three); `outcome` is `ok`, `skipped` (a layer skipped it), `error` (returned an error), `panic`, `extract` (a parameter could not be extracted) or `timeout`. Failed attempts are `outcome!~"ok\|skipped"` |
//! | `listener_handler_retries_total` | counter | `handler` | attempts scheduled again after a failure (`retries` policy) |
//! | `listener_handler_duration_seconds` | histogram | `handler` | how long an attempt took, until its outcome (buckets: [`DURATION_BUCKETS`]) |
//! | `listener_handler_in_flight` | gauge | `handler` | attempts in progress (a run waiting for its turn or its retry is not counted) |
//! | `listener_source_reconnects_total` | counter | `source` | reconnects scheduled, one per failed or dropped connection |
//! | `listener_source_health` | gauge | `source`, `state` | 1 for the source's current state, 0 for the others; `state` is `starting`, `connected` (a webhook source: listening), `reconnecting`, `stopped` or `failed` |
//! | `listener_webhook_responses_total` | counter | `source`, `status` | answers of a webhook source to deliveries, by HTTP status (`200`, `401`, `503`, …) |
//! | `listener_relay_published_total` | counter | `stream`, `duplicate` | events a JetStream relay published and the stream acknowledged; `duplicate="true"` when the stream had it already (another relay was first) |
//! | `listener_relay_dropped_total` | counter | `stream` | events a relay dropped, oldest first, because its buffer was full while the stream was unreachable |
//! | `listener_relay_buffered` | gauge | `stream` | events waiting in a relay's buffer |
//! | `listener_worker_messages_total` | counter | `group`, `outcome` | stream messages a JetStream worker answered: `acked`, `redelivered` (a handler failed; delivered again after a back-off), `dead_lettered`, `handed_back` (at shutdown, to another worker), `other_group` (a dead letter replayed for another group) |
//!
//! `source` is the source's [name](crate::source::Source::name) (`websocket
//! ws://host/path`, `webhook http://addr/path`, …: no credentials, no query). Events
//! injected with [`Dispatcher::dispatch`](crate::dispatch::Dispatcher::dispatch) by hand
//! (the test [`Harness`](crate::testing::Harness), say) run handlers, and so count in the
//! handler metrics, but are not counted as received.
//!
//! **Cardinality.** `handler` takes one value per registered handler and `source` one per
//! configured source, both fixed when the listener is built. `trigger_slug` takes the slugs
//! the sources deliver: the triggers of the project, a bounded set — but a slug comes from
//! the event, so at most [`MAX_SLUG_LABELS`] distinct slugs (each cut to
//! [`MAX_SLUG_LABEL_CHARS`] characters) become label values, and events of further slugs
//! are counted under `trigger_slug="_other"`. `outcome`, `error`, `state` and `status` are
//! small fixed sets.
//!
//! **When to install a recorder.** The handler metrics are registered once per handler when
//! the listener is built, and updated through those handles: install your recorder
//! *before* [`ListenerBuilder::build`](crate::ListenerBuilder::build) (with the
//! `prometheus` feature and an admin address, `build` installs the exporter itself, first).
//! A handle costs a few nanoseconds per update; looking a metric up by name and labels
//! costs some 45 ns even with no recorder, which per event is why the handler metrics are
//! cached. The source metrics (one or two updates per event) are looked up per update, so a
//! recorder installed later still gets those.
//!
//! **Why a feature.** The `metrics` facade is three small packages; the recording is a
//! feature, on by default, so that an application that records no metrics can turn it off
//! and pay nothing. The names and constants of this module stay, and [`describe`] is then
//! a no-op.

use crate::decode::DecodeError;
use crate::handler::FailureKind;

/// Events a source decoded and handed over (labels `source`, `trigger_slug`).
pub const EVENTS_RECEIVED: &str = "listener_events_received_total";
/// Events dropped as duplicates (labels `source`, `trigger_slug`).
pub const DUPLICATES_DROPPED: &str = "listener_duplicates_dropped_total";
/// Frames or bodies that were not an event (labels `source`, `error`).
pub const DECODE_FAILURES: &str = "listener_decode_failures_total";
/// Finished handler runs (labels `handler`, `outcome`).
pub const HANDLER_RUNS: &str = "listener_handler_runs_total";
/// Runs scheduled again after a failure (label `handler`).
pub const HANDLER_RETRIES: &str = "listener_handler_retries_total";
/// How long runs took, in seconds (label `handler`).
pub const HANDLER_DURATION: &str = "listener_handler_duration_seconds";
/// Runs in progress (label `handler`).
pub const HANDLER_IN_FLIGHT: &str = "listener_handler_in_flight";
/// Reconnects scheduled (label `source`).
pub const SOURCE_RECONNECTS: &str = "listener_source_reconnects_total";
/// 1 for a source's current state, 0 for the others (labels `source`, `state`).
pub const SOURCE_HEALTH: &str = "listener_source_health";
/// Answers of a webhook source to deliveries (labels `source`, `status`).
pub const WEBHOOK_RESPONSES: &str = "listener_webhook_responses_total";
/// Events a JetStream relay published (labels `stream`, `duplicate`).
pub const RELAY_PUBLISHED: &str = "listener_relay_published_total";
/// Events a relay dropped with its buffer full (label `stream`).
pub const RELAY_DROPPED: &str = "listener_relay_dropped_total";
/// Events waiting in a relay's buffer (label `stream`).
pub const RELAY_BUFFERED: &str = "listener_relay_buffered";
/// Stream messages a JetStream worker answered (labels `group`, `outcome`).
pub const WORKER_MESSAGES: &str = "listener_worker_messages_total";

/// The upper bounds, in seconds, of the buckets `install_prometheus` gives
/// `listener_handler_duration_seconds`: 1 ms to 5 minutes.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// At most this many distinct trigger slugs become `trigger_slug` label values; events of
/// further slugs are counted under `trigger_slug="_other"`.
pub const MAX_SLUG_LABELS: usize = 1000;

/// A `trigger_slug` label value is cut to this many characters.
pub const MAX_SLUG_LABEL_CHARS: usize = 128;

/// The `trigger_slug` of events beyond [`MAX_SLUG_LABELS`] distinct slugs.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const OTHER_SLUG: &str = "_other";

/// The `state` label values of [`SOURCE_HEALTH`], in `Health`'s order (`Health::state`).
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const HEALTH_STATES: [&str; 5] =
    ["starting", "connected", "reconnecting", "stopped", "failed"];

/// The `outcome` label of a finished attempt that no layer skipped: `ok`, `error`, `panic`,
/// `extract` or `timeout`.
pub fn outcome(result: &Result<(), FailureKind>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(kind) => kind.label(),
    }
}

/// How a JetStream worker answered a stream message: the `outcome` label of
/// [`WORKER_MESSAGES`].
#[cfg(feature = "jetstream")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Every matching handler succeeded (or none matched).
    Acked,
    /// A handler failed: delivered again after a back-off.
    Redelivered,
    /// Moved to the dead letters and terminated.
    DeadLettered,
    /// Handed back at shutdown, for another worker.
    HandedBack,
    /// A dead letter replayed for another group.
    OtherGroup,
}

#[cfg(feature = "jetstream")]
impl Answer {
    /// Every answer, in the order of their discriminants.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [Answer; 5] = [
        Answer::Acked,
        Answer::Redelivered,
        Answer::DeadLettered,
        Answer::HandedBack,
        Answer::OtherGroup,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Answer::Acked => "acked",
            Answer::Redelivered => "redelivered",
            Answer::DeadLettered => "dead_lettered",
            Answer::HandedBack => "handed_back",
            Answer::OtherGroup => "other_group",
        }
    }
}

/// The `error` label of a decode failure.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn decode_error_label(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::InvalidJson { .. } => "invalid_json",
        DecodeError::NumberOutOfRange { .. } => "number_out_of_range",
        DecodeError::NotAnObject { .. } => "not_an_object",
        DecodeError::UnknownEnvelope { .. } => "unknown_envelope",
        DecodeError::InvalidField { .. } => "invalid_field",
        DecodeError::EnvelopeMismatch { .. } => "envelope_mismatch",
    }
}

/// The recording functions, through the `metrics` facade.
#[cfg(feature = "metrics")]
mod record {
    use std::collections::HashSet;
    use std::sync::{Arc, OnceLock, RwLock};
    use std::time::Duration;

    use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram, SharedString};

    use super::*;
    use crate::event::TriggerEvent;
    use crate::layer::RunStatus;

    /// Registers the descriptions (`# HELP` lines) and units of the listener's metrics with the
    /// recorder installed now. [`ListenerBuilder::build`](crate::ListenerBuilder::build) calls
    /// it; call it again if you install a recorder after building the listener (the metrics
    /// themselves reach it either way).
    pub fn describe() {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(
            EVENTS_RECEIVED,
            "Events a source decoded and handed to the dispatcher, duplicates included."
        );
        describe_counter!(
            DUPLICATES_DROPPED,
            "Events dropped because their id was seen within the dedupe window."
        );
        describe_counter!(
            DECODE_FAILURES,
            "Frames or bodies a source received that were not an event."
        );
        describe_counter!(
            HANDLER_RUNS,
            "Finished handler runs by outcome (ok, error, panic, extract, timeout)."
        );
        describe_counter!(
            HANDLER_RETRIES,
            "Handler runs scheduled again after a failure."
        );
        describe_histogram!(
            HANDLER_DURATION,
            Unit::Seconds,
            "How long handler runs took, until their outcome."
        );
        describe_gauge!(HANDLER_IN_FLIGHT, "Handler runs in progress.");
        describe_counter!(
            SOURCE_RECONNECTS,
            "Reconnects scheduled after a failed or dropped connection."
        );
        describe_gauge!(
            SOURCE_HEALTH,
            "1 for the source's current state, 0 for the others."
        );
        describe_counter!(
            WEBHOOK_RESPONSES,
            "Answers of a webhook source to deliveries, by HTTP status."
        );
        describe_counter!(
            RELAY_PUBLISHED,
            "Events a JetStream relay published and the stream acknowledged."
        );
        describe_counter!(
            RELAY_DROPPED,
            "Events a relay dropped, oldest first, with its buffer full."
        );
        describe_gauge!(RELAY_BUFFERED, "Events waiting in a relay's buffer.");
        describe_counter!(
            WORKER_MESSAGES,
            "Stream messages a JetStream worker answered, by outcome."
        );
    }

    /// The attempt statuses, in the order of their variants: one `outcome` label of
    /// [`HANDLER_RUNS`] each.
    const OUTCOMES: [RunStatus; 6] = [
        RunStatus::Ok,
        RunStatus::Skipped,
        RunStatus::Error,
        RunStatus::Panic,
        RunStatus::Extract,
        RunStatus::TimedOut,
    ];

    /// One handler's metrics, registered with the recorder installed when the listener
    /// was built.
    pub(crate) struct HandlerMetrics {
        /// Indexed like [`OUTCOMES`].
        outcomes: [Counter; 6],
        retries: Counter,
        duration: Histogram,
        in_flight: Gauge,
    }

    impl HandlerMetrics {
        /// Registers the metrics of `handler`.
        pub(crate) fn new(handler: &Arc<str>) -> Self {
            let label = || SharedString::from(Arc::clone(handler));
            HandlerMetrics {
                outcomes: OUTCOMES.map(
                    |status| counter!(HANDLER_RUNS, "handler" => label(), "outcome" => status.as_str()),
                ),
                retries: counter!(HANDLER_RETRIES, "handler" => label()),
                duration: histogram!(HANDLER_DURATION, "handler" => label()),
                in_flight: gauge!(HANDLER_IN_FLIGHT, "handler" => label()),
            }
        }

        /// Records a finished attempt: its outcome, and how long it took.
        pub(crate) fn attempt_finished(
            &self,
            result: &Result<(), FailureKind>,
            skipped: bool,
            elapsed: Duration,
        ) {
            self.outcomes[RunStatus::from_result(result, skipped) as usize].increment(1);
            self.duration.record(elapsed.as_secs_f64());
        }

        /// Records a run that panicked outside its handler's own guard (in a tracing layer,
        /// say), when how long it took is not known: counted as `panic`, not timed.
        pub(crate) fn panicked(&self) {
            self.outcomes[RunStatus::Panic as usize].increment(1);
        }

        /// Records that a failed attempt is run again.
        pub(crate) fn retry_scheduled(&self) {
            self.retries.increment(1);
        }

        /// Counts an attempt in flight for as long as the guard lives.
        pub(crate) fn in_flight(&self) -> InFlight<'_> {
            self.in_flight.increment(1.0);
            InFlight(&self.in_flight)
        }
    }

    /// An attempt in flight ([`HANDLER_IN_FLIGHT`]), until dropped.
    #[must_use = "the attempt counts as in flight only while the guard lives"]
    pub(crate) struct InFlight<'a>(&'a Gauge);

    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }

    /// An event a source handed over, counted as received; see [`Received::duplicate`].
    pub(crate) struct Received {
        source: Arc<str>,
        slug: SharedString,
    }

    /// How many trigger slugs a source keeps its [`EVENTS_RECEIVED`] counter handle for.
    pub(super) const RECEIVED_HANDLES: usize = 16;

    /// One source's [`EVENTS_RECEIVED`] counters: the handles of the first
    /// [`RECEIVED_HANDLES`] trigger slugs it sees, registered with the recorder on the
    /// first event of each; an event of another slug registers its counter each time.
    pub(crate) struct ReceivedCounters {
        source: Arc<str>,
        /// (trigger slug as the event has it, its label, the counter).
        handles: RwLock<Vec<(String, SharedString, Counter)>>,
    }

    impl ReceivedCounters {
        pub(crate) fn new(source: &Arc<str>) -> Self {
            ReceivedCounters {
                source: Arc::clone(source),
                handles: RwLock::new(Vec::new()),
            }
        }

        /// Counts an event the source handed over.
        pub(crate) fn received(&self, event: &TriggerEvent) -> Received {
            let known = self.handles.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, slug, counter)) =
                known.iter().find(|(raw, _, _)| *raw == event.trigger_slug)
            {
                counter.increment(1);
                return self.of(slug.clone());
            }
            // Once the handles are all taken, a slug without one never takes the write lock.
            let room = known.len() < RECEIVED_HANDLES;
            drop(known);
            let slug = slug_label(&event.trigger_slug);
            let counter = counter!(EVENTS_RECEIVED, "source" => Arc::clone(&self.source), "trigger_slug" => slug.clone());
            counter.increment(1);
            if room {
                let mut known = self.handles.write().unwrap_or_else(|p| p.into_inner());
                if known.len() < RECEIVED_HANDLES
                    && !known.iter().any(|(raw, _, _)| *raw == event.trigger_slug)
                {
                    known.push((event.trigger_slug.clone(), slug.clone(), counter));
                }
            }
            self.of(slug)
        }

        fn of(&self, slug: SharedString) -> Received {
            Received {
                source: Arc::clone(&self.source),
                slug,
            }
        }
    }

    impl Received {
        /// The event was dropped as a duplicate.
        pub(crate) fn duplicate(self) {
            counter!(DUPLICATES_DROPPED, "source" => self.source, "trigger_slug" => self.slug)
                .increment(1);
        }
    }

    /// Counts bytes `source` received that were not an event.
    pub(crate) fn decode_failed(source: &Arc<str>, error: &DecodeError) {
        counter!(DECODE_FAILURES, "source" => Arc::clone(source), "error" => decode_error_label(error))
            .increment(1);
    }

    /// Counts a reconnect `source` scheduled.
    pub(crate) fn reconnect(source: &Arc<str>) {
        counter!(SOURCE_RECONNECTS, "source" => Arc::clone(source)).increment(1);
    }

    /// Records `source`'s new health state (`Health::state`): 1 for it, 0 for the others.
    pub(crate) fn health_changed(source: &str, current: &str) {
        let source: Arc<str> = Arc::from(source);
        for state in HEALTH_STATES {
            let value = if state == current { 1.0 } else { 0.0 };
            gauge!(SOURCE_HEALTH, "source" => Arc::clone(&source), "state" => state).set(value);
        }
    }

    /// A relay's per-event metrics, registered with the recorder installed when the
    /// listener was built (as [`HandlerMetrics`]): each update is then a handle's.
    #[cfg(feature = "jetstream")]
    pub(crate) struct RelayMetrics {
        buffered: Gauge,
        /// Indexed by whether the stream had the event already.
        published: [Counter; 2],
        dropped: Counter,
    }

    #[cfg(feature = "jetstream")]
    impl RelayMetrics {
        /// Registers the metrics of the relay to `stream`.
        pub(crate) fn new(stream: &str) -> Self {
            let label = || SharedString::from(stream.to_owned());
            RelayMetrics {
                buffered: gauge!(RELAY_BUFFERED, "stream" => label()),
                published: ["false", "true"].map(
                    |duplicate| counter!(RELAY_PUBLISHED, "stream" => label(), "duplicate" => duplicate),
                ),
                dropped: counter!(RELAY_DROPPED, "stream" => label()),
            }
        }

        /// Counts an event the relay dropped (its buffer full).
        pub(crate) fn dropped(&self) {
            self.dropped.increment(1);
        }

        /// Records how many events the relay's buffer holds.
        pub(crate) fn buffered(&self, events: usize) {
            self.buffered.set(events as f64);
        }

        /// Counts an event the stream acknowledged (`duplicate`: it had it already).
        pub(crate) fn published(&self, duplicate: bool) {
            self.published[usize::from(duplicate)].increment(1);
        }
    }

    /// A worker's per-message metrics, registered with the recorder installed when the
    /// listener was built (as [`HandlerMetrics`]).
    #[cfg(feature = "jetstream")]
    pub(crate) struct WorkerMetrics {
        /// Indexed like [`Answer::ALL`].
        answers: [Counter; 5],
    }

    #[cfg(feature = "jetstream")]
    impl WorkerMetrics {
        /// Registers the metrics of a worker of `group`.
        pub(crate) fn new(group: &str) -> Self {
            WorkerMetrics {
                answers: Answer::ALL.map(|answer| {
                    counter!(WORKER_MESSAGES, "group" => group.to_owned(), "outcome" => answer.as_str())
                }),
            }
        }

        /// Counts a stream message the worker answered.
        pub(crate) fn answered(&self, answer: Answer) {
            self.answers[answer as usize].increment(1);
        }
    }

    /// Counts an answer of webhook source `source` to a delivery.
    #[cfg(feature = "webhook-server")]
    pub(crate) fn webhook_response(source: &str, status: u16) {
        counter!(WEBHOOK_RESPONSES, "source" => source.to_owned(), "status" => status.to_string())
            .increment(1);
    }

    type SlugSet = HashSet<Arc<str>, foldhash::fast::RandomState>;

    /// The `trigger_slug` label value for `slug`: itself (cut to [`MAX_SLUG_LABEL_CHARS`]) while
    /// fewer than [`MAX_SLUG_LABELS`] slugs were seen, else `_other`. A slug seen before costs
    /// a read lock and a hash lookup, no allocation.
    pub(super) fn slug_label(slug: &str) -> SharedString {
        static SEEN: OnceLock<RwLock<SlugSet>> = OnceLock::new();
        let seen = SEEN.get_or_init(Default::default);
        let slug = match slug.char_indices().nth(MAX_SLUG_LABEL_CHARS) {
            Some((end, _)) => &slug[..end],
            None => slug,
        };
        if let Some(known) = seen.read().unwrap_or_else(|p| p.into_inner()).get(slug) {
            return SharedString::from(Arc::clone(known));
        }
        let mut seen = seen.write().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = seen.get(slug) {
            return SharedString::from(Arc::clone(known));
        }
        if seen.len() >= MAX_SLUG_LABELS {
            return SharedString::const_str(OTHER_SLUG);
        }
        let label: Arc<str> = Arc::from(slug);
        seen.insert(Arc::clone(&label));
        SharedString::from(label)
    }
}

/// The recording functions without the `metrics` feature: nothing is recorded.
#[cfg(not(feature = "metrics"))]
mod record {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::decode::DecodeError;
    use crate::event::TriggerEvent;
    use crate::handler::FailureKind;

    /// Registers the descriptions of the listener's metrics: nothing to do without the
    /// `metrics` feature.
    pub fn describe() {}

    /// One handler's metrics: nothing, without the `metrics` feature.
    pub(crate) struct HandlerMetrics;

    impl HandlerMetrics {
        #[inline]
        pub(crate) fn new(_: &Arc<str>) -> Self {
            HandlerMetrics
        }

        #[inline]
        pub(crate) fn attempt_finished(&self, _: &Result<(), FailureKind>, _: bool, _: Duration) {}

        #[inline]
        pub(crate) fn panicked(&self) {}

        #[inline]
        pub(crate) fn retry_scheduled(&self) {}

        #[inline]
        pub(crate) fn in_flight(&self) -> InFlight {
            InFlight
        }
    }

    /// An attempt in flight: nothing to count without the `metrics` feature.
    pub(crate) struct InFlight;

    pub(crate) struct Received;

    /// A source's received counters: nothing, without the `metrics` feature.
    pub(crate) struct ReceivedCounters;

    impl ReceivedCounters {
        #[inline]
        pub(crate) fn new(_: &Arc<str>) -> Self {
            ReceivedCounters
        }

        #[inline]
        pub(crate) fn received(&self, _: &TriggerEvent) -> Received {
            Received
        }
    }

    impl Received {
        #[inline]
        pub(crate) fn duplicate(self) {}
    }

    #[inline]
    pub(crate) fn decode_failed(_: &Arc<str>, _: &DecodeError) {}

    #[inline]
    pub(crate) fn reconnect(_: &Arc<str>) {}

    #[inline]
    pub(crate) fn health_changed(_: &str, _: &str) {}

    #[cfg(feature = "webhook-server")]
    #[inline]
    pub(crate) fn webhook_response(_: &str, _: u16) {}

    /// A relay's metrics: nothing, without the `metrics` feature.
    #[cfg(feature = "jetstream")]
    pub(crate) struct RelayMetrics;

    #[cfg(feature = "jetstream")]
    impl RelayMetrics {
        #[inline]
        pub(crate) fn new(_: &str) -> Self {
            RelayMetrics
        }

        #[inline]
        pub(crate) fn buffered(&self, _: usize) {}

        #[inline]
        pub(crate) fn dropped(&self) {}

        #[inline]
        pub(crate) fn published(&self, _: bool) {}
    }

    /// A worker's metrics: nothing, without the `metrics` feature.
    #[cfg(feature = "jetstream")]
    pub(crate) struct WorkerMetrics;

    #[cfg(feature = "jetstream")]
    impl WorkerMetrics {
        #[inline]
        pub(crate) fn new(_: &str) -> Self {
            WorkerMetrics
        }

        #[inline]
        pub(crate) fn answered(&self, _: super::Answer) {}
    }
}

pub use record::describe;
#[cfg(feature = "webhook-server")]
pub(crate) use record::webhook_response;
pub(crate) use record::{
    decode_failed, health_changed, reconnect, HandlerMetrics, ReceivedCounters,
};
#[cfg(feature = "jetstream")]
pub(crate) use record::{RelayMetrics, WorkerMetrics};

/// The handle of an installed Prometheus recorder: renders the text format
/// (re-exported from `metrics-exporter-prometheus`).
#[cfg(feature = "prometheus")]
pub use metrics_exporter_prometheus::PrometheusHandle;
#[cfg(feature = "prometheus")]
pub use prometheus::{install_prometheus, prometheus_builder, TelemetryError};

#[cfg(feature = "prometheus")]
mod prometheus {
    use std::sync::Mutex;

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    use super::{DURATION_BUCKETS, HANDLER_DURATION};

    /// Why the Prometheus recorder could not be installed.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum TelemetryError {
        /// Another `metrics` recorder is installed already (there is one per process);
        /// the listener's metrics go to it.
        #[error("another metrics recorder is installed already; the listener's metrics go to it")]
        RecorderInstalled,
        /// The exporter refused its settings.
        #[error("the Prometheus exporter refused its settings: {0}")]
        Build(String),
    }

    /// A `metrics-exporter-prometheus` builder with the listener's settings:
    /// `listener_handler_duration_seconds` as a histogram with [`DURATION_BUCKETS`] (other
    /// histograms stay summaries, the exporter's default). Add your own settings, then
    /// `install_recorder()` it and hand the handle to
    /// [`ListenerBuilder::prometheus_handle`](crate::ListenerBuilder::prometheus_handle).
    pub fn prometheus_builder() -> Result<PrometheusBuilder, TelemetryError> {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HANDLER_DURATION.to_owned()), DURATION_BUCKETS)
            .map_err(|e| TelemetryError::Build(e.to_string()))
    }

    /// The recorder this module installed, if any.
    static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

    /// Installs the Prometheus recorder ([`prometheus_builder`]) as the process's `metrics`
    /// recorder and returns its handle (`handle.render()` is the text format); once
    /// installed, later calls return the same handle. Fails with
    /// [`TelemetryError::RecorderInstalled`] if another recorder was installed first.
    ///
    /// The exporter needs upkeep (`handle.run_upkeep()`) every few seconds to bound the
    /// memory its histograms buffer between scrapes: the admin endpoint does it while the
    /// listener runs; without it, call `run_upkeep` from a task of yours.
    pub fn install_prometheus() -> Result<PrometheusHandle, TelemetryError> {
        let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = installed.as_ref() {
            return Ok(handle.clone());
        }
        let recorder = prometheus_builder()?.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| TelemetryError::RecorderInstalled)?;
        super::describe();
        *installed = Some(handle.clone());
        Ok(handle)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn outcomes_name_every_failure_kind() {
        let kinds = [
            (Ok(()), "ok"),
            (Err(FailureKind::Error("e".into())), "error"),
            (Err(FailureKind::Panic("p".into())), "panic"),
            (
                Err(FailureKind::Extract(Arc::new(std::fmt::Error))),
                "extract",
            ),
            (
                Err(FailureKind::TimedOut(Duration::from_secs(1))),
                "timeout",
            ),
        ];
        for (result, label) in kinds {
            assert_eq!(outcome(&result), label);
        }
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn slug_labels_are_cut_and_shared() {
        use super::record::slug_label;
        let long = "S".repeat(MAX_SLUG_LABEL_CHARS + 10);
        assert_eq!(slug_label(&long).len(), MAX_SLUG_LABEL_CHARS);
        let a = slug_label("TELEMETRY_TEST_SLUG");
        let b = slug_label("TELEMETRY_TEST_SLUG");
        assert_eq!(a, b);
        assert_eq!(&*a, "TELEMETRY_TEST_SLUG");
    }

    #[cfg(feature = "prometheus")]
    mod prometheus {
        use super::*;

        /// What `f` recorded, rendered while what it returns still lives.
        fn render<T>(f: impl FnOnce() -> T) -> String {
            let recorder = prometheus_builder().unwrap().build_recorder();
            let handle = recorder.handle();
            metrics::with_local_recorder(&recorder, || {
                describe();
                let alive = f();
                let text = handle.render();
                drop(alive);
                text
            })
        }

        #[cfg(feature = "jetstream")]
        #[test]
        fn a_worker_counts_its_answers_by_outcome() {
            let text = render(|| {
                let m = WorkerMetrics::new("bots");
                m.answered(Answer::Acked);
                m.answered(Answer::Acked);
                m.answered(Answer::DeadLettered);
                m
            });
            for line in [
                r#"listener_worker_messages_total{group="bots",outcome="acked"} 2"#,
                r#"listener_worker_messages_total{group="bots",outcome="dead_lettered"} 1"#,
                r#"listener_worker_messages_total{group="bots",outcome="redelivered"} 0"#,
            ] {
                assert!(text.contains(line), "{line} in\n{text}");
            }
            for answer in Answer::ALL {
                assert_eq!(Answer::ALL[answer as usize], answer);
            }
        }

        #[cfg(feature = "jetstream")]
        #[test]
        fn a_relay_counts_what_it_published_and_gauges_its_buffer() {
            let text = render(|| {
                let m = RelayMetrics::new("EVENTS");
                m.buffered(7);
                m.buffered(3);
                m.published(false);
                m.published(false);
                m.published(true);
                m.dropped();
                m
            });
            for line in [
                r#"listener_relay_buffered{stream="EVENTS"} 3"#,
                r#"listener_relay_published_total{stream="EVENTS",duplicate="false"} 2"#,
                r#"listener_relay_published_total{stream="EVENTS",duplicate="true"} 1"#,
                r#"listener_relay_dropped_total{stream="EVENTS"} 1"#,
            ] {
                assert!(text.contains(line), "{line} in\n{text}");
            }
        }

        #[test]
        fn runs_are_counted_by_outcome_and_timed_in_buckets() {
            let name: Arc<str> = Arc::from("my_handler");
            let text = render(|| {
                // Registered with the recorder in place, like the dispatcher at build.
                let m = HandlerMetrics::new(&name);
                m.attempt_finished(&Ok(()), false, Duration::from_millis(3));
                m.attempt_finished(&Ok(()), false, Duration::from_millis(30));
                m.attempt_finished(
                    &Err(FailureKind::Extract(Arc::new(std::fmt::Error))),
                    false,
                    Duration::from_millis(1),
                );
                m.attempt_finished(&Ok(()), true, Duration::from_millis(1));
                m.panicked();
                m.retry_scheduled();
                {
                    let _done = m.in_flight();
                }
                // Still in flight when the text is rendered.
                std::mem::forget(m.in_flight());
                m
            });
            for line in [
                "# TYPE listener_handler_runs_total counter",
                r#"listener_handler_runs_total{handler="my_handler",outcome="ok"} 2"#,
                r#"listener_handler_runs_total{handler="my_handler",outcome="extract"} 1"#,
                r#"listener_handler_runs_total{handler="my_handler",outcome="panic"} 1"#,
                r#"listener_handler_runs_total{handler="my_handler",outcome="skipped"} 1"#,
                r#"listener_handler_runs_total{handler="my_handler",outcome="timeout"} 0"#,
                r#"listener_handler_retries_total{handler="my_handler"} 1"#,
                "# TYPE listener_handler_duration_seconds histogram",
                r#"listener_handler_duration_seconds_bucket{handler="my_handler",le="0.005"} 3"#,
                r#"listener_handler_duration_seconds_bucket{handler="my_handler",le="0.05"} 4"#,
                r#"listener_handler_duration_seconds_count{handler="my_handler"} 4"#,
                r#"listener_handler_in_flight{handler="my_handler"} 1"#,
            ] {
                assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
            }
        }

        #[test]
        fn slugs_beyond_the_kept_handles_are_counted_too() {
            let source: Arc<str> = Arc::from("many");
            let kept = super::super::record::RECEIVED_HANDLES;
            let events: Vec<crate::TriggerEvent> = (0..kept + 4)
                .map(|i| {
                    crate::TriggerEvent::new(format!("TOOL_SLUG_{i}"), serde_json::Value::Null)
                })
                .collect();
            let text = render(|| {
                let counters = ReceivedCounters::new(&source);
                for event in events.iter().chain(&events) {
                    counters.received(event);
                }
            });
            for i in 0..kept + 4 {
                let line = format!(
                    r#"listener_events_received_total{{source="many",trigger_slug="TOOL_SLUG_{i}"}} 2"#
                );
                assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
            }
        }

        #[test]
        fn sources_are_counted_by_name() {
            let source: Arc<str> = Arc::from("websocket ws://127.0.0.1:1/");
            let event = crate::decode::decode(
                br#"{"id":"e1","type":"composio.trigger.message","metadata":{"trigger_slug":"GITHUB_STAR_ADDED_EVENT"},"data":{}}"#,
            )
            .unwrap();
            let other = crate::decode::decode(
                br#"{"id":"e2","type":"composio.trigger.message","metadata":{"trigger_slug":"SLACK_X"},"data":{}}"#,
            )
            .unwrap();
            let text = render(|| {
                let counters = ReceivedCounters::new(&source);
                counters.received(&event);
                counters.received(&event).duplicate();
                counters.received(&other);
                // A second source's counters add to the same series.
                ReceivedCounters::new(&source).received(&event);
                decode_failed(&source, &crate::decode::decode(b"[]").unwrap_err());
                reconnect(&source);
                health_changed(&source, "reconnecting");
            });
            let s = r#"source="websocket ws://127.0.0.1:1/""#;
            for line in [
                format!(
                    r#"listener_events_received_total{{{s},trigger_slug="GITHUB_STAR_ADDED_EVENT"}} 3"#
                ),
                format!(r#"listener_events_received_total{{{s},trigger_slug="SLACK_X"}} 1"#),
                format!(
                    r#"listener_duplicates_dropped_total{{{s},trigger_slug="GITHUB_STAR_ADDED_EVENT"}} 1"#
                ),
                format!(r#"listener_decode_failures_total{{{s},error="not_an_object"}} 1"#),
                format!(r#"listener_source_reconnects_total{{{s}}} 1"#),
                format!(r#"listener_source_health{{{s},state="reconnecting"}} 1"#),
                format!(r#"listener_source_health{{{s},state="connected"}} 0"#),
            ] {
                assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
            }
        }

        #[test]
        fn installing_twice_gives_the_same_recorder() {
            // The global recorder of this test binary: every other test uses local ones.
            let first = install_prometheus().unwrap();
            let second = install_prometheus().unwrap();
            metrics::counter!("telemetry_install_test_total").increment(1);
            assert!(first.render().contains("telemetry_install_test_total 1"));
            assert!(second.render().contains("telemetry_install_test_total 1"));
        }
    }
}
