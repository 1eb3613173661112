//! The HTTP/1 server under the webhook source: an accept loop that bounds the connections it
//! serves, closes the ones that idle or send their headers too slowly, survives running out
//! of file descriptors, and closes gracefully.
//!
//! A connection is *waiting* while no request of it is being handled: it is idle, or a
//! request's header block is still arriving. A waiting connection is closed once it has been
//! waiting for the idle timeout, or once a header block has been arriving for the header
//! timeout (counted from its first byte). When a new connection arrives with the cap reached,
//! the oldest waiting connection is closed to make room: a connection with a request in
//! progress is never cut for that. If every connection has a request in progress, new ones
//! wait in the listen backlog until one ends.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::rejections::Throttle;

/// The bounds of the connections one webhook server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long a request's header block may take to arrive, from its first byte.
    pub header_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub idle_timeout: Duration,
}

/// How long the accept loop pauses after the process ran out of descriptors.
const EXHAUSTED_PAUSE: Duration = Duration::from_millis(20);
/// At most one log line per this interval about the cap or descriptor exhaustion.
const PRESSURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One served connection, as the accept loop and the connection's task share it.
#[derive(Debug, Default)]
struct Conn {
    /// A request of this connection is being handled (between its complete header block
    /// and its answer).
    busy: AtomicBool,
    /// Bumped whenever a request starts, so the connection's reader knows a new wait began.
    requests: AtomicU64,
    /// Asks the connection's task to close: at once when waiting, after the answer when busy.
    close: Notify,
}

/// The connections being served, oldest first.
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// Notified whenever a connection leaves.
    left: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().map_or(0, |open| open.len())
    }

    fn insert(&self, id: u64, conn: Arc<Conn>) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, conn);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
        self.left.notify_waiters();
    }

    /// Closes the oldest waiting connection; whether there was one. It stops counting at
    /// once (its task only has to drop the socket).
    fn evict_oldest_waiting(&self) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let oldest = open
            .iter()
            .find(|(_, c)| !c.busy.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| open.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn close_all(&self) {
        if let Ok(open) = self.open.lock() {
            for conn in open.values() {
                conn.close.notify_one();
            }
        }
    }
}

