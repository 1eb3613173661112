//! The management API's webhook-subscription endpoints on the hub, with Composio's paths
//! (`/api/v3.1/webhook_subscriptions…`) and shapes: create, list, get, update, delete,
//! rotate the secret, list the event types; and the hub's own delivery log.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::realtime_api::{api_error, authorized};
use super::subscriptions::Webhooks;
use super::HubState;
use listener_core::V3_TRIGGER_MESSAGE;

type ApiResult = (StatusCode, Json<Value>);

#[derive(Deserialize)]
pub(crate) struct CreateBody {
    webhook_url: Option<String>,
    #[serde(default)]
    enabled_events: Option<Vec<String>>,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct UpdateBody {
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    enabled_events: Option<Vec<String>>,
    #[serde(default)]
    version: Option<String>,
}

fn check_url(url: &str) -> Result<(), ApiResult> {
    if url.len() > 2048 || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "webhook_url must be an http(s) URL of at most 2048 characters",
        ));
    }
    Ok(())
}

fn check_events(events: &[String]) -> Result<(), ApiResult> {
    if events.is_empty() {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "enabled_events must not be empty",
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| !EVENT_TYPES.iter().any(|(t, _)| t == e))
    {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "unknown event type `{}`",
                listener_core::preview::truncate_chars(bad, 80)
            ),
        ));
    }
    Ok(())
}

fn check_version(version: Option<&str>) -> Result<(), ApiResult> {
    match version {
        None | Some("V3") => Ok(()),
        Some(_) => Err(api_error(
            StatusCode::BAD_REQUEST,
            "the hub delivers V3 payloads only",
        )),
    }
}

/// The event types the hub can deliver.
const EVENT_TYPES: &[(&str, &str)] = &[
    (
        V3_TRIGGER_MESSAGE,
        "A trigger fired (the trigger's payload in `data`)",
    ),
    (
        "composio.connected_account.expired",
        "A connected account's credentials expired",
    ),
    (
        "composio.trigger.disabled",
        "A trigger instance was disabled",
    ),
];

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiResult> {
    serde_json::from_slice(body)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

fn guard<'a>(hub: &'a HubState, headers: &HeaderMap) -> Result<&'a Webhooks, ApiResult> {
    authorized(hub, headers)?;
    Ok(&hub.webhooks)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return e,
        }
    };
}

pub(crate) async fn create(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let webhooks = tri!(guard(&hub, &headers));
    let body: CreateBody = tri!(parse(&body));
    let Some(url) = body.webhook_url else {
        return api_error(StatusCode::BAD_REQUEST, "webhook_url is required");
    };
    tri!(check_url(&url));
    let events = body
        .enabled_events
        .unwrap_or_else(|| vec![V3_TRIGGER_MESSAGE.to_owned()]);
    tri!(check_events(&events));
    tri!(check_version(body.version.as_deref()));
    (
        StatusCode::CREATED,
        Json(json!(webhooks.create(url, events))),
    )
}

pub(crate) async fn list(State(hub): State<Arc<HubState>>, headers: HeaderMap) -> ApiResult {
    let webhooks = tri!(guard(&hub, &headers));
    let items = webhooks.list();
    let total = items.len();
    (
        StatusCode::OK,
        Json(
            json!({"items": items, "next_cursor": null, "total_pages": 1, "current_page": 1, "total_items": total}),
        ),
    )
}

pub(crate) async fn get(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let webhooks = tri!(guard(&hub, &headers));
    match webhooks.get(&id) {
        Some(sub) => (StatusCode::OK, Json(json!(sub))),
        None => api_error(StatusCode::NOT_FOUND, "webhook subscription not found"),
    }
}

pub(crate) async fn update(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let webhooks = tri!(guard(&hub, &headers));
    let body: UpdateBody = tri!(parse(&body));
    if let Some(url) = &body.webhook_url {
        tri!(check_url(url));
    }
    if let Some(events) = &body.enabled_events {
        tri!(check_events(events));
    }
    tri!(check_version(body.version.as_deref()));
    match webhooks.update(&id, body.webhook_url, body.enabled_events) {
        Some(sub) => (StatusCode::OK, Json(json!(sub))),
        None => api_error(StatusCode::NOT_FOUND, "webhook subscription not found"),
    }
}

pub(crate) async fn delete(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let webhooks = tri!(guard(&hub, &headers));
    if webhooks.delete(&id) {
        (StatusCode::OK, Json(json!({"success": true})))
    } else {
        api_error(StatusCode::NOT_FOUND, "webhook subscription not found")
    }
}

pub(crate) async fn rotate_secret(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let webhooks = tri!(guard(&hub, &headers));
    match webhooks.rotate(&id) {
        Some(sub) => (
            StatusCode::OK,
            Json(json!({"id": sub.id, "secret": sub.secret})),
        ),
        None => api_error(StatusCode::NOT_FOUND, "webhook subscription not found"),
    }
}

pub(crate) async fn event_types(State(hub): State<Arc<HubState>>, headers: HeaderMap) -> ApiResult {
    tri!(guard(&hub, &headers));
    let items: Vec<Value> = EVENT_TYPES
        .iter()
        .map(|(t, d)| json!({"event_type": t, "description": d, "supported_versions": ["V3"]}))
        .collect();
    (StatusCode::OK, Json(json!({"items": items})))
}

pub(crate) async fn deliveries(State(hub): State<Arc<HubState>>) -> ApiResult {
    (StatusCode::OK, Json(json!({"items": hub.webhooks.log()})))
}
