//! Network faults between a listener and a real Pusher-protocol server (the hub, and
//! sockudo), injected by a TCP proxy of ours, with a loss audit: every event carries a
//! sequence number; per fault the audit counts what was published while the client was
//! subscribed, what was handled, duplicated and lost, and how long the client took to be
//! subscribed again.
//!
//! `cargo test -p listener-e2e --test faults -- --nocapture --test-threads 1` prints the
//! audit table that RELIABILITY.md records.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use listener_core::source::composio::ComposioSource;
use listener_core::source::Health;
use listener_core::{Backoff, Filter, Handler, Listener, ListenerHandle, Meta};
use listener_e2e::proxy::FaultProxy;
use listener_e2e::pusher::{self, AuthMode, FakeComposio, Sockudo, API_KEY, CHANNEL};
use listener_e2e::wait::within;
use listener_hub::{Hub, RunningHub};
use serde_json::json;

/// Time the listener allows the server to answer a ping, and the silence before it pings:
/// short, so a stall is noticed within a second.
const KEEPALIVE: Duration = Duration::from_millis(300);

/// Before, during and after each fault.
const BEFORE: Duration = Duration::from_millis(500);
const DURING: Duration = Duration::from_millis(1000);
const AFTER: Duration = Duration::from_millis(1500);

/// One event every this often.
const PACE: Duration = Duration::from_millis(2);

fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..Backoff::default()
    }
}

fn through(source: ComposioSource, proxy: &FaultProxy) -> ComposioSource {
    source
        .pusher_host("127.0.0.1")
        .pusher_port(proxy.addr().port())
        .pusher_tls(false)
        .backoff(backoff())
        .configure_pusher(|p| p.ping_interval(KEEPALIVE).pong_timeout(KEEPALIVE))
}

/// What the handler saw: how many times each sequence number ran.
#[derive(Default)]
struct Seen(Mutex<HashMap<u64, u32>>);

fn listener(source: ComposioSource, seen: &Arc<Seen>) -> ListenerHandle {
    let seen = Arc::clone(seen);
    Listener::builder()
        .without_registered_handlers()
        .handler(Handler::new("audit", Filter::new(), move |meta: Meta| {
            if let Some(seq) = meta.event().payload["seq"].as_u64() {
                *seen.0.lock().unwrap().entry(seq).or_default() += 1;
            }
            async {}
        }))
        .source(source)
        .build()
        .unwrap()
        .spawn()
}

fn subscribed(handle: &ListenerHandle) -> bool {
    let health = handle.health();
    // Empty until the listener has started its sources.
    !health.is_empty() && health.iter().all(|s| s.health == Health::Connected)
}

/// How a fault is applied and lifted.
struct Fault {
    name: &'static str,
    apply: Box<dyn Fn(&FaultProxy) + Send + Sync>,
    lift: Box<dyn Fn(&FaultProxy) + Send + Sync>,
    /// The fault closes or stalls the connection: events the server sends meanwhile can be
    /// lost (Pusher keeps nothing for a client that is not connected).
    disconnects: bool,
}

fn faults() -> Vec<Fault> {
    vec![
        Fault {
            name: "latency 50 ms ± 30 ms",
            apply: Box::new(|p| {
                p.set(|f| {
                    f.latency = Duration::from_millis(50);
                    f.jitter = Duration::from_millis(30);
                })
            }),
            lift: Box::new(FaultProxy::clear),
            disconnects: false,
        },
        Fault {
            name: "bandwidth 256 KiB/s (above the event rate)",
            apply: Box::new(|p| p.set(|f| f.bytes_per_sec = Some(256 * 1024))),
            lift: Box::new(FaultProxy::clear),
            disconnects: false,
        },
        Fault {
            name: "writes split at random points",
            apply: Box::new(|p| p.set(|f| f.split_writes = true)),
            lift: Box::new(FaultProxy::clear),
            disconnects: false,
        },
        Fault {
            name: "every connection cut",
            apply: Box::new(FaultProxy::cut_all),
            lift: Box::new(FaultProxy::clear),
            disconnects: true,
        },
        Fault {
            name: "cut, then new connections refused for 1 s",
            apply: Box::new(|p| {
                p.set(|f| f.refuse_until = Some(Instant::now() + DURING));
                p.cut_all();
            }),
            lift: Box::new(FaultProxy::clear),
            disconnects: true,
        },
        Fault {
            name: "black hole (silent stall) for 1 s",
            apply: Box::new(|p| p.set(|f| f.blackhole = true)),
            lift: Box::new(FaultProxy::clear),
            disconnects: true,
        },
    ]
}

