//! Resource bounds under attack (RELIABILITY.md, "Resource bounds under attack"): the
//! listener in its own process, a hostile peer in this one; the child's RSS, descriptors and
//! CPU come from `/proc/<pid>`. Each command prints Markdown table rows.
//!
//! - `attack chunks`: a scripted Pusher server sends 100,000 first chunks of
//!   `chunked-trigger_to_client` events with distinct ids, none ever finished; then one
//!   whole event, which must still be delivered.
//! - `attack webhook`: phases of 2,000 idle connections, slowloris headers, slowloris bodies,
//!   1 MiB header blocks and invalid signatures at 10,000 requests/s against ours
//!   (`serve-webhook`), while good signed deliveries are sent on fresh connections and
//!   timed; a baseline phase without attack first.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context};
use futures_util::{SinkExt, StreamExt};
use listener_core::source::pusher::protocol::{
    connection_established, CHUNKED_TRIGGER_EVENT, TRIGGER_EVENT,
};
use listener_core::source::pusher::{ChunkLimits, PusherSource};
use listener_core::webhook::{signed_headers, WebhookSecret};
use listener_core::{Filter, Handler, Listener, TriggerEvent};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

use crate::procstat::{self, mib, Sampler};
use crate::stats::{ms, quantile, tree_cpu_time};
use crate::webhook;

const FIXTURE: &str = include_str!("../../tests/fixtures/v3_slack_receive_message.json");
const CHANNEL: &str = "flood";

#[derive(clap::Subcommand)]
pub enum Attack {
    /// 100,000 chunked-event ids never finished, against one realtime listener.
    Chunks(ChunkArgs),
    /// Idle connections, slowloris headers and bodies, 1 MiB headers, invalid signatures.
    Webhook(WebhookArgs),
}

pub async fn run(attack: Attack) -> anyhow::Result<String> {
    match attack {
        Attack::Chunks(a) => chunks(a).await,
        Attack::Webhook(a) => webhook_attack(a).await,
    }
}

// ------------------------------------------------------------------------------------------
// Chunk flood.

#[derive(clap::Args)]
pub struct ChunkArgs {
    /// Distinct ids, one first chunk each, none finished.
    #[arg(long, default_value_t = 100_000)]
    pub ids: usize,
    /// Bytes of each chunk's text (a Pusher message carries at most 10 KB).
    #[arg(long, default_value_t = 10_000)]
    pub chunk_bytes: usize,
    /// `ChunkLimits::max_open` of the listener (default: the library's, 100).
    #[arg(long)]
    pub max_open: Option<usize>,
    /// `ChunkLimits::max_total_bytes` of the listener (default: the library's, 8 MiB).
    #[arg(long)]
    pub max_total_bytes: Option<usize>,
}

/// Arguments of the hidden `serve-chunk-listener` command.
#[derive(clap::Args)]
pub struct ChunkListenerArgs {
    /// The scripted Pusher server.
    #[arg(long)]
    ws: SocketAddr,
    #[arg(long)]
    max_open: Option<usize>,
    #[arg(long)]
    max_total_bytes: Option<usize>,
}

