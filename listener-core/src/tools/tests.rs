//! `Tools` against a local server playing Composio's tool endpoint, recording each request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::*;
use crate::event::ConnectedAccount;
use crate::testing::Harness;
use crate::{Backoff, Filter, Handler, Listener};

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    api_key: String,
    body: Value,
}

#[derive(Default)]
struct Server {
    answers: Mutex<VecDeque<(u16, Value)>>,
    seen: Mutex<Vec<Seen>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn script(&self, status: u16, body: Value) {
        self.answers.lock().unwrap().push_back((status, body));
    }
}

async fn answer(
    State(server): State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    server.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        api_key: headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: body.clone(),
    });
    let (status, answer) = server.answers.lock().unwrap().pop_front().unwrap_or((
        200,
        json!({"data": {"ok": true, "ts": "1800000000.000001", "channel": body["arguments"]["channel"]},
               "error": null, "log_id": "log_1", "successful": true}),
    ));
    let mut response = (StatusCode::from_u16(status).unwrap(), answer.to_string()).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn server() -> (ComposioClient, Arc<Server>) {
    let server = Arc::new(Server::default());
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(Arc::clone(&server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = ComposioClient::builder("key_tools")
        .base_url(format!("http://{addr}"))
        .retry(Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            multiplier: 2.0,
            max_attempts: Some(0),
        })
        .build()
        .unwrap();
    (client, server)
}

const SEND: &str = "SLACK_SEND_MESSAGE";

fn message_event() -> TriggerEvent {
    TriggerEvent::new(
        "SLACK_RECEIVE_MESSAGE",
        json!({"channel": "C1", "ts": "1700000000.000100", "text": "hello"}),
    )
    .with_event_id("evt_1")
    .with_user_id("user-1")
    .with_connected_account(ConnectedAccount {
        id: "ca_1".into(),
        user_id: "user-1".into(),
        ..ConnectedAccount::default()
    })
}

/// Forces the message's channel and thread and plain text; refuses an event without them.
fn reply_in_thread(event: &TriggerEvent, mut args: Value) -> Result<Value, &'static str> {
    let channel = event.payload["channel"].as_str().ok_or("no channel")?;
    let ts = event.payload["ts"].as_str().ok_or("no ts")?;
    args["channel"] = json!(channel);
    args["thread_ts"] = json!(ts);
    args["mrkdwn"] = json!(false);
    Ok(args)
}

fn model_arguments() -> Value {
    json!({"channel": "C_WRONG", "mrkdwn": true, "text": "a roast"})
}

#[tokio::test]
async fn pre_processors_force_arguments_and_the_event_names_the_account() {
    let (client, server) = server().await;
    // Registered in lower case, called in upper case; a second one runs on the first's output.
    let processors = ToolProcessors::new()
        .pre("slack_send_message", reply_in_thread)
        .pre(SEND, |_: &TriggerEvent, mut args: Value| {
            args["text"] = json!(format!("{}!", args["text"].as_str().unwrap_or_default()));
            Ok::<_, std::convert::Infallible>(args)
        });
    let tools = Tools::new(client, processors, Arc::new(message_event()));
    assert_eq!(tools.user_id(), "user-1");
    assert_eq!(tools.connected_account_id(), Some("ca_1"));

    let prepared = tools.prepare(SEND, model_arguments()).unwrap();
    let expected = json!({"channel": "C1", "thread_ts": "1700000000.000100", "mrkdwn": false, "text": "a roast!"});
    assert_eq!(prepared.arguments(), &expected);
    assert!(server.seen().is_empty(), "prepare sends nothing");

    let data = tools.run(SEND, model_arguments()).await.unwrap();
    assert_eq!(data["ts"], "1800000000.000001");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/v3.1/tools/execute/SLACK_SEND_MESSAGE");
    assert_eq!(seen[0].api_key, "key_tools");
    assert_eq!(
        seen[0].body,
        json!({"arguments": expected, "user_id": "user-1", "connected_account_id": "ca_1"})
    );
}

