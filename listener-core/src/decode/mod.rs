//! Decoding: raw bytes in any envelope → one [`TriggerEvent`].
//!
//! The common case, a V3 trigger message, takes a fast path: the envelope is read into
//! typed, borrowed fields and only the payload becomes a `serde_json::Value`. Everything
//! else is parsed once into a `Value`; the payload sub-tree is then *moved* into the event,
//! never cloned. Both paths give the same event for any body the fast path accepts. Detection, in this order: V3
//! (`type` starting with `composio.`, an object `metadata`, `id` and `data` present), legacy
//! realtime (an object `metadata` carrying `triggerName`/`nanoId`/`connection`, or
//! `appName`), V2 (`type`, `timestamp` and an object `data` holding `connection_id`), V1
//! (`trigger_name`, `connection_id`, `trigger_id` and `payload`), admin events (`type`
//! starting with `connected_account.` and an object `data` naming the account or the
//! integration). An admin event is accepted whatever envelope version a webhook announces:
//! admin events come from a webhook of their own, whose version header (if any) describes
//! trigger deliveries.
//!
//! Two deliberate choices about what JSON is accepted:
//! - A leading UTF-8 byte order mark is skipped (RFC 8259 §8.1 lets a parser ignore one;
//!   some HTTP clients add it).
//! - A number beyond what a 64-bit float holds (past ±1.8e308, such as a 400-digit integer)
//!   refuses the whole event with [`DecodeError::NumberOutOfRange`]: it cannot reach a handler
//!   faithfully, and rounding it to infinity or cutting it would hand the handler a value
//!   the sender never sent. Integers up to 64 bits and ordinary floats are exact as usual.

mod admin;
pub(crate) mod error;
mod fields;
mod legacy;
mod v1_v2;
mod v3;

pub use error::DecodeError;

use serde_json::{Map, Value};

use crate::event::{Envelope, TriggerEvent};

/// Decoding's own result.
type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Decodes one event from raw bytes, detecting its envelope.
///
/// ```
/// let ev = listener_core::decode::decode(br#"{
///     "id": "evt_1", "type": "composio.trigger.message", "timestamp": "2026-01-01T00:00:00Z",
///     "metadata": {"trigger_slug": "SLACK_RECEIVE_MESSAGE", "user_id": "default"},
///     "data": {"text": "hi"}
/// }"#).unwrap();
/// assert_eq!(ev.trigger_slug, "SLACK_RECEIVE_MESSAGE");
/// assert_eq!(ev.toolkit_slug, "SLACK");
/// assert_eq!(ev.payload["text"], "hi");
/// ```
pub fn decode(bytes: &[u8]) -> Result<TriggerEvent> {
    let bytes = without_bom(bytes);
    if let Some(event) = v3::decode_trigger_message(bytes) {
        return Ok(event);
    }
    decode_general(bytes)
}

/// What a relay needs of an event, which it routes and stores as bytes (whoever handles it
/// decodes them in full): accepts and refuses the same bodies as [`decode`], with the same
/// delivery id, trigger slug, toolkit, type and envelope. For a V3 trigger message that is
/// all the event has: the payload is validated (exactly as [`decode`] validates it) but
/// not built, it is `null`, and the other fields are empty. Other envelopes decode in full.
#[cfg(any(feature = "jetstream", feature = "fuzzing", test))]
pub(crate) fn decode_identity(bytes: &[u8]) -> Result<TriggerEvent> {
    let bytes = without_bom(bytes);
    if let Some(event) = v3::decode_trigger_message_identity(bytes) {
        return Ok(event);
    }
    decode_general(bytes)
}

/// The general path: parse into a `Value`, detect, then take the fields apart.
fn decode_general(bytes: &[u8]) -> Result<TriggerEvent> {
    decode_value(parse_json(bytes)?)
}

/// The fast path alone, for the fuzz targets (`crate::__fuzz`).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_fast(bytes: &[u8]) -> Option<TriggerEvent> {
    v3::decode_trigger_message(without_bom(bytes))
}

/// The general path alone, for the fuzz targets (`crate::__fuzz`).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_general(bytes: &[u8]) -> Result<TriggerEvent> {
    decode_general(without_bom(bytes))
}

