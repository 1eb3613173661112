//! The bot: its settings, its filter rules, and the `#[on_trigger]` handler.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use listener_core::prelude::*;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::memory::{fingerprint, BoundedSet, RateLimiter};
use crate::message::SlackMessage;
use crate::roaster::{Roaster, SEND_TOOL};

/// The bot's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotConfig {
    /// The only channel the bot answers in (`ROAST_CHANNEL_ID`).
    pub channel_id: String,
    /// The Slack user the replies are posted as (`ROAST_BOT_USER_ID`): its messages are
    /// never answered.
    pub bot_user_id: Option<String>,
    /// Replies per channel per [`rate_window`](Self::rate_window); 0 is no limit
    /// (`ROAST_MAX_REPLIES_PER_MINUTE`, default 6).
    pub max_replies: u32,
    /// The rate limit's window (one minute).
    pub rate_window: Duration,
    /// Threads (and messages) remembered to answer each at most once (default 10,000).
    pub memory: usize,
    /// Also print each reply sent to standard output (channel, thread, text): the demo's
    /// transcript (default off).
    pub print_replies: bool,
}

impl BotConfig {
    /// Defaults for `channel_id`.
    pub fn new(channel_id: impl Into<String>) -> Self {
        BotConfig {
            channel_id: channel_id.into(),
            bot_user_id: None,
            max_replies: 6,
            rate_window: Duration::from_secs(60),
            memory: 10_000,
            print_replies: false,
        }
    }

    /// From `ROAST_CHANNEL_ID` (else `default_channel`), `ROAST_BOT_USER_ID` (else
    /// `default_bot_user`) and `ROAST_MAX_REPLIES_PER_MINUTE`.
    pub fn from_env(
        default_channel: Option<&str>,
        default_bot_user: Option<&str>,
    ) -> anyhow::Result<Self> {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let channel = var("ROAST_CHANNEL_ID")
            .or_else(|| default_channel.map(str::to_owned))
            .context("set ROAST_CHANNEL_ID to the Slack channel id (C…) the bot answers in")?;
        let mut config = BotConfig::new(channel);
        config.bot_user_id =
            var("ROAST_BOT_USER_ID").or_else(|| default_bot_user.map(str::to_owned));
        if let Some(n) = var("ROAST_MAX_REPLIES_PER_MINUTE") {
            config.max_replies = n.parse().with_context(|| {
                format!("ROAST_MAX_REPLIES_PER_MINUTE `{n}` is not a whole number")
            })?;
        }
        Ok(config)
    }
}

/// Why a message got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not the configured channel.
    OtherChannel,
    /// Posted by a bot or an app.
    BotMessage,
    /// Posted by this bot (its user, or one of its own replies coming back).
    OwnMessage,
    /// An edit of an earlier message.
    Edit,
    /// A deletion.
    Deleted,
    /// A join, topic change or other system message.
    SystemMessage(String),
    /// No text.
    EmptyText,
    /// No `ts`: nothing to reply to.
    NoTimestamp,
    /// The same message, delivered again.
    Duplicate,
    /// The thread already has the bot's reply.
    AlreadyAnswered,
    /// The channel had its share of replies this minute.
    RateLimited,
}

impl Skip {
    /// A stable snake_case code, for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Skip::OtherChannel => "other_channel",
            Skip::BotMessage => "bot_message",
            Skip::OwnMessage => "own_message",
            Skip::Edit => "edit",
            Skip::Deleted => "deleted",
            Skip::SystemMessage(_) => "system_message",
            Skip::EmptyText => "empty_text",
            Skip::NoTimestamp => "no_timestamp",
            Skip::Duplicate => "duplicate",
            Skip::AlreadyAnswered => "already_answered",
            Skip::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::OtherChannel => f.write_str("not the roast channel"),
            Skip::BotMessage => f.write_str("posted by a bot"),
            Skip::OwnMessage => f.write_str("posted by this bot"),
            Skip::Edit => f.write_str("an edit"),
            Skip::Deleted => f.write_str("a deletion"),
            Skip::SystemMessage(s) => write!(f, "a `{s}` system message"),
            Skip::EmptyText => f.write_str("no text"),
            Skip::NoTimestamp => f.write_str("no ts to reply to"),
            Skip::Duplicate => f.write_str("the same message delivered again"),
            Skip::AlreadyAnswered => f.write_str("thread already answered"),
            Skip::RateLimited => f.write_str("channel reply rate limit reached"),
        }
    }
}

/// A reply the bot sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The channel.
    pub channel: String,
    /// The thread.
    pub thread_ts: String,
    /// The text.
    pub text: String,
    /// The arguments the tool was run with (after the pre-processor).
    pub arguments: Map<String, Value>,
    /// The posted message's `ts`, when the tool said (to recognise the bot's own reply if
    /// Slack sends it back as a new message).
    pub posted_ts: Option<String>,
}

