//! Extractors: the types a handler may take as parameters (axum-style).
//!
//! A handler's parameters are built, one by one, from the event being dispatched and the
//! listener's state through [`FromEvent`]. The ones provided: [`Arc<TriggerEvent>`] and
//! [`TriggerEvent`] (the whole event), [`Payload<T>`] (the payload deserialized into your
//! type), [`Meta`] (identity and metadata), and [`State<T>`] (application state).

mod meta;
mod payload;
mod state;

use std::sync::Arc;

pub use meta::Meta;
pub use payload::Payload;
pub use state::{State, StateMap};

use crate::event::TriggerEvent;

/// What an extractor sees: the event, the listener's state, the handler's name and the
/// attempt.
#[derive(Clone)]
pub struct EventContext {
    event: Arc<TriggerEvent>,
    state: Arc<StateMap>,
    handler: Arc<str>,
    attempt: u32,
}

impl EventContext {
    pub(crate) fn new(event: Arc<TriggerEvent>, state: Arc<StateMap>, handler: Arc<str>) -> Self {
        Self {
            event,
            state,
            handler,
            attempt: 1,
        }
    }

    /// The same context for attempt `attempt`.
    pub(crate) fn with_attempt(&self, attempt: u32) -> Self {
        Self {
            attempt,
            ..self.clone()
        }
    }

    /// Which attempt of this handler at this event is running: 1 for the first run, 2 for
    /// the first retry (see [`Handler::retries`](crate::Handler::retries)).
    pub fn attempt(&self) -> u32 {
        self.attempt
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
/// [`check`](FromEvent::check) lets an extractor refuse a listener at build time (as
/// `State<T>` does when no `T` was given).
///
/// # Writing an extractor
///
/// An extractor names what it fails with, its [`Rejection`](FromEvent::Rejection): any
/// error type. A rejection fails that handler's run for that event, and reaches the error
/// hook as a [`FailureKind::Extract`](crate::handler::FailureKind::Extract) with the event's id;
/// the other handlers of the event run as usual.
///
/// ```
/// use listener_core::prelude::*;
///
/// /// The Slack channel of a message event.
/// struct Channel(String);
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the event has no `channel` in its payload")]
/// struct NoChannel;
///
/// impl FromEvent for Channel {
///     type Rejection = NoChannel;
///
///     fn from_event(cx: &EventContext) -> Result<Self, NoChannel> {
///         cx.event().payload["channel"]
///             .as_str()
///             .map(|c| Channel(c.to_owned()))
///             .ok_or(NoChannel)
///     }
/// }
///
/// #[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
/// async fn greet(Channel(channel): Channel) {
///     println!("hello, #{channel}");
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a trigger handler parameter",
    label = "not an extractor",
    note = "handler parameters must implement `listener_core::FromEvent`: use `Payload<T>`, `State<T>`, `Meta`, `Arc<TriggerEvent>` or `TriggerEvent`"
)]
pub trait FromEvent: Sized + Send + 'static {
    /// Why this extractor can fail; [`Infallible`](std::convert::Infallible) when it cannot.
    type Rejection: std::error::Error + Send + Sync + 'static;

    /// Builds the parameter for one call. A rejection fails that handler's run for that
    /// event (reported with the event id), nothing else.
    fn from_event(cx: &EventContext) -> Result<Self, Self::Rejection>;

    /// Checks, when the listener is built, that this extractor can ever succeed.
    fn check(_state: &StateMap, _handler: &str) -> Result<(), ExtractError> {
        Ok(())
    }
}

impl FromEvent for Arc<TriggerEvent> {
    type Rejection = std::convert::Infallible;

    fn from_event(cx: &EventContext) -> Result<Self, Self::Rejection> {
        Ok(Arc::clone(&cx.event))
    }
}

/// A clone of the whole event; prefer `Arc<TriggerEvent>`, which shares it.
impl FromEvent for TriggerEvent {
    type Rejection = std::convert::Infallible;

    fn from_event(cx: &EventContext) -> Result<Self, Self::Rejection> {
        Ok(TriggerEvent::clone(&cx.event))
    }
}

/// Why one of the provided extractors could not build a parameter, or refused a listener
/// at build time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// A handler's `Payload<T>` could not be built from the event payload.
    #[error("payload of event `{event_id}` does not fit `{type_name}`: {source}")]
    Payload {
        /// The target type.
        type_name: &'static str,
        /// The event's id.
        event_id: String,
        /// What the deserializer reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A handler asked for `State<T>` that the listener was not given.
    #[error("handler `{handler}` needs `State<{type_name}>`, but no such state was given to the listener (use `ListenerBuilder::state`)")]
    MissingState {
        /// The handler's name.
        handler: String,
        /// The missing state type.
        type_name: &'static str,
    },

    /// An extractor's [`check`](FromEvent::check) refused the listener (one of yours, or
    /// `Tools` on a listener given no client), or, for the same reason, a run.
    #[error("handler `{handler}` cannot use `{extractor}`: {reason}")]
    Refused {
        /// The handler's name.
        handler: String,
        /// The extractor's type.
        extractor: &'static str,
        /// Why.
        reason: String,
    },
}
