//! `#[on_trigger]` handlers registered through `inventory`, run through the real listener.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use listener_core::prelude::*;
use listener_core::testing::Harness;
use listener_core::{registered_handlers, FailureKind};
use listener_e2e::fixtures;

#[derive(Debug, serde::Deserialize)]
struct SlackMessage {
    channel: String,
    text: String,
}

#[derive(Default)]
struct Seen {
    messages: Mutex<Vec<String>>,
    expired: AtomicUsize,
    everything: AtomicUsize,
}

#[on_trigger(name = "slack_receive_message")]
async fn on_slack(Payload(msg): Payload<SlackMessage>, seen: State<Seen>) -> anyhow::Result<()> {
    seen.messages
        .lock()
        .unwrap()
        .push(format!("{}: {}", msg.channel, msg.text));
    Ok(())
}

#[on_trigger(name = "composio.connected_account.expired", toolkit = "composio")]
fn on_expired(meta: Meta, seen: State<Seen>) {
    assert_eq!(meta.connected_account().status, "EXPIRED");
    seen.expired.fetch_add(1, Ordering::SeqCst);
}

#[on_trigger]
async fn on_everything(_ev: Arc<TriggerEvent>, seen: State<Seen>) {
    seen.everything.fetch_add(1, Ordering::SeqCst);
}

#[on_trigger(name = "GITHUB_STAR_ADDED_EVENT", user_id = "octocat")]
async fn on_star_for_octocat(Payload(star): Payload<serde_json::Value>) -> Result<(), String> {
    Err(format!("refusing star {}", star["repo"]))
}

#[test]
fn the_macro_registers_each_function_with_its_filter() {
    let names: Vec<String> = registered_handlers()
        .iter()
        .map(|h| h.name().to_owned())
        .collect();
    for want in [
        "on_slack",
        "on_expired",
        "on_everything",
        "on_star_for_octocat",
    ] {
        assert!(
            names.contains(&format!("macro_handlers::{want}")),
            "{want} missing from {names:?}"
        );
    }
    let expired = registered_handlers()
        .into_iter()
        .find(|h| h.name().ends_with("on_expired"))
        .unwrap();
    assert!(expired.is_blocking());
    assert!(!registered_handlers()
        .into_iter()
        .find(|h| h.name().ends_with("on_slack"))
        .unwrap()
        .is_blocking());
}

#[tokio::test]
async fn registered_handlers_run_on_matching_events() {
    let seen = std::sync::Arc::new(Seen::default());
    let h = Harness::new(Listener::builder().shared_state(seen.clone())).unwrap();

    let report = h
        .dispatch_json(fixtures::bytes("v3_slack_receive_message.json"))
        .await
        .unwrap();
    let mut ran = report.handlers();
    ran.sort();
    assert_eq!(
        ran,
        vec!["macro_handlers::on_everything", "macro_handlers::on_slack"]
    );
    assert!(report.all_ok());

    let report = h
        .dispatch_json(fixtures::bytes("v3_connected_account_expired.json"))
        .await
        .unwrap();
    assert!(report.ran("on_expired") && report.ran("on_everything"));
    assert!(report.all_ok(), "{:?}", report.outcomes);

    let star = TriggerEvent::new("GITHUB_STAR_ADDED_EVENT", serde_json::json!({"repo": "r"}))
        .with_user_id("OctoCat");
    let report = h.dispatch(star).await.unwrap();
    match &report.outcome("on_star_for_octocat").unwrap().result {
        Err(FailureKind::Error(e)) => assert_eq!(e, "refusing star \"r\""),
        other => panic!("{other:?}"),
    }

    assert_eq!(
        *seen.messages.lock().unwrap(),
        vec!["C07JB863EBW: who broke the staging deploy again".to_owned()]
    );
    assert_eq!(seen.expired.load(Ordering::SeqCst), 1);
    assert_eq!(seen.everything.load(Ordering::SeqCst), 3);
}

#[test]
fn registered_handlers_needing_state_refuse_a_listener_without_it() {
    let err = Listener::builder().build().unwrap_err();
    assert!(err.to_string().contains("State<"), "{err}");
    let err = Listener::builder()
        .only_registered(["no_such_handler"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no_such_handler"), "{err}");
    // Selecting only handlers without state builds.
    Listener::builder()
        .only_registered(["on_star_for_octocat"])
        .build()
        .unwrap();
}
