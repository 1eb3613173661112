//! A panic around a handler run, outside the handler's own panic guard. In its own test
//! binary: it installs a thread-local tracing subscriber, and tracing caches per callsite
//! whether anyone is interested, so another test registering the span's callsite first
//! (with no subscriber) would disable the span here.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use listener_core::testing::Harness;
use listener_core::{Failure, FailureKind, Filter, Handler, Listener, TriggerEvent};
use serde_json::json;

/// A panic around a run (here a tracing layer that panics when the run's span is entered),
/// outside the handler's own panic guard, is that run's failure: reported, counted, its
/// slot freed, and the dispatch itself goes on.
#[tokio::test(flavor = "current_thread")]
async fn a_panic_around_an_eagerly_started_run_is_that_runs_failure() {
    use tracing_subscriber::layer::SubscriberExt;

    /// Panics the first time a span is entered.
    struct PanicOnEnter(std::sync::atomic::AtomicBool);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicOnEnter {
        fn on_enter(&self, _: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
            if !self.0.swap(true, Ordering::SeqCst) {
                panic!("layer exploded");
            }
        }
    }
    let layer = PanicOnEnter(std::sync::atomic::AtomicBool::new(false));
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    tracing::callsite::rebuild_interest_cache();

    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&failures);
    let h = Harness::new(
        Listener::builder()
            .without_registered_handlers()
            .max_in_flight(1)
            .on_error(move |f: &Failure| seen.lock().unwrap().push(format!("{f:?}")))
            .handler(Handler::new(
                "h",
                Filter::new(),
                |_: Arc<TriggerEvent>| async {},
            )),
    )
    .unwrap();
    let report = h
        .dispatch(TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({})).with_event_id("p1"))
        .await
        .unwrap();
    match &report.outcome("h").unwrap().result {
        Err(FailureKind::Panic(message)) => assert!(message.contains("layer exploded")),
        other => panic!("expected a panic outcome, got {other:?}"),
    }
    assert_eq!(h.dispatcher().stats().failures, 1);
    assert_eq!(h.dispatcher().in_flight(), 0, "the run's slot is freed");
    assert_eq!(failures.lock().unwrap().len(), 1);
    assert!(failures.lock().unwrap()[0].contains("layer exploded"));
}
