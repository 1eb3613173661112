//! Why a source's transport failed.

/// A source's transport failed: the connection, its authorization, or the protocol on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A websocket failure (connect, handshake, read or write); the cause is the websocket
    /// library's error.
    #[error("websocket error: {0}")]
    WebSocket(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// The connection ended; the text says how.
    #[error("connection closed: {0}")]
    Closed(String),

    /// A channel auth token or the realtime credentials could not be obtained (refused, or
    /// an unusable answer).
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
    Failed {
        /// The source's name.
        source_name: String,
        /// Why it stopped.
        message: String,
    },
}

impl SourceError {
    /// A websocket library failure.
    #[cfg(feature = "websocket")]
    pub(crate) fn websocket(e: tokio_tungstenite::tungstenite::Error) -> Self {
        SourceError::WebSocket(Box::new(e))
    }
}