#[tokio::test]
async fn a_refusing_pre_processor_sends_nothing_and_says_why() {
    let (client, server) = server().await;
    let processors = ToolProcessors::new().pre(SEND, reply_in_thread);
    let not_a_message = TriggerEvent::new("GITHUB_STAR_ADDED_EVENT", json!({}))
        .with_event_id("evt_gh")
        .with_user_id("u");
    let tools = Tools::new(client, processors, Arc::new(not_a_message));
    let err = tools.execute(SEND, model_arguments()).await.unwrap_err();
    match &err {
        ToolError::Refused {
            tool,
            event_id,
            source,
        } => {
            assert_eq!((tool.as_str(), event_id.as_str()), (SEND, "evt_gh"));
            assert_eq!(source.to_string(), "no channel");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("refused"), "{err}");
    // Other tools are not affected.
    tools
        .execute("SLACK_ADD_REACTION", json!({"name": "eyes"}))
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/v3.1/tools/execute/SLACK_ADD_REACTION");
    assert_eq!(seen[0].body["arguments"], json!({"name": "eyes"}));
}

#[tokio::test]
async fn post_processors_shape_the_answer_and_run_sees_failures() {
    let (client, server) = server().await;
    let processors = ToolProcessors::new().post(SEND, |event, mut execution: ToolExecution| {
        execution.data["for_event"] = json!(event.event_id);
        execution
    });
    let tools = Tools::new(client, processors, Arc::new(message_event()));
    let execution = tools.execute(SEND, model_arguments()).await.unwrap();
    assert!(execution.successful);
    assert_eq!(execution.data["for_event"], "evt_1");

    server.script(
        200,
        json!({"data": {}, "error": "not_in_channel", "log_id": "log_2", "successful": false}),
    );
    let err = tools.run(SEND, model_arguments()).await.unwrap_err();
    match err {
        ToolError::Unsuccessful {
            message,
            log_id,
            data,
            ..
        } => {
            assert_eq!(
                (message.as_str(), log_id.as_str()),
                ("not_in_channel", "log_2")
            );
            // The post-processor ran on the failed answer too.
            assert_eq!(data["for_event"], "evt_1");
        }
        other => panic!("{other:?}"),
    }

    server.script(401, json!({"error": {"message": "invalid API key"}}));
    let err = tools.execute(SEND, model_arguments()).await.unwrap_err();
    assert!(matches!(err, ToolError::Api { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid API key"), "{err}");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn calls_without_an_account_or_with_bad_arguments_are_not_sent() {
    let (client, server) = server().await;
    let anonymous = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({})).with_event_id("evt_a");
    let tools = Tools::new(client.clone(), ToolProcessors::new(), Arc::new(anonymous));
    let err = tools.execute(SEND, json!({"text": "x"})).await.unwrap_err();
    assert!(matches!(err, ToolError::NoAccount { .. }), "{err:?}");

    let processors = ToolProcessors::new().pre(SEND, |_: &TriggerEvent, _args: Value| {
        Ok::<_, BoxError>(json!(["not", "an", "object"]))
    });
    let tools = Tools::new(client, processors, Arc::new(message_event()));
    let err = tools.execute(SEND, json!({"text": "x"})).await.unwrap_err();
    assert!(
        matches!(
            err,
            ToolError::InvalidArguments {
                found: "an array",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(server.seen().is_empty());

    // An event with only a connected account runs through it, with no user id.
    let (client, server) = self::server().await;
    let account_only = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({}))
        .with_connected_account(ConnectedAccount {
            id: "ca_only".into(),
            ..ConnectedAccount::default()
        });
    let tools = Tools::new(client, ToolProcessors::new(), Arc::new(account_only));
    tools.execute(SEND, json!({"text": "x"})).await.unwrap();
    assert_eq!(
        server.seen()[0].body,
        json!({"arguments": {"text": "x"}, "connected_account_id": "ca_only"})
    );
}

#[tokio::test]
async fn the_extractor_takes_the_listeners_client_and_processors() {
    let (client, server) = server().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = Handler::new(
        "reply",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |tools: Tools| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(tools.execute(SEND, model_arguments()).await);
            }
        },
    );
    let harness = Harness::new(
        Listener::builder()
            .without_registered_handlers()
            .handler(handler)
            .pre_process(SEND, reply_in_thread)
            .post_process(SEND, |_, mut execution| {
                execution.log_id = format!("post:{}", execution.log_id);
                execution
            })
            .tools(client),
    )
    .unwrap();
    let report = harness.dispatch(message_event()).await.unwrap();
    assert!(report.all_ok(), "{report:?}");
    let execution = rx.recv().await.unwrap().unwrap();
    assert_eq!(execution.log_id, "post:log_1");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body,
        json!({"arguments": {"channel": "C1", "thread_ts": "1700000000.000100", "mrkdwn": false, "text": "a roast"},
               "user_id": "user-1", "connected_account_id": "ca_1"})
    );
}

#[test]
fn a_handler_taking_tools_needs_a_client() {
    let handler = Handler::new("reply", Filter::new(), |_tools: Tools| async {});
    let err = Listener::builder()
        .without_registered_handlers()
        .handler(handler)
        .pre_process(SEND, reply_in_thread)
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("reply") && text.contains("ListenerBuilder::tools"),
        "{text}"
    );
    assert!(
        matches!(
            err,
            crate::Error::Extract(ExtractError::Refused {
                extractor: "Tools",
                ..
            })
        ),
        "{err:?}"
    );
}
