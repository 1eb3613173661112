//! The listener: runs sources into the dispatcher until told to stop, then drains.

mod builder;
mod signal;
#[cfg(feature = "jetstream")]
mod streamed;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use builder::{ListenerBuilder, DEFAULT_DRAIN_TIMEOUT};

use crate::dispatch::{DispatchStats, Dispatcher};
use crate::error::ConfigError;
use crate::error::{Error, Result};
use crate::report::{Failure, SourceFailure};
use crate::source::SourceError;
use crate::source::{Health, HealthBoard, Source, SourceContext, SourceHealth};

/// Why a listener stopped (when it stopped cleanly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Signal,
    /// [`ListenerHandle::shutdown`] was called.
    Requested,
    /// Every source finished normally (a finite source ran out of events).
    SourcesFinished,
}

/// A clean stop: why, and what was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Why the listener stopped.
    pub reason: StopReason,
    /// The dispatcher's counters at the end.
    pub stats: DispatchStats,
}

/// Receives events from its sources and runs the matching handlers.
///
/// ```no_run
/// use listener_core::prelude::*;
///
/// #[on_trigger(name = "GITHUB_STAR_ADDED_EVENT")]
/// async fn starred(meta: Meta) -> anyhow::Result<()> {
///     tracing::info!(user = meta.user_id(), "new star");
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> anyhow::Result<()> {
///     let stopped = Listener::from_env()?.build()?.wait_forever().await?;
///     println!("stopped: {:?}", stopped.reason);
///     Ok(())
/// }
/// ```
pub struct Listener {
    sources: Vec<Box<dyn Source>>,
    dispatcher: Dispatcher,
    drain_timeout: Duration,
    #[cfg(feature = "admin")]
    admin: Option<crate::admin::Admin>,
    #[cfg(feature = "jetstream")]
    stream: Option<streamed::Streamed>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field(
                "sources",
                &self.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("dispatcher", &self.dispatcher)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// A builder with no sources, the `#[on_trigger]` handlers, and default limits.
    pub fn builder() -> ListenerBuilder {
        ListenerBuilder::default()
    }

    /// A builder configured from environment variables; add state or hooks, then `build()`.
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `COMPOSIO_API_KEY` | a Composio project API key: listen on its realtime channel |
    /// | `COMPOSIO_BASE_URL` | Composio's API (default `https://backend.composio.dev`) |
    /// | `COMPOSIO_PUSHER_HOST`, `…_PORT`, `…_TLS` | websocket server override (self-hosted, local hub) |
    /// | `COMPOSIO_PUSHER_SUBSCRIBE_TIMEOUT_SECS` | time for the server to confirm the subscription (default 10) |
    /// | `COMPOSIO_PUSHER_STABLE_AFTER_SECS` | how long a connection must stay up to reset the back-off (default 30) |
    /// | `COMPOSIO_WEBHOOK_SECRET` | receive signed webhooks (several secrets: space or comma separated) |
    /// | `LISTENER_WEBHOOK_ADDR`, `LISTENER_WEBHOOK_PATH` | where (default `127.0.0.1:8787`, `/webhook`) |
    /// | `LISTENER_WEBHOOK_TOLERANCE_SECS` | webhook timestamp tolerance either way (default 300; 0 disables) |
    /// | `LISTENER_WEBHOOK_MAX_BODY_BYTES` | largest webhook body accepted (default 1048576) |
    /// | `LISTENER_WEBHOOK_ACK` | `accepted` (default) or `handlers`: answer 200 only once the handlers succeeded |
    /// | `LISTENER_WS_URL` | a `ws://`/`wss://` URL sending one event per frame |
    /// | `LISTENER_MAX_IN_FLIGHT` | bound on concurrent handler runs (default 256) |
    /// | `LISTENER_DRAIN_TIMEOUT_SECS` | shutdown's wait for running handlers (default 30) |
    /// | `LISTENER_HANDLER_TIMEOUT_SECS` | per-run time limit (default none) |
    /// | `LISTENER_DEDUPE_CAPACITY` | ids remembered for dedupe (default 10000; 0 disables) |
    /// | `LISTENER_DEDUPE_TTL_SECS` | how long ids are remembered (default 600) |
    /// | `LISTENER_ADMIN_ADDR` | serve the admin endpoint (`/healthz`, `/readyz`, `/metrics`) there (feature `admin`; default off) |
    ///
    /// Fails with [`Error::Config`] on an unparsable value, or when no source is configured.
    pub fn from_env() -> Result<ListenerBuilder> {
        Self::from_lookup(&|key| std::env::var(key).ok())
    }

    /// [`from_env`](Self::from_env) with another variable lookup (for tests and config files).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<ListenerBuilder> {
        let builder = ListenerBuilder::default().configure_from(lookup)?;
        if !builder.has_events() {
            return Err(Error::Config(ConfigError {
                key: "COMPOSIO_API_KEY".into(),
                message: "no event source configured: set COMPOSIO_API_KEY (Composio realtime), COMPOSIO_WEBHOOK_SECRET (signed webhooks) or LISTENER_WS_URL (a websocket)".into(),
            }));
        }
        Ok(builder)
    }

    /// The dispatcher, for injecting events by hand.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Where the admin endpoint listens (bound by `build`), if it is on; see
    /// [`ListenerBuilder::admin`].
    #[cfg(feature = "admin")]
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(crate::admin::Admin::local_addr)
    }

    /// Runs until Ctrl-C or SIGTERM, or until every source has ended; then stops reading,
    /// waits up to the drain timeout for handlers in flight, and says why it ended.
    ///
    /// Errors: the sources' errors if any source failed for good, else
    /// [`Error::DrainTimeout`] if handlers were still running at the deadline.
    pub async fn wait_forever(self) -> Result<Stopped> {
        let board = Arc::new(HealthBoard::default());
        self.run(CancellationToken::new(), true, board).await
    }

    /// Runs in a background task (it does not listen for signals: the embedding service
    /// decides when to stop). Must be called within a tokio runtime.
    pub fn spawn(self) -> ListenerHandle {
        let stop = CancellationToken::new();
        let board = Arc::new(HealthBoard::default());
        let dispatcher = self.dispatcher.clone();
        #[cfg(feature = "admin")]
        let admin_addr = self.admin_addr();
        let sources = self.source_count();
        let task = tokio::spawn(self.run(stop.clone(), false, Arc::clone(&board)));
        ListenerHandle {
            stop,
            task,
            board,
            sources,
            dispatcher,
            #[cfg(feature = "admin")]
            admin_addr,
        }
    }

    /// The sources `run` starts: the configured ones, and a relay's publisher and a
    /// worker.
    fn source_count(&self) -> usize {
        #[cfg(feature = "jetstream")]
        if let Some(stream) = &self.stream {
            return self.sources.len() + stream.source_count();
        }
        self.sources.len()
    }

    async fn run(
        self,
        stop: CancellationToken,
        signals: bool,
        board: Arc<HealthBoard>,
    ) -> Result<Stopped> {
        let dispatcher = self.dispatcher;
        #[cfg(feature = "admin")]
        let admin = self
            .admin
            .map(|admin| admin.spawn(Arc::clone(&board), dispatcher.clone()));
        let source_stop = CancellationToken::new();
        let mut running = JoinSet::new();
        #[cfg(feature = "jetstream")]
        let (relay, stream_sources) = match self.stream {
            Some(stream) => (stream.relay.clone(), stream.into_sources()),
            None => (None, Vec::new()),
        };
        for source in self.sources {
            let cx = SourceContext::new(
                source.name(),
                dispatcher.clone(),
                Arc::clone(&board),
                source_stop.clone(),
            );
            // Behind a relay, the source's events go to the stream; the relay keeps
            // publishing at shutdown while the source still runs.
            #[cfg(feature = "jetstream")]
            let (cx, feeder) = match &relay {
                Some(relay) => (cx.with_relay(Arc::clone(relay)), Some(relay.attach())),
                None => (cx, None),
            };
            #[cfg(not(feature = "jetstream"))]
            let feeder = ();
            spawn_source(&mut running, source, cx, feeder);
        }
        // The relay's publisher and the worker run as sources of their own.
        #[cfg(feature = "jetstream")]
        for source in stream_sources {
            let cx = SourceContext::new(
                source.name(),
                dispatcher.clone(),
                Arc::clone(&board),
                source_stop.clone(),
            );
            spawn_source(&mut running, source, cx, ());
        }
        tracing::info!(
            sources = running.len(),
            handlers = dispatcher.registry().len(),
            "listener started"
        );

        let mut failures: Vec<Error> = Vec::new();
        let signal = async {
            if signals {
                signal::terminate().await
            } else {
                std::future::pending().await
            }
        };
        tokio::pin!(signal);
        let reason = loop {
            tokio::select! {
                _ = &mut signal => break StopReason::Signal,
                _ = stop.cancelled() => break StopReason::Requested,
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    if let Some(e) = source_ended(&dispatcher, joined) {
                        failures.push(e);
                    }
                    if running.is_empty() {
                        break StopReason::SourcesFinished;
                    }
                }
            }
        };

        // Stop reading, then give sources and handlers the drain timeout to finish.
        tracing::info!(
            ?reason,
            in_flight = dispatcher.in_flight(),
            "listener stopping"
        );
        let deadline = Instant::now() + self.drain_timeout;
        source_stop.cancel();
        dispatcher.close();
        let sources_stopped = tokio::time::timeout_at(deadline, async {
            while let Some(joined) = running.join_next().await {
                if let Some(e) = source_ended(&dispatcher, joined) {
                    failures.push(e);
                }
            }
        })
        .await;
        if sources_stopped.is_err() {
            tracing::warn!("sources did not stop before the drain deadline; aborting them");
            running.abort_all();
        }
        let drained = dispatcher
            .drain(deadline.saturating_duration_since(Instant::now()))
            .await
            .map_err(|e| match e {
                Error::DrainTimeout { pending, .. } => Error::DrainTimeout {
                    pending,
                    deadline: self.drain_timeout,
                },
                other => other,
            });

        #[cfg(feature = "admin")]
        if let Some(admin) = admin {
            admin.stop().await;
        }
        let stats = dispatcher.stats();
        tracing::info!(
            ?reason,
            events = stats.events,
            runs = stats.runs,
            failures = stats.failures,
            "listener stopped"
        );
        match failures.len() {
            0 => drained.map(|()| Stopped { reason, stats }),
            1 => Err(failures.remove(0)),
            _ => Err(Error::AllSourcesFailed(failures)),
        }
    }
}