/// The listener under the chunk flood: a `PusherSource` on the public channel `flood` of
/// the server at `--ws`, a catch-all handler, its WARN and louder log lines on stderr.
/// Prints `READY`; a stdin line `count` prints
/// `count <events handled> <chunked events dropped (reported)> <other errors>`.
pub async fn serve_chunk_listener(args: ChunkListenerArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let defaults = ChunkLimits::default();
    let limits = ChunkLimits {
        max_open: args.max_open.unwrap_or(defaults.max_open),
        max_total_bytes: args.max_total_bytes.unwrap_or(defaults.max_total_bytes),
        ..defaults
    };
    let events = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let (d, o, e) = (
        Arc::clone(&dropped),
        Arc::clone(&other),
        Arc::clone(&events),
    );
    let source = PusherSource::new("floodkey", CHANNEL)
        .host(args.ws.ip().to_string())
        .port(args.ws.port())
        .tls(false)
        .chunk_limits(limits);
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .on_error(move |f| {
            if f.to_string().contains("chunked event") || f.to_string().contains("was dropped") {
                d.fetch_add(1, Ordering::Relaxed);
            } else {
                o.fetch_add(1, Ordering::Relaxed);
            }
        })
        .handler(Handler::new(
            "all",
            Filter::new(),
            move |_: Arc<TriggerEvent>| {
                e.fetch_add(1, Ordering::Relaxed);
                async {}
            },
        ))
        .build()?
        .spawn();
    println!("READY");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        if line.trim() == "count" {
            println!(
                "count {} {} {}",
                events.load(Ordering::SeqCst),
                dropped.load(Ordering::SeqCst),
                other.load(Ordering::SeqCst)
            );
            std::io::stdout().flush()?;
        }
    }
    handle.shutdown().await?;
    Ok(())
}

