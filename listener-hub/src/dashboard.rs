//! The hub's dashboard: one page (`GET /hub/ui`, `/` redirects there) with its script and
//! style embedded in the binary, the live feed it listens to (`GET /hub/stream`,
//! server-sent events), and the read-only views it shows besides the event log:
//! `GET /hub/connections` (connected listeners) and `GET /hub/subscriptions` (webhook
//! subscriptions with their secrets' prefixes only).
//!
//! The page escapes everything it shows (it only ever sets text, never markup, from data)
//! and is served with a content security policy allowing its own script and style only.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::realtime_api::api_error;
use super::HubState;

/// Items the live feed holds for its slowest client; a client further behind is
/// disconnected (its browser reconnects and reloads the lists).
pub const FEED_CAPACITY: usize = 1024;

/// Live-feed clients served at once; more are answered 503.
pub const MAX_FEED_CLIENTS: usize = 64;

/// Characters of a subscription secret shown (`whsec_1234…`).
const SECRET_PREFIX_CHARS: usize = 10;

const INDEX_HTML: &str = include_str!("../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../assets/dashboard/app.js");
const APP_CSS: &str = include_str!("../assets/dashboard/app.css");

/// The page's content security policy: its own script, style and API, nothing inline.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One item of the live feed: an SSE event name and its JSON data.
#[derive(Debug, Clone)]
pub(crate) struct FeedItem {
    kind: &'static str,
    data: Arc<str>,
}

/// The live feed: what changed in the hub, for the dashboard. Items are built only while
/// someone listens.
#[derive(Clone)]
pub(crate) struct Feed {
    tx: broadcast::Sender<FeedItem>,
    clients: Arc<AtomicUsize>,
}

impl Feed {
    pub(crate) fn new(capacity: usize) -> Self {
        Feed {
            tx: broadcast::channel(capacity.max(1)).0,
            clients: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether a client listens.
    pub(crate) fn listening(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Announces a change of `kind`; `data` is only called when a client listens.
    pub(crate) fn send(&self, kind: &'static str, data: impl FnOnce() -> String) {
        if self.listening() {
            let _ = self.tx.send(FeedItem {
                kind,
                data: Arc::from(data()),
            });
        }
    }
}

/// The dashboard's routes.
pub(crate) fn routes() -> Router<Arc<HubState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/hub/ui") }))
        .route(
            "/hub/ui",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/hub/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/hub/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/hub/ui/config", get(config))
        .route("/hub/stream", get(stream))
        .route("/hub/connections", get(connections))
        .route("/hub/subscriptions", get(subscriptions))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static(CSP),
            ),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /hub/ui/config`: what the page needs to call the management API (the hub's own,
/// local API key) and to label itself.
async fn config(State(hub): State<Arc<HubState>>) -> Json<Value> {
    Json(json!({
        "api_key": hub.config.api_key,
        "project_id": hub.config.project_id,
        "channel": hub.channel(),
        "event_log_capacity": hub.config.event_log.capacity,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /hub/connections`: the open websocket connections, oldest first.
async fn connections(State(hub): State<Arc<HubState>>) -> Json<Value> {
    Json(json!({"items": hub.listeners.list()}))
}

/// `GET /hub/subscriptions`: the webhook subscriptions, each secret cut to its prefix.
async fn subscriptions(State(hub): State<Arc<HubState>>) -> Json<Value> {
    let items: Vec<Value> = hub
        .webhooks
        .list()
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "webhook_url": s.webhook_url,
                "version": s.version,
                "enabled_events": s.enabled_events,
                "secret_prefix": secret_prefix(&s.secret),
                "created_at": s.created_at,
                "updated_at": s.updated_at,
            })
        })
        .collect();
    Json(json!({"items": items}))
}

/// The first characters of a secret, marked as cut: never the whole secret.
fn secret_prefix(secret: &str) -> String {
    let count = secret.chars().count();
    // A short secret shows at most half of itself.
    let shown = SECRET_PREFIX_CHARS.min(count / 2);
    let head: String = secret.chars().take(shown).collect();
    format!("{head}…")
}

/// Gives the client slot back when its stream ends.
struct ClientSlot(Arc<AtomicUsize>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /hub/stream`: the live feed as server-sent events. The first event is `ready`
/// (load the lists now); then `event` (an event log entry's summary, new or changed) and
/// `connections` (the connected listeners changed). A client too slow to keep up is sent
/// `lagged` and disconnected; its browser reconnects. The stream ends when the hub shuts
/// down.
async fn stream(State(hub): State<Arc<HubState>>) -> Response {
    let clients = Arc::clone(&hub.feed.clients);
    if clients.fetch_add(1, Ordering::SeqCst) >= MAX_FEED_CLIENTS {
        clients.fetch_sub(1, Ordering::SeqCst);
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the hub serves at most {MAX_FEED_CLIENTS} live-feed clients at once"),
        )
        .into_response();
    }
    let slot = ClientSlot(clients);
    let rx = hub.feed.tx.subscribe();
    let stop = hub.shutdown.clone().cancelled_owned();
    Sse::new(feed_events(rx, slot).take_until(stop))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn feed_events(
    rx: broadcast::Receiver<FeedItem>,
    slot: ClientSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let ready = Event::default().event("ready").data("{}");
    let rest = futures_util::stream::unfold(Some((rx, slot)), |state| async move {
        let (mut rx, slot) = state?;
        match rx.recv().await {
            Ok(item) => {
                let event = Event::default().event(item.kind).data(&*item.data);
                Some((Ok(event), Some((rx, slot))))
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let event = Event::default()
                    .event("lagged")
                    .data(json!({"missed": missed}).to_string());
                Some((Ok(event), None))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    futures_util::stream::once(async { Ok(ready) }).chain(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_show_a_prefix_only() {
        assert_eq!(secret_prefix("whsec_0123456789abcdef"), "whsec_0123…");
        assert_eq!(secret_prefix("abcd"), "ab…");
        assert_eq!(secret_prefix(""), "…");
    }

    #[test]
    fn the_page_sets_text_never_markup() {
        // Event data is attacker-controlled: the script builds the DOM from text nodes.
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!APP_JS.contains(banned), "app.js uses {banned}");
        }
        assert!(
            !INDEX_HTML.contains("<script>"),
            "no inline script (the CSP forbids it)"
        );
        assert!(
            !INDEX_HTML.contains("style="),
            "no inline style (the CSP forbids it)"
        );
    }
}
