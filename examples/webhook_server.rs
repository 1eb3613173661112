//! The webhook source alone: receive Composio's signed webhook deliveries (V1, V2 or V3) and
//! run the matching handlers.
//!
//! Run it:
//!
//! ```sh
//! cargo run --example webhook_server                      # offline demo, exits
//! COMPOSIO_WEBHOOK_SECRET=whsec_… LISTENER_WEBHOOK_ADDR=0.0.0.0:8787 \
//!     cargo run --example webhook_server                  # serve until Ctrl-C
//! ```
//!
//! With `COMPOSIO_WEBHOOK_SECRET` set it serves `POST /webhook` (and `GET /healthz`) at
//! `LISTENER_WEBHOOK_ADDR` until Ctrl-C; point a Composio webhook subscription (or
//! `trigger-hub forward --to http://127.0.0.1:8787/webhook`) at it. Without it, the example
//! binds an ephemeral port with a demo secret, posts the sample deliveries to itself — one
//! valid, one with a bad signature, one replayed — prints each answer and what the handlers
//! saw, and exits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use listener_core::prelude::*;
use listener_core::webhook::{signed_headers, WebhookSecret, WebhookSource};

#[derive(Debug, serde::Deserialize)]
struct SlackMessage {
    channel: String,
    text: String,
}

/// Counts handled deliveries (shared with every handler as `State<Seen>`).
#[derive(Default)]
struct Seen {
    handled: AtomicUsize,
}

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn on_message(Payload(msg): Payload<SlackMessage>, meta: Meta, seen: State<Seen>) {
    seen.handled.fetch_add(1, Ordering::SeqCst);
    println!(
        "handler: #{} says {:?} (delivery {}, attempt {:?})",
        msg.channel,
        msg.text,
        meta.event_id(),
        meta.delivery_attempt
    );
}

#[on_trigger(name = "composio.connected_account.expired")]
async fn on_expired(meta: Meta, seen: State<Seen>) {
    seen.handled.fetch_add(1, Ordering::SeqCst);
    println!(
        "handler: connected account {} expired; ask the user to reconnect",
        meta.connected_account().id
    );
}

const MESSAGE: &[u8] = include_bytes!("../tests/fixtures/v3_slack_receive_message.json");
const EXPIRED: &[u8] = include_bytes!("../tests/fixtures/v3_connected_account_expired.json");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let seen = Arc::new(Seen::default());

    if std::env::var("COMPOSIO_WEBHOOK_SECRET").is_ok_and(|s| !s.is_empty()) {
        let source = WebhookSource::from_env()?;
        println!(
            "serving POST http://{}/webhook until Ctrl-C",
            source.local_addr()
        );
        let stopped = Listener::builder()
            .source(source)
            .shared_state(seen)
            .build()?
            .wait_forever()
            .await?;
        println!(
            "stopped ({:?}) after {} deliveries",
            stopped.reason, stopped.stats.events
        );
        return Ok(());
    }

    // Offline demo: a demo secret, an ephemeral port, deliveries posted to ourselves.
    let secret = "whsec_demo_secret_for_the_example";
    let source = WebhookSource::bind("127.0.0.1:0".parse()?, vec![WebhookSecret::new(secret)])?;
    let url = format!("http://{}/webhook", source.local_addr());
    println!("webhook source listening at {url} (demo secret)");
    let handle = Listener::builder()
        .source(source)
        .shared_state(seen.clone())
        .build()?
        .spawn();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let deliveries: [(&str, &str, &[u8], &str); 4] = [
        ("a Slack message", "msg_demo_1", MESSAGE, secret),
        ("a lifecycle event", "msg_demo_2", EXPIRED, secret),
        (
            "a forged delivery",
            "msg_demo_3",
            MESSAGE,
            "whsec_not_the_secret",
        ),
        (
            "the first one again (a sender's retry)",
            "msg_demo_1",
            MESSAGE,
            secret,
        ),
    ];
    for (what, id, body, signing_secret) in deliveries {
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-composio-delivery-attempt", "1");
        for (name, value) in signed_headers(&WebhookSecret::new(signing_secret), id, now, body) {
            request = request.header(name, value);
        }
        let response = request.body(body.to_vec()).send().await?;
        let status = response.status();
        println!(
            "posted {what}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    // Handlers run as their own tasks: wait until both accepted deliveries were handled.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.handled.load(Ordering::SeqCst) < 2 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the handlers did not run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let stopped = handle.shutdown().await?;
    println!(
        "done: {} deliveries dispatched, {} handler runs",
        stopped.stats.events, stopped.stats.runs
    );
    Ok(())
}
