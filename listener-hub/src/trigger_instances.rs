//! The hub's trigger instances: what `POST /api/v3.1/trigger_instances/{slug}/upsert`
//! creates, in a bounded store, and how a published event is matched to one.
//!
//! Upserting is idempotent the way Composio's is: the same trigger slug, connected account
//! and configuration give the same instance (re-enabled if it was disabled); another
//! configuration gives another instance. The hub has no connected accounts of its own:
//! any `connected_account_id` is accepted, and a request naming only a user gets an id
//! derived from the user and the trigger's toolkit (`ca_…`, the same on every hub), as
//! Composio picks the user's connection to that toolkit. A request naming only an account
//! gets the user the hub last saw with that account, else `default`. The auth config is
//! derived from the toolkit (`ac_…`).
//!
//! A trigger message published to the hub matches an instance when the instance is enabled,
//! has the event's slug (case-insensitive), and has each of the event's user, connected
//! account and auth config that the event names; an event naming a trigger id matches only
//! that instance. The first (oldest) match wins.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::ids;
use listener_core::ConfigError;
use listener_core::Error;

/// Trigger instances a hub keeps unless told otherwise
/// ([`HubConfig::max_trigger_instances`](crate::HubConfig::max_trigger_instances)).
pub const DEFAULT_MAX_TRIGGER_INSTANCES: usize = 10_000;

/// The key of the [`ConfigError`] a strict hub refuses an event with
/// ([`HubConfig::strict_triggers`](crate::HubConfig::strict_triggers)).
pub const NOT_ACTIVE: &str = "strict triggers";

/// One trigger instance of the hub, as [`RunningHub::trigger_instances`](crate::RunningHub::trigger_instances) lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerInstanceRecord {
    /// The instance id (`ti_…`).
    pub id: String,
    /// The trigger type's slug, upper-cased (`SLACK_RECEIVE_MESSAGE`).
    pub trigger_slug: String,
    /// The trigger type's toolkit (`slack`).
    pub toolkit_slug: String,
    /// The user.
    pub user_id: String,
    /// The connected account (given, or derived from the user and toolkit).
    pub connected_account_id: String,
    /// The auth config (derived from the toolkit).
    pub auth_config_id: String,
    /// The configuration, as given (validated against the type's config schema).
    pub trigger_config: Value,
    /// The trigger type's version when the instance was made.
    pub version: String,
    /// Whether it delivers events.
    pub enabled: bool,
    /// When it was disabled (RFC 3339), while it is.
    pub disabled_at: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

impl TriggerInstanceRecord {
    /// The instance as `GET /api/v3.1/trigger_instances/active` lists it: Composio's keys,
    /// snake_case and the deprecated camelCase alike.
    pub(crate) fn to_api(&self) -> Value {
        json!({
            "id": self.id,
            "uuid": self.id,
            "trigger_name": self.trigger_slug,
            "triggerName": self.trigger_slug,
            "user_id": self.user_id,
            "connected_account_id": self.connected_account_id,
            "connectedAccountId": self.connected_account_id,
            "connected_account_uuid": self.connected_account_id,
            "auth_config_id": self.auth_config_id,
            "trigger_config": self.trigger_config,
            "triggerConfig": self.trigger_config,
            "trigger_data": null,
            "state": {},
            "version": self.version,
            "egress_url": null,
            "disabled_at": self.disabled_at,
            "disabledAt": self.disabled_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "updatedAt": self.updated_at,
            "deprecated": {"createdAt": self.created_at},
        })
    }
}

/// Whose trigger an upsert makes.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) user_id: Option<String>,
    pub(crate) connected_account_id: Option<String>,
}

/// The instances the active list keeps (the filters of `GET …/trigger_instances/active`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ListFilter {
    pub(crate) user_ids: Vec<String>,
    pub(crate) connected_account_ids: Vec<String>,
    pub(crate) auth_config_ids: Vec<String>,
    pub(crate) trigger_ids: Vec<String>,
    pub(crate) trigger_names: Vec<String>,
    pub(crate) show_disabled: bool,
}

