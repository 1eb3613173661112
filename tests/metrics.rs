//! The admin endpoint: `/metrics` scraped over HTTP while a listener runs and read with
//! Prometheus' reference Python parser (its counters are what was sent, failed and
//! dropped), and `/readyz` following a source through a reconnect.

use std::net::SocketAddr;
use std::time::Duration;

use listener_core::source::websocket::WebSocketSource;
use listener_core::webhook::{signed_headers, WebhookSecret};
use listener_core::{Backoff, Filter, Handler, Listener, ListenerHandle, Meta};
use listener_e2e::prometheus::{self, Scrape};
use listener_e2e::wait::{until, within, DEADLINE};
use listener_e2e::webhook::{now, Server, SECRET};
use listener_e2e::ws_server::WsServer;
use serde_json::{json, Value};

fn v3(id: &str, slug: &str) -> String {
    json!({
        "id": id, "type": "composio.trigger.message", "timestamp": "2026-01-01T00:00:00Z",
        "metadata": {"trigger_slug": slug, "user_id": "default"},
        "data": {"n": 1}
    })
    .to_string()
}

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        ..Backoff::default()
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn get(http: &reqwest::Client, admin: SocketAddr, path: &str) -> (u16, String) {
    let response = http
        .get(format!("http://{admin}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Polls `/readyz` every 10 ms until it answers `status`, within the test deadline; returns
/// the body.
async fn readyz_until(http: &reqwest::Client, admin: SocketAddr, status: u16) -> Value {
    within(&format!("/readyz to answer {status}"), async {
        loop {
            let (code, body) = get(http, admin, "/readyz").await;
            if code == status {
                return serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("/readyz body is not JSON ({e}): {body}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

fn source_named(handle: &ListenerHandle, prefix: &str) -> String {
    handle
        .health()
        .into_iter()
        .map(|s| s.name)
        .find(|n| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no source named {prefix}…"))
}

#[tokio::test]
async fn metrics_scraped_and_parsed_count_what_was_sent_failed_and_dropped() {
    let Some(python) = prometheus::parser() else {
        return;
    };
    let mut ws = WsServer::start().await;
    let webhook = Server::bind(&[SECRET]);
    let webhook_url = format!("http://{}/webhook", webhook.local_addr());
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(WebSocketSource::new(ws.url()).unwrap())
        .source(webhook)
        .handler(Handler::new(
            "metrics_ok",
            Filter::new().name("METRICS_OK"),
            |_: Meta| async {},
        ))
        .handler(
            Handler::new(
                "metrics_failing",
                Filter::new().name("METRICS_FAIL"),
                |_: Meta| async { Err::<(), _>("refused on purpose") },
            )
            // Each failing event is attempted twice: 2 runs and 1 retry counted per event.
            .retries(1)
            .retry_delay(Duration::from_millis(1)),
        )
        .handler(Handler::new(
            "metrics_slow",
            Filter::new().name("METRICS_SLOW"),
            |_: Meta| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
            },
        ))
        .handler_timeout(Duration::from_millis(200))
        .admin(loopback())
        .build()
        .unwrap()
        .spawn();
    let admin = handle.admin_addr().expect("the admin endpoint is on");
    let http = listener_e2e::http::client();
    readyz_until(&http, admin, 200).await;
    let ws_name = source_named(&handle, "websocket ");
    let webhook_name = source_named(&handle, "webhook ");

    // Over the websocket: 4 events run fine and 2 of them come again (duplicates), 3 fail,
    // 1 times out, 1 matches no handler, 2 frames are not events.
    let mut conn = ws.accept().await;
    for id in ["ok-1", "ok-2", "ok-3", "ok-4", "ok-1", "ok-2"] {
        conn.send_text(v3(id, "METRICS_OK")).await;
    }
    for id in ["fail-1", "fail-2", "fail-3"] {
        conn.send_text(v3(id, "METRICS_FAIL")).await;
    }
    conn.send_text(v3("slow-1", "METRICS_SLOW")).await;
    conn.send_text(v3("nobody-1", "METRICS_NOBODY")).await;
    conn.send_text("this is not json").await;
    conn.send_text("[1, 2, 3]").await;
    // The webhook's duplicate must come second: wait until the websocket's events are in.
    until("the websocket's 11 events to be dispatched", || {
        handle.dispatcher().stats().events >= 11
    })
    .await;

    // Over the webhook: 2 fresh deliveries, 1 badly signed (401), 1 replayed delivery
    // (acknowledged, not dispatched), 1 new delivery whose id (a delivery's `webhook-id` is
    // its event id) is one the websocket brought: dispatched, dropped as a duplicate.
    let post = |webhook_id: &str, event_id: &str, secret: &str| {
        let body = v3(event_id, "METRICS_OK").into_bytes();
        let headers = signed_headers(&WebhookSecret::new(secret), webhook_id, now(), &body);
        let mut request = http
            .post(&webhook_url)
            .header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(k, v);
        }
        async move { request.body(body).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post("msg_1", "wh-1", SECRET).await, 200);
    assert_eq!(post("msg_2", "wh-2", SECRET).await, 200);
    assert_eq!(post("msg_3", "wh-3", "whsec_d3Jvbmctc2VjcmV0").await, 401);
    assert_eq!(post("msg_1", "wh-1", SECRET).await, 200);
    assert_eq!(post("ok-1", "wh-4", SECRET).await, 200);

    // Everything has been counted once the last run's outcome is (the slow one's, after
    // its timeout): scrape until then.
    // (Handlers are this test's own, so the other tests of this binary, which share the
    // process's recorder, do not add to these counts.)
    let scrape = within("every run to be counted", async {
        loop {
            let (code, text) = get(&http, admin, "/metrics").await;
            assert_eq!(code, 200, "{text}");
            let scrape = prometheus::parse(&python, &text).await;
            let runs = "listener_handler_runs_total";
            let timed_out = scrape.sum(runs, &[("handler", "metrics_slow")]);
            let decode = scrape.sum("listener_decode_failures_total", &[]);
            if timed_out >= 1.0 && scrape.sum(runs, &[]) >= 13.0 && decode >= 2.0 {
                eprintln!("{text}");
                return scrape;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    assert_counts(&scrape, &ws_name, &webhook_name);
    within("shutdown", handle.shutdown()).await.unwrap();
}

fn assert_counts(scrape: &Scrape, ws: &str, webhook: &str) {
    let value = |name: &str, labels: &[(&str, &str)]| scrape.value(name, labels).unwrap_or(0.0);
    for (family, kind) in [
        ("listener_events_received", "counter"),
        ("listener_duplicates_dropped", "counter"),
        ("listener_decode_failures", "counter"),
        ("listener_handler_runs", "counter"),
        ("listener_handler_duration_seconds", "histogram"),
        ("listener_handler_in_flight", "gauge"),
        ("listener_source_health", "gauge"),
        ("listener_webhook_responses", "counter"),
    ] {
        assert_eq!(scrape.kind(family), Some(kind), "{family}");
    }

    let received = "listener_events_received_total";
    for (source, slug, n) in [
        (ws, "METRICS_OK", 6.0),
        (ws, "METRICS_FAIL", 3.0),
        (ws, "METRICS_SLOW", 1.0),
        (ws, "METRICS_NOBODY", 1.0),
        (webhook, "METRICS_OK", 3.0),
    ] {
        let labels = [("source", source), ("trigger_slug", slug)];
        assert_eq!(value(received, &labels), n, "{received}{labels:?}");
    }
    assert_eq!(
        scrape.sum(received, &[("source", ws)]) + scrape.sum(received, &[("source", webhook)]),
        14.0
    );

    let dropped = "listener_duplicates_dropped_total";
    assert_eq!(
        value(dropped, &[("source", ws), ("trigger_slug", "METRICS_OK")]),
        2.0
    );
    assert_eq!(
        value(
            dropped,
            &[("source", webhook), ("trigger_slug", "METRICS_OK")]
        ),
        1.0
    );
    assert_eq!(
        scrape.sum(dropped, &[("source", ws)]) + scrape.sum(dropped, &[("source", webhook)]),
        3.0
    );

    let decode = "listener_decode_failures_total";
    assert_eq!(
        value(decode, &[("source", ws), ("error", "invalid_json")]),
        1.0
    );
    assert_eq!(
        value(decode, &[("source", ws), ("error", "not_an_object")]),
        1.0
    );
    assert_eq!(scrape.sum(decode, &[("source", ws)]), 2.0);

    let runs = "listener_handler_runs_total";
    for (handler, outcome, n) in [
        ("metrics_ok", "ok", 6.0),
        ("metrics_failing", "error", 6.0),
        ("metrics_slow", "timeout", 1.0),
    ] {
        let labels = [("handler", handler), ("outcome", outcome)];
        assert_eq!(value(runs, &labels), n, "{runs}{labels:?}");
    }
    assert_eq!(scrape.sum(runs, &[]), 13.0);
    assert_eq!(
        value(
            "listener_handler_retries_total",
            &[("handler", "metrics_failing")]
        ),
        3.0
    );
    let failures: f64 = scrape
        .samples(runs, &[])
        .filter(|s| s.labels["outcome"] != "ok")
        .map(|s| s.value)
        .sum();
    assert_eq!(failures, 7.0);

    let duration = "listener_handler_duration_seconds";
    assert_eq!(
        value(&format!("{duration}_count"), &[("handler", "metrics_ok")]),
        6.0
    );
    // The timed-out run took the timeout: above 0.1 s, within 1 s.
    let slow = [("handler", "metrics_slow")];
    let bucket = |le: &str| {
        let labels = [slow[0], ("le", le)];
        value(&format!("{duration}_bucket"), &labels)
    };
    assert_eq!(
        (bucket("0.1"), bucket("1"), bucket("+Inf")),
        (0.0, 1.0, 1.0)
    );
    for handler in ["metrics_ok", "metrics_failing", "metrics_slow"] {
        assert_eq!(
            value("listener_handler_in_flight", &[("handler", handler)]),
            0.0,
            "{handler}"
        );
    }

    let health = "listener_source_health";
    for source in [ws, webhook] {
        assert_eq!(
            value(health, &[("source", source), ("state", "connected")]),
            1.0
        );
        assert_eq!(
            value(health, &[("source", source), ("state", "starting")]),
            0.0
        );
    }
    let reconnects = "listener_source_reconnects_total";
    assert_eq!(scrape.sum(reconnects, &[("source", ws)]), 0.0);

    let responses = "listener_webhook_responses_total";
    assert_eq!(
        value(responses, &[("source", webhook), ("status", "200")]),
        4.0
    );
    assert_eq!(
        value(responses, &[("source", webhook), ("status", "401")]),
        1.0
    );
    assert_eq!(scrape.sum(responses, &[("source", webhook)]), 5.0);
}

#[tokio::test]
async fn readyz_is_503_while_a_source_reconnects_and_200_after() {
    let mut ws = WsServer::start().await;
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(
            WebSocketSource::new(ws.url())
                .unwrap()
                .backoff(fast_backoff()),
        )
        .admin(loopback())
        .build()
        .unwrap()
        .spawn();
    let admin = handle.admin_addr().expect("the admin endpoint is on");
    let http = listener_e2e::http::client();
    let (code, body) = get(&http, admin, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, r#"{"status":"live"}"#));

    let conn = ws.accept().await;
    let ready = readyz_until(&http, admin, 200).await;
    let name = source_named(&handle, "websocket ");
    assert_eq!(
        ready,
        json!({"status": "ready", "sources": [{"name": name, "health": "connected", "ready": true}]})
    );
    assert!(handle.is_ready());

    // The server goes away: the source reconnects, and is refused, until it is back.
    let addr = ws.stop().await;
    drop(conn);
    let down = readyz_until(&http, admin, 503).await;
    assert_eq!(down["status"], "not_ready", "{down}");
    let source = &down["sources"][0];
    assert_eq!(source["name"], name.as_str(), "{down}");
    assert_eq!(source["health"], "reconnecting", "{down}");
    assert_eq!(source["ready"], false, "{down}");
    assert!(source["attempt"].as_u64().is_some_and(|n| n >= 1), "{down}");
    assert!(
        source["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    assert!(!handle.is_ready());

    let mut ws = WsServer::start_on(addr).await;
    let _conn = ws.accept().await;
    let back = readyz_until(&http, admin, 200).await;
    assert_eq!(back["sources"][0]["health"], "connected", "{back}");

    // The reconnects were counted.
    let (_, text) = get(&http, admin, "/metrics").await;
    let reconnects = text
        .lines()
        .find(|l| l.starts_with("listener_source_reconnects_total{") && l.contains(&name))
        .unwrap_or_else(|| panic!("no reconnect count in:\n{text}"));
    let count: f64 = reconnects.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{reconnects}");

    // The endpoint stops with the listener.
    within("shutdown", handle.shutdown()).await.unwrap();
    let refused = tokio::time::timeout(DEADLINE, tokio::net::TcpStream::connect(admin)).await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "the admin endpoint still accepts connections after shutdown"
    );
}

#[tokio::test]
async fn an_admin_address_in_use_is_a_configuration_error() {
    let taken = std::net::TcpListener::bind(loopback()).unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = Listener::from_lookup(&|key| match key {
        "LISTENER_WS_URL" => Some("ws://127.0.0.1:9/".into()),
        "LISTENER_ADMIN_ADDR" => Some(addr.clone()),
        _ => None,
    })
    .unwrap()
    .without_registered_handlers()
    .build()
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "invalid configuration `LISTENER_ADMIN_ADDR`: the admin endpoint cannot listen on {addr}: "
        )),
        "{text}"
    );

    let err = Listener::from_lookup(&|key| match key {
        "LISTENER_WS_URL" => Some("ws://127.0.0.1:9/".into()),
        "LISTENER_ADMIN_ADDR" => Some("localhost".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("`LISTENER_ADMIN_ADDR`"), "{err}");
}
