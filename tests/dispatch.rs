//! Dispatch: routing by every filter key, catch-alls, failures, the in-flight bound, dedupe.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listener_core::dispatch::Dispatched;
use listener_core::testing::Harness;
use listener_core::{
    ConnectedAccount, Error, EventContext, ExtractError, Failure, FailureKind, Filter, FromEvent,
    Handler, Listener, ListenerBuilder, Payload, State, TriggerEvent,
};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use serde_json::json;

fn builder() -> ListenerBuilder {
    Listener::builder().without_registered_handlers()
}

fn slack_event(id: &str) -> TriggerEvent {
    TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({"text": "hi"}))
        .with_event_id(id)
        .with_trigger_id("ti_Trig1")
        .with_user_id("User-1")
        .with_connected_account(ConnectedAccount {
            id: "ca_Acct1".into(),
            auth_config_id: "ac_Conf1".into(),
            user_id: "User-1".into(),
            ..ConnectedAccount::default()
        })
}

/// For each key: a handler filtering on it (in a different case than the event) runs, and
/// one filtering on another value does not.
#[tokio::test]
async fn each_filter_key_routes_case_insensitively() {
    type SetKey = fn(Filter, &str) -> Filter;
    let keys: [(&str, SetKey, &str); 6] = [
        ("name", |f, v| f.name(v), "slack_RECEIVE_message"),
        ("toolkit", |f, v| f.toolkit(v), "slack"),
        ("trigger_id", |f, v| f.trigger_id(v), "TI_TRIG1"),
        ("user_id", |f, v| f.user_id(v), "user-1"),
        ("auth_config_id", |f, v| f.auth_config_id(v), "AC_CONF1"),
        (
            "connected_account_id",
            |f, v| f.connected_account_id(v),
            "CA_acct1",
        ),
    ];
    for (key, set, value) in keys {
        let rec = Recorder::new();
        let h = Harness::new(
            builder()
                .handler(rec.handler("hit", set(Filter::new(), value)))
                .handler(rec.handler("miss", set(Filter::new(), "something-else"))),
        )
        .unwrap();
        let report = h.dispatch(slack_event("e1")).await.unwrap();
        assert_eq!(report.handlers(), vec!["hit"], "key `{key}`");
        assert!(report.all_ok());
    }
}

#[tokio::test]
async fn all_keys_must_match() {
    let rec = Recorder::new();
    let h = Harness::new(
        builder()
            .handler(
                rec.handler(
                    "both",
                    Filter::new()
                        .name("SLACK_RECEIVE_MESSAGE")
                        .user_id("user-1"),
                ),
            )
            .handler(
                rec.handler(
                    "wrong_user",
                    Filter::new()
                        .name("SLACK_RECEIVE_MESSAGE")
                        .user_id("user-2"),
                ),
            )
            .handler(
                rec.handler(
                    "wrong_slug",
                    Filter::new()
                        .name("GITHUB_STAR_ADDED_EVENT")
                        .user_id("user-1"),
                ),
            ),
    )
    .unwrap();
    let report = h.dispatch(slack_event("e1")).await.unwrap();
    assert_eq!(report.handlers(), vec!["both"]);
}

#[tokio::test]
async fn empty_event_fields_never_match() {
    let rec = Recorder::new();
    let h = Harness::new(
        builder()
            .handler(rec.handler("user", Filter::new().user_id("u")))
            .handler(rec.handler("empty_user", Filter::new().user_id("")))
            .handler(rec.handler("empty_account", Filter::new().connected_account_id("")))
            .handler(rec.handler("empty_slug", Filter::new().name("")))
            .handler(rec.handler("toolkit", Filter::new().toolkit(""))),
    )
    .unwrap();
    // No user, no account, a slug without toolkit.
    let ev = TriggerEvent::new("NOUNDERSCORE", json!({})).with_event_id("e");
    assert_eq!(ev.toolkit_slug, "");
    let report = h.dispatch(ev).await.unwrap();
    assert!(report.outcomes.is_empty(), "ran: {:?}", report.handlers());
    let mut empty_slug = TriggerEvent::new("", json!({}));
    empty_slug.event_id = "e2".into();
    assert!(h.dispatch(empty_slug).await.unwrap().outcomes.is_empty());
}

