//! The hub's event log: every event the hub published, where it went (the realtime
//! connections that were sent it, each webhook delivery and attempt), in a bounded store;
//! and its API: `GET /hub/events` (filtered, newest first), `GET /hub/events/{id}`,
//! `POST /hub/events/{id}/resend`.
//!
//! An entry is keyed by the event's id: publishing an envelope whose id is in the log
//! again (a resend, or the same envelope ingested twice) adds a *send* to that entry instead
//! of a new entry, since a listener sees the same event twice (and drops the second as a
//! duplicate). An event without an id of its own (a legacy realtime or admin envelope) is
//! keyed `hublog_{n}`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::dashboard::Feed;
use super::fanout::Recipient;
use super::realtime_api::api_error;
use super::subscriptions::DeliveryAttempt;
use super::{ids, HubState, Published};
use listener_core::preview::truncate_chars;

/// Events kept in the event log unless told otherwise ([`EventLogConfig::capacity`]).
pub const DEFAULT_EVENT_LOG: usize = 1000;

/// Bytes the event log may hold unless told otherwise ([`EventLogConfig::max_bytes`]): 64 MiB.
pub const DEFAULT_EVENT_LOG_BYTES: usize = 64 << 20;

/// Sends kept per entry: the oldest are dropped beyond ([`EventRecord::sends_total`] still
/// counts them).
pub const MAX_SENDS_KEPT: usize = 20;

/// Realtime recipients named per send ([`EventSend::realtime_total`] counts them all).
pub const MAX_RECIPIENTS_KEPT: usize = 100;

/// Webhook attempt records kept per send; beyond, only the latest attempt of each delivery
/// is kept.
pub const MAX_ATTEMPTS_KEPT: usize = 256;

/// Most events `GET /hub/events` returns at once (`limit`), and its default.
const MAX_LIST: usize = 1000;
const DEFAULT_LIST: usize = 200;

/// What one entry costs besides its envelope, and each attempt or recipient record, in the
/// byte bound (an estimate of the memory they take).
const ENTRY_OVERHEAD: usize = 512;
const ATTEMPT_OVERHEAD: usize = 192;
const RECIPIENT_OVERHEAD: usize = 64;

/// Bounds of the event log (`HubConfig::event_log`). The oldest entries are dropped when a
/// bound is reached. An entry holds its envelope (the whole body, itself at most
/// `HubConfig::max_body_bytes`), so `max_bytes` bounds the log's memory: envelopes plus an
/// estimate of each entry's delivery records. An envelope larger than `max_bytes` alone is
/// not kept (the entry says so; it cannot be resent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLogConfig {
    /// Events kept (default [`DEFAULT_EVENT_LOG`], 1,000); 0 keeps none (the dashboard's
    /// live feed still hears of every event).
    pub capacity: usize,
    /// Bytes kept, envelopes and delivery records (default [`DEFAULT_EVENT_LOG_BYTES`], 64 MiB).
    pub max_bytes: usize,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        EventLogConfig {
            capacity: DEFAULT_EVENT_LOG,
            max_bytes: DEFAULT_EVENT_LOG_BYTES,
        }
    }
}

/// Where an event's latest send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// A webhook delivery is queued or being retried.
    Pending,
    /// Every webhook delivery succeeded (and realtime subscribers, if any, were sent it).
    Delivered,
    /// A webhook delivery failed for good (attempts exhausted) or was dropped (queue full).
    Failed,
    /// No realtime subscriber and no webhook subscription was there to receive it.
    NoSubscribers,
}

impl EventStatus {
    const ALL: [EventStatus; 4] = [
        EventStatus::Pending,
        EventStatus::Delivered,
        EventStatus::Failed,
        EventStatus::NoSubscribers,
    ];

    /// The name used in JSON and in the `status` filter.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Delivered => "delivered",
            EventStatus::Failed => "failed",
            EventStatus::NoSubscribers => "no_subscribers",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A realtime connection that was sent the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealtimeDelivery {
    /// The hub's number for the connection (as in `GET /hub/connections`).
    pub connection: u64,
    /// Its Pusher socket id.
    pub socket_id: String,
}

/// One publication of an event: its first, or a resend with the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSend {
    /// 1 for the first publication, 2 for the next…
    pub n: u64,
    /// When it was published (RFC 3339).
    pub at: String,
    /// Where this send stands.
    pub status: EventStatus,
    /// The realtime connections sent it (at most [`MAX_RECIPIENTS_KEPT`]).
    pub realtime: Vec<RealtimeDelivery>,
    /// How many realtime connections were sent it.
    pub realtime_total: usize,
    /// Each webhook delivery's records, in order: `queued` (attempt 0) until its first
    /// attempt, then every attempt (status, latency, answer preview, error).
    pub webhooks: Vec<DeliveryAttempt>,
    /// Attempt records not kept (over [`MAX_ATTEMPTS_KEPT`]).
    #[serde(default)]
    pub attempts_dropped: usize,
    #[serde(skip)]
    seq: u64,
}

/// Counts of a send's webhook deliveries, by where they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCounts {
    /// Delivered (a 2xx answer).
    pub delivered: usize,
    /// Failed for good or dropped.
    pub failed: usize,
    /// Queued or being retried.
    pub pending: usize,
}