/// Logs and reports a source's end; returns its error if it failed.
type Running = JoinSet<(String, Result<()>)>;

/// Runs `source` with `cx` as a task of `running`, recording its health when it ends;
/// `guard` lives as long as the source runs.
fn spawn_source<G: Send + 'static>(
    running: &mut Running,
    source: Box<dyn Source>,
    cx: SourceContext,
    guard: G,
) {
    let name = source.name();
    let span = tracing::info_span!("source", name = %name);
    running.spawn(
        async move {
            let result = source.run(cx.clone()).await;
            cx.set_health(match &result {
                Ok(()) => Health::Stopped,
                Err(e) => Health::Failed(e.to_string()),
            });
            drop(guard);
            (name, result)
        }
        .instrument(span),
    );
}

fn source_ended(
    dispatcher: &Dispatcher,
    joined: std::result::Result<(String, Result<()>), tokio::task::JoinError>,
) -> Option<Error> {
    let (name, error) = match joined {
        Ok((name, Ok(()))) => {
            tracing::info!(source = %name, "source finished");
            return None;
        }
        Ok((name, Err(e))) => (name, e),
        Err(e) => (
            "<unknown>".to_owned(),
            Error::TaskFailed(format!("a source task ended abnormally: {e}")),
        ),
    };
    tracing::error!(source = %name, error = %error, "source failed for good");
    let error = Arc::new(error);
    dispatcher.report(Failure::Source(SourceFailure {
        source: name.clone(),
        error: Arc::clone(&error),
        fatal: true,
    }));
    // The listener's result owns the error; the hook got a shared copy.
    Some(Arc::try_unwrap(error).unwrap_or_else(|shared| {
        Error::Source(SourceError::Failed {
            source_name: name,
            message: shared.to_string(),
        })
    }))
}

