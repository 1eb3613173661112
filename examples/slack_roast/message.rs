//! The Slack message payload of `SLACK_RECEIVE_MESSAGE`, read leniently: every field may be
//! missing, `null` or of another type without failing the handler.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One Slack message event, as Composio's `SLACK_RECEIVE_MESSAGE` trigger delivers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlackMessage {
    /// The channel id (`C…`).
    #[serde(default, deserialize_with = "string")]
    pub channel: String,
    /// The author's user id (`U…`); absent for some bot messages.
    #[serde(default, deserialize_with = "opt_string")]
    pub user: Option<String>,
    /// The text (`""` when absent).
    #[serde(default, deserialize_with = "string")]
    pub text: String,
    /// The message's timestamp, its id within the channel.
    #[serde(default, deserialize_with = "string")]
    pub ts: String,
    /// The parent message's timestamp when the message is in a thread.
    #[serde(default, deserialize_with = "opt_string")]
    pub thread_ts: Option<String>,
    /// Set when a bot or an app posted the message.
    #[serde(default, deserialize_with = "opt_string")]
    pub bot_id: Option<String>,
    /// Set when an app posted the message.
    #[serde(default, deserialize_with = "opt_string")]
    pub app_id: Option<String>,
    /// Slack's message subtype (`bot_message`, `message_changed`, `file_share`, …).
    #[serde(default, deserialize_with = "opt_string")]
    pub subtype: Option<String>,
    /// Present on edited messages.
    #[serde(default)]
    pub edited: Option<Value>,
    /// Present on messages posted by bots.
    #[serde(default)]
    pub bot_profile: Option<Value>,
    /// The workspace id.
    #[serde(default, deserialize_with = "opt_string")]
    pub team_id: Option<String>,
    /// `channel`, `group`, `im`, `mpim`.
    #[serde(default, deserialize_with = "opt_string")]
    pub channel_type: Option<String>,
}

impl SlackMessage {
    /// The thread a reply goes to: `thread_ts` when the message is in a thread, else its
    /// own `ts` (a reply to a top-level message starts its thread).
    pub fn thread_key(&self) -> &str {
        match self.thread_ts.as_deref() {
            Some(t) if !t.trim().is_empty() => t,
            _ => &self.ts,
        }
    }
}

fn text_of(value: Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text_of(Value::deserialize(d)?).unwrap_or_default())
}

fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(text_of(Value::deserialize(d)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_payloads_never_fail() {
        let m: SlackMessage = serde_json::from_value(serde_json::json!({
            "channel": 5, "text": null, "ts": 1763630043.5, "thread_ts": "", "bot_id": [], "edited": {"ts": "1"}
        }))
        .unwrap();
        assert_eq!(m.channel, "5");
        assert_eq!(m.text, "");
        assert_eq!(m.thread_key(), "1763630043.5");
        assert!(m.bot_id.is_none() && m.edited.is_some());
        let m: SlackMessage = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(m, SlackMessage::default());
    }
}