impl EventSend {
    fn new(n: u64, seq: u64, recipients: &[Recipient]) -> Self {
        EventSend {
            n,
            at: ids::now_rfc3339(),
            status: EventStatus::NoSubscribers,
            realtime: recipients
                .iter()
                .take(MAX_RECIPIENTS_KEPT)
                .map(|r| RealtimeDelivery {
                    connection: r.connection,
                    socket_id: r.socket_id.to_string(),
                })
                .collect(),
            realtime_total: recipients.len(),
            webhooks: Vec::new(),
            attempts_dropped: 0,
            seq,
        }
        .with_status()
    }

    /// The latest outcome of each delivery, counted.
    pub fn webhook_counts(&self) -> WebhookCounts {
        let mut latest: HashMap<&str, &str> = HashMap::new();
        for a in &self.webhooks {
            latest.insert(a.webhook_id.as_str(), a.outcome.as_str());
        }
        let mut counts = WebhookCounts::default();
        for outcome in latest.values() {
            match *outcome {
                "delivered" => counts.delivered += 1,
                "failed" | "dropped" => counts.failed += 1,
                _ => counts.pending += 1,
            }
        }
        counts
    }

    fn with_status(mut self) -> Self {
        self.status = self.compute_status();
        self
    }

    fn compute_status(&self) -> EventStatus {
        let counts = self.webhook_counts();
        if counts.pending > 0 {
            EventStatus::Pending
        } else if counts.failed > 0 {
            EventStatus::Failed
        } else if self.realtime_total == 0 && counts.delivered == 0 {
            EventStatus::NoSubscribers
        } else {
            EventStatus::Delivered
        }
    }

    /// Adds a delivery record: `queued` once per delivery, then each attempt (the first
    /// replaces `queued`, as `dropped` does); returns how much the send's cost changed.
    fn record(&mut self, attempt: &DeliveryAttempt) -> isize {
        let before = self.cost();
        self.apply(attempt);
        self.status = self.compute_status();
        self.cost() as isize - before as isize
    }

    fn apply(&mut self, attempt: &DeliveryAttempt) {
        let same = |a: &DeliveryAttempt| a.webhook_id == attempt.webhook_id;
        if let Some(i) = self.webhooks.iter().position(|a| same(a) && a.attempt == 0) {
            self.webhooks[i] = attempt.clone();
            return;
        }
        if attempt.attempt == 0 && self.webhooks.iter().any(same) {
            // A late `queued` of a delivery already attempted.
            return;
        }
        if self.webhooks.len() >= MAX_ATTEMPTS_KEPT {
            // Full: keep only the latest attempt of this delivery, or drop the record.
            self.attempts_dropped += 1;
            match self.webhooks.iter().rposition(same) {
                Some(i) => {
                    self.webhooks.remove(i);
                }
                None => return,
            }
        }
        self.webhooks.push(attempt.clone());
    }

    fn cost(&self) -> usize {
        self.realtime.len() * RECIPIENT_OVERHEAD
            + self.webhooks.iter().map(attempt_cost).sum::<usize>()
    }
}

fn attempt_cost(a: &DeliveryAttempt) -> usize {
    ATTEMPT_OVERHEAD
        + a.webhook_url.len()
        + a.answer.as_ref().map_or(0, String::len)
        + a.error.as_ref().map_or(0, String::len)
}

/// One event in the log, with where it went (`GET /hub/events/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The log's key: the event's id, or `hublog_{n}` for an event without one.
    pub id: String,
    /// The event's own id (`""` when its envelope has none).
    pub event_id: String,
    /// The event type (`composio.trigger.message`, …).
    pub event_type: String,
    /// The trigger slug (an admin or lifecycle event: its type).
    pub trigger_slug: String,
    /// The toolkit (`slack`).
    pub toolkit: String,
    /// The user id (`""` when the envelope has none).
    pub user_id: String,
    /// When the hub first published it (RFC 3339).
    pub received_at: String,
    /// Where the latest send stands.
    pub status: EventStatus,
    /// The entry this one was resent from with a fresh id, if it was.
    pub resent_from: Option<String>,
    /// The envelope's size in bytes.
    pub envelope_bytes: usize,
    /// The envelope, as published; `null` when it was not kept (over the log's byte bound).
    pub envelope: Option<Value>,
    /// How many times it was published (resends with the same id included).
    pub sends_total: u64,
    /// The latest sends, oldest first (at most [`MAX_SENDS_KEPT`]).
    pub sends: Vec<EventSend>,
}

/// An event in the list of `GET /hub/events`, and in the dashboard's live feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    /// The log's key ([`EventRecord::id`]).
    pub id: String,
    /// The event's own id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The trigger slug.
    pub trigger_slug: String,
    /// The toolkit.
    pub toolkit: String,
    /// The user id.
    pub user_id: String,
    /// When the hub first published it.
    pub received_at: String,
    /// When it was last published.
    pub last_sent_at: String,
    /// Where the latest send stands.
    pub status: EventStatus,
    /// The entry it was resent from with a fresh id, if it was.
    pub resent_from: Option<String>,
    /// The envelope's size in bytes.
    pub envelope_bytes: usize,
    /// How many times it was published.
    pub sends: u64,
    /// Realtime connections the latest send reached.
    pub realtime: usize,
    /// The latest send's webhook deliveries.
    pub webhooks: WebhookCounts,
}