#[tokio::test]
async fn a_catch_all_gets_every_event() {
    let rec = Recorder::new();
    let h = Harness::new(
        builder()
            .handler(rec.handler("all", Filter::new()))
            .handler(rec.handler("slack", Filter::new().name("SLACK_RECEIVE_MESSAGE"))),
    )
    .unwrap();
    let events = [
        listener_e2e::fixtures::bytes("v3_slack_receive_message.json"),
        listener_e2e::fixtures::bytes("v3_connected_account_expired.json"),
        listener_e2e::fixtures::bytes("v1_slack_receive_message.json"),
        br#"{"appName":"github","payload":{},"metadata":{"nanoId":"ti_x","triggerName":"GITHUB_COMMIT_EVENT","connection":{}}}"#.to_vec(),
        br#"{"id":"evt_9","type":"composio.trigger.message","metadata":{},"data":{}}"#.to_vec(),
    ];
    let mut slack_runs = 0;
    for bytes in events {
        let report = h.dispatch_json(&bytes).await.unwrap();
        assert!(
            report.ran("all"),
            "catch-all missed {}",
            String::from_utf8_lossy(&bytes)
        );
        slack_runs += usize::from(report.ran("slack"));
    }
    assert_eq!(slack_runs, 2, "the V3 and V1 Slack messages");
}

#[tokio::test]
async fn lifecycle_events_route_by_type() {
    let rec = Recorder::new();
    let h = Harness::new(
        builder()
            .handler(rec.handler(
                "expired",
                Filter::new().name("composio.connected_account.expired"),
            ))
            .handler(rec.handler(
                "by_account",
                Filter::new().connected_account_id("ca_your-connected-account-id"),
            ))
            .handler(rec.handler("slack", Filter::new().toolkit("slack"))),
    )
    .unwrap();
    let report = h
        .dispatch_json(listener_e2e::fixtures::bytes(
            "v3_connected_account_expired.json",
        ))
        .await
        .unwrap();
    let mut ran = report.handlers();
    ran.sort();
    assert_eq!(ran, vec!["by_account", "expired"]);
}

#[tokio::test]
async fn a_panicking_or_failing_handler_does_not_stop_its_siblings() {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&failures);
    let rec = Recorder::new();
    let h = Harness::new(
        builder()
            .handler(rec.handler("first", Filter::new()))
            .handler(Handler::new("panics", Filter::new(), panics))
            .handler(Handler::blocking(
                "panics_blocking",
                Filter::new(),
                panics_blocking,
            ))
            .handler(Handler::new(
                "fails",
                Filter::new(),
                |_: Arc<TriggerEvent>| async move {
                    Err::<(), _>(anyhow::anyhow!("inner cause").context("outer context"))
                },
            ))
            .handler(rec.handler("last", Filter::new()))
            .on_error(move |f| seen.lock().unwrap().push(f.clone())),
    )
    .unwrap();
    let report = h.dispatch(slack_event("e1")).await.unwrap();
    assert_eq!(report.outcomes.len(), 5);
    assert!(report.outcome("first").unwrap().result.is_ok());
    assert!(report.outcome("last").unwrap().result.is_ok());
    match &report.outcome("panics").unwrap().result {
        Err(FailureKind::Panic(msg)) => assert_eq!(msg, "boom in handler"),
        other => panic!("{other:?}"),
    }
    match &report.outcome("panics_blocking").unwrap().result {
        Err(FailureKind::Panic(msg)) => assert_eq!(msg, "boom in blocking handler"),
        other => panic!("{other:?}"),
    }
    match &report.outcome("fails").unwrap().result {
        Err(FailureKind::Error(msg)) => assert_eq!(msg, "outer context: inner cause"),
        other => panic!("{other:?}"),
    }
    // The hook saw all three failures, each with the event id and slug.
    let seen_failures = failures.lock().unwrap().clone();
    assert_eq!(seen_failures.len(), 3);
    for f in seen_failures.iter() {
        match f {
            Failure::Handler(h) => {
                assert_eq!(h.event_id, "e1");
                assert_eq!(h.trigger_slug, "SLACK_RECEIVE_MESSAGE");
            }
            other => panic!("{other:?}"),
        }
    }
    // And the dispatcher goes on.
    assert_eq!(
        h.dispatch(slack_event("e2")).await.unwrap().outcomes.len(),
        5
    );
    assert_eq!(h.dispatcher().stats().failures, 6);
}

async fn panics(_: Arc<TriggerEvent>) {
    panic!("boom in handler")
}

