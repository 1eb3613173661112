//! Extractors: the types a handler may take as parameters (axum-style).
//!
//! A handler's parameters are built, one by one, from the event being dispatched and the
//! listener's state through [`FromEvent`]. The ones provided: [`Arc<TriggerEvent>`] and
//! [`TriggerEvent`] (the whole event), [`Payload<T>`] (the payload deserialized into your
//! type), [`Meta`] (identity and metadata), and [`State<T>`] (application state).

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{ConnectedAccount, Envelope, Error, Result, TriggerEvent, TriggerMetadata};

/// What an extractor sees: the event, the listener's state and the handler's name.
#[derive(Clone)]
pub struct EventContext {
    event: Arc<TriggerEvent>,
    state: Arc<StateMap>,
    handler: Arc<str>,
}

impl EventContext {
    pub(crate) fn new(event: Arc<TriggerEvent>, state: Arc<StateMap>, handler: Arc<str>) -> Self {
        Self {
            event,
            state,
            handler,
        }
    }

    /// The event being dispatched.
    pub fn event(&self) -> &Arc<TriggerEvent> {
        &self.event
    }

    /// The listener's application state.
    pub fn state(&self) -> &StateMap {
        &self.state
    }

    /// The name of the handler being called.
    pub fn handler(&self) -> &str {
        &self.handler
    }
}

/// A type that can be a handler parameter.
///
/// Implement it for your own extractors; [`check`](FromEvent::check) lets an extractor
/// refuse a listener at build time (as `State<T>` does when no `T` was given).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a trigger handler parameter",
    label = "not an extractor",
    note = "handler parameters must implement `listener_core::FromEvent`: use `Payload<T>`, `State<T>`, `Meta`, `Arc<TriggerEvent>` or `TriggerEvent`"
)]
pub trait FromEvent: Sized + Send + 'static {
    /// Builds the parameter for one call. An error fails that handler's run for that event
    /// (reported with the event id), nothing else.
    fn from_event(cx: &EventContext) -> Result<Self>;

    /// Checks, when the listener is built, that this extractor can ever succeed.
    fn check(_state: &StateMap, _handler: &str) -> Result<()> {
        Ok(())
    }
}

impl FromEvent for Arc<TriggerEvent> {
    fn from_event(cx: &EventContext) -> Result<Self> {
        Ok(Arc::clone(&cx.event))
    }
}

/// A clone of the whole event; prefer `Arc<TriggerEvent>`, which shares it.
impl FromEvent for TriggerEvent {
    fn from_event(cx: &EventContext) -> Result<Self> {
        Ok(TriggerEvent::clone(&cx.event))
    }
}

/// The event payload deserialized into `T`.
///
/// A payload that does not fit `T` fails this handler's run with
/// [`Error::Payload`], naming the event; other handlers are unaffected.
///
/// ```
/// use listener_core::prelude::*;
/// #[derive(serde::Deserialize)]
/// struct Message { text: String }
///
/// #[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
/// async fn echo(Payload(msg): Payload<Message>) {
///     println!("{}", msg.text);
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Payload<T>(pub T);

impl<T> Deref for Payload<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Payload<T> {
    /// The deserialized payload.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + Send + 'static> FromEvent for Payload<T> {
    fn from_event(cx: &EventContext) -> Result<Self> {
        T::deserialize(&cx.event.payload)
            .map(Payload)
            .map_err(|source| Error::Payload {
                type_name: type_name::<T>(),
                event_id: event_label(&cx.event).to_owned(),
                source,
            })
    }
}

/// The id used to name an event in errors: its delivery id, else its trigger id.
pub(crate) fn event_label(ev: &TriggerEvent) -> &str {
    if ev.event_id.is_empty() {
        &ev.id
    } else {
        &ev.event_id
    }
}

/// A read-only view of an event's identity and metadata, without the payload.
///
/// Cheap: it shares the event. Derefs to [`TriggerMetadata`].
#[derive(Clone)]
pub struct Meta(Arc<TriggerEvent>);

impl Meta {
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
            .finish()
    }
}

impl FromEvent for Meta {
    fn from_event(cx: &EventContext) -> Result<Self> {
        Ok(Meta(Arc::clone(&cx.event)))
    }
}

/// Application state given to the listener with
/// [`ListenerBuilder::state`](crate::ListenerBuilder::state), shared by every handler.
///
/// A handler asking for a `State<T>` the listener was not given makes
/// [`ListenerBuilder::build`](crate::ListenerBuilder::build) fail with
/// [`Error::MissingState`], before any event is read.
pub struct State<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for State<T> {
    fn clone(&self) -> Self {
        State(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("State").field(&&*self.0).finish()
    }
}

impl<T: Send + Sync + 'static> FromEvent for State<T> {
    fn from_event(cx: &EventContext) -> Result<Self> {
        cx.state
            .get::<T>()
            .map(State)
            .ok_or_else(|| Error::MissingState {
                handler: cx.handler.to_string(),
                type_name: type_name::<T>(),
            })
    }

    fn check(state: &StateMap, handler: &str) -> Result<()> {
        match state.get::<T>() {
            Some(_) => Ok(()),
            None => Err(Error::MissingState {
                handler: handler.to_owned(),
                type_name: type_name::<T>(),
            }),
        }
    }
}

/// Application state by type: one value per type.
#[derive(Default, Clone)]
pub struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl StateMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a value, replacing any earlier one of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.insert_arc(Arc::new(value));
    }

    /// Stores a shared value, replacing any earlier one of the same type.
    pub fn insert_arc<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.values.insert(TypeId::of::<T>(), value);
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| Arc::clone(v).downcast::<T>().ok())
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateMap({} values)", self.values.len())
    }
}
