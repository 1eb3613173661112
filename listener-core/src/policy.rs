//! Per-handler run policies: a timeout of its own, retries with back-off, a concurrency
//! limit, and runs kept in order per key.
//!
//! Set them with the `#[on_trigger]` keys (`timeout`, `retries`, `retry_delay`,
//! `concurrency`, `sequential_by`, checked when the handler compiles) or with the methods of
//! [`Handler`](crate::Handler) for handlers registered by hand (checked when the listener is
//! built).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::backoff::Backoff;
use crate::error::ConfigError;
use crate::event::TriggerEvent;

/// The default delay before a handler's first retry (before jitter); it doubles per
/// attempt up to [`RETRY_DELAY_CAP`].
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(200);

/// The longest delay between two attempts of a handler.
pub const RETRY_DELAY_CAP: Duration = Duration::from_secs(30);

/// Most retries a handler may ask for.
pub const MAX_RETRIES: u32 = 100;

/// How the runs of one handler are scheduled and retried. Every part is optional; the
/// default is one attempt, the listener's timeout, no limit but the listener's in-flight
/// bound, and no ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// A time limit per attempt, instead of the listener's
    /// [`handler_timeout`](crate::ListenerBuilder::handler_timeout).
    pub timeout: Option<Duration>,
    /// How many times a failed attempt is run again (0: none). Errors, panics and timeouts
    /// are retried; a parameter that cannot be extracted is not, as it would fail again.
    pub retries: u32,
    /// The delays between attempts: exponential with jitter, capped (its `max_attempts` is
    /// not used; [`retries`](Self::retries) bounds the attempts).
    pub retry_backoff: Backoff,
    /// At most this many runs of the handler at once (within the listener's bound).
    pub concurrency: Option<usize>,
    /// Runs whose events have the same value here run one at a time, in arrival order.
    pub sequential_by: Option<KeyPath>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: None,
            retries: 0,
            retry_backoff: retry_backoff(DEFAULT_RETRY_DELAY),
            concurrency: None,
            sequential_by: None,
        }
    }
}

/// The retry schedule starting at `initial`: doubling, capped at [`RETRY_DELAY_CAP`].
pub(crate) fn retry_backoff(initial: Duration) -> Backoff {
    Backoff {
        initial,
        max: RETRY_DELAY_CAP.max(initial),
        multiplier: 2.0,
        max_attempts: None,
    }
}

