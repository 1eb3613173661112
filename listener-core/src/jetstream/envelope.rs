//! Stream messages and events: what a relay publishes for an event, and the event a worker
//! reads back from a message.

use std::time::SystemTime;

use async_nats::HeaderMap;
use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::headers;
use super::subject::subject_of;
use crate::decode;
use crate::error::Error;
use crate::event::TriggerEvent;
use crate::source::Body;

/// One message for the stream. Its headers are written for each publish from what is kept
/// here (a publish that is not acknowledged is published again), rather than kept as a
/// header map and copied for each publish.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) subject: String,
    pub(crate) payload: Bytes,
    /// `Nats-Msg-Id`.
    pub(crate) msg_id: String,
    /// Whether the event's delivery id (`msg_id` then) goes in `Listener-Event-Id`: it had
    /// one and the body may not say it.
    event_id_header: bool,
    attempt: Option<u32>,
    source: String,
    received_at: String,
}

impl Outgoing {
    /// The message for `event`, received by `source`: the body is the bytes as they
    /// arrived or, when the source gave none, the event written as a V3 envelope.
    pub(crate) fn new(prefix: &str, source: &str, event: &TriggerEvent, body: Body<'_>) -> Self {
        let payload = match body {
            Body::Decoded(bytes) | Body::Received(bytes) => Bytes::copy_from_slice(bytes),
            Body::None => Bytes::from(encode_v3(event)),
        };
        let has_event_id = !event.event_id.is_empty();
        let msg_id = if has_event_id {
            headers::value(&event.event_id)
        } else {
            digest_id(&payload)
        };
        Outgoing {
            subject: subject_of(prefix, event),
            payload,
            msg_id,
            event_id_header: has_event_id && matches!(body, Body::Received(_)),
            attempt: event.metadata.delivery_attempt,
            source: headers::value(source),
            received_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        }
    }

    /// The message's headers ([`headers`]): `Nats-Msg-Id`, the source and the receive time,
    /// and, when the source had them, a delivery id the body does not say and the sender's
    /// attempt.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::name::MSG_ID, self.msg_id.clone());
        if self.event_id_header {
            h.insert(headers::name::EVENT_ID, self.msg_id.clone());
        }
        if let Some(attempt) = self.attempt {
            h.insert(headers::name::DELIVERY_ATTEMPT, attempt.to_string());
        }
        h.insert(headers::name::SOURCE, self.source.clone());
        h.insert(headers::name::RECEIVED_AT, self.received_at.clone());
        h
    }

    /// What it costs the relay's buffer: body, subject and headers, roughly.
    pub(crate) fn size(&self) -> usize {
        self.payload.len() + self.subject.len() + 256
    }
}

