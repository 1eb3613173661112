//! The Pusher Channels protocol (version 7) as both sides speak it: the frames a client
//! reads and writes, the ones a server sends, and the private-channel signature. The client
//! source uses it, and so can a server (the development hub, a test server) without
//! depending on the client.
//!
//! The facts relied on: every frame is a JSON object `{"event", "channel"?, "data"?}`; a
//! server sends event `data` as a JSON-encoded *string*; the first frame is
//! `pusher:connection_established` whose data holds `socket_id` and `activity_timeout`
//! (seconds); a private channel's subscription carries `auth = key + ":" +
//! hex(HMAC-SHA256(app secret, socket_id + ":" + channel))`; error codes 4000-4099 mean do
//! not reconnect, 4100-4199 reconnect after a back-off, 4200-4299 reconnect at once.

use std::borrow::Cow;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::decode::DecodeError;

/// The event Composio sends one trigger event in.
pub const TRIGGER_EVENT: &str = "trigger_to_client";
/// The event Composio sends a piece of a large trigger event in: `data` is
/// `{"id", "index", "chunk", "final"}`, and the pieces of one `id` joined in `index` order
/// make one [`TRIGGER_EVENT`] body.
pub const CHUNKED_TRIGGER_EVENT: &str = "chunked-trigger_to_client";

/// One frame, borrowed from its text: `{"event": …, "channel": …, "data": …}`.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    /// The event name (`pusher:ping`, `trigger_to_client`, …).
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    /// The channel, for channel events.
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    /// The data, as sent.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

impl<'a> Frame<'a> {
    /// Reads a frame.
    pub fn parse(text: &'a str) -> Result<Self, DecodeError> {
        serde_json::from_str(text).map_err(DecodeError::invalid_json)
    }

    /// The frame's `data`: a JSON string is unwrapped to its contents (Pusher sends event
    /// data as a JSON-encoded string); anything else is returned as its JSON text.
    pub fn data_text(&self) -> Result<Cow<'a, str>, DecodeError> {
        match self.data {
            None => Ok(Cow::Borrowed("")),
            Some(raw) if raw.get().starts_with('"') => {
                let s: Cow<'a, str> =
                    serde_json::from_str(raw.get()).map_err(DecodeError::invalid_json)?;
                Ok(s)
            }
            Some(raw) => Ok(Cow::Borrowed(raw.get())),
        }
    }

    /// The frame's `data` parsed as `T`, whether it was sent as an object or as a string
    /// holding one.
    pub fn data_as<T: for<'de> Deserialize<'de>>(&self) -> Result<T, DecodeError> {
        serde_json::from_str(&self.data_text()?).map_err(DecodeError::invalid_json)
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

/// What the protocol says to do after an error code (see the module docs).
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

/// Computes a private-channel auth token: what a Pusher server checks.
///
/// ```
/// let token = listener_core::source::pusher::protocol::sign_channel("key", "secret", "123.456", "private-x");
/// assert!(token.starts_with("key:"));
/// assert_eq!(token.len(), "key:".len() + 64);
/// ```
pub fn sign_channel(key: &str, secret: &str, socket_id: &str, channel: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(socket_id.as_bytes());
    mac.update(b":");
    mac.update(channel.as_bytes());
    format!("{key}:{}", hex(&mac.finalize().into_bytes()))
}

/// Checks a private-channel auth token in constant time (what a Pusher server does).
pub fn verify_channel(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    token: &str,
) -> bool {
    let Some((token_key, signature)) = token.split_once(':') else {
        return false;
    };
    let Some(signature) = unhex(signature) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(socket_id.as_bytes());
    mac.update(b":");
    mac.update(channel.as_bytes());
    token_key == key && mac.verify_slice(&signature).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
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

    #[test]
    fn signature_matches_pushers_documented_example() {
        // Pusher's auth docs: key 278d425bdf160c739803, secret 7ad3773142a6692b25b8,
        // socket 1234.1234, channel private-foobar.
        assert_eq!(
            sign_channel(
                "278d425bdf160c739803",
                "7ad3773142a6692b25b8",
                "1234.1234",
                "private-foobar"
            ),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
    }

    #[test]
    fn tokens_verify_only_for_their_socket_channel_and_secret() {
        let t = sign_channel("k", "s", "1.2", "private-a");
        assert!(verify_channel("k", "s", "1.2", "private-a", &t));
        assert!(!verify_channel("k", "s", "1.3", "private-a", &t));
        assert!(!verify_channel("k", "s", "1.2", "private-b", &t));
        assert!(!verify_channel("k", "other", "1.2", "private-a", &t));
        assert!(!verify_channel("other", "s", "1.2", "private-a", &t));
        for bad in ["", "k", "k:", "k:zz", "k:abc", "k:é1", &t[..t.len() - 2]] {
            assert!(!verify_channel("k", "s", "1.2", "private-a", bad), "{bad}");
        }
    }
}
