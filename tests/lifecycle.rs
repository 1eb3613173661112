//! Listener lifecycle: shutdown drains handlers and refuses new events, sources ending or
//! failing end the listener with the right result, configuration from the environment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listener_core::dispatch::Dispatched;
use listener_core::source::Health;
use listener_core::source::SourceError;
use listener_core::ConfigError;
use listener_core::{
    Error, Failure, Filter, Handler, Listener, ListenerBuilder, StopReason, TriggerEvent,
};
use listener_e2e::record::Recorder;
use listener_e2e::source::{ChannelSource, Feed};
use listener_e2e::wait::{until, within};
use serde_json::json;

fn builder() -> ListenerBuilder {
    Listener::builder().without_registered_handlers()
}

fn event(id: &str) -> TriggerEvent {
    TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({})).with_event_id(id)
}

/// A handler that signals when it starts and finishes only when the gate opens.
fn gated(
    started: tokio::sync::mpsc::UnboundedSender<String>,
    gate: Arc<tokio::sync::Notify>,
    finished: Arc<AtomicBool>,
) -> Handler {
    Handler::new("slow", Filter::new(), move |ev: Arc<TriggerEvent>| {
        let (started, gate, finished) = (started.clone(), gate.clone(), finished.clone());
        async move {
            let _ = started.send(ev.event_id.clone());
            gate.notified().await;
            finished.store(true, Ordering::SeqCst);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_slow_handler_and_dispatches_nothing_new() {
    let (source, mut feeder) = ChannelSource::new("feed");
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let gate = Arc::new(tokio::sync::Notify::new());
    let finished = Arc::new(AtomicBool::new(false));
    let handle = builder()
        .source(source)
        .handler(gated(started_tx, gate.clone(), finished.clone()))
        .drain_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .spawn();

    feeder.send(event("before"));
    assert_eq!(
        feeder.result().await.unwrap(),
        Dispatched::Accepted { handlers: 1 }
    );
    assert_eq!(
        within("the slow handler to start", started.recv())
            .await
            .unwrap(),
        "before"
    );

    let dispatcher = handle.dispatcher().clone();
    let shutdown = tokio::spawn(handle.shutdown());
    until("shutdown to begin", || dispatcher.is_closed()).await;

    // Nothing new is dispatched once shutdown began.
    assert!(matches!(
        dispatcher.dispatch(event("after")).await,
        Err(Error::ShuttingDown)
    ));
    assert!(
        !shutdown.is_finished(),
        "shutdown returned while a handler was running"
    );
    assert!(!finished.load(Ordering::SeqCst));

    gate.notify_one();
    let stopped = within("shutdown", shutdown).await.unwrap().unwrap();
    assert_eq!(stopped.reason, StopReason::Requested);
    assert!(
        finished.load(Ordering::SeqCst),
        "shutdown returned before the handler finished"
    );
    assert_eq!(stopped.stats.runs, 1);
    assert!(
        started.try_recv().is_err(),
        "a handler started after shutdown"
    );
}

#[tokio::test]
async fn the_drain_deadline_bounds_shutdown() {
    let (source, mut feeder) = ChannelSource::new("feed");
    let handle = builder()
        .source(source)
        .handler(Handler::new(
            "stuck",
            Filter::new(),
            |_: Arc<TriggerEvent>| std::future::pending::<()>(),
        ))
        .drain_timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .spawn();
    feeder.send(event("e"));
    feeder.result().await.unwrap();
    match within("shutdown", handle.shutdown()).await {
        Err(Error::DrainTimeout { pending, deadline }) => {
            assert!(pending >= 1);
            assert_eq!(deadline, Duration::from_millis(100));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sources_finishing_end_the_listener_cleanly() {
    let mut rec = Recorder::new();
    let (source, mut feeder) = ChannelSource::new("finite");
    let listener = builder()
        .source(source)
        .handler(rec.handler("h", Filter::new()))
        .build()
        .unwrap();
    feeder.send(event("one"));
    feeder.tx.send(Feed::Finish).unwrap();
    let stopped = within("the listener", listener.wait_forever())
        .await
        .unwrap();
    assert_eq!(stopped.reason, StopReason::SourcesFinished);
    assert_eq!(rec.next().await.event.event_id, "one");
    assert_eq!(
        feeder.result().await.unwrap(),
        Dispatched::Accepted { handlers: 1 }
    );
}

#[tokio::test]
async fn a_failed_source_ends_wait_forever_with_its_error_once_all_are_done() {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = failures.clone();
    let (bad, bad_feed) = ChannelSource::new("bad");
    let (good, good_feed) = ChannelSource::new("good");
    let handle = builder()
        .source(bad)
        .source(good)
        .on_error(move |f| seen.lock().unwrap().push(f.to_string()))
        .build()
        .unwrap()
        .spawn();
    bad_feed
        .tx
        .send(Feed::Fail("credentials rejected".into()))
        .unwrap();
    until("the bad source to be marked failed", || {
        handle
            .health()
            .iter()
            .any(|s| s.name == "bad" && matches!(s.health, Health::Failed(_)))
    })
    .await;
    // The other source keeps the listener alive until it ends too.
    assert!(!handle.is_finished());
    good_feed.tx.send(Feed::Finish).unwrap();
    match within("the listener", handle.join()).await {
        Err(Error::Source(SourceError::Failed {
            source_name,
            message,
        })) => {
            assert_eq!(source_name, "bad");
            assert_eq!(message, "credentials rejected");
        }
        other => panic!("{other:?}"),
    }
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("failed for good") && failures[0].contains("credentials rejected")
    );
}

#[tokio::test]
async fn every_source_failing_reports_all_errors() {
    let (a, fa) = ChannelSource::new("a");
    let (b, fb) = ChannelSource::new("b");
    let listener = builder().source(a).source(b).build().unwrap();
    fa.tx.send(Feed::Fail("a broke".into())).unwrap();
    fb.tx.send(Feed::Fail("b broke".into())).unwrap();
    match within("the listener", listener.wait_forever()).await {
        Err(e @ Error::AllSourcesFailed(_)) => {
            let text = e.to_string();
            assert!(
                text.contains("a broke") && text.contains("b broke"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_error_hook_sees_fatal_source_failures() {
    let got = Arc::new(Mutex::new(None));
    let seen = got.clone();
    let (s, feed) = ChannelSource::new("only");
    let listener = builder()
        .source(s)
        .on_error(move |f| {
            if let Failure::Source(sf) = f {
                *seen.lock().unwrap() = Some((sf.source.clone(), sf.fatal));
            }
        })
        .build()
        .unwrap();
    feed.tx.send(Feed::Fail("nope".into())).unwrap();
    assert!(within("the listener", listener.wait_forever())
        .await
        .is_err());
    assert_eq!(*got.lock().unwrap(), Some(("only".to_owned(), true)));
}

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn from_env_needs_a_source_and_valid_values() {
    let err = Listener::from_lookup(&lookup(&[])).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no event source")
            && text.contains("COMPOSIO_API_KEY")
            && text.contains("LISTENER_WS_URL"),
        "{err}"
    );

    let err = Listener::from_lookup(&lookup(&[("LISTENER_WS_URL", "http://not-ws")])).unwrap_err();
    assert!(
        matches!(&err, Error::Config(ConfigError { key, .. }) if key == "LISTENER_WS_URL"),
        "{err}"
    );

    // Composio's realtime source.
    let composio = Listener::from_lookup(&lookup(&[("COMPOSIO_API_KEY", "ak_test")])).unwrap();
    assert_eq!(composio.source_count(), 1);
    for (key, value) in [
        ("COMPOSIO_BASE_URL", "ftp://example.com"),
        ("COMPOSIO_PUSHER_PORT", "70000"),
        ("COMPOSIO_PUSHER_TLS", "maybe"),
    ] {
        let err = Listener::from_lookup(&lookup(&[("COMPOSIO_API_KEY", "ak_test"), (key, value)]))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(ConfigError { key: k, .. }) if k == key),
            "{key}={value}: {err}"
        );
    }

    for (key, value) in [
        ("LISTENER_MAX_IN_FLIGHT", "lots"),
        ("LISTENER_MAX_IN_FLIGHT", "-1"),
        ("LISTENER_DRAIN_TIMEOUT_SECS", "soon"),
        ("LISTENER_DRAIN_TIMEOUT_SECS", "-3"),
        ("LISTENER_HANDLER_TIMEOUT_SECS", "NaN"),
        ("LISTENER_DEDUPE_CAPACITY", "1e3"),
        ("LISTENER_DEDUPE_TTL_SECS", "inf"),
    ] {
        let err = Listener::from_lookup(&lookup(&[
            ("LISTENER_WS_URL", "ws://127.0.0.1:1/"),
            (key, value),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, Error::Config(ConfigError { key: k, .. }) if k == key),
            "{key}={value}: {err}"
        );
    }
    let err = Listener::from_lookup(&lookup(&[
        ("LISTENER_WS_URL", "ws://127.0.0.1:1/"),
        ("LISTENER_MAX_IN_FLIGHT", "0"),
    ]))
    .unwrap()
    .build()
    .unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");

    let ok = Listener::from_lookup(&lookup(&[
        ("LISTENER_WS_URL", " wss://example.invalid/stream "),
        ("LISTENER_MAX_IN_FLIGHT", "8"),
        ("LISTENER_DRAIN_TIMEOUT_SECS", "2.5"),
        ("LISTENER_DEDUPE_CAPACITY", "0"),
    ]))
    .unwrap();
    assert_eq!(ok.source_count(), 1);
    let listener = ok.without_registered_handlers().build().unwrap();
    assert_eq!(listener.dispatcher().max_in_flight(), 8);
}
