//! Composio's realtime source end to end: a real Pusher-protocol server (`sockudo`, from
//! crates.io) on 127.0.0.1, a fake Composio for the credentials and auth endpoints, events
//! published through sockudo's signed HTTP API. Cases sockudo cannot provoke (a 4200 error, a
//! silent stall) use a scripted websocket peer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use listener_core::composio_api::MAX_REALTIME_ANSWER_BYTES as MAX_AUTH_RESPONSE_BYTES;
use listener_core::source::composio::ComposioSource;
use listener_core::source::pusher::protocol::{channel_event, connection_established};
use listener_core::source::pusher::PusherSource;
use listener_core::source::pusher::{ChunkLimits, SubscriptionError};
use listener_core::source::SourceError;
use listener_core::source::{Health, Source};
use listener_core::{Backoff, Error, Failure, Filter, Listener, ListenerHandle};
use listener_e2e::pusher::{self, AuthMode, FakeComposio, Sockudo, API_KEY, CHANNEL};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use listener_e2e::ws_server::WsServer;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..Backoff::default()
    }
}

fn composio(fake: &FakeComposio, port: u16) -> ComposioSource {
    ComposioSource::new(API_KEY)
        .base_url(fake.base_url())
        .unwrap()
        .pusher_host("127.0.0.1")
        .pusher_port(port)
        .pusher_tls(false)
        .backoff(fast_backoff())
}

/// Hook reports, as text, on a channel.
fn hook() -> (
    mpsc::UnboundedSender<String>,
    mpsc::UnboundedReceiver<String>,
) {
    mpsc::unbounded_channel()
}

fn start(
    source: ComposioSource,
    rec: &Recorder,
    reports: mpsc::UnboundedSender<String>,
) -> ListenerHandle {
    Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(rec.handler("slack", Filter::new().name("SLACK_RECEIVE_MESSAGE")))
        .handler(rec.handler("github", Filter::new().toolkit("github")))
        .on_error(move |f: &Failure| {
            let _ = reports.send(f.to_string());
        })
        .build()
        .unwrap()
        .spawn()
}

async fn subscribed(handle: &ListenerHandle) {
    until("the source to subscribe", || {
        handle
            .health()
            .iter()
            .any(|s| s.health == Health::Connected)
    })
    .await;
}

