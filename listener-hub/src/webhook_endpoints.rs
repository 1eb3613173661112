//! Composio's webhook endpoints API on the hub (under `/api/v3` and `/api/v3.1`):
//! `POST …/webhook_endpoints` with `{toolkit_slug, client_id}` gives the endpoint for that
//! toolkit and OAuth app, creating it the first time (201) and returning the same one
//! afterwards (200): one endpoint per toolkit (case-insensitive) and client id, as the real
//! service keeps one per toolkit, client id and project. `GET …/webhook_endpoints` lists
//! them, `GET …/webhook_endpoints/{id}` gives one. An endpoint is `{id, toolkit_slug,
//! client_id, webhook_url, data, created_at}`.
//!
//! The `webhook_url` is where the real service takes the provider's own deliveries (the URL
//! to paste into a Slack app's Event Subscriptions). The hub does not take provider
//! deliveries: publish the trigger events they would cause with `POST /hub/events`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::answers::{bad_field, error, object_body, tri, Answer};
use super::catalog::MAX_SLUG_CHARS;
use super::realtime_api::authorized;
use super::{ids, HubState};

/// Most webhook endpoints a hub keeps; a request for another one is answered 409.
pub const MAX_WEBHOOK_ENDPOINTS: usize = 1000;

/// Longest client id accepted.
const MAX_CLIENT_ID_CHARS: usize = 256;

/// A webhook endpoint of the hub, as [`RunningHub::webhook_endpoints`](crate::RunningHub::webhook_endpoints) lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointRecord {
    /// The endpoint id (`we_…`).
    pub id: String,
    /// The toolkit, lower-cased (`slack`).
    pub toolkit_slug: String,
    /// The OAuth app's client id, as given.
    pub client_id: String,
    /// The URL the real service would take the provider's deliveries at.
    pub webhook_url: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl WebhookEndpointRecord {
    fn to_api(&self) -> Value {
        json!({
            "id": self.id,
            "toolkit_slug": self.toolkit_slug,
            "client_id": self.client_id,
            "webhook_url": self.webhook_url,
            "data": {},
            "created_at": self.created_at,
        })
    }
}

/// The hub's webhook endpoints, oldest first.
#[derive(Default)]
pub(crate) struct Endpoints {
    list: Mutex<Vec<WebhookEndpointRecord>>,
}

impl Endpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WebhookEndpointRecord>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoint of `toolkit` + `client_id`, created if needed (`true`), or `None` at the bound.
    fn get_or_create(
        &self,
        base_url: &str,
        toolkit: &str,
        client_id: &str,
    ) -> Option<(WebhookEndpointRecord, bool)> {
        let mut list = self.lock();
        if let Some(found) = list
            .iter()
            .find(|e| e.toolkit_slug == toolkit && e.client_id == client_id)
        {
            return Some((found.clone(), false));
        }
        if list.len() >= MAX_WEBHOOK_ENDPOINTS {
            return None;
        }
        let id = ids::fresh("we_");
        let endpoint = WebhookEndpointRecord {
            webhook_url: format!("{base_url}/hub/webhook_endpoints/{id}"),
            id,
            toolkit_slug: toolkit.to_owned(),
            client_id: client_id.to_owned(),
            created_at: ids::now_rfc3339(),
        };
        list.push(endpoint.clone());
        Some((endpoint, true))
    }

    pub(crate) fn all(&self) -> Vec<WebhookEndpointRecord> {
        self.lock().clone()
    }
}

fn required_string<'a>(
    body: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'a str, Answer> {
    match body.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(bad_field(key, "is required")),
        Some(_) => Err(bad_field(key, "must be a string")),
    }
}

/// `POST …/webhook_endpoints`.
pub(crate) async fn create(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let body = tri!(object_body(&body));
    let toolkit = tri!(required_string(&body, "toolkit_slug")).to_ascii_lowercase();
    if toolkit.chars().count() > MAX_SLUG_CHARS
        || !toolkit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad_field(
            "toolkit_slug",
            &format!("must be 1 to {MAX_SLUG_CHARS} letters, digits, `_` or `-`"),
        );
    }
    let client_id = tri!(required_string(&body, "client_id"));
    if client_id.chars().count() > MAX_CLIENT_ID_CHARS || client_id.chars().any(char::is_control) {
        return bad_field(
            "client_id",
            &format!("must be at most {MAX_CLIENT_ID_CHARS} printable characters"),
        );
    }
    match hub
        .triggers
        .endpoints
        .get_or_create(&hub.triggers.base_url, &toolkit, client_id)
    {
        Some((endpoint, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(endpoint.to_api()))
        }
        None => error(
            StatusCode::CONFLICT,
            "WebhookEndpoint_LimitReached",
            &format!("the hub holds its limit of {MAX_WEBHOOK_ENDPOINTS} webhook endpoints"),
            Vec::new(),
            None,
        ),
    }
}

/// `GET …/webhook_endpoints`.
pub(crate) async fn list(State(hub): State<Arc<HubState>>, headers: HeaderMap) -> Answer {
    tri!(authorized(&hub, &headers));
    let items: Vec<Value> = hub
        .triggers
        .endpoints
        .all()
        .iter()
        .map(WebhookEndpointRecord::to_api)
        .collect();
    let total = items.len();
    (
        StatusCode::OK,
        Json(
            json!({"items": items, "next_cursor": null, "total_items": total, "total_pages": 1, "current_page": 1}),
        ),
    )
}

/// `GET …/webhook_endpoints/{id}`.
pub(crate) async fn get(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Answer {
    tri!(authorized(&hub, &headers));
    let Ok(Path(id)) = id else {
        return bad_field("id", "is not valid UTF-8");
    };
    match hub
        .triggers
        .endpoints
        .all()
        .into_iter()
        .find(|e| e.id == id.trim())
    {
        Some(endpoint) => (StatusCode::OK, Json(endpoint.to_api())),
        None => error(
            StatusCode::NOT_FOUND,
            "WebhookEndpoint_NotFound",
            "webhook endpoint not found",
            Vec::new(),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_one_per_toolkit_and_client_id() {
        let e = Endpoints::default();
        let (a, created) = e.get_or_create("http://h", "slack", "c1").unwrap();
        assert!(created && a.id.starts_with("we_"));
        assert_eq!(
            a.webhook_url,
            format!("http://h/hub/webhook_endpoints/{}", a.id)
        );
        let (again, created) = e.get_or_create("http://h", "slack", "c1").unwrap();
        assert!(!created);
        assert_eq!(again, a);
        assert!(e.get_or_create("http://h", "slack", "c2").unwrap().1);
        assert!(e.get_or_create("http://h", "discord", "c1").unwrap().1);
        assert_eq!(e.all().len(), 3);
    }
}
