//! The legacy realtime envelope of V1/V2 projects:
//! `{appName, clientId, payload, originalPayload, metadata: {id, nanoId, triggerName,
//! triggerData, triggerConfig, connection: {…}}}`.

use serde_json::{Map, Value};

use super::fields::{take_object, take_opt_str, take_str};
use crate::event::{ConnectedAccount, Envelope, TriggerEvent, TriggerMetadata};

pub(super) fn is_legacy(map: &Map<String, Value>) -> bool {
    match map.get("metadata") {
        Some(Value::Object(meta)) => {
            meta.contains_key("triggerName")
                || meta.contains_key("nanoId")
                || meta.contains_key("connection")
                || map.contains_key("appName")
        }
        _ => false,
    }
}

pub(super) fn decode(mut map: Map<String, Value>) -> TriggerEvent {
    let toolkit_slug = take_str(&mut map, "appName").to_uppercase();
    let payload = map.remove("payload").unwrap_or(Value::Null);
    let original_payload = match map.remove("originalPayload") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let mut meta = take_object(&mut map, "metadata");
    let id = take_str(&mut meta, "nanoId");
    let uuid = take_str(&mut meta, "id");
    let trigger_slug = take_str(&mut meta, "triggerName");
    let trigger_data = take_opt_str(&mut meta, "triggerData");
    let trigger_config = match meta.remove("triggerConfig") {
        Some(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    };
    let mut conn = take_object(&mut meta, "connection");
    let user_id = take_str(&mut conn, "clientUniqueUserId");
    TriggerEvent {
        id,
        uuid,
        event_id: String::new(),
        trigger_slug,
        toolkit_slug,
        payload,
        original_payload,
        metadata: TriggerMetadata {
            trigger_data,
            trigger_config,
            connected_account: ConnectedAccount {
                id: take_str(&mut conn, "connectedAccountNanoId"),
                uuid: take_str(&mut conn, "id"),
                auth_config_id: take_str(&mut conn, "authConfigNanoId"),
                auth_config_uuid: take_str(&mut conn, "integrationId"),
                user_id: user_id.clone(),
                status: take_str(&mut conn, "status"),
            },
            log_id: String::new(),
            delivery_attempt: None,
            stream: None,
        },
        user_id,
        envelope: Envelope::LegacyRealtime,
        event_type: None,
        timestamp: None,
    }
}
