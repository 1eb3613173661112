//! The local hub: a listener pointed at an embedded hub runs the production code path
//! (credentials, channel auth, Pusher subscribe, chunk reassembly).

use std::time::Duration;

use listener_core::hub::Hub;
use listener_core::{Filter, Health, Listener, ListenerHandle};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use serde_json::json;

async fn listen(hub: &listener_core::hub::RunningHub, rec: &Recorder) -> ListenerHandle {
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .handler(rec.handler("slack", Filter::new().name("SLACK_RECEIVE_MESSAGE")))
        .handler(rec.handler(
            "expired",
            Filter::new().name("composio.connected_account.expired"),
        ))
        .build()
        .unwrap()
        .spawn();
    until("the listener to subscribe to the hub", || {
        handle
            .health()
            .iter()
            .any(|s| s.health == Health::Connected)
    })
    .await;
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_an_embedded_hub_receives_ingested_events_small_and_chunked() {
    let hub = Hub::builder().chunk_size(1024).start().await.unwrap();
    let mut rec = Recorder::new();
    let handle = listen(&hub, &rec).await;
    assert_eq!(hub.subscribers(), 1);

    let small = hub
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "hi"}))
        .unwrap();
    assert_eq!((small.subscribers, small.frames), (1, 1));
    let got = rec.next().await;
    assert_eq!(got.handler, "slack");
    assert_eq!(got.event.event_id, small.id);
    assert_eq!(got.event.payload["text"], "hi");
    assert_eq!(got.event.user_id, "default");

    // Larger than the chunk size: sent in pieces, reassembled, dispatched once.
    let text = "ünïcödé ".repeat(1000);
    let big = hub
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": text}))
        .unwrap();
    assert!(big.frames > 5, "{big:?}");
    let got = rec.next().await;
    assert_eq!(got.event.event_id, big.id);
    assert_eq!(got.event.payload["text"], text.as_str());

    // Through the HTTP ingest API: a fixture envelope, kept as it is.
    let http = listener_e2e::http::client();
    let fixture = listener_e2e::fixtures::bytes("v3_connected_account_expired.json");
    let r = http
        .post(format!("{}/hub/events", hub.base_url()))
        .header("content-type", "application/json")
        .body(fixture)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let receipt: serde_json::Value = r.json().await.unwrap();
    assert_eq!(receipt["id"], "evt_847cdfcd-d219-4f18-a6dd-91acd42ca94a");
    assert_eq!(receipt["event_type"], "composio.connected_account.expired");
    let got = rec.next().await;
    assert_eq!(got.handler, "expired");
    assert_eq!(
        got.event.metadata.connected_account.id,
        "ca_your-connected-account-id"
    );

    // A bad body is a 400 naming the problem; nothing is published.
    let r = http
        .post(format!("{}/hub/events", hub.base_url()))
        .body(r#"{"hello": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown event envelope"));

    let stopped = within("shutdown", handle.shutdown()).await.unwrap();
    assert_eq!(stopped.stats.runs, 3);
    assert!(rec.drain().is_empty());
    hub.shutdown().await;
}

