//! The V3 envelope: `{id, type: "composio.…", timestamp, metadata, data}`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::fields::{get_str, take_object, take_opt_str, take_str, Lenient, Skip};
use crate::event::{toolkit_of, V3_TRIGGER_MESSAGE};
use crate::event::{ConnectedAccount, Envelope, TriggerEvent, TriggerMetadata};

/// The toolkit given to V3 lifecycle (non-trigger) events.
pub(crate) const LIFECYCLE_TOOLKIT: &str = "COMPOSIO";

pub(super) fn is_v3(map: &Map<String, Value>) -> bool {
    matches!(map.get("type"), Some(Value::String(t)) if t.starts_with("composio."))
        && matches!(map.get("metadata"), Some(Value::Object(_)))
        && map.contains_key("id")
        && map.contains_key("data")
}

/// A V3 envelope as it comes off the wire, read in one pass: identity fields borrowed,
/// `metadata` into its few fields, `data` into `D` (the payload `Value`, or [`Skip`] when
/// only the identity is wanted), everything else validated and dropped. A `metadata` that
/// is not an object fails the read (such a body is not V3 to the general path either, which
/// then takes it).
struct Wire<'a, D> {
    kind: Lenient<'a>,
    id: Lenient<'a>,
    timestamp: Lenient<'a>,
    metadata: Option<WireMetadata<'a>>,
    /// `Some` when `data` is there (`null` included).
    data: Option<D>,
}

impl<D> Default for Wire<'_, D> {
    fn default() -> Self {
        Wire {
            kind: Lenient::Missing,
            id: Lenient::Missing,
            timestamp: Lenient::Missing,
            metadata: None,
            data: None,
        }
    }
}

/// A V3 trigger message's `metadata`.
#[derive(Default)]
struct WireMetadata<'a> {
    trigger_id: Lenient<'a>,
    trigger_slug: Lenient<'a>,
    user_id: Lenient<'a>,
    connected_account_id: Lenient<'a>,
    auth_config_id: Lenient<'a>,
    log_id: Lenient<'a>,
}

/// Reads a map's entries into `slot_for(key)`'s fields; other keys are validated and
/// skipped. A key seen twice is an error (the general path keeps the last one; the fast
/// path leaves such a body to it).
fn read_fields<'de, A, F>(mut map: A, fields: &mut F) -> Result<(), A::Error>
where
    A: serde::de::MapAccess<'de>,
    F: Fields<'de>,
    F::Data: Deserialize<'de>,
{
    use serde::de::Error;
    while let Some(key) = map.next_key::<Lenient<'de>>()? {
        let Lenient::Str(key) = key else {
            return Err(A::Error::custom("a non-string key"));
        };
        match fields.slot(&key) {
            Some(Slot::Lenient(slot)) => {
                if slot.is_present() {
                    return Err(A::Error::custom("a duplicate key"));
                }
                *slot = map.next_value()?;
            }
            Some(Slot::Metadata(slot)) => {
                if slot.is_some() {
                    return Err(A::Error::custom("a duplicate key"));
                }
                *slot = Some(map.next_value()?);
            }
            Some(Slot::Data(slot)) => {
                if slot.is_some() {
                    return Err(A::Error::custom("a duplicate key"));
                }
                *slot = Some(map.next_value()?);
            }
            None => {
                map.next_value::<Skip>()?;
            }
        }
    }
    Ok(())
}

/// A struct read by [`read_fields`]: where each known key's value goes.
trait Fields<'a> {
    /// What `data` is read into, where there is a `data`.
    type Data;
    fn slot(&mut self, key: &str) -> Option<Slot<'_, 'a, Self::Data>>;
}

impl<'a, D> Fields<'a> for Wire<'a, D> {
    type Data = D;
    fn slot(&mut self, key: &str) -> Option<Slot<'_, 'a, D>> {
        match key {
            "type" => Some(Slot::Lenient(&mut self.kind)),
            "id" => Some(Slot::Lenient(&mut self.id)),
            "timestamp" => Some(Slot::Lenient(&mut self.timestamp)),
            "metadata" => Some(Slot::Metadata(&mut self.metadata)),
            "data" => Some(Slot::Data(&mut self.data)),
            _ => None,
        }
    }
}

impl<'a> Fields<'a> for WireMetadata<'a> {
    type Data = Skip;
    fn slot(&mut self, key: &str) -> Option<Slot<'_, 'a, Skip>> {
        match key {
            "trigger_id" => Some(Slot::Lenient(&mut self.trigger_id)),
            "trigger_slug" => Some(Slot::Lenient(&mut self.trigger_slug)),
            "user_id" => Some(Slot::Lenient(&mut self.user_id)),
            "connected_account_id" => Some(Slot::Lenient(&mut self.connected_account_id)),
            "auth_config_id" => Some(Slot::Lenient(&mut self.auth_config_id)),
            "log_id" => Some(Slot::Lenient(&mut self.log_id)),
            _ => None,
        }
    }
}

