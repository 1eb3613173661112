//! Running the bot: the embedded demo (a local hub replaying the samples over the real
//! websocket path) and the live bot (Composio's realtime channel and Slack tool).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use listener_core::composio_api::{ActiveTriggersQuery, ComposioClient, UpsertTrigger};
use listener_core::source::{Health, Source};
use listener_core::{Listener, ListenerBuilder, ListenerHandle};
use listener_hub::{Hub, RunningHub};
use tokio::sync::mpsc;
use tokio::time::Instant;

use listener_core::tools::ToolProcessors;

use crate::bot::{BotConfig, Handled, Outcome, RoastBot, HANDLER_NAME};
use crate::preprocess;
use crate::roaster::{OfflineRoaster, OpenAiRoaster, Roaster, SEND_TOOL};
use crate::samples::{Sample, Samples};

/// The trigger the bot listens to.
pub const TRIGGER: &str = "SLACK_RECEIVE_MESSAGE";

/// How long the demo waits for any one step.
pub const STEP_DEADLINE: Duration = Duration::from_secs(20);

/// The listener the example runs: its `#[on_trigger]` handler named [`HANDLER_NAME`] and
/// no other registered one.
pub fn registered() -> ListenerBuilder {
    Listener::builder().only_registered([HANDLER_NAME])
}

/// A listener without the registry, running [`crate::bot::handler`] (for tests and for
/// embedding the bot in another program).
pub fn unregistered() -> ListenerBuilder {
    Listener::builder()
        .without_registered_handlers()
        .handler(crate::bot::handler())
}

/// `builder` with what the bot's handler needs to reply: its `Tools` run through `client`,
/// and every `SLACK_SEND_MESSAGE` call goes through [`preprocess::pre_processor`] (the
/// message's channel and thread, `mrkdwn: false`, whatever the model said).
pub fn with_tools(builder: ListenerBuilder, client: ComposioClient) -> ListenerBuilder {
    builder
        .tools(client)
        .pre_process(SEND_TOOL, preprocess::pre_processor)
}

/// The processors [`with_tools`] registers, for `Tools` built by hand (`Tools::new`, in
/// tests).
pub fn tool_processors() -> ToolProcessors {
    ToolProcessors::new().pre(SEND_TOOL, preprocess::pre_processor)
}

/// `builder` (which holds the bot's handler) with the bot as state, replies through
/// `client` ([`with_tools`]), and `source`.
pub fn listener(
    builder: ListenerBuilder,
    bot: Arc<RoastBot>,
    client: ComposioClient,
    source: impl Source,
) -> listener_core::Result<Listener> {
    with_tools(builder.shared_state(bot), client)
        .source(source)
        .build()
}

/// What one replayed sample did.
#[derive(Debug, Clone, PartialEq)]
pub enum Replayed {
    /// The bot handled it.
    Handled(Handled),
    /// The listener dropped it: its event id was delivered before.
    DroppedDuplicate {
        /// The event id.
        event_id: String,
    },
}

impl Replayed {
    /// `reply`, the skip code, `failed`, or `dropped_duplicate`: comparable with
    /// [`Sample::expect`].
    pub fn code(&self) -> &'static str {
        match self {
            Replayed::Handled(h) => match &h.outcome {
                Outcome::Replied(_) => "reply",
                Outcome::Skipped(skip) => skip.code(),
                Outcome::Failed(_) => "failed",
            },
            Replayed::DroppedDuplicate { .. } => "dropped_duplicate",
        }
    }
}

