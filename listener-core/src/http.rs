//! HTTP client plumbing shared by everything here that calls a server (the realtime
//! source's credentials and channel-auth requests, the management API client, the
//! development hub's webhook deliveries): one way to build a client ([`ClientOptions`]) and
//! one way to read an answer under a size limit ([`read_limited`]).
//!
//! The limit is enforced while the body streams in: a declared `content-length` over the
//! limit is refused before anything is read, and a body that grows past it is abandoned at
//! the chunk that crosses it, its bytes freed. A server streaming an endless answer costs at
//! most `limit` bytes (plus one transport chunk), not whatever arrives before the request's
//! time limit.

use std::time::Duration;

use bytes::Bytes;

use crate::error::ConfigError;

/// How an HTTP client is built: time limits, user agent, redirects. TLS uses rustls with
/// the `ring` provider (installed as the process default unless one is already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Time allowed to open a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, answer included (default 30 s).
    pub timeout: Duration,
    /// The `user-agent` header (default `listener-core/VERSION`).
    pub user_agent: String,
    /// Whether redirects are followed (default yes, up to 10).
    pub follow_redirects: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            user_agent: concat!("listener-core/", env!("CARGO_PKG_VERSION")).to_owned(),
            follow_redirects: true,
        }
    }
}

impl ClientOptions {
    /// Builds the client.
    pub fn build(&self) -> Result<reqwest::Client, ConfigError> {
        crate::tls::ensure_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent.as_str());
        if !self.follow_redirects {
            builder = builder.redirect(reqwest::redirect::Policy::none());
        }
        builder
            .build()
            .map_err(|e| ConfigError::new("http client", e.to_string()))
    }
}

/// At most this much is reserved ahead from a declared `content-length`.
const MAX_PREALLOCATE: usize = 64 << 10;

/// Why an answer's body could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseBodyError {
    /// The body is (or declared itself) larger than the limit; what was read is dropped.
    #[error("response body exceeds {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The transport failed (or the request's time limit passed) mid-body.
    #[error("reading the response body failed: {message}")]
    Read {
        /// What happened (never the request's URL, which may carry credentials).
        message: String,
        /// Whether it was the request's time limit.
        timeout: bool,
        /// The HTTP library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ResponseBodyError {
    fn read(e: reqwest::Error) -> Self {
        ResponseBodyError::Read {
            message: describe(&e),
            timeout: e.is_timeout(),
            source: Box::new(e),
        }
    }
}

/// Reads `response`'s whole body, keeping at most `limit` bytes: more is
/// [`ResponseBodyError::TooLarge`], never a bigger buffer.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, ResponseBodyError> {
    let declared = response.content_length();
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ResponseBodyError::TooLarge { limit });
    }
    // A hint only: a server must not reserve our memory by declaring a size.
    let capacity = declared
        .map_or(0, |len| usize::try_from(len).unwrap_or(usize::MAX))
        .min(limit)
        .min(MAX_PREALLOCATE);
    let mut first: Option<Bytes> = None;
    let mut all: Vec<u8> = Vec::new();
    let mut seen: usize = 0;
    while let Some(chunk) = response.chunk().await.map_err(ResponseBodyError::read)? {
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            return Err(ResponseBodyError::TooLarge { limit });
        }
        match first.take() {
            // The common case, a body in one chunk, is kept as it came (no copy).
            None if all.is_empty() => first = Some(chunk),
            None => all.extend_from_slice(&chunk),
            Some(one) => {
                all = Vec::with_capacity(capacity.max(one.len() + chunk.len()));
                all.extend_from_slice(&one);
                all.extend_from_slice(&chunk);
            }
        }
    }
    Ok(match first {
        Some(one) => one,
        None => Bytes::from(all),
    })
}

/// An HTTP failure's text with its causes, for logs and error messages: a request's URL
/// (which may carry credentials in its query) is replaced by `<url>`.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let url = e
        .downcast_ref::<reqwest::Error>()
        .and_then(reqwest::Error::url)
        .map(|u| u.as_str().to_owned());
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    match url {
        Some(url) => text.replace(&url, "<url>"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::response::{IntoResponse, Response};
    use futures_util::StreamExt;

    use super::*;

    /// What the test server answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// `n` chunks of 16 KiB, no `content-length`.
        Chunks(usize),
        /// 16 KiB chunks forever, no `content-length`.
        Endless,
        /// A `content-length` of 1 GiB, then nothing.
        DeclaresHuge,
    }

    const CHUNK: usize = 16 << 10;

    /// Serves `answer` on 127.0.0.1; counts the bytes the server handed to the transport.
    async fn server(answer: Answer) -> (String, Arc<AtomicU64>) {
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let app = axum::Router::new().fallback(move || {
            let counter = Arc::clone(&counter);
            async move {
                let chunks = match answer {
                    Answer::Chunks(n) => n,
                    Answer::Endless => usize::MAX,
                    Answer::DeclaresHuge => {
                        return Response::builder()
                            .header("content-length", (1u64 << 30).to_string())
                            .body(Body::from_stream(futures_util::stream::pending::<
                                Result<Bytes, std::io::Error>,
                            >()))
                            .unwrap_or_else(|_| "bad".into_response());
                    }
                };
                let stream = futures_util::stream::iter(0..chunks).map(move |_| {
                    counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
                    Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; CHUNK]))
                });
                Body::from_stream(stream).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/"), sent)
    }

    fn client() -> reqwest::Client {
        ClientOptions {
            timeout: Duration::from_secs(15),
            ..ClientOptions::default()
        }
        .build()
        .unwrap()
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let (url, _) = server(Answer::Chunks(4)).await;
        let body = read_limited(client().get(&url).send().await.unwrap(), 4 * CHUNK)
            .await
            .unwrap();
        assert_eq!(body.len(), 4 * CHUNK);
        assert!(body.iter().all(|&b| b == b'x'));
    }

    #[tokio::test]
    async fn an_endless_body_is_refused_at_the_limit_long_before_the_timeout() {
        let (url, sent) = server(Answer::Endless).await;
        let started = std::time::Instant::now();
        let response = client().get(&url).send().await.unwrap();
        let err = read_limited(response, 64 << 10).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(err, ResponseBodyError::TooLarge { limit: 65536 }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "response body exceeds 65536 bytes");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        // Whatever the server managed to write ended in socket buffers, not in ours: it is
        // stopped soon after we hang up.
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < 64 << 20, "the server streamed {sent} bytes");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_without_reading() {
        let (url, _) = server(Answer::DeclaresHuge).await;
        let response = client().get(&url).send().await.unwrap();
        let started = std::time::Instant::now();
        let err = read_limited(response, 1000).await.unwrap_err();
        assert!(matches!(err, ResponseBodyError::TooLarge { limit: 1000 }));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn one_byte_over_is_too_large() {
        let (url, _) = server(Answer::Chunks(2)).await;
        let response = client().get(&url).send().await.unwrap();
        assert!(matches!(
            read_limited(response, 2 * CHUNK - 1).await,
            Err(ResponseBodyError::TooLarge { .. })
        ));
    }
}