/// A listener running in the background (from [`Listener::spawn`]).
#[derive(Debug)]
pub struct ListenerHandle {
    stop: CancellationToken,
    task: JoinHandle<Result<Stopped>>,
    board: Arc<HealthBoard>,
    /// How many sources the listener runs (the board holds them all once started).
    sources: usize,
    dispatcher: Dispatcher,
    #[cfg(feature = "admin")]
    admin_addr: Option<std::net::SocketAddr>,
}

impl ListenerHandle {
    /// Stops reading, drains handlers in flight (up to the drain timeout) and returns how
    /// the listener ended.
    pub async fn shutdown(self) -> Result<Stopped> {
        self.stop.cancel();
        self.join().await
    }

    /// Waits until the listener ends by itself (its sources finished or failed).
    pub async fn join(self) -> Result<Stopped> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Error::TaskFailed(e.to_string())),
        }
    }

    /// Whether the listener has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Each source's last reported health.
    pub fn health(&self) -> Vec<SourceHealth> {
        self.board.snapshot()
    }

    /// Whether the listener is ready to receive: every source is connected (a webhook
    /// source: listening; see [`Health::is_ready`]) and shutdown has not begun. What the
    /// admin endpoint's `/readyz` answers.
    pub fn is_ready(&self) -> bool {
        let health = self.board.snapshot();
        // Until the listener's task started them, not every source is on the board.
        !self.dispatcher.is_closed()
            && health.len() == self.sources
            && health.iter().all(|s| s.health.is_ready())
    }

    /// Where the admin endpoint listens, if it is on (see [`ListenerBuilder::admin`]).
    #[cfg(feature = "admin")]
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin_addr
    }

    /// The dispatcher (counters, in-flight runs, injecting events by hand).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }
}
