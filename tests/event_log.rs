//! The hub's event log and resend through its HTTP API, with a real listener (the hub's
//! realtime source) and a webhook subscriber; the dashboard's live feed and read-only views.

use std::time::Duration;

use futures_util::StreamExt;
use listener_core::source::Health;
use listener_core::{Filter, Listener, ListenerHandle};
use listener_e2e::receiver::{Receiver, ANSWER};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use listener_hub::{DeliveryConfig, EventLogConfig, Hub, RunningHub};
use serde_json::{json, Value};

async fn listen(hub: &RunningHub, rec: &Recorder) -> ListenerHandle {
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .handler(rec.handler("slack", Filter::new().name("SLACK_RECEIVE_MESSAGE")))
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
    until("the hub to count the subscriber", || hub.subscribers() == 1).await;
    handle
}

async fn get(url: String) -> (u16, Value) {
    let r = listener_e2e::http::client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(url: String, body: &str) -> (u16, Value) {
    let r = listener_e2e::http::client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `GET /hub/events/{id}` until `cond` holds for it.
async fn event_until(
    hub: &RunningHub,
    id: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    within(what, async {
        loop {
            let (status, body) = get(format!("{}/hub/events/{id}", hub.base_url())).await;
            if status == 200 && cond(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Reads the feed into `text` until it holds `needle`.
async fn read_until<S, B>(body: &mut S, text: &mut String, needle: &str)
where
    S: futures_util::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    within(&format!("`{needle}` on the feed"), async {
        while !text.contains(needle) {
            let chunk = body.next().await.expect("the feed ended").unwrap();
            text.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        }
    })
    .await
}

fn error_message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_shows_both_deliveries_and_its_resend_is_dropped_by_the_listener_as_a_duplicate() {
    let hub = Hub::builder().start().await.unwrap();
    let receiver = Receiver::start().await;
    let sub = hub.subscribe_webhook(&receiver.url, None);
    let mut rec = Recorder::new();
    let handle = listen(&hub, &rec).await;
    let base = hub.base_url();

    let (status, receipt) = post(
        format!("{base}/hub/events"),
        r#"{"trigger_slug":"SLACK_RECEIVE_MESSAGE","user_id":"alice","payload":{"text":"hello"}}"#,
    )
    .await;
    assert_eq!(status, 202, "{receipt}");
    let id = receipt["id"].as_str().unwrap().to_owned();
    assert_eq!(rec.next().await.event.event_id, id);

    // Both deliveries: the listener's connection, and the webhook's attempt with its status,
    // latency and the receiver's answer.
    let event = event_until(&hub, &id, "the webhook delivery in the log", |e| {
        e["status"] == "delivered"
    })
    .await;
    let socket_id = hub.connections()[0].socket_id.clone();
    assert_eq!(
        (
            event["trigger_slug"].as_str(),
            event["toolkit"].as_str(),
            event["user_id"].as_str()
        ),
        (Some("SLACK_RECEIVE_MESSAGE"), Some("SLACK"), Some("alice"))
    );
    assert_eq!(event["envelope"]["data"]["text"], "hello");
    assert_eq!(event["sends_total"], 1);
    let send = &event["sends"][0];
    assert_eq!(
        send["realtime"],
        json!([{"connection": hub.connections()[0].connection, "socket_id": socket_id}])
    );
    let attempts = send["webhooks"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{send}");
    let a = &attempts[0];
    assert_eq!(
        (
            a["subscription_id"].as_str(),
            a["attempt"].as_u64(),
            a["status"].as_u64()
        ),
        (Some(sub.id.as_str()), Some(1), Some(200))
    );
    assert_eq!(a["outcome"], "delivered");
    assert_eq!(a["answer"], ANSWER);
    assert!(a["latency_ms"].as_u64().is_some(), "{a}");

    // The list and its filters; bad filters are 400s naming the problem.
    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, list) = get(format!("{base}/hub/events?slug=slack_receive_message&toolkit=slack&user=alice&status=delivered&since=5m")).await;
    assert_eq!((status, ids(&list)), (200, vec![id.clone()]), "{list}");
    assert_eq!(
        list["items"][0]["webhooks"],
        json!({"delivered": 1, "failed": 0, "pending": 0})
    );
    assert_eq!(list["items"][0]["realtime"], 1);
    let (_, list) = get(format!("{base}/hub/events?user=bob")).await;
    assert!(ids(&list).is_empty());
    let (status, body) = get(format!("{base}/hub/events?since=last%20tuesday")).await;
    assert_eq!(status, 400);
    assert!(
        error_message(&body).starts_with("since: `last tuesday` is neither an RFC 3339 time"),
        "{body}"
    );
    let (status, body) = get(format!("{base}/hub/events?status=ok")).await;
    assert_eq!(status, 400);
    assert!(
        error_message(&body).contains("pending, delivered, failed, no_subscribers"),
        "{body}"
    );
    let (status, body) = get(format!("{base}/hub/events?colour=red")).await;
    assert_eq!(status, 400);
    assert!(
        error_message(&body).contains("unknown filter `colour`"),
        "{body}"
    );
    let (status, body) = get(format!("{base}/hub/events/evt_nope")).await;
    assert_eq!(status, 404);
    assert!(
        error_message(&body).contains("no event `evt_nope`"),
        "{body}"
    );

    // Resend with the same id: it reaches the listener, which drops the duplicate; the
    // webhook receiver gets it again; the entry shows a second send.
    let (status, resent) = post(format!("{base}/hub/events/{id}/resend"), "").await;
    assert_eq!(status, 202, "{resent}");
    assert_eq!(
        (resent["id"].as_str(), resent["fresh"].as_bool()),
        (Some(id.as_str()), Some(false))
    );
    assert_eq!(
        (
            resent["published"]["id"].as_str(),
            resent["published"]["subscribers"].as_u64(),
            resent["published"]["webhooks"].as_u64()
        ),
        (Some(id.as_str()), Some(1), Some(1))
    );
    until("the listener to drop the duplicate", || {
        handle.dispatcher().stats().duplicates == 1
    })
    .await;
    let event = event_until(&hub, &id, "the second send's webhook delivery", |e| {
        e["sends_total"] == 2 && e["sends"][1]["status"] == "delivered"
    })
    .await;
    assert_eq!(event["sends"][1]["n"], 2);
    assert_eq!(
        event["sends"][1]["realtime"][0]["socket_id"],
        socket_id.as_str()
    );
    assert_eq!(receiver.count(), 2);
    let bodies: Vec<Value> = receiver
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(
        (bodies[0]["id"].as_str(), bodies[1]["id"].as_str()),
        (Some(id.as_str()), Some(id.as_str()))
    );
    assert!(rec.drain().is_empty(), "the duplicate ran a handler");

    // A fresh id: a new entry that names its origin, and a run.
    let (status, fresh) = post(
        format!("{base}/hub/events/{id}/resend"),
        r#"{"fresh": true}"#,
    )
    .await;
    assert_eq!(status, 202, "{fresh}");
    let fresh_id = fresh["id"].as_str().unwrap().to_owned();
    assert_ne!(fresh_id, id);
    assert_eq!(
        (
            fresh["resent_from"].as_str(),
            fresh["fresh"].as_bool(),
            fresh["published"]["id"].as_str()
        ),
        (Some(id.as_str()), Some(true), Some(fresh_id.as_str()))
    );
    let ran = rec.next().await;
    assert_eq!(ran.event.event_id, fresh_id);
    assert_eq!(ran.event.payload["text"], "hello");
    assert_eq!(ran.event.user_id, "alice");
    let copy = event_until(&hub, &fresh_id, "the copy's delivery", |e| {
        e["status"] == "delivered"
    })
    .await;
    assert_eq!(copy["resent_from"], id.as_str());
    assert_eq!(handle.dispatcher().stats().duplicates, 1);
    let (_, list) = get(format!("{base}/hub/events")).await;
    assert_eq!(
        ids(&list),
        vec![fresh_id.clone(), id.clone()],
        "newest first"
    );

    // Bad resends.
    let (status, body) = post(format!("{base}/hub/events/{id}/resend?fresh=maybe"), "").await;
    assert_eq!(status, 400);
    assert!(
        error_message(&body).contains("fresh: `maybe` is not true or false"),
        "{body}"
    );
    let (status, body) = post(format!("{base}/hub/events/{id}/resend"), "[1]").await;
    assert_eq!(status, 400);
    assert!(error_message(&body).contains("JSON object"), "{body}");
    let (status, _) = post(format!("{base}/hub/events/evt_nope/resend"), "").await;
    assert_eq!(status, 404);

    handle.shutdown().await.unwrap();
    hub.shutdown().await;
}

#[tokio::test]
async fn a_failed_delivery_and_no_subscribers_are_statuses_and_the_log_is_bounded() {
    let delivery = DeliveryConfig {
        max_attempts: 1,
        timeout: Duration::from_secs(2),
        ..DeliveryConfig::default()
    };
    let hub = Hub::builder()
        .delivery(delivery)
        .event_log(EventLogConfig {
            capacity: 2,
            ..EventLogConfig::default()
        })
        .start()
        .await
        .unwrap();
    let lonely = hub
        .publish_payload("GITHUB_STAR_ADDED_EVENT", json!({}))
        .unwrap();
    assert_eq!(
        hub.event(&lonely.id).unwrap().status,
        listener_hub::EventStatus::NoSubscribers
    );

    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    hub.subscribe_webhook(&url, None);
    let failed = hub
        .publish_payload("GITHUB_STAR_ADDED_EVENT", json!({}))
        .unwrap();
    let event = event_until(&hub, &failed.id, "the failed attempt", |e| {
        e["status"] == "failed"
    })
    .await;
    let a = &event["sends"][0]["webhooks"][0];
    assert_eq!(
        (a["outcome"].as_str(), a["status"].as_u64()),
        (Some("failed"), None)
    );
    assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");

    hub.publish_payload("GITHUB_STAR_ADDED_EVENT", json!({}))
        .unwrap();
    let (_, list) = get(format!("{}/hub/events", hub.base_url())).await;
    assert_eq!(
        (list["kept"].as_u64(), list["capacity"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(hub.event(&lonely.id).is_none(), "the oldest was dropped");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_announces_events_and_listeners_and_ends_with_the_hub() {
    let hub = Hub::builder().start().await.unwrap();
    let base = hub.base_url();
    let http = listener_e2e::http::client();
    let stream = http.get(format!("{base}/hub/stream")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = Box::pin(stream.bytes_stream());
    let mut text = String::new();
    read_until(&mut body, &mut text, "event: ready").await;
    let published = hub
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "live"}))
        .unwrap();
    read_until(
        &mut body,
        &mut text,
        &format!("\"id\":\"{}\"", published.id),
    )
    .await;
    assert!(text.contains("event: event"), "{text}");

    let rec = Recorder::new();
    let handle = listen(&hub, &rec).await;
    read_until(&mut body, &mut text, "event: connections").await;
    let (status, connections) = get(format!("{base}/hub/connections")).await;
    assert_eq!(status, 200);
    let items = connections["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{connections}");
    assert_eq!(
        items[0]["socket_id"],
        hub.connections()[0].socket_id.as_str()
    );
    assert_eq!(items[0]["channels"], json!([hub.channel()]));

    // Subscriptions are listed with a prefix of their secret, never the secret.
    let sub = hub.subscribe_webhook("http://127.0.0.1:9/hook", None);
    let r = http
        .get(format!("{base}/hub/subscriptions"))
        .send()
        .await
        .unwrap();
    let raw = r.text().await.unwrap();
    assert!(!raw.contains(&sub.secret), "{raw}");
    let subs: Value = serde_json::from_str(&raw).unwrap();
    let prefix = subs["items"][0]["secret_prefix"].as_str().unwrap();
    assert!(
        prefix.ends_with('…') && sub.secret.starts_with(prefix.trim_end_matches('…')),
        "{prefix}"
    );

    // The page: served with its assets and a policy forbidding inline script.
    let page = http.get(format!("{base}/hub/ui")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("/hub/ui/app.js"));
    for asset in ["app.js", "app.css"] {
        let r = http
            .get(format!("{base}/hub/ui/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.headers()["location"], "/hub/ui");

    // An open feed does not hold the hub's shutdown.
    handle.shutdown().await.unwrap();
    within(
        "the hub to shut down with a feed client connected",
        hub.shutdown(),
    )
    .await;
}
