//! The hub's triggers API: trigger types from its catalog, trigger instances (upsert with the
//! config validated, list active, enable, disable, delete), webhook endpoints; driven by
//! Composio's own Python SDK and by our REST client. Disabling an instance publishes
//! `composio.trigger.disabled`; published events carry the active instance's id; a strict
//! hub refuses events of triggers that are not active.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use listener_core::composio_api::{
    ActiveTriggersQuery, ApiError, ComposioClient, CreateWebhookEndpoint, TriggerStatus,
    UpsertTrigger,
};
use listener_core::lifecycle::TriggerDisabled;
use listener_core::source::Health;
use listener_core::{Filter, Listener, ListenerHandle, Payload, State};
use listener_e2e::record::Recorder;
use listener_e2e::wait::{until, within};
use listener_hub::{Hub, RunningHub};
use serde_json::{json, Value};

const STAR: &str = "GITHUB_STAR_ADDED_EVENT";
const SLACK: &str = "SLACK_RECEIVE_MESSAGE";

fn client(hub: &RunningHub) -> ComposioClient {
    hub.composio_client().unwrap()
}

async fn subscribed(hub: &RunningHub, handle: &ListenerHandle) {
    until("the listener to subscribe to the hub", || {
        hub.subscribers() == 1
            && handle
                .health()
                .iter()
                .any(|s| s.health == Health::Connected)
    })
    .await;
}

/// The Python SDK's management calls against the hub: get and list trigger types, a config
/// refused with the field named, an unknown type, create (twice: the same instance), list
/// active, disable, enable, delete. The SDK checks every answer against its own models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composios_python_sdk_creates_lists_disables_and_deletes_a_trigger() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let Some(python) = listener_e2e::peers::python_peer() else {
        return;
    };
    let hub = Hub::builder().start().await.unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/composio_triggers.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .env("COMPOSIO_API_KEY", hub.api_key())
        .env("COMPOSIO_BASE_URL", hub.base_url())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python SDK script");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut steps = std::collections::HashMap::new();
    loop {
        // Importing the SDK alone takes seconds (several on a loaded machine): the first
        // line gets a minute, later ones the usual deadline.
        let line = if steps.is_empty() {
            tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("the SDK script printed nothing within 60 s")
        } else {
            within("the SDK script's next step", lines.next_line()).await
        };
        let line = line
            .unwrap()
            .expect("the SDK script ended before DONE (see its stderr above)");
        if line == "DONE" {
            break;
        }
        let step: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        steps.insert(step["step"].as_str().unwrap().to_owned(), step);
    }
    let status = within("the SDK process to exit", child.wait())
        .await
        .unwrap();
    assert!(status.success());
    let step = |name: &str| {
        steps
            .get(name)
            .unwrap_or_else(|| panic!("no step {name}: {steps:?}"))
    };

    let get = step("get_type");
    assert_eq!(
        (get["slug"].as_str(), get["toolkit"].as_str()),
        (Some(STAR), Some("github"))
    );
    assert_eq!(get["required"], json!(["owner", "repo"]));
    assert_eq!(get["type"], "webhook");
    assert!(get["payload_properties"]
        .as_array()
        .unwrap()
        .contains(&json!("starred_by")));
    assert_eq!(step("list_types")["slugs"], json!([STAR]));

    let bad = step("bad_config");
    assert_eq!(
        (bad["refused"].as_bool(), bad["status"].as_u64()),
        (Some(true), Some(400)),
        "{bad}"
    );
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("`repo` is required"),
        "{bad}"
    );
    assert_eq!(bad["body"]["error"]["errors"][0]["field"], "repo", "{bad}");
    assert_eq!(step("unknown_type")["kind"], "TriggerTypeNotFound");

    let create = step("create");
    let id = create["trigger_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ti_"), "{create}");
    assert_eq!(
        create["again"],
        id.as_str(),
        "an upsert of the same trigger is the same instance"
    );

    let listed = &step("list_active")["items"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["trigger_name"], STAR);
    assert_eq!(listed[0]["user_id"], "sdk-user");
    assert_eq!(
        listed[0]["trigger_config"],
        json!({"owner": "octocat", "repo": "hello-world"})
    );
    assert_eq!(listed[0]["disabled_at"], Value::Null);
    assert!(listed[0]["connected_account_id"]
        .as_str()
        .unwrap()
        .starts_with("ca_"));

    let disable = step("disable");
    assert_eq!(disable["status"], "success");
    assert_eq!(
        disable["active"],
        json!([]),
        "a disabled trigger is not active"
    );
    assert!(
        disable["with_disabled"][0]["disabled_at"].is_string(),
        "{disable}"
    );

    let enable = step("enable");
    assert_eq!(enable["status"], "success");
    assert_eq!(enable["active"][0]["id"], id.as_str());
    assert_eq!(enable["active"][0]["disabled_at"], Value::Null);

    let delete = step("delete");
    assert_eq!(delete["trigger_id"], id.as_str());
    assert_eq!(delete["left"], json!([]));
    assert!(hub.trigger_instances().is_empty());
    hub.shutdown().await;
}

