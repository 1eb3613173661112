//! Handler filters with Composio's semantics (as its SDKs filter): every key optional, all set
//! keys must match, comparison case-insensitive, an empty event-side value never matches.

use std::fmt;
use std::sync::Arc;

use crate::event::TriggerEvent;

/// A filter as written in `#[on_trigger(...)]`: `&'static str`s, so the macro can emit it as a
/// constant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// Trigger slug or V3 lifecycle type.
    pub name: Option<&'static str>,
    /// Toolkit slug.
    pub toolkit: Option<&'static str>,
    /// Trigger instance id.
    pub trigger_id: Option<&'static str>,
    /// User id.
    pub user_id: Option<&'static str>,
    /// Auth config id.
    pub auth_config_id: Option<&'static str>,
    /// Connected account id.
    pub connected_account_id: Option<&'static str>,
}

type Predicate = Arc<dyn Fn(&TriggerEvent) -> bool + Send + Sync>;

/// Which events a handler receives.
///
/// Built with setters, or from a [`FilterSpec`]. Values are lower-cased once, here, so
/// matching allocates nothing.
///
/// ```
/// use listener_core::{Filter, TriggerEvent};
/// let f = Filter::new().name("slack_receive_message").user_id("Default");
/// let ev = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", serde_json::json!({})).with_user_id("default");
/// assert!(f.matches(&ev));
/// ```
#[derive(Clone, Default)]
pub struct Filter {
    name: Option<Box<str>>,
    toolkit: Option<Box<str>>,
    trigger_id: Option<Box<str>>,
    user_id: Option<Box<str>>,
    auth_config_id: Option<Box<str>>,
    connected_account_id: Option<Box<str>>,
    predicate: Option<Predicate>,
}

fn lower(v: &str) -> Box<str> {
    v.to_lowercase().into_boxed_str()
}

/// `event` equals the already lower-cased `want`, ignoring case; an empty `event` never matches.
fn eq_ci(want: &str, event: &str) -> bool {
    !event.is_empty() && event.chars().flat_map(char::to_lowercase).eq(want.chars())
}

impl Filter {
    /// A filter that matches every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events with this trigger slug or V3 lifecycle type.
    pub fn name(mut self, v: impl AsRef<str>) -> Self {
        self.name = Some(lower(v.as_ref()));
        self
    }

    /// Only events of this toolkit.
    pub fn toolkit(mut self, v: impl AsRef<str>) -> Self {
        self.toolkit = Some(lower(v.as_ref()));
        self
    }

    /// Only events of this trigger instance.
    pub fn trigger_id(mut self, v: impl AsRef<str>) -> Self {
        self.trigger_id = Some(lower(v.as_ref()));
        self
    }

    /// Only events of this user.
    pub fn user_id(mut self, v: impl AsRef<str>) -> Self {
        self.user_id = Some(lower(v.as_ref()));
        self
    }

    /// Only events of this auth config.
    pub fn auth_config_id(mut self, v: impl AsRef<str>) -> Self {
        self.auth_config_id = Some(lower(v.as_ref()));
        self
    }

    /// Only events of this connected account.
    pub fn connected_account_id(mut self, v: impl AsRef<str>) -> Self {
        self.connected_account_id = Some(lower(v.as_ref()));
        self
    }

    /// An extra condition computed at run time (checked after the keys).
    pub fn when(
        mut self,
        predicate: impl Fn(&TriggerEvent) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// The lower-cased slug this filter is indexed under, if it names one.
    pub(crate) fn slug_key(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the event passes every key that is set (the slug included).
    pub fn matches(&self, ev: &TriggerEvent) -> bool {
        self.name
            .as_deref()
            .is_none_or(|w| eq_ci(w, &ev.trigger_slug))
            && self.matches_rest(ev)
    }

    /// Every key but the slug, which the registry's index has already checked.
    pub(crate) fn matches_rest(&self, ev: &TriggerEvent) -> bool {
        let account = &ev.metadata.connected_account;
        let check =
            |want: &Option<Box<str>>, have: &str| want.as_deref().is_none_or(|w| eq_ci(w, have));
        check(&self.toolkit, &ev.toolkit_slug)
            && check(&self.trigger_id, &ev.id)
            && check(&self.user_id, &ev.user_id)
            && check(&self.auth_config_id, &account.auth_config_id)
            && check(&self.connected_account_id, &account.id)
            && self.predicate.as_ref().is_none_or(|p| p(ev))
    }
}

impl From<FilterSpec> for Filter {
    fn from(spec: FilterSpec) -> Self {
        let mut f = Filter::new();
        let set = |slot: &mut Option<Box<str>>, v: Option<&str>| *slot = v.map(lower);
        set(&mut f.name, spec.name);
        set(&mut f.toolkit, spec.toolkit);
        set(&mut f.trigger_id, spec.trigger_id);
        set(&mut f.user_id, spec.user_id);
        set(&mut f.auth_config_id, spec.auth_config_id);
        set(&mut f.connected_account_id, spec.connected_account_id);
        f
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Filter");
        for (key, v) in [
            ("name", &self.name),
            ("toolkit", &self.toolkit),
            ("trigger_id", &self.trigger_id),
            ("user_id", &self.user_id),
            ("auth_config_id", &self.auth_config_id),
            ("connected_account_id", &self.connected_account_id),
        ] {
            if let Some(v) = v {
                d.field(key, v);
            }
        }
        if self.predicate.is_some() {
            d.field("predicate", &"<fn>");
        }
        d.finish()
    }
}
