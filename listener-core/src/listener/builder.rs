//! Building a listener: sources, handlers, state, limits, hooks; or all from the environment.

#[cfg(feature = "admin")]
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::Listener;
use crate::dispatch::DispatchConfig;
use crate::dispatch::{DedupeConfig, Dispatcher};
use crate::env::{parse_var, seconds};
use crate::error::ConfigError;
use crate::error::{Error, Result};
use crate::extract::StateMap;
use crate::filter::Filter;
use crate::handler::Handler;
use crate::layer::{self, Layer};
use crate::registry::{registered_handlers, Registry};
use crate::report::{ErrorHook, Failure};
use crate::source::Source;

/// The default time shutdown waits for handlers in flight.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`Listener`]. Start with [`Listener::builder`] or [`Listener::from_env`].
pub struct ListenerBuilder {
    sources: Vec<Box<dyn Source>>,
    handlers: Vec<Handler>,
    registered: Registered,
    state: StateMap,
    dispatch: DispatchConfig,
    drain_timeout: Duration,
    hook: Option<ErrorHook>,
    layers: layer::Stack,
    /// Where the admin endpoint listens, and the setting that said so (for errors).
    #[cfg(feature = "admin")]
    admin: Option<(SocketAddr, &'static str)>,
    #[cfg(feature = "admin")]
    prometheus: GivenPrometheus,
    #[cfg(feature = "jetstream")]
    jetstream: Option<crate::jetstream::JetStream>,
}

impl Default for ListenerBuilder {
    fn default() -> Self {
        ListenerBuilder {
            sources: Vec::new(),
            handlers: Vec::new(),
            registered: Registered::All,
            state: StateMap::new(),
            dispatch: DispatchConfig::default(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            hook: None,
            layers: layer::Stack::default(),
            #[cfg(feature = "admin")]
            admin: None,
            #[cfg(feature = "admin")]
            prometheus: Default::default(),
            #[cfg(feature = "jetstream")]
            jetstream: None,
        }
    }
}

impl std::fmt::Debug for ListenerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerBuilder")
            .field(
                "sources",
                &self.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("handlers", &self.handlers.len())
            .field("registered", &self.registered)
            .field("dispatch", &self.dispatch)
            .field("drain_timeout", &self.drain_timeout)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl ListenerBuilder {
    /// Adds an event source.
    pub fn source(mut self, source: impl Source) -> Self {
        self.sources.push(Box::new(source));
        self
    }

    /// Adds an already boxed event source.
    pub fn boxed_source(mut self, source: Box<dyn Source>) -> Self {
        self.sources.push(source);
        self
    }

    /// Adds a handler registered by hand (besides the `#[on_trigger]` ones).
    pub fn handler(mut self, handler: Handler) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Leaves out the `#[on_trigger]` handlers linked into the binary: only handlers given
    /// with [`handler`](Self::handler) run. For tests and plugin hosts.
    pub fn without_registered_handlers(mut self) -> Self {
        self.registered = Registered::None;
        self
    }

    /// Keeps only the named `#[on_trigger]` handlers (by full path or by function name):
    /// for tests that exercise some handlers of a binary. Unknown names are an error at
    /// [`build`](Self::build).
    pub fn only_registered<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.registered = Registered::Only(names.into_iter().map(Into::into).collect());
        self
    }

    /// Gives handlers a `State<T>`. One value per type; a later one replaces an earlier one.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Gives handlers a `State<T>` that the caller keeps a handle to as well.
    pub fn shared_state<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.state.insert_arc(value);
        self
    }

    /// At most `n` handler runs at once (default 256). When reached, sources stop reading.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.dispatch.max_in_flight = n;
        self
    }

    /// Drops an event whose id was seen among the last `capacity` ids within `ttl`.
    /// Default: 10,000 ids, 10 minutes.
    pub fn dedupe(mut self, capacity: usize, ttl: Duration) -> Self {
        self.dispatch.dedupe = Some(DedupeConfig { capacity, ttl });
        self
    }

    /// Turns deduplication off: every delivery runs.
    pub fn no_dedupe(mut self) -> Self {
        self.dispatch.dedupe = None;
        self
    }

    /// Reports a handler run longer than `limit` as timed out and frees its slot.
    pub fn handler_timeout(mut self, limit: Duration) -> Self {
        self.dispatch.handler_timeout = Some(limit);
        self
    }

    /// Whether an async handler run starts on the task that received the event and only
    /// becomes a task of its own when it first has to wait (default `true`; see
    /// [`DispatchConfig::eager_start`]). Turn it off if handlers do heavy synchronous work
    /// before their first `.await` and should not delay reading the next event.
    pub fn eager_start(mut self, eager: bool) -> Self {
        self.dispatch.eager_start = eager;
        self
    }

