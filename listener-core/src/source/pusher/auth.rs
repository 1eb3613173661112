//! Private-channel authorization: `auth = key + ":" + hex(HMAC-SHA256(secret,
//! socket_id + ":" + channel))`, computed locally from the app secret or fetched from an
//! auth endpoint (PROTOCOL.md §1.3, §1.8).

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::error::ConfigError;
pub(crate) use crate::http::without_url;
use crate::http::{read_limited, ResponseBodyError};
use crate::preview::{preview, PREVIEW_CHARS};
use crate::source::SourceError;
use crate::{Error, Result};

/// The largest answer read from the channel-auth endpoint (and Composio's credentials
/// endpoint): 64 KiB. Their answers are a few hundred bytes; a longer one is refused while
/// it streams in, as an error naming the limit.
pub const MAX_AUTH_RESPONSE_BYTES: usize = 64 << 10;

/// Computes a private-channel auth token: what a Pusher server checks.
///
/// ```
/// let token = listener_core::source::pusher::sign_channel("key", "secret", "123.456", "private-x");
/// assert!(token.starts_with("key:"));
/// assert_eq!(token.len(), "key:".len() + 64);
/// ```
pub fn sign_channel(key: &str, secret: &str, socket_id: &str, channel: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(socket_id.as_bytes());
    mac.update(b":");
    mac.update(channel.as_bytes());
    format!("{key}:{}", hex(&mac.finalize().into_bytes()))
}

/// Checks a private-channel auth token in constant time (what a Pusher server does).
pub fn verify_channel(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    token: &str,
) -> bool {
    let Some((token_key, signature)) = token.split_once(':') else {
        return false;
    };
    let Some(signature) = unhex(signature) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(socket_id.as_bytes());
    mac.update(b":");
    mac.update(channel.as_bytes());
    token_key == key && mac.verify_slice(&signature).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
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
        }
    }
}

/// Why a token could not be had, and whether retrying can help.
#[derive(Debug)]
pub(crate) struct AuthFailure {
    pub error: Error,
    pub fatal: bool,
}

pub(crate) struct Authorizer {
    auth: ChannelAuth,
    key: String,
    http: reqwest::Client,
    headers: HeaderMap,
}

impl Authorizer {
    pub(crate) fn new(auth: ChannelAuth, key: String, http: reqwest::Client) -> Result<Self> {
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
    ) -> std::result::Result<Option<String>, AuthFailure> {
        if !Self::needs_token(channel) {
            return Ok(None);
        }
        match &self.auth {
            ChannelAuth::None => Err(AuthFailure {
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
        }
    }

    async fn fetch(
        &self,
        url: &str,
        socket_id: &str,
        channel: &str,
    ) -> std::result::Result<String, AuthFailure> {
        let transient = |error: Error| AuthFailure {
            error,
            fatal: false,
        };
        let response = self
            .http
            .post(url)
            .headers(self.headers.clone())
            .form(&[("channel_name", channel), ("socket_id", socket_id)])
            .send()
            .await
            .map_err(|e| {
                transient(auth_error(format!(
                    "auth request failed: {}",
                    without_url(&e)
                )))
            })?;
        let status = response.status();
        let body = match read_limited(response, MAX_AUTH_RESPONSE_BYTES).await {
            Ok(body) => body,
            // Too large: unusable, whatever the status said; a refusal stays a refusal.
            Err(e @ ResponseBodyError::TooLarge { .. }) => {
                return Err(AuthFailure {
                    error: auth_error(format!("auth endpoint answered {status}: {e}")),
                    fatal: matches!(status.as_u16(), 401 | 403),
                })
            }
            Err(ResponseBodyError::Read(e)) => {
                return Err(transient(auth_error(format!(
                    "auth response unreadable: {}",
                    without_url(&e)
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
            return Err(AuthFailure { error, fatal });
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

/// The HTTP client used for auth and credentials: 5 s to connect, 15 s per request.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    crate::tls::ensure_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("listener-core/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::Config(ConfigError {
                key: "http client".into(),
                message: e.to_string(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_pushers_documented_example() {
        // Pusher's auth docs: key 278d425bdf160c739803, secret 7ad3773142a6692b25b8,
        // socket 1234.1234, channel private-foobar.
        assert_eq!(
            sign_channel(
                "278d425bdf160c739803",
                "7ad3773142a6692b25b8",
                "1234.1234",
                "private-foobar"
            ),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
    }

    #[test]
    fn tokens_verify_only_for_their_socket_channel_and_secret() {
        let t = sign_channel("k", "s", "1.2", "private-a");
        assert!(verify_channel("k", "s", "1.2", "private-a", &t));
        assert!(!verify_channel("k", "s", "1.3", "private-a", &t));
        assert!(!verify_channel("k", "s", "1.2", "private-b", &t));
        assert!(!verify_channel("k", "other", "1.2", "private-a", &t));
        assert!(!verify_channel("other", "s", "1.2", "private-a", &t));
        for bad in ["", "k", "k:", "k:zz", "k:abc", "k:é1", &t[..t.len() - 2]] {
            assert!(!verify_channel("k", "s", "1.2", "private-a", bad), "{bad}");
        }
    }

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
