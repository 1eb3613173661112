//! Tool execution on the hub: `POST /api/v3.1/tools/execute/{tool_slug}`, with Composio's
//! path, `x-api-key` check, body (`{"arguments", "user_id"?, "connected_account_id"?,
//! "version"?}`) and answer (`{"data", "error", "log_id", "successful"}`). Nothing is run:
//! every call is recorded in a bounded log (`GET /hub/tool-calls`,
//! [`RunningHub::tool_calls`](crate::RunningHub::tool_calls)) and answered as the tool would.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use super::realtime_api::{api_error, authorized};
use super::{ids, HubState};
use listener_core::preview::truncate_chars;

/// Tool calls kept in the hub's log unless told otherwise ([`HubConfig::tool_call_log`](crate::HubConfig::tool_call_log)).
pub const DEFAULT_TOOL_CALL_LOG: usize = 1000;

/// Calls a [`watch_tool_calls`](crate::RunningHub::watch_tool_calls) receiver may fall
/// behind by before it misses some.
const WATCH_CAPACITY: usize = 256;

/// Longest tool slug accepted.
const MAX_SLUG_CHARS: usize = 128;

/// Slack's send tool: answered like Slack's `chat.postMessage`.
const SLACK_SEND_MESSAGE: &str = "SLACK_SEND_MESSAGE";

/// One tool execution the hub received, in its tool-call log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    /// The log id the hub answered with (`log_…`).
    pub log_id: String,
    /// The tool slug of the path, as sent.
    pub tool_slug: String,
    /// The arguments, as sent (`{}` when the body had none).
    pub arguments: Value,
    /// The user the tool was run as (`""` when only a connected account was given).
    pub user_id: String,
    /// The connected account, when given.
    pub connected_account_id: Option<String>,
    /// The pinned tool version, when given.
    pub version: Option<String>,
    /// Whether the hub answered that the tool succeeded.
    pub successful: bool,
    /// The error the hub answered with, when it did not.
    pub error: Option<String>,
    /// The `data` the hub answered with.
    pub data: Value,
    /// When the call arrived (RFC 3339).
    pub at: String,
}

/// The hub's tool-call log: the most recent calls, oldest first, and a feed of new ones.
pub(crate) struct ToolCalls {
    log: Mutex<VecDeque<ToolCallRecord>>,
    capacity: usize,
    feed: broadcast::Sender<ToolCallRecord>,
    /// Numbers the `ts` of the messages "posted", so that each one is unique.
    posted: AtomicU64,
}

impl ToolCalls {
    pub(crate) fn new(capacity: usize) -> Self {
        ToolCalls {
            log: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            feed: broadcast::channel(WATCH_CAPACITY).0,
            posted: AtomicU64::new(0),
        }
    }

    fn record(&self, call: ToolCallRecord) {
        if self.capacity > 0 {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            while log.len() >= self.capacity {
                log.pop_front();
            }
            log.push_back(call.clone());
        }
        // Nobody watching is fine.
        let _ = self.feed.send(call);
    }

    /// The log, oldest first.
    pub(crate) fn list(&self) -> Vec<ToolCallRecord> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }

    pub(crate) fn watch(&self) -> broadcast::Receiver<ToolCallRecord> {
        self.feed.subscribe()
    }

    /// A fresh Slack message `ts`: now, with a sequence number as the fraction.
    fn next_ts(&self) -> String {
        let n = self.posted.fetch_add(1, Ordering::Relaxed) + 1;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("{secs}.{:06}", n % 1_000_000)
    }
}

/// The body of `POST /api/v3.1/tools/execute/{tool_slug}`; unknown fields are ignored.
#[derive(Deserialize)]
struct ExecuteBody {
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    connected_account_id: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

type Answer = (StatusCode, Json<Value>);

fn check_slug(slug: &str) -> Result<(), Answer> {
    let ok = !slug.is_empty()
        && slug.chars().count() <= MAX_SLUG_CHARS
        && slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "tool slug `{}` must be 1 to {MAX_SLUG_CHARS} letters, digits, `_` or `-`",
                truncate_chars(slug, 80)
            ),
        ))
    }
}

