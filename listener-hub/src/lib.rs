//! A local hub speaking the same protocol as Composio's service, for developing and testing
//! trigger handlers offline: Composio's realtime endpoints (credentials, channel auth), a
//! Pusher-protocol websocket endpoint, an ingest API (`POST /hub/events`: one JSON event, or
//! many as `application/x-ndjson`) that fans events out to every subscriber, webhook
//! subscriptions delivering signed POSTs, Composio's tool execution endpoint
//! (`POST /api/v3.1/tools/execute/{tool_slug}`), which runs nothing but records every call
//! ([`RunningHub::tool_calls`], `GET /hub/tool-calls`) and answers as the tool would, and
//! Composio's triggers API: trigger types from a [`catalog`] (bundled, plus
//! [`HubConfig::catalog_files`]), trigger instances whose configuration is validated against
//! the type's schema ([`trigger_instances`]; disabling one publishes
//! `composio.trigger.disabled`), and webhook endpoints. A published trigger message carries
//! the id of the active instance it matches; a strict hub ([`HubConfig::strict_triggers`])
//! refuses one that matches none. A [`ComposioSource`] pointed at it runs exactly the
//! production code path, and so does a [`ComposioClient`] (the `Tools` extractor's, and the
//! trigger management calls) from [`RunningHub::composio_client`].
//!
//! Every event it publishes goes into a bounded event log with where it went
//! ([`HubConfig::event_log`]; `GET /hub/events`, `GET /hub/events/{id}`,
//! `POST /hub/events/{id}/resend`, [`RunningHub::events`]), and a dashboard at `/hub/ui`
//! shows it live with the subscriptions, connected listeners and trigger instances.
//!
//! ```no_run
//! use listener_hub::Hub;
//! use listener_core::prelude::*;
//! # async fn run() -> anyhow::Result<()> {
//! let hub = Hub::builder().start().await?;
//! let handle = Listener::builder().source(hub.composio_source()).build()?.spawn();
//! hub.publish_payload("SLACK_RECEIVE_MESSAGE", serde_json::json!({"text": "hi"}))?;
//! # handle.shutdown().await?; hub.shutdown().await;
//! # Ok(()) }
//! ```

mod answers;
pub mod catalog;
mod connections;
mod dashboard;
mod event_log;
mod fanout;
mod ids;
mod ingest;
mod pusher_server;
mod realtime_api;
mod subscriptions;
mod subscriptions_api;
mod tools_api;
pub mod trigger_instances;
mod triggers_api;
mod webhook_endpoints;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use connections::ListenerConnection;
pub use dashboard::{FEED_CAPACITY, MAX_FEED_CLIENTS};
pub use event_log::{
    EventLogConfig, EventRecord, EventSend, EventStatus, EventSummary, RealtimeDelivery,
    ResendError, Resent, WebhookCounts, DEFAULT_EVENT_LOG, DEFAULT_EVENT_LOG_BYTES,
    MAX_ATTEMPTS_KEPT, MAX_RECIPIENTS_KEPT, MAX_SENDS_KEPT,
};
pub use ingest::{BareEvent, Published};

/// What the fuzz targets (`fuzz/` in the repository) drive directly. Compiled only with the
/// `fuzzing` feature; not a public API: unstable, it changes without notice.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    /// The NDJSON ingest of `POST /hub/events` without the publishing: each non-blank line
    /// prepared as `(text sent, event id, event type)`, or the first bad line's error.
    pub fn prepare_ndjson(body: &[u8]) -> Result<Vec<(String, String, String)>, String> {
        let triggers = crate::trigger_instances::TriggerInstances::new(0, false);
        crate::ingest::prepare_ndjson(body, &triggers).map_err(|(_, message)| message)
    }

    /// How the hub cuts an event longer than its chunk size into chunk texts.
    pub fn split(body: &str, size: usize) -> Vec<&str> {
        crate::ingest::split(body, size)
    }
}
pub use subscriptions::{
    DeliveryAttempt, DeliveryConfig, SubscriptionRecord, ANSWER_PREVIEW_CHARS,
    MAX_RECEIVER_ANSWER_BYTES,
};
pub use tools_api::{ToolCallRecord, DEFAULT_TOOL_CALL_LOG};
pub use trigger_instances::{TriggerInstanceRecord, DEFAULT_MAX_TRIGGER_INSTANCES};
pub use webhook_endpoints::{WebhookEndpointRecord, MAX_WEBHOOK_ENDPOINTS};

