//! Per-handler policies (retries, concurrency, ordering by key, timeouts) and layers, each
//! measured: attempts counted, the most runs at once observed, per-key order checked, and
//! what the error hook and the layers heard.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use listener_core::layer::{RunLog, RunRecord, RunStatus, SkipOwnEvents};
use listener_core::testing::Harness;
use listener_core::{
    Failure, FailureKind, Filter, Handler, HandlerFailure, Listener, ListenerBuilder, Meta,
    Payload, TriggerEvent,
};
use listener_e2e::wait::{until, within};
use serde_json::json;

fn builder() -> ListenerBuilder {
    Listener::builder().without_registered_handlers()
}

fn message(id: &str, payload: serde_json::Value) -> TriggerEvent {
    TriggerEvent::new("SLACK_RECEIVE_MESSAGE", payload).with_event_id(id)
}

fn slack() -> Filter {
    Filter::new().name("SLACK_RECEIVE_MESSAGE")
}

/// What the error hook heard, kept for the assertions.
fn hook_recorder() -> (
    Arc<Mutex<Vec<HandlerFailure>>>,
    impl Fn(&Failure) + Send + Sync + 'static,
) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    (heard, move |f: &Failure| {
        if let Failure::Handler(h) = f {
            sink.lock().unwrap().push(h.clone());
        }
    })
}

/// Tracks runs in flight and the most seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A handler failing on its first two attempts and succeeding on the third, with
/// `retries = 2`: the run succeeds, the attempt number reached the handler each time, the
/// hook hears nothing.
#[tokio::test]
async fn a_flaky_handler_with_two_retries_succeeds_on_its_third_run_unreported() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::clone(&seen);
    let flaky = Handler::new("flaky", slack(), move |meta: Meta| {
        let attempts = Arc::clone(&attempts);
        async move {
            attempts.lock().unwrap().push(meta.attempt());
            anyhow::ensure!(meta.attempt() >= 3, "not yet (attempt {})", meta.attempt());
            Ok(())
        }
    })
    .retries(2)
    .retry_delay(Duration::from_millis(5));
    let (heard, hook) = hook_recorder();
    let h = Harness::new(builder().handler(flaky).on_error(hook)).unwrap();

    let report = within("the flaky run", h.dispatch(message("e1", json!({}))))
        .await
        .unwrap();
    let outcome = report.outcome("flaky").unwrap();
    assert!(outcome.result.is_ok(), "{outcome:?}");
    assert_eq!(outcome.attempts, 3);
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
    assert!(
        heard.lock().unwrap().is_empty(),
        "the hook heard of a run that succeeded"
    );
    assert_eq!(h.dispatcher().stats().failures, 0);
}

/// A handler that always fails, with `retries = 2`: three attempts, one report to the hook
/// naming 3 attempts and the two earlier errors; the delays between attempts follow the
/// back-off (at least half of 20 ms, then of 40 ms, with jitter).
#[tokio::test]
async fn a_handler_that_always_fails_is_reported_once_with_three_attempts() {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&runs);
    let failing = Handler::new("failing", slack(), move |meta: Meta| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { anyhow::bail!("boom {}", meta.attempt()) }
    })
    .retries(2)
    .retry_delay(Duration::from_millis(20));
    let (heard, hook) = hook_recorder();
    let h = Harness::new(builder().handler(failing).on_error(hook)).unwrap();

    let started = Instant::now();
    let report = within("the failing run", h.dispatch(message("e1", json!({}))))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let outcome = report.outcome("failing").unwrap();
    assert_eq!(outcome.attempts, 3);
    assert!(
        matches!(&outcome.result, Err(FailureKind::Error(e)) if e == "boom 3"),
        "{outcome:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(
        elapsed >= Duration::from_millis(30),
        "no back-off between attempts: {elapsed:?}"
    );

    let heard = heard.lock().unwrap();
    assert_eq!(
        heard.len(),
        1,
        "reported once, after the last attempt: {heard:?}"
    );
    assert_eq!(heard[0].attempts, 3);
    let earlier: Vec<String> = heard[0].earlier.iter().map(ToString::to_string).collect();
    assert_eq!(
        earlier,
        ["returned an error: boom 1", "returned an error: boom 2"]
    );
    assert!(
        heard[0].to_string().contains("last of 3 attempts"),
        "{}",
        heard[0]
    );
    assert_eq!(h.dispatcher().stats().failures, 1);
}

