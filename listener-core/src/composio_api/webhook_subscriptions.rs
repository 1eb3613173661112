//! Webhook subscriptions (`/api/v3.1/webhook_subscriptions`, seven calls) and webhook
//! endpoints (`/api/v3/webhook_endpoints`).

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::{list_items, object, Fields};
use super::{segment, ApiResult, ComposioClient, Idempotency, JsonAnswer};

/// A webhook subscription: where Composio POSTs events, in which envelope version, for
/// which event types. Its `Debug` output hides the secret.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct WebhookSubscription {
    /// The subscription id.
    pub id: String,
    /// The URL deliveries go to.
    pub webhook_url: String,
    /// The envelope version (`V3`, …).
    pub version: String,
    /// The event types delivered (`composio.trigger.message`, …).
    pub enabled_events: Vec<String>,
    /// The signing secret: given on creation and rotation (and by some reads).
    pub secret: Option<String>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it last changed.
    pub updated_at: Option<String>,
    /// The whole answer, as sent.
    #[serde(skip_serializing)]
    pub raw: Map<String, Value>,
}

impl fmt::Debug for WebhookSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSubscription")
            .field("id", &self.id)
            .field("webhook_url", &self.webhook_url)
            .field("version", &self.version)
            .field("enabled_events", &self.enabled_events)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

impl From<Value> for WebhookSubscription {
    fn from(value: Value) -> Self {
        // Some answers wrap the subscription: `{"data": {...}}` / `{"webhook_subscription": …}`.
        let map = object(&value);
        let inner = ["webhook_subscription", "subscription", "data"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_object))
            .filter(|m| m.contains_key("id") || m.contains_key("webhook_url"))
            .cloned();
        let raw = inner.unwrap_or(map);
        let f = Fields(&raw);
        WebhookSubscription {
            id: f.string(&["id", "subscription_id", "subscriptionId"]),
            webhook_url: f.string(&["webhook_url", "webhookUrl", "url"]),
            version: f.string(&["version", "webhook_version", "webhookVersion"]),
            enabled_events: f
                .strings(&["enabled_events", "enabledEvents"])
                .unwrap_or_default(),
            secret: f.opt_string(&["secret", "webhook_secret", "webhookSecret"]),
            created_at: f.opt_string(&["created_at", "createdAt"]),
            updated_at: f.opt_string(&["updated_at", "updatedAt"]),
            raw,
        }
    }
}

/// The body of `POST /api/v3.1/webhook_subscriptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateWebhookSubscription {
    /// Where to deliver (an `https://` URL Composio can reach).
    pub webhook_url: String,
    /// The envelope version (`V3` when left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The event types (`["composio.trigger.message"]` when left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_events: Option<Vec<String>>,
}

impl CreateWebhookSubscription {
    /// A subscription delivering to `webhook_url` with the API's defaults.
    pub fn new(webhook_url: impl Into<String>) -> Self {
        CreateWebhookSubscription {
            webhook_url: webhook_url.into(),
            version: None,
            enabled_events: None,
        }
    }

    /// The envelope version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The event types to deliver.
    pub fn events<I, S>(mut self, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.enabled_events = Some(events.into_iter().map(Into::into).collect());
        self
    }
}

/// The body of `PATCH /api/v3.1/webhook_subscriptions/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateWebhookSubscription {
    /// A new delivery URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// A new envelope version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// New event types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_events: Option<Vec<String>>,
}

/// An event type a subscription can enable, from
/// `GET /api/v3.1/webhook_subscriptions/event_types`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct WebhookEventType {
    /// The type (`composio.connected_account.expired`).
    pub event_type: String,
    /// What it reports, when given.
    pub description: Option<String>,
    /// The envelope versions it is available in, when given.
    pub supported_versions: Vec<String>,
}

impl From<Value> for WebhookEventType {
    fn from(value: Value) -> Self {
        if let Value::String(s) = value {
            return WebhookEventType {
                event_type: s,
                ..WebhookEventType::default()
            };
        }
        let map = object(&value);
        let f = Fields(&map);
        WebhookEventType {
            event_type: f.string(&["event_type", "eventType", "type", "name", "slug"]),
            description: f.opt_string(&["description"]),
            supported_versions: f
                .strings(&["supported_versions", "supportedVersions", "versions"])
                .unwrap_or_default(),
        }
    }
}

/// A list answer read leniently (bare array or `{items | data | …}`).
struct Listed<T>(Vec<T>);

impl<'de, T: From<Value>> Deserialize<'de> for Listed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let items = list_items(
            &value,
            &[
                "items",
                "data",
                "event_types",
                "eventTypes",
                "webhook_subscriptions",
                "subscriptions",
            ],
        );
        Ok(Listed(items.iter().cloned().map(T::from).collect()))
    }
}

/// The body of `POST /api/v3/webhook_endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateWebhookEndpoint {
    /// The toolkit (`slack`).
    pub toolkit_slug: String,
    /// The OAuth app's client id.
    pub client_id: String,
}