fn panics_blocking(_: Arc<TriggerEvent>) {
    panic!("boom in blocking handler")
}

#[tokio::test]
async fn a_payload_that_does_not_fit_is_that_handlers_error() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Star {
        stars: u64,
    }
    let rec = Recorder::new();
    let h = Harness::new(
        builder()
            .handler(Handler::new(
                "typed",
                Filter::new(),
                |_: Payload<Star>| async {},
            ))
            .handler(rec.handler("untyped", Filter::new())),
    )
    .unwrap();
    let report = h.dispatch(slack_event("evt_bad")).await.unwrap();
    assert!(report.outcome("untyped").unwrap().result.is_ok());
    match &report.outcome("typed").unwrap().result {
        Err(FailureKind::Extract(e)) => {
            let text = e.to_string();
            assert!(
                text.contains("evt_bad") && text.contains("Star") && text.contains("stars"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A user's extractor with its own rejection type.
struct Channel(String);

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("no channel in event `{0}`")]
struct NoChannel(String);

impl FromEvent for Channel {
    type Rejection = NoChannel;

    fn from_event(cx: &EventContext) -> Result<Self, NoChannel> {
        let event = cx.event();
        event.payload["channel"]
            .as_str()
            .map(|c| Channel(c.to_owned()))
            .ok_or_else(|| NoChannel(event.label().to_owned()))
    }
}

#[tokio::test]
async fn a_custom_extractors_rejection_reaches_the_hook_with_the_event_id() {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&failures);
    let mut rec = Recorder::new();
    let channels = Arc::new(Mutex::new(Vec::new()));
    let got = Arc::clone(&channels);
    let h = Harness::new(
        builder()
            .handler(Handler::new(
                "by_channel",
                Filter::new(),
                move |Channel(c): Channel| {
                    let got = Arc::clone(&got);
                    async move { got.lock().unwrap().push(c) }
                },
            ))
            .handler(rec.handler("sibling", Filter::new()))
            .on_error(move |f| seen.lock().unwrap().push(f.clone())),
    )
    .unwrap();
    // No channel: the custom extractor refuses; the sibling still runs.
    let report = h.dispatch(slack_event("evt_nochan")).await.unwrap();
    assert!(report.outcome("sibling").unwrap().result.is_ok());
    assert_eq!(rec.next().await.event.event_id, "evt_nochan");
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1);
    match &failures[0] {
        Failure::Handler(f) => {
            assert_eq!(f.handler.as_ref(), "by_channel");
            assert_eq!(f.event_id, "evt_nochan");
            match &f.kind {
                FailureKind::Extract(e) => assert_eq!(
                    e.downcast_ref::<NoChannel>(),
                    Some(&NoChannel("evt_nochan".into()))
                ),
                other => panic!("{other:?}"),
            }
            assert!(
                f.to_string().contains("no channel in event `evt_nochan`"),
                "{f}"
            );
        }
        other => panic!("{other:?}"),
    }
    // With a channel, the handler gets it.
    let with_channel = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({"channel": "C42"}))
        .with_event_id("evt_chan");
    assert!(h.dispatch(with_channel).await.unwrap().all_ok());
    assert_eq!(*channels.lock().unwrap(), vec!["C42".to_owned()]);
}

