//! Everything a handler file usually needs: `use listener_core::prelude::*;`.

pub use crate::{
    on_trigger, Arc, EventContext, Failure, Filter, FromEvent, Handler, Listener, ListenerBuilder,
    Meta, Payload, State, TriggerEvent, WebSocketSource,
};