/// How an event comes to be published.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// Ingested or published through the API.
    New,
    /// Resent as it was, into the entry `key`.
    Resend(String),
    /// A copy with a fresh id of the entry `key`.
    Fresh(String),
}

struct Entry {
    no: u64,
    key: String,
    event_id: String,
    event_type: String,
    trigger_slug: String,
    toolkit: String,
    user_id: String,
    received: SystemTime,
    received_at: String,
    resent_from: Option<String>,
    envelope: Option<Arc<str>>,
    envelope_bytes: usize,
    sends_total: u64,
    sends: VecDeque<EventSend>,
    cost: usize,
}

impl Entry {
    fn latest(&self) -> Option<&EventSend> {
        self.sends.back()
    }

    fn status(&self) -> EventStatus {
        self.latest()
            .map_or(EventStatus::NoSubscribers, |s| s.status)
    }

    fn summary(&self) -> EventSummary {
        let latest = self.latest();
        EventSummary {
            id: self.key.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            trigger_slug: self.trigger_slug.clone(),
            toolkit: self.toolkit.clone(),
            user_id: self.user_id.clone(),
            received_at: self.received_at.clone(),
            last_sent_at: latest.map_or_else(|| self.received_at.clone(), |s| s.at.clone()),
            status: self.status(),
            resent_from: self.resent_from.clone(),
            envelope_bytes: self.envelope_bytes,
            sends: self.sends_total,
            realtime: latest.map_or(0, |s| s.realtime_total),
            webhooks: latest.map(EventSend::webhook_counts).unwrap_or_default(),
        }
    }

    fn record(&self) -> EventRecord {
        EventRecord {
            id: self.key.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            trigger_slug: self.trigger_slug.clone(),
            toolkit: self.toolkit.clone(),
            user_id: self.user_id.clone(),
            received_at: self.received_at.clone(),
            status: self.status(),
            resent_from: self.resent_from.clone(),
            envelope_bytes: self.envelope_bytes,
            envelope: self.envelope.as_deref().map(|text| {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
            }),
            sends_total: self.sends_total,
            sends: self.sends.iter().cloned().collect(),
        }
    }
}

#[derive(Default)]
struct Store {
    entries: VecDeque<Entry>,
    by_key: HashMap<String, u64>,
    by_send: HashMap<u64, u64>,
    bytes: usize,
    next_no: u64,
}

impl Store {
    fn get_mut(&mut self, no: u64) -> Option<&mut Entry> {
        let first = self.entries.front()?.no;
        let at = usize::try_from(no.checked_sub(first)?).ok()?;
        self.entries.get_mut(at)
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        let no = *self.by_key.get(key)?;
        let first = self.entries.front()?.no;
        self.entries
            .get(usize::try_from(no.checked_sub(first)?).ok()?)
    }

    fn evict_front(&mut self) {
        if let Some(old) = self.entries.pop_front() {
            self.by_key.remove(&old.key);
            for send in &old.sends {
                self.by_send.remove(&send.seq);
            }
            self.bytes = self.bytes.saturating_sub(old.cost);
        }
    }

    /// Drops the oldest entries until both bounds hold; a lone entry over the byte bound
    /// loses its envelope.
    fn enforce(&mut self, config: &EventLogConfig) {
        while self.entries.len() > config.capacity {
            self.evict_front();
        }
        while self.bytes > config.max_bytes && self.entries.len() > 1 {
            self.evict_front();
        }
        if self.bytes > config.max_bytes {
            if let Some(entry) = self.entries.front_mut() {
                if entry.envelope.take().is_some() {
                    entry.cost -= entry.envelope_bytes;
                    self.bytes -= entry.envelope_bytes;
                }
            }
        }
    }
}

/// Why an event could not be resent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResendError {
    /// No entry with this id (never published, or evicted).
    #[error(
        "no event `{0}` in the hub's event log (never published, or dropped from the log since)"
    )]
    NotFound(String),
    /// The envelope was too large to keep.
    #[error("the envelope of event `{0}` was not kept (larger than the event log's byte bound), so it cannot be resent")]
    NotKept(String),
    /// A fresh id was asked for an envelope that has no id to replace.
    #[error("event `{0}` has no id of its own (a legacy realtime or admin envelope): it can only be resent as it is")]
    NoIdToReplace(String),
}

/// The event log: entries in publication order, and the feed the dashboard listens to.
pub(crate) struct EventLog {
    config: EventLogConfig,
    store: Mutex<Store>,
    seq: AtomicU64,
    anonymous: AtomicU64,
    feed: Feed,
}