use listener_core::composio_api::{ApiResult, ComposioClient};

use listener_core::source::composio::ComposioSource;
use listener_core::source::pusher::protocol::{
    channel_event, CHUNKED_TRIGGER_EVENT, TRIGGER_EVENT,
};
use listener_core::ConfigError;
use listener_core::{Error, Result};

/// Hub settings. Defaults suit a local hub: loopback, an ephemeral port, fixed dev
/// credentials printed at start.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where to listen (default `127.0.0.1:0`, an ephemeral port).
    pub addr: SocketAddr,
    /// The API key clients must send as `x-api-key` (default `hub_local_key`).
    pub api_key: String,
    /// The project id; the channel is `private-{project_id}_triggers` (default `pr_local`).
    pub project_id: String,
    /// The Pusher app key (default `hub-app-key`).
    pub app_key: String,
    /// The Pusher app secret used to sign and check channel auth (default: random).
    pub app_secret: String,
    /// The cluster announced by the credentials endpoint (default `local`).
    pub cluster: String,
    /// Events whose envelope is longer are sent as `chunked-trigger_to_client` pieces of
    /// at most this many bytes (default 10 KiB, Pusher's message limit).
    pub chunk_size: usize,
    /// Most websocket connections at once (default 1,024).
    pub max_connections: usize,
    /// Frames queued per connection before it is disconnected as too slow (default 1,024).
    pub subscriber_queue: usize,
    /// Largest websocket frame accepted from a client (default 1 MiB).
    pub max_frame_bytes: usize,
    /// Largest request body accepted, NDJSON batches included (default 16 MiB).
    pub max_body_bytes: usize,
    /// Webhook delivery: attempts, back-off, timeout, queue and log sizes.
    pub delivery: DeliveryConfig,
    /// Tool calls kept in the tool-call log (`GET /hub/tool-calls`,
    /// [`RunningHub::tool_calls`]); the oldest is dropped when a new one arrives at the
    /// bound; 0 keeps none (watchers still see every call). Default
    /// [`DEFAULT_TOOL_CALL_LOG`] (1,000). Each entry keeps the call's arguments, so the log
    /// holds at most this many request bodies of at most [`max_body_bytes`](Self::max_body_bytes).
    pub tool_call_log: usize,
    /// Bounds of the event log (`GET /hub/events`, the dashboard): 1,000 events and 64 MiB
    /// by default, the oldest dropped first.
    pub event_log: EventLogConfig,
    /// Files of trigger types served besides the bundled ones (see [`catalog`] for their
    /// shape); a file's type replaces a bundled one of the same slug. Read at
    /// [`Hub::start`], which fails naming the file and the entry when one is unreadable or
    /// invalid. Default: none.
    pub catalog_files: Vec<PathBuf>,
    /// Most trigger instances kept (default [`DEFAULT_MAX_TRIGGER_INSTANCES`], 10,000): an
    /// upsert that would create one more is answered 409 until some are deleted.
    pub max_trigger_instances: usize,
    /// Strict mode: a trigger message that matches no enabled trigger instance (see
    /// [`trigger_instances`]) is refused instead of published: `POST /hub/events` answers
    /// 409, [`RunningHub::publish`] and its kin return an error whose [`ConfigError`] key is
    /// [`trigger_instances::NOT_ACTIVE`]. Lifecycle and admin events are never refused.
    /// Default `false`: such an event is published as it is.
    pub strict_triggers: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: "hub_local_key".into(),
            project_id: "pr_local".into(),
            app_key: "hub-app-key".into(),
            app_secret: ids::fresh("hubsecret_"),
            cluster: "local".into(),
            chunk_size: 10 * 1024,
            max_connections: 1024,
            subscriber_queue: 1024,
            max_frame_bytes: 1 << 20,
            max_body_bytes: 16 << 20,
            delivery: DeliveryConfig::default(),
            tool_call_log: DEFAULT_TOOL_CALL_LOG,
            event_log: EventLogConfig::default(),
            catalog_files: Vec::new(),
            max_trigger_instances: DEFAULT_MAX_TRIGGER_INSTANCES,
            strict_triggers: false,
        }
    }
}

