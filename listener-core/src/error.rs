//! The crate's top-level error, and the configuration error every layer shares.
//!
//! Each layer has its own error: [`DecodeError`](crate::decode::DecodeError) (bytes to an
//! event), [`ExtractError`](crate::extract::ExtractError) (an event to a handler's parameters),
//! [`SourceError`](crate::source::SourceError) (transports), [`ConfigError`] (settings).
//! [`Error`] holds any of them, plus what the listener itself reports about its lifecycle.

use std::time::Duration;

/// Everything that can go wrong inside `listener-core`.
///
/// Handlers return their own errors (anything `Display`, `anyhow` included); those are
/// reported as [`HandlerFailure`](crate::report::HandlerFailure)s, not as this type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that are not an event.
    #[error(transparent)]
    Decode(#[from] crate::decode::error::DecodeError),

    /// An extractor refused (at build time, a handler's `State<T>` that was not given).
    #[error(transparent)]
    Extract(#[from] crate::extract::ExtractError),

    /// A source's transport failed (websocket, authorization, the Pusher protocol).
    #[error(transparent)]
    Source(#[from] crate::source::error::SourceError),

    /// A setting (builder argument or environment variable) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Publishing to or consuming from NATS JetStream failed (feature `jetstream`).
    #[cfg(feature = "jetstream")]
    #[error(transparent)]
    JetStream(#[from] crate::jetstream::JetStreamError),

    /// The dispatcher is shutting down and accepts no new events.
    #[error("the listener is shutting down; no new events are accepted")]
    ShuttingDown,

    /// Every source of the listener ended with an error.
    #[error("all sources failed: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllSourcesFailed(Vec<Error>),

    /// Handlers were still running when the drain deadline passed.
    #[error("{pending} handler run(s) still in flight after the drain deadline of {deadline:?}")]
    DrainTimeout {
        /// Handler runs (and dispatches) still in flight.
        pending: usize,
        /// The deadline that passed.
        deadline: Duration,
    },

    /// A task of the listener ended abnormally (panicked or was cancelled).
    #[error("listener task ended abnormally: {0}")]
    TaskFailed(String),

    /// An I/O failure (binding a socket, installing a signal handler, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for `Result<T, listener_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A setting (builder argument or environment variable) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration `{key}`: {message}")]
pub struct ConfigError {
    /// The setting or environment variable.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A configuration error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}
