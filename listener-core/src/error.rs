//! The crate's error type.

use std::time::Duration;

/// Everything that can go wrong inside `listener-core`.
///
/// Handlers return their own errors (anything `Display`, `anyhow` included); those are
/// reported as [`HandlerFailure`](crate::HandlerFailure)s, not as this type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes of an event are not valid JSON.
    #[error("event is not valid JSON: {source}")]
    InvalidJson {
        /// The parser's error (line and column included).
        #[source]
        source: serde_json::Error,
    },

    /// An event holds a number beyond what a 64-bit float represents (past ±1.8e308); see
    /// [`decode`](crate::decode) for why it is refused rather than rounded.
    #[error("event holds a number beyond the range of a 64-bit float (line {line}, column {column}); refused rather than rounded to infinity")]
    NumberOutOfRange {
        /// Where the number ends (1-based).
        line: usize,
        /// Where the number ends (1-based).
        column: usize,
    },

    /// An event body parsed, but is not a JSON object.
    #[error("event body must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type that was found instead (`array`, `string`, ...).
        found: &'static str,
    },

    /// An event body is a JSON object of no known envelope shape.
    #[error("unknown event envelope: {reason} (top-level keys: {keys})")]
    UnknownEnvelope {
        /// Why no decoder accepted it.
        reason: &'static str,
        /// A bounded list of the object's top-level keys.
        keys: String,
    },

    /// A field that decides how an envelope is read has the wrong type.
    #[error("{envelope} envelope: field `{field}` must be {expected}")]
    InvalidField {
        /// The envelope being decoded.
        envelope: crate::Envelope,
        /// The dotted path of the offending field.
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
    },

    /// The envelope the body has is not the one its transport announced.
    #[error("envelope mismatch: announced {announced}, body is {actual}")]
    EnvelopeMismatch {
        /// What the transport (for example a version header) announced.
        announced: String,
        /// What the body turned out to be.
        actual: crate::Envelope,
    },

    /// An extractor refused (at build time, a handler's `State<T>` that was not given).
    #[error(transparent)]
    Extract(#[from] crate::extract::ExtractError),

    /// A configuration value (builder argument or environment variable) is invalid.
    #[error("invalid configuration `{key}`: {message}")]
    Config {
        /// The setting or environment variable.
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// The dispatcher is shutting down and accepts no new events.
    #[error("the listener is shutting down; no new events are accepted")]
    ShuttingDown,

    /// A websocket failure (connect, handshake, read or write).
    #[error("websocket error: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),

    /// A channel auth token could not be obtained (refused, or an unusable answer).
    #[error("channel authorization failed: {message}")]
    Auth {
        /// What happened (the endpoint's status and a bounded preview of its answer).
        message: String,
    },

    /// A Pusher-protocol server sent `pusher:error` or closed with a Pusher code.
    #[error("pusher error {code}: {message}")]
    Pusher {
        /// The Pusher error code (4000-4099: fatal, 4100-4199: back off, 4200-4299: retry now).
        code: i64,
        /// The server's message.
        message: String,
    },

    /// A chunk of a `chunked-…` event was malformed or broke a bound; its id was dropped.
    #[error("chunked event: {0}")]
    Chunk(String),

    /// A source gave up for good; the message says why.
    #[error("source `{source_name}` failed: {message}")]
    SourceFailed {
        /// The source's name.
        source_name: String,
        /// Why it stopped.
        message: String,
    },

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

    /// A webhook delivery failed verification or is not a valid event.
    #[error("webhook: {0}")]
    Verify(#[from] crate::webhook::VerifyError),

    /// An I/O failure (binding a socket, installing a signal handler, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for `Result<T, listener_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
