//! Webhook subscriptions of the hub and their delivery: the subscriptions (in the shape of
//! Composio's management API), and one delivery worker per
//! subscription with its own bounded queue, so a slow endpoint never stalls the others. Each
//! event is POSTed signed (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and retried
//! with exponential back-off on failure or timeout, a bounded number of times; every attempt
//! goes into a bounded, queryable delivery log, and to the observer given at start (the
//! hub's event log), with its latency and a bounded preview of the receiver's answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ids;
use listener_core::Backoff;

/// The most of a receiver's answer the hub reads (64 KiB): the answer is only drained, so the
/// connection can be reused; a longer one is abandoned (the status still counts).
pub const MAX_RECEIVER_ANSWER_BYTES: usize = 64 << 10;

/// The most of a receiver's answer kept as [`DeliveryAttempt::answer`], in characters.
pub const ANSWER_PREVIEW_CHARS: usize = 512;

/// How long the hub waits for a receiver's answer body once its status arrived (at most the
/// attempt's timeout).
const RECEIVER_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// How the hub delivers webhooks. A receiver's answer body is read up to
/// [`MAX_RECEIVER_ANSWER_BYTES`]; only its status decides, and a preview of it is kept in
/// the attempt ([`ANSWER_PREVIEW_CHARS`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryConfig {
    /// Attempts per event, the first included (default 5).
    pub max_attempts: u32,
    /// Back-off between attempts (default 500 ms doubling to 30 s).
    pub backoff: Backoff,
    /// Time allowed for one attempt (default 10 s).
    pub timeout: Duration,
    /// Events queued per subscription before new ones are dropped (default 1,024).
    pub queue: usize,
    /// Attempts kept in the delivery log (default 1,000).
    pub log_size: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 5,
            backoff: Backoff::default(),
            timeout: Duration::from_secs(10),
            queue: 1024,
            log_size: 1000,
        }
    }
}

/// A webhook subscription, as the management API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Subscription id.
    pub id: String,
    /// Where events are POSTed.
    pub webhook_url: String,
    /// Payload version (the hub delivers `V3`).
    pub version: String,
    /// Event types delivered.
    pub enabled_events: Vec<String>,
    /// Signing secret.
    pub secret: String,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
}

/// One delivery attempt, in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The subscription.
    pub subscription_id: String,
    /// The URL posted to.
    pub webhook_url: String,
    /// The `webhook-id` header (the same on every attempt of one event).
    pub webhook_id: String,
    /// The event's own id.
    pub event_id: String,
    /// 1-based attempt number (`x-composio-delivery-attempt`).
    pub attempt: u32,
    /// The HTTP status answered, if any.
    pub status: Option<u16>,
    /// The transport error, if any.
    pub error: Option<String>,
    /// `delivered`, `retrying`, `failed` (attempts exhausted) or `dropped` (queue full);
    /// in the event log also `queued` (attempt 0: waiting for its first attempt).
    pub outcome: String,
    /// When the attempt finished (ISO 8601).
    pub at: String,
    /// How long the attempt took, from sending the request to its answer's status (or the
    /// transport error), in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// The start of the receiver's answer body, at most [`ANSWER_PREVIEW_CHARS`] characters
    /// (control characters escaped, cut marked with the total size).
    #[serde(default)]
    pub answer: Option<String>,
}

/// Computes the three signature headers for a delivery; provided by the webhook signer.
pub(crate) type SignFn = fn(secret: &str, id: &str, timestamp: i64, body: &str) -> String;

/// Hears of every delivery as it is queued (outcome `queued`) and of every attempt, with the
/// `log_ref` the event was queued with ([`Webhooks::enqueue`]).
pub(crate) type Observer = Arc<dyn Fn(u64, &DeliveryAttempt) + Send + Sync>;

struct Delivery {
    webhook_id: String,
    event_id: String,
    body: Arc<str>,
    log_ref: u64,
}

struct Entry {
    sub: Arc<Mutex<SubscriptionRecord>>,
    queue: mpsc::Sender<Delivery>,
    stop: CancellationToken,
}