impl Policy {
    /// Checks the settings a handler was given by hand.
    pub(crate) fn validate(&self, handler: &str) -> Result<(), ConfigError> {
        let refuse = |key: &str, message: String| ConfigError {
            key: format!("handler `{handler}`: {key}"),
            message,
        };
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(refuse("timeout", "must be longer than zero".into()));
        }
        if self.retries > MAX_RETRIES {
            return Err(refuse(
                "retries",
                format!(
                    "{} is more than the most allowed, {MAX_RETRIES}",
                    self.retries
                ),
            ));
        }
        if self.concurrency == Some(0) {
            return Err(refuse("concurrency", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// The policy keys of an `#[on_trigger]` function, as the macro checked them.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySpec {
    /// `timeout`, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// `retries`.
    pub retries: u32,
    /// `retry_delay`, in milliseconds.
    pub retry_delay_ms: Option<u64>,
    /// `concurrency`.
    pub concurrency: Option<usize>,
    /// `sequential_by`.
    pub sequential_by: Option<&'static str>,
}

impl PolicySpec {
    /// No policy key given.
    pub const NONE: PolicySpec = PolicySpec {
        timeout_ms: None,
        retries: 0,
        retry_delay_ms: None,
        concurrency: None,
        sequential_by: None,
    };
}

/// Where an ordering key is read from an event: `payload.channel` (a dotted path into the
/// payload; a segment of digits indexes an array), or one of the event's identity fields:
/// `user_id`, `connected_account_id`, `auth_config_id`, `trigger_id`, `trigger_slug`,
/// `toolkit_slug`.
///
/// An event where the path leads nowhere (or to `null`) gets the empty key: such events are
/// kept in order among themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPath {
    text: Box<str>,
    root: Root,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Payload,
    UserId,
    ConnectedAccountId,
    AuthConfigId,
    TriggerId,
    TriggerSlug,
    ToolkitSlug,
}

/// The identity fields a key path may name, with what they read.
const FIELDS: [(&str, Root); 6] = [
    ("user_id", Root::UserId),
    ("connected_account_id", Root::ConnectedAccountId),
    ("auth_config_id", Root::AuthConfigId),
    ("trigger_id", Root::TriggerId),
    ("trigger_slug", Root::TriggerSlug),
    ("toolkit_slug", Root::ToolkitSlug),
];

impl KeyPath {
    /// Parses a key path; the error says what is wrong and what is allowed.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_text(text).map_err(|message| ConfigError {
            key: "sequential_by".into(),
            message,
        })
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        let allowed = || {
            let fields: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
            format!(
                "`payload.<field>[.<field>…]` or one of {}",
                fields.join(", ")
            )
        };
        if let Some((_, root)) = FIELDS.iter().find(|(name, _)| *name == text) {
            return Ok(KeyPath {
                text: text.into(),
                root: *root,
            });
        }
        let Some(rest) = text.strip_prefix("payload.") else {
            return Err(format!(
                "`{text}` is not a key path: expected {}",
                allowed()
            ));
        };
        if rest.split('.').any(str::is_empty) {
            return Err(format!(
                "`{text}` has an empty segment: expected {}",
                allowed()
            ));
        }
        Ok(KeyPath {
            text: text.into(),
            root: Root::Payload,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The key of `event`: the string found there, the JSON text of any other value, or
    /// `""` when there is nothing.
    pub fn key_of(&self, event: &TriggerEvent) -> String {
        let account = &event.metadata.connected_account;
        let field = match self.root {
            Root::Payload => return payload_key(&event.payload, &self.text["payload.".len()..]),
            Root::UserId => &event.user_id,
            Root::ConnectedAccountId => &account.id,
            Root::AuthConfigId => &account.auth_config_id,
            Root::TriggerId => &event.id,
            Root::TriggerSlug => &event.trigger_slug,
            Root::ToolkitSlug => &event.toolkit_slug,
        };
        field.clone()
    }
}

fn payload_key(payload: &Value, path: &str) -> String {
    let mut at = payload;
    for segment in path.split('.') {
        let next = match at {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(value) => at = value,
            None => return String::new(),
        }
    }
    match at {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl fmt::Debug for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPath({:?})", self.text)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> TriggerEvent {
        let mut ev = TriggerEvent::new(
            "SLACK_RECEIVE_MESSAGE",
            json!({"channel": "C1", "ts": 1.5, "thread": {"ts": "9.9"}, "list": ["a", {"b": 2}], "nil": null}),
        );
        ev.user_id = "u1".into();
        ev.metadata.connected_account.id = "ca_1".into();
        ev
    }

    #[test]
    fn keys_are_read_from_the_payload_and_identity_fields() {
        let ev = event();
        let key = |p: &str| KeyPath::parse(p).unwrap().key_of(&ev);
        assert_eq!(key("payload.channel"), "C1");
        assert_eq!(key("payload.ts"), "1.5");
        assert_eq!(key("payload.thread.ts"), "9.9");
        assert_eq!(key("payload.thread"), r#"{"ts":"9.9"}"#);
        assert_eq!(key("payload.list.0"), "a");
        assert_eq!(key("payload.list.1.b"), "2");
        assert_eq!(key("payload.list.7"), "");
        assert_eq!(key("payload.nil"), "");
        assert_eq!(key("payload.missing.deeper"), "");
        assert_eq!(key("user_id"), "u1");
        assert_eq!(key("connected_account_id"), "ca_1");
        assert_eq!(key("trigger_slug"), "SLACK_RECEIVE_MESSAGE");
    }

    #[test]
    fn bad_paths_say_what_is_allowed() {
        for bad in [
            "",
            "payload",
            "payload.",
            "payload..x",
            "channel",
            "user",
            "meta.x",
        ] {
            let err = KeyPath::parse(bad).unwrap_err().message;
            assert!(err.contains("payload.<field>"), "{bad}: {err}");
        }
    }

    #[test]
    fn hand_given_policies_are_checked() {
        let ok = Policy::default();
        assert!(ok.validate("h").is_ok());
        let zero = Policy {
            concurrency: Some(0),
            ..Policy::default()
        };
        assert!(zero.validate("h").unwrap_err().key.contains("concurrency"));
        let many = Policy {
            retries: MAX_RETRIES + 1,
            ..Policy::default()
        };
        assert!(many.validate("h").unwrap_err().key.contains("retries"));
        let instant = Policy {
            timeout: Some(Duration::ZERO),
            ..Policy::default()
        };
        assert!(instant.validate("h").unwrap_err().key.contains("timeout"));
    }
}
