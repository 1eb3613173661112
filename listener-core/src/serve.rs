//! The HTTP/1 server under the webhook source and the admin endpoint: an accept loop that
//! bounds the connections it serves, closes the ones that idle or send their headers too
//! slowly, survives running out of file descriptors, and closes gracefully.
//!
//! A connection is *in a request* from the moment a request's header block is complete until
//! its answer has been handed to the connection (the answer's body is dropped), and
//! *waiting* otherwise: idle, or a request's header block is still arriving. A request is
//! *receiving* while its body is still arriving (nothing about it can be authenticated yet:
//! a signature covers the whole body), and *busy* from the end of its body (or from its
//! start, without one) until its answer is handed over. A watchdog on each connection's task
//! closes it once it has been waiting for the idle timeout, once a header block has been
//! arriving for the header timeout (counted from its first byte), or once a write to a peer
//! that does not read has been blocked for the idle timeout, whatever its state. How long a
//! body may take is the application's bound (the webhook source's body timeout).
//!
//! When a new connection arrives with the cap reached, the connection that has gone the
//! longest without an answer (since it opened or since its last answer) is closed to make
//! room, among those waiting or receiving a body. One receiving is dropped without an
//! answer, so slowloris bodies cannot hold every slot until the body timeout; one just
//! accepted is the youngest, the last to go, so a newcomer is not closed for the next one
//! before it could be read. A busy connection is never cut for that. The newcomer is served
//! only once the evicted connection's socket is closed, so the descriptors held never pass
//! the cap by more than the newcomer's. Choosing a connection for eviction and its request
//! moving on are exclusive: a request whose header block completes on a connection already
//! chosen is not served (the connection closes), and a body that ends on a connection
//! already chosen ends in an error instead, so an evicted connection can never stay open,
//! uncounted, nor have its request handled. If every connection is busy, new ones wait in
//! the listen backlog until one is done.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The bounds of the connections one server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// What the server is, for its log lines (`webhook`, `admin`).
    pub server: &'static str,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long a request's header block may take to arrive, from its first byte.
    pub header_timeout: Duration,
    /// How long a connection may wait for its next request (and a blocked write may last).
    pub idle_timeout: Duration,
    /// Largest request header block buffered (request line and headers), in bytes; a larger
    /// one is answered 431 and the connection closed. Raised to [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
}

/// The least [`ConnectionLimits::max_header_bytes`] can be: the HTTP layer's smallest read
/// buffer.
pub(crate) const MIN_HEADER_BYTES: usize = 8 << 10;

/// How long the accept loop pauses after the process ran out of descriptors.
const EXHAUSTED_PAUSE: Duration = Duration::from_millis(20);
/// How long it pauses after any other accept failure, so a lasting one cannot spin it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(5);
/// At most one log line per this interval about the cap or descriptor exhaustion.
const PRESSURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// When the current wait of a connection began, and what it is waiting for.
#[derive(Debug)]
struct Times {
    /// When the connection opened or its last answer was handed over.
    idle_since: Instant,
    /// When the first byte of the next header block arrived, while waiting.
    head_started: Option<Instant>,
    /// Since when a write has been blocked (the peer does not read).
    write_blocked: Option<Instant>,
}

/// [`Conn::state`]: waiting (idle, or a header block arriving).
const WAITING: u8 = 0;
/// [`Conn::state`]: a request whose body has arrived (or that has none) is being handled or
/// answered; never evicted.
const BUSY: u8 = 1;
/// [`Conn::state`]: chosen for eviction while waiting or receiving; no request may start on
/// it, and a body ending on it is not handed over.
const EVICTED: u8 = 2;
/// [`Conn::state`]: a request's body is still arriving.
const RECEIVING: u8 = 3;

/// One served connection, as the accept loop, its task and its socket share it.
#[derive(Debug)]
struct Conn {
    /// [`WAITING`], [`RECEIVING`], [`BUSY`] or [`EVICTED`].
    state: AtomicU8,
    /// When it last started waiting for an answer (it opened, or its last answer was
    /// handed over), in nanoseconds since `epoch`: the accept loop compares connections by
    /// it without taking each one's lock.
    unanswered_since: AtomicU64,
    /// The server's, common to its connections.
    epoch: Instant,
    times: Mutex<Times>,
    /// Tells the connection's watchdog that its deadline moved.
    changed: Notify,
    /// Asks the connection's task to close: at once when waiting, after the answer when busy.
    close: Notify,
    /// The accept loop's: notified whenever a slot may have freed (a connection left or is
    /// no longer busy).
    freed: Arc<Notify>,
}