impl ListFilter {
    fn keeps(&self, i: &TriggerInstanceRecord) -> bool {
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        (self.show_disabled || i.enabled)
            && any(&self.user_ids, &i.user_id)
            && any(&self.connected_account_ids, &i.connected_account_id)
            && any(&self.auth_config_ids, &i.auth_config_id)
            && any(&self.trigger_ids, &i.id)
            && (self.trigger_names.is_empty()
                || self
                    .trigger_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&i.trigger_slug)))
    }
}

/// The identity fields of a trigger message, for matching it to an instance (`""`: not named).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EventIdentity<'a> {
    pub(crate) trigger_slug: &'a str,
    pub(crate) trigger_id: &'a str,
    pub(crate) user_id: &'a str,
    pub(crate) connected_account_id: &'a str,
    pub(crate) auth_config_id: &'a str,
}

impl EventIdentity<'_> {
    fn describe(&self) -> String {
        let mut out = format!(
            "`{}`",
            listener_core::preview::truncate_chars(self.trigger_slug, 80)
        );
        for (what, value) in [
            ("trigger", self.trigger_id),
            ("user", self.user_id),
            ("connected account", self.connected_account_id),
            ("auth config", self.auth_config_id),
        ] {
            if !value.is_empty() {
                out.push_str(&format!(
                    ", {what} `{}`",
                    listener_core::preview::truncate_chars(value, 80)
                ));
            }
        }
        out
    }
}

/// Why an upsert was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpsertRefused {
    /// The store holds its bound.
    Full(usize),
}

#[derive(Default)]
struct Store {
    /// By creation order.
    by_seq: BTreeMap<u64, TriggerInstanceRecord>,
    seq_of: HashMap<String, u64>,
    next_seq: u64,
    /// The user last seen with each connected account.
    account_users: HashMap<String, String>,
}

/// The hub's trigger instances.
pub(crate) struct TriggerInstances {
    store: Mutex<Store>,
    max: usize,
    strict: bool,
}