impl EventLog {
    pub(crate) fn new(config: EventLogConfig, feed: Feed) -> Self {
        EventLog {
            config,
            store: Mutex::new(Store::default()),
            seq: AtomicU64::new(1),
            anonymous: AtomicU64::new(1),
            feed,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn announce(&self, summary: Option<EventSummary>) {
        if let Some(summary) = summary {
            self.feed.send("event", || json!(summary).to_string());
        }
    }

    /// Records a publication of `text` that reached `recipients`; returns the send's number
    /// for [`attempt`](Self::attempt) (the webhook deliveries' `log_ref`).
    pub(crate) fn record(
        &self,
        text: &str,
        event_id: &str,
        event_type: &str,
        origin: &Origin,
        recipients: &[Recipient],
    ) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if self.config.capacity == 0 && !self.feed.listening() {
            // Nothing to keep and nobody to tell: skip decoding the envelope.
            return seq;
        }
        let summary = {
            let mut store = self.lock();
            let key = match origin {
                Origin::Resend(key) => key.clone(),
                _ if event_id.is_empty() => {
                    format!("hublog_{}", self.anonymous.fetch_add(1, Ordering::Relaxed))
                }
                _ => event_id.to_owned(),
            };
            let existing = store.by_key.get(&key).copied();
            let summary = match existing.and_then(|no| store.get_mut(no).map(|e| (no, e))) {
                Some((no, entry)) => {
                    entry.sends_total += 1;
                    let send = EventSend::new(entry.sends_total, seq, recipients);
                    let mut delta = send.cost() as isize;
                    entry.sends.push_back(send);
                    let mut dropped = Vec::new();
                    while entry.sends.len() > MAX_SENDS_KEPT {
                        if let Some(old) = entry.sends.pop_front() {
                            delta -= old.cost() as isize;
                            dropped.push(old.seq);
                        }
                    }
                    entry.cost = entry.cost.saturating_add_signed(delta);
                    let summary = entry.summary();
                    for old in dropped {
                        store.by_send.remove(&old);
                    }
                    store.by_send.insert(seq, no);
                    store.bytes = store.bytes.saturating_add_signed(delta);
                    summary
                }
                None => {
                    let entry = new_entry(
                        store.next_no,
                        key,
                        text,
                        event_id,
                        event_type,
                        origin,
                        seq,
                        recipients,
                    );
                    let summary = entry.summary();
                    if self.config.capacity > 0 {
                        store.next_no += 1;
                        store.bytes += entry.cost;
                        store.by_key.insert(entry.key.clone(), entry.no);
                        store.by_send.insert(seq, entry.no);
                        store.entries.push_back(entry);
                    }
                    summary
                }
            };
            store.enforce(&self.config);
            summary
        };
        self.announce(Some(summary));
        seq
    }

    /// A webhook delivery record (`queued`, then each attempt) of the send `seq`.
    pub(crate) fn attempt(&self, seq: u64, attempt: &DeliveryAttempt) {
        let summary = {
            let mut store = self.lock();
            let Some(no) = store.by_send.get(&seq).copied() else {
                return;
            };
            let Some(entry) = store.get_mut(no) else {
                return;
            };
            let Some(send) = entry.sends.iter_mut().find(|s| s.seq == seq) else {
                return;
            };
            let delta = send.record(attempt);
            entry.cost = entry.cost.saturating_add_signed(delta);
            let summary = entry.summary();
            store.bytes = store.bytes.saturating_add_signed(delta);
            store.enforce(&self.config);
            summary
        };
        self.announce(Some(summary));
    }

    /// The summaries matching `filter`, newest first, at most `filter.limit`; and how many matched.
    pub(crate) fn list(&self, filter: &Filter) -> (Vec<EventSummary>, usize, usize) {
        let store = self.lock();
        let mut matched = 0;
        let mut items = Vec::new();
        for entry in store.entries.iter().rev() {
            if filter.matches(entry) {
                matched += 1;
                if items.len() < filter.limit {
                    items.push(entry.summary());
                }
            }
        }
        (items, matched, store.entries.len())
    }

    /// Every summary, oldest first.
    pub(crate) fn all(&self) -> Vec<EventSummary> {
        self.lock().entries.iter().map(Entry::summary).collect()
    }

    pub(crate) fn get(&self, key: &str) -> Option<EventRecord> {
        self.lock().get(key).map(Entry::record)
    }

    /// The envelope to resend for `key`: as it is, or with a fresh id.
    pub(crate) fn resendable(
        &self,
        key: &str,
        fresh: bool,
    ) -> Result<(String, String, String, Origin), ResendError> {
        let (text, event_id, event_type) = {
            let store = self.lock();
            let entry = store
                .get(key)
                .ok_or_else(|| ResendError::NotFound(key.to_owned()))?;
            let text = entry
                .envelope
                .clone()
                .ok_or_else(|| ResendError::NotKept(key.to_owned()))?;
            (text, entry.event_id.clone(), entry.event_type.clone())
        };
        if !fresh {
            return Ok((
                text.to_string(),
                event_id,
                event_type,
                Origin::Resend(key.to_owned()),
            ));
        }
        let (text, id) =
            with_fresh_id(&text).ok_or_else(|| ResendError::NoIdToReplace(key.to_owned()))?;
        Ok((text, id, event_type, Origin::Fresh(key.to_owned())))
    }
}

#[allow(clippy::too_many_arguments)]
fn new_entry(
    no: u64,
    key: String,
    text: &str,
    event_id: &str,
    event_type: &str,
    origin: &Origin,
    seq: u64,
    recipients: &[Recipient],
) -> Entry {
    let (trigger_slug, toolkit, user_id) = match listener_core::decode::decode(text.as_bytes()) {
        Ok(ev) => (ev.trigger_slug, ev.toolkit_slug, ev.user_id),
        Err(_) => Default::default(),
    };
    let send = EventSend::new(1, seq, recipients);
    let received = SystemTime::now();
    Entry {
        no,
        cost: ENTRY_OVERHEAD + text.len() + send.cost(),
        key,
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        trigger_slug,
        toolkit,
        user_id,
        received,
        received_at: humantime::format_rfc3339_millis(received).to_string(),
        resent_from: match origin {
            Origin::Fresh(from) => Some(from.clone()),
            _ => None,
        },
        envelope: Some(Arc::from(text)),
        envelope_bytes: text.len(),
        sends_total: 1,
        sends: VecDeque::from([send]),
    }
}

/// `text` with a fresh event id: a V3 envelope's `id` (and `metadata.log_id`), a V1/V2
/// body's `log_id`. `None` when the envelope has no id of its own.
fn with_fresh_id(text: &str) -> Option<(String, String)> {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let id = match listener_core::decode::detect(&map)? {
        listener_core::Envelope::V3 => {
            let id = ids::fresh("evt_");
            map.insert("id".into(), Value::String(id.clone()));
            if let Some(Value::Object(meta)) = map.get_mut("metadata") {
                if meta.contains_key("log_id") {
                    meta.insert("log_id".into(), Value::String(ids::fresh("log_")));
                }
            }
            id
        }
        listener_core::Envelope::V2 | listener_core::Envelope::V1 => {
            let id = ids::fresh("log_");
            map.insert("log_id".into(), Value::String(id.clone()));
            id
        }
        listener_core::Envelope::LegacyRealtime | listener_core::Envelope::Admin => return None,
    };
    Some((Value::Object(map).to_string(), id))
}

/// The filters of `GET /hub/events`, checked.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    slug: Option<String>,
    toolkit: Option<String>,
    user: Option<String>,
    status: Option<EventStatus>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    limit: usize,
}

