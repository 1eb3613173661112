//! # roastbot: the `slack_roast` example as a library
//!
//! A Slack bot that answers each new message in one channel with a snarky greentext roast,
//! posted as a thread reply through Composio's Slack tool. The example binary
//! (`cargo run --example slack_roast`, `slack_roast/main.rs`) is a thin `main` over this
//! crate; the tests drive the same code with a local server playing the model and Composio.
//! Replies go out through the `Tools` extractor: as the event's user and connected account,
//! through the listener's pre-processor ([`app::with_tools`]).
//!
//! - [`bot`]: settings, filter rules, memory, and the `#[on_trigger]` handler.
//! - [`roaster`]: the system prompt, the OpenAI-compatible client, the offline roaster.
//! - [`preprocess`]: the pre-processor registered on the listener for the Slack send tool:
//!   forces the message's channel, thread and `mrkdwn: false` onto every call.
//! - [`samples`] and [`app`]: the bundled sample deliveries, the embedded demo, the live bot.

pub mod app;
pub mod bot;
pub mod memory;
pub mod message;
pub mod preprocess;
pub mod roaster;
pub mod samples;

pub use bot::{format_reply, BotConfig, Handled, Outcome, Reply, RoastBot, Skip};
pub use message::SlackMessage;
pub use roaster::{OfflineRoaster, OpenAiRoaster, Roaster, ToolCall, SEND_TOOL, SYSTEM_PROMPT};