/// A checked request body.
#[derive(Debug)]
struct Call {
    arguments: Map<String, Value>,
    user_id: String,
    connected_account_id: Option<String>,
    version: Option<String>,
}

/// Checks a body: JSON, `arguments` an object (absent or `null` is `{}`), a user id or a
/// connected account.
fn parse_body(body: &[u8]) -> Result<Call, Answer> {
    let bad = |message: String| api_error(StatusCode::BAD_REQUEST, &message);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            "expected a JSON body {\"arguments\": {…}, \"user_id\" | \"connected_account_id\"}"
                .into(),
        ));
    }
    let parsed: ExecuteBody = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "invalid body (a JSON object {{arguments, user_id?, connected_account_id?, version?}} is expected): {e}"
        ))
    })?;
    let arguments = match parsed.arguments {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(bad("`arguments` must be a JSON object".into())),
    };
    let user_id = parsed.user_id.unwrap_or_default();
    let account = parsed.connected_account_id.filter(|a| !a.trim().is_empty());
    if user_id.trim().is_empty() && account.is_none() {
        return Err(bad("give a `user_id` or a `connected_account_id`".into()));
    }
    Ok(Call {
        arguments,
        user_id,
        connected_account_id: account,
        version: parsed.version,
    })
}

/// What the tool "did": `(successful, error, data)`. Slack's send tool is answered as Slack
/// would (`channel_not_found` without a channel, `no_text` without text); any other tool
/// succeeds with empty data.
fn run(calls: &ToolCalls, slug: &str, args: &Map<String, Value>) -> (bool, Option<String>, Value) {
    if !slug.eq_ignore_ascii_case(SLACK_SEND_MESSAGE) {
        return (true, None, json!({}));
    }
    let text_of = |k: &str| {
        args.get(k)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
    };
    let Some(channel) = text_of("channel") else {
        return (
            false,
            Some("channel_not_found".into()),
            json!({"ok": false}),
        );
    };
    let has_blocks = args
        .get("blocks")
        .is_some_and(|b| b.as_array().is_some_and(|a| !a.is_empty()) || b.is_string());
    let text = text_of("text").or_else(|| text_of("markdown_text"));
    if text.is_none() && !has_blocks {
        return (false, Some("no_text".into()), json!({"ok": false}));
    }
    let ts = calls.next_ts();
    let mut message = json!({"type": "message", "text": text.unwrap_or_default(), "ts": ts, "bot_id": "B_HUB", "user": "U_HUB"});
    if let Some(thread) = text_of("thread_ts") {
        message["thread_ts"] = json!(thread);
    }
    (
        true,
        None,
        json!({"ok": true, "channel": channel, "ts": ts, "message": message}),
    )
}

