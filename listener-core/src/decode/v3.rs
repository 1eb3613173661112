//! The V3 envelope: `{id, type: "composio.…", timestamp, metadata, data}`.

use serde_json::{Map, Value};

use super::fields::{get_str, take_object, take_opt_str, take_str};
use crate::event::{toolkit_of, V3_TRIGGER_MESSAGE};
use crate::{ConnectedAccount, Envelope, TriggerEvent, TriggerMetadata};

/// The toolkit given to V3 lifecycle (non-trigger) events.
pub(crate) const LIFECYCLE_TOOLKIT: &str = "COMPOSIO";

pub(super) fn is_v3(map: &Map<String, Value>) -> bool {
    matches!(map.get("type"), Some(Value::String(t)) if t.starts_with("composio."))
        && matches!(map.get("metadata"), Some(Value::Object(_)))
        && map.contains_key("id")
        && map.contains_key("data")
}

pub(super) fn decode(mut map: Map<String, Value>) -> TriggerEvent {
    let event_type = take_str(&mut map, "type");
    let event_id = take_str(&mut map, "id");
    let timestamp = take_opt_str(&mut map, "timestamp");
    let payload = map.remove("data").unwrap_or(Value::Null);

    if event_type == V3_TRIGGER_MESSAGE {
        let mut meta = take_object(&mut map, "metadata");
        let trigger_id = take_str(&mut meta, "trigger_id");
        let trigger_slug = take_str(&mut meta, "trigger_slug");
        let user_id = take_str(&mut meta, "user_id");
        let account_id = take_str(&mut meta, "connected_account_id");
        let auth_config_id = take_str(&mut meta, "auth_config_id");
        let log_id = take_str(&mut meta, "log_id");
        TriggerEvent {
            uuid: trigger_id.clone(),
            id: trigger_id,
            event_id,
            toolkit_slug: toolkit_of(&trigger_slug),
            trigger_slug,
            payload,
            original_payload: None,
            metadata: TriggerMetadata {
                trigger_data: None,
                trigger_config: Value::Object(Map::new()),
                connected_account: ConnectedAccount {
                    uuid: account_id.clone(),
                    id: account_id,
                    auth_config_uuid: auth_config_id.clone(),
                    auth_config_id,
                    user_id: user_id.clone(),
                    status: String::new(),
                },
                log_id,
                delivery_attempt: None,
            },
            user_id,
            envelope: Envelope::V3,
            event_type: Some(event_type),
            timestamp,
        }
    } else {
        // A lifecycle event. Connected-account events describe the account in `data`; read
        // it (without moving the payload) so the account filters work on them too.
        let connected_account = if event_type.starts_with("composio.connected_account.") {
            account_from_lifecycle_data(&payload)
        } else {
            ConnectedAccount::default()
        };
        // What remains of the envelope (metadata such as project and org ids) is kept as
        // the original payload; `data` itself lives in `payload`, not copied twice.
        TriggerEvent {
            id: event_id.clone(),
            uuid: event_id.clone(),
            event_id,
            user_id: String::new(),
            trigger_slug: event_type.clone(),
            toolkit_slug: LIFECYCLE_TOOLKIT.to_owned(),
            payload,
            original_payload: Some(Value::Object(map)),
            metadata: TriggerMetadata {
                trigger_data: None,
                trigger_config: Value::Object(Map::new()),
                connected_account,
                log_id: String::new(),
                delivery_attempt: None,
            },
            envelope: Envelope::V3,
            event_type: Some(event_type),
            timestamp,
        }
    }
}

fn account_from_lifecycle_data(data: &Value) -> ConnectedAccount {
    let Some(data) = data.as_object() else {
        return ConnectedAccount::default();
    };
    let id = get_str(data, "id").to_owned();
    let auth_config_id = data
        .get("auth_config")
        .and_then(Value::as_object)
        .map(|ac| get_str(ac, "id").to_owned())
        .unwrap_or_default();
    ConnectedAccount {
        uuid: id.clone(),
        id,
        auth_config_uuid: auth_config_id.clone(),
        auth_config_id,
        user_id: get_str(data, "user_id").to_owned(),
        status: get_str(data, "status").to_owned(),
    }
}
