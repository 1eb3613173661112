//! The plain websocket source against a scripted server on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use listener_core::source::websocket::WebSocketSource;
use listener_core::source::Health;
use listener_core::source::SourceError;
use listener_core::{Backoff, Error, Failure, Filter, Listener, ListenerHandle};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use listener_e2e::ws_server::WsServer;
use serde_json::json;

fn v3(id: &str, text: &str) -> String {
    json!({
        "id": id, "type": "composio.trigger.message", "timestamp": "2026-01-01T00:00:00Z",
        "metadata": {"trigger_slug": "SLACK_RECEIVE_MESSAGE", "user_id": "default"},
        "data": {"text": text}
    })
    .to_string()
}

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        ..Backoff::default()
    }
}

fn start(
    source: WebSocketSource,
    rec: &Recorder,
    failures: Arc<Mutex<Vec<String>>>,
) -> ListenerHandle {
    Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(rec.handler("slack", Filter::new().name("SLACK_RECEIVE_MESSAGE")))
        .on_error(move |f: &Failure| failures.lock().unwrap().push(f.to_string()))
        .build()
        .unwrap()
        .spawn()
}

#[tokio::test]
async fn reconnects_after_the_server_drops_it_and_receives_what_follows() {
    let mut server = WsServer::start().await;
    let mut rec = Recorder::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let handle = start(
        WebSocketSource::new(server.url())
            .unwrap()
            .backoff(fast_backoff()),
        &rec,
        failures.clone(),
    );

    let mut first = server.accept().await;
    first.send_text(v3("evt_1", "before the drop")).await;
    assert_eq!(rec.next().await.event.payload["text"], "before the drop");
    drop(first); // the server goes away without a close frame

    let mut second = server.accept().await;
    second.send_text(v3("evt_2", "after the reconnect")).await;
    let seen = rec.next().await;
    assert_eq!(seen.event.event_id, "evt_2");
    assert_eq!(seen.event.payload["text"], "after the reconnect");
    until("the source to report itself connected", || {
        handle
            .health()
            .iter()
            .any(|s| s.health == Health::Connected)
    })
    .await;
    assert!(
        !failures.lock().unwrap().is_empty(),
        "the drop was reported to the hook"
    );

    let stopped = within("shutdown", handle.shutdown()).await.unwrap();
    assert_eq!(stopped.stats.runs, 2);
}

