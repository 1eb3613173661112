//! Ingest: `POST /hub/events` publishes one event (any envelope, or a bare payload plus a
//! trigger slug, wrapped into a V3 envelope with fresh ids and timestamp) to every
//! subscriber, chunked when larger than the chunk size, and to every webhook subscription.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::realtime_api::api_error;
use super::trigger_instances::{is_not_active, TriggerInstances};
use super::{ids, HubState};
use listener_core::decode::DecodeError;
use listener_core::ConfigError;
use listener_core::V3_TRIGGER_MESSAGE;
use listener_core::{decode, Error, Result};

/// A bare payload to wrap into a V3 trigger message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BareEvent {
    /// The trigger slug (`SLACK_RECEIVE_MESSAGE`).
    pub trigger_slug: String,
    /// The trigger payload (`data` of the envelope).
    #[serde(default)]
    pub payload: Value,
    /// The user id (when absent: the matching trigger instance's, else `default`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The trigger instance id (when absent: the matching active instance's, else fresh).
    #[serde(default)]
    pub trigger_id: Option<String>,
    /// The connected account id (when absent: the matching instance's, else fresh).
    #[serde(default)]
    pub connected_account_id: Option<String>,
    /// The auth config id (when absent: the matching instance's, else fresh).
    #[serde(default)]
    pub auth_config_id: Option<String>,
}

impl BareEvent {
    /// The V3 envelope for this payload, with a fresh event id, log id and timestamp (and
    /// fresh ids for what the event leaves out: publishing a bare event through the hub
    /// fills them from the matching trigger instance first).
    pub fn into_envelope(self) -> Value {
        json!({
            "id": ids::fresh("evt_"),
            "type": V3_TRIGGER_MESSAGE,
            "timestamp": ids::now_rfc3339(),
            "metadata": {
                "log_id": ids::fresh("log_"),
                "trigger_slug": self.trigger_slug,
                "trigger_id": self.trigger_id.unwrap_or_else(|| ids::fresh("ti_")),
                "connected_account_id": self.connected_account_id.unwrap_or_else(|| ids::fresh("ca_")),
                "auth_config_id": self.auth_config_id.unwrap_or_else(|| ids::fresh("ac_")),
                "user_id": self.user_id.unwrap_or_else(|| "default".to_owned()),
            },
            "data": self.payload,
        })
    }
}

/// What publishing one event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The event's id (its `id`, or `log_id` for V1/V2 bodies; `""` if it has none).
    pub id: String,
    /// The event type used to match webhook subscriptions (`composio.trigger.message`, …).
    pub event_type: String,
    /// Websocket subscribers that were sent the event.
    pub subscribers: usize,
    /// Frames per subscriber: 1, or the number of chunks.
    pub frames: usize,
    /// Webhook subscriptions the event was queued for.
    pub webhooks: usize,
}

/// Turns an ingest body into the envelope to send: envelopes are kept as they are (their
/// exact bytes), bare payloads are wrapped. A trigger message gets the id of the trigger
/// instance it matches (see [`TriggerInstances`]); a strict hub refuses one that matches none.
pub(crate) fn prepare(
    body: &[u8],
    triggers: &TriggerInstances,
) -> Result<(String, String, String)> {
    let value = decode::parse(body)?;
    prepare_value(value, Some(body), triggers)
}

/// [`prepare`] for an already parsed event; `raw` is its exact text when there is one (an
/// envelope is then sent byte for byte unless a trigger instance's ids were written in),
/// else the value is serialized once.
pub(crate) fn prepare_value(
    value: Value,
    mut raw: Option<&[u8]>,
    triggers: &TriggerInstances,
) -> Result<(String, String, String)> {
    let Value::Object(mut map) = value else {
        return Err(Error::Decode(DecodeError::NotAnObject {
            found: "a non-object",
        }));
    };
    if let Some(envelope) = decode::detect(&map) {
        match envelope {
            listener_core::Envelope::V3 => {
                let message = map.get("type").and_then(Value::as_str) == Some(V3_TRIGGER_MESSAGE);
                if message && triggers.attach_v3(&mut map)? {
                    raw = None;
                }
            }
            listener_core::Envelope::Admin => {}
            _ => triggers.check_other(&map)?,
        }
        let (id, event_type) = identity(&map, envelope);
        let text = match raw {
            Some(body) => String::from_utf8_lossy(body).into_owned(),
            None => Value::Object(map).to_string(),
        };
        return Ok((text, id, event_type));
    }
    if map.contains_key("trigger_slug") {
        let bare: BareEvent = serde_json::from_value(Value::Object(map)).map_err(|e| {
            Error::Config(ConfigError {
                key: "event".into(),
                message: format!("not a bare event ({{trigger_slug, payload, user_id?}}): {e}"),
            })
        })?;
        return prepare_bare(bare, triggers);
    }
    // Neither: let the decoder name the problem.
    Err(decode::decode_value(Value::Object(map))
        .err()
        .unwrap_or(DecodeError::UnknownEnvelope {
            reason: "not an envelope",
            keys: String::new(),
        })
        .into())
}

