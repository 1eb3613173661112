//! # listener-core
//!
//! Receive SaaS trigger events (Composio's realtime channel, signed webhooks, a plain
//! websocket) and dispatch them to annotated handler functions.
//!
//! ```no_run
//! use listener_core::prelude::*;
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct SlackMessage {
//!     channel: String,
//!     text: String,
//!     ts: String,
//! }
//!
//! struct Bot {
//!     name: String,
//! }
//!
//! /// Runs for every Slack message event, concurrently with other handlers.
//! #[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
//! async fn roast(Payload(msg): Payload<SlackMessage>, bot: State<Bot>) -> anyhow::Result<()> {
//!     tracing::info!(channel = %msg.channel, ts = %msg.ts, "{} read: {}", bot.name, msg.text);
//!     Ok(())
//! }
//!
//! /// Lifecycle events use the same macro; plain `fn`s run on the blocking pool.
//! #[on_trigger(name = "composio.connected_account.expired")]
//! fn expired(meta: Meta) {
//!     eprintln!("re-authenticate account {}", meta.connected_account().id);
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     // Sources from the environment: COMPOSIO_API_KEY (realtime),
//!     // COMPOSIO_WEBHOOK_SECRET (webhooks), LISTENER_WS_URL (a plain websocket).
//!     let listener = Listener::from_env()?
//!         .state(Bot { name: "roastbot".into() })
//!         .on_error(|failure| eprintln!("{failure}"))
//!         .build()?;
//!     let stopped = listener.wait_forever().await?; // until Ctrl-C / SIGTERM
//!     println!("{:?}: {} events", stopped.reason, stopped.stats.events);
//!     Ok(())
//! }
//! ```
//!
//! The data flows one way: a [`Source`](source::Source) reads and decodes ([`decode`])
//! events into [`TriggerEvent`]s, the [`Dispatcher`](dispatch::Dispatcher) drops duplicates
//! and starts every handler whose [`Filter`] matches under a global in-flight bound (an async
//! run starts on the dispatching task and continues as its own task once it has to wait; see
//! [`ListenerBuilder::eager_start`]), and each handler receives its parameters through
//! [`FromEvent`] extractors. Each handler may have its own [`policy`] (timeout, retries,
//! concurrency, per-key ordering), and [`layer`]s run around every handler run. A handler
//! that acts on its event (posts a Slack reply) takes `tools::Tools` (feature
//! `composio-api`): Composio tool executions as the event's user and connected account,
//! through the pre- and post-processors registered on the listener
//! (`ListenerBuilder::tools`, `pre_process`, `post_process`).
//!
//! Along the way the listener counts events, duplicates, decode failures, handler runs by
//! outcome, their durations, reconnects and source health through the `metrics` facade
//! ([`telemetry`] lists every metric); the `admin` feature adds an HTTP endpoint for
//! liveness and readiness probes and, with `prometheus`, a `/metrics` scrape.
//!
//! # Features
//!
//! Each transport is a Cargo feature, so an application compiles only what it listens on.
//!
//! | feature | what it enables | default |
//! | --- | --- | --- |
//! | `realtime` | Composio's realtime channel: `source::composio::ComposioSource`, the Pusher client `source::pusher`, and the core of the Composio HTTP client that fetches its credentials and channel tokens; implies `websocket` | yes: how Composio delivers without a public URL |
//! | `webhook-server` | `webhook::WebhookSource`, the HTTP server for signed deliveries (hyper, axum); implies `webhook` | yes: Composio's other delivery path, read by `Listener::from_env` |
//! | `webhook` | `webhook::verify` and `webhook::sign`, for an application with its own web framework (no server) | with `webhook-server` |
//! | `websocket` | `source::websocket::WebSocketSource`: one event per frame from any websocket | with `realtime` |
//! | `composio-api` | `composio_api`: triggers, trigger types, webhook subscriptions and endpoints, tool execution; `tools`: the `Tools` extractor (tool executions as the event's user and connected account, with pre- and post-processors registered on the listener) | no: only bots that act need it |
//! | `http-client` | `http`: the HTTP client plumbing (client settings, answers read under a size bound) the two above share | with either |
//! | `admin` | the admin endpoint `admin` (`ListenerBuilder::admin`, `LISTENER_ADMIN_ADDR`): `/healthz`, `/readyz` and, with `prometheus`, `/metrics`; served like the webhook server (hyper, axum) | yes: beside `webhook-server` it adds no package, and nothing listens until an address is set |
//! | `prometheus` | `telemetry::install_prometheus`: the listener's metrics in Prometheus' text format (`metrics-exporter-prometheus`), which the admin endpoint serves | no: exporters are the application's choice |
//! | `jetstream` | `jetstream`: several replicas on NATS JetStream (the official `async-nats` client): relays publish what their sources receive to a stream, workers share its events, with retries across processes, dead letters and replay; `ListenerBuilder::jetstream`, `LISTENER_NATS_URL`. Needs Rust 1.89 | no: a single process needs no broker |
//! | `fuzzing` | internal and unstable: a hidden module the fuzz targets (`fuzz/` in the repository) drive the decode paths and the chunk reassembler through; not for applications | no |
//!
//! With `default-features = false` the dispatcher, the event model, decoding, the
//! `#[on_trigger]` macro, the [`Source`](source::Source) trait and the [`telemetry`] metrics
//! remain: enough for a source of your own. `Listener::from_env` refuses, with a message naming the feature, a
//! variable whose source was not compiled in.

// Lets the macro's `::listener_core::…` paths resolve inside this crate's own tests.
extern crate self as listener_core;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;
#[cfg(feature = "admin")]
pub mod admin;
mod backoff;
#[cfg(any(feature = "realtime", feature = "composio-api"))]
pub mod composio_api;
pub mod decode;
pub mod dispatch;
mod env;
mod error;
mod event;
mod extract;
mod filter;
mod handler;
#[cfg(feature = "http-client")]
pub mod http;
#[cfg(feature = "jetstream")]
pub mod jetstream;
pub mod layer;
pub mod lifecycle;
mod listener;
pub mod policy;
mod poll;
pub mod prelude;
pub mod preview;
mod registry;
mod report;
#[cfg(any(feature = "webhook-server", feature = "admin"))]
mod serve;
pub mod source;
pub mod telemetry;
pub mod testing;
#[cfg(any(feature = "websocket", feature = "http-client"))]
mod tls;
#[cfg(feature = "composio-api")]
pub mod tools;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use backoff::Backoff;
pub use error::{ConfigError, Error, Result};
pub use event::{
    toolkit_of, ConnectedAccount, Envelope, StreamDelivery, TriggerEvent, TriggerMetadata,
    V3_TRIGGER_MESSAGE,
};
pub use extract::{EventContext, ExtractError, FromEvent, Meta, Payload, State, StateMap};
pub use filter::Filter;
pub use handler::{FailureKind, Handler, IntoOutcome};
pub use listener::{
    Listener, ListenerBuilder, ListenerHandle, StopReason, Stopped, DEFAULT_DRAIN_TIMEOUT,
};
/// Marks a function as a trigger handler; see the crate docs.
pub use listener_macros::on_trigger;
pub use registry::registered_handlers;
pub use report::{DispatchReport, Failure, HandlerFailure, HandlerOutcome, SourceFailure};

/// Support for the code `#[on_trigger]` generates. Not a public API: it changes without
/// notice, which is why `listener-core` pins the macro crate to its exact version.
#[doc(hidden)]
pub mod __private {
    pub use inventory;

    pub use crate::filter::FilterSpec;
    pub use crate::handler::{AsyncHandlerFn, BlockingHandlerFn, HandlerFn};
    pub use crate::policy::PolicySpec;
    pub use crate::registry::HandlerDescriptor;

    use crate::extract::FromEvent;
    use crate::handler::IntoOutcome;

    /// Compile-time check that a parameter type is an extractor.
    pub const fn assert_extractor<T: FromEvent>() {}

    /// Compile-time check that a return type is a handler outcome.
    pub const fn assert_output<T: IntoOutcome>() {}

    /// Erases an `async fn` handler.
    pub fn async_handler<F: AsyncHandlerFn<Args>, Args>(f: F) -> HandlerFn {
        f.into_handler_fn()
    }

    /// Erases a plain `fn` handler.
    pub fn blocking_handler<F: BlockingHandlerFn<Args>, Args>(f: F) -> HandlerFn {
        f.into_handler_fn()
    }
}
