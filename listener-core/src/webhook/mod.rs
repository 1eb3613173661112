//! Signed webhook deliveries (Composio's, or any Standard Webhooks sender): a standalone
//! [`verify`] for people who run their own web framework, a [`sign`]er, and a
//! [`WebhookSource`] that receives deliveries over HTTP and feeds the listener.

#[cfg(feature = "webhook-server")]
mod body;
#[cfg(feature = "webhook-server")]
mod receive;
#[cfg(feature = "webhook-server")]
mod rejections;
#[cfg(feature = "webhook-server")]
mod replay;
mod secret;
mod sign;
#[cfg(feature = "webhook-server")]
mod source;
mod verify;

#[cfg(feature = "webhook-server")]
pub use receive::AckPolicy;
pub use secret::{SecretScheme, WebhookSecret};
pub use sign::{sign, signed_headers};
#[cfg(feature = "webhook-server")]
pub use source::{
    WebhookSource, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_REJECTION_SUMMARY_INTERVAL, DEFAULT_WEBHOOK_ADDR, DEFAULT_WEBHOOK_PATH,
};
pub use verify::{
    verify, verify_signature, HeaderSource, VerifiedEvent, VerifyError, DEFAULT_TOLERANCE,
};