/// Asks the chunk listener for its counts.
async fn child_count(
    stdin: &mut tokio::process::ChildStdin,
    stdout: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> anyhow::Result<[u64; 3]> {
    stdin.write_all(b"count\n").await?;
    stdin.flush().await?;
    let line = stdout.next_line().await?.context("child exited")?;
    let n: Vec<u64> = line
        .strip_prefix("count ")
        .context("count answer")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    ensure!(n.len() == 3, "count answer {line:?}");
    Ok([n[0], n[1], n[2]])
}

fn pusher_frame(event: &str, data: &str) -> String {
    serde_json::json!({"event": event, "channel": CHANNEL, "data": data}).to_string()
}

async fn chunks(args: ChunkArgs) -> anyhow::Result<String> {
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let addr = ws.local_addr()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("serve-chunk-listener")
        .arg("--ws")
        .arg(addr.to_string());
    if let Some(n) = args.max_open {
        cmd.arg("--max-open").arg(n.to_string());
    }
    if let Some(n) = args.max_total_bytes {
        cmd.arg("--max-total-bytes").arg(n.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("child pid")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    // The listener's log lines about dropped chunked events, counted.
    let mut log = BufReader::new(child.stderr.take().context("stderr")?).lines();
    let logged = tokio::spawn(async move {
        let mut lines = 0u64;
        while let Ok(Some(line)) = log.next_line().await {
            if line.contains("chunked event") {
                lines += 1;
            }
        }
        lines
    });
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
        .await
        .context("no READY")??;
    ensure!(ready.as_deref() == Some("READY"), "child said {ready:?}");

    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), ws.accept())
        .await
        .context("the listener never connected")??;
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    ws.send(Message::Text(connection_established("1.1", 120).into()))
        .await?;
    // Its subscribe.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("pusher:subscribe") => break,
            Ok(Some(Ok(_))) => {}
            other => anyhow::bail!("no subscribe: {other:?}"),
        }
    }
    ws.send(Message::Text(
        pusher_frame("pusher_internal:subscription_succeeded", "{}").into(),
    ))
    .await?;
    // Settled and subscribed: the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = procstat::rss_kib(pid);
    let sampler = Sampler::start(pid, Duration::from_millis(50));
    let cpu0 = tree_cpu_time(pid);

    let piece = "x".repeat(args.chunk_bytes);
    let started = Instant::now();
    let mut offered: u64 = 0;
    for i in 0..args.ids {
        let data = serde_json::json!({"id": format!("flood-{i}"), "index": 0, "chunk": piece, "final": false})
            .to_string();
        offered += data.len() as u64;
        ws.feed(Message::Text(
            pusher_frame(CHUNKED_TRIGGER_EVENT, &data).into(),
        ))
        .await?;
        if i % 256 == 255 {
            ws.flush().await?;
        }
    }
    // A whole event behind the flood: delivered once everything before it was handled.
    let mut good: serde_json::Value = serde_json::from_str(FIXTURE)?;
    good["id"] = "evt_after_flood".into();
    ws.send(Message::Text(
        pusher_frame(TRIGGER_EVENT, &good.to_string()).into(),
    ))
    .await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let counts = loop {
        let c = child_count(&mut stdin, &mut stdout).await?;
        if c[0] >= 1 {
            break c;
        }
        ensure!(
            Instant::now() < deadline,
            "the good event never arrived: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed();
    let cpu = tree_cpu_time(pid).saturating_sub(cpu0);
    let (peak_sampled, peak_fds) = sampler.peak();
    let hwm = procstat::hwm_kib(pid);
    let end = procstat::rss_kib(pid);
    drop(sampler);
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    // All of its log, the summary written as it stopped included.
    let log_lines = tokio::time::timeout(Duration::from_secs(10), logged)
        .await
        .context("the listener's log did not end")??;

    let limits = ChunkLimits::default();
    let max_open = args.max_open.unwrap_or(limits.max_open);
    let max_total = args.max_total_bytes.unwrap_or(limits.max_total_bytes);
    let kept = (max_total / (args.chunk_bytes + 64)).min(max_open);
    Ok(format!(
        "| chunk flood | {} distinct ids x 1 first chunk of {} bytes, never finished ({:.0} MB offered in {:.1} s), then 1 whole event | RSS {} MiB before, peak {} MiB (VmHWM; sampled peak {}), {} MiB after; {} evictions reported through the error hook (expected {}: all but the {} ids the bounds keep), {} other errors; the whole event after the flood delivered ({}); {} WARN lines about dropped chunked events; listener CPU {:.1} µs per chunk; peak fds {} | `ChunkLimits::max_open` {}, `max_total_bytes` {} MiB |",
        args.ids,
        args.chunk_bytes,
        offered as f64 / 1e6,
        elapsed.as_secs_f64(),
        mib(baseline),
        mib(hwm),
        mib(peak_sampled),
        mib(end),
        counts[1],
        args.ids.saturating_sub(kept),
        kept,
        counts[2],
        counts[0],
        log_lines,
        cpu.as_secs_f64() * 1e6 / args.ids.max(1) as f64,
        peak_fds,
        max_open,
        max_total as f64 / (1 << 20) as f64,
    ))
}

// ------------------------------------------------------------------------------------------
// Webhook attacks.

#[derive(clap::Args)]
pub struct WebhookArgs {
    /// Seconds per phase.
    #[arg(long, default_value_t = 15)]
    pub secs: u64,
    /// Attacking connections in the idle and slowloris phases.
    #[arg(long, default_value_t = 2_000)]
    pub connections: usize,
    /// Invalid-signature requests per second offered.
    #[arg(long, default_value_t = 10_000)]
    pub bad_rate: u64,
    /// Keep-alive connections carrying the invalid signatures.
    #[arg(long, default_value_t = 32)]
    pub bad_connections: usize,
    /// Milliseconds between good deliveries (each on a fresh connection).
    #[arg(long, default_value_t = 20)]
    pub probe_ms: u64,
    /// Only these phases (comma separated: baseline,idle,slow-headers,slow-bodies,
    /// big-headers,bad-signatures).
    #[arg(long, value_delimiter = ',')]
    pub phases: Vec<String>,
    /// Passed to `serve-webhook` (ours' settings; the defaults are the library's).
    #[arg(long)]
    pub max_connections: Option<usize>,
    #[arg(long)]
    pub body_timeout_secs: Option<u64>,
    #[arg(long)]
    pub header_timeout_secs: Option<u64>,
    #[arg(long)]
    pub max_header_bytes: Option<usize>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A complete signed request for the fixture with event id `id`, raw HTTP/1.1.
pub fn signed_request(id: &str, close: bool) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(FIXTURE).unwrap_or_default();
    v["id"] = id.into();
    let body = v.to_string().into_bytes();
    let secret = WebhookSecret::composio(webhook::SECRET);
    let mut req = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}",
        webhook::PATH,
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    );
    for (k, val) in signed_headers(&secret, &format!("msg_{id}"), unix_now(), &body) {
        req.push_str(&format!("{k}: {val}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// Reads one answer on a keep-alive connection (`buf` keeps what follows); its status.
pub async fn read_answer(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return Ok(status);
            }
        }
        let n = tcp.read(&mut chunk).await?;
        ensure!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Good deliveries, one every `every` on a fresh connection, until stopped.
struct Probes {
    latencies: Arc<Mutex<Vec<Duration>>>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Probes {
    fn start(addr: SocketAddr, every: Duration, tag: &str) -> Probes {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicU64::new(0));
        let (l, f, tag) = (Arc::clone(&latencies), Arc::clone(&failed), tag.to_owned());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for i in 0u64.. {
                tick.tick().await;
                let req = signed_request(&format!("evt_probe_{tag}_{i}"), true);
                let (l, f) = (Arc::clone(&l), Arc::clone(&f));
                tokio::spawn(async move {
                    let started = Instant::now();
                    let answered = tokio::time::timeout(Duration::from_secs(5), async {
                        let mut tcp = TcpStream::connect(addr).await?;
                        tcp.set_nodelay(true)?;
                        tcp.write_all(&req).await?;
                        read_answer(&mut tcp, &mut Vec::new()).await
                    })
                    .await;
                    match answered {
                        Ok(Ok(200)) => l.lock().unwrap().push(started.elapsed()),
                        _ => {
                            f.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        Probes {
            latencies,
            failed,
            task,
        }
    }

    /// Stops sending, waits for the ones in flight (at most their 5 s timeout); (served
    /// latencies sorted, failures).
    async fn finish(self) -> (Vec<Duration>, u64) {
        self.task.abort();
        tokio::time::sleep(Duration::from_millis(5_100)).await;
        let mut l = self.latencies.lock().unwrap().clone();
        l.sort();
        (l, self.failed.load(Ordering::SeqCst))
    }
}

/// Attacking tasks, aborted when dropped, with a counter of what they did.
struct Attackers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    done: Arc<AtomicU64>,
}

impl Drop for Attackers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Each of `n` tasks: connect, run `behave` until the server closes, reconnect after 100 ms
/// (so the attack is kept up for as long as it runs). `done` counts connections closed by
/// the server.
fn hold<F, Fut>(addr: SocketAddr, n: usize, behave: F) -> Attackers
where
    F: Fn(TcpStream) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let tasks = (0..n)
        .map(|_| {
            let (behave, done) = (behave.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                loop {
                    if let Ok(tcp) = TcpStream::connect(addr).await {
                        behave(tcp).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    Attackers { tasks, done }
}

/// Waits until the peer closes (or errors), discarding what it sends.
async fn until_closed(tcp: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = tcp.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Sends `bytes` then one byte a second until the server closes.
async fn trickle(mut tcp: TcpStream, head: Vec<u8>, byte: u8) {
    if tcp.write_all(&head).await.is_err() {
        return;
    }
    let (mut rd, mut wr) = tcp.split();
    let writer = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if wr.write_all(&[byte]).await.is_err() {
                break;
            }
        }
    };
    let reader = async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}

fn start_attack(phase: &str, addr: SocketAddr, args: &WebhookArgs) -> Option<Attackers> {
    let n = args.connections;
    Some(match phase {
        "baseline" => return None,
        "idle" => hold(
            addr,
            n,
            |mut tcp| async move { until_closed(&mut tcp).await },
        ),
        "slow-headers" => hold(addr, n, |tcp| {
            trickle(
                tcp,
                format!("POST {} HTTP/1.1\r\nx-slow: ", webhook::PATH).into_bytes(),
                b'a',
            )
        }),
        "slow-bodies" => hold(addr, n, |tcp| {
            trickle(
                tcp,
                format!(
                    "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n",
                    webhook::PATH
                )
                .into_bytes(),
                b' ',
            )
        }),
        "big-headers" => {
            let mut req =
                format!("POST {} HTTP/1.1\r\nhost: x\r\nx-big: ", webhook::PATH).into_bytes();
            req.extend(std::iter::repeat_n(b'a', 1 << 20));
            req.extend_from_slice(b"\r\n\r\n");
            let req = Arc::new(req);
            let done = Arc::new(AtomicU64::new(0));
            let tasks = (0..4)
                .map(|_| {
                    let (req, done) = (Arc::clone(&req), Arc::clone(&done));
                    tokio::spawn(async move {
                        loop {
                            let Ok(mut tcp) = TcpStream::connect(addr).await else {
                                continue;
                            };
                            let _ = tcp.write_all(&req).await;
                            let mut buf = Vec::new();
                            if let Ok(Ok(431)) = tokio::time::timeout(
                                Duration::from_secs(5),
                                read_answer(&mut tcp, &mut buf),
                            )
                            .await
                            {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            Attackers { tasks, done }
        }
        "bad-signatures" => {
            let mut req = String::from_utf8(signed_request("evt_bad", false)).unwrap_or_default();
            // Same length, wrong signature.
            let at =
                req.find("webhook-signature: v1,").unwrap_or(0) + "webhook-signature: v1,".len();
            req.replace_range(at..at + 4, "AAAA");
            let req = Arc::new(req.into_bytes());
            let done = Arc::new(AtomicU64::new(0));
            let per_conn =
                Duration::from_secs_f64(args.bad_connections as f64 / args.bad_rate as f64);
            let tasks = (0..args.bad_connections)
                .map(|_| {
                    let (req, done) = (Arc::clone(&req), Arc::clone(&done));
                    tokio::spawn(async move {
                        let mut tick = tokio::time::interval(per_conn);
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                        loop {
                            let Ok(mut tcp) = TcpStream::connect(addr).await else {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            };
                            let mut buf = Vec::new();
                            loop {
                                tick.tick().await;
                                if tcp.write_all(&req).await.is_err() {
                                    break;
                                }
                                match read_answer(&mut tcp, &mut buf).await {
                                    Ok(401) => {
                                        done.fetch_add(1, Ordering::Relaxed);
                                    }
                                    _ => break,
                                }
                            }
                        }
                    })
                })
                .collect();
            Attackers { tasks, done }
        }
        other => {
            eprintln!("unknown phase {other}");
            return None;
        }
    })
}

fn phase_what(phase: &str, args: &WebhookArgs, done: u64) -> String {
    let n = args.connections;
    let s = args.secs;
    match phase {
        "baseline" => format!("no attack, {s} s"),
        "idle" => format!("{n} connections that never send a byte (reopened 100 ms after each close), {s} s; {done} closed by the server"),
        "slow-headers" => format!("{n} connections sending a header block at 1 byte/s (reopened after each close), {s} s; {done} closed by the server"),
        "slow-bodies" => format!("{n} connections with complete headers (content-length 100000) sending the body at 1 byte/s (reopened after each close), {s} s; {done} closed by the server"),
        "big-headers" => format!("1 MiB header blocks, 4 senders back to back, {s} s: {done} refused with 431 ({:.0}/s)", done as f64 / s as f64),
        "bad-signatures" => format!("invalid signatures offered at {}/s on {} keep-alive connections, {s} s: {done} answered 401 ({:.0}/s achieved)", args.bad_rate, args.bad_connections, done as f64 / s as f64),
        _ => phase.to_owned(),
    }
}

fn phase_bound(phase: &str, args: &WebhookArgs) -> String {
    let cap = args
        .max_connections
        .map_or("512 (default)".to_owned(), |n| n.to_string());
    match phase {
        "baseline" => "—".to_owned(),
        "idle" => format!("`max_connections` {cap}: the connection unanswered the longest is closed for a newcomer; `idle_timeout` 60 s"),
        "slow-headers" => format!("`header_timeout` {} s from the first byte; `max_connections` {cap}", args.header_timeout_secs.unwrap_or(10)),
        "slow-bodies" => format!("`max_connections` {cap}: a newcomer closes the connection unanswered the longest, its body still arriving; `body_timeout` {} s (408)", args.body_timeout_secs.unwrap_or(30)),
        "big-headers" => format!("`max_header_bytes` {}: 431", args.max_header_bytes.map_or("65536 (default)".to_owned(), |n| n.to_string())),
        "bad-signatures" => "verification before anything is kept; refusals logged as one summary per 10 s (`rejection_summary_interval`)".to_owned(),
        _ => String::new(),
    }
}

async fn webhook_attack(args: WebhookArgs) -> anyhow::Result<String> {
    let mut extra = Vec::new();
    if let Some(n) = args.max_connections {
        extra.push(format!("--max-connections={n}"));
    }
    if let Some(n) = args.body_timeout_secs {
        extra.push(format!("--body-timeout-secs={n}"));
    }
    if let Some(n) = args.header_timeout_secs {
        extra.push(format!("--header-timeout-secs={n}"));
    }
    if let Some(n) = args.max_header_bytes {
        extra.push(format!("--max-header-bytes={n}"));
    }
    let ours = webhook::start_ours_with(&extra).await?;
    let addr: SocketAddr = ours.addr.parse()?;
    let pid = ours.child.id().context("pid")?;
    let phases: Vec<String> = if args.phases.is_empty() {
        [
            "baseline",
            "idle",
            "slow-headers",
            "slow-bodies",
            "big-headers",
            "bad-signatures",
        ]
        .map(String::from)
        .to_vec()
    } else {
        args.phases.clone()
    };
    let mut out = String::new();
    out.push_str("| fault or input | what was tried (count, duration) | result: good deliveries (served / sent, p50, p99 send to status line, fresh connection each), ours' peak RSS and descriptors, ours' CPU | bound |\n| --- | --- | --- | --- |\n");
    for phase in &phases {
        let attackers = start_attack(phase, addr, &args);
        // Let the attack build up before timing good deliveries.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sampler = Sampler::start(pid, Duration::from_millis(100));
        let cpu0 = tree_cpu_time(pid);
        let done0 = attackers
            .as_ref()
            .map_or(0, |a| a.done.load(Ordering::SeqCst));
        let probes = Probes::start(addr, Duration::from_millis(args.probe_ms), phase);
        tokio::time::sleep(Duration::from_secs(args.secs)).await;
        let done = attackers
            .as_ref()
            .map_or(0, |a| a.done.load(Ordering::SeqCst))
            - done0;
        let cpu = tree_cpu_time(pid).saturating_sub(cpu0);
        let (peak_rss, peak_fds) = sampler.peak();
        drop(attackers);
        let (lat, failed) = probes.finish().await;
        drop(sampler);
        let per = if phase == "bad-signatures" || phase == "big-headers" {
            format!(
                " = {:.1} µs per refused request (good deliveries included)",
                cpu.as_secs_f64() * 1e6 / done.max(1) as f64
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| webhook: {phase} | {} | good {} / {}, p50 {} ms, p99 {} ms, max {} ms; peak RSS {} MiB, peak fds {}; CPU {:.2} s in {} s{per} | {} |\n",
            phase_what(phase, &args, done),
            lat.len(),
            lat.len() as u64 + failed,
            ms(quantile(&lat, 0.5)),
            ms(quantile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default()),
            mib(peak_rss),
            peak_fds,
            cpu.as_secs_f64(),
            args.secs,
            phase_bound(phase, &args),
        ));
        eprintln!("phase {phase} done");
        // Let the server shed what the attack left (closed sockets, timers).
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    ours.stop().await?;
    Ok(out)
}
