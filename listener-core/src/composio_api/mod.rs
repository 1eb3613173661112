//! A typed client for Composio's management API: trigger instances and
//! trigger types, webhook subscriptions and endpoints, and tool execution.
//!
//! Every call sends the project API key as `x-api-key` (redirects are not followed, so the
//! key never goes to another host), has a time limit, and retries
//! answers 429 and 5xx (and connection failures that sent nothing) with [`Backoff`],
//! honouring `Retry-After`. Errors carry Composio's error object ([`ErrorObject`]).
//!
// The example needs the `composio-api` feature (the module alone also serves `realtime`).
#![cfg_attr(feature = "composio-api", doc = "```no_run")]
#![cfg_attr(not(feature = "composio-api"), doc = "```ignore")]
//! use listener_core::composio_api::{ComposioClient, ExecuteTool, UpsertTrigger};
//! # async fn run() -> Result<(), listener_core::composio_api::ApiError> {
//! let client = ComposioClient::from_env()?; // COMPOSIO_API_KEY, COMPOSIO_BASE_URL
//! let trigger = client
//!     .upsert_trigger("SLACK_RECEIVE_MESSAGE", &UpsertTrigger::for_user("default"))
//!     .await?;
//! println!("trigger {} enabled", trigger.trigger_id);
//! let sent = client
//!     .execute_tool(
//!         "SLACK_SEND_MESSAGE",
//!         &ExecuteTool::new("default", serde_json::json!({"channel": "C1", "text": "hi"})),
//!     )
//!     .await?
//!     .into_result("SLACK_SEND_MESSAGE")?;
//! println!("{sent}");
//! # Ok(()) }
//! ```

mod error;
#[cfg(feature = "composio-api")]
mod lenient;
#[cfg(feature = "realtime")]
mod realtime;
#[cfg(feature = "composio-api")]
mod schema;
#[cfg(feature = "composio-api")]
mod tools;
#[cfg(feature = "composio-api")]
mod triggers;
#[cfg(feature = "composio-api")]
mod webhook_subscriptions;

#[cfg(all(test, feature = "composio-api"))]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
#[cfg(feature = "composio-api")]
use serde::Serialize;

pub use error::{ApiError, ApiResult, ErrorObject};
#[cfg(feature = "realtime")]
pub use realtime::{ChannelToken, RealtimeCredentials, MAX_REALTIME_ANSWER_BYTES};
#[cfg(feature = "composio-api")]
pub use schema::{ConfigProblem, ConfigSchema};
#[cfg(feature = "composio-api")]
pub use tools::{ExecuteTool, ToolExecution};
#[cfg(feature = "composio-api")]
pub use triggers::{
    ActiveTriggersQuery, TriggerInstance, TriggerInstancePage, TriggerStatus, TriggerType,
    TriggerTypeToolkit, UpsertTrigger, UpsertedTrigger,
};
#[cfg(feature = "composio-api")]
pub use webhook_subscriptions::{
    CreateWebhookEndpoint, CreateWebhookSubscription, UpdateWebhookSubscription, WebhookEndpoint,
    WebhookEventType, WebhookSubscription,
};

use crate::backoff::Backoff;
use crate::http::{describe, read_limited, ClientOptions, ResponseBodyError};
use crate::preview::{preview, truncate_chars, PREVIEW_CHARS};

/// Composio's API, unless told otherwise (`COMPOSIO_BASE_URL`).
pub const DEFAULT_BASE_URL: &str = "https://backend.composio.dev";

/// A loose JSON object answer (`{"status": "success"}`, `{"id": …, "deleted": true}`, an
/// empty body): the fields as sent.
pub type JsonAnswer = serde_json::Map<String, serde_json::Value>;

/// The default per-request time limit (connect, send, read the whole answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default bound on an answer's body: 16 MiB. A longer one is refused while it streams
/// in ([`ApiError::ResponseTooLarge`]); see [`ComposioClientBuilder::max_response_bytes`].
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// The default retry timing: 250 ms doubling to at most 8 s, 3 retries after the first try.
pub const DEFAULT_RETRY: Backoff = Backoff {
    initial: Duration::from_millis(250),
    max: Duration::from_secs(8),
    multiplier: 2.0,
    max_attempts: Some(3),
};

/// Whether a request may be sent again after it may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idempotency {
    /// GET / DELETE / PATCH to a fixed state / upsert: safe to repeat after a timeout.
    Repeatable,
    /// Creates something or has effects (tool execution, secret rotation): repeated only
    /// when the server refused it (429, 5xx) or the connection never opened.
    #[cfg(feature = "composio-api")]
    Once,
}

