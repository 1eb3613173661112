//! Everything a handler file and a `main` usually need: `use listener_core::prelude::*;`.

#[cfg(feature = "realtime")]
pub use crate::source::composio::ComposioSource;
#[cfg(feature = "websocket")]
pub use crate::source::websocket::WebSocketSource;
#[cfg(feature = "composio-api")]
pub use crate::tools::Tools;
#[cfg(feature = "webhook-server")]
pub use crate::webhook::WebhookSource;
pub use crate::{
    on_trigger, EventContext, Failure, Filter, FromEvent, Handler, Listener, ListenerBuilder, Meta,
    Payload, State, TriggerEvent,
};
