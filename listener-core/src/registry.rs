//! The registry: every handler of a listener, indexed by lower-cased trigger slug so that
//! the cost of an event grows with the handlers that match it, not with all registered.

use std::collections::HashMap;

use crate::event::TriggerEvent;
use crate::filter::{Filter, FilterSpec};
use crate::handler::{Handler, HandlerFn};
use crate::policy::PolicySpec;

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
    /// Its policy keys.
    pub policy: PolicySpec,
    /// Builds the erased function.
    pub build: fn() -> HandlerFn,
}

inventory::collect!(HandlerDescriptor);

impl HandlerDescriptor {
    /// The handler this descriptor describes, named `module::path::function`.
    pub fn to_handler(&self) -> Handler {
        let mut handler = Handler::from_fn(
            format!("{}::{}", self.module_path, self.name),
            Filter::from(self.filter),
            (self.build)(),
        );
        let policy = &self.policy;
        if let Some(ms) = policy.timeout_ms {
            handler = handler.timeout(std::time::Duration::from_millis(ms));
        }
        if policy.retries > 0 {
            handler = handler.retries(policy.retries);
        }
        if let Some(ms) = policy.retry_delay_ms {
            handler = handler.retry_delay(std::time::Duration::from_millis(ms));
        }
        if let Some(n) = policy.concurrency {
            handler = handler.concurrency(n);
        }
        if let Some(path) = policy.sequential_by {
            handler = handler.sequential_by(path);
        }
        handler
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
    by_slug: HashMap<Box<str>, Vec<usize>, foldhash::fast::RandomState>,
    catch_all: Vec<usize>,
}

impl Registry {
    /// Indexes the given handlers.
    pub fn new(handlers: Vec<Handler>) -> Self {
        let mut by_slug: HashMap<Box<str>, Vec<usize>, foldhash::fast::RandomState> =
            HashMap::default();
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
        self.for_each_match_index(ev, |i| f(&self.handlers[i]));
    }

    /// Like [`for_each_match`](Self::for_each_match), with each handler's index in
    /// [`handlers`](Self::handlers).
    pub(crate) fn for_each_match_index(&self, ev: &TriggerEvent, mut f: impl FnMut(usize)) {
        if !ev.trigger_slug.is_empty() && !self.by_slug.is_empty() {
            // Lower-case short ASCII slugs (all real ones) on the stack, without allocating.
            let mut buf = [0u8; 128];
            let owned;
            let key: &str = match buf.get_mut(..ev.trigger_slug.len()) {
                Some(dst) if ev.trigger_slug.is_ascii() => {
                    dst.copy_from_slice(ev.trigger_slug.as_bytes());
                    dst.make_ascii_lowercase();
                    // ASCII in, ASCII out.
                    std::str::from_utf8(dst).unwrap_or_default()
                }
                _ => {
                    owned = ev.trigger_slug.to_lowercase();
                    &owned
                }
            };
            if let Some(indices) = self.by_slug.get(key) {
                for &i in indices {
                    if self.handlers[i].filter().matches_rest(ev) {
                        f(i);
                    }
                }
            }
        }
        for &i in &self.catch_all {
            if self.handlers[i].filter().matches_rest(ev) {
                f(i);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &Registry, slug: &str) -> Vec<String> {
        let ev = TriggerEvent::new(slug, serde_json::Value::Null);
        r.matching(&ev)
            .iter()
            .map(|h| h.name().to_owned())
            .collect()
    }

    fn noop(name: &str, filter: Filter) -> Handler {
        Handler::new(name, filter, |_: std::sync::Arc<TriggerEvent>| async {})
    }

    /// Short ASCII slugs are lower-cased on the stack; long and non-ASCII ones take the
    /// allocating path. Both find their handlers whatever the case.
    #[test]
    fn slugs_of_every_length_and_script_are_found_case_insensitively() {
        let long = format!("TOOLKIT_{}", "X".repeat(200));
        let r = Registry::new(vec![
            noop("short", Filter::new().name("slack_receive_message")),
            noop("long", Filter::new().name(&long)),
            noop("unicode", Filter::new().name("ÉTÉ_ÄRGER")),
            noop("all", Filter::new()),
        ]);
        assert_eq!(names(&r, "SLACK_Receive_MESSAGE"), ["short", "all"]);
        assert_eq!(names(&r, &long.to_lowercase()), ["long", "all"]);
        assert_eq!(names(&r, "été_ärger"), ["unicode", "all"]);
        assert_eq!(names(&r, "Été_Ärger"), ["unicode", "all"]);
        assert_eq!(names(&r, &"A".repeat(128)), ["all"]);
        assert_eq!(names(&r, ""), ["all"]);
    }
}