    /// How long shutdown waits for handlers in flight (default 30 s).
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// Wraps every handler run (each attempt) in `layer`; see [`layer`](crate::layer).
    /// Layers nest in the order they are added: the first added is the outermost.
    pub fn layer(mut self, layer: impl Layer) -> Self {
        self.layers.push(None, Arc::new(layer));
        self
    }

    /// Wraps the runs for events matching `filter` in `layer` (the handlers' own filters
    /// still decide which handlers run).
    pub fn layer_for(mut self, filter: Filter, layer: impl Layer) -> Self {
        self.layers.push(Some(filter), Arc::new(layer));
        self
    }

    /// Called for every failed handler run (once per run, after its last attempt) and
    /// every source error.
    pub fn on_error(mut self, hook: impl Fn(&Failure) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Serves the admin endpoint on `addr` (feature `admin`; port 0 picks a free port, see
    /// [`Listener::admin_addr`]): `GET /healthz` (200 while the process serves), `GET
    /// /readyz` (200 when every source is connected — a webhook source: listening —, 503
    /// otherwise and during shutdown, with a JSON body naming each source's health) and,
    /// with the `prometheus` feature, `GET /metrics` (the Prometheus text format). The
    /// address is bound by [`build`](Self::build), which fails with [`Error::Config`] if it
    /// cannot be; the endpoint stops once the listener has drained.
    ///
    /// With the `prometheus` feature, `build` also installs the Prometheus recorder
    /// (`telemetry::install_prometheus`) unless a handle was given with `prometheus_handle`;
    /// if another `metrics` recorder is installed already, `/metrics` answers 404 and a
    /// warning says why. The same as `LISTENER_ADMIN_ADDR`.
    #[cfg(feature = "admin")]
    pub fn admin(mut self, addr: SocketAddr) -> Self {
        self.admin = Some((addr, "admin"));
        self
    }

    /// The Prometheus recorder whose metrics the admin endpoint serves at `/metrics`, for an
    /// application that installed its own (built from
    /// [`telemetry::prometheus_builder`](crate::telemetry::prometheus_builder), say). Without
    /// it, [`build`](Self::build) installs one when the admin endpoint is on.
    #[cfg(all(feature = "admin", feature = "prometheus"))]
    pub fn prometheus_handle(mut self, handle: crate::telemetry::PrometheusHandle) -> Self {
        self.prometheus = Some(handle);
        self
    }

    /// Applies the environment's settings (see [`Listener::from_env`]) through `lookup`.
    pub fn configure_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let set = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let worker_only = jetstream_from_env(&mut self, lookup)?;
        if worker_only {
            tracing::info!("LISTENER_NATS_ROLE=worker: events come from the stream; the source variables are not read");
        } else {
            if let Some(url) = set("LISTENER_WS_URL") {
                self = self.boxed_source(websocket_source(&url)?);
            }
            if set("COMPOSIO_API_KEY").is_some() {
                self = self.boxed_source(composio_source(lookup)?);
            }
            if set("COMPOSIO_WEBHOOK_SECRET").is_some() {
                self = self.boxed_source(webhook_source(lookup)?);
            }
        }
        if let Some(addr) = set("LISTENER_ADMIN_ADDR") {
            self = admin_from_env(self, &addr)?;
        }
        if let Some(n) =
            parse_var::<usize>(lookup, "LISTENER_MAX_IN_FLIGHT", "a positive whole number")?
        {
            self = self.max_in_flight(n);
        }
        if let Some(secs) =
            parse_var::<f64>(lookup, "LISTENER_DRAIN_TIMEOUT_SECS", "a number of seconds")?
        {
            self = self.drain_timeout(seconds("LISTENER_DRAIN_TIMEOUT_SECS", secs)?);
        }
        if let Some(secs) = parse_var::<f64>(
            lookup,
            "LISTENER_HANDLER_TIMEOUT_SECS",
            "a number of seconds",
        )? {
            self = self.handler_timeout(seconds("LISTENER_HANDLER_TIMEOUT_SECS", secs)?);
        }
        let capacity = parse_var::<usize>(lookup, "LISTENER_DEDUPE_CAPACITY", "a whole number")?;
        let ttl = parse_var::<f64>(lookup, "LISTENER_DEDUPE_TTL_SECS", "a number of seconds")?;
        match (capacity, ttl) {
            (Some(0), _) => self = self.no_dedupe(),
            (None, None) => {}
            (capacity, ttl) => {
                let defaults = DedupeConfig::default();
                let ttl = match ttl {
                    Some(secs) => seconds("LISTENER_DEDUPE_TTL_SECS", secs)?,
                    None => defaults.ttl,
                };
                self = self.dedupe(capacity.unwrap_or(defaults.capacity), ttl);
            }
        }
        Ok(self)
    }

    /// The number of sources added so far.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Whether the listener will get events: it has a source, or it is a JetStream worker.
    pub(crate) fn has_events(&self) -> bool {
        #[cfg(feature = "jetstream")]
        if self
            .jetstream
            .as_ref()
            .is_some_and(|js| js.current_role().works())
        {
            return true;
        }
        !self.sources.is_empty()
    }

    /// Runs the listener with NATS JetStream between its sources and its handlers (feature
    /// `jetstream`): as a relay (its sources publish to the stream), a worker (its handlers
    /// take from the stream, no source needed) or both; see [`crate::jetstream`]. Replaces
    /// what `LISTENER_NATS_URL` set.
    #[cfg(feature = "jetstream")]
    pub fn jetstream(mut self, jetstream: crate::jetstream::JetStream) -> Self {
        self.jetstream = Some(jetstream);
        self
    }

    /// The state given so far, for settings kept there by other modules (the `tools`,
    /// `pre_process` and `post_process` methods of `crate::tools`).
    #[cfg_attr(not(feature = "composio-api"), allow(dead_code))]
    pub(crate) fn state_mut(&mut self) -> &mut StateMap {
        &mut self.state
    }

    /// Builds the listener: collects the `#[on_trigger]` handlers, indexes them, and checks
    /// every handler's extractors against the state given (a missing `State<T>` is an
    /// error here, not at the first event).
    pub fn build(self) -> Result<Listener> {
        let mut handlers = match self.registered {
            Registered::All => registered_handlers(),
            Registered::None => Vec::new(),
            Registered::Only(names) => select_registered(&names)?,
        };
        handlers.extend(self.handlers);
        // The recorder first (with `prometheus`, the admin endpoint installs it): the
        // dispatcher takes its handler metrics' handles from the recorder installed then.
        #[cfg(feature = "admin")]
        let admin = match self.admin {
            Some((addr, key)) => {
                let admin = crate::admin::Admin::bind(addr, key)?;
                Some(admin.metrics(metrics_export(self.prometheus)))
            }
            None => None,
        };
        crate::telemetry::describe();
        #[allow(unused_mut)]
        let mut layers = self.layers;
        #[cfg(feature = "jetstream")]
        let stream = match self.jetstream {
            Some(js) => Some(super::streamed::Streamed::new(
                js,
                &self.sources,
                &self.dispatch,
                self.drain_timeout,
                &mut layers,
            )?),
            None => None,
        };
        let relays = {
            #[cfg(feature = "jetstream")]
            {
                stream.as_ref().is_some_and(|s| s.relay.is_some())
            }
            #[cfg(not(feature = "jetstream"))]
            {
                false
            }
        };
        let dispatcher = Dispatcher::new(
            Registry::new(handlers),
            self.state,
            self.dispatch,
            self.hook,
            layers,
        )?;
        if dispatcher.registry().is_empty() && !relays {
            tracing::warn!("the listener has no handlers: events will be received and dropped");
        }
        Ok(Listener {
            sources: self.sources,
            dispatcher,
            drain_timeout: self.drain_timeout,
            #[cfg(feature = "admin")]
            admin,
            #[cfg(feature = "jetstream")]
            stream,
        })
    }
}

/// A Prometheus handle given with `prometheus_handle` (nothing to give without the
/// `prometheus` feature).
#[cfg(all(feature = "admin", feature = "prometheus"))]
type GivenPrometheus = Option<crate::telemetry::PrometheusHandle>;
#[cfg(all(feature = "admin", not(feature = "prometheus")))]
#[derive(Debug, Default)]
struct GivenPrometheus;

/// What the admin endpoint's `/metrics` serves: the given Prometheus handle, else the
/// recorder `install_prometheus` installs (or why there is none).
#[cfg(all(feature = "admin", feature = "prometheus"))]
fn metrics_export(given: GivenPrometheus) -> crate::admin::MetricsExport {
    use crate::admin::MetricsExport;
    match given.map_or_else(crate::telemetry::install_prometheus, Ok) {
        Ok(handle) => MetricsExport::Prometheus(handle),
        Err(e) => {
            tracing::warn!(error = %e, "the admin endpoint's /metrics answers 404; give ListenerBuilder::prometheus_handle the recorder's handle");
            MetricsExport::Unavailable(
                "another metrics recorder is installed; give its Prometheus handle with ListenerBuilder::prometheus_handle\n",
            )
        }
    }
}

#[cfg(all(feature = "admin", not(feature = "prometheus")))]
fn metrics_export(_given: GivenPrometheus) -> crate::admin::MetricsExport {
    crate::admin::MetricsExport::Unavailable(
        "listener-core was built without its `prometheus` feature\n",
    )
}

#[cfg(feature = "admin")]
fn admin_from_env(builder: ListenerBuilder, addr: &str) -> Result<ListenerBuilder> {
    let addr = addr.trim().parse().map_err(|_| {
        ConfigError::new(
            "LISTENER_ADMIN_ADDR",
            format!(
                "`{}` is not an address such as 127.0.0.1:9090",
                crate::preview::truncate_chars(addr, 60)
            ),
        )
    })?;
    let mut builder = builder;
    builder.admin = Some((addr, "LISTENER_ADMIN_ADDR"));
    Ok(builder)
}

#[cfg(not(feature = "admin"))]
fn admin_from_env(_builder: ListenerBuilder, _addr: &str) -> Result<ListenerBuilder> {
    Err(not_compiled("LISTENER_ADMIN_ADDR", "admin"))
}

/// Which `#[on_trigger]` handlers a listener includes.
#[derive(Debug, Clone)]
enum Registered {
    All,
    None,
    Only(Vec<String>),
}

fn select_registered(names: &[String]) -> Result<Vec<Handler>> {
    let all = registered_handlers();
    let named = |h: &Handler, n: &str| h.name() == n || h.name().rsplit("::").next() == Some(n);
    if let Some(missing) = names.iter().find(|n| !all.iter().any(|h| named(h, n))) {
        return Err(Error::Config(ConfigError {
            key: "only_registered".into(),
            message: format!("no #[on_trigger] handler is named `{missing}`"),
        }));
    }
    Ok(all
        .into_iter()
        .filter(|h| names.iter().any(|n| named(h, n)))
        .collect())
}

/// The error for a variable whose source this build does not have.
#[allow(dead_code)] // unused when every source feature is on
fn not_compiled(key: &str, feature: &str) -> Error {
    ConfigError::new(
        key,
        format!("is set, but listener-core was built without its `{feature}` feature"),
    )
    .into()
}

/// Reads `LISTENER_NATS_*` into the builder; whether the process is a worker only.
#[cfg(feature = "jetstream")]
fn jetstream_from_env(
    builder: &mut ListenerBuilder,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<bool> {
    match crate::jetstream::JetStream::from_lookup(lookup)? {
        Some(js) => {
            let worker_only = js.current_role() == crate::jetstream::Role::Worker;
            builder.jetstream = Some(js);
            Ok(worker_only)
        }
        None => Ok(false),
    }
}

#[cfg(not(feature = "jetstream"))]
fn jetstream_from_env(
    _builder: &mut ListenerBuilder,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<bool> {
    match lookup("LISTENER_NATS_URL").filter(|v| !v.trim().is_empty()) {
        Some(_) => Err(not_compiled("LISTENER_NATS_URL", "jetstream")),
        None => Ok(false),
    }
}

#[cfg(feature = "websocket")]
fn websocket_source(url: &str) -> Result<Box<dyn Source>> {
    let source =
        crate::source::websocket::WebSocketSource::new(url.trim()).map_err(|e| match e {
            Error::Config(ConfigError { message, .. }) => {
                ConfigError::new("LISTENER_WS_URL", message).into()
            }
            other => other,
        })?;
    Ok(Box::new(source))
}

#[cfg(not(feature = "websocket"))]
fn websocket_source(_url: &str) -> Result<Box<dyn Source>> {
    Err(not_compiled("LISTENER_WS_URL", "websocket"))
}

#[cfg(feature = "realtime")]
fn composio_source(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Box<dyn Source>> {
    Ok(Box::new(
        crate::source::composio::ComposioSource::from_lookup(lookup)?,
    ))
}

#[cfg(not(feature = "realtime"))]
fn composio_source(_lookup: &dyn Fn(&str) -> Option<String>) -> Result<Box<dyn Source>> {
    Err(not_compiled("COMPOSIO_API_KEY", "realtime"))
}

#[cfg(feature = "webhook-server")]
fn webhook_source(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Box<dyn Source>> {
    Ok(Box::new(crate::webhook::WebhookSource::from_lookup(
        lookup,
    )?))
}

#[cfg(not(feature = "webhook-server"))]
fn webhook_source(_lookup: &dyn Fn(&str) -> Option<String>) -> Result<Box<dyn Source>> {
    Err(not_compiled("COMPOSIO_WEBHOOK_SECRET", "webhook-server"))
}
