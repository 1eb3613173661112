//! The roast bot (`examples/slack_roast`) end to end: the bundled samples replayed through a
//! local hub's websocket, with a local server playing the model and Composio and recording
//! every request (replies go out through `Tools` and the listener's pre-processor); the
//! bot's rules under concurrency, rate limits and failures; and the README's first command
//! run as a process.

use std::sync::Arc;
use std::time::Duration;

use listener_core::composio_api::ComposioClient;
use listener_core::testing::Harness;
use listener_core::tools::{ToolProcessors, Tools};
use listener_core::{Backoff, ConnectedAccount, FailureKind, TriggerEvent};
use listener_e2e::fake_apis::{model_text, FakeApis, Recorded, POSTED_TS_PREFIX};
use listener_e2e::wait::within;
use listener_examples::app::{self, Replayed};
use listener_examples::samples::Samples;
use listener_examples::{
    BotConfig, OpenAiRoaster, Outcome, RoastBot, Skip, SlackMessage, SEND_TOOL, SYSTEM_PROMPT,
};
use serde_json::{json, Value};

const CHANNEL: &str = "C07JB863EBW";

fn roaster(fake: &FakeApis) -> Arc<OpenAiRoaster> {
    Arc::new(
        OpenAiRoaster::new(fake.openai_base_url(), "sk-test", "roast-test-model")
            .unwrap()
            .retry(fast_retry()),
    )
}

fn fast_retry() -> Backoff {
    Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
        multiplier: 2.0,
        max_attempts: Some(2),
    }
}

/// A client of the fake Composio.
fn client(fake: &FakeApis) -> ComposioClient {
    ComposioClient::builder("ck_test")
        .base_url(fake.base_url())
        .retry(fast_retry())
        .build()
        .unwrap()
}

/// The `Tools` a listener gives the handler for `msg`: the event of user `default`, the
/// fake Composio, the bot's pre-processor.
fn tools_for(fake: &FakeApis, msg: &SlackMessage) -> Tools {
    let event = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", serde_json::to_value(msg).unwrap())
        .with_event_id("evt_test")
        .with_user_id("default");
    Tools::new(client(fake), app::tool_processors(), Arc::new(event))
}

fn config() -> BotConfig {
    let mut c = BotConfig::new(CHANNEL);
    c.bot_user_id = Some("U0ROASTBOT1".into());
    c
}

fn message(text: &str, ts: &str, thread_ts: Option<&str>) -> SlackMessage {
    SlackMessage {
        channel: CHANNEL.into(),
        user: Some("U07JMDFMR7B".into()),
        text: text.into(),
        ts: ts.into(),
        thread_ts: thread_ts.map(str::to_owned),
        ..SlackMessage::default()
    }
}

/// The arguments the bot must send for a reply to `text` in `thread` of the roast channel.
fn expected_tool_arguments(text: &str, thread: &str) -> Value {
    json!({"channel": CHANNEL, "thread_ts": thread, "text": model_text(text), "mrkdwn": false})
}

fn assert_chat_request(r: &Recorded, text: &str) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
    let b = &r.body;
    assert_eq!(b["model"], "roast-test-model");
    assert_eq!(
        b["messages"],
        json!([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}])
    );
    assert_eq!(b["tools"].as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(b["tools"][0]["type"], "function");
    assert_eq!(b["tools"][0]["function"]["name"], SEND_TOOL);
    let params = &b["tools"][0]["function"]["parameters"]["properties"];
    for key in ["channel", "text", "thread_ts", "mrkdwn"] {
        assert!(
            params.get(key).is_some(),
            "tool parameter {key} missing: {b}"
        );
    }
    assert_eq!(b["tool_choice"], "required");
}

