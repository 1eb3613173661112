//! The V1 and V2 webhook envelopes.
//!
//! Unlike Composio's Python SDK (which leaves V1's toolkit empty and sets V2's to the whole
//! upper-cased type), the toolkit is derived from the slug as on V3, so `toolkit` filters
//! work the same whatever the project's webhook version.

use serde_json::{Map, Value};

use super::fields::{take_opt_str, take_str};
use crate::event::toolkit_of;
use crate::event::{ConnectedAccount, Envelope, TriggerEvent, TriggerMetadata};

pub(super) fn is_v2(map: &Map<String, Value>) -> bool {
    matches!(map.get("type"), Some(Value::String(_)))
        && map.contains_key("timestamp")
        && matches!(map.get("data"), Some(Value::Object(d)) if d.contains_key("connection_id"))
}

pub(super) fn is_v1(map: &Map<String, Value>) -> bool {
    ["trigger_name", "connection_id", "trigger_id", "payload"]
        .iter()
        .all(|k| map.contains_key(*k))
}

pub(super) fn decode_v2(mut map: Map<String, Value>) -> TriggerEvent {
    let trigger_slug = take_str(&mut map, "type").to_uppercase();
    let log_id = take_str(&mut map, "log_id");
    let timestamp = take_opt_str(&mut map, "timestamp");
    let mut data = match map.remove("data") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    // The identity fields live inside `data`; they are taken out so the payload is the
    // trigger's own data, as Composio's SDKs present it.
    let connection_uuid = take_str(&mut data, "connection_id");
    let connection_nano = take_str(&mut data, "connection_nano_id");
    let trigger_uuid = take_str(&mut data, "trigger_id");
    let trigger_nano = take_str(&mut data, "trigger_nano_id");
    let user_id = take_str(&mut data, "user_id");
    let id = if trigger_nano.is_empty() {
        trigger_uuid.clone()
    } else {
        trigger_nano
    };
    let account_id = if connection_nano.is_empty() {
        connection_uuid.clone()
    } else {
        connection_nano
    };
    TriggerEvent {
        id,
        uuid: trigger_uuid,
        event_id: log_id.clone(),
        toolkit_slug: toolkit_of(&trigger_slug),
        trigger_slug,
        payload: Value::Object(data),
        original_payload: None,
        metadata: TriggerMetadata {
            trigger_data: None,
            trigger_config: Value::Object(Map::new()),
            connected_account: ConnectedAccount {
                id: account_id,
                uuid: connection_uuid,
                user_id: user_id.clone(),
                ..ConnectedAccount::default()
            },
            log_id,
            delivery_attempt: None,
            stream: None,
        },
        user_id,
        envelope: Envelope::V2,
        event_type: None,
        timestamp,
    }
}

pub(super) fn decode_v1(mut map: Map<String, Value>) -> TriggerEvent {
    let trigger_slug = take_str(&mut map, "trigger_name");
    let trigger_id = take_str(&mut map, "trigger_id");
    let connection_id = take_str(&mut map, "connection_id");
    let log_id = take_str(&mut map, "log_id");
    let payload = map.remove("payload").unwrap_or(Value::Null);
    TriggerEvent {
        uuid: trigger_id.clone(),
        id: trigger_id,
        event_id: log_id.clone(),
        user_id: String::new(),
        toolkit_slug: toolkit_of(&trigger_slug),
        trigger_slug,
        payload,
        original_payload: None,
        metadata: TriggerMetadata {
            trigger_data: None,
            trigger_config: Value::Object(Map::new()),
            connected_account: ConnectedAccount {
                uuid: connection_id.clone(),
                id: connection_id,
                ..ConnectedAccount::default()
            },
            log_id,
            delivery_attempt: None,
            stream: None,
        },
        envelope: Envelope::V1,
        event_type: None,
        timestamp: None,
    }
}
