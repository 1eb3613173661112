//! A local HTTP server playing an OpenAI-compatible model server and Composio's management
//! API at once, recording every request.
//!
//! - `POST /v1/chat/completions`: answers with one `SLACK_SEND_MESSAGE` tool call. By default
//!   its arguments are deliberately wrong about where to post (`channel: "C_MODEL_WRONG"`,
//!   `thread_ts: "0000000000.000000"`, `mrkdwn: true`, `reply_broadcast: true`) and its text
//!   is [`model_text`] of the user message, so a test can tell what the bot fixed.
//! - `POST /api/v3.1/tools/execute/{slug}`: a successful run posting a message with a fresh
//!   `ts` ([`POSTED_TS_PREFIX`]…).
//! - `GET /api/v3.1/trigger_instances/active`: [`FakeApis::set_active_triggers`] (default
//!   none); `POST /api/v3.1/trigger_instances/{slug}/upsert`: `{"trigger_id": "ti_fake_1"}`.
//! - Anything else: 404 with Composio's error object.
//!
//! [`FakeApis::script`] queues canned answers for a path ahead of the defaults.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The `ts` prefix of messages the fake Slack tool "posts".
pub const POSTED_TS_PREFIX: &str = "1800000000.";

/// The text the fake model roasts `user_text` with.
pub fn model_text(user_text: &str) -> String {
    format!("```\n>be you\n>write \"{user_text}\"\n>get roasted by a fake model\n```")
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body as JSON (`Value::Null` if it was not JSON).
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Fake {
    requests: Mutex<Vec<Recorded>>,
    scripted: Mutex<HashMap<String, VecDeque<(u16, Value)>>>,
    model_arguments: Mutex<Option<Value>>,
    active_triggers: Mutex<Value>,
    posted: AtomicU64,
}

/// The running fake. Stops when dropped.
pub struct FakeApis {
    addr: SocketAddr,
    fake: Arc<Fake>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApis {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApis {
    /// Serves on an ephemeral port of 127.0.0.1.
    pub async fn start() -> FakeApis {
        let fake = Arc::new(Fake::default());
        *fake.active_triggers.lock().unwrap() = json!({"items": [], "next_cursor": null});
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApis { addr, fake, task }
    }

    /// `http://127.0.0.1:PORT`: Composio's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the OpenAI-compatible base URL.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.fake.requests.lock().unwrap().clone()
    }

    /// The requests whose path is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// The chat completion requests.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests_to("/v1/chat/completions")
    }

    /// The tool executions of `slug`.
    pub fn tool_requests(&self, slug: &str) -> Vec<Recorded> {
        self.requests_to(&format!("/api/v3.1/tools/execute/{slug}"))
    }

    /// Makes the model call the tool with exactly these arguments from now on.
    pub fn set_model_arguments(&self, arguments: Value) {
        *self.fake.model_arguments.lock().unwrap() = Some(arguments);
    }

    /// The answer of `GET /api/v3.1/trigger_instances/active` from now on.
    pub fn set_active_triggers(&self, answer: Value) {
        *self.fake.active_triggers.lock().unwrap() = answer;
    }

    /// Answers the next request to `path` with `status` and `body` (before the default).
    pub fn script(&self, path: &str, status: u16, body: Value) {
        self.fake
            .scripted
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .push_back((status, body));
    }
}

async fn answer(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    });
    let scripted = fake
        .scripted
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    if let Some((status, body)) = scripted {
        return (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
    }
    let ok = |v: Value| (StatusCode::OK, Json(v)).into_response();
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => {
            let user_text = body["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_owned();
            let arguments = fake
                .model_arguments
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| {
                    json!({
                        "channel": "C_MODEL_WRONG",
                        "thread_ts": "0000000000.000000",
                        "mrkdwn": true,
                        "reply_broadcast": true,
                        "text": model_text(&user_text),
                    })
                });
            ok(json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [{
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "SLACK_SEND_MESSAGE", "arguments": arguments.to_string()}
                        }]
                    }
                }]
            }))
        }
        ("POST", p) if p.starts_with("/api/v3.1/tools/execute/") => {
            let n = fake.posted.fetch_add(1, Ordering::SeqCst) + 1;
            let args = &body["arguments"];
            ok(json!({
                "data": {"ok": true, "channel": args["channel"], "ts": format!("{POSTED_TS_PREFIX}{n:06}"),
                         "message": {"text": args["text"], "thread_ts": args["thread_ts"]}},
                "error": null,
                "log_id": format!("log_fake_{n}"),
                "successful": true
            }))
        }
        ("GET", "/api/v3.1/trigger_instances/active") => {
            ok(fake.active_triggers.lock().unwrap().clone())
        }
        ("POST", p) if p.starts_with("/api/v3.1/trigger_instances/") && p.ends_with("/upsert") => {
            ok(json!({"trigger_id": "ti_fake_1"}))
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"error": {"message": format!("no route {method} {path}"), "status": 404,
                                  "slug": "Route_NotFound", "request_id": "req_fake"}}),
            ),
        )
            .into_response(),
    }
}
