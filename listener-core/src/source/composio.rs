//! Composio's realtime delivery: fetch the project's Pusher credentials with the API key,
//! then listen on `private-{project_id}_triggers` through a [`PusherSource`], authorizing
//! through Composio's auth endpoint. No public URL needed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::pusher::{
    validate_cluster, AuthRefusal, ChannelAuth, ChannelAuthorizer, ChunkLimits, PusherSource,
    SubscriptionError,
};
use super::{Source, SourceContext, SourceError};
use crate::backoff::Backoff;
use crate::composio_api::{
    ApiError, ComposioClient, RealtimeCredentials, DEFAULT_BASE_URL, DEFAULT_RETRY,
};
use crate::error::{ConfigError, Error, Result};
use crate::preview::truncate_chars;

/// Receives a Composio project's trigger events live, as Composio's SDKs'
/// `triggers.subscribe()` does.
///
/// ```no_run
/// use listener_core::prelude::*;
/// use listener_core::source::composio::ComposioSource;
/// # async fn run() -> anyhow::Result<()> {
/// let listener = Listener::builder().source(ComposioSource::from_env()?).build()?;
/// listener.wait_forever().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ComposioSource {
    api_key: String,
    base_url: String,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
    pusher: PusherSource,
}

impl fmt::Debug for ComposioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComposioSource")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

fn env_lookup(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// A variable holding a non-negative number of seconds, if set.
fn seconds_var(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: &str,
) -> Result<Option<std::time::Duration>> {
    let Some(value) = lookup(key).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| std::time::Duration::try_from_secs_f64(secs).ok())
        .map(Some)
        .ok_or_else(|| {
            Error::Config(ConfigError {
                key: key.into(),
                message: format!(
                    "`{}` is not a non-negative number of seconds",
                    truncate_chars(&value, 40)
                ),
            })
        })
}

impl ComposioSource {
    /// A source for the project of `api_key`, against Composio's API.
    pub fn new(api_key: impl Into<String>) -> Self {
        ComposioSource {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.into(),
            host: None,
            port: None,
            tls: None,
            pusher: PusherSource::new("", "").client_name("listener-core-rust"),
        }
    }