/// Builds and starts a [`RunningHub`].
#[derive(Debug, Clone, Default)]
pub struct Hub {
    config: HubConfig,
}

pub(crate) struct HubState {
    pub(crate) config: HubConfig,
    pub(crate) channels: fanout::Channels,
    pub(crate) connections: AtomicUsize,
    pub(crate) next_connection: AtomicU64,
    pub(crate) shutdown: CancellationToken,
    pub(crate) webhooks: subscriptions::Webhooks,
    pub(crate) tool_calls: tools_api::ToolCalls,
    pub(crate) events: Arc<event_log::EventLog>,
    pub(crate) listeners: connections::Connections,
    pub(crate) feed: dashboard::Feed,
    pub(crate) triggers: triggers_api::Triggers,
    /// `private-{project_id}_triggers`, fixed at start.
    channel: String,
}

/// Signs a delivery Composio's way: the whole secret string's bytes are the key.
fn sign_delivery(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    listener_core::webhook::sign(
        &listener_core::webhook::WebhookSecret::composio(secret),
        id,
        timestamp,
        body.as_bytes(),
    )
}

impl HubState {
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// Publishes an already parsed envelope or bare event, serializing it once.
    pub(crate) fn publish_value(&self, event: Value) -> Result<Published> {
        let (text, id, event_type) = ingest::prepare_value(event, None, &self.triggers.instances)?;
        Ok(self.publish_envelope(text, id, event_type))
    }

    /// Publishes an ingest body (an envelope or a bare event).
    pub(crate) fn publish_bytes(&self, body: &[u8]) -> Result<Published> {
        let (text, id, event_type) = ingest::prepare(body, &self.triggers.instances)?;
        Ok(self.publish_envelope(text, id, event_type))
    }

    pub(crate) fn publish_envelope(
        &self,
        text: String,
        id: String,
        event_type: String,
    ) -> Published {
        self.publish_as(text, id, event_type, &event_log::Origin::New)
    }

    /// Publishes an envelope and records it in the event log as `origin` says.
    pub(crate) fn publish_as(
        &self,
        text: String,
        id: String,
        event_type: String,
        origin: &event_log::Origin,
    ) -> Published {
        let channel = self.channel();
        let frames: Vec<Utf8Bytes> = if text.len() <= self.config.chunk_size {
            vec![channel_event(channel, TRIGGER_EVENT, &text).into()]
        } else {
            let chunk_id = ids::fresh("chk_");
            let pieces = ingest::split(&text, self.config.chunk_size);
            let last = pieces.len() - 1;
            pieces
                .iter()
                .enumerate()
                .map(|(index, piece)| {
                    let data = json!({"id": chunk_id, "index": index, "chunk": piece, "final": index == last});
                    channel_event(channel, CHUNKED_TRIGGER_EVENT, &data.to_string()).into()
                })
                .collect()
        };
        let recipients = self.channels.publish(channel, &frames);
        let subscribers = recipients.len();
        let log_ref = self
            .events
            .record(&text, &id, &event_type, origin, &recipients);
        let webhooks = self.webhooks.enqueue(&id, &event_type, &text, log_ref);
        tracing::debug!(event_id = %id, %event_type, subscribers, webhooks, frames = frames.len(), "hub: event published");
        Published {
            id,
            event_type,
            subscribers,
            frames: frames.len(),
            webhooks,
        }
    }
}

