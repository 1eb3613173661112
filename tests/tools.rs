//! `Tools` end to end against a local hub: events arrive through the hub's realtime path, a
//! handler executes Slack's send tool through the listener's client and processors, and the
//! hub's tool endpoint records what was called. Every wait has a deadline.

use std::sync::Arc;

use listener_core::composio_api::ToolExecution;
use listener_core::source::Health;
use listener_core::tools::{ToolError, Tools};
use listener_core::{Filter, Handler, Listener, ListenerBuilder, ListenerHandle, TriggerEvent};
use listener_e2e::wait::{until, within};
use listener_hub::{Hub, RunningHub, ToolCallRecord};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const SEND: &str = "SLACK_SEND_MESSAGE";
const CHANNEL: &str = "C07ROAST42";

/// What a model might answer: the wrong channel and thread, markdown on, extras.
fn model_arguments() -> Value {
    json!({"channel": "C_MODEL_WRONG", "thread_ts": "0000000000.000000", "mrkdwn": true,
           "reply_broadcast": true, "text": ">be you\n>push to main on friday"})
}

/// The pre-processor under test: the reply goes to the message's channel and thread, as
/// plain text, whatever the arguments said; an event that is not a message of the roast
/// channel is refused.
fn reply_in_thread(event: &TriggerEvent, mut args: Value) -> Result<Value, String> {
    let msg = &event.payload;
    let channel = msg["channel"].as_str().unwrap_or_default();
    if channel != CHANNEL {
        return Err(format!("not the roast channel: `{channel}`"));
    }
    let ts = msg["ts"].as_str().ok_or("the message has no ts")?;
    let thread = msg["thread_ts"].as_str().unwrap_or(ts);
    args["channel"] = json!(channel);
    args["thread_ts"] = json!(thread);
    args["mrkdwn"] = json!(false);
    Ok(args)
}

/// A V3 message event of `alice` through her connected account.
fn message_event(id: &str, channel: &str, ts: &str, thread_ts: Option<&str>) -> Value {
    json!({
        "id": id, "type": "composio.trigger.message", "timestamp": "2026-12-01T10:00:00Z",
        "metadata": {"log_id": format!("log_{id}"), "trigger_slug": "SLACK_RECEIVE_MESSAGE",
                     "trigger_id": "ti_alice", "connected_account_id": "ca_alice",
                     "auth_config_id": "ac_slack", "user_id": "alice"},
        "data": {"channel": channel, "user": "U07ALICE", "text": "I'll just push to main",
                 "ts": ts, "thread_ts": thread_ts},
    })
}

/// Each handled event: its id and what the tool call gave.
type Outcome = (String, Result<ToolExecution, ToolError>);

/// A listener on `hub` whose one handler sends the model's reply through `Tools` and reports
/// what the call gave; `configure` registers the processors.
async fn listen(
    hub: &RunningHub,
    configure: impl FnOnce(ListenerBuilder) -> ListenerBuilder,
) -> (ListenerHandle, mpsc::UnboundedReceiver<Outcome>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = Handler::new(
        "reply",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |event: Arc<TriggerEvent>, tools: Tools| {
            let tx = tx.clone();
            async move {
                let result = tools.execute(SEND, model_arguments()).await;
                let _ = tx.send((event.event_id.clone(), result));
            }
        },
    );
    let builder = Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .handler(handler)
        .tools(hub.composio_client().unwrap());
    let handle = configure(builder).build().unwrap().spawn();
    until("the listener to subscribe to the hub", || {
        hub.subscribers() > 0
            && handle
                .health()
                .iter()
                .any(|s| s.health == Health::Connected)
    })
    .await;
    (handle, rx)
}

