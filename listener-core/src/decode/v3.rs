//! The V3 envelope: `{id, type: "composio.…", timestamp, metadata, data}`.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::fields::{get_str, take_object, take_opt_str, take_str, Lenient};
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

/// A V3 envelope as it comes off the wire: identity fields borrowed, `metadata` and `data`
/// left as raw JSON until the envelope is known to be a trigger message.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Lenient<'a>,
    #[serde(borrow, default)]
    id: Lenient<'a>,
    #[serde(borrow, default)]
    timestamp: Lenient<'a>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// A V3 trigger message's `metadata`; other keys are skipped.
#[derive(Deserialize)]
struct WireMetadata<'a> {
    #[serde(borrow, default)]
    trigger_id: Lenient<'a>,
    #[serde(borrow, default)]
    trigger_slug: Lenient<'a>,
    #[serde(borrow, default)]
    user_id: Lenient<'a>,
    #[serde(borrow, default)]
    connected_account_id: Lenient<'a>,
    #[serde(borrow, default)]
    auth_config_id: Lenient<'a>,
    #[serde(borrow, default)]
    log_id: Lenient<'a>,
}

/// The fast path for the common case, a V3 trigger message: parses the envelope into typed,
/// borrowed fields and only the payload into a `Value`, skipping the `Value` tree of the
/// envelope and metadata that [`decode`] builds and then takes apart.
///
/// Returns `None` for anything it does not fully handle (another envelope, a lifecycle
/// event, duplicate keys, `null` `metadata`/`data`, invalid JSON…); the caller then takes
/// the general path, which gives the same event for every body this one accepts.
pub(super) fn decode_trigger_message(bytes: &[u8]) -> Option<TriggerEvent> {
    // A derived struct would also accept an array; only objects are envelopes.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let wire: Wire<'_> = serde_json::from_slice(bytes).ok()?;
    let event_type = match wire.kind {
        Lenient::Str(t) if t == V3_TRIGGER_MESSAGE => t,
        _ => return None,
    };
    if matches!(wire.id, Lenient::Missing) {
        return None;
    }
    let metadata = wire.metadata.filter(|m| m.get().starts_with('{'))?;
    let meta: WireMetadata<'_> = serde_json::from_str(metadata.get()).ok()?;
    let payload: Value = serde_json::from_str(wire.data?.get()).ok()?;

    let trigger_id = meta.trigger_id.into_string();
    let trigger_slug = meta.trigger_slug.into_string();
    let user_id = meta.user_id.into_string();
    let account_id = meta.connected_account_id.into_string();
    let auth_config_id = meta.auth_config_id.into_string();
    Some(TriggerEvent {
        uuid: trigger_id.clone(),
        id: trigger_id,
        event_id: wire.id.into_string(),
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
            log_id: meta.log_id.into_string(),
            delivery_attempt: None,
        },
        user_id,
        envelope: Envelope::V3,
        event_type: Some(event_type.into_owned()),
        timestamp: wire.timestamp.into_opt_string(),
    })
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
