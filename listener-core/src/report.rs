//! What the listener reports: handler outcomes, failures, and the error hook.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::handler::FailureKind;

/// One failed handler run: its last attempt failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandlerFailure {
    /// The handler's name.
    pub handler: Arc<str>,
    /// The event's delivery id (or trigger id when it has none).
    pub event_id: String,
    /// The event's trigger slug.
    pub trigger_slug: String,
    /// What went wrong in the last attempt.
    pub kind: FailureKind,
    /// How many attempts were made (1 without retries).
    pub attempts: u32,
    /// What went wrong in each attempt before the last, in order.
    pub earlier: Vec<FailureKind>,
}

impl fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler `{}` {}", self.handler, self.kind)?;
        if self.attempts > 1 {
            write!(f, " (last of {} attempts)", self.attempts)?;
        }
        write!(
            f,
            " (event `{}`, trigger `{}`)",
            self.event_id, self.trigger_slug
        )
    }
}

/// A source's failure: transient (it will retry) or fatal (it gave up).
#[derive(Debug, Clone)]
pub struct SourceFailure {
    /// The source's name.
    pub source: String,
    /// What went wrong.
    pub error: Arc<Error>,
    /// Whether the source stopped for good.
    pub fatal: bool,
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.fatal {
            "failed for good"
        } else {
            "hit an error"
        };
        write!(f, "source `{}` {what}: {}", self.source, self.error)
    }
}

/// Anything the error hook is told about.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Failure {
    /// A handler run failed, panicked or timed out.
    Handler(HandlerFailure),
    /// A source hit an error (a bad frame, a dropped connection, a rejected login).
    Source(SourceFailure),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Handler(h) => h.fmt(f),
            Failure::Source(s) => s.fmt(f),
        }
    }
}

/// The error hook: called, on the task where the failure happened, for every [`Failure`].
/// Keep it quick (hand work off to a channel if it must do I/O).
pub type ErrorHook = Arc<dyn Fn(&Failure) + Send + Sync>;

/// The outcome of one handler run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandlerOutcome {
    /// The handler's name.
    pub handler: Arc<str>,
    /// `Ok(())`, or why its last attempt failed.
    pub result: Result<(), FailureKind>,
    /// How many attempts were made (1 without retries; 0 when a layer skipped the run or
    /// it failed before its first attempt).
    pub attempts: u32,
    /// Why a layer skipped the run, when one did (the handler did not run; `result` is
    /// `Ok`).
    pub skipped: Option<String>,
}

impl HandlerOutcome {
    /// An outcome that is not the end of a normal run (a panic around it, a cancelled
    /// task).
    pub(crate) fn abnormal(handler: Arc<str>, kind: FailureKind) -> Self {
        HandlerOutcome {
            handler,
            result: Err(kind),
            attempts: 1,
            skipped: None,
        }
    }
}

/// What dispatching one event did, once all its handlers finished.
#[derive(Debug, Clone, Default)]
pub struct DispatchReport {
    /// The event id was seen recently, so nothing ran.
    pub duplicate: bool,
    /// One entry per matching handler, in dispatch order.
    pub outcomes: Vec<HandlerOutcome>,
}

impl DispatchReport {
    /// The names of the handlers that ran.
    pub fn handlers(&self) -> Vec<&str> {
        self.outcomes.iter().map(|o| &*o.handler).collect()
    }

    /// Whether `handler` ran (matched by full name or by its last `::` segment).
    pub fn ran(&self, handler: &str) -> bool {
        self.outcome(handler).is_some()
    }

    /// The outcome of `handler` (matched by full name or by its last `::` segment).
    pub fn outcome(&self, handler: &str) -> Option<&HandlerOutcome> {
        self.outcomes
            .iter()
            .find(|o| &*o.handler == handler || o.handler.rsplit("::").next() == Some(handler))
    }

    /// Whether every handler that ran succeeded (true when none ran).
    pub fn all_ok(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }

    /// The failed runs.
    pub fn failures(&self) -> impl Iterator<Item = &HandlerOutcome> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }
}