    /// From `COMPOSIO_API_KEY` (required), `COMPOSIO_BASE_URL`, the overrides
    /// `COMPOSIO_PUSHER_HOST`, `COMPOSIO_PUSHER_PORT`, `COMPOSIO_PUSHER_TLS` (`true`/`false`)
    /// for self-hosted or local servers, and the timings
    /// `COMPOSIO_PUSHER_SUBSCRIBE_TIMEOUT_SECS` ([`subscribe_timeout`](Self::subscribe_timeout))
    /// and `COMPOSIO_PUSHER_STABLE_AFTER_SECS` ([`stable_after`](Self::stable_after)), in
    /// seconds (fractions allowed).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&env_lookup)
    }

    /// [`from_env`](Self::from_env) with another variable lookup.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let api_key = lookup("COMPOSIO_API_KEY")
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty());
        let api_key = api_key.ok_or_else(|| {
            Error::Config(ConfigError {
                key: "COMPOSIO_API_KEY".into(),
                message: "not set".into(),
            })
        })?;
        let mut source = ComposioSource::new(api_key);
        if let Some(url) = lookup("COMPOSIO_BASE_URL").filter(|v| !v.trim().is_empty()) {
            source = source.base_url(url.trim())?;
        }
        if let Some(host) = lookup("COMPOSIO_PUSHER_HOST").filter(|v| !v.trim().is_empty()) {
            source = source.pusher_host(host.trim());
        }
        if let Some(port) = lookup("COMPOSIO_PUSHER_PORT").filter(|v| !v.trim().is_empty()) {
            let port = port.trim().parse().map_err(|_| {
                Error::Config(ConfigError {
                    key: "COMPOSIO_PUSHER_PORT".into(),
                    message: format!("`{}` is not a port number", truncate_chars(&port, 20)),
                })
            })?;
            source = source.pusher_port(port);
        }
        if let Some(tls) = lookup("COMPOSIO_PUSHER_TLS").filter(|v| !v.trim().is_empty()) {
            let tls = match tls.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(Error::Config(ConfigError {
                        key: "COMPOSIO_PUSHER_TLS".into(),
                        message: "expected true or false".into(),
                    }))
                }
            };
            source = source.pusher_tls(tls);
        }
        if let Some(d) = seconds_var(lookup, "COMPOSIO_PUSHER_SUBSCRIBE_TIMEOUT_SECS")? {
            source = source.subscribe_timeout(d);
        }
        if let Some(d) = seconds_var(lookup, "COMPOSIO_PUSHER_STABLE_AFTER_SECS")? {
            source = source.stable_after(d);
        }
        Ok(source)
    }

    /// Composio's API base URL (`http://` or `https://`, no trailing path needed).
    pub fn base_url(mut self, url: impl Into<String>) -> Result<Self> {
        let url = url.into();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Config(ConfigError {
                key: "COMPOSIO_BASE_URL".into(),
                message: format!("`{}` is not an http(s) URL", truncate_chars(&url, 80)),
            }));
        }
        self.base_url = url.trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// Connects the websocket to this host instead of `ws-{cluster}.pusher.com`.
    pub fn pusher_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Connects the websocket to this port instead of 443.
    pub fn pusher_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Uses `wss://` (true, the default) or `ws://`.
    pub fn pusher_tls(mut self, tls: bool) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Reconnect timing (also used to retry fetching the credentials).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.pusher = self.pusher.backoff(backoff);
        self
    }

    /// Time allowed for the server to confirm the subscription; see
    /// [`PusherSource::subscribe_timeout`] (default 10 s).
    pub fn subscribe_timeout(mut self, d: std::time::Duration) -> Self {
        self.pusher = self.pusher.subscribe_timeout(d);
        self
    }

    /// How long a connection must stay subscribed for the back-off to start over; see
    /// [`PusherSource::stable_after`] (default 30 s).
    pub fn stable_after(mut self, d: std::time::Duration) -> Self {
        self.pusher = self.pusher.stable_after(d);
        self
    }

    /// Bounds on chunked-event reassembly.
    pub fn chunk_limits(mut self, limits: ChunkLimits) -> Self {
        self.pusher = self.pusher.chunk_limits(limits);
        self
    }

    /// How often dropped chunked events are summarized in the log; see
    /// [`PusherSource::chunk_drop_summary_interval`] (default 10 s).
    pub fn chunk_drop_summary_interval(mut self, interval: std::time::Duration) -> Self {
        self.pusher = self.pusher.chunk_drop_summary_interval(interval);
        self
    }

    /// Called for every `pusher:subscription_error`.
    pub fn on_subscription_error(
        mut self,
        hook: impl Fn(&SubscriptionError) + Send + Sync + 'static,
    ) -> Self {
        self.pusher = self.pusher.on_subscription_error(hook);
        self
    }

    /// Any other setting of the underlying [`PusherSource`] (keepalive timing, frame size,
    /// connect timeout). Key, channel, host and auth are set from the credentials.
    pub fn configure_pusher(mut self, f: impl FnOnce(PusherSource) -> PusherSource) -> Self {
        self.pusher = f(self.pusher);
        self
    }

    /// The client the source talks to Composio through: the shared management API client,
    /// with the realtime endpoints' timings (5 s to connect, 15 s a request) and no retries
    /// of its own (the source retries with its back-off, and reports each failure).
    fn client(&self) -> Result<ComposioClient> {
        ComposioClient::builder(self.api_key.clone())
            .base_url(self.base_url.clone())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .retry(Backoff {
                max_attempts: Some(0),
                ..DEFAULT_RETRY
            })
            .build()
            .map_err(|e| match e {
                ApiError::Config { key, message } => ConfigError { key, message }.into(),
                other => ConfigError::new("COMPOSIO_BASE_URL", other.to_string()).into(),
            })
    }

    /// Fetches the realtime credentials. `Err((error, fatal))`: a refused key (401/403) or an
    /// unusable answer is fatal; network trouble and server errors are not.
    async fn credentials(
        client: &ComposioClient,
    ) -> std::result::Result<RealtimeCredentials, (Error, bool)> {
        let creds = client.realtime_credentials().await.map_err(|e| {
            let fatal = match &e {
                // Unusable whatever the status said; a refusal stays a refusal.
                ApiError::Decode { .. } => true,
                ApiError::ResponseTooLarge { status, .. } => {
                    (200..300).contains(status) || matches!(status, 401 | 403)
                }
                other => matches!(other.status(), Some(401 | 403)),
            };
            (auth_error("credentials request", &e), fatal)
        })?;
        validate_cluster(&creds.pusher_cluster).map_err(|e| (e, true))?;
        Ok(creds)
    }

    fn pusher_for(
        &self,
        creds: &RealtimeCredentials,
        client: &ComposioClient,
    ) -> Result<PusherSource> {
        let mut pusher = self
            .pusher
            .clone()
            .key(&creds.pusher_key)
            .channel(format!("private-{}_triggers", creds.project_id))
            .auth(ChannelAuth::Authorizer(Arc::new(ComposioAuth(
                client.clone(),
            ))))
            .cluster(&creds.pusher_cluster)?;
        if let Some(host) = &self.host {
            pusher = pusher.host(host);
        }
        if let Some(port) = self.port {
            pusher = pusher.port(port);
        }
        if let Some(tls) = self.tls {
            pusher = pusher.tls(tls);
        }
        Ok(pusher)
    }
}

