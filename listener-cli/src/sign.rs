//! `trigger-hub sign`: the three signature headers of a webhook delivery, computed with
//! `listener_core::webhook::signed_headers` (HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, base64, sent as `webhook-signature: v1,<signature>`).

use std::hash::{BuildHasher, Hasher};
use std::io::Read;

use anyhow::{bail, Context, Result};
use listener_core::webhook::{signed_headers, WebhookSecret};

/// Sign a webhook body read from standard input and print the three headers.
///
/// Prints `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,` + base64 of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`), one `name: value` line each. The body is
/// signed byte for byte, a trailing newline included. With --request, prints a whole saved
/// request (request line, headers, blank line, body) that `verify` checks.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signing secret.
    #[arg(
        long,
        value_name = "SECRET",
        env = "COMPOSIO_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub secret: String,
    /// How the secret becomes the HMAC key: `composio` (its UTF-8 bytes, as Composio signs)
    /// or `standard` (Standard Webhooks: the base64 after `whsec_`, decoded).
    #[arg(long, value_name = "SCHEME", default_value = "composio", value_parser = ["composio", "standard"])]
    pub scheme: String,
    /// The `webhook-id` (default: a fresh `msg_…`).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// The `webhook-timestamp`, Unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECS", allow_negative_numbers = true)]
    pub timestamp: Option<i64>,
    /// Read the body from FILE instead of standard input.
    #[arg(long, value_name = "FILE")]
    pub body: Option<String>,
    /// Print a complete request (`POST /webhook`, the headers, a blank line, the body).
    #[arg(long)]
    pub request: bool,
}

/// Reads the body, signs it, prints the headers (or the whole request).
pub fn run(args: Args) -> Result<()> {
    let secret = secret_of(&args.secret, &args.scheme)?;
    let body = match &args.body {
        Some(path) => std::fs::read(path).with_context(|| format!("cannot read {path}"))?,
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from standard input")?;
            body
        }
    };
    if body.is_empty() {
        bail!("the body is empty: pipe the request body into `sign` (or give --body FILE)");
    }
    let id = match args.id {
        Some(id) if id.trim().is_empty() => bail!("--id must not be empty"),
        Some(id) => id,
        None => fresh_id(),
    };
    let timestamp = args.timestamp.unwrap_or_else(now);
    let headers = signed_headers(&secret, &id, timestamp, &body);
    let mut out = Vec::new();
    if args.request {
        out.extend_from_slice(b"POST /webhook HTTP/1.1\n");
        out.extend_from_slice(b"content-type: application/json\n");
    }
    for (name, value) in &headers {
        out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    if args.request {
        out.push(b'\n');
        out.extend_from_slice(&body);
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|_| stdout.flush())
        .context("cannot write to standard output")
}

/// The secret with its scheme; a Standard Webhooks secret must be valid base64.
pub fn secret_of(value: &str, scheme: &str) -> Result<WebhookSecret> {
    if value.is_empty() {
        bail!("the secret is empty");
    }
    match scheme {
        "standard" => WebhookSecret::standard(value).map_err(|e| anyhow::anyhow!("{e}")),
        "composio" => Ok(WebhookSecret::composio(value)),
        _ => Ok(WebhookSecret::new(value)),
    }
}

/// Unix seconds now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `msg_` + 24 hex digits from the standard library's per-process random hasher keys.
pub fn fresh_id() -> String {
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    format!("msg_{:016x}{:08x}", word(), word() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh() {
        let (a, b) = (fresh_id(), fresh_id());
        assert_ne!(a, b);
        assert!(a.starts_with("msg_") && a.len() == 28, "{a}");
    }

    #[test]
    fn secrets_follow_the_scheme() {
        assert!(secret_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "standard").is_ok());
        assert!(secret_of("whsec_not base64!", "standard").is_err());
        assert!(secret_of("anything", "composio").is_ok());
        assert!(secret_of("", "composio").is_err());
    }
}
