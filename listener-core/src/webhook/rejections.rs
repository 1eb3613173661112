//! Counting refused requests, and logging them at a bounded rate.
//!
//! Anybody can send a webhook server requests it must refuse, as fast as the network
//! carries them; a log line for each would let them fill the disk and spend our CPU on
//! formatting. So each refusal is counted by reason and logged at debug level only, and a
//! summary line (WARN, counts by reason) is written at most once per interval while
//! refusals keep coming.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::VerifyError;

/// Why a request was refused before anything was dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// 415: not `application/json`.
    MediaType,
    /// 413: over the body limit.
    TooLarge,
    /// 408: the body did not arrive in time.
    BodyTimeout,
    /// 400: the body could not be read.
    UnreadableBody,
    /// 401: a signature header is missing, empty or not text.
    MissingHeader,
    /// 401: the timestamp is not a number.
    MalformedTimestamp,
    /// 401: the timestamp is out of tolerance.
    Stale,
    /// 401: no `v1,` signature.
    NoSignature,
    /// 401: no signature matches.
    Mismatch,
    /// 401: the body is empty.
    EmptyBody,
    /// 401: nothing to verify with (no usable secret).
    NoSecret,
}

impl Reason {
    const ALL: [Reason; 11] = [
        Reason::MediaType,
        Reason::TooLarge,
        Reason::BodyTimeout,
        Reason::UnreadableBody,
        Reason::MissingHeader,
        Reason::MalformedTimestamp,
        Reason::Stale,
        Reason::NoSignature,
        Reason::Mismatch,
        Reason::EmptyBody,
        Reason::NoSecret,
    ];

    /// The name used in the summary line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::MediaType => "unsupported_media_type",
            Reason::TooLarge => "too_large",
            Reason::BodyTimeout => "body_timeout",
            Reason::UnreadableBody => "unreadable_body",
            Reason::MissingHeader => "missing_header",
            Reason::MalformedTimestamp => "malformed_timestamp",
            Reason::Stale => "stale_timestamp",
            Reason::NoSignature => "no_v1_signature",
            Reason::Mismatch => "signature_mismatch",
            Reason::EmptyBody => "empty_body",
            Reason::NoSecret => "no_secret",
        }
    }

    /// The reason of a verification failure (one that [`VerifyError::is_auth_failure`]).
    pub(crate) fn of(e: &VerifyError) -> Reason {
        match e {
            VerifyError::MissingHeader(_) | VerifyError::HeaderNotText(_) => Reason::MissingHeader,
            VerifyError::MalformedTimestamp => Reason::MalformedTimestamp,
            VerifyError::TooOld { .. } | VerifyError::TooNew { .. } => Reason::Stale,
            VerifyError::NoV1Signature => Reason::NoSignature,
            VerifyError::EmptyBody => Reason::EmptyBody,
            VerifyError::NoSecrets | VerifyError::InvalidSecret => Reason::NoSecret,
            _ => Reason::Mismatch,
        }
    }
}

/// Refusals counted by reason.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    /// Since the last summary, per [`Reason::ALL`] index.
    recent: [AtomicU64; Reason::ALL.len()],
    /// Since the server started.
    total: AtomicU64,
}

impl Rejections {
    /// Counts one refusal (the caller logs it at debug level).
    pub(crate) fn count(&self, reason: Reason) {
        let index = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.recent[index].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the summary of the refusals since the last one, if there were any.
    pub(crate) fn summarize(&self, addr: SocketAddr, interval: Duration) {
        let mut counts = String::new();
        let mut sum: u64 = 0;
        for (reason, recent) in Reason::ALL.iter().zip(&self.recent) {
            let n = recent.swap(0, Ordering::Relaxed);
            if n > 0 {
                if !counts.is_empty() {
                    counts.push_str(", ");
                }
                counts.push_str(&format!("{}={n}", reason.as_str()));
                sum += n;
            }
        }
        if sum > 0 {
            tracing::warn!(
                %addr,
                refused = sum,
                total = self.total.load(Ordering::Relaxed),
                "webhook server refused {sum} requests in the last {}: {counts}",
                humantime::format_duration(interval)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_start_again_after_each_summary() {
        let r = Rejections::default();
        r.count(Reason::Mismatch);
        r.count(Reason::Mismatch);
        r.count(Reason::Stale);
        r.summarize(([127, 0, 0, 1], 8787).into(), Duration::from_secs(10));
        assert!(r.recent.iter().all(|n| n.load(Ordering::Relaxed) == 0));
        assert_eq!(r.total.load(Ordering::Relaxed), 3);
        let names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
    }
}
