//! Talking to a hub over HTTP: the shared `--hub` option, the client, and turning transport
//! failures and the hub's error objects into one-line messages.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Response, Url};
use serde_json::Value;

/// Where a hub listens unless told otherwise (`trigger-hub hub` binds here by default).
pub const DEFAULT_HUB_URL: &str = "http://127.0.0.1:8790";

/// The hub's API key unless told otherwise (the hub's own default).
pub const DEFAULT_API_KEY: &str = "hub_local_key";

/// The options that say which hub to talk to, shared by every command that talks to a
/// running hub: `--hub URL` and `--api-key KEY`.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// Base URL of the hub [default: http://127.0.0.1:8790].
    #[arg(long = "hub", value_name = "URL", env = "LISTENER_HUB_URL")]
    pub url: Option<String>,
    #[command(flatten)]
    pub key: ApiKeyArg,
}

impl HubArgs {
    /// The validated base URL (the default hub's when none is given), without a trailing
    /// slash.
    pub fn base(&self) -> Result<String> {
        base_url(self.url.as_deref().unwrap_or(DEFAULT_HUB_URL))
    }

    /// The API key to send as `x-api-key`.
    pub fn api_key(&self) -> &str {
        &self.key.api_key
    }
}

/// `--api-key KEY`: the key a hub expects as `x-api-key` (for `hub`, the key it will expect).
#[derive(Debug, Clone, clap::Args)]
pub struct ApiKeyArg {
    /// The hub's API key.
    #[arg(
        long,
        value_name = "KEY",
        env = "LISTENER_HUB_API_KEY",
        default_value = DEFAULT_API_KEY
    )]
    pub api_key: String,
}

/// Checks that `url` is an http(s) URL with a host; returns it without a trailing slash.
pub fn base_url(url: &str) -> Result<String> {
    parse_url(url)?;
    Ok(url.trim().trim_end_matches('/').to_owned())
}

/// Parses an http(s) URL with a host.
pub fn parse_url(url: &str) -> Result<Url> {
    let parsed = Url::parse(url.trim()).map_err(|e| anyhow!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("`{url}` is not an http(s) URL");
    }
    Ok(parsed)
}

/// An HTTP client for talking to the hub (installs the TLS crypto provider reqwest needs).
pub fn client() -> Result<reqwest::Client> {
    listener_core::http::ClientOptions {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        user_agent: concat!("trigger-hub/", env!("CARGO_PKG_VERSION")).to_owned(),
        follow_redirects: true,
    }
    .build()
    .context("cannot build the HTTP client")
}

/// The hub could not be reached at all (as opposed to refusing a request).
#[derive(Debug)]
pub struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// A transport failure as one line: `cannot reach the hub at URL (connection refused)`.
pub fn unreachable(base: &str, e: &reqwest::Error) -> anyhow::Error {
    let cause = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        root_cause(e)
    };
    Unreachable(format!("cannot reach the hub at {base} ({cause})")).into()
}

/// The innermost error message (reqwest's outer messages repeat the URL).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    // `Connection refused (os error 111)` reads better without the errno.
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_lowercase(),
        None => text,
    }
}

/// The answer's JSON when the status is a success; otherwise an error carrying the hub's
/// own message (`{"error": {"message": …}}`).
pub async fn json_or_error(base: &str, response: Response) -> Result<Value> {
    let status = response.status();
    let body = response.bytes().await.map_err(|e| unreachable(base, &e))?;
    if status.is_success() {
        if body.is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(&body)
            .with_context(|| format!("the hub answered {status} with a body that is not JSON"));
    }
    Err(anyhow!(
        "the hub answered {status}: {}",
        error_message(&body)
    ))
}

/// The message of a Composio-style error body, or a bounded preview of the body.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(message) = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str)
    {
        return message.to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let mut preview: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        preview.push('…');
    }
    if preview.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        preview
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            base_url("http://127.0.0.1:8790/").unwrap(),
            "http://127.0.0.1:8790"
        );
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("localhost:8790").is_err());
        assert!(base_url("not a url").is_err());
    }

    #[test]
    fn error_bodies_become_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad thing","status":400}}"#),
            "bad thing"
        );
        assert_eq!(error_message(b"plain"), "plain");
        assert_eq!(error_message(b""), "(empty body)");
        assert!(error_message("x".repeat(500).as_bytes()).ends_with('…'));
    }
}
