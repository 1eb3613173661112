//! A listener process for the JetStream tests that kill processes (`CARGO_BIN_EXE_js-node`).
//!
//! Configured by the environment like any listener (`LISTENER_NATS_*`, the hub's
//! `COMPOSIO_*` for a relay), plus `NODE_NAME` and `NODE_DELAY_MS` (how long each run of
//! its handler takes). It prints `READY` once every source is connected, then for each run
//! of its Slack handler `START <node> <event_id> <attempt>` and, when the run ends,
//! `DONE <node> <event_id>`, one line each, flushed at once (a SIGKILL loses nothing
//! printed). SIGTERM stops it gracefully.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use listener_core::{Filter, Handler, Listener, Meta};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let node: Arc<str> = std::env::var("NODE_NAME")
        .unwrap_or_else(|_| "node".into())
        .into();
    let delay = Duration::from_millis(
        std::env::var("NODE_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let name = Arc::clone(&node);
    let handler = Handler::new(
        "counted",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |meta: Meta| {
            let node = Arc::clone(&name);
            async move {
                say(&format!(
                    "START {node} {} {}",
                    meta.event_id(),
                    meta.attempt()
                ));
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                say(&format!("DONE {node} {}", meta.event_id()));
            }
        },
    );
    let handle = Listener::from_env()?
        .without_registered_handlers()
        .handler(handler)
        .build()?
        .spawn();
    while !handle.is_ready() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    say("READY");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    handle.shutdown().await?;
    say("STOPPED");
    Ok(())
}