/// The text [`BotConfig::print_replies`] prints for a reply's arguments.
pub fn format_reply(arguments: &Map<String, Value>) -> String {
    let s = |k: &str| arguments.get(k).and_then(Value::as_str).unwrap_or("?");
    let mut out = format!(
        "reply -> channel {} thread {} (mrkdwn: {})\n",
        s("channel"),
        s("thread_ts"),
        arguments.get("mrkdwn").unwrap_or(&Value::Null)
    );
    for line in s("text").lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What the bot did with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It replied.
    Replied(Reply),
    /// It did not, for this reason.
    Skipped(Skip),
    /// It tried and failed (the error's text); the thread may be answered later.
    Failed(String),
}

/// One handled message, as reported to an observer.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The delivery's event id.
    pub event_id: String,
    /// The message's channel.
    pub channel: String,
    /// The message's ts.
    pub ts: String,
    /// What happened.
    pub outcome: Outcome,
}

#[derive(Debug)]
struct Memory {
    answered: BoundedSet,
    seen: BoundedSet,
    own_ts: BoundedSet,
    own_texts: BoundedSet,
    limiter: RateLimiter,
}

/// The bot's shared state: settings, memory and the roaster. Replies go out through the
/// `Tools` of the event being answered (see [`RoastBot::handle`]).
/// Safe under concurrent events: every decision about a thread is taken under one lock.
pub struct RoastBot {
    config: BotConfig,
    roaster: Arc<dyn Roaster>,
    memory: Mutex<Memory>,
    observer: Option<mpsc::UnboundedSender<Handled>>,
}

impl fmt::Debug for RoastBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoastBot")
            .field("config", &self.config)
            .field("roaster", &self.roaster.name())
            .finish_non_exhaustive()
    }
}

/// The key of a thread: channel and thread ts.
fn thread_id(channel: &str, thread: &str) -> String {
    format!("{channel}:{thread}")
}

impl RoastBot {
    /// A bot with these settings and roaster.
    pub fn new(config: BotConfig, roaster: Arc<dyn Roaster>) -> Self {
        let cap = config.memory.max(1);
        let memory = Memory {
            answered: BoundedSet::new(cap),
            seen: BoundedSet::new(cap),
            own_ts: BoundedSet::new(1024),
            own_texts: BoundedSet::new(1024),
            limiter: RateLimiter::new(config.max_replies, config.rate_window),
        };
        RoastBot {
            config,
            roaster,
            memory: Mutex::new(memory),
            observer: None,
        }
    }