/// A payload that does not fit the handler's type fails the same way every time: it is not
/// retried.
#[tokio::test]
async fn an_extraction_failure_is_not_retried() {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[allow(dead_code)]
        channel: String,
    }
    let h = Harness::new(
        builder().handler(Handler::new("typed", slack(), |_: Payload<Typed>| async {}).retries(3)),
    )
    .unwrap();
    let report = h
        .dispatch(message("e1", json!({"channel": 5})))
        .await
        .unwrap();
    let outcome = report.outcome("typed").unwrap();
    assert!(
        matches!(outcome.result, Err(FailureKind::Extract(_))),
        "{outcome:?}"
    );
    assert_eq!(outcome.attempts, 1);
}

/// `concurrency = 2` on a handler whose runs take a while, 20 events dispatched at once
/// under a global bound of 64: never 3 runs at once, and 2 at once did happen.
#[tokio::test]
async fn concurrency_two_never_has_three_runs_at_once() {
    let gauge = Arc::new(Gauge::default());
    let done = Arc::new(AtomicUsize::new(0));
    let (g, d) = (Arc::clone(&gauge), Arc::clone(&done));
    let limited = Handler::new("limited", slack(), move |_: Meta| {
        let (g, d) = (Arc::clone(&g), Arc::clone(&d));
        async move {
            g.enter();
            tokio::time::sleep(Duration::from_millis(10)).await;
            g.leave();
            d.fetch_add(1, Ordering::SeqCst);
        }
    })
    .concurrency(2);
    let h = Harness::new(builder().handler(limited).max_in_flight(64)).unwrap();
    for i in 0..20 {
        h.dispatcher()
            .dispatch(message(&format!("e{i}"), json!({})))
            .await
            .unwrap();
    }
    until("all 20 runs", || done.load(Ordering::SeqCst) == 20).await;
    assert_eq!(gauge.max(), 2, "the most runs at once");
}

/// `sequential_by = "payload.channel"` over 1,000 events on 10 channels, each run sleeping
/// a pseudo-random 0-3 ms: per channel, the runs happen in the order the events arrived and
/// never overlap; runs of different channels do overlap; idle keys are freed (a second
/// burst on fresh keys works the same).
#[tokio::test]
async fn sequential_by_keeps_per_key_order_while_keys_overlap() {
    const EVENTS: usize = 1000;
    const KEYS: usize = 10;
    let order: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let busy: Arc<Mutex<HashMap<String, bool>>> = Arc::default();
    let overlap_violations = Arc::new(AtomicUsize::new(0));
    let gauge = Arc::new(Gauge::default());
    let done = Arc::new(AtomicUsize::new(0));
    let (o, b, v, g, d) = (
        Arc::clone(&order),
        Arc::clone(&busy),
        Arc::clone(&overlap_violations),
        Arc::clone(&gauge),
        Arc::clone(&done),
    );
    let ordered = Handler::new("ordered", slack(), move |meta: Meta| {
        let (o, b, v, g, d) = (
            Arc::clone(&o),
            Arc::clone(&b),
            Arc::clone(&v),
            Arc::clone(&g),
            Arc::clone(&d),
        );
        async move {
            let payload = &meta.event().payload;
            let channel = payload["channel"].as_str().unwrap_or_default().to_owned();
            let seq = payload["seq"].as_u64().unwrap_or_default() as usize;
            let delay = payload["delay_us"].as_u64().unwrap_or_default();
            if b.lock().unwrap().insert(channel.clone(), true) == Some(true) {
                v.fetch_add(1, Ordering::SeqCst);
            }
            g.enter();
            o.lock()
                .unwrap()
                .entry(channel.clone())
                .or_default()
                .push(seq);
            tokio::time::sleep(Duration::from_micros(delay)).await;
            g.leave();
            b.lock().unwrap().insert(channel, false);
            d.fetch_add(1, Ordering::SeqCst);
        }
    })
    .sequential_by("payload.channel");
    // A spawned run (eager start off) is polled whenever the runtime gets to it: order must
    // not depend on that.
    let h = Harness::new(
        builder()
            .handler(ordered)
            .max_in_flight(256)
            .eager_start(false),
    )
    .unwrap();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    for burst in 0..2 {
        for seq in 0..EVENTS {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let channel = format!("C{burst}-{}", rng % KEYS as u64);
            let payload = json!({"channel": channel, "seq": seq, "delay_us": rng % 3000});
            h.dispatcher()
                .dispatch(message(&format!("e{burst}-{seq}"), payload))
                .await
                .unwrap();
        }
        let want = (burst + 1) * EVENTS;
        within(
            "every run of the burst",
            until("all runs", || done.load(Ordering::SeqCst) == want),
        )
        .await;
    }

    assert_eq!(
        overlap_violations.load(Ordering::SeqCst),
        0,
        "two runs of one key overlapped"
    );
    let order = order.lock().unwrap();
    assert_eq!(order.len(), 2 * KEYS, "every key was used");
    for (channel, seqs) in order.iter() {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "channel {channel} ran out of order: {seqs:?}"
        );
    }
    assert_eq!(order.values().map(Vec::len).sum::<usize>(), 2 * EVENTS);
    assert!(gauge.max() > 1, "runs of different keys never overlapped");
    assert!(
        gauge.max() <= KEYS,
        "more runs at once than keys: {}",
        gauge.max()
    );
}

