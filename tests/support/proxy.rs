//! A fault-injecting TCP proxy for the reliability tests: it sits between a listener and a
//! real server (sockudo, the hub) and, on command, cuts every connection, stalls traffic
//! (a black hole: nothing is forwarded, nothing is closed), adds latency and jitter,
//! throttles bandwidth, splits writes at random points, or refuses new connections for a
//! while. Faults apply to connections open at the time and to later ones.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The faults in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Traffic is held (both ways) while set: a silent stall.
    pub blackhole: bool,
    /// Each chunk waits this long before it is forwarded.
    pub latency: Duration,
    /// Plus a random part of up to this much (chunks stay in order).
    pub jitter: Duration,
    /// At most this many bytes per second, each way, per connection.
    pub bytes_per_sec: Option<u64>,
    /// Each chunk is written in random pieces, flushed one by one.
    pub split_writes: bool,
    /// New connections are closed at once until then.
    pub refuse_until: Option<Instant>,
}

struct Shared {
    upstream: SocketAddr,
    faults: watch::Sender<Faults>,
    /// Cancelled (and replaced) to cut every open connection.
    cut: Mutex<CancellationToken>,
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    seed: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1 (an ephemeral port) to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (faults, _) = watch::channel(Faults::default());
        let shared = Arc::new(Shared {
            upstream,
            faults,
            cut: Mutex::new(CancellationToken::new()),
            open: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            seed: AtomicU64::new(0x2545_F491_4F6C_DD1D),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop.clone()));
        FaultProxy { addr, shared, stop }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The faults in force now.
    pub fn faults(&self) -> Faults {
        self.shared.faults.borrow().clone()
    }

    /// Changes the faults in force.
    pub fn set(&self, change: impl FnOnce(&mut Faults)) {
        self.shared.faults.send_modify(change);
    }

    /// Lifts every fault.
    pub fn clear(&self) {
        self.shared.faults.send_replace(Faults::default());
    }

    /// Closes every open connection, both sides, now.
    pub fn cut_all(&self) {
        let mut cut = self.shared.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> u64 {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted and forwarded so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections refused so far (closed at once while refusing).
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let client = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => continue,
            },
        };
        let refusing = shared
            .faults
            .borrow()
            .refuse_until
            .is_some_and(|until| Instant::now() < until);
        if refusing {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let cut = shared.cut.lock().unwrap().clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(shared.upstream).await else {
                return;
            };
            shared.accepted.fetch_add(1, Ordering::SeqCst);
            shared.open.fetch_add(1, Ordering::SeqCst);
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let seed = shared
                .seed
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst);
            let up = pump(client_read, server_write, shared.faults.subscribe(), seed);
            let down = pump(server_read, client_write, shared.faults.subscribe(), !seed);
            tokio::select! {
                _ = cut.cancelled() => {}
                _ = async { tokio::join!(up, down) } => {}
            }
            shared.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A small random number generator (xorshift), enough for jitter and split points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Waits until the faults satisfy `pred`; false when the proxy is gone.
async fn until(faults: &mut watch::Receiver<Faults>, pred: impl FnMut(&Faults) -> bool) -> bool {
    faults.wait_for(pred).await.map(|_| ()).is_ok()
}

/// Forwards one direction under the faults in force, until either side closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut faults: watch::Receiver<Faults>,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // A black hole holds traffic: nothing is read, so nothing moves, until it lifts.
        if faults.wait_for(|f| !f.blackhole).await.is_err() {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            // A black hole starting while waiting for data: go back and hold.
            _ = until(&mut faults, |f| f.blackhole) => continue,
        };
        let now = faults.borrow().clone();
        let delay =
            now.latency + Duration::from_micros(rng.below(now.jitter.as_micros() as u64 + 1));
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let piece = if now.split_writes {
                1 + rng.below(chunk.len() as u64) as usize
            } else {
                chunk.len()
            };
            if to.write_all(&chunk[..piece]).await.is_err() || to.flush().await.is_err() {
                return;
            }
            if let Some(rate) = now.bytes_per_sec.filter(|r| *r > 0) {
                tokio::time::sleep(Duration::from_secs_f64(piece as f64 / rate as f64)).await;
            } else if now.split_writes {
                tokio::task::yield_now().await;
            }
            chunk = &chunk[piece..];
        }
    }
}