fn assert_tool_request(r: &Recorded, text: &str, thread: &str) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("x-api-key"), Some("ck_test"));
    assert_eq!(r.body["user_id"], "default");
    assert_eq!(r.body["arguments"], expected_tool_arguments(text, thread));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_through_the_hub_yield_exactly_the_expected_replies_via_model_and_composio() {
    let fake = FakeApis::start().await;
    let samples = Samples::bundled().unwrap();
    assert_eq!(samples.channel, CHANNEL);
    let steps = within(
        "the demo to replay every sample",
        app::run_demo(
            app::unregistered(),
            config(),
            roaster(&fake),
            Some(client(&fake)),
            &samples,
            false,
        ),
    )
    .await
    .unwrap();

    // What each sample did, in order (and what the sample file says it should do).
    let codes: Vec<&str> = steps.iter().map(Replayed::code).collect();
    assert_eq!(
        codes,
        [
            "reply",             // new message in the roast channel
            "other_channel",     // another channel
            "already_answered",  // a reply in the thread just answered
            "bot_message",       // a bot's message
            "dropped_duplicate", // the same delivery again: the listener drops it
            "duplicate",         // the same message under a new event id
            "edit",              // an edit
            "empty_text",        // a file share without text
            "reply",             // a reply in an older, unanswered thread
            "own_message",       // the bot's own reply coming back
            "reply",             // another new message
        ]
    );
    let expected: Vec<&str> = samples.samples.iter().map(|s| s.expect.as_str()).collect();
    assert_eq!(codes, expected);

    // The replies: each in the message's thread and channel.
    let replies: Vec<(String, String)> = steps
        .iter()
        .filter_map(|s| match s {
            Replayed::Handled(h) => match &h.outcome {
                Outcome::Replied(r) => Some((r.channel.clone(), r.thread_ts.clone())),
                _ => None,
            },
            Replayed::DroppedDuplicate { .. } => None,
        })
        .collect();
    let answered = [
        ("who broke the staging deploy again", "1763630043.512919"),
        (
            "do we really need another standup about standups?",
            "1763620000.000100",
        ),
        (
            "I'll just push straight to main, it's Friday",
            "1763630110.000700",
        ),
    ];
    assert_eq!(
        replies,
        answered
            .iter()
            .map(|(_, t)| (CHANNEL.to_owned(), (*t).to_owned()))
            .collect::<Vec<_>>()
    );

    // One chat request and one tool execution per reply, nothing else.
    let chats = fake.chat_requests();
    let tools = fake.tool_requests(SEND_TOOL);
    assert_eq!(chats.len(), 3, "{chats:#?}");
    assert_eq!(tools.len(), 3, "{tools:#?}");
    assert_eq!(fake.requests().len(), 6);
    for (i, (text, thread)) in answered.iter().enumerate() {
        assert_chat_request(&chats[i], text);
        // The model said channel C_MODEL_WRONG, thread 0000000000.000000, mrkdwn true and
        // reply_broadcast true: the pre-processor put the message's own values back.
        assert_tool_request(&tools[i], text, thread);
        // As the event's user and connected account.
        assert_eq!(tools[i].body["connected_account_id"], "ca_3NwX7yZ1aB2c");
    }
}

#[tokio::test]
async fn the_preprocessor_overrides_whatever_the_model_returns() {
    let fake = FakeApis::start().await;
    fake.set_model_arguments(json!({
        "channel": "#general", "thread_ts": "1.000000", "mrkdwn": true,
        "markdown_text": "*markdown* roast", "as_user": true, "blocks": [{"type": "divider"}]
    }));
    let bot = RoastBot::new(config(), roaster(&fake));
    let msg = message(
        "can someone review my 4000-line PR",
        "1763630200.000100",
        Some("1763630100.000001"),
    );
    let outcome = within(
        "a reply",
        bot.handle("evt_1", &msg, &tools_for(&fake, &msg)),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Outcome::Replied(_)), "{outcome:?}");
    let tools = fake.tool_requests(SEND_TOOL);
    assert_eq!(tools.len(), 1);
    assert_eq!(
        tools[0].body["arguments"],
        json!({"channel": CHANNEL, "thread_ts": "1763630100.000001", "text": "*markdown* roast", "mrkdwn": false})
    );
    assert_chat_request(
        &fake.chat_requests()[0],
        "can someone review my 4000-line PR",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_messages_of_one_thread_get_exactly_one_reply() {
    let fake = FakeApis::start().await;
    let bot = Arc::new(RoastBot::new(config(), roaster(&fake)));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let bot = Arc::clone(&bot);
            let msg = message(
                &format!("take {i}"),
                &format!("1763630300.00010{i}"),
                Some("1763630300.000001"),
            );
            let tools = tools_for(&fake, &msg);
            tokio::spawn(
                async move { bot.handle(&format!("evt_{i}"), &msg, &tools).await.unwrap() },
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(within("a handled message", t).await.unwrap());
    }
    let replied = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Replied(_)))
        .count();
    let answered = outcomes
        .iter()
        .filter(|o| **o == Outcome::Skipped(Skip::AlreadyAnswered))
        .count();
    assert_eq!((replied, answered), (1, 7), "{outcomes:?}");
    assert_eq!(fake.tool_requests(SEND_TOOL).len(), 1);
    assert_eq!(fake.chat_requests().len(), 1);
}