impl Hub {
    /// A hub with default settings.
    pub fn builder() -> Self {
        Hub::default()
    }

    /// A hub with these settings.
    pub fn with_config(config: HubConfig) -> Self {
        Hub { config }
    }

    /// Listens on `addr` (default `127.0.0.1:0`).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.config.addr = addr;
        self
    }

    /// The API key clients must send (default `hub_local_key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_key = key.into();
        self
    }

    /// Events longer than this are chunked (default 10 KiB).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.config.chunk_size = bytes.max(16);
        self
    }

    /// Largest request body accepted (default 16 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// Webhook delivery settings.
    pub fn delivery(mut self, delivery: DeliveryConfig) -> Self {
        self.config.delivery = delivery;
        self
    }

    /// Frames queued per connection before it is dropped as too slow (default 1,024).
    pub fn subscriber_queue(mut self, frames: usize) -> Self {
        self.config.subscriber_queue = frames.max(1);
        self
    }

    /// Tool calls kept in the tool-call log (default 1,000; 0 keeps none).
    pub fn tool_call_log(mut self, calls: usize) -> Self {
        self.config.tool_call_log = calls;
        self
    }

    /// Bounds of the event log (default 1,000 events, 64 MiB).
    pub fn event_log(mut self, bounds: EventLogConfig) -> Self {
        self.config.event_log = bounds;
        self
    }

    /// Also serves the trigger types of this file ([`HubConfig::catalog_files`]).
    pub fn catalog_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.catalog_files.push(path.into());
        self
    }

    /// Most trigger instances kept (default 10,000).
    pub fn max_trigger_instances(mut self, instances: usize) -> Self {
        self.config.max_trigger_instances = instances;
        self
    }

    /// Refuses trigger messages that match no enabled trigger instance
    /// ([`HubConfig::strict_triggers`]).
    pub fn strict_triggers(mut self, strict: bool) -> Self {
        self.config.strict_triggers = strict;
        self
    }

    /// Binds and starts serving in the background.
    pub async fn start(self) -> Result<RunningHub> {
        let config = self.config;
        if config.project_id.is_empty()
            || !config
                .project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::Config(ConfigError {
                key: "hub project id".into(),
                message: "letters, digits, `_` and `-` only".into(),
            }));
        }
        let catalog = catalog::Catalog::load(&config.catalog_files)
            .map_err(|e| Error::Config(ConfigError::new("hub catalog", e.to_string())))?;
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let feed = dashboard::Feed::new(dashboard::FEED_CAPACITY);
        let events = Arc::new(event_log::EventLog::new(config.event_log, feed.clone()));
        let observer: subscriptions::Observer = {
            let events = Arc::clone(&events);
            Arc::new(move |log_ref, attempt| events.attempt(log_ref, attempt))
        };
        let webhooks = subscriptions::Webhooks::new(
            config.delivery,
            sign_delivery,
            observer,
            shutdown.clone(),
        )?;
        let channel = format!("private-{}_triggers", config.project_id);
        let tool_calls = tools_api::ToolCalls::new(config.tool_call_log);
        let triggers = triggers_api::Triggers {
            catalog,
            instances: trigger_instances::TriggerInstances::new(
                config.max_trigger_instances,
                config.strict_triggers,
            ),
            endpoints: webhook_endpoints::Endpoints::default(),
            base_url: format!("http://{addr}"),
        };
        let state = Arc::new(HubState {
            channel,
            tool_calls,
            events,
            listeners: connections::Connections::new(feed.clone()),
            feed,
            triggers,
            config,
            channels: fanout::Channels::default(),
            connections: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
            shutdown,
            webhooks,
        });
        let app = router(Arc::clone(&state));
        let stop = state.shutdown.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "hub server stopped");
            }
        });
        tracing::info!(%addr, "hub listening");
        Ok(RunningHub { state, addr, task })
    }
}