#[tokio::test]
async fn a_garbage_frame_is_skipped_and_the_next_good_one_dispatched() {
    let mut server = WsServer::start().await;
    let mut rec = Recorder::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let handle = start(
        WebSocketSource::new(server.url()).unwrap(),
        &rec,
        failures.clone(),
    );
    let mut conn = server.accept().await;
    conn.send_text("this is not json \u{1b}[31m").await;
    conn.send_text("[1, 2, 3]").await;
    conn.send_text(r#"{"hello": "world"}"#).await;
    conn.send_text(v3("evt_ok", "good one")).await;
    assert_eq!(rec.next().await.event.event_id, "evt_ok");
    assert!(rec.drain().is_empty());
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(failures[0].contains("not valid JSON"));
    assert!(failures[1].contains("must be a JSON object"));
    assert!(failures[2].contains("unknown event envelope"));
    // Still the first connection: bad frames do not cost a reconnect.
    assert!(server.conns.try_recv().is_err());
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_silent_server_is_detected_by_the_ping_timeout() {
    let mut server = WsServer::start().await;
    let rec = Recorder::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let handle = start(
        WebSocketSource::new(server.url())
            .unwrap()
            .ping_interval(Duration::from_millis(100))
            .pong_timeout(Duration::from_millis(100))
            .backoff(fast_backoff()),
        &rec,
        failures.clone(),
    );
    // Accept, then never read: the client's ping is never answered.
    let _silent = server.accept().await;
    let _second = server.accept().await;
    let text = failures.lock().unwrap().join("\n");
    assert!(text.contains("no answer to ping"), "{text}");
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn an_answering_server_is_kept_across_ping_intervals() {
    let mut server = WsServer::start().await;
    let mut rec = Recorder::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let handle = start(
        WebSocketSource::new(server.url())
            .unwrap()
            .ping_interval(Duration::from_millis(30))
            .pong_timeout(Duration::from_millis(500)),
        &rec,
        failures.clone(),
    );
    let mut conn = server.accept().await;
    // Reading answers pings; wait for three of them.
    let mut pings = 0;
    while pings < 3 {
        match within("a ping", conn.next()).await {
            Some(m) if m.is_ping() => pings += 1,
            Some(_) => {}
            None => panic!("the client closed a live connection"),
        }
    }
    conn.send_text(v3("evt_alive", "still here")).await;
    assert_eq!(rec.next().await.event.event_id, "evt_alive");
    assert!(server.conns.try_recv().is_err(), "no reconnect happened");
    assert!(failures.lock().unwrap().is_empty());
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn an_oversized_frame_drops_the_connection_not_the_listener() {
    let mut server = WsServer::start().await;
    let mut rec = Recorder::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let handle = start(
        WebSocketSource::new(server.url())
            .unwrap()
            .max_frame_bytes(4096)
            .backoff(fast_backoff()),
        &rec,
        failures.clone(),
    );
    let mut conn = server.accept().await;
    conn.send_text(v3("evt_big", &"x".repeat(10_000))).await;
    let mut again = server.accept().await;
    again.send_text(v3("evt_small", "fits")).await;
    assert_eq!(rec.next().await.event.event_id, "evt_small");
    let text = failures.lock().unwrap().join("\n");
    assert!(text.contains("Message too long: 10176 > 4096"), "{text}");
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_refused_handshake_is_fatal() {
    // An HTTP server that answers every request 401.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(WebSocketSource::new(format!("ws://{addr}/")).unwrap())
        .build()
        .unwrap();
    match within("the listener to give up", listener.wait_forever()).await {
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(message.contains("401"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    // A port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(
            WebSocketSource::new(format!("ws://127.0.0.1:{port}/"))
                .unwrap()
                .backoff(Backoff {
                    max_attempts: Some(2),
                    ..fast_backoff()
                }),
        )
        .build()
        .unwrap();
    match within("the listener to give up", listener.wait_forever()).await {
        Err(Error::Source(SourceError::Failed { message, .. })) => {
            assert!(message.contains("gave up after 2"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// Accept times of `n` connections to `server`, each closed by the server right after the
/// handshake.
async fn flapping(server: &mut WsServer, n: usize) -> Vec<std::time::Instant> {
    let mut accepted = Vec::new();
    for _ in 0..n {
        let mut conn = server.accept().await;
        accepted.push(conn.accepted_at);
        let _ = conn.ws.close(None).await;
    }
    accepted
}

#[tokio::test]
async fn a_server_dropping_every_connection_at_once_is_backed_off_more_and_more() {
    let mut server = WsServer::start().await;
    let rec = Recorder::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let handle = start(
        WebSocketSource::new(server.url())
            .unwrap()
            .backoff(Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(5),
                multiplier: 2.0,
                max_attempts: None,
            })
            // Longer than the test: no connection here is stable.
            .stable_after(Duration::from_secs(60)),
        &rec,
        failures.clone(),
    );
    let accepted = flapping(&mut server, 6).await;
    listener_e2e::wait::assert_backed_off("flapping websocket server", &accepted);
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_connection_that_stayed_up_past_the_stable_period_resets_the_backoff() {
    let mut server = WsServer::start().await;
    let rec = Recorder::new();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let stable = Duration::from_millis(300);
    let handle = start(
        WebSocketSource::new(server.url())
            .unwrap()
            .backoff(Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
                multiplier: 2.0,
                max_attempts: None,
            })
            .stable_after(stable),
        &rec,
        failures.clone(),
    );
    // Four connections dropped at once: the 4th reconnect waits 400-800 ms.
    let mut closed_at = std::time::Instant::now();
    let mut gap_before = Duration::ZERO;
    for i in 0..4 {
        let mut conn = server.accept().await;
        if i > 0 {
            gap_before = conn.accepted_at - closed_at;
        }
        let _ = conn.ws.close(None).await;
        closed_at = std::time::Instant::now();
    }
    // The 5th stays up past the stable period (reading it meanwhile: the client must keep
    // it open), then drops.
    let mut stable_conn = server.accept().await;
    let gap_flapping = stable_conn.accepted_at - closed_at;
    let kept = stable + Duration::from_millis(200);
    let kept_until = tokio::time::Instant::from_std(stable_conn.accepted_at) + kept;
    while let Ok(msg) = tokio::time::timeout_at(kept_until, stable_conn.next()).await {
        assert!(
            msg.is_some(),
            "the client closed a connection it should keep"
        );
    }
    let _ = stable_conn.ws.close(None).await;
    let closed_at = std::time::Instant::now();
    let next = server.accept().await;
    let gap_after = next.accepted_at - closed_at;
    eprintln!(
        "websocket stable reset: close-to-reconnect {gap_before:?} (3rd drop), {gap_flapping:?} (4th), {gap_after:?} after a connection up for {kept:?}"
    );
    listener_e2e::wait::assert_backoff_reset(gap_flapping, gap_after);
    within("shutdown", handle.shutdown()).await.unwrap();
}