/// Settings for a [`ComposioClient`].
#[derive(Clone)]
pub struct ComposioClientBuilder {
    api_key: String,
    base_url: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry: Backoff,
    user_agent: String,
    max_response_bytes: usize,
}

impl fmt::Debug for ComposioClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComposioClientBuilder")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl ComposioClientBuilder {
    /// Composio's API base URL (default `https://backend.composio.dev`; a local hub's or a
    /// test server's `http://` URL works too).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The time limit of each attempt (default 30 s).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// The time limit for opening a connection (default 5 s).
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// Retry timing for 429 / 5xx answers and failed connections ([`DEFAULT_RETRY`]);
    /// `max_attempts` counts retries after the first try (`Some(0)`: never retry).
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.retry = backoff;
        self
    }

    /// The `user-agent` header.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// The largest answer body read ([`DEFAULT_MAX_RESPONSE_BYTES`], 16 MiB; at least 1 KiB).
    /// It is enforced while the body streams in: a longer (or longer-declared) answer is
    /// [`ApiError::ResponseTooLarge`], not retried, and nothing past the limit is kept.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes.max(1024);
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> ApiResult<ComposioClient> {
        let key = self.api_key.trim();
        if key.is_empty() {
            return Err(ApiError::config("COMPOSIO_API_KEY", "empty"));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::config(
                "COMPOSIO_API_KEY",
                "must be printable ASCII without spaces",
            ));
        }
        let mut base = Url::parse(self.base_url.trim()).map_err(|e| {
            ApiError::config(
                "COMPOSIO_BASE_URL",
                format!("`{}`: {e}", truncate_chars(&self.base_url, 80)),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ApiError::config(
                "COMPOSIO_BASE_URL",
                format!(
                    "`{}` is not an http(s) URL",
                    truncate_chars(&self.base_url, 80)
                ),
            ));
        }
        base.set_query(None);
        base.set_fragment(None);
        // No redirects: the API key travels in `x-api-key`, which an HTTP client does not
        // strip on a redirect to another host.
        let http = ClientOptions {
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            user_agent: self.user_agent,
            follow_redirects: false,
        }
        .build()
        .map_err(|e| ApiError::config("http client", e.message))?;
        Ok(ComposioClient {
            inner: Arc::new(Inner {
                http,
                api_key: key.to_owned(),
                base,
                retry: self.retry,
                max_response_bytes: self.max_response_bytes,
            }),
        })
    }
}

struct Inner {
    http: reqwest::Client,
    api_key: String,
    base: Url,
    retry: Backoff,
    max_response_bytes: usize,
}