fn router(state: Arc<HubState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/app/{key}", get(pusher_server::upgrade))
        .route(
            "/api/v3/internal/sdk/realtime/credentials",
            get(realtime_api::credentials),
        )
        .route(
            "/api/v3/internal/sdk/realtime/auth",
            post(realtime_api::auth),
        )
        .route("/hub/events", post(ingest::ingest))
        .route("/hub/deliveries", get(subscriptions_api::deliveries))
        .route(
            "/api/v3.1/webhook_subscriptions",
            post(subscriptions_api::create).get(subscriptions_api::list),
        )
        .route(
            "/api/v3.1/webhook_subscriptions/event_types",
            get(subscriptions_api::event_types),
        )
        .route(
            "/api/v3.1/webhook_subscriptions/{id}",
            get(subscriptions_api::get)
                .patch(subscriptions_api::update)
                .delete(subscriptions_api::delete),
        )
        .route(
            "/api/v3.1/webhook_subscriptions/{id}/rotate_secret",
            post(subscriptions_api::rotate_secret),
        )
        .route(
            "/api/v3.1/tools/execute/{tool_slug}",
            post(tools_api::execute),
        )
        .route("/hub/tool-calls", get(tools_api::list))
        .merge(triggers_api::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/hub/status", get(status))
        .merge(event_log::routes())
        .merge(dashboard::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// `GET /hub/status`: connections and trigger-channel subscribers right now.
async fn status(
    axum::extract::State(hub): axum::extract::State<Arc<HubState>>,
) -> axum::Json<Value> {
    axum::Json(json!({
        "connections": hub.connections.load(std::sync::atomic::Ordering::SeqCst),
        "subscribers": hub.channels.subscriber_count(hub.channel()),
        "channel": hub.channel(),
    }))
}

/// A hub serving in the background. Dropping it does not stop it; call
/// [`shutdown`](Self::shutdown).
pub struct RunningHub {
    state: Arc<HubState>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RunningHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningHub")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningHub {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`: the base URL for `COMPOSIO_BASE_URL` and the ingest API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API key clients must send.
    pub fn api_key(&self) -> &str {
        &self.state.config.api_key
    }

    /// The Pusher app key.
    pub fn app_key(&self) -> &str {
        &self.state.config.app_key
    }

    /// The Pusher app secret (to sign channel auth yourself, or point a Pusher client at it).
    pub fn app_secret(&self) -> &str {
        &self.state.config.app_secret
    }

    /// The trigger channel, `private-{project_id}_triggers`.
    pub fn channel(&self) -> String {
        self.state.channel().to_owned()
    }

    /// The environment a listener needs to use this hub through `Listener::from_env`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("COMPOSIO_API_KEY", self.api_key().to_owned()),
            ("COMPOSIO_BASE_URL", self.base_url()),
            ("COMPOSIO_PUSHER_HOST", self.addr.ip().to_string()),
            ("COMPOSIO_PUSHER_PORT", self.addr.port().to_string()),
            ("COMPOSIO_PUSHER_TLS", "false".to_owned()),
        ]
    }

    /// A [`ComposioSource`] configured for this hub.
    pub fn composio_source(&self) -> ComposioSource {
        ComposioSource::new(self.api_key())
            .base_url(self.base_url())
            .expect("an http:// URL")
            .pusher_host(self.addr.ip().to_string())
            .pusher_port(self.addr.port())
            .pusher_tls(false)
    }

    /// Websocket subscribers of the trigger channel right now.
    pub fn subscribers(&self) -> usize {
        self.state.channels.subscriber_count(self.state.channel())
    }

    /// Publishes an envelope (any version) or a bare event `{trigger_slug, payload, …}`.
    pub fn publish(&self, event: &Value) -> Result<Published> {
        self.state.publish_value(event.clone())
    }

    /// Publishes raw bytes, as `POST /hub/events` does.
    pub fn publish_bytes(&self, body: &[u8]) -> Result<Published> {
        self.state.publish_bytes(body)
    }

    /// Wraps `payload` into a fresh V3 trigger message for `trigger_slug` and publishes it,
    /// with the ids of the active trigger instance of that slug when there is one (a
    /// strict hub refuses it when there is none).
    pub fn publish_payload(&self, trigger_slug: &str, payload: Value) -> Result<Published> {
        let bare = BareEvent {
            trigger_slug: trigger_slug.to_owned(),
            payload,
            ..BareEvent::default()
        };
        let (text, id, event_type) = ingest::prepare_bare(bare, &self.state.triggers.instances)?;
        Ok(self.state.publish_envelope(text, id, event_type))
    }

    /// Creates a webhook subscription (as `POST /api/v3.1/webhook_subscriptions` does);
    /// `enabled_events` defaults to trigger messages.
    pub fn subscribe_webhook(
        &self,
        url: &str,
        enabled_events: Option<Vec<String>>,
    ) -> SubscriptionRecord {
        let events =
            enabled_events.unwrap_or_else(|| vec![listener_core::V3_TRIGGER_MESSAGE.to_owned()]);
        self.state.webhooks.create(url.to_owned(), events)
    }

    /// The delivery log (oldest first), as `GET /hub/deliveries` returns it.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.state.webhooks.log()
    }

    /// The event log's entries (oldest first); `GET /hub/events` filters them, newest first.
    pub fn events(&self) -> Vec<EventSummary> {
        self.state.events.all()
    }

    /// One entry of the event log with its sends and deliveries, as `GET /hub/events/{id}`
    /// returns it.
    pub fn event(&self, id: &str) -> Option<EventRecord> {
        self.state.events.get(id)
    }

    /// Publishes the event log's entry `id` again, as `POST /hub/events/{id}/resend` does:
    /// with the same id (a second send of the entry, which listeners drop as a duplicate),
    /// or with a fresh one (a new entry, which runs).
    pub fn resend(&self, id: &str, fresh: bool) -> std::result::Result<Resent, ResendError> {
        self.state.resend(id, fresh)
    }

    /// The open websocket connections (oldest first), as `GET /hub/connections` returns them.
    pub fn connections(&self) -> Vec<ListenerConnection> {
        self.state.listeners.list()
    }

    /// The dashboard's URL, `http://ADDR/hub/ui`.
    pub fn dashboard_url(&self) -> String {
        format!("{}/hub/ui", self.base_url())
    }

    /// The tool-call log (oldest first), as `GET /hub/tool-calls` returns it.
    pub fn tool_calls(&self) -> Vec<ToolCallRecord> {
        self.state.tool_calls.list()
    }

    /// Every tool call the hub records from now on, as it is recorded (to wait for one in a
    /// test without polling). A receiver more than 256 calls behind misses the oldest
    /// (`RecvError::Lagged`); the log keeps them.
    pub fn watch_tool_calls(&self) -> tokio::sync::broadcast::Receiver<ToolCallRecord> {
        self.state.tool_calls.watch()
    }

    /// The hub's trigger instances, oldest first, disabled ones included.
    pub fn trigger_instances(&self) -> Vec<TriggerInstanceRecord> {
        self.state.triggers.instances.all()
    }

    /// The trigger types the hub serves (bundled and loaded), by slug, as
    /// `GET /api/v3.1/triggers_types/{slug}` answers them.
    pub fn trigger_types(&self) -> Vec<Value> {
        self.state
            .triggers
            .catalog
            .iter()
            .map(|e| e.answer.clone())
            .collect()
    }

    /// The hub's webhook endpoints (`POST /api/v3/webhook_endpoints`), oldest first.
    pub fn webhook_endpoints(&self) -> Vec<WebhookEndpointRecord> {
        self.state.triggers.endpoints.all()
    }

    /// A management API client for this hub (its base URL and API key): tool executions
    /// through it (the `Tools` extractor's, given with `ListenerBuilder::tools`) are
    /// recorded by the hub.
    pub fn composio_client(&self) -> ApiResult<ComposioClient> {
        ComposioClient::builder(self.api_key())
            .base_url(self.base_url())
            .build()
    }

    /// Stops serving: websocket clients are closed, the server finishes in-flight requests.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        let _ = self.task.await;
    }
}