async fn next_report(reports: &mut mpsc::UnboundedReceiver<String>, containing: &str) -> String {
    within(&format!("a hook report containing {containing:?}"), async {
        loop {
            let r = reports.recv().await.expect("hook channel closed");
            if r.contains(containing) {
                return r;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_through_sockudo_reach_the_right_handlers() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    let server = Sockudo::start(&bin).await;
    let fake = FakeComposio::start(AuthMode::Sign).await;
    let mut rec = Recorder::new();
    let (tx, _reports) = hook();
    let handle = start(composio(&fake, server.port), &rec, tx);
    subscribed(&handle).await;
    assert_eq!(fake.credential_calls(), 1);
    assert_eq!(fake.socket_ids().len(), 1);

    let text = "who broke the staging deploy again";
    server
        .publish(
            CHANNEL,
            "trigger_to_client",
            &pusher::v3_event("evt_1", "SLACK_RECEIVE_MESSAGE", json!({"text": text})),
        )
        .await;
    server
        .publish(
            CHANNEL,
            "trigger_to_client",
            &pusher::v3_event("evt_2", "GITHUB_STAR_ADDED_EVENT", json!({"stars": 3})),
        )
        .await;
    // Another event name on the channel is not ours to decode.
    server.publish(CHANNEL, "something-else", "{}").await;

    let first = rec.next().await;
    let second = rec.next().await;
    let mut seen = [(first.handler, first.event), (second.handler, second.event)];
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen[0].0, "github");
    assert_eq!(seen[0].1.payload["stars"], 3);
    assert_eq!(seen[1].0, "slack");
    assert_eq!(seen[1].1.payload["text"], text);
    assert_eq!(seen[1].1.event_id, "evt_1");
    assert_eq!(seen[1].1.metadata.connected_account.id, "ca_1");

    let stopped = within("shutdown", handle.shutdown()).await.unwrap();
    assert_eq!(stopped.stats.runs, 2);
    assert!(rec.drain().is_empty());
}

fn chunk(id: &str, index: u32, piece: &str, last: bool) -> String {
    json!({"id": id, "index": index, "chunk": piece, "final": last}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_events_reassemble_out_of_order_and_gaps_are_evicted() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    let server = Sockudo::start(&bin).await;
    let fake = FakeComposio::start(AuthMode::Sign).await;
    let mut rec = Recorder::new();
    let (tx, mut reports) = hook();
    let source = composio(&fake, server.port).chunk_limits(ChunkLimits {
        max_age: Duration::from_millis(300),
        ..ChunkLimits::default()
    });
    let handle = start(source, &rec, tx);
    subscribed(&handle).await;

    // A ~30 KB event in 4 parts, published out of order.
    let big_text = "lorem ipsum ".repeat(2500);
    let body = pusher::v3_event(
        "evt_big",
        "SLACK_RECEIVE_MESSAGE",
        json!({"text": big_text}),
    );
    let quarter = body.len() / 4;
    let parts = [
        &body[..quarter],
        &body[quarter..2 * quarter],
        &body[2 * quarter..3 * quarter],
        &body[3 * quarter..],
    ];
    for index in [3u32, 1, 0, 2] {
        let piece = parts[index as usize];
        server
            .publish(
                CHANNEL,
                "chunked-trigger_to_client",
                &chunk("c1", index, piece, index == 3),
            )
            .await;
    }
    let got = rec.next().await;
    assert_eq!(got.event.event_id, "evt_big");
    assert_eq!(
        got.event.payload["text"].as_str().unwrap().len(),
        big_text.len()
    );

    // Index 1 never comes: no dispatch; the partial event is evicted and reported.
    server
        .publish(
            CHANNEL,
            "chunked-trigger_to_client",
            &chunk("c2", 0, &body[..10], false),
        )
        .await;
    server
        .publish(
            CHANNEL,
            "chunked-trigger_to_client",
            &chunk("c2", 2, &body[20..], true),
        )
        .await;
    let report = next_report(&mut reports, "`c2` expired").await;
    assert!(
        report.contains("2 chunk(s)") && report.contains("final index 2"),
        "{report}"
    );
    // The missing piece arriving late cannot resurrect it; a later event still flows.
    server
        .publish(
            CHANNEL,
            "chunked-trigger_to_client",
            &chunk("c2", 1, &body[10..20], false),
        )
        .await;
    server
        .publish(
            CHANNEL,
            "trigger_to_client",
            &pusher::v3_event(
                "evt_after",
                "SLACK_RECEIVE_MESSAGE",
                json!({"text": "after"}),
            ),
        )
        .await;
    assert_eq!(rec.next().await.event.event_id, "evt_after");
    assert!(rec.drain().is_empty(), "the gapped event was dispatched");

    // A malformed chunk is reported and skipped.
    server
        .publish(
            CHANNEL,
            "chunked-trigger_to_client",
            r#"{"id": "c3", "index": "zero"}"#,
        )
        .await;
    next_report(&mut reports, "malformed chunk").await;

    let stopped = within("shutdown", handle.shutdown()).await.unwrap();
    assert_eq!(stopped.stats.runs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_reconnected_and_resubscribed_with_a_fresh_token() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    let mut server = Sockudo::start(&bin).await;
    let fake = FakeComposio::start(AuthMode::Sign).await;
    let mut rec = Recorder::new();
    let (tx, _reports) = hook();
    let handle = start(composio(&fake, server.port), &rec, tx);
    subscribed(&handle).await;
    server
        .publish(
            CHANNEL,
            "trigger_to_client",
            &pusher::v3_event("evt_before", "SLACK_RECEIVE_MESSAGE", json!({"text": "1"})),
        )
        .await;
    assert_eq!(rec.next().await.event.event_id, "evt_before");

    server.kill();
    until("the source to notice the drop", || {
        handle
            .health()
            .iter()
            .any(|s| matches!(s.health, Health::Reconnecting { .. }))
    })
    .await;
    server.restart().await;
    until("a fresh auth token and a new subscription", || {
        fake.socket_ids().len() >= 2
            && handle
                .health()
                .iter()
                .any(|s| s.health == Health::Connected)
    })
    .await;
    let ids = fake.socket_ids();
    assert_ne!(
        ids[0],
        ids[ids.len() - 1],
        "the token was fetched for the new socket id"
    );
    assert_eq!(fake.credential_calls(), 1, "credentials are fetched once");

    server
        .publish(
            CHANNEL,
            "trigger_to_client",
            &pusher::v3_event("evt_after", "SLACK_RECEIVE_MESSAGE", json!({"text": "2"})),
        )
        .await;
    assert_eq!(rec.next().await.event.event_id, "evt_after");
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_auth_ends_wait_forever_with_a_clear_error() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    let server = Sockudo::start(&bin).await;
    let fake = FakeComposio::start(AuthMode::Refuse).await;
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(composio(&fake, server.port))
        .build()
        .unwrap();
    match within("the listener to give up", listener.wait_forever()).await {
        Err(Error::Source(SourceError::Failed {
            source_name,
            message,
        })) => {
            assert_eq!(source_name, "composio realtime");
            assert!(
                message.contains("401") && message.contains("project may not use realtime"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.socket_ids().len(), 1, "a refused auth is not retried");
}

/// sockudo 5.2 answers a token signed with the wrong secret with `pusher:error` 4009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_rejects_is_fatal() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    let server = Sockudo::start(&bin).await;
    let fake = FakeComposio::start(AuthMode::WrongSignature).await;
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(composio(&fake, server.port))
        .build()
        .unwrap();
    match within("the listener to give up", listener.wait_forever()).await {
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(message.contains("pusher error 4009"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fake.socket_ids().len(),
        1,
        "a rejected token is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_app_key_is_fatal() {
    let Some(bin) = listener_e2e::peers::sockudo() else {
        return;
    };
    let server = Sockudo::start(&bin).await;
    let source = PusherSource::new("no-such-key", "public-channel")
        .host("127.0.0.1")
        .port(server.port)
        .tls(false)
        .backoff(Backoff {
            max_attempts: Some(3),
            ..fast_backoff()
        });
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .build()
        .unwrap();
    match within("the listener to give up", listener.wait_forever()).await {
        // sockudo 5.2 resets the connection (no 4001 frame): retried until max_attempts.
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(
                message.contains("gave up after 3 failed attempts"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_bad_cluster_from_the_credentials_endpoint_is_refused() {
    let fake = FakeComposio::start(AuthMode::Sign).await;
    fake.set_cluster("evil.example.com/x");
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(
            ComposioSource::new(API_KEY)
                .base_url(fake.base_url())
                .unwrap(),
        )
        .build()
        .unwrap();
    match within("the listener to give up", listener.wait_forever()).await {
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(message.contains("not a valid cluster"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // A wrong API key is refused by the credentials endpoint: fatal too.
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(
            ComposioSource::new("ak_wrong")
                .base_url(fake.base_url())
                .unwrap(),
        )
        .build()
        .unwrap();
    match within("the listener to give up", listener.wait_forever()).await {
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(message.contains("401"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// A scripted peer speaking just enough Pusher.
struct Scripted {
    server: WsServer,
}

impl Scripted {
    async fn start() -> Self {
        Scripted {
            server: WsServer::start().await,
        }
    }

    fn source(&self) -> PusherSource {
        PusherSource::new("key", "private-x")
            .host("127.0.0.1")
            .port(self.server.addr.port())
            .tls(false)
            .auth(listener_core::source::pusher::ChannelAuth::Secret { secret: "s".into() })
    }

    /// Accepts a connection and completes the handshake and subscription.
    async fn accept_subscribed(&mut self, socket_id: &str) -> listener_e2e::ws_server::Conn {
        let mut conn = self.accept_unconfirmed(socket_id).await;
        conn.send_text(r#"{"event":"pusher_internal:subscription_succeeded","channel":"private-x","data":"{}"}"#)
            .await;
        conn
    }

    /// Accepts a connection, sends `pusher:connection_established` and reads the client's
    /// `pusher:subscribe` (checking its token), but does not confirm it.
    async fn accept_unconfirmed(&mut self, socket_id: &str) -> listener_e2e::ws_server::Conn {
        let mut conn = self.server.accept().await;
        conn.send_text(connection_established(socket_id, 120)).await;
        loop {
            let msg = within("pusher:subscribe", conn.next())
                .await
                .expect("client left");
            if let Message::Text(t) = msg {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["event"] == "pusher:subscribe" {
                    let want = listener_core::source::pusher::protocol::sign_channel(
                        "key",
                        "s",
                        socket_id,
                        "private-x",
                    );
                    assert_eq!(v["data"]["auth"], want.as_str());
                    break;
                }
            }
        }
        conn
    }
}

/// Runs `source` in a listener whose hook reports go to the returned channel.
fn spawn_reporting(source: impl Source) -> (ListenerHandle, mpsc::UnboundedReceiver<String>) {
    let (tx, reports) = hook();
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .on_error(move |f: &Failure| {
            let _ = tx.send(f.to_string());
        })
        .build()
        .unwrap()
        .spawn();
    (handle, reports)
}

fn is_connected(handle: &ListenerHandle) -> bool {
    handle
        .health()
        .iter()
        .any(|s| s.health == Health::Connected)
}

/// The next connection to `peer`, sampling the listener's health meanwhile: whether it was
/// ever `Connected` while waiting.
async fn next_conn_watching_health(
    peer: &mut Scripted,
    handle: &ListenerHandle,
) -> (listener_e2e::ws_server::Conn, bool) {
    let mut saw_connected = is_connected(handle);
    let conn = within("a new connection", async {
        loop {
            tokio::select! {
                conn = peer.server.conns.recv() => return conn.expect("server stopped"),
                _ = tokio::time::sleep(Duration::from_millis(1)) => {
                    saw_connected |= is_connected(handle);
                }
            }
        }
    })
    .await;
    saw_connected |= is_connected(handle);
    (conn, saw_connected)
}

#[tokio::test]
async fn a_4200_error_reconnects_at_once() {
    let mut peer = Scripted::start().await;
    let mut rec = Recorder::new();
    // A back-off far beyond the test deadline: only an immediate reconnect passes.
    let source = peer.source().backoff(Backoff {
        initial: Duration::from_secs(60),
        max: Duration::from_secs(60),
        ..Backoff::default()
    });
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(rec.handler("any", Filter::new()))
        .build()
        .unwrap()
        .spawn();
    let mut first = peer.accept_subscribed("1.1").await;
    first
        .send_text(r#"{"event":"pusher:error","data":{"code":4200,"message":"please reconnect"}}"#)
        .await;
    let mut second = peer.accept_subscribed("2.2").await;
    second
        .send_text(channel_event(
            "private-x",
            "trigger_to_client",
            &pusher::v3_event("evt_x", "SLACK_RECEIVE_MESSAGE", json!({})),
        ))
        .await;
    assert_eq!(rec.next().await.event.event_id, "evt_x");
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_silent_server_is_detected_by_the_ping_timeout_and_pings_are_answered() {
    let mut peer = Scripted::start().await;
    let (tx, mut reports) = hook();
    let source = peer
        .source()
        .activity_timeout(Duration::from_millis(150))
        .pong_timeout(Duration::from_millis(150))
        .backoff(fast_backoff());
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .on_error(move |f: &Failure| {
            let _ = tx.send(f.to_string());
        })
        .build()
        .unwrap()
        .spawn();
    let mut first = peer.accept_subscribed("1.1").await;
    // The server pings: the client answers pusher:pong.
    first
        .send_text(r#"{"event":"pusher:ping","data":{}}"#)
        .await;
    let mut saw_pong = false;
    let mut saw_ping = false;
    while !(saw_pong && saw_ping) {
        match within("client frames", first.next()).await {
            Some(Message::Text(t)) if t.contains("pusher:pong") => saw_pong = true,
            // After activity_timeout of silence the client pings; we stay silent.
            Some(Message::Text(t)) if t.contains("pusher:ping") => saw_ping = true,
            Some(_) => {}
            None => panic!("client left before pinging"),
        }
    }
    // No answer: the client gives up on this connection and comes back.
    let _second = peer.accept_subscribed("2.2").await;
    next_report(&mut reports, "presumed dead").await;
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn error_codes_4000_to_4099_are_fatal_and_carry_the_message() {
    let mut peer = Scripted::start().await;
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(peer.source().backoff(fast_backoff()))
        .build()
        .unwrap();
    let run = tokio::spawn(listener.wait_forever());
    let mut conn = peer.server.accept().await;
    conn.send_text(
        r#"{"event":"pusher:error","data":{"code":4009,"message":"Connection not authorized"}}"#,
    )
    .await;
    match within("the listener to give up", run).await.unwrap() {
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(
                message.contains("4009") && message.contains("Connection not authorized"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        peer.server.conns.try_recv().is_err(),
        "no reconnect after a 40xx error"
    );
}

#[tokio::test]
async fn a_subscription_error_reaches_the_hook_and_a_refusal_is_fatal() {
    let mut peer = Scripted::start().await;
    let seen: Arc<Mutex<Vec<SubscriptionError>>> = Arc::default();
    let hook_seen = seen.clone();
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(
            peer.source()
                .on_subscription_error(move |e| hook_seen.lock().unwrap().push(e.clone())),
        )
        .build()
        .unwrap();
    let run = tokio::spawn(listener.wait_forever());
    let mut conn = peer.server.accept().await;
    conn.send_text(connection_established("1.1", 120)).await;
    conn.send_text(
        r#"{"event":"pusher:subscription_error","channel":"private-x","data":{"type":"AuthError","error":"Invalid signature","status":401}}"#,
    )
    .await;
    match within("the listener to give up", run).await.unwrap() {
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(
                message.contains("refused (401): Invalid signature"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![SubscriptionError {
            channel: "private-x".into(),
            status: Some(401),
            kind: Some("AuthError".into()),
            message: "Invalid signature".into(),
        }]
    );
}

#[tokio::test]
async fn a_server_that_never_confirms_the_subscription_is_left_after_the_subscribe_timeout() {
    let mut peer = Scripted::start().await;
    let timeout = Duration::from_millis(300);
    let (handle, mut reports) = spawn_reporting(
        peer.source()
            .subscribe_timeout(timeout)
            .backoff(fast_backoff()),
    );
    let mut first = peer.accept_unconfirmed("1.1").await;
    let subscribe_seen = Instant::now();
    assert!(!is_connected(&handle));
    // Never confirmed: the client gives up on this connection and comes back.
    let (second, saw_connected) = next_conn_watching_health(&mut peer, &handle).await;
    let waited = second.accepted_at - subscribe_seen;
    eprintln!("unconfirmed subscription: reconnected {waited:?} after pusher:subscribe");
    assert!(
        !saw_connected,
        "health was Connected without a confirmation"
    );
    assert!(waited >= timeout, "reconnected after {waited:?}");
    assert!(
        waited < timeout + Duration::from_secs(2),
        "reconnected after {waited:?}"
    );
    let report = next_report(&mut reports, "pusher_internal:subscription_succeeded").await;
    assert!(report.contains("timed out after 300ms"), "{report}");
    // The first connection was dropped, not left open beside the new one.
    assert!(
        within("the first connection to close", first.next())
            .await
            .is_none_or(|m| m.is_close()),
        "the unconfirmed connection stayed open"
    );
    assert!(matches!(
        handle.health()[0].health,
        Health::Reconnecting { attempt: 1, .. } | Health::Starting
    ));
    within("shutdown", handle.shutdown()).await.unwrap();
}

/// Accept times of `n` connections to `peer`, each closed by the server right after it
/// confirmed the subscription.
async fn flapping(peer: &mut Scripted, n: usize) -> Vec<Instant> {
    let mut accepted = Vec::new();
    for i in 0..n {
        let mut conn = peer.accept_subscribed(&format!("{i}.{i}")).await;
        accepted.push(conn.accepted_at);
        let _ = conn.ws.close(None).await;
    }
    accepted
}

#[tokio::test]
async fn a_server_dropping_every_subscription_at_once_is_backed_off_more_and_more() {
    let mut peer = Scripted::start().await;
    let (handle, _reports) = spawn_reporting(
        peer.source()
            .backoff(Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(5),
                multiplier: 2.0,
                max_attempts: None,
            })
            // Longer than the test: no connection here is stable.
            .stable_after(Duration::from_secs(60)),
    );
    let accepted = flapping(&mut peer, 6).await;
    listener_e2e::wait::assert_backed_off("flapping server", &accepted);
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_connection_that_stayed_up_past_the_stable_period_resets_the_backoff() {
    let mut peer = Scripted::start().await;
    let stable = Duration::from_millis(300);
    let (handle, _reports) = spawn_reporting(
        peer.source()
            .backoff(Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
                multiplier: 2.0,
                max_attempts: None,
            })
            .stable_after(stable),
    );
    // Four connections dropped at once: the 4th reconnect waits 400-800 ms.
    let mut closed_at = Instant::now();
    let mut gap_before = Duration::ZERO;
    for i in 0..4 {
        let mut conn = peer.accept_subscribed(&format!("{i}.{i}")).await;
        if i > 0 {
            gap_before = conn.accepted_at - closed_at;
        }
        let _ = conn.ws.close(None).await;
        closed_at = Instant::now();
    }
    // The 5th stays up past the stable period, then drops.
    let mut stable_conn = peer.accept_subscribed("4.4").await;
    let gap_flapping = stable_conn.accepted_at - closed_at;
    tokio::time::sleep(stable + Duration::from_millis(200)).await;
    let _ = stable_conn.ws.close(None).await;
    let closed_at = Instant::now();
    let next = peer.accept_subscribed("5.5").await;
    let gap_after = next.accepted_at - closed_at;
    eprintln!(
        "stable reset: close-to-reconnect {gap_before:?} (3rd drop), {gap_flapping:?} (4th), {gap_after:?} after a connection stable for {:?}",
        stable + Duration::from_millis(200)
    );
    listener_e2e::wait::assert_backoff_reset(gap_flapping, gap_after);
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_flood_of_big_chunks_under_many_ids_is_evicted_and_reported() {
    let mut peer = Scripted::start().await;
    let mut rec = Recorder::new();
    let (tx, mut reports) = hook();
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(peer.source().backoff(fast_backoff()))
        .handler(rec.handler("any", Filter::new()))
        .on_error(move |f: &Failure| {
            let _ = tx.send(f.to_string());
        })
        .build()
        .unwrap()
        .spawn();
    let mut conn = peer.accept_subscribed("1.1").await;
    // 30 ids x 2 chunks of 900 KB (54 MB), none ever completing: the default bound keeps
    // 8 MiB of them at most, evicting the oldest.
    let piece = "x".repeat(900_000);
    for n in 0..60u32 {
        let id = format!("flood-{}", n / 2);
        conn.send_text(channel_event(
            "private-x",
            "chunked-trigger_to_client",
            &chunk(&id, n % 2, &piece, false),
        ))
        .await;
    }
    // A small chunked event after the flood still reassembles.
    let body = pusher::v3_event("evt_after_flood", "SLACK_RECEIVE_MESSAGE", json!({}));
    let (head, tail) = body.split_at(body.len() / 2);
    for (index, piece) in [(1u32, tail), (0, head)] {
        conn.send_text(channel_event(
            "private-x",
            "chunked-trigger_to_client",
            &chunk("small", index, piece, index == 1),
        ))
        .await;
    }
    assert_eq!(rec.next().await.event.event_id, "evt_after_flood");
    let mut evicted = Vec::new();
    while let Ok(r) = reports.try_recv() {
        if r.contains("chunk buffers over the bound of 8388608 bytes") {
            evicted.push(r);
        }
    }
    eprintln!(
        "chunk flood: {} partial events evicted and reported",
        evicted.len()
    );
    // 8 MiB holds 9 chunks of 900 KB: of 30 ids, at least 25 were evicted.
    assert!(
        evicted.len() >= 25,
        "{} evictions: {evicted:?}",
        evicted.len()
    );
    assert!(evicted.iter().all(|r| r.contains("`flood-")), "{evicted:?}");
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn an_endless_credentials_answer_is_refused_at_the_limit() {
    let fake = FakeComposio::start(AuthMode::Sign).await;
    fake.set_credentials_endless();
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(
            ComposioSource::new(API_KEY)
                .base_url(fake.base_url())
                .unwrap(),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    match within("the listener to give up", listener.wait_forever()).await {
        Err(Error::Source(SourceError::Failed { message, .. })) => assert!(
            message.contains("credentials request answered 200 OK")
                && message.contains(&format!(
                    "response body exceeds {MAX_AUTH_RESPONSE_BYTES} bytes"
                )),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    let streamed = fake.streamed_bytes();
    eprintln!("endless credentials: refused after {took:?}; the server streamed {streamed} bytes");
    // Bounded by the limit (plus socket buffers), not by the 15 s request timeout.
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(streamed < 32 << 20, "the server streamed {streamed} bytes");
    assert_eq!(
        fake.credential_calls(),
        1,
        "an unusable answer is not retried"
    );
}

#[tokio::test]
async fn an_endless_channel_auth_answer_is_refused_at_the_limit_and_retried() {
    let fake = FakeComposio::start(AuthMode::Endless).await;
    let server = WsServer::start().await;
    let mut peer = Scripted { server };
    let (handle, mut reports) = spawn_reporting(composio(&fake, peer.server.addr.port()));
    let started = Instant::now();
    let mut first = peer.server.accept().await;
    first.send_text(connection_established("1.1", 120)).await;
    let report = next_report(&mut reports, "response body exceeds").await;
    let took = started.elapsed();
    assert!(
        report.contains(&format!(
            "auth endpoint answered 200 OK: response body exceeds {MAX_AUTH_RESPONSE_BYTES} bytes"
        )),
        "{report}"
    );
    // Transient: the client drops the connection and comes back for a fresh socket id.
    let (mut second, saw_connected) = next_conn_watching_health(&mut peer, &handle).await;
    assert!(!saw_connected);
    second.send_text(connection_established("2.2", 120)).await;
    until("a second auth request", || fake.socket_ids().len() >= 2).await;
    assert_eq!(fake.socket_ids()[..2], ["1.1", "2.2"]);
    let streamed = fake.streamed_bytes();
    eprintln!("endless auth answer: refused after {took:?}; the server streamed {streamed} bytes over 2 requests");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(streamed < 64 << 20, "the server streamed {streamed} bytes");
    within("shutdown", handle.shutdown()).await.unwrap();
}