/// One row of the audit.
#[derive(Debug)]
struct Row {
    server: &'static str,
    fault: &'static str,
    published: usize,
    while_subscribed: usize,
    handled: usize,
    duplicated: usize,
    lost_while_subscribed: usize,
    lost_outside_the_fault: usize,
    reconnects: u64,
    resubscribed_after: Option<Duration>,
}

impl Row {
    fn print(&self) {
        eprintln!(
            "| {} | {} | {} published, {} while subscribed | {} handled, {} duplicated, {} lost while subscribed ({} outside the fault window), {} reconnects, subscribed again after {} |",
            self.server,
            self.fault,
            self.published,
            self.while_subscribed,
            self.handled,
            self.duplicated,
            self.lost_while_subscribed,
            self.lost_outside_the_fault,
            self.reconnects,
            self.resubscribed_after
                .map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis())),
        );
    }
}

/// Publishes sequence-numbered events before, during and after `fault`, then audits.
async fn audit<P, F>(
    server: &'static str,
    fault: &Fault,
    proxy: &FaultProxy,
    handle: &ListenerHandle,
    seen: &Arc<Seen>,
    publish: P,
) -> Row
where
    P: Fn(u64) -> F,
    F: Future<Output = ()>,
{
    within("the first subscription", async {
        while !subscribed(handle) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let accepted_before = proxy.accepted();
    // Per event: its number, when it was published, and whether the client was subscribed.
    let mut sent: Vec<(u64, Instant, bool)> = Vec::new();
    let start = Instant::now();
    let mut seq = 0u64;
    let mut applied_at = None;
    let mut lifted_at = None;
    // The last time the client was seen subscribed again after losing its subscription.
    let mut resubscribed_at = None;
    let mut was_up = true;
    loop {
        let elapsed = start.elapsed();
        if applied_at.is_none() && elapsed >= BEFORE {
            (fault.apply)(proxy);
            applied_at = Some(Instant::now());
        }
        if lifted_at.is_none() && elapsed >= BEFORE + DURING {
            (fault.lift)(proxy);
            lifted_at = Some(Instant::now());
        }
        if elapsed >= BEFORE + DURING + AFTER {
            break;
        }
        let up = subscribed(handle);
        if up && !was_up {
            resubscribed_at = Some(Instant::now());
        }
        was_up = up;
        let now = Instant::now();
        publish(seq).await;
        sent.push((seq, now, up));
        seq += 1;
        tokio::time::sleep(PACE).await;
    }
    let (Some(applied_at), Some(lifted_at)) = (applied_at, lifted_at) else {
        unreachable!("the loop applies and lifts the fault before it ends");
    };
    // The fault's window: from applying it until it is lifted and the client is subscribed
    // again, whichever is later.
    let window_end = resubscribed_at.map_or(lifted_at, |r| r.max(lifted_at));
    let in_window = |t: &Instant| *t >= applied_at && *t <= window_end;
    // Everything published once subscribed again has arrived when the last one has.
    let last = seq - 1;
    within("the last event to be handled", async {
        while !seen.0.lock().unwrap().contains_key(&last) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Handlers finish what is in flight.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen_now = seen.0.lock().unwrap();
    let handled = sent
        .iter()
        .filter(|(s, ..)| seen_now.contains_key(s))
        .count();
    let duplicated = seen_now.values().filter(|n| **n > 1).count();
    let lost: Vec<&(u64, Instant, bool)> = sent
        .iter()
        .filter(|(s, ..)| !seen_now.contains_key(s))
        .collect();
    Row {
        server,
        fault: fault.name,
        published: sent.len(),
        while_subscribed: sent.iter().filter(|(_, _, up)| *up).count(),
        handled,
        duplicated,
        lost_while_subscribed: lost.iter().filter(|(_, _, up)| *up).count(),
        lost_outside_the_fault: lost.iter().filter(|(_, t, _)| !in_window(t)).count(),
        reconnects: proxy.accepted() - accepted_before,
        resubscribed_after: resubscribed_at.map(|r| r - applied_at),
    }
}

/// Checks a row against what the fault allows.
fn check(row: &Row, fault: &Fault) {
    row.print();
    assert_eq!(row.duplicated, 0, "{row:?}");
    assert_eq!(row.lost_outside_the_fault, 0, "{row:?}");
    if fault.disconnects {
        assert!(row.reconnects >= 1, "the client reconnected: {row:?}");
        assert!(row.resubscribed_after.is_some(), "{row:?}");
    } else {
        assert_eq!(row.reconnects, 0, "{row:?}");
        assert_eq!(row.handled, row.published, "{row:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_between_the_listener_and_the_hub_lose_nothing_they_need_not() {
    for fault in faults() {
        let hub = Hub::builder().start().await.unwrap();
        let proxy = FaultProxy::start(hub.addr()).await;
        let seen = Arc::new(Seen::default());
        let handle = listener(through(hub.composio_source(), &proxy), &seen);
        let row = audit("hub", &fault, &proxy, &handle, &seen, |seq| {
            publish_to_hub(&hub, seq)
        })
        .await;
        check(&row, &fault);
        within("shutdown", handle.shutdown()).await.unwrap();
        hub.shutdown().await;
    }
}

async fn publish_to_hub(hub: &RunningHub, seq: u64) {
    hub.publish(&json!({
        "id": format!("evt_seq_{seq}"),
        "type": "composio.trigger.message",
        "metadata": {"trigger_slug": "AUDIT_EVENT", "trigger_id": "ti_audit"},
        "data": {"seq": seq},
    }))
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_between_the_listener_and_sockudo_lose_nothing_they_need_not() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    for fault in faults() {
        let server = Sockudo::start(&bin).await;
        let fake = FakeComposio::start(AuthMode::Sign).await;
        let proxy = FaultProxy::start(([127, 0, 0, 1], server.port).into()).await;
        let seen = Arc::new(Seen::default());
        let source = ComposioSource::new(API_KEY)
            .base_url(fake.base_url())
            .unwrap();
        let handle = listener(through(source, &proxy), &seen);
        let row = audit("sockudo", &fault, &proxy, &handle, &seen, |seq| {
            let server = &server;
            async move {
                server
                    .publish(CHANNEL, "trigger_to_client", &audit_event(seq))
                    .await;
            }
        })
        .await;
        check(&row, &fault);
        within("shutdown", handle.shutdown()).await.unwrap();
    }
}

/// The realtime envelope of sequence number `seq`.
fn audit_event(seq: u64) -> String {
    pusher::v3_event(
        &format!("evt_seq_{seq}"),
        "AUDIT_EVENT",
        json!({ "seq": seq }),
    )
}

/// The server itself killed (SIGKILL) and restarted on the same port, no proxy: the
/// client is subscribed again once it is back, and nothing published while it was
/// subscribed is lost (events sockudo accepted but had not pushed when it was killed die
/// with it; the test kills it once the first 200 are in, so none are in that state).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_sockudo_loses_only_what_it_dropped() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    let mut server = Sockudo::start(&bin).await;
    let fake = FakeComposio::start(AuthMode::Sign).await;
    let seen = Arc::new(Seen::default());
    let source = ComposioSource::new(API_KEY)
        .base_url(fake.base_url())
        .unwrap()
        .pusher_host("127.0.0.1")
        .pusher_port(server.port)
        .pusher_tls(false)
        .backoff(backoff());
    let handle = listener(source, &seen);
    within("the first subscription", async {
        while !subscribed(&handle) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut published = 0u64;
    for _ in 0..200 {
        server
            .publish(CHANNEL, "trigger_to_client", &audit_event(published))
            .await;
        published += 1;
    }
    // What sockudo accepted but had not pushed yet would die with it (Pusher keeps
    // nothing): kill it once the first events are in, so the audit measures the outage.
    let first_last = published - 1;
    within("the events before the kill", async {
        while !seen.0.lock().unwrap().contains_key(&first_last) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let killed = Instant::now();
    server.restart().await;
    within("a new subscription", async {
        loop {
            if subscribed(&handle) && fake.socket_ids().len() >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let back_after = killed.elapsed();
    let before_kill = published;
    for _ in 0..200 {
        server
            .publish(CHANNEL, "trigger_to_client", &audit_event(published))
            .await;
        published += 1;
    }
    let last = published - 1;
    within("the last event to be handled", async {
        while !seen.0.lock().unwrap().contains_key(&last) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let (lost, duplicated, handled) = {
        let seen = seen.0.lock().unwrap();
        let lost = (0..published).filter(|s| !seen.contains_key(s)).count();
        (lost, seen.values().filter(|n| **n > 1).count(), seen.len())
    };
    eprintln!(
        "| sockudo | SIGKILL and restart on the same port | {published} published ({before_kill} before the kill, {} after the new subscription) | {} handled, {duplicated} duplicated, {lost} lost, subscribed again after {} ms |",
        published - before_kill,
        handled,
        back_after.as_millis()
    );
    assert_eq!((lost, duplicated), (0, 0));
    within("shutdown", handle.shutdown()).await.unwrap();
}