/// Polls `cond` until it holds or `deadline` passes.
async fn wait_until(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let end = Instant::now() + deadline;
    while !cond() {
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Waits until the listener is subscribed to the hub's trigger channel.
pub async fn wait_subscribed(hub: &RunningHub, handle: &ListenerHandle) -> anyhow::Result<()> {
    wait_until(
        "the listener to subscribe to the local hub",
        STEP_DEADLINE,
        || {
            hub.subscribers() > 0
                && handle
                    .health()
                    .iter()
                    .any(|s| s.health == Health::Connected)
        },
    )
    .await
}

/// Publishes the samples one at a time through the hub and waits for each to be handled
/// (or, for a repeated event id, dropped by the listener), so that the outcome of every
/// sample is known and the order is the samples' order.
pub async fn replay(
    hub: &RunningHub,
    handle: &ListenerHandle,
    outcomes: &mut mpsc::UnboundedReceiver<Handled>,
    samples: &[Sample],
) -> anyhow::Result<Vec<Replayed>> {
    let mut published = HashSet::new();
    let mut out = Vec::with_capacity(samples.len());
    for sample in samples {
        let id = sample.event_id().to_owned();
        let repeated = !id.is_empty() && !published.insert(id.clone());
        let duplicates = handle.dispatcher().stats().duplicates;
        hub.publish(&sample.envelope)
            .with_context(|| format!("publishing the sample `{}`", sample.note))?;
        if repeated {
            wait_until(
                "the listener to drop the duplicate delivery",
                STEP_DEADLINE,
                || handle.dispatcher().stats().duplicates > duplicates,
            )
            .await?;
            tracing::info!(event_id = %id, reason = "duplicate_delivery", "skipped: delivered twice, dropped by the listener");
            out.push(Replayed::DroppedDuplicate { event_id: id });
            continue;
        }
        let handled = tokio::time::timeout(STEP_DEADLINE, outcomes.recv())
            .await
            .with_context(|| format!("timed out waiting for the bot to handle `{}`", sample.note))?
            .context("the bot stopped")?;
        if handled.event_id != id {
            bail!(
                "expected event {id} to be handled, got {}",
                handled.event_id
            );
        }
        out.push(Replayed::Handled(handled));
    }
    Ok(out)
}

/// The embedded default: starts a local hub, listens to it with the bot, replays the
/// bundled samples through the hub's websocket, and stops (or, with `forever`, keeps
/// listening until Ctrl-C). Replies go through `tools` when given, else through the hub's
/// own tool endpoint, which records them (`trigger-hub tool-calls`). Returns what each
/// sample did.
pub async fn run_demo(
    builder: ListenerBuilder,
    config: BotConfig,
    roaster: Arc<dyn Roaster>,
    tools: Option<ComposioClient>,
    samples: &Samples,
    forever: bool,
) -> anyhow::Result<Vec<Replayed>> {
    let hub = Hub::builder()
        .start()
        .await
        .context("starting the local hub")?;
    let client = match tools {
        Some(client) => client,
        None => hub.composio_client().context("a client of the local hub")?,
    };
    let mut bot = RoastBot::new(config, roaster);
    let mut outcomes = bot.observe();
    let bot = Arc::new(bot);
    tracing::info!(channel = %bot.config().channel_id, roaster = %bot.roaster_name(), tools = %client.base_url(), hub = %hub.base_url(), "roast bot starting (embedded demo)");
    let handle = listener(builder, Arc::clone(&bot), client, hub.composio_source())?.spawn();
    let result = async {
        wait_subscribed(&hub, &handle).await?;
        replay(&hub, &handle, &mut outcomes, &samples.samples).await
    }
    .await;
    if result.is_ok() && forever {
        println!(
            "listening on the local hub at {} (Ctrl-C to stop); send a message with:\n  curl -s -X POST {}/hub/events -H 'content-type: application/json' \\\n    -d '{{\"trigger_slug\": \"SLACK_RECEIVE_MESSAGE\", \"payload\": {{\"channel\": \"{}\", \"user\": \"U123\", \"text\": \"hello\", \"ts\": \"1700000000.000100\"}}}}'\nand see the tool calls the bot made with:\n  cargo run -p listener-cli -- tool-calls --hub {}",
            hub.base_url(),
            hub.base_url(),
            bot.config().channel_id,
            hub.base_url()
        );
        tokio::signal::ctrl_c().await.ok();
    }
    let stopped = handle.shutdown().await;
    hub.shutdown().await;
    let steps = result?;
    let stopped = stopped?;
    tracing::info!(
        events = stopped.stats.events,
        duplicates = stopped.stats.duplicates,
        runs = stopped.stats.runs,
        failures = stopped.stats.failures,
        "roast bot stopped"
    );
    Ok(steps)
}

/// Enables `SLACK_RECEIVE_MESSAGE` for the user unless an enabled instance exists, and
/// returns the trigger instance id.
pub async fn ensure_trigger(
    client: &ComposioClient,
    user_id: &str,
    connected_account_id: Option<&str>,
) -> anyhow::Result<String> {
    let mut query = ActiveTriggersQuery::new().trigger(TRIGGER).user(user_id);
    if let Some(id) = connected_account_id {
        query = query.connected_account(id);
    }
    let page = client
        .list_active_triggers(&query)
        .await
        .context("listing active triggers")?;
    if let Some(active) = page
        .items
        .iter()
        .find(|t| t.is_enabled() && t.trigger_slug.eq_ignore_ascii_case(TRIGGER))
    {
        tracing::info!(trigger_id = %active.id, "trigger already enabled");
        return Ok(active.id.clone());
    }
    let mut request = UpsertTrigger::for_user(user_id);
    if let Some(id) = connected_account_id {
        request = request.connected_account(id);
    }
    let created = client
        .upsert_trigger(TRIGGER, &request)
        .await
        .context("enabling the Slack trigger")?;
    tracing::info!(trigger_id = %created.trigger_id, user_id, "trigger enabled");
    Ok(created.trigger_id)
}

/// The live bot: enables the trigger for `user_id` (through `connected_account_id` when
/// given), listens on `source` (Composio's realtime channel), replies through Composio's
/// Slack tool as each event's user and connected account; runs until Ctrl-C / SIGTERM.
#[allow(clippy::too_many_arguments)]
pub async fn run_live(
    builder: ListenerBuilder,
    config: BotConfig,
    roaster: Arc<dyn Roaster>,
    client: ComposioClient,
    user_id: &str,
    connected_account_id: Option<String>,
    source: impl Source,
) -> anyhow::Result<()> {
    ensure_trigger(&client, user_id, connected_account_id.as_deref()).await?;
    let bot = Arc::new(RoastBot::new(config, roaster));
    tracing::info!(channel = %bot.config().channel_id, roaster = %bot.roaster_name(), "roast bot listening on Composio");
    let stopped = listener(builder, bot, client, source)?
        .wait_forever()
        .await?;
    tracing::info!(reason = ?stopped.reason, events = stopped.stats.events, "roast bot stopped");
    Ok(())
}

/// The roaster the environment asks for: OpenAI-compatible with `OPENAI_API_KEY`, else the
/// offline one.
pub fn roaster_from_env() -> anyhow::Result<Arc<dyn Roaster>> {
    Ok(match OpenAiRoaster::from_env()? {
        Some(r) => Arc::new(r),
        None => Arc::new(OfflineRoaster),
    })
}

/// A one-line summary of a replay: replies and skips by reason.
pub fn summary(steps: &[Replayed]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in steps {
        *counts.entry(s.code()).or_default() += 1;
    }
    let replies = counts.remove("reply").unwrap_or(0);
    let others: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(
        "{} sample deliveries: {replies} replies; no reply: {}",
        steps.len(),
        if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        }
    )
}

const USAGE: &str = "usage: cargo run --example slack_roast [-- --forever]

Without COMPOSIO_API_KEY: starts a local hub, replays the bundled sample messages through it,
sends each reply to the hub's tool endpoint (which records it), prints it, and exits
(--forever keeps listening).
With COMPOSIO_API_KEY: enables SLACK_RECEIVE_MESSAGE for COMPOSIO_USER_ID (default `default`),
listens on Composio's realtime channel and replies in Slack through Composio's tool API.

env: ROAST_CHANNEL_ID, ROAST_BOT_USER_ID, ROAST_MAX_REPLIES_PER_MINUTE, OPENAI_API_KEY,
     OPENAI_BASE_URL, ROAST_MODEL, COMPOSIO_API_KEY, COMPOSIO_BASE_URL, COMPOSIO_USER_ID,
     COMPOSIO_CONNECTED_ACCOUNT_ID";

/// The example's `main`: picks the mode from the arguments and the environment; `builder`
/// holds the bot's handler ([`registered`] or [`unregistered`]).
pub async fn main_from_env(
    builder: ListenerBuilder,
    args: impl IntoIterator<Item = String>,
) -> anyhow::Result<()> {
    let mut forever = false;
    for arg in args {
        match arg.as_str() {
            "--forever" => forever = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    let var = |k: &str| {
        std::env::var(k)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let roaster = roaster_from_env()?;
    if var("COMPOSIO_API_KEY").is_some() {
        let config = BotConfig::from_env(None, None)?;
        let client = ComposioClient::from_env()?;
        let source = listener_core::source::composio::ComposioSource::from_env()?;
        let user_id = var("COMPOSIO_USER_ID").unwrap_or_else(|| "default".into());
        return run_live(
            builder,
            config,
            roaster,
            client,
            &user_id,
            var("COMPOSIO_CONNECTED_ACCOUNT_ID"),
            source,
        )
        .await;
    }
    let samples = Samples::bundled()?;
    let mut config = BotConfig::from_env(Some(&samples.channel), Some(&samples.bot_user_id))?;
    config.print_replies = true;
    println!(
        "roastbot demo: no COMPOSIO_API_KEY, so a local hub replays {} sample Slack deliveries; roasting in #{} with the {} roaster; replies go to the hub's tool endpoint, not to Slack, and are printed",
        samples.samples.len(),
        config.channel_id,
        roaster.name()
    );
    let steps = run_demo(builder, config, roaster, None, &samples, forever).await?;
    println!("done: {}", summary(&steps));
    let failed = steps.iter().filter(|s| s.code() == "failed").count();
    if failed > 0 {
        bail!("{failed} replies failed (see the log above)");
    }
    Ok(())
}