impl Entry {
    fn snapshot(&self) -> SubscriptionRecord {
        lock(&self.sub).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Subscriptions, their workers, and the delivery log.
pub(crate) struct Webhooks {
    config: DeliveryConfig,
    http: reqwest::Client,
    sign: SignFn,
    subs: Mutex<BTreeMap<String, Entry>>,
    log: Arc<Mutex<VecDeque<DeliveryAttempt>>>,
    observer: Observer,
    shutdown: CancellationToken,
}

fn fresh_secret() -> String {
    ids::fresh("whsec_")
}

impl Webhooks {
    pub(crate) fn new(
        config: DeliveryConfig,
        sign: SignFn,
        observer: Observer,
        shutdown: CancellationToken,
    ) -> listener_core::Result<Self> {
        let http = listener_core::http::ClientOptions {
            connect_timeout: config.timeout.min(Duration::from_secs(5)),
            timeout: config.timeout,
            user_agent: concat!("listener-hub/", env!("CARGO_PKG_VERSION")).to_owned(),
            follow_redirects: false,
        }
        .build()?;
        Ok(Webhooks {
            config,
            http,
            sign,
            subs: Mutex::new(BTreeMap::new()),
            log: Arc::new(Mutex::new(VecDeque::new())),
            observer,
            shutdown,
        })
    }

    /// Creates a subscription and starts its worker.
    pub(crate) fn create(&self, url: String, enabled_events: Vec<String>) -> SubscriptionRecord {
        let now = ids::now_rfc3339();
        let sub = SubscriptionRecord {
            id: ids::fresh("ws_"),
            webhook_url: url,
            version: "V3".into(),
            enabled_events,
            secret: fresh_secret(),
            created_at: now.clone(),
            updated_at: now,
        };
        let shared = Arc::new(Mutex::new(sub.clone()));
        let (tx, rx) = mpsc::channel(self.config.queue.max(1));
        let stop = self.shutdown.child_token();
        let worker = Worker {
            sub: Arc::clone(&shared),
            http: self.http.clone(),
            config: self.config,
            sign: self.sign,
            log: Arc::clone(&self.log),
            observer: Arc::clone(&self.observer),
            stop: stop.clone(),
        };
        tokio::spawn(worker.run(rx));
        lock(&self.subs).insert(
            sub.id.clone(),
            Entry {
                sub: shared,
                queue: tx,
                stop,
            },
        );
        tracing::info!(id = %sub.id, url = %sub.webhook_url, "hub: webhook subscription created");
        sub
    }

    pub(crate) fn list(&self) -> Vec<SubscriptionRecord> {
        lock(&self.subs).values().map(Entry::snapshot).collect()
    }

    pub(crate) fn get(&self, id: &str) -> Option<SubscriptionRecord> {
        lock(&self.subs).get(id).map(Entry::snapshot)
    }

    pub(crate) fn update(
        &self,
        id: &str,
        url: Option<String>,
        events: Option<Vec<String>>,
    ) -> Option<SubscriptionRecord> {
        let subs = lock(&self.subs);
        let mut sub = lock(&subs.get(id)?.sub);
        if let Some(url) = url {
            sub.webhook_url = url;
        }
        if let Some(events) = events {
            sub.enabled_events = events;
        }
        sub.updated_at = ids::now_rfc3339();
        Some(sub.clone())
    }

    pub(crate) fn rotate(&self, id: &str) -> Option<SubscriptionRecord> {
        let subs = lock(&self.subs);
        let mut sub = lock(&subs.get(id)?.sub);
        sub.secret = fresh_secret();
        sub.updated_at = ids::now_rfc3339();
        Some(sub.clone())
    }

    pub(crate) fn delete(&self, id: &str) -> bool {
        match lock(&self.subs).remove(id) {
            Some(entry) => {
                entry.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Queues the event for every subscription enabled for its type; returns how many. The
    /// observer hears of each delivery, and later of its attempts, with `log_ref`.
    pub(crate) fn enqueue(
        &self,
        event_id: &str,
        event_type: &str,
        body: &str,
        log_ref: u64,
    ) -> usize {
        let body: Arc<str> = Arc::from(body);
        let mut queued = 0;
        for entry in lock(&self.subs).values() {
            let sub = entry.snapshot();
            if !sub.enabled_events.iter().any(|e| e == event_type) {
                continue;
            }
            let delivery = Delivery {
                webhook_id: ids::fresh("msg_"),
                event_id: event_id.to_owned(),
                body: Arc::clone(&body),
                log_ref,
            };
            let mut record = DeliveryAttempt {
                subscription_id: sub.id,
                webhook_url: sub.webhook_url,
                webhook_id: delivery.webhook_id.clone(),
                event_id: event_id.to_owned(),
                attempt: 0,
                status: None,
                error: None,
                outcome: "queued".into(),
                at: ids::now_rfc3339(),
                latency_ms: None,
                answer: None,
            };
            // Heard before the worker can take it, so the first attempt comes after.
            (self.observer)(log_ref, &record);
            match entry.queue.try_send(delivery) {
                Ok(()) => queued += 1,
                Err(_) => {
                    tracing::warn!(subscription = %record.subscription_id, "hub: webhook queue full; event dropped for this subscription");
                    record.error = Some("queue full".into());
                    record.outcome = "dropped".into();
                    (self.observer)(log_ref, &record);
                    push_log(&self.log, self.config.log_size, record);
                }
            }
        }
        queued
    }

    pub(crate) fn log(&self) -> Vec<DeliveryAttempt> {
        lock(&self.log).iter().cloned().collect()
    }
}

fn push_log(log: &Mutex<VecDeque<DeliveryAttempt>>, size: usize, attempt: DeliveryAttempt) {
    let mut log = lock(log);
    while log.len() >= size.max(1) {
        log.pop_front();
    }
    log.push_back(attempt);
}

struct Worker {
    sub: Arc<Mutex<SubscriptionRecord>>,
    http: reqwest::Client,
    config: DeliveryConfig,
    sign: SignFn,
    log: Arc<Mutex<VecDeque<DeliveryAttempt>>>,
    observer: Observer,
    stop: CancellationToken,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Delivery>) {
        loop {
            let delivery = tokio::select! {
                _ = self.stop.cancelled() => return,
                d = rx.recv() => match d { Some(d) => d, None => return },
            };
            self.deliver(delivery).await;
        }
    }

    /// Reads a receiver's answer, bounded in size and time, and returns a preview of it
    /// (`None` when it was empty or abandoned).
    async fn drain_answer(&self, subscription: &str, answer: reqwest::Response) -> Option<String> {
        let wait = RECEIVER_ANSWER_WAIT.min(self.config.timeout);
        let read = tokio::time::timeout(
            wait,
            listener_core::http::read_limited(answer, MAX_RECEIVER_ANSWER_BYTES),
        )
        .await;
        match read {
            Ok(Ok(body)) if body.is_empty() => None,
            Ok(Ok(body)) => Some(listener_core::preview::preview(&body, ANSWER_PREVIEW_CHARS)),
            Ok(Err(e)) => {
                tracing::debug!(%subscription, error = %e, "hub: webhook receiver's answer abandoned");
                None
            }
            Err(_) => {
                tracing::debug!(%subscription, ?wait, "hub: webhook receiver's answer body too slow; abandoned");
                None
            }
        }
    }

    /// Attempts one event until it is accepted or the attempts run out.
    async fn deliver(&self, d: Delivery) {
        for attempt in 1..=self.config.max_attempts.max(1) {
            let sub = lock(&self.sub).clone();
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_secs() as i64);
            let signature = (self.sign)(&sub.secret, &d.webhook_id, timestamp, &d.body);
            let started = std::time::Instant::now();
            let sent = self
                .http
                .post(&sub.webhook_url)
                .header("content-type", "application/json")
                .header("webhook-id", &d.webhook_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .header("x-composio-webhook-version", sub.version.as_str())
                .header("x-composio-delivery-attempt", attempt.to_string())
                .body(d.body.to_string())
                .send()
                .await;
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let (status, error, answer) = match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let answer = self.drain_answer(&sub.id, r).await;
                    (Some(status), None, answer)
                }
                Err(e) => (None, Some(listener_core::http::describe(&e)), None),
            };
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            let last = attempt >= self.config.max_attempts.max(1);
            let outcome = if delivered {
                "delivered"
            } else if last {
                "failed"
            } else {
                "retrying"
            };
            tracing::info!(subscription = %sub.id, webhook_id = %d.webhook_id, attempt, ?status, outcome, "hub: webhook delivery");
            let record = DeliveryAttempt {
                subscription_id: sub.id.clone(),
                webhook_url: sub.webhook_url.clone(),
                webhook_id: d.webhook_id.clone(),
                event_id: d.event_id.clone(),
                attempt,
                status,
                error,
                outcome: outcome.into(),
                at: ids::now_rfc3339(),
                latency_ms: Some(latency_ms),
                answer,
            };
            (self.observer)(d.log_ref, &record);
            push_log(&self.log, self.config.log_size, record);
            if delivered || last {
                return;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(self.config.backoff.delay(attempt)) => {}
            }
        }
    }
}
