//! The headers a relay adds to what it publishes, and those of dead letters and replays.
//!
//! The body of a stream message is the envelope as the source received it; what the source
//! learned beside it travels in these headers, which any NATS client can read.

use async_nats::header::HeaderName;
use async_nats::HeaderMap;

/// JetStream's deduplication header: the event's delivery id, or a digest of the body when
/// the envelope carries none.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The event's delivery id, when the body may not say it: a webhook's `webhook-id`. Absent
/// when the body is the envelope the event was decoded from, unchanged (its own `id` is the
/// delivery id, and `Nats-Msg-Id` repeats it).
pub const EVENT_ID: &str = "Listener-Event-Id";
/// The webhook sender's delivery attempt (`x-composio-delivery-attempt`), when it said.
pub const DELIVERY_ATTEMPT: &str = "Listener-Delivery-Attempt";
/// The source that received the event (its name: no credentials).
pub const SOURCE: &str = "Listener-Source";
/// When the relay received the event (RFC 3339, UTC, milliseconds).
pub const RECEIVED_AT: &str = "Listener-Received-At";

/// A dead letter: why the last delivery failed.
pub const DEAD_ERROR: &str = "Listener-Dead-Error";
/// A dead letter: the handler(s) that failed (comma-separated), or `decode` for a body
/// that is not an event.
pub const DEAD_HANDLER: &str = "Listener-Dead-Handler";
/// A dead letter: how many times the group was given the event.
pub const DEAD_DELIVERIES: &str = "Listener-Dead-Deliveries";
/// A dead letter: the group it died in.
pub const DEAD_GROUP: &str = "Listener-Dead-Group";
/// A dead letter: the subject it had in the stream (where a replay puts it back).
pub const DEAD_SUBJECT: &str = "Listener-Dead-Subject";
/// A dead letter: its sequence in the stream.
pub const DEAD_SEQUENCE: &str = "Listener-Dead-Sequence";

/// A replayed dead letter: only this group runs it (the others had it already).
pub const REPLAY_GROUP: &str = "Listener-Replay-Group";
/// A replayed dead letter: the stream sequence it was first stored at.
pub const REPLAY_OF: &str = "Listener-Replay-Of";

/// The names above as [`HeaderName`]s made at compile time, for the paths every event takes:
/// inserting or looking up a `&str` name validates and copies it each time, these neither.
pub(crate) mod name {
    use async_nats::header::HeaderName;

    pub(crate) const MSG_ID: HeaderName = HeaderName::from_static(super::MSG_ID);
    pub(crate) const EVENT_ID: HeaderName = HeaderName::from_static(super::EVENT_ID);
    pub(crate) const DELIVERY_ATTEMPT: HeaderName =
        HeaderName::from_static(super::DELIVERY_ATTEMPT);
    pub(crate) const SOURCE: HeaderName = HeaderName::from_static(super::SOURCE);
    pub(crate) const RECEIVED_AT: HeaderName = HeaderName::from_static(super::RECEIVED_AT);
    pub(crate) const REPLAY_GROUP: HeaderName = HeaderName::from_static(super::REPLAY_GROUP);
    pub(crate) const REPLAY_OF: HeaderName = HeaderName::from_static(super::REPLAY_OF);
}

/// The longest header value written (an error message is cut to it).
const MAX_VALUE: usize = 1024;

/// `value` as a header value: control characters (CR and LF end a header line) become
/// spaces, and it is cut to [`MAX_VALUE`] bytes at a character boundary.
pub(crate) fn value(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_VALUE));
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_VALUE {
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// The last value of `name` (one of [`name`]'s), when there is one.
pub(crate) fn get(headers: Option<&HeaderMap>, name: HeaderName) -> Option<&str> {
    headers?.get_last(name).map(|v| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_names_are_the_names() {
        for (fast, text) in [
            (name::MSG_ID, MSG_ID),
            (name::EVENT_ID, EVENT_ID),
            (name::DELIVERY_ATTEMPT, DELIVERY_ATTEMPT),
            (name::SOURCE, SOURCE),
            (name::RECEIVED_AT, RECEIVED_AT),
            (name::REPLAY_GROUP, REPLAY_GROUP),
            (name::REPLAY_OF, REPLAY_OF),
        ] {
            assert_eq!(fast, text.parse::<HeaderName>().unwrap(), "{text}");
            let mut h = HeaderMap::new();
            h.insert(text, "v");
            assert_eq!(get(Some(&h), fast), Some("v"), "{text}");
        }
    }

    #[test]
    fn values_never_break_a_header_line() {
        assert_eq!(value("bad\r\nInjected: yes"), "bad  Injected: yes");
        let long = "\u{e9}".repeat(2000);
        let cut = value(&long);
        assert!(cut.len() <= MAX_VALUE && cut.len() >= MAX_VALUE - 1);
        assert!(cut.chars().all(|c| c == '\u{e9}'));
    }
}
