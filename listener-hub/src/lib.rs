//! A local hub speaking the same protocol as Composio's service, for developing and testing
//! trigger handlers offline: Composio's realtime endpoints (credentials, channel auth), a
//! Pusher-protocol websocket endpoint, an ingest API (`POST /hub/events`: one JSON event, or
//! many as `application/x-ndjson`) that fans events out to every subscriber, and webhook
//! subscriptions delivering signed POSTs. A [`ComposioSource`] pointed at it runs exactly the production code path.
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

mod fanout;
mod ids;
mod ingest;
mod pusher_server;
mod realtime_api;
mod subscriptions;
mod subscriptions_api;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use ingest::{BareEvent, Published};

/// What the fuzz targets (`fuzz/` in the repository) drive directly. Compiled only with the
/// `fuzzing` feature; not a public API: unstable, it changes without notice.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    /// The NDJSON ingest of `POST /hub/events` without the publishing: each non-blank line
    /// prepared as `(text sent, event id, event type)`, or the first bad line's error.
    pub fn prepare_ndjson(body: &[u8]) -> Result<Vec<(String, String, String)>, String> {
        crate::ingest::prepare_ndjson(body)
    }

    /// How the hub cuts an event longer than its chunk size into chunk texts.
    pub fn split(body: &str, size: usize) -> Vec<&str> {
        crate::ingest::split(body, size)
    }
}
pub use subscriptions::{
    DeliveryAttempt, DeliveryConfig, SubscriptionRecord, MAX_RECEIVER_ANSWER_BYTES,
};

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
        let (text, id, event_type) = ingest::prepare_value(event, None)?;
        Ok(self.publish_envelope(text, id, event_type))
    }

    /// Publishes an ingest body (an envelope or a bare event).
    pub(crate) fn publish_bytes(&self, body: &[u8]) -> Result<Published> {
        let (text, id, event_type) = ingest::prepare(body)?;
        Ok(self.publish_envelope(text, id, event_type))
    }

    pub(crate) fn publish_envelope(
        &self,
        text: String,
        id: String,
        event_type: String,
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
        let subscribers = self.channels.publish(channel, &frames);
        let webhooks = self.webhooks.enqueue(&id, &event_type, &text);
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
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let webhooks =
            subscriptions::Webhooks::new(config.delivery, sign_delivery, shutdown.clone())?;
        let channel = format!("private-{}_triggers", config.project_id);
        let state = Arc::new(HubState {
            channel,
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
        .route("/healthz", get(|| async { "ok" }))
        .route("/hub/status", get(status))
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

    /// Wraps `payload` into a fresh V3 trigger message for `trigger_slug` and publishes it.
    pub fn publish_payload(&self, trigger_slug: &str, payload: Value) -> Result<Published> {
        let envelope = BareEvent {
            trigger_slug: trigger_slug.to_owned(),
            payload,
            ..BareEvent::default()
        }
        .into_envelope();
        self.state.publish_value(envelope)
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

    /// Stops serving: websocket clients are closed, the server finishes in-flight requests.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        let _ = self.task.await;
    }
}
