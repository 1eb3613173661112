//! [`State<T>`] and the [`StateMap`] it is taken from.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::{EventContext, ExtractError, FromEvent};

/// Application state given to the listener with
/// [`ListenerBuilder::state`](crate::listener::ListenerBuilder::state), shared by every handler.
///
/// A handler asking for a `State<T>` the listener was not given makes
/// [`ListenerBuilder::build`](crate::listener::ListenerBuilder::build) fail with
/// [`ExtractError::MissingState`], before any event is read.
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
    type Rejection = ExtractError;

    fn from_event(cx: &EventContext) -> Result<Self, ExtractError> {
        cx.state()
            .get::<T>()
            .map(State)
            .ok_or_else(|| missing::<T>(cx.handler()))
    }

    fn check(state: &StateMap, handler: &str) -> Result<(), ExtractError> {
        match state.get::<T>() {
            Some(_) => Ok(()),
            None => Err(missing::<T>(handler)),
        }
    }
}

fn missing<T>(handler: &str) -> ExtractError {
    ExtractError::MissingState {
        handler: handler.to_owned(),
        type_name: type_name::<T>(),
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
