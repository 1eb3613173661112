//! Errors of the management API client, carrying Composio's error object.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preview::{preview, truncate_chars, PREVIEW_CHARS};

/// Composio's error object, `{"error": {"message", "code", "slug", "status", "request_id",
/// "suggested_fix", "errors"}}`.
///
/// Filled leniently: a field of the wrong type is left out, an answer that is not such an
/// object keeps a bounded preview of the body as `message`, and `status` / `request_id`
/// fall back to the HTTP status and the `x-request-id` header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// What went wrong, in words.
    pub message: String,
    /// Composio's numeric error code, if given.
    pub code: Option<i64>,
    /// Composio's error slug (`TriggerType_NotFound`, …), if given.
    pub slug: Option<String>,
    /// The status the API reported (the HTTP status if the body did not say).
    pub status: Option<u16>,
    /// The request id to quote to Composio's support.
    pub request_id: Option<String>,
    /// What to do about it, if the API said.
    pub suggested_fix: Option<String>,
    /// Per-field details, as sent.
    pub errors: Vec<Value>,
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str("(no message)")?;
        } else {
            f.write_str(&self.message)?;
        }
        if let Some(slug) = &self.slug {
            write!(f, " [{slug}]")?;
        }
        if let Some(code) = self.code {
            write!(f, " (code {code})")?;
        }
        if let Some(fix) = &self.suggested_fix {
            write!(f, "; suggested fix: {fix}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

fn string_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl ErrorObject {
    /// Reads an error answer: Composio's `{"error": {…}}`, `{"error": "text"}`, a top-level
    /// `{message | detail}`, or anything else (kept as a bounded preview).
    pub fn from_body(body: &[u8], http_status: u16, request_id_header: Option<&str>) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let mut out = ErrorObject::default();
        match parsed.as_ref() {
            Some(Value::Object(top)) => {
                let inner = match top.get("error") {
                    Some(Value::Object(inner)) => Some(inner),
                    Some(Value::String(s)) => {
                        out.message = s.clone();
                        None
                    }
                    _ => None,
                };
                let fields = inner.unwrap_or(top);
                if out.message.is_empty() {
                    out.message = string_of(fields.get("message"))
                        .or_else(|| string_of(fields.get("detail")))
                        .or_else(|| string_of(top.get("message")))
                        .unwrap_or_default();
                }
                out.code = int_of(fields.get("code"));
                out.slug = string_of(fields.get("slug"));
                out.status = int_of(fields.get("status")).and_then(|s| u16::try_from(s).ok());
                out.request_id = string_of(fields.get("request_id"))
                    .or_else(|| string_of(fields.get("requestId")));
                out.suggested_fix = string_of(fields.get("suggested_fix"))
                    .or_else(|| string_of(fields.get("suggestedFix")));
                if let Some(Value::Array(errors)) = fields.get("errors") {
                    out.errors = errors.clone();
                }
                if out.message.is_empty() {
                    out.message = preview(body, PREVIEW_CHARS);
                }
            }
            _ => {
                out.message = if body.is_empty() {
                    String::new()
                } else {
                    preview(body, PREVIEW_CHARS)
                };
            }
        }
        out.status = out.status.or(Some(http_status));
        if out.request_id.is_none() {
            out.request_id = request_id_header
                .filter(|s| !s.is_empty())
                .map(|s| truncate_chars(s, 128));
        }
        out
    }
}

/// What a management API call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The API answered with an error status (after any retries of 429 / 5xx).
    #[error("{method} {path} answered {status}: {error}")]
    Api {
        /// The HTTP method.
        method: String,
        /// The request path (no host, no query).
        path: String,
        /// The HTTP status.
        status: u16,
        /// The API's error object.
        error: Box<ErrorObject>,
        /// Attempts made (1 when not retried).
        attempts: u32,
    },

    /// The request did not complete: connection refused or reset, timeout, TLS failure.
    #[error("{method} {path} failed: {message}")]
    Transport {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
        /// What happened (without the URL).
        message: String,
        /// Whether the time limit passed.
        timeout: bool,
        /// Attempts made.
        attempts: u32,
    },

    /// A success status with an answer of an unexpected shape.
    #[error("{method} {path} answered {status} with an unexpected body ({message}): {preview}")]
    Decode {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// What the parser said.
        message: String,
        /// A bounded preview of the body.
        preview: String,
    },

    /// The answer's body is longer than the client's limit
    /// ([`ComposioClientBuilder::max_response_bytes`](super::ComposioClientBuilder::max_response_bytes));
    /// it was abandoned while streaming in, and the request is not retried.
    #[error("{method} {path} answered {status} with a body over the limit: response body exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The limit, in bytes.
        limit: usize,
    },

    /// A tool ran and reported failure (`"successful": false`).
    #[error("tool {tool} failed: {message} (log id {log_id})")]
    ToolFailed {
        /// The tool slug.
        tool: String,
        /// The tool's `error`.
        message: String,
        /// Composio's log id of the execution.
        log_id: String,
        /// The tool's `data`, as returned.
        data: Value,
    },

    /// A client setting (API key, base URL, argument) is unusable.
    #[error("invalid configuration `{key}`: {message}")]
    Config {
        /// The setting or environment variable.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ApiError {
    /// The API's error object, for [`ApiError::Api`].
    pub fn error_object(&self) -> Option<&ErrorObject> {
        match self {
            ApiError::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Api { status, .. }
            | ApiError::Decode { status, .. }
            | ApiError::ResponseTooLarge { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the error is an answer of `status` (e.g. 404 for "no such subscription").
    pub fn is_status(&self, status: u16) -> bool {
        self.status() == Some(status)
    }

    pub(crate) fn config(key: &str, message: impl Into<String>) -> Self {
        ApiError::Config {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Shorthand for results of the management API client.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composio_error_objects_are_read_field_by_field() {
        let body = br#"{"error": {"message": "Trigger type not found", "code": 404, "slug": "TriggerType_NotFound",
            "status": 404, "request_id": "req_1", "suggested_fix": "Check the slug", "errors": ["slug"]}}"#;
        let e = ErrorObject::from_body(body, 404, Some("hdr"));
        assert_eq!(e.message, "Trigger type not found");
        assert_eq!(e.code, Some(404));
        assert_eq!(e.slug.as_deref(), Some("TriggerType_NotFound"));
        assert_eq!(e.status, Some(404));
        assert_eq!(e.request_id.as_deref(), Some("req_1"));
        assert_eq!(e.suggested_fix.as_deref(), Some("Check the slug"));
        assert_eq!(e.errors, vec![Value::from("slug")]);
        let text = e.to_string();
        assert!(
            text.contains("TriggerType_NotFound")
                && text.contains("Check the slug")
                && text.contains("req_1"),
            "{text}"
        );
    }

    #[test]
    fn other_error_bodies_keep_a_preview_and_the_http_facts() {
        let e = ErrorObject::from_body(b"<html>bad gateway</html>", 502, Some("req_h"));
        assert_eq!(e.message, "<html>bad gateway</html>");
        assert_eq!(e.status, Some(502));
        assert_eq!(e.request_id.as_deref(), Some("req_h"));
        let e = ErrorObject::from_body(br#"{"error": "nope", "code": "12"}"#, 400, None);
        assert_eq!(e.message, "nope");
        assert_eq!(e.code, Some(12));
        let e = ErrorObject::from_body(br#"{"detail": "Not authenticated"}"#, 401, None);
        assert_eq!(e.message, "Not authenticated");
        // Wrong types are dropped, never a failure.
        let e = ErrorObject::from_body(
            br#"{"error": {"message": 5, "status": "x", "errors": 3}}"#,
            400,
            None,
        );
        assert_eq!(e.message, "5");
        assert_eq!(e.status, Some(400));
        assert!(e.errors.is_empty());
    }
}
