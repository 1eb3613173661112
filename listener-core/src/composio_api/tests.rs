//! The client against a scripted local server that records every request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::*;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    api_key: String,
    body: Value,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<(u16, String)>>,
    seen: Mutex<Vec<Seen>>,
}

async fn answer(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        api_key: headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let (status, body) = script
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((500, "no answer scripted".into()));
    let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
    r.headers_mut()
        .insert("x-request-id", "req_from_header".parse().unwrap());
    r
}

/// A server answering each request with the next scripted `(status, body)`.
async fn server(answers: &[(u16, &str)]) -> (ComposioClient, Arc<Script>) {
    let script = Arc::new(Script::default());
    script
        .answers
        .lock()
        .unwrap()
        .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(Arc::clone(&script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = ComposioClient::builder("key_123")
        .base_url(format!("http://{addr}/"))
        .retry(fast_retry(3))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    (client, script)
}

fn fast_retry(max: u32) -> Backoff {
    Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(4),
        multiplier: 2.0,
        max_attempts: Some(max),
    }
}

fn seen(script: &Script) -> Vec<Seen> {
    script.seen.lock().unwrap().clone()
}

#[tokio::test]
async fn upsert_retries_429_and_5xx_then_succeeds() {
    let (client, script) = server(&[
        (429, r#"{"error": {"message": "slow down"}}"#),
        (503, "unavailable"),
        (200, r#"{"trigger_id": "ti_1"}"#),
    ])
    .await;
    let req = UpsertTrigger::for_user("u 1").config(json!({"owner": "o", "repo": "r"}));
    let got = client
        .upsert_trigger("GITHUB_STAR_ADDED_EVENT", &req)
        .await
        .unwrap();
    assert_eq!(got.trigger_id, "ti_1");
    let seen = seen(&script);
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(
            s.uri,
            "/api/v3.1/trigger_instances/GITHUB_STAR_ADDED_EVENT/upsert"
        );
        assert_eq!(s.api_key, "key_123");
        assert_eq!(
            s.body,
            json!({"user_id": "u 1", "trigger_config": {"owner": "o", "repo": "r"}})
        );
    }
}

#[tokio::test]
async fn errors_carry_the_error_object_and_4xx_is_not_retried() {
    let (client, script) = server(&[(
        404,
        r#"{"error": {"message": "Trigger type not found", "code": 1404, "slug": "TriggerType_NotFound",
            "status": 404, "request_id": "req_9", "suggested_fix": "Check the trigger slug"}}"#,
    )])
    .await;
    let err = client.get_trigger_type("NOPE").await.unwrap_err();
    assert_eq!(seen(&script).len(), 1);
    assert_eq!(seen(&script)[0].uri, "/api/v3.1/triggers_types/NOPE");
    let obj = err.error_object().expect("an API error");
    assert_eq!(obj.message, "Trigger type not found");
    assert_eq!(obj.slug.as_deref(), Some("TriggerType_NotFound"));
    assert_eq!(obj.status, Some(404));
    assert_eq!(obj.code, Some(1404));
    assert_eq!(obj.request_id.as_deref(), Some("req_9"));
    assert_eq!(obj.suggested_fix.as_deref(), Some("Check the trigger slug"));
    assert!(err.is_status(404));
    let text = err.to_string();
    assert!(
        text.contains("GET /api/v3.1/triggers_types/NOPE answered 404"),
        "{text}"
    );
}