/// Where a known key's value goes.
enum Slot<'s, 'a, D> {
    Lenient(&'s mut Lenient<'a>),
    Metadata(&'s mut Option<WireMetadata<'a>>),
    Data(&'s mut Option<D>),
}

impl<'de: 'a, 'a, P: Deserialize<'de>> Deserialize<'de> for Wire<'a, P> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<P>(std::marker::PhantomData<P>);
        impl<'de, P: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<P> {
            type Value = Wire<'de, P>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a V3 envelope object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Wire<'de, P>, A::Error> {
                let mut wire = Wire::default();
                read_fields(map, &mut wire)?;
                Ok(wire)
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireMetadata<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = WireMetadata<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a metadata object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut m = WireMetadata::default();
                read_fields(map, &mut m)?;
                Ok(m)
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The fast path for the common case, a V3 trigger message: reads the envelope in one pass
/// into typed, borrowed fields and only the payload into a `Value`, skipping the `Value`
/// tree of the envelope and metadata that [`decode`] builds and then takes apart. Every
/// byte is still validated as the general path's parse would.
///
/// Returns `None` for anything it does not fully handle (another envelope, a lifecycle
/// event, duplicate keys, a `metadata` that is not an object, invalid JSON…); the caller
/// then takes the general path, which gives the same event for every body this one accepts.
pub(super) fn decode_trigger_message(bytes: &[u8]) -> Option<TriggerEvent> {
    let (wire, meta, payload) = read_trigger_message::<Value>(bytes)?;
    Some(trigger_message(TriggerMessage {
        event_type: V3_TRIGGER_MESSAGE.to_owned(),
        event_id: wire.id.into_string(),
        timestamp: wire.timestamp.into_opt_string(),
        payload,
        trigger_id: meta.trigger_id.into_string(),
        trigger_slug: meta.trigger_slug.into_string(),
        user_id: meta.user_id.into_string(),
        account_id: meta.connected_account_id.into_string(),
        auth_config_id: meta.auth_config_id.into_string(),
        log_id: meta.log_id.into_string(),
    }))
}

/// [`decode_trigger_message`] for what needs only an event's identity and passes its bytes
/// on (a JetStream relay): the same bodies are accepted (`data` and every other value are
/// validated as the full read validates them), and the event has only its delivery id,
/// trigger slug, toolkit, type and envelope; the payload is `null` and the other fields are
/// empty (none of them is allocated).
#[cfg(any(feature = "jetstream", feature = "fuzzing", test))]
pub(super) fn decode_trigger_message_identity(bytes: &[u8]) -> Option<TriggerEvent> {
    let (wire, meta, Skip) = read_trigger_message::<Skip>(bytes)?;
    Some(
        TriggerEvent::new(meta.trigger_slug.into_string(), Value::Null)
            .with_event_id(wire.id.into_string()),
    )
}

/// A V3 trigger message's envelope, with its metadata and `data` read into `D`; `None` for
/// anything else (see [`decode_trigger_message`]).
fn read_trigger_message<'a, D: Deserialize<'a>>(
    bytes: &'a [u8],
) -> Option<(Wire<'a, D>, WireMetadata<'a>, D)> {
    // Invalid UTF-8 is the general path's to report.
    let mut wire: Wire<'_, D> = serde_json::from_str(super::as_text(bytes)?).ok()?;
    if !matches!(&wire.kind, Lenient::Str(t) if t == V3_TRIGGER_MESSAGE) || !wire.id.is_present() {
        return None;
    }
    let meta = wire.metadata.take()?;
    let data = wire.data.take()?;
    Some((wire, meta, data))
}

/// A V3 trigger message's fields, however they were read.
struct TriggerMessage {
    event_type: String,
    event_id: String,
    timestamp: Option<String>,
    payload: Value,
    trigger_id: String,
    trigger_slug: String,
    user_id: String,
    account_id: String,
    auth_config_id: String,
    log_id: String,
}

/// The event of a V3 trigger message: the one mapping both decode paths share.
fn trigger_message(m: TriggerMessage) -> TriggerEvent {
    TriggerEvent {
        uuid: m.trigger_id.clone(),
        id: m.trigger_id,
        event_id: m.event_id,
        toolkit_slug: toolkit_of(&m.trigger_slug),
        trigger_slug: m.trigger_slug,
        payload: m.payload,
        original_payload: None,
        metadata: TriggerMetadata {
            trigger_data: None,
            trigger_config: Value::Object(Map::new()),
            connected_account: ConnectedAccount {
                uuid: m.account_id.clone(),
                id: m.account_id,
                auth_config_uuid: m.auth_config_id.clone(),
                auth_config_id: m.auth_config_id,
                user_id: m.user_id.clone(),
                status: String::new(),
            },
            log_id: m.log_id,
            delivery_attempt: None,
            stream: None,
        },
        user_id: m.user_id,
        envelope: Envelope::V3,
        event_type: Some(m.event_type),
        timestamp: m.timestamp,
    }
}

pub(super) fn decode(mut map: Map<String, Value>) -> TriggerEvent {
    let event_type = take_str(&mut map, "type");
    let event_id = take_str(&mut map, "id");
    let timestamp = take_opt_str(&mut map, "timestamp");
    let payload = map.remove("data").unwrap_or(Value::Null);

    if event_type == V3_TRIGGER_MESSAGE {
        let mut meta = take_object(&mut map, "metadata");
        trigger_message(TriggerMessage {
            event_type,
            event_id,
            timestamp,
            payload,
            trigger_id: take_str(&mut meta, "trigger_id"),
            trigger_slug: take_str(&mut meta, "trigger_slug"),
            user_id: take_str(&mut meta, "user_id"),
            account_id: take_str(&mut meta, "connected_account_id"),
            auth_config_id: take_str(&mut meta, "auth_config_id"),
            log_id: take_str(&mut meta, "log_id"),
        })
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
                stream: None,
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
