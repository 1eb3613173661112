//! A listener inside an existing axum service: the service's routes report the listener's
//! health and counters, and Ctrl-C / SIGTERM stops both together (HTTP first, then the
//! listener drains its running handlers). If the listener ends by itself (its source
//! failed for good) the service stops too.
//!
//! Run it:
//!
//! ```sh
//! cargo run --example embed_in_service             # serve on 127.0.0.1:3000 until Ctrl-C
//! cargo run --example embed_in_service -- --once   # start, publish one event, query itself, stop
//! PORT=8080 COMPOSIO_API_KEY=… cargo run --example embed_in_service
//! ```
//!
//! Routes: `GET /healthz` (200 when every source is connected, else 503, with each
//! source's health), `GET /stats` (the dispatcher's counters), `GET /messages` (the Slack
//! messages handled so far). Without `COMPOSIO_API_KEY` / `LISTENER_WS_URL` the listener is
//! fed by an embedded local hub; publish to it with
//! `curl -X POST <hub>/hub/events -d '{"trigger_slug": "SLACK_RECEIVE_MESSAGE", "payload": {"text": "hi"}}'`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use listener_core::dispatch::Dispatcher;
use listener_core::prelude::*;
use listener_core::source::Health;
use listener_core::ListenerHandle;
use listener_hub::Hub;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// What the handler records, shared with the HTTP routes.
#[derive(Default)]
struct Inbox {
    messages: Mutex<Vec<String>>,
    arrived: Notify,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Message {
    channel: String,
    text: String,
}

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn record(Payload(msg): Payload<Message>, inbox: State<Inbox>) {
    tracing::info!(channel = %msg.channel, "message received");
    inbox
        .messages
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(msg.text);
    inbox.arrived.notify_waiters();
}

/// The service's state: the listener handle (taken at shutdown), its dispatcher, the inbox.
#[derive(Clone)]
struct App {
    listener: Arc<Mutex<Option<ListenerHandle>>>,
    dispatcher: Dispatcher,
    inbox: Arc<Inbox>,
}

async fn healthz(AxumState(app): AxumState<App>) -> (StatusCode, Json<Value>) {
    let health = app
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|h| h.health())
        .unwrap_or_default();
    let up = !health.is_empty() && health.iter().all(|s| s.health == Health::Connected);
    let sources: Vec<Value> = health
        .iter()
        .map(|s| json!({"source": s.name, "health": s.health.to_string()}))
        .collect();
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"up": up, "sources": sources})))
}

async fn stats(AxumState(app): AxumState<App>) -> Json<Value> {
    let s = app.dispatcher.stats();
    Json(
        json!({"events": s.events, "duplicates": s.duplicates, "runs": s.runs,
                "failures": s.failures, "in_flight": app.dispatcher.in_flight()}),
    )
}

async fn messages(AxumState(app): AxumState<App>) -> Json<Value> {
    Json(json!(app
        .inbox
        .messages
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()))
}

/// Resolves on Ctrl-C, SIGTERM, or when the listener has ended by itself.
async fn stop_signal(listener: Arc<Mutex<Option<ListenerHandle>>>, stop: Arc<Notify>) {
    let listener_ended = async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let ended = listener
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_none_or(ListenerHandle::is_finished);
            if ended {
                tracing::warn!("the listener ended; stopping the service");
                return;
            }
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
        _ = term => tracing::info!("SIGTERM: stopping"),
        _ = stop.notified() => tracing::info!("stop requested"),
        _ = listener_ended => {}
    }
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
    let once = std::env::args().any(|a| a == "--once");
    let configured = ["COMPOSIO_API_KEY", "LISTENER_WS_URL"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    let inbox = Arc::new(Inbox::default());

    // The listener: from the environment, or fed by an embedded local hub.
    let (builder, hub) = if configured {
        (Listener::from_env()?, None)
    } else {
        let hub = Hub::builder().start().await?;
        println!(
            "no COMPOSIO_API_KEY: listening to a local hub at {}",
            hub.base_url()
        );
        (Listener::builder().source(hub.composio_source()), Some(hub))
    };
    let handle = builder.shared_state(Arc::clone(&inbox)).build()?.spawn();
    let app = App {
        dispatcher: handle.dispatcher().clone(),
        listener: Arc::new(Mutex::new(Some(handle))),
        inbox: Arc::clone(&inbox),
    };

    // The existing service, with the listener's routes added.
    let router = Router::new()
        .route("/", get(|| async { "my service\n" }))
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .route("/messages", get(messages))
        .with_state(app.clone());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.trim().parse().context("PORT")?,
        Err(_) if once => 0,
        Err(_) => 3000,
    };
    let tcp = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = tcp.local_addr()?;
    println!("service on http://{addr} (routes: /healthz /stats /messages)");
    let stop = Arc::new(Notify::new());
    let serve = axum::serve(tcp, router)
        .with_graceful_shutdown(stop_signal(Arc::clone(&app.listener), Arc::clone(&stop)));
    let server = tokio::spawn(async move { serve.await });

    if once {
        let hub = hub
            .as_ref()
            .context("--once needs the embedded hub (unset COMPOSIO_API_KEY)")?;
        tokio::time::timeout(Duration::from_secs(10), async {
            while hub.subscribers() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .context("the listener did not subscribe")?;
        let arrived = inbox.arrived.notified();
        hub.publish_payload(
            "SLACK_RECEIVE_MESSAGE",
            json!({"channel": "C1", "text": "hello from the hub"}),
        )?;
        tokio::time::timeout(Duration::from_secs(10), arrived)
            .await
            .context("no event")?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        for route in ["healthz", "stats", "messages"] {
            let body = http
                .get(format!("http://{addr}/{route}"))
                .send()
                .await?
                .text()
                .await?;
            println!("GET /{route} -> {body}");
        }
        stop.notify_one();
    }

    server.await??;
    // HTTP has stopped; now the listener: stop reading, drain running handlers.
    let handle = app
        .listener
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(handle) = handle {
        let stopped = handle.shutdown().await?;
        println!(
            "stopped: {} events, {} handler runs",
            stopped.stats.events, stopped.stats.runs
        );
    }
    if let Some(hub) = hub {
        hub.shutdown().await;
    }
    Ok(())
}