/// A handler's own `timeout` of 50 ms fires long before the listener's 10 s one; another
/// handler of the same event, without its own, is not cut at 50 ms.
#[tokio::test]
async fn a_handler_timeout_fires_before_the_listeners() {
    let h = Harness::new(
        builder()
            .handler_timeout(Duration::from_secs(10))
            .handler(
                Handler::new("slow", slack(), |_: Meta| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                })
                .timeout(Duration::from_millis(50)),
            )
            .handler(Handler::new("steady", slack(), |_: Meta| async {
                tokio::time::sleep(Duration::from_millis(120)).await;
            })),
    )
    .unwrap();
    let report = within("both runs", h.dispatch(message("e1", json!({}))))
        .await
        .unwrap();
    let slow = report.outcome("slow").unwrap();
    assert!(
        matches!(slow.result, Err(FailureKind::TimedOut(d)) if d == Duration::from_millis(50)),
        "{slow:?}"
    );
    assert!(report.outcome("steady").unwrap().result.is_ok());
}

/// A retried attempt that times out counts as a failed attempt like any other.
#[tokio::test]
async fn a_timed_out_attempt_is_retried() {
    let h = Harness::new(
        builder().handler(
            Handler::new("slow_then_fast", slack(), |meta: Meta| async move {
                if meta.attempt() == 1 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            })
            .timeout(Duration::from_millis(30))
            .retries(1)
            .retry_delay(Duration::from_millis(1)),
        ),
    )
    .unwrap();
    let report = within("the run", h.dispatch(message("e1", json!({}))))
        .await
        .unwrap();
    let outcome = report.outcome("slow_then_fast").unwrap();
    assert!(outcome.result.is_ok(), "{outcome:?}");
    assert_eq!(outcome.attempts, 2);
}

/// Policies given by hand are checked when the listener is built.
#[test]
fn bad_hand_given_policies_refuse_the_listener() {
    for (handler, key) in [
        (
            Handler::new("a", slack(), |_: Meta| async {}).concurrency(0),
            "concurrency",
        ),
        (
            Handler::new("b", slack(), |_: Meta| async {}).sequential_by("channel"),
            "sequential_by",
        ),
        (
            Handler::new("c", slack(), |_: Meta| async {}).timeout(Duration::ZERO),
            "timeout",
        ),
        (
            Handler::new("d", slack(), |_: Meta| async {}).retries(1_000),
            "retries",
        ),
    ] {
        let err = builder().handler(handler).build().unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

/// The bot's own messages (its user id in `user`) are skipped by the layer: the handler
/// does not run, the outcome says skipped, and the other messages run as usual.
#[tokio::test]
async fn a_layer_skips_the_bots_own_messages() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&ran);
    let h = Harness::new(
        builder()
            .layer(SkipOwnEvents::user_id("U0BOT"))
            .handler(Handler::new("reply", slack(), move |meta: Meta| {
                r.lock().unwrap().push(meta.event_id().to_owned());
                async {}
            })),
    )
    .unwrap();
    let own = h
        .dispatch(message("own", json!({"user": "U0BOT", "text": "a roast"})))
        .await
        .unwrap();
    let theirs = h
        .dispatch(message("theirs", json!({"user": "U0HUMAN", "text": "hi"})))
        .await
        .unwrap();
    let bot_id = h
        .dispatch(message("bot", json!({"bot_id": "U0BOT"})))
        .await
        .unwrap();

    assert_eq!(*ran.lock().unwrap(), ["theirs"]);
    let skipped = own.outcome("reply").unwrap();
    assert!(skipped.result.is_ok());
    assert!(
        skipped
            .skipped
            .as_deref()
            .unwrap_or_default()
            .contains("U0BOT"),
        "{skipped:?}"
    );
    assert!(bot_id.outcome("reply").unwrap().skipped.is_some());
    assert!(theirs.outcome("reply").unwrap().skipped.is_none());
}

