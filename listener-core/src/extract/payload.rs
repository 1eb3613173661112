//! [`Payload<T>`]: the event payload, deserialized.

use std::any::type_name;
use std::ops::Deref;

use serde::de::DeserializeOwned;

use super::{EventContext, ExtractError, FromEvent};

/// The event payload deserialized into `T`.
///
/// A payload that does not fit `T` fails this handler's run with
/// [`ExtractError::Payload`], naming the event; other handlers are unaffected.
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
    type Rejection = ExtractError;

    fn from_event(cx: &EventContext) -> Result<Self, ExtractError> {
        let event = cx.event();
        T::deserialize(&event.payload)
            .map(Payload)
            .map_err(|source| ExtractError::Payload {
                type_name: type_name::<T>(),
                event_id: event.label().to_owned(),
                source: Box::new(source),
            })
    }
}