#[tokio::test]
async fn replies_are_rate_limited_per_channel() {
    let fake = FakeApis::start().await;
    let mut c = config();
    c.max_replies = 2;
    c.rate_window = Duration::from_secs(3600);
    let bot = RoastBot::new(c, roaster(&fake));
    let mut outcomes = Vec::new();
    for i in 0..4 {
        let msg = message(
            &format!("message {i}"),
            &format!("1763630400.00000{i}"),
            None,
        );
        outcomes.push(
            within(
                "a handled message",
                bot.handle("evt", &msg, &tools_for(&fake, &msg)),
            )
            .await
            .unwrap(),
        );
    }
    assert!(matches!(outcomes[0], Outcome::Replied(_)));
    assert!(matches!(outcomes[1], Outcome::Replied(_)));
    assert_eq!(outcomes[2], Outcome::Skipped(Skip::RateLimited));
    assert_eq!(outcomes[3], Outcome::Skipped(Skip::RateLimited));
    assert_eq!(fake.tool_requests(SEND_TOOL).len(), 2);
}

#[tokio::test]
async fn a_failed_reply_is_reported_and_leaves_the_thread_open() {
    let fake = FakeApis::start().await;
    let path = format!("/api/v3.1/tools/execute/{SEND_TOOL}");
    fake.script(
        &path,
        200,
        json!({"data": {}, "error": "not_in_channel", "log_id": "log_x", "successful": false}),
    );
    let bot = RoastBot::new(config(), roaster(&fake));
    let first = message("first try", "1763630500.000001", None);
    let err = within(
        "the failed reply",
        bot.handle("evt_a", &first, &tools_for(&fake, &first)),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("not_in_channel"), "{err:#}");
    // The same message delivered again is answered now.
    let again = within(
        "the retried reply",
        bot.handle("evt_b", &first, &tools_for(&fake, &first)),
    )
    .await
    .unwrap();
    assert!(matches!(again, Outcome::Replied(_)), "{again:?}");
    let tools = fake.tool_requests(SEND_TOOL);
    assert_eq!(tools.len(), 2);
    assert_tool_request(&tools[1], "first try", "1763630500.000001");

    // The model's errors are reported too, with the server's message.
    fake.script(
        "/v1/chat/completions",
        401,
        json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}),
    );
    let other = message("second", "1763630500.000002", None);
    let err = within(
        "the model failure",
        bot.handle("evt_c", &other, &tools_for(&fake, &other)),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("Incorrect API key provided"),
        "{err:#}"
    );
    assert_eq!(fake.tool_requests(SEND_TOOL).len(), 2);
}

#[tokio::test]
async fn the_bots_own_replies_coming_back_are_never_answered() {
    let fake = FakeApis::start().await;
    let mut c = config();
    c.bot_user_id = None; // Composio posts as the connected user: no bot user id to go by.
    let bot = RoastBot::new(c, roaster(&fake));
    let msg = message("hello world", "1763630600.000001", None);
    let Outcome::Replied(reply) = within(
        "a reply",
        bot.handle("evt_1", &msg, &tools_for(&fake, &msg)),
    )
    .await
    .unwrap() else {
        panic!("no reply")
    };
    // Slack sends the bot's reply back as a new message in the thread (same text, the ts
    // the tool answered with), under another user and with no bot_id.
    let echo = SlackMessage {
        user: Some("U_CONNECTED_USER".into()),
        ..message(
            &reply.text,
            &format!("{POSTED_TS_PREFIX}000001"),
            Some("1763630600.000001"),
        )
    };
    let outcome = within(
        "the echo",
        bot.handle("evt_2", &echo, &tools_for(&fake, &echo)),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Skipped(Skip::OwnMessage));
    // Even in a new thread (the text is recognised).
    let echo_elsewhere = message(&reply.text, "1763630600.000009", None);
    let outcome = within(
        "the echo",
        bot.handle("evt_3", &echo_elsewhere, &tools_for(&fake, &echo_elsewhere)),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Skipped(Skip::OwnMessage));
    assert_eq!(fake.tool_requests(SEND_TOOL).len(), 1);
}

