//! `trigger-hub verify`: checks a saved webhook request with
//! `listener_core::webhook::verify` (headers, timestamp tolerance, signatures, envelope).

use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use listener_core::webhook::{verify, VerifyError};

use crate::sign::secret_of;

/// Check a saved webhook request: signature, timestamp and event.
///
/// REQUEST is a saved HTTP request: an optional request line (`POST /path HTTP/1.1`),
/// `name: value` header lines, a blank line, then the raw body (what `sign --request`
/// prints, or what a raw capture of the delivery holds). Prints the verified event's
/// identity, or fails with the reason (missing header, stale timestamp, no matching
/// signature, body not an event).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The saved request; `-` (the default) reads standard input.
    #[arg(value_name = "REQUEST", default_value = "-")]
    pub request: String,
    /// A signing secret; repeat for rotated secrets (any may match).
    #[arg(
        long,
        value_name = "SECRET",
        env = "COMPOSIO_WEBHOOK_SECRET",
        hide_env_values = true,
        required = true
    )]
    pub secret: Vec<String>,
    /// How a secret becomes the HMAC key: `auto` (its UTF-8 bytes, and for `whsec_`
    /// secrets also the Standard Webhooks decoding), `composio` or `standard`.
    #[arg(long, value_name = "SCHEME", default_value = "auto", value_parser = ["auto", "composio", "standard"])]
    pub scheme: String,
    /// Timestamp tolerance in seconds, either way; 0 skips the check (for old captures).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub tolerance: u64,
    /// Print the verified event as one JSON line (the serialized `TriggerEvent`).
    #[arg(long)]
    pub json: bool,
}

/// Reads the request, verifies it, prints the outcome.
pub fn run(args: Args) -> Result<()> {
    let raw = if args.request == "-" {
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read the request from standard input")?;
        raw
    } else {
        std::fs::read(&args.request).with_context(|| format!("cannot read {}", args.request))?
    };
    let (headers, body) = parse_request(&raw)?;
    let secrets = args
        .secret
        .iter()
        .map(|s| secret_of(s, &args.scheme))
        .collect::<Result<Vec<_>>>()?;
    let verified = verify(
        headers.as_slice(),
        body,
        &secrets,
        Duration::from_secs(args.tolerance),
    )
    .map_err(|e| match e {
        VerifyError::TooOld { .. } | VerifyError::TooNew { .. } => {
            anyhow!("verification failed: {e} (--tolerance 0 skips the timestamp check)")
        }
        e if e.is_auth_failure() => anyhow!("verification failed: {e}"),
        e => anyhow!("the signature is valid but {e}"),
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&verified.event).context("cannot encode the event")?
        );
    } else {
        println!(
            "verified {} (timestamp {}): {} {} event {}",
            verified.id,
            verified.timestamp,
            verified.envelope,
            verified.event.event_type.as_deref().unwrap_or("trigger"),
            verified.event.trigger_slug
        );
    }
    Ok(())
}

/// Header names (lower-case) and values, in order.
type Headers = Vec<(String, String)>;

/// Splits a saved request into its headers and its raw body.
fn parse_request(raw: &[u8]) -> Result<(Headers, &[u8])> {
    let (head, body) = split_head(raw).context(
        "the request has no blank line between its headers and its body (see `verify --help`)",
    )?;
    let head = std::str::from_utf8(head).context("the request's headers are not UTF-8")?;
    let mut headers = Vec::new();
    for (n, line) in head.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if n == 0 && is_request_line(line) {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            bail!(
                "line {} of the request is not a `name: value` header",
                n + 1
            );
        };
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            bail!("line {} of the request has no header name", n + 1);
        }
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok((headers, body))
}

/// `POST /path HTTP/1.1`.
fn is_request_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default();
    let _target = words.next();
    let version = words.next().unwrap_or_default();
    !method.is_empty()
        && method.chars().all(|c| c.is_ascii_uppercase())
        && version.starts_with("HTTP/")
}

/// The head and the body, split at the first blank line (`\n\n` or `\r\n\r\n`).
fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let lf = find(raw, b"\n\n").map(|i| (i, 2));
    let crlf = find(raw, b"\r\n\r\n").map(|i| (i, 4));
    let (at, len) = match (lf, crlf) {
        (Some(a), Some(b)) => {
            if a.0 < b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((&raw[..at], &raw[at + len..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_requests_parse() {
        let raw = b"POST /webhook HTTP/1.1\r\nWebhook-Id: msg_1\r\ncontent-type: application/json\r\n\r\n{\"a\":1}\n";
        let (headers, body) = parse_request(raw).unwrap();
        assert_eq!(headers[0], ("webhook-id".to_owned(), "msg_1".to_owned()));
        assert_eq!(headers.len(), 2);
        assert_eq!(body, b"{\"a\":1}\n");

        let (headers, body) = parse_request(b"webhook-id: m\n\n{}").unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(body, b"{}");

        assert!(parse_request(b"webhook-id: m\n{}").is_err());
        let err = parse_request(b"webhook-id: m\nnonsense\n\n{}").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
