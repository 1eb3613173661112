//! The normalized trigger event every source produces and every handler sees.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The wire envelope an event arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Envelope {
    /// The current envelope: `{id, type: "composio.…", timestamp, metadata, data}`, used on
    /// webhooks and on the realtime channel.
    V3,
    /// V2 webhooks: `{type: "slack_receive_message", timestamp, log_id, data}`.
    V2,
    /// V1 webhooks: `{trigger_name, connection_id, trigger_id, payload, log_id}`.
    V1,
    /// The realtime channel's envelope for V1/V2 projects:
    /// `{appName, clientId, payload, originalPayload, metadata: {…, connection}}`.
    LegacyRealtime,
    /// An admin event about a connected account:
    /// `{type: "connected_account.add.start" | "connected_account.add.completed", timestamp, data}`.
    Admin,
}

impl Envelope {
    /// The name used in logs and in the `x-composio-webhook-version` header (`V1`, `V2`,
    /// `V3`, or `legacy-realtime`).
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::V3 => "V3",
            Envelope::V2 => "V2",
            Envelope::V1 => "V1",
            Envelope::LegacyRealtime => "legacy-realtime",
            Envelope::Admin => "admin",
        }
    }
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connected account an event belongs to.
///
/// Every field is a string; a field the wire did not carry (or carried as `null`) is `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedAccount {
    /// Connected account id (`ca_…` on V3).
    pub id: String,
    /// Connected account UUID (legacy envelopes), else the same as `id`.
    pub uuid: String,
    /// Auth config id (`ac_…`).
    pub auth_config_id: String,
    /// Auth config UUID (legacy envelopes), else the same as `auth_config_id`.
    pub auth_config_uuid: String,
    /// The user the account belongs to.
    pub user_id: String,
    /// Account status (`ACTIVE`, `INACTIVE`, …).
    pub status: String,
}

/// Trigger metadata: configuration, connected account and delivery facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerMetadata {
    /// The trigger's `triggerData` string (legacy envelopes only).
    pub trigger_data: Option<String>,
    /// The trigger instance's configuration (legacy envelopes carry it; `{}` otherwise).
    pub trigger_config: Value,
    /// The connected account the event belongs to.
    pub connected_account: ConnectedAccount,
    /// Composio's log id for this delivery (`log_…`), `""` when absent.
    pub log_id: String,
    /// The webhook delivery attempt (`x-composio-delivery-attempt`, 1-based), when the
    /// event came through a webhook that said so.
    pub delivery_attempt: Option<u32>,
    /// Where the event was read from when a JetStream worker (feature `jetstream`) took it
    /// from the stream; `None` for events straight from a source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamDelivery>,
}

/// An event's place in a JetStream stream and how often it was delivered, as a JetStream
/// worker (feature `jetstream`) read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamDelivery {
    /// The stream's name.
    pub stream: String,
    /// The worker group (durable consumer) that took it.
    pub group: String,
    /// The message's sequence number in the stream. For a dead letter replayed into the
    /// stream, the sequence of the message it was replayed from (what earlier runs saw).
    pub sequence: u64,
    /// How many times it was delivered to the group, this time included (1 the first time).
    pub delivered: u32,
    /// Whether it is a dead letter replayed into the stream by an operator.
    pub replayed: bool,
}

