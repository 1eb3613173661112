//! The registry: every handler of a listener, indexed by lower-cased trigger slug so that
//! the cost of an event grows with the handlers that match it, not with all registered.

use std::collections::HashMap;

use crate::{Filter, FilterSpec, Handler, HandlerFn, TriggerEvent};

/// The static description of an `#[on_trigger]` function, collected through `inventory`.
///
/// The macro emits one per annotated function; nothing else is generated.
#[derive(Debug)]
pub struct HandlerDescriptor {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` where it was defined.
    pub module_path: &'static str,
    /// `file!()` where it was defined.
    pub file: &'static str,
    /// The line of the function's name.
    pub line: u32,
    /// Its filter keys.
    pub filter: FilterSpec,
    /// Builds the erased function.
    pub build: fn() -> HandlerFn,
}

inventory::collect!(HandlerDescriptor);

impl HandlerDescriptor {
    /// The handler this descriptor describes, named `module::path::function`.
    pub fn to_handler(&self) -> Handler {
        Handler::from_fn(
            format!("{}::{}", self.module_path, self.name),
            Filter::from(self.filter),
            (self.build)(),
        )
    }
}

/// Every `#[on_trigger]` handler linked into this binary, sorted by name.
pub fn registered_handlers() -> Vec<Handler> {
    let mut handlers: Vec<Handler> = inventory::iter::<HandlerDescriptor>
        .into_iter()
        .map(HandlerDescriptor::to_handler)
        .collect();
    handlers.sort_by(|a, b| a.name().cmp(b.name()));
    handlers
}

/// Handlers indexed for dispatch.
#[derive(Debug, Default)]
pub struct Registry {
    handlers: Vec<Handler>,
    by_slug: HashMap<Box<str>, Vec<usize>>,
    catch_all: Vec<usize>,
}

impl Registry {
    /// Indexes the given handlers.
    pub fn new(handlers: Vec<Handler>) -> Self {
        let mut by_slug: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut catch_all = Vec::new();
        for (i, h) in handlers.iter().enumerate() {
            match h.filter().slug_key() {
                Some(slug) => by_slug.entry(Box::from(slug)).or_default().push(i),
                None => catch_all.push(i),
            }
        }
        Registry {
            handlers,
            by_slug,
            catch_all,
        }
    }

    /// All handlers, in registration order.
    pub fn handlers(&self) -> &[Handler] {
        &self.handlers
    }

    /// Number of handlers.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether there are no handlers.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Calls `f` with each handler matching the event: those indexed under its slug, then
    /// the catch-alls (handlers without a `name`), each checked against its other keys.
    pub fn for_each_match<'a>(&'a self, ev: &TriggerEvent, mut f: impl FnMut(&'a Handler)) {
        if !ev.trigger_slug.is_empty() && !self.by_slug.is_empty() {
            let key = ev.trigger_slug.to_lowercase();
            if let Some(indices) = self.by_slug.get(key.as_str()) {
                for &i in indices {
                    let h = &self.handlers[i];
                    if h.filter().matches_rest(ev) {
                        f(h);
                    }
                }
            }
        }
        for &i in &self.catch_all {
            let h = &self.handlers[i];
            if h.filter().matches_rest(ev) {
                f(h);
            }
        }
    }

    /// The handlers matching the event, in dispatch order.
    pub fn matching(&self, ev: &TriggerEvent) -> Vec<&Handler> {
        let mut out = Vec::new();
        self.for_each_match(ev, |h| out.push(h));
        out
    }
}