/// A run log (with a sink) sees every attempt's outcome: ok, an error then its retry,
/// a timeout, a panic, an extraction failure, and a run skipped by a layer inside it; a
/// layer scoped by a filter sees only its events.
#[tokio::test]
async fn a_run_log_layer_observes_every_outcome() {
    let records: Arc<Mutex<Vec<RunRecord>>> = Arc::default();
    let sink = Arc::clone(&records);
    let github_only: Arc<Mutex<Vec<String>>> = Arc::default();
    let gh = Arc::clone(&github_only);
    #[derive(serde::Deserialize)]
    struct NeedsText {
        #[allow(dead_code)]
        text: String,
    }
    let h = Harness::new(
        builder()
            .layer(RunLog::with_sink(move |r| {
                sink.lock().unwrap().push(r.clone())
            }))
            .layer(SkipOwnEvents::user_id("U0BOT"))
            .layer_for(
                Filter::new().toolkit("github"),
                RunLog::with_sink(move |r| gh.lock().unwrap().push(r.handler.clone())),
            )
            .handler(Handler::new(
                "ok",
                Filter::new().name("OK"),
                |_: Meta| async {},
            ))
            .handler(
                Handler::new(
                    "flaky",
                    Filter::new().name("FLAKY"),
                    |meta: Meta| async move {
                        anyhow::ensure!(meta.attempt() > 1, "first attempt fails");
                        Ok(())
                    },
                )
                .retries(1)
                .retry_delay(Duration::from_millis(1)),
            )
            .handler(
                Handler::new("slow", Filter::new().name("SLOW"), |_: Meta| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                })
                .timeout(Duration::from_millis(20)),
            )
            .handler(Handler::new(
                "panics",
                Filter::new().name("PANICS"),
                |_: Meta| async { panic!("handler bug") as () },
            ))
            .handler(Handler::new(
                "typed",
                Filter::new().name("TYPED"),
                |_: Payload<NeedsText>| async {},
            ))
            .handler(Handler::new(
                "own",
                Filter::new().name("OWN"),
                |_: Meta| async {},
            ))
            .handler(Handler::new(
                "star",
                Filter::new().name("GITHUB_STAR_ADDED_EVENT"),
                |_: Meta| async {},
            )),
    )
    .unwrap();
    for (slug, payload) in [
        ("OK", json!({})),
        ("FLAKY", json!({})),
        ("SLOW", json!({})),
        ("PANICS", json!({})),
        ("TYPED", json!({"text": 1})),
        ("OWN", json!({"user": "U0BOT"})),
        ("GITHUB_STAR_ADDED_EVENT", json!({})),
    ] {
        h.dispatch(TriggerEvent::new(slug, payload).with_event_id(slug))
            .await
            .unwrap();
    }
    let got: Vec<(String, u32, RunStatus)> = records
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.handler.clone(), r.attempt, r.status))
        .collect();
    let want: Vec<(String, u32, RunStatus)> = [
        ("ok", 1, RunStatus::Ok),
        ("flaky", 1, RunStatus::Error),
        ("flaky", 2, RunStatus::Ok),
        ("slow", 1, RunStatus::TimedOut),
        ("panics", 1, RunStatus::Panic),
        ("typed", 1, RunStatus::Extract),
        ("own", 1, RunStatus::Skipped),
        ("star", 1, RunStatus::Ok),
    ]
    .into_iter()
    .map(|(h, a, s)| (h.to_owned(), a, s))
    .collect();
    assert_eq!(got, want);
    let records = records.lock().unwrap();
    assert_eq!(
        records[1].detail.as_deref(),
        Some("returned an error: first attempt fails")
    );
    assert!(records[4]
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("handler bug"));
    assert!(records[6]
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("U0BOT"));
    assert!(records.iter().all(|r| r.event_id == r.trigger_slug));
    assert_eq!(*github_only.lock().unwrap(), ["star"]);
}