/// A client of Composio's management API. Cheap to clone (shared connection pool).
#[derive(Clone)]
pub struct ComposioClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for ComposioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComposioClient")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.inner.base.as_str())
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// One request, described once and sent as many times as the retry policy allows.
struct Call<'a> {
    method: Method,
    segments: &'a [&'a str],
    query: Vec<(&'static str, String)>,
    /// The body and its content type.
    body: Option<(&'static str, Vec<u8>)>,
    idempotency: Idempotency,
    /// A bound on the answer below the client's own, for endpoints whose answers are small.
    max_response_bytes: Option<usize>,
}

impl ComposioClient {
    /// A client for `api_key` against Composio's API, with default settings.
    pub fn new(api_key: impl Into<String>) -> ApiResult<Self> {
        Self::builder(api_key).build()
    }

    /// Settings for a client of `api_key`.
    pub fn builder(api_key: impl Into<String>) -> ComposioClientBuilder {
        ComposioClientBuilder {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            retry: DEFAULT_RETRY,
            user_agent: concat!("listener-core/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// From `COMPOSIO_API_KEY` (required) and `COMPOSIO_BASE_URL` (optional).
    pub fn from_env() -> ApiResult<Self> {
        Self::from_lookup(&|key| std::env::var(key).ok())
    }

    /// [`from_env`](Self::from_env) with another variable lookup.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> ApiResult<Self> {
        let key = lookup("COMPOSIO_API_KEY")
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| ApiError::config("COMPOSIO_API_KEY", "not set"))?;
        let mut builder = Self::builder(key);
        if let Some(url) = lookup("COMPOSIO_BASE_URL").filter(|u| !u.trim().is_empty()) {
            builder = builder.base_url(url);
        }
        builder.build()
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    fn url(&self, segments: &[&str], query: &[(&'static str, String)]) -> ApiResult<Url> {
        let mut url = self.inner.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ApiError::config("COMPOSIO_BASE_URL", "not a base URL"))?;
            path.pop_if_empty();
            for seg in segments {
                path.push(seg);
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn send_json<T: DeserializeOwned>(&self, call: Call<'_>) -> ApiResult<T> {
        let (status, body) = self.send(&call).await?;
        let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(text).map_err(|e| ApiError::Decode {
            method: call.method.to_string(),
            path: display_path(call.segments),
            status: status.as_u16(),
            message: e.to_string(),
            preview: preview(&body, PREVIEW_CHARS),
        })
    }

    async fn send(&self, call: &Call<'_>) -> ApiResult<(StatusCode, bytes::Bytes)> {
        let method = &call.method;
        let url = self.url(call.segments, &call.query)?;
        let path = display_path(call.segments);
        let retry = self.inner.retry;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header("x-api-key", &self.inner.api_key)
                .header("accept", "application/json");
            if let Some((content_type, body)) = &call.body {
                request = request
                    .header(CONTENT_TYPE, *content_type)
                    .body(body.clone());
            }
            let retry_left = !retry.exhausted(attempt);
            let outcome = request.send().await;
            let response = match outcome {
                Ok(r) => r,
                Err(e) => {
                    let repeatable = e.is_connect()
                        || (call.idempotency == Idempotency::Repeatable
                            && (e.is_timeout() || e.is_request()));
                    if repeatable && retry_left {
                        let delay = retry.delay(attempt);
                        tracing::warn!(%method, %path, attempt, retry_in_ms = delay.as_millis() as u64, error = %describe(&e), "composio api request failed; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(ApiError::Transport {
                        method: method.to_string(),
                        path,
                        message: describe(&e),
                        timeout: e.is_timeout(),
                        attempts: attempt,
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let limit = call
                .max_response_bytes
                .map_or(self.inner.max_response_bytes, |l| {
                    l.min(self.inner.max_response_bytes)
                });
            let body = match read_limited(response, limit).await {
                Ok(b) => b,
                // The same request would get the same answer: not retried.
                Err(ResponseBodyError::TooLarge { limit }) => {
                    tracing::warn!(%method, %path, status = status.as_u16(), limit, "composio api answer too large; abandoned");
                    return Err(ApiError::ResponseTooLarge {
                        method: method.to_string(),
                        path,
                        status: status.as_u16(),
                        limit,
                    });
                }
                Err(ResponseBodyError::Read {
                    message, timeout, ..
                }) => {
                    if call.idempotency == Idempotency::Repeatable && retry_left {
                        tokio::time::sleep(retry.delay(attempt)).await;
                        continue;
                    }
                    return Err(ApiError::Transport {
                        method: method.to_string(),
                        path,
                        message: format!("reading the answer: {message}"),
                        timeout,
                        attempts: attempt,
                    });
                }
            };
            if status.is_success() {
                return Ok((status, body));
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if retryable && retry_left {
                let delay = retry_after(&headers, retry.max)
                    .map_or_else(|| retry.delay(attempt), |d| d.max(retry.delay(attempt)));
                tracing::warn!(%method, %path, status = status.as_u16(), attempt, retry_in_ms = delay.as_millis() as u64, "composio api answered an error; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok());
            return Err(ApiError::Api {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                error: Box::new(ErrorObject::from_body(&body, status.as_u16(), request_id)),
                attempts: attempt,
            });
        }
    }

    #[cfg(feature = "composio-api")]
    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: Vec<(&'static str, String)>,
    ) -> ApiResult<T> {
        self.send_json(Call {
            method: Method::GET,
            segments,
            query,
            body: None,
            idempotency: Idempotency::Repeatable,
            max_response_bytes: None,
        })
        .await
    }

    #[cfg(feature = "composio-api")]
    async fn with_body<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &impl Serialize,
        idempotency: Idempotency,
    ) -> ApiResult<T> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ApiError::config("request body", e.to_string()))?;
        self.send_json(Call {
            method,
            segments,
            query: Vec::new(),
            body: Some(("application/json", body)),
            idempotency,
            max_response_bytes: None,
        })
        .await
    }

    #[cfg(feature = "composio-api")]
    async fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> ApiResult<T> {
        self.send_json(Call {
            method: Method::DELETE,
            segments,
            query: Vec::new(),
            body: None,
            idempotency: Idempotency::Repeatable,
            max_response_bytes: None,
        })
        .await
    }
}

/// Checks a path parameter: non-empty and bounded (it is percent-encoded into one segment).
#[cfg(feature = "composio-api")]
fn segment<'a>(what: &str, value: &'a str) -> ApiResult<&'a str> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::config(what, "must not be empty"));
    }
    if value.len() > 512 {
        return Err(ApiError::config(what, "longer than 512 bytes"));
    }
    Ok(value)
}

fn display_path(segments: &[&str]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        out.push_str(&truncate_chars(s, 80));
    }
    out
}

/// A `Retry-After` of whole seconds, capped at `max`.
fn retry_after(headers: &HeaderMap, max: Duration) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(max))
}
