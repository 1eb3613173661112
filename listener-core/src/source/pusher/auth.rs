//! Private-channel authorization: the token ([`sign_channel`](super::protocol::sign_channel))
//! computed locally from the app secret, fetched from an auth endpoint (a form-encoded POST
//! of `channel_name` and `socket_id` answered by `{"auth": "key:signature"}`), or obtained
//! by an [`ChannelAuthorizer`] of the application's (Composio's source uses one over its
//! API client).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use super::protocol::sign_channel;
use crate::composio_api::MAX_REALTIME_ANSWER_BYTES;
use crate::error::{ConfigError, Error, Result};
use crate::http::{describe, read_limited, ClientOptions, ResponseBodyError};
use crate::preview::{preview, PREVIEW_CHARS};
use crate::source::SourceError;

/// Obtains private-channel auth tokens in the application's own way (Composio's source
/// asks Composio's API through its client).
#[async_trait]
pub trait ChannelAuthorizer: Send + Sync + 'static {
    /// The token (`key:signature`) for `channel` on the connection `socket_id`.
    async fn token(
        &self,
        socket_id: &str,
        channel: &str,
    ) -> std::result::Result<String, AuthRefusal>;
}

/// Why a token could not be had, and whether retrying can help.
#[derive(Debug)]
pub struct AuthRefusal {
    /// What happened.
    pub error: Error,
    /// Whether asking again cannot help (a refused key, say): the source then stops.
    pub fatal: bool,
}

/// How the client obtains auth tokens for private channels.
#[derive(Clone)]
pub enum ChannelAuth {
    /// A public channel: no token.
    None,
    /// Sign locally with the app's secret (for servers you run, tests, the hub).
    Secret {
        /// The app secret.
        secret: String,
    },
    /// POST `channel_name` and `socket_id` (form-encoded) to an auth endpoint that answers
    /// `{"auth": "key:signature"}`; `channel_data` in the answer is ignored.
    Endpoint {
        /// The endpoint URL.
        url: String,
        /// Headers to send (an API key, say). Their values are never logged.
        headers: Vec<(String, String)>,
    },
    /// Ask an authorizer of the application's.
    Authorizer(Arc<dyn ChannelAuthorizer>),
}

impl fmt::Debug for ChannelAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelAuth::None => f.write_str("None"),
            ChannelAuth::Secret { .. } => f.write_str("Secret(<redacted>)"),
            ChannelAuth::Endpoint { url, headers } => f
                .debug_struct("Endpoint")
                .field("url", url)
                .field(
                    "headers",
                    &headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                )
                .finish(),
            ChannelAuth::Authorizer(_) => f.write_str("Authorizer(..)"),
        }
    }
}

pub(crate) struct Authorizer {
    auth: ChannelAuth,
    key: String,
    http: reqwest::Client,
    headers: HeaderMap,
}

impl Authorizer {
    pub(crate) fn new(auth: ChannelAuth, key: String) -> Result<Self> {
        // 5 s to connect, 15 s a request.
        // No redirects: the configured headers (an API key, say) must not go to another host.
        let http = ClientOptions {
            timeout: Duration::from_secs(15),
            follow_redirects: false,
            ..ClientOptions::default()
        }
        .build()?;
        let mut headers = HeaderMap::new();
        if let ChannelAuth::Endpoint { headers: given, .. } = &auth {
            for (name, value) in given {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    Error::Config(ConfigError {
                        key: "auth header".into(),
                        message: format!("`{name}` is not a valid header name"),
                    })
                })?;
                let mut value = HeaderValue::from_str(value).map_err(|_| {
                    Error::Config(ConfigError {
                        key: name.to_string(),
                        message: "the header value has characters a header cannot carry".into(),
                    })
                })?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        Ok(Authorizer {
            auth,
            key,
            http,
            headers,
        })
    }

    pub(crate) fn needs_token(channel: &str) -> bool {
        channel.starts_with("private-") || channel.starts_with("presence-")
    }

    /// The token for `channel` on this connection's `socket_id`.
    pub(crate) async fn token(
        &self,
        socket_id: &str,
        channel: &str,
    ) -> std::result::Result<Option<String>, AuthRefusal> {
        if !Self::needs_token(channel) {
            return Ok(None);
        }
        match &self.auth {
            ChannelAuth::None => Err(AuthRefusal {
                error: Error::Config(ConfigError {
                    key: "channel auth".into(),
                    message: format!(
                        "`{channel}` is private but no auth endpoint or secret is configured"
                    ),
                }),
                fatal: true,
            }),
            ChannelAuth::Secret { secret } => {
                Ok(Some(sign_channel(&self.key, secret, socket_id, channel)))
            }
            ChannelAuth::Endpoint { url, .. } => {
                self.fetch(url, socket_id, channel).await.map(Some)
            }
            ChannelAuth::Authorizer(authorizer) => {
                authorizer.token(socket_id, channel).await.map(Some)
            }
        }
    }

    async fn fetch(
        &self,
        url: &str,
        socket_id: &str,
        channel: &str,
    ) -> std::result::Result<String, AuthRefusal> {
        let transient = |error: Error| AuthRefusal {
            error,
            fatal: false,
        };
        let form =
            serde_urlencoded::to_string([("channel_name", channel), ("socket_id", socket_id)])
                .map_err(|e| AuthRefusal {
                    error: ConfigError::new("channel auth form", e.to_string()).into(),
                    fatal: true,
                })?;
        let response = self
            .http
            .post(url)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| transient(auth_error(format!("auth request failed: {}", describe(&e)))))?;
        let status = response.status();
        let body = match read_limited(response, MAX_REALTIME_ANSWER_BYTES).await {
            Ok(body) => body,
            // Too large: unusable, whatever the status said; a refusal stays a refusal.
            Err(e @ ResponseBodyError::TooLarge { .. }) => {
                return Err(AuthRefusal {
                    error: auth_error(format!("auth endpoint answered {status}: {e}")),
                    fatal: matches!(status.as_u16(), 401 | 403),
                })
            }
            Err(ResponseBodyError::Read { message, .. }) => {
                return Err(transient(auth_error(format!(
                    "auth response unreadable: {message}"
                ))))
            }
        };
        if !status.is_success() {
            let error = auth_error(format!(
                "auth endpoint answered {status}: {}",
                preview(&body, PREVIEW_CHARS)
            ));
            // A refused key or channel will be refused again; a server error may pass.
            let fatal = matches!(status.as_u16(), 401 | 403);
            return Err(AuthRefusal { error, fatal });
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            auth: Option<serde_json::Value>,
        }
        match serde_json::from_slice::<Answer>(&body) {
            Ok(Answer {
                auth: Some(serde_json::Value::String(token)),
            }) if !token.is_empty() => Ok(token),
            _ => Err(transient(auth_error(format!(
                "auth endpoint answered without an `auth` string: {}",
                preview(&body, PREVIEW_CHARS)
            )))),
        }
    }
}

fn auth_error(message: String) -> Error {
    Error::Source(SourceError::Auth { message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let s = format!(
            "{:?}",
            ChannelAuth::Secret {
                secret: "hunter2".into()
            }
        );
        assert!(!s.contains("hunter2"));
        let e = format!(
            "{:?}",
            ChannelAuth::Endpoint {
                url: "http://x/auth".into(),
                headers: vec![("x-api-key".into(), "sk_live_123".into())]
            }
        );
        assert!(e.contains("x-api-key") && !e.contains("sk_live_123"));
    }
}