#[tokio::test]
async fn the_hub_checks_api_keys_and_channel_auth() {
    let hub = Hub::builder().start().await.unwrap();
    let http = listener_e2e::http::client();
    let creds = format!(
        "{}/api/v3/internal/sdk/realtime/credentials",
        hub.base_url()
    );
    assert_eq!(http.get(&creds).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&creds)
            .header("x-api-key", "wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let ok: serde_json::Value = http
        .get(&creds)
        .header("x-api-key", hub.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["pusher_key"], hub.app_key());
    assert_eq!(ok["project_id"], "pr_local");

    let auth = format!("{}/api/v3/internal/sdk/realtime/auth", hub.base_url());
    let form = [
        ("channel_name", hub.channel()),
        ("socket_id", "1.2".to_owned()),
    ];
    let r = http
        .post(&auth)
        .header("x-api-key", hub.api_key())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: serde_json::Value = r.json().await.unwrap();
    let token = token["auth"].as_str().unwrap().to_owned();
    assert!(listener_core::source::pusher::verify_channel(
        hub.app_key(),
        hub.app_secret(),
        "1.2",
        &hub.channel(),
        &token
    ));
    let other = [
        ("channel_name", "private-someone-else"),
        ("socket_id", "1.2"),
    ];
    let r = http
        .post(&auth)
        .header("x-api-key", hub.api_key())
        .form(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A listener with the wrong key is refused for good.
    let listener = Listener::builder()
        .without_registered_handlers()
        .source(
            listener_core::ComposioSource::new("nope")
                .base_url(hub.base_url())
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = within("the listener to give up", listener.wait_forever())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_cannot_keep_up_is_dropped_without_stalling_others() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let hub = Hub::builder().subscriber_queue(4).start().await.unwrap();
    // A raw client that subscribes and then never reads.
    let url = format!("ws://{}/app/{}?protocol=7", hub.addr(), hub.app_key());
    let (mut slow, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let established = slow.next().await.unwrap().unwrap().into_text().unwrap();
    let outer: serde_json::Value = serde_json::from_str(&established).unwrap();
    let inner: serde_json::Value = serde_json::from_str(outer["data"].as_str().unwrap()).unwrap();
    let socket_id = inner["socket_id"].as_str().unwrap();
    let token = listener_core::source::pusher::sign_channel(
        hub.app_key(),
        hub.app_secret(),
        socket_id,
        &hub.channel(),
    );
    let sub =
        json!({"event": "pusher:subscribe", "data": {"channel": hub.channel(), "auth": token}});
    slow.send(Message::text(sub.to_string())).await.unwrap();
    let ok = slow.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(ok.contains("subscription_succeeded"), "{ok}");

    let mut rec = Recorder::new();
    let handle = listen(&hub, &rec).await;
    assert_eq!(hub.subscribers(), 2);
    // The slow client reads nothing. Once the kernel's socket buffers are full its 4-frame
    // queue fills and it is dropped; the listener keeps receiving every event.
    let filler = "x".repeat(8000);
    let mut i = 0;
    while hub.subscribers() == 2 {
        assert!(i < 20_000, "the slow subscriber was never dropped");
        hub.publish_payload("SLACK_RECEIVE_MESSAGE", json!({"n": i, "filler": filler}))
            .unwrap();
        assert_eq!(rec.next().await.event.payload["n"], i);
        i += 1;
    }
    for j in i..i + 10 {
        let p = hub
            .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"n": j}))
            .unwrap();
        assert_eq!(p.subscribers, 1);
        assert_eq!(rec.next().await.event.payload["n"], j);
    }
    within("shutdown", handle.shutdown()).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(10), slow.close(None)).await;
    hub.shutdown().await;
}

/// Composio's own Python SDK listener (PyPI `composio`, `TriggerSubscription` over pysher),
/// pointed at the hub, receives an event sent to the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composios_python_sdk_listener_receives_events_from_the_hub() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let Some(python) = listener_e2e::peers::python_peer() else { return };
    let hub = Hub::builder().start().await.unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/composio_listener.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .env("HUB_HOST", hub.addr().ip().to_string())
        .env("HUB_PORT", hub.addr().port().to_string())
        .env("COMPOSIO_API_KEY", hub.api_key())
        .env("COMPOSIO_BASE_URL", hub.base_url())
        .env("EXPECT", "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python SDK listener");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = within("the SDK listener to start", lines.next_line()).await.unwrap();
    assert_eq!(ready.as_deref(), Some("READY"));
    until("the SDK to subscribe to the hub", || hub.subscribers() == 1).await;

    let published = hub
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"channel": "C1", "text": "from the hub"}))
        .unwrap();
    let line = within("the SDK to print the event", lines.next_line()).await.unwrap().unwrap();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(event["trigger_slug"], "SLACK_RECEIVE_MESSAGE");
    assert_eq!(event["toolkit_slug"], "SLACK");
    assert_eq!(event["user_id"], "default");
    assert_eq!(event["payload"]["text"], "from the hub");
    assert!(!published.id.is_empty());
    let done = within("the SDK to finish", lines.next_line()).await.unwrap();
    assert_eq!(done.as_deref(), Some("DONE"));
    let status = within("the SDK process to exit", child.wait()).await.unwrap();
    assert!(status.success());
    hub.shutdown().await;
}