impl Conn {
    fn new(freed: Arc<Notify>, epoch: Instant) -> Self {
        Conn {
            state: AtomicU8::new(WAITING),
            unanswered_since: AtomicU64::new(nanos_since(epoch)),
            epoch,
            times: Mutex::new(Times {
                idle_since: Instant::now(),
                head_started: None,
                write_blocked: None,
            }),
            changed: Notify::new(),
            close: Notify::new(),
            freed,
        }
    }

    fn update(&self, f: impl FnOnce(&mut Times)) {
        if let Ok(mut times) = self.times.lock() {
            f(&mut times);
        }
        self.changed.notify_one();
    }

    /// Busy: a request past its body, which is never evicted.
    fn busy(&self) -> bool {
        self.state.load(Ordering::Acquire) == BUSY
    }

    /// In a request: busy or receiving its body (the watchdog leaves those alone).
    fn in_request(&self) -> bool {
        matches!(self.state.load(Ordering::Acquire), BUSY | RECEIVING)
    }

    /// A request's header block is complete: receiving until its body has arrived (when it
    /// has one), then busy until its answer is handed over. `false` if the connection was
    /// already chosen for eviction: the request must not be served.
    fn request_started(&self, has_body: bool) -> bool {
        let next = if has_body { RECEIVING } else { BUSY };
        if self
            .state
            .compare_exchange(WAITING, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.update(|t| t.head_started = None);
        true
    }

    /// The request's body has arrived (or will not be read any further): busy. `false` if
    /// the connection was chosen for eviction first: the body must not be handed over.
    fn body_done(&self) -> bool {
        match self
            .state
            .compare_exchange(RECEIVING, BUSY, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state != EVICTED,
        }
    }

    /// If it may be evicted (waiting, or receiving a body): its state and since when it has
    /// gone unanswered.
    fn evictable(&self) -> Option<(u64, u8)> {
        let state = self.state.load(Ordering::Acquire);
        matches!(state, WAITING | RECEIVING)
            .then(|| (self.unanswered_since.load(Ordering::Acquire), state))
    }

    /// Chooses this connection for eviction if it is still in `state`; whether it was.
    fn evict(&self, state: u8) -> bool {
        self.state
            .compare_exchange(state, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The answer was handed to the connection (its body dropped): waiting again.
    fn request_done(&self) {
        self.update(|t| {
            t.idle_since = Instant::now();
            t.head_started = None;
        });
        self.unanswered_since
            .store(nanos_since(self.epoch), Ordering::Release);
        // Receiving still if the answer went out before the body ended (a handler that
        // answers without reading it all): the request is over all the same.
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                matches!(s, BUSY | RECEIVING).then_some(WAITING)
            });
        self.freed.notify_waiters();
    }

    /// Bytes arrived: while waiting, the first ones start the header timer.
    fn bytes_read(&self) {
        if self.in_request() {
            return;
        }
        let starts = self
            .times
            .lock()
            .map(|t| t.head_started.is_none())
            .unwrap_or(false);
        if starts {
            self.update(|t| t.head_started = Some(Instant::now()));
        }
    }

    fn write_blocked(&self, blocked: bool) {
        let now_blocked = self
            .times
            .lock()
            .map(|t| t.write_blocked.is_some())
            .unwrap_or(blocked);
        if now_blocked != blocked {
            self.update(|t| t.write_blocked = blocked.then(Instant::now));
        }
    }

    /// When the connection must close unless something changes; `None` while it is in a
    /// request and not blocked writing.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        let times = self.times.lock().ok()?;
        if let Some(at) = times.write_blocked {
            return Some((
                at + limits.idle_timeout,
                "the peer did not read its answers within the idle timeout",
            ));
        }
        if self.in_request() {
            return None;
        }
        Some(match times.head_started {
            Some(at) => (
                at + limits.header_timeout,
                "the request's headers did not arrive within the header timeout",
            ),
            None => (
                times.idle_since + limits.idle_timeout,
                "the connection was idle for the idle timeout",
            ),
        })
    }
}

/// Nanoseconds from `epoch` to now.
fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// The connections being served, oldest first.
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// What the connections' `unanswered_since` count from.
    epoch: Instant,
    /// Connections whose socket is still open: those in `open`, and those evicted whose task
    /// has not dropped its socket yet. The cap bounds this, not `open` alone: an evicted
    /// connection leaves `open` at once, but its descriptor only when its task next runs,
    /// and an accept loop that did not wait for that could take connection after
    /// connection, each evicting the one before, while the evicted sockets piled up.
    sockets: AtomicUsize,
    /// Notified whenever a slot may have freed.
    freed: Arc<Notify>,
}