/// FNV-1a, 64 bits: stable ids derived from names.
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, part) in parts.iter().enumerate() {
        if n > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The connected account the hub assigns a user's triggers of a toolkit.
pub(crate) fn derived_account(user_id: &str, toolkit: &str) -> String {
    format!("ca_{:016x}", stable_hash(&[user_id, toolkit]))
}

/// The auth config the hub assigns a toolkit.
pub(crate) fn derived_auth_config(toolkit: &str) -> String {
    format!("ac_{:016x}", stable_hash(&[toolkit]))
}

impl TriggerInstances {
    pub(crate) fn new(max: usize, strict: bool) -> Self {
        TriggerInstances {
            store: Mutex::new(Store::default()),
            max,
            strict,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the instance, or finds the one with the same slug, account and
    /// configuration (re-enabling it); `true` when it was created.
    pub(crate) fn upsert(
        &self,
        slug: &str,
        toolkit: &str,
        version: &str,
        owner: Owner,
        config: Value,
    ) -> Result<(TriggerInstanceRecord, bool), UpsertRefused> {
        let mut store = self.lock();
        let account = match (&owner.connected_account_id, &owner.user_id) {
            (Some(account), _) => account.clone(),
            (None, Some(user)) => derived_account(user, toolkit),
            (None, None) => derived_account("default", toolkit),
        };
        let user = owner
            .user_id
            .clone()
            .or_else(|| store.account_users.get(&account).cloned())
            .unwrap_or_else(|| "default".to_owned());
        let now = ids::now_rfc3339();
        let existing = store
            .by_seq
            .iter()
            .find(|(_, i)| {
                i.trigger_slug == slug
                    && i.connected_account_id == account
                    && i.trigger_config == config
            })
            .map(|(seq, _)| *seq);
        if let Some(seq) = existing {
            let instance = store.by_seq.get_mut(&seq).expect("found above");
            instance.enabled = true;
            instance.disabled_at = None;
            instance.user_id = user.clone();
            instance.updated_at = now;
            let instance = instance.clone();
            store.account_users.insert(account, user);
            return Ok((instance, false));
        }
        if store.by_seq.len() >= self.max {
            return Err(UpsertRefused::Full(self.max));
        }
        let instance = TriggerInstanceRecord {
            id: ids::fresh("ti_"),
            trigger_slug: slug.to_owned(),
            toolkit_slug: toolkit.to_owned(),
            user_id: user.clone(),
            connected_account_id: account.clone(),
            auth_config_id: derived_auth_config(toolkit),
            trigger_config: config,
            version: version.to_owned(),
            enabled: true,
            disabled_at: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let seq = store.next_seq;
        store.next_seq += 1;
        store.seq_of.insert(instance.id.clone(), seq);
        store.by_seq.insert(seq, instance.clone());
        // Bounded with the instances: only accounts of instances are remembered.
        store.account_users.insert(account, user);
        Ok((instance, true))
    }

    /// Enables or disables an instance: the instance, and whether its state changed.
    pub(crate) fn set_enabled(
        &self,
        id: &str,
        enabled: bool,
    ) -> Option<(TriggerInstanceRecord, bool)> {
        let mut store = self.lock();
        let seq = *store.seq_of.get(id)?;
        let instance = store.by_seq.get_mut(&seq)?;
        let changed = instance.enabled != enabled;
        if changed {
            let now = ids::now_rfc3339();
            instance.enabled = enabled;
            instance.disabled_at = (!enabled).then(|| now.clone());
            instance.updated_at = now;
        }
        Some((instance.clone(), changed))
    }

    /// Deletes an instance.
    pub(crate) fn delete(&self, id: &str) -> Option<TriggerInstanceRecord> {
        let mut store = self.lock();
        let seq = store.seq_of.remove(id)?;
        let removed = store.by_seq.remove(&seq)?;
        let account_used = store
            .by_seq
            .values()
            .any(|i| i.connected_account_id == removed.connected_account_id);
        if !account_used {
            store.account_users.remove(&removed.connected_account_id);
        }
        Some(removed)
    }

    /// The instances `filter` keeps, oldest first.
    pub(crate) fn list(&self, filter: &ListFilter) -> Vec<TriggerInstanceRecord> {
        self.lock()
            .by_seq
            .values()
            .filter(|i| filter.keeps(i))
            .cloned()
            .collect()
    }

    /// Every instance, oldest first.
    pub(crate) fn all(&self) -> Vec<TriggerInstanceRecord> {
        self.list(&ListFilter {
            show_disabled: true,
            ..ListFilter::default()
        })
    }

    /// The enabled instance an event belongs to (see the module's docs), or why there is none.
    pub(crate) fn find_active(
        &self,
        ev: &EventIdentity<'_>,
    ) -> Result<TriggerInstanceRecord, String> {
        let store = self.lock();
        let slug_matches =
            |i: &TriggerInstanceRecord| i.trigger_slug.eq_ignore_ascii_case(ev.trigger_slug);
        if !ev.trigger_id.is_empty() {
            let found = store
                .seq_of
                .get(ev.trigger_id)
                .and_then(|seq| store.by_seq.get(seq));
            return match found {
                Some(i) if i.enabled && slug_matches(i) => Ok(i.clone()),
                Some(i) if !slug_matches(i) => Err(format!(
                    "trigger instance `{}` is of {}, not of the event's {}",
                    i.id,
                    i.trigger_slug,
                    ev.describe()
                )),
                Some(i) => Err(format!("trigger instance `{}` is disabled", i.id)),
                None => Err(format!(
                    "no trigger instance for the event ({})",
                    ev.describe()
                )),
            };
        }
        let named = |wanted: &str, have: &str| wanted.is_empty() || wanted == have;
        store
            .by_seq
            .values()
            .find(|i| {
                i.enabled
                    && slug_matches(i)
                    && named(ev.user_id, &i.user_id)
                    && named(ev.connected_account_id, &i.connected_account_id)
                    && named(ev.auth_config_id, &i.auth_config_id)
            })
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no active trigger instance for the event ({})",
                    ev.describe()
                )
            })
    }

    /// Whether matching can change anything: a strict hub, or one with instances.
    fn matters(&self) -> bool {
        self.strict || !self.lock().by_seq.is_empty()
    }

    /// Matches an event and, in strict mode, refuses it when nothing matches.
    fn matched(&self, ev: &EventIdentity<'_>) -> Result<Option<TriggerInstanceRecord>, Error> {
        match self.find_active(ev) {
            Ok(instance) => Ok(Some(instance)),
            Err(why) if self.strict => Err(Error::Config(ConfigError::new(
                NOT_ACTIVE,
                format!(
                    "{why}; the hub runs in strict mode and refuses events of triggers that are not active (create one with POST /api/v3.1/trigger_instances/{}/upsert)",
                    listener_core::preview::truncate_chars(ev.trigger_slug, 80)
                ),
            ))),
            Err(_) => Ok(None),
        }
    }

    /// A V3 trigger message's metadata: the matching instance's id (and its user, account
    /// and auth config where the event names none) is written in; `true` when it changed.
    pub(crate) fn attach_v3(&self, envelope: &mut Map<String, Value>) -> Result<bool, Error> {
        if !self.matters() {
            return Ok(false);
        }
        let Some(Value::Object(meta)) = envelope.get_mut("metadata") else {
            return Ok(false);
        };
        let s = |m: &Map<String, Value>, k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (slug, trigger_id, user, account, auth) = (
            s(meta, "trigger_slug"),
            s(meta, "trigger_id"),
            s(meta, "user_id"),
            s(meta, "connected_account_id"),
            s(meta, "auth_config_id"),
        );
        let ev = EventIdentity {
            trigger_slug: &slug,
            trigger_id: &trigger_id,
            user_id: &user,
            connected_account_id: &account,
            auth_config_id: &auth,
        };
        let Some(instance) = self.matched(&ev)? else {
            return Ok(false);
        };
        let mut changed = false;
        for (key, have, value) in [
            ("trigger_id", &trigger_id, &instance.id),
            ("user_id", &user, &instance.user_id),
            (
                "connected_account_id",
                &account,
                &instance.connected_account_id,
            ),
            ("auth_config_id", &auth, &instance.auth_config_id),
        ] {
            if have.is_empty() {
                meta.insert(key.to_owned(), json!(value));
                changed = true;
            }
        }
        Ok(changed)
    }

    /// A bare event: the matching instance's id, user, account and auth config fill what
    /// the event does not give.
    pub(crate) fn attach_bare(&self, bare: &mut crate::BareEvent) -> Result<(), Error> {
        if !self.matters() {
            return Ok(());
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let (trigger_id, user, account, auth) = (
            opt(&bare.trigger_id),
            opt(&bare.user_id),
            opt(&bare.connected_account_id),
            opt(&bare.auth_config_id),
        );
        let ev = EventIdentity {
            trigger_slug: &bare.trigger_slug,
            trigger_id: &trigger_id,
            user_id: &user,
            connected_account_id: &account,
            auth_config_id: &auth,
        };
        let Some(instance) = self.matched(&ev)? else {
            return Ok(());
        };
        let fill = |slot: &mut Option<String>, value: &str| {
            if slot.as_deref().is_none_or(str::is_empty) {
                *slot = Some(value.to_owned());
            }
        };
        fill(&mut bare.trigger_id, &instance.id);
        fill(&mut bare.user_id, &instance.user_id);
        fill(
            &mut bare.connected_account_id,
            &instance.connected_account_id,
        );
        fill(&mut bare.auth_config_id, &instance.auth_config_id);
        Ok(())
    }

    /// Another kind of trigger message (V1, V2, legacy realtime), which is sent as it is:
    /// refused in strict mode when no instance matches.
    pub(crate) fn check_other(&self, envelope: &Map<String, Value>) -> Result<(), Error> {
        if !self.strict {
            return Ok(());
        }
        let Ok(event) = listener_core::decode::decode_value(Value::Object(envelope.clone())) else {
            // The decoder's error is reported by the caller.
            return Ok(());
        };
        let account = &event.metadata.connected_account;
        let ev = EventIdentity {
            trigger_slug: &event.trigger_slug,
            trigger_id: &event.id,
            user_id: &event.user_id,
            connected_account_id: &account.id,
            auth_config_id: &account.auth_config_id,
        };
        self.matched(&ev).map(|_| ())
    }
}

/// Whether `error` is a strict hub's refusal of an event (answered 409, not 400).
pub(crate) fn is_not_active(error: &Error) -> bool {
    matches!(error, Error::Config(c) if c.key == NOT_ACTIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(user: Option<&str>, account: Option<&str>) -> Owner {
        Owner {
            user_id: user.map(str::to_owned),
            connected_account_id: account.map(str::to_owned),
        }
    }

    #[test]
    fn upserts_are_idempotent_per_slug_account_and_config() {
        let store = TriggerInstances::new(3, false);
        let config = json!({"owner": "o", "repo": "r"});
        let up = |o: Owner, c: &Value| {
            store.upsert("GITHUB_STAR_ADDED_EVENT", "github", "v1", o, c.clone())
        };
        let (a, created) = up(owner(Some("u1"), None), &config).unwrap();
        assert!(created && a.id.starts_with("ti_") && a.enabled);
        assert_eq!(a.connected_account_id, derived_account("u1", "github"));
        assert_eq!(a.auth_config_id, derived_auth_config("github"));
        // The same user (so the same derived account) and config: the same instance.
        let (again, created) = up(owner(Some("u1"), None), &config).unwrap();
        assert!(!created);
        assert_eq!(again.id, a.id);
        // The account named explicitly is the same one too; its user is remembered.
        let (same, created) = up(owner(None, Some(&a.connected_account_id)), &config).unwrap();
        assert!(!created);
        assert_eq!(
            (same.id.as_str(), same.user_id.as_str()),
            (a.id.as_str(), "u1")
        );
        // Another config: another instance.
        let (b, created) = up(
            owner(Some("u1"), None),
            &json!({"owner": "o", "repo": "other"}),
        )
        .unwrap();
        assert!(created && b.id != a.id);
        // An unknown account without a user: `default`.
        let (c, _) = up(owner(None, Some("ca_given")), &config).unwrap();
        assert_eq!(
            (c.user_id.as_str(), c.connected_account_id.as_str()),
            ("default", "ca_given")
        );
        // The bound.
        assert_eq!(
            up(owner(Some("u2"), None), &config).unwrap_err(),
            UpsertRefused::Full(3)
        );
        // Disabled, then upserted again: re-enabled, same id.
        let (d, changed) = store.set_enabled(&a.id, false).unwrap();
        assert!(changed && !d.enabled && d.disabled_at.is_some());
        assert!(!store.set_enabled(&a.id, false).unwrap().1);
        let (e, created) = up(owner(Some("u1"), None), &config).unwrap();
        assert!(!created && e.enabled && e.disabled_at.is_none() && e.id == a.id);
        assert!(store.delete(&b.id).is_some());
        assert!(store.delete(&b.id).is_none());
        assert!(store.set_enabled(&b.id, true).is_none());
        assert_eq!(store.all().len(), 2);
    }

    #[test]
    fn lists_are_filtered() {
        let store = TriggerInstances::new(10, false);
        let (a, _) = store
            .upsert(
                "SLACK_RECEIVE_MESSAGE",
                "slack",
                "v",
                owner(Some("u1"), None),
                json!({}),
            )
            .unwrap();
        let (b, _) = store
            .upsert(
                "GITHUB_STAR_ADDED_EVENT",
                "github",
                "v",
                owner(Some("u2"), Some("ca_2")),
                json!({}),
            )
            .unwrap();
        store.set_enabled(&b.id, false);
        let ids = |f: ListFilter| store.list(&f).into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(ListFilter::default()), [a.id.as_str()]);
        assert_eq!(
            ids(ListFilter {
                show_disabled: true,
                ..Default::default()
            }),
            [a.id.as_str(), b.id.as_str()]
        );
        assert_eq!(
            ids(ListFilter {
                show_disabled: true,
                trigger_names: vec!["github_star_added_event".into()],
                ..Default::default()
            }),
            [b.id.as_str()]
        );
        assert_eq!(
            ids(ListFilter {
                user_ids: vec!["u2".into()],
                ..Default::default()
            }),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(ListFilter {
                show_disabled: true,
                connected_account_ids: vec!["ca_2".into(), "x".into()],
                ..Default::default()
            }),
            [b.id.as_str()]
        );
        assert_eq!(
            ids(ListFilter {
                trigger_ids: vec![a.id.clone()],
                ..Default::default()
            }),
            [a.id.as_str()]
        );
        assert_eq!(
            ids(ListFilter {
                auth_config_ids: vec![derived_auth_config("slack")],
                ..Default::default()
            }),
            [a.id.as_str()]
        );
    }

    #[test]
    fn events_are_matched_to_active_instances() {
        let store = TriggerInstances::new(10, true);
        let (a, _) = store
            .upsert(
                "SLACK_RECEIVE_MESSAGE",
                "slack",
                "v",
                owner(Some("u1"), None),
                json!({}),
            )
            .unwrap();
        let ev = |slug, id, user| EventIdentity {
            trigger_slug: slug,
            trigger_id: id,
            user_id: user,
            ..Default::default()
        };
        assert_eq!(
            store
                .find_active(&ev("slack_receive_message", "", ""))
                .unwrap()
                .id,
            a.id
        );
        assert_eq!(
            store
                .find_active(&ev("SLACK_RECEIVE_MESSAGE", "", "u1"))
                .unwrap()
                .id,
            a.id
        );
        assert_eq!(
            store
                .find_active(&ev("SLACK_RECEIVE_MESSAGE", &a.id, ""))
                .unwrap()
                .id,
            a.id
        );
        let why = store
            .find_active(&ev("SLACK_RECEIVE_MESSAGE", "", "u2"))
            .unwrap_err();
        assert!(why.contains("user `u2`"), "{why}");
        let why = store
            .find_active(&ev("GITHUB_STAR_ADDED_EVENT", &a.id, ""))
            .unwrap_err();
        assert!(why.contains("is of SLACK_RECEIVE_MESSAGE"), "{why}");
        assert!(store
            .find_active(&ev("SLACK_RECEIVE_MESSAGE", "ti_unknown", ""))
            .is_err());
        store.set_enabled(&a.id, false);
        let why = store
            .find_active(&ev("SLACK_RECEIVE_MESSAGE", &a.id, ""))
            .unwrap_err();
        assert!(why.contains("disabled"), "{why}");
        let err = store
            .matched(&ev("SLACK_RECEIVE_MESSAGE", "", ""))
            .unwrap_err();
        assert!(is_not_active(&err), "{err}");
        assert!(err.to_string().contains("strict mode"), "{err}");

        // Not strict: no match is no change.
        let lax = TriggerInstances::new(10, false);
        assert!(lax
            .matched(&ev("SLACK_RECEIVE_MESSAGE", "", ""))
            .unwrap()
            .is_none());
        let mut env = json!({"metadata": {"trigger_slug": "X"}})
            .as_object()
            .unwrap()
            .clone();
        assert!(!lax.attach_v3(&mut env).unwrap());
    }

    #[test]
    fn envelopes_and_bare_events_get_the_instance_id() {
        let store = TriggerInstances::new(10, false);
        let (a, _) = store
            .upsert(
                "SLACK_RECEIVE_MESSAGE",
                "slack",
                "v",
                owner(Some("u1"), None),
                json!({}),
            )
            .unwrap();
        let mut env = json!({"metadata": {"trigger_slug": "SLACK_RECEIVE_MESSAGE", "user_id": "u1", "trigger_id": ""}})
            .as_object()
            .unwrap()
            .clone();
        assert!(store.attach_v3(&mut env).unwrap());
        assert_eq!(env["metadata"]["trigger_id"], a.id.as_str());
        assert_eq!(
            env["metadata"]["connected_account_id"],
            a.connected_account_id.as_str()
        );
        assert_eq!(env["metadata"]["user_id"], "u1");
        // Already complete: unchanged.
        assert!(!store.attach_v3(&mut env).unwrap());

        let mut bare = crate::BareEvent {
            trigger_slug: "SLACK_RECEIVE_MESSAGE".into(),
            ..Default::default()
        };
        store.attach_bare(&mut bare).unwrap();
        assert_eq!(bare.trigger_id.as_deref(), Some(a.id.as_str()));
        assert_eq!(bare.user_id.as_deref(), Some("u1"));
        assert_eq!(
            bare.auth_config_id.as_deref(),
            Some(a.auth_config_id.as_str())
        );
    }

    #[test]
    fn derived_ids_are_stable() {
        assert_eq!(
            derived_account("default", "slack"),
            derived_account("default", "slack")
        );
        assert_ne!(
            derived_account("default", "slack"),
            derived_account("defaults", "lack")
        );
        assert!(derived_auth_config("slack").starts_with("ac_"));
    }
}