#[tokio::test]
async fn missing_state_is_refused_at_build_time() {
    struct Db;
    let err = builder()
        .handler(Handler::new(
            "needs_db",
            Filter::new(),
            |_: State<Db>| async {},
        ))
        .build()
        .unwrap_err();
    match err {
        Error::Extract(ExtractError::MissingState { handler, type_name }) => {
            assert_eq!(handler, "needs_db");
            assert!(type_name.ends_with("Db"));
        }
        other => panic!("{other:?}"),
    }
    // Given the state, it builds and the handler sees it.
    struct Counter(AtomicUsize);
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    let h = Harness::new(
        builder()
            .shared_state(Arc::clone(&counter))
            .handler(Handler::new(
                "count",
                Filter::new(),
                |c: State<Counter>| async move {
                    let Counter(n) = &*c;
                    n.fetch_add(1, Ordering::SeqCst);
                },
            )),
    )
    .unwrap();
    h.dispatch(slack_event("a")).await.unwrap();
    h.dispatch(slack_event("b")).await.unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_duplicate_id_runs_once() {
    let mut rec = Recorder::new();
    let h = Harness::new(builder().handler(rec.handler("h", Filter::new()))).unwrap();
    let first = h
        .dispatcher()
        .dispatch(slack_event("evt_same"))
        .await
        .unwrap();
    assert_eq!(first, Dispatched::Accepted { handlers: 1 });
    let again = h.dispatch(slack_event("evt_same")).await.unwrap();
    assert!(again.duplicate);
    assert!(again.outcomes.is_empty());
    h.dispatch(slack_event("evt_other")).await.unwrap();
    rec.next().await;
    rec.next().await;
    assert!(rec.drain().is_empty());
    let stats = h.dispatcher().stats();
    assert_eq!((stats.events, stats.duplicates, stats.runs), (3, 1, 2));

    // Concurrent deliveries of one id: exactly one runs.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let d = h.dispatcher().clone();
        tasks.push(tokio::spawn(async move {
            d.dispatch(slack_event("evt_race")).await.unwrap()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap() != Dispatched::Duplicate);
    }
    assert_eq!(accepted, 1);

    // Forgotten ids run again; events without an id are never deduplicated.
    h.dispatcher().forget("evt_same");
    assert!(!h.dispatch(slack_event("evt_same")).await.unwrap().duplicate);
    assert_eq!(h.dispatch(slack_event("")).await.unwrap().outcomes.len(), 1);
    assert_eq!(h.dispatch(slack_event("")).await.unwrap().outcomes.len(), 1);
}

#[tokio::test]
async fn the_dedupe_window_is_bounded_by_count() {
    let rec = Recorder::new();
    let h = Harness::new(
        builder()
            .dedupe(2, Duration::from_secs(600))
            .handler(rec.handler("h", Filter::new())),
    )
    .unwrap();
    for id in ["a", "b", "c"] {
        assert!(!h.dispatch(slack_event(id)).await.unwrap().duplicate);
    }
    // "a" was pushed out by "c"; "c" is still remembered.
    assert!(!h.dispatch(slack_event("a")).await.unwrap().duplicate);
    assert!(h.dispatch(slack_event("a")).await.unwrap().duplicate);
    assert!(h.dispatch(slack_event("c")).await.unwrap().duplicate);
    let h = Harness::new(
        builder()
            .no_dedupe()
            .handler(rec.handler("h", Filter::new())),
    )
    .unwrap();
    assert!(!h.dispatch(slack_event("x")).await.unwrap().duplicate);
    assert!(!h.dispatch(slack_event("x")).await.unwrap().duplicate);
}

/// Handlers block on a gate; the dispatcher must never run more than the bound at once,
/// must reach it, and a dispatch beyond it must wait (the source stops reading).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_bound_holds() {
    const BOUND: usize = 3;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (gate, active, max_seen, done) =
            (gate.clone(), active.clone(), max_seen.clone(), done.clone());
        Handler::new("gated", Filter::new(), move |_: Arc<TriggerEvent>| {
            let (gate, active, max_seen, done) =
                (gate.clone(), active.clone(), max_seen.clone(), done.clone());
            async move {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                let _permit = gate.acquire().await.unwrap();
                active.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let listener = builder()
        .max_in_flight(BOUND)
        .handler(handler)
        .build()
        .unwrap();
    let d = listener.dispatcher().clone();

    for i in 0..BOUND {
        d.dispatch(slack_event(&format!("e{i}"))).await.unwrap();
    }
    until("the bound to be reached", || {
        active.load(Ordering::SeqCst) == BOUND
    })
    .await;
    assert!(d.is_saturated());
    assert_eq!(d.in_flight(), BOUND);
    // One more must wait for a free slot.
    let blocked =
        tokio::time::timeout(Duration::from_millis(100), d.dispatch(slack_event("over"))).await;
    assert!(blocked.is_err(), "a dispatch beyond the bound did not wait");

    // Feed 20 more from a task while releasing the gate one permit at a time.
    let feeder = {
        let d = d.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                d.dispatch(slack_event(&format!("more{i}"))).await.unwrap();
            }
        })
    };
    let total = BOUND + 20;
    for _ in 0..total {
        gate.add_permits(1);
        tokio::task::yield_now().await;
    }
    within("the feeder", feeder).await.unwrap();
    until("every run to finish", || {
        done.load(Ordering::SeqCst) == total
    })
    .await;
    assert_eq!(
        max_seen.load(Ordering::SeqCst),
        BOUND,
        "max concurrency observed"
    );
    assert_eq!(d.in_flight(), 0);
}

#[tokio::test]
async fn handler_timeout_frees_the_slot_and_reports() {
    let h = Harness::new(
        builder()
            .max_in_flight(1)
            .handler_timeout(Duration::from_millis(50))
            .handler(Handler::new(
                "stuck",
                Filter::new(),
                |_: Arc<TriggerEvent>| std::future::pending::<()>(),
            )),
    )
    .unwrap();
    let report = within("a timed-out run", h.dispatch(slack_event("t1")))
        .await
        .unwrap();
    assert!(matches!(
        report.outcome("stuck").unwrap().result,
        Err(FailureKind::TimedOut(_))
    ));
    assert_eq!(h.dispatcher().in_flight(), 0);
    // The single slot is free again.
    within("a second run", h.dispatch(slack_event("t2")))
        .await
        .unwrap();
}

/// On a single-threaded runtime, a blocking handler that waits for the test would deadlock
/// if it ran on the runtime's thread; on the blocking pool the test can release it.
#[tokio::test(flavor = "current_thread")]
async fn blocking_handlers_run_on_the_blocking_pool() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = builder()
        .handler(Handler::blocking(
            "sync",
            Filter::new(),
            move |_: Arc<TriggerEvent>| {
                let released = release_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(10));
                let _ = done_tx.send(released.is_ok());
            },
        ))
        .build()
        .unwrap();
    assert!(listener.dispatcher().registry().handlers()[0].is_blocking());
    listener
        .dispatcher()
        .dispatch(slack_event("b"))
        .await
        .unwrap();
    release_tx.send(()).unwrap();
    let released = within("the blocking handler", done_rx.recv())
        .await
        .unwrap();
    assert!(released, "the handler was not released by the test task");
}