impl Registry {
    fn new() -> Self {
        Registry {
            open: Mutex::new(BTreeMap::new()),
            epoch: Instant::now(),
            sockets: AtomicUsize::new(0),
            freed: Arc::new(Notify::new()),
        }
    }

    fn len(&self) -> usize {
        self.open.lock().map_or(0, |open| open.len())
    }

    /// Sockets still open, evicted ones not yet closed included.
    fn sockets(&self) -> usize {
        self.sockets.load(Ordering::Acquire)
    }

    /// Whether the connections are at the cap with every one busy (none could be evicted).
    fn all_busy_at(&self, max: usize) -> bool {
        self.open
            .lock()
            .is_ok_and(|open| open.len() >= max && open.values().all(|c| c.busy()))
    }

    /// A connection accepted: counted until its [`Closed`] guard is dropped.
    fn insert(self: &Arc<Self>, id: u64, conn: Arc<Conn>) -> Closed {
        self.sockets.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, conn);
        }
        Closed {
            registry: Arc::clone(self),
            id,
        }
    }

    /// Closes the connection that has gone the longest without an answer among those that
    /// may be evicted (waiting, or receiving a body); which kind it was. A connection just
    /// accepted is the youngest, so it is never the one closed for the next newcomer before
    /// its task could read it. It leaves `open` at once (and stops being a candidate); its
    /// socket counts until its task has dropped it.
    fn evict_one(&self) -> Eviction {
        let Ok(mut open) = self.open.lock() else {
            return Eviction::Nothing;
        };
        loop {
            let Some((_, id, state)) = open
                .iter()
                .filter_map(|(id, c)| c.evictable().map(|(since, state)| (since, *id, state)))
                .min()
            else {
                return Eviction::Nothing;
            };
            // Chosen atomically: from here on no request starts on it, and a body arriving
            // on it is not handed over. If its state has just moved on, look again.
            if open.get(&id).is_some_and(|c| c.evict(state)) {
                if let Some(conn) = open.remove(&id) {
                    conn.close.notify_one();
                }
                return if state == WAITING {
                    Eviction::Waiting
                } else {
                    Eviction::Receiving
                };
            }
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

/// What [`Registry::evict_one`] closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eviction {
    /// A waiting connection (idle, or its header block arriving).
    Waiting,
    /// A connection whose request body was arriving.
    Receiving,
    /// None: every connection is busy.
    Nothing,
}

/// Held by a connection's task for as long as it holds its socket: dropped after the socket,
/// it removes the connection and frees its slot.
struct Closed {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Closed {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.open.lock() {
            open.remove(&self.id);
        }
        self.registry.sockets.fetch_sub(1, Ordering::AcqRel);
        self.registry.freed.notify_waiters();
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
    let registry = Arc::new(Registry::new());
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut pressure = Throttle::new(PRESSURE_LOG_INTERVAL);
    let mut receiving_evicted = Throttle::new(PRESSURE_LOG_INTERVAL);
    let mut next_id: u64 = 0;
    let mut shutdown = std::pin::pin!(shutdown);
    let max = limits.max_connections.max(1);
    let slot_freed = Arc::clone(&registry.freed);
    loop {
        // At the cap with every connection busy: wait until one is done or leaves (new
        // connections queue in the listen backlog meanwhile).
        loop {
            let freed = slot_freed.notified();
            let mut freed = std::pin::pin!(freed);
            // Registered before the check, so a slot freed in between is not missed.
            freed.as_mut().enable();
            if !registry.all_busy_at(max) {
                break;
            }
            if pressure.allow() {
                tracing::warn!(
                    max_connections = max,
                    suppressed = pressure.take_suppressed(),
                    "{} connection limit reached: every connection has a request in progress; new ones wait",
                    limits.server
                );
            }
            tokio::select! {
                _ = freed => {}
                _ = shutdown.as_mut() => return close(registry, tasks, stop).await,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.as_mut() => return close(registry, tasks, stop).await,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                let exhausted = is_exhaustion(&e);
                if exhausted {
                    // Free a descriptor if a waiting (or receiving) connection holds one.
                    let evicted = registry.evict_one() != Eviction::Nothing;
                    if pressure.allow() {
                        tracing::warn!(error = %e, open = registry.len(), evicted, suppressed = pressure.take_suppressed(), "{} server cannot accept: out of file descriptors or memory", limits.server);
                    }
                } else {
                    // A connection that failed before we took it (reset, aborted): not ours.
                    tracing::debug!(error = %e, "{} accept failed", limits.server);
                }
                // Pause so that a lasting condition cannot spin the loop.
                let pause = if exhausted {
                    EXHAUSTED_PAUSE
                } else {
                    ACCEPT_ERROR_PAUSE
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.as_mut() => return close(registry, tasks, stop).await,
                }
                continue;
            }
        };
        // At the cap: the newcomer takes the place of the connection unanswered the longest
        // (waiting, or its body arriving), once that one's socket is closed (its task drops
        // it), so the descriptors never pile up past the cap. If none can be evicted any
        // more (they became busy since the check above), the newcomer waits for a slot like
        // the backlog does: it is not served beyond the cap.
        while registry.sockets() >= max {
            let freed = slot_freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if registry.sockets() < max {
                break;
            }
            // Evict only while the connections still counting fill the cap: one already
            // evicted (for this newcomer, or for lack of descriptors) is on its way out.
            if registry.len() >= max {
                match registry.evict_one() {
                    Eviction::Waiting if pressure.allow() => tracing::warn!(
                        max_connections = max,
                        suppressed = pressure.take_suppressed(),
                        "{} connection limit reached: closing the oldest idle connection to make room",
                        limits.server
                    ),
                    Eviction::Receiving if receiving_evicted.allow() => tracing::warn!(
                        max_connections = max,
                        suppressed = receiving_evicted.take_suppressed(),
                        "{} connection limit reached: closing the connection unanswered the longest, its request body still arriving, to make room",
                        limits.server
                    ),
                    _ => {}
                }
            }
            tokio::select! {
                _ = freed => {}
                _ = shutdown.as_mut() => return close(registry, tasks, stop).await,
            }
        }
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        next_id += 1;
        let conn = Arc::new(Conn::new(Arc::clone(&registry.freed), registry.epoch));
        let closed = registry.insert(next_id, Arc::clone(&conn));
        tasks.spawn(serve_connection(
            tcp,
            app.clone(),
            limits,
            conn,
            closed,
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
    closed: Closed,
    stop: CancellationToken,
) {
    // Declared first, so dropped last: after the socket (owned by `connection`, below), also
    // if the task is dropped unfinished.
    let _closed = closed;
    let io = TokioIo::new(Watched {
        tcp,
        conn: Arc::clone(&conn),
    });
    let marks = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        // Evicted before this request's headers were complete: not served (the connection
        // is closing; the sender retries elsewhere or later).
        let has_body = !http_body::Body::is_end_stream(request.body());
        let answer = marks.request_started(has_body).then(|| {
            let arriving = has_body.then(|| Arc::clone(&marks));
            app.clone().call(request.map(|body| {
                Body::new(Arriving {
                    body,
                    conn: arriving,
                })
            }))
        });
        let marks = Arc::clone(&marks);
        async move {
            let Some(answer) = answer else {
                let mut refused = axum::http::Response::new(Answer {
                    body: Body::empty(),
                    conn: None,
                });
                *refused.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
                refused.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
                return Ok(refused);
            };
            // A `Router` is always ready.
            let response = answer.await?;
            // Busy until the answer's body is handed over (dropped by the connection).
            Ok::<_, std::convert::Infallible>(response.map(|body| Answer {
                body,
                conn: Some(marks),
            }))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watchdog enforces the header and idle timeouts (hyper's would count idle time as
    // header time).
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        // hyper refuses a header block that fills its read buffer with 431 (and panics on a
        // bound below its minimum, which `max` keeps away).
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    let connection = http.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let closing = async {
        tokio::select! {
            _ = conn.close.notified() => {}
            _ = stop.cancelled() => {}
        }
    };
    tokio::select! {
        result = connection.as_mut() => finished(limits.server, result),
        why = watchdog(&conn, &limits) => {
            tracing::debug!(server = limits.server, reason = why, "connection closed");
        }
        _ = closing => {
            if conn.in_request() || stop.is_cancelled() {
                // Finish the request in progress (or close at once if there is none), then
                // close; the watchdog still bounds a peer that stalls.
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    result = connection.as_mut() => finished(limits.server, result),
                    why = watchdog(&conn, &limits) => {
                        tracing::debug!(server = limits.server, reason = why, "connection closed");
                    }
                }
            }
            // A waiting connection evicted for room is dropped as it is.
        }
    }
}

/// Resolves, with the reason, once the connection's deadline has passed.
async fn watchdog(conn: &Conn, limits: &ConnectionLimits) -> &'static str {
    loop {
        let changed = conn.changed.notified();
        match conn.deadline(limits) {
            Some((at, why)) if Instant::now() >= at => return why,
            Some((at, _)) => {
                tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => changed.await,
        }
    }
}

fn finished(server: &'static str, result: hyper::Result<()>) {
    if let Err(e) = result {
        tracing::debug!(server, error = %e, "connection closed with an error");
    }
}

/// An answer's body: dropping it (the connection has taken all of it) ends the request.
struct Answer {
    body: Body,
    conn: Option<Arc<Conn>>,
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.request_done();
        }
    }
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request's body: its end (or its being dropped) moves the connection from receiving to
/// busy, unless the connection was evicted meanwhile; then the end is an error, so the
/// request is not handled.
struct Arriving {
    body: Incoming,
    /// While the body is arriving.
    conn: Option<Arc<Conn>>,
}

impl Arriving {
    /// The body ended (or will not be read further): `false` if it must not be handed over.
    fn ended(&mut self) -> bool {
        self.conn.take().is_none_or(|conn| conn.body_done())
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.ended();
    }
}

impl http_body::Body for Arriving {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => self.body.is_end_stream(),
            Poll::Pending => false,
        };
        if ended && !self.ended() {
            let evicted = io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection was closed to make room for another",
            );
            return Poll::Ready(Some(Err(evicted.into())));
        }
        polled.map(|frame| frame.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket, telling the watchdog when bytes arrive and when writes block.
struct Watched {
    tcp: TcpStream,
    conn: Arc<Conn>,
}

impl Watched {
    fn writing<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.conn.write_blocked(poll.is_pending());
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        let before = buf.filled().len();
        let read = Pin::new(&mut me.tcp).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            me.conn.bytes_read();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write(cx, data);
        self.writing(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.writing(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.tcp).poll_flush(cx);
        self.writing(flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Allows one event per interval and counts the ones it held back.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub(crate) fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to let this one through (the first, then one per interval).
    pub(crate) fn allow(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < self.interval)
        {
            self.suppressed += 1;
            return false;
        }
        self.last = Some(now);
        true
    }

    /// How many were held back since the last one let through.
    pub(crate) fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_connection_unanswered_the_longest_is_evicted_and_a_busy_one_never() {
        let registry = Arc::new(Registry::new());
        let mut guards = Vec::new();
        let mut open = |id| {
            let conn = Arc::new(Conn::new(Arc::clone(&registry.freed), registry.epoch));
            guards.push(registry.insert(id, Arc::clone(&conn)));
            conn
        };
        let step = || tokio::time::advance(Duration::from_millis(1));
        let a = open(1);
        step().await;
        let b = open(2);
        step().await;
        let c = open(3);
        step().await;
        let d = open(4);
        step().await;
        let e = open(5);
        // 1 is busy (a request without a body, or whose body has arrived); 2 and 4 are
        // receiving bodies; 3 and 5 wait (just accepted, not read yet).
        assert!(a.request_started(false));
        assert!(b.request_started(true));
        assert!(d.request_started(true));
        assert!(!registry.all_busy_at(5));
        // The oldest that may go is 2, receiving: its body can no longer be handed over.
        assert_eq!(registry.evict_one(), Eviction::Receiving);
        assert_eq!(registry.len(), 4);
        assert!(!b.body_done(), "an evicted body must not be handed over");
        assert!(!b.in_request());
        // Then 3, waiting.
        assert_eq!(registry.evict_one(), Eviction::Waiting);
        assert!(!c.request_started(true), "no request starts once evicted");
        // 1 is answered now, waiting again: 4 and 5 have gone unanswered longer, though 1
        // opened first.
        step().await;
        a.request_done();
        assert_eq!(registry.evict_one(), Eviction::Receiving);
        assert!(!d.body_done());
        assert_eq!(registry.evict_one(), Eviction::Waiting);
        assert!(!e.request_started(false));
        // 1 alone, busy again once its body has arrived: nothing may be evicted.
        assert!(a.request_started(true));
        assert!(a.body_done());
        assert!(registry.all_busy_at(1));
        assert_eq!(registry.evict_one(), Eviction::Nothing);
        assert_eq!(
            registry.sockets(),
            5,
            "sockets count until their guards drop"
        );
        drop(guards);
        assert_eq!((registry.sockets(), registry.len()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_throttle_lets_one_through_per_interval() {
        let mut t = Throttle::new(Duration::from_secs(10));
        assert!(t.allow());
        assert!(!t.allow());
        assert!(!t.allow());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(t.allow());
        assert_eq!(t.take_suppressed(), 2);
        assert_eq!(t.take_suppressed(), 0);
    }
}