#[tokio::test]
async fn odd_payloads_are_skipped_or_reported_never_a_panic() {
    let fake = FakeApis::start().await;
    let bot = Arc::new(RoastBot::new(config(), roaster(&fake)));
    let harness = Harness::new(app::with_tools(
        app::unregistered().shared_state(bot),
        client(&fake),
    ))
    .unwrap();
    let payloads = [
        json!({}),
        json!({"channel": CHANNEL}),
        json!({"channel": CHANNEL, "text": 42, "ts": null, "thread_ts": 7}),
        json!({"channel": CHANNEL, "text": "   ", "ts": "1.1"}),
        json!({"channel": [1], "text": {"a": 1}, "ts": true, "user": {}}),
        json!("not an object"),
        json!(null),
    ];
    for (i, payload) in payloads.into_iter().enumerate() {
        let envelope = json!({
            "id": format!("evt_odd_{i}"), "type": "composio.trigger.message", "timestamp": "t",
            "metadata": {"trigger_slug": "SLACK_RECEIVE_MESSAGE", "trigger_id": "ti", "user_id": "default",
                         "connected_account_id": "ca", "auth_config_id": "ac", "log_id": "log"},
            "data": payload,
        });
        let report = within("dispatch", harness.dispatch_json(envelope.to_string()))
            .await
            .unwrap();
        assert!(report.ran("roast"), "{report:?}");
        for o in &report.outcomes {
            if let Err(kind) = &o.result {
                assert!(
                    matches!(kind, FailureKind::Extract(_)),
                    "payload {i}: {kind}"
                );
            }
        }
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn the_slack_trigger_is_enabled_only_when_the_user_has_none() {
    let fake = FakeApis::start().await;
    let client = ComposioClient::builder("ck_test")
        .base_url(fake.base_url())
        .build()
        .unwrap();
    let id = within(
        "ensure_trigger",
        app::ensure_trigger(&client, "user-7", Some("ca_9")),
    )
    .await
    .unwrap();
    assert_eq!(id, "ti_fake_1");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/api/v3.1/trigger_instances/active")
    );
    let query = reqs[0].query.clone().unwrap_or_default();
    for part in [
        "trigger_names=SLACK_RECEIVE_MESSAGE",
        "user_ids=user-7",
        "connected_account_ids=ca_9",
    ] {
        assert!(query.contains(part), "{query}");
    }
    assert_eq!(
        (reqs[1].method.as_str(), reqs[1].path.as_str()),
        (
            "POST",
            "/api/v3.1/trigger_instances/SLACK_RECEIVE_MESSAGE/upsert"
        )
    );
    assert_eq!(
        reqs[1].body,
        json!({"user_id": "user-7", "connected_account_id": "ca_9", "trigger_config": {}})
    );
    assert!(reqs
        .iter()
        .all(|r| r.header("x-api-key") == Some("ck_test")));

    // Already enabled: nothing is created.
    fake.set_active_triggers(
        json!({"items": [{"id": "ti_live", "trigger_name": "SLACK_RECEIVE_MESSAGE",
        "connected_account_id": "ca_9", "trigger_config": {}, "disabled_at": null}]}),
    );
    let id = within(
        "ensure_trigger",
        app::ensure_trigger(&client, "user-7", None),
    )
    .await
    .unwrap();
    assert_eq!(id, "ti_live");
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_bot_enables_the_trigger_then_replies_through_composio_tool_execution() {
    use listener_e2e::source::{ChannelSource, Feed};

    let fake = FakeApis::start().await;
    let client = ComposioClient::builder("ck_test")
        .base_url(fake.base_url())
        .build()
        .unwrap();
    let roaster = roaster(&fake);
    // Stands in for Composio's realtime channel (the hub path is covered above).
    let (source, feeder) = ChannelSource::new("realtime stand-in");
    let live = tokio::spawn(app::run_live(
        app::unregistered(),
        config(),
        roaster,
        client,
        "default",
        None,
        source,
    ));
    let text = "the build is green, ship it";
    feeder.send(
        TriggerEvent::new(
            "SLACK_RECEIVE_MESSAGE",
            json!({"channel": CHANNEL, "user": "U1", "text": text, "ts": "1763630700.000100", "thread_ts": null}),
        )
        .with_event_id("evt_live")
        .with_user_id("default")
        .with_connected_account(ConnectedAccount {
            id: "ca_live".into(),
            user_id: "default".into(),
            ..ConnectedAccount::default()
        }),
    );
    feeder.tx.send(Feed::Finish).unwrap();
    // The source ended: the bot drains its running handler and returns.
    within("the live bot to finish", live)
        .await
        .unwrap()
        .unwrap();

    let calls: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let expected = [
        ("GET", "/api/v3.1/trigger_instances/active"),
        (
            "POST",
            "/api/v3.1/trigger_instances/SLACK_RECEIVE_MESSAGE/upsert",
        ),
        ("POST", "/v1/chat/completions"),
        ("POST", "/api/v3.1/tools/execute/SLACK_SEND_MESSAGE"),
    ];
    assert_eq!(
        calls,
        expected
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect::<Vec<_>>()
    );
    assert_chat_request(&fake.chat_requests()[0], text);
    let tool = &fake.tool_requests(SEND_TOOL)[0];
    assert_tool_request(tool, text, "1763630700.000100");
    // The reply runs as the event's user and connected account.
    assert_eq!(tool.body["connected_account_id"], "ca_live");
}

#[tokio::test]
async fn without_the_pre_processor_the_models_arguments_are_never_sent() {
    let fake = FakeApis::start().await;
    let bot = RoastBot::new(config(), roaster(&fake));
    let msg = message("hello", "1763630800.000001", None);
    let event = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", serde_json::to_value(&msg).unwrap())
        .with_user_id("default");
    let bare = Tools::new(client(&fake), ToolProcessors::new(), Arc::new(event));
    let err = within("the refusal", bot.handle("evt_bare", &msg, &bare))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("no pre-processor"), "{err:#}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());

    // A model answer without text is refused by the pre-processor: no tool call.
    fake.set_model_arguments(json!({"channel": CHANNEL, "text": "   "}));
    let err = within(
        "the refusal",
        bot.handle("evt_empty", &msg, &tools_for(&fake, &msg)),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("no text to send"), "{err:#}");
    assert!(fake.tool_requests(SEND_TOOL).is_empty());
}

/// `cargo run --example slack_roast`, the README's first command, as a user runs it (no
/// configuration): exits 0 and prints the three replies (each printed once the embedded
/// hub's tool endpoint answered it).
#[tokio::test]
async fn the_readme_command_exits_0_and_prints_the_replies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = tokio::process::Command::new(cargo);
    cmd.args(["run", "--quiet", "--example", "slack_roast"])
        .current_dir(&root)
        .kill_on_drop(true);
    for var in [
        "COMPOSIO_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ROAST_CHANNEL_ID",
        "ROAST_BOT_USER_ID",
        "ROAST_MAX_REPLIES_PER_MINUTE",
        "LISTENER_WS_URL",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // Building the example may take a while on a cold cache; running it takes well under a
    // second.
    let output = tokio::time::timeout(Duration::from_secs(900), cmd.output())
        .await
        .expect("`cargo run --example slack_roast` did not finish within 15 minutes")
        .expect("cargo could not be started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let replies: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("reply -> "))
        .collect();
    assert_eq!(
        replies,
        [
            "reply -> channel C07JB863EBW thread 1763630043.512919 (mrkdwn: false)",
            "reply -> channel C07JB863EBW thread 1763620000.000100 (mrkdwn: false)",
            "reply -> channel C07JB863EBW thread 1763630110.000700 (mrkdwn: false)",
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("    >type \"who broke the staging deploy again\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("done: 11 sample deliveries: 3 replies;"),
        "{stdout}"
    );
    // One log line per delivery, with the reason for every skip.
    for reason in [
        "other_channel",
        "already_answered",
        "bot_message",
        "duplicate_delivery",
        "edit",
        "empty_text",
        "own_message",
    ] {
        assert!(
            stderr.contains(reason),
            "no `{reason}` in the log:\n{stderr}"
        );
    }
    assert_eq!(stderr.matches("replied").count(), 3, "{stderr}");
}