const FILTER_KEYS: &str = "slug, toolkit, user, status, since, until, limit";

impl Filter {
    fn matches(&self, e: &Entry) -> bool {
        self.slug
            .as_ref()
            .is_none_or(|s| e.trigger_slug.eq_ignore_ascii_case(s))
            && self
                .toolkit
                .as_ref()
                .is_none_or(|t| e.toolkit.eq_ignore_ascii_case(t))
            && self.user.as_ref().is_none_or(|u| &e.user_id == u)
            && self.status.is_none_or(|s| e.status() == s)
            && self.since.is_none_or(|t| e.received >= t)
            && self.until.is_none_or(|t| e.received <= t)
    }

    /// Checks the query pairs; an error names the parameter and what it takes.
    pub(crate) fn parse(pairs: &[(String, String)], now: SystemTime) -> Result<Self, String> {
        let mut f = Filter {
            slug: None,
            toolkit: None,
            user: None,
            status: None,
            since: None,
            until: None,
            limit: DEFAULT_LIST,
        };
        for (key, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key.as_str() {
                "slug" => f.slug = Some(value.to_owned()),
                "toolkit" => f.toolkit = Some(value.to_owned()),
                "user" => f.user = Some(value.to_owned()),
                "status" => {
                    f.status = Some(EventStatus::parse(value).ok_or_else(|| {
                        format!(
                            "status: `{}` is not one of pending, delivered, failed, no_subscribers",
                            truncate_chars(value, 40)
                        )
                    })?)
                }
                "since" => f.since = Some(parse_time("since", value, now)?),
                "until" => f.until = Some(parse_time("until", value, now)?),
                "limit" => {
                    f.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIST).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "limit: `{}` is not a whole number from 1 to {MAX_LIST}",
                                truncate_chars(value, 40)
                            )
                        })?
                }
                other => {
                    return Err(format!(
                        "unknown filter `{}` (the filters are {FILTER_KEYS})",
                        truncate_chars(other, 40)
                    ))
                }
            }
        }
        if let (Some(since), Some(until)) = (f.since, f.until) {
            if since > until {
                return Err("since is later than until: no event can match".into());
            }
        }
        Ok(f)
    }
}

/// An RFC 3339 time (`2026-01-31T12:00:00Z`, fraction and offset-less forms accepted), or a
/// duration before `now` (`15m`, `2h 30m`).
fn parse_time(name: &str, value: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        return Ok(t);
    }
    if let Ok(ago) = humantime::parse_duration(value) {
        return Ok(now.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH));
    }
    Err(format!(
        "{name}: `{}` is neither an RFC 3339 time (such as 2026-01-31T12:00:00Z) nor a duration ago (such as 15m or 2h)",
        truncate_chars(value, 60)
    ))
}

type Answer = (StatusCode, Json<Value>);

/// The event log's routes.
pub(crate) fn routes() -> Router<Arc<HubState>> {
    Router::new()
        .route("/hub/events", get(list))
        .route("/hub/events/{id}", get(detail))
        .route("/hub/events/{id}/resend", post(resend))
}

/// `GET /hub/events?slug&toolkit&user&status&since&until&limit`.
async fn list(
    State(hub): State<Arc<HubState>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    let pairs = match query {
        Ok(Query(pairs)) => pairs,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, &format!("invalid query: {e}")),
    };
    let filter = match Filter::parse(&pairs, SystemTime::now()) {
        Ok(f) => f,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, &message),
    };
    let (items, matched, kept) = hub.events.list(&filter);
    (
        StatusCode::OK,
        Json(json!({
            "items": items,
            "matched": matched,
            "kept": kept,
            "capacity": hub.config.event_log.capacity,
        })),
    )
}

