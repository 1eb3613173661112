//! What can go wrong between the listener and JetStream.

/// A JetStream failure: connecting, setting up the stream, publishing, consuming.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JetStreamError {
    /// Connecting (or logging in) to the NATS servers failed.
    #[error("cannot connect to NATS at {servers}: {message}")]
    Connect {
        /// The servers, as configured (no credentials).
        servers: String,
        /// What the client said.
        message: String,
    },
    /// Creating or updating the stream, its dead letters, a consumer or the completion
    /// bucket failed (a stream of the same name with incompatible settings, say).
    #[error("cannot set up `{what}`: {message}")]
    Setup {
        /// The stream, consumer or bucket.
        what: String,
        /// What the server said.
        message: String,
    },
    /// The stream is unreachable right now (not connected, or the servers answer nothing);
    /// try again later.
    #[error("the JetStream stream is unreachable: {0}")]
    Unavailable(String),
    /// A publish was refused or not acknowledged in time.
    #[error("publishing to `{subject}` failed: {message}")]
    Publish {
        /// The subject.
        subject: String,
        /// What went wrong.
        message: String,
    },
    /// A relay's buffer was full while the stream was unreachable: the oldest event was
    /// dropped.
    #[error("relay buffer full ({bound} events) while the stream is unreachable: event `{event_id}` dropped")]
    BufferFull {
        /// The dropped event's message id.
        event_id: String,
        /// The buffer's bound.
        bound: usize,
    },
    /// Reading the stream or a consumer failed.
    #[error("reading the stream failed: {0}")]
    Consume(String),
}