#[async_trait]
impl Source for ComposioSource {
    fn name(&self) -> String {
        "composio realtime".to_owned()
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()> {
        let client = self.client()?;
        let backoff = self.pusher_backoff();
        let mut attempt = 0;
        let creds = loop {
            let fetched = tokio::select! {
                _ = cx.cancelled() => return Ok(()),
                r = Self::credentials(&client) => r,
            };
            match fetched {
                Ok(creds) => break creds,
                Err((error, true)) => {
                    return Err(Error::Source(SourceError::Failed {
                        source_name: cx.name().to_owned(),
                        message: error.to_string(),
                    }))
                }
                Err((error, false)) => {
                    attempt += 1;
                    if backoff.exhausted(attempt) {
                        return Err(Error::Source(SourceError::Failed {
                            source_name: cx.name().to_owned(),
                            message: format!("gave up fetching credentials: {error}"),
                        }));
                    }
                    let delay = backoff.delay(attempt);
                    if !cx
                        .pause_before_retry(
                            "fetching realtime credentials failed",
                            attempt,
                            delay,
                            error,
                        )
                        .await
                    {
                        return Ok(());
                    }
                }
            }
        };
        tracing::info!(project_id = %creds.project_id, cluster = %creds.pusher_cluster, "realtime credentials fetched");
        Box::new(self.pusher_for(&creds, &client)?).run(cx).await
    }
}

impl ComposioSource {
    fn pusher_backoff(&self) -> Backoff {
        self.pusher.backoff_config()
    }
}

/// Channel auth through Composio's auth endpoint, on the source's client.
struct ComposioAuth(ComposioClient);

#[async_trait]
impl ChannelAuthorizer for ComposioAuth {
    async fn token(
        &self,
        socket_id: &str,
        channel: &str,
    ) -> std::result::Result<String, AuthRefusal> {
        let answer = self
            .0
            .channel_token(channel, socket_id)
            .await
            .map_err(|e| {
                // A refused key or channel will be refused again; anything else may pass.
                let fatal = matches!(e.status(), Some(401 | 403));
                AuthRefusal {
                    error: auth_error("auth endpoint", &e),
                    fatal,
                }
            })?;
        match answer.token() {
            Some(token) => Ok(token.to_owned()),
            None => Err(AuthRefusal {
                error: SourceError::Auth {
                    message: format!(
                        "auth endpoint answered without an `auth` string: {}",
                        truncate_chars(&format!("{:?}", answer.auth), 120)
                    ),
                }
                .into(),
                fatal: false,
            }),
        }
    }
}

/// A realtime endpoint's failure as the source reports it: what was asked, the answer's
/// status and what was wrong with it.
fn auth_error(what: &str, e: &ApiError) -> Error {
    let status = |code: u16| {
        reqwest::StatusCode::from_u16(code).map_or_else(|_| code.to_string(), |s| s.to_string())
    };
    let message = match e {
        ApiError::Api {
            status: code,
            error,
            ..
        } => {
            format!("{what} answered {}: {error}", status(*code))
        }
        ApiError::ResponseTooLarge {
            status: code,
            limit,
            ..
        } => format!(
            "{what} answered {}: response body exceeds {limit} bytes",
            status(*code)
        ),
        ApiError::Decode {
            status: code,
            message,
            preview,
            ..
        } => format!(
            "{what} answered {} with an unusable body ({message}): {preview}",
            status(*code)
        ),
        ApiError::Transport { message, .. } => format!("{what} failed: {message}"),
        other => format!("{what} failed: {other}"),
    };
    SourceError::Auth { message }.into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn connection_timings_come_from_the_environment() {
        let source = ComposioSource::from_lookup(&lookup(&[
            ("COMPOSIO_API_KEY", "ak_1"),
            ("COMPOSIO_PUSHER_SUBSCRIBE_TIMEOUT_SECS", "2.5"),
            ("COMPOSIO_PUSHER_STABLE_AFTER_SECS", "90"),
        ]))
        .unwrap();
        let pusher = format!("{:?}", source.pusher);
        assert!(
            pusher.contains("subscribe_timeout: 2.5s") && pusher.contains("stable_after: 90s"),
            "{pusher}"
        );
        let defaults = format!(
            "{:?}",
            ComposioSource::from_lookup(&lookup(&[("COMPOSIO_API_KEY", "ak_1")]))
                .unwrap()
                .pusher
        );
        assert!(
            defaults.contains("subscribe_timeout: 10s") && defaults.contains("stable_after: 30s"),
            "{defaults}"
        );
        assert_eq!(
            crate::source::pusher::DEFAULT_SUBSCRIBE_TIMEOUT,
            Duration::from_secs(10)
        );
        for bad in ["-1", "soon", "NaN"] {
            let vars = [
                ("COMPOSIO_API_KEY", "ak_1"),
                ("COMPOSIO_PUSHER_SUBSCRIBE_TIMEOUT_SECS", bad),
            ];
            match ComposioSource::from_lookup(&lookup(&vars)) {
                Err(Error::Config(ConfigError { key, .. })) => {
                    assert_eq!(key, "COMPOSIO_PUSHER_SUBSCRIBE_TIMEOUT_SECS")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
