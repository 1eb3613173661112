//! [`Meta`]: an event's identity and metadata, without the payload.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::{EventContext, FromEvent};
use crate::event::{ConnectedAccount, Envelope, TriggerEvent, TriggerMetadata};

/// A read-only view of an event's identity and metadata, without the payload.
///
/// Cheap: it shares the event. Derefs to [`TriggerMetadata`].
#[derive(Clone)]
pub struct Meta(Arc<TriggerEvent>, u32);

impl Meta {
    /// Which attempt of the handler at this event is running: 1 for the first run, 2 for
    /// the first retry (see [`Handler::retries`](crate::Handler::retries)). For an event a
    /// JetStream worker took from the stream (feature `jetstream`), earlier deliveries
    /// count: on the third delivery of a handler without retries it is 3 (with `retries =
    /// r`, each earlier delivery counts `r + 1`). Not the webhook sender's delivery attempt,
    /// which is [`delivery_attempt`](TriggerMetadata::delivery_attempt).
    pub fn attempt(&self) -> u32 {
        self.1
    }
    /// Trigger instance id (event id for V3 lifecycle events).
    pub fn id(&self) -> &str {
        &self.0.id
    }
    /// Trigger instance UUID.
    pub fn uuid(&self) -> &str {
        &self.0.uuid
    }
    /// The delivery's unique id (`""` when the envelope has none).
    pub fn event_id(&self) -> &str {
        &self.0.event_id
    }
    /// Trigger slug or V3 lifecycle type.
    pub fn trigger_slug(&self) -> &str {
        &self.0.trigger_slug
    }
    /// Toolkit slug.
    pub fn toolkit_slug(&self) -> &str {
        &self.0.toolkit_slug
    }
    /// User id.
    pub fn user_id(&self) -> &str {
        &self.0.user_id
    }
    /// The connected account.
    pub fn connected_account(&self) -> &ConnectedAccount {
        &self.0.metadata.connected_account
    }
    /// The envelope the event arrived in.
    pub fn envelope(&self) -> Envelope {
        self.0.envelope
    }
    /// The V3 event type, if any.
    pub fn event_type(&self) -> Option<&str> {
        self.0.event_type.as_deref()
    }
    /// The envelope timestamp, as sent.
    pub fn timestamp(&self) -> Option<&str> {
        self.0.timestamp.as_deref()
    }
    /// The whole event, shared.
    pub fn event(&self) -> &Arc<TriggerEvent> {
        &self.0
    }
}

impl Deref for Meta {
    type Target = TriggerMetadata;
    fn deref(&self) -> &TriggerMetadata {
        &self.0.metadata
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meta")
            .field("id", &self.0.id)
            .field("event_id", &self.0.event_id)
            .field("trigger_slug", &self.0.trigger_slug)
            .field("toolkit_slug", &self.0.toolkit_slug)
            .field("user_id", &self.0.user_id)
            .field("metadata", &self.0.metadata)
            .field("attempt", &self.1)
            .finish()
    }
}

impl FromEvent for Meta {
    type Rejection = std::convert::Infallible;

    fn from_event(cx: &EventContext) -> Result<Self, Self::Rejection> {
        Ok(Meta(Arc::clone(cx.event()), cx.attempt()))
    }
}