/// `POST /api/v3.1/tools/execute/{tool_slug}`.
pub(crate) async fn execute(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Answer {
    if let Err(e) = authorized(&hub, &headers) {
        return e;
    }
    let Ok(Path(slug)) = slug else {
        return api_error(StatusCode::BAD_REQUEST, "the tool slug is not valid UTF-8");
    };
    if let Err(e) = check_slug(&slug) {
        return e;
    }
    let Call {
        arguments,
        user_id,
        connected_account_id,
        version,
    } = match parse_body(&body) {
        Ok(call) => call,
        Err(e) => return e,
    };
    let (successful, error, data) = run(&hub.tool_calls, &slug, &arguments);
    let log_id = ids::fresh("log_");
    tracing::info!(tool = %slug, %user_id, connected_account_id = connected_account_id.as_deref().unwrap_or(""), successful, %log_id, "hub: tool call recorded");
    hub.tool_calls.record(ToolCallRecord {
        log_id: log_id.clone(),
        tool_slug: slug,
        arguments: Value::Object(arguments),
        user_id,
        connected_account_id,
        version,
        successful,
        error: error.clone(),
        data: data.clone(),
        at: ids::now_rfc3339(),
    });
    (
        StatusCode::OK,
        Json(json!({"data": data, "error": error, "log_id": log_id, "successful": successful})),
    )
}

/// `GET /hub/tool-calls[?tool=SLUG][&limit=N]`: the log, oldest first; `tool` keeps one
/// tool's calls (case-insensitive), `limit` the most recent N.
pub(crate) async fn list(
    State(hub): State<Arc<HubState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer {
    let Ok(Query(query)) = query else {
        return api_error(StatusCode::BAD_REQUEST, "invalid query string");
    };
    let limit = match query.get("limit").map(|l| l.trim().parse::<usize>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return api_error(StatusCode::BAD_REQUEST, "`limit` must be a whole number");
        }
    };
    let mut items = hub.tool_calls.list();
    if let Some(tool) = query
        .get("tool")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        items.retain(|c| c.tool_slug.eq_ignore_ascii_case(tool));
    }
    if let Some(n) = limit {
        let skip = items.len().saturating_sub(n);
        items.drain(..skip);
    }
    (StatusCode::OK, Json(json!({"items": items})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls() -> ToolCalls {
        ToolCalls::new(2)
    }

    #[test]
    fn slack_sends_are_answered_like_slack() {
        let c = calls();
        let args = |v: Value| v.as_object().cloned().unwrap();
        let (ok, err, data) = run(
            &c,
            "slack_send_message",
            &args(json!({"channel": "C1", "text": "hi", "thread_ts": "1.2"})),
        );
        assert!(ok && err.is_none());
        assert_eq!(data["channel"], "C1");
        assert_eq!(data["message"]["thread_ts"], "1.2");
        assert_eq!(data["message"]["text"], "hi");
        let ts = data["ts"].as_str().unwrap();
        assert!(ts.ends_with(".000001"), "{ts}");
        let (_, _, again) = run(
            &c,
            SLACK_SEND_MESSAGE,
            &args(json!({"channel": "C1", "markdown_text": "*x*"})),
        );
        assert_ne!(again["ts"], data["ts"]);
        assert_eq!(again["message"]["text"], "*x*");

        let (ok, err, _) = run(&c, SLACK_SEND_MESSAGE, &args(json!({"text": "hi"})));
        assert!(!ok);
        assert_eq!(err.as_deref(), Some("channel_not_found"));
        let (ok, err, _) = run(
            &c,
            SLACK_SEND_MESSAGE,
            &args(json!({"channel": "C1", "text": " "})),
        );
        assert!(!ok);
        assert_eq!(err.as_deref(), Some("no_text"));
        let (ok, _, data) = run(&c, "GITHUB_STAR_A_REPOSITORY", &Map::new());
        assert!(ok);
        assert_eq!(data, json!({}));
    }

    #[test]
    fn the_log_is_bounded_and_oldest_first() {
        let c = calls();
        let mut feed = c.watch();
        for i in 0..3 {
            c.record(ToolCallRecord {
                log_id: format!("log_{i}"),
                tool_slug: "T".into(),
                arguments: json!({}),
                user_id: "u".into(),
                connected_account_id: None,
                version: None,
                successful: true,
                error: None,
                data: json!({}),
                at: String::new(),
            });
        }
        let ids: Vec<String> = c.list().into_iter().map(|r| r.log_id).collect();
        assert_eq!(ids, ["log_1", "log_2"]);
        assert_eq!(feed.try_recv().unwrap().log_id, "log_0");

        let none = ToolCalls::new(0);
        none.record(c.list()[0].clone());
        assert!(none.list().is_empty());
    }

    async fn json_of(r: reqwest::Response) -> Value {
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
    }

    /// The endpoint over HTTP: 401 without the key, 400 for a bad slug or body, 200 and a
    /// recorded call otherwise.
    #[tokio::test]
    async fn the_endpoint_answers_401_400_and_records_only_accepted_calls() {
        let hub = crate::Hub::builder()
            .tool_call_log(10)
            .start()
            .await
            .unwrap();
        let http = listener_core::http::ClientOptions {
            connect_timeout: std::time::Duration::from_secs(5),
            timeout: std::time::Duration::from_secs(10),
            user_agent: "hub-test".into(),
            follow_redirects: false,
        }
        .build()
        .unwrap();
        let url = |slug: &str| format!("{}/api/v3.1/tools/execute/{slug}", hub.base_url());
        let post = |slug: &str, key: Option<&str>, body: &str| {
            let mut r = http
                .post(url(slug))
                .header("content-type", "application/json")
                .body(body.to_owned());
            if let Some(key) = key {
                r = r.header("x-api-key", key);
            }
            r.send()
        };
        let good = r#"{"arguments": {"channel": "C1", "text": "hi"}, "user_id": "u1", "connected_account_id": "ca_1"}"#;
        let key = Some(hub.api_key());
        let cases = [
            (SLACK_SEND_MESSAGE, None, good, 401, "missing x-api-key"),
            (
                SLACK_SEND_MESSAGE,
                Some("wrong"),
                good,
                401,
                "invalid API key",
            ),
            ("BAD%20SLUG", key, good, 400, "tool slug"),
            (SLACK_SEND_MESSAGE, key, "{oops", 400, "invalid body"),
            (
                SLACK_SEND_MESSAGE,
                key,
                r#"{"arguments": "x", "user_id": "u"}"#,
                400,
                "`arguments`",
            ),
            (
                SLACK_SEND_MESSAGE,
                key,
                r#"{"arguments": {}}"#,
                400,
                "user_id",
            ),
        ];
        for (slug, key, body, status, message) in cases {
            let r = post(slug, key, body).await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{slug} {body}");
            let answer = json_of(r).await;
            let text = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(text.contains(message), "{status}: {answer}");
        }
        assert!(hub.tool_calls().is_empty());

        let mut feed = hub.watch_tool_calls();
        let r = post(SLACK_SEND_MESSAGE, key, good).await.unwrap();
        assert_eq!(r.status(), 200);
        let answer = json_of(r).await;
        assert_eq!(answer["successful"], true);
        assert_eq!(answer["error"], Value::Null);
        assert_eq!(answer["data"]["channel"], "C1");
        let log_id = answer["log_id"].as_str().unwrap();
        let call = feed.recv().await.unwrap();
        assert_eq!(call.log_id, log_id);
        assert_eq!(
            (call.user_id.as_str(), call.connected_account_id.as_deref()),
            ("u1", Some("ca_1"))
        );
        assert_eq!(call.arguments, json!({"channel": "C1", "text": "hi"}));
        assert_eq!(hub.tool_calls(), vec![call.clone()]);

        let listed = json_of(
            http.get(format!(
                "{}/hub/tool-calls?tool=slack_send_message&limit=5",
                hub.base_url()
            ))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(listed["items"], json!([call]));
        let r = http
            .get(format!("{}/hub/tool-calls?limit=lots", hub.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        hub.shutdown().await;
    }

    #[test]
    fn bodies_and_slugs_are_checked() {
        assert!(check_slug("SLACK_SEND_MESSAGE").is_ok());
        for bad in ["", "a/b", "a b", "é", &"x".repeat(MAX_SLUG_CHARS + 1)] {
            assert_eq!(
                check_slug(bad).unwrap_err().0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        let call = parse_body(br#"{"user_id": "u", "version": "20250905_00"}"#).unwrap();
        assert!(call.arguments.is_empty());
        assert_eq!(
            (
                call.user_id.as_str(),
                call.connected_account_id,
                call.version.as_deref()
            ),
            ("u", None, Some("20250905_00"))
        );
        let call = parse_body(br#"{"arguments": null, "connected_account_id": "ca_1"}"#).unwrap();
        assert_eq!(
            (call.user_id.as_str(), call.connected_account_id.as_deref()),
            ("", Some("ca_1"))
        );
        for bad in [
            &b""[..],
            b"  ",
            b"not json",
            b"[]",
            br#"{"arguments": [1], "user_id": "u"}"#,
            br#"{"arguments": {}, "user_id": 7}"#,
            br#"{"arguments": {}}"#,
            br#"{"arguments": {}, "user_id": " ", "connected_account_id": ""}"#,
        ] {
            let (status, Json(body)) = parse_body(bad).unwrap_err();
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
    }
}
