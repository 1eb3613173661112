//! A listener with NATS JetStream between its sources and its handlers: the relay its
//! sources feed, the worker that feeds its dispatcher (feature `jetstream`).

use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::DispatchConfig;
use crate::error::{ConfigError, Result};
use crate::jetstream::{CompletionLayer, Completions, JetStream, Relay, Role, Worker};
use crate::layer;
use crate::source::Source;

/// What [`ListenerBuilder::jetstream`](super::ListenerBuilder::jetstream) adds.
pub(crate) struct Streamed {
    /// Present for the roles that relay.
    pub(crate) relay: Option<Arc<Relay>>,
    /// Present for the roles that work.
    worker: Option<Worker>,
}

impl Streamed {
    /// Checks `js` against the rest of the listener's settings and builds what its role
    /// needs; a worker's completion records go outside every other layer.
    pub(crate) fn new(
        mut js: JetStream,
        sources: &[Box<dyn Source>],
        dispatch: &DispatchConfig,
        drain_timeout: Duration,
        layers: &mut layer::Stack,
    ) -> Result<Self> {
        js.validate()?;
        if js.current_role() == Role::Worker && !sources.is_empty() {
            let names: Vec<String> = sources.iter().map(|s| s.name()).collect();
            return Err(ConfigError::new(
                "LISTENER_NATS_ROLE",
                format!(
                    "a worker takes its events from the stream, yet it has sources ({}): remove them or use the role `both`",
                    names.join(", ")
                ),
            )
            .into());
        }
        if js.current_role() == Role::Relay && sources.is_empty() {
            return Err(ConfigError::new(
                "LISTENER_NATS_ROLE",
                "a relay publishes what its sources receive, and it has none: add a source or use the role `worker`",
            )
            .into());
        }
        // The stream must remember an id at least as long as the listener would.
        if let Some(dedupe) = &dispatch.dedupe {
            if js.stream.duplicate_window < dedupe.ttl {
                js.stream.duplicate_window = dedupe.ttl.min(js.stream.max_age);
            }
        }
        let js = Arc::new(js);
        let worker = js.current_role().works().then(|| {
            let completions = Arc::new(Completions::default());
            layers.push_front(None, Arc::new(CompletionLayer(Arc::clone(&completions))));
            let drain = js.worker.drain.unwrap_or_else(|| {
                drain_timeout
                    .saturating_sub(Duration::from_secs(1))
                    .max(drain_timeout / 2)
            });
            let in_flight = js.worker.max_in_flight.unwrap_or(dispatch.max_in_flight);
            Worker::new(
                Arc::clone(&js),
                completions,
                in_flight,
                drain,
                dispatch.eager_start,
            )
        });
        let relay = js
            .current_role()
            .relays()
            .then(|| Relay::new(Arc::clone(&js)));
        Ok(Streamed { relay, worker })
    }

    /// How many sources [`into_sources`](Self::into_sources) gives.
    pub(crate) fn source_count(&self) -> usize {
        usize::from(self.relay.is_some()) + usize::from(self.worker.is_some())
    }

    /// The relay's publisher and the worker, as sources of the listener.
    pub(crate) fn into_sources(self) -> Vec<Box<dyn Source>> {
        let mut sources: Vec<Box<dyn Source>> = Vec::new();
        if let Some(relay) = &self.relay {
            sources.push(relay.publisher());
        }
        if let Some(worker) = self.worker {
            sources.push(Box::new(worker));
        }
        sources
    }
}