#[tokio::test]
async fn retries_stop_at_the_limit_with_the_last_answer() {
    let (client, script) = server(&[
        (500, "{}"),
        (502, "{}"),
        (503, "{}"),
        (500, r#"{"error": {"message": "still down"}}"#),
        (200, "{}"),
    ])
    .await;
    let err = client.list_webhook_subscriptions().await.unwrap_err();
    assert_eq!(seen(&script).len(), 4, "first try + 3 retries");
    match &err {
        ApiError::Api {
            status,
            attempts,
            error,
            ..
        } => {
            assert_eq!((*status, *attempts), (500, 4));
            assert_eq!(error.message, "still down");
            assert_eq!(error.request_id.as_deref(), Some("req_from_header"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tool_execution_sends_arguments_and_reports_tool_failure() {
    let (client, script) = server(&[
        (
            200,
            r#"{"data": {"ok": true, "ts": "1.2"}, "error": null, "log_id": "log_1", "successful": true}"#,
        ),
        (
            200,
            r#"{"data": {}, "error": "channel_not_found", "log_id": "log_2", "successful": false}"#,
        ),
    ])
    .await;
    let req = ExecuteTool::new("default", json!({"channel": "C1", "text": "hi"}))
        .connected_account("ca_1");
    let ok = client
        .execute_tool("SLACK_SEND_MESSAGE", &req)
        .await
        .unwrap();
    assert!(ok.successful);
    assert_eq!(ok.log_id, "log_1");
    assert_eq!(
        ok.clone().into_result("SLACK_SEND_MESSAGE").unwrap()["ts"],
        "1.2"
    );
    let failed = client
        .execute_tool("SLACK_SEND_MESSAGE", &req)
        .await
        .unwrap();
    let err = failed.into_result("SLACK_SEND_MESSAGE").unwrap_err();
    assert!(
        matches!(&err, ApiError::ToolFailed { message, log_id, .. } if message == "channel_not_found" && log_id == "log_2"),
        "{err:?}"
    );
    let seen = seen(&script);
    assert_eq!(seen[0].uri, "/api/v3.1/tools/execute/SLACK_SEND_MESSAGE");
    assert_eq!(
        seen[0].body,
        json!({"arguments": {"channel": "C1", "text": "hi"}, "user_id": "default", "connected_account_id": "ca_1"})
    );
}

#[tokio::test]
async fn webhook_subscription_calls_use_their_paths_and_read_either_key_style() {
    let (client, script) = server(&[
        (
            201,
            r#"{"id": "ws_1", "webhook_url": "https://x/h", "version": "V3", "enabled_events": ["composio.trigger.message"], "secret": "whsec_abc", "created_at": "t0"}"#,
        ),
        (
            200,
            r#"{"items": [{"id": "ws_1", "webhookUrl": "https://x/h", "version": "V3", "enabledEvents": ["a", "b"], "updatedAt": "t1"}]}"#,
        ),
        (200, r#"{"id": "ws_1", "webhook_url": "https://x/h"}"#),
        (200, r#"{"id": "ws_1", "webhook_url": "https://y/h", "enabled_events": ["composio.connected_account.expired"]}"#),
        (200, r#"{"id": "ws_1", "secret": "whsec_new"}"#),
        (200, r#"{"items": ["composio.trigger.message", {"event_type": "composio.connected_account.expired", "description": "d"}]}"#),
        (204, ""),
        (200, r#"{"id": "we_1", "toolkit_slug": "slack", "client_id": "cid", "webhook_url": "https://backend/x", "data": {"k": 1}}"#),
    ])
    .await;
    let created = client
        .create_webhook_subscription(
            &CreateWebhookSubscription::new("https://x/h")
                .version("V3")
                .events(["composio.trigger.message"]),
        )
        .await
        .unwrap();
    assert_eq!(created.secret.as_deref(), Some("whsec_abc"));
    assert!(
        !format!("{created:?}").contains("whsec_abc"),
        "Debug hides the secret"
    );
    let listed = client.list_webhook_subscriptions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].webhook_url, "https://x/h");
    assert_eq!(listed[0].enabled_events, vec!["a", "b"]);
    assert_eq!(listed[0].updated_at.as_deref(), Some("t1"));
    let one = client.get_webhook_subscription("ws_1").await.unwrap();
    assert_eq!(one.id, "ws_1");
    let update = UpdateWebhookSubscription {
        webhook_url: Some("https://y/h".into()),
        enabled_events: Some(vec!["composio.connected_account.expired".into()]),
        ..UpdateWebhookSubscription::default()
    };
    let updated = client
        .update_webhook_subscription("ws_1", &update)
        .await
        .unwrap();
    assert_eq!(updated.webhook_url, "https://y/h");
    let rotated = client.rotate_webhook_secret("ws_1").await.unwrap();
    assert_eq!(rotated.secret.as_deref(), Some("whsec_new"));
    let types = client.webhook_event_types().await.unwrap();
    assert_eq!(types[0].event_type, "composio.trigger.message");
    assert_eq!(types[1].event_type, "composio.connected_account.expired");
    assert_eq!(types[1].description.as_deref(), Some("d"));
    let deleted = client.delete_webhook_subscription("ws_1").await.unwrap();
    assert!(deleted.is_empty());
    let endpoint = client
        .create_webhook_endpoint(&CreateWebhookEndpoint {
            toolkit_slug: "slack".into(),
            client_id: "cid".into(),
        })
        .await
        .unwrap();
    assert_eq!(endpoint.webhook_url, "https://backend/x");
    assert_eq!(endpoint.data["k"], 1);

    let calls: Vec<(String, String)> = seen(&script)
        .into_iter()
        .map(|s| (s.method, s.uri))
        .collect();
    let expect = [
        ("POST", "/api/v3.1/webhook_subscriptions"),
        ("GET", "/api/v3.1/webhook_subscriptions"),
        ("GET", "/api/v3.1/webhook_subscriptions/ws_1"),
        ("PATCH", "/api/v3.1/webhook_subscriptions/ws_1"),
        ("POST", "/api/v3.1/webhook_subscriptions/ws_1/rotate_secret"),
        ("GET", "/api/v3.1/webhook_subscriptions/event_types"),
        ("DELETE", "/api/v3.1/webhook_subscriptions/ws_1"),
        ("POST", "/api/v3/webhook_endpoints"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(calls, expect);
    let bodies: Vec<Value> = seen(&script).into_iter().map(|s| s.body).collect();
    assert_eq!(
        bodies[0],
        json!({"webhook_url": "https://x/h", "version": "V3", "enabled_events": ["composio.trigger.message"]})
    );
    assert_eq!(
        bodies[3],
        json!({"webhook_url": "https://y/h", "enabled_events": ["composio.connected_account.expired"]})
    );
    assert_eq!(
        bodies[7],
        json!({"toolkit_slug": "slack", "client_id": "cid"})
    );
}

#[tokio::test]
async fn trigger_management_paths_queries_and_answers() {
    let (client, script) = server(&[
        (
            200,
            r#"{"items": [{"id": "ti_1", "trigger_name": "SLACK_RECEIVE_MESSAGE", "connected_account_id": "ca_1",
                "trigger_config": {}, "disabled_at": null}, {"id": "ti_2", "trigger_name": "X", "disabled_at": "t"}],
                "next_cursor": "c2", "total_pages": 2}"#,
        ),
        (200, r#"{"status": "success"}"#),
        (200, r#"{"status": "success"}"#),
        (200, r#"{"trigger_id": "ti_1"}"#),
        (
            200,
            r#"{"slug": "GITHUB_STAR_ADDED_EVENT", "name": "Star", "toolkit": {"slug": "github", "name": "GitHub"},
                "config": {"properties": {"owner": {"type": "string"}}, "required": ["owner"]}, "payload": {}}"#,
        ),
    ])
    .await;
    let page = client
        .list_active_triggers(
            &ActiveTriggersQuery::new()
                .user("default")
                .trigger("SLACK_RECEIVE_MESSAGE")
                .trigger("X"),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].trigger_slug, "SLACK_RECEIVE_MESSAGE");
    assert!(page.items[0].is_enabled());
    assert!(!page.items[1].is_enabled());
    assert_eq!(page.next_cursor.as_deref(), Some("c2"));
    client.enable_trigger("ti_1").await.unwrap();
    client.disable_trigger("ti/../1").await.unwrap();
    client.delete_trigger("ti_1").await.unwrap();
    let ty = client
        .get_trigger_type("GITHUB_STAR_ADDED_EVENT")
        .await
        .unwrap();
    assert_eq!(ty.toolkit.slug, "github");
    assert_eq!(ty.config_schema().required(), vec!["owner"]);

    let seen = seen(&script);
    assert_eq!(
        seen[0].uri,
        "/api/v3.1/trigger_instances/active?user_ids=default&trigger_names=SLACK_RECEIVE_MESSAGE%2CX"
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].uri.as_str()),
        ("PATCH", "/api/v3.1/trigger_instances/manage/ti_1")
    );
    assert_eq!(seen[1].body, json!({"status": "enable"}));
    // An id is one path segment, whatever it holds.
    assert_eq!(
        seen[2].uri,
        "/api/v3.1/trigger_instances/manage/ti%2F..%2F1"
    );
    assert_eq!(seen[2].body, json!({"status": "disable"}));
    assert_eq!(
        (seen[3].method.as_str(), seen[3].uri.as_str()),
        ("DELETE", "/api/v3.1/trigger_instances/manage/ti_1")
    );
}

#[tokio::test]
async fn unreachable_api_is_a_transport_error_after_retries() {
    // Bind then drop: nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = ComposioClient::builder("k")
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let err = client.get_trigger_type("X").await.unwrap_err();
    assert!(
        matches!(err, ApiError::Transport { attempts: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn bad_settings_are_config_errors() {
    assert!(matches!(
        ComposioClient::new(" "),
        Err(ApiError::Config { .. })
    ));
    assert!(matches!(
        ComposioClient::builder("k").base_url("ftp://x").build(),
        Err(ApiError::Config { .. })
    ));
    let lookup = |k: &str| (k == "COMPOSIO_BASE_URL").then(|| "http://127.0.0.1:1".to_owned());
    assert!(matches!(
        ComposioClient::from_lookup(&lookup),
        Err(ApiError::Config { key, .. }) if key == "COMPOSIO_API_KEY"
    ));
    let client = ComposioClient::builder("k")
        .base_url("http://127.0.0.1:1/prefix/")
        .build()
        .unwrap();
    assert_eq!(client.base_url(), "http://127.0.0.1:1/prefix");
    assert!(!format!("{client:?}").contains("\"k\""));
}

/// A server answering every request `status` with 16 KiB chunks forever (no length).
async fn endless(status: u16) -> String {
    let app = axum::Router::new().fallback(move || async move {
        let stream = futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 16 << 10]))
        });
        let mut r = axum::body::Body::from_stream(stream).into_response();
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

#[tokio::test]
async fn an_endless_answer_is_refused_at_the_limit_and_not_retried() {
    for status in [200, 503] {
        let client = ComposioClient::builder("key_123")
            .base_url(endless(status).await)
            .retry(fast_retry(3))
            .max_response_bytes(256 << 10)
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let err = client.list_webhook_subscriptions().await.unwrap_err();
        assert!(
            matches!(
                &err,
                ApiError::ResponseTooLarge { status: s, limit: 262144, .. } if *s == status
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("response body exceeds 262144 bytes"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}: bounded by the limit, not the 15 s timeout",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn the_answer_limit_is_the_builders_and_the_default_is_16_mib() {
    let big = format!(r#"{{"trigger_id": "{}"}}"#, "t".repeat(2000));
    let (client, _) = server(&[(200, &big)]).await;
    // Within the default.
    let got = client
        .upsert_trigger("X", &UpsertTrigger::for_user("u"))
        .await
        .unwrap();
    assert_eq!(got.trigger_id.len(), 2000);
    let (client, script) = server(&[(200, &big), (200, &big)]).await;
    let small = ComposioClient::builder("key_123")
        .base_url(client.base_url())
        .retry(fast_retry(3))
        .max_response_bytes(1500)
        .build()
        .unwrap();
    let err = small
        .upsert_trigger("X", &UpsertTrigger::for_user("u"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::ResponseTooLarge { limit: 1500, .. }),
        "{err:?}"
    );
    assert_eq!(seen(&script).len(), 1, "not retried");
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 16 << 20);
}
