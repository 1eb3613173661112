//! roastbot: answers each new message of a Slack channel with a snarky greentext roast,
//! posted as a thread reply through Composio's Slack tool.
//!
//! Run it (no configuration needed):
//!
//! ```sh
//! cargo run --example slack_roast              # replay the bundled samples, print replies, exit
//! cargo run --example slack_roast -- --forever # …then keep listening on the local hub
//! ```
//!
//! With no `COMPOSIO_API_KEY` it starts a local hub in-process, replays the bundled Slack
//! messages (`examples/data/slack_roast_samples.json`) through the hub's websocket (the
//! same path as Composio's realtime channel), sends each reply to the hub's tool execution
//! endpoint (the same path as Composio's; the hub records it instead of posting), prints
//! it, and exits.
//!
//! For real: `COMPOSIO_API_KEY=… ROAST_CHANNEL_ID=C… [COMPOSIO_USER_ID=default]
//! [OPENAI_API_KEY=… OPENAI_BASE_URL=… ROAST_MODEL=…] cargo run --example slack_roast`
//! enables `SLACK_RECEIVE_MESSAGE` for the user, listens on Composio's realtime channel, and
//! replies through Composio's `SLACK_SEND_MESSAGE` tool, as the user and connected account
//! of each message event. Without `OPENAI_API_KEY` the
//! roasts come from a deterministic offline roaster. Logs go to standard error
//! (`RUST_LOG=debug` for more).

use listener_core::prelude::*;
use listener_examples::{bot, RoastBot, SlackMessage};

/// The bot's one handler: each Slack message, typed, with the shared bot state and the
/// tools to reply with (as the event's user and connected account, through the listener's
/// pre-processor of `SLACK_SEND_MESSAGE`).
#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn roast(
    msg: Payload<SlackMessage>,
    meta: Meta,
    state: State<RoastBot>,
    tools: Tools,
) -> anyhow::Result<()> {
    bot::on_message(msg, meta, state, tools).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,listener_core=warn".into()),
        )
        .init();
    let handlers = listener_examples::app::registered(); // the `roast` fn above
    listener_examples::app::main_from_env(handlers, std::env::args().skip(1)).await
}
