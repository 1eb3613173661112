//! Pusher Channels protocol frames (protocol 7): what the client reads and writes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

/// One frame from the server: `{"event": …, "channel": …, "data": …}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Frame<'a> {
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

impl<'a> Frame<'a> {
    pub(crate) fn parse(text: &'a str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// The frame's `data`: a JSON string is unwrapped to its contents (Pusher sends event
    /// data as a JSON-encoded string); anything else is returned as its JSON text.
    pub(crate) fn data_text(&self) -> serde_json::Result<Cow<'a, str>> {
        match self.data {
            None => Ok(Cow::Borrowed("")),
            Some(raw) if raw.get().starts_with('"') => {
                let s: Cow<'a, str> = serde_json::from_str(raw.get())?;
                Ok(s)
            }
            Some(raw) => Ok(Cow::Borrowed(raw.get())),
        }
    }

    /// The frame's `data` parsed as `T`, whether it was sent as an object or as a string
    /// holding one.
    pub(crate) fn data_as<T: for<'de> Deserialize<'de>>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.data_text()?)
    }
}

/// `pusher:connection_established` data.
#[derive(Debug, Deserialize)]
pub(crate) struct Established {
    pub socket_id: String,
    #[serde(default)]
    pub activity_timeout: Option<u64>,
}

/// `pusher:error` data.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PusherError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `pusher:subscription_error` data (shapes vary by server).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SubscriptionErrorData {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub status: Option<i64>,
}

/// What the protocol says to do after an error code (PROTOCOL.md §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeAction {
    /// 4000-4099: do not reconnect.
    Fatal,
    /// 4100-4199: reconnect after a back-off.
    Backoff,
    /// 4200-4299: reconnect at once.
    Immediately,
    /// Anything else.
    Other,
}

pub(crate) fn code_action(code: i64) -> CodeAction {
    match code {
        4000..=4099 => CodeAction::Fatal,
        4100..=4199 => CodeAction::Backoff,
        4200..=4299 => CodeAction::Immediately,
        _ => CodeAction::Other,
    }
}

pub(crate) fn subscribe(channel: &str, auth: Option<&str>) -> String {
    let data = match auth {
        Some(auth) => json!({"channel": channel, "auth": auth}),
        None => json!({"channel": channel}),
    };
    json!({"event": "pusher:subscribe", "data": data}).to_string()
}

pub(crate) fn ping() -> String {
    json!({"event": "pusher:ping", "data": {}}).to_string()
}

pub(crate) fn pong() -> String {
    json!({"event": "pusher:pong", "data": {}}).to_string()
}

/// Builds the `pusher:connection_established` frame a server sends (used by the hub and
/// test servers).
pub fn connection_established(socket_id: &str, activity_timeout: u64) -> String {
    let data = json!({"socket_id": socket_id, "activity_timeout": activity_timeout}).to_string();
    json!({"event": "pusher:connection_established", "data": data}).to_string()
}

/// Builds a channel event frame with `data` sent as a JSON-encoded string, as Pusher does.
pub fn channel_event(channel: &str, event: &str, data: &str) -> String {
    json!({"event": event, "channel": channel, "data": data}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_unwrapped_from_a_string_or_taken_as_is() {
        let f = Frame::parse(r#"{"event":"e","channel":"c","data":"{\"a\":1}"}"#).unwrap();
        assert_eq!(f.data_text().unwrap(), r#"{"a":1}"#);
        let f = Frame::parse(r#"{"event":"e","data":{"a":1}}"#).unwrap();
        assert_eq!(f.data_text().unwrap(), r#"{"a":1}"#);
        let f = Frame::parse(r#"{"event":"pusher:pong"}"#).unwrap();
        assert_eq!(f.data_text().unwrap(), "");
        assert!(f.channel.is_none());
    }

    #[test]
    fn established_parses_from_string_data() {
        let frame = connection_established("123.456", 120);
        let f = Frame::parse(&frame).unwrap();
        let e: Established = f.data_as().unwrap();
        assert_eq!(e.socket_id, "123.456");
        assert_eq!(e.activity_timeout, Some(120));
    }

    #[test]
    fn codes_map_to_actions() {
        assert_eq!(code_action(4001), CodeAction::Fatal);
        assert_eq!(code_action(4009), CodeAction::Fatal);
        assert_eq!(code_action(4100), CodeAction::Backoff);
        assert_eq!(code_action(4201), CodeAction::Immediately);
        assert_eq!(code_action(1006), CodeAction::Other);
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(Frame::parse("nope").is_err());
        assert!(Frame::parse(r#"{"channel":"c"}"#).is_err());
        assert!(Frame::parse(r#"{"event":5}"#).is_err());
    }
}
