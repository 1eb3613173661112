//! Reading a request body under a size limit and a time limit.
//!
//! The limit is enforced as the body streams in: nothing past it is kept. An oversized body
//! is still read to its end (and thrown away) up to a drain bound, so that the sender, which
//! is still writing, gets to read the 413 instead of a reset connection; past that bound the
//! connection is given up.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// How a body read ended.
#[derive(Debug)]
pub(crate) enum BodyRead {
    /// The whole body, within the limit.
    Complete(Bytes),
    /// Larger than the limit (nothing beyond the limit was kept).
    TooLarge,
    /// The transport failed mid-body.
    Broken,
    /// The body did not arrive within the time limit.
    TimedOut,
}

/// An oversized body is drained up to this many times the limit (at least [`MIN_DRAIN`]).
const DRAIN_FACTOR: usize = 4;
/// At most this much is reserved ahead from a declared `content-length`.
const MAX_PREALLOCATE: usize = 64 << 10;
/// The least an oversized body is drained.
const MIN_DRAIN: usize = 8 << 20;

/// How many bytes of an oversized body are read and discarded at most.
pub(crate) fn drain_bound(limit: usize) -> usize {
    limit.saturating_mul(DRAIN_FACTOR).max(MIN_DRAIN)
}

/// Reads `body`, keeping at most `limit` bytes, within `timeout`. `declared` is the
/// `content-length`, when given: a body declared too large is not kept at all, only drained
/// (or refused at once when it is beyond the drain bound).
pub(crate) async fn read(
    body: Body,
    declared: Option<usize>,
    limit: usize,
    timeout: Duration,
) -> BodyRead {
    let too_large_already = declared.is_some_and(|len| len > limit);
    if declared.is_some_and(|len| len > drain_bound(limit)) {
        return BodyRead::TooLarge;
    }
    // A hint only: an unauthenticated sender must not reserve memory by declaring a size.
    let capacity = declared.unwrap_or(0).min(limit).min(MAX_PREALLOCATE);
    let mut reading = std::pin::pin!(collect(body, limit, too_large_already, capacity));
    // A small body usually arrives with the headers: read it without arming a timer.
    if let Poll::Ready(read) =
        std::future::poll_fn(|cx| Poll::Ready(reading.as_mut().poll(cx))).await
    {
        return read;
    }
    match tokio::time::timeout(timeout, reading).await {
        Ok(read) => read,
        Err(_) => BodyRead::TimedOut,
    }
}

/// What has been kept of a body so far.
enum Kept {
    None,
    /// A single frame, kept as it came (no copy).
    One(Bytes),
    /// Several frames, copied together.
    Many(Vec<u8>),
}

async fn collect(mut body: Body, limit: usize, mut too_large: bool, capacity: usize) -> BodyRead {
    let mut kept = Kept::None;
    let mut seen: usize = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return BodyRead::Broken;
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen > limit && !too_large {
            too_large = true;
            kept = Kept::None; // free what was kept; from here on, only count
        }
        if too_large {
            if seen > drain_bound(limit) {
                return BodyRead::TooLarge;
            }
            continue;
        }
        kept = match kept {
            Kept::None => Kept::One(data),
            Kept::One(first) => {
                let mut all = Vec::with_capacity(capacity.max(first.len() + data.len()));
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                Kept::Many(all)
            }
            Kept::Many(mut all) => {
                all.extend_from_slice(&data);
                Kept::Many(all)
            }
        };
    }
    match kept {
        _ if too_large => BodyRead::TooLarge,
        Kept::None => BodyRead::Complete(Bytes::new()),
        Kept::One(bytes) => BodyRead::Complete(bytes),
        Kept::Many(all) => BodyRead::Complete(Bytes::from(all)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: Vec<Vec<u8>>) -> Body {
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        Body::from_stream(stream)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_body_within_the_limit_is_kept_whole() {
        let body = chunked(vec![b"ab".to_vec(), b"cd".to_vec()]);
        match read(body, None, 4, SECOND).await {
            BodyRead::Complete(b) => assert_eq!(&b[..], b"abcd"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_or_without_a_length() {
        let chunks = || vec![vec![b'x'; 3], vec![b'x'; 3]];
        assert!(matches!(
            read(chunked(chunks()), None, 5, SECOND).await,
            BodyRead::TooLarge
        ));
        assert!(matches!(
            read(chunked(chunks()), Some(6), 5, SECOND).await,
            BodyRead::TooLarge
        ));
        // Declared beyond the drain bound: refused without reading.
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        assert!(matches!(
            read(never, Some(drain_bound(5) + 1), 5, SECOND).await,
            BodyRead::TooLarge
        ));
    }

    #[tokio::test]
    async fn draining_stops_at_the_bound() {
        // An endless body is not drained forever.
        let endless = futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1 << 20]))
        });
        assert!(matches!(
            read(
                Body::from_stream(endless),
                None,
                10,
                Duration::from_secs(30)
            )
            .await,
            BodyRead::TooLarge
        ));
    }

    #[tokio::test]
    async fn a_stalled_or_broken_body_is_reported() {
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        assert!(matches!(
            read(never, None, 5, Duration::from_millis(10)).await,
            BodyRead::TimedOut
        ));
        let broken = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("reset")),
        ]);
        assert!(matches!(
            read(Body::from_stream(broken), None, 5, SECOND).await,
            BodyRead::Broken
        ));
    }
}