/// Our REST client against the hub: trigger types, upserts (idempotent per slug, account and
/// config), the active list and its filters, enable / disable / delete, webhook endpoints.
#[tokio::test]
async fn our_rest_client_manages_triggers_on_the_hub() {
    let hub = Hub::builder().start().await.unwrap();
    let api = client(&hub);

    let star = api
        .get_trigger_type("github_star_added_event")
        .await
        .unwrap();
    assert_eq!(
        (star.slug.as_str(), star.toolkit.slug.as_str()),
        (STAR, "github")
    );
    assert_eq!(star.config_schema().required(), ["owner", "repo"]);
    // The catalog's config schema is the one Composio serves for this trigger.
    let fixture: Value = serde_json::from_slice(&listener_e2e::fixtures::bytes(
        "github_star_config_schema.json",
    ))
    .unwrap();
    assert_eq!(star.config, fixture);
    assert!(star.payload["properties"]["repository_name"].is_object());
    for slug in [SLACK, "GMAIL_NEW_GMAIL_MESSAGE"] {
        let t = api.get_trigger_type(slug).await.unwrap();
        assert_eq!(t.slug, slug);
        assert!(
            !t.description.is_empty() && t.payload["required"].is_array(),
            "{slug}"
        );
    }
    let missing = api.get_trigger_type("NO_SUCH_TRIGGER").await.unwrap_err();
    assert!(missing.is_status(404), "{missing}");
    assert_eq!(
        missing.error_object().unwrap().slug.as_deref(),
        Some("TriggerType_NotFound")
    );

    let config = json!({"owner": "octocat", "repo": "hello-world"});
    let a = api
        .upsert_trigger(STAR, &UpsertTrigger::for_user("u1").config(config.clone()))
        .await
        .unwrap();
    assert!(a.trigger_id.starts_with("ti_"));
    let again = api
        .upsert_trigger(STAR, &UpsertTrigger::for_user("u1").config(config.clone()))
        .await
        .unwrap();
    assert_eq!(again.trigger_id, a.trigger_id);
    let other = api
        .upsert_trigger(
            STAR,
            &UpsertTrigger::for_user("u1").config(json!({"owner": "octocat", "repo": "other"})),
        )
        .await
        .unwrap();
    assert_ne!(
        other.trigger_id, a.trigger_id,
        "another config is another instance"
    );
    let slack = api
        .upsert_trigger(SLACK, &UpsertTrigger::for_connected_account("ca_given"))
        .await
        .unwrap();

    let page = api
        .list_active_triggers(&ActiveTriggersQuery::new())
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            a.trigger_id.as_str(),
            other.trigger_id.as_str(),
            slack.trigger_id.as_str()
        ]
    );
    let first = &page.items[0];
    assert_eq!(
        (first.trigger_slug.as_str(), first.user_id.as_str()),
        (STAR, "u1")
    );
    assert_eq!(first.trigger_config, config);
    assert!(first.is_enabled() && first.connected_account_id.starts_with("ca_"));
    assert_eq!(page.items[2].connected_account_id, "ca_given");
    let by_user = api
        .list_active_triggers(&ActiveTriggersQuery::new().user("u1").trigger(STAR))
        .await
        .unwrap();
    assert_eq!(by_user.items.len(), 2);
    let by_account = api
        .list_active_triggers(&ActiveTriggersQuery::new().connected_account("ca_given"))
        .await
        .unwrap();
    assert_eq!(by_account.items.len(), 1);
    assert_eq!(by_account.items[0].id, slack.trigger_id);
    let paged = api
        .list_active_triggers(&ActiveTriggersQuery {
            limit: Some(2),
            ..ActiveTriggersQuery::new()
        })
        .await
        .unwrap();
    assert_eq!(paged.items.len(), 2);
    let rest = api
        .list_active_triggers(&ActiveTriggersQuery {
            cursor: paged.next_cursor.clone(),
            limit: Some(2),
            ..ActiveTriggersQuery::new()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);

    let done = api
        .set_trigger_status(&a.trigger_id, TriggerStatus::Disable)
        .await
        .unwrap();
    assert_eq!(done["status"], "success");
    let active = api
        .list_active_triggers(&ActiveTriggersQuery::new().user("u1"))
        .await
        .unwrap();
    assert_eq!(active.items.len(), 1, "the disabled one is not listed");
    let all = api
        .list_active_triggers(&ActiveTriggersQuery::new().user("u1").show_disabled(true))
        .await
        .unwrap();
    let disabled = all.items.iter().find(|i| i.id == a.trigger_id).unwrap();
    assert!(!disabled.is_enabled() && disabled.disabled_at.is_some());
    api.enable_trigger(&a.trigger_id).await.unwrap();
    assert!(hub.trigger_instances().iter().all(|i| i.enabled));

    let deleted = api.delete_trigger(&other.trigger_id).await.unwrap();
    assert_eq!(deleted["trigger_id"], other.trigger_id.as_str());
    let gone = api.delete_trigger(&other.trigger_id).await.unwrap_err();
    assert!(gone.is_status(404), "{gone}");
    let gone = api.disable_trigger("ti_nope").await.unwrap_err();
    assert!(gone.is_status(404), "{gone}");
    assert_eq!(hub.trigger_instances().len(), 2);

    // Webhook endpoints: one per toolkit and client id.
    let request = CreateWebhookEndpoint {
        toolkit_slug: "slack".into(),
        client_id: "1234.5678".into(),
    };
    let endpoint = api.create_webhook_endpoint(&request).await.unwrap();
    assert!(endpoint.id.starts_with("we_"));
    assert_eq!(
        (endpoint.toolkit_slug.as_str(), endpoint.client_id.as_str()),
        ("slack", "1234.5678")
    );
    assert!(endpoint.webhook_url.starts_with(&hub.base_url()) && endpoint.created_at.is_some());
    let same = api
        .create_webhook_endpoint(&CreateWebhookEndpoint {
            toolkit_slug: "SLACK".into(),
            ..request.clone()
        })
        .await
        .unwrap();
    assert_eq!(same.id, endpoint.id);
    let other_app = api
        .create_webhook_endpoint(&CreateWebhookEndpoint {
            client_id: "other".into(),
            ..request
        })
        .await
        .unwrap();
    assert_ne!(other_app.id, endpoint.id);
    assert_eq!(hub.webhook_endpoints().len(), 2);
    hub.shutdown().await;
}

