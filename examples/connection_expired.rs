//! Lifecycle events: a handler for `composio.connected_account.expired` that logs that the
//! user must re-authenticate (and which account, toolkit and auth config).
//!
//! Run it:
//!
//! ```sh
//! cargo run --example connection_expired              # offline demo, exits
//! COMPOSIO_API_KEY=… cargo run --example connection_expired   # listen until Ctrl-C
//! ```
//!
//! Without configuration a local hub sends the sample lifecycle event
//! (`tests/fixtures/v3_connected_account_expired.json`) to the handler, which prints the
//! re-authentication notice, and the example exits. With `COMPOSIO_API_KEY` (or
//! `LISTENER_WS_URL`) it listens until Ctrl-C. Composio delivers lifecycle events to webhook
//! subscriptions that enable `composio.connected_account.expired`: create one with
//! `ComposioClient::create_webhook_subscription` and receive it with the webhook source.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use listener_core::lifecycle::ConnectionExpired;
use listener_core::prelude::*;
use listener_hub::Hub;
use tokio::sync::Notify;

const SAMPLE: &str = include_str!("../tests/fixtures/v3_connected_account_expired.json");

/// Signals the demo that the notice was handled.
#[derive(Default)]
struct Done {
    handled: Notify,
}

/// A plain `fn`: runs on the blocking pool.
#[on_trigger(name = "composio.connected_account.expired")]
fn expired(Payload(account): Payload<ConnectionExpired>, meta: Meta, done: State<Done>) {
    tracing::warn!(
        event_id = meta.event_id(),
        connected_account = %account.id,
        toolkit = %account.toolkit.slug,
        auth_config = %account.auth_config.id,
        auth_scheme = %account.auth_config.auth_scheme,
        status = %account.status,
        reason = account.status_reason.as_deref().unwrap_or("-"),
        "connected account expired: the user must re-authenticate"
    );
    println!(
        "re-authentication needed: {} account {} ({}, auth config {}): {}",
        account.toolkit.slug,
        account.id,
        account.status,
        account.auth_config.id,
        account
            .status_reason
            .as_deref()
            .unwrap_or("no reason given")
    );
    done.handled.notify_one();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,listener_core=warn".into()),
        )
        .init();
    let done = Arc::new(Done::default());
    let configured = ["COMPOSIO_API_KEY", "LISTENER_WS_URL"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    if configured {
        let stopped = Listener::from_env()?
            .shared_state(done)
            .build()?
            .wait_forever()
            .await?;
        println!("stopped: {:?}", stopped.reason);
        return Ok(());
    }

    let hub = Hub::builder().start().await?;
    let handle = Listener::builder()
        .source(hub.composio_source())
        .shared_state(Arc::clone(&done))
        .build()?
        .spawn();
    tokio::time::timeout(Duration::from_secs(10), async {
        while hub.subscribers() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .context("the listener did not subscribe to the local hub")?;
    let handled = done.handled.notified();
    hub.publish_bytes(SAMPLE.as_bytes())?;
    tokio::time::timeout(Duration::from_secs(10), handled)
        .await
        .context("the lifecycle event was not handled")?;
    handle.shutdown().await?;
    hub.shutdown().await;
    Ok(())
}
