//! The pre-processor of `SLACK_SEND_MESSAGE`: the step between the model's tool call and the
//! tool execution, registered on the listener ([`crate::app::with_tools`]) so that every
//! `Tools` call of the send tool goes through it. Whatever the model produced, the reply goes
//! to the message's channel and thread, as plain text (`mrkdwn: false`), with only the
//! arguments the bot means to send.

use listener_core::TriggerEvent;
use serde_json::{Map, Value};

use crate::message::SlackMessage;

/// Longest reply text sent (characters); longer texts are cut.
pub const MAX_REPLY_CHARS: usize = 3000;

/// Why a tool call cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    /// The arguments are not a JSON object.
    #[error("the tool call's arguments are not a JSON object")]
    NotAnObject,
    /// Neither `text` nor `markdown_text` holds any text.
    #[error("the tool call has no text to send")]
    NoText,
    /// The event being answered is not a Slack message with a channel and a `ts`.
    #[error("the event is not a Slack message with a channel and a ts to reply to")]
    NotAMessage,
}

/// The pre-processor the listener runs on every `SLACK_SEND_MESSAGE` call
/// (`ListenerBuilder::pre_process`): the event's message gives the channel and the thread
/// (its `thread_ts`, or its own `ts` for a top-level message), then [`preprocess`].
pub fn pre_processor(event: &TriggerEvent, arguments: Value) -> Result<Value, PreprocessError> {
    let msg: SlackMessage =
        serde_json::from_value(event.payload.clone()).map_err(|_| PreprocessError::NotAMessage)?;
    if msg.channel.trim().is_empty() || msg.ts.trim().is_empty() {
        return Err(PreprocessError::NotAMessage);
    }
    preprocess(&arguments, &msg.channel, msg.thread_key()).map(Value::Object)
}

/// The arguments of `SLACK_SEND_MESSAGE` for a reply in `thread_ts` of `channel`: `channel`,
/// `thread_ts` and `mrkdwn: false` are injected; `text` is the model's `text` (or its
/// `markdown_text`), bounded; anything else the model added (`reply_broadcast`, `blocks`,
/// `as_user`, …) is dropped.
pub fn preprocess(
    arguments: &Value,
    channel: &str,
    thread_ts: &str,
) -> Result<Map<String, Value>, PreprocessError> {
    let args = arguments.as_object().ok_or(PreprocessError::NotAnObject)?;
    let text = ["text", "markdown_text"]
        .iter()
        .filter_map(|k| args.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|t| !t.is_empty())
        .ok_or(PreprocessError::NoText)?;
    let text: String = if text.chars().count() > MAX_REPLY_CHARS {
        let mut cut: String = text.chars().take(MAX_REPLY_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        text.to_owned()
    };
    let mut out = Map::new();
    out.insert("channel".into(), Value::from(channel));
    out.insert("thread_ts".into(), Value::from(thread_ts));
    out.insert("text".into(), Value::from(text));
    out.insert("mrkdwn".into(), Value::Bool(false));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thread_channel_and_mrkdwn_are_forced() {
        let model = json!({"channel": "CWRONG", "thread_ts": "9.9", "mrkdwn": true, "text": " roast ",
                           "reply_broadcast": true, "blocks": []});
        let out = preprocess(&model, "C1", "1.1").unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"channel": "C1", "thread_ts": "1.1", "text": "roast", "mrkdwn": false})
        );
        let out = preprocess(&json!({"text": "", "markdown_text": "md"}), "C1", "1.1").unwrap();
        assert_eq!(out["text"], "md");
        assert!(!out.contains_key("markdown_text"));
        assert_eq!(
            preprocess(&json!({"text": "  "}), "C", "1"),
            Err(PreprocessError::NoText)
        );
        assert_eq!(
            preprocess(&json!("x"), "C", "1"),
            Err(PreprocessError::NotAnObject)
        );
        let long = "x".repeat(MAX_REPLY_CHARS + 10);
        let out = preprocess(&json!({ "text": long }), "C", "1").unwrap();
        assert_eq!(
            out["text"].as_str().unwrap().chars().count(),
            MAX_REPLY_CHARS
        );
    }

    fn event(payload: Value) -> TriggerEvent {
        TriggerEvent::new("SLACK_RECEIVE_MESSAGE", payload)
    }

    #[test]
    fn the_events_message_gives_the_channel_and_thread() {
        let model =
            json!({"channel": "#general", "thread_ts": "9.9", "mrkdwn": true, "text": "roast"});
        // A top-level message: the reply starts its thread.
        let top = event(json!({"channel": "C1", "ts": "1.1", "text": "hi", "thread_ts": null}));
        assert_eq!(
            pre_processor(&top, model.clone()).unwrap(),
            json!({"channel": "C1", "thread_ts": "1.1", "text": "roast", "mrkdwn": false})
        );
        // A message in a thread: the reply goes to that thread.
        let reply = event(json!({"channel": "C1", "ts": "2.2", "thread_ts": "1.1", "text": "hi"}));
        assert_eq!(
            pre_processor(&reply, model.clone()).unwrap()["thread_ts"],
            "1.1"
        );
        // Not a message to answer: refused, whatever the model said.
        for payload in [
            json!({}),
            json!({"channel": "C1"}),
            json!({"ts": "1.1"}),
            json!("text"),
            json!(null),
        ] {
            assert_eq!(
                pre_processor(&event(payload.clone()), model.clone()),
                Err(PreprocessError::NotAMessage),
                "{payload}"
            );
        }
        // The model's own problems are still reported.
        assert_eq!(
            pre_processor(&top, json!({"text": ""})),
            Err(PreprocessError::NoText)
        );
    }
}
