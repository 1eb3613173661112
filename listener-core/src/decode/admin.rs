//! Admin events: what Composio's admin event webhook sends about connected accounts,
//! `{"type": "connected_account.add.start" | "connected_account.add.completed",
//! "timestamp", "data": {"app_name", "integration_name", "integration_id", "body",
//! "connected_account_id"}}`.
//!
//! They become lifecycle events: the slug and the event type are the `type`, the toolkit is
//! the upper-cased `app_name`, the connected account id and the integration (auth config)
//! id go into the metadata, and the payload is `data` as sent (typed as
//! [`AccountAdded`](crate::lifecycle::AccountAdded)). The envelope has no id of its own; a
//! webhook delivery's `webhook-id` becomes the event id.

use serde_json::{Map, Value};

use super::fields::{take_opt_str, take_str};
use crate::event::{ConnectedAccount, Envelope, TriggerEvent, TriggerMetadata};

/// A `type` of `connected_account.…` and an object `data` naming the account or the
/// integration.
pub(super) fn is_admin(map: &Map<String, Value>) -> bool {
    matches!(map.get("type"), Some(Value::String(t)) if t.starts_with("connected_account."))
        && matches!(map.get("data"), Some(Value::Object(d))
            if d.contains_key("connected_account_id") || d.contains_key("integration_id"))
}

pub(super) fn decode(mut map: Map<String, Value>) -> TriggerEvent {
    let event_type = take_str(&mut map, "type");
    let timestamp = take_opt_str(&mut map, "timestamp");
    let data = match map.remove("data") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    let text = |key: &str| match data.get(key) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let account_id = text("connected_account_id");
    let integration_id = text("integration_id");
    let toolkit = text("app_name").to_uppercase();
    TriggerEvent {
        id: String::new(),
        uuid: String::new(),
        event_id: String::new(),
        user_id: String::new(),
        trigger_slug: event_type.clone(),
        toolkit_slug: toolkit,
        payload: Value::Object(data),
        original_payload: None,
        metadata: TriggerMetadata {
            trigger_data: None,
            trigger_config: Value::Object(Map::new()),
            connected_account: ConnectedAccount {
                uuid: account_id.clone(),
                id: account_id,
                auth_config_uuid: integration_id.clone(),
                auth_config_id: integration_id,
                ..ConnectedAccount::default()
            },
            log_id: String::new(),
            delivery_attempt: None,
            stream: None,
        },
        envelope: Envelope::Admin,
        event_type: Some(event_type),
        timestamp,
    }
}
