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
//!     let listener = Listener::from_env()? // sources from LISTENER_WS_URL, …
//!         .state(Bot { name: "roastbot".into() })
//!         .on_error(|failure| eprintln!("{failure}"))
//!         .build()?;
//!     let stopped = listener.wait_forever().await?; // until Ctrl-C / SIGTERM
//!     println!("{:?}: {} events", stopped.reason, stopped.stats.events);
//!     Ok(())
//! }
//! ```
//!
//! The data flows one way: a [`Source`] reads and decodes ([`decode`]) events into
//! [`TriggerEvent`]s, the [`Dispatcher`] drops duplicates and starts every handler whose
//! [`Filter`] matches under a global in-flight bound (an async run starts on the dispatching
//! task and continues as its own task once it has to wait; see
//! [`ListenerBuilder::eager_start`]), and each handler receives its parameters through
//! [`FromEvent`] extractors.

// Lets the macro's `::listener_core::…` paths resolve inside this crate's own tests.
extern crate self as listener_core;

mod backoff;
pub mod composio_api;
pub mod decode;
mod dispatch;
mod error;
mod event;
mod extract;
mod filter;
mod handler;
mod http;
pub mod hub;
mod listener;
pub mod prelude;
pub mod preview;
mod registry;
mod report;
pub mod source;
pub mod testing;
mod tls;
pub mod webhook;

pub use std::sync::Arc;

/// Re-exported for implementing [`Source`] without another dependency.
pub use async_trait::async_trait;

pub use backoff::Backoff;
pub use dispatch::{
    DedupeConfig, DispatchConfig, DispatchStats, Dispatched, Dispatcher, DEFAULT_MAX_IN_FLIGHT,
};
pub use error::{ConfigError, Error, Result};
pub use event::{
    toolkit_of, ConnectedAccount, Envelope, TriggerEvent, TriggerMetadata, V3_TRIGGER_MESSAGE,
};
pub use extract::{EventContext, ExtractError, FromEvent, Meta, Payload, State, StateMap};
pub use filter::{Filter, FilterSpec};
pub use handler::{
    AsyncHandlerFn, BlockingHandlerFn, FailureKind, Handler, HandlerFn, IntoOutcome,
};
pub use listener::{
    Listener, ListenerBuilder, ListenerHandle, StopReason, Stopped, DEFAULT_DRAIN_TIMEOUT,
};
/// Marks a function as a trigger handler; see the crate docs.
pub use listener_macros::on_trigger;
pub use registry::{registered_handlers, HandlerDescriptor, Registry};
pub use report::{
    DispatchReport, ErrorHook, Failure, HandlerFailure, HandlerOutcome, SourceFailure,
};
pub use source::composio::ComposioSource;
pub use source::pusher::PusherSource;
pub use source::websocket::WebSocketSource;
pub use source::{Health, Source, SourceContext, SourceHealth};
pub use webhook::{VerifyError, WebhookSource};

/// Support for the code `#[on_trigger]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;

    use crate::{AsyncHandlerFn, BlockingHandlerFn, FromEvent, HandlerFn, IntoOutcome};

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