/// The body without a leading UTF-8 byte order mark.
fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Parses JSON as decoding does (a leading byte order mark skipped, an out-of-range number
/// told apart from other invalid JSON), for a server that reads event bodies itself.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    parse_json(without_bom(bytes))
}

/// The body as text when it is valid UTF-8: parsing a `&str` skips serde_json's check of
/// each string it reads (one pass over the whole body costs less than tens of small
/// ones). Invalid UTF-8 is parsed from the bytes, so that the error says where it is.
fn as_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// [`parse`] of bytes already without their byte order mark.
fn parse_json(bytes: &[u8]) -> Result<Value> {
    match as_text(bytes) {
        Some(text) => serde_json::from_str(text),
        None => serde_json::from_slice(bytes),
    }
    .map_err(|source| {
        // serde_json has no error code to match; its message for this case has been the
        // same since 1.0.
        if source.to_string().starts_with("number out of range") {
            DecodeError::NumberOutOfRange {
                line: source.line(),
                column: source.column(),
            }
        } else {
            DecodeError::invalid_json(source)
        }
    })
}

/// Decodes one event from an already parsed JSON value, detecting its envelope.
pub fn decode_value(value: Value) -> Result<TriggerEvent> {
    let map = into_object(value)?;
    match detect(&map) {
        Some(envelope) => decode_as(envelope, map),
        None => Err(unknown(&map)),
    }
}

/// Decodes bytes that must be in the given envelope; a body of another shape is
/// [`DecodeError::EnvelopeMismatch`] (or [`DecodeError::UnknownEnvelope`] if it has no known shape).
pub fn decode_expecting(bytes: &[u8], expected: Envelope) -> Result<TriggerEvent> {
    let bytes = without_bom(bytes);
    if expected == Envelope::V3 {
        if let Some(event) = v3::decode_trigger_message(bytes) {
            return Ok(event);
        }
    }
    let map = into_object(parse_json(bytes)?)?;
    match detect(&map) {
        Some(actual) if actual == expected || actual == Envelope::Admin => decode_as(actual, map),
        Some(actual) => Err(DecodeError::EnvelopeMismatch {
            announced: expected.to_string(),
            actual,
        }),
        None => Err(unknown(&map)),
    }
}

/// Which envelope an object is in, if any.
pub fn detect(map: &Map<String, Value>) -> Option<Envelope> {
    if v3::is_v3(map) {
        Some(Envelope::V3)
    } else if legacy::is_legacy(map) {
        Some(Envelope::LegacyRealtime)
    } else if v1_v2::is_v2(map) {
        Some(Envelope::V2)
    } else if v1_v2::is_v1(map) {
        Some(Envelope::V1)
    } else if admin::is_admin(map) {
        Some(Envelope::Admin)
    } else {
        None
    }
}

fn decode_as(envelope: Envelope, map: Map<String, Value>) -> Result<TriggerEvent> {
    match envelope {
        Envelope::V3 => Ok(v3::decode(map)),
        Envelope::LegacyRealtime => Ok(legacy::decode(map)),
        Envelope::V2 => Ok(v1_v2::decode_v2(map)),
        Envelope::V1 => Ok(v1_v2::decode_v1(map)),
        Envelope::Admin => Ok(admin::decode(map)),
    }
}

fn into_object(value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(DecodeError::NotAnObject {
            found: crate::preview::json_type(&other),
        }),
    }
}

fn unknown(map: &Map<String, Value>) -> DecodeError {
    let reason = match map.get("type") {
        Some(Value::String(t)) if t.starts_with("composio.") => {
            "a `composio.*` type needs an object `metadata`, an `id` and `data`"
        }
        Some(Value::String(_)) if map.contains_key("data") => {
            "a V2 body needs `timestamp` and an object `data` with `connection_id`"
        }
        _ if map.contains_key("trigger_name") => {
            "a V1 body needs `trigger_name`, `connection_id`, `trigger_id` and `payload`"
        }
        _ => "not a V1, V2, V3 or legacy realtime envelope",
    };
    DecodeError::UnknownEnvelope {
        reason,
        keys: fields::key_list(map),
    }
}

#[cfg(test)]
mod tests;