async fn next_call(feed: &mut tokio::sync::broadcast::Receiver<ToolCallRecord>) -> ToolCallRecord {
    within("the hub to record a tool call", feed.recv())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_processor_forces_channel_thread_and_plain_text_and_the_call_runs_as_the_events_account(
) {
    let hub = Hub::builder().start().await.unwrap();
    let mut feed = hub.watch_tool_calls();
    let (handle, mut outcomes) = listen(&hub, |b| {
        b.pre_process("slack_send_message", reply_in_thread)
    })
    .await;

    // A top-level message: the reply starts its thread.
    hub.publish(&message_event(
        "evt_top",
        CHANNEL,
        "1763630043.512919",
        None,
    ))
    .unwrap();
    let call = next_call(&mut feed).await;
    assert_eq!(call.tool_slug, SEND);
    assert_eq!(
        call.arguments,
        json!({"channel": CHANNEL, "thread_ts": "1763630043.512919", "mrkdwn": false,
               "reply_broadcast": true, "text": ">be you\n>push to main on friday"})
    );
    assert_eq!(call.user_id, "alice");
    assert_eq!(call.connected_account_id.as_deref(), Some("ca_alice"));
    assert!(call.successful, "{call:?}");

    // The handler got the hub's answer: the posted message in the forced channel.
    let (event_id, result) = within("the handler's outcome", outcomes.recv())
        .await
        .unwrap();
    assert_eq!(event_id, "evt_top");
    let execution = result.unwrap();
    assert!(execution.successful);
    assert_eq!(execution.log_id, call.log_id);
    assert_eq!(execution.data["channel"], CHANNEL);
    assert_eq!(execution.data["message"]["thread_ts"], "1763630043.512919");
    assert_eq!(execution.data["ts"], call.data["ts"]);

    // A reply inside a thread: the answer goes to that thread.
    hub.publish(&message_event(
        "evt_in_thread",
        CHANNEL,
        "1763630099.000200",
        Some("1763630001.000100"),
    ))
    .unwrap();
    let call = next_call(&mut feed).await;
    assert_eq!(call.arguments["thread_ts"], "1763630001.000100");
    assert_eq!(call.arguments["channel"], CHANNEL);
    assert_eq!(call.arguments["mrkdwn"], false);
    let (_, result) = within("the handler's outcome", outcomes.recv())
        .await
        .unwrap();
    assert!(result.unwrap().successful);

    // The log holds both, oldest first, as `GET /hub/tool-calls` shows them.
    let log = hub.tool_calls();
    assert_eq!(log.len(), 2);
    let listed: Value = listener_e2e::http::client()
        .get(format!("{}/hub/tool-calls", hub.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!(log));

    handle.shutdown().await.unwrap();
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_processor_shapes_what_the_handler_gets() {
    let hub = Hub::builder().start().await.unwrap();
    let mut feed = hub.watch_tool_calls();
    let (handle, mut outcomes) = listen(&hub, |b| {
        b.pre_process(SEND, reply_in_thread).post_process(
            SEND,
            |event, mut execution: ToolExecution| {
                // Keep what the bot needs to recognise its own reply, and for which event.
                let ts = execution.data["ts"].clone();
                execution.data = json!({"posted_ts": ts, "in_reply_to": event.event_id});
                execution
            },
        )
    })
    .await;

    hub.publish(&message_event(
        "evt_post",
        CHANNEL,
        "1763630200.000100",
        None,
    ))
    .unwrap();
    let call = next_call(&mut feed).await;
    let (event_id, result) = within("the handler's outcome", outcomes.recv())
        .await
        .unwrap();
    assert_eq!(event_id, "evt_post");
    let execution = result.unwrap();
    assert_eq!(
        execution.data,
        json!({"posted_ts": call.data["ts"], "in_reply_to": "evt_post"})
    );
    // The hub recorded the call as sent, not as post-processed.
    assert_eq!(call.data["channel"], CHANNEL);

    handle.shutdown().await.unwrap();
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_pre_processor_gives_the_handler_a_typed_error_and_nothing_is_called() {
    let hub = Hub::builder().start().await.unwrap();
    let mut feed = hub.watch_tool_calls();
    let (handle, mut outcomes) = listen(&hub, |b| b.pre_process(SEND, reply_in_thread)).await;

    hub.publish(&message_event(
        "evt_elsewhere",
        "C_GENERAL",
        "1763630300.000100",
        None,
    ))
    .unwrap();
    let (event_id, result) = within("the handler's outcome", outcomes.recv())
        .await
        .unwrap();
    assert_eq!(event_id, "evt_elsewhere");
    match result {
        Err(ToolError::Refused {
            tool,
            event_id,
            source,
        }) => {
            assert_eq!(tool, SEND);
            assert_eq!(event_id, "evt_elsewhere");
            assert_eq!(source.to_string(), "not the roast channel: `C_GENERAL`");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The refusal happens before any request: by the time the handler saw it, a call would
    // have been recorded.
    assert!(hub.tool_calls().is_empty(), "{:?}", hub.tool_calls());
    assert!(matches!(
        feed.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Empty)
    ));

    // The next message of the roast channel goes through.
    hub.publish(&message_event(
        "evt_roast",
        CHANNEL,
        "1763630301.000100",
        None,
    ))
    .unwrap();
    let call = next_call(&mut feed).await;
    assert_eq!(call.arguments["channel"], CHANNEL);
    assert_eq!(hub.tool_calls().len(), 1);

    handle.shutdown().await.unwrap();
    hub.shutdown().await;
}

#[tokio::test]
async fn a_handler_taking_tools_is_refused_at_build_without_a_client() {
    let handler = Handler::new("reply", Filter::new(), |_tools: Tools| async {});
    let err = Listener::builder()
        .without_registered_handlers()
        .handler(handler)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ListenerBuilder::tools"), "{err}");
}
