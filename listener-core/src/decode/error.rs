//! Why bytes are not an event.

use crate::event::Envelope;

/// Why bytes could not be decoded into an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not valid JSON.
    #[error("event is not valid JSON: {source}")]
    InvalidJson {
        /// The parser's error (line and column included).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The event holds a number beyond what a 64-bit float represents (past ±1.8e308); see
    /// [`decode`](crate::decode) for why it is refused rather than rounded.
    #[error("event holds a number beyond the range of a 64-bit float (line {line}, column {column}); refused rather than rounded to infinity")]
    NumberOutOfRange {
        /// Where the number ends (1-based).
        line: usize,
        /// Where the number ends (1-based).
        column: usize,
    },

    /// The body parsed, but is not a JSON object.
    #[error("event body must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type that was found instead (`array`, `string`, ...).
        found: &'static str,
    },

    /// The body is a JSON object of no known envelope shape.
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
        envelope: Envelope,
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
        actual: Envelope,
    },
}

impl DecodeError {
    /// Invalid JSON, with the parser's error as the cause.
    pub(crate) fn invalid_json(source: serde_json::Error) -> Self {
        DecodeError::InvalidJson {
            source: Box::new(source),
        }
    }
}