/// Wraps a bare event into a V3 trigger message, with the ids of the trigger instance it
/// matches where it names none.
pub(crate) fn prepare_bare(
    mut bare: BareEvent,
    triggers: &TriggerInstances,
) -> Result<(String, String, String)> {
    if bare.trigger_slug.trim().is_empty() {
        return Err(Error::Config(ConfigError {
            key: "trigger_slug".into(),
            message: "must not be empty".into(),
        }));
    }
    triggers.attach_bare(&mut bare)?;
    let envelope = bare.into_envelope();
    let id = envelope["id"].as_str().unwrap_or_default().to_owned();
    Ok((envelope.to_string(), id, V3_TRIGGER_MESSAGE.to_owned()))
}

fn identity(map: &Map<String, Value>, envelope: listener_core::Envelope) -> (String, String) {
    let s = |k: &str| {
        map.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match envelope {
        listener_core::Envelope::V3 => (s("id"), s("type")),
        listener_core::Envelope::V2 | listener_core::Envelope::V1 => {
            (s("log_id"), V3_TRIGGER_MESSAGE.to_owned())
        }
        listener_core::Envelope::LegacyRealtime => (String::new(), V3_TRIGGER_MESSAGE.to_owned()),
        // No id of its own; its type is what a webhook subscription enables.
        listener_core::Envelope::Admin => (String::new(), s("type")),
    }
}

pub(crate) async fn ingest(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let ndjson = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    if !ndjson {
        return match hub.publish_bytes(&body) {
            Ok(published) => (StatusCode::ACCEPTED, Json(json!(published))),
            Err(e) => api_error(refusal_status(&e), &e.to_string()),
        };
    }
    let prepared = match prepare_ndjson(&body, &hub.triggers.instances) {
        Ok(prepared) => prepared,
        Err((status, message)) => return api_error(status, &message),
    };
    let published: Vec<Published> = prepared
        .into_iter()
        .map(|(text, id, event_type)| hub.publish_envelope(text, id, event_type))
        .collect();
    (
        StatusCode::ACCEPTED,
        Json(json!({"published": published.len(), "items": published})),
    )
}

/// 409 for a strict hub's refusal of an event of a trigger that is not active, else 400.
fn refusal_status(e: &Error) -> StatusCode {
    if is_not_active(e) {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// An event ready to publish: `(text sent, event id, event type)`, as [`prepare`] gives it.
pub(crate) type Prepared = (String, String, String);

/// One event per line of an NDJSON body (blank lines skipped), every line checked before
/// any is published: each line prepared as [`prepare`] does, or the first bad line's
/// status and error (`line N: …`).
pub(crate) fn prepare_ndjson(
    body: &[u8],
    triggers: &TriggerInstances,
) -> std::result::Result<Vec<Prepared>, (StatusCode, String)> {
    let mut prepared = Vec::new();
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match prepare(line, triggers) {
            Ok(p) => prepared.push(p),
            Err(e) => return Err((refusal_status(&e), format!("line {}: {e}", n + 1))),
        }
    }
    Ok(prepared)
}

/// Splits `body` into pieces of at most `size` bytes, never inside a character.
pub(crate) fn split(body: &str, size: usize) -> Vec<&str> {
    let size = size.max(4);
    let mut pieces = Vec::with_capacity(body.len() / size + 1);
    let mut rest = body;
    while rest.len() > size {
        let mut cut = size;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_size_and_characters() {
        let s = "ab€cd€".repeat(100);
        for size in [4, 5, 7, 64] {
            let parts = split(&s, size);
            assert!(parts.iter().all(|p| p.len() <= size));
            assert_eq!(parts.concat(), s);
        }
        assert_eq!(split("abc", 10), vec!["abc"]);
    }

    fn prepare(body: &[u8]) -> Result<(String, String, String)> {
        super::prepare(body, &TriggerInstances::new(0, false))
    }

    #[test]
    fn bare_events_are_wrapped_and_envelopes_kept() {
        let (text, id, ty) =
            prepare(br#"{"trigger_slug":"SLACK_RECEIVE_MESSAGE","payload":{"text":"hi"}}"#)
                .unwrap();
        assert!(id.starts_with("evt_"));
        assert_eq!(ty, V3_TRIGGER_MESSAGE);
        let ev = decode::decode(text.as_bytes()).unwrap();
        assert_eq!(ev.trigger_slug, "SLACK_RECEIVE_MESSAGE");
        assert_eq!(ev.user_id, "default");
        assert_eq!(ev.event_id, id);
        assert_eq!(ev.payload["text"], "hi");
        assert!(ev.timestamp.unwrap().ends_with('Z'));

        let raw = br#"{"id":"evt_x","type":"composio.connected_account.expired","metadata":{},"data":{}}"#;
        let (text, id, ty) = prepare(raw).unwrap();
        assert_eq!(text.as_bytes(), raw);
        assert_eq!(
            (id.as_str(), ty.as_str()),
            ("evt_x", "composio.connected_account.expired")
        );

        assert!(prepare(b"[]").is_err());
        assert!(prepare(br#"{"hello":1}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown event envelope"));
        assert!(prepare(br#"{"trigger_slug":""}"#).is_err());
    }
}