/// Eager start: a run that finishes without waiting runs on the dispatching task itself
/// (no task of its own); a run that waits continues as its own task, and `dispatch`
/// returns without waiting for it. With eager start off, every run is its own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_start_runs_ready_handlers_inline_and_spawns_waiting_ones() {
    for eager in [true, false] {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let gate = Arc::new(tokio::sync::Notify::new());
        let quick = {
            let tx = tx.clone();
            Handler::new("quick", Filter::new(), move |_: Arc<TriggerEvent>| {
                let _ = tx.send(("quick", tokio::task::try_id()));
                async {}
            })
        };
        let waits = {
            let (tx, gate) = (tx.clone(), gate.clone());
            Handler::new("waits", Filter::new(), move |_: Arc<TriggerEvent>| {
                let (tx, gate) = (tx.clone(), gate.clone());
                async move {
                    let _ = tx.send(("waits-start", tokio::task::try_id()));
                    gate.notified().await;
                    let _ = tx.send(("waits-end", tokio::task::try_id()));
                }
            })
        };
        let listener = builder()
            .eager_start(eager)
            .handler(quick)
            .handler(waits)
            .build()
            .unwrap();
        let d = listener.dispatcher().clone();
        // Dispatch from a task of known id.
        let (dispatcher_task, dispatched) = within(
            "dispatch",
            tokio::spawn(async move {
                let me = tokio::task::try_id();
                (me, d.dispatch(slack_event(&format!("eager-{eager}"))).await)
            }),
        )
        .await
        .unwrap();
        assert_eq!(dispatched.unwrap(), Dispatched::Accepted { handlers: 2 });
        let mut seen = std::collections::HashMap::new();
        while seen.len() < 2 {
            let (what, task) = within("handler starts", rx.recv()).await.unwrap();
            seen.insert(what, task);
        }
        assert_eq!(
            seen["quick"] == dispatcher_task,
            eager,
            "eager={eager}: the quick handler ran on the dispatching task?"
        );
        assert_eq!(
            seen["waits-start"] == dispatcher_task,
            eager,
            "eager={eager}"
        );
        // The waiting run outlived `dispatch` and goes on as its own task when released.
        gate.notify_one();
        let (what, task) = within("the waiting run to finish", rx.recv())
            .await
            .unwrap();
        assert_eq!(what, "waits-end");
        assert_ne!(task, dispatcher_task, "eager={eager}");
        until("every run to finish", || {
            listener.dispatcher().in_flight() == 0
        })
        .await;
        assert_eq!(listener.dispatcher().stats().runs, 2);
    }
}
