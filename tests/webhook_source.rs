//! The webhook source through a real HTTP server: every rejection path (nothing dispatched),
//! a stalled body, replay protection (sequential, captured and concurrent), secret rotation,
//! lifecycle events reaching `#[on_trigger]` handlers, saturation, graceful shutdown,
//! acknowledging after handlers (a retry during the first attempt, a retry after a failure),
//! and the hub's webhook subscriptions delivering to it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listener_core::webhook::{signed_headers, AckPolicy, WebhookSecret};
use listener_core::{Filter, Handler, Listener, TriggerEvent};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use listener_e2e::webhook::{now, v3_body, Server, SECRET};
use listener_hub::Hub;

/// Beyond the 300 s tolerance, with a margin so the clock ticking while the test runs cannot
/// bring a timestamp back inside it (the exact ±301 s boundary is a unit test of the
/// verifier, with a fixed clock).
const OUTSIDE_TOLERANCE: i64 = 300 + 60;

/// A request to send and the status it must get: (what, headers, body, status).
type Case = (&'static str, Vec<(&'static str, String)>, Vec<u8>, u16);

fn headers_for(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    signed_headers(&WebhookSecret::new(secret), id, ts, body)
        .into_iter()
        .collect()
}

fn replace(headers: &mut [(&'static str, String)], name: &str, value: &str) {
    headers.iter_mut().find(|(k, _)| *k == name).unwrap().1 = value.to_owned();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_requests_get_the_right_status_and_nothing_is_dispatched() {
    let mut rec = Recorder::new();
    let server = Server::plain(&rec);
    let body = v3_body("evt_1");
    let ts = now();

    // The control: a valid delivery is accepted and dispatched.
    let good = headers_for(SECRET, "msg_good", ts, &body);
    assert_eq!(server.post(&good, body.clone()).await.0, 200);
    assert_eq!(rec.next().await.event.event_id, "msg_good");

    let mut cases: Vec<Case> = Vec::new();
    let mut tampered_body = body.clone();
    tampered_body[5] = b'X';
    cases.push((
        "tampered body",
        headers_for(SECRET, "msg_a", ts, &body),
        tampered_body,
        401,
    ));
    let mut h = headers_for(SECRET, "msg_b", ts, &body);
    replace(&mut h, "webhook-id", "msg_b2");
    cases.push(("tampered id", h, body.clone(), 401));
    let mut h = headers_for(SECRET, "msg_c", ts, &body);
    replace(&mut h, "webhook-timestamp", &(ts + 1).to_string());
    cases.push(("tampered timestamp", h, body.clone(), 401));
    let mut h = headers_for(SECRET, "msg_d", ts, &body);
    replace(
        &mut h,
        "webhook-signature",
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    cases.push(("tampered signature", h, body.clone(), 401));
    cases.push((
        "stale",
        headers_for(SECRET, "msg_e", ts - OUTSIDE_TOLERANCE, &body),
        body.clone(),
        401,
    ));
    cases.push((
        "future",
        headers_for(SECRET, "msg_f", ts + OUTSIDE_TOLERANCE, &body),
        body.clone(),
        401,
    ));
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let h: Vec<_> = headers_for(SECRET, "msg_g", ts, &body)
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect();
        cases.push(("missing header", h, body.clone(), 401));
    }
    cases.push((
        "wrong secret",
        headers_for("whsec_other", "msg_h", ts, &body),
        body.clone(),
        401,
    ));
    cases.push((
        "empty body",
        headers_for(SECRET, "msg_i", ts, b""),
        Vec::new(),
        401,
    ));
    let invalid = b"{not json".to_vec();
    cases.push((
        "invalid JSON",
        headers_for(SECRET, "msg_j", ts, &invalid),
        invalid,
        400,
    ));
    let unknown = br#"{"hello":"world"}"#.to_vec();
    cases.push((
        "unknown envelope",
        headers_for(SECRET, "msg_k", ts, &unknown),
        unknown,
        400,
    ));
    let mut h = headers_for(SECRET, "msg_l", ts, &body);
    h.push(("x-composio-webhook-version", "V1".into()));
    cases.push(("version header disagrees", h, body.clone(), 400));
    let big = vec![b' '; 2 << 20];
    cases.push((
        "2 MiB body",
        headers_for(SECRET, "msg_m", ts, &big),
        big,
        413,
    ));

    for (what, headers, body, want) in cases {
        let (status, text) = server.post(&headers, body).await;
        assert_eq!(status, want, "{what}");
        if want == 401 {
            assert!(
                text.is_empty(),
                "{what}: a 401 carries no detail, got {text:?}"
            );
        }
    }
    // Wrong content type.
    let resp = server
        .http
        .post(&server.url)
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    // A 2 MiB body streamed without a content-length is cut off while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..32).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let stream = futures_util::stream::iter(chunks);
    let h = headers_for(SECRET, "msg_n", ts, b"x");
    let (status, _) = server.post(&h, reqwest::Body::wrap_stream(stream)).await;
    assert_eq!(status, 413);

    assert!(rec.drain().is_empty(), "a rejected request was dispatched");
    let stats = server.handle.dispatcher().stats();
    assert_eq!((stats.events, stats.runs), (1, 1));
    within("shutdown", server.handle.shutdown()).await.unwrap();
}

/// A body that stops arriving is answered 408 once the body timeout passes, and the
/// request is not dispatched.
#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut rec = Recorder::new();
    let source = Server::bind(&[SECRET]).body_timeout(std::time::Duration::from_millis(200));
    let server = Server::start(
        &rec,
        source,
        Listener::builder().without_registered_handlers(),
    );
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = v3_body("evt_stalled");
    let mut head = format!(
        "POST /webhook HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers_for(SECRET, "msg_stalled", now(), &body) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..body.len() / 2]).await.unwrap();
    // The rest never comes; read the answer (the connection stays open on our side).
    let mut answer = vec![0u8; 1024];
    let n = within("the 408", conn.read(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(rec.drain().is_empty());
    assert_eq!(server.handle.dispatcher().stats().events, 0);
    within("shutdown", server.handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_replayed_id_is_acknowledged_but_not_dispatched_again() {
    let mut rec = Recorder::new();
    let server = Server::plain(&rec);
    let body = v3_body("evt_r");
    assert_eq!(
        server.post_signed(SECRET, "msg_replay", &body).await,
        (200, r#"{"status":"accepted"}"#.into())
    );
    rec.next().await;
    // The sender retries (new timestamp, same id): 200, nothing runs.
    let (status, text) = server.post_signed(SECRET, "msg_replay", &body).await;
    assert_eq!((status, text.as_str()), (200, r#"{"status":"duplicate"}"#));
    // A captured request sent again as it was (same timestamp and signature): the same.
    let captured = headers_for(SECRET, "msg_captured", now(), &body);
    assert_eq!(server.post(&captured, body.clone()).await.0, 200);
    assert_eq!(rec.next().await.event.event_id, "msg_captured");
    assert_eq!(
        server.post(&captured, body.clone()).await,
        (200, r#"{"status":"duplicate"}"#.into())
    );
    // Concurrent retries: exactly one more dispatch for a fresh id. The others are told
    // it is a duplicate, or (while the first is still being handled) to retry later.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (url, http, body) = (server.url.clone(), server.http.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let h = headers_for(SECRET, "msg_race", now(), &body);
            let mut r = http.post(url).header("content-type", "application/json");
            for (k, v) in h {
                r = r.header(k, v);
            }
            let resp = r.body(body).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        let (status, text) = within("a concurrent retry", t).await.unwrap();
        match (status, text.as_str()) {
            (200, r#"{"status":"accepted"}"#) => accepted += 1,
            (200, r#"{"status":"duplicate"}"#) | (503, r#"{"status":"in_progress"}"#) => {}
            other => panic!("unexpected answer to a concurrent retry: {other:?}"),
        }
    }
    assert_eq!(accepted, 1);
    rec.next().await;
    assert!(rec.drain().is_empty());
    within("shutdown", server.handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn old_and_new_secrets_are_both_accepted_while_both_configured() {
    let mut rec = Recorder::new();
    let server = Server::start(
        &rec,
        Server::bind(&["whsec_old_secret", "whsec_new_secret"]),
        Listener::builder().without_registered_handlers(),
    );
    assert_eq!(
        server
            .post_signed("whsec_old_secret", "msg_old", &v3_body("e1"))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post_signed("whsec_new_secret", "msg_new", &v3_body("e2"))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post_signed("whsec_other_secret", "msg_x", &v3_body("e3"))
            .await
            .0,
        401
    );
    let mut ids = [
        rec.next().await.event.event_id.clone(),
        rec.next().await.event.event_id.clone(),
    ];
    ids.sort();
    assert_eq!(ids, ["msg_new".to_owned(), "msg_old".to_owned()]);
    within("shutdown", server.handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn lifecycle_events_reach_handlers_by_type_with_the_delivery_attempt() {
    let mut rec = Recorder::new();
    let source = Server::bind(&[SECRET]);
    let addr = source.local_addr();
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(rec.handler(
            "expired",
            Filter::new().name("composio.connected_account.expired"),
        ))
        .handler(rec.handler("slack", Filter::new().name("SLACK_RECEIVE_MESSAGE")))
        .build()
        .unwrap()
        .spawn();
    let body = listener_e2e::fixtures::bytes("v3_connected_account_expired.json");
    let mut h = headers_for(SECRET, "msg_life", now(), &body);
    h.push(("x-composio-webhook-version", "V3".into()));
    h.push(("x-composio-delivery-attempt", "3".into()));
    let mut r = listener_e2e::http::client()
        .post(format!("http://{addr}/webhook"))
        .header("content-type", "application/json; charset=utf-8");
    for (k, v) in h {
        r = r.header(k, v);
    }
    assert_eq!(r.body(body).send().await.unwrap().status(), 200);
    let seen = rec.next().await;
    assert_eq!(seen.handler, "expired");
    assert_eq!(seen.event.event_id, "msg_life");
    assert_eq!(seen.event.metadata.delivery_attempt, Some(3));
    assert_eq!(
        seen.event.metadata.connected_account.id,
        "ca_your-connected-account-id"
    );
    assert!(rec.drain().is_empty());
    within("shutdown", handle.shutdown()).await.unwrap();
}

/// Where the `#[on_trigger]` lifecycle handler below reports what it saw.
struct ExpiredSeen {
    tx: tokio::sync::mpsc::UnboundedSender<(String, Option<u32>, String)>,
}

/// A lifecycle event through the same macro as trigger events.
#[listener_core::on_trigger(name = "composio.connected_account.expired")]
async fn on_account_expired(meta: listener_core::Meta, seen: listener_core::State<ExpiredSeen>) {
    let ev = meta.event();
    let _ = seen.tx.send((
        ev.event_id.clone(),
        ev.metadata.delivery_attempt,
        meta.connected_account().status.clone(),
    ));
}

#[tokio::test]
async fn lifecycle_events_reach_on_trigger_handlers_by_name() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let source = Server::bind(&[SECRET]);
    let url = format!("http://{}/webhook", source.local_addr());
    let handle = Listener::builder()
        .only_registered(["on_account_expired"])
        .state(ExpiredSeen { tx })
        .source(source)
        .build()
        .unwrap()
        .spawn();
    let http = listener_e2e::http::client();
    let send = |id: &'static str, body: Vec<u8>| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let mut r = http.post(url).header("content-type", "application/json");
            for (k, v) in headers_for(SECRET, id, now(), &body) {
                r = r.header(k, v);
            }
            r = r.header("x-composio-delivery-attempt", "2");
            r.body(body).send().await.unwrap().status().as_u16()
        }
    };
    // A trigger message does not match the lifecycle handler; the lifecycle event does.
    assert_eq!(send("msg_message", v3_body("evt_m")).await, 200);
    let expired = listener_e2e::fixtures::bytes("v3_connected_account_expired.json");
    assert_eq!(send("msg_expired", expired).await, 200);
    let seen = within("the lifecycle handler", rx.recv()).await.unwrap();
    assert_eq!(
        seen,
        ("msg_expired".to_owned(), Some(2), "EXPIRED".to_owned())
    );
    let stats = within("shutdown", handle.shutdown()).await.unwrap().stats;
    assert_eq!((stats.events, stats.runs), (2, 1));
    assert!(
        rx.try_recv().is_err(),
        "the trigger message reached the lifecycle handler"
    );
}

/// Where the admin event handler below reports what it saw.
struct AddedSeen {
    tx: tokio::sync::mpsc::UnboundedSender<(
        listener_core::lifecycle::AccountAdded,
        String,
        String,
    )>,
}

/// An admin event, typed, through the macro.
#[listener_core::on_trigger(name = "connected_account.add.completed")]
async fn on_account_added(
    listener_core::Payload(added): listener_core::Payload<listener_core::lifecycle::AccountAdded>,
    meta: listener_core::Meta,
    seen: listener_core::State<AddedSeen>,
) {
    let _ = seen.tx.send((
        added,
        meta.toolkit_slug().to_owned(),
        meta.connected_account().auth_config_id.clone(),
    ));
}

#[tokio::test]
async fn a_signed_admin_event_reaches_its_handler_typed() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let source = Server::bind(&[SECRET]);
    let url = format!("http://{}/webhook", source.local_addr());
    let handle = Listener::builder()
        .only_registered(["on_account_added"])
        .state(AddedSeen { tx })
        .source(source)
        .build()
        .unwrap()
        .spawn();
    let request: serde_json::Value = serde_json::from_slice(&listener_e2e::fixtures::bytes(
        "admin_connected_account_add_start.json",
    ))
    .unwrap();
    let started = request["event"]["body"].clone();
    let mut completed = started.clone();
    completed["type"] = "connected_account.add.completed".into();
    let http = listener_e2e::http::client();
    for (id, body) in [("msg_add_start", started), ("msg_add_done", completed)] {
        let body = body.to_string().into_bytes();
        let mut r = http
            .post(&url)
            .header("content-type", "application/json")
            // Admin events are taken whatever version the webhook announces.
            .header("x-composio-webhook-version", "V3");
        for (k, v) in headers_for(SECRET, id, now(), &body) {
            r = r.header(k, v);
        }
        assert_eq!(r.body(body).send().await.unwrap().status(), 200, "{id}");
    }
    let (added, toolkit, integration) = within("the admin handler", rx.recv()).await.unwrap();
    assert_eq!(added.app_name, "slack");
    assert_eq!(added.integration_name, "slack_worthy_cyan");
    assert_eq!(added.integration_id, "dummy-integration-id-12345");
    assert_eq!(
        added.connected_account_id,
        "dummy-connected-account-id-67890"
    );
    assert_eq!(added.body, serde_json::json!({}));
    assert_eq!(
        (toolkit.as_str(), integration.as_str()),
        ("SLACK", "dummy-integration-id-12345")
    );
    let stats = within("shutdown", handle.shutdown()).await.unwrap().stats;
    // Both were dispatched; only the completed one matched.
    assert_eq!((stats.events, stats.runs), (2, 1));
    assert!(rx.try_recv().is_err());
}

/// With acknowledgement after handlers, a retry arriving while the first delivery of its id
/// is still being handled is told to come back (503): answering "duplicate" would lose the
/// event if the first attempt then failed. Once it failed, the retry is dispatched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_during_the_first_attempt_is_told_to_come_back() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let (g, r) = (gate.clone(), runs.clone());
    let source = Server::bind(&[SECRET]).ack(AckPolicy::AfterHandlers);
    let url = format!("http://{}/webhook", source.local_addr());
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(Handler::new(
            "slow_then_flaky",
            Filter::new(),
            move |_: Arc<TriggerEvent>| {
                let (gate, n) = (g.clone(), r.fetch_add(1, Ordering::SeqCst));
                async move {
                    let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        Err("the first attempt fails".to_owned())
                    } else {
                        Ok(())
                    }
                }
            },
        ))
        .build()
        .unwrap()
        .spawn();
    let http = listener_e2e::http::client();
    let post = || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body = v3_body("evt_slow");
            let mut r = http.post(url).header("content-type", "application/json");
            for (k, v) in headers_for(SECRET, "msg_slow", now(), &body) {
                r = r.header(k, v);
            }
            let resp = r.body(body).send().await.unwrap();
            let retry_after = resp.headers().contains_key("retry-after");
            (
                resp.status().as_u16(),
                retry_after,
                resp.text().await.unwrap(),
            )
        }
    };
    let first = tokio::spawn(post());
    until("the first attempt to start", || {
        runs.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(
        post().await,
        (503, true, r#"{"status":"in_progress"}"#.to_owned())
    );
    gate.add_permits(1);
    assert_eq!(within("the first attempt", first).await.unwrap().0, 500);
    gate.add_permits(1);
    assert_eq!(
        post().await.0,
        200,
        "the retry after the failure runs again"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(post().await.2, r#"{"status":"duplicate"}"#);
    within("shutdown", handle.shutdown()).await.unwrap();
}

/// A handler held on a gate, counting runs.
fn gated(gate: Arc<tokio::sync::Semaphore>, runs: Arc<AtomicUsize>) -> Handler {
    Handler::new("gated", Filter::new(), move |_: Arc<TriggerEvent>| {
        let (gate, runs) = (gate.clone(), runs.clone());
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let _ = gate.acquire().await.unwrap();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_dispatcher_answers_503_with_retry_after() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let source = Server::bind(&[SECRET]);
    let url = format!("http://{}/webhook", source.local_addr());
    let handle = Listener::builder()
        .without_registered_handlers()
        .max_in_flight(1)
        .source(source)
        .handler(gated(gate.clone(), runs.clone()))
        .build()
        .unwrap()
        .spawn();
    let http = listener_e2e::http::client();
    let post = |id: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body = v3_body(id);
            let mut r = http.post(url).header("content-type", "application/json");
            for (k, v) in headers_for(SECRET, id, now(), &body) {
                r = r.header(k, v);
            }
            r.body(body).send().await.unwrap()
        }
    };
    // The first delivery takes the only slot and holds it.
    assert_eq!(post("msg_1").await.status(), 200);
    until("the dispatcher to be saturated", || {
        handle.dispatcher().is_saturated()
    })
    .await;
    let resp = post("msg_2").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    until("the first run to start", || {
        runs.load(Ordering::SeqCst) == 1
    })
    .await;
    // Refused while saturated means not remembered: the retry is accepted later.
    gate.add_permits(100);
    until("the dispatcher to drain", || {
        handle.dispatcher().in_flight() == 0
    })
    .await;
    assert_eq!(post("msg_2").await.status(), 200);
    until("the retry to run", || runs.load(Ordering::SeqCst) == 2).await;
    within("shutdown", handle.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_ones() {
    let rec = Recorder::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let server = Server::start(
        &rec,
        Server::bind(&[SECRET]).ack(AckPolicy::AfterHandlers),
        Listener::builder()
            .without_registered_handlers()
            .handler(gated(gate.clone(), runs.clone())),
    );
    let (url, http) = (server.url.clone(), server.http.clone());
    let in_flight = tokio::spawn(async move {
        let body = v3_body("e1");
        let mut r = http.post(url).header("content-type", "application/json");
        for (k, v) in headers_for(SECRET, "msg_slow", now(), &body) {
            r = r.header(k, v);
        }
        r.body(body).send().await.unwrap().status().as_u16()
    });
    until("the slow handler to start", || {
        runs.load(Ordering::SeqCst) == 1
    })
    .await;
    let dispatcher = server.handle.dispatcher().clone();
    let shutdown = tokio::spawn(server.handle.shutdown());
    until("shutdown to begin", || dispatcher.is_closed()).await;

    // A new request while draining: 503 with Retry-After.
    let body = v3_body("e2");
    let mut r = server
        .http
        .post(&server.url)
        .header("content-type", "application/json");
    for (k, v) in headers_for(SECRET, "msg_new", now(), &body) {
        r = r.header(k, v);
    }
    let resp = r.body(body).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503, "healthz says it is no longer serving");
    assert!(!in_flight.is_finished());

    gate.add_permits(1);
    assert_eq!(
        within("the in-flight request", in_flight).await.unwrap(),
        200
    );
    within("shutdown", shutdown).await.unwrap().unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "nothing new ran after shutdown began"
    );
}

#[tokio::test]
async fn acknowledging_after_handlers_lets_the_sender_retry_failures() {
    let rec = Recorder::new();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let server = Server::start(
        &rec,
        Server::bind(&[SECRET]).ack(AckPolicy::AfterHandlers),
        Listener::builder()
            .without_registered_handlers()
            .handler(Handler::new(
                "flaky",
                Filter::new(),
                move |_: Arc<TriggerEvent>| {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n == 0 {
                            Err("first try fails")
                        } else {
                            Ok(())
                        }
                    }
                },
            )),
    );
    let body = v3_body("e1");
    assert_eq!(
        server.post_signed(SECRET, "msg_retry", &body).await,
        (500, r#"{"status":"handler_failed"}"#.into())
    );
    // The sender's retry of the same id runs again and succeeds.
    assert_eq!(
        server.post_signed(SECRET, "msg_retry", &body).await,
        (200, r#"{"status":"processed"}"#.into())
    );
    // Once processed, a further retry is a duplicate.
    assert_eq!(
        server.post_signed(SECRET, "msg_retry", &body).await.1,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    within("shutdown", server.handle.shutdown()).await.unwrap();
}

/// The hub's webhook subscription delivers signed requests to the webhook source, which
/// verifies and dispatches them (the subscription's secret, used Composio's way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_delivers_to_the_webhook_source() {
    let hub = Hub::builder().start().await.unwrap();
    let mut rec = Recorder::new();
    // Bind first to learn the URL, then subscribe, then configure the source with the
    // subscription's secret.
    let probe = Server::bind(&["placeholder"]);
    let addr = probe.local_addr();
    drop(probe);
    let sub = hub.subscribe_webhook(&format!("http://{addr}/webhook"), None);
    let source = listener_core::webhook::WebhookSource::bind(
        addr,
        vec![WebhookSecret::new(sub.secret.clone())],
    )
    .unwrap();
    let server = Server::start(
        &rec,
        source,
        Listener::builder().without_registered_handlers(),
    );
    let published = hub
        .publish_payload(
            "SLACK_RECEIVE_MESSAGE",
            serde_json::json!({"text": "via webhook"}),
        )
        .unwrap();
    assert_eq!(published.webhooks, 1);
    let seen = rec.next().await;
    assert_eq!(seen.event.payload["text"], "via webhook");
    assert_eq!(seen.event.metadata.delivery_attempt, Some(1));
    assert!(seen.event.event_id.starts_with("msg_"));
    until("the hub to log the delivery", || {
        hub.deliveries().iter().any(|d| d.outcome == "delivered")
    })
    .await;
    within("shutdown", server.handle.shutdown()).await.unwrap();
    hub.shutdown().await;
}

/// With acknowledgement after handlers, a handler with `retries = 1` whose first attempt
/// fails: the sender gets 200 (answered after the second attempt succeeded); one that
/// fails both attempts gets 500 only after its second attempt ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_handlers_a_retried_handler_answers_after_its_last_attempt() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let a = attempts.clone();
    let source = Server::bind(&[SECRET]).ack(AckPolicy::AfterHandlers);
    let url = format!("http://{}/webhook", source.local_addr());
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(
            Handler::new(
                "retried",
                Filter::new(),
                move |meta: listener_core::Meta| {
                    a.lock()
                        .unwrap()
                        .push((meta.event_id().to_owned(), meta.attempt()));
                    async move {
                        // `evt_once` fails once; `evt_never` every time.
                        if meta.attempt() == 1 || meta.event_id() == "msg_never" {
                            Err(format!("attempt {} failed", meta.attempt()))
                        } else {
                            Ok(())
                        }
                    }
                },
            )
            .retries(1)
            .retry_delay(Duration::from_millis(5)),
        )
        .build()
        .unwrap()
        .spawn();
    let http = listener_e2e::http::client();
    let post = |msg_id: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body = v3_body(msg_id);
            let mut r = http.post(url).header("content-type", "application/json");
            for (k, v) in headers_for(SECRET, msg_id, now(), &body) {
                r = r.header(k, v);
            }
            r.body(body).send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(within("the flaky delivery", post("msg_once")).await, 200);
    assert_eq!(within("the failing delivery", post("msg_never")).await, 500);
    assert_eq!(
        *attempts.lock().unwrap(),
        [
            ("msg_once".to_owned(), 1),
            ("msg_once".to_owned(), 2),
            ("msg_never".to_owned(), 1),
            ("msg_never".to_owned(), 2),
        ]
    );
    within("shutdown", handle.shutdown()).await.unwrap();
}