    /// Reports every handled message on the returned channel (for the demo and tests).
    pub fn observe(&mut self) -> mpsc::UnboundedReceiver<Handled> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.observer = Some(tx);
        rx
    }

    /// The settings.
    pub fn config(&self) -> &BotConfig {
        &self.config
    }

    /// The roaster's name.
    pub fn roaster_name(&self) -> String {
        self.roaster.name()
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic elsewhere while holding the lock leaves plain sets behind: keep going.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rules that need no memory.
    fn check(&self, msg: &SlackMessage) -> Result<(), Skip> {
        if msg.channel != self.config.channel_id {
            return Err(Skip::OtherChannel);
        }
        if msg.user.is_some() && msg.user == self.config.bot_user_id {
            return Err(Skip::OwnMessage);
        }
        if msg.bot_id.is_some()
            || msg.bot_profile.is_some()
            || msg.subtype.as_deref() == Some("bot_message")
        {
            return Err(Skip::BotMessage);
        }
        match msg.subtype.as_deref() {
            None | Some("thread_broadcast") | Some("file_share") | Some("me_message") => {}
            Some("message_changed") => return Err(Skip::Edit),
            Some("message_deleted") => return Err(Skip::Deleted),
            Some(other) => return Err(Skip::SystemMessage(other.chars().take(40).collect())),
        }
        if msg.edited.is_some() {
            return Err(Skip::Edit);
        }
        if msg.text.trim().is_empty() {
            return Err(Skip::EmptyText);
        }
        if msg.ts.trim().is_empty() {
            return Err(Skip::NoTimestamp);
        }
        Ok(())
    }

    /// Decides whether to answer; if so the thread is claimed (under the lock, so two
    /// concurrent messages of one thread cannot both get a reply).
    fn admit(&self, msg: &SlackMessage) -> Result<String, Skip> {
        self.check(msg)?;
        let mut memory = self.memory();
        if memory.own_ts.contains(&msg.ts)
            || memory
                .own_texts
                .contains(&fingerprint(&msg.text).to_string())
        {
            return Err(Skip::OwnMessage);
        }
        let message = thread_id(&msg.channel, &msg.ts);
        if memory.seen.contains(&message) {
            return Err(Skip::Duplicate);
        }
        let thread = thread_id(&msg.channel, msg.thread_key());
        if memory.answered.contains(&thread) {
            memory.seen.insert(&message);
            return Err(Skip::AlreadyAnswered);
        }
        if !memory.limiter.try_acquire(&msg.channel, Instant::now()) {
            return Err(Skip::RateLimited);
        }
        memory.seen.insert(&message);
        memory.answered.insert(&thread);
        Ok(thread)
    }

    /// Handles one message: skip it (with a reason), or roast it and send the reply
    /// through `tools` (the message event's: its user and connected account, and the
    /// listener's pre-processor of `SLACK_SEND_MESSAGE`, which puts the message's channel
    /// and thread back whatever the model said). Errors (model or tool failures) are
    /// returned after logging; the thread is released so that a later message can be
    /// answered.
    pub async fn handle(
        &self,
        event_id: &str,
        msg: &SlackMessage,
        tools: &Tools,
    ) -> anyhow::Result<Outcome> {
        let outcome = match self.admit(msg) {
            Err(skip) => {
                tracing::info!(event_id, channel = %msg.channel, ts = %msg.ts, reason = skip.code(), "skipped: {skip}");
                Ok(Outcome::Skipped(skip))
            }
            Ok(thread) => match self.reply(msg, tools).await {
                Ok(reply) => {
                    tracing::info!(event_id, channel = %reply.channel, thread_ts = %reply.thread_ts, roaster = %self.roaster.name(), "replied");
                    Ok(Outcome::Replied(reply))
                }
                Err(e) => {
                    let mut memory = self.memory();
                    memory.answered.remove(&thread);
                    memory.seen.remove(&thread_id(&msg.channel, &msg.ts));
                    drop(memory);
                    tracing::warn!(event_id, channel = %msg.channel, ts = %msg.ts, error = %format!("{e:#}"), "failed to reply");
                    Err(e)
                }
            },
        };
        if let Some(observer) = &self.observer {
            let reported = match &outcome {
                Ok(o) => o.clone(),
                Err(e) => Outcome::Failed(format!("{e:#}")),
            };
            let _ = observer.send(Handled {
                event_id: event_id.to_owned(),
                channel: msg.channel.clone(),
                ts: msg.ts.clone(),
                outcome: reported,
            });
        }
        outcome
    }

    async fn reply(&self, msg: &SlackMessage, tools: &Tools) -> anyhow::Result<Reply> {
        // The model's arguments are never sent as they are.
        if tools.processors().pre_count(SEND_TOOL) == 0 {
            bail!("the listener has no pre-processor of {SEND_TOOL} (see app::with_tools): not sending the model's arguments as they are");
        }
        let call = self
            .roaster
            .roast(msg)
            .await
            .with_context(|| format!("roasting with {}", self.roaster.name()))?;
        let prepared = tools.prepare(SEND_TOOL, call.arguments)?;
        let arguments = prepared
            .arguments()
            .as_object()
            .cloned()
            .unwrap_or_default();
        let text = arguments
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let data = tools
            .send(&prepared)
            .await?
            .into_result(SEND_TOOL)
            .context("posting the reply")?;
        let posted_ts = ["ts", "message_ts"]
            .iter()
            .find_map(|k| data.get(*k).and_then(Value::as_str))
            .or_else(|| data.pointer("/message/ts").and_then(Value::as_str))
            .map(str::to_owned);
        {
            let mut memory = self.memory();
            memory.own_texts.insert(&fingerprint(&text).to_string());
            if let Some(ts) = &posted_ts {
                memory.own_ts.insert(ts);
            }
        }
        if self.config.print_replies {
            let mut out = std::io::stdout().lock();
            let printed = out
                .write_all(format_reply(&arguments).as_bytes())
                .and_then(|()| out.flush());
            if let Err(e) = printed {
                tracing::warn!(error = %e, "could not print the reply (it was sent)");
            }
        }
        Ok(Reply {
            channel: arguments
                .get("channel")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            thread_ts: arguments
                .get("thread_ts")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            text,
            arguments,
            posted_ts,
        })
    }
}

/// The handler's body: every Slack message goes through [`RoastBot::handle`], replying
/// through the event's [`Tools`]. The example binary registers it with
/// `#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]`; [`handler`] wraps it by hand (for tests
/// and embedding, without the registry).
pub async fn on_message(
    Payload(msg): Payload<SlackMessage>,
    meta: Meta,
    bot: State<RoastBot>,
    tools: Tools,
) -> anyhow::Result<()> {
    bot.handle(meta.event_id(), &msg, &tools).await.map(|_| ())
}

/// [`on_message`] as a [`Handler`] for `SLACK_RECEIVE_MESSAGE`, named [`HANDLER_NAME`].
pub fn handler() -> Handler {
    Handler::new(
        HANDLER_NAME,
        Filter::new().name(crate::app::TRIGGER),
        on_message,
    )
}

/// The name of the bot's handler (the function name the example's `#[on_trigger]` uses).
pub const HANDLER_NAME: &str = "roast";