/// One trigger event, normalized from any envelope.
///
/// The identity fields follow Composio's SDKs: `id` is the trigger instance id for trigger
/// events (the event id for V3 lifecycle events), `trigger_slug` is the trigger's slug or,
/// for V3 lifecycle events, the event `type`. Identity fields missing, `null` or not strings
/// on the wire are `""`, never an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerEvent {
    /// Trigger instance id (`ti_…`), or the event id for V3 lifecycle events.
    pub id: String,
    /// Trigger instance UUID where the envelope has one, else the same as `id`.
    pub uuid: String,
    /// The delivery's own unique id, used for deduplication: V3 `id` (`evt_…`/`msg_…`),
    /// the `log_id` of V1/V2 webhooks, or the `webhook-id` header when a webhook source
    /// received it. `""` when the envelope carries none (legacy realtime frames).
    pub event_id: String,
    /// The user the event belongs to.
    pub user_id: String,
    /// Trigger slug (`SLACK_RECEIVE_MESSAGE`) or V3 lifecycle type
    /// (`composio.connected_account.expired`).
    pub trigger_slug: String,
    /// Toolkit slug (`SLACK`); `COMPOSIO` for V3 lifecycle events.
    pub toolkit_slug: String,
    /// The trigger payload: what handlers usually want.
    pub payload: Value,
    /// The provider's original payload, when the envelope carries one beside `payload`.
    pub original_payload: Option<Value>,
    /// Configuration, connected account and delivery facts.
    pub metadata: TriggerMetadata,
    /// Which envelope the event arrived in.
    pub envelope: Envelope,
    /// For V3, the event `type` (`composio.trigger.message`, …).
    pub event_type: Option<String>,
    /// The envelope's timestamp, as sent (ISO 8601 on V2/V3).
    pub timestamp: Option<String>,
}

/// The V3 event type of trigger messages.
pub const V3_TRIGGER_MESSAGE: &str = "composio.trigger.message";

impl TriggerEvent {
    /// Builds a V3 trigger-message event by hand: for tests, replays and programmatic
    /// injection. The toolkit is derived from the slug as for wire events.
    ///
    /// ```
    /// use listener_core::TriggerEvent;
    /// let ev = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", serde_json::json!({"text": "hi"}))
    ///     .with_event_id("evt_1")
    ///     .with_user_id("default");
    /// assert_eq!(ev.toolkit_slug, "SLACK");
    /// ```
    pub fn new(trigger_slug: impl Into<String>, payload: Value) -> Self {
        let trigger_slug = trigger_slug.into();
        let toolkit_slug = toolkit_of(&trigger_slug);
        TriggerEvent {
            id: String::new(),
            uuid: String::new(),
            event_id: String::new(),
            user_id: String::new(),
            trigger_slug,
            toolkit_slug,
            payload,
            original_payload: None,
            metadata: TriggerMetadata {
                trigger_config: Value::Object(Default::default()),
                ..TriggerMetadata::default()
            },
            envelope: Envelope::V3,
            event_type: Some(V3_TRIGGER_MESSAGE.to_owned()),
            timestamp: None,
        }
    }

    /// Sets the delivery id used for deduplication.
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = event_id.into();
        self
    }

    /// Sets the trigger instance id (`id` and `uuid`).
    pub fn with_trigger_id(mut self, trigger_id: impl Into<String>) -> Self {
        self.id = trigger_id.into();
        self.uuid = self.id.clone();
        self
    }

    /// Sets the user id (also on the connected account).
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self.metadata.connected_account.user_id = self.user_id.clone();
        self
    }

    /// Sets the connected account.
    pub fn with_connected_account(mut self, account: ConnectedAccount) -> Self {
        self.metadata.connected_account = account;
        self
    }

    /// Whether this is a V3 lifecycle event (a `composio.*` type other than trigger
    /// messages), such as `composio.connected_account.expired`.
    pub fn is_lifecycle(&self) -> bool {
        matches!(&self.event_type, Some(t) if t != V3_TRIGGER_MESSAGE)
    }

    /// The id that names this event in logs and errors: its delivery id, else its
    /// trigger id.
    pub fn label(&self) -> &str {
        if self.event_id.is_empty() {
            &self.id
        } else {
            &self.event_id
        }
    }
}

/// The toolkit of a trigger slug: the part before the first `_`, upper-cased
/// (`SLACK_RECEIVE_MESSAGE` → `SLACK`); `""` for a slug without `_`.
pub fn toolkit_of(trigger_slug: &str) -> String {
    match trigger_slug.split_once('_') {
        Some((toolkit, _)) => toolkit.to_uppercase(),
        None => String::new(),
    }
}
