//! The local hub: a listener pointed at an embedded hub runs the production code path
//! (credentials, channel auth, Pusher subscribe, chunk reassembly).

use std::time::Duration;

use listener_core::source::Health;
use listener_core::{Filter, Listener, ListenerHandle};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use listener_hub::Hub;
use serde_json::json;

async fn listen(hub: &listener_hub::RunningHub, rec: &Recorder) -> ListenerHandle {
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

    // Many at once as NDJSON (blank lines skipped); a bad line is named and nothing is sent.
    let ndjson = "{\"trigger_slug\":\"SLACK_RECEIVE_MESSAGE\",\"payload\":{\"n\":1}}\n\n{\"trigger_slug\":\"SLACK_RECEIVE_MESSAGE\",\"payload\":{\"n\":2}}\n";
    let r = http
        .post(format!("{}/hub/events", hub.base_url()))
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let receipt: serde_json::Value = r.json().await.unwrap();
    assert_eq!(receipt["published"], 2);
    let mut ns = [
        rec.next().await.event.payload["n"].as_i64(),
        rec.next().await.event.payload["n"].as_i64(),
    ];
    ns.sort();
    assert_eq!(
        ns,
        [Some(1), Some(2)],
        "handlers run concurrently, so order is not kept"
    );
    let r = http
        .post(format!("{}/hub/events", hub.base_url()))
        .header("content-type", "application/x-ndjson")
        .body("{\"trigger_slug\":\"X_Y\"}\nnot json\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("line 2"));

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
    assert_eq!(stopped.stats.runs, 5);
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
    assert!(listener_core::source::pusher::protocol::verify_channel(
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
            listener_core::source::composio::ComposioSource::new("nope")
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
    let token = listener_core::source::pusher::protocol::sign_channel(
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

    let Some(python) = listener_e2e::peers::python_peer() else {
        return;
    };
    let hub = Hub::builder().start().await.unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/composio_listener.py");
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
    let ready = within("the SDK listener to start", lines.next_line())
        .await
        .unwrap();
    assert_eq!(ready.as_deref(), Some("READY"));
    until("the SDK to subscribe to the hub", || hub.subscribers() == 1).await;

    let published = hub
        .publish_payload(
            "SLACK_RECEIVE_MESSAGE",
            json!({"channel": "C1", "text": "from the hub"}),
        )
        .unwrap();
    let line = within("the SDK to print the event", lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let event: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(event["trigger_slug"], "SLACK_RECEIVE_MESSAGE");
    assert_eq!(event["toolkit_slug"], "SLACK");
    assert_eq!(event["user_id"], "default");
    assert_eq!(event["payload"]["text"], "from the hub");
    assert!(!published.id.is_empty());
    let done = within("the SDK to finish", lines.next_line())
        .await
        .unwrap();
    assert_eq!(done.as_deref(), Some("DONE"));
    let status = within("the SDK process to exit", child.wait())
        .await
        .unwrap();
    assert!(status.success());
    hub.shutdown().await;
}

mod webhook_delivery {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use axum::Router;
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    use listener_core::Backoff;
    use listener_e2e::wait::until;
    use listener_hub::{DeliveryConfig, Hub};
    use serde_json::{json, Value};
    use sha2::Sha256;

    #[derive(Clone, Debug)]
    struct Received {
        headers: HeaderMap,
        body: String,
    }

    /// A webhook receiver answering the scripted statuses in order (then 200), recording
    /// every request.
    async fn receiver(script: Vec<u16>) -> (String, Arc<Mutex<Vec<Received>>>) {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let record = seen.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let (record, script) = (record.clone(), script.clone());
                async move {
                    record.lock().unwrap().push(Received { headers, body });
                    let code = script.lock().unwrap().next().unwrap_or(200);
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn fast_delivery() -> DeliveryConfig {
        DeliveryConfig {
            max_attempts: 4,
            backoff: Backoff {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(50),
                ..Backoff::default()
            },
            timeout: Duration::from_secs(2),
            ..DeliveryConfig::default()
        }
    }

    /// Composio's scheme, computed independently here: the whole secret's bytes as the key.
    fn expected_signature(secret: &str, id: &str, ts: &str, body: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{id}.{ts}.{body}").as_bytes());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    #[tokio::test]
    async fn a_subscriber_answering_500_twice_gets_the_event_on_the_third_attempt() {
        let hub = Hub::builder()
            .delivery(fast_delivery())
            .start()
            .await
            .unwrap();
        let (url, seen) = receiver(vec![500, 500]).await;
        let sub = hub.subscribe_webhook(&url, None);
        let published = hub
            .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "retry me"}))
            .unwrap();
        assert_eq!(published.webhooks, 1);
        until("three attempts", || seen.lock().unwrap().len() == 3).await;
        until("the log to show the delivery", || {
            hub.deliveries().iter().any(|d| d.outcome == "delivered")
        })
        .await;

        let seen = seen.lock().unwrap().clone();
        let ids: Vec<&str> = seen
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap())
            .collect();
        assert!(
            ids.iter().all(|id| *id == ids[0] && id.starts_with("msg_")),
            "one id across retries: {ids:?}"
        );
        for (n, r) in seen.iter().enumerate() {
            let h = |k: &str| r.headers[k].to_str().unwrap().to_owned();
            assert_eq!(h("x-composio-delivery-attempt"), (n + 1).to_string());
            assert_eq!(h("x-composio-webhook-version"), "V3");
            assert_eq!(h("content-type"), "application/json");
            let ts = h("webhook-timestamp");
            assert_eq!(
                h("webhook-signature"),
                expected_signature(&sub.secret, ids[0], &ts, &r.body)
            );
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["id"], published.id.as_str());
            assert_eq!(body["data"]["text"], "retry me");
        }
        let log = hub.deliveries();
        let outcomes: Vec<(u32, Option<u16>, &str)> = log
            .iter()
            .map(|d| (d.attempt, d.status, d.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                (1, Some(500), "retrying"),
                (2, Some(500), "retrying"),
                (3, Some(200), "delivered")
            ]
        );
        hub.shutdown().await;
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_a_dead_endpoint_does_not_stall_others() {
        let hub = Hub::builder()
            .delivery(fast_delivery())
            .start()
            .await
            .unwrap();
        let (bad_url, bad) = receiver(vec![503; 100]).await;
        let (good_url, good) = receiver(vec![]).await;
        hub.subscribe_webhook(&bad_url, None);
        hub.subscribe_webhook(&good_url, None);
        for i in 0..3 {
            hub.publish_payload("SLACK_RECEIVE_MESSAGE", json!({"n": i}))
                .unwrap();
        }
        until("the healthy endpoint to get all three", || {
            good.lock().unwrap().len() == 3
        })
        .await;
        until("the failing endpoint to exhaust its attempts", || {
            hub.deliveries()
                .iter()
                .filter(|d| d.outcome == "failed")
                .count()
                == 3
        })
        .await;
        assert_eq!(
            bad.lock().unwrap().len(),
            12,
            "4 attempts for each of 3 events"
        );
        hub.shutdown().await;
    }

    #[tokio::test]
    async fn the_management_api_has_composios_paths_and_shapes() {
        let hub = Hub::builder()
            .delivery(fast_delivery())
            .start()
            .await
            .unwrap();
        let http = listener_e2e::http::client();
        let base = format!("{}/api/v3.1/webhook_subscriptions", hub.base_url());
        let key = hub.api_key().to_owned();
        let call = |m: reqwest::Method, url: String, body: Option<Value>| {
            let mut r = http.request(m, url).header("x-api-key", key.clone());
            if let Some(b) = body {
                r = r.json(&b);
            }
            async move {
                let resp = r.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        assert_eq!(http.get(&base).send().await.unwrap().status(), 401);

        let (status, created) = call(
            reqwest::Method::POST,
            base.clone(),
            Some(json!({"webhook_url": "http://127.0.0.1:9/x"})),
        )
        .await;
        assert_eq!(status, 201);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(
            created["enabled_events"],
            json!(["composio.trigger.message"])
        );
        assert_eq!(created["version"], "V3");
        assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
        assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

        let (status, listed) = call(reqwest::Method::GET, base.clone(), None).await;
        assert_eq!(status, 200);
        assert_eq!(listed["total_items"], 1);
        assert_eq!(listed["items"][0]["id"], id.as_str());

        let (status, patched) = call(
            reqwest::Method::PATCH,
            format!("{base}/{id}"),
            Some(json!({"enabled_events": ["composio.trigger.message", "composio.connected_account.expired"]})),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(patched["enabled_events"].as_array().unwrap().len(), 2);

        let (status, rotated) = call(
            reqwest::Method::POST,
            format!("{base}/{id}/rotate_secret"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(rotated["id"], id.as_str());
        assert_ne!(rotated["secret"], created["secret"]);
        let (_, got) = call(reqwest::Method::GET, format!("{base}/{id}"), None).await;
        assert_eq!(got["secret"], rotated["secret"]);

        let (status, types) = call(reqwest::Method::GET, format!("{base}/event_types"), None).await;
        assert_eq!(status, 200);
        assert!(types["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["event_type"] == "composio.connected_account.expired"));

        for bad in [
            json!({}),
            json!({"webhook_url": "ftp://x"}),
            json!({"webhook_url": "http://x", "enabled_events": []}),
            json!({"webhook_url": "http://x", "enabled_events": ["nope"]}),
            json!({"webhook_url": "http://x", "version": "V1"}),
        ] {
            let (status, err) = call(reqwest::Method::POST, base.clone(), Some(bad.clone())).await;
            assert_eq!(status, 400, "{bad}");
            assert!(err["error"]["message"].is_string(), "{err}");
        }

        let (status, deleted) = call(reqwest::Method::DELETE, format!("{base}/{id}"), None).await;
        assert_eq!((status, deleted), (200, json!({"success": true})));
        let (status, _) = call(reqwest::Method::GET, format!("{base}/{id}"), None).await;
        assert_eq!(status, 404);
        hub.shutdown().await;
    }

    /// A receiver answering 200 (or 500) with a body that never ends: the hub reads at most
    /// `MAX_RECEIVER_ANSWER_BYTES` of it, and the status alone decides.
    #[tokio::test]
    async fn an_endless_answer_from_a_receiver_is_abandoned_and_its_status_counts() {
        use std::sync::atomic::{AtomicU64, Ordering};

        use axum::body::{Body, Bytes};
        use axum::response::IntoResponse;
        use listener_hub::MAX_RECEIVER_ANSWER_BYTES;

        let streamed = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicU64::new(0));
        let (count, n) = (streamed.clone(), calls.clone());
        let app = Router::new().route(
            "/hook",
            post(move || {
                let (count, n) = (count.clone(), n.clone());
                async move {
                    // The first attempt fails, the second succeeds; both answers are endless.
                    let status = if n.fetch_add(1, Ordering::SeqCst) == 0 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let chunk = Bytes::from(vec![b'.'; 64 << 10]);
                    let body = futures_util::stream::repeat_with(move || {
                        count.fetch_add(64 << 10, Ordering::Relaxed);
                        Ok::<_, std::io::Error>(chunk.clone())
                    });
                    (status, Body::from_stream(body)).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let hub = Hub::builder()
            .delivery(DeliveryConfig {
                // Far beyond the test: the size bound ends the reads (the hub's 1 s wait
                // for an answer body would make it 2 s or more).
                timeout: Duration::from_secs(60),
                ..fast_delivery()
            })
            .start()
            .await
            .unwrap();
        hub.subscribe_webhook(&url, None);
        let started = std::time::Instant::now();
        hub.publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "hi"}))
            .unwrap();
        until("the delivery", || {
            hub.deliveries().iter().any(|d| d.outcome == "delivered")
        })
        .await;
        let took = started.elapsed();
        let outcomes: Vec<(u32, Option<u16>, String)> = hub
            .deliveries()
            .into_iter()
            .map(|d| (d.attempt, d.status, d.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                (1, Some(500), "retrying".to_owned()),
                (2, Some(200), "delivered".to_owned())
            ]
        );
        let streamed = streamed.load(Ordering::Relaxed);
        eprintln!(
            "endless receiver answers: delivered after {took:?}; the receiver streamed {streamed} bytes over 2 attempts (limit {MAX_RECEIVER_ANSWER_BYTES} each)"
        );
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert!(streamed < 64 << 20, "{streamed} bytes streamed");
        hub.shutdown().await;
    }
}

/// Moved from listener-core's unit tests when the hub became its own crate.
mod composio_client_against_the_hub {
    use std::time::Duration;

    use listener_core::composio_api::{
        ComposioClient, CreateWebhookSubscription, UpdateWebhookSubscription,
    };
    use listener_core::Backoff;

    const NO_RETRY: Backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(4),
        multiplier: 2.0,
        max_attempts: Some(0),
    };

    /// The seven webhook-subscription calls against the embedded hub, which serves the same
    /// paths and shapes as Composio: client and hub agree.
    #[tokio::test]
    async fn webhook_subscriptions_against_the_local_hub() {
        let hub = listener_hub::Hub::builder().start().await.unwrap();
        let client = ComposioClient::builder(hub.api_key())
            .base_url(hub.base_url())
            .retry(NO_RETRY)
            .build()
            .unwrap();
        let types = client.webhook_event_types().await.unwrap();
        assert!(types
            .iter()
            .any(|t| t.event_type == "composio.connected_account.expired"));
        let created = client
            .create_webhook_subscription(
                &CreateWebhookSubscription::new("http://127.0.0.1:9/hook").events([
                    "composio.trigger.message",
                    "composio.connected_account.expired",
                ]),
            )
            .await
            .unwrap();
        assert!(!created.id.is_empty());
        let secret = created.secret.clone().expect("a secret on creation");
        assert_eq!(created.enabled_events.len(), 2);
        let listed = client.list_webhook_subscriptions().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, created.id);
        let got = client.get_webhook_subscription(&created.id).await.unwrap();
        assert_eq!(got.webhook_url, "http://127.0.0.1:9/hook");
        let updated = client
            .update_webhook_subscription(
                &created.id,
                &UpdateWebhookSubscription {
                    enabled_events: Some(vec!["composio.trigger.message".into()]),
                    ..UpdateWebhookSubscription::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.enabled_events, vec!["composio.trigger.message"]);
        let rotated = client.rotate_webhook_secret(&created.id).await.unwrap();
        assert!(rotated.secret.is_some_and(|s| s != secret));
        // A bad request is an API error with the hub's error object.
        let err = client
            .create_webhook_subscription(
                &CreateWebhookSubscription::new("http://127.0.0.1:9/x").events(["no.such.type"]),
            )
            .await
            .unwrap_err();
        assert!(err.is_status(400), "{err}");
        assert!(
            err.error_object().unwrap().message.contains("no.such.type"),
            "{err}"
        );
        client
            .delete_webhook_subscription(&created.id)
            .await
            .unwrap();
        let err = client
            .get_webhook_subscription(&created.id)
            .await
            .unwrap_err();
        assert!(err.is_status(404), "{err}");
        assert!(client
            .list_webhook_subscriptions()
            .await
            .unwrap()
            .is_empty());
        // The wrong key is refused.
        let stranger = ComposioClient::builder("wrong")
            .base_url(hub.base_url())
            .retry(NO_RETRY)
            .build()
            .unwrap();
        assert!(stranger
            .list_webhook_subscriptions()
            .await
            .unwrap_err()
            .is_status(401));
        hub.shutdown().await;
    }
}