/// Whether an accept error means the process (or system) is out of descriptors or memory.
fn is_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 55 | 12))
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets every
/// connection finish its request in progress, and returns once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::default());
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut pressure = Throttle::new(PRESSURE_LOG_INTERVAL);
    let mut next_id: u64 = 0;
    let mut shutdown = std::pin::pin!(shutdown);
    let max = limits.max_connections.max(1);
    loop {
        // At the cap: make room by closing the oldest waiting connection, or wait for one
        // to leave (new connections queue in the listen backlog meanwhile).
        while registry.len() >= max {
            let evicted = registry.evict_oldest_waiting();
            if pressure.allow() {
                tracing::warn!(
                    max_connections = max,
                    suppressed = pressure.take_suppressed(),
                    "webhook connection limit reached: {}",
                    if evicted {
                        "closing the oldest idle connection to make room"
                    } else {
                        "every connection has a request in progress; new ones wait"
                    }
                );
            }
            if evicted {
                break;
            }
            let left = registry.left.notified();
            tokio::select! {
                _ = left => {}
                _ = shutdown.as_mut() => return close(registry, tasks, stop).await,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.as_mut() => return close(registry, tasks, stop).await,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) if is_exhaustion(&e) => {
                // Free a descriptor if a waiting connection holds one, and pause so the loop
                // does not spin while the condition lasts.
                let evicted = registry.evict_oldest_waiting();
                if pressure.allow() {
                    tracing::warn!(error = %e, open = registry.len(), evicted, suppressed = pressure.take_suppressed(), "webhook server cannot accept: out of file descriptors or memory");
                }
                tokio::select! {
                    _ = tokio::time::sleep(EXHAUSTED_PAUSE) => {}
                    _ = shutdown.as_mut() => return close(registry, tasks, stop).await,
                }
                continue;
            }
            Err(e) => {
                // A connection that failed before we took it (reset, aborted): not ours.
                tracing::debug!(error = %e, "webhook accept failed");
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        next_id += 1;
        let conn = Arc::new(Conn::default());
        registry.insert(next_id, Arc::clone(&conn));
        tasks.spawn(serve_connection(
            tcp,
            app.clone(),
            limits,
            conn,
            next_id,
            Arc::clone(&registry),
            stop.clone(),
        ));
    }
}

async fn close(registry: Arc<Registry>, tasks: TaskTracker, stop: CancellationToken) {
    stop.cancel();
    registry.close_all();
    tasks.close();
    tasks.wait().await;
}

async fn serve_connection(
    tcp: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    conn: Arc<Conn>,
    id: u64,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    let io = TokioIo::new(Watched::new(tcp, Arc::clone(&conn), limits));
    let marks = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |request| {
        marks.requests.fetch_add(1, Ordering::AcqRel);
        marks.busy.store(true, Ordering::Release);
        // A `Router` is always ready.
        let answer = app.clone().call(request);
        let marks = Arc::clone(&marks);
        async move {
            let response = answer.await;
            marks.busy.store(false, Ordering::Release);
            response
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // Our reader enforces the header and idle timeouts (hyper's would count idle time as
    // header time).
    http.timer(TokioTimer::new()).header_read_timeout(None);
    let connection = http.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let closing = async {
        tokio::select! {
            _ = conn.close.notified() => {}
            _ = stop.cancelled() => {}
        }
    };
    tokio::select! {
        result = connection.as_mut() => finished(result),
        _ = closing => {
            if conn.busy.load(Ordering::Acquire) || stop.is_cancelled() {
                // Finish the request in progress (or close at once if there is none), then
                // close.
                connection.as_mut().graceful_shutdown();
                finished(connection.await);
            }
            // A waiting connection evicted for room is dropped as it is.
        }
    }
    registry.remove(id);
}

fn finished(result: hyper::Result<()>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "webhook connection closed with an error");
    }
}

/// A connection's socket, timing the waits between requests.
struct Watched {
    tcp: TcpStream,
    conn: Arc<Conn>,
    limits: ConnectionLimits,
    /// The request count when the current wait began.
    seen: u64,
    /// Whether the current wait has received bytes (a header block is arriving).
    heading: bool,
    deadline: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(tcp: TcpStream, conn: Arc<Conn>, limits: ConnectionLimits) -> Self {
        Watched {
            tcp,
            conn,
            limits,
            seen: 0,
            heading: false,
            deadline: Box::pin(tokio::time::sleep(limits.idle_timeout)),
        }
    }

    fn waiting(&self) -> bool {
        !self.conn.busy.load(Ordering::Acquire)
    }

    /// Starts a new wait if a request happened since the last one.
    fn track_wait(&mut self) {
        let requests = self.conn.requests.load(Ordering::Acquire);
        if requests != self.seen {
            self.seen = requests;
            self.heading = false;
            let at = Instant::now() + self.limits.idle_timeout;
            self.deadline.as_mut().reset(at);
        }
    }

    /// A blocked read or write of a waiting connection ends in an error once the wait has
    /// lasted too long (a peer that stops reading its answers is timed like an idle one).
    fn timed<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => match self.expired(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            ready => ready,
        }
    }

    /// While waiting and blocked: whether the wait has lasted too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.waiting() && self.deadline.as_mut().poll(cx).is_ready() {
            let what = if self.heading {
                "the request's headers did not arrive within the header timeout"
            } else {
                "the connection was idle for the idle timeout"
            };
            return Err(io::Error::new(io::ErrorKind::TimedOut, what));
        }
        Ok(())
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        let waiting = me.waiting();
        if waiting {
            me.track_wait();
        }
        let before = buf.filled().len();
        match Pin::new(&mut me.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if waiting && !me.heading && buf.filled().len() > before {
                    me.heading = true;
                    let at = Instant::now() + me.limits.header_timeout;
                    me.deadline.as_mut().reset(at);
                }
                Poll::Ready(Ok(()))
            }
            other => me.timed(cx, other),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        let written = Pin::new(&mut me.tcp).poll_write(cx, data);
        me.timed(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        let written = Pin::new(&mut me.tcp).poll_write_vectored(cx, bufs);
        me.timed(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