/// The id of a body without one: `sha256-` and 32 hex digits of its digest, so that relays
/// receiving the same frame give it the same id.
fn digest_id(payload: &[u8]) -> String {
    let digest = Sha256::digest(payload);
    let mut id = String::with_capacity(7 + 32);
    id.push_str("sha256-");
    for b in &digest[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// `event` as a V3 envelope, for events a source handed over without their bytes: identity,
/// account, timestamp and payload survive; `original_payload` and `trigger_config` do not.
pub(crate) fn encode_v3(event: &TriggerEvent) -> Vec<u8> {
    let account = &event.metadata.connected_account;
    let body = if event.is_lifecycle() {
        json!({
            "id": event.event_id,
            "type": event.event_type,
            "timestamp": event.timestamp,
            "metadata": {},
            "data": event.payload,
        })
    } else {
        json!({
            "id": event.event_id,
            "type": crate::event::V3_TRIGGER_MESSAGE,
            "timestamp": event.timestamp,
            "metadata": {
                "trigger_id": event.id,
                "trigger_slug": event.trigger_slug,
                "user_id": event.user_id,
                "connected_account_id": account.id,
                "auth_config_id": account.auth_config_id,
                "log_id": event.metadata.log_id,
            },
            "data": event.payload,
        })
    };
    serde_json::to_vec(&body).unwrap_or_else(|_| b"null".to_vec())
}

/// The event in a stream message: its body decoded as any envelope, then what the relay put
/// in the headers (a delivery id the body does not say, the sender's attempt). A body
/// without an id keeps the message id (`Nats-Msg-Id`) as its delivery id.
pub(crate) fn read_event(
    payload: &[u8],
    known: &headers::Known<'_>,
) -> Result<TriggerEvent, Error> {
    let mut event = decode::decode(payload)?;
    if let Some(id) = known.event_id.filter(|v| !v.is_empty()) {
        event.event_id = id.to_owned();
    } else if event.event_id.is_empty() {
        if let Some(id) = known.msg_id {
            event.event_id = id.to_owned();
        }
    }
    if let Some(attempt) = known
        .delivery_attempt
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        event.metadata.delivery_attempt = Some(attempt);
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_without_bytes_survives_the_stream() {
        let ev = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({"text": "hi"}))
            .with_event_id("evt_1")
            .with_trigger_id("ti_1")
            .with_user_id("u1");
        let out = Outgoing::new("listener", "test", &ev, Body::None);
        assert_eq!(out.subject, "listener.slack.slack_receive_message");
        assert_eq!(out.msg_id, "evt_1");
        let h = out.headers();
        for (name, value) in [(headers::MSG_ID, "evt_1"), (headers::SOURCE, "test")] {
            assert_eq!(h.get(name).map(|v| v.as_str()), Some(value), "{name}");
        }
        // The written body says the id; there was no attempt.
        assert!(h.get(headers::EVENT_ID).is_none());
        assert!(h.get(headers::DELIVERY_ATTEMPT).is_none());
        assert!(humantime::parse_rfc3339(h.get(headers::RECEIVED_AT).unwrap().as_str()).is_ok());
        assert_eq!(out.headers(), h, "every publish carries the same headers");
        let back = read_event(&out.payload, &headers::Known::of(Some(&out.headers()))).unwrap();
        assert_eq!(back.event_id, "evt_1");
        assert_eq!(back.id, "ti_1");
        assert_eq!(back.user_id, "u1");
        assert_eq!(back.trigger_slug, "SLACK_RECEIVE_MESSAGE");
        assert_eq!(back.payload, json!({"text": "hi"}));
    }

    #[test]
    fn the_body_is_the_envelope_as_it_arrived_and_headers_carry_the_rest() {
        let body = br#"{"type":"slack_receive_message","timestamp":"t","log_id":"log_1","data":{"text":"x","connection_id":"c"}}"#;
        let mut ev = decode::decode(body).unwrap();
        ev.event_id = "msg_webhook".into();
        ev.metadata.delivery_attempt = Some(3);
        let out = Outgoing::new("listener", "webhook", &ev, Body::Received(body));
        assert_eq!(&out.payload[..], &body[..]);
        assert_eq!(out.msg_id, "msg_webhook");
        assert_eq!(
            out.headers().get(headers::EVENT_ID).map(|v| v.as_str()),
            Some("msg_webhook"),
            "an id the body does not say travels in a header"
        );
        let back = read_event(&out.payload, &headers::Known::of(Some(&out.headers()))).unwrap();
        assert_eq!(back.event_id, "msg_webhook");
        assert_eq!(back.metadata.delivery_attempt, Some(3));
    }

    #[test]
    fn bodies_without_an_id_get_the_same_digest_everywhere() {
        let body = br#"{"appName":"slack","clientId":"c","payload":{},"originalPayload":{},"metadata":{"id":"ti","triggerName":"SLACK_X","connection":{}}}"#;
        let ev = decode::decode(body).unwrap();
        assert!(ev.event_id.is_empty());
        let a = Outgoing::new("p", "relay-a", &ev, Body::Decoded(body));
        let b = Outgoing::new("p", "relay-b", &ev, Body::Decoded(body));
        assert_eq!(a.msg_id, b.msg_id);
        assert!(a.msg_id.starts_with("sha256-") && a.msg_id.len() == 39);
        assert_eq!(
            read_event(&a.payload, &headers::Known::of(Some(&a.headers())))
                .unwrap()
                .event_id,
            a.msg_id
        );
    }

    #[test]
    fn a_decoded_body_says_its_id_itself() {
        let body = br#"{"id":"evt_9","type":"composio.trigger.message","metadata":{"trigger_slug":"SLACK_X"},"data":{}}"#;
        let ev = decode::decode(body).unwrap();
        let out = Outgoing::new("p", "realtime", &ev, Body::Decoded(body));
        let h = out.headers();
        assert_eq!(h.get(headers::MSG_ID).map(|v| v.as_str()), Some("evt_9"));
        assert!(h.get(headers::EVENT_ID).is_none());
        assert_eq!(
            read_event(&out.payload, &headers::Known::of(Some(&h)))
                .unwrap()
                .event_id,
            "evt_9"
        );
    }

    #[test]
    fn a_body_that_is_not_an_event_is_a_decode_error() {
        assert!(read_event(b"{not json", &headers::Known::default()).is_err());
    }
}