/// A webhook endpoint (one per toolkit + client id + project).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct WebhookEndpoint {
    /// The endpoint id.
    pub id: String,
    /// The toolkit.
    pub toolkit_slug: String,
    /// The OAuth app's client id.
    pub client_id: String,
    /// The URL to give the provider.
    pub webhook_url: String,
    /// Provider-specific data, as sent.
    pub data: Value,
    /// When it was created.
    pub created_at: Option<String>,
    /// The whole answer, as sent.
    #[serde(skip_serializing)]
    pub raw: Map<String, Value>,
}

impl From<Value> for WebhookEndpoint {
    fn from(value: Value) -> Self {
        let raw = object(&value);
        let f = Fields(&raw);
        WebhookEndpoint {
            id: f.string(&["id"]),
            toolkit_slug: f.string(&["toolkit_slug", "toolkitSlug"]),
            client_id: f.string(&["client_id", "clientId"]),
            webhook_url: f.string(&["webhook_url", "webhookUrl"]),
            data: f.value(&["data"]).cloned().unwrap_or(Value::Null),
            created_at: f.opt_string(&["created_at", "createdAt"]),
            raw,
        }
    }
}

const SUBSCRIPTIONS: [&str; 3] = ["api", "v3.1", "webhook_subscriptions"];

impl ComposioClient {
    /// Creates a webhook subscription: `POST /api/v3.1/webhook_subscriptions`. The answer
    /// carries the signing secret: keep it (as `COMPOSIO_WEBHOOK_SECRET`).
    pub async fn create_webhook_subscription(
        &self,
        request: &CreateWebhookSubscription,
    ) -> ApiResult<WebhookSubscription> {
        if request.webhook_url.trim().is_empty() {
            return Err(super::ApiError::config("webhook_url", "must not be empty"));
        }
        self.with_body(Method::POST, &SUBSCRIPTIONS, request, Idempotency::Once)
            .await
    }

    /// Lists the project's webhook subscriptions: `GET /api/v3.1/webhook_subscriptions`.
    pub async fn list_webhook_subscriptions(&self) -> ApiResult<Vec<WebhookSubscription>> {
        let listed: Listed<WebhookSubscription> = self.get(&SUBSCRIPTIONS, Vec::new()).await?;
        Ok(listed.0)
    }

    /// One subscription: `GET /api/v3.1/webhook_subscriptions/{id}`.
    pub async fn get_webhook_subscription(&self, id: &str) -> ApiResult<WebhookSubscription> {
        let id = segment("subscription id", id)?;
        self.get(&["api", "v3.1", "webhook_subscriptions", id], Vec::new())
            .await
    }

    /// Changes a subscription: `PATCH /api/v3.1/webhook_subscriptions/{id}`.
    pub async fn update_webhook_subscription(
        &self,
        id: &str,
        request: &UpdateWebhookSubscription,
    ) -> ApiResult<WebhookSubscription> {
        let id = segment("subscription id", id)?;
        self.with_body(
            Method::PATCH,
            &["api", "v3.1", "webhook_subscriptions", id],
            request,
            Idempotency::Repeatable,
        )
        .await
    }

    /// Deletes a subscription: `DELETE /api/v3.1/webhook_subscriptions/{id}`.
    pub async fn delete_webhook_subscription(&self, id: &str) -> ApiResult<JsonAnswer> {
        let id = segment("subscription id", id)?;
        self.delete(&["api", "v3.1", "webhook_subscriptions", id])
            .await
    }

    /// Replaces a subscription's signing secret:
    /// `POST /api/v3.1/webhook_subscriptions/{id}/rotate_secret`. The answer carries the
    /// new secret; deliveries are signed with it from then on.
    pub async fn rotate_webhook_secret(&self, id: &str) -> ApiResult<WebhookSubscription> {
        let id = segment("subscription id", id)?;
        self.with_body(
            Method::POST,
            &["api", "v3.1", "webhook_subscriptions", id, "rotate_secret"],
            &serde_json::json!({}),
            Idempotency::Once,
        )
        .await
    }

    /// The event types a subscription can enable:
    /// `GET /api/v3.1/webhook_subscriptions/event_types`.
    pub async fn webhook_event_types(&self) -> ApiResult<Vec<WebhookEventType>> {
        let listed: Listed<WebhookEventType> = self
            .get(
                &["api", "v3.1", "webhook_subscriptions", "event_types"],
                Vec::new(),
            )
            .await?;
        Ok(listed.0)
    }

    /// Creates (or returns, being idempotent per toolkit + client id + project) a webhook
    /// endpoint: `POST /api/v3/webhook_endpoints`.
    pub async fn create_webhook_endpoint(
        &self,
        request: &CreateWebhookEndpoint,
    ) -> ApiResult<WebhookEndpoint> {
        segment("toolkit_slug", &request.toolkit_slug)?;
        segment("client_id", &request.client_id)?;
        self.with_body(
            Method::POST,
            &["api", "v3", "webhook_endpoints"],
            request,
            Idempotency::Repeatable,
        )
        .await
    }
}
