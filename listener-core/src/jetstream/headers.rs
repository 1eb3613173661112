//! The headers a relay adds to what it publishes, and those of dead letters and replays.
//!
//! The body of a stream message is the envelope as the source received it; what the source
//! learned beside it travels in these headers, which any NATS client can read.

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

/// The names a relay writes for every event as [`HeaderName`]s made at compile time:
/// inserting a `&str` name validates and copies it each time, these neither.
pub(crate) mod name {
    use async_nats::header::HeaderName;

    pub(crate) const MSG_ID: HeaderName = HeaderName::from_static(super::MSG_ID);
    pub(crate) const EVENT_ID: HeaderName = HeaderName::from_static(super::EVENT_ID);
    pub(crate) const DELIVERY_ATTEMPT: HeaderName =
        HeaderName::from_static(super::DELIVERY_ATTEMPT);
    pub(crate) const SOURCE: HeaderName = HeaderName::from_static(super::SOURCE);
    pub(crate) const RECEIVED_AT: HeaderName = HeaderName::from_static(super::RECEIVED_AT);
}

/// What a worker reads from a message's headers (the last value of each), found in one
/// pass over them: a lookup per name would hash every name looked up.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Known<'a> {
    pub(crate) msg_id: Option<&'a str>,
    pub(crate) event_id: Option<&'a str>,
    pub(crate) delivery_attempt: Option<&'a str>,
    pub(crate) replay_group: Option<&'a str>,
    pub(crate) replay_of: Option<&'a str>,
}

impl<'a> Known<'a> {
    /// The headers this module names, out of `headers`.
    pub(crate) fn of(headers: Option<&'a HeaderMap>) -> Self {
        let mut known = Known::default();
        for (name, values) in headers.into_iter().flat_map(HeaderMap::iter) {
            let slot = match name.as_ref() {
                MSG_ID => &mut known.msg_id,
                EVENT_ID => &mut known.event_id,
                DELIVERY_ATTEMPT => &mut known.delivery_attempt,
                REPLAY_GROUP => &mut known.replay_group,
                REPLAY_OF => &mut known.replay_of,
                _ => continue,
            };
            *slot = values.last().map(|v| v.as_str());
        }
        known
    }
}

/// The longest header value written (an error message is cut to it).
const MAX_VALUE: usize = 1024;

/// `value` as a header value: control characters (CR and LF end a header line) become
/// spaces, and it is cut to [`MAX_VALUE`] bytes at a character boundary.
pub(crate) fn value(text: &str) -> String {
    // The common case (a delivery id, a source's name): nothing to change.
    if text.len() <= MAX_VALUE && text.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().min(MAX_VALUE));
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_VALUE {
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use async_nats::header::HeaderName;

    use super::*;

    #[test]
    fn the_static_names_are_the_names() {
        for (fast, text) in [
            (name::MSG_ID, MSG_ID),
            (name::EVENT_ID, EVENT_ID),
            (name::DELIVERY_ATTEMPT, DELIVERY_ATTEMPT),
            (name::SOURCE, SOURCE),
            (name::RECEIVED_AT, RECEIVED_AT),
        ] {
            assert_eq!(fast, text.parse::<HeaderName>().unwrap(), "{text}");
        }
    }

    #[test]
    fn known_headers_are_found_in_one_pass_with_their_last_value() {
        let mut h = HeaderMap::new();
        h.insert(name::MSG_ID, "m");
        h.insert(name::EVENT_ID, "e");
        h.insert(DELIVERY_ATTEMPT, "3");
        h.insert(REPLAY_GROUP, "g");
        h.append(REPLAY_OF, "1");
        h.append(REPLAY_OF, "7");
        h.insert(SOURCE, "not looked for");
        let k = Known::of(Some(&h));
        assert_eq!(k.msg_id, Some("m"));
        assert_eq!(k.event_id, Some("e"));
        assert_eq!(k.delivery_attempt, Some("3"));
        assert_eq!(k.replay_group, Some("g"));
        assert_eq!(k.replay_of, Some("7"));
        let none = Known::of(None);
        assert!(none.msg_id.is_none() && none.replay_of.is_none());
        // Names are exact, as the server's are.
        let mut lower = HeaderMap::new();
        lower.insert("nats-msg-id", "m");
        assert!(Known::of(Some(&lower)).msg_id.is_none());
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