/// `GET /hub/events/{id}`.
async fn detail(State(hub): State<Arc<HubState>>, Path(id): Path<String>) -> Answer {
    match hub.events.get(&id) {
        Some(record) => (StatusCode::OK, Json(json!(record))),
        None => api_error(
            StatusCode::NOT_FOUND,
            &ResendError::NotFound(truncate_chars(&id, 80)).to_string(),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendBody {
    #[serde(default)]
    fresh: Option<bool>,
}

/// Whether a resend asks for a fresh id: `?fresh=true|false` or a body `{"fresh": bool}`.
fn wants_fresh(pairs: &[(String, String)], body: &[u8]) -> Result<bool, String> {
    let mut fresh = false;
    for (key, value) in pairs {
        match (key.as_str(), value.as_str()) {
            ("fresh", "true" | "1") => fresh = true,
            ("fresh", "false" | "0" | "") => fresh = false,
            ("fresh", other) => {
                return Err(format!(
                    "fresh: `{}` is not true or false",
                    truncate_chars(other, 40)
                ))
            }
            (other, _) => {
                return Err(format!(
                    "unknown parameter `{}` (resend takes fresh=true|false)",
                    truncate_chars(other, 40)
                ))
            }
        }
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        let parsed: ResendBody = serde_json::from_slice(body).map_err(|e| {
            format!("the body must be a JSON object {{\"fresh\": true|false}}: {e}")
        })?;
        if let Some(f) = parsed.fresh {
            fresh = f;
        }
    }
    Ok(fresh)
}

/// `POST /hub/events/{id}/resend[?fresh=true]`: publishes the event again, with the same
/// id (listeners drop it as a duplicate) or a fresh one (a new entry, which runs).
async fn resend(
    State(hub): State<Arc<HubState>>,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Answer {
    let pairs = match query {
        Ok(Query(pairs)) => pairs,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, &format!("invalid query: {e}")),
    };
    let fresh = match wants_fresh(&pairs, &body) {
        Ok(f) => f,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, &message),
    };
    match hub.resend(&id, fresh) {
        Ok(receipt) => (StatusCode::ACCEPTED, Json(json!(receipt))),
        Err(e) => {
            let status = match e {
                ResendError::NotFound(_) => StatusCode::NOT_FOUND,
                ResendError::NotKept(_) => StatusCode::CONFLICT,
                ResendError::NoIdToReplace(_) => StatusCode::BAD_REQUEST,
            };
            api_error(status, &e.to_string())
        }
    }
}

/// What a resend did (`POST /hub/events/{id}/resend`, [`RunningHub::resend`](crate::RunningHub::resend)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resent {
    /// The log entry the send went into: the same as `resent_from`, or a new one for a fresh id.
    pub id: String,
    /// The entry that was resent.
    pub resent_from: String,
    /// Whether the event got a fresh id.
    pub fresh: bool,
    /// What publishing did (`published.id` is the event id sent).
    pub published: Published,
}

impl HubState {
    /// Resends the log entry `key`.
    pub(crate) fn resend(&self, key: &str, fresh: bool) -> Result<Resent, ResendError> {
        let (text, event_id, event_type, origin) = self.events.resendable(key, fresh)?;
        let id = match &origin {
            Origin::Fresh(_) => event_id.clone(),
            _ => key.to_owned(),
        };
        let published = self.publish_as(text, event_id, event_type, &origin);
        Ok(Resent {
            id,
            resent_from: key.to_owned(),
            fresh,
            published,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn feed() -> Feed {
        Feed::new(16)
    }

    fn v3(id: &str, slug: &str, user: &str) -> String {
        json!({"id": id, "type": "composio.trigger.message", "timestamp": "2026-01-01T00:00:00Z",
            "metadata": {"log_id": "log_1", "trigger_slug": slug, "trigger_id": "ti_1",
                "connected_account_id": "ca_1", "auth_config_id": "ac_1", "user_id": user},
            "data": {"text": "hi"}})
        .to_string()
    }

    fn attempt(webhook_id: &str, n: u32, outcome: &str) -> DeliveryAttempt {
        DeliveryAttempt {
            subscription_id: "ws_1".into(),
            webhook_url: "http://127.0.0.1:1/".into(),
            webhook_id: webhook_id.into(),
            event_id: "evt_1".into(),
            attempt: n,
            status: (n > 0).then_some(if outcome == "delivered" { 200 } else { 500 }),
            error: None,
            outcome: outcome.into(),
            at: ids::now_rfc3339(),
            latency_ms: Some(1),
            answer: Some("ok".into()),
        }
    }

    fn rcpt(n: u64) -> Recipient {
        Recipient {
            connection: n,
            socket_id: Arc::from(format!("1.{n}")),
        }
    }

    #[test]
    fn statuses_follow_the_latest_send() {
        let log = EventLog::new(EventLogConfig::default(), feed());
        let text = v3("evt_1", "SLACK_RECEIVE_MESSAGE", "u1");
        let seq = log.record(
            &text,
            "evt_1",
            "composio.trigger.message",
            &Origin::New,
            &[],
        );
        assert_eq!(log.get("evt_1").unwrap().status, EventStatus::NoSubscribers);
        log.attempt(seq, &attempt("msg_1", 0, "queued"));
        assert_eq!(log.get("evt_1").unwrap().status, EventStatus::Pending);
        log.attempt(seq, &attempt("msg_1", 1, "retrying"));
        log.attempt(seq, &attempt("msg_1", 2, "failed"));
        let rec = log.get("evt_1").unwrap();
        assert_eq!(rec.status, EventStatus::Failed);
        assert_eq!(
            rec.sends[0].webhooks.len(),
            2,
            "queued was replaced by attempt 1"
        );
        assert_eq!(
            (
                rec.trigger_slug.as_str(),
                rec.toolkit.as_str(),
                rec.user_id.as_str()
            ),
            ("SLACK_RECEIVE_MESSAGE", "SLACK", "u1")
        );
        assert_eq!(rec.envelope.unwrap()["data"]["text"], "hi");

        // The same id again: a second send of the same entry.
        let seq2 = log.record(
            &text,
            "evt_1",
            "composio.trigger.message",
            &Origin::New,
            &[rcpt(7)],
        );
        log.attempt(seq2, &attempt("msg_2", 0, "queued"));
        log.attempt(seq2, &attempt("msg_2", 1, "delivered"));
        // A late queued record of a delivery already attempted is ignored.
        log.attempt(seq2, &attempt("msg_2", 0, "queued"));
        let rec = log.get("evt_1").unwrap();
        assert_eq!((rec.sends_total, rec.sends.len()), (2, 2));
        assert_eq!(rec.status, EventStatus::Delivered);
        assert_eq!(
            rec.sends[1].realtime,
            vec![RealtimeDelivery {
                connection: 7,
                socket_id: "1.7".into()
            }]
        );
        assert_eq!(rec.sends[1].webhooks.len(), 1);
        assert_eq!(log.all().len(), 1);
    }

    #[test]
    fn attempt_records_are_bounded_per_send() {
        let log = EventLog::new(EventLogConfig::default(), feed());
        let text = v3("evt_1", "A_B", "u");
        let seq = log.record(
            &text,
            "evt_1",
            "composio.trigger.message",
            &Origin::New,
            &[],
        );
        for n in 0..MAX_ATTEMPTS_KEPT + 10 {
            log.attempt(seq, &attempt(&format!("msg_{n}"), 0, "queued"));
        }
        // A delivery kept: its attempts replace its records; one not kept is counted.
        log.attempt(seq, &attempt("msg_0", 1, "retrying"));
        log.attempt(seq, &attempt("msg_0", 2, "delivered"));
        let send = &log.get("evt_1").unwrap().sends[0];
        assert_eq!(send.webhooks.len(), MAX_ATTEMPTS_KEPT);
        assert_eq!(send.attempts_dropped, 11);
        let last = send.webhooks.last().unwrap();
        assert_eq!((last.webhook_id.as_str(), last.attempt), ("msg_0", 2));
        assert_eq!(
            send.webhooks
                .iter()
                .filter(|a| a.webhook_id == "msg_0")
                .count(),
            1
        );
    }

    #[test]
    fn the_log_is_bounded_in_entries_bytes_and_sends() {
        let log = EventLog::new(
            EventLogConfig {
                capacity: 3,
                max_bytes: 1 << 20,
            },
            feed(),
        );
        for n in 0..5 {
            let id = format!("evt_{n}");
            log.record(
                &v3(&id, "A_B", "u"),
                &id,
                "composio.trigger.message",
                &Origin::New,
                &[],
            );
        }
        let ids: Vec<String> = log.all().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["evt_2", "evt_3", "evt_4"]);

        for _ in 0..MAX_SENDS_KEPT + 5 {
            log.record(
                &v3("evt_4", "A_B", "u"),
                "evt_4",
                "composio.trigger.message",
                &Origin::New,
                &[],
            );
        }
        let rec = log.get("evt_4").unwrap();
        assert_eq!(rec.sends.len(), MAX_SENDS_KEPT);
        assert_eq!(rec.sends_total, MAX_SENDS_KEPT as u64 + 6);
        assert_eq!(rec.sends.last().unwrap().n, rec.sends_total);

        // Bytes: envelopes of ~6 KB in a 16 KB log keep two; one larger than the bound
        // alone is kept without its envelope.
        let log = EventLog::new(
            EventLogConfig {
                capacity: 100,
                max_bytes: 16 << 10,
            },
            feed(),
        );
        let big = |id: &str, n: usize| {
            json!({"id": id, "type": "composio.trigger.message", "metadata": {"trigger_slug": "A_B"}, "data": {"x": "y".repeat(n)}}).to_string()
        };
        for n in 0..4 {
            let id = format!("evt_{n}");
            log.record(
                &big(&id, 6000),
                &id,
                "composio.trigger.message",
                &Origin::New,
                &[],
            );
        }
        assert_eq!(log.all().len(), 2);
        log.record(
            &big("evt_huge", 40_000),
            "evt_huge",
            "composio.trigger.message",
            &Origin::New,
            &[],
        );
        let all = log.all();
        assert_eq!(all.len(), 1);
        let huge = log.get("evt_huge").unwrap();
        assert!(huge.envelope.is_none());
        assert_eq!(huge.envelope_bytes, big("evt_huge", 40_000).len());
        assert_eq!(
            log.resendable("evt_huge", false).unwrap_err(),
            ResendError::NotKept("evt_huge".into())
        );

        // Capacity 0 keeps nothing.
        let log = EventLog::new(
            EventLogConfig {
                capacity: 0,
                max_bytes: 1 << 20,
            },
            feed(),
        );
        let seq = log.record(
            &v3("evt_1", "A_B", "u"),
            "evt_1",
            "composio.trigger.message",
            &Origin::New,
            &[],
        );
        log.attempt(seq, &attempt("msg_1", 1, "delivered"));
        assert!(log.all().is_empty());
    }

    #[test]
    fn filters_are_checked_and_applied() {
        let now = SystemTime::now();
        let p = |q: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = q
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Filter::parse(&pairs, now)
        };
        assert!(p(&[("since", "yesterday-ish")])
            .unwrap_err()
            .contains("since: `yesterday-ish` is neither an RFC 3339 time"));
        assert!(p(&[("status", "ok")])
            .unwrap_err()
            .contains("not one of pending, delivered"));
        assert!(p(&[("limit", "0")]).unwrap_err().contains("limit"));
        assert!(p(&[("limit", "10001")]).unwrap_err().contains("limit"));
        assert!(p(&[("colour", "red")])
            .unwrap_err()
            .contains("unknown filter `colour`"));
        assert!(p(&[("since", "1m"), ("until", "2h")])
            .unwrap_err()
            .contains("later than until"));
        assert!(
            p(&[("slug", ""), ("status", "")]).is_ok(),
            "empty fields are no filter"
        );
        assert!(p(&[
            ("since", "2026-01-31T12:00:00Z"),
            ("until", "2026-02-01 00:00:00")
        ])
        .is_ok());

        let log = EventLog::new(EventLogConfig::default(), feed());
        log.record(
            &v3("evt_a", "SLACK_RECEIVE_MESSAGE", "alice"),
            "evt_a",
            "composio.trigger.message",
            &Origin::New,
            &[],
        );
        log.record(
            &v3("evt_b", "GITHUB_STAR_ADDED_EVENT", "bob"),
            "evt_b",
            "composio.trigger.message",
            &Origin::New,
            &[rcpt(1)],
        );
        let ids = |q: &[(&str, &str)]| -> Vec<String> {
            log.list(&p(q).unwrap())
                .0
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(ids(&[]), ["evt_b", "evt_a"], "newest first");
        assert_eq!(ids(&[("slug", "slack_receive_message")]), ["evt_a"]);
        assert_eq!(ids(&[("toolkit", "GitHub")]), ["evt_b"]);
        assert_eq!(ids(&[("user", "alice")]), ["evt_a"]);
        assert_eq!(ids(&[("status", "delivered")]), ["evt_b"]);
        assert_eq!(ids(&[("status", "no_subscribers")]), ["evt_a"]);
        assert_eq!(ids(&[("since", "1h")]).len(), 2);
        assert!(ids(&[("until", "1h")]).is_empty());
        assert_eq!(ids(&[("limit", "1")]), ["evt_b"]);
        let until = humantime::format_rfc3339(now - Duration::from_secs(3600)).to_string();
        assert!(ids(&[("until", &until)]).is_empty());
    }

    #[test]
    fn fresh_ids_replace_the_envelope_id() {
        let (text, id) = with_fresh_id(&v3("evt_1", "A_B", "u")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], id.as_str());
        assert_ne!(id, "evt_1");
        assert_ne!(v["metadata"]["log_id"], "log_1");
        assert_eq!(v["data"]["text"], "hi");
        let v2 = json!({"type": "slack_receive_message", "log_id": "log_9", "timestamp": "x", "data": {"connection_id": "c", "trigger_id": "t", "user_id": "u"}}).to_string();
        let (text, id) = with_fresh_id(&v2).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["log_id"], id.as_str());
        assert_ne!(id, "log_9");
        let admin = json!({"type": "connected_account.add.completed", "data": {"connected_account_id": "ca_1"}}).to_string();
        assert!(listener_core::decode::detect(
            serde_json::from_str::<Value>(&admin)
                .unwrap()
                .as_object()
                .unwrap()
        )
        .is_some());
        assert!(with_fresh_id(&admin).is_none());
    }

    #[test]
    fn resend_bodies_are_checked() {
        let q = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(!wants_fresh(&[], b"").unwrap());
        assert!(wants_fresh(&q("fresh", "true"), b"").unwrap());
        assert!(wants_fresh(&[], br#"{"fresh": true}"#).unwrap());
        assert!(wants_fresh(&q("fresh", "maybe"), b"")
            .unwrap_err()
            .contains("fresh: `maybe`"));
        assert!(wants_fresh(&[], b"[1]")
            .unwrap_err()
            .contains("JSON object"));
        assert!(wants_fresh(&[], br#"{"fresh": true, "x": 1}"#).is_err());
        assert!(wants_fresh(&q("id", "1"), b"")
            .unwrap_err()
            .contains("unknown parameter"));
    }
}
