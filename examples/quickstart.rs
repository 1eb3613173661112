//! Quickstart: annotated handlers, shared state, and a listener fed over a websocket.
//!
//! Run it: `cargo run --example quickstart`
//!
//! With no configuration it starts a tiny websocket server in-process that sends the sample
//! events from `tests/fixtures/` (a V3 Slack message, a V1 Slack message, a lifecycle event
//! and one garbage frame), handles them, and exits. Point it at your own stream with
//! `LISTENER_WS_URL=wss://…` to run until Ctrl-C instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::SinkExt;
use listener_core::prelude::*;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, serde::Deserialize)]
struct SlackMessage {
    channel: String,
    user: Option<String>,
    text: String,
}

/// Shared by every handler through `State<Stats>`.
#[derive(Default)]
struct Stats {
    handled: AtomicUsize,
    done: Notify,
}

impl Stats {
    fn count(&self) {
        self.handled.fetch_add(1, Ordering::SeqCst);
        self.done.notify_one();
    }
}

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn print_message(
    Payload(msg): Payload<SlackMessage>,
    meta: Meta,
    stats: State<Stats>,
) -> anyhow::Result<()> {
    println!(
        "[{} via {}] #{} <{}>: {}",
        meta.trigger_slug(),
        meta.envelope(),
        msg.channel,
        msg.user.as_deref().unwrap_or("?"),
        msg.text
    );
    stats.count();
    Ok(())
}

/// Plain functions run on the blocking pool.
#[on_trigger(name = "composio.connected_account.expired")]
fn account_expired(meta: Meta, stats: State<Stats>) {
    let account = meta.connected_account();
    println!(
        "[lifecycle] account {} is {}: re-authentication needed",
        account.id, account.status
    );
    stats.count();
}

const SAMPLES: [&str; 3] = [
    include_str!("../tests/fixtures/v3_slack_receive_message.json"),
    include_str!("../tests/fixtures/v1_slack_receive_message.json"),
    include_str!("../tests/fixtures/v3_connected_account_expired.json"),
];

/// Serves the samples (and one garbage frame, which the listener skips) to the first client.
async fn sample_server() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let _ = ws.send(Message::text("this frame is not JSON")).await;
        for sample in SAMPLES {
            let _ = ws.send(Message::text(sample)).await;
        }
        // Keep the connection open until the client leaves.
        futures_util::StreamExt::for_each(ws, |_| async {}).await;
    });
    Ok(url)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,listener_core=info".into()),
        )
        .init();

    let stats = Arc::new(Stats::default());
    if std::env::var("LISTENER_WS_URL").is_ok() {
        let stopped = Listener::from_env()?
            .shared_state(stats.clone())
            .build()?
            .wait_forever()
            .await?;
        println!(
            "stopped ({:?}) after {} events",
            stopped.reason, stopped.stats.events
        );
        return Ok(());
    }

    let url = sample_server().await?;
    let handle = Listener::builder()
        .source(WebSocketSource::new(url)?)
        .shared_state(stats.clone())
        .on_error(|failure| eprintln!("reported: {failure}"))
        .build()?
        .spawn();
    while stats.handled.load(Ordering::SeqCst) < SAMPLES.len() {
        tokio::time::timeout(std::time::Duration::from_secs(10), stats.done.notified()).await?;
    }
    let stopped = handle.shutdown().await?;
    println!(
        "done: {} events, {} handler runs, {} failures",
        stopped.stats.events, stopped.stats.runs, stopped.stats.failures
    );
    Ok(())
}