fn api_error_fields(e: &ApiError) -> Vec<String> {
    e.error_object()
        .map(|o| {
            o.errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A configuration the type's schema refuses is answered 400 naming the field, through our
/// client's `ApiError` and over plain HTTP; nothing is created.
#[tokio::test]
async fn a_config_that_violates_the_schema_is_refused_with_the_field_named() {
    let hub = Hub::builder().start().await.unwrap();
    let api = client(&hub);
    let e = api
        .upsert_trigger(
            STAR,
            &UpsertTrigger::for_user("u1").config(json!({"owner": "octocat"})),
        )
        .await
        .unwrap_err();
    assert!(e.is_status(400), "{e}");
    assert_eq!(api_error_fields(&e), ["repo"]);
    let object = e.error_object().unwrap();
    assert!(object.message.contains("`repo` is required"), "{e}");
    assert_eq!(
        object.slug.as_deref(),
        Some("TriggerInstance_InvalidTriggerConfig")
    );
    assert!(
        object
            .suggested_fix
            .as_deref()
            .unwrap_or_default()
            .contains(STAR),
        "{e}"
    );
    assert!(e.to_string().contains("repo"), "{e}");
    let e = api
        .upsert_trigger(
            STAR,
            &UpsertTrigger::for_user("u1").config(json!({"owner": 5, "repo": "r"})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error_fields(&e), ["owner"], "{e}");
    assert!(e.to_string().contains("`owner`"), "{e}");

    let http = listener_e2e::http::client();
    let upsert = |slug: &str, key: Option<&str>, body: Value| {
        let mut r = http
            .post(format!(
                "{}/api/v3.1/trigger_instances/{slug}/upsert",
                hub.base_url()
            ))
            .json(&body);
        if let Some(key) = key {
            r = r.header("x-api-key", key);
        }
        r.send()
    };
    let key = Some(hub.api_key());
    let cases = [
        (
            STAR,
            key,
            json!({"user_id": "u", "trigger_config": {"owner": "o"}}),
            400,
            Some("repo"),
        ),
        (
            STAR,
            key,
            json!({"user_id": "u", "trigger_config": {"owner": "o", "repo": ["r"]}}),
            400,
            Some("repo"),
        ),
        (
            STAR,
            key,
            json!({"user_id": "u", "trigger_config": "owner=o"}),
            400,
            Some("trigger_config"),
        ),
        (
            STAR,
            key,
            json!({"trigger_config": {"owner": "o", "repo": "r"}}),
            400,
            Some("user_id"),
        ),
        (STAR, key, json!({"user_id": 7}), 400, Some("user_id")),
        (
            "GMAIL_NEW_GMAIL_MESSAGE",
            key,
            json!({"user_id": "u", "trigger_config": {"interval": 0}}),
            400,
            Some("interval"),
        ),
        ("NO_SUCH_TRIGGER", key, json!({"user_id": "u"}), 404, None),
        (
            "BAD%20SLUG",
            key,
            json!({"user_id": "u"}),
            400,
            Some("slug"),
        ),
        (STAR, None, json!({"user_id": "u"}), 401, None),
    ];
    for (slug, key, body, status, field) in cases {
        let r = upsert(slug, key, body.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{slug} {body}");
        let answer: Value = r.json().await.unwrap();
        let error = &answer["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
        assert_eq!(error["status"], status, "{answer}");
        if let Some(field) = field {
            assert_eq!(
                error["errors"][0]["field"], field,
                "{slug} {body}: {answer}"
            );
            assert!(
                error["message"].as_str().unwrap().contains(field),
                "{answer}"
            );
        }
    }
    assert!(hub.trigger_instances().is_empty());
    hub.shutdown().await;
}

/// Where the handler below reports what it saw.
struct DisabledSeen {
    tx: tokio::sync::mpsc::UnboundedSender<(TriggerDisabled, String)>,
}

#[listener_core::on_trigger(name = "composio.trigger.disabled")]
async fn on_trigger_disabled(
    Payload(disabled): Payload<TriggerDisabled>,
    meta: listener_core::Meta,
    seen: State<DisabledSeen>,
) {
    let _ = seen.tx.send((disabled, meta.event_id().to_owned()));
}

/// A webhook receiver recording every body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Disabling an instance publishes `composio.trigger.disabled`: a macro handler gets it typed
/// over the realtime channel, and a webhook subscription that enabled the type gets it too.
/// Disabling it again publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_trigger_reaches_a_composio_trigger_disabled_handler() {
    let hub = Hub::builder().start().await.unwrap();
    let (url, delivered) = receiver().await;
    hub.subscribe_webhook(
        &url,
        Some(vec![listener_core::lifecycle::TRIGGER_DISABLED.to_owned()]),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = Listener::builder()
        .only_registered(["on_trigger_disabled"])
        .state(DisabledSeen { tx })
        .source(hub.composio_source())
        .build()
        .unwrap()
        .spawn();
    subscribed(&hub, &handle).await;

    let api = client(&hub);
    let config = json!({"owner": "octocat", "repo": "hello-world"});
    let created = api
        .upsert_trigger(
            STAR,
            &UpsertTrigger::for_user("dana").config(config.clone()),
        )
        .await
        .unwrap();
    api.disable_trigger(&created.trigger_id).await.unwrap();
    let (disabled, event_id) = within("the trigger.disabled handler", rx.recv())
        .await
        .unwrap();
    assert!(event_id.starts_with("evt_"), "{event_id}");
    assert_eq!(
        disabled.trigger_id.as_deref(),
        Some(created.trigger_id.as_str())
    );
    assert_eq!(disabled.trigger_slug.as_deref(), Some(STAR));
    assert_eq!(disabled.user_id.as_deref(), Some("dana"));
    let instance = &hub.trigger_instances()[0];
    assert_eq!(
        disabled.connected_account_id.as_deref(),
        Some(instance.connected_account_id.as_str())
    );
    assert!(disabled
        .disabled_reason
        .as_deref()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(disabled.other["trigger_config"], config);

    until("the webhook subscription to get the event", || {
        !delivered.lock().unwrap().is_empty()
    })
    .await;
    let body = delivered.lock().unwrap()[0].clone();
    assert_eq!(body["type"], "composio.trigger.disabled");
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["data"]["trigger_id"], created.trigger_id.as_str());
    assert_eq!(body["metadata"]["project_id"], "pr_local");

    // Already disabled: nothing more. Enabled and disabled again: a second event.
    api.disable_trigger(&created.trigger_id).await.unwrap();
    api.enable_trigger(&created.trigger_id).await.unwrap();
    api.disable_trigger(&created.trigger_id).await.unwrap();
    let (second, second_id) = within("the second trigger.disabled", rx.recv())
        .await
        .unwrap();
    assert_eq!(
        second.trigger_id.as_deref(),
        Some(created.trigger_id.as_str())
    );
    assert_ne!(second_id, event_id);
    let stopped = within("shutdown", handle.shutdown()).await.unwrap();
    assert_eq!(stopped.stats.runs, 2);
    assert!(rx.try_recv().is_err());
    hub.shutdown().await;
}

async fn listen(hub: &RunningHub, rec: &Recorder) -> ListenerHandle {
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(hub.composio_source())
        .handler(rec.handler("slack", Filter::new().name(SLACK)))
        .handler(rec.handler(
            "expired",
            Filter::new().name("composio.connected_account.expired"),
        ))
        .build()
        .unwrap()
        .spawn();
    subscribed(hub, &handle).await;
    handle
}

async fn post_event(hub: &RunningHub, content_type: &str, body: String) -> (u16, Value) {
    let r = listener_e2e::http::client()
        .post(format!("{}/hub/events", hub.base_url()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A published trigger message carries the id of the active instance it matches (and the
/// instance's user and account where it names none); one matching none keeps fresh ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_event_carries_the_active_instance_id() {
    let hub = Hub::builder().start().await.unwrap();
    let mut rec = Recorder::new();
    let handle = listen(&hub, &rec).await;
    let api = client(&hub);
    let created = api
        .upsert_trigger(SLACK, &UpsertTrigger::for_user("u1"))
        .await
        .unwrap();
    let instance = hub.trigger_instances()[0].clone();

    hub.publish_payload(SLACK, json!({"text": "hi"})).unwrap();
    let got = rec.next().await.event;
    assert_eq!(got.id, created.trigger_id, "the event's trigger id");
    assert_eq!(got.user_id, "u1");
    assert_eq!(
        got.metadata.connected_account.id,
        instance.connected_account_id
    );
    assert_eq!(
        got.metadata.connected_account.auth_config_id,
        instance.auth_config_id
    );

    // A V3 envelope naming no trigger id, over HTTP: the id is written into its metadata.
    let envelope = json!({"id": "evt_http", "type": "composio.trigger.message", "timestamp": "2026-11-20T09:14:03.512Z",
        "metadata": {"trigger_slug": SLACK, "user_id": "u1", "log_id": "log_1"}, "data": {"text": "envelope"}});
    let (status, _) = post_event(&hub, "application/json", envelope.to_string()).await;
    assert_eq!(status, 202);
    let got = rec.next().await.event;
    assert_eq!(
        (got.event_id.as_str(), got.id.as_str()),
        ("evt_http", created.trigger_id.as_str())
    );
    assert_eq!(
        got.metadata.connected_account.id,
        instance.connected_account_id
    );

    // Another user's event matches no instance: fresh ids, published all the same.
    let bare = json!({"trigger_slug": SLACK, "user_id": "u2", "payload": {"text": "stranger"}});
    let (status, _) = post_event(&hub, "application/json", bare.to_string()).await;
    assert_eq!(status, 202);
    let got = rec.next().await.event;
    assert_eq!(got.user_id, "u2");
    assert!(
        got.id.starts_with("ti_") && got.id != created.trigger_id,
        "{}",
        got.id
    );
    // An envelope naming its own trigger id keeps it.
    let fixture = listener_e2e::fixtures::bytes("v3_slack_receive_message.json");
    let (status, _) = post_event(
        &hub,
        "application/json",
        String::from_utf8(fixture).unwrap(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(rec.next().await.event.id, "ti_8KpL2qRsT0uV");
    within("shutdown", handle.shutdown()).await.unwrap();
    hub.shutdown().await;
}

/// A strict hub refuses trigger messages of triggers that are not active (409 over HTTP, an
/// error from `publish_payload`), whole NDJSON batches included; lifecycle events pass; an
/// enabled instance lets its events through, and disabling it refuses them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_hub_refuses_events_of_triggers_that_are_not_active() {
    let hub = Hub::builder().strict_triggers(true).start().await.unwrap();
    let mut rec = Recorder::new();
    let handle = listen(&hub, &rec).await;

    let refused = hub
        .publish_payload(SLACK, json!({"text": "nobody asked"}))
        .unwrap_err();
    match &refused {
        listener_core::Error::Config(c) => {
            assert_eq!(c.key, listener_hub::trigger_instances::NOT_ACTIVE)
        }
        other => panic!("{other:?}"),
    }
    assert!(refused.to_string().contains("strict mode"), "{refused}");
    let bare = json!({"trigger_slug": SLACK, "payload": {"text": "x"}}).to_string();
    let (status, answer) = post_event(&hub, "application/json", bare.clone()).await;
    assert_eq!(status, 409, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no active trigger instance") && message.contains(SLACK),
        "{message}"
    );
    // A fixture naming a trigger id the hub does not have is refused too.
    let fixture = String::from_utf8(listener_e2e::fixtures::bytes(
        "v3_slack_receive_message.json",
    ))
    .unwrap();
    assert_eq!(post_event(&hub, "application/json", fixture).await.0, 409);
    // V1 envelopes are checked as well.
    let v1 = String::from_utf8(listener_e2e::fixtures::bytes(
        "v1_slack_receive_message.json",
    ))
    .unwrap();
    assert_eq!(post_event(&hub, "application/json", v1).await.0, 409);
    // Lifecycle events are not trigger messages: published.
    let expired = String::from_utf8(listener_e2e::fixtures::bytes(
        "v3_connected_account_expired.json",
    ))
    .unwrap();
    assert_eq!(
        post_event(&hub, "application/json", expired.clone())
            .await
            .0,
        202
    );
    assert_eq!(rec.next().await.handler, "expired");

    let api = client(&hub);
    let created = api
        .upsert_trigger(SLACK, &UpsertTrigger::for_user("u1"))
        .await
        .unwrap();
    // A batch with one refused line publishes nothing.
    let other = json!({"trigger_slug": "GITHUB_STAR_ADDED_EVENT", "payload": {}}).to_string();
    let (status, answer) =
        post_event(&hub, "application/x-ndjson", format!("{bare}\n{other}\n")).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2:"),
        "{answer}"
    );
    assert!(rec.drain().is_empty());

    let (status, _) = post_event(&hub, "application/x-ndjson", format!("{bare}\n{bare}\n")).await;
    assert_eq!(status, 202);
    for _ in 0..2 {
        assert_eq!(rec.next().await.event.id, created.trigger_id);
    }
    let published = hub
        .publish_payload(SLACK, json!({"text": "asked"}))
        .unwrap();
    let got = rec.next().await.event;
    assert_eq!(
        (got.event_id.as_str(), got.id.as_str()),
        (published.id.as_str(), created.trigger_id.as_str())
    );

    api.disable_trigger(&created.trigger_id).await.unwrap();
    assert!(hub.publish_payload(SLACK, json!({})).is_err());
    within("shutdown", handle.shutdown()).await.unwrap();
    hub.shutdown().await;
}

/// A catalog file adds trigger types the API serves and validates against; a bad file fails
/// the hub's start naming the file and the entry.
#[tokio::test]
async fn a_catalog_file_adds_trigger_types() {
    let dir = std::env::temp_dir().join(format!("hub-triggers-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("catalog.json");
    std::fs::write(
        &file,
        json!([{
            "slug": "ACME_ORDER_PLACED", "name": "Order placed", "toolkit": {"slug": "acme", "name": "Acme"},
            "config": {"type": "object", "properties": {"store": {"type": "string", "description": "The store"}}, "required": ["store"]},
            "payload": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
        }])
        .to_string(),
    )
    .unwrap();
    let hub = Hub::builder().catalog_file(&file).start().await.unwrap();
    assert_eq!(hub.trigger_types().len(), 4);
    let api = client(&hub);
    let acme = api.get_trigger_type("acme_order_placed").await.unwrap();
    assert_eq!(
        (acme.toolkit.slug.as_str(), acme.name.as_str()),
        ("acme", "Order placed")
    );
    let e = api
        .upsert_trigger("ACME_ORDER_PLACED", &UpsertTrigger::for_user("u"))
        .await
        .unwrap_err();
    assert_eq!(api_error_fields(&e), ["store"]);
    api.upsert_trigger(
        "ACME_ORDER_PLACED",
        &UpsertTrigger::for_user("u").config(json!({"store": "s1"})),
    )
    .await
    .unwrap();
    hub.shutdown().await;

    std::fs::write(
        &file,
        r#"[{"slug": "ACME_X", "config": {"type": "object", "required": "store"}}]"#,
    )
    .unwrap();
    let err = Hub::builder()
        .catalog_file(&file)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&file.display().to_string())
            && err.contains("ACME_X")
            && err.contains("`config`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
